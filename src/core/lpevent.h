/*
 * lpevent.h: one event of a log text (plain C core): its header (export
 * timestamp, application timestamp, request id, level), the kind it is
 * given (lpkind.c) and its body, or the malformed body that says why it has
 * none.  The bodies of all events are written one after the other into the
 * result's buffer; lpevent_set_malformed() replaces the body being written.
 */
#ifndef CALO_LPEVENT_H
#define CALO_LPEVENT_H

#include "logparse.h"
#include "lpsyntax.h"

typedef struct lpevent_ctx
{
	lp_result  *res;
	lp_buf	   *out;			/* = &res->priv_bodies */
	bool		oom;
} lpevent_ctx;

/* Classifies one event and writes its body; raw and export_ts are set. */
void		lpevent_parse(lpevent_ctx *c, lp_event *ev);

/* line and column (1-based) of pos inside the event */
void		lpevent_position(const lp_event *ev, const char *pos, int *line, int *col);

/* Replaces the body being built with a malformed one. */
void		lpevent_set_malformed(lpevent_ctx *c, lp_event *ev, const char *reason, lp_kind intended,
								  const char *detail);

/* a parse failure of the data of an event that intended to be `intended` */
void		lpevent_set_parse_failure(lpevent_ctx *c, lp_event *ev, lp_kind intended, const lpsyntax_error *err);

/* a request or message id over LP_MAX_FIELD_BYTES: the event is out_of_range */
void		lpevent_set_id_too_long(lpevent_ctx *c, lp_event *ev, lp_kind intended, const char *what,
									const char *at, size_t len);

/* sets the request id s[0..e-s); false (nothing set) when it is longer than LP_MAX_FIELD_BYTES */
bool		lpevent_set_request_id(lp_event *ev, const char *s, const char *e);

#endif							/* CALO_LPEVENT_H */
