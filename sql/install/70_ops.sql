-- Operations (SPEC sections 7 and 8): report files, the Excel workbook.
-- The C functions check explicitly that the caller may write server files
-- (superuser or pg_write_server_files, as COPY TO a file does); nothing here
-- is SECURITY DEFINER, so no call ever runs with more rights than its caller.

CREATE FUNCTION calo_recon.export_reports(folder text DEFAULT '')
RETURNS TABLE (report text, file text, rows bigint)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_reports';
COMMENT ON FUNCTION calo_recon.export_reports(text) IS
  'Writes one CSV file with a header per reporting view into a folder under calo_recon.export_directory (created when missing); text cells that a spreadsheet would read as a formula get a leading apostrophe; never writes outside the export directory nor replaces a file it did not write. Needs superuser or pg_write_server_files.';
REVOKE EXECUTE ON FUNCTION calo_recon.export_reports(text) FROM PUBLIC;

CREATE FUNCTION calo_recon.export_workbook(file text DEFAULT 'balance_reports.xlsx')
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_workbook';
COMMENT ON FUNCTION calo_recon.export_workbook(text) IS
  'Writes the Excel workbook (sheets All Transactions, Overdrafts, Anomalies, Discrepancies, Balance Breaks, User Summary; typed cells, frozen header row, autofilter) under calo_recon.export_directory; returns the data rows written. Same path and permission rules as export_reports.';
REVOKE EXECUTE ON FUNCTION calo_recon.export_workbook(text) FROM PUBLIC;
