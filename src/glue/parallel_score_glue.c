/*
 * parallel_score_glue.c: a feature book scored by the leader and parallel
 * workers (parallel_score_glue.h), as PostgreSQL's own parallel operations
 * run: a ParallelContext whose dynamic shared memory holds the model (the
 * scaler's arrays and the forest's stored form), the rows' features, the
 * rows to skip and the scores.  Every process takes spans of rows from one
 * atomic counter and scores them with score_rows (src/core), the loop of the
 * serial scorer, so the scores do not depend on who scored what.
 *
 * The workers are counted against the server's limits like a parallel
 * query's: at most max_parallel_workers_per_gather, fewer when the pool
 * (max_parallel_workers) is short, none and the leader alone when it is
 * empty; the leader takes part unless parallel_leader_participation is off.
 * force_parallel_mode (a testing knob) uses workers for any number of rows.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "port/atomics.h"
#include "storage/shm_toc.h"

#include "parallel_score_glue.h"
#include "score_rows.h"

PGDLLEXPORT void calo_recon_parallel_score_main(dsm_segment *seg, shm_toc *toc);

/*
 * Rows per process below which a worker costs more than it saves: starting
 * one and copying the rows' features takes a few milliseconds, about what
 * the forest takes for this many rows.
 */
#define PARALLEL_SCORE_MIN_ROWS 50000
/* features in shared memory above this are scored by the leader alone */
#define PARALLEL_SCORE_MAX_BYTES ((Size) 1 << 30)

#define KEY_SHARED		UINT64CONST(0xCA10000000000001)
#define KEY_FOREST		UINT64CONST(0xCA10000000000002)
#define KEY_SCALER		UINT64CONST(0xCA10000000000003)
#define KEY_FEATURES	UINT64CONST(0xCA10000000000004)
#define KEY_SKIP		UINT64CONST(0xCA10000000000005)
#define KEY_SCORES		UINT64CONST(0xCA10000000000006)

typedef struct ParallelScoreShared
{
	int64		n;				/* rows of the book */
	int32		n_features;
	bool		has_skip;
	Size		forest_len;		/* bytes of the forest's stored form */
	int64		scaler_samples;
	pg_atomic_uint64 next_span;
} ParallelScoreShared;

/* Takes spans from the counter until none is left; returns the rows it scored. */
static int64
score_spans(ParallelScoreShared *shared, const scl_model *scaler, const ifo_forest *forest,
			const double *features, const bool *skip, double *scores)
{
	void	   *scratch = palloc(score_rows_scratch_size(shared->n_features));
	int64		scored = 0;

	for (;;)
	{
		uint64		span = pg_atomic_fetch_add_u64(&shared->next_span, 1);
		int64		first;

		if (span >= (uint64) (shared->n + SCORE_ROWS_SPAN - 1) / SCORE_ROWS_SPAN)
			break;
		CHECK_FOR_INTERRUPTS();
		first = (int64) span * SCORE_ROWS_SPAN;
		scored += score_rows(scaler, forest, features, FEAT_COUNT, skip, first,
							 Min(shared->n, first + SCORE_ROWS_SPAN), scores, scratch);
	}
	pfree(scratch);
	return scored;
}

/* How many workers to ask for: 0 when the leader should score alone. */
static int
parallel_score_workers(const FeatureBook *book, const bool *skip)
{
	int64		rows = 0;
	int64		processes;

	if (IsInParallelMode() || max_parallel_workers_per_gather <= 0 || book->n == 0)
		return 0;
	if ((Size) book->n * FEAT_COUNT * sizeof(double) > PARALLEL_SCORE_MAX_BYTES)
		return 0;
	for (int64 i = 0; i < book->n; i++)
		rows += skip == NULL || !skip[i];
	if (force_parallel_mode != FORCE_PARALLEL_OFF)
		return rows > 0 ? max_parallel_workers_per_gather : 0;
	processes = rows / PARALLEL_SCORE_MIN_ROWS;
	return (int) Min(processes - 1, (int64) max_parallel_workers_per_gather);
}

bool
parallel_score_book(const scl_model *scaler, const ifo_forest *forest, const FeatureBook *book,
					const bool *skip, double *scores)
{
	int			nworkers = parallel_score_workers(book, skip);
	int			nf = (int) forest->n_features;
	Size		forest_len;
	Size		scaler_bytes = sizeof(double) * 3 * nf;
	Size		feature_bytes = sizeof(double) * (Size) book->n * FEAT_COUNT;
	Size		score_bytes = sizeof(double) * (Size) book->n;
	Size		skip_bytes = sizeof(bool) * (Size) book->n;
	ParallelContext *pcxt;
	ParallelScoreShared *shared;
	double	   *scaler_arrays;
	double	   *shared_scores;
	int64		leader_rows = 0;

	if (nworkers <= 0)
		return false;
	forest_len = ifo_encoded_size(forest);

	EnterParallelMode();
	pcxt = CreateParallelContext("calo_recon", "calo_recon_parallel_score_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(ParallelScoreShared));
	shm_toc_estimate_chunk(&pcxt->estimator, forest_len);
	shm_toc_estimate_chunk(&pcxt->estimator, scaler_bytes);
	shm_toc_estimate_chunk(&pcxt->estimator, feature_bytes);
	shm_toc_estimate_chunk(&pcxt->estimator, skip_bytes);
	shm_toc_estimate_chunk(&pcxt->estimator, score_bytes);
	shm_toc_estimate_keys(&pcxt->estimator, 6);
	InitializeParallelDSM(pcxt);

	shared = shm_toc_allocate(pcxt->toc, sizeof(ParallelScoreShared));
	shared->n = book->n;
	shared->n_features = nf;
	shared->has_skip = skip != NULL;
	shared->forest_len = forest_len;
	shared->scaler_samples = scaler->n_samples;
	pg_atomic_init_u64(&shared->next_span, 0);
	shm_toc_insert(pcxt->toc, KEY_SHARED, shared);

	{
		uint8	   *bytes = shm_toc_allocate(pcxt->toc, forest_len);

		ifo_encode(forest, bytes);
		shm_toc_insert(pcxt->toc, KEY_FOREST, bytes);
	}
	scaler_arrays = shm_toc_allocate(pcxt->toc, scaler_bytes);
	memcpy(scaler_arrays, scaler->mean, sizeof(double) * nf);
	memcpy(scaler_arrays + nf, scaler->var, sizeof(double) * nf);
	memcpy(scaler_arrays + 2 * nf, scaler->scale, sizeof(double) * nf);
	shm_toc_insert(pcxt->toc, KEY_SCALER, scaler_arrays);
	{
		double	   *features = shm_toc_allocate(pcxt->toc, feature_bytes);
		bool	   *shared_skip = shm_toc_allocate(pcxt->toc, skip_bytes);

		memcpy(features, book->features, feature_bytes);
		shm_toc_insert(pcxt->toc, KEY_FEATURES, features);
		if (skip != NULL)
			memcpy(shared_skip, skip, skip_bytes);
		shm_toc_insert(pcxt->toc, KEY_SKIP, shared_skip);
	}
	shared_scores = shm_toc_allocate(pcxt->toc, score_bytes);
	shm_toc_insert(pcxt->toc, KEY_SCORES, shared_scores);

	LaunchParallelWorkers(pcxt);
	/*
	 * The leader scores too, from its own copies (the same values), as it
	 * runs a Gather's plan: unless parallel_leader_participation is off and
	 * a worker runs
	 */
	if (parallel_leader_participation || pcxt->nworkers_launched == 0)
		leader_rows = score_spans(shared, scaler, forest, book->features, skip, shared_scores);
	WaitForParallelWorkersToFinish(pcxt);

	for (int64 i = 0; i < book->n; i++)
		if (skip == NULL || !skip[i])
			scores[i] = shared_scores[i];
	ereport(DEBUG1,
			(errmsg_internal("calo_recon: scored in parallel, " INT64_FORMAT " of the rows by the leader, with %d of %d workers launched",
							 leader_rows, pcxt->nworkers_launched, nworkers)));
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return true;
}

/* A worker: the model and the rows from shared memory, then spans as the leader takes them. */
void
calo_recon_parallel_score_main(dsm_segment *seg, shm_toc *toc)
{
	ParallelScoreShared *shared = shm_toc_lookup(toc, KEY_SHARED, false);
	const uint8 *bytes = shm_toc_lookup(toc, KEY_FOREST, false);
	double	   *scaler_arrays = shm_toc_lookup(toc, KEY_SCALER, false);
	const double *features = shm_toc_lookup(toc, KEY_FEATURES, false);
	const bool *skip = shm_toc_lookup(toc, KEY_SKIP, false);
	double	   *scores = shm_toc_lookup(toc, KEY_SCORES, false);
	int			nf = shared->n_features;
	scl_model	scaler = {shared->scaler_samples, nf, scaler_arrays, scaler_arrays + nf,
		scaler_arrays + 2 * nf};
	char		err[256];
	size_t		need = ifo_decode_plan(bytes, shared->forest_len, err, sizeof err);
	ifo_forest *forest;

	if (need == 0)
		elog(ERROR, "the forest given to a parallel scorer did not decode: %s", err);
	forest = ifo_decode(bytes, shared->forest_len, palloc(need), need, err, sizeof err);
	if (forest == NULL)
		elog(ERROR, "the forest given to a parallel scorer did not decode: %s", err);
	score_spans(shared, &scaler, forest, features, shared->has_skip ? skip : NULL, scores);
}
