/*
 * Unit tests of digit_group (src/core/digitgroup.c): thousands separators in
 * the integer part only, signs, fractions, text that is not a plain decimal,
 * a buffer too small.
 */
#include "digitgroup.h"
#include "unit.h"

static const char *
grouped(const char *text)
{
	static char out[128];

	return digit_group(text, out, sizeof(out)) == (size_t) -1 ? "(too small)" : out;
}

int
main(void)
{
	char		small[8];

	CHECK_STR(grouped("0"), "0");
	CHECK_STR(grouped("999"), "999");
	CHECK_STR(grouped("1000"), "1,000");
	CHECK_STR(grouped("3916.000"), "3,916.000");
	CHECK_STR(grouped("-1234567.890"), "-1,234,567.890");
	CHECK_STR(grouped("+100000"), "+100,000");
	CHECK_STR(grouped("12345678901234567890"), "12,345,678,901,234,567,890");
	/* the fraction is never grouped */
	CHECK_STR(grouped("1.0000000001"), "1.0000000001");
	CHECK_STR(grouped("-0.5"), "-0.5");
	/* not a plain decimal: as it is */
	CHECK_STR(grouped("NaN"), "NaN");
	CHECK_STR(grouped("Infinity"), "Infinity");
	CHECK_STR(grouped("1e5"), "1e5");
	CHECK_STR(grouped(".5"), ".5");
	CHECK_STR(grouped("-"), "-");
	CHECK_STR(grouped(""), "");
	CHECK_STR(grouped("12a"), "12a");
	/* DIGIT_GROUP_SIZE is enough, one byte less is not */
	CHECK(digit_group("-1234567", small, sizeof(small)) == (size_t) -1 && small[0] == '\0');
	{
		char		exact[DIGIT_GROUP_SIZE(8)];

		CHECK(digit_group("-1234567", exact, sizeof(exact)) == 10);
		CHECK_STR(exact, "-1,234,567");
		CHECK(digit_group("-1234567", exact, 11) == 10);
		CHECK(digit_group("-1234567", exact, 10) == (size_t) -1);
	}
	CHECK(digit_group("1", small, 0) == (size_t) -1);
	return unit_summary("digitgroup");
}
