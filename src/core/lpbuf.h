/*
 * lpbuf.h: the log parser's growable byte buffer (lp_buf, logparse.h) and
 * what it writes: UTF-8 and the inside of JSON strings (plain C core).  A
 * buffer whose allocation failed stops growing and says so (failed); the
 * writers then do nothing, and the parser reports LP_ENOMEM at the end.
 */
#ifndef CALO_LPBUF_H
#define CALO_LPBUF_H

#include "logparse.h"

#include <string.h>

/* the slow path of lpbuf_reserve: a larger allocation */
bool		lpbuf_grow(lp_buf *b, size_t extra);

static inline bool
lpbuf_reserve(lp_buf *b, size_t extra)
{
	if (!b->failed && extra <= b->cap - b->len)
		return true;
	return lpbuf_grow(b, extra);
}

static inline void
lpbuf_put(lp_buf *b, const char *s, size_t n)
{
	if (n > 0 && lpbuf_reserve(b, n))
	{
		memcpy(b->data + b->len, s, n);
		b->len += n;
	}
}

static inline void
lpbuf_putc(lp_buf *b, char c)
{
	if (lpbuf_reserve(b, 1))
		b->data[b->len++] = c;
}

#define lpbuf_lit(b, s) lpbuf_put((b), (s), sizeof(s) - 1)

/* appends a copy of b->data[off, off+n) (safe although reserving may move it) */
void		lpbuf_copy_within(lp_buf *b, size_t off, size_t n);

/* code point cp (below 0x110000) as UTF-8 */
void		lpbuf_put_utf8(lp_buf *b, unsigned long cp);

/*
 * Appends s[0..n) as the inside of a JSON string.  Invalid UTF-8 and NUL
 * (which jsonb refuses even escaped) become U+FFFD; fold_line_ends turns
 * CR LF and a lone CR into LF (message texts of CRLF and CR files).
 */
void		lpbuf_put_json_chars(lp_buf *b, const char *s, size_t n, bool fold_line_ends);

/* s[0..n) as a JSON string, quotes included */
void		lpbuf_put_json_string(lp_buf *b, const char *s, size_t n);

/* a code point decoded from an escape, as JSON string content (0, surrogates: U+FFFD) */
void		lpbuf_put_json_code_point(lp_buf *b, unsigned long cp);

/* "key": */
void		lpbuf_put_key(lp_buf *b, const char *key);

#endif							/* CALO_LPBUF_H */
