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
