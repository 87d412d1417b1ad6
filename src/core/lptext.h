/*
 * lptext.h: characters, lines and UTF-8 of the log parser (plain C core),
 * shared by its grammars (jsonstrict.c, nodelit.c, lpjson.c) and the event
 * reader (lpevent.c, lpkind.c, logparse.c).  The small tests are inline:
 * they run once per input byte.
 *
 * lptext_decode_u() is the one decoder of \u escapes: strict JSON, Node
 * object literals and the token reader each choose a syntax and decide what
 * a code point of 0 or a lone surrogate means to them.
 */
#ifndef CALO_LPTEXT_H
#define CALO_LPTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool
lptext_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
lptext_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* the first CR or LF in [s, e), or e: where a line ends (LF, CR LF or a lone CR) */
static inline const char *
lptext_line_end(const char *s, const char *e)
{
	while (s < e && *s != '\n' && *s != '\r')
		s++;
	return s;
}

/* the start of the line after the line end at le (le < e) */
static inline const char *
lptext_next_line(const char *le, const char *e)
{
	return (*le == '\r' && le + 1 < e && le[1] == '\n') ? le + 2 : le + 1;
}

static inline bool
lptext_is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || lptext_is_digit(c) || c == '_' || c == '$';
}

static inline int
lptext_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* value of n hex digits at s, or -1 */
static inline long
lptext_hex_run(const char *s, int n)
{
	long		v = 0;

	for (int i = 0; i < n; i++)
	{
		int			h = lptext_hex_value(s[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/*
 * The first byte at or after s that is '"', '\\', a control character or,
 * when ascii_only, not ASCII; end when there is none.  Eight bytes at a time
 * while none is (the bit tricks have no false negatives; the byte loop decides).
 */
static inline const char *
lptext_skip_plain(const char *s, const char *end, bool ascii_only)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;

	for (;;)
	{
		const char *stop;

		while (end - s >= 8)
		{
			uint64_t	x,
						q,
						b;

			memcpy(&x, s, 8);
			q = x ^ (ones * '"');
			b = x ^ (ones * '\\');
			/* a zero byte in q or b, a byte below 0x20 in x, or (ascii_only) a high bit */
			if ((((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | (ascii_only ? x : 0)) & highs)
				break;
			s += 8;
		}
		stop = end - s > 8 ? s + 8 : end;
		while (s < stop && (unsigned char) *s >= 0x20 && *s != '"' && *s != '\\' &&
			   !(ascii_only && (unsigned char) *s >= 0x80))
			s++;
		if (s < stop || s == end)
			return s;
	}
}

static inline bool
lptext_starts_with(const char *s, const char *e, const char *prefix)
{
	size_t		k = strlen(prefix);

	return (size_t) (e - s) >= k && memcmp(s, prefix, k) == 0;
}

static inline const char *
lptext_trim_end(const char *s, const char *e)
{
	while (e > s && lptext_is_space(e[-1]))
		e--;
	return e;
}

/* length (1..4) of the valid UTF-8 sequence at s, or 0 when it is not one */
size_t		lptext_utf8_length(const unsigned char *s, size_t n);

/* needle occurs in s[0..n) */
bool		lptext_contains(const char *s, size_t n, const char *needle);

/* the UTF-8 bytes of code point cp (below 0x110000) at out; returns their count (1..4) */
static inline size_t
lptext_utf8_encode(unsigned long cp, char *out)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char) (0xF0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

/* which \u escapes a grammar has */
typedef enum lptext_u_syntax
{
	LPTEXT_U_SINGLE,			/* \uXXXX, one escape: never a pair (the token reader) */
	LPTEXT_U_JSON,				/* \uXXXX, a high surrogate joined with a following \uXXXX low one */
	LPTEXT_U_JAVASCRIPT			/* JSON's, and \u{X...} up to U+10FFFF */
} lptext_u_syntax;

typedef enum lptext_u_status
{
	LPTEXT_U_OK,
	LPTEXT_U_TRUNCATED,			/* the text ends inside the escape */
	LPTEXT_U_BAD				/* not hex digits, or \u{} empty or beyond U+10FFFF */
} lptext_u_status;

/*
 * Decodes the \u escape at s (s[0] == '\\', s[1] == 'u'; the text ends at
 * end) into *cp and sets *next to the byte after it.  *cp may be 0 or a lone
 * surrogate: what those mean is the caller's rule.
 */
lptext_u_status lptext_decode_u(const char *s, const char *end, lptext_u_syntax syntax,
								long *cp, const char **next);

#endif							/* CALO_LPTEXT_H */
