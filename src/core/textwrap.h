/*
 * textwrap.h: how wide a spreadsheet draws a text and on how many lines a
 * wrapped cell breaks it, so that the workbook's columns and rows are made
 * wide and tall enough to show every cell whole, without empty lines.
 * Widths are in Excel's unit, the width of a digit. Plain C, no PostgreSQL
 * header; text is UTF-8.
 */
#ifndef TEXTWRAP_H
#define TEXTWRAP_H

#include <stddef.h>

/*
 * The width of len bytes of text as Calibri (and Carlito) draws it: each
 * ASCII character at its own width (a digit 1.0, a space 0.446, "M" 1.687),
 * any other character 1.0.
 */
extern double text_draw_width(const char *text, size_t len);

/*
 * The lines a cell line_width wide shows text on when it wraps it at spaces,
 * as a spreadsheet does: each line takes words while they fit; a word wider
 * than a whole line is broken across as many lines as it needs. At least 1;
 * a line_width below 1 (a digit) counts as 1.
 */
extern int	text_wrap_lines(const char *text, double line_width);

#endif
