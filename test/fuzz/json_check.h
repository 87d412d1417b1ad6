/*
 * json_check.h: an independent strict JSON validator for the parser's tests
 * (fuzz target and unit test).  Strict means what PostgreSQL's jsonb_in
 * accepts: RFC 8259 grammar, valid UTF-8, no \u0000, paired surrogates.
 * Written apart from the parser on purpose, so that it checks the parser
 * rather than repeating its mistakes.
 */
#ifndef CALO_JSON_CHECK_H
#define CALO_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jc_state
{
	const unsigned char *p;
	const unsigned char *end;
} jc_state;

static bool jc_value(jc_state *s, int depth);

static void
jc_ws(jc_state *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
jc_hex4(const unsigned char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			c = p[i],
					d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static bool
jc_string(jc_state *s)
{
	s->p++;
	while (s->p < s->end)
	{
		unsigned	c = *s->p;

		if (c == '"')
		{
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\')
		{
			if (s->end - s->p < 2)
				return false;
			c = s->p[1];
			if (c == 'u')
			{
				int			v;

				if (s->end - s->p < 6 || (v = jc_hex4(s->p + 2)) < 0 || v == 0)
					return false;
				s->p += 6;
				if (v >= 0xDC00 && v <= 0xDFFF)
					return false;
				if (v >= 0xD800 && v <= 0xDBFF)
				{
					int			lo;

					if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
						(lo = jc_hex4(s->p + 2)) < 0xDC00 || lo > 0xDFFF)
						return false;
					s->p += 6;
				}
				continue;
			}
			if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' && c != 't')
				return false;
			s->p += 2;
			continue;
		}
		if (c < 0x80)
		{
			s->p++;
			continue;
		}
		{
			size_t		n = (size_t) (s->end - s->p);
			const unsigned char *u = s->p;

			if (c >= 0xC2 && c <= 0xDF && n >= 2 && (u[1] & 0xC0) == 0x80)
				s->p += 2;
			else if (c >= 0xE0 && c <= 0xEF && n >= 3 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80 &&
					 !(c == 0xE0 && u[1] < 0xA0) && !(c == 0xED && u[1] >= 0xA0))
				s->p += 3;
			else if (c >= 0xF0 && c <= 0xF4 && n >= 4 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80 &&
					 (u[3] & 0xC0) == 0x80 && !(c == 0xF0 && u[1] < 0x90) && !(c == 0xF4 && u[1] >= 0x90))
				s->p += 4;
			else
				return false;
		}
	}
	return false;
}

static bool
jc_digits(jc_state *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

static bool
jc_number(jc_state *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (!jc_digits(s))
		return false;
	if (s->p < s->end && *s->p == '.')
	{
		s->p++;
		if (!jc_digits(s))
			return false;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
	{
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!jc_digits(s))
			return false;
	}
	return true;
}

static bool
jc_word(jc_state *s, const char *w)
{
	while (*w)
	{
		if (s->p >= s->end || *s->p != (unsigned char) *w)
			return false;
		s->p++, w++;
	}
	return true;
}

static bool
jc_value(jc_state *s, int depth)
{
	if (depth > 200)
		return false;
	jc_ws(s);
	if (s->p >= s->end)
		return false;
	switch (*s->p)
	{
		case '{':
		case '[':
			{
				unsigned char close = *s->p == '{' ? '}' : ']';

				s->p++;
				jc_ws(s);
				if (s->p < s->end && *s->p == close)
				{
					s->p++;
					return true;
				}
				for (;;)
				{
					jc_ws(s);
					if (close == '}')
					{
						if (s->p >= s->end || *s->p != '"' || !jc_string(s))
							return false;
						jc_ws(s);
						if (s->p >= s->end || *s->p != ':')
							return false;
						s->p++;
					}
					if (!jc_value(s, depth + 1))
						return false;
					jc_ws(s);
					if (s->p >= s->end)
						return false;
					if (*s->p == close)
					{
						s->p++;
						return true;
					}
					if (*s->p != ',')
						return false;
					s->p++;
				}
			}
		case '"':
			return jc_string(s);
		case 't':
			return jc_word(s, "true");
		case 'f':
			return jc_word(s, "false");
		case 'n':
			return jc_word(s, "null");
		default:
			return jc_number(s);
	}
}

static inline bool
json_check(const char *text, size_t len)
{
	jc_state	s = {(const unsigned char *) text, (const unsigned char *) text + len};

	if (!jc_value(&s, 0))
		return false;
	jc_ws(&s);
	return s.p == s.end;
}

#endif
