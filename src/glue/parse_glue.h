/*
 * parse_glue.h: the jsonb of a parsed event's body, built from the log
 * parser's tokens.  calo_recon.parse_log() returns it; the test probe
 * (test/probe/calo_recon_probe.c) looks it up in the library by name and
 * compares it with jsonb_in's.
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

#endif
