/*
 * score_rows.c: a model's scores of a span of feature rows (score_rows.h).
 */
#include "score_rows.h"

size_t
score_rows_scratch_size(int n_features)
{
	return sizeof(double) * (size_t) n_features * SCORE_ROWS_BLOCK	/* standardized rows */
		+ sizeof(double) * SCORE_ROWS_BLOCK	/* their path sums */
		+ sizeof(int64_t) * SCORE_ROWS_BLOCK;	/* their row numbers */
}

int64_t
score_rows(const scl_model *scaler, const ifo_forest *forest, const double *features, int stride,
		   const bool *skip, int64_t first, int64_t end, double *scores, void *scratch)
{
	size_t		nf = forest->n_features;
	double	   *z = scratch;
	double	   *sums = z + nf * SCORE_ROWS_BLOCK;
	int64_t    *rows = (int64_t *) (sums + SCORE_ROWS_BLOCK);
	int64_t		next = first;
	int64_t		scored = 0;

	while (next < end)
	{
		size_t		n = 0;

		for (; next < end && n < SCORE_ROWS_BLOCK; next++)
		{
			if (skip != NULL && skip[next])
				continue;
			rows[n] = next;
			scl_transform(scaler, features + next * stride, z + n * nf);
			ifo_prepare_input(forest, z + n * nf);
			n++;
		}
		ifo_path_sums(forest, z, n, sums);
		for (size_t k = 0; k < n; k++)
			scores[rows[k]] = ifo_score_of_path_sum(forest, sums[k]);
		scored += (int64_t) n;
	}
	return scored;
}
