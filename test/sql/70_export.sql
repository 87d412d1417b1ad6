-- export_reports and export_workbook: CSV content, formula neutralization,
-- folder rules, and the refusal to replace files calo_recon did not write.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- runs a statement, returning SQLSTATE and message instead of failing
CREATE FUNCTION pg_temp.try(statement text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
CREATE FUNCTION pg_temp.export_file(path text) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_read_file(current_setting('calo_recon.export_directory') || '/' || path)
$$;

INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat,
     old_balance, new_balance, metadata, logged_at)
VALUES
    ('01HREGRESS0000000000000001', 'user-a', 'DEBIT', '=HYPERLINK("http://x")', '+SUM(A1)', 'BHD',
     40, 0, 0, -40, '{"note": "=cmd|calc"}', '2024-01-01 10:00:00+00'),
    ('01HREGRESS0000000000000002', 'user-a', 'CREDIT', 'PAYMENT', E'\tTAB', 'BHD',
     10.5, 0.5, -40, -30, NULL, '2024-01-02 10:00:00+00'),
    ('01HREGRESS0000000000000003', 'user-b', 'CREDIT', '', '@at, "quoted"', 'SAR',
     1.25, 0, 0, 1.25, NULL, '2024-01-02 11:00:00+00'),
    ('01HREGRESS0000000000000004', 'user-b', NULL, '-minus', E'line\nbreak', 'SAR',
     0.25, 0, 1.25, 1, NULL, '2024-01-03 11:00:00+00'),
    ('01HREGRESS0000000000000005', 'user-c', 'CREDIT', 'PAYMENT', 'TOPUP', 'SAR',
     5, 0, 0, 6, NULL, '2024-01-04 11:00:00+00');
SELECT users, arithmetic_breaks FROM calo_recon.reconcile();

SELECT report, file, rows FROM calo_recon.export_reports('regress') ORDER BY report;
-- numbers plain (-40 stays -40), formulas neutralized, quoting as COPY CSV
SELECT pg_temp.export_file('regress/transactions.csv');
SELECT pg_temp.export_file('regress/overdrafts.csv');
SELECT pg_temp.export_file('regress/balance_breaks.csv');

-- its own files are replaced; NULL folder is the export directory itself
SELECT report, file, rows FROM calo_recon.export_reports('regress') ORDER BY report;
SELECT report, file FROM calo_recon.export_reports(NULL) ORDER BY report;

-- folder rules
SELECT pg_temp.try($$SELECT calo_recon.export_reports('../outside')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_reports('regress/../../outside')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_reports('/tmp')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_reports(E'bad\x01name')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_reports('regress/transactions.csv')$$);

-- a file of the same name that calo_recon did not write is never replaced
DO $$ BEGIN
    BEGIN
        PERFORM calo_recon.export_reports('other');
    EXCEPTION WHEN duplicate_file THEN
        NULL;  -- left over, foreign, by an earlier run of this test
    END;
    EXECUTE format('COPY (SELECT ''mine'') TO %L',
                   current_setting('calo_recon.export_directory') || '/other/transactions.csv');
END $$;
SELECT pg_temp.try($$SELECT calo_recon.export_reports('other')$$);
SELECT pg_temp.export_file('other/transactions.csv');
DO $$ BEGIN
    EXECUTE format('COPY (SELECT ''not a workbook'') TO %L',
                   current_setting('calo_recon.export_directory') || '/regress/foreign.xlsx');
END $$;
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('regress/foreign.xlsx')$$);
SELECT pg_temp.export_file('regress/foreign.xlsx');

-- workbook names
SELECT calo_recon.export_workbook('regress/book.xlsx');
SELECT calo_recon.export_workbook('regress/book.xlsx');
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('regress/book.csv')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('regress/.hidden.xlsx')$$);
-- a folder name starting with a dot is refused as a file name is: one named
-- like a working folder would be removed by the next export beside it
SELECT replace(pg_temp.try(format('SELECT calo_recon.export_reports(%L)',
                                  '.calo_recon_tmp.' || system_identifier || '.2.keep')),
               system_identifier::text, '<system identifier>')
FROM pg_control_system();
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('regress/.keep/book.xlsx')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_dashboard('regress/./.d/sub/dashboard.html')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('../book.xlsx')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('/tmp/book.xlsx')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_workbook(E'regress/\x1fbook.xlsx')$$);

-- the manifest lists every written file with its SHA-256
SELECT regexp_replace(pg_temp.export_file('regress/.calo_recon_manifest'), '[0-9a-f]{64}', '<sha256>', 'g');

-- nothing half-written: no temporary file is left behind
SELECT name FROM pg_ls_dir(current_setting('calo_recon.export_directory') || '/regress') AS name
ORDER BY name;

-- exports are off while the export directory is not set
SET calo_recon.export_directory = '';
SELECT pg_temp.try($$SELECT calo_recon.export_reports()$$);
SELECT pg_temp.try($$SELECT calo_recon.export_workbook()$$);
-- a setting that names no folder the server can open is 58P01
SET calo_recon.export_directory = '/nonexistent/calo_recon_export';
SELECT pg_temp.try($$SELECT calo_recon.export_reports()$$);
SET calo_recon.export_directory = '/dev/null';
SELECT pg_temp.try($$SELECT calo_recon.export_workbook()$$);
RESET calo_recon.export_directory;

-- formula neutralization (one rule for CSV and workbook): a leading
-- apostrophe also after leading blanks or line breaks, for | and for the
-- full-width = + - @ |; text that only contains them stays as it is
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat,
     old_balance, new_balance, logged_at)
SELECT format('01HFORMULA%016s', n), 'user-f' || n, 'CREDIT', source, 'TOPUP', 'SAR',
       1, 0, 0, 1, '2024-02-01 00:00:00+00'
FROM (VALUES (1, '  =1+1'), (2, E'\n=1+1'), (3, '＝1+1'), (4, '|calc'), (5, '＋1'),
             (6, '－1'), (7, '＠SUM(A1)'), (8, E'\t=1'), (9, E'\r\n@x'), (10, ' ｜x'),
             (11, E'\u00a0=1'), (12, E'\u3000＝1'), (13, 'a=b'), (14, 'plain text'),
             (15, '  spaced'), (16, '＝')) AS v(n, source);
SELECT count(*) FROM calo_recon.export_reports('formulas');
CREATE TEMP TABLE csv_back (LIKE calo_recon.transactions);
DO $$ BEGIN
    EXECUTE format('COPY csv_back FROM %L CSV HEADER',
                   current_setting('calo_recon.export_directory') || '/formulas/transactions.csv');
END $$;
SELECT right(txn_id, 2) AS n, source LIKE '''%' AS neutralized, to_json(source) AS source FROM csv_back
WHERE txn_id LIKE '01HFORMULA%' ORDER BY txn_id;

-- names over the operating system's limits: 22023 (safe_path_errcode_for_file_access), not XX000
SELECT replace(pg_temp.try(format('SELECT calo_recon.export_reports(%L)', 'sub/' || repeat('a', 300))),
               repeat('a', 300), '<300 a>');
SELECT replace(pg_temp.try(format('SELECT calo_recon.export_workbook(%L)', repeat('b', 300) || '.xlsx')),
               repeat('b', 300), '<300 b>');
