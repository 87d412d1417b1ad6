/*
 * score_glue.h: the one scoring path (score_glue.c), shared with the
 * per-shard scoring of a Citus cluster (score_placement_glue.c): a model's
 * scaler and forest scoring the rows of a feature book, and the explanation
 * of a flagged row.
 */
#ifndef CALO_SCORE_GLUE_H
#define CALO_SCORE_GLUE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "anomaly_features_glue.h"
#include "iforest.h"
#include "scaler.h"

typedef struct Scorer
{
	scl_model	scaler;
	ifo_forest *forest;
	double	   *x;				/* one standardized row */
	double	   *bits;			/* one row's attribution */
	int		   *direction;
} Scorer;

/* The explanation of a flagged row: the sentence and the attribution */
typedef struct Explanation
{
	char	   *sentence;
	Jsonb	   *attribution;
} Explanation;

/* With scaler and forest set: checks them against the features, allocates the rest. */
void		scorer_init(Scorer *s);
/* The scores of the book's rows not skipped (skip NULL: all), into scores[row]. */
void		scorer_score_book(Scorer *s, const FeatureBook *book, const bool *skip, double *scores);
/* The sentence and the attribution of book row i. */
Explanation scorer_explain(Scorer *s, const FeatureBook *book, int64 i);

/*
 * Stores in scores_relid (calo_recon.transaction_scores, or its shard on a
 * Citus worker) the scores of the book's rows not skipped for the model
 * (flagged: score > threshold; explanation and attribution only for flagged
 * rows) with the bulk writer; returns how many were stored.
 */
int64		score_and_store(Oid scores_relid, FeatureBook *book, const bool *skip, const double *scores,
							Scorer *s, int64 model_id, double threshold);

/*
 * Calls visit for every row of the query (first column a txn_id; nargs
 * parameters) whose transaction is in the book, with the book's row.  SPI
 * must be connected.
 */
typedef void (*RowVisitor) (int64 row, HeapTuple tuple, TupleDesc desc, void *arg);
void		visit_rows(FeatureBook *book, const char *query, int nargs, Oid *argtypes, Datum *args,
					   const char *nulls, RowVisitor visit, void *arg);

/*
 * score_transactions(only_new = true): the users with a row that the model
 * scoring it has not scored, as one array.  DISTINCT in a subquery, not
 * array_agg(DISTINCT): the planner may hash it, where the aggregate always
 * sorts every unscored row's user_id in the database collation (a third of
 * scoring a fresh million rows in C.UTF-8).  Joined by user_id too: on a
 * Citus cluster the scores are distributed by it beside the transactions,
 * and the join runs per shard group (a filter on one node, where a score's
 * user is its transaction's).
 */
#define UNSCORED_USERS_QUERY \
	"SELECT pg_catalog.array_agg(u.user_id) " \
	"FROM (SELECT DISTINCT a.user_id FROM calo_recon.transaction_models a " \
	"  LEFT JOIN calo_recon.transaction_scores s " \
	"    ON s.user_id OPERATOR(pg_catalog.=) a.user_id " \
	"   AND s.model_id OPERATOR(pg_catalog.=) a.model_id " \
	"   AND s.txn_id OPERATOR(pg_catalog.=) a.txn_id " \
	"  WHERE a.model_id IS NOT NULL AND s.txn_id IS NULL) u"

/*
 * The work of the rescore queue (sql/install/61_rescore_queue.sql) of
 * score_transactions() and train_model(), on one node and on a Citus
 * cluster alike (every table here but models is distributed by user_id
 * there, and the joins on it run per shard group): the entries read ($1
 * their keys, $2 their users), the scores of the models ($3: all of them)
 * that the changes made stale deleted, then exactly the entries read.  The
 * stale scores are those of the user's rows logged at or after the
 * earliest instant queued for the user, found through the user's rows from
 * that instant on (an append reads its own rows only), and those of the
 * rows no longer the user's, by key.  Their rows are unscored then:
 * score_transactions() scores them with the new rows.
 */
#define RESCORE_QUEUE_READ \
	"SELECT pg_catalog.array_agg(q.entry_id), pg_catalog.array_agg(DISTINCT q.user_id) " \
	"FROM calo_recon.pending_rescore q"
#define RESCORE_STALE_DELETE \
	"DELETE FROM calo_recon.transaction_scores s " \
	"USING (SELECT q.user_id, pg_catalog.min(q.changed_from) AS changed_from " \
	"       FROM calo_recon.pending_rescore q " \
	"       WHERE q.entry_id OPERATOR(pg_catalog.=) ANY ($1) " \
	"         AND q.user_id OPERATOR(pg_catalog.=) ANY ($2) " \
	"       GROUP BY q.user_id) q, calo_recon.transactions t " \
	"WHERE t.user_id OPERATOR(pg_catalog.=) q.user_id " \
	"  AND t.logged_at OPERATOR(pg_catalog.>=) q.changed_from " \
	"  AND s.user_id OPERATOR(pg_catalog.=) t.user_id " \
	"  AND s.txn_id OPERATOR(pg_catalog.=) t.txn_id " \
	"  AND s.model_id OPERATOR(pg_catalog.=) ANY ($3)"
#define RESCORE_GONE_DELETE \
	"DELETE FROM calo_recon.transaction_scores s " \
	"USING calo_recon.pending_rescore q " \
	"WHERE q.entry_id OPERATOR(pg_catalog.=) ANY ($1) " \
	"  AND q.user_id OPERATOR(pg_catalog.=) ANY ($2) " \
	"  AND s.user_id OPERATOR(pg_catalog.=) q.user_id " \
	"  AND s.txn_id OPERATOR(pg_catalog.=) q.gone_txn_id " \
	"  AND s.model_id OPERATOR(pg_catalog.=) ANY ($3)"
#define RESCORE_QUEUE_DELETE \
	"DELETE FROM calo_recon.pending_rescore q " \
	"WHERE q.entry_id OPERATOR(pg_catalog.=) ANY ($1) " \
	"  AND q.user_id OPERATOR(pg_catalog.=) ANY ($2)"

/* score_transactions(only_new = false) first drops the active models' scores, as an upsert would */
#define SCORES_OF_ACTIVE_MODELS_DELETE \
	"DELETE FROM calo_recon.transaction_scores s " \
	"USING calo_recon.models m " \
	"WHERE m.active AND s.model_id OPERATOR(pg_catalog.=) m.model_id"

/*
 * score_placement_glue.c, when calo_recon.transactions is distributed: the
 * callers are connected to SPI.
 *
 * score_transactions()'s work (the caller holds the scorers' lock): every
 * shard group scores and stores its rows; returns the rows scored.
 */
int64		score_distributed(bool only_new);

/*
 * train_model()'s write of a new model's scores: every shard group scores
 * and stores the rows of the given currencies (the model's scope) with the
 * model (scaler and forest of the given types); returns the rows stored.
 */
int64		score_model_distributed(int64 model_id, Datum scaler, Oid scaler_type, Datum forest, Oid forest_type,
									double threshold, ArrayType *currencies);

#endif
