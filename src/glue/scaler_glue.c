/*
 * scaler_glue.c: the calo_recon.scaler type (StandardScaler) and its
 * aggregate scaler_fit, around the plain core in scaler.c.
 *
 * Text form: JSON, {"n_features":k,"n_samples":n,"mean":[..],"var":[..],
 * "scale":[..]} (numbers in shortest exact form).  Binary form (send/recv and
 * storage): see scaler.h.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "model_glue.h"
#include "anomaly_features.h"
#include "scaler.h"

PG_FUNCTION_INFO_V1(scaler_in);
PG_FUNCTION_INFO_V1(scaler_out);
PG_FUNCTION_INFO_V1(scaler_recv);
PG_FUNCTION_INFO_V1(scaler_send);
PG_FUNCTION_INFO_V1(scaler_fit_transfn);
PG_FUNCTION_INFO_V1(scaler_fit_combinefn);
PG_FUNCTION_INFO_V1(scaler_fit_serialfn);
PG_FUNCTION_INFO_V1(scaler_fit_deserialfn);
PG_FUNCTION_INFO_V1(scaler_fit_finalfn);
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
	StringInfo	msg = (StringInfo) PG_GETARG_POINTER(0);
	int			len = msg->len - msg->cursor;
	const char *bytes = pq_getmsgbytes(msg, len);
	scl_model	m;

	decode_bytes((const uint8 *) bytes, len, &m, ERRCODE_INVALID_BINARY_REPRESENTATION);
	PG_RETURN_BYTEA_P(encode_model(&m));
}

Datum
scaler_send(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* ---- aggregate scaler_fit(float8[]) ---- */

Datum
scaler_fit_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	scl_acc    *acc = PG_ARGISNULL(0) ? NULL : (scl_acc *) PG_GETARG_POINTER(0);
	double	   *x;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "scaler_fit_transfn called in non-aggregate context");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("scaler_fit: the feature array is NULL"),
				 errdetail("Every training row needs a feature vector.")));
	if (acc == NULL)
	{
		int			k = mglue_feature_count(PG_GETARG_DATUM(1), "scaler_fit");

		if (k > SCL_MAX_FEATURES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("scaler_fit: %d features is more than %d", k, SCL_MAX_FEATURES)));
		/* one row of scratch after the accumulator holds the incoming row */
		acc = MemoryContextAlloc(aggcontext, scl_acc_size(k) + sizeof(double) * k);
		scl_acc_init(acc, k);
	}
	x = acc->data + 3 * acc->n_features;
	mglue_read_features(PG_GETARG_DATUM(1), acc->n_features, x, "scaler_fit", "the first training row");
	scl_acc_add(acc, x);
	PG_RETURN_POINTER(acc);
}

Datum
scaler_fit_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	scl_acc    *a = PG_ARGISNULL(0) ? NULL : (scl_acc *) PG_GETARG_POINTER(0);
	scl_acc    *b = PG_ARGISNULL(1) ? NULL : (scl_acc *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "scaler_fit_combinefn called in non-aggregate context");
	if (b == NULL)
		PG_RETURN_POINTER(a);
	if (a == NULL)
	{
		size_t		size = scl_acc_size(b->n_features) + sizeof(double) * b->n_features;

		a = MemoryContextAlloc(aggcontext, size);
		memcpy(a, b, size);
		PG_RETURN_POINTER(a);
	}
	if (a->n_features != b->n_features)
		mglue_wrong_length("scaler_fit", b->n_features, a->n_features, "the first training row");
	scl_acc_merge(a, b);
	PG_RETURN_POINTER(a);
}

Datum
scaler_fit_serialfn(PG_FUNCTION_ARGS)
{
	scl_acc    *acc = (scl_acc *) PG_GETARG_POINTER(0);
	size_t		size = scl_acc_size(acc->n_features);
	bytea	   *out = palloc(VARHDRSZ + size);

	SET_VARSIZE(out, VARHDRSZ + size);
	memcpy(VARDATA(out), acc, size);
	PG_RETURN_BYTEA_P(out);
}

Datum
scaler_fit_deserialfn(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_P(0);
	size_t		len = VARSIZE(in) - VARHDRSZ;
	scl_acc		head;
	scl_acc    *acc;

	if (len < sizeof(scl_acc))
		elog(ERROR, "scaler_fit: serialized state too short");
	memcpy(&head, VARDATA(in), sizeof(scl_acc));
	if (head.n_features < 1 || head.n_features > SCL_MAX_FEATURES || head.n < 0 ||
		len != scl_acc_size(head.n_features))
		elog(ERROR, "scaler_fit: serialized state is malformed");
	acc = palloc(len + sizeof(double) * head.n_features);
	memcpy(acc, VARDATA(in), len);
	PG_RETURN_POINTER(acc);
}

Datum
scaler_fit_finalfn(PG_FUNCTION_ARGS)
{
	scl_acc    *acc = PG_ARGISNULL(0) ? NULL : (scl_acc *) PG_GETARG_POINTER(0);
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
	PG_RETURN_BYTEA_P(encode_model(&m));
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
	char		err[256];

	scl_acc_init(acc, nf);
	for (uint64 i = 0; i < n_rows; i++)
		scl_acc_add(acc, rows + i * nf);
	if (acc->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("scaler_fit: the training set is empty"),
				 errdetail("A scaler needs at least one row to fit.")));
	alloc_model(fitted, nf);
	if (scl_acc_finish(acc, fitted, err, sizeof err) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("scaler_fit: %s", err),
				 errdetail("The features spread too far for a float8 variance."),
				 errhint("Bring the features to a smaller range (e.g. cap or rescale them) before fitting.")));
	pfree(acc);
	return encode_model(fitted);
}
