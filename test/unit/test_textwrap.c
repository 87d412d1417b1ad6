/*
 * Unit tests of textwrap (src/core/textwrap.c): the drawn width of text
 * (Calibri's widths: a digit 1, a space 0.446, a multibyte character 1),
 * and the lines a wrapped cell shows: words kept whole, a line filled
 * exactly, runs of spaces, a word wider than a line, empty text.
 * Digits make the widths easy to add up: "1111 2222" is 4 + 0.446 + 4.
 */
#include "textwrap.h"
#include "unit.h"

int
main(void)
{
	CHECK_CLOSE(text_draw_width("0123456789", 10), 10.0, 1e-12);
	CHECK_CLOSE(text_draw_width("abc", 3), 0.945 + 1.037 + 0.834, 1e-12);
	CHECK_CLOSE(text_draw_width("Mil", 3), 1.687 + 0.453 + 0.453, 1e-12);
	CHECK_CLOSE(text_draw_width("12×3", 5), 4.0, 1e-12);	/* × is two bytes, one character */
	CHECK_CLOSE(text_draw_width("12 3", 2), 2.0, 1e-12);

	CHECK(text_wrap_lines("", 10) == 1);
	CHECK(text_wrap_lines("12345", 10) == 1);
	CHECK(text_wrap_lines("1111 2222", 8.446) == 1);
	CHECK(text_wrap_lines("1111 2222", 8.4) == 2);
	/* words are never split to fill a line: "1111" "22222222" "33" */
	CHECK(text_wrap_lines("1111 22222222 33", 12.446) == 2);
	CHECK(text_wrap_lines("1111 22222222 33", 10.446) == 2);
	CHECK(text_wrap_lines("1111 22222222 33", 10.4) == 3);
	/* a run of spaces is as wide as its spaces; leading and trailing ones
	 * take no line of their own */
	CHECK(text_wrap_lines("1111   2222", 9.338) == 1);
	CHECK(text_wrap_lines("1111   2222", 9.3) == 2);
	CHECK(text_wrap_lines(" 1111 ", 4) == 1);
	/* a word wider than a line fills lines, and what is left starts the next */
	CHECK(text_wrap_lines("111111111111", 5) == 3);
	CHECK(text_wrap_lines("1111111111 22", 5) == 3);
	CHECK(text_wrap_lines("111111111 22", 5) == 3);
	/* what LibreOffice shows of an anomaly's explanation in a 40-wide column */
	CHECK(text_wrap_lines("top-up of 3916.000 KWD with fewer than 3 earlier top-ups of this user to compare", 38.5) == 2);
	CHECK(text_wrap_lines("amount 34.4× this user's usual debit of 30.75 QAR", 38.5) == 2);
	/* a width below a digit's is taken as a digit's (NaN too) */
	CHECK(text_wrap_lines("1 2", 0) == 2);
	CHECK(text_wrap_lines("1 2", NAN) == 2);
	return unit_summary("textwrap");
}
