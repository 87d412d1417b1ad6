/*
 * lpjson.c: the token reader of bodies, lp_json_reader_init() /
 * lp_json_next() / lp_json_unescape() of logparse.h (plain C core): exactly
 * compact strict JSON, so that the glue builds jsonb without lexing a body
 * again.
 */
#include "logparse.h"
#include "lpnum.h"
#include "lptext.h"

#include <string.h>

enum
{
	RS_VALUE,					/* a value */
	RS_VALUE_OR_CLOSE,			/* a value or ']' (after '[') */
	RS_KEY,						/* a member name (after ',') */
	RS_KEY_OR_CLOSE,			/* a member name or '}' (after '{') */
	RS_AFTER_VALUE,				/* ',' or the close of the container, or the end */
	RS_ERROR
};

void
lp_json_reader_init(lp_json_reader *r, const char *json, size_t len)
{
	r->p = json;
	r->end = json + len;
	r->state = RS_VALUE;
	r->depth = 0;
}

static lp_json_type
reader_fail(lp_json_reader *r, lp_json_token *tok)
{
	r->state = RS_ERROR;
	tok->type = LP_JSON_ERROR;
	return LP_JSON_ERROR;
}

/* the string at r->p (its opening quote) into tok; false when it is not one the reader accepts */
static bool
reader_string(lp_json_reader *r, lp_json_token *tok)
{
	const char *s = r->p + 1;
	const char *end = r->end;

	tok->ptr = s;
	tok->escaped = false;
	for (;;)
	{
		s = lptext_skip_plain(s, end, false);
		if (s >= end || (unsigned char) *s < 0x20)
			return false;
		if (*s == '"')
			break;
		/* a backslash */
		if (end - s < 2)
			return false;
		tok->escaped = true;
		switch (s[1])
		{
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				s += 2;
				break;
			case 'u':
				{
					long		cp;

					if (lptext_decode_u(s, end, LPTEXT_U_SINGLE, &cp, &s) != LPTEXT_U_OK ||
						cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
						return false;
					break;
				}
			default:
				return false;
		}
	}
	tok->len = (size_t) (s - tok->ptr);
	r->p = s + 1;
	return true;
}

lp_json_type
lp_json_next(lp_json_reader *r, lp_json_token *tok)
{
	const char *s;
	char		c;

	tok->ptr = NULL;
	tok->len = 0;
	tok->escaped = false;
	if (r->state == RS_ERROR)
		return reader_fail(r, tok);
	if (r->state == RS_AFTER_VALUE)
	{
		if (r->depth == 0)
		{
			if (r->p != r->end)
				return reader_fail(r, tok);
			tok->type = LP_JSON_END;
			return LP_JSON_END;
		}
		if (r->p >= r->end)
			return reader_fail(r, tok);
		c = *r->p;
		if (c == ',')
		{
			r->p++;
			r->state = r->open[r->depth - 1] == '{' ? RS_KEY : RS_VALUE;
		}
		else if (c == (r->open[r->depth - 1] == '{' ? '}' : ']'))
		{
			r->p++;
			r->depth--;
			tok->type = c == '}' ? LP_JSON_END_OBJECT : LP_JSON_END_ARRAY;
			return tok->type;
		}
		else
			return reader_fail(r, tok);
	}
	if (r->p >= r->end)
		return reader_fail(r, tok);
	s = r->p;
	c = *s;
	if ((r->state == RS_KEY_OR_CLOSE && c == '}') || (r->state == RS_VALUE_OR_CLOSE && c == ']'))
	{
		r->p++;
		r->depth--;
		r->state = RS_AFTER_VALUE;
		tok->type = c == '}' ? LP_JSON_END_OBJECT : LP_JSON_END_ARRAY;
		return tok->type;
	}
	if (r->state == RS_KEY || r->state == RS_KEY_OR_CLOSE)
	{
		if (c != '"' || !reader_string(r, tok) || r->p >= r->end || *r->p != ':')
			return reader_fail(r, tok);
		r->p++;
		r->state = RS_VALUE;
		tok->type = LP_JSON_KEY;
		return LP_JSON_KEY;
	}
	/* a value */
	r->state = RS_AFTER_VALUE;
	switch (c)
	{
		case '{':
		case '[':
			if (r->depth >= LP_JSON_READER_DEPTH)
				return reader_fail(r, tok);
			r->open[r->depth++] = c;
			r->p++;
			r->state = c == '{' ? RS_KEY_OR_CLOSE : RS_VALUE_OR_CLOSE;
			tok->type = c == '{' ? LP_JSON_BEGIN_OBJECT : LP_JSON_BEGIN_ARRAY;
			return tok->type;
		case '"':
			if (!reader_string(r, tok))
				return reader_fail(r, tok);
			tok->type = LP_JSON_STRING;
			return LP_JSON_STRING;
		case 't':
		case 'f':
		case 'n':
			{
				static const char *const words[3] = {"true", "false", "null"};
				static const lp_json_type types[3] = {LP_JSON_TRUE, LP_JSON_FALSE, LP_JSON_NULL};
				int			w = c == 't' ? 0 : c == 'f' ? 1 : 2;
				size_t		n = strlen(words[w]);

				if ((size_t) (r->end - s) < n || memcmp(s, words[w], n) != 0)
					return reader_fail(r, tok);
				r->p += n;
				tok->type = types[w];
				return tok->type;
			}
		default:
			while (r->p < r->end && (lptext_is_digit(*r->p) || *r->p == '-' || *r->p == '+' ||
									 *r->p == '.' || *r->p == 'e' || *r->p == 'E'))
				r->p++;
			if (!lpnum_put(NULL, s, (size_t) (r->p - s), true))
				return reader_fail(r, tok);
			tok->ptr = s;
			tok->len = (size_t) (r->p - s);
			tok->type = LP_JSON_NUMBER;
			return LP_JSON_NUMBER;
	}
}

size_t
lp_json_unescape(const char *s, size_t n, char *dst)
{
	const char *e = s + n;
	char	   *d = dst;

	while (s < e)
	{
		const char *bs = memchr(s, '\\', (size_t) (e - s));
		size_t		run = (size_t) ((bs ? bs : e) - s);

		memcpy(d, s, run);
		d += run;
		s += run;
		if (bs == NULL || e - s < 2)
			break;
		switch (s[1])
		{
			case 'b':
				*d++ = '\b';
				break;
			case 'f':
				*d++ = '\f';
				break;
			case 'n':
				*d++ = '\n';
				break;
			case 'r':
				*d++ = '\r';
				break;
			case 't':
				*d++ = '\t';
				break;
			case 'u':
				{
					long		cp;
					const char *next;

					if (lptext_decode_u(s, e, LPTEXT_U_SINGLE, &cp, &next) != LPTEXT_U_OK)
					{
						*d++ = 'u'; /* never from the reader: keeps the length bound */
						s += 2;
						continue;
					}
					/* four hex digits: at most three bytes, never more than the escape's six */
					d += lptext_utf8_encode((unsigned long) cp, d);
					s = next;
					continue;
				}
			default:			/* \" \\ \/ */
				*d++ = s[1];
				break;
		}
		s += 2;
	}
	return (size_t) (d - dst);
}
