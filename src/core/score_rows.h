/*
 * score_rows.h: a model's scores of a span of feature rows (score_rows.c),
 * the one loop that the serial scorer and every process of a parallel one
 * (src/glue/parallel_score_glue.c) run.  Plain C, no PostgreSQL headers.
 */
#ifndef CALO_SCORE_ROWS_H
#define CALO_SCORE_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iforest.h"
#include "scaler.h"

/* Rows standardized and descended together (ifo_path_sums). */
#define SCORE_ROWS_BLOCK 1024
/* Rows a scorer takes at a time, between two checks for interrupts. */
#define SCORE_ROWS_SPAN (4 * SCORE_ROWS_BLOCK)

/* Bytes of scratch that score_rows needs for a model of n_features. */
size_t		score_rows_scratch_size(int n_features);

/*
 * scores[i] for each row i in [first, end) that skip does not mark (skip
 * NULL: none): features + i * stride standardized by the scaler, rounded as
 * the forest wants its input, scored by the forest.  Blocks of up to
 * SCORE_ROWS_BLOCK rows are descended tree-major; a row's score does not
 * depend on the rows it shares a block with, so any split of the rows into
 * spans, in any order or process, gives the same scores bit for bit.
 * scratch: score_rows_scratch_size(n_features) bytes, 8-aligned.  Returns
 * how many rows it scored.
 */
int64_t		score_rows(const scl_model *scaler, const ifo_forest *forest, const double *features,
					   int stride, const bool *skip, int64_t first, int64_t end, double *scores,
					   void *scratch);

#endif
