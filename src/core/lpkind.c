/*
 * lpkind.c: the kinds of log events, the bodies of the informational and
 * platform ones, and the check for lines run together (plain C core); see
 * lpkind.h.  Data events are handed to lpfield.c.
 */
#include "lpkind.h"
#include "jsonstrict.h"
#include "lpbuf.h"
#include "lpfield.h"
#include "lpnum.h"
#include "lptext.h"

#include <stdio.h>
#include <string.h>

/*
 * Every kind's name, family and body in words: the one list of the kinds
 * (calo_recon.parse_log_kinds() reads it).  The bodies of data kinds are
 * NULL here: lpfield.c describes them from the field tables it validates by.
 */
static const struct
{
	const char *name;
	const char *family;
	const char *body;
}			lpkind_catalog[LP_KIND_COUNT] = {
	[LP_START] = {"start", "platform", "{\"version\"}"},
	[LP_END] = {"end", "platform", "{}"},
	[LP_REPORT] = {"report", "platform",
		"{\"duration_ms\", \"billed_duration_ms\", \"memory_size_mb\", \"max_memory_used_mb\", "
	"\"init_duration_ms\"?, \"xray_trace_id\"?, \"xray_segment_id\"?, \"xray_sampled\"?}"},
	[LP_INIT_START] = {"init_start", "platform", "{\"runtime_version\", \"runtime_version_arn\"}"},
	[LP_INIT_REPORT] = {"init_report", "platform", "{\"init_duration_ms\", \"phase\", \"status\", \"error_type\"}"},
	[LP_METRIC] = {"metric", "platform", "the {\"_aws\": ...} embedded-metric object itself"},
	[LP_PLATFORM_TEXT] = {"platform_text", "platform", "{\"message\"}"},
	[LP_PROCESSING_MESSAGE] = {"processing_message", "application", "{\"message_id\"}"},
	[LP_TRANSACTION] = {"transaction", "data", NULL},
	[LP_BALANCE_ERROR] = {"balance_error", "data", NULL},
	[LP_NEGATIVE_BALANCE_REJECTION] = {"negative_balance_rejection", "data", NULL},
	[LP_SKIP] = {"skip", "application", "{\"message\"}"},
	[LP_BALANCE_UPDATED] = {"balance_updated", "application", "{\"message\"}"},
	[LP_TRANSACTION_LOCK] = {"transaction_lock", "application", "{\"message\"}"},
	[LP_TRANSACTION_JSON] = {"transaction_json", "application", "{\"message\", \"data\"?}"},
	[LP_RECORD_BODY] = {"record_body", "application", "{\"message\", \"data\"?}"},
	[LP_SYNC_ERROR] = {"sync_error", "failure", "{\"message\"} (stack text included)"},
	[LP_UNCAUGHT_EXCEPTION] = {"uncaught_exception", "failure", "{\"message\", \"data\"?}"},
	[LP_INVOKE_ERROR] = {"invoke_error", "failure", "{\"message\", \"data\"?}"},
	[LP_APP_LOG] = {"app_log", "application", "{\"message\"}"},
	[LP_MALFORMED] = {"malformed", "malformed",
	"{\"reason\", \"detail\", \"intended_kind\", \"field\"?, \"txn_id\"?}"}
};

const char *
lp_kind_name(lp_kind kind)
{
	return (kind >= 0 && kind < LP_KIND_COUNT) ? lpkind_catalog[kind].name : NULL;
}

const char *
lp_kind_family(lp_kind kind)
{
	return (kind >= 0 && kind < LP_KIND_COUNT) ? lpkind_catalog[kind].family : NULL;
}

size_t
lp_kind_describe_body(lp_kind kind, char *buf, size_t cap)
{
	if (kind < 0 || kind >= LP_KIND_COUNT)
		return 0;
	if (lpkind_catalog[kind].body == NULL)
		return lpfield_describe_body(kind, buf, cap);
	return (size_t) snprintf(buf, cap, "%s", lpkind_catalog[kind].body);
}

/* {"message": text} plus "data" when the text ends with valid JSON from its first '{' */
static void
lpkind_put_message_body(lpevent_ctx *c, const char *s, const char *e, bool with_data)
{
	e = lptext_trim_end(s, e);
	if (with_data)
	{
		const char *brace = memchr(s, '{', (size_t) (e - s));

		if (brace != NULL)
		{
			size_t		mark = c->out->len;

			lpbuf_lit(c->out, "{\"message\":\"");
			lpbuf_put_json_chars(c->out, s, (size_t) (lptext_trim_end(s, brace) - s), true);
			lpbuf_lit(c->out, "\",\"data\":");
			if (jsonstrict_embed(c->out, brace, (size_t) (e - brace), NULL, &c->oom))
			{
				lpbuf_putc(c->out, '}');
				return;
			}
			if (!c->out->failed)
				c->out->len = mark;
		}
	}
	lpbuf_lit(c->out, "{\"message\":\"");
	lpbuf_put_json_chars(c->out, s, (size_t) (e - s), true);
	lpbuf_lit(c->out, "\"}");
}

void
lpkind_classify_message(lpevent_ctx *c, lp_event *ev, const char *s, const char *e)
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

	if (lptext_starts_with(s, e, PREFIX_PROCESSING))
	{
		const char *id = s + strlen(PREFIX_PROCESSING);
		const char *q = id;

		while (q < e && !lptext_is_space(*q))
			q++;
		if ((size_t) (q - id) > LP_MAX_FIELD_BYTES)
		{
			lpevent_set_id_too_long(c, ev, LP_PROCESSING_MESSAGE, "message id", id, (size_t) (q - id));
			return;
		}
		if (q > id)
		{
			ev->kind = LP_PROCESSING_MESSAGE;
			ev->message_id.ptr = id;
			ev->message_id.len = (size_t) (q - id);
			lpbuf_lit(c->out, "{\"message_id\":");
			lpbuf_put_json_string(c->out, id, (size_t) (q - id));
			lpbuf_putc(c->out, '}');
			return;
		}
	}
	if (lptext_starts_with(s, e, PREFIX_TRANSACTION))
	{
		lpfield_parse_transaction(c, ev, s + strlen(PREFIX_TRANSACTION), e);
		return;
	}
	if (lptext_starts_with(s, e, PREFIX_BALANCE_ERROR))
	{
		lpfield_parse_balance_error(c, ev, s + strlen(PREFIX_BALANCE_ERROR), e);
		return;
	}
	if (s < e && *s == '{' && lpfield_parse_rejection(c, ev, s, e))
		return;
	for (size_t i = 0; i < sizeof(informational) / sizeof(informational[0]); i++)
		if (lptext_starts_with(s, e, informational[i].prefix))
		{
			ev->kind = informational[i].kind;
			lpkind_put_message_body(c, s, e, informational[i].with_data);
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
			if (lptext_starts_with(s, e, json_lines[i].word))
			{
				const char *q = s + strlen(json_lines[i].word);

				if (q < e && lptext_is_space(*q))
				{
					while (q < e && lptext_is_space(*q))
						q++;
					if (q < e && *q == '{')
					{
						ev->kind = json_lines[i].kind;
						lpkind_put_message_body(c, s, e, true);
						return;
					}
				}
			}
	}
	ev->kind = LP_APP_LOG;
	lpkind_put_message_body(c, s, e, false);
}

/* "Runtime Version ARN" -> runtime_version_arn, "TraceId" -> trace_id */
static void
lpkind_put_snake_key(lp_buf *out, const char *prefix, const char *s, const char *e)
{
	bool		need_sep = false;
	char		prev = 0;

	lpbuf_putc(out, '"');
	lpbuf_put(out, prefix, strlen(prefix));
	for (const char *p = s; p < e; p++)
	{
		char		ch = *p;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || lptext_is_digit(ch))
		{
			bool		upper = ch >= 'A' && ch <= 'Z';

			if (need_sep || (upper && ((prev >= 'a' && prev <= 'z') || lptext_is_digit(prev))))
				lpbuf_putc(out, '_');
			lpbuf_putc(out, upper ? (char) (ch - 'A' + 'a') : ch);
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
lpkind_put_segments(lpevent_ctx *c, const char *s, const char *e, const char *prefix, bool *first)
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
			const char *ve = lptext_trim_end(v, seg_end);
			size_t		vn = (size_t) (ve - v);
			const char *unit = NULL;

			if (!(colon - s == 9 && memcmp(s, "RequestId", 9) == 0))
			{
				if (!*first)
					lpbuf_putc(c->out, ',');
				*first = false;
				lpkind_put_snake_key(c->out, prefix, s, colon);
				if (vn > 3 && (memcmp(ve - 3, " ms", 3) == 0 || memcmp(ve - 3, " MB", 3) == 0) &&
					lpnum_put(NULL, v, vn - 3, true))
					unit = ve[-2] == 'm' ? "_ms" : "_mb";
				if (unit != NULL)
				{
					lpbuf_put(c->out, unit, 3);
					lpbuf_lit(c->out, "\":");
					lpnum_put(c->out, v, vn - 3, true);
				}
				else
				{
					lpbuf_lit(c->out, "\":");
					if ((vn == 4 && memcmp(v, "true", 4) == 0) || (vn == 5 && memcmp(v, "false", 5) == 0))
						lpbuf_put(c->out, v, vn);
					else
						lpbuf_put_json_string(c->out, v, vn);
				}
			}
		}
		s = seg_end < e ? seg_end + 1 : e;
	}
}

void
lpkind_classify_platform(lpevent_ctx *c, lp_event *ev, const char *s, const char *e)
{
	const char *line_end = lptext_line_end(s, e);
	const char *first_end = lptext_trim_end(s, line_end);
	bool		first = true;

	if (lptext_starts_with(s, first_end, PREFIX_START) || lptext_starts_with(s, first_end, PREFIX_END) ||
		lptext_starts_with(s, first_end, PREFIX_REPORT))
	{
		const char *id = (const char *) memchr(s, ':', (size_t) (first_end - s)) + 2;
		const char *q = id;
		lp_kind		kind = *s == 'S' ? LP_START : *s == 'E' ? LP_END : LP_REPORT;

		while (q < first_end && !lptext_is_space(*q))
			q++;
		if (!lpevent_set_request_id(ev, id, q))
		{
			lpevent_set_id_too_long(c, ev, kind, "request id", id, (size_t) (q - id));
			return;
		}
		lpbuf_putc(c->out, '{');
		if (*s == 'S')
		{
			ev->kind = LP_START;
			while (q < first_end && lptext_is_space(*q))
				q++;
			if (lptext_starts_with(q, first_end, "Version: "))
			{
				lpbuf_lit(c->out, "\"version\":");
				lpbuf_put_json_string(c->out, q + 9, (size_t) (first_end - q - 9));
			}
		}
		else if (*s == 'E')
			ev->kind = LP_END;
		else
		{
			ev->kind = LP_REPORT;
			lpkind_put_segments(c, q, first_end, "", &first);
			/* continuation lines: XRAY TraceId: ...\tSegmentId: ... */
			for (const char *ls = line_end < e ? lptext_next_line(line_end, e) : e; ls < e;)
			{
				const char *le = lptext_line_end(ls, e);

				if (lptext_starts_with(ls, le, "XRAY "))
					lpkind_put_segments(c, ls + 5, lptext_trim_end(ls, le), "xray_", &first);
				ls = le < e ? lptext_next_line(le, e) : e;
			}
		}
		lpbuf_putc(c->out, '}');
		return;
	}
	if (lptext_starts_with(s, first_end, PREFIX_INIT_START) || lptext_starts_with(s, first_end, PREFIX_INIT_REPORT))
	{
		ev->kind = s[5] == 'S' ? LP_INIT_START : LP_INIT_REPORT;
		lpbuf_putc(c->out, '{');
		lpkind_put_segments(c, s + (ev->kind == LP_INIT_START ? 10 : 11), first_end, "", &first);
		lpbuf_putc(c->out, '}');
		return;
	}
	if (lptext_starts_with(s, e, PREFIX_METRIC))
	{
		lpsyntax_error err;

		if (jsonstrict_embed(c->out, s, (size_t) (e - s), &err, &c->oom))
		{
			ev->kind = LP_METRIC;
			return;
		}
		lpevent_set_parse_failure(c, ev, LP_METRIC, &err);
		return;
	}
	ev->kind = LP_PLATFORM_TEXT;
	lpkind_put_message_body(c, s, e, false);
}

lp_kind
lpkind_message_hint(const char *s, const char *e)
{
	const char *head_end = (size_t) (e - s) > 4096 ? s + 4096 : e;

	if (lptext_starts_with(s, e, PREFIX_PROCESSING))
		return LP_PROCESSING_MESSAGE;
	if (lptext_starts_with(s, e, PREFIX_TRANSACTION))
		return LP_TRANSACTION;
	if (lptext_starts_with(s, e, PREFIX_BALANCE_ERROR))
		return LP_BALANCE_ERROR;
	if (s < e && *s == '{' && lptext_contains(s, (size_t) (head_end - s), REJECTION_WORDS))
		return LP_NEGATIVE_BALANCE_REJECTION;
	return LP_APP_LOG;
}

lp_kind
lpkind_platform_hint(const char *s, const char *e)
{
	if (lptext_starts_with(s, e, PREFIX_START))
		return LP_START;
	if (lptext_starts_with(s, e, PREFIX_END))
		return LP_END;
	if (lptext_starts_with(s, e, PREFIX_REPORT))
		return LP_REPORT;
	if (lptext_starts_with(s, e, PREFIX_INIT_START))
		return LP_INIT_START;
	if (lptext_starts_with(s, e, PREFIX_INIT_REPORT))
		return LP_INIT_REPORT;
	if (lptext_starts_with(s, e, PREFIX_METRIC))
		return LP_METRIC;
	return LP_PLATFORM_TEXT;
}

/* the levels of Lambda's application lines */
static const char *const lpkind_app_levels[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

/* texts that begin a log line (or the message of one) wherever they appear */
static const char *const lpkind_line_markers[] = {
	PREFIX_START, PREFIX_END, PREFIX_REPORT, PREFIX_INIT_START " ", PREFIX_INIT_REPORT " ",
	PREFIX_PROCESSING, PREFIX_TRANSACTION, PREFIX_BALANCE_ERROR
};

/*
 * The first place in [s, e) where another log line starts: an application
 * header (<ts> TAB), TAB <LEVEL> TAB, or one of lpkind_line_markers; NULL when there
 * is none.  *len: the length of what was found there.
 */
static const char *
lpkind_embedded_line_start(const char *s, const char *e, size_t *len)
{
	for (const char *p = s; p < e; p++)
	{
		char		ch = *p;

		if (ch == '\t')
		{
			for (size_t i = 0; i < sizeof(lpkind_app_levels) / sizeof(lpkind_app_levels[0]); i++)
			{
				size_t		k = strlen(lpkind_app_levels[i]);

				if ((size_t) (e - p) > k + 1 && memcmp(p + 1, lpkind_app_levels[i], k) == 0 && p[k + 1] == '\t')
				{
					*len = k + 2;
					return p;
				}
			}
		}
		else if (lptext_is_digit(ch))
		{
			if ((size_t) (e - p) > 24 && p[24] == '\t' && lpnum_timestamp_shape(p, (size_t) (e - p)))
			{
				*len = 25;
				return p;
			}
		}
		else if (ch == 'S' || ch == 'E' || ch == 'R' || ch == 'I' || ch == 'P')
		{
			for (size_t i = 0; i < sizeof(lpkind_line_markers) / sizeof(lpkind_line_markers[0]); i++)
				if (*lpkind_line_markers[i] == ch && lptext_starts_with(p, e, lpkind_line_markers[i]))
				{
					*len = strlen(lpkind_line_markers[i]);
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
void
lpkind_check_run_together(lpevent_ctx *c, lp_event *ev, const char *msg)
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
	hit = lpkind_embedded_line_start(msg + 1, e, &hit_len);
	if (hit == NULL)
		return;
	/* the data it swallowed names the kind (quarantine.kind) */
	if (lptext_contains(hit, (size_t) (e - hit), PREFIX_TRANSACTION))
		intended = LP_TRANSACTION;
	else if (lptext_contains(hit, (size_t) (e - hit), PREFIX_BALANCE_ERROR))
		intended = LP_BALANCE_ERROR;
	else if (lptext_contains(hit, (size_t) (e - hit), REJECTION_WORDS))
		intended = LP_NEGATIVE_BALANCE_REJECTION;
	lpevent_position(ev, hit, &line, &col);
	snprintf(detail, sizeof(detail),
			 "%s: another log line starts inside this event at line %d, column %d (\"%.*s\"): lines run together",
			 lp_kind_name(ev->kind), line, col, (int) hit_len, hit);
	lpevent_set_malformed(c, ev, "malformed_event", intended, detail);
}
