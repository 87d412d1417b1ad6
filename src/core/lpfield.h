/*
 * lpfield.h: the data events (transaction, balance_error,
 * negative_balance_rejection): their object literal (nodelit.h) checked
 * against the field rules of their kind and written as the body (plain C
 * core).  The tables of field rules in lpfield.c are the one home of the
 * validation of data events: ingestion stores what they accept and
 * quarantines what they make malformed, with its reason.
 */
#ifndef CALO_LPFIELD_H
#define CALO_LPFIELD_H

#include "lpevent.h"

/* "Start syncing the balance { transaction: {...} }": s..e is the text after the prefix */
void		lpfield_parse_transaction(lpevent_ctx *c, lp_event *ev, const char *s, const char *e);

/* "Subscription balance and payment balance are not in sync {...}": the text after the prefix */
void		lpfield_parse_balance_error(lpevent_ctx *c, lp_event *ev, const char *s, const char *e);

/* A message that is an object literal: a rejection when it says so (true), else nothing written (false). */
bool		lpfield_parse_rejection(lpevent_ctx *c, lp_event *ev, const char *s, const char *e);

/*
 * The body of a data kind in words, from the field tables above (see
 * lp_kind_describe_body(), which calls it); 0 for a kind that is not data.
 */
size_t		lpfield_describe_body(lp_kind kind, char *buf, size_t cap);

#endif							/* CALO_LPFIELD_H */
