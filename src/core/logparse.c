/*
 * logparse.c: parser of balance-sync CloudWatch log exports (plain C core).
 *
 * One pass splits the text into events and builds each body; a second pass
 * propagates SQS message ids inside each request and links balance errors to
 * the transaction of the same request and message.  See logparse.h.
 */
#include "logparse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LP_PROGRESS_EVERY 256

/* how the messages and platform lines that matter begin */
#define PREFIX_PROCESSING "Processing message "
#define PREFIX_TRANSACTION "Start syncing the balance"
#define PREFIX_BALANCE_ERROR "Subscription balance and payment balance are not in sync"
#define PREFIX_START "START RequestId: "
#define PREFIX_END "END RequestId: "
#define PREFIX_REPORT "REPORT RequestId: "
#define PREFIX_INIT_START "INIT_START"
#define PREFIX_INIT_REPORT "INIT_REPORT"
#define PREFIX_METRIC "{\"_aws\""
#define REJECTION_WORDS "negative balance"	/* in the message of a refused debit */

static const char *const kind_names[LP_KIND_COUNT] = {
	"start", "end", "report", "init_start", "init_report", "metric", "platform_text",
	"processing_message", "transaction", "balance_error", "negative_balance_rejection",
	"skip", "balance_updated", "transaction_lock", "transaction_json", "record_body",
	"sync_error", "uncaught_exception", "invoke_error", "app_log", "malformed"
};

const char *
lp_kind_name(lp_kind kind)
{
	return (kind >= 0 && kind < LP_KIND_COUNT) ? kind_names[kind] : NULL;
}

/* ------------------------------------------------------------------ */
/* growable buffers                                                    */

static bool buf_grow(lp_buf *b, size_t extra);

static inline bool
buf_reserve(lp_buf *b, size_t extra)
{
	if (!b->failed && extra <= b->cap - b->len)
		return true;
	return buf_grow(b, extra);
}

/* the slow path of buf_reserve: a larger allocation */
static bool
buf_grow(lp_buf *b, size_t extra)
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

static inline void
buf_put(lp_buf *b, const char *s, size_t n)
{
	if (n > 0 && buf_reserve(b, n))
	{
		memcpy(b->data + b->len, s, n);
		b->len += n;
	}
}

static inline void
buf_putc(lp_buf *b, char c)
{
	if (buf_reserve(b, 1))
		b->data[b->len++] = c;
}

#define buf_lit(b, s) buf_put((b), (s), sizeof(s) - 1)

/* appends a copy of b->data[off, off+n) (safe although reserving may move it) */
static void
buf_copy_within(lp_buf *b, size_t off, size_t n)
{
	if (n > 0 && buf_reserve(b, n))
	{
		memmove(b->data + b->len, b->data + off, n);
		b->len += n;
	}
}

/* ------------------------------------------------------------------ */
/* characters, UTF-8 and JSON strings                                  */

static inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* the first CR or LF in [s, e), or e: where a line ends (LF, CR LF or a lone CR) */
static inline const char *
line_end_at(const char *s, const char *e)
{
	while (s < e && *s != '\n' && *s != '\r')
		s++;
	return s;
}

/* the start of the line after the line end at le (le < e) */
static inline const char *
next_line_start(const char *le, const char *e)
{
	return (*le == '\r' && le + 1 < e && le[1] == '\n') ? le + 2 : le + 1;
}

static inline bool
is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '$';
}

static int
hex_value(char c)
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
static long
hex_run(const char *s, int n)
{
	long		v = 0;

	for (int i = 0; i < n; i++)
	{
		int			h = hex_value(s[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* length (1..4) of the valid UTF-8 sequence at s, or 0 when it is not one */
static size_t
utf8_seq(const unsigned char *s, size_t n)
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

/*
 * The first byte at or after s that is '"', '\\', a control character or,
 * when ascii_only, not ASCII; end when there is none.  Eight bytes at a time
 * while none is (the bit tricks have no false negatives; the byte loop decides).
 */
static inline const char *
skip_plain_bytes(const char *s, const char *end, bool ascii_only)
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

static void
put_utf8(lp_buf *b, unsigned long cp)
{
	char		u[4];

	if (cp < 0x80)
		buf_putc(b, (char) cp);
	else if (cp < 0x800)
	{
		u[0] = (char) (0xC0 | (cp >> 6));
		u[1] = (char) (0x80 | (cp & 0x3F));
		buf_put(b, u, 2);
	}
	else if (cp < 0x10000)
	{
		u[0] = (char) (0xE0 | (cp >> 12));
		u[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char) (0x80 | (cp & 0x3F));
		buf_put(b, u, 3);
	}
	else
	{
		u[0] = (char) (0xF0 | (cp >> 18));
		u[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char) (0x80 | (cp & 0x3F));
		buf_put(b, u, 4);
	}
}

/*
 * Appends s[0..n) as the inside of a JSON string.  Invalid UTF-8 and NUL
 * (which jsonb refuses even escaped) become U+FFFD; fold_line_ends turns
 * CR LF and a lone CR into LF (message texts of CRLF and CR files).
 */
static void
put_json_chars(lp_buf *b, const char *s, size_t n, bool fold_line_ends)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *e = p + n;

	while (p < e)
	{
		const unsigned char *run = p;
		unsigned	c;

		p = (const unsigned char *) skip_plain_bytes((const char *) p, (const char *) e, true);
		buf_put(b, (const char *) run, (size_t) (p - run));
		if (p >= e)
			break;
		c = *p;
		if (c >= 0x80)
		{
			size_t		k = utf8_seq(p, (size_t) (e - p));

			if (k > 0)
				buf_put(b, (const char *) p, k);
			else
				buf_lit(b, "\\ufffd");
			p += k > 0 ? k : 1;
			continue;
		}
		p++;
		switch (c)
		{
			case '"':
				buf_lit(b, "\\\"");
				break;
			case '\\':
				buf_lit(b, "\\\\");
				break;
			case '\n':
				buf_lit(b, "\\n");
				break;
			case '\t':
				buf_lit(b, "\\t");
				break;
			case '\r':
				if (!fold_line_ends)
					buf_lit(b, "\\r");
				else if (!(p < e && *p == '\n'))
					buf_lit(b, "\\n");
				break;
			case 0:
				buf_lit(b, "\\ufffd");
				break;
			default:
				{
					char		x[7];

					snprintf(x, sizeof(x), "\\u%04x", c);
					buf_put(b, x, 6);
				}
		}
	}
}

static void
put_json_string(lp_buf *b, const char *s, size_t n)
{
	buf_putc(b, '"');
	put_json_chars(b, s, n, false);
	buf_putc(b, '"');
}

/* a code point decoded from an escape, as JSON string content */
static void
put_json_code_point(lp_buf *b, unsigned long cp)
{
	if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		cp = 0xFFFD;
	if (cp < 0x20 || cp == '"' || cp == '\\')
	{
		char		c = (char) cp;

		put_json_chars(b, &c, 1, false);
	}
	else
		put_utf8(b, cp);
}

/* "key": */
static void
put_key(lp_buf *b, const char *key)
{
	buf_putc(b, '"');
	buf_put(b, key, strlen(key));
	buf_lit(b, "\":");
}

/* ------------------------------------------------------------------ */
/* numbers and timestamps                                              */

typedef enum number_status
{
	NUMBER_OK,
	NUMBER_BAD,					/* not a finite decimal number */
	NUMBER_TOO_BIG				/* well spelled, beyond LP_MAX_NUMBER_LEN or LP_MAX_EXPONENT */
} number_status;

/*
 * Checks the number token s[0..n) and, when b is not NULL and it is
 * NUMBER_OK, appends its JSON spelling.  strict_json refuses the two
 * normalised JavaScript spellings (leading '+', missing integer part).
 */
static number_status
number_check(lp_buf *b, const char *s, size_t n, bool strict_json)
{
	size_t		i = 0,
				int_start,
				int_len,
				frac_len = 0;
	bool		neg = false,
				too_big = n > LP_MAX_NUMBER_LEN;

	if (n == 0)
		return NUMBER_BAD;
	if (s[0] == '-')
		neg = true, i++;
	else if (s[0] == '+' && !strict_json)
		i++;
	int_start = i;
	while (i < n && is_digit(s[i]))
		i++;
	int_len = i - int_start;
	if (int_len > 1 && s[int_start] == '0')
		return NUMBER_BAD;		/* leading zero: octal-looking in JavaScript */
	if (i < n && s[i] == '.')
	{
		size_t		frac_start = ++i;

		while (i < n && is_digit(s[i]))
			i++;
		frac_len = i - frac_start;
		if (frac_len == 0)
			return NUMBER_BAD;
	}
	if (int_len == 0 && (strict_json || frac_len == 0))
		return NUMBER_BAD;
	if (i < n && (s[i] == 'e' || s[i] == 'E'))
	{
		size_t		digits_start;
		long		exponent = 0;

		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		digits_start = i;
		while (i < n && is_digit(s[i]))
		{
			if (exponent <= LP_MAX_EXPONENT)
				exponent = exponent * 10 + (s[i] - '0');
			i++;
		}
		if (i == digits_start)
			return NUMBER_BAD;
		if (exponent > LP_MAX_EXPONENT)
			too_big = true;
	}
	if (i != n)
		return NUMBER_BAD;
	if (too_big)
		return NUMBER_TOO_BIG;
	if (b != NULL)
	{
		if (neg)
			buf_putc(b, '-');
		if (int_len == 0)
			buf_putc(b, '0');
		buf_put(b, s + int_start, n - int_start);
	}
	return NUMBER_OK;
}

/* number_check() == NUMBER_OK, appending the number to b (if not NULL) */
static bool
put_number(lp_buf *b, const char *s, size_t n, bool strict_json)
{
	return number_check(b, s, n, strict_json) == NUMBER_OK;
}

static int64_t
days_from_civil(int y, int m, int d)
{
	int			era;
	int			yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t) era * 146097 + doe - 719468;
}

static int
digits_at(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* s[0..n) starts with the shape YYYY-MM-DDTHH:MM:SS.sssZ (any digits) */
static inline bool
timestamp_shape(const char *s, size_t n)
{
#define TS_DIGIT(i) ((unsigned) (s[i] - '0') <= 9)
	/* the separators first: they reject most lines that are not timestamps at once */
	if (n < 24 || !TS_DIGIT(0) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[23] != 'Z')
		return false;
	return TS_DIGIT(1) & TS_DIGIT(2) & TS_DIGIT(3) & TS_DIGIT(5) & TS_DIGIT(6) & TS_DIGIT(8) &
		TS_DIGIT(9) & TS_DIGIT(11) & TS_DIGIT(12) & TS_DIGIT(14) & TS_DIGIT(15) & TS_DIGIT(17) &
		TS_DIGIT(18) & TS_DIGIT(20) & TS_DIGIT(21) & TS_DIGIT(22);
#undef TS_DIGIT
}

int
lp_parse_timestamp(const char *s, size_t n, int64_t *unix_us)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y,
				mo,
				d,
				h,
				mi,
				sec,
				ms,
				dim;

	if (!timestamp_shape(s, n))
		return -1;
	y = digits_at(s, 4);
	mo = digits_at(s + 5, 2);
	d = digits_at(s + 8, 2);
	h = digits_at(s + 11, 2);
	mi = digits_at(s + 14, 2);
	sec = digits_at(s + 17, 2);
	ms = digits_at(s + 20, 3);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
		return 0;
	dim = mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
	if (d > dim)
		return 0;
	if (unix_us)
		*unix_us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000 + ms) * 1000;
	return 1;
}

/* ------------------------------------------------------------------ */
/* parse errors                                                        */

typedef enum perr_kind
{
	PERR_NONE = 0,
	PERR_EOF,					/* the text ended inside a value: truncated */
	PERR_SYNTAX
} perr_kind;

typedef struct perr
{
	perr_kind	kind;
	const char *at;
	const char *what;
	const char *name;			/* what it is about (a key), shown quoted; NULL if none */
	size_t		name_len;
} perr;

static bool
fail(perr *e, perr_kind kind, const char *at, const char *what)
{
	if (e->kind == PERR_NONE)
	{
		e->kind = kind;
		e->at = at;
		e->what = what;
		e->name = NULL;
		e->name_len = 0;
	}
	return false;
}

/* a member name in an object: where its text lies (in some buffer) and where it was read */
typedef struct key_ref
{
	size_t		off;
	size_t		len;
	const char *src;			/* the name as written in the input */
	size_t		src_len;
} key_ref;

typedef struct key_view
{
	const char *p;
	size_t		len;
	size_t		index;
} key_view;

static int
key_view_cmp(const void *a, const void *b)
{
	const key_view *x = a,
			   *y = b;
	int			c;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	c = memcmp(x->p, y->p, x->len);
	if (c != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Index of a key in keys[0..n) (texts at base + off) equal to an earlier
 * one, or -1 when all differ; -2 when out of memory.  Pairwise for small
 * objects, by sorting for large ones (a hostile object has many keys).
 */
static long
duplicate_key(const char *base, const key_ref *keys, size_t n)
{
	key_view   *views;
	long		dup = -1;

	if (n <= 16)
	{
		for (size_t j = 1; j < n; j++)
			for (size_t i = 0; i < j; i++)
				if (keys[i].len == keys[j].len && memcmp(base + keys[i].off, base + keys[j].off, keys[i].len) == 0)
					return (long) j;
		return -1;
	}
	views = malloc(n * sizeof(key_view));
	if (views == NULL)
		return -2;
	for (size_t i = 0; i < n; i++)
	{
		views[i].p = base + keys[i].off;
		views[i].len = keys[i].len;
		views[i].index = i;
	}
	qsort(views, n, sizeof(key_view), key_view_cmp);
	for (size_t i = 1; i < n; i++)
		if (views[i].len == views[i - 1].len && memcmp(views[i].p, views[i - 1].p, views[i].len) == 0 &&
			(dup < 0 || views[i].index < (size_t) dup))
			dup = (long) views[i].index;
	free(views);
	return dup;
}

/* ------------------------------------------------------------------ */
/* JSON: validate and re-emit (canonical escapes, numbers as written)   */

typedef struct json_parser
{
	const char *p;
	const char *end;
	lp_buf	   *out;
	perr		err;
	/* the member names of the open objects, innermost last (duplicate check) */
	key_ref    *keys;
	size_t		n_keys;
	size_t		cap_keys;
	bool		oom;
} json_parser;

static bool json_value(json_parser *jp, int depth);

static void
json_skip_ws(json_parser *jp)
{
	while (jp->p < jp->end && is_space(*jp->p))
		jp->p++;
}

static bool
json_string(json_parser *jp)
{
	const char *s = jp->p + 1;
	const char *end = jp->end;

	buf_putc(jp->out, '"');
	for (;;)
	{
		const char *run = s;

		s = skip_plain_bytes(s, end, false);
		put_json_chars(jp->out, run, (size_t) (s - run), false);
		if (s >= end)
			return fail(&jp->err, PERR_EOF, s, "unterminated string");
		if (*s == '"')
			break;
		if (*s != '\\')
			return fail(&jp->err, PERR_SYNTAX, s, "control character in string");
		if (end - s < 2)
			return fail(&jp->err, PERR_EOF, s, "unterminated escape");
		switch (s[1])
		{
			case '"':
			case '\\':
			case '/':
				put_json_chars(jp->out, s + 1, 1, false);
				s += 2;
				break;
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				buf_put(jp->out, s, 2);
				s += 2;
				break;
			case 'u':
				{
					long		cp;

					if (end - s < 6)
						return fail(&jp->err, PERR_EOF, s, "unterminated \\u escape");
					cp = hex_run(s + 2, 4);
					if (cp < 0)
						return fail(&jp->err, PERR_SYNTAX, s, "bad \\u escape");
					if (cp == 0)
						return fail(&jp->err, PERR_SYNTAX, s, "\\u0000 (jsonb cannot store it)");
					s += 6;
					if (cp >= 0xD800 && cp <= 0xDBFF && end - s >= 6 && s[0] == '\\' && s[1] == 'u')
					{
						long		lo = hex_run(s + 2, 4);

						if (lo >= 0xDC00 && lo <= 0xDFFF)
						{
							cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
							s += 6;
						}
					}
					if (cp >= 0xD800 && cp <= 0xDFFF)
						return fail(&jp->err, PERR_SYNTAX, s - 6, "lone surrogate escape (jsonb cannot store it)");
					put_json_code_point(jp->out, (unsigned long) cp);
					break;
				}
			default:
				return fail(&jp->err, PERR_SYNTAX, s, "bad escape in string");
		}
	}
	buf_putc(jp->out, '"');
	jp->p = s + 1;
	return true;
}

static bool
json_literal(json_parser *jp, const char *word)
{
	size_t		n = strlen(word);
	size_t		avail = (size_t) (jp->end - jp->p);

	if (avail < n)
	{
		if (memcmp(jp->p, word, avail) == 0)
			return fail(&jp->err, PERR_EOF, jp->p, "truncated literal");
		return fail(&jp->err, PERR_SYNTAX, jp->p, "unexpected character");
	}
	if (memcmp(jp->p, word, n) != 0)
		return fail(&jp->err, PERR_SYNTAX, jp->p, "unexpected character");
	buf_put(jp->out, word, n);
	jp->p += n;
	return true;
}

static bool
json_number(json_parser *jp)
{
	const char *s = jp->p;

	while (jp->p < jp->end && (is_digit(*jp->p) || *jp->p == '-' || *jp->p == '+' ||
							   *jp->p == '.' || *jp->p == 'e' || *jp->p == 'E'))
		jp->p++;
	if (!put_number(jp->out, s, (size_t) (jp->p - s), true))
		return fail(&jp->err, jp->p >= jp->end ? PERR_EOF : PERR_SYNTAX, s, "invalid number");
	return true;
}

/* remembers the member name just written at out[off, end) */
static bool
json_push_key(json_parser *jp, size_t off, const char *src)
{
	if (jp->n_keys == jp->cap_keys)
	{
		size_t		cap = jp->cap_keys ? jp->cap_keys * 2 : 32;
		key_ref    *k = cap <= SIZE_MAX / sizeof(key_ref) ? realloc(jp->keys, cap * sizeof(key_ref)) : NULL;

		if (k == NULL)
		{
			jp->oom = true;
			return fail(&jp->err, PERR_SYNTAX, src, "out of memory");
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
json_check_keys(json_parser *jp, size_t first)
{
	long		dup;

	if (jp->out->failed)
		return true;			/* the caller reports the out-of-memory */
	dup = duplicate_key(jp->out->data, jp->keys + first, jp->n_keys - first);
	if (dup == -2)
	{
		jp->oom = true;
		return fail(&jp->err, PERR_SYNTAX, jp->p, "out of memory");
	}
	if (dup >= 0)
	{
		const key_ref *k = &jp->keys[first + (size_t) dup];

		fail(&jp->err, PERR_SYNTAX, k->src, "duplicate key");
		jp->err.name = k->src;
		jp->err.name_len = k->src_len;
		return false;
	}
	jp->n_keys = first;
	return true;
}

static bool
json_container(json_parser *jp, int depth, char close)
{
	bool		is_object = close == '}';
	size_t		first_key = jp->n_keys;

	if (depth >= LP_MAX_DEPTH)
		return fail(&jp->err, PERR_SYNTAX, jp->p, "nesting too deep");
	buf_putc(jp->out, *jp->p);
	jp->p++;
	json_skip_ws(jp);
	if (jp->p < jp->end && *jp->p == close)
	{
		buf_putc(jp->out, close);
		jp->p++;
		return true;
	}
	for (;;)
	{
		json_skip_ws(jp);
		if (is_object)
		{
			if (jp->p >= jp->end)
				return fail(&jp->err, PERR_EOF, jp->p, "unterminated object");
			if (*jp->p != '"')
				return fail(&jp->err, PERR_SYNTAX, jp->p, "expected a member name");
			{
				size_t		key_off = jp->out->len;
				const char *key_src = jp->p;

				if (!json_string(jp) || !json_push_key(jp, key_off, key_src))
					return false;
			}
			json_skip_ws(jp);
			if (jp->p >= jp->end)
				return fail(&jp->err, PERR_EOF, jp->p, "unterminated object");
			if (*jp->p != ':')
				return fail(&jp->err, PERR_SYNTAX, jp->p, "expected ':'");
			buf_putc(jp->out, ':');
			jp->p++;
		}
		if (!json_value(jp, depth + 1))
			return false;
		json_skip_ws(jp);
		if (jp->p >= jp->end)
			return fail(&jp->err, PERR_EOF, jp->p, is_object ? "unterminated object" : "unterminated array");
		if (*jp->p == close)
		{
			buf_putc(jp->out, close);
			jp->p++;
			return !is_object || json_check_keys(jp, first_key);
		}
		if (*jp->p != ',')
			return fail(&jp->err, PERR_SYNTAX, jp->p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
		buf_putc(jp->out, ',');
		jp->p++;
	}
}

static bool
json_value(json_parser *jp, int depth)
{
	json_skip_ws(jp);
	if (jp->p >= jp->end)
		return fail(&jp->err, PERR_EOF, jp->p, "missing value");
	switch (*jp->p)
	{
		case '{':
			return json_container(jp, depth, '}');
		case '[':
			return json_container(jp, depth, ']');
		case '"':
			return json_string(jp);
		case 't':
			return json_literal(jp, "true");
		case 'f':
			return json_literal(jp, "false");
		case 'n':
			return json_literal(jp, "null");
		default:
			if (*jp->p == '-' || is_digit(*jp->p))
				return json_number(jp);
			return fail(&jp->err, PERR_SYNTAX, jp->p, "unexpected character");
	}
}

/*
 * Appends the canonical form of the JSON text s[0..n) (one value, whitespace
 * around allowed) to out.  On failure out is left as it was and *err says why.
 */
static bool
json_embed(lp_buf *out, const char *s, size_t n, perr *err, bool *oom)
{
	json_parser jp = {s, s + n, out, {PERR_NONE, NULL, NULL, NULL, 0}, NULL, 0, 0, false};
	size_t		mark = out->len;
	bool		ok = false;

	if (json_value(&jp, 0))
	{
		json_skip_ws(&jp);
		if (jp.p == jp.end)
			ok = true;
		else
			fail(&jp.err, PERR_SYNTAX, jp.p, "text after the JSON value");
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

/* ------------------------------------------------------------------ */
/* JavaScript object literals (Node's console.log / util.inspect)       */

typedef enum js_type
{
	JS_OBJECT,
	JS_ARRAY,
	JS_STRING,
	JS_NUMBER,					/* any number-looking token, checked when used */
	JS_TRUE,
	JS_FALSE,
	JS_NULL,
	JS_UNDEFINED,
	JS_IDENT					/* any other bare word (NaN, Infinity, Object, ...) */
} js_type;

typedef struct js_node
{
	js_type		type;
	int			first;			/* first child of an object or array, -1 */
	int			next;			/* next sibling, -1 */
	size_t		key_off;		/* member name, in the scratch buffer */
	size_t		key_len;
	const char *src;			/* where the value starts in the input */
	size_t		src_len;		/* token length of numbers and bare words */
	size_t		str_off;		/* decoded string, in the scratch buffer */
	size_t		str_len;
	bool		unstorable;		/* the string holds U+0000 or a lone surrogate */
	bool		key_unstorable; /* the same of its member name */
	const char *key_src;		/* member name as written */
	size_t		key_src_len;
} js_node;

typedef struct js_parser
{
	const char *p;
	const char *end;
	lp_result  *res;			/* nodes and scratch live there */
	perr		err;
	bool		oom;
} js_parser;

static js_node *
js_nodes(js_parser *ps)
{
	return (js_node *) ps->res->priv_nodes;
}

static int
js_new_node(js_parser *ps, js_type type, const char *src)
{
	lp_result  *r = ps->res;
	js_node    *n;

	if (r->priv_n_nodes == r->priv_cap_nodes)
	{
		size_t		cap = r->priv_cap_nodes ? r->priv_cap_nodes * 2 : 64;
		void	   *p = (cap < (size_t) INT32_MAX) ? realloc(r->priv_nodes, cap * sizeof(js_node)) : NULL;

		if (p == NULL)
		{
			ps->oom = true;
			return -1;
		}
		r->priv_nodes = p;
		r->priv_cap_nodes = cap;
	}
	n = &js_nodes(ps)[r->priv_n_nodes];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->first = n->next = -1;
	n->src = src;
	return (int) r->priv_n_nodes++;
}

static void
js_skip_ws(js_parser *ps)
{
	while (ps->p < ps->end && is_space(*ps->p))
		ps->p++;
}

/*
 * Decodes the quoted string at ps->p (quote ', " or `) onto the end of the
 * scratch buffer, JavaScript escapes included; sets *unstorable when the
 * value holds U+0000 or a lone surrogate (written as U+FFFD), which jsonb
 * cannot hold.
 */
static bool
js_string_part(js_parser *ps, bool *unstorable)
{
	lp_buf	   *sb = &ps->res->priv_scratch;
	char		quote = *ps->p;
	const char *s = ps->p + 1;
	const char *end = ps->end;

	for (;;)
	{
		const char *run = s;

		while (s < end && *s != quote && *s != '\\' && *s != '\n' && *s != '\r' && *s != '\0')
			s++;
		buf_put(sb, run, (size_t) (s - run));
		if (s >= end)
			return fail(&ps->err, PERR_EOF, s, "unterminated string");
		if (*s == quote)
			break;
		if (*s == '\0')
		{
			*unstorable = true;
			buf_putc(sb, '\0');
			s++;
			continue;
		}
		if (*s == '\n' || *s == '\r')
		{
			if (quote != '`')
				return fail(&ps->err, PERR_SYNTAX, s, "line break inside a quoted string");
			buf_putc(sb, '\n');
			s = next_line_start(s, end);
			continue;
		}
		if (end - s < 2)
			return fail(&ps->err, PERR_EOF, s, "unterminated escape");
		s++;
		switch (*s)
		{
			case 'n':
				buf_putc(sb, '\n');
				s++;
				break;
			case 't':
				buf_putc(sb, '\t');
				s++;
				break;
			case 'r':
				buf_putc(sb, '\r');
				s++;
				break;
			case 'b':
				buf_putc(sb, '\b');
				s++;
				break;
			case 'f':
				buf_putc(sb, '\f');
				s++;
				break;
			case 'v':
				buf_putc(sb, '\v');
				s++;
				break;
			case '0':
				buf_putc(sb, '\0');
				*unstorable = true;
				s++;
				break;
			case '\r':
				s++;
				if (s < end && *s == '\n')
					s++;
				break;			/* line continuation */
			case '\n':
				s++;
				break;
			case 'x':
				{
					long		v;

					if (end - s < 3)
						return fail(&ps->err, PERR_EOF, s, "unterminated \\x escape");
					v = hex_run(s + 1, 2);
					if (v < 0)
						return fail(&ps->err, PERR_SYNTAX, s, "bad \\x escape");
					if (v == 0)
						*unstorable = true;
					put_utf8(sb, (unsigned long) v);
					s += 3;
					break;
				}
			case 'u':
				{
					long		cp;

					if (end - s >= 2 && s[1] == '{')
					{
						const char *q = s + 2;

						cp = 0;
						while (q < end && hex_value(*q) >= 0 && cp <= 0x10FFFF)
							cp = cp * 16 + hex_value(*q++);
						if (q >= end)
							return fail(&ps->err, PERR_EOF, s, "unterminated \\u escape");
						if (*q != '}' || q == s + 2 || cp > 0x10FFFF)
							return fail(&ps->err, PERR_SYNTAX, s, "bad \\u escape");
						s = q + 1;
					}
					else
					{
						if (end - s < 5)
							return fail(&ps->err, PERR_EOF, s, "unterminated \\u escape");
						cp = hex_run(s + 1, 4);
						if (cp < 0)
							return fail(&ps->err, PERR_SYNTAX, s, "bad \\u escape");
						s += 5;
						if (cp >= 0xD800 && cp <= 0xDBFF && end - s >= 6 && s[0] == '\\' && s[1] == 'u')
						{
							long		lo = hex_run(s + 2, 4);

							if (lo >= 0xDC00 && lo <= 0xDFFF)
							{
								cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
								s += 6;
							}
						}
					}
					if (cp >= 0xD800 && cp <= 0xDFFF)
					{
						cp = 0xFFFD;	/* lone surrogate */
						*unstorable = true;
					}
					if (cp == 0)
						*unstorable = true;
					put_utf8(sb, (unsigned long) cp);
					break;
				}
			default:
				/* \\ \' \" \` and any other character stand for themselves */
				buf_putc(sb, *s);
				s++;
				break;
		}
	}
	ps->p = s + 1;
	return true;
}

/* a string, with Node's "'abc' +\n 'def'" continuation of long strings */
static int
js_string(js_parser *ps)
{
	int			id = js_new_node(ps, JS_STRING, ps->p);
	size_t		start = ps->res->priv_scratch.len;
	bool		unstorable = false;

	if (id < 0 || !js_string_part(ps, &unstorable))
		return -1;
	for (;;)
	{
		const char *save = ps->p;

		js_skip_ws(ps);
		if (ps->p < ps->end && *ps->p == '+')
		{
			ps->p++;
			js_skip_ws(ps);
			if (ps->p < ps->end && (*ps->p == '\'' || *ps->p == '"' || *ps->p == '`'))
			{
				if (!js_string_part(ps, &unstorable))
					return -1;
				continue;
			}
		}
		ps->p = save;
		break;
	}
	js_nodes(ps)[id].str_off = start;
	js_nodes(ps)[id].str_len = ps->res->priv_scratch.len - start;
	js_nodes(ps)[id].unstorable = unstorable;
	return id;
}

static int	js_value(js_parser *ps, int depth);

static bool
js_key(js_parser *ps, size_t *off, size_t *len, bool *unstorable)
{
	lp_buf	   *sb = &ps->res->priv_scratch;

	*off = sb->len;
	if (ps->p >= ps->end)
		return fail(&ps->err, PERR_EOF, ps->p, "unterminated object");
	if (*ps->p == '\'' || *ps->p == '"' || *ps->p == '`')
	{
		if (!js_string_part(ps, unstorable))
			return false;
	}
	else
	{
		const char *s = ps->p;

		while (ps->p < ps->end && is_ident_char(*ps->p))
			ps->p++;
		if (ps->p == s)
			return fail(&ps->err, PERR_SYNTAX, s, "expected a key");
		buf_put(sb, s, (size_t) (ps->p - s));
	}
	*len = sb->len - *off;
	return true;
}

/* the object id is complete: refuses a member name that appears twice */
static bool
js_check_keys(js_parser *ps, int id)
{
	key_ref		small[16];
	key_ref    *keys = small;
	size_t		n = 0;
	long		dup;

	for (int c = js_nodes(ps)[id].first; c >= 0; c = js_nodes(ps)[c].next)
		n++;
	if (n < 2 || ps->res->priv_scratch.failed)
		return true;
	if (n > 16 && (keys = malloc(n * sizeof(key_ref))) == NULL)
	{
		ps->oom = true;
		return fail(&ps->err, PERR_SYNTAX, ps->p, "out of memory");
	}
	n = 0;
	for (int c = js_nodes(ps)[id].first; c >= 0; c = js_nodes(ps)[c].next)
	{
		const js_node *cn = &js_nodes(ps)[c];

		keys[n].off = cn->key_off;
		keys[n].len = cn->key_len;
		keys[n].src = cn->key_src;
		keys[n].src_len = cn->key_src_len;
		n++;
	}
	dup = duplicate_key(ps->res->priv_scratch.data, keys, n);
	if (dup == -2)
	{
		ps->oom = true;
		fail(&ps->err, PERR_SYNTAX, ps->p, "out of memory");
	}
	else if (dup >= 0)
	{
		fail(&ps->err, PERR_SYNTAX, keys[dup].src, "duplicate key");
		ps->err.name = keys[dup].src;
		ps->err.name_len = keys[dup].src_len;
	}
	if (keys != small)
		free(keys);
	return dup == -1;
}

static int
js_container(js_parser *ps, int depth, char close)
{
	bool		is_object = close == '}';
	int			id,
				last = -1;

	if (depth >= LP_MAX_DEPTH)
		return fail(&ps->err, PERR_SYNTAX, ps->p, "nesting too deep"), -1;
	id = js_new_node(ps, is_object ? JS_OBJECT : JS_ARRAY, ps->p);
	if (id < 0)
		return -1;
	ps->p++;
	for (;;)
	{
		size_t		key_off = 0,
					key_len = 0,
					key_src_len = 0;
		const char *key_src = NULL;
		bool		key_unstorable = false;
		int			child;

		js_skip_ws(ps);
		if (ps->p >= ps->end)
			return fail(&ps->err, PERR_EOF, ps->p, is_object ? "unterminated object" : "unterminated array"), -1;
		if (*ps->p == close)	/* empty, or after a trailing comma */
		{
			ps->p++;
			return (!is_object || js_check_keys(ps, id)) ? id : -1;
		}
		if (is_object)
		{
			key_src = ps->p;
			if (!js_key(ps, &key_off, &key_len, &key_unstorable))
				return -1;
			key_src_len = (size_t) (ps->p - key_src);
			js_skip_ws(ps);
			if (ps->p >= ps->end)
				return fail(&ps->err, PERR_EOF, ps->p, "unterminated object"), -1;
			if (*ps->p != ':')
				return fail(&ps->err, PERR_SYNTAX, ps->p, "expected ':'"), -1;
			ps->p++;
		}
		child = js_value(ps, depth + 1);
		if (child < 0)
			return -1;
		js_nodes(ps)[child].key_off = key_off;
		js_nodes(ps)[child].key_len = key_len;
		js_nodes(ps)[child].key_src = key_src;
		js_nodes(ps)[child].key_src_len = key_src_len;
		js_nodes(ps)[child].key_unstorable = key_unstorable;
		if (last < 0)
			js_nodes(ps)[id].first = child;
		else
			js_nodes(ps)[last].next = child;
		last = child;
		js_skip_ws(ps);
		if (ps->p >= ps->end)
			return fail(&ps->err, PERR_EOF, ps->p, is_object ? "unterminated object" : "unterminated array"), -1;
		if (*ps->p == ',')
			ps->p++;
		else if (*ps->p == close)
		{
			ps->p++;
			return (!is_object || js_check_keys(ps, id)) ? id : -1;
		}
		else
			return fail(&ps->err, PERR_SYNTAX, ps->p, is_object ? "expected ',' or '}'" : "expected ',' or ']'"), -1;
	}
}

static int
js_value(js_parser *ps, int depth)
{
	const char *s;
	char		c;

	js_skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(&ps->err, PERR_EOF, ps->p, "missing value"), -1;
	s = ps->p;
	c = *s;
	if (c == '{')
		return js_container(ps, depth, '}');
	if (c == '[')
		return js_container(ps, depth, ']');
	if (c == '\'' || c == '"' || c == '`')
		return js_string(ps);
	if (is_digit(c) || c == '-' || c == '+' || c == '.')
	{
		int			id;

		ps->p++;
		while (ps->p < ps->end && (is_ident_char(*ps->p) || *ps->p == '.' ||
								   ((*ps->p == '+' || *ps->p == '-') && (ps->p[-1] == 'e' || ps->p[-1] == 'E'))))
			ps->p++;
		id = js_new_node(ps, JS_NUMBER, s);
		if (id >= 0)
			js_nodes(ps)[id].src_len = (size_t) (ps->p - s);
		return id;
	}
	if (is_ident_char(c))
	{
		size_t		n;
		js_type		type = JS_IDENT;
		int			id;

		while (ps->p < ps->end && is_ident_char(*ps->p))
			ps->p++;
		n = (size_t) (ps->p - s);
		if (n == 4 && memcmp(s, "true", 4) == 0)
			type = JS_TRUE;
		else if (n == 5 && memcmp(s, "false", 5) == 0)
			type = JS_FALSE;
		else if (n == 4 && memcmp(s, "null", 4) == 0)
			type = JS_NULL;
		else if (n == 9 && memcmp(s, "undefined", 9) == 0)
			type = JS_UNDEFINED;
		else
		{
			/* a class name before an object, as Node prints instances: Foo { ... } */
			const char *save = ps->p;

			js_skip_ws(ps);
			if (ps->p < ps->end && *ps->p == '{')
				return js_container(ps, depth, '}');
			ps->p = save;
		}
		id = js_new_node(ps, type, s);
		if (id >= 0)
			js_nodes(ps)[id].src_len = n;
		return id;
	}
	return fail(&ps->err, PERR_SYNTAX, s, "unexpected character"), -1;
}

/*
 * Parses s[0..n) as one object literal (whitespace around allowed) into the
 * node buffer of res (cleared first).  Returns the root node or -1.
 */
static int
js_parse_object(lp_result *res, const char *s, size_t n, perr *err, bool *oom)
{
	js_parser	ps = {s, s + n, res, {PERR_NONE, NULL, NULL, NULL, 0}, false};
	int			root = -1;

	res->priv_n_nodes = 0;
	res->priv_scratch.len = 0;
	js_skip_ws(&ps);
	if (ps.p < ps.end && *ps.p != '{')
		fail(&ps.err, PERR_SYNTAX, ps.p, "expected '{'");
	else
		root = js_value(&ps, 0);
	if (root >= 0)
	{
		js_skip_ws(&ps);
		if (ps.p < ps.end)
		{
			fail(&ps.err, PERR_SYNTAX, ps.p, "text after the object");
			root = -1;
		}
	}
	if (ps.oom || res->priv_scratch.failed)
		*oom = true;
	*err = ps.err;
	return root;
}

static int
js_get(const lp_result *res, int obj, const char *key)
{
	const js_node *nodes = (const js_node *) res->priv_nodes;
	size_t		klen = strlen(key);

	if (obj < 0 || nodes[obj].type != JS_OBJECT)
		return -1;
	for (int c = nodes[obj].first; c >= 0; c = nodes[c].next)
		if (nodes[c].key_len == klen && memcmp(res->priv_scratch.data + nodes[c].key_off, key, klen) == 0)
			return c;
	return -1;
}

/* writes a node as JSON: numbers as written, undefined as null, bare words as strings */
static void
js_emit(lp_result *res, lp_buf *out, int id)
{
	const js_node *n = &((const js_node *) res->priv_nodes)[id];

	switch (n->type)
	{
		case JS_OBJECT:
		case JS_ARRAY:
			{
				bool		first = true;

				buf_putc(out, n->type == JS_OBJECT ? '{' : '[');
				for (int c = n->first; c >= 0; c = ((const js_node *) res->priv_nodes)[c].next)
				{
					const js_node *cn = &((const js_node *) res->priv_nodes)[c];

					if (!first)
						buf_putc(out, ',');
					first = false;
					if (n->type == JS_OBJECT)
					{
						put_json_string(out, res->priv_scratch.data + cn->key_off, cn->key_len);
						buf_putc(out, ':');
					}
					js_emit(res, out, c);
				}
				buf_putc(out, n->type == JS_OBJECT ? '}' : ']');
				break;
			}
		case JS_STRING:
			put_json_string(out, res->priv_scratch.data + n->str_off, n->str_len);
			break;
		case JS_NUMBER:
			if (!put_number(out, n->src, n->src_len, false))
				put_json_string(out, n->src, n->src_len);
			break;
		case JS_TRUE:
			buf_lit(out, "true");
			break;
		case JS_FALSE:
			buf_lit(out, "false");
			break;
		case JS_NULL:
		case JS_UNDEFINED:
			buf_lit(out, "null");
			break;
		case JS_IDENT:
			put_json_string(out, n->src, n->src_len);
			break;
	}
}

/* ------------------------------------------------------------------ */
/* events                                                              */

typedef struct lp_ctx
{
	lp_result  *res;
	lp_buf	   *out;			/* = &res->priv_bodies */
	bool		oom;
} lp_ctx;

/* line and column (1-based) of pos inside the event */
static void
event_position(const lp_event *ev, const char *pos, int *line, int *col)
{
	const char *s = ev->raw.ptr;
	const char *e = ev->raw.ptr + ev->raw.len;
	const char *line_start = s;

	*line = 1;
	if (pos == NULL || pos < s)
		pos = s;
	if (pos > e)
		pos = e;
	/* lines end at LF, CR LF or a lone CR */
	for (const char *p = s; p < pos; p++)
		if (*p == '\n' || (*p == '\r' && !(p + 1 < e && p[1] == '\n')))
		{
			(*line)++;
			line_start = p + 1;
		}
	*col = (int) (pos - line_start) + 1;
}

/* Replaces the body being built with a malformed one. */
static void
set_malformed(lp_ctx *c, lp_event *ev, const char *reason, lp_kind intended, const char *detail)
{
	lp_buf	   *out = c->out;

	if (!out->failed)
		out->len = ev->priv_body_off;
	ev->kind = LP_MALFORMED;
	ev->reason = reason;
	ev->intended_kind = intended;
	buf_lit(out, "{\"reason\":");
	put_json_string(out, reason, strlen(reason));
	buf_lit(out, ",\"detail\":");
	put_json_string(out, detail, strlen(detail));
	buf_lit(out, ",\"intended_kind\":");
	if (intended == LP_KIND_NONE)
		buf_lit(out, "null");
	else
		put_json_string(out, kind_names[intended], strlen(kind_names[intended]));
	buf_putc(out, '}');
}

/* a parse failure of the data of an event that intended to be `intended` */
static void
set_parse_failure(lp_ctx *c, lp_event *ev, lp_kind intended, const perr *err)
{
	char		detail[256];
	char		name[80] = "";
	int			line,
				col;

	if (err->name != NULL)
	{
		/* the name as written, quoted when it was not */
		int			shown = err->name_len > 64 ? 64 : (int) err->name_len;
		bool		quoted = *err->name == '\'' || *err->name == '"' || *err->name == '`';

		snprintf(name, sizeof(name), quoted ? " %.*s%s" : " '%.*s'%s", shown, err->name,
				 (size_t) shown < err->name_len ? "..." : "");
	}
	event_position(ev, err->at, &line, &col);
	snprintf(detail, sizeof(detail), "%s: %s%s at line %d, column %d%s",
			 kind_names[intended], err->what ? err->what : "syntax error", name, line, col,
			 err->kind == PERR_EOF ? " (the event ends inside the object)" : "");
	set_malformed(c, ev, err->kind == PERR_EOF ? "truncated_event" : "malformed_event", intended, detail);
}

static const js_node *
node_at(lp_ctx *c, int id)
{
	return &((const js_node *) c->res->priv_nodes)[id];
}

static bool
is_nullish_node(lp_ctx *c, int id)
{
	return id < 0 || node_at(c, id)->type == JS_NULL || node_at(c, id)->type == JS_UNDEFINED;
}

/*
 * The field rules of the data events: one table per kind (below), each row a
 * key, what its value is, whether it is required and a further rule.  This is
 * the one home of the validation of data events: ingestion stores what the
 * parser accepts and quarantines what it makes malformed, with its reason.
 */
typedef enum field_value
{
	FV_STRING,					/* a non-empty string */
	FV_NUMBER,					/* a finite number */
	FV_BOOL,
	FV_METADATA					/* a string (JSON inside becomes JSON), object, array, number or boolean */
} field_value;

typedef enum field_rule
{
	FR_NONE,
	FR_MONEY,					/* lp_money_in_range(): out_of_range beyond it */
	FR_CURRENCY_CODE,			/* lp_currency_code_valid() */
	FR_TRANSACTION_TYPE			/* lp_transaction_type_valid() */
} field_rule;

typedef struct field_spec
{
	const char *key;
	field_value value;
	bool		required;		/* absent: missing_field; else absent, null and undefined are null */
	field_rule	rule;
	bool		event_id;		/* the id of the event itself (quarantine.txn_id) */
} field_spec;

#define REQUIRED true
#define OPTIONAL false

static const field_spec current_txn_fields[] = {
	{"id", FV_STRING, REQUIRED, FR_NONE, true},
	{"type", FV_STRING, REQUIRED, FR_TRANSACTION_TYPE, false},
	{"source", FV_STRING, OPTIONAL, FR_NONE, false},
	{"action", FV_STRING, OPTIONAL, FR_NONE, false},
	{"userId", FV_STRING, REQUIRED, FR_NONE, false},
	{"paymentBalance", FV_NUMBER, OPTIONAL, FR_MONEY, false},
	{"updatePaymentBalance", FV_BOOL, OPTIONAL, FR_NONE, false},
	{"metadata", FV_METADATA, OPTIONAL, FR_NONE, false},
	{"currency", FV_STRING, REQUIRED, FR_CURRENCY_CODE, false},
	{"amount", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"vat", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"oldBalance", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"newBalance", FV_NUMBER, REQUIRED, FR_MONEY, false}
};
static const field_spec legacy_txn_fields[] = {
	{"id", FV_STRING, REQUIRED, FR_NONE, true},
	{"userId", FV_STRING, REQUIRED, FR_NONE, false},
	{"currency", FV_STRING, REQUIRED, FR_CURRENCY_CODE, false},
	{"amount", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"vat", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"oldBalance", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"newBalance", FV_NUMBER, REQUIRED, FR_MONEY, false}
};
/* the legacy form (Dec 2023) has none of these keys the current form added */
static const char *const current_only_keys[] = {
	"type", "source", "action", "paymentBalance", "updatePaymentBalance", "metadata"
};
static const field_spec balance_error_fields[] = {
	{"userId", FV_STRING, REQUIRED, FR_NONE, false},
	{"subscriptionBalance", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"paymentBalance", FV_NUMBER, REQUIRED, FR_MONEY, false}
};
/* transactionId is required: a refusal is traced by the transaction it refused */
static const field_spec rejection_fields[] = {
	{"userId", FV_STRING, REQUIRED, FR_NONE, false},
	{"currentBalance", FV_NUMBER, REQUIRED, FR_MONEY, false},
	{"transactionId", FV_STRING, REQUIRED, FR_NONE, true}
};

#define N_SPECS(a) ((int) (sizeof(a) / sizeof((a)[0])))
#define MAX_SPECS 16
_Static_assert(N_SPECS(current_txn_fields) <= MAX_SPECS && N_SPECS(legacy_txn_fields) <= MAX_SPECS &&
			   N_SPECS(balance_error_fields) <= MAX_SPECS && N_SPECS(rejection_fields) <= MAX_SPECS,
			   "emit_fields() holds at most MAX_SPECS fields");

/* what a field check found */
typedef enum field_verdict
{
	FIELD_OK,
	FIELD_MISSING,				/* missing_field */
	FIELD_BAD,					/* bad_field: not of its type */
	FIELD_UNSTORABLE,			/* bad_field: U+0000 or a lone surrogate */
	FIELD_NOT_CURRENCY,			/* bad_field: not three capital letters */
	FIELD_NOT_TRANSACTION_TYPE, /* bad_field: not CREDIT or DEBIT */
	FIELD_TOO_LONG,				/* out_of_range: a string over LP_MAX_FIELD_BYTES */
	FIELD_TOO_BIG_NUMBER,		/* out_of_range: a number over the number limits */
	FIELD_MONEY_OUT_OF_RANGE	/* out_of_range: money of 10^LP_MONEY_LIMIT_POWER or more */
} field_verdict;

bool
lp_currency_code_valid(const char *s, size_t n)
{
	if (n != 3)
		return false;
	for (size_t i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}

bool
lp_transaction_type_valid(const char *s, size_t n)
{
	return (n == 6 && memcmp(s, "CREDIT", 6) == 0) || (n == 5 && memcmp(s, "DEBIT", 5) == 0);
}

/*
 * The decimal exponent of the leading non-zero digit of a NUMBER_OK token
 * (1234.5: 3, 0.05: -2, 1.5e20: 20); false when the number is zero.
 */
static bool
number_magnitude(const char *s, size_t n, long *magnitude)
{
	size_t		i = 0,
				start;
	long		mag = 0,
				exponent = 0;
	bool		nonzero = false,
				negative_exponent = false;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	while (i < n && s[i] == '0')
		i++;
	start = i;
	while (i < n && is_digit(s[i]))
		i++;
	if (i > start)
	{
		nonzero = true;
		mag = (long) (i - start) - 1;
	}
	if (i < n && s[i] == '.')
	{
		start = ++i;
		while (i < n && s[i] == '0')
			i++;
		if (!nonzero && i < n && is_digit(s[i]))
		{
			nonzero = true;
			mag = -(long) (i - start) - 1;
		}
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (!nonzero)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			negative_exponent = s[i++] == '-';
		for (; i < n && is_digit(s[i]); i++)
			if (exponent <= LP_MAX_EXPONENT)
				exponent = exponent * 10 + (s[i] - '0');
	}
	*magnitude = mag + (negative_exponent ? -exponent : exponent);
	return true;
}

bool
lp_money_in_range(const char *number, size_t n)
{
	long		magnitude;

	if (number_check(NULL, number, n, false) != NUMBER_OK)
		return false;
	return !number_magnitude(number, n, &magnitude) || magnitude < LP_MONEY_LIMIT_POWER;
}

static const char *
field_expectation(const field_spec *spec)
{
	switch (spec->value)
	{
		case FV_STRING:
			return spec->required ? "a non-empty string" : "a non-empty string or undefined";
		case FV_NUMBER:
			return spec->required ? "a finite number" : "a finite number or undefined";
		case FV_BOOL:
			return "true, false or undefined";
		case FV_METADATA:
			return "a string, an object or undefined";
	}
	return "valid";
}

/*
 * Replaces the body being built with a malformed one about the data field
 * key; id_node: the event's own id when it is a storable string, else -1.
 */
static void
set_malformed_field(lp_ctx *c, lp_event *ev, const char *reason, lp_kind intended, const char *detail,
					const char *key, int id_node)
{
	set_malformed(c, ev, reason, intended, detail);
	if (!c->out->failed)
		c->out->len--;			/* the closing brace */
	buf_lit(c->out, ",\"field\":");
	put_json_string(c->out, key, strlen(key));
	if (id_node >= 0)
	{
		const js_node *n = node_at(c, id_node);

		buf_lit(c->out, ",\"txn_id\":");
		put_json_string(c->out, c->res->priv_scratch.data + n->str_off, n->str_len);
	}
	buf_putc(c->out, '}');
}

static void
set_field_failure(lp_ctx *c, lp_event *ev, lp_kind intended, const field_spec *spec, int node,
				  field_verdict verdict, int id_node)
{
	char		detail[320];
	const char *reason = "bad_field";
	const char *key = spec->key;
	const js_node *n = node >= 0 ? node_at(c, node) : NULL;
	int			line = 0,
				col = 0;

	if (n != NULL)
		event_position(ev, n->src, &line, &col);
	switch (verdict)
	{
		case FIELD_OK:
		case FIELD_MISSING:
			snprintf(detail, sizeof(detail), "%s: required key '%s' is missing", kind_names[intended], key);
			reason = "missing_field";
			break;
		case FIELD_BAD:
			snprintf(detail, sizeof(detail), "%s: key '%s' at line %d, column %d is not %s",
					 kind_names[intended], key, line, col, field_expectation(spec));
			break;
		case FIELD_UNSTORABLE:
			snprintf(detail, sizeof(detail),
					 "%s: key '%s' at line %d, column %d holds U+0000 or a lone surrogate, which cannot be stored",
					 kind_names[intended], key, line, col);
			break;
		case FIELD_NOT_CURRENCY:
			snprintf(detail, sizeof(detail),
					 "%s: key '%s' at line %d, column %d is not a currency code (three capital letters)",
					 kind_names[intended], key, line, col);
			break;
		case FIELD_NOT_TRANSACTION_TYPE:
			snprintf(detail, sizeof(detail), "%s: key '%s' at line %d, column %d is not CREDIT or DEBIT",
					 kind_names[intended], key, line, col);
			break;
		case FIELD_TOO_LONG:
			snprintf(detail, sizeof(detail), "%s: key '%s' at line %d, column %d is %zu bytes long, more than the limit of %d",
					 kind_names[intended], key, line, col, n->str_len, LP_MAX_FIELD_BYTES);
			reason = "out_of_range";
			break;
		case FIELD_TOO_BIG_NUMBER:
			if (n->src_len > LP_MAX_NUMBER_LEN)
				snprintf(detail, sizeof(detail),
						 "%s: key '%s' at line %d, column %d is a number of %zu characters, more than the limit of %d",
						 kind_names[intended], key, line, col, n->src_len, LP_MAX_NUMBER_LEN);
			else
				snprintf(detail, sizeof(detail),
						 "%s: key '%s' at line %d, column %d is a number with an exponent beyond the limit of +-%d",
						 kind_names[intended], key, line, col, LP_MAX_EXPONENT);
			reason = "out_of_range";
			break;
		case FIELD_MONEY_OUT_OF_RANGE:
			snprintf(detail, sizeof(detail),
					 "%s: key '%s' at line %d, column %d is money of 10^%d or more, beyond any wallet balance",
					 kind_names[intended], key, line, col, LP_MONEY_LIMIT_POWER);
			reason = "out_of_range";
			break;
	}
	set_malformed_field(c, ev, reason, intended, detail, key, id_node);
}

/* key of the event's data is missing or not an object */
static void
set_not_object(lp_ctx *c, lp_event *ev, lp_kind intended, const char *key, int node)
{
	char		detail[256];
	int			line,
				col;

	if (node < 0)
	{
		snprintf(detail, sizeof(detail), "%s: required key '%s' is missing", kind_names[intended], key);
		set_malformed_field(c, ev, "missing_field", intended, detail, key, -1);
		return;
	}
	event_position(ev, node_at(c, node)->src, &line, &col);
	snprintf(detail, sizeof(detail), "%s: key '%s' at line %d, column %d is not an object",
			 kind_names[intended], key, line, col);
	set_malformed_field(c, ev, "bad_field", intended, detail, key, -1);
}

static field_verdict
number_verdict(lp_ctx *c, int id, field_rule rule)
{
	const js_node *n = node_at(c, id);

	if (n->type != JS_NUMBER)
		return FIELD_BAD;
	switch (number_check(NULL, n->src, n->src_len, false))
	{
		case NUMBER_OK:
			if (rule == FR_MONEY && !lp_money_in_range(n->src, n->src_len))
				return FIELD_MONEY_OUT_OF_RANGE;
			return FIELD_OK;
		case NUMBER_TOO_BIG:
			return FIELD_TOO_BIG_NUMBER;
		default:
			return FIELD_BAD;
	}
}

static field_verdict
string_verdict(lp_ctx *c, int id, field_rule rule)
{
	const js_node *n = node_at(c, id);
	const char *s;

	if (n->type != JS_STRING || n->str_len == 0)
		return FIELD_BAD;
	if (n->unstorable)
		return FIELD_UNSTORABLE;
	if (n->str_len > LP_MAX_FIELD_BYTES)
		return FIELD_TOO_LONG;
	s = c->res->priv_scratch.data + n->str_off;
	if (rule == FR_CURRENCY_CODE && !lp_currency_code_valid(s, n->str_len))
		return FIELD_NOT_CURRENCY;
	if (rule == FR_TRANSACTION_TYPE && !lp_transaction_type_valid(s, n->str_len))
		return FIELD_NOT_TRANSACTION_TYPE;
	return FIELD_OK;
}

/* a metadata object or array literal: no string or member name jsonb cannot store */
static bool
storable_tree(lp_ctx *c, int id)
{
	const js_node *n = node_at(c, id);

	if (n->unstorable || n->key_unstorable)
		return false;
	if (n->type == JS_OBJECT || n->type == JS_ARRAY)
		for (int ch = n->first; ch >= 0; ch = node_at(c, ch)->next)
			if (!storable_tree(c, ch))
				return false;
	return true;
}

static field_verdict
field_check(lp_ctx *c, int id, const field_spec *spec)
{
	if (id < 0)
		return spec->required ? FIELD_MISSING : FIELD_OK;
	/* null and undefined stand for "absent" in an optional field, never in a required one */
	if (!spec->required && is_nullish_node(c, id))
		return FIELD_OK;
	switch (spec->value)
	{
		case FV_STRING:
			return string_verdict(c, id, spec->rule);
		case FV_NUMBER:
			return number_verdict(c, id, spec->rule);
		case FV_BOOL:
			return (node_at(c, id)->type == JS_TRUE || node_at(c, id)->type == JS_FALSE) ? FIELD_OK : FIELD_BAD;
		case FV_METADATA:
			{
				js_type		ty = node_at(c, id)->type;

				if (ty == JS_NUMBER)
					return number_verdict(c, id, FR_NONE);
				if (ty == JS_STRING || ty == JS_OBJECT || ty == JS_ARRAY)
					return storable_tree(c, id) ? FIELD_OK : FIELD_UNSTORABLE;
				return (ty == JS_TRUE || ty == JS_FALSE) ? FIELD_OK : FIELD_BAD;
			}
	}
	return FIELD_BAD;
}

/* metadata: a string holding JSON becomes that JSON, any other string stays a string */
static void
emit_metadata(lp_ctx *c, int id)
{
	const js_node *n;

	if (is_nullish_node(c, id))
	{
		buf_lit(c->out, "null");
		return;
	}
	n = node_at(c, id);
	if (n->type == JS_STRING)
	{
		const char *s = c->res->priv_scratch.data + n->str_off;

		if (!json_embed(c->out, s, n->str_len, NULL, &c->oom))
			put_json_string(c->out, s, n->str_len);
		return;
	}
	js_emit(c->res, c->out, id);
}

/*
 * Checks the fields of obj against specs, then writes them as the members of
 * a JSON object (without braces).  Returns false (event made malformed) on
 * the first field that breaks its rule.
 */
static bool
emit_fields(lp_ctx *c, lp_event *ev, lp_kind kind, int obj, const field_spec *specs, int n_specs, bool leading_comma)
{
	int			ids[MAX_SPECS];
	int			id_node = -1;

	for (int i = 0; i < n_specs; i++)
	{
		ids[i] = js_get(c->res, obj, specs[i].key);
		if (specs[i].event_id && ids[i] >= 0 && string_verdict(c, ids[i], FR_NONE) == FIELD_OK)
			id_node = ids[i];
	}
	for (int i = 0; i < n_specs; i++)
	{
		field_verdict verdict = field_check(c, ids[i], &specs[i]);

		if (verdict != FIELD_OK)
		{
			set_field_failure(c, ev, kind, &specs[i], ids[i], verdict, id_node);
			return false;
		}
	}
	for (int i = 0; i < n_specs; i++)
	{
		const js_node *n = ids[i] >= 0 ? node_at(c, ids[i]) : NULL;

		if (i > 0 || leading_comma)
			buf_putc(c->out, ',');
		put_key(c->out, specs[i].key);
		if (specs[i].value == FV_METADATA)
			emit_metadata(c, ids[i]);
		else if (n == NULL || n->type == JS_UNDEFINED || n->type == JS_NULL)
			buf_lit(c->out, "null");
		else
		{
			if (specs[i].event_id)
				ev->priv_txn_off = c->out->len;
			js_emit(c->res, c->out, ids[i]);
			if (specs[i].event_id)
				ev->priv_txn_len = c->out->len - ev->priv_txn_off;
		}
	}
	return true;
}

/* object literal of a data-carrying message; -1 when the event was made malformed */
static int
parse_data_object(lp_ctx *c, lp_event *ev, lp_kind kind, const char *s, const char *e)
{
	perr		err;
	int			root = js_parse_object(c->res, s, (size_t) (e - s), &err, &c->oom);

	if (root < 0)
		set_parse_failure(c, ev, kind, &err);
	return root;
}

static void
parse_transaction(lp_ctx *c, lp_event *ev, const char *s, const char *e)
{
	int			root = parse_data_object(c, ev, LP_TRANSACTION, s, e);
	int			txn;
	bool		legacy = true;

	if (root < 0)
		return;
	txn = js_get(c->res, root, "transaction");
	if (txn < 0 || node_at(c, txn)->type != JS_OBJECT)
	{
		set_not_object(c, ev, LP_TRANSACTION, "transaction", txn);
		return;
	}
	/* the legacy form (Dec 2023) has none of the keys the current form added */
	for (size_t i = 0; i < sizeof(current_only_keys) / sizeof(current_only_keys[0]); i++)
		if (js_get(c->res, txn, current_only_keys[i]) >= 0)
			legacy = false;
	buf_putc(c->out, '{');
	if (legacy ? !emit_fields(c, ev, LP_TRANSACTION, txn, legacy_txn_fields, N_SPECS(legacy_txn_fields), false)
		: !emit_fields(c, ev, LP_TRANSACTION, txn, current_txn_fields, N_SPECS(current_txn_fields), false))
		return;
	if (legacy)
		buf_lit(c->out, ",\"legacy\":true}");
	else
		buf_lit(c->out, ",\"legacy\":false}");
	ev->kind = LP_TRANSACTION;
}

static void
parse_balance_error(lp_ctx *c, lp_event *ev, const char *s, const char *e)
{
	int			root = parse_data_object(c, ev, LP_BALANCE_ERROR, s, e);

	if (root < 0)
		return;
	buf_putc(c->out, '{');
	if (!emit_fields(c, ev, LP_BALANCE_ERROR, root, balance_error_fields, N_SPECS(balance_error_fields), false))
		return;
	/* the link pass replaces this null when the transaction is found */
	buf_lit(c->out, ",\"txn_id\":null}");
	ev->kind = LP_BALANCE_ERROR;
}

static bool
contains(const char *s, size_t n, const char *needle)
{
	size_t		k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
			return true;
	return false;
}

/* A message that is an object literal: a rejection when it says so, else app_log. */
static bool
parse_rejection(lp_ctx *c, lp_event *ev, const char *s, const char *e)
{
	perr		err;
	int			root = js_parse_object(c->res, s, (size_t) (e - s), &err, &c->oom);
	int			msg,
				data;
	const js_node *mn;

	if (root < 0)
	{
		if (!contains(s, (size_t) (e - s), REJECTION_WORDS))
			return false;
		set_parse_failure(c, ev, LP_NEGATIVE_BALANCE_REJECTION, &err);
		return true;
	}
	msg = js_get(c->res, root, "message");
	data = js_get(c->res, root, "data");
	if (msg < 0 || node_at(c, msg)->type != JS_STRING)
		return false;
	mn = node_at(c, msg);
	if (!contains(c->res->priv_scratch.data + mn->str_off, mn->str_len, REJECTION_WORDS))
		return false;
	if (data < 0 || node_at(c, data)->type != JS_OBJECT)
	{
		set_not_object(c, ev, LP_NEGATIVE_BALANCE_REJECTION, "data", data);
		return true;
	}
	buf_putc(c->out, '{');
	if (!emit_fields(c, ev, LP_NEGATIVE_BALANCE_REJECTION, data, rejection_fields, N_SPECS(rejection_fields), false))
		return true;
	buf_lit(c->out, ",\"message\":");
	put_json_string(c->out, c->res->priv_scratch.data + mn->str_off, mn->str_len);
	buf_putc(c->out, '}');
	ev->kind = LP_NEGATIVE_BALANCE_REJECTION;
	return true;
}

static bool
starts_with(const char *s, const char *e, const char *prefix)
{
	size_t		k = strlen(prefix);

	return (size_t) (e - s) >= k && memcmp(s, prefix, k) == 0;
}

static const char *
trim_end(const char *s, const char *e)
{
	while (e > s && is_space(e[-1]))
		e--;
	return e;
}

/* a request or message id over LP_MAX_FIELD_BYTES: the event is out_of_range */
static void
set_id_too_long(lp_ctx *c, lp_event *ev, lp_kind intended, const char *what, const char *at, size_t len)
{
	char		detail[256];
	int			line,
				col;

	event_position(ev, at, &line, &col);
	snprintf(detail, sizeof(detail), "%s: the %s at line %d, column %d is %zu bytes long, more than the limit of %d",
			 kind_names[intended], what, line, col, len, LP_MAX_FIELD_BYTES);
	set_malformed(c, ev, "out_of_range", intended, detail);
}

/* {"message": text} plus "data" when the text ends with valid JSON from its first '{' */
static void
put_message_body(lp_ctx *c, const char *s, const char *e, bool with_data)
{
	e = trim_end(s, e);
	if (with_data)
	{
		const char *brace = memchr(s, '{', (size_t) (e - s));

		if (brace != NULL)
		{
			size_t		mark = c->out->len;

			buf_lit(c->out, "{\"message\":\"");
			put_json_chars(c->out, s, (size_t) (trim_end(s, brace) - s), true);
			buf_lit(c->out, "\",\"data\":");
			if (json_embed(c->out, brace, (size_t) (e - brace), NULL, &c->oom))
			{
				buf_putc(c->out, '}');
				return;
			}
			if (!c->out->failed)
				c->out->len = mark;
		}
	}
	buf_lit(c->out, "{\"message\":\"");
	put_json_chars(c->out, s, (size_t) (e - s), true);
	buf_lit(c->out, "\"}");
}

/* an application line's message */
static void
classify_message(lp_ctx *c, lp_event *ev, const char *s, const char *e)
{
	static const struct
	{
		const char *prefix;
		lp_kind		kind;
		bool		with_data;
	}			informational[] = {
		{"Skipping", LP_SKIP, false},
		{"SubscriptionBalanceUpdated event published", LP_BALANCE_UPDATED, false},
		{"Transaction Lock created", LP_TRANSACTION_LOCK, false},
		{"An error occured while syncing", LP_SYNC_ERROR, false},
		{"An error occurred while syncing", LP_SYNC_ERROR, false},
		{"Uncaught Exception", LP_UNCAUGHT_EXCEPTION, true},
		{"Invoke Error", LP_INVOKE_ERROR, true},
	};

	if (starts_with(s, e, PREFIX_PROCESSING))
	{
		const char *id = s + strlen(PREFIX_PROCESSING);
		const char *q = id;

		while (q < e && !is_space(*q))
			q++;
		if ((size_t) (q - id) > LP_MAX_FIELD_BYTES)
		{
			set_id_too_long(c, ev, LP_PROCESSING_MESSAGE, "message id", id, (size_t) (q - id));
			return;
		}
		if (q > id)
		{
			ev->kind = LP_PROCESSING_MESSAGE;
			ev->message_id.ptr = id;
			ev->message_id.len = (size_t) (q - id);
			buf_lit(c->out, "{\"message_id\":");
			put_json_string(c->out, id, (size_t) (q - id));
			buf_putc(c->out, '}');
			return;
		}
	}
	if (starts_with(s, e, PREFIX_TRANSACTION))
	{
		parse_transaction(c, ev, s + strlen(PREFIX_TRANSACTION), e);
		return;
	}
	if (starts_with(s, e, PREFIX_BALANCE_ERROR))
	{
		parse_balance_error(c, ev, s + strlen(PREFIX_BALANCE_ERROR), e);
		return;
	}
	if (s < e && *s == '{' && parse_rejection(c, ev, s, e))
		return;
	for (size_t i = 0; i < sizeof(informational) / sizeof(informational[0]); i++)
		if (starts_with(s, e, informational[i].prefix))
		{
			ev->kind = informational[i].kind;
			put_message_body(c, s, e, informational[i].with_data);
			return;
		}
	{
		static const struct
		{
			const char *word;
			lp_kind		kind;
		}			json_lines[] = {
			{"transaction", LP_TRANSACTION_JSON},
			{"record.body", LP_RECORD_BODY},
		};

		for (size_t i = 0; i < 2; i++)
			if (starts_with(s, e, json_lines[i].word))
			{
				const char *q = s + strlen(json_lines[i].word);

				if (q < e && is_space(*q))
				{
					while (q < e && is_space(*q))
						q++;
					if (q < e && *q == '{')
					{
						ev->kind = json_lines[i].kind;
						put_message_body(c, s, e, true);
						return;
					}
				}
			}
	}
	ev->kind = LP_APP_LOG;
	put_message_body(c, s, e, false);
}

/* "Runtime Version ARN" -> runtime_version_arn, "TraceId" -> trace_id */
static void
put_snake_key(lp_buf *out, const char *prefix, const char *s, const char *e)
{
	bool		need_sep = false;
	char		prev = 0;

	buf_putc(out, '"');
	buf_put(out, prefix, strlen(prefix));
	for (const char *p = s; p < e; p++)
	{
		char		ch = *p;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch))
		{
			bool		upper = ch >= 'A' && ch <= 'Z';

			if (need_sep || (upper && ((prev >= 'a' && prev <= 'z') || is_digit(prev))))
				buf_putc(out, '_');
			buf_putc(out, upper ? (char) (ch - 'A' + 'a') : ch);
			need_sep = false;
			prev = ch;
		}
		else if (prev != 0)
		{
			need_sep = true;
			prev = 0;
		}
	}
}

/*
 * Lambda's "Key: value\tKey: value" segments as JSON members: "Duration:
 * 235.15 ms" -> "duration_ms":235.15, "Memory Size: 1024 MB" ->
 * "memory_size_mb":1024, true/false as booleans, the rest as strings.
 */
static void
put_segments(lp_ctx *c, const char *s, const char *e, const char *prefix, bool *first)
{
	while (s < e)
	{
		const char *seg_end = memchr(s, '\t', (size_t) (e - s));
		const char *colon;

		if (seg_end == NULL)
			seg_end = e;
		colon = s;
		while (colon + 1 < seg_end && !(colon[0] == ':' && colon[1] == ' '))
			colon++;
		if (colon + 1 < seg_end && colon > s)
		{
			const char *v = colon + 2;
			const char *ve = trim_end(v, seg_end);
			size_t		vn = (size_t) (ve - v);
			const char *unit = NULL;

			if (!(colon - s == 9 && memcmp(s, "RequestId", 9) == 0))
			{
				if (!*first)
					buf_putc(c->out, ',');
				*first = false;
				put_snake_key(c->out, prefix, s, colon);
				if (vn > 3 && (memcmp(ve - 3, " ms", 3) == 0 || memcmp(ve - 3, " MB", 3) == 0) &&
					put_number(NULL, v, vn - 3, true))
					unit = ve[-2] == 'm' ? "_ms" : "_mb";
				if (unit != NULL)
				{
					buf_put(c->out, unit, 3);
					buf_lit(c->out, "\":");
					put_number(c->out, v, vn - 3, true);
				}
				else
				{
					buf_lit(c->out, "\":");
					if ((vn == 4 && memcmp(v, "true", 4) == 0) || (vn == 5 && memcmp(v, "false", 5) == 0))
						buf_put(c->out, v, vn);
					else
						put_json_string(c->out, v, vn);
				}
			}
		}
		s = seg_end < e ? seg_end + 1 : e;
	}
}

/* sets the request id s[0..e-s); false (nothing set) when it is longer than LP_MAX_FIELD_BYTES */
static bool
set_request_id(lp_event *ev, const char *s, const char *e)
{
	if ((size_t) (e - s) > LP_MAX_FIELD_BYTES)
		return false;
	if (e > s && !(e - s == 9 && memcmp(s, "undefined", 9) == 0))
	{
		ev->request_id.ptr = s;
		ev->request_id.len = (size_t) (e - s);
	}
	return true;
}

/* a platform line: text right after the export timestamp */
static void
classify_platform(lp_ctx *c, lp_event *ev, const char *s, const char *e)
{
	const char *line_end = line_end_at(s, e);
	const char *first_end = trim_end(s, line_end);
	bool		first = true;

	if (starts_with(s, first_end, PREFIX_START) || starts_with(s, first_end, PREFIX_END) ||
		starts_with(s, first_end, PREFIX_REPORT))
	{
		const char *id = (const char *) memchr(s, ':', (size_t) (first_end - s)) + 2;
		const char *q = id;
		lp_kind		kind = *s == 'S' ? LP_START : *s == 'E' ? LP_END : LP_REPORT;

		while (q < first_end && !is_space(*q))
			q++;
		if (!set_request_id(ev, id, q))
		{
			set_id_too_long(c, ev, kind, "request id", id, (size_t) (q - id));
			return;
		}
		buf_putc(c->out, '{');
		if (*s == 'S')
		{
			ev->kind = LP_START;
			while (q < first_end && is_space(*q))
				q++;
			if (starts_with(q, first_end, "Version: "))
			{
				buf_lit(c->out, "\"version\":");
				put_json_string(c->out, q + 9, (size_t) (first_end - q - 9));
			}
		}
		else if (*s == 'E')
			ev->kind = LP_END;
		else
		{
			ev->kind = LP_REPORT;
			put_segments(c, q, first_end, "", &first);
			/* continuation lines: XRAY TraceId: ...\tSegmentId: ... */
			for (const char *ls = line_end < e ? next_line_start(line_end, e) : e; ls < e;)
			{
				const char *le = line_end_at(ls, e);

				if (starts_with(ls, le, "XRAY "))
					put_segments(c, ls + 5, trim_end(ls, le), "xray_", &first);
				ls = le < e ? next_line_start(le, e) : e;
			}
		}
		buf_putc(c->out, '}');
		return;
	}
	if (starts_with(s, first_end, PREFIX_INIT_START) || starts_with(s, first_end, PREFIX_INIT_REPORT))
	{
		ev->kind = s[5] == 'S' ? LP_INIT_START : LP_INIT_REPORT;
		buf_putc(c->out, '{');
		put_segments(c, s + (ev->kind == LP_INIT_START ? 10 : 11), first_end, "", &first);
		buf_putc(c->out, '}');
		return;
	}
	if (starts_with(s, e, PREFIX_METRIC))
	{
		perr		err;

		if (json_embed(c->out, s, (size_t) (e - s), &err, &c->oom))
		{
			ev->kind = LP_METRIC;
			return;
		}
		set_parse_failure(c, ev, LP_METRIC, &err);
		return;
	}
	ev->kind = LP_PLATFORM_TEXT;
	put_message_body(c, s, e, false);
}

/* the kind a message would have, from how it begins (no parsing) */
static lp_kind
message_kind_hint(const char *s, const char *e)
{
	const char *head_end = (size_t) (e - s) > 4096 ? s + 4096 : e;

	if (starts_with(s, e, PREFIX_PROCESSING))
		return LP_PROCESSING_MESSAGE;
	if (starts_with(s, e, PREFIX_TRANSACTION))
		return LP_TRANSACTION;
	if (starts_with(s, e, PREFIX_BALANCE_ERROR))
		return LP_BALANCE_ERROR;
	if (s < e && *s == '{' && contains(s, (size_t) (head_end - s), REJECTION_WORDS))
		return LP_NEGATIVE_BALANCE_REJECTION;
	return LP_APP_LOG;
}

/* the kind a platform line would have, from how it begins */
static lp_kind
platform_kind_hint(const char *s, const char *e)
{
	if (starts_with(s, e, PREFIX_START))
		return LP_START;
	if (starts_with(s, e, PREFIX_END))
		return LP_END;
	if (starts_with(s, e, PREFIX_REPORT))
		return LP_REPORT;
	if (starts_with(s, e, PREFIX_INIT_START))
		return LP_INIT_START;
	if (starts_with(s, e, PREFIX_INIT_REPORT))
		return LP_INIT_REPORT;
	if (starts_with(s, e, PREFIX_METRIC))
		return LP_METRIC;
	return LP_PLATFORM_TEXT;
}

/* an event over LP_MAX_EVENT_BYTES: not parsed (its raw is cut by the caller) */
static void
set_too_large(lp_ctx *c, lp_event *ev, lp_kind intended)
{
	char		detail[256];

	snprintf(detail, sizeof(detail),
			 "the event is %zu bytes long, more than the limit of %zu; raw keeps its first %zu bytes at most",
			 ev->raw.len, LP_MAX_EVENT_BYTES, LP_RAW_EXCERPT_BYTES);
	set_malformed(c, ev, "too_large", intended, detail);
}

/* a broken event header: too_large wins for an oversized event (its raw is cut) */
static void
set_header_failure(lp_ctx *c, lp_event *ev, const char *reason, const char *detail)
{
	if (ev->raw.len > LP_MAX_EVENT_BYTES)
		set_too_large(c, ev, LP_KIND_NONE);
	else
		set_malformed(c, ev, reason, LP_KIND_NONE, detail);
}

/* the levels of Lambda's application lines */
static const char *const app_levels[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

/* texts that begin a log line (or the message of one) wherever they appear */
static const char *const line_markers[] = {
	PREFIX_START, PREFIX_END, PREFIX_REPORT, PREFIX_INIT_START " ", PREFIX_INIT_REPORT " ",
	PREFIX_PROCESSING, PREFIX_TRANSACTION, PREFIX_BALANCE_ERROR
};

/*
 * The first place in [s, e) where another log line starts: an application
 * header (<ts> TAB), TAB <LEVEL> TAB, or one of line_markers; NULL when there
 * is none.  *len: the length of what was found there.
 */
static const char *
embedded_line_start(const char *s, const char *e, size_t *len)
{
	for (const char *p = s; p < e; p++)
	{
		char		ch = *p;

		if (ch == '\t')
		{
			for (size_t i = 0; i < sizeof(app_levels) / sizeof(app_levels[0]); i++)
			{
				size_t		k = strlen(app_levels[i]);

				if ((size_t) (e - p) > k + 1 && memcmp(p + 1, app_levels[i], k) == 0 && p[k + 1] == '\t')
				{
					*len = k + 2;
					return p;
				}
			}
		}
		else if (is_digit(ch))
		{
			if ((size_t) (e - p) > 24 && p[24] == '\t' && timestamp_shape(p, (size_t) (e - p)))
			{
				*len = 25;
				return p;
			}
		}
		else if (ch == 'S' || ch == 'E' || ch == 'R' || ch == 'I' || ch == 'P')
		{
			for (size_t i = 0; i < sizeof(line_markers) / sizeof(line_markers[0]); i++)
				if (*line_markers[i] == ch && starts_with(p, e, line_markers[i]))
				{
					*len = strlen(line_markers[i]);
					return p;
				}
		}
	}
	return NULL;
}

/*
 * Makes the event malformed when another log line starts inside it (lines
 * run together): what it swallowed, a transaction above all, must not pass
 * for part of an informational event.  msg: where its own message starts.
 */
static void
check_run_together(lp_ctx *c, lp_event *ev, const char *msg)
{
	const char *e = ev->raw.ptr + ev->raw.len;
	const char *hit;
	size_t		hit_len = 0;
	lp_kind		intended = ev->kind;
	char		detail[256];
	int			line,
				col;

	switch (ev->kind)
	{
		case LP_TRANSACTION:
		case LP_BALANCE_ERROR:
		case LP_NEGATIVE_BALANCE_REJECTION:
		case LP_METRIC:
		case LP_MALFORMED:
			return;				/* wholly parsed, or already quarantined */
		default:
			break;
	}
	if (msg >= e)
		return;
	hit = embedded_line_start(msg + 1, e, &hit_len);
	if (hit == NULL)
		return;
	/* the data it swallowed names the kind (quarantine.kind) */
	if (contains(hit, (size_t) (e - hit), PREFIX_TRANSACTION))
		intended = LP_TRANSACTION;
	else if (contains(hit, (size_t) (e - hit), PREFIX_BALANCE_ERROR))
		intended = LP_BALANCE_ERROR;
	else if (contains(hit, (size_t) (e - hit), REJECTION_WORDS))
		intended = LP_NEGATIVE_BALANCE_REJECTION;
	event_position(ev, hit, &line, &col);
	snprintf(detail, sizeof(detail),
			 "%s: another log line starts inside this event at line %d, column %d (\"%.*s\"): lines run together",
			 kind_names[ev->kind], line, col, (int) hit_len, hit);
	set_malformed(c, ev, "malformed_event", intended, detail);
}

/* Classifies one event and writes its body; raw and export_ts are set. */
static void
parse_event(lp_ctx *c, lp_event *ev)
{
	const char *s = ev->raw.ptr;
	const char *e = ev->raw.ptr + ev->raw.len;
	bool		oversized = ev->raw.len > LP_MAX_EVENT_BYTES;
	int64_t		us;
	int			ts;

	ev->priv_body_off = c->out->len;
	ev->intended_kind = LP_KIND_NONE;
	ts = lp_parse_timestamp(s, (size_t) (e - s), &us);
	if (ts < 0 || !((size_t) (e - s) == 24 || s[24] == ' ' || s[24] == '\r' || s[24] == '\n'))
	{
		set_header_failure(c, ev, "no_timestamp", "the event does not start with an export timestamp (YYYY-MM-DDTHH:MM:SS.sssZ)");
		return;
	}
	ev->export_ts.ptr = s;
	ev->export_ts.len = 24;
	if (ts == 0)
	{
		set_header_failure(c, ev, "bad_timestamp", "impossible export timestamp at line 1, column 1");
		return;
	}
	ev->has_logged_at = true;
	ev->logged_at_us = us;
	s += 24;
	if (s < e && *s == ' ')
		s++;

	ts = lp_parse_timestamp(s, (size_t) (e - s), &us);
	if (ts >= 0 && (size_t) (e - s) > 24 && s[24] == '\t')
	{
		/* application line: <app ts>\t<request id>\t<LEVEL>\t<message> */
		const char *rid = s + 25;
		const char *rid_end = rid,
				   *lvl,
				   *lvl_end;

		ev->app_ts.ptr = s;
		ev->app_ts.len = 24;
		while (rid_end < e && *rid_end != '\t' && *rid_end != '\n' && *rid_end != '\r')
			rid_end++;
		lvl = lvl_end = rid_end + 1;
		if (rid_end < e && *rid_end == '\t')
			while (lvl_end < e && *lvl_end >= 'A' && *lvl_end <= 'Z')
				lvl_end++;
		if (rid_end >= e || *rid_end != '\t' || lvl_end >= e || *lvl_end != '\t' ||
			lvl_end == lvl || lvl_end - lvl > 16)
		{
			char		detail[160];
			int			line,
						col;

			event_position(ev, rid_end >= e || *rid_end != '\t' ? rid_end : lvl_end, &line, &col);
			snprintf(detail, sizeof(detail),
					 "application line without <request id> TAB <LEVEL> TAB after its timestamp (line %d, column %d)", line, col);
			set_header_failure(c, ev, "malformed_event", detail);
			return;
		}
		ev->level.ptr = lvl;
		ev->level.len = (size_t) (lvl_end - lvl);
		if (ts > 0)
			ev->logged_at_us = us;
		if (oversized)
		{
			set_request_id(ev, rid, rid_end);
			set_too_large(c, ev, message_kind_hint(lvl_end + 1, e));
			return;
		}
		if (!set_request_id(ev, rid, rid_end))
		{
			set_id_too_long(c, ev, message_kind_hint(lvl_end + 1, e), "request id", rid, (size_t) (rid_end - rid));
			return;
		}
		if (ts == 0)
		{
			set_malformed(c, ev, "bad_timestamp", LP_KIND_NONE, "impossible application timestamp at line 1, column 26");
			return;
		}
		classify_message(c, ev, lvl_end + 1, e);
		check_run_together(c, ev, lvl_end + 1);
		return;
	}
	if (oversized)
	{
		set_too_large(c, ev, platform_kind_hint(s, e));
		return;
	}
	classify_platform(c, ev, s, e);
	check_run_together(c, ev, s);
}

/* ------------------------------------------------------------------ */
/* splitting the text into events                                      */

static lp_event *
new_event(lp_result *res, const char *start)
{
	lp_event   *ev;

	if (res->n_events == res->priv_cap_events)
	{
		size_t		cap = res->priv_cap_events ? res->priv_cap_events * 2 : 256;
		void	   *p = cap <= SIZE_MAX / sizeof(lp_event) ? realloc(res->events, cap * sizeof(lp_event)) : NULL;

		if (p == NULL)
			return NULL;
		res->events = p;
		res->priv_cap_events = cap;
	}
	ev = &res->events[res->n_events++];
	memset(ev, 0, sizeof(*ev));
	ev->event_no = (int) res->n_events;
	ev->kind = LP_KIND_NONE;
	ev->intended_kind = LP_KIND_NONE;
	ev->raw.ptr = start;
	return ev;
}

/* true when the line starts an event: an export timestamp then a space or the line end */
static bool
starts_event(const char *s, const char *e)
{
	return timestamp_shape(s, (size_t) (e - s)) && ((size_t) (e - s) == 24 || s[24] == ' ');
}

/*
 * At most max bytes of s (which has more), cut before a UTF-8 continuation
 * byte: at most three steps back, a character has at most four bytes (bytes
 * that are no UTF-8 are cut anywhere; the excerpt is never empty).
 */
static size_t
excerpt_length(const char *s, size_t max)
{
	size_t		n = max;

	while (n > max - 3 && ((unsigned char) s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static bool
is_blank(const char *s, const char *e)
{
	for (; s < e; s++)
		if (!is_space(*s))
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* message ids and balance error links                                 */

/*
 * An open-addressing set of events keyed by their request id (and message
 * id): a slot holds an event index + 1, 0 when empty.
 */
typedef struct lp_map
{
	uint32_t   *slots;
	size_t		mask;
	const lp_event *events;
	bool		with_message;	/* the key includes the message id */
} lp_map;

/* ids are ~36 bytes: hashed eight bytes at a time (any hash does: keys are compared in full) */
static uint64_t
hash_slice(uint64_t h, lp_slice s)
{
	size_t		i = 0;

	if (s.ptr == NULL)
		return (h ^ 0xFF) * 1099511628211ULL;
	for (; i + 8 <= s.len; i += 8)
	{
		uint64_t	w;

		memcpy(&w, s.ptr + i, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
		h ^= h >> 29;
	}
	for (; i < s.len; i++)
		h = (h ^ (unsigned char) s.ptr[i]) * 1099511628211ULL;
	return (h ^ (0x1F + s.len)) * 1099511628211ULL;
}

static bool
slice_eq(lp_slice x, lp_slice y)
{
	if (x.ptr == NULL || y.ptr == NULL)
		return x.ptr == y.ptr;
	return x.len == y.len && memcmp(x.ptr, y.ptr, x.len) == 0;
}

/* the slot of ev's key: the one holding an event with the same key, or an empty one */
static uint32_t *
map_slot(lp_map *m, const lp_event *ev)
{
	uint64_t	h = hash_slice(14695981039346656037ULL, ev->request_id);
	size_t		i;

	if (m->with_message)
		h = hash_slice(h, ev->message_id);
	for (i = (size_t) (h ^ (h >> 29)) & m->mask; m->slots[i] != 0; i = (i + 1) & m->mask)
	{
		const lp_event *other = &m->events[m->slots[i] - 1];

		if (slice_eq(other->request_id, ev->request_id) &&
			(!m->with_message || slice_eq(other->message_id, ev->message_id)))
			break;
	}
	return &m->slots[i];
}

static void
map_reset(lp_map *m, bool with_message)
{
	memset(m->slots, 0, (m->mask + 1) * sizeof(uint32_t));
	m->with_message = with_message;
}

static bool
link_events(lp_result *res)
{
	lp_map		m;
	lp_buf	   *out = &res->priv_bodies;
	uint32_t   *link;
	size_t		cap = 16;

	if (res->n_events == 0)
		return true;
	while (cap < 2 * res->n_events + 1)
		cap *= 2;
	m.slots = malloc(cap * sizeof(uint32_t));
	m.mask = cap - 1;
	m.events = res->events;
	link = calloc(res->n_events, sizeof(uint32_t));
	if (m.slots == NULL || link == NULL)
	{
		free(m.slots);
		free(link);
		return false;
	}

	/* the current message of each request: set by its last Processing message */
	map_reset(&m, false);
	for (size_t i = 0; i < res->n_events; i++)
	{
		lp_event   *ev = &res->events[i];
		uint32_t   *slot;

		if (ev->request_id.ptr == NULL)
			continue;
		slot = map_slot(&m, ev);
		if (ev->kind == LP_PROCESSING_MESSAGE)
			*slot = (uint32_t) i + 1;
		else if (*slot != 0)
			ev->message_id = res->events[*slot - 1].message_id;
	}

	/* balance error -> nearest transaction of the same request and message, before it, else after it */
	for (int pass = 0; pass < 2; pass++)
	{
		map_reset(&m, true);
		for (size_t k = 0; k < res->n_events; k++)
		{
			size_t		i = pass == 0 ? k : res->n_events - 1 - k;
			lp_event   *ev = &res->events[i];

			if (ev->request_id.ptr == NULL)
				continue;
			if (ev->kind == LP_TRANSACTION)
				*map_slot(&m, ev) = (uint32_t) i + 1;
			else if (ev->kind == LP_BALANCE_ERROR && link[i] == 0)
				link[i] = *map_slot(&m, ev);
		}
	}
	for (size_t i = 0; i < res->n_events; i++)
		if (link[i] != 0)
		{
			lp_event   *ev = &res->events[i];
			const lp_event *txn = &res->events[link[i] - 1];
			size_t		off = out->len;

			/* a fresh copy of the body with the id in place of the final "null}" */
			buf_copy_within(out, ev->priv_body_off, ev->body_len - 5);
			buf_copy_within(out, txn->priv_txn_off, txn->priv_txn_len);
			buf_putc(out, '}');
			buf_putc(out, '\0');
			ev->priv_body_off = off;
			ev->body_len = out->len - off - 1;
		}
	free(link);
	free(m.slots);
	return !out->failed;
}

/* ------------------------------------------------------------------ */
/* reading a body back as tokens                                       */

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
		s = skip_plain_bytes(s, end, false);
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
					long		cp = end - s >= 6 ? hex_run(s + 2, 4) : -1;

					if (cp <= 0 || (cp >= 0xD800 && cp <= 0xDFFF))
						return false;
					s += 6;
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
			while (r->p < r->end && (is_digit(*r->p) || *r->p == '-' || *r->p == '+' ||
									 *r->p == '.' || *r->p == 'e' || *r->p == 'E'))
				r->p++;
			if (!put_number(NULL, s, (size_t) (r->p - s), true))
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
					long		cp = e - s >= 6 ? hex_run(s + 2, 4) : -1;

					if (cp < 0)
					{
						*d++ = 'u'; /* never from the reader: keeps the length bound */
						s += 2;
						continue;
					}
					if (cp < 0x80)
						*d++ = (char) cp;
					else if (cp < 0x800)
					{
						*d++ = (char) (0xC0 | (cp >> 6));
						*d++ = (char) (0x80 | (cp & 0x3F));
					}
					else
					{
						*d++ = (char) (0xE0 | (cp >> 12));
						*d++ = (char) (0x80 | ((cp >> 6) & 0x3F));
						*d++ = (char) (0x80 | (cp & 0x3F));
					}
					s += 6;
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

/* ------------------------------------------------------------------ */
/* entry points                                                        */

lp_status
lp_parse(const char *text, size_t len, const lp_options *opts, lp_result *out)
{
	lp_ctx		c;
	const char *p = text;
	const char *end;
	lp_event   *cur = NULL;
	const char *cur_end = NULL; /* end of the last non-blank line of cur */
	const char *next_lf = NULL;	/* the first LF at or after p, or end */

	memset(out, 0, sizeof(*out));
	c.res = out;
	c.out = &out->priv_bodies;
	c.oom = false;
	if (text == NULL)
		return LP_OK;
	end = text + len;
	p += lp_bom_length(text, len);	/* a byte order mark is no part of any event */

	/* finishes cur: cuts raw at its last non-blank line, builds its body */
#define FINISH_EVENT() \
	do { \
		if (cur != NULL) \
		{ \
			cur->raw.len = (size_t) (cur_end - cur->raw.ptr); \
			cur->raw_bytes = cur->raw.len; \
			parse_event(&c, cur); \
			if (cur->raw.len > LP_MAX_EVENT_BYTES) \
				cur->raw.len = excerpt_length(cur->raw.ptr, LP_RAW_EXCERPT_BYTES); \
			cur->body_len = c.out->len - cur->priv_body_off; \
			buf_putc(c.out, '\0'); \
			if (opts && opts->progress && cur->event_no % LP_PROGRESS_EVERY == 0) \
				opts->progress(opts->progress_arg); \
		} \
	} while (0)

	while (p < end)
	{
		const char *content_end,
				   *cr;

		/* memchr for LF over the text once per LF, for CR within the line */
		if (next_lf == NULL || next_lf < p)
		{
			next_lf = memchr(p, '\n', (size_t) (end - p));
			if (next_lf == NULL)
				next_lf = end;
		}
		cr = memchr(p, '\r', (size_t) (next_lf - p));
		content_end = cr ? cr : next_lf;

		if (starts_event(p, content_end))
		{
			FINISH_EVENT();
			if (out->n_events >= INT32_MAX)
				return LP_ETOOBIG;
			cur = new_event(out, p);
			if (cur == NULL)
				return LP_ENOMEM;
			cur_end = content_end;
		}
		else if (!is_blank(p, content_end))
		{
			if (cur == NULL)
			{
				/* text before the first timestamp */
				cur = new_event(out, p);
				if (cur == NULL)
					return LP_ENOMEM;
			}
			cur_end = content_end;
		}
		p = content_end < end ? next_line_start(content_end, end) : end;
	}
	FINISH_EVENT();
#undef FINISH_EVENT

	if (c.oom || c.out->failed || out->priv_scratch.failed)
		return LP_ENOMEM;
	if (!link_events(out))
		return LP_ENOMEM;
	for (size_t i = 0; i < out->n_events; i++)
		out->events[i].body = out->priv_bodies.data + out->events[i].priv_body_off;
	return LP_OK;
}

void
lp_free(lp_result *res)
{
	if (res == NULL)
		return;
	free(res->events);
	free(res->priv_bodies.data);
	free(res->priv_scratch.data);
	free(res->priv_nodes);
	memset(res, 0, sizeof(*res));
}
