/*
 * report_totals_glue.c: the report totals (sql/install/78_reports.sql,
 * README "Reports"): the rows of user_totals, user_day_totals and
 * overdraft_episode_totals that reconcile() stores, and those the C
 * functions below return for the users still queued: one builder per
 * table for both, from report_totals.c's figures.
 *
 *   calo_recon.user_figures(user_ids, period_from, period_to)
 *   calo_recon.user_day_figures(user_ids)
 *   calo_recon.user_overdraft_episodes(user_ids)
 *       the figures of the given users (all when NULL) computed now from
 *       their transactions, by the scan and walk of reconcile()
 *       (recon_live_totals, recon_glue.c)
 *
 * reconcile() (recon_glue.c) hands each walked user's rows in chain order
 * to report_totals_add_user and the gathered figures to
 * report_totals_write, which replaces the users' stored rows through the
 * bulk writer (bulk_write_glue.h).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "bulk_write_glue.h"
#include "recon_glue.h"
#include "report_totals.h"
#include "report_totals_glue.h"

PG_FUNCTION_INFO_V1(calo_recon_user_figures);
PG_FUNCTION_INFO_V1(calo_recon_user_day_figures);
PG_FUNCTION_INFO_V1(calo_recon_user_overdraft_episodes);

/* ---------------------------------------------------------------------
 * The figures of the walked users, by user number
 * --------------------------------------------------------------------- */
typedef struct TotUser
{
	rt_user		figures;
	uint32		user;
} TotUser;

typedef struct TotDay
{
	rt_day		figures;
	uint32		user;
} TotDay;

typedef struct TotEpisode
{
	rt_money	low_balance;
	uint32		user;
	uint32		currency;
	int64		started_at;
	int64		ended_at;
	bool		ended;
	int64		transactions;
	uint32		first_ref;
	uint32		last_ref;
} TotEpisode;

/* A growable array of 16-byte aligned elements (bal_dec wants it) */
typedef struct AlignedArray
{
	char	   *raw;
	void	   *items;
	int64		n;
	int64		cap;
} AlignedArray;

struct ReportTotals
{
	uint32		walking_user;
	rt_scratch	scratch;
	AlignedArray users;			/* TotUser */
	AlignedArray days;			/* TotDay */
	AlignedArray episodes;		/* TotEpisode */
};

/* Room for one more element of a, 16-byte aligned (elem is a multiple of 16). */
static void *
tot_aligned_push(AlignedArray *a, Size elem)
{
	if (a->n == a->cap)
	{
		int64		cap = Max(1024, a->cap * 2);
		char	   *raw = MemoryContextAllocHuge(CurrentMemoryContext, elem * cap + 16);
		void	   *items = (void *) TYPEALIGN(16, raw);

		if (a->n > 0)
			memcpy(items, a->items, elem * a->n);
		if (a->raw != NULL)
			pfree(a->raw);
		a->raw = raw;
		a->items = items;
		a->cap = cap;
	}
	return (char *) a->items + elem * a->n++;
}

#define TOT_ITEM(t, array, type, i) (&((type *) (t)->array.items)[i])

static void
tot_emit_day(void *ctx, const rt_day *day)
{
	ReportTotals *t = (ReportTotals *) ctx;
	TotDay	   *d = tot_aligned_push(&t->days, sizeof(TotDay));

	d->figures = *day;
	d->user = t->walking_user;
}

static void
tot_emit_user(void *ctx, const rt_user *user)
{
	ReportTotals *t = (ReportTotals *) ctx;
	TotUser    *u = tot_aligned_push(&t->users, sizeof(TotUser));

	u->figures = *user;
	u->user = t->walking_user;
}

static void
tot_emit_episode(void *ctx, const rt_episode *e)
{
	ReportTotals *t = (ReportTotals *) ctx;
	TotEpisode *o = tot_aligned_push(&t->episodes, sizeof(TotEpisode));

	o->user = t->walking_user;
	o->currency = e->currency;
	o->started_at = e->started_at;
	o->ended = e->ended;
	o->ended_at = e->ended_at;
	o->transactions = e->transactions;
	o->first_ref = e->first->ref;
	o->last_ref = e->last->ref;
	o->low_balance = e->low_balance;
}

ReportTotals *
report_totals_begin(int ncurrencies)
{
	ReportTotals *t = palloc0(sizeof(ReportTotals));
	char	   *raw = MemoryContextAllocHuge(CurrentMemoryContext, rt_scratch_bytes(ncurrencies) + 16);

	rt_scratch_init(&t->scratch, (void *) TYPEALIGN(16, raw), ncurrencies);
	return t;
}

void
report_totals_add_user(ReportTotals *t, uint32 user, const walk_row *rows, size_t n)
{
	t->walking_user = user;
	rt_users(rows, n, &t->scratch, tot_emit_user, t);
	rt_days(rows, n, &t->scratch, tot_emit_day, t);
	rt_episodes(rows, n, &t->scratch, tot_emit_episode, t);
}

int64
report_totals_rows(const ReportTotals *t)
{
	return t->users.n + t->days.n + t->episodes.n;
}

/* ---------------------------------------------------------------------
 * The rows: one builder per table, for the stored rows and the live ones
 * --------------------------------------------------------------------- */
#define TOT_USER_COLS 13
#define TOT_DAY_COLS 9
#define TOT_EPISODE_COLS 10

static const Oid tot_user_types[TOT_USER_COLS] = {TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TEXTOID, NUMERICOID, NUMERICOID, INT8OID, NUMERICOID, NUMERICOID, NUMERICOID, NUMERICOID, NUMERICOID};
static const Oid tot_day_types[TOT_DAY_COLS] = {TEXTOID, TEXTOID, DATEOID, INT8OID, NUMERICOID,
NUMERICOID, NUMERICOID, INT8OID, NUMERICOID};
static const Oid tot_episode_types[TOT_EPISODE_COLS] = {TEXTOID, TEXTOID, TIMESTAMPTZOID,
TIMESTAMPTZOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, NUMERICOID, INT4OID};

/* An inexact figure (report_totals.h) is NULL. */
static Datum
tot_money_datum(rt_money m, bool *isnull)
{
	*isnull = !m.exact;
	return m.exact ? recon_dec_to_numeric(m.value) : (Datum) 0;
}

static void
tot_user_values(ReportTotals *t, const ReportTotalsNames *names, int64 i, Datum *v, bool *nulls)
{
	TotUser    *u = TOT_ITEM(t, users, TotUser, i);
	rt_user    *f = &u->figures;

	memset(nulls, 0, sizeof(bool) * TOT_USER_COLS);
	v[0] = names->user_id(names->ctx, u->user);
	v[1] = Int64GetDatum(f->transactions);
	v[2] = TimestampTzGetDatum(f->first_logged_at);
	v[3] = TimestampTzGetDatum(f->last_logged_at);
	v[4] = names->currency(names->ctx, f->currency);
	v[5] = tot_money_datum(f->opening_balance, &nulls[5]);
	v[6] = tot_money_datum(f->closing_balance, &nulls[6]);
	v[7] = Int64GetDatum(f->overdrafts);
	v[8] = tot_money_datum(f->credits_total, &nulls[8]);
	v[9] = tot_money_datum(f->debits_total, &nulls[9]);
	v[10] = tot_money_datum(f->credits_net, &nulls[10]);
	v[11] = tot_money_datum(f->debits_net, &nulls[11]);
	v[12] = tot_money_datum(f->vat_total, &nulls[12]);
}

static void
tot_day_values(ReportTotals *t, const ReportTotalsNames *names, int64 i, Datum *v, bool *nulls)
{
	TotDay	   *d = TOT_ITEM(t, days, TotDay, i);
	rt_day	   *f = &d->figures;

	memset(nulls, 0, sizeof(bool) * TOT_DAY_COLS);
	v[0] = names->user_id(names->ctx, d->user);
	v[1] = names->currency(names->ctx, f->currency);
	v[2] = DateADTGetDatum((DateADT) f->day);	/* both count days from 2000-01-01 */
	v[3] = Int64GetDatum(f->transactions);
	v[4] = tot_money_datum(f->credits, &nulls[4]);
	v[5] = tot_money_datum(f->debits, &nulls[5]);
	v[6] = tot_money_datum(f->vat, &nulls[6]);
	v[7] = Int64GetDatum(f->overdrafts);
	v[8] = tot_money_datum(f->liability_change, &nulls[8]);
}

/*
 * Row i of the runs.  A run is of one currency: low_currency is its
 * currency and run_currencies 1 (columns kept from 1.1's runs across
 * currencies, so that the tables and functions keep their shape).
 */
static void
tot_episode_values(ReportTotals *t, const ReportTotalsNames *names, int64 i, Datum *v, bool *nulls)
{
	TotEpisode *e = TOT_ITEM(t, episodes, TotEpisode, i);

	memset(nulls, 0, sizeof(bool) * TOT_EPISODE_COLS);
	v[0] = names->user_id(names->ctx, e->user);
	v[1] = names->currency(names->ctx, e->currency);
	v[2] = TimestampTzGetDatum(e->started_at);
	v[3] = TimestampTzGetDatum(e->ended_at);
	nulls[3] = !e->ended;
	v[4] = Int64GetDatum(e->transactions);
	v[5] = CStringGetTextDatum(names->txn_id(names->ctx, e->first_ref));
	/* most runs are one row: its txn_id is fetched once */
	v[6] = e->last_ref == e->first_ref ? v[5]
		: CStringGetTextDatum(names->txn_id(names->ctx, e->last_ref));
	v[7] = v[1];
	v[8] = tot_money_datum(e->low_balance, &nulls[8]);
	v[9] = Int32GetDatum(1);
}

typedef void (*TotValuesFn) (ReportTotals *t, const ReportTotalsNames *names, int64 i,
							 Datum *values, bool *nulls);

/* ---------------------------------------------------------------------
 * The stored totals
 * --------------------------------------------------------------------- */

/*
 * Appends nrows rows built by fill to a table of the extension (or its
 * shard) through the bulk writer: no query per batch (the rows are many:
 * one per user and currency, per user, currency and day, per overdraft
 * run).  Its columns must be the builder's, which is checked.
 */
static void
tot_bulk_insert(ReportTotals *t, const ReportTotalsNames *names, const char *table, int ncols,
				const Oid *types, int64 nrows, TotValuesFn fill)
{
	BulkWriter *w;
	TupleDesc	desc;
	int			c;

	if (nrows == 0)
		return;
	w = bulk_write_open_table(table, "report totals");
	desc = RelationGetDescr(bulk_write_relation(w));
	if (desc->natts != ncols)
		elog(ERROR, "%s has %d columns, not the %d of the report totals", table, desc->natts, ncols);
	for (c = 0; c < ncols; c++)
		if (TupleDescAttr(desc, c)->attisdropped || TupleDescAttr(desc, c)->atttypid != types[c])
			elog(ERROR, "column %d of %s is not the report totals' one", c + 1, table);
	for (int64 i = 0; i < nrows; i++)
	{
		TupleTableSlot *slot = bulk_write_begin_row(w);

		fill(t, names, i, slot->tts_values, slot->tts_isnull);
		bulk_write_end_row(w);
	}
	bulk_write_close(w);
}

void
report_totals_write(ReportTotals *t, const ReportTotalsNames *names, const TotTables *tables,
					bool all_users, Datum user_ids)
{
	const char *names_of[3] = {tables->users, tables->days, tables->episodes};
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {user_ids};
	int			k;

	for (k = 0; k < 3; k++)
		if (SPI_execute_with_args(all_users ? psprintf("DELETE FROM %s", names_of[k])
								  : psprintf("DELETE FROM %s WHERE user_id OPERATOR(pg_catalog.=) ANY ($1)",
											 names_of[k]),
								  all_users ? 0 : 1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not clear %s", names_of[k]);
	tot_bulk_insert(t, names, tables->users, TOT_USER_COLS, tot_user_types, t->users.n,
					tot_user_values);
	tot_bulk_insert(t, names, tables->days, TOT_DAY_COLS, tot_day_types, t->days.n,
					tot_day_values);
	tot_bulk_insert(t, names, tables->episodes, TOT_EPISODE_COLS, tot_episode_types, t->episodes.n,
					tot_episode_values);
}

bool
report_totals_installed(void)
{
	return OidIsValid(get_relname_relid("user_totals", get_namespace_oid("calo_recon", false)));
}

/* The (currency, day) keys of the users' stored day rows, as two arrays. */
#define USER_DAY_KEYS \
	"SELECT pg_catalog.array_agg(k.currency), pg_catalog.array_agg(k.day) " \
	"FROM (SELECT DISTINCT u.currency, u.day FROM calo_recon.user_day_totals u " \
	"      WHERE u.user_id OPERATOR(pg_catalog.=) ANY ($1)) k"

void
report_totals_day_keys(Datum user_ids, Datum *keys)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {user_ids};
	bool		isnull;
	int			c;

	/* not read_only: after the writes, their rows are seen */
	if (SPI_execute_with_args(USER_DAY_KEYS, 1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "could not read calo_recon.user_day_totals");
	for (c = 0; c < 2; c++)
	{
		keys[c] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &isnull);
		if (isnull)
			keys[c] = PointerGetDatum(construct_empty_array(c == 0 ? TEXTOID : DATEOID));
		else
			keys[c] = PointerGetDatum(DatumGetArrayTypePCopy(keys[c]));
	}
}

/*
 * day_totals, the sum of user_day_totals per (currency, day), made again on
 * the coordinator for the days the users had rows in before (keys_before)
 * or have now (all days after a reconcile of every user): one statement
 * for one node and a cluster, where user_day_totals is distributed and
 * day_totals stays on the coordinator.
 */
#define EXACT_SUM(col) \
	"CASE WHEN pg_catalog.count(x." col ") OPERATOR(pg_catalog.=) pg_catalog.count(*) " \
	"THEN pg_catalog.sum(x." col ") END"

void
report_totals_store_days(bool all_users, Datum user_ids, const Datum *keys_before)
{
	Oid			argtypes[2] = {TEXTARRAYOID, DATEARRAYOID};
	Datum		args[2];
	Datum		after[2];
	const char *in_keys = all_users ? ""
		: " WHERE EXISTS (SELECT FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS k (currency, day)"
		"               WHERE k.currency OPERATOR(pg_catalog.=) x.currency"
		"                 AND k.day OPERATOR(pg_catalog.=) x.day)";

	if (!all_users)
	{
		int			c;

		report_totals_day_keys(user_ids, after);
		for (c = 0; c < 2; c++)
			args[c] = DirectFunctionCall2(array_cat, keys_before[c], after[c]);
	}
	if (SPI_execute_with_args(psprintf("DELETE FROM calo_recon.day_totals x%s", in_keys),
							  all_users ? 0 : 2, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear calo_recon.day_totals");
	/* a sum over a NULL (an inexact figure, report_totals.h) is NULL too */
	if (SPI_execute_with_args(psprintf("INSERT INTO calo_recon.day_totals "
									   "SELECT x.currency, x.day, pg_catalog.sum(x.transactions), "
									   EXACT_SUM("credits") ", " EXACT_SUM("debits") ", "
									   EXACT_SUM("vat") ", pg_catalog.sum(x.overdrafts), "
									   EXACT_SUM("liability_change")
									   " FROM calo_recon.user_day_totals x%s "
									   "GROUP BY x.currency, x.day", in_keys),
							  all_users ? 0 : 2, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store calo_recon.day_totals");
}

/* ---------------------------------------------------------------------
 * The live figures: user_figures(user_ids, period_from, period_to),
 * user_day_figures(user_ids), user_overdraft_episodes(user_ids), with the
 * same builders as the stored rows
 * --------------------------------------------------------------------- */
typedef enum TotKind
{
	TOT_USERS,
	TOT_DAYS,
	TOT_EPISODES
} TotKind;

static void
tot_figures_srf(FunctionCallInfo fcinfo, TotKind kind)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		all_users = PG_ARGISNULL(0);
	bool		has_from = kind == TOT_USERS && !PG_ARGISNULL(1);
	bool		has_to = kind == TOT_USERS && !PG_ARGISNULL(2);
	ReportTotals *t;
	ReportTotalsNames names;
	Datum		values[TOT_USER_COLS];
	bool		nulls[TOT_USER_COLS];
	int64		i;
	int64		n;
	TotValuesFn fill;

	InitMaterializedSRF(fcinfo, 0);
	/* the views pass the queued users: usually none */
	if (!all_users && ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(0)), ARR_DIMS(PG_GETARG_ARRAYTYPE_P(0))) == 0)
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	t = recon_live_totals(all_users, all_users ? (Datum) 0 : PG_GETARG_DATUM(0),
						  has_from, has_from ? PG_GETARG_TIMESTAMPTZ(1) : 0,
						  has_to, has_to ? PG_GETARG_TIMESTAMPTZ(2) : 0, &names);
	n = kind == TOT_USERS ? t->users.n : kind == TOT_DAYS ? t->days.n : t->episodes.n;
	fill = kind == TOT_USERS ? tot_user_values
		: kind == TOT_DAYS ? tot_day_values : tot_episode_values;
	for (i = 0; i < n; i++)
	{
		fill(t, &names, i, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
}

Datum
calo_recon_user_figures(PG_FUNCTION_ARGS)
{
	tot_figures_srf(fcinfo, TOT_USERS);
	return (Datum) 0;
}

Datum
calo_recon_user_day_figures(PG_FUNCTION_ARGS)
{
	tot_figures_srf(fcinfo, TOT_DAYS);
	return (Datum) 0;
}

Datum
calo_recon_user_overdraft_episodes(PG_FUNCTION_ARGS)
{
	tot_figures_srf(fcinfo, TOT_EPISODES);
	return (Datum) 0;
}
