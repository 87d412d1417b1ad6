/*
 * money_glue.c: calo_recon.round_money(), the one rounding rule of the
 * reports: an amount is shown to its currency's minor unit, half away from
 * zero (numeric's round()), with the decimals reconcile() checks it with
 * (bal_minor_unit: an unknown currency has 2).  The views, the CSV reports
 * and the workbook all show money through it; transactions keeps the logged
 * values and precision_drift the exact differences.
 *
 * calo_recon.is_finite_money(), the rule the money columns of the record
 * are CHECKed with: no NaN, no Infinity.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

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

PG_FUNCTION_INFO_V1(calo_recon_is_finite_money);

/*
 * calo_recon.is_finite_money(value numeric): false for NaN, Infinity and
 * -Infinity, which numeric accepts and no amount of money is (the log parser
 * refuses them: lpnum.c).  STRICT: NULL is for NOT NULL to judge.
 *
 * It runs in the CHECKs of every money column on every insert, so it reads
 * the numeric's header where it lies, without the copy PG_GETARG_NUMERIC
 * makes of a short (1-byte header) value: the first uint16 after the varlena
 * header is n_header, and a special value (NaN, +-Infinity) has both sign
 * bits set (numeric.c's NUMERIC_SPECIAL, 0xC000).  That is the on-disk
 * format, which pg_upgrade keeps across major versions; an assert-enabled
 * build checks it against numeric_is_nan / numeric_is_inf.
 */
Datum
calo_recon_is_finite_money(PG_FUNCTION_ARGS)
{
	struct varlena *packed = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	uint16		n_header;
	bool		finite;

	memcpy(&n_header, VARDATA_ANY(packed), sizeof(n_header));
	finite = (n_header & 0xC000) != 0xC000;
#ifdef USE_ASSERT_CHECKING
	{
		Numeric		num = PG_GETARG_NUMERIC(0);

		Assert(finite == !(numeric_is_nan(num) || numeric_is_inf(num)));
	}
#endif
	PG_RETURN_BOOL(finite);
}
