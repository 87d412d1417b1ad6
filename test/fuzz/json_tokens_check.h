/*
 * json_tokens_check.h: checks the token reader of the parser core
 * (lp_json_next) on a body, for the unit test and the fuzz target.  The
 * tokens, written back (strings and numbers from their slices), must give the
 * body again byte for byte, and every escaped string must decode within its
 * length bound into valid UTF-8 without NUL.
 */
#ifndef CALO_JSON_TOKENS_CHECK_H
#define CALO_JSON_TOKENS_CHECK_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "logparse.h"

/* n bytes at s are valid UTF-8 without NUL */
static bool
jt_utf8_ok(const unsigned char *s, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		unsigned	c = s[i];
		size_t		k;
		unsigned	min;

		if (c == 0)
			return false;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			k = 2, min = 0x80;
		else if (c >= 0xE0 && c <= 0xEF)
			k = 3, min = 0x800;
		else if (c >= 0xF0 && c <= 0xF4)
			k = 4, min = 0x10000;
		else
			return false;
		if (n - i < k)
			return false;
		{
			unsigned long cp = c & (0x7F >> k);

			for (size_t j = 1; j < k; j++)
			{
				if ((s[i + j] & 0xC0) != 0x80)
					return false;
				cp = (cp << 6) | (s[i + j] & 0x3F);
			}
			if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
				return false;
		}
		i += k;
	}
	return true;
}

/* true when the token stream of json[0..len) writes back to json itself */
static bool
json_tokens_roundtrip(const char *json, size_t len)
{
	lp_json_reader r;
	lp_json_token tok;
	/* each token writes at most its own input bytes and a comma */
	char	   *out = malloc(2 * len + 16);
	size_t		n = 0;
	bool		ok = true;
	bool		need_comma = false;

	if (out == NULL)
		return false;
	lp_json_reader_init(&r, json, len);
	while (ok && lp_json_next(&r, &tok) != LP_JSON_END)
	{
		const char *word = NULL;

		if (tok.type == LP_JSON_ERROR)
		{
			ok = false;
			break;
		}
		if (need_comma && tok.type != LP_JSON_END_OBJECT && tok.type != LP_JSON_END_ARRAY)
			out[n++] = ',';
		switch (tok.type)
		{
			case LP_JSON_BEGIN_OBJECT:
				out[n++] = '{';
				break;
			case LP_JSON_END_OBJECT:
				out[n++] = '}';
				break;
			case LP_JSON_BEGIN_ARRAY:
				out[n++] = '[';
				break;
			case LP_JSON_END_ARRAY:
				out[n++] = ']';
				break;
			case LP_JSON_KEY:
			case LP_JSON_STRING:
				out[n++] = '"';
				memcpy(out + n, tok.ptr, tok.len);
				n += tok.len;
				out[n++] = '"';
				if (tok.type == LP_JSON_KEY)
					out[n++] = ':';
				if (tok.escaped)
				{
					char	   *d = malloc(tok.len ? tok.len : 1);
					size_t		dn = d ? lp_json_unescape(tok.ptr, tok.len, d) : 0;

					ok = d != NULL && dn < tok.len && jt_utf8_ok((const unsigned char *) d, dn);
					free(d);
				}
				else if (!jt_utf8_ok((const unsigned char *) tok.ptr, tok.len) || memchr(tok.ptr, '\\', tok.len))
					ok = false;
				break;
			case LP_JSON_NUMBER:
				memcpy(out + n, tok.ptr, tok.len);
				n += tok.len;
				break;
			case LP_JSON_TRUE:
				word = "true";
				break;
			case LP_JSON_FALSE:
				word = "false";
				break;
			case LP_JSON_NULL:
				word = "null";
				break;
			default:
				ok = false;
		}
		if (word)
		{
			memcpy(out + n, word, strlen(word));
			n += strlen(word);
		}
		need_comma = tok.type != LP_JSON_BEGIN_OBJECT && tok.type != LP_JSON_BEGIN_ARRAY && tok.type != LP_JSON_KEY;
	}
	ok = ok && n == len && memcmp(out, json, len) == 0;
	free(out);
	return ok;
}

#endif							/* CALO_JSON_TOKENS_CHECK_H */
