/*
 * chain_agg_glue.c: the aggregates calo_recon.chain_first() and chain_last(),
 * the value of a group's first or last row in chain order (src/core/walk.h:
 * logged_at, then txn_id bytewise), with one walk_chain_cmp() per row
 * instead of a sort per group (array_agg(... ORDER BY chain_key(...))[1]
 * sorts every group: the report totals of 1M transactions spent most of
 * their time there).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "walk.h"

PG_FUNCTION_INFO_V1(calo_recon_chain_first_step);
PG_FUNCTION_INFO_V1(calo_recon_chain_last_step);
PG_FUNCTION_INFO_V1(calo_recon_chain_pick_value);

typedef struct ChainPick
{
	bool		has;
	int64		logged_at;
	char	   *txn_id;
	size_t		txn_id_len;
	size_t		txn_id_cap;
	Datum		value;
	bool		value_null;
	int16		typlen;
	bool		typbyval;
} ChainPick;

/* keeps the row that comes first (earlier < 0) or last (earlier > 0) */
static Datum
chain_pick_step(FunctionCallInfo fcinfo, int keep)
{
	MemoryContext aggcxt;
	MemoryContext old;
	ChainPick  *st;
	text	   *id;
	walk_row	row;
	walk_row	kept;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("calo_recon.chain_first and chain_last are aggregates"),
				 errhint("Call them as aggregates, e.g. calo_recon.chain_last(logged_at, txn_id, new_balance).")));
	st = PG_ARGISNULL(0) ? NULL : (ChainPick *) PG_GETARG_POINTER(0);
	if (st == NULL)
	{
		Oid			value_type = get_fn_expr_argtype(fcinfo->flinfo, 3);

		st = MemoryContextAllocZero(aggcxt, sizeof(ChainPick));
		get_typlenbyval(value_type, &st->typlen, &st->typbyval);
	}
	/* a row without its place in the chain has none to win */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(st);
	id = PG_GETARG_TEXT_PP(2);
	memset(&row, 0, sizeof(row));
	row.logged_at = PG_GETARG_TIMESTAMPTZ(1);
	row.txn_id = VARDATA_ANY(id);
	row.txn_id_len = VARSIZE_ANY_EXHDR(id);
	if (st->has)
	{
		memset(&kept, 0, sizeof(kept));
		kept.logged_at = st->logged_at;
		kept.txn_id = st->txn_id;
		kept.txn_id_len = st->txn_id_len;
		if (walk_chain_cmp(&row, &kept) * keep <= 0)
			PG_RETURN_POINTER(st);
	}
	old = MemoryContextSwitchTo(aggcxt);
	if (st->txn_id_cap < row.txn_id_len + 1)
	{
		if (st->txn_id)
			pfree(st->txn_id);
		st->txn_id_cap = Max(row.txn_id_len + 1, 32);
		st->txn_id = palloc(st->txn_id_cap);
	}
	memcpy(st->txn_id, row.txn_id, row.txn_id_len);
	st->txn_id_len = row.txn_id_len;
	st->logged_at = row.logged_at;
	if (!st->typbyval && !st->value_null && st->has)
		pfree(DatumGetPointer(st->value));
	st->value_null = PG_ARGISNULL(3);
	st->value = st->value_null ? (Datum) 0
		: datumCopy(PG_GETARG_DATUM(3), st->typbyval, st->typlen);
	st->has = true;
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(st);
}

/* calo_recon.chain_first_step(internal, timestamptz, text, anyelement) */
Datum
calo_recon_chain_first_step(PG_FUNCTION_ARGS)
{
	return chain_pick_step(fcinfo, -1);
}

/* calo_recon.chain_last_step(internal, timestamptz, text, anyelement) */
Datum
calo_recon_chain_last_step(PG_FUNCTION_ARGS)
{
	return chain_pick_step(fcinfo, 1);
}

/* calo_recon.chain_pick_value(internal, timestamptz, text, anyelement) */
Datum
calo_recon_chain_pick_value(PG_FUNCTION_ARGS)
{
	ChainPick  *st = PG_ARGISNULL(0) ? NULL : (ChainPick *) PG_GETARG_POINTER(0);

	if (st == NULL || !st->has || st->value_null)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(st->value);
}
