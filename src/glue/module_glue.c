/*
 * module_glue.c: module entry point and the calo_recon.* settings.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "cluster_alert_hook_glue.h"
#include "module_glue.h"

PG_MODULE_MAGIC;

char	   *calo_recon_import_directory = NULL;
char	   *calo_recon_export_directory = NULL;
bool		calo_recon_alerts_enabled = true;
int			calo_recon_refresh_max_skip = 3600;
int			calo_recon_max_data_age = 0;
int			calo_recon_alert_backfill_age = 0;
int			calo_recon_workbook_sheet_rows = EXCEL_MAX_DATA_ROWS;
char	   *calo_recon_export_group = NULL;

void		_PG_init(void);

/* read in SQL only, by calo_recon.retrain_due_models() */
static int	calo_recon_retrain_after = 0;	/* seconds, 0 = off */
static int	calo_recon_retrain_after_transactions = 0;	/* 0 = off */

/* only ever its built-in value: see amount_threshold_refuse */
static double amount_threshold_retired = 1000.0;

/* calo_recon.amount_threshold keeps its built-in value: any other source is refused */
static bool
amount_threshold_refuse(double *newval, void **extra, GucSource source)
{
	if (source == PGC_S_DEFAULT)
		return true;
	GUC_check_errcode(ERRCODE_FEATURE_NOT_SUPPORTED);
	GUC_check_errmsg("calo_recon.amount_threshold is no longer used: the amount rule's thresholds are per currency, in calo_recon.amount_thresholds");
	GUC_check_errdetail("Every session and BI tool reads the same thresholds from that table; a session setting would not change what anyone sees.");
	GUC_check_errhint("Set a threshold with SELECT calo_recon.set_amount_threshold(currency, threshold) ('*' for every currency without a row of its own), and remove calo_recon.amount_threshold from postgresql.conf and ALTER DATABASE/ROLE settings.");
	return false;
}

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

	/*
	 * Replaced by the table calo_recon.amount_thresholds (1.2): kept only so
	 * that a value left in postgresql.conf, ALTER DATABASE or a script says
	 * where the rule went instead of silently changing nothing.
	 */
	DefineCustomRealVariable("calo_recon.amount_threshold",
							 "No longer used: the amount rule's thresholds are rows of calo_recon.amount_thresholds.",
							 "Setting it is refused; use calo_recon.set_amount_threshold(currency, threshold).",
							 &amount_threshold_retired,
							 1000.0, 0.0, 1e15,
							 PGC_USERSET,
							 0,
							 amount_threshold_refuse, NULL, NULL);

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

	/* Scheduled retraining by refresh() (README "Scheduled retraining"). */
	DefineCustomIntVariable("calo_recon.retrain_after",
							"Age of an active model at which refresh() trains it again.",
							"0 means never; the new model keeps the old one's name, parameters, currency and window length.",
							&calo_recon_retrain_after,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("calo_recon.retrain_after_transactions",
							"New transactions in an active model's currency scope since its training at which refresh() trains it again.",
							"0 means never.",
							&calo_recon_retrain_after_transactions,
							0, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("calo_recon.max_data_age",
							"Time since the last ingest of a file with transactions after which the data counts as stale.",
							"0 means never; raise_alerts(), and so every refresh(), raises stale_data, resolved once such a file is ingested.",
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

	calo_cluster_alert_hook_install();
}
