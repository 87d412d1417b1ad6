/*
 * iforest_glue.c: the calo_recon.iforest type and the scoring functions,
 * around the plain core in iforest.c (fitting: iforest_fit_glue.c).
 *
 * Text form: base64 of the binary form (iforest.h); send/recv carry the
 * binary form itself.  Every value that enters (text, binary, bytea, JSON)
 * goes through the core's full validator; a stored value that fails it is
 * reported as data corruption.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "iforest.h"
#include "le_bytes.h"
#include "model_glue.h"

PG_FUNCTION_INFO_V1(iforest_in);
PG_FUNCTION_INFO_V1(iforest_out);
PG_FUNCTION_INFO_V1(iforest_recv);
PG_FUNCTION_INFO_V1(iforest_send);
PG_FUNCTION_INFO_V1(iforest_from_bytea);
PG_FUNCTION_INFO_V1(iforest_score);
PG_FUNCTION_INFO_V1(iforest_explain);
PG_FUNCTION_INFO_V1(iforest_info);
PG_FUNCTION_INFO_V1(iforest_to_json);
PG_FUNCTION_INFO_V1(iforest_from_json);

/* The "format" of the JSON form (iforest_to_json, tools/sklearn_export.py) */
#define IFO_JSON_FORMAT "calo_recon.iforest"

/* ------------------------------------------------------------ validation */

/*
 * Validates a model's bytes; raises sqlstate naming the problem.  Returns
 * the decoded forest, allocated in the current memory context.
 */
static ifo_forest *
decode_or_error(const uint8 *buf, size_t len, int sqlstate)
{
	char		err[256];
	size_t		need = ifo_decode_plan(buf, len, err, sizeof err);
	ifo_forest *f;
	void	   *mem;

	if (need == 0)
		ereport(ERROR, (errcode(sqlstate), errmsg("invalid calo_recon.iforest value"), errdetail("%s", err)));
	mem = palloc_extended(need, MCXT_ALLOC_HUGE);
	f = ifo_decode(buf, len, mem, need, err, sizeof err);
	if (f == NULL)
		ereport(ERROR, (errcode(sqlstate), errmsg("invalid calo_recon.iforest value"), errdetail("%s", err)));
	return f;
}

/* Copies validated bytes into a new varlena. */
static bytea *
bytes_to_value(const uint8 *buf, size_t len)
{
	bytea	   *v;

	if (len > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("iforest model of %zu bytes is too large", len)));
	v = palloc(VARHDRSZ + len);
	SET_VARSIZE(v, VARHDRSZ + len);
	memcpy(VARDATA(v), buf, len);
	return v;
}

/* Validates bytes and returns them as a model value (freeing the decode). */
static bytea *
validated_value(const uint8 *buf, size_t len, int sqlstate)
{
	ifo_forest *f = decode_or_error(buf, len, sqlstate);

	pfree(f);
	return bytes_to_value(buf, len);
}

static ifo_forest *
decode_stored(Datum d)
{
	bytea	   *v = (bytea *) PG_DETOAST_DATUM(d);

	return decode_or_error((const uint8 *) VARDATA(v), VARSIZE(v) - VARHDRSZ, ERRCODE_DATA_CORRUPTED);
}

/* ---------------------------------------------------------------- type I/O */

Datum
iforest_in(PG_FUNCTION_ARGS)
{
	int			len;
	char	   *bytes = mglue_base64_decode(PG_GETARG_CSTRING(0), &len, "calo_recon.iforest", "a model");

	PG_RETURN_BYTEA_P(validated_value((const uint8 *) bytes, len, ERRCODE_INVALID_TEXT_REPRESENTATION));
}

Datum
iforest_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(mglue_base64_encode(PG_GETARG_BYTEA_PP(0)));
}

Datum
iforest_recv(PG_FUNCTION_ARGS)
{
	int			len;
	const char *bytes = mglue_binary_rest((StringInfo) PG_GETARG_POINTER(0), &len);

	PG_RETURN_BYTEA_P(validated_value((const uint8 *) bytes, len, ERRCODE_INVALID_BINARY_REPRESENTATION));
}

/* Also iforest_to_bytea: the binary form as bytea. */
Datum
iforest_send(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_BYTEA_P(bytes_to_value((const uint8 *) VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v)));
}

Datum
iforest_from_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_BYTEA_P(validated_value((const uint8 *) VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v),
									  ERRCODE_INVALID_BINARY_REPRESENTATION));
}

/* ------------------------------------------------------------------ scoring */

/*
 * Decoded models, kept across the calls of one query.  A stored model is
 * known by its TOAST pointer (immutable); an inline one by its size and its
 * 40-byte header, which holds the checksum of all its bytes.  A few models
 * are kept, so that a join scoring rows against several models in turn does
 * not decode on every row.
 */
#define SCORE_CACHE_ENTRIES 8

typedef struct model_entry
{
	MemoryContext mcxt;
	bool		valid;
	bool		by_toast;
	Oid			toastrelid;
	Oid			valueid;
	Size		size;
	uint64		last_used;
	uint8		header[IFO_HEADER_BYTES];
	ifo_forest *forest;
	double	   *x;
	double	   *votes;
	/* per-feature split ranges for iforest_explain, computed on its first call */
	double	   *split_lo;
	double	   *split_hi;
	bool		ranges_ready;
} model_entry;

typedef struct score_cache
{
	uint64		clock;
	model_entry entries[SCORE_CACHE_ENTRIES];
} score_cache;

static void
entry_load(model_entry *e, struct varlena *detoasted)
{
	const uint8 *buf = (const uint8 *) VARDATA_ANY(detoasted);
	Size		len = VARSIZE_ANY_EXHDR(detoasted);
	MemoryContext old;

	e->valid = false;
	MemoryContextReset(e->mcxt);
	old = MemoryContextSwitchTo(e->mcxt);
	e->forest = decode_or_error(buf, len, ERRCODE_DATA_CORRUPTED);
	e->x = palloc(sizeof(double) * e->forest->n_features);
	e->votes = palloc(sizeof(double) * e->forest->n_features);
	e->split_lo = palloc(sizeof(double) * e->forest->n_features);
	e->split_hi = palloc(sizeof(double) * e->forest->n_features);
	e->ranges_ready = false;
	MemoryContextSwitchTo(old);
	e->size = len;
	memcpy(e->header, buf, IFO_HEADER_BYTES);
	e->valid = true;
}

static bool
entry_matches(const model_entry *e, const struct varlena *raw, const struct varatt_external *ext)
{
	if (!e->valid)
		return false;
	if (ext)
		return e->by_toast && e->toastrelid == ext->va_toastrelid && e->valueid == ext->va_valueid;
	return !e->by_toast && VARSIZE_ANY_EXHDR(raw) == e->size && e->size >= IFO_HEADER_BYTES &&
		memcmp(VARDATA_ANY(raw), e->header, IFO_HEADER_BYTES) == 0;
}

static model_entry *
forest_for_call(FunctionCallInfo fcinfo)
{
	score_cache *c = (score_cache *) fcinfo->flinfo->fn_extra;
	struct varlena *raw = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(0));
	struct varatt_external ext;
	bool		toasted = VARATT_IS_EXTERNAL_ONDISK(raw);
	model_entry *victim;

	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(score_cache));
		fcinfo->flinfo->fn_extra = c;
	}
	if (toasted)
		VARATT_EXTERNAL_GET_POINTER(ext, raw);
	else if (VARATT_IS_EXTENDED(raw) && !VARATT_IS_SHORT(raw))
		raw = pg_detoast_datum(raw);	/* compressed or indirect: rare */
	c->clock++;
	victim = &c->entries[0];
	for (int i = 0; i < SCORE_CACHE_ENTRIES; i++)
	{
		model_entry *e = &c->entries[i];

		if (entry_matches(e, raw, toasted ? &ext : NULL))
		{
			e->last_used = c->clock;
			return e;
		}
		if (victim->valid && (!e->valid || e->last_used < victim->last_used))
			victim = e;
	}
	if (victim->mcxt == NULL)
		victim->mcxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "iforest model cache",
											 ALLOCSET_DEFAULT_SIZES);
	entry_load(victim, toasted ? pg_detoast_datum(raw) : raw);
	victim->by_toast = toasted;
	if (toasted)
	{
		victim->toastrelid = ext.va_toastrelid;
		victim->valueid = ext.va_valueid;
	}
	victim->last_used = c->clock;
	return victim;
}

/*
 * Trees descended between interrupt checks: a row of the largest model
 * (10,000 trees, 20 levels each) stays cancellable, and a check costs
 * nothing next to 1024 descents.
 */
#define SCORE_TREES_PER_CHECK 1024

Datum
iforest_score(PG_FUNCTION_ARGS)
{
	model_entry *c = forest_for_call(fcinfo);
	const ifo_forest *f = c->forest;
	double		path_sum = 0.0;

	mglue_read_features(PG_GETARG_DATUM(1), f->n_features, c->x, "iforest_score", "the model");
	ifo_prepare_input(f, c->x);
	for (uint32 t = 0; t < f->n_trees; t += SCORE_TREES_PER_CHECK)
	{
		CHECK_FOR_INTERRUPTS();
		path_sum = ifo_path_sum_trees(f, c->x, t, t + SCORE_TREES_PER_CHECK, path_sum);
	}
	PG_RETURN_FLOAT8(ifo_score_of_path_sum(f, path_sum));
}

Datum
iforest_explain(PG_FUNCTION_ARGS)
{
	model_entry *c = forest_for_call(fcinfo);
	int			feature;

	mglue_read_features(PG_GETARG_DATUM(1), c->forest->n_features, c->x, "iforest_explain", "the model");
	ifo_prepare_input(c->forest, c->x);
	if (!c->ranges_ready)
	{
		ifo_split_ranges(c->forest, c->split_lo, c->split_hi);
		c->ranges_ready = true;
	}
	feature = ifo_explain_ranged(c->forest, c->x, c->split_lo, c->split_hi, c->votes);
	if (feature < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(feature + 1);
}

Datum
iforest_info(PG_FUNCTION_ARGS)
{
	bytea	   *v = (bytea *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	ifo_forest *f = decode_or_error((const uint8 *) VARDATA(v), VARSIZE(v) - VARHDRSZ, ERRCODE_DATA_CORRUPTED);
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "iforest_info must return a row");
	values[0] = Int32GetDatum((int32) f->n_trees);
	values[1] = Int32GetDatum((int32) f->sample_size);
	values[2] = Int32GetDatum((int32) f->n_features);
	values[3] = Int64GetDatum((int64) f->n_nodes);
	values[4] = Int32GetDatum((int32) (VARSIZE(v) - VARHDRSZ));
	values[5] = Int32GetDatum((int32) f->extension_level);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* --------------------------------------------------------------------- JSON */

static void
append_int_array(StringInfo buf, const char *key, const ifo_forest *f, uint32 t,
				 int64 (*field) (const ifo_forest *, uint32, uint32))
{
	appendStringInfo(buf, "\"%s\": [", key);
	for (uint32 i = f->tree_start[t]; i < f->tree_start[t + 1]; i++)
		appendStringInfo(buf, "%s" INT64_FORMAT, i > f->tree_start[t] ? "," : "", field(f, t, i));
	appendStringInfoChar(buf, ']');
}

/* scikit-learn's tree_ conventions: a leaf has children -1, feature -2 */
static int64
json_left(const ifo_forest *f, uint32 t, uint32 i)
{
	return f->nodes[i].feature < 0 ? -1 : (int64) (f->nodes[i].left - f->tree_start[t]);
}

static int64
json_right(const ifo_forest *f, uint32 t, uint32 i)
{
	return f->nodes[i].feature < 0 ? -1 : (int64) (f->nodes[i].right - f->tree_start[t]);
}

static int64
json_feature(const ifo_forest *f, uint32 t, uint32 i)
{
	return f->nodes[i].feature < 0 ? -2 : f->nodes[i].feature;
}

static int64
json_size(const ifo_forest *f, uint32 t, uint32 i)
{
	return f->nodes[i].size;
}

Datum
iforest_to_json(PG_FUNCTION_ARGS)
{
	ifo_forest *f = decode_stored(PG_GETARG_DATUM(0));
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "{\"format\": \"" IFO_JSON_FORMAT "\", \"version\": %d, \"n_features\": %u, "
					 "\"n_trees\": %u, \"sample_size\": %u, \"extension_level\": %u, "
					 "\"input_dtype\": \"%s\", \"trees\": [",
					 IFO_VERSION, f->n_features, f->n_trees, f->sample_size, f->extension_level,
					 (f->flags & IFO_FLAG_FLOAT32_INPUT) ? "float32" : "float64");
	for (uint32 t = 0; t < f->n_trees; t++)
	{
		CHECK_FOR_INTERRUPTS();
		appendStringInfoString(&buf, t > 0 ? ", {" : "{");
		append_int_array(&buf, "children_left", f, t, json_left);
		appendStringInfoString(&buf, ", ");
		append_int_array(&buf, "children_right", f, t, json_right);
		appendStringInfoString(&buf, ", ");
		append_int_array(&buf, "feature", f, t, json_feature);
		appendStringInfoString(&buf, ", \"threshold\": [");
		for (uint32 i = f->tree_start[t]; i < f->tree_start[t + 1]; i++)
		{
			if (i > f->tree_start[t])
				appendStringInfoChar(&buf, ',');
			mglue_append_double(&buf, f->nodes[i].feature < 0 ? -2.0 : f->nodes[i].threshold);
		}
		appendStringInfoString(&buf, "], ");
		append_int_array(&buf, "n_node_samples", f, t, json_size);
		if (f->normals)
		{
			appendStringInfoString(&buf, ", \"normal\": [");
			for (uint32 i = f->tree_start[t]; i < f->tree_start[t + 1]; i++)
			{
				if (i > f->tree_start[t])
					appendStringInfoChar(&buf, ',');
				mglue_append_double_array(&buf, f->normals + (size_t) i * f->n_features, f->n_features);
			}
			appendStringInfoChar(&buf, ']');
		}
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoString(&buf, "]}");
	PG_RETURN_JSONB_P(mglue_text_to_jsonb(buf.data));
}

/* one tree of the JSON form, as read */
typedef struct json_tree
{
	int			n;
	JsonbValue	left,
				right,
				feature,
				threshold,
				size,
				normal;
	bool		has_normal;
} json_tree;

static void
json_tree_read(JsonbContainer *trees, int t, json_tree *jt, bool extended)
{
	JsonbValue	tv;
	JsonbContainer *obj;
	char		what[64];

	mglue_json_element(trees, t, &tv);
	snprintf(what, sizeof what, "tree %d", t + 1);
	if (tv.type != jbvBinary || !JsonContainerIsObject(tv.val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid model JSON: %s must be a JSON object", what)));
	obj = tv.val.binary.data;
	mglue_json_get(obj, "children_left", &jt->left, true, what);
	mglue_json_get(obj, "children_right", &jt->right, true, what);
	mglue_json_get(obj, "feature", &jt->feature, true, what);
	mglue_json_get(obj, "threshold", &jt->threshold, true, what);
	mglue_json_get(obj, "n_node_samples", &jt->size, true, what);
	jt->has_normal = mglue_json_get(obj, "normal", &jt->normal, extended, what);
	mglue_json_array(&jt->left, &jt->n, "children_left");
}

static int64
json_int_at(const JsonbValue *arr, int i, int64 min, int64 max, const char *what)
{
	int			n;
	JsonbContainer *c = mglue_json_array(arr, &n, what);
	JsonbValue	e;

	mglue_json_element(c, i, &e);
	return mglue_json_integer(&e, min, max, what);
}

Datum
iforest_from_json(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	JsonbContainer *obj = mglue_json_object(jb, "model");
	JsonbContainer *trees;
	JsonbValue	v;
	int			nf,
				ss,
				ext = 0,
				nt;
	uint32		flags = 0;
	uint32	   *counts;
	uint64		total = 0,
				g = 0;
	json_tree  *jts;
	size_t		len;
	uint8	   *buf;
	ifo_writer	w;
	double	   *normal;

	/*
	 * The keys iforest_to_json writes that a reader could do without are
	 * still checked when present: a model of another format or version, or
	 * whose tree count disagrees with its trees, is not this model.
	 */
	if (mglue_json_get(obj, "format", &v, false, "model") &&
		!(v.type == jbvString && v.val.string.len == strlen(IFO_JSON_FORMAT) &&
		  memcmp(v.val.string.val, IFO_JSON_FORMAT, v.val.string.len) == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid model JSON: format must be \"%s\"", IFO_JSON_FORMAT)));
	if (mglue_json_get(obj, "version", &v, false, "model"))
		(void) mglue_json_integer(&v, IFO_VERSION, IFO_VERSION, "version");
	mglue_json_get(obj, "n_features", &v, true, "model");
	nf = (int) mglue_json_integer(&v, 1, IFO_MAX_FEATURES, "n_features");
	mglue_json_get(obj, "sample_size", &v, true, "model");
	ss = (int) mglue_json_integer(&v, 1, IFO_MAX_SAMPLE_SIZE, "sample_size");
	if (mglue_json_get(obj, "extension_level", &v, false, "model"))
		ext = (int) mglue_json_integer(&v, 0, nf - 1, "extension_level");
	if (ext > 0)
		flags |= IFO_FLAG_EXTENDED;
	if (mglue_json_get(obj, "input_dtype", &v, false, "model"))
	{
		if (v.type == jbvString && v.val.string.len == 7 && memcmp(v.val.string.val, "float32", 7) == 0)
			flags |= IFO_FLAG_FLOAT32_INPUT;
		else if (!(v.type == jbvString && v.val.string.len == 7 && memcmp(v.val.string.val, "float64", 7) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid model JSON: input_dtype must be \"float32\" or \"float64\"")));
	}
	mglue_json_get(obj, "trees", &v, true, "model");
	trees = mglue_json_array(&v, &nt, "trees");
	if (nt < 1 || nt > IFO_MAX_TREES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid model JSON: the model has %d trees, outside 1..%d", nt, IFO_MAX_TREES)));
	if (mglue_json_get(obj, "n_trees", &v, false, "model"))
		(void) mglue_json_integer(&v, nt, nt, "n_trees (the length of trees)");

	counts = palloc(sizeof(uint32) * nt);
	jts = palloc(sizeof(json_tree) * nt);
	for (int t = 0; t < nt; t++)
	{
		json_tree_read(trees, t, &jts[t], ext > 0);
		if (jts[t].n < 1 || jts[t].n > 2 * ss - 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid model JSON: tree %d has %d nodes, outside 1..%d", t + 1, jts[t].n, 2 * ss - 1)));
		counts[t] = jts[t].n;
		total += jts[t].n;
	}
	len = ifo_raw_size(nt, total, nf, ext > 0);
	if (len == 0 || len > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("iforest_from_json: the model is too large")));
	buf = palloc0(len);
	ifo_write_header(&w, buf, flags, nf, nt, ss, ext, counts, total);
	for (int t = 0; t < nt; t++)
	{
		json_tree  *jt = &jts[t];
		double	   *thresholds = mglue_json_doubles(&jt->threshold, jt->n, "threshold");
		int			n;

		CHECK_FOR_INTERRUPTS();
		if (mglue_json_array(&jt->right, &n, "children_right") && n != jt->n)
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							errmsg("invalid model JSON: tree %d: children_right has %d elements, expected %d", t + 1, n, jt->n)));
		if (mglue_json_array(&jt->feature, &n, "feature") && n != jt->n)
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							errmsg("invalid model JSON: tree %d: feature has %d elements, expected %d", t + 1, n, jt->n)));
		if (mglue_json_array(&jt->size, &n, "n_node_samples") && n != jt->n)
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							errmsg("invalid model JSON: tree %d: n_node_samples has %d elements, expected %d", t + 1, n, jt->n)));
		if (ext > 0 && mglue_json_array(&jt->normal, &n, "normal") && n != jt->n)
			ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							errmsg("invalid model JSON: tree %d: normal has %d elements, expected %d", t + 1, n, jt->n)));
		for (int i = 0; i < jt->n; i++, g++)
		{
			int64		left = json_int_at(&jt->left, i, -1, jt->n - 1, "children_left");
			int64		right = json_int_at(&jt->right, i, -1, jt->n - 1, "children_right");
			int64		size = json_int_at(&jt->size, i, 0, IFO_MAX_SAMPLE_SIZE, "n_node_samples");
			bool		leaf = left == -1 && right == -1;

			normal = NULL;
			if (leaf)
			{
				ifo_write_node(&w, g, 0, 0, 0, (uint32) size, 0.0, NULL);
				continue;
			}
			if (left < 1 || right < 1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid model JSON: tree %d node %d has only one child", t + 1, i)));
			if (ext > 0)
			{
				JsonbContainer *nc = mglue_json_array(&jt->normal, &n, "normal");
				JsonbValue	e;

				mglue_json_element(nc, i, &e);
				normal = mglue_json_doubles(&e, nf, "normal");
			}
			ifo_write_node(&w, g, (uint32) left, (uint32) right,
						   (uint32) json_int_at(&jt->feature, i, 0, nf - 1, "feature"),
						   (uint32) size, thresholds[i], normal);
			if (normal)
				pfree(normal);
		}
		pfree(thresholds);
	}
	ifo_write_seal(&w, len);
	PG_RETURN_BYTEA_P(validated_value(buf, len, ERRCODE_INVALID_TEXT_REPRESENTATION));
}

/* ---------------------------------------------- for the scoring path (C) */

ifo_forest *
mglue_forest_decode_bytes(const uint8 *buf, size_t len)
{
	return decode_or_error(buf, len, ERRCODE_DATA_CORRUPTED);
}
