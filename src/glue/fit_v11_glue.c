/*
 * fit_v11_glue.c: the C entry points of the scaler_fit and iforest_fit
 * aggregates of versions 1.0 and 1.1 (internal states), which 1.2 redefines
 * on states of their own (calo_recon.scaler_state, calo_recon.iforest_sample)
 * so that parallel workers and Citus nodes can share them.  The frozen
 * scripts of 1.0 and 1.1 create functions on these symbols, so they stay;
 * called from a database not yet updated to 1.2, they say what to do
 * (v11_glue.h).
 */
#include "postgres.h"

#include "fmgr.h"

#include "v11_glue.h"

PG_FUNCTION_INFO_V1(scaler_fit_transfn);
PG_FUNCTION_INFO_V1(scaler_fit_combinefn);
PG_FUNCTION_INFO_V1(scaler_fit_serialfn);
PG_FUNCTION_INFO_V1(scaler_fit_deserialfn);
PG_FUNCTION_INFO_V1(scaler_fit_finalfn);
PG_FUNCTION_INFO_V1(iforest_fit_transfn);
PG_FUNCTION_INFO_V1(iforest_fit_combinefn);
PG_FUNCTION_INFO_V1(iforest_fit_serialfn);
PG_FUNCTION_INFO_V1(iforest_fit_deserialfn);
PG_FUNCTION_INFO_V1(iforest_fit_finalfn);

static void pg_attribute_noreturn()
retired(const char *aggregate)
{
	calo_v11_unsupported(aggregate,
						 "Since 1.2 the aggregate keeps a state of its own type, which parallel workers and Citus nodes can share.");
}

Datum
scaler_fit_transfn(PG_FUNCTION_ARGS)
{
	retired("scaler_fit");
}

Datum
scaler_fit_combinefn(PG_FUNCTION_ARGS)
{
	retired("scaler_fit");
}

Datum
scaler_fit_serialfn(PG_FUNCTION_ARGS)
{
	retired("scaler_fit");
}

Datum
scaler_fit_deserialfn(PG_FUNCTION_ARGS)
{
	retired("scaler_fit");
}

Datum
scaler_fit_finalfn(PG_FUNCTION_ARGS)
{
	retired("scaler_fit");
}

Datum
iforest_fit_transfn(PG_FUNCTION_ARGS)
{
	retired("iforest_fit");
}

Datum
iforest_fit_combinefn(PG_FUNCTION_ARGS)
{
	retired("iforest_fit");
}

Datum
iforest_fit_serialfn(PG_FUNCTION_ARGS)
{
	retired("iforest_fit");
}

Datum
iforest_fit_deserialfn(PG_FUNCTION_ARGS)
{
	retired("iforest_fit");
}

Datum
iforest_fit_finalfn(PG_FUNCTION_ARGS)
{
	retired("iforest_fit");
}
