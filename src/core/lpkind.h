/*
 * lpkind.h: the kinds of log events (lp_kind, logparse.h) and how each is
 * recognised from the way its message or platform line begins (plain C
 * core).  The prefixes below are the one home of those texts.
 */
#ifndef CALO_LPKIND_H
#define CALO_LPKIND_H

#include "lpevent.h"

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

/* an application line's message s..e: sets ev's kind and writes its body */
void		lpkind_classify_message(lpevent_ctx *c, lp_event *ev, const char *s, const char *e);

/* a platform line: text right after the export timestamp */
void		lpkind_classify_platform(lpevent_ctx *c, lp_event *ev, const char *s, const char *e);

/* the kind a message would have, from how it begins (no parsing) */
lp_kind		lpkind_message_hint(const char *s, const char *e);

/* the kind a platform line would have, from how it begins */
lp_kind		lpkind_platform_hint(const char *s, const char *e);

/*
 * Makes the event malformed when another log line starts inside it (lines
 * run together).  msg: where its own message starts.
 */
void		lpkind_check_run_together(lpevent_ctx *c, lp_event *ev, const char *msg);

#endif							/* CALO_LPKIND_H */
