/*
 * parse_glue.c: calo_recon.parse_log(text), the SQL face of the log parser.
 *
 * The plain C core (logparse.c) does the work; this file turns its events
 * into rows.  Timestamps are built arithmetically from the UTC fields the core
 * validated, and bodies go through jsonb_in: nothing depends on a setting
 * (TimeZone, DateStyle, ...), so the function is IMMUTABLE.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "logparse.h"

PG_FUNCTION_INFO_V1(calo_recon_parse_log);

#define PARSE_LOG_COLUMNS 8

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

/* one row per event: event_no, logged_at, request_id, level, kind, body, message_id, raw */
static void
emit_rows(ReturnSetInfo *rsinfo, const lp_result *res)
{
	/* the tuplestore copies each row: its pieces live only until the next one */
	MemoryContext row_context = AllocSetContextCreate(CurrentMemoryContext,
													  "parse_log row",
													  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old_context = MemoryContextSwitchTo(row_context);

	for (size_t i = 0; i < res->n_events; i++)
	{
		const lp_event *ev = &res->events[i];
		Datum		values[PARSE_LOG_COLUMNS];
		bool		nulls[PARSE_LOG_COLUMNS];

		if (i % 256 == 0)
			CHECK_FOR_INTERRUPTS();
		MemoryContextReset(row_context);
		values[0] = Int32GetDatum(ev->event_no);
		nulls[0] = false;
		nulls[1] = !ev->has_logged_at;
		/* µs since 1970-01-01 UTC -> µs since 2000-01-01 UTC; always in range: years 1..9999 */
		values[1] = nulls[1] ? (Datum) 0 :
			TimestampTzGetDatum((TimestampTz) (ev->logged_at_us -
											   (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY));
		values[2] = slice_text(ev->request_id, &nulls[2]);
		values[3] = slice_text(ev->level, &nulls[3]);
		values[4] = CStringGetTextDatum(lp_kind_name(ev->kind));
		nulls[4] = false;
		values[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(ev->body));
		nulls[5] = false;
		values[6] = slice_text(ev->message_id, &nulls[6]);
		values[7] = PointerGetDatum(cstring_to_text_with_len(ev->raw.ptr, (int) ev->raw.len));
		nulls[7] = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(old_context);
	MemoryContextDelete(row_context);
}

/*
 * calo_recon.parse_log(log text) RETURNS TABLE (event_no, logged_at,
 * request_id, level, kind, body, message_id, raw)
 */
Datum
calo_recon_parse_log(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *log = PG_GETARG_TEXT_PP(0);
	lp_options	opts = {parse_log_progress, NULL};
	lp_result  *res;
	lp_status	status;

	/* the core reads and writes UTF-8; jsonb could not hold its U+FFFD in another encoding */
	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("calo_recon.parse_log requires a UTF8 database"),
				 errdetail("The database encoding is %s.", GetDatabaseEncodingName())));

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != PARSE_LOG_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("calo_recon.parse_log must be declared with %d result columns", PARSE_LOG_COLUMNS)));

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
		emit_rows(rsinfo, res);
	}
	PG_FINALLY();
	{
		lp_free(res);
	}
	PG_END_TRY();

	return (Datum) 0;
}
