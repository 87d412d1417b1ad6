/*
 * formula.c: the formula-injection rule of the reports (see formula.h).
 *
 * Spreadsheets skip leading blanks and line breaks before a formula sign and
 * accept the full-width signs as well; LibreOffice and Excel run "|" as DDE.
 */
#include "formula.h"

#include <string.h>

/* bytes of a blank or line break at p (0 when none) */
static int
blank_length(const unsigned char *p)
{
	if (*p != '\0' && strchr(" \t\r\n\v\f", *p) != NULL)
		return 1;
	if (p[0] == 0xC2 && p[1] == 0xA0)
		return 2;				/* U+00A0 no-break space */
	if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
		return 3;				/* U+3000 ideographic space */
	return 0;
}

bool
formula_like(const char *text)
{
	const unsigned char *p = (const unsigned char *) text;
	int			skip;

	if (*p == '\t' || *p == '\r')
		return true;
	while ((skip = blank_length(p)) > 0)
		p += skip;
	if (*p != '\0' && strchr("=+-@|", *p) != NULL)
		return true;
	/* U+FF0B, U+FF0D, U+FF1D, U+FF20 are EF BC 8B/8D/9D/A0; U+FF5C is EF BD 9C */
	if (p[0] == 0xEF && p[1] == 0xBC && (p[2] == 0x8B || p[2] == 0x8D || p[2] == 0x9D || p[2] == 0xA0))
		return true;
	return p[0] == 0xEF && p[1] == 0xBD && p[2] == 0x9C;
}
