/*
 * textwrap.c: see textwrap.h.
 */
#include "textwrap.h"

/*
 * The advance widths of Carlito Regular, the metric twin of Calibri (the
 * workbook's font), divided by its digit's, for ASCII 32 to 126; measured
 * from the font's hmtx table (/usr/share/fonts/truetype/crosextra).
 */
static const double ascii_width[95] = {
	0.446, 0.643, 0.791, 0.983, 1.000, 1.410, 1.346, 0.435,	/*  !"#$%&' */
	0.598, 0.598, 0.983, 0.983, 0.492, 0.604, 0.498, 0.762,	/* ()*+,-./ */
	1.000, 1.000, 1.000, 1.000, 1.000, 1.000, 1.000, 1.000,	/* 01234567 */
	1.000, 1.000, 0.528, 0.528, 0.983, 0.983, 0.983, 0.914,	/* 89:;<=>? */
	1.764, 1.142, 1.073, 1.052, 1.214, 0.963, 0.907, 1.245,	/* @ABCDEFG */
	1.229, 0.497, 0.629, 1.025, 0.829, 1.687, 1.274, 1.306,	/* HIJKLMNO */
	1.019, 1.328, 1.071, 0.907, 0.961, 1.266, 1.119, 1.755,	/* PQRSTUVW */
	1.024, 0.961, 0.924, 0.605, 0.762, 0.605, 0.983, 0.983,	/* XYZ[\]^_ */
	0.574, 0.945, 1.037, 0.834, 1.037, 0.982, 0.602, 0.929,	/* `abcdefg */
	1.037, 0.453, 0.472, 0.897, 0.453, 1.576, 1.037, 1.040,	/* hijklmno */
	1.037, 1.037, 0.688, 0.772, 0.661, 1.037, 0.891, 1.410,	/* pqrstuvw */
	0.855, 0.893, 0.779, 0.620, 0.908, 0.620, 0.983,	/* xyz{|}~ */
};

/* a character outside ASCII: as wide as a digit, wider than most letters */
#define OTHER_CHAR_WIDTH 1.0

/* bytes of the UTF-8 character that starts with byte c (1 for a stray byte) */
static size_t
utf8_char_bytes(unsigned char c)
{
	if (c >= 0xF0)
		return 4;
	if (c >= 0xE0)
		return 3;
	if (c >= 0xC0)
		return 2;
	return 1;
}

double
text_draw_width(const char *text, size_t len)
{
	double		width = 0;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = (unsigned char) text[i];

		width += (c >= 32 && c < 127) ? ascii_width[c - 32] : OTHER_CHAR_WIDTH;
		i += utf8_char_bytes(c);
	}
	return width;
}

int
text_wrap_lines(const char *text, double line_width)
{
	const double space = text_draw_width(" ", 1);
	int			lines = 1;
	double		used = 0;		/* width taken on the current line */
	const char *p = text;

	/* a cell narrower than a digit still shows a character a line */
	if (!(line_width >= 1.0))
		line_width = 1.0;
	while (*p)
	{
		const char *word = p;
		double		w;

		while (*p && *p != ' ')
			p++;
		w = text_draw_width(word, (size_t) (p - word));
		if (w == 0 && used > 0)
			used += space;		/* a run of spaces is as wide as its spaces */
		else if (w > 0)
		{
			if (used > 0 && used + space + w <= line_width)
				used += space + w;
			else
			{
				if (used > 0)
					lines++;
				/* a word wider than a line fills whole lines, then goes on */
				while (w > line_width)
				{
					lines++;
					w -= line_width;
				}
				used = w;
			}
		}
		if (*p == ' ')
			p++;
	}
	return lines;
}
