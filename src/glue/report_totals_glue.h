/*
 * report_totals_glue.h: the report totals' glue (report_totals_glue.c,
 * sql/install/78_reports.sql, README "Reports"): the figures of
 * report_totals.c gathered per user as reconcile() walks them
 * (recon_glue.c), stored in user_totals, user_day_totals and
 * overdraft_episode_totals, and day_totals made again from them.
 */
#ifndef CALO_REPORT_TOTALS_GLUE_H
#define CALO_REPORT_TOTALS_GLUE_H

#include "postgres.h"

#include "report_totals.h"
#include "walk.h"

/* The figures of the walked users (opaque) */
typedef struct ReportTotals ReportTotals;

/*
 * What the stored rows name, from the walk's state (recon_glue.c): a user's
 * user_id and a currency's code as text Datums, by the numbers the walk
 * gave them, and a row's txn_id by its walk_row ref.
 */
typedef struct ReportTotalsNames
{
	void	   *ctx;
	Datum		(*user_id) (void *ctx, uint32 user);
	Datum		(*currency) (void *ctx, uint32 currency);
	char	   *(*txn_id) (void *ctx, int64 ref);
} ReportTotalsNames;

/* The tables reconcile() stores the totals in (quoted qualified names), or their shards */
typedef struct TotTables
{
	const char *users;
	const char *days;
	const char *episodes;
} TotTables;

/* Empty totals for rows whose currencies are numbered 0..ncurrencies-1. */
ReportTotals *report_totals_begin(int ncurrencies);

/* The figures of one user (numbered user by the walk) from rows[0..n) in chain order, n > 0. */
void		report_totals_add_user(ReportTotals *t, uint32 user, const walk_row *rows, size_t n);

/* Rows gathered (users, days and runs), for reconcile()'s DEBUG1 line. */
int64		report_totals_rows(const ReportTotals *t);

/*
 * The walked users' stored totals (all when all_users) replaced by t in
 * tables, through the bulk writer (SPI connected).
 */
void		report_totals_write(ReportTotals *t, const ReportTotalsNames *names, const TotTables *tables,
								bool all_users, Datum user_ids);

/* A database at version 1.0 or 1.1 has no report totals. */
bool		report_totals_installed(void);

/* The (currency, day) keys of the users' stored day rows, as two arrays into keys[2] (SPI connected). */
void		report_totals_day_keys(Datum user_ids, Datum *keys);

/*
 * day_totals made again for the days the users had rows in before
 * (keys_before, from report_totals_day_keys) or have now; every day after
 * a reconcile of all users (SPI connected).
 */
void		report_totals_store_days(bool all_users, Datum user_ids, const Datum *keys_before);

#endif
