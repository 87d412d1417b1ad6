/*
 * logparse.c: the entry points of the log parser (plain C core): lp_parse()
 * splits the text into events and has each one read (lpevent.c); a second
 * pass propagates SQS message ids inside each request and links balance
 * errors to the transaction of the same request and message.  lp_free()
 * releases a result.  See logparse.h.
 */
#include "logparse.h"
#include "lpbuf.h"
#include "lpevent.h"
#include "lpnum.h"
#include "lptext.h"

#include <stdlib.h>
#include <string.h>

#define LP_PROGRESS_EVERY 256

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
	return lpnum_timestamp_shape(s, (size_t) (e - s)) && ((size_t) (e - s) == 24 || s[24] == ' ');
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
		if (!lptext_is_space(*s))
			return false;
	return true;
}

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
			lpbuf_copy_within(out, ev->priv_body_off, ev->body_len - 5);
			lpbuf_copy_within(out, txn->priv_txn_off, txn->priv_txn_len);
			lpbuf_putc(out, '}');
			lpbuf_putc(out, '\0');
			ev->priv_body_off = off;
			ev->body_len = out->len - off - 1;
		}
	free(link);
	free(m.slots);
	return !out->failed;
}

lp_status
lp_parse(const char *text, size_t len, const lp_options *opts, lp_result *out)
{
	lpevent_ctx	c;
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
			lpevent_parse(&c, cur); \
			if (cur->raw.len > LP_MAX_EVENT_BYTES) \
				cur->raw.len = excerpt_length(cur->raw.ptr, LP_RAW_EXCERPT_BYTES); \
			cur->body_len = c.out->len - cur->priv_body_off; \
			lpbuf_putc(c.out, '\0'); \
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
		p = content_end < end ? lptext_next_line(content_end, end) : end;
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
