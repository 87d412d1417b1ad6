/*
 * lpbuf.c: the log parser's growable byte buffer and its JSON string writer
 * (plain C core); see lpbuf.h.
 */
#include "lpbuf.h"
#include "lptext.h"

#include <stdio.h>
#include <stdlib.h>

bool
lpbuf_grow(lp_buf *b, size_t extra)
{
	size_t		need,
				cap;
	char	   *p;

	if (b->failed)
		return false;
	if (extra <= b->cap - b->len)
		return true;
	need = b->len + extra;
	if (need < b->len)
	{
		b->failed = true;
		return false;
	}
	cap = b->cap ? b->cap : 1024;
	while (cap < need)
		cap = (cap > SIZE_MAX / 2) ? need : cap * 2;
	p = realloc(b->data, cap);
	if (p == NULL)
	{
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void
lpbuf_copy_within(lp_buf *b, size_t off, size_t n)
{
	if (n > 0 && lpbuf_reserve(b, n))
	{
		memmove(b->data + b->len, b->data + off, n);
		b->len += n;
	}
}

void
lpbuf_put_utf8(lp_buf *b, unsigned long cp)
{
	char		u[4];

	lpbuf_put(b, u, lptext_utf8_encode(cp, u));
}

void
lpbuf_put_json_chars(lp_buf *b, const char *s, size_t n, bool fold_line_ends)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *e = p + n;

	while (p < e)
	{
		const unsigned char *run = p;
		unsigned	c;

		p = (const unsigned char *) lptext_skip_plain((const char *) p, (const char *) e, true);
		lpbuf_put(b, (const char *) run, (size_t) (p - run));
		if (p >= e)
			break;
		c = *p;
		if (c >= 0x80)
		{
			size_t		k = lptext_utf8_length(p, (size_t) (e - p));

			if (k > 0)
				lpbuf_put(b, (const char *) p, k);
			else
				lpbuf_lit(b, "\\ufffd");
			p += k > 0 ? k : 1;
			continue;
		}
		p++;
		switch (c)
		{
			case '"':
				lpbuf_lit(b, "\\\"");
				break;
			case '\\':
				lpbuf_lit(b, "\\\\");
				break;
			case '\n':
				lpbuf_lit(b, "\\n");
				break;
			case '\t':
				lpbuf_lit(b, "\\t");
				break;
			case '\r':
				if (!fold_line_ends)
					lpbuf_lit(b, "\\r");
				else if (!(p < e && *p == '\n'))
					lpbuf_lit(b, "\\n");
				break;
			case 0:
				lpbuf_lit(b, "\\ufffd");
				break;
			default:
				{
					char		x[7];

					snprintf(x, sizeof(x), "\\u%04x", c);
					lpbuf_put(b, x, 6);
				}
		}
	}
}

void
lpbuf_put_json_string(lp_buf *b, const char *s, size_t n)
{
	lpbuf_putc(b, '"');
	lpbuf_put_json_chars(b, s, n, false);
	lpbuf_putc(b, '"');
}

void
lpbuf_put_json_code_point(lp_buf *b, unsigned long cp)
{
	if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		cp = 0xFFFD;
	if (cp < 0x20 || cp == '"' || cp == '\\')
	{
		char		c = (char) cp;

		lpbuf_put_json_chars(b, &c, 1, false);
	}
	else
		lpbuf_put_utf8(b, cp);
}

void
lpbuf_put_key(lp_buf *b, const char *key)
{
	lpbuf_putc(b, '"');
	lpbuf_put(b, key, strlen(key));
	lpbuf_lit(b, "\":");
}
