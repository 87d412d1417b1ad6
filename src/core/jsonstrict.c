/*
 * jsonstrict.c: strict JSON validated and re-emitted in canonical form
 * (plain C core); see jsonstrict.h.
 */
#include "jsonstrict.h"
#include "lpbuf.h"
#include "lpnum.h"
#include "lptext.h"

#include <stdlib.h>
#include <string.h>

typedef struct jsonstrict_parser
{
	const char *p;
	const char *end;
	lp_buf	   *out;
	lpsyntax_error err;
	/* the member names of the open objects, innermost last (duplicate check) */
	lpsyntax_key *keys;
	size_t		n_keys;
	size_t		cap_keys;
	bool		oom;
} jsonstrict_parser;

static bool jsonstrict_value(jsonstrict_parser *jp, int depth);

static void
jsonstrict_skip_ws(jsonstrict_parser *jp)
{
	while (jp->p < jp->end && lptext_is_space(*jp->p))
		jp->p++;
}

static bool
jsonstrict_string(jsonstrict_parser *jp)
{
	const char *s = jp->p + 1;
	const char *end = jp->end;

	lpbuf_putc(jp->out, '"');
	for (;;)
	{
		const char *run = s;

		s = lptext_skip_plain(s, end, false);
		lpbuf_put_json_chars(jp->out, run, (size_t) (s - run), false);
		if (s >= end)
			return lpsyntax_fail(&jp->err, LPSYNTAX_EOF, s, "unterminated string");
		if (*s == '"')
			break;
		if (*s != '\\')
			return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, s, "control character in string");
		if (end - s < 2)
			return lpsyntax_fail(&jp->err, LPSYNTAX_EOF, s, "unterminated escape");
		switch (s[1])
		{
			case '"':
			case '\\':
			case '/':
				lpbuf_put_json_chars(jp->out, s + 1, 1, false);
				s += 2;
				break;
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				lpbuf_put(jp->out, s, 2);
				s += 2;
				break;
			case 'u':
				{
					long		cp;
					const char *next;
					lptext_u_status st = lptext_decode_u(s, end, LPTEXT_U_JSON, &cp, &next);

					if (st != LPTEXT_U_OK)
						return lpsyntax_fail_u_escape(&jp->err, st, s);
					if (cp == 0)
						return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, s, "\\u0000 (jsonb cannot store it)");
					if (cp >= 0xD800 && cp <= 0xDFFF)
						return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, s, "lone surrogate escape (jsonb cannot store it)");
					lpbuf_put_json_code_point(jp->out, (unsigned long) cp);
					s = next;
					break;
				}
			default:
				return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, s, "bad escape in string");
		}
	}
	lpbuf_putc(jp->out, '"');
	jp->p = s + 1;
	return true;
}

static bool
jsonstrict_literal(jsonstrict_parser *jp, const char *word)
{
	size_t		n = strlen(word);
	size_t		avail = (size_t) (jp->end - jp->p);

	if (avail < n)
	{
		if (memcmp(jp->p, word, avail) == 0)
			return lpsyntax_fail(&jp->err, LPSYNTAX_EOF, jp->p, "truncated literal");
		return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, jp->p, "unexpected character");
	}
	if (memcmp(jp->p, word, n) != 0)
		return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, jp->p, "unexpected character");
	lpbuf_put(jp->out, word, n);
	jp->p += n;
	return true;
}

static bool
jsonstrict_number(jsonstrict_parser *jp)
{
	const char *s = jp->p;

	while (jp->p < jp->end && (lptext_is_digit(*jp->p) || *jp->p == '-' || *jp->p == '+' ||
							   *jp->p == '.' || *jp->p == 'e' || *jp->p == 'E'))
		jp->p++;
	if (!lpnum_put(jp->out, s, (size_t) (jp->p - s), true))
		return lpsyntax_fail(&jp->err, jp->p >= jp->end ? LPSYNTAX_EOF : LPSYNTAX_ERROR, s, "invalid number");
	return true;
}

/* remembers the member name just written at out[off, end) */
static bool
jsonstrict_push_key(jsonstrict_parser *jp, size_t off, const char *src)
{
	if (jp->n_keys == jp->cap_keys)
	{
		size_t		cap = jp->cap_keys ? jp->cap_keys * 2 : 32;
		lpsyntax_key *k = cap <= SIZE_MAX / sizeof(lpsyntax_key) ? realloc(jp->keys, cap * sizeof(lpsyntax_key)) : NULL;

		if (k == NULL)
		{
			jp->oom = true;
			return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, src, "out of memory");
		}
		jp->keys = k;
		jp->cap_keys = cap;
	}
	jp->keys[jp->n_keys].off = off;
	jp->keys[jp->n_keys].len = jp->out->len - off;
	jp->keys[jp->n_keys].src = src;
	jp->keys[jp->n_keys].src_len = (size_t) (jp->p - src);
	jp->n_keys++;
	return true;
}

/* the object whose names are keys[first..] is complete: refuses a duplicate name */
static bool
jsonstrict_check_keys(jsonstrict_parser *jp, size_t first)
{
	long		dup;

	if (jp->out->failed)
		return true;			/* the caller reports the out-of-memory */
	dup = lpsyntax_duplicate_key(jp->out->data, jp->keys + first, jp->n_keys - first);
	if (dup == -2)
	{
		jp->oom = true;
		return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, jp->p, "out of memory");
	}
	if (dup >= 0)
	{
		const lpsyntax_key *k = &jp->keys[first + (size_t) dup];

		lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, k->src, "duplicate key");
		jp->err.name = k->src;
		jp->err.name_len = k->src_len;
		return false;
	}
	jp->n_keys = first;
	return true;
}

static bool
jsonstrict_container(jsonstrict_parser *jp, int depth, char close)
{
	bool		is_object = close == '}';
	size_t		first_key = jp->n_keys;

	if (depth >= LP_MAX_DEPTH)
		return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, jp->p, "nesting too deep");
	lpbuf_putc(jp->out, *jp->p);
	jp->p++;
	jsonstrict_skip_ws(jp);
	if (jp->p < jp->end && *jp->p == close)
	{
		lpbuf_putc(jp->out, close);
		jp->p++;
		return true;
	}
	for (;;)
	{
		jsonstrict_skip_ws(jp);
		if (is_object)
		{
			if (jp->p >= jp->end)
				return lpsyntax_fail(&jp->err, LPSYNTAX_EOF, jp->p, "unterminated object");
			if (*jp->p != '"')
				return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, jp->p, "expected a member name");
			{
				size_t		key_off = jp->out->len;
				const char *key_src = jp->p;

				if (!jsonstrict_string(jp) || !jsonstrict_push_key(jp, key_off, key_src))
					return false;
			}
			jsonstrict_skip_ws(jp);
			if (jp->p >= jp->end)
				return lpsyntax_fail(&jp->err, LPSYNTAX_EOF, jp->p, "unterminated object");
			if (*jp->p != ':')
				return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, jp->p, "expected ':'");
			lpbuf_putc(jp->out, ':');
			jp->p++;
		}
		if (!jsonstrict_value(jp, depth + 1))
			return false;
		jsonstrict_skip_ws(jp);
		if (jp->p >= jp->end)
			return lpsyntax_fail(&jp->err, LPSYNTAX_EOF, jp->p, is_object ? "unterminated object" : "unterminated array");
		if (*jp->p == close)
		{
			lpbuf_putc(jp->out, close);
			jp->p++;
			return !is_object || jsonstrict_check_keys(jp, first_key);
		}
		if (*jp->p != ',')
			return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, jp->p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
		lpbuf_putc(jp->out, ',');
		jp->p++;
	}
}

static bool
jsonstrict_value(jsonstrict_parser *jp, int depth)
{
	jsonstrict_skip_ws(jp);
	if (jp->p >= jp->end)
		return lpsyntax_fail(&jp->err, LPSYNTAX_EOF, jp->p, "missing value");
	switch (*jp->p)
	{
		case '{':
			return jsonstrict_container(jp, depth, '}');
		case '[':
			return jsonstrict_container(jp, depth, ']');
		case '"':
			return jsonstrict_string(jp);
		case 't':
			return jsonstrict_literal(jp, "true");
		case 'f':
			return jsonstrict_literal(jp, "false");
		case 'n':
			return jsonstrict_literal(jp, "null");
		default:
			if (*jp->p == '-' || lptext_is_digit(*jp->p))
				return jsonstrict_number(jp);
			return lpsyntax_fail(&jp->err, LPSYNTAX_ERROR, jp->p, "unexpected character");
	}
}

bool
jsonstrict_embed(lp_buf *out, const char *s, size_t n, lpsyntax_error *err, bool *oom)
{
	jsonstrict_parser jp = {s, s + n, out, {LPSYNTAX_NONE, NULL, NULL, NULL, 0}, NULL, 0, 0, false};
	size_t		mark = out->len;
	bool		ok = false;

	if (jsonstrict_value(&jp, 0))
	{
		jsonstrict_skip_ws(&jp);
		if (jp.p == jp.end)
			ok = true;
		else
			lpsyntax_fail(&jp.err, LPSYNTAX_ERROR, jp.p, "text after the JSON value");
	}
	free(jp.keys);
	if (jp.oom)
		*oom = true;
	if (ok)
		return true;
	if (!out->failed)
		out->len = mark;
	if (err)
		*err = jp.err;
	return false;
}
