-- Operations: report files (CSV), the Excel workbook.
-- The exports are SECURITY DEFINER entry points (calo_recon.definer_entry_points,
-- README "Roles"): they run as the extension owner, whose right to write
-- server files the C functions check as COPY TO a file does, and never
-- write outside calo_recon.export_directory (chosen by a superuser) nor
-- replace a file they did not write.  EXECUTE, which the operator kind has,
-- is the right to export; no role needs pg_write_server_files for it.

CREATE FUNCTION calo_recon.export_reports(folder text DEFAULT '',
                                          period_from timestamptz DEFAULT NULL,
                                          period_to timestamptz DEFAULT NULL)
RETURNS TABLE (report text, file text, rows bigint)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_reports';
COMMENT ON FUNCTION calo_recon.export_reports(text, timestamptz, timestamptz) IS
  'Writes one CSV file with a header per report (daily_summary, transactions, overdrafts, overdraft_episodes, anomalies by score, discrepancies, balance_breaks, precision_drift, user_summary) with the rows of the period [period_from, period_to) (NULL: open; user_summary keeps the users with a transaction in it), and period.csv saying the period and the as-of time, into a folder under calo_recon.export_directory (created when missing). Times are UTC (YYYY-MM-DD HH:MM:SS), booleans TRUE/FALSE; text cells that a spreadsheet would read as a formula get a leading apostrophe; files are mode 0600, or 0640 for calo_recon.export_group; never writes outside the export directory nor replaces a file it did not write. Runs as the extension owner (SECURITY DEFINER entry point): EXECUTE, which the operator kind has, is the right to export.';
REVOKE EXECUTE ON FUNCTION calo_recon.export_reports(text, timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION calo_recon.export_workbook(file text DEFAULT NULL,
                                           period_from timestamptz DEFAULT NULL,
                                           period_to timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_workbook';
COMMENT ON FUNCTION calo_recon.export_workbook(text, timestamptz, timestamptz) IS
  'Writes the Excel workbook of the period [period_from, period_to) under calo_recon.export_directory (file NULL or omitted: balance_reports.xlsx): a Summary sheet first (period, as-of time, figures per currency, breaks by kind, charts of the wallet liability, the breaks per day and the anomaly scores, the list of sheets), one sheet per report of export_reports (a report longer than calo_recon.workbook_sheet_rows continues on "<sheet> (2)", ...) and the Chart Data; headings in words, money in its currency''s format, UTC dates, TRUE/FALSE, long text wrapped, json columns (an anomaly''s attribution, a transaction''s metadata) left to the CSV, frozen header row, autofilter; printed landscape one page wide, or when wider at 70 % on pages across with the first column repeated, the header row repeated. Returns the data rows of the report sheets. Same path and permission rules as export_reports.';
REVOKE EXECUTE ON FUNCTION calo_recon.export_workbook(text, timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION calo_recon.export_dashboard(file text DEFAULT NULL,
                                            period_from timestamptz DEFAULT NULL,
                                            period_to timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_dashboard';
COMMENT ON FUNCTION calo_recon.export_dashboard(text, timestamptz, timestamptz) IS
  'Writes one self-contained HTML page (no script, no network: inline CSS and SVG charts) of the period [period_from, period_to) under calo_recon.export_directory (file NULL or omitted: dashboard.html): period, as-of time, figures per currency, breaks by kind, the workbook''s three charts, the top 10 open breaks by difference and the top 10 anomalies by score with their explanations; readable on screen and printed (A4 landscape). Returns the file written. Same path and permission rules as export_reports; the name must end in .html.';
REVOKE EXECUTE ON FUNCTION calo_recon.export_dashboard(text, timestamptz, timestamptz) FROM PUBLIC;
