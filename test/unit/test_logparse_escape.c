/*
 * Unit tests of lptext_decode_u(), the one decoder of \u escapes the log
 * parser's grammars share (src/core/lptext.h): each syntax, surrogate pairs,
 * \u{...}, and where it stops.  test_logparse.c tests the grammars that use it.
 */
#include "lptext.h"
#include "unit.h"

/* decodes the escape at the start of text; *used: the bytes it took */
static lptext_u_status
decode(const char *text, lptext_u_syntax syntax, long *cp, size_t *used)
{
	const char *next = NULL;
	lptext_u_status st = lptext_decode_u(text, text + strlen(text), syntax, cp, &next);

	*used = st == LPTEXT_U_OK ? (size_t) (next - text) : 0;
	return st;
}

static void
test_single_escape(void)
{
	long		cp = -1;
	size_t		used;

	for (int s = LPTEXT_U_SINGLE; s <= LPTEXT_U_JAVASCRIPT; s++)
	{
		CHECK(decode("\\u00e9", (lptext_u_syntax) s, &cp, &used) == LPTEXT_U_OK);
		CHECK(cp == 0xE9 && used == 6);
		CHECK(decode("\\u20ACx", (lptext_u_syntax) s, &cp, &used) == LPTEXT_U_OK);
		CHECK(cp == 0x20AC && used == 6);
		/* 0 is decoded: what it means is the grammar's rule */
		CHECK(decode("\\u0000", (lptext_u_syntax) s, &cp, &used) == LPTEXT_U_OK);
		CHECK(cp == 0 && used == 6);
		CHECK(decode("\\u00", (lptext_u_syntax) s, &cp, &used) == LPTEXT_U_TRUNCATED);
		CHECK(decode("\\u", (lptext_u_syntax) s, &cp, &used) == LPTEXT_U_TRUNCATED);
		CHECK(decode("\\u00g9", (lptext_u_syntax) s, &cp, &used) == LPTEXT_U_BAD);
		CHECK(decode("\\u+0e9", (lptext_u_syntax) s, &cp, &used) == LPTEXT_U_BAD);
	}
}

static void
test_surrogate_pairs(void)
{
	long		cp = -1;
	size_t		used;

	/* JSON and JavaScript join a high and a low surrogate into one code point */
	CHECK(decode("\\ud83d\\ude00", LPTEXT_U_JSON, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0x1F600 && used == 12);
	CHECK(decode("\\uD83D\\uDE00", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0x1F600 && used == 12);
	/* the token reader's syntax never joins: bodies hold no pairs */
	CHECK(decode("\\ud83d\\ude00", LPTEXT_U_SINGLE, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0xD83D && used == 6);
	/* a lone surrogate is returned as it is, the escape after it left alone */
	CHECK(decode("\\ud83d", LPTEXT_U_JSON, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0xD83D && used == 6);
	CHECK(decode("\\ud83d\\u0041", LPTEXT_U_JSON, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0xD83D && used == 6);
	CHECK(decode("\\ud83d\\ud83d", LPTEXT_U_JSON, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0xD83D && used == 6);
	CHECK(decode("\\ude00\\ud83d", LPTEXT_U_JSON, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0xDE00 && used == 6);
	/* a second escape cut short or not hex is no low half: the first stands alone */
	CHECK(decode("\\ud83d\\ude0", LPTEXT_U_JSON, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0xD83D && used == 6);
	CHECK(decode("\\ud83d\\uzzzz", LPTEXT_U_JSON, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0xD83D && used == 6);
}

static void
test_braces(void)
{
	long		cp = -1;
	size_t		used;

	CHECK(decode("\\u{1F600}", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0x1F600 && used == 9);
	CHECK(decode("\\u{41}z", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0x41 && used == 6);
	CHECK(decode("\\u{0000000041}", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0x41 && used == 14);
	CHECK(decode("\\u{10FFFF}", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_OK);
	CHECK(cp == 0x10FFFF);
	CHECK(decode("\\u{110000}", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_BAD);
	CHECK(decode("\\u{FFFFFFFFFFFFFFFFFFFF}", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_BAD);
	CHECK(decode("\\u{}", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_BAD);
	CHECK(decode("\\u{41", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_TRUNCATED);
	CHECK(decode("\\u{4g}", LPTEXT_U_JAVASCRIPT, &cp, &used) == LPTEXT_U_BAD);
	/* braces are JavaScript's only: in JSON "\u{41}" is no escape */
	CHECK(decode("\\u{41}", LPTEXT_U_JSON, &cp, &used) == LPTEXT_U_BAD);
	CHECK(decode("\\u{41}", LPTEXT_U_SINGLE, &cp, &used) == LPTEXT_U_BAD);
}

static void
test_reads_within_bounds(void)
{
	/* the end given, not the NUL, bounds the escape */
	const char	text[] = "\\u00e9\\udc00";
	const char *next = NULL;
	long		cp = -1;

	CHECK(lptext_decode_u(text, text + 5, LPTEXT_U_JSON, &cp, &next) == LPTEXT_U_TRUNCATED);
	CHECK(lptext_decode_u(text, text + 6, LPTEXT_U_JSON, &cp, &next) == LPTEXT_U_OK);
	CHECK(cp == 0xE9 && next == text + 6);
	/* a low half that does not fit before the end is not joined */
	{
		const char	pair[] = "\\ud83d\\ude00";

		CHECK(lptext_decode_u(pair, pair + 11, LPTEXT_U_JSON, &cp, &next) == LPTEXT_U_OK);
		CHECK(cp == 0xD83D && next == pair + 6);
	}
}

static void
test_utf8_encode(void)
{
	char		out[4];

	CHECK(lptext_utf8_encode(0x41, out) == 1 && out[0] == 'A');
	CHECK(lptext_utf8_encode(0xE9, out) == 2 && memcmp(out, "\xC3\xA9", 2) == 0);
	CHECK(lptext_utf8_encode(0x20AC, out) == 3 && memcmp(out, "\xE2\x82\xAC", 3) == 0);
	CHECK(lptext_utf8_encode(0x1F600, out) == 4 && memcmp(out, "\xF0\x9F\x98\x80", 4) == 0);
	/* every encoding is what lptext_utf8_length() reads back as one character */
	for (unsigned long cp = 1; cp < 0x110000; cp += (cp < 0x800 ? 1 : 97))
	{
		size_t		n;

		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		n = lptext_utf8_encode(cp, out);
		CHECK(lptext_utf8_length((const unsigned char *) out, n) == n);
	}
}

int
main(void)
{
	test_single_escape();
	test_surrogate_pairs();
	test_braces();
	test_reads_within_bounds();
	test_utf8_encode();
	return unit_summary("logparse_escape");
}
