/*
 * parallel_score_glue.h: scoring a feature book with parallel workers
 * (parallel_score_glue.c), for scorer_score_book (score_glue.c).
 */
#ifndef CALO_PARALLEL_SCORE_GLUE_H
#define CALO_PARALLEL_SCORE_GLUE_H

#include "postgres.h"

#include "anomaly_features_glue.h"
#include "iforest.h"
#include "scaler.h"

/*
 * Scores the book's rows not skipped into scores[row] with the leader and
 * parallel workers, and returns true; returns false, having done nothing,
 * when the rows are too few for workers to pay or the server allows none
 * (max_parallel_workers_per_gather = 0, already in parallel mode).  The
 * scores are those of the serial scorer, bit for bit.
 */
bool		parallel_score_book(const scl_model *scaler, const ifo_forest *forest,
								const FeatureBook *book, const bool *skip, double *scores);

#endif
