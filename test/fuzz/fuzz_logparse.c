/*
 * fuzz_logparse.c: libFuzzer target of the log parser core.
 * Any bytes in; checks that parsing never crashes or leaks (ASan/UBSan do),
 * that every body is strict JSON (json_check.h, written apart from the
 * parser), that the token reader gives every body back (json_tokens_check.h),
 * that events are numbered, non-overlapping slices of the input (a leading
 * BOM in none; a too_large one cut to its excerpt) and that ids respect
 * LP_MAX_FIELD_BYTES.  Seeds cover lines run together, lone CR and CR LF
 * line ends, a BOM, duplicate keys, oversized values and U+0000.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logparse.h"
#include "json_check.h"
#include "json_tokens_check.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy, so that any read past the end is caught */
	char	   *text = malloc(size ? size : 1);
	lp_result	res;
	const char *prev_end;

	memcpy(text, data, size);
	if (lp_parse(text, size, NULL, &res) != LP_OK)
		abort();
	prev_end = text;
	for (size_t i = 0; i < res.n_events; i++)
	{
		const lp_event *ev = &res.events[i];

		if (ev->event_no != (int) i + 1 || lp_kind_name(ev->kind) == NULL)
			abort();
		if (ev->raw.ptr < prev_end || ev->raw.ptr + ev->raw.len > text + size || ev->raw.len == 0)
			abort();
		/* raw is the whole event, or a bounded excerpt of a too_large one */
		if (ev->raw_bytes < ev->raw.len || ev->raw.ptr + ev->raw_bytes > text + size ||
			(ev->raw_bytes != ev->raw.len && (ev->raw_bytes <= LP_MAX_EVENT_BYTES || ev->raw.len > LP_RAW_EXCERPT_BYTES)))
			abort();
		/* a BOM before the first event is skipped, never part of it */
		if (i == 0 && lp_bom_length(text, size) > 0 && ev->raw.ptr == text)
			abort();
		if (ev->request_id.len > LP_MAX_FIELD_BYTES || ev->message_id.len > LP_MAX_FIELD_BYTES)
			abort();
		prev_end = ev->raw.ptr + ev->raw.len;
		if (strlen(ev->body) != ev->body_len || !json_check(ev->body, ev->body_len))
			abort();
		if (!json_tokens_roundtrip(ev->body, ev->body_len))
			abort();
		if ((ev->kind == LP_MALFORMED) != (ev->reason != NULL))
			abort();
		if (ev->request_id.ptr && (ev->request_id.ptr < text || ev->request_id.ptr + ev->request_id.len > text + size))
			abort();
		if (ev->message_id.ptr && (ev->message_id.ptr < text || ev->message_id.ptr + ev->message_id.len > text + size))
			abort();
	}
	lp_free(&res);
	free(text);
	return 0;
}
