-- The shared path rules (src/safe_path.c): every bad path or setting gets
-- the same SQLSTATE whether it is read (ingest_file, read_log_file) or
-- written (export_reports, export_workbook).  Nothing here writes a file:
-- every call fails before the first write.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(34);

-- absolute paths: 42501, as PostgreSQL's pg_read_file says it
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('/etc')$$,
                 '42501', 'absolute path not allowed: "/etc"', 'ingest_file: absolute path');
SELECT throws_ok($$SELECT calo_recon.read_log_file('/etc/passwd')$$,
                 '42501', 'absolute path not allowed: "/etc/passwd"', 'read_log_file: absolute path');
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports('/etc')$$,
                 '42501', 'absolute path not allowed: "/etc"', 'export_reports: absolute path');
SELECT throws_ok($$SELECT calo_recon.export_workbook('/etc/book.xlsx')$$,
                 '42501', 'absolute path not allowed: "/etc/book.xlsx"', 'export_workbook: absolute path');

-- a ".." component, wherever it stands: 42501
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('samples/../..')$$,
                 '42501', 'path must not contain "..": "samples/../.."', 'ingest_file: ".."');
SELECT throws_ok($$SELECT calo_recon.read_log_file('../x.log')$$,
                 '42501', 'path must not contain "..": "../x.log"', 'read_log_file: ".."');
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports('a/..')$$,
                 '42501', 'path must not contain "..": "a/.."', 'export_reports: ".."');
SELECT throws_ok($$SELECT calo_recon.export_workbook('../book.xlsx')$$,
                 '42501', 'path must not contain "..": "../book.xlsx"', 'export_workbook: ".."');

-- "." and empty components are harmless and dropped, "..." is a name
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('./samples//.../')$$,
                 '58P01', 'could not open "samples/..." in calo_recon.import_directory: No such file or directory',
                 'ingest_file: "." and "//" dropped, "..." is a plain name');

-- control characters: 22023 (an invalid name, not an escape)
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file(E'samples\n')$$,
                 '22023', E'path "samples\n" contains a control character', 'ingest_file: newline');
SELECT throws_ok($$SELECT calo_recon.read_log_file(E'a\tb.log')$$,
                 '22023', E'path "a\tb.log" contains a control character', 'read_log_file: tab');
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports(E'r\x7f')$$,
                 '22023', E'path "r\x7f" contains a control character', 'export_reports: DEL');
SELECT throws_ok($$SELECT calo_recon.export_workbook(E'r\x01/book.xlsx')$$,
                 '22023', E'path "r\x01/book.xlsx" contains a control character', 'export_workbook: 0x01');

-- a symbolic link leading out of the folder: 42501 (bad/walk/h_escape.log -> /etc/passwd).
-- The export side is pointed at the import fixtures to meet the same link.
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('bad/walk/h_escape.log')$$,
                 '42501', 'path "bad/walk/h_escape.log" resolves outside calo_recon.import_directory',
                 'ingest_file: symlink out of the folder');
SELECT throws_ok($$SELECT calo_recon.read_log_file('bad/walk/h_escape.log')$$,
                 '42501', 'path "bad/walk/h_escape.log" resolves outside calo_recon.import_directory',
                 'read_log_file: symlink out of the folder');
DO $$ BEGIN
    PERFORM set_config('calo_recon.export_directory', current_setting('calo_recon.import_directory') || '/bad', true);
END $$;
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports('walk/h_escape.log')$$,
                 '42501', 'path "walk/h_escape.log" resolves outside calo_recon.export_directory',
                 'export_reports: symlink out of the folder');
SELECT throws_ok($$SELECT calo_recon.export_workbook('walk/h_escape.log/book.xlsx')$$,
                 '42501', 'path "walk/h_escape.log" resolves outside calo_recon.export_directory',
                 'export_workbook: symlink out of the folder');
RESET calo_recon.export_directory;

-- settings: empty is 55000, a folder the server cannot open 58P01
SET LOCAL calo_recon.import_directory = '';
SET LOCAL calo_recon.export_directory = '';
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('samples')$$,
                 '55000', 'calo_recon.import_directory is not set', 'ingest_file: setting empty');
SELECT throws_ok($$SELECT calo_recon.read_log_file('x.log')$$,
                 '55000', 'calo_recon.import_directory is not set', 'read_log_file: setting empty');
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports('r')$$,
                 '55000', 'calo_recon.export_directory is not set', 'export_reports: setting empty');
SELECT throws_ok($$SELECT calo_recon.export_workbook('r/book.xlsx')$$,
                 '55000', 'calo_recon.export_directory is not set', 'export_workbook: setting empty');
SET LOCAL calo_recon.import_directory = '/nonexistent/calo_tap';
SET LOCAL calo_recon.export_directory = '/dev/null';
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('samples')$$,
                 '58P01', 'calo_recon.import_directory "/nonexistent/calo_tap" is not an accessible folder',
                 'ingest_file: setting names no folder');
SELECT throws_ok($$SELECT calo_recon.read_log_file('x.log')$$,
                 '58P01', 'calo_recon.import_directory "/nonexistent/calo_tap" is not an accessible folder',
                 'read_log_file: setting names no folder');
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports('r')$$,
                 '58P01', 'calo_recon.export_directory "/dev/null" is not an accessible folder',
                 'export_reports: setting names a file');
SELECT throws_ok($$SELECT calo_recon.export_workbook('r/book.xlsx')$$,
                 '58P01', 'calo_recon.export_directory "/dev/null" is not an accessible folder',
                 'export_workbook: setting names a file');
RESET calo_recon.import_directory;
RESET calo_recon.export_directory;

-- the setting is checked before the path, the privilege before both
SET LOCAL calo_recon.import_directory = '';
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('/etc')$$,
                 '55000', NULL, 'an empty setting is reported before a bad path');
RESET calo_recon.import_directory;

-- privileges: EXECUTE is not enough, reading needs pg_read_server_files,
-- writing pg_write_server_files (one does not give the other)
CREATE ROLE calo_tap_paths;
GRANT USAGE ON SCHEMA calo_recon TO calo_tap_paths;
GRANT EXECUTE ON FUNCTION calo_recon.ingest_file(text), calo_recon.read_log_file(text),
    calo_recon.export_reports(text), calo_recon.export_workbook(text) TO calo_tap_paths;
SET ROLE calo_tap_paths;
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('/etc')$$,
                 '42501', 'permission denied to read server files with ingest_file()', 'ingest_file: privilege first');
SELECT throws_ok($$SELECT calo_recon.read_log_file('x.log')$$,
                 '42501', 'permission denied to read server files with read_log_file()', 'read_log_file: no privilege');
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports('r')$$,
                 '42501', 'permission denied to write server files with export_reports()', 'export_reports: no privilege');
SELECT throws_ok($$SELECT calo_recon.export_workbook('r/book.xlsx')$$,
                 '42501', 'permission denied to write server files with export_workbook()', 'export_workbook: no privilege');
RESET ROLE;
GRANT pg_read_server_files TO calo_tap_paths;
SET ROLE calo_tap_paths;
SELECT throws_ok($$SELECT calo_recon.read_log_file('/etc/passwd')$$,
                 '42501', 'absolute path not allowed: "/etc/passwd"', 'with pg_read_server_files the path rules apply');
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports('r')$$,
                 '42501', 'permission denied to write server files with export_reports()',
                 'pg_read_server_files does not allow writing');
RESET ROLE;
REVOKE pg_read_server_files FROM calo_tap_paths;
GRANT pg_write_server_files TO calo_tap_paths;
SET ROLE calo_tap_paths;
SELECT throws_ok($$SELECT calo_recon.export_workbook('/etc/book.xlsx')$$,
                 '42501', 'absolute path not allowed: "/etc/book.xlsx"', 'with pg_write_server_files the path rules apply');
SELECT throws_ok($$SELECT calo_recon.read_log_file('x.log')$$,
                 '42501', 'permission denied to read server files with read_log_file()',
                 'pg_write_server_files does not allow reading');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
