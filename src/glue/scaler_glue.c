/*
 * scaler_glue.c: the calo_recon.scaler type (StandardScaler), its partial
 * state calo_recon.scaler_state and the aggregate scaler_fit on it, around
 * the plain core in scaler.c.  The state is a type of its own with text and
 * binary forms, so that parallel workers and Citus nodes share it.
 *
 * Text form: JSON, {"n_features":k,"n_samples":n,"mean":[..],"var":[..],
 * "scale":[..]} (numbers in shortest exact form).  Binary form (send/recv and
 * storage): see scaler.h.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/expandeddatum.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "fit_state_glue.h"
#include "model_glue.h"
#include "anomaly_features.h"
#include "scaler.h"

PG_FUNCTION_INFO_V1(scaler_in);
PG_FUNCTION_INFO_V1(scaler_out);
PG_FUNCTION_INFO_V1(scaler_recv);
PG_FUNCTION_INFO_V1(scaler_send);
PG_FUNCTION_INFO_V1(scaler_state_in);
PG_FUNCTION_INFO_V1(scaler_state_out);
PG_FUNCTION_INFO_V1(scaler_state_recv);
PG_FUNCTION_INFO_V1(scaler_state_send);
PG_FUNCTION_INFO_V1(scaler_state_add);
PG_FUNCTION_INFO_V1(scaler_state_combine);
PG_FUNCTION_INFO_V1(scaler_state_fit);
PG_FUNCTION_INFO_V1(scaler_state_info);
PG_FUNCTION_INFO_V1(scaler_transform);
PG_FUNCTION_INFO_V1(scaler_to_json);
PG_FUNCTION_INFO_V1(scaler_from_json);
PG_FUNCTION_INFO_V1(scaler_info);
PG_FUNCTION_INFO_V1(feature_value);

static void
alloc_model(scl_model *m, int k)
{
	m->n_features = k;
	m->mean = palloc(sizeof(double) * k);
	m->var = palloc(sizeof(double) * k);
	m->scale = palloc(sizeof(double) * k);
}

/* Decodes and validates a scaler's bytes; errors carry sqlstate. */
static void
decode_bytes(const uint8 *buf, size_t len, scl_model *m, int sqlstate)
{
	char		err[256];
	int			k = scl_peek_features(buf, len, err, sizeof err);

	if (k < 0)
		ereport(ERROR, (errcode(sqlstate), errmsg("invalid calo_recon.scaler value"), errdetail("%s", err)));
	alloc_model(m, k);
	if (scl_decode(buf, len, m, err, sizeof err) != 0)
		ereport(ERROR, (errcode(sqlstate), errmsg("invalid calo_recon.scaler value"), errdetail("%s", err)));
}

static void
decode_datum(Datum d, scl_model *m)
{
	bytea	   *v = (bytea *) PG_DETOAST_DATUM(d);

	decode_bytes((const uint8 *) VARDATA(v), VARSIZE(v) - VARHDRSZ, m, ERRCODE_DATA_CORRUPTED);
}

static bytea *
encode_model(const scl_model *m)
{
	size_t		len = scl_encoded_size(m->n_features);
	bytea	   *v = palloc(VARHDRSZ + len);

	SET_VARSIZE(v, VARHDRSZ + len);
	scl_encode(m, (uint8 *) VARDATA(v));
	return v;
}

static char *
model_json(const scl_model *m)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"n_features\": %d, \"n_samples\": " INT64_FORMAT ", \"mean\": ",
					 m->n_features, m->n_samples);
	mglue_append_double_array(&buf, m->mean, m->n_features);
	appendStringInfoString(&buf, ", \"var\": ");
	mglue_append_double_array(&buf, m->var, m->n_features);
	appendStringInfoString(&buf, ", \"scale\": ");
	mglue_append_double_array(&buf, m->scale, m->n_features);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Builds a scaler from its JSON form; "scale" may be left out (computed). */
static bytea *
model_from_jsonb(Jsonb *jb)
{
	JsonbContainer *obj = mglue_json_object(jb, "scaler");
	JsonbValue	v;
	scl_model	m;
	char		err[256];
	int			k;

	mglue_json_get(obj, "n_features", &v, true, "scaler");
	k = (int) mglue_json_integer(&v, 1, SCL_MAX_FEATURES, "n_features");
	mglue_json_get(obj, "n_samples", &v, true, "scaler");
	m.n_samples = mglue_json_integer(&v, 1, INT64CONST(1) << 53, "n_samples");
	m.n_features = k;
	mglue_json_get(obj, "mean", &v, true, "scaler");
	m.mean = mglue_json_doubles(&v, k, "mean");
	mglue_json_get(obj, "var", &v, true, "scaler");
	m.var = mglue_json_doubles(&v, k, "var");
	if (mglue_json_get(obj, "scale", &v, false, "scaler"))
		m.scale = mglue_json_doubles(&v, k, "scale");
	else
	{
		m.scale = palloc(sizeof(double) * k);
		for (int j = 0; j < k; j++)
			m.scale[j] = scl_scale_of(m.var[j], m.mean[j], m.n_samples);
	}
	if (scl_check(&m, err, sizeof err) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid calo_recon.scaler value"), errdetail("%s", err)));
	return encode_model(&m);
}

Datum
scaler_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(model_from_jsonb(mglue_text_to_jsonb(PG_GETARG_CSTRING(0))));
}

Datum
scaler_out(PG_FUNCTION_ARGS)
{
	scl_model	m;

	decode_datum(PG_GETARG_DATUM(0), &m);
	PG_RETURN_CSTRING(model_json(&m));
}

Datum
scaler_recv(PG_FUNCTION_ARGS)
{
	int			len;
	const char *bytes = mglue_binary_rest((StringInfo) PG_GETARG_POINTER(0), &len);
	scl_model	m;

	decode_bytes((const uint8 *) bytes, len, &m, ERRCODE_INVALID_BINARY_REPRESENTATION);
	PG_RETURN_BYTEA_P(encode_model(&m));
}

Datum
scaler_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(mglue_binary_send(PG_GETARG_BYTEA_PP(0)));
}

/* ---- calo_recon.scaler_state and the aggregate scaler_fit(float8[]) ---- */

/*
 * The running fit as an expanded object while an aggregate runs (updated in
 * place), flattened to its binary form (scaler.h) to leave the node.
 */
typedef struct state_object
{
	ExpandedObjectHeader hdr;
	scl_acc    *acc;
} state_object;

static Size state_flat_size(ExpandedObjectHeader *eohptr);
static void state_flatten(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);

static const ExpandedObjectMethods state_methods = {
	state_flat_size,
	state_flatten
};

static Size
state_flat_size(ExpandedObjectHeader *eohptr)
{
	return VARHDRSZ + scl_state_encoded_size(((state_object *) eohptr)->acc->n_features);
}

static void
state_flatten(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	SET_VARSIZE(result, allocated_size);
	scl_state_encode(((state_object *) eohptr)->acc, (uint8 *) VARDATA(result));
}

static state_object *
state_new(MemoryContext parent, int k)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "calo_recon scaler_state", ALLOCSET_SMALL_SIZES);
	state_object *so = MemoryContextAllocZero(cxt, sizeof(state_object));

	EOH_init_header(&so->hdr, &state_methods, cxt);
	/* one row of scratch after the accumulator holds the incoming row */
	so->acc = MemoryContextAlloc(cxt, scl_acc_size(k) + sizeof(double) * k);
	scl_acc_init(so->acc, k);
	return so;
}

static state_object *
state_decode(MemoryContext parent, const uint8 *buf, size_t len, int sqlstate)
{
	char		err[256];
	int			k = scl_state_peek_features(buf, len, err, sizeof err);
	state_object *so;

	if (k < 0)
		ereport(ERROR, (errcode(sqlstate), errmsg("invalid calo_recon.scaler_state value"), errdetail("%s", err)));
	so = state_new(parent, k);
	if (scl_state_decode(buf, len, so->acc, err, sizeof err) != 0)
		ereport(ERROR, (errcode(sqlstate), errmsg("invalid calo_recon.scaler_state value"), errdetail("%s", err)));
	return so;
}

static ExpandedObjectHeader *
state_decode_object(MemoryContext parent, const uint8 *buf, size_t len, int sqlstate)
{
	return &state_decode(parent, buf, len, sqlstate)->hdr;
}

static ExpandedObjectHeader *
state_copy(MemoryContext parent, ExpandedObjectHeader *eoh)
{
	const scl_acc *from = ((state_object *) eoh)->acc;
	state_object *so = state_new(parent, from->n_features);

	scl_acc_merge(so->acc, from);
	return &so->hdr;
}

static const fit_state_kind state_kind = {&state_methods, state_decode_object, state_copy};

static state_object *
state_of_datum(Datum d, MemoryContext parent)
{
	return (state_object *) fit_state_of_datum(d, parent, &state_kind);
}

static state_object *
state_owned(Datum d, MemoryContext aggcontext)
{
	return (state_object *) fit_state_owned(d, aggcontext, &state_kind);
}

Datum
scaler_state_in(PG_FUNCTION_ARGS)
{
	int			len;
	char	   *bytes = mglue_base64_decode(PG_GETARG_CSTRING(0), &len, "calo_recon.scaler_state",
											"a scaler state");

	PG_RETURN_DATUM(fit_state_validated_value((const uint8 *) bytes, len, ERRCODE_INVALID_TEXT_REPRESENTATION, &state_kind));
}

Datum
scaler_state_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(mglue_base64_encode(PG_GETARG_BYTEA_PP(0)));
}

Datum
scaler_state_recv(PG_FUNCTION_ARGS)
{
	int			len;
	const char *bytes = mglue_binary_rest((StringInfo) PG_GETARG_POINTER(0), &len);

	PG_RETURN_DATUM(fit_state_validated_value((const uint8 *) bytes, len, ERRCODE_INVALID_BINARY_REPRESENTATION, &state_kind));
}

Datum
scaler_state_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(mglue_binary_send(PG_GETARG_BYTEA_PP(0)));
}

/* scaler_state_add(state, features): the transition of scaler_fit. */
Datum
scaler_state_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	state_object *so;
	double	   *x;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("scaler_state_add can only be called as the transition of an aggregate")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("scaler_fit: the feature array is NULL"),
				 errdetail("Every training row needs a feature vector.")));
	if (PG_ARGISNULL(0))
	{
		int			k = mglue_feature_count(PG_GETARG_DATUM(1), "scaler_fit");

		if (k > SCL_MAX_FEATURES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("scaler_fit: %d features is more than %d", k, SCL_MAX_FEATURES)));
		so = state_new(aggcontext, k);
	}
	else
		so = state_owned(PG_GETARG_DATUM(0), aggcontext);
	x = (double *) (so->acc->digits + (size_t) so->acc->n_features * SCL_DIGITS);
	mglue_read_features(PG_GETARG_DATUM(1), so->acc->n_features, x, "scaler_fit", "the first training row");
	scl_acc_add(so->acc, x);
	PG_RETURN_DATUM(EOHPGetRWDatum(&so->hdr));
}

/* The running fits of two sets of rows into the fit of their union, exactly. */
Datum
scaler_state_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	state_object *a,
			   *b;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		aggcontext = CurrentMemoryContext;
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	b = state_of_datum(PG_GETARG_DATUM(1), CurrentMemoryContext);
	a = PG_ARGISNULL(0) ? state_new(aggcontext, b->acc->n_features) : state_owned(PG_GETARG_DATUM(0), aggcontext);
	if (a->acc->n_features != b->acc->n_features)
		mglue_wrong_length("scaler_fit", b->acc->n_features, a->acc->n_features, "the first training row");
	scl_acc_merge(a->acc, b->acc);
	PG_RETURN_DATUM(EOHPGetRWDatum(&a->hdr));
}

static bytea *
scaler_from_acc(const scl_acc *acc)
{
	scl_model	m;
	char		err[256];

	if (acc == NULL || acc->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("scaler_fit: the training set is empty"),
				 errdetail("A scaler needs at least one row to fit.")));
	alloc_model(&m, acc->n_features);
	if (scl_acc_finish(acc, &m, err, sizeof err) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("scaler_fit: %s", err),
				 errdetail("The features spread too far for a float8 variance."),
				 errhint("Bring the features to a smaller range (e.g. cap or rescale them) before fitting.")));
	return encode_model(&m);
}

/* scaler_state_fit(state): the final function of scaler_fit, and a fit from a stored state. */
Datum
scaler_state_fit(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(scaler_from_acc(PG_ARGISNULL(0) ? NULL
									  : state_of_datum(PG_GETARG_DATUM(0), CurrentMemoryContext)->acc));
}

Datum
scaler_state_info(PG_FUNCTION_ARGS)
{
	state_object *so = state_of_datum(PG_GETARG_DATUM(0), CurrentMemoryContext);
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "scaler_state_info must return a row");
	values[0] = Int32GetDatum(so->acc->n_features);
	values[1] = Int64GetDatum(so->acc->n);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

Datum
scaler_transform(PG_FUNCTION_ARGS)
{
	scl_model	m;
	double	   *x,
			   *out;
	Datum	   *elems;

	decode_datum(PG_GETARG_DATUM(0), &m);
	x = palloc(sizeof(double) * m.n_features);
	out = palloc(sizeof(double) * m.n_features);
	mglue_read_features(PG_GETARG_DATUM(1), m.n_features, x, "scaler_transform", "the scaler");
	scl_transform(&m, x, out);
	elems = palloc(sizeof(Datum) * m.n_features);
	for (int j = 0; j < m.n_features; j++)
		elems[j] = Float8GetDatum(out[j]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, m.n_features, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum
scaler_to_json(PG_FUNCTION_ARGS)
{
	scl_model	m;

	decode_datum(PG_GETARG_DATUM(0), &m);
	PG_RETURN_JSONB_P(mglue_text_to_jsonb(model_json(&m)));
}

Datum
scaler_from_json(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(model_from_jsonb(PG_GETARG_JSONB_P(0)));
}

Datum
scaler_info(PG_FUNCTION_ARGS)
{
	scl_model	m;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "scaler_info must return a row");
	decode_datum(PG_GETARG_DATUM(0), &m);
	values[0] = Int32GetDatum(m.n_features);
	values[1] = Int64GetDatum(m.n_samples);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * Money as a model feature: NULL, NaN and +-Infinity become 0; beyond
 * +-SCL_FEATURE_BOUND a value is held at the bound, so that a huge amount
 * still stands out as the most extreme value without overflowing the fit.
 */
Datum
feature_value(PG_FUNCTION_ARGS)
{
	Numeric		x;

	if (PG_ARGISNULL(0))
		PG_RETURN_FLOAT8(feat_money(false, 0.0));
	x = PG_GETARG_NUMERIC(0);
	if (numeric_is_nan(x) || numeric_is_inf(x))
		PG_RETURN_FLOAT8(feat_money(false, 0.0));
	/* beyond float8's range this gives +-HUGE_VAL, which feat_money holds */
	PG_RETURN_FLOAT8(feat_money(true, DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
																		 NumericGetDatum(x)))));
}

/* ---------------------------------------------- for the scoring path (C) */

void
mglue_scaler_decode(Datum stored, scl_model *m)
{
	decode_datum(stored, m);
}

/* What scaler_fit gives for these rows in this order (a serial plan). */
bytea *
mglue_scaler_fit(const double *rows, uint64 n_rows, int nf, scl_model *fitted)
{
	scl_acc    *acc = palloc(scl_acc_size(nf));
	bytea	   *v;

	scl_acc_init(acc, nf);
	for (uint64 i = 0; i < n_rows; i++)
		scl_acc_add(acc, rows + i * nf);
	v = scaler_from_acc(acc);
	decode_datum(PointerGetDatum(v), fitted);
	pfree(acc);
	return v;
}
