/*
 * parse_glue.c: calo_recon.parse_log(text), the SQL face of the log parser.
 *
 * The plain C core (logparse.h) does the work; this file turns its events
 * into rows, for parse_log and for the ingest's writer of log_events
 * (ingest_store_glue.c).  Timestamps are built arithmetically from the UTC fields the core
 * validated: nothing depends on a setting (TimeZone, DateStyle, ...), so the
 * function is IMMUTABLE.
 *
 * Bodies: the jsonb is built straight from the core's token reader
 * (lp_json_next) with the same pushJsonbValue() calls jsonb_in makes, so the
 * result is the very jsonb_in(body) value, bytes included, without lexing the
 * text again; numbers go through numeric_in as in jsonb_in, short plain
 * decimals through the exact int64_div_fast_to_numeric().  A body the reader
 * refuses (never one of the core's) goes through jsonb_in itself.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "logparse.h"
#include "parse_glue.h"

PG_FUNCTION_INFO_V1(calo_recon_parse_log);
PG_FUNCTION_INFO_V1(calo_recon_parse_log_kinds);
PG_FUNCTION_INFO_V1(calo_recon_is_currency_code);
PG_FUNCTION_INFO_V1(calo_recon_is_transaction_type);

static void
parse_log_progress(void *arg)
{
	CHECK_FOR_INTERRUPTS();
}

static Datum
slice_text(lp_slice s, bool *isnull)
{
	*isnull = (s.ptr == NULL);
	return *isnull ? (Datum) 0 : PointerGetDatum(cstring_to_text_with_len(s.ptr, (int) s.len));
}

/*
 * The numeric of a JSON number token, as numeric_in(token) gives it.  A plain
 * decimal of at most 18 digits (no exponent) is built from an int64: same
 * digits, weight and display scale, so the same bytes.
 */
static Numeric
number_value(const char *s, size_t n)
{
	const char *p = s;
	const char *e = s + n;
	int64		digits = 0;
	int			ndigits = 0,
				scale = 0;
	bool		neg = false,
				in_fraction = false;

	if (p < e && *p == '-')
		neg = true, p++;
	for (; p < e; p++)
	{
		if (*p >= '0' && *p <= '9')
		{
			digits = digits * 10 + (*p - '0');
			ndigits++;
			scale += in_fraction;
		}
		else if (*p == '.' && !in_fraction)
			in_fraction = true;
		else
			break;
	}
	if (p == e && ndigits > 0 && ndigits <= 18)
		return int64_div_fast_to_numeric(neg ? -digits : digits, scale);
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(pnstrdup(s, n)),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}

/* a key or string token as a jsonb string; false when jsonb_in would refuse its length */
static bool
string_value(const lp_json_token *tok, JsonbValue *v)
{
	v->type = jbvString;
	if (tok->escaped)
	{
		char	   *decoded = palloc(tok->len);

		v->val.string.len = (int) lp_json_unescape(tok->ptr, tok->len, decoded);
		v->val.string.val = decoded;
	}
	else
	{
		if (tok->len > JENTRY_OFFLENMASK)
			return false;
		v->val.string.len = (int) tok->len;
		v->val.string.val = unconstify(char *, tok->ptr);
	}
	return v->val.string.len <= JENTRY_OFFLENMASK;
}

/* jsonb_util.c's limits on one container */
#define BODY_MAX_PAIRS Min(MaxAllocSize / sizeof(JsonbPair), JB_CMASK)
#define BODY_MAX_ELEMS Min(MaxAllocSize / sizeof(JsonbValue), JB_CMASK)

/* an object or array being built: its value and the room allocated for members */
typedef struct body_frame
{
	JsonbValue	v;
	int			cap;
} body_frame;

/* jsonb's key order: shorter keys first, then bytewise; of equal keys the later one first */
static inline int
pair_cmp(const JsonbPair *a, const JsonbPair *b)
{
	if (a->key.val.string.len != b->key.val.string.len)
		return a->key.val.string.len > b->key.val.string.len ? 1 : -1;
	{
		int			c = memcmp(a->key.val.string.val, b->key.val.string.val, a->key.val.string.len);

		if (c != 0)
			return c;
	}
	return a->order > b->order ? -1 : 1;
}

static int
pair_qsort_cmp(const void *a, const void *b)
{
	return pair_cmp((const JsonbPair *) a, (const JsonbPair *) b);
}

/*
 * What pushJsonbValue()'s uniqueifyJsonbObject() does at the end of an
 * object: sort the pairs in key order and keep, of equal keys, the last
 * observed value.  Bodies' objects are small and their keys often nearly in
 * order already, hence an insertion sort.
 */
static void
sort_object(JsonbValue *obj)
{
	JsonbPair  *pairs = obj->val.object.pairs;
	int			n = obj->val.object.nPairs;
	bool		duplicates = false;

	if (n <= 1)
		return;
	if (n <= 32)
	{
		for (int i = 1; i < n; i++)
		{
			JsonbPair	cur = pairs[i];
			int			j = i;

			while (j > 0 && pair_cmp(&pairs[j - 1], &cur) > 0)
			{
				pairs[j] = pairs[j - 1];
				j--;
			}
			pairs[j] = cur;
		}
	}
	else
		qsort(pairs, n, sizeof(JsonbPair), pair_qsort_cmp);
	for (int i = 1; i < n && !duplicates; i++)
		duplicates = pairs[i].key.val.string.len == pairs[i - 1].key.val.string.len &&
			memcmp(pairs[i].key.val.string.val, pairs[i - 1].key.val.string.val, pairs[i].key.val.string.len) == 0;
	if (duplicates)
	{
		int			kept = 0;

		for (int i = 1; i < n; i++)
			if (pairs[i].key.val.string.len != pairs[kept].key.val.string.len ||
				memcmp(pairs[i].key.val.string.val, pairs[kept].key.val.string.val, pairs[i].key.val.string.len) != 0)
				pairs[++kept] = pairs[i];
		obj->val.object.nPairs = kept + 1;
	}
}

/* room for member number count at *members (elements of size bytes); false past max */
static bool
reserve_member(void **members, int *cap, int count, size_t size, int max)
{
	if (count >= max)
		return false;
	if (count == *cap)
	{
		*cap = *cap ? Min(*cap * 2, max) : 8;
		*members = *members ? repalloc(*members, size * *cap) : palloc(size * *cap);
	}
	return true;
}

/* the slot for the next member of f (after its key, for an object); NULL past jsonb's limits */
static JsonbValue *
frame_next_slot(body_frame *f, bool is_key)
{
	if (f->v.type == jbvObject)
	{
		void	   *pairs = f->v.val.object.pairs;
		JsonbPair  *pair;

		if (!is_key)
			return &f->v.val.object.pairs[f->v.val.object.nPairs - 1].value;
		if (!reserve_member(&pairs, &f->cap, f->v.val.object.nPairs, sizeof(JsonbPair), (int) BODY_MAX_PAIRS))
			return NULL;
		f->v.val.object.pairs = pairs;
		pair = &f->v.val.object.pairs[f->v.val.object.nPairs];
		pair->order = f->v.val.object.nPairs++;
		return &pair->key;
	}
	else
	{
		void	   *elems = f->v.val.array.elems;

		if (!reserve_member(&elems, &f->cap, f->v.val.array.nElems, sizeof(JsonbValue), (int) BODY_MAX_ELEMS))
			return NULL;
		f->v.val.array.elems = elems;
		return &f->v.val.array.elems[f->v.val.array.nElems++];
	}
}

/*
 * Built into the JsonbValue tree jsonb_in's pushJsonbValue() calls would
 * build, then serialized by the same JsonbValueToJsonb().  Strings without
 * escapes point into body, which must outlive the call only.
 */
Jsonb *
parse_body_jsonb(const char *body, size_t len)
{
	lp_json_reader reader;
	lp_json_token tok;
	lp_json_type type;
	body_frame	frames[LP_JSON_READER_DEPTH];
	int			depth = 0;
	JsonbValue	root;

	if (len > MaxAllocSize)
		return NULL;
	lp_json_reader_init(&reader, body, len);
	type = lp_json_next(&reader, &tok);
	if (type != LP_JSON_BEGIN_OBJECT && type != LP_JSON_BEGIN_ARRAY)
		return NULL;			/* a top-level scalar is never a body */
	for (;; type = lp_json_next(&reader, &tok))
	{
		JsonbValue *slot;

		if (type == LP_JSON_END)
			return JsonbValueToJsonb(&root);
		if (type == LP_JSON_ERROR)
			return NULL;
		if (type == LP_JSON_END_OBJECT || type == LP_JSON_END_ARRAY)
		{
			body_frame *f = &frames[--depth];

			if (f->v.type == jbvObject)
				sort_object(&f->v);
			if (depth == 0)
				root = f->v;
			else if (frames[depth - 1].v.type == jbvObject)
				frames[depth - 1].v.val.object.pairs[frames[depth - 1].v.val.object.nPairs - 1].value = f->v;
			else				/* its slot was taken when it began */
				frames[depth - 1].v.val.array.elems[frames[depth - 1].v.val.array.nElems - 1] = f->v;
			continue;
		}
		if (type == LP_JSON_BEGIN_OBJECT || type == LP_JSON_BEGIN_ARRAY)
		{
			body_frame *f = &frames[depth++];

			/* an element's slot is taken now and filled when the element ends */
			if (depth > 1 && frames[depth - 2].v.type == jbvArray &&
				frame_next_slot(&frames[depth - 2], false) == NULL)
				return NULL;
			f->cap = 0;
			if (type == LP_JSON_BEGIN_OBJECT)
			{
				f->v.type = jbvObject;
				f->v.val.object.nPairs = 0;
				f->v.val.object.pairs = NULL;
			}
			else
			{
				f->v.type = jbvArray;
				f->v.val.array.nElems = 0;
				f->v.val.array.elems = NULL;
				f->v.val.array.rawScalar = false;
			}
			continue;
		}
		slot = frame_next_slot(&frames[depth - 1], type == LP_JSON_KEY);
		if (slot == NULL)
			return NULL;
		switch (type)
		{
			case LP_JSON_KEY:
			case LP_JSON_STRING:
				if (!string_value(&tok, slot))
					return NULL;
				break;
			case LP_JSON_NUMBER:
				slot->type = jbvNumeric;
				slot->val.numeric = number_value(tok.ptr, tok.len);
				break;
			case LP_JSON_TRUE:
			case LP_JSON_FALSE:
				slot->type = jbvBool;
				slot->val.boolean = type == LP_JSON_TRUE;
				break;
			default:
				slot->type = jbvNull;
				break;
		}
	}
}

static Datum
body_jsonb(const lp_event *ev)
{
	Jsonb	   *direct = parse_body_jsonb(ev->body, ev->body_len);

	if (direct != NULL)
		return JsonbPGetDatum(direct);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(ev->body));
}

/* Each event's columns to fn, made in a context reset between events. */
static void
emit_events(const lp_result *res, parse_event_fn fn, void *arg)
{
	MemoryContext row_context = AllocSetContextCreate(CurrentMemoryContext,
													  "parse_log row",
													  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old_context;
	Datum		kind_text[LP_KIND_COUNT];

	/* the kind names, made once: they outlive the row context */
	for (int k = 0; k < LP_KIND_COUNT; k++)
		kind_text[k] = CStringGetTextDatum(lp_kind_name((lp_kind) k));
	old_context = MemoryContextSwitchTo(row_context);

	for (size_t i = 0; i < res->n_events; i++)
	{
		const lp_event *ev = &res->events[i];
		Datum		values[PARSE_LOG_COLUMNS];
		bool		nulls[PARSE_LOG_COLUMNS];

		if (i % 256 == 0)
			CHECK_FOR_INTERRUPTS();
		MemoryContextReset(row_context);
		values[PARSE_LOG_EVENT_NO] = Int32GetDatum(ev->event_no);
		nulls[PARSE_LOG_EVENT_NO] = false;
		nulls[PARSE_LOG_LOGGED_AT] = !ev->has_logged_at;
		/* µs since 1970-01-01 UTC -> µs since 2000-01-01 UTC; always in range: years 1..9999 */
		values[PARSE_LOG_LOGGED_AT] = nulls[PARSE_LOG_LOGGED_AT] ? (Datum) 0 :
			TimestampTzGetDatum((TimestampTz) (ev->logged_at_us -
											   (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY));
		values[PARSE_LOG_REQUEST_ID] = slice_text(ev->request_id, &nulls[PARSE_LOG_REQUEST_ID]);
		values[PARSE_LOG_LEVEL] = slice_text(ev->level, &nulls[PARSE_LOG_LEVEL]);
		if (ev->kind < 0 || ev->kind >= LP_KIND_COUNT)
			elog(ERROR, "log parser returned an unknown event kind %d", (int) ev->kind);
		values[PARSE_LOG_KIND] = kind_text[ev->kind];
		nulls[PARSE_LOG_KIND] = false;
		values[PARSE_LOG_BODY] = body_jsonb(ev);
		nulls[PARSE_LOG_BODY] = false;
		values[PARSE_LOG_MESSAGE_ID] = slice_text(ev->message_id, &nulls[PARSE_LOG_MESSAGE_ID]);
		values[PARSE_LOG_RAW] = PointerGetDatum(cstring_to_text_with_len(ev->raw.ptr, (int) ev->raw.len));
		nulls[PARSE_LOG_RAW] = false;
		fn(values, nulls, arg);
	}
	MemoryContextSwitchTo(old_context);
	MemoryContextDelete(row_context);
}

void
parse_log_events(text *log, const char *caller, parse_event_fn fn, void *arg)
{
	lp_options	opts = {parse_log_progress, NULL};
	lp_result  *res;
	lp_status	status;

	/* the core reads and writes UTF-8; jsonb could not hold its U+FFFD in another encoding */
	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s requires a UTF8 database", caller),
				 errdetail("The database encoding is %s.", GetDatabaseEncodingName())));

	/* a pointer that never changes inside PG_TRY, so PG_FINALLY sees what the parser allocated */
	res = palloc0(sizeof(lp_result));
	PG_TRY();
	{
		/* text values are valid in the database encoding; the core copes with any bytes anyway */
		status = lp_parse(VARDATA_ANY(log), VARSIZE_ANY_EXHDR(log), &opts, res);
		if (status == LP_ENOMEM)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while parsing a log of %zu bytes", (size_t) VARSIZE_ANY_EXHDR(log))));
		if (status != LP_OK)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("log text has too many events to parse at once")));
		emit_events(res, fn, arg);
	}
	PG_FINALLY();
	{
		lp_free(res);
	}
	PG_END_TRY();
}

/* the tuplestore copies each row: its pieces live only until the next one */
static void
put_event_row(const Datum *values, const bool *nulls, void *arg)
{
	ReturnSetInfo *rsinfo = arg;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, (Datum *) values, (bool *) nulls);
}

/*
 * calo_recon.parse_log(log text) RETURNS TABLE (event_no, logged_at,
 * request_id, level, kind, body, message_id, raw)
 */
Datum
calo_recon_parse_log(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != PARSE_LOG_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("calo_recon.parse_log must be declared with %d result columns", PARSE_LOG_COLUMNS)));
	parse_log_events(PG_GETARG_TEXT_PP(0), "calo_recon.parse_log", put_event_row, rsinfo);
	return (Datum) 0;
}

/*
 * calo_recon.parse_log_kinds() RETURNS TABLE (kind, family, body): the
 * parser's own list of kinds, so the documentation cannot fall behind it.
 */
Datum
calo_recon_parse_log_kinds(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != 3)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("calo_recon.parse_log_kinds must be declared with 3 result columns")));
	for (int k = 0; k < LP_KIND_COUNT; k++)
	{
		size_t		need = lp_kind_describe_body((lp_kind) k, NULL, 0);
		char	   *body = palloc(need + 1);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		lp_kind_describe_body((lp_kind) k, body, need + 1);
		values[0] = CStringGetTextDatum(lp_kind_name((lp_kind) k));
		values[1] = CStringGetTextDatum(lp_kind_family((lp_kind) k));
		values[2] = CStringGetTextDatum(body);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * calo_recon.is_currency_code(text) and calo_recon.is_transaction_type(text):
 * the parser's value rules for the tables' CHECK constraints, so that a row
 * COPYed in and a row parsed from a log meet one definition.
 */
Datum
calo_recon_is_currency_code(PG_FUNCTION_ARGS)
{
	text	   *code = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(lp_currency_code_valid(VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code)));
}

Datum
calo_recon_is_transaction_type(PG_FUNCTION_ARGS)
{
	text	   *type = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(lp_transaction_type_valid(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type)));
}
