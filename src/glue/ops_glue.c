/*
 * ops_glue.c: the operations settings (calo_recon.refresh_max_skip,
 * max_data_age, alert_backfill_age) as intervals for SQL.  Their defaults
 * live once, in module_glue.c; reading them through a function of this
 * library also guarantees the library (and so the settings) is loaded, where
 * current_setting() in a fresh session could find them undefined.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/timestamp.h"

#include "module_glue.h"

PG_FUNCTION_INFO_V1(calo_recon_ops_settings);

/* seconds as an interval; 0 (off) as NULL */
static Datum
seconds_interval(int seconds, bool *isnull)
{
	Interval   *result;

	*isnull = (seconds == 0);
	if (*isnull)
		return (Datum) 0;
	result = (Interval *) palloc0(sizeof(Interval));
	result->time = (TimeOffset) seconds * USECS_PER_SEC;
	return IntervalPGetDatum(result);
}

/*
 * calo_recon.ops_settings(OUT refresh_max_skip interval, OUT max_data_age
 * interval, OUT alert_backfill_age interval)
 */
Datum
calo_recon_ops_settings(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("calo_recon.ops_settings() must return a record")));
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = seconds_interval(calo_recon_refresh_max_skip, &nulls[0]);
	values[1] = seconds_interval(calo_recon_max_data_age, &nulls[1]);
	values[2] = seconds_interval(calo_recon_alert_backfill_age, &nulls[2]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
