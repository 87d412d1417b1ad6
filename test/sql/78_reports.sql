-- Reports finance reads (issue 10): money rounded to the currency's minor
-- unit (one rule, round_money), daily_summary, as_of, user_summary that
-- reconciles with its filter pushed down, exports with a period, CSV times
-- and booleans a spreadsheet reads.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET calo_recon.alerts = off;

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

-- the rounding rule: half away from zero to the minor unit; unknown: 2
SELECT v, m, calo_recon.round_money(v, m)
FROM (VALUES (1.005, 2), (-1.005, 2), (2.5, 0), (-2.5, 0), (0.0005, 3), (1.23456, NULL),
             (268.0000000001, 3), (NULL, 2), ('NaN'::numeric, 2)) AS t(v, m);

-- two wallets over three UTC days; float noise in the logged values
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat,
     old_balance, new_balance, logged_at)
VALUES
    ('R01', 'rep-a', 'CREDIT', 'PAYMENT', 'TOPUP', 'BHD', 308.0000000001, 8, 0, 300.0000000001, '2024-03-01 10:00:00+00'),
    ('R02', 'rep-a', 'DEBIT',  'MEAL',    'DEDUCT', 'BHD', 340, 0, 300.0000000001, -39.9999999999, '2024-03-01 23:59:59+00'),
    ('R03', 'rep-a', 'CREDIT', 'PAYMENT', 'TOPUP', 'BHD', 50, 0, -40, 10, '2024-03-03 08:00:00+00'),
    ('R04', 'rep-b', 'CREDIT', 'PAYMENT', 'TOPUP', 'SAR', 100.004, 0, 0, 100.004, '2024-03-01 12:00:00+00'),
    ('R05', 'rep-b', 'DEBIT',  'MEAL',    'DEDUCT', 'SAR', 30, 0, 100.004, 75, '2024-03-02 00:00:00+00'),
    ('R06', 'rep-c', 'CREDIT', 'PAYMENT', 'TOPUP', 'XXX', 1.23456, 0, 0, 1.23456, '2024-03-02 01:00:00+00');
SELECT users, arithmetic_breaks, chain_breaks, drift, overdrafts FROM calo_recon.reconcile();

-- views show money to the minor unit; transactions keeps what was logged,
-- precision_drift the exact drift
SELECT txn_id, amount, vat, old_balance, new_balance FROM calo_recon.overdrafts ORDER BY txn_id;
SELECT txn_id, amount, old_balance, new_balance FROM calo_recon.transactions WHERE txn_id = 'R02';
SELECT txn_id, drift_kind, expected, actual, difference FROM calo_recon.precision_drift ORDER BY txn_id;
SELECT txn_id, break_kind, expected, actual, difference, tolerance FROM calo_recon.balance_breaks ORDER BY txn_id;
SELECT user_id, lowest_balance FROM calo_recon.overdraft_episodes ORDER BY user_id;

-- user_summary: opening + credits - debits = closing, and where it does not
SELECT user_id, currency, opening_balance, credits_total, debits_total, credits_net, debits_net,
       vat_total, current_balance, reconciles, reconcile_difference
FROM calo_recon.user_summary ORDER BY user_id;

-- one user's row reads that user's rows only: every scan of transactions
-- (and of the other per-user tables) is an index scan on the user
SET enable_seqscan = off;
CREATE FUNCTION pg_temp.plan_of(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT line;
    END LOOP;
END $$;
-- (the report totals: the user's stored row, or while queued their own
-- transactions, computed by user_figures; only the reconcile queue, a few
-- rows, is read whole)
SELECT count(*) FILTER (WHERE line ~ 'Index Cond: \(user_id = ''rep-a''::text\)') AS user_index_conds,
       count(*) FILTER (WHERE line ~ 'Filter: \(user_id = ''rep-a''::text\)' ) AS queue_filters,
       count(*) FILTER (WHERE line ~ 'Seq Scan|Full' AND line !~ 'on pending_reconcile') AS full_scans
FROM pg_temp.plan_of($$SELECT * FROM calo_recon.user_summary WHERE user_id = 'rep-a'$$) AS line;
RESET enable_seqscan;

-- daily_summary: per currency and UTC day; the liability carries a wallet's
-- last balance of each day (rep-a ends 2024-03-01 at -40.000, rep-b 2024-03-02 at 75)
SELECT day, currency, transactions, credits, debits, vat, wallet_liability, arithmetic_breaks,
       chain_breaks, conflicts, out_of_range, overdrafts, discrepancies, anomalies
FROM calo_recon.daily_summary ORDER BY currency, day;

-- as_of: the last successful refresh; NULL before the first
SELECT as_of IS NULL AS no_refresh_yet, run_id FROM calo_recon.as_of;
INSERT INTO calo_recon.runs (run_id, started_at, finished_at, status)
VALUES (1, '2024-03-04 00:00:00+00', '2024-03-04 00:01:00+00', 'succeeded'),
       (2, '2024-03-05 00:00:00+00', '2024-03-05 00:01:00+00', 'failed');
SELECT as_of = '2024-03-04 00:01:00+00' AS last_success, run_id FROM calo_recon.as_of;
-- readable by the reader role
SET client_min_messages = warning;
DROP ROLE IF EXISTS calo_reports_reader;
CREATE ROLE calo_reports_reader;
RESET client_min_messages;
SELECT count(*) > 0 FROM calo_recon.grant_role('calo_reports_reader', 'reader');
-- a user queued: its report totals computed live for the reader
INSERT INTO calo_recon.pending_reconcile (user_id) SELECT min(user_id) FROM calo_recon.transactions;
SET ROLE calo_reports_reader;
SELECT run_id FROM calo_recon.as_of;
SELECT count(*) FROM calo_recon.daily_summary;
-- every column of the report totals' views, of users queued (computed
-- live) and stored: the reader needs no right on the tables behind them
SELECT count(*) AS users, count(current_balance) AS balances FROM calo_recon.user_summary;
SELECT count(*) AS days, count(wallet_liability) AS liabilities FROM calo_recon.daily_summary;
SELECT count(*) AS episodes, count(lowest_balance) AS lowest FROM calo_recon.overdraft_episodes;
RESET ROLE;
SELECT users FROM calo_recon.reconcile_pending();
DROP OWNED BY calo_reports_reader;
DROP ROLE calo_reports_reader;

-- exports of a period [from, to): rows of the period, the period said in period.csv
SELECT report, file, rows FROM calo_recon.export_reports('reports_period', '2024-03-02 00:00+00', '2024-03-03 00:00+00');
SELECT pg_temp.export_file('reports_period/period.csv') ~ E'^period_from,period_to,as_of,exported_at\n2024-03-02 00:00:00,2024-03-03 00:00:00,2024-03-04 00:01:00,' AS period_said;
-- times in UTC without a zone suffix, booleans TRUE/FALSE, money rounded
SELECT pg_temp.export_file('reports_period/transactions.csv');
SELECT pg_temp.export_file('reports_period/user_summary.csv');
SELECT pg_temp.export_file('reports_period/daily_summary.csv');
-- a call with the folder only, as in 1.1, exports all time
SELECT report, rows FROM calo_recon.export_reports('reports_all') WHERE report IN ('transactions', 'period');
SELECT pg_temp.export_file('reports_all/period.csv') ~ E'^period_from,period_to,as_of,exported_at\n,,2024-03-04 00:01:00,' AS open_period;
-- a period that ends before it starts: 22023
SELECT pg_temp.try($$SELECT calo_recon.export_reports('reports_bad', '2024-03-03', '2024-03-02')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_workbook('reports_bad.xlsx', '2024-03-03', '2024-03-03')$$);
-- a workbook of the period
SELECT calo_recon.export_workbook('reports_period/book.xlsx', '2024-03-02 00:00+00', '2024-03-03 00:00+00');
-- export_group: a group this system does not have is 22023; only a superuser sets it
SET calo_recon.export_group = 'calo_no_such_group_here';
SELECT pg_temp.try($$SELECT calo_recon.export_reports('reports_group')$$);
RESET calo_recon.export_group;
SET client_min_messages = warning;
DROP ROLE IF EXISTS calo_reports_user;
CREATE ROLE calo_reports_user;
RESET client_min_messages;
SET ROLE calo_reports_user;
SELECT pg_temp.try($$SET calo_recon.export_group = 'postgres'$$);
RESET ROLE;
DROP ROLE calo_reports_user;

-- the dashboard page: under the export rules, of a period, its name in .html
SELECT calo_recon.export_dashboard('reports_period/page.html', '2024-03-02 00:00+00', '2024-03-03 00:00+00');
SELECT pg_temp.export_file('reports_period/page.html') ~ '<dd id="period-from">2024-03-02 00:00:00 UTC</dd>' AS period_shown,
       pg_temp.export_file('reports_period/page.html') ~ '<td data-field="currency">SAR</td><td data-field="transactions" class="num">1</td>' AS figures_shown,
       pg_temp.export_file('reports_period/page.html') !~* '<script' AS no_script;
SELECT pg_temp.try($$SELECT calo_recon.export_dashboard('reports_period/page.htm')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_dashboard('../page.html')$$);
SELECT pg_temp.try($$SELECT calo_recon.export_dashboard('page.html', '2024-03-03', '2024-03-02')$$);
-- no name, or NULL: the default name, dashboard.html
SELECT calo_recon.export_dashboard() AS omitted, calo_recon.export_dashboard(NULL) AS null_name;

-- the CSV loading recipe: the reports load back with HEADER MATCH (in UTC,
-- the zone the reports are written in); a CSV with swapped columns is refused
CREATE TEMP TABLE txn_back (LIKE calo_recon.transactions);
SET TimeZone = 'UTC';
DO $$ BEGIN
    EXECUTE format('COPY txn_back FROM %L WITH (FORMAT csv, HEADER match)',
                   current_setting('calo_recon.export_directory') || '/reports_all/transactions.csv');
END $$;
RESET TimeZone;
SELECT count(*) AS rows_back,
       count(*) FILTER (WHERE (b.*)::text = (t.*)::text) AS identical
FROM txn_back b JOIN calo_recon.transactions t USING (txn_id);
DO $$ BEGIN
    EXECUTE format('COPY (SELECT txn_id, user_id, txn_type, source, action, currency, vat, amount,
                             old_balance, new_balance, payment_balance, update_payment_balance, metadata,
                             logged_at, request_id, message_id, source_file FROM calo_recon.transactions)
                    TO %L CSV HEADER',
                   current_setting('calo_recon.export_directory') || '/swapped.csv');
END $$;
DO $$ BEGIN
    EXECUTE format('COPY txn_back (txn_id, user_id, txn_type, source, action, currency, amount, vat, old_balance,
                                   new_balance, payment_balance, update_payment_balance, metadata, logged_at,
                                   request_id, message_id, source_file)
                    FROM %L WITH (FORMAT csv, HEADER match)',
                   current_setting('calo_recon.export_directory') || '/swapped.csv');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'refused: %', SQLSTATE;
END $$;
