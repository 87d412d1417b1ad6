/*
 * score_placement_glue.c: the scoring of a Citus cluster (README "Scaling
 * out with Citus"), where calo_recon.transaction_scores is distributed by
 * user_id beside the transactions.  The features, the scaler, the forest,
 * the threshold, the explanations and the write of the scores run per shard
 * group on the worker that holds it (calo_recon.score_placement() through
 * calo_recon.shard_anchors, as the reconciliation and the features do),
 * with the scoring code and the bulk writer of one node (score_glue.h) into
 * the shard of transaction_scores there, in the caller's distributed
 * transaction; only the counts come back to the coordinator.
 *
 * Which model scores a row is calo_recon.transaction_models' rule, the one
 * home of the choice: the coordinator reads from that view which model each
 * currency of the rows to score gets, and the workers look a row's currency
 * up in that list; a currency not in it is scored by no model.  A new
 * model's scope (train_model()) is passed the same way: its currencies
 * (from calo_recon.model_scope), each given the new model.
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
#include "citus_glue.h"
#include "model_glue.h"
#include "score_glue.h"

PG_FUNCTION_INFO_V1(calo_recon_score_placement);

/* ---------------------------------------------------------------------
 * On the coordinator
 * --------------------------------------------------------------------- */

/* arguments of score_placement() after the anchor, in its order */
enum
{
	A_USERS, A_ONLY_NEW, A_CURRENCIES, A_CURRENCY_MODELS, A_MODEL_IDS, A_SCALERS, A_FORESTS,
	A_THRESHOLDS, A_COUNT
};

/*
 * score_placement() once per shard group, on the node that holds it, in
 * parallel and in this transaction: the rows scored, summed.
 */
static int64
score_on_shards(Oid *argtypes, Datum *args, char *nulls)
{
	bool		isnull;
	Datum		scored;

	if (SPI_execute_with_args("SELECT pg_catalog.sum(calo_recon.score_placement(a.tableoid, $1, $2, $3, $4, $5, $6, $7, $8))"
							  "::pg_catalog.int8 "
							  "FROM calo_recon.shard_anchors a",
							  A_COUNT, argtypes, args, nulls, false, 0) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "could not score the shards of calo_recon.transactions");
	scored = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(scored);
}

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

	argtypes[A_ONLY_NEW] = BOOLOID;
	args[A_ONLY_NEW] = BoolGetDatum(only_new);
	nulls[A_ONLY_NEW] = ' ';
	argtypes[A_USERS] = TEXTARRAYOID;
	if (only_new)
	{
		/*
		 * Their rows are all scored (their features depend on all their
		 * rows); each worker leaves out those its shard has scores of.
		 */
		if (SPI_execute(UNSCORED_USERS_QUERY, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not find the transactions to score");
		take_row(A_USERS, 1, argtypes, args, nulls);
		if (nulls[A_USERS] == 'n')
			return 0;
	}
	else
	{
		/* every shard drops the active models' scores first, as one node does */
		args[A_USERS] = (Datum) 0;
		nulls[A_USERS] = 'n';
	}

	/* each currency of those rows and the model transaction_models gives it */
	if (SPI_execute_with_args("SELECT COALESCE(pg_catalog.array_agg(x.currency ORDER BY x.currency), '{}'::pg_catalog.text[]), "
							  "       COALESCE(pg_catalog.array_agg(x.model_id ORDER BY x.currency), '{}'::pg_catalog.int8[]) "
							  "FROM (SELECT DISTINCT a.currency, a.model_id FROM calo_recon.transaction_models a "
							  "      WHERE a.model_id IS NOT NULL "
							  "        AND ($1 IS NULL OR a.user_id OPERATOR(pg_catalog.=) ANY ($1))) x",
							  1, &argtypes[A_USERS], &args[A_USERS], &nulls[A_USERS], false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read calo_recon.transaction_models");
	take_row(A_CURRENCIES, 2, argtypes, args, nulls);
	return score_on_shards(argtypes, args, nulls);
}

int64
score_model_distributed(int64 model_id, Datum scaler, Oid scaler_type, Datum forest, Oid forest_type,
						double threshold, ArrayType *currencies)
{
	Oid			argtypes[A_COUNT];
	Datum		args[A_COUNT];
	char		nulls[A_COUNT];
	int			n = ArrayGetNItems(ARR_NDIM(currencies), ARR_DIMS(currencies));
	Datum	   *models;
	Datum		threshold_datum = Float8GetDatum(threshold);
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (n == 0)
		return 0;
	models = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		models[i] = Int64GetDatum(model_id);
	memset(nulls, ' ', sizeof(nulls));
	argtypes[A_USERS] = TEXTARRAYOID;
	nulls[A_USERS] = 'n';
	args[A_USERS] = (Datum) 0;
	/* a new model: no score of it is stored yet, none to drop */
	argtypes[A_ONLY_NEW] = BOOLOID;
	args[A_ONLY_NEW] = BoolGetDatum(true);
	argtypes[A_CURRENCIES] = TEXTARRAYOID;
	args[A_CURRENCIES] = PointerGetDatum(currencies);
	argtypes[A_CURRENCY_MODELS] = INT8ARRAYOID;
	args[A_CURRENCY_MODELS] = PointerGetDatum(construct_array(models, n, INT8OID, sizeof(int64),
															  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	argtypes[A_MODEL_IDS] = INT8ARRAYOID;
	args[A_MODEL_IDS] = PointerGetDatum(construct_array(models, 1, INT8OID, sizeof(int64),
														FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	get_typlenbyvalalign(scaler_type, &typlen, &typbyval, &typalign);
	argtypes[A_SCALERS] = get_array_type(scaler_type);
	args[A_SCALERS] = PointerGetDatum(construct_array(&scaler, 1, scaler_type, typlen, typbyval, typalign));
	get_typlenbyvalalign(forest_type, &typlen, &typbyval, &typalign);
	argtypes[A_FORESTS] = get_array_type(forest_type);
	args[A_FORESTS] = PointerGetDatum(construct_array(&forest, 1, forest_type, typlen, typbyval, typalign));
	argtypes[A_THRESHOLDS] = FLOAT8ARRAYOID;
	args[A_THRESHOLDS] = PointerGetDatum(construct_array(&threshold_datum, 1, FLOAT8OID, sizeof(float8),
														 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	return score_on_shards(argtypes, args, nulls);
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

/* The rows some of whose scores the shard has: their model's left out (assigned -1) */
typedef struct ScoredState
{
	const Datum *model_ids;
	int		   *assigned;
} ScoredState;

static void
scored_visit(int64 row, HeapTuple tuple, TupleDesc desc, void *arg)
{
	ScoredState *ss = arg;
	bool		isnull;
	int64		model_id = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));

	if (ss->assigned[row] >= 0 && DatumGetInt64(ss->model_ids[ss->assigned[row]]) == model_id)
		ss->assigned[row] = -1;
}

/*
 * calo_recon.score_placement(anchor_shard oid, user_ids text[],
 *   only_new boolean, currencies text[], currency_models bigint[],
 *   model_ids bigint[], scalers calo_recon.scaler[],
 *   forests calo_recon.iforest[], thresholds float8[]) RETURNS bigint
 * Scores the rows of the given users (all when NULL) in the shard group of
 * anchor_shard and stores the scores in its shard of transaction_scores:
 * with only_new the rows whose model has not scored them there, else all of
 * them, the given models' scores in the shard dropped first.  Returns the
 * rows stored.
 */
Datum
calo_recon_score_placement(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext work;
	MemoryContext old;
	bool		only_new;
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
	char	   *scores_table;
	Oid			scores_relid;
	ArrayType  *users = PG_ARGISNULL(1 + A_USERS) ? NULL : PG_GETARG_ARRAYTYPE_P(1 + A_USERS);
	Datum		model_ids_array;
	int64		stored = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("anchor_shard must not be NULL")));
	if (PG_ARGISNULL(1 + A_ONLY_NEW))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("only_new must not be NULL")));
	only_new = PG_GETARG_BOOL(1 + A_ONLY_NEW);
	model_ids_array = PG_GETARG_DATUM(1 + A_MODEL_IDS);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	work = AllocSetContextCreate(caller, "calo_recon scoring placement", ALLOCSET_DEFAULT_SIZES);
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

	scores_relid = calo_citus_colocated_shard(PG_GETARG_OID(0), "transaction_scores", &scores_table);
	if (!OidIsValid(scores_relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("shard %s has no placement on this node", scores_table)));
	scorers = palloc0(sizeof(Scorer) * Max(n_models, 1));
	for (int k = 0; k < n_models; k++)
	{
		mglue_scaler_decode(scalers[k], &scorers[k].scaler);
		scorers[k].forest = mglue_forest_decode(forests[k]);
		scorer_init(&scorers[k]);
	}

	if (!only_new)
	{
		/* scoring again replaces these models' scores, as an upsert would */
		Oid			argtypes[1] = {INT8ARRAYOID};

		if (SPI_execute_with_args(psprintf("DELETE FROM %s s WHERE s.model_id OPERATOR(pg_catalog.=) ANY ($1)",
										   scores_table),
								  1, argtypes, &model_ids_array, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete the scores of the models from %s", scores_table);
		CommandCounterIncrement();
	}

	fbook_load_placement(&book, PG_GETARG_OID(0), users, true);

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

	/* the "only new rows" test, on this shard of the scores */
	if (only_new && book.n > 0)
	{
		Oid			argtypes[2] = {INT8ARRAYOID, TEXTARRAYOID};
		Datum		args[2] = {model_ids_array, PointerGetDatum(users)};
		char		nulls[2] = {' ', users == NULL ? 'n' : ' '};
		ScoredState ss = {model_ids, assigned};

		visit_rows(&book,
				   psprintf("SELECT s.txn_id, s.model_id FROM %s s "
							"WHERE s.model_id OPERATOR(pg_catalog.=) ANY ($1) "
							"  AND ($2 IS NULL OR s.user_id OPERATOR(pg_catalog.=) ANY ($2))", scores_table),
				   2, argtypes, args, nulls, scored_visit, &ss);
	}

	skip = MemoryContextAllocHuge(work, sizeof(bool) * Max(book.n, 1));
	scores = MemoryContextAllocHuge(work, sizeof(double) * Max(book.n, 1));
	for (int k = 0; k < n_models; k++)
	{
		int64		rows = 0;

		for (int64 i = 0; i < book.n; i++)
		{
			skip[i] = assigned[i] != k;
			rows += !skip[i];
		}
		if (rows == 0)
			continue;
		scorer_score_book(&scorers[k], &book, skip, scores);
		stored += score_and_store(scores_relid, &book, skip, scores, &scorers[k], DatumGetInt64(model_ids[k]),
								  DatumGetFloat8(thresholds[k]));
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	MemoryContextDelete(work);
	PG_RETURN_INT64(stored);
}
