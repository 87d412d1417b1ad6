/*
 * module_glue.c: module entry point and the calo_recon.* settings.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "module_glue.h"

PG_MODULE_MAGIC;

char	   *calo_recon_import_directory = NULL;
char	   *calo_recon_export_directory = NULL;
double		calo_recon_amount_threshold = 1000.0;
bool		calo_recon_alerts_enabled = true;
int			calo_recon_refresh_max_skip = 3600;
int			calo_recon_max_data_age = 0;
int			calo_recon_alert_backfill_age = 0;
int			calo_recon_workbook_sheet_rows = EXCEL_MAX_DATA_ROWS;
char	   *calo_recon_export_group = NULL;

void		_PG_init(void);

void
_PG_init(void)
{
	/* File-system settings are superuser-only: they decide what the server reads and writes. */
	DefineCustomStringVariable("calo_recon.import_directory",
							   "Folder that ingest_file() and refresh() read log exports from.",
							   "Paths given to ingest_file() are relative to it; empty disables file ingestion.",
							   &calo_recon_import_directory,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("calo_recon.export_directory",
							   "Folder that export_reports() and export_workbook() write into.",
							   "Report paths are relative to it; empty disables server-side exports.",
							   &calo_recon_export_directory,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomRealVariable("calo_recon.amount_threshold",
							 "Amount above which the seed rule flags a transaction as anomalous.",
							 NULL,
							 &calo_recon_amount_threshold,
							 1000.0, 0.0, 1e15,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("calo_recon.alerts",
							 "Check new transactions at insert time and raise alerts.",
							 NULL,
							 &calo_recon_alerts_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* Operations (README "Operations"); SQL reads them with calo_recon.ops_settings(). */
	DefineCustomIntVariable("calo_recon.refresh_max_skip",
							"How long refresh() runs may be skipped (writer lock held) before a skipped run is recorded as failed.",
							"0 means never; the refresh_skipped alert is raised with the failure.",
							&calo_recon_refresh_max_skip,
							3600, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("calo_recon.max_data_age",
							"Age of the newest stored transaction above which the data counts as stale.",
							"0 means never; raise_alerts() raises stale_data, check_health() uses it when not given max_age.",
							&calo_recon_max_data_age,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("calo_recon.alert_backfill_age",
							"Transactions, discrepancies and conflicts logged longer ago than this raise no alert (their findings are still recorded).",
							"0 means every new one alerts; for backfills of history.",
							&calo_recon_alert_backfill_age,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("calo_recon.workbook_sheet_rows",
							"Data rows per sheet of export_workbook(); a longer report continues on a new sheet.",
							"At most what an Excel sheet holds below its header row (1048575).",
							&calo_recon_workbook_sheet_rows,
							EXCEL_MAX_DATA_ROWS, 1, EXCEL_MAX_DATA_ROWS,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	/* Superuser-only: it decides who else may read the server's files. */
	DefineCustomStringVariable("calo_recon.export_group",
							   "Operating-system group that may read exported files (mode 0640); empty: the server's user only (0600).",
							   NULL,
							   &calo_recon_export_group,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("calo_recon");
}
