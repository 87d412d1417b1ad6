/*
 * calo_recon_probe.c: test-only C functions, in a module of their own that
 * is never installed: `make installcheck` builds it and test/fixtures/setup.sql
 * puts it in the tests' private import folder, from where the tests that need
 * it declare its functions (CREATE FUNCTION ... AS '<that path>').
 *
 * The functions under test are looked up in the installed calo_recon
 * library by name (load_external_function, as PostgreSQL's hstore_plperl
 * reaches into hstore), so the probe checks the very code that ships.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "logparse.h"
#include "parse_glue.h"

PG_MODULE_MAGIC;

typedef lp_status (*lp_parse_fn) (const char *text, size_t len, const lp_options *opts, lp_result *out);
typedef void (*lp_free_fn) (lp_result *res);

static lp_parse_fn probe_lp_parse;
static lp_free_fn probe_lp_free;
static parse_body_jsonb_fn probe_parse_body_jsonb;

void		_PG_init(void);

void
_PG_init(void)
{
	/* the declarations the probe compiles against are the library's own */
	AssertVariableIsOfType(&lp_parse, lp_parse_fn);
	AssertVariableIsOfType(&lp_free, lp_free_fn);
	AssertVariableIsOfType(&parse_body_jsonb, parse_body_jsonb_fn);

	probe_lp_parse = (lp_parse_fn) load_external_function("$libdir/calo_recon", "lp_parse", true, NULL);
	probe_lp_free = (lp_free_fn) load_external_function("$libdir/calo_recon", "lp_free", true, NULL);
	probe_parse_body_jsonb = (parse_body_jsonb_fn)
		load_external_function("$libdir/calo_recon", "parse_body_jsonb", true, NULL);
}

PG_FUNCTION_INFO_V1(calo_recon_probe_parse_log_body_check);

/*
 * (log text) RETURNS TABLE (event_no integer, path text, body text): for
 * each event of the log, 'direct' when the jsonb calo_recon.parse_log()
 * builds from the parser's tokens has exactly the bytes of jsonb_in(body),
 * 'jsonb_in' when the token reader refused the body (parse_log then uses
 * jsonb_in), 'MISMATCH' otherwise; body is the parser's text.
 */
Datum
calo_recon_probe_parse_log_body_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *log = PG_GETARG_TEXT_PP(0);
	lp_result  *res;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != 3)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("parse_log_body_check must be declared with 3 result columns")));
	res = palloc0(sizeof(lp_result));
	PG_TRY();
	{
		if (probe_lp_parse(VARDATA_ANY(log), VARSIZE_ANY_EXHDR(log), NULL, res) != LP_OK)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("the log parser failed")));
		for (size_t i = 0; i < res->n_events; i++)
		{
			const lp_event *ev = &res->events[i];
			Jsonb	   *direct = probe_parse_body_jsonb(ev->body, ev->body_len);
			Jsonb	   *expected = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(ev->body)));
			const char *path;
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			CHECK_FOR_INTERRUPTS();
			if (direct == NULL)
				path = "jsonb_in";
			else if (VARSIZE(direct) == VARSIZE(expected) && memcmp(direct, expected, VARSIZE(direct)) == 0)
				path = "direct";
			else
				path = "MISMATCH";
			values[0] = Int32GetDatum(ev->event_no);
			values[1] = CStringGetTextDatum(path);
			values[2] = PointerGetDatum(cstring_to_text_with_len(ev->body, (int) ev->body_len));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_FINALLY();
	{
		probe_lp_free(res);
	}
	PG_END_TRY();
	return (Datum) 0;
}
