/*
 * model_glue.c: feature-vector reading and JSON helpers shared by the
 * scaler and isolation forest glue.
 */
#include "postgres.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/shortest_dec.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

#include "model_glue.h"

/*
 * The array header as stored: for an inline array with a 1-byte varlena
 * header the fields are unaligned, so they are copied out.  An array may
 * carry a null bitmap without holding a NULL (a slice of an array with one,
 * an element assigned over a NULL): dataoffset is then nonzero and the data
 * start there, after the bitmap, not where an array without one has them.
 */
typedef struct array_view
{
	const char *start;			/* as if the varlena had a 4-byte header */
	int32		ndim;
	int32		dataoffset;
	int32		dim0;
} array_view;

/* Where the elements of a one-dimensional array begin (ARR_DATA_OFFSET). */
static inline const char *
view_data(const array_view *v)
{
	return v->start + (v->dataoffset != 0 ? v->dataoffset : ARR_OVERHEAD_NONULLS(1));
}

static void
open_array(Datum array, array_view *v)
{
	struct varlena *p = (struct varlena *) DatumGetPointer(array);
	const char *body;

	if (VARATT_IS_EXTENDED(p) && !VARATT_IS_SHORT(p))
		p = pg_detoast_datum(p);	/* toasted or compressed: rare for features */
	body = VARDATA_ANY(p);
	v->start = body - VARHDRSZ;
	memcpy(&v->ndim, body + offsetof(ArrayType, ndim) - VARHDRSZ, sizeof(int32));
	memcpy(&v->dataoffset, body + offsetof(ArrayType, dataoffset) - VARHDRSZ, sizeof(int32));
	v->dim0 = 0;
	if (v->ndim >= 1)
		memcpy(&v->dim0, body + sizeof(ArrayType) - VARHDRSZ, sizeof(int32));
}

/* Checks shape and NULLs; returns the element count. */
static int
check_shape(const array_view *v, const char *fname)
{
	if (v->ndim == 0 || (v->ndim == 1 && v->dim0 == 0))
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: the feature array is empty", fname),
				 errdetail("A feature vector needs at least one element.")));
	if (v->ndim != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: the feature array must be one-dimensional", fname),
				 errdetail("The array has %d dimensions.", v->ndim)));
	if (v->dataoffset != 0)
	{
		const bits8 *bitmap = (const bits8 *) (v->start + sizeof(ArrayType) + 2 * sizeof(int));

		for (int i = 0; i < v->dim0; i++)
			if (!(bitmap[i / 8] & (1 << (i % 8))))
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s: feature %d is NULL", fname, i + 1),
						 errdetail("Feature vectors must not contain NULL elements.")));
	}
	return v->dim0;
}

int
mglue_feature_count(Datum array, const char *fname)
{
	array_view	v;

	open_array(array, &v);
	return check_shape(&v, fname);
}

void
mglue_read_features(Datum array, int n, double *out, const char *fname, const char *want_from)
{
	array_view	v;
	int			got;

	open_array(array, &v);
	got = check_shape(&v, fname);
	if (got != n)
		mglue_wrong_length(fname, got, n, want_from);
	memcpy(out, view_data(&v), (size_t) n * sizeof(double));
	for (int i = 0; i < n; i++)
		if (!isfinite(out[i]))
			ereport(ERROR,
					(errcode(ERRCODE_FLOATING_POINT_EXCEPTION),
					 errmsg("%s: feature %d is %s", fname, i + 1,
							isnan(out[i]) ? "NaN" : (out[i] > 0 ? "Infinity" : "-Infinity")),
					 errdetail("Features must be finite numbers.")));
}

void
mglue_wrong_length(const char *fname, int got, int want, const char *want_from)
{
	ereport(ERROR,
			(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
			 errmsg("%s: expected %d features, got %d", fname, want, got),
			 errdetail("The number of features is fixed by %s.", want_from)));
}

void
mglue_append_double(StringInfo buf, double d)
{
	char		tmp[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(d, tmp);
	appendStringInfoString(buf, tmp);
}

void
mglue_append_double_array(StringInfo buf, const double *v, int n)
{
	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		mglue_append_double(buf, v[i]);
	}
	appendStringInfoChar(buf, ']');
}

Jsonb *
mglue_text_to_jsonb(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

static void
json_bad(const char *what, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid model JSON: %s %s", what, problem)));
}

JsonbContainer *
mglue_json_object(Jsonb *jb, const char *what)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		json_bad(what, "must be a JSON object");
	return &jb->root;
}

bool
mglue_json_get(JsonbContainer *obj, const char *key, JsonbValue *out, bool required, const char *what)
{
	if (getKeyJsonValueFromContainer(obj, key, strlen(key), out) == NULL)
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid model JSON: %s has no key \"%s\"", what, key)));
		return false;
	}
	return true;
}

/*
 * A JSON number as a double.  One a double cannot hold (1e400, or 1e-400,
 * which would silently become 0) is bad model text like any other, not an
 * arithmetic error: 22P02 rather than numeric_float8's 22003.
 */
double
mglue_json_number(const JsonbValue *v, const char *what)
{
	char	   *digits;
	char	   *end;
	double		d;

	if (v->type != jbvNumeric)
		json_bad(what, "must be a number");
	digits = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	errno = 0;
	d = strtod(digits, &end);
	if (*end != '\0' || !isfinite(d) || (errno == ERANGE && d == 0.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid model JSON: %s %.40s%s is out of range for a float8", what, digits,
						strlen(digits) > 40 ? "..." : ""),
				 errdetail("Model numbers must be finite and representable in double precision.")));
	pfree(digits);
	return d;
}

int64
mglue_json_integer(const JsonbValue *v, int64 min, int64 max, const char *what)
{
	double		d = mglue_json_number(v, what);

	if (d != floor(d) || d < (double) min || d > (double) max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid model JSON: %s must be an integer in %lld..%lld", what,
						(long long) min, (long long) max)));
	return (int64) d;
}

JsonbContainer *
mglue_json_array(const JsonbValue *v, int *n, const char *what)
{
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerIsScalar(v->val.binary.data))
		json_bad(what, "must be a JSON array");
	*n = JsonContainerSize(v->val.binary.data);
	return v->val.binary.data;
}

void
mglue_json_element(JsonbContainer *arr, int i, JsonbValue *out)
{
	JsonbValue *e = getIthJsonbValueFromContainer(arr, i);

	*out = *e;
	pfree(e);
}

double *
mglue_json_doubles(const JsonbValue *v, int n, const char *what)
{
	int			got;
	JsonbContainer *arr = mglue_json_array(v, &got, what);
	double	   *out;

	if (got != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid model JSON: %s has %d elements, expected %d", what, got, n)));
	out = palloc(sizeof(double) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbValue	e;

		mglue_json_element(arr, i, &e);
		out[i] = mglue_json_number(&e, what);
	}
	return out;
}

char *
mglue_base64_decode(const char *text, int *len, const char *type_name, const char *what)
{
	int			tlen = strlen(text);
	int			cap = pg_b64_dec_len(tlen);
	char	   *bytes = palloc_extended(cap + 1, MCXT_ALLOC_HUGE);

	*len = pg_b64_decode(text, tlen, bytes, cap);
	if (*len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s", type_name),
				 errdetail("The text form of %s is the base64 of its binary form.", what)));
	return bytes;
}

char *
mglue_base64_encode(const bytea *value)
{
	int			len = VARSIZE_ANY_EXHDR(value);
	int			cap = pg_b64_enc_len(len);
	char	   *out = palloc_extended(cap + 1, MCXT_ALLOC_HUGE);
	int			n = pg_b64_encode(VARDATA_ANY(value), len, out, cap);

	if (n < 0)
		elog(ERROR, "base64 encoding failed");
	out[n] = '\0';
	return out;
}

const char *
mglue_binary_rest(StringInfo msg, int *len)
{
	*len = msg->len - msg->cursor;
	return pq_getmsgbytes(msg, *len);
}

bytea *
mglue_binary_send(const bytea *value)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
	return pq_endtypsend(&buf);
}
