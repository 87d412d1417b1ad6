/*
 * parse_glue.h: a log's events as the columns of calo_recon.parse_log(),
 * and the jsonb of a parsed event's body, built from the log parser's
 * tokens.  parse_log() returns the events; the ingest stores them
 * (ingest_store_glue.c); the test probe (test/probe/calo_recon_probe.c)
 * looks parse_body_jsonb up in the library by name and compares it with
 * jsonb_in's.
 */
#ifndef CALO_PARSE_GLUE_H
#define CALO_PARSE_GLUE_H

#include "postgres.h"

#include "utils/jsonb.h"

/*
 * The body body[0..len) (compact JSON, as lp_parse() writes it) as jsonb,
 * bytes included the value jsonb_in(body) gives; NULL when the token reader
 * refuses the text (the caller then uses jsonb_in).
 */
Jsonb	   *parse_body_jsonb(const char *body, size_t len);

typedef Jsonb *(*parse_body_jsonb_fn) (const char *body, size_t len);

/* The columns of calo_recon.parse_log(), in its order */
enum
{
	PARSE_LOG_EVENT_NO,
	PARSE_LOG_LOGGED_AT,
	PARSE_LOG_REQUEST_ID,
	PARSE_LOG_LEVEL,
	PARSE_LOG_KIND,
	PARSE_LOG_BODY,
	PARSE_LOG_MESSAGE_ID,
	PARSE_LOG_RAW,
	PARSE_LOG_COLUMNS
};

/* One event's columns; they live until the next event's call. */
typedef void (*parse_event_fn) (const Datum *values, const bool *nulls, void *arg);

/*
 * Parses log and hands each event's columns to fn, in event order.  The
 * database must be UTF8 (0A000, naming caller); 53200 when the parser runs
 * out of memory, 54000 past its event limit.
 */
void		parse_log_events(text *log, const char *caller, parse_event_fn fn, void *arg);

#endif
