/*
 * iforest_fit_glue.c: the calo_recon.iforest_sample type (the partial state
 * of iforest_fit, a bottom-k sketch of the training rows, bottomk.h) and the
 * iforest_fit aggregates built on it, around the plain cores.
 *
 * The state is a type of its own with text and binary forms, so that
 * PostgreSQL's parallel workers and Citus's workers run the partial
 * aggregation and the leader or coordinator combines (Citus requires a
 * combine function and a state type with text I/O).  While an aggregate
 * runs, the state is an expanded object that grows and compacts in place;
 * it is flattened (compacted, in its binary form) only to leave the node.
 *
 * Text form: base64 of the binary form.  Every value that enters is fully
 * validated (22P02 text, 22P03 binary).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/expandeddatum.h"
#include "utils/memutils.h"

#include "bottomk.h"
#include "fit_state_glue.h"
#include "iforest.h"
#include "model_glue.h"

/* Defaults of iforest_fit(features): scikit-learn's IsolationForest's. */
#define FIT_DEFAULT_TREES 100
#define FIT_DEFAULT_SAMPLE_SIZE 256
#define FIT_DEFAULT_SEED INT64CONST(42)
/* entries a new sample has room for before it grows */
#define FIT_INITIAL_ROOM 1024
/* features read from the stack; wider rows are read into palloc'd memory */
#define FIT_STACK_FEATURES 64

PG_FUNCTION_INFO_V1(iforest_sample_in);
PG_FUNCTION_INFO_V1(iforest_sample_out);
PG_FUNCTION_INFO_V1(iforest_sample_recv);
PG_FUNCTION_INFO_V1(iforest_sample_send);
PG_FUNCTION_INFO_V1(iforest_sample_add);
PG_FUNCTION_INFO_V1(iforest_sample_combine);
PG_FUNCTION_INFO_V1(iforest_sample_fit);
PG_FUNCTION_INFO_V1(iforest_sample_info);

/* ------------------------------------------------------------ parameters */

/*
 * The limits of a fit, for the aggregate and for train_model's path alike:
 * errors name the bad parameter.
 */
static void
fit_check_params(int32 n_trees, int32 sample_size, int nf, int32 ext)
{
	ifo_params	p;
	uint64		capacity;

	if (n_trees < 1 || n_trees > IFO_MAX_TREES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iforest_fit: n_trees must be between 1 and %d", IFO_MAX_TREES),
				 errdetail("n_trees is %d.", n_trees)));
	if (sample_size < IFO_MIN_FIT_SAMPLE_SIZE || sample_size > IFO_MAX_FIT_SAMPLE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iforest_fit: sample_size must be between %d and %d",
						IFO_MIN_FIT_SAMPLE_SIZE, IFO_MAX_FIT_SAMPLE_SIZE),
				 errdetail("sample_size is %d.", sample_size)));
	if (nf > IFO_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("iforest_fit: %d features is more than %d", nf, IFO_MAX_FEATURES)));
	if (ext < 0 || ext > nf - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iforest_fit: extension_level must be between 0 and n_features - 1 (%d)", nf - 1),
				 errdetail("extension_level is %d.", ext)));
	p.n_trees = n_trees;
	p.sample_size = sample_size;
	p.extension_level = ext;
	capacity = (uint64) n_trees * sample_size;
	/* the sample's binary form and the training workspace must fit an allocation */
	if (BK_HEADER_BYTES + capacity * (nf + 1) * sizeof(double) > MaxAllocSize - VARHDRSZ ||
		ifo_build_workspace(capacity, nf, &p) > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("iforest_fit: %d trees of %d rows with %d features need more than 1 GB",
						n_trees, sample_size, nf),
				 errhint("Use fewer trees or a smaller sample_size.")));
}

/* ------------------------------------------------------- expanded sample */

typedef struct sample_object
{
	ExpandedObjectHeader hdr;
	bk_sample	s;
} sample_object;

static Size sample_flat_size(ExpandedObjectHeader *eohptr);
static void sample_flatten(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);

static const ExpandedObjectMethods sample_methods = {
	sample_flat_size,
	sample_flatten
};

static void
sample_alloc(sample_object *so, uint64 room)
{
	bk_sample  *s = &so->s;

	s->room = Max(room, 1);
	s->prio = MemoryContextAllocHuge(so->hdr.eoh_context, s->room * sizeof(uint64));
	s->mult = MemoryContextAllocHuge(so->hdr.eoh_context, s->room * sizeof(uint64));
	s->rows = MemoryContextAllocHuge(so->hdr.eoh_context, s->room * s->n_features * sizeof(double));
}

static sample_object *
sample_new(MemoryContext parent, const bk_sample *params, uint64 room)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "calo_recon iforest_sample", ALLOCSET_DEFAULT_SIZES);
	sample_object *so = MemoryContextAllocZero(cxt, sizeof(sample_object));

	EOH_init_header(&so->hdr, &sample_methods, cxt);
	bk_init(&so->s, params->seed, params->n_features, params->n_trees, params->sample_size,
			params->extension_level);
	sample_alloc(so, room);
	return so;
}

static void
sample_grow(sample_object *so, uint64 room)
{
	bk_sample  *s = &so->s;

	if (room <= s->room)
		return;
	s->prio = repalloc_huge(s->prio, room * sizeof(uint64));
	s->mult = repalloc_huge(s->mult, room * sizeof(uint64));
	s->rows = repalloc_huge(s->rows, room * s->n_features * sizeof(double));
	s->room = room;
}

static void *
sample_scratch(sample_object *so)
{
	return MemoryContextAllocHuge(so->hdr.eoh_context, bk_scratch_bytes(&so->s));
}

static void
sample_compact(sample_object *so)
{
	void	   *scratch;

	if (so->s.compacted == so->s.count)
		return;
	scratch = sample_scratch(so);
	bk_compact(&so->s, scratch);
	pfree(scratch);
}

static void
sample_offer(sample_object *so, const double *row)
{
	bk_sample  *s = &so->s;

	if (bk_add(s, row, 1) != BK_NO_ROOM)
		return;
	if (s->room < bk_max_room(s))
		sample_grow(so, Min(s->room * 2, bk_max_room(s)));
	else
		sample_compact(so);
	(void) bk_add(s, row, 1);
}

/* Compacting does not change the value the object stands for. */
static Size
sample_flat_size(ExpandedObjectHeader *eohptr)
{
	sample_object *so = (sample_object *) eohptr;
	size_t		len;

	sample_compact(so);
	len = bk_encoded_size(&so->s);
	if (len > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("iforest_fit: the training sample would be larger than 1 GB")));
	return VARHDRSZ + len;
}

static void
sample_flatten(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	sample_object *so = (sample_object *) eohptr;

	Assert(allocated_size == VARHDRSZ + bk_encoded_size(&so->s));
	SET_VARSIZE(result, allocated_size);
	bk_encode(&so->s, (uint8 *) VARDATA(result));
}

/* Validates a sample's bytes into a new object under parent; sqlstate on failure. */
static sample_object *
sample_decode(MemoryContext parent, const uint8 *buf, size_t len, int sqlstate)
{
	char		err[256];
	bk_sample	head;
	sample_object *so;

	if (bk_decode_header(buf, len, &head, err, sizeof err) != 0)
		ereport(ERROR,
				(errcode(sqlstate), errmsg("invalid calo_recon.iforest_sample value"), errdetail("%s", err)));
	so = sample_new(parent, &head, head.count);
	if (bk_decode(buf, len, &so->s, err, sizeof err) != 0)
		ereport(ERROR,
				(errcode(sqlstate), errmsg("invalid calo_recon.iforest_sample value"), errdetail("%s", err)));
	return so;
}

static ExpandedObjectHeader *
sample_decode_object(MemoryContext parent, const uint8 *buf, size_t len, int sqlstate)
{
	return &sample_decode(parent, buf, len, sqlstate)->hdr;
}

/* a copy with room for a whole sample: the copy is the one the aggregate grows */
static ExpandedObjectHeader *
sample_copy(MemoryContext parent, ExpandedObjectHeader *eoh)
{
	sample_object *from = (sample_object *) eoh;
	sample_object *so = sample_new(parent, &from->s, bk_max_room(&from->s));
	void	   *scratch = sample_scratch(so);

	bk_merge(&so->s, &from->s, scratch);
	pfree(scratch);
	return &so->hdr;
}

static const fit_state_kind sample_kind = {&sample_methods, sample_decode_object, sample_copy};

static sample_object *
sample_of_datum(Datum d, MemoryContext parent)
{
	return (sample_object *) fit_state_of_datum(d, parent, &sample_kind);
}

static sample_object *
sample_owned(Datum d, MemoryContext aggcontext)
{
	return (sample_object *) fit_state_owned(d, aggcontext, &sample_kind);
}

/* ---------------------------------------------------------------- type I/O */

Datum
iforest_sample_in(PG_FUNCTION_ARGS)
{
	int			len;
	char	   *bytes = mglue_base64_decode(PG_GETARG_CSTRING(0), &len, "calo_recon.iforest_sample", "a sample");

	PG_RETURN_DATUM(fit_state_validated_value((const uint8 *) bytes, len, ERRCODE_INVALID_TEXT_REPRESENTATION, &sample_kind));
}

Datum
iforest_sample_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(mglue_base64_encode(PG_GETARG_BYTEA_PP(0)));
}

Datum
iforest_sample_recv(PG_FUNCTION_ARGS)
{
	int			len;
	const char *bytes = mglue_binary_rest((StringInfo) PG_GETARG_POINTER(0), &len);

	PG_RETURN_DATUM(fit_state_validated_value((const uint8 *) bytes, len, ERRCODE_INVALID_BINARY_REPRESENTATION, &sample_kind));
}

Datum
iforest_sample_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(mglue_binary_send(PG_GETARG_BYTEA_PP(0)));
}

/* ------------------------------------------------------------- aggregate */

static int32
int_param(FunctionCallInfo fcinfo, int argno, int32 dflt)
{
	return (PG_NARGS() > argno && !PG_ARGISNULL(argno)) ? PG_GETARG_INT32(argno) : dflt;
}

/*
 * iforest_sample_add(sample, features [, n_trees, sample_size, seed
 * [, extension_level]]): the transition of iforest_fit.  The first row fixes
 * the parameters (NULL ones take the defaults) and the number of features.
 */
Datum
iforest_sample_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	sample_object *so;
	double		stack_row[FIT_STACK_FEATURES];
	double	   *row;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("iforest_sample_add can only be called as the transition of an aggregate")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("iforest_fit: the feature array is NULL"),
				 errdetail("Every training row needs a feature vector.")));
	if (PG_ARGISNULL(0))
	{
		int			nf = mglue_feature_count(PG_GETARG_DATUM(1), "iforest_fit");
		int32		n_trees = int_param(fcinfo, 2, FIT_DEFAULT_TREES);
		int32		sample_size = int_param(fcinfo, 3, FIT_DEFAULT_SAMPLE_SIZE);
		int64		seed = (PG_NARGS() > 4 && !PG_ARGISNULL(4)) ? PG_GETARG_INT64(4) : FIT_DEFAULT_SEED;
		int32		ext = int_param(fcinfo, 5, 0);
		bk_sample	params;

		fit_check_params(n_trees, sample_size, nf, ext);
		bk_init(&params, seed, nf, n_trees, sample_size, ext);
		so = sample_new(aggcontext, &params, Min(FIT_INITIAL_ROOM, bk_max_room(&params)));
	}
	else
		so = sample_owned(PG_GETARG_DATUM(0), aggcontext);
	row = so->s.n_features <= FIT_STACK_FEATURES ? stack_row : palloc(so->s.n_features * sizeof(double));
	/* every row is validated, kept or not */
	mglue_read_features(PG_GETARG_DATUM(1), so->s.n_features, row, "iforest_fit", "the first training row");
	sample_offer(so, row);
	PG_RETURN_DATUM(EOHPGetRWDatum(&so->hdr));
}

/* The samples of two sets of rows into the sample of their union. */
Datum
iforest_sample_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	sample_object *a,
			   *b;
	void	   *scratch;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		aggcontext = CurrentMemoryContext;
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	b = sample_of_datum(PG_GETARG_DATUM(1), CurrentMemoryContext);
	if (PG_ARGISNULL(0))
		a = sample_new(aggcontext, &b->s, bk_max_room(&b->s));
	else
		a = sample_owned(PG_GETARG_DATUM(0), aggcontext);
	if (!bk_same_params(&a->s, &b->s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iforest_fit: samples taken with different parameters cannot be combined"),
				 errdetail("One has %u features, %u trees, sample_size %u, seed " INT64_FORMAT ", extension_level %u; the other %u, %u, %u, " INT64_FORMAT ", %u.",
						   a->s.n_features, a->s.n_trees, a->s.sample_size, a->s.seed, a->s.extension_level,
						   b->s.n_features, b->s.n_trees, b->s.sample_size, b->s.seed, b->s.extension_level)));
	sample_grow(a, bk_max_room(&a->s));
	scratch = sample_scratch(a);
	bk_merge(&a->s, &b->s, scratch);
	pfree(scratch);
	PG_RETURN_DATUM(EOHPGetRWDatum(&a->hdr));
}

/*
 * The forest grown from a sample, encoded as the stored model: the one build
 * for the aggregate's final function and for train_model's path.
 */
static bytea *
forest_from_sample(sample_object *so)
{
	bk_sample  *s = &so->s;
	ifo_params	p;
	rng_state	rng;
	size_t		worklen,
				len;
	void	   *work;
	ifo_forest *f;
	bytea	   *v;

	sample_compact(so);
	if (s->count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("iforest_fit: the training set is empty"),
				 errdetail("An isolation forest needs at least one row to fit.")));
	bk_build_setup(s, &p, &rng);
	worklen = ifo_build_workspace(s->count, s->n_features, &p);
	work = palloc_extended(worklen, MCXT_ALLOC_HUGE);
	f = ifo_build(s->rows, s->mult, s->count, s->seen, s->n_features, &p, &rng, work, worklen);
	if (f == NULL)
		elog(ERROR, "iforest_fit: could not build the forest");
	len = ifo_encoded_size(f);
	if (len == 0 || len > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("iforest_fit: the model would be larger than 1 GB")));
	v = palloc(VARHDRSZ + len);
	SET_VARSIZE(v, VARHDRSZ + len);
	ifo_encode(f, (uint8 *) VARDATA(v));
	pfree(work);
	return v;
}

/* iforest_sample_fit(sample): the final function of iforest_fit, and a fit from a stored sample. */
Datum
iforest_sample_fit(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("iforest_fit: the training set is empty"),
				 errdetail("An isolation forest needs at least one row to fit.")));
	PG_RETURN_BYTEA_P(forest_from_sample(sample_of_datum(PG_GETARG_DATUM(0), CurrentMemoryContext)));
}

Datum
iforest_sample_info(PG_FUNCTION_ARGS)
{
	sample_object *so = sample_of_datum(PG_GETARG_DATUM(0), CurrentMemoryContext);
	bk_sample  *s = &so->s;
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {0};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "iforest_sample_info must return a row");
	sample_compact(so);
	values[0] = Int64GetDatum((int64) Min(s->seen, (uint64) PG_INT64_MAX));
	values[1] = Int64GetDatum((int64) s->count);
	values[2] = Int64GetDatum((int64) Min(bk_kept_rows(s), (uint64) PG_INT64_MAX));
	values[3] = Int32GetDatum((int32) s->n_features);
	values[4] = Int32GetDatum((int32) s->n_trees);
	values[5] = Int32GetDatum((int32) s->sample_size);
	values[6] = Int64GetDatum(s->seed);
	values[7] = Int32GetDatum((int32) s->extension_level);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* ---------------------------------------------- for the scoring path (C) */

void
mglue_forest_check(int32 n_trees, int32 sample_size, uint32 nf)
{
	fit_check_params(n_trees, sample_size, (int) nf, 0);
}

/*
 * What iforest_fit(rows, n_trees, sample_size, seed) gives for these rows,
 * in whatever order and plan: the same sample, the same build.
 */
bytea *
mglue_forest_fit(const double *rows, uint64 n_rows, uint32 nf, int32 n_trees,
				 int32 sample_size, int64 seed)
{
	bk_sample	params;
	sample_object *so;
	bytea	   *v;

	fit_check_params(n_trees, sample_size, (int) nf, 0);
	bk_init(&params, seed, nf, n_trees, sample_size, 0);
	so = sample_new(CurrentMemoryContext, &params, Min(FIT_INITIAL_ROOM, bk_max_room(&params)));
	for (uint64 i = 0; i < n_rows; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		sample_offer(so, rows + i * nf);
	}
	v = forest_from_sample(so);
	DeleteExpandedObject(EOHPGetRWDatum(&so->hdr));
	return v;
}
