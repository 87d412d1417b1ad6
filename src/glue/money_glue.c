/*
 * money_glue.c: calo_recon.round_money(), the one rounding rule of the
 * reports: an amount is shown to its currency's minor unit, half away from
 * zero (numeric's round()), with the decimals reconcile() checks it with
 * (bal_minor_unit: an unknown currency has 2).  The views, the CSV reports
 * and the workbook all show money through it; transactions keeps the logged
 * values and precision_drift the exact differences.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/fmgrprotos.h"

#include "balance.h"

PG_FUNCTION_INFO_V1(calo_recon_round_money);

/* calo_recon.round_money(value numeric, minor_unit integer) */
Datum
calo_recon_round_money(PG_FUNCTION_ARGS)
{
	int			minor = bal_minor_unit(PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1));

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(DirectFunctionCall2(numeric_round, PG_GETARG_DATUM(0), Int32GetDatum(minor)));
}
