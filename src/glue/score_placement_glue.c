/*
 * score_placement_glue.c: score_transactions() on a Citus cluster (README
 * "Scaling out with Citus").  The scaler, the forest, the threshold and the
 * explanations run per shard group on the worker that holds it
 * (calo_recon.score_placement() through calo_recon.shard_anchors, as the
 * reconciliation and the features do), with the scoring code of one node
 * (score_glue.h); only the scores come back, and the coordinator stores them
 * in calo_recon.transaction_scores, in the caller's transaction.
 *
 * Which model scores a row is calo_recon.transaction_models' rule, the one
 * home of the choice: the coordinator reads from that view which model each
 * currency of the rows to score gets, and the workers look a row's currency
 * up in that list; a currency not in it is scored by no model.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "anomaly_features_glue.h"
#include "model_glue.h"
#include "score_glue.h"

PG_FUNCTION_INFO_V1(calo_recon_score_placement);

/* txn_id, model_id, score, flagged, explanation, attribution, user_id */
#define SCORE_PLACEMENT_COLUMNS 7

/* ---------------------------------------------------------------------
 * On the coordinator
 * --------------------------------------------------------------------- */

/* arguments of score_placement() after the anchor, in its order */
enum
{
	A_USERS, A_CURRENCIES, A_CURRENCY_MODELS, A_MODEL_IDS, A_SCALERS, A_FORESTS, A_THRESHOLDS,
	A_COUNT
};

/* Columns from..from+n-1 of the one row the query gave, as arguments */
static void
take_row(int from, int n, Oid *argtypes, Datum *args, char *nulls)
{
	for (int c = 0; c < n; c++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &isnull);

		argtypes[from + c] = SPI_gettypeid(SPI_tuptable->tupdesc, c + 1);
		args[from + c] = isnull ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
		nulls[from + c] = isnull ? 'n' : ' ';
	}
}

int64
score_distributed(bool only_new)
{
	Oid			argtypes[A_COUNT];
	Datum		args[A_COUNT];
	char		nulls[A_COUNT];

	/* the active models, each array in model_id order */
	if (SPI_execute("SELECT pg_catalog.array_agg(m.model_id ORDER BY m.model_id), "
					"       pg_catalog.array_agg(m.scaler ORDER BY m.model_id), "
					"       pg_catalog.array_agg(m.forest ORDER BY m.model_id), "
					"       pg_catalog.array_agg(m.threshold ORDER BY m.model_id) "
					"FROM calo_recon.models m WHERE m.active", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read calo_recon.models");
	take_row(A_MODEL_IDS, 4, argtypes, args, nulls);
	if (nulls[A_MODEL_IDS] == 'n')
		return 0;

	argtypes[A_USERS] = TEXTARRAYOID;
	if (only_new)
	{
		/*
		 * Their rows are all scored (their features depend on all their
		 * rows); those already scored are left out when storing.
		 */
		if (SPI_execute(UNSCORED_USERS_QUERY, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not find the transactions to score");
		take_row(A_USERS, 1, argtypes, args, nulls);
		if (nulls[A_USERS] == 'n')
			return 0;
	}
	else
	{
		if (SPI_execute(SCORES_OF_ACTIVE_MODELS_DELETE, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete the scores of the active models");
		CommandCounterIncrement();
		args[A_USERS] = (Datum) 0;
		nulls[A_USERS] = 'n';
	}

	/* each currency of those rows and the model transaction_models gives it */
	if (SPI_execute_with_args("SELECT pg_catalog.array_agg(x.currency ORDER BY x.currency), "
							  "       pg_catalog.array_agg(x.model_id ORDER BY x.currency) "
							  "FROM (SELECT DISTINCT a.currency, a.model_id FROM calo_recon.transaction_models a "
							  "      WHERE a.model_id IS NOT NULL "
							  "        AND ($1 IS NULL OR a.user_id OPERATOR(pg_catalog.=) ANY ($1))) x",
							  1, &argtypes[A_USERS], &args[A_USERS], &nulls[A_USERS], false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read calo_recon.transaction_models");
	take_row(A_CURRENCIES, 2, argtypes, args, nulls);
	if (nulls[A_CURRENCIES] == 'n')
		return 0;

	/*
	 * The scores, per shard group on the workers; stored here in the order
	 * of one node's bulk write (a model's rows in txn_id byte order).  The
	 * CTE is materialized: Citus runs it as a distributed subplan, and the
	 * rest (the anti-join with the stored scores) on this node.
	 */
	if (SPI_execute_with_args("WITH r AS MATERIALIZED ("
							  "  SELECT p.txn_id, p.model_id, p.score, p.flagged, p.explanation, p.attribution, p.user_id "
							  "  FROM calo_recon.shard_anchors a "
							  "  CROSS JOIN LATERAL calo_recon.score_placement(a.tableoid, $1, $2, $3, $4, $5, $6, $7) p) "
							  "INSERT INTO calo_recon.transaction_scores "
							  "  (txn_id, model_id, score, flagged, explanation, attribution, user_id) "
							  "SELECT r.txn_id, r.model_id, r.score, r.flagged, r.explanation, r.attribution, r.user_id "
							  "FROM r LEFT JOIN calo_recon.transaction_scores s "
							  "  ON s.model_id OPERATOR(pg_catalog.=) r.model_id "
							  " AND s.txn_id OPERATOR(pg_catalog.=) r.txn_id "
							  "WHERE s.txn_id IS NULL "
							  "ORDER BY r.model_id, r.txn_id COLLATE \"C\"",
							  A_COUNT, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the scores computed on the workers");
	return (int64) SPI_processed;
}

/* ---------------------------------------------------------------------
 * On the worker
 * --------------------------------------------------------------------- */

/* The elements of a one-dimensional array argument without NULLs; returns how many. */
static int
array_arg(FunctionCallInfo fcinfo, int arg, const char *name, Datum **elems)
{
	ArrayType  *a;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	bool	   *elem_nulls;
	int			n;

	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	a = PG_GETARG_ARRAYTYPE_P(arg);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", name)));
	get_typlenbyvalalign(ARR_ELEMTYPE(a), &typlen, &typbyval, &typalign);
	deconstruct_array(a, ARR_ELEMTYPE(a), typlen, typbyval, typalign, elems, &elem_nulls, &n);
	for (int i = 0; i < n; i++)
		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", name)));
	return n;
}

/*
 * calo_recon.score_placement(anchor_shard oid, user_ids text[],
 *   currencies text[], currency_models bigint[], model_ids bigint[],
 *   scalers calo_recon.scaler[], forests calo_recon.iforest[],
 *   thresholds float8[])
 *   RETURNS TABLE (txn_id text, model_id bigint, score float8,
 *                  flagged boolean, explanation text, attribution jsonb)
 */
Datum
calo_recon_score_placement(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext work;
	MemoryContext old;
	Datum	   *currencies;
	Datum	   *currency_models;
	Datum	   *model_ids;
	Datum	   *scalers;
	Datum	   *forests;
	Datum	   *thresholds;
	int			n_currencies;
	int			n_models;
	Scorer	   *scorers;
	int		   *model_of_currency;
	int		   *assigned;
	bool	   *skip;
	double	   *scores;
	FeatureBook book;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != SCORE_PLACEMENT_COLUMNS)
		elog(ERROR, "score_placement must return %d columns", SCORE_PLACEMENT_COLUMNS);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("anchor_shard must not be NULL")));
	work = AllocSetContextCreate(CurrentMemoryContext, "calo_recon scoring placement", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	n_currencies = array_arg(fcinfo, 1 + A_CURRENCIES, "currencies", &currencies);
	if (array_arg(fcinfo, 1 + A_CURRENCY_MODELS, "currency_models", &currency_models) != n_currencies)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("currencies and currency_models must have the same length")));
	n_models = array_arg(fcinfo, 1 + A_MODEL_IDS, "model_ids", &model_ids);
	if (array_arg(fcinfo, 1 + A_SCALERS, "scalers", &scalers) != n_models
		|| array_arg(fcinfo, 1 + A_FORESTS, "forests", &forests) != n_models
		|| array_arg(fcinfo, 1 + A_THRESHOLDS, "thresholds", &thresholds) != n_models)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model_ids, scalers, forests and thresholds must have the same length")));

	scorers = palloc0(sizeof(Scorer) * Max(n_models, 1));
	for (int k = 0; k < n_models; k++)
	{
		mglue_scaler_decode(scalers[k], &scorers[k].scaler);
		scorers[k].forest = mglue_forest_decode(forests[k]);
		scorer_init(&scorers[k]);
	}

	fbook_load_placement(&book, PG_GETARG_OID(0), PG_ARGISNULL(1 + A_USERS) ? NULL : PG_GETARG_ARRAYTYPE_P(1 + A_USERS),
						 true);

	/* each currency of the book to its model's index (-1: none) */
	model_of_currency = palloc(sizeof(int) * Max(book.n_currencies, 1));
	for (int c = 0; c < book.n_currencies; c++)
	{
		model_of_currency[c] = -1;
		for (int j = 0; j < n_currencies; j++)
		{
			char	   *code = TextDatumGetCString(currencies[j]);

			if (strcmp(code, book.currency_code[c]) != 0)
				continue;
			for (int k = 0; k < n_models; k++)
				if (DatumGetInt64(model_ids[k]) == DatumGetInt64(currency_models[j]))
					model_of_currency[c] = k;
			if (model_of_currency[c] < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("currency %s is given model " INT64_FORMAT ", which is not among model_ids",
								code, DatumGetInt64(currency_models[j]))));
		}
	}
	assigned = MemoryContextAllocHuge(work, sizeof(int) * Max(book.n, 1));
	for (int64 i = 0; i < book.n; i++)
		assigned[i] = model_of_currency[book.currency[i]];

	skip = MemoryContextAllocHuge(work, sizeof(bool) * Max(book.n, 1));
	scores = MemoryContextAllocHuge(work, sizeof(double) * Max(book.n, 1));
	for (int k = 0; k < n_models; k++)
	{
		int64		rows = 0;
		double		threshold = DatumGetFloat8(thresholds[k]);

		for (int64 i = 0; i < book.n; i++)
		{
			skip[i] = assigned[i] != k;
			rows += !skip[i];
		}
		if (rows == 0)
			continue;
		scorer_score_book(&scorers[k], &book, skip, scores);
		for (int64 i = 0; i < book.n; i++)
		{
			Datum		values[SCORE_PLACEMENT_COLUMNS];
			bool		nulls[SCORE_PLACEMENT_COLUMNS] = {false};
			bool		flagged;

			if (skip[i])
				continue;
			if ((i & 0x3FF) == 0)
				CHECK_FOR_INTERRUPTS();
			flagged = scores[i] > threshold;
			values[0] = PointerGetDatum(cstring_to_text_with_len(book.txn_arena + book.txn_off[i],
																 (int) (book.txn_off[i + 1] - book.txn_off[i])));
			values[1] = model_ids[k];
			values[2] = Float8GetDatum(scores[i]);
			values[3] = BoolGetDatum(flagged);
			values[6] = PointerGetDatum(cstring_to_text_with_len(book.user_name[book.user[i]],
																 book.user_len[book.user[i]]));
			if (flagged)
			{
				Explanation e = scorer_explain(&scorers[k], &book, i);

				values[4] = CStringGetTextDatum(e.sentence);
				values[5] = JsonbPGetDatum(e.attribution);
			}
			else
				nulls[4] = nulls[5] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}
