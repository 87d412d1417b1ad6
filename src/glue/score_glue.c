/*
 * score_glue.c: the one scoring path (README "Anomaly detection"): the
 * features of the stored transactions (anomaly_features_glue.c), the scaler,
 * the forest, the threshold and the explanation of flagged rows, and the
 * bulk write of calo_recon.transaction_scores.
 *
 *   calo_recon.score_transactions(only_new boolean)   the active models,
 *       each the rows calo_recon.transaction_models gives it
 *   calo_recon.fit_and_score_model(model_id, ...)     train_model()'s work:
 *       fit on the training rows (the scope's rows of the window), keep
 *       the scores computed for the threshold and store them as the new
 *       model's
 *   calo_recon.model_scores(model_id, user_ids[, txn_ids]) the scores of some
 *       users' rows, not stored (the model alerts of new transactions)
 *
 * Scores are written by the bulk writer (bulk_write_glue.h: COPY's
 * multi-insert path), never a statement per row.
 */
#include "postgres.h"

#include <math.h>

#include "access/heapam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "parser/parse_relation.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "anomaly_features.h"
#include "anomaly_features_glue.h"
#include "attribution.h"
#include "bulk_write_glue.h"
#include "explanation.h"
#include "iforest.h"
#include "model_glue.h"
#include "name_index_glue.h"
#include "parallel_score_glue.h"
#include "recon_glue.h"
#include "scaler.h"
#include "score_glue.h"
#include "score_rows.h"
#include "walk.h"

PG_FUNCTION_INFO_V1(calo_recon_score_transactions);
PG_FUNCTION_INFO_V1(calo_recon_fit_and_score_model);
PG_FUNCTION_INFO_V1(calo_recon_model_scores);
PG_FUNCTION_INFO_V1(calo_recon_drop_stale_scores);

/* money_glue.c: the one rounding rule of money shown to people */
extern Datum calo_recon_round_money(PG_FUNCTION_ARGS);

/* ---------------------------------------------------------------------
 * Scoring: scaler, forest, threshold, explanation
 * --------------------------------------------------------------------- */
void
scorer_init(Scorer *s)
{
	int			nf = (int) s->forest->n_features;

	if (s->scaler.n_features != FEAT_COUNT || nf != FEAT_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the model expects %d features (scaler) and %d (forest), the features are %d",
						s->scaler.n_features, nf, FEAT_COUNT)));
	s->x = palloc(sizeof(double) * nf);
	s->bits = palloc(sizeof(double) * nf);
	s->direction = palloc(sizeof(int) * nf);
}

/*
 * The scores of the book's rows not skipped, into scores[row]: in parallel
 * when the rows are many and the server allows workers
 * (parallel_score_glue.c), else here, a span of rows at a time.
 */
void
scorer_score_book(Scorer *s, const FeatureBook *book, const bool *skip, double *scores)
{
	void	   *scratch;

	if (parallel_score_book(&s->scaler, s->forest, book, skip, scores))
		return;
	scratch = palloc(score_rows_scratch_size((int) s->forest->n_features));
	for (int64 first = 0; first < book->n; first += SCORE_ROWS_SPAN)
	{
		CHECK_FOR_INTERRUPTS();
		score_rows(&s->scaler, s->forest, book->features, FEAT_COUNT, skip, first,
				   Min(book->n, first + SCORE_ROWS_SPAN), scores, scratch);
	}
	pfree(scratch);
}

/* round_money(value, minor_unit) as text: the money of the explanations (expl_money_format) */
static int
scorer_format_money(double value, int minor_unit, char *buf, size_t len, void *arg)
{
	Datum		rounded = DirectFunctionCall2(calo_recon_round_money,
											  DirectFunctionCall1(float8_numeric, Float8GetDatum(value)),
											  Int32GetDatum(minor_unit));
	char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out, rounded));
	int			need = (int) strlen(text);

	(void) arg;
	/* never cut: explanation.c asks again with room for need bytes */
	if ((size_t) need < len)
		memcpy(buf, text, need + 1);
	else if (len > 0)
		buf[0] = '\0';
	pfree(text);
	return need;
}

/*
 * The attribution of book row i (attribution.h) as jsonb and the sentence
 * naming its top cause (explanation.h):
 *   {"cause": "spend", "total_bits": 7.1,
 *    "features": [{"feature": "debit_vs_usual", "bits": 5.2, "direction": "above"}, ...]}
 * with every feature, most bits first (ties: feature order).
 */
Explanation
scorer_explain(Scorer *s, const FeatureBook *book, int64 i)
{
	const double *features = book->features + i * FEAT_COUNT;
	int			order[FEAT_COUNT];
	double		total;
	expl_cause	cause;
	expl_row	row;
	StringInfoData json;
	char		sentence[512];
	int64		t = book->logged_at[i];
	Explanation e;

	scl_transform(&s->scaler, features, s->x);
	ifo_prepare_input(s->forest, s->x);
	total = attr_row(s->forest, s->x, s->bits, s->direction);
	cause = expl_top_cause(book->direction[i], s->bits);

	row.features = features;
	row.context = book->context + i * FEAT_CONTEXT_COUNT;
	row.amount = book->amount[i];
	row.direction = book->direction[i];
	row.minor_unit = book->minor_unit[book->currency[i]];
	row.currency = book->currency_code[book->currency[i]];
	row.hour = TIMESTAMP_NOT_FINITE(t) ? -1 : feat_hour_of(t);
	row.format_money = scorer_format_money;
	row.format_arg = NULL;
	{
		int			need = expl_sentence(cause, &row, sentence, sizeof(sentence));

		if (need < (int) sizeof(sentence))
			e.sentence = pstrdup(sentence);
		else
		{
			/* a longer sentence than the buffer holds: written again, whole */
			e.sentence = palloc(need + 1);
			expl_sentence(cause, &row, e.sentence, need + 1);
		}
	}

	/* most bits first: an insertion sort of FEAT_COUNT entries */
	for (int k = 0; k < FEAT_COUNT; k++)
	{
		int			m = k;

		while (m > 0 && s->bits[order[m - 1]] < s->bits[k])
		{
			order[m] = order[m - 1];
			m--;
		}
		order[m] = k;
	}
	initStringInfo(&json);
	appendStringInfo(&json, "{\"cause\": \"%s\", \"total_bits\": %s, \"features\": [",
					 expl_cause_names[cause], float8out_internal(total));
	for (int k = 0; k < FEAT_COUNT; k++)
	{
		int			j = order[k];

		appendStringInfo(&json, "%s{\"feature\": \"%s\", \"bits\": %s, \"direction\": \"%s\"}",
						 k > 0 ? ", " : "", feat_names[j], float8out_internal(s->bits[j]),
						 s->direction[j] > 0 ? "above" : (s->direction[j] < 0 ? "below" : "none"));
	}
	appendStringInfoString(&json, "]}");
	e.attribution = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)));
	pfree(json.data);
	return e;
}

/* ---------------------------------------------------------------------
 * Writing calo_recon.transaction_scores: the bulk writer (bulk_write_glue.h)
 * --------------------------------------------------------------------- */
typedef struct ScoreWriter
{
	BulkWriter *bulk;
	AttrNumber	att_txn_id,
				att_model_id,
				att_score,
				att_flagged,
				att_explanation,
				att_attribution,
				att_user_id;
	int64		written;
} ScoreWriter;

/* relid: calo_recon.transaction_scores, or its shard on a Citus worker */
static void
writer_open(ScoreWriter *w, Oid relid)
{
	Relation	rel;

	memset(w, 0, sizeof(*w));
	w->bulk = bulk_write_open(relid, "scores");
	rel = bulk_write_relation(w->bulk);
	w->att_txn_id = recon_attnum(rel, "txn_id");
	w->att_model_id = recon_attnum(rel, "model_id");
	w->att_score = recon_attnum(rel, "score");
	w->att_flagged = recon_attnum(rel, "flagged");
	w->att_explanation = recon_attnum(rel, "explanation");
	w->att_attribution = recon_attnum(rel, "attribution");
	w->att_user_id = recon_attnum(rel, "user_id");
}

static void
writer_add(ScoreWriter *w, const char *txn_id, int txn_id_len, const char *user_id, int user_id_len,
		   int64 model_id, double score, bool flagged, const Explanation *explanation)
{
	/* the values are made in the batch's memory until bulk_write_end_row */
	TupleTableSlot *slot = bulk_write_begin_row(w->bulk);

	slot->tts_values[w->att_txn_id - 1] = PointerGetDatum(cstring_to_text_with_len(txn_id, txn_id_len));
	slot->tts_isnull[w->att_txn_id - 1] = false;
	slot->tts_values[w->att_user_id - 1] = PointerGetDatum(cstring_to_text_with_len(user_id, user_id_len));
	slot->tts_isnull[w->att_user_id - 1] = false;
	slot->tts_values[w->att_model_id - 1] = Int64GetDatum(model_id);
	slot->tts_isnull[w->att_model_id - 1] = false;
	slot->tts_values[w->att_score - 1] = Float8GetDatum(score);
	slot->tts_isnull[w->att_score - 1] = false;
	slot->tts_values[w->att_flagged - 1] = BoolGetDatum(flagged);
	slot->tts_isnull[w->att_flagged - 1] = false;
	if (explanation != NULL)
	{
		slot->tts_values[w->att_explanation - 1] = CStringGetTextDatum(explanation->sentence);
		slot->tts_isnull[w->att_explanation - 1] = false;
		slot->tts_values[w->att_attribution - 1] = datumCopy(JsonbPGetDatum(explanation->attribution),
															 false, -1);
		slot->tts_isnull[w->att_attribution - 1] = false;
	}
	bulk_write_end_row(w->bulk);
}

static void
writer_close(ScoreWriter *w)
{
	w->written = bulk_write_close(w->bulk);
}

/* calo_recon.transaction_scores of one node */
static Oid
scores_relation(void)
{
	return get_relname_relid("transaction_scores", get_namespace_oid("calo_recon", false));
}

/* a row and the first 8 bytes of its txn_id, big-endian: most comparisons end there */
typedef struct TxnSortKey
{
	uint64		prefix;
	int64		row;
} TxnSortKey;

static const FeatureBook *sorting_book;

static int
txn_order_cmp(const void *pa, const void *pb)
{
	const TxnSortKey *ka = pa;
	const TxnSortKey *kb = pb;
	const FeatureBook *bk = sorting_book;
	int64		alen,
				blen;

	if (ka->prefix != kb->prefix)
		return ka->prefix < kb->prefix ? -1 : 1;
	alen = bk->txn_off[ka->row + 1] - bk->txn_off[ka->row];
	blen = bk->txn_off[kb->row + 1] - bk->txn_off[kb->row];
	return walk_txn_id_cmp(bk->txn_arena + bk->txn_off[ka->row], (size_t) alen,
						   bk->txn_arena + bk->txn_off[kb->row], (size_t) blen);
}

static uint64
txn_prefix(const FeatureBook *bk, int64 row)
{
	const unsigned char *p = (const unsigned char *) bk->txn_arena + bk->txn_off[row];
	int64		len = bk->txn_off[row + 1] - bk->txn_off[row];
	uint64		prefix = 0;

	/* a shorter id sorts first on a common prefix: its missing bytes are 0,
	 * and the full comparison settles the rest */
	for (int i = 0; i < 8; i++)
		prefix = (prefix << 8) | (i < len ? p[i] : 0);
	return prefix;
}

/*
 * Rows are written in txn_id byte order: under the key (model_id, txn_id) a
 * model's new scores then follow one another at the right edge of the index
 * (or, among the model's stored scores, on neighbouring leaf pages).
 */
int64
score_and_store(Oid scores_relid, FeatureBook *book, const bool *skip, const double *scores, Scorer *s,
				int64 model_id, double threshold)
{
	ScoreWriter w;
	TxnSortKey *order = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(TxnSortKey) * Max(book->n, 1));
	int64		n = 0;

	for (int64 i = 0; i < book->n; i++)
		if (skip == NULL || !skip[i])
		{
			order[n].prefix = txn_prefix(book, i);
			order[n++].row = i;
		}
	sorting_book = book;
	qsort(order, n, sizeof(TxnSortKey), txn_order_cmp);

	writer_open(&w, scores_relid);
	for (int64 k = 0; k < n; k++)
	{
		int64		i = order[k].row;
		bool		flagged = scores[i] > threshold;
		Explanation e = {NULL, NULL};

		if (flagged)
			e = scorer_explain(s, book, i);
		writer_add(&w, book->txn_arena + book->txn_off[i],
				   (int) (book->txn_off[i + 1] - book->txn_off[i]),
				   book->user_name[book->user[i]], book->user_len[book->user[i]],
				   model_id, scores[i], flagged, flagged ? &e : NULL);
		if (flagged)
		{
			pfree(e.sentence);
			pfree(e.attribution);
		}
	}
	writer_close(&w);
	pfree(order);
	return w.written;
}

void
visit_rows(FeatureBook *book, const char *query, int nargs, Oid *argtypes, Datum *args,
		   const char *nulls, RowVisitor visit, void *arg)
{
	NameIndex	ix;
	int64	   *row_of;			/* by the number of a txn_id: its (first) row */
	SPIPlanPtr	plan;
	Portal		portal;

	/*
	 * A bare COPY on a Citus cluster may store one txn_id under two users
	 * (README "Scaling out with Citus"): the rows are numbered by distinct id.
	 */
	name_index_init(&ix, (uint32) book->n);
	row_of = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(book->n, 1));
	for (int64 i = 0; i < book->n; i++)
	{
		const char *id = book->txn_arena + book->txn_off[i];
		int			len = (int) (book->txn_off[i + 1] - book->txn_off[i]);
		uint32		distinct = ix.n;

		if (name_index_add_borrowed(&ix, id, len, name_index_hash(id, len)) == distinct)
			row_of[distinct] = i;
	}
	plan = SPI_prepare(query, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, nulls, false);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			struct varlena *v;
			int64		row;

			if (isnull)
				continue;
			v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));
			row = name_index_find(&ix, VARDATA_ANY(v), (int) VARSIZE_ANY_EXHDR(v));
			if (row >= 0)
				visit(row_of[row], SPI_tuptable->vals[i], SPI_tuptable->tupdesc, arg);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	pfree(ix.slots);
	pfree(ix.names);
	pfree(row_of);
}

typedef struct MarkState
{
	bool	   *marks;
	int64		marked;
} MarkState;

static void
mark_visit(int64 row, HeapTuple tuple, TupleDesc desc, void *arg)
{
	MarkState  *ms = arg;

	if (!ms->marks[row])
	{
		ms->marks[row] = true;
		ms->marked++;
	}
}

/*
 * Marks the rows whose txn_id the query (one text column, nargs parameters)
 * returns; returns how many it marked.
 */
static int64
mark_rows(FeatureBook *book, bool *marks, const char *query, int nargs, Oid *argtypes,
		  Datum *args, const char *nulls)
{
	MarkState	ms = {marks, 0};

	visit_rows(book, query, nargs, argtypes, args, nulls, mark_visit, &ms);
	return ms.marked;
}

/* ---------------------------------------------------------------------
 * score_transactions(only_new)
 * --------------------------------------------------------------------- */
/* feat_names as text[]'s text form, for messages */
static char *
names_text(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < FEAT_COUNT; i++)
		appendStringInfo(&buf, i > 0 ? ",%s" : "%s", feat_names[i]);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static bool
names_match(ArrayType *stored)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(stored) != 1)
		return false;
	deconstruct_array(stored, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n != FEAT_COUNT)
		return false;
	for (int i = 0; i < n; i++)
	{
		char	   *s;

		if (nulls[i])
			return false;
		s = TextDatumGetCString(elems[i]);
		if (strcmp(s, feat_names[i]) != 0)
			return false;
	}
	return true;
}

/* A model read from calo_recon.models, ready to score */
typedef struct LoadedModel
{
	int64		model_id;
	double		threshold;
	Scorer		s;
} LoadedModel;

#define MODEL_COLUMNS "m.model_id, m.model_name, m.features, m.scaler, m.forest, m.threshold"

/* One row of MODEL_COLUMNS into the model; allocates in the current memory context. */
static void
load_model_row(HeapTuple tup, TupleDesc desc, LoadedModel *m)
{
	bool		isnull;
	char	   *model_name;

	m->model_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	model_name = SPI_getvalue(tup, desc, 2);
	if (!names_match(DatumGetArrayTypePCopy(SPI_getbinval(tup, desc, 3, &isnull))))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model " INT64_FORMAT " (%s) was trained on other features than calo_recon.transaction_features has",
						m->model_id, model_name),
				 errdetail("model: %s; view: %s", SPI_getvalue(tup, desc, 3), names_text()),
				 errhint("Train a new model with calo_recon.train_model().")));
	mglue_scaler_decode(SPI_getbinval(tup, desc, 4, &isnull), &m->s.scaler);
	m->s.forest = mglue_forest_decode(SPI_getbinval(tup, desc, 5, &isnull));
	m->threshold = DatumGetFloat8(SPI_getbinval(tup, desc, 6, &isnull));
	scorer_init(&m->s);
}

/* The model with this id; false when there is none. SPI must be connected. */
static bool
load_model(int64 model_id, LoadedModel *m)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(model_id)};

	if (SPI_execute_with_args("SELECT " MODEL_COLUMNS " FROM calo_recon.models m "
							  "WHERE m.model_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read calo_recon.models");
	if (SPI_processed == 0)
		return false;
	load_model_row(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, m);
	return true;
}

/*
 * The active models (one per currency scope), in model_id order; returns
 * how many. SPI must be connected.
 */
static int
load_active_models(LoadedModel **models)
{
	int			n;
	SPITupleTable *tuptable;

	if (SPI_execute("SELECT " MODEL_COLUMNS " FROM calo_recon.models m WHERE m.active ORDER BY m.model_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read calo_recon.models");
	n = (int) SPI_processed;
	tuptable = SPI_tuptable;
	*models = palloc0(sizeof(LoadedModel) * Max(n, 1));
	for (int i = 0; i < n; i++)
		load_model_row(tuptable->vals[i], tuptable->tupdesc, &(*models)[i]);
	return n;
}

/*
 * Which of the loaded models scores each row: calo_recon.transaction_models
 * (the one home of the choice: the currency's own active model, else the
 * all-currency one) gives the model, the row's index in models goes into
 * assigned[row]; rows it leaves out stay -1.
 */
typedef struct AssignState
{
	LoadedModel *models;
	int			n_models;
	int		   *assigned;
	int64		n_assigned;
} AssignState;

static void
assign_visit(int64 row, HeapTuple tuple, TupleDesc desc, void *arg)
{
	AssignState *as = arg;
	bool		isnull;
	int64		model_id = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));

	if (isnull)
		return;
	for (int k = 0; k < as->n_models; k++)
		if (as->models[k].model_id == model_id)
		{
			if (as->assigned[row] < 0)
				as->n_assigned++;
			as->assigned[row] = k;
			return;
		}
}

/*
 * Works the rescore queue (score_glue.h): deletes every model's scores that
 * the queued changes made stale, then the entries read; returns the scores
 * deleted.  SPI must be connected.
 */
static int64
drop_stale_scores(void)
{
	Oid			argtypes[3] = {INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum		args[3];
	bool		isnull;
	int64		dropped;

	if (SPI_execute(RESCORE_QUEUE_READ, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read calo_recon.pending_rescore");
	args[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return 0;
	args[0] = PointerGetDatum(DatumGetArrayTypePCopy(args[0]));
	args[1] = PointerGetDatum(DatumGetArrayTypePCopy(SPI_getbinval(SPI_tuptable->vals[0],
																   SPI_tuptable->tupdesc, 2, &isnull)));
	/* the models, so that the scores are found by their key */
	if (SPI_execute("SELECT COALESCE(pg_catalog.array_agg(m.model_id), '{}'::pg_catalog.int8[]) "
					"FROM calo_recon.models m", false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read calo_recon.models");
	args[2] = PointerGetDatum(DatumGetArrayTypePCopy(SPI_getbinval(SPI_tuptable->vals[0],
																   SPI_tuptable->tupdesc, 1, &isnull)));
	if (SPI_execute_with_args(RESCORE_STALE_DELETE, 3, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the stale scores");
	dropped = (int64) SPI_processed;
	if (SPI_execute_with_args(RESCORE_GONE_DELETE, 3, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the scores of the rows gone");
	dropped += (int64) SPI_processed;
	if (SPI_execute_with_args(RESCORE_QUEUE_DELETE, 2, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the entries of calo_recon.pending_rescore");
	CommandCounterIncrement();
	return dropped;
}

/*
 * calo_recon.drop_stale_scores() RETURNS bigint: train_model()'s call, before
 * the snapshot it trains and scores with, so that the changes it sees leave
 * no entry behind (the next score_transactions() would score its rows again).
 */
Datum
calo_recon_drop_stale_scores(PG_FUNCTION_ARGS)
{
	int64		dropped;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	dropped = drop_stale_scores();
	SPI_finish();
	PG_RETURN_INT64(dropped);
}

Datum
calo_recon_score_transactions(PG_FUNCTION_ARGS)
{
	bool		only_new;
	MemoryContext work;
	MemoryContext old;
	MemoryContext caller = CurrentMemoryContext;
	LoadedModel *models;
	int			n_models;
	FeatureBook book;
	AssignState as;
	ArrayType  *users_wanted = NULL;
	bool	   *skip;
	double	   *scores;
	int64		scored = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("only_new must not be NULL")));
	only_new = PG_GETARG_BOOL(0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	work = AllocSetContextCreate(caller, "calo_recon scoring", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	n_models = load_active_models(&models);

	/*
	 * One scorer at a time: a second one waits here, then sees (with the
	 * fresh snapshot of its next query) the scores the first stored, so
	 * that no transaction is scored twice for a model.
	 */
	if (SPI_execute("LOCK TABLE calo_recon.transaction_scores IN SHARE ROW EXCLUSIVE MODE",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock calo_recon.transaction_scores");

	/*
	 * The scores the changes since the last call made stale are dropped
	 * (with no active model too: an inactive one's): their rows are
	 * unscored now, and scored below with the new ones.
	 */
	(void) drop_stale_scores();
	if (n_models == 0)
		goto done;

	/* on a Citus cluster the scaler and the forest run per shard, on the workers */
	if (fbook_is_distributed())
	{
		scored = score_distributed(only_new);
		goto done;
	}

	if (only_new)
	{
		/*
		 * The users with a row that the model scoring it has not scored:
		 * only their rows are read (their features depend on all their
		 * rows), through the user index when they are few (refresh() after
		 * a small load).
		 */
		bool		isnull;
		Datum		users;

		if (SPI_execute(UNSCORED_USERS_QUERY, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not find the transactions to score");
		users = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			goto done;
		users_wanted = DatumGetArrayTypePCopy(users);
		fbook_load(&book, users_wanted, true);
	}
	else
	{
		/* scoring again replaces the active models' scores, as an upsert would */
		if (SPI_execute(SCORES_OF_ACTIVE_MODELS_DELETE, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete the scores of the active models");
		CommandCounterIncrement();
		fbook_load(&book, NULL, true);
	}

	/* each row to its model, the rows already scored by it left out */
	as.models = models;
	as.n_models = n_models;
	as.assigned = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int) * Max(book.n, 1));
	as.n_assigned = 0;
	for (int64 i = 0; i < book.n; i++)
		as.assigned[i] = -1;
	if (only_new)
	{
		Oid			argtypes[1] = {TEXTARRAYOID};
		Datum		args[1] = {PointerGetDatum(users_wanted)};

		visit_rows(&book,
				   "SELECT a.txn_id, a.model_id FROM calo_recon.transaction_models a "
				   "LEFT JOIN calo_recon.transaction_scores s "
				   "  ON s.txn_id OPERATOR(pg_catalog.=) a.txn_id "
				   " AND s.model_id OPERATOR(pg_catalog.=) a.model_id "
				   "WHERE a.user_id OPERATOR(pg_catalog.=) ANY ($1) AND a.model_id IS NOT NULL "
				   "  AND s.txn_id IS NULL",
				   1, argtypes, args, NULL, assign_visit, &as);
	}
	else
		visit_rows(&book,
				   "SELECT a.txn_id, a.model_id FROM calo_recon.transaction_models a "
				   "WHERE a.model_id IS NOT NULL",
				   0, NULL, NULL, NULL, assign_visit, &as);
	if (as.n_assigned == 0)
		goto done;

	skip = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(bool) * Max(book.n, 1));
	scores = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * Max(book.n, 1));
	for (int k = 0; k < n_models; k++)
	{
		int64		rows = 0;

		for (int64 i = 0; i < book.n; i++)
		{
			skip[i] = as.assigned[i] != k;
			rows += !skip[i];
		}
		if (rows == 0)
			continue;
		scorer_score_book(&models[k].s, &book, skip, scores);
		scored += score_and_store(scores_relation(), &book, skip, scores, &models[k].s, models[k].model_id,
								  models[k].threshold);
	}

done:
	MemoryContextSwitchTo(old);
	SPI_finish();
	MemoryContextDelete(work);
	PG_RETURN_INT64(scored);
}

/*
 * The currencies of the rows in scope (calo_recon.model_scope, by currency),
 * as text[]: what the workers score with a new model on a cluster.
 */
static ArrayType *
scope_currencies(const FeatureBook *book, const bool *in_scope)
{
	bool	   *seen = palloc0(sizeof(bool) * Max(book->n_currencies, 1));
	Datum	   *codes = palloc(sizeof(Datum) * Max(book->n_currencies, 1));
	int			n = 0;

	for (int64 i = 0; i < book->n; i++)
		if (in_scope[i] && !seen[book->currency[i]])
		{
			seen[book->currency[i]] = true;
			codes[n++] = CStringGetTextDatum(book->currency_code[book->currency[i]]);
		}
	return construct_array(codes, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* ---------------------------------------------------------------------
 * fit_and_score_model(model_id, contamination, n_trees, sample_size, seed,
 *                     currency, trained_from, trained_to)
 *   RETURNS (training_rows bigint, excluded bigint, scaler, forest, threshold,
 *            scope_rows bigint)
 * --------------------------------------------------------------------- */

Datum
calo_recon_fit_and_score_model(PG_FUNCTION_ARGS)
{
	int64		model_id;
	double		contamination;
	int32		n_trees;
	int32		sample_size;
	int64		seed;
	bool		has_from = !PG_ARGISNULL(6);
	bool		has_to = !PG_ARGISNULL(7);
	TimestampTz trained_from = has_from ? PG_GETARG_TIMESTAMPTZ(6) : 0;
	TimestampTz trained_to = has_to ? PG_GETARG_TIMESTAMPTZ(7) : 0;
	TupleDesc	result_desc;
	Datum		result[6];
	bool		result_nulls[6] = {false, false, true, true, true, false};
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext work;
	MemoryContext old;
	FeatureBook book;
	bool	   *in_scope;
	bool	   *confirmed;
	bool	   *skip;
	int64		scope_rows;
	int64		excluded = 0;
	int64		n_train = 0;
	double	   *train;
	double	   *scores;
	double	   *train_scores;
	Scorer		s;
	bytea	   *scaler_value;
	bytea	   *forest_value;
	double		threshold;
	int64		k;
	bool		distributed;

	for (int a = 0; a <= 4; a++)
		if (PG_ARGISNULL(a))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("model_id, contamination, n_trees, sample_size and seed must not be NULL")));
	model_id = PG_GETARG_INT64(0);
	contamination = PG_GETARG_FLOAT8(1);
	n_trees = PG_GETARG_INT32(2);
	sample_size = PG_GETARG_INT32(3);
	seed = PG_GETARG_INT64(4);
	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "fit_and_score_model must return a row");
	/* NaN fails the upper bound */
	if (!(contamination > 0 && contamination <= 0.5))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("contamination must be in (0, 0.5], got %g", contamination)));
	if (has_from && has_to && !(trained_from < trained_to))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the training window is empty: trained_from must be before trained_to"),
				 errdetail("The window is [trained_from, trained_to): from %s to %s.",
						   timestamptz_to_str(trained_from), timestamptz_to_str(trained_to))));
	mglue_forest_check(n_trees, sample_size, FEAT_COUNT);
	result_desc = BlessTupleDesc(result_desc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	work = AllocSetContextCreate(caller, "calo_recon training", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	/*
	 * The rows in the order of the feature view, so that a seed reproduces
	 * the model.  On a Citus cluster the scores are stored, and flagged rows
	 * explained, per shard group on the workers: no context here.
	 */
	distributed = fbook_is_distributed();
	fbook_load(&book, NULL, !distributed);

	/*
	 * The model's scope (calo_recon.model_scope: the rows of its currency,
	 * or all) is what it scores; the scope's rows of the window, less the
	 * confirmed anomalies, are what it is trained on.
	 */
	in_scope = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(bool) * Max(book.n, 1));
	memset(in_scope, 0, sizeof(bool) * Max(book.n, 1));
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1] = {PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5)};
		char		nulls[1] = {PG_ARGISNULL(5) ? 'n' : ' '};

		scope_rows = mark_rows(&book, in_scope, "SELECT s.txn_id FROM calo_recon.model_scope($1) s",
							   1, argtypes, args, nulls);
	}
	confirmed = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(bool) * Max(book.n, 1));
	memset(confirmed, 0, sizeof(bool) * Max(book.n, 1));
	(void) mark_rows(&book, confirmed,
					 "SELECT v.txn_id FROM calo_recon.anomaly_verdicts v "
					 "WHERE v.verdict OPERATOR(pg_catalog.=) 'confirmed'", 0, NULL, NULL, NULL);
	/* from here on, confirmed[i]: in the window's scope but not trained on */
	skip = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(bool) * Max(book.n, 1));
	for (int64 i = 0; i < book.n; i++)
	{
		bool		in_window = in_scope[i]
			&& (!has_from || book.logged_at[i] >= trained_from)
			&& (!has_to || book.logged_at[i] < trained_to);

		skip[i] = !in_scope[i];
		if (!in_window)
			confirmed[i] = true;	/* not a training row */
		else if (confirmed[i])
			excluded++;
		else
			n_train++;
	}
	result[0] = Int64GetDatum(n_train);
	result[1] = Int64GetDatum(excluded);
	result[5] = Int64GetDatum(scope_rows);
	if (n_train == 0)
	{
		/* train_model() says why the training set is empty */
		MemoryContextSwitchTo(old);
		SPI_finish();
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, result, result_nulls)));
	}

	train = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * FEAT_COUNT * n_train);
	k = 0;
	for (int64 i = 0; i < book.n; i++)
		if (!confirmed[i])
			memcpy(train + (k++) * FEAT_COUNT, book.features + i * FEAT_COUNT, sizeof(double) * FEAT_COUNT);
	scaler_value = mglue_scaler_fit(train, n_train, FEAT_COUNT, &s.scaler);
	for (int64 i = 0; i < n_train; i++)
		scl_transform(&s.scaler, train + i * FEAT_COUNT, train + i * FEAT_COUNT);
	forest_value = mglue_forest_fit(train, n_train, FEAT_COUNT, n_trees, sample_size, seed);
	pfree(train);
	s.forest = mglue_forest_decode(PointerGetDatum(forest_value));
	scorer_init(&s);

	/*
	 * Every row of the scope scored once: the training rows' scores set the
	 * threshold.  On a cluster only those here; the workers score the scope.
	 */
	scores = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * Max(book.n, 1));
	train_scores = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * n_train);
	scorer_score_book(&s, &book, distributed ? confirmed : skip, scores);
	k = 0;
	for (int64 i = 0; i < book.n; i++)
		if (!confirmed[i])
			train_scores[k++] = scores[i];
	/*
	 * sklearn: offset_ = np.percentile(-s, 100 * contamination), linear
	 * interpolation; the same cut on s is percentile_cont(1 - contamination)
	 */
	threshold = feat_percentile_cont(train_scores, (size_t) n_train, 1 - contamination);
	if (distributed)
		(void) score_model_distributed(model_id, PointerGetDatum(scaler_value), TupleDescAttr(result_desc, 2)->atttypid,
									   PointerGetDatum(forest_value), TupleDescAttr(result_desc, 3)->atttypid,
									   threshold, scope_currencies(&book, in_scope));
	else
		(void) score_and_store(scores_relation(), &book, skip, scores, &s, model_id, threshold);

	MemoryContextSwitchTo(caller);
	result[2] = PointerGetDatum(datumCopy(PointerGetDatum(scaler_value), false, -1));
	result[3] = PointerGetDatum(datumCopy(PointerGetDatum(forest_value), false, -1));
	result[4] = Float8GetDatum(threshold);
	result_nulls[2] = result_nulls[3] = result_nulls[4] = false;
	SPI_finish();
	MemoryContextDelete(work);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, result, result_nulls)));
}

/* A txn_id and its length, for the search of model_scores' txn_ids */
typedef struct TxnIdKey
{
	const char *bytes;
	int			len;
} TxnIdKey;

static int
txn_id_key_cmp(const void *a, const void *b)
{
	const TxnIdKey *x = a;
	const TxnIdKey *y = b;

	return walk_txn_id_cmp(x->bytes, (size_t) x->len, y->bytes, (size_t) y->len);
}

/*
 * skip[i] for each row of the book whose txn_id is not one of txn_ids (NULL
 * elements match nothing): the rows the caller did not ask about are
 * neither scored nor explained, though their history still makes the
 * features of the others.
 */
static bool *
skip_other_txns(const FeatureBook *book, ArrayType *txn_ids)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			k = 0;
	TxnIdKey   *keys;
	bool	   *skip = palloc(sizeof(bool) * Max(book->n, 1));

	deconstruct_array(txn_ids, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	keys = palloc(sizeof(TxnIdKey) * Max(n, 1));
	for (int j = 0; j < n; j++)
		if (!nulls[j])
		{
			keys[k].bytes = VARDATA_ANY(elems[j]);
			keys[k++].len = VARSIZE_ANY_EXHDR(elems[j]);
		}
	qsort(keys, k, sizeof(TxnIdKey), txn_id_key_cmp);
	for (int64 i = 0; i < book->n; i++)
	{
		TxnIdKey	row = {book->txn_arena + book->txn_off[i],
		(int) (book->txn_off[i + 1] - book->txn_off[i])};

		skip[i] = bsearch(&row, keys, k, sizeof(TxnIdKey), txn_id_key_cmp) == NULL;
	}
	return skip;
}

/*
 * calo_recon.model_scores(model_id bigint, user_ids text[], txn_ids text[] DEFAULT NULL)
 *   RETURNS TABLE (txn_id text, user_id text, score float8, flagged boolean, explanation text)
 * txn_ids NULL: every row of the users; else only those of their rows.
 */
Datum
calo_recon_model_scores(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		model_id;
	ArrayType  *user_ids;
	MemoryContext caller;
	MemoryContext work;
	MemoryContext old;
	LoadedModel model;
	Scorer		s;
	FeatureBook book;
	double		threshold;
	double	   *scores;
	bool	   *skip = NULL;

	InitMaterializedSRF(fcinfo, 0);
	/* STRICT in its first two arguments, as before txn_ids */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	model_id = PG_GETARG_INT64(0);
	user_ids = PG_GETARG_ARRAYTYPE_P(1);
	caller = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	work = AllocSetContextCreate(caller, "calo_recon model scores", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	if (!load_model(model_id, &model))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model " INT64_FORMAT " does not exist", PG_GETARG_INT64(0))));
	s = model.s;
	threshold = model.threshold;
	fbook_load(&book, user_ids, true);
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
		skip = skip_other_txns(&book, PG_GETARG_ARRAYTYPE_P(2));
	scores = palloc(sizeof(double) * Max(book.n, 1));
	scorer_score_book(&s, &book, skip, scores);
	for (int64 i = 0; i < book.n; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		double		score = scores[i];
		const char *why;

		if ((i & 0x3FF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (skip != NULL && skip[i])
			continue;
		why = score > threshold ? scorer_explain(&s, &book, i).sentence : NULL;
		values[0] = PointerGetDatum(cstring_to_text_with_len(book.txn_arena + book.txn_off[i],
															 (int) (book.txn_off[i + 1] - book.txn_off[i])));
		values[1] = PointerGetDatum(cstring_to_text_with_len(book.user_name[book.user[i]],
															 book.user_len[book.user[i]]));
		values[2] = Float8GetDatum(score);
		values[3] = BoolGetDatum(score > threshold);
		if (why != NULL)
			values[4] = CStringGetTextDatum(why);
		else
			nulls[4] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	MemoryContextDelete(work);
	return (Datum) 0;
}
