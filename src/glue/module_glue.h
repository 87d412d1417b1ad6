/*
 * module_glue.h: settings shared by the PostgreSQL glue files.
 *
 * Only glue files (src/glue, the ones that include postgres.h) include this
 * header; the plain C cores (src/core) cannot, src/glue not being on their
 * include path.
 */
#ifndef MODULE_GLUE_H
#define MODULE_GLUE_H

/* calo_recon.* settings, defined in module_glue.c */
extern char *calo_recon_import_directory;
extern char *calo_recon_export_directory;
extern bool calo_recon_alerts_enabled;
extern int	calo_recon_refresh_max_skip;	/* seconds, 0 = off */
extern int	calo_recon_max_data_age;	/* seconds, 0 = off */
extern int	calo_recon_alert_backfill_age;	/* seconds, 0 = off */
extern int	calo_recon_workbook_sheet_rows;
extern char *calo_recon_export_group;

/* An Excel sheet holds 1048576 rows: a header row and this many data rows. */
#define EXCEL_MAX_DATA_ROWS 1048575

#endif
