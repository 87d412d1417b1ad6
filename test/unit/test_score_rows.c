/*
 * test_score_rows.c: the scoring loop shared by the serial and the parallel
 * scorer: every split of the rows into spans, taken in any order, gives the
 * scores of scaling and scoring each row alone, bit for bit; skipped rows
 * are left untouched and not counted; an empty span scores nothing.
 */
#include <stdlib.h>

#include "iforest.h"
#include "rng.h"
#include "scaler.h"
#include "score_rows.h"
#include "unit.h"

#define NF 4
#define STRIDE 6				/* the book's rows may be wider than the model */
#define NR (3 * SCORE_ROWS_BLOCK + 123)

static double rows[NR * STRIDE];
static double train[NR * NF];

static void
fill(void)
{
	rng_state	rng;

	rng_seed(&rng, 5);
	for (int i = 0; i < NR; i++)
		for (int j = 0; j < STRIDE; j++)
		{
			rows[i * STRIDE + j] = rng_normal(&rng) * (j + 1) + 10.0 * j;
			if (j < NF)
				train[i * NF + j] = rows[i * STRIDE + j];
		}
}

int
main(void)
{
	ifo_params	p = {50, 128, 0};
	size_t		need = ifo_build_workspace(NR, NF, &p);
	void	   *mem = malloc(need);
	rng_state	rng;
	ifo_forest *forest;
	double		mean[NF], var[NF], scale[NF];
	scl_model	scaler = {NR, NF, mean, var, scale};
	double	   *want = malloc(sizeof(double) * NR);
	double	   *got = malloc(sizeof(double) * NR);
	bool	   *skip = calloc(NR, sizeof(bool));
	void	   *scratch = malloc(score_rows_scratch_size(NF));
	int64_t		scored;

	fill();
	rng_seed(&rng, 3);
	forest = ifo_build(train, NULL, NR, NR, NF, &p, &rng, mem, need);
	CHECK(forest != NULL);
	for (int j = 0; j < NF; j++)
	{
		mean[j] = 10.0 * j;
		var[j] = (j + 1.0) * (j + 1.0);
		scale[j] = j + 1.0;
	}
	/* each row alone */
	for (int i = 0; i < NR; i++)
	{
		double		z[NF];

		scl_transform(&scaler, rows + i * STRIDE, z);
		ifo_prepare_input(forest, z);
		want[i] = ifo_score(forest, z);
	}

	/* one span, all rows */
	scored = score_rows(&scaler, forest, rows, STRIDE, NULL, 0, NR, got, scratch);
	CHECK(scored == NR);
	CHECK(memcmp(got, want, sizeof(double) * NR) == 0);

	/* spans of odd sizes, last first */
	for (int i = 0; i < NR; i++)
		got[i] = -1.0;
	scored = 0;
	for (int64_t end = NR; end > 0; end -= 997)
		scored += score_rows(&scaler, forest, rows, STRIDE, NULL, end > 997 ? end - 997 : 0, end, got,
							 scratch);
	CHECK(scored == NR);
	CHECK(memcmp(got, want, sizeof(double) * NR) == 0);

	/* every third row skipped: untouched and not counted */
	for (int i = 0; i < NR; i++)
	{
		skip[i] = i % 3 == 0;
		got[i] = -1.0;
	}
	scored = score_rows(&scaler, forest, rows, STRIDE, skip, 0, NR, got, scratch);
	CHECK(scored == NR - (NR + 2) / 3);
	{
		int			bad = 0;

		for (int i = 0; i < NR; i++)
			bad += skip[i] ? got[i] != -1.0 : got[i] != want[i];
		CHECK(bad == 0);
	}

	/* an empty span */
	CHECK(score_rows(&scaler, forest, rows, STRIDE, NULL, 7, 7, got, scratch) == 0);

	free(mem);
	free(want);
	free(got);
	free(skip);
	free(scratch);
	return unit_summary("score_rows");
}
