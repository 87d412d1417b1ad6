/*
 * workbook_unavailable_glue.c: calo_recon.export_workbook() of a module built
 * without libxlsxwriter (the Makefile's XLSXWRITER=no, or the library not
 * found). It stands in for workbook_glue.c so that the SQL function, its
 * grants and the symbol the install scripts name stay the same in every build,
 * and says what is missing instead of failing to load the whole module.
 */
#include "postgres.h"

#include "fmgr.h"

PG_FUNCTION_INFO_V1(calo_recon_export_workbook);

Datum
calo_recon_export_workbook(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("export_workbook() is not available: calo_recon was built without libxlsxwriter"),
			 errdetail("The Excel workbook is written with libxlsxwriter, which was not found when this module was built."),
			 errhint("Install libxlsxwriter (Debian: libxlsxwriter-dev) and rebuild calo_recon, or write the same reports as CSV with export_reports().")));
	PG_RETURN_NULL();
}
