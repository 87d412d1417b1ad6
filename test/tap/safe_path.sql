-- The shared path rules (src/glue/safe_path_glue.c): every bad path or setting gets
-- the same SQLSTATE and the same message whether it is read (ingest_file,
-- read_log_file) or written (export_reports, export_workbook).  Nothing here
-- writes a file: every call fails before the first write.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(48);

-- the four functions that take a server path, and the setting each one uses
-- (owner_rights: a SECURITY DEFINER entry point, README "Roles")
CREATE TEMP TABLE path_function (name text PRIMARY KEY, call text, setting text, access text, owner_rights boolean);
INSERT INTO path_function VALUES
    ('ingest_file', 'SELECT * FROM calo_recon.ingest_file(%L)', 'calo_recon.import_directory', 'read', true),
    ('read_log_file', 'SELECT calo_recon.read_log_file(%L)', 'calo_recon.import_directory', 'read', false),
    ('export_reports', 'SELECT * FROM calo_recon.export_reports(%L)', 'calo_recon.export_directory', 'write', true),
    ('export_workbook', 'SELECT calo_recon.export_workbook(%L)', 'calo_recon.export_directory', 'write', true);

-- the same bad path on every function: absolute and ".." are 42501 (as
-- PostgreSQL's pg_read_file says it), control characters 22023
SELECT throws_ok(format(f.call, b.path), b.state, b.message, f.name || ': ' || b.rule)
FROM path_function f
CROSS JOIN (VALUES
    ('absolute path', '/etc/book.xlsx', '42501', 'absolute path not allowed: "/etc/book.xlsx"'),
    ('".." component', 'r/../../book.xlsx', '42501', 'path must not contain "..": "r/../../book.xlsx"'),
    ('control character', E'r\x01/book.xlsx', '22023', E'path "r\\x01/book.xlsx" contains a control character'),
    ('DEL', E'r\x7f/book.xlsx', '22023', E'path "r\\x7f/book.xlsx" contains a control character')
) AS b (rule, path, state, message)
ORDER BY b.rule, f.name;

-- paths over the limits get 22023 with a detail naming the limit, not
-- XX000: over 1023 bytes (PostgreSQL's MAXPGPATH) on every function, a name
-- over the OS's 255 bytes where the reading side meets it
CREATE FUNCTION pg_temp.error_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE state text; message text; detail text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
    RETURN state || ' ' || message || ' / ' || detail;
END $$;
SELECT is(pg_temp.error_of(format(f.call, repeat('long/', 205) || 'book.xlsx')),
          format('22023 path is 1034 bytes long, more than the limit of 1023 bytes / Paths below %s are limited to 1023 bytes (MAXPGPATH - 1).', f.setting),
          f.name || ': path over 1023 bytes')
FROM path_function f ORDER BY f.name;
SELECT is(pg_temp.error_of(format(f.call, repeat('n', 300))),
          format('22023 could not open "%s" in %s: File name too long / The operating system limits a path to 4095 bytes and a name in it to 255 bytes.',
                 repeat('n', 300), f.setting),
          f.name || ': a name over the OS limit')
FROM path_function f WHERE f.access = 'read' ORDER BY f.name;
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file(repeat('n/', 511) || 'x')$$, '58P01', NULL,
                 'ingest_file: 1023 bytes are within the limit');

-- "." and empty components are dropped, "..." is a plain name
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('./samples//.../')$$,
                 '58P01', 'could not open "samples/..." in calo_recon.import_directory: No such file or directory',
                 'ingest_file: "." and "//" dropped, "..." is a plain name');

-- a symbolic link leading out of the folder: 42501 (bad/walk/h_escape.log
-- -> /etc/passwd); the export side is pointed at the import fixtures to meet
-- the same link, and refuses it before creating anything
DO $$ BEGIN
    PERFORM set_config('calo_recon.export_directory', current_setting('calo_recon.import_directory') || '/bad', true);
END $$;
SELECT throws_ok(format(f.call, b.path), '42501',
                 format('path "%s" resolves outside %s', b.shown, f.setting),
                 f.name || ': symbolic link out of the folder')
FROM path_function f
JOIN (VALUES
    ('ingest_file', 'bad/walk/h_escape.log', 'bad/walk/h_escape.log'),
    ('read_log_file', 'bad/walk/h_escape.log', 'bad/walk/h_escape.log'),
    ('export_reports', 'walk/h_escape.log', 'walk/h_escape.log'),
    ('export_workbook', 'walk/h_escape.log/book.xlsx', 'walk/h_escape.log')
) AS b (name, path, shown) USING (name)
ORDER BY f.name;
RESET calo_recon.export_directory;

-- settings: empty is 55000, a folder the server cannot open 58P01; the
-- setting is checked before the path
SET LOCAL calo_recon.import_directory = '';
SET LOCAL calo_recon.export_directory = '';
SELECT throws_ok(format(call, '/etc/book.xlsx'), '55000', setting || ' is not set', name || ': setting empty')
FROM path_function ORDER BY name;
SET LOCAL calo_recon.import_directory = '/nonexistent/calo_tap';
SET LOCAL calo_recon.export_directory = '/dev/null';
SELECT throws_ok(format(call, 'r/book.xlsx'), '58P01',
                 format('%s "%s" is not an accessible folder', setting, current_setting(setting)),
                 name || ': setting names no folder')
FROM path_function ORDER BY name;
RESET calo_recon.import_directory;
RESET calo_recon.export_directory;

-- privileges, checked first: for read_log_file EXECUTE is not enough, it
-- needs pg_read_server_files.  ingest_file and the exports run as the
-- extension owner and stay inside the folders a superuser chose: EXECUTE is
-- the right, and neither file role is needed (nor would it widen anything).
-- Where the call may go on, the path rules apply as for a superuser.
CREATE ROLE calo_tap_paths;
GRANT USAGE ON SCHEMA calo_recon TO calo_tap_paths;
GRANT EXECUTE ON FUNCTION calo_recon.ingest_file(text), calo_recon.read_log_file(text),
    calo_recon.export_reports(text, timestamptz, timestamptz), calo_recon.export_workbook(text, timestamptz, timestamptz) TO calo_tap_paths;
GRANT SELECT ON path_function TO calo_tap_paths;
CREATE FUNCTION pg_temp.check_access(missing text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT throws_ok(format(call, '/etc/book.xlsx'), '42501',
                     CASE WHEN missing IN ('any', access) AND NOT owner_rights
                          THEN format('permission denied to %s server files with %s()', access, name)
                          ELSE 'absolute path not allowed: "/etc/book.xlsx"' END,
                     format('%s without %s file privileges: %s', name, missing,
                            CASE WHEN missing IN ('any', access) AND NOT owner_rights THEN 'refused'
                                 WHEN owner_rights THEN 'EXECUTE is the right, path rules'
                                 ELSE 'path rules' END))
    FROM path_function ORDER BY name
$$;
SET ROLE calo_tap_paths;
SELECT pg_temp.check_access('any');
RESET ROLE;
GRANT pg_read_server_files TO calo_tap_paths;
SET ROLE calo_tap_paths;
SELECT pg_temp.check_access('write');
RESET ROLE;
REVOKE pg_read_server_files FROM calo_tap_paths;
GRANT pg_write_server_files TO calo_tap_paths;
SET ROLE calo_tap_paths;
SELECT pg_temp.check_access('read');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
