/*
 * svgchart.c: the dashboard's inline SVG charts (see svgchart.h).
 */
#include "svgchart.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define WIDTH 560
#define HEIGHT 300
#define LEFT 70
#define RIGHT 20
#define TOP 36
#define BOTTOM 74
#define GRID_LINES 4
#define MAX_X_LABELS 8

static const char *const palette[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
};

static void
emit_str(svg_emit_fn emit, void *ctx, const char *text)
{
	emit(ctx, text, strlen(text));
}

static void emit_fmt(svg_emit_fn emit, void *ctx, const char *fmt,...) __attribute__((format(printf, 3, 4)));

static void
emit_fmt(svg_emit_fn emit, void *ctx, const char *fmt,...)
{
	char		buf[256];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	emit(ctx, buf, (size_t) n < sizeof(buf) ? (size_t) n : sizeof(buf) - 1);
}

void
svg_write_escaped(const char *text, svg_emit_fn emit, void *ctx)
{
	const char *run = text;
	const char *p;

	for (p = text; *p; p++)
	{
		const char *entity = NULL;

		switch (*p)
		{
			case '&':
				entity = "&amp;";
				break;
			case '<':
				entity = "&lt;";
				break;
			case '>':
				entity = "&gt;";
				break;
			case '"':
				entity = "&quot;";
				break;
			case '\'':
				entity = "&#39;";
				break;
		}
		if (entity == NULL)
			continue;
		if (p > run)
			emit(ctx, run, p - run);
		emit_str(emit, ctx, entity);
		run = p + 1;
	}
	if (p > run)
		emit(ctx, run, p - run);
}

double
svg_nice_max(double value)
{
	static const double steps[] = {1.0, 2.0, 2.5, 5.0, 10.0};
	double		magnitude;
	size_t		i;

	if (!(value > 0.0) || !isfinite(value))
		return 1.0;
	magnitude = pow(10.0, floor(log10(value)));
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (steps[i] * magnitude >= value * (1.0 - 1e-12))
			return steps[i] * magnitude;
	return 10.0 * magnitude;
}

/* An axis number without needless decimals: 2500, 0.5, 1.25e+06. */
static void
format_number(char *buf, size_t size, double v)
{
	snprintf(buf, size, "%.6g", v);
}

int
svg_write_chart(const svg_chart *c, svg_emit_fn emit, void *ctx)
{
	double		lo = 0.0;
	double		hi = 0.0;
	double		span;
	double		plot_w = WIDTH - LEFT - RIGHT;
	double		plot_h = HEIGHT - TOP - BOTTOM;
	double		step;
	int			label_every;
	int			i;
	int			s;

	if (c == NULL || c->ncategories < 0 || c->nseries < 0 ||
		(c->ncategories > 0 && c->nseries > 0 && (c->values == NULL || c->categories == NULL)) ||
		(c->nseries > 0 && c->series_names == NULL))
		return -1;

	/* the value range: stacked bars add up per category */
	for (i = 0; i < c->ncategories; i++)
	{
		double		pos = 0.0;
		double		neg = 0.0;

		for (s = 0; s < c->nseries; s++)
		{
			double		v = c->values[(size_t) s * c->ncategories + i];

			if (!isfinite(v))
				continue;
			if (c->kind == SVG_STACKED_BARS)
			{
				if (v >= 0)
					pos += v;
				else
					neg += v;
			}
			else
			{
				pos = v > pos ? v : pos;
				neg = v < neg ? v : neg;
			}
		}
		hi = pos > hi ? pos : hi;
		lo = neg < lo ? neg : lo;
	}
	hi = svg_nice_max(hi);
	lo = lo < 0 ? -svg_nice_max(-lo) : 0.0;
	span = hi - lo;

	emit_fmt(emit, ctx, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 %d %d\" "
			 "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"", WIDTH, HEIGHT, WIDTH, HEIGHT);
	svg_write_escaped(c->title ? c->title : "", emit, ctx);
	emit_str(emit, ctx, "\">\n<title>");
	svg_write_escaped(c->title ? c->title : "", emit, ctx);
	emit_fmt(emit, ctx, "</title>\n<text x=\"%d\" y=\"22\" text-anchor=\"middle\" class=\"chart-title\">", WIDTH / 2);
	svg_write_escaped(c->title ? c->title : "", emit, ctx);
	emit_str(emit, ctx, "</text>\n");
	if (c->y_label)
	{
		emit_fmt(emit, ctx, "<text transform=\"translate(14 %d) rotate(-90)\" text-anchor=\"middle\" class=\"axis-label\">",
				 TOP + (int) (plot_h / 2));
		svg_write_escaped(c->y_label, emit, ctx);
		emit_str(emit, ctx, "</text>\n");
	}

	/* grid and y labels */
	for (i = 0; i <= GRID_LINES; i++)
	{
		double		v = lo + span * i / GRID_LINES;
		double		y = TOP + plot_h - plot_h * i / GRID_LINES;
		char		num[32];

		format_number(num, sizeof(num), v);
		emit_fmt(emit, ctx, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
				 "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" class=\"tick\">%s</text>\n",
				 LEFT, y, WIDTH - RIGHT, y, LEFT - 6, y + 4, num);
	}
	emit_fmt(emit, ctx, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n",
			 LEFT, TOP + (int) plot_h, WIDTH - RIGHT, TOP + (int) plot_h);

	if (c->ncategories == 0)
	{
		emit_fmt(emit, ctx, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"empty\">no data in the period</text>\n",
				 LEFT + (int) (plot_w / 2), TOP + (int) (plot_h / 2));
	}

	/* x labels, at most MAX_X_LABELS of them */
	step = c->ncategories > 0 ? plot_w / c->ncategories : plot_w;
	label_every = c->ncategories > MAX_X_LABELS ? (c->ncategories + MAX_X_LABELS - 1) / MAX_X_LABELS : 1;
	for (i = 0; i < c->ncategories; i += label_every)
	{
		double		x = LEFT + step * (i + 0.5);

		emit_fmt(emit, ctx, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"tick\">", x, TOP + (int) plot_h + 16);
		svg_write_escaped(c->categories[i] ? c->categories[i] : "", emit, ctx);
		emit_str(emit, ctx, "</text>\n");
	}

	/* the data */
	for (s = 0; s < c->nseries; s++)
	{
		const char *color = palette[s % (int) (sizeof(palette) / sizeof(palette[0]))];

		if (c->kind == SVG_LINES)
		{
			emit_fmt(emit, ctx, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" class=\"series\" points=\"", color);
			for (i = 0; i < c->ncategories; i++)
			{
				double		v = c->values[(size_t) s * c->ncategories + i];
				double		y = TOP + plot_h - plot_h * ((isfinite(v) ? v : 0.0) - lo) / span;

				emit_fmt(emit, ctx, "%s%.1f,%.1f", i ? " " : "", LEFT + step * (i + 0.5), y);
			}
			emit_str(emit, ctx, "\"/>\n");
		}
		else
		{
			for (i = 0; i < c->ncategories; i++)
			{
				double		v = c->values[(size_t) s * c->ncategories + i];
				double		below = 0.0;
				int			k;
				double		y0;
				double		y1;

				if (!isfinite(v) || v == 0.0)
					continue;
				for (k = 0; k < s; k++)
				{
					double		w = c->values[(size_t) k * c->ncategories + i];

					if (isfinite(w) && (w > 0) == (v > 0))
						below += w;
				}
				y0 = TOP + plot_h - plot_h * (below - lo) / span;
				y1 = TOP + plot_h - plot_h * (below + v - lo) / span;
				emit_fmt(emit, ctx, "<rect class=\"series\" fill=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
						 color, LEFT + step * i + step * 0.15, y1 < y0 ? y1 : y0, step * 0.7, fabs(y0 - y1));
			}
		}
	}

	/* legend */
	for (s = 0; s < c->nseries; s++)
	{
		int			x = LEFT + (s % 4) * 120;
		int			y = HEIGHT - 30 + (s / 4) * 16;

		emit_fmt(emit, ctx, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
				 "<text x=\"%d\" y=\"%d\" class=\"legend\">",
				 x, y - 9, palette[s % (int) (sizeof(palette) / sizeof(palette[0]))], x + 14, y);
		svg_write_escaped(c->series_names[s] ? c->series_names[s] : "", emit, ctx);
		emit_str(emit, ctx, "</text>\n");
	}
	emit_str(emit, ctx, "</svg>\n");
	return 0;
}
