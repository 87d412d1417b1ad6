/*
 * lpevent.c: one event of a log text, its header and its malformed bodies
 * (plain C core); see lpevent.h.
 */
#include "lpevent.h"
#include "lpbuf.h"
#include "lpkind.h"

#include <stdio.h>
#include <string.h>

void
lpevent_position(const lp_event *ev, const char *pos, int *line, int *col)
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

void
lpevent_set_malformed(lpevent_ctx *c, lp_event *ev, const char *reason, lp_kind intended, const char *detail)
{
	lp_buf	   *out = c->out;

	if (!out->failed)
		out->len = ev->priv_body_off;
	ev->kind = LP_MALFORMED;
	ev->reason = reason;
	ev->intended_kind = intended;
	lpbuf_lit(out, "{\"reason\":");
	lpbuf_put_json_string(out, reason, strlen(reason));
	lpbuf_lit(out, ",\"detail\":");
	lpbuf_put_json_string(out, detail, strlen(detail));
	lpbuf_lit(out, ",\"intended_kind\":");
	if (intended == LP_KIND_NONE)
		lpbuf_lit(out, "null");
	else
		lpbuf_put_json_string(out, lp_kind_name(intended), strlen(lp_kind_name(intended)));
	lpbuf_putc(out, '}');
}

void
lpevent_set_parse_failure(lpevent_ctx *c, lp_event *ev, lp_kind intended, const lpsyntax_error *err)
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
	lpevent_position(ev, err->at, &line, &col);
	snprintf(detail, sizeof(detail), "%s: %s%s at line %d, column %d%s",
			 lp_kind_name(intended), err->what ? err->what : "syntax error", name, line, col,
			 err->kind == LPSYNTAX_EOF ? " (the event ends inside the object)" : "");
	lpevent_set_malformed(c, ev, err->kind == LPSYNTAX_EOF ? "truncated_event" : "malformed_event", intended, detail);
}

void
lpevent_set_id_too_long(lpevent_ctx *c, lp_event *ev, lp_kind intended, const char *what, const char *at, size_t len)
{
	char		detail[256];
	int			line,
				col;

	lpevent_position(ev, at, &line, &col);
	snprintf(detail, sizeof(detail), "%s: the %s at line %d, column %d is %zu bytes long, more than the limit of %d",
			 lp_kind_name(intended), what, line, col, len, LP_MAX_FIELD_BYTES);
	lpevent_set_malformed(c, ev, "out_of_range", intended, detail);
}

bool
lpevent_set_request_id(lp_event *ev, const char *s, const char *e)
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

/* an event over LP_MAX_EVENT_BYTES: not parsed (its raw is cut by the caller) */
static void
lpevent_set_too_large(lpevent_ctx *c, lp_event *ev, lp_kind intended)
{
	char		detail[256];

	snprintf(detail, sizeof(detail),
			 "the event is %zu bytes long, more than the limit of %zu; raw keeps its first %zu bytes at most",
			 ev->raw.len, LP_MAX_EVENT_BYTES, LP_RAW_EXCERPT_BYTES);
	lpevent_set_malformed(c, ev, "too_large", intended, detail);
}

/* a broken event header: too_large wins for an oversized event (its raw is cut) */
static void
lpevent_set_header_failure(lpevent_ctx *c, lp_event *ev, const char *reason, const char *detail)
{
	if (ev->raw.len > LP_MAX_EVENT_BYTES)
		lpevent_set_too_large(c, ev, LP_KIND_NONE);
	else
		lpevent_set_malformed(c, ev, reason, LP_KIND_NONE, detail);
}

void
lpevent_parse(lpevent_ctx *c, lp_event *ev)
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
		lpevent_set_header_failure(c, ev, "no_timestamp", "the event does not start with an export timestamp (YYYY-MM-DDTHH:MM:SS.sssZ)");
		return;
	}
	ev->export_ts.ptr = s;
	ev->export_ts.len = 24;
	if (ts == 0)
	{
		lpevent_set_header_failure(c, ev, "bad_timestamp", "impossible export timestamp at line 1, column 1");
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

			lpevent_position(ev, rid_end >= e || *rid_end != '\t' ? rid_end : lvl_end, &line, &col);
			snprintf(detail, sizeof(detail),
					 "application line without <request id> TAB <LEVEL> TAB after its timestamp (line %d, column %d)", line, col);
			lpevent_set_header_failure(c, ev, "malformed_event", detail);
			return;
		}
		ev->level.ptr = lvl;
		ev->level.len = (size_t) (lvl_end - lvl);
		if (ts > 0)
			ev->logged_at_us = us;
		if (oversized)
		{
			lpevent_set_request_id(ev, rid, rid_end);
			lpevent_set_too_large(c, ev, lpkind_message_hint(lvl_end + 1, e));
			return;
		}
		if (!lpevent_set_request_id(ev, rid, rid_end))
		{
			lpevent_set_id_too_long(c, ev, lpkind_message_hint(lvl_end + 1, e), "request id", rid, (size_t) (rid_end - rid));
			return;
		}
		if (ts == 0)
		{
			lpevent_set_malformed(c, ev, "bad_timestamp", LP_KIND_NONE, "impossible application timestamp at line 1, column 26");
			return;
		}
		lpkind_classify_message(c, ev, lvl_end + 1, e);
		lpkind_check_run_together(c, ev, lvl_end + 1);
		return;
	}
	if (oversized)
	{
		lpevent_set_too_large(c, ev, lpkind_platform_hint(s, e));
		return;
	}
	lpkind_classify_platform(c, ev, s, e);
	lpkind_check_run_together(c, ev, s);
}
