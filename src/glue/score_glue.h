/*
 * score_glue.h: the one scoring path (score_glue.c), shared with the
 * per-shard scoring of a Citus cluster (score_placement_glue.c): a model's
 * scaler and forest scoring the rows of a feature book, and the explanation
 * of a flagged row.
 */
#ifndef CALO_SCORE_GLUE_H
#define CALO_SCORE_GLUE_H

#include "postgres.h"

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
 * score_transactions(only_new = true): the users with a row that the model
 * scoring it has not scored, as one array.  DISTINCT in a subquery, not
 * array_agg(DISTINCT): the planner may hash it, where the aggregate always
 * sorts every unscored row's user_id in the database collation (a third of
 * scoring a fresh million rows in C.UTF-8).  A LEFT JOIN, not NOT EXISTS: a
 * Citus cluster cannot correlate its distributed transactions with the
 * scores on the coordinator (the same plan on one node).
 */
#define UNSCORED_USERS_QUERY \
	"SELECT pg_catalog.array_agg(u.user_id) " \
	"FROM (SELECT DISTINCT a.user_id FROM calo_recon.transaction_models a " \
	"  LEFT JOIN calo_recon.transaction_scores s " \
	"    ON s.model_id OPERATOR(pg_catalog.=) a.model_id " \
	"   AND s.txn_id OPERATOR(pg_catalog.=) a.txn_id " \
	"  WHERE a.model_id IS NOT NULL AND s.txn_id IS NULL) u"

/* score_transactions(only_new = false) first drops the active models' scores, as an upsert would */
#define SCORES_OF_ACTIVE_MODELS_DELETE \
	"DELETE FROM calo_recon.transaction_scores s " \
	"USING calo_recon.models m " \
	"WHERE m.active AND s.model_id OPERATOR(pg_catalog.=) m.model_id"

/*
 * score_placement_glue.c: score_transactions()'s work when
 * calo_recon.transactions is distributed (the caller holds the scorers'
 * lock and is connected to SPI); returns the rows scored.
 */
int64		score_distributed(bool only_new);

#endif
