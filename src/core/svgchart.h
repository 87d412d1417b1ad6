/*
 * svgchart.h: inline SVG charts for the dashboard page (plain C, no
 * PostgreSQL headers): a line chart, stacked bars and bars, each a complete
 * <svg> element with its title, axes, grid and legend, text escaped for HTML.
 * Output goes through a callback, so the caller decides where it is kept.
 */
#ifndef SVGCHART_H
#define SVGCHART_H

#include <stddef.h>

typedef void (*svg_emit_fn) (void *ctx, const char *text, size_t len);

typedef enum svg_chart_kind
{
	SVG_LINES,					/* one line per series */
	SVG_STACKED_BARS,			/* one bar per category, series stacked */
} svg_chart_kind;

typedef struct svg_chart
{
	svg_chart_kind kind;
	const char *title;
	const char *y_label;
	const char *const *categories;	/* ncategories labels along x */
	int			ncategories;
	const char *const *series_names;	/* nseries names, in the legend */
	int			nseries;
	const double *values;		/* nseries x ncategories, series-major */
} svg_chart;

/* Writes the chart as one <svg> element; returns 0, or -1 for bad arguments. */
int			svg_write_chart(const svg_chart *chart, svg_emit_fn emit, void *ctx);

/* Writes text escaped for HTML content and attribute values (& < > " '). */
void		svg_write_escaped(const char *text, svg_emit_fn emit, void *ctx);

/* The smallest "nice" axis maximum (1, 2, 2.5 or 5 times a power of ten) >= value. */
double		svg_nice_max(double value);

#endif
