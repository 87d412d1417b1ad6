/*
 * lptext.c: characters, lines and UTF-8 of the log parser (plain C core);
 * see lptext.h.
 */
#include "lptext.h"

size_t
lptext_utf8_length(const unsigned char *s, size_t n)
{
	unsigned	c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF)
	{
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
			return 0;			/* overlong form or UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4)
	{
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
			return 0;
		if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
			return 0;			/* overlong form or beyond U+10FFFF */
		return 4;
	}
	return 0;
}

bool
lptext_contains(const char *s, size_t n, const char *needle)
{
	size_t		k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
			return true;
	return false;
}

lptext_u_status
lptext_decode_u(const char *s, const char *end, lptext_u_syntax syntax, long *cp, const char **next)
{
	long		v;

	if (syntax == LPTEXT_U_JAVASCRIPT && end - s >= 3 && s[2] == '{')
	{
		const char *q = s + 3;

		v = 0;
		while (q < end && lptext_hex_value(*q) >= 0 && v <= 0x10FFFF)
			v = v * 16 + lptext_hex_value(*q++);
		if (q >= end)
			return LPTEXT_U_TRUNCATED;
		if (*q != '}' || q == s + 3 || v > 0x10FFFF)
			return LPTEXT_U_BAD;
		*cp = v;
		*next = q + 1;
		return LPTEXT_U_OK;
	}
	if (end - s < 6)
		return LPTEXT_U_TRUNCATED;
	v = lptext_hex_run(s + 2, 4);
	if (v < 0)
		return LPTEXT_U_BAD;
	s += 6;
	if (syntax != LPTEXT_U_SINGLE && v >= 0xD800 && v <= 0xDBFF && end - s >= 6 && s[0] == '\\' && s[1] == 'u')
	{
		long		lo = lptext_hex_run(s + 2, 4);

		if (lo >= 0xDC00 && lo <= 0xDFFF)
		{
			v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
			s += 6;
		}
	}
	*cp = v;
	*next = s;
	return LPTEXT_U_OK;
}
