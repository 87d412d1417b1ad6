/*
 * Unit tests of the formula-injection rule (src/core/formula.c): what the CSV
 * reports and the workbook prefix with an apostrophe, and what they leave.
 */
#include "formula.h"
#include "unit.h"

int
main(void)
{
	static const char *const formulas[] = {
		"=1+1", "+1", "-1", "@SUM(A1)", "|calc", "\t", "\tTAB", "\r", "\rx",
		"  =1+1", "\n=1+1", "\r\n@x", " \t\v\f-1", "\xc2\xa0=1", "\xe3\x80\x80=1",
		"\xef\xbc\x9d" "1+1", "\xef\xbc\x8b" "1", "\xef\xbc\x8d" "1", "\xef\xbc\xa0" "x",
		"\xef\xbd\x9c" "x", " \xef\xbd\x9c" "x", "\xe3\x80\x80\xef\xbc\x9d", "=",
	};
	static const char *const plain[] = {
		"", "a=b", "plain text", "  spaced", "\n", "\nline", " ", "PAYMENT", "1.5",
		"\xef\xbc\x91", "\xc2\xa0x", "\xef\xbc", "\xef", "\xc2", "\xe3\x80", "x|y", "(=1)",
	};
	size_t		i;

	for (i = 0; i < sizeof(formulas) / sizeof(formulas[0]); i++)
		if (!formula_like(formulas[i]))
		{
			CHECK(!"formula not recognized");
			fprintf(stderr, "  text %zu\n", i);
		}
		else
			CHECK(1);
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (formula_like(plain[i]))
		{
			CHECK(!"plain text taken for a formula");
			fprintf(stderr, "  text %zu\n", i);
		}
		else
			CHECK(1);
	return unit_summary("formula");
}
