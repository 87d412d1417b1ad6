-- The report figures a finance audit found wrong: a period's money rounded
-- once (not the sum of rounded days), out-of-range values NULL (never 0)
-- live and stored, and periods of whole UTC days.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET calo_recon.alerts = off;
\pset null NULL

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
-- a field of the dashboard's figures of a currency
CREATE FUNCTION pg_temp.page_figure(path text, code text, field text) RETURNS text
LANGUAGE sql AS $$
    SELECT (regexp_match(pg_temp.export_file(path),
                         '<tr><td data-field="currency">' || code || '</td>.*?<td data-field="' || field
                         || '" class="num">([^<]*)</td>'))[1]
$$;

-- A period's money is the exact sum of its days rounded once: four days of
-- 10.0049 QAR credit 40.02, as the closing liability and user_summary say
-- (not 4 × 10.00)
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
    ('r1', 'rnd', 'CREDIT', 'QAR', 10.0049, 0, 0, 10.0049, '2024-02-01 10:00Z'),
    ('r2', 'rnd', 'CREDIT', 'QAR', 10.0049, 0, 10.0049, 20.0098, '2024-02-02 10:00Z'),
    ('r3', 'rnd', 'CREDIT', 'QAR', 10.0049, 0, 20.0098, 30.0147, '2024-02-03 10:00Z'),
    ('r4', 'rnd', 'CREDIT', 'QAR', 10.0049, 0, 30.0147, 40.0196, '2024-02-04 10:00Z');
SELECT count(*) FROM calo_recon.reconcile();
SELECT credits_total, current_balance FROM calo_recon.user_summary WHERE user_id = 'rnd';
SELECT day, credits, wallet_liability FROM calo_recon.daily_summary ORDER BY day;
SELECT calo_recon.export_dashboard('audit/page.html');
SELECT pg_temp.page_figure('audit/page.html', 'QAR', 'credits') AS credits,
       pg_temp.page_figure('audit/page.html', 'QAR', 'wallet_liability') AS liability;
SELECT calo_recon.export_dashboard('audit/page2.html', '2024-02-01 00:00+00', '2024-02-04 00:00+00');
SELECT pg_temp.page_figure('audit/page2.html', 'QAR', 'credits') AS three_days;
SELECT calo_recon.export_workbook('audit/book.xlsx') > 0 AS workbook_written;

-- A value out of the exact range makes its day's figure NULL (normj's 50
-- stays out of no sum, nor is it turned into 0), and every later
-- wallet_liability of that currency: the same live (the users queued) and
-- stored (after reconcile)
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
    ('n1', 'normj', 'CREDIT', 'JOD', 50, 0, 0, 50, '2024-04-10 11:00Z'),
    ('n2', 'normj', 'CREDIT', 'JOD', 5, 0, 50, 55, '2024-04-11 11:00Z'),
    ('n3', 'normj', 'CREDIT', 'JOD', 1, 0, 55, 56, '2024-04-12 11:00Z'),
    ('p1', 'precu', 'CREDIT', 'JOD', 1.0000000000000000001, 0, 0, 1.0000000000000000001, '2024-04-10 10:00Z'),
    ('p2', 'precu', 'CREDIT', 'JOD', 1, 0, 1.0000000000000000001, 2.0000000000000000001, '2024-04-11 10:00Z');
CREATE TEMP TABLE live AS SELECT * FROM calo_recon.daily_summary WHERE currency = 'JOD';
SELECT day, transactions, credits, debits, vat, wallet_liability FROM live ORDER BY day;
SET client_min_messages = error;
SELECT count(*) FROM calo_recon.reconcile();
RESET client_min_messages;
SELECT day, transactions, credits, debits, vat, wallet_liability, out_of_range
FROM calo_recon.daily_summary WHERE currency = 'JOD' ORDER BY day;
SELECT count(*) AS differ FROM (
    (SELECT day, transactions, credits, debits, vat, wallet_liability FROM live
     EXCEPT SELECT day, transactions, credits, debits, vat, wallet_liability FROM calo_recon.daily_summary)
    UNION ALL
    (SELECT day, transactions, credits, debits, vat, wallet_liability FROM calo_recon.daily_summary WHERE currency = 'JOD'
     EXCEPT SELECT day, transactions, credits, debits, vat, wallet_liability FROM live)) d;
-- the period's figures: NULL where a day's is, never 0
SELECT calo_recon.export_dashboard('audit/page3.html');
SELECT pg_temp.page_figure('audit/page3.html', 'JOD', 'credits') AS credits,
       pg_temp.page_figure('audit/page3.html', 'JOD', 'debits') AS debits,
       pg_temp.page_figure('audit/page3.html', 'JOD', 'wallet_liability') AS liability;
SELECT calo_recon.export_workbook('audit/book3.xlsx') > 0 AS workbook_written;
-- the bad rows deleted: while precu is queued, the NULL sums stored are
-- made again from the other users' rows, as reconcile() will store them
DELETE FROM calo_recon.transactions WHERE user_id = 'precu';
SELECT day, transactions, credits, debits, vat, wallet_liability
FROM calo_recon.daily_summary WHERE currency = 'JOD' ORDER BY day;
SELECT count(*) FROM calo_recon.reconcile();
SELECT day, transactions, credits, debits, vat, wallet_liability
FROM calo_recon.daily_summary WHERE currency = 'JOD' ORDER BY day;

-- A period is whole UTC days: a bound within a day is 22023 for every
-- period export (daily_summary keeps days, the other reports times)
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
    ('w1', 'per', 'CREDIT', 'EUR', 100, 0, 0, 100, '2024-07-01 18:00Z'),
    ('w2', 'per', 'CREDIT', 'EUR', 7, 0, 999, 1006, '2024-07-02 18:00Z');
SELECT count(*) FROM calo_recon.reconcile();
SELECT pg_temp.try($$SELECT calo_recon.export_reports('audit/p', '2024-07-01 12:00Z', '2024-07-02 12:00Z')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('audit/p.xlsx', '2024-07-01 00:00Z', '2024-07-02 12:00Z')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_dashboard('audit/p.html', '2024-07-01 00:00:00.000001Z', NULL)$$);
SET TimeZone = 'Asia/Riyadh';
SELECT pg_temp.try($$SELECT calo_recon.export_reports('audit/p', '2024-07-01', '2024-07-02')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_reports('audit/p', '2024-07-01 00:00+00', '2024-07-02 00:00+00')$$);
RESET TimeZone;
-- the detail and the hint say what to pass
DO $$
DECLARE
    detail text;
    hint text;
BEGIN
    PERFORM calo_recon.export_dashboard('audit/p.html', '2024-07-01 12:00Z', NULL);
EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RAISE NOTICE '%: % %', SQLERRM, detail, hint;
END $$;
-- open and infinite ends are whole days
SELECT pg_temp.try($$SELECT calo_recon.export_reports('audit/p', '-infinity', 'infinity')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_reports('audit/p', NULL, '2024-07-02 00:00+00')$$);
SELECT pg_temp.export_file('audit/p/daily_summary.csv');
SELECT pg_temp.export_file('audit/p/transactions.csv') ~ 'w1' AS w1, pg_temp.export_file('audit/p/transactions.csv') ~ 'w2' AS w2;
