-- The alert trigger in bulk (issue 8 item 4): its walk starts from what the
-- transition table holds (chain_findings_since), through the user/chain
-- index for a few users and through one scan of transactions for more than
-- 1,000; both ways find what chain_findings() finds, and a bulk insert
-- raises the alerts a row-by-row insert would, re-checking stored rows.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- bad input: the users and their instants go by position
\set VERBOSITY sqlstate
SELECT * FROM calo_recon.chain_findings_since(ARRAY['u1', 'u2'], ARRAY['2024-01-01'::timestamptz], ARRAY['x']);
\set VERBOSITY default
-- nothing given, nothing walked; STRICT
SELECT count(*) FROM calo_recon.chain_findings_since(ARRAY[]::text[], ARRAY[]::timestamptz[], ARRAY['x']);
SELECT count(*) FROM calo_recon.chain_findings_since(ARRAY['u1'], ARRAY['2024-01-01'::timestamptz], ARRAY[]::text[]);
SELECT count(*) FROM calo_recon.chain_findings_since(NULL, NULL, NULL);

-- 1,200 users with three rows each, stored with alerts off: user 7's
-- second row breaks the chain, user 1,100's third row overdraws, user 50's
-- second row breaks its arithmetic
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('B%s-%s', u, k), format('bulk-%s', u), 'DEBIT', 'BHD', 10, 0,
       CASE WHEN u = 7 AND k = 2 THEN 95 ELSE 100 - 10 * (k - 1) END,
       CASE WHEN u = 7 AND k = 2 THEN 85 WHEN u = 50 AND k = 2 THEN 81
            WHEN u = 1100 AND k = 3 THEN -1 ELSE 90 - 10 * (k - 1) END,
       '2024-06-01'::timestamptz + make_interval(mins => k)
FROM generate_series(1, 1200) AS u, generate_series(1, 3) AS k;
RESET calo_recon.alerts;

CREATE TEMP TABLE given AS
SELECT array_agg(f.user_id ORDER BY f.user_id) AS users,
       array_agg(f.first_new ORDER BY f.user_id) AS first_new,
       (SELECT array_agg(t.txn_id) FROM calo_recon.transactions t WHERE t.user_id LIKE 'bulk-%' AND t.logged_at > '2024-06-01 00:01+00') AS ids
FROM (SELECT t.user_id, min(t.logged_at) AS first_new FROM calo_recon.transactions t
      WHERE t.user_id LIKE 'bulk-%' AND t.logged_at > '2024-06-01 00:01+00' GROUP BY t.user_id) f;

-- the scan (1,200 users) and the index (the first 1,000) agree with
-- chain_findings() on the same rows; is_new marks the given rows
SELECT txn_id, finding, expected, actual, is_new
FROM given g, calo_recon.chain_findings_since(g.users, g.first_new, g.ids)
ORDER BY txn_id, finding;
SELECT count(*) AS rows_walked, count(*) FILTER (WHERE is_new) AS given_rows
FROM given g, calo_recon.chain_findings_since(g.users, g.first_new, g.ids);
SELECT (SELECT array_agg(row(txn_id, finding, expected, actual) ORDER BY txn_id, finding)
        FROM given g, calo_recon.chain_findings_since(g.users, g.first_new, g.ids)
        WHERE finding IS NOT NULL)
     = (SELECT array_agg(row(txn_id, finding, expected, actual) ORDER BY txn_id, finding)
        FROM given g, calo_recon.chain_findings(g.ids)) AS scan_agrees,
       (SELECT array_agg(row(txn_id, finding, expected, actual, is_new) ORDER BY txn_id, finding)
        FROM given g, calo_recon.chain_findings_since(g.users[1:1000], g.first_new[1:1000], g.ids))
     = (SELECT array_agg(row(txn_id, finding, expected, actual, is_new) ORDER BY txn_id, finding)
        FROM given g, calo_recon.chain_findings_since(g.users, g.first_new, g.ids)
        WHERE user_id = ANY (g.users[1:1000])) AS index_agrees;
-- the scan reads the table directly, so it is taken only by a caller who may
-- read it: another role gets the query's own error
SET client_min_messages = warning;
DROP ROLE IF EXISTS calo_bulk_no_select;
RESET client_min_messages;
CREATE ROLE calo_bulk_no_select;
GRANT USAGE ON SCHEMA calo_recon TO calo_bulk_no_select;
GRANT EXECUTE ON FUNCTION calo_recon.chain_findings_since(text[], timestamptz[], text[]) TO calo_bulk_no_select;
GRANT SELECT ON given TO calo_bulk_no_select;
SET ROLE calo_bulk_no_select;
\set VERBOSITY sqlstate
SELECT count(*) FROM given g, calo_recon.chain_findings_since(g.users, g.first_new, g.ids);
\set VERBOSITY default
RESET ROLE;
REVOKE ALL ON given FROM calo_bulk_no_select;
REVOKE ALL ON FUNCTION calo_recon.chain_findings_since(text[], timestamptz[], text[]) FROM calo_bulk_no_select;
REVOKE ALL ON SCHEMA calo_recon FROM calo_bulk_no_select;
DROP ROLE calo_bulk_no_select;

-- a stored row after the given ones is re-checked: a row without finding
-- comes back with finding NULL and is_new false
SELECT txn_id, finding, is_new
FROM calo_recon.chain_findings_since(ARRAY['bulk-8'], ARRAY['2024-06-01 00:02+00'::timestamptz], ARRAY['B8-2'])
ORDER BY txn_id;

-- A bulk insert with alerts on (1,100 users in one statement) raises what
-- the rows break, and re-checks stored rows: user ooo has O1 and O3 stored,
-- O3 breaking its chain (old_balance 80, O1 left 90) ...
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('O1', 'ooo', 'DEBIT', 'BHD', 10, 0, 100, 90, '2024-07-01 10:01+00'),
       ('O3', 'ooo', 'DEBIT', 'BHD', 10, 0, 80, 70, '2024-07-01 10:03+00');
SELECT txn_id, alert_kind, detail ->> 'expected' AS expected, resolved_at IS NULL AS open
FROM calo_recon.alerts ORDER BY alert_id;
-- ... then O2 arrives in a statement of 1,100 users: O3 follows O2, and its
-- alert is resolved; the new rows' breaks are raised
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'O2', 'ooo', 'DEBIT', 'BHD', 10, 0, 90, 80, '2024-07-01 10:02+00'
UNION ALL
SELECT format('N%s-%s', u, k), format('new-%s', u), 'DEBIT', 'BHD', 10, 0,
       CASE WHEN u = 3 AND k = 2 THEN 70 ELSE 100 - 10 * (k - 1) END,
       CASE WHEN u = 3 AND k = 2 THEN 60 WHEN u = 1099 AND k = 2 THEN -5 ELSE 90 - 10 * (k - 1) END,
       '2024-07-02'::timestamptz + make_interval(mins => k)
FROM generate_series(1, 1099) AS u, generate_series(1, 2) AS k;
SELECT txn_id, alert_kind, detail ->> 'expected' AS expected, resolved_at IS NULL AS open,
       resolution
FROM calo_recon.alerts ORDER BY txn_id, alert_id;
-- the open alerts of the walk's kinds are what reconcile() finds
SELECT FROM calo_recon.reconcile();
SELECT (SELECT array_agg(row(txn_id, alert_kind) ORDER BY txn_id, alert_kind) FROM calo_recon.alerts
        WHERE resolved_at IS NULL AND alert_kind IN ('arithmetic', 'chain', 'out_of_range')
          AND (user_id LIKE 'new-%' OR user_id = 'ooo'))
     = (SELECT array_agg(row(txn_id, break_kind) ORDER BY txn_id, break_kind) FROM calo_recon.balance_breaks
        WHERE user_id LIKE 'new-%' OR user_id = 'ooo') AS alerts_are_balance_breaks;

-- The amount rule in bulk: the trigger asks calo_recon.amount_rule_hits only
-- about the new rows above the lowest threshold; the alerts of a statement
-- are exactly the view's rows among its rows, for rows at, just above and
-- below each threshold, in currencies with a row of their own and without
-- (EUR takes '*'), with thresholds set apart from the defaults
SELECT currency, threshold FROM calo_recon.set_amount_threshold('KWD', 60);
SELECT currency, threshold FROM calo_recon.set_amount_threshold('*', 500);
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('A-%s-%s', c.code, k), format('amt-%s-%s', c.code, k), 'CREDIT', c.code, c.at + d.delta, 0,
       0, c.at + d.delta, '2024-08-01 10:00+00'
FROM (VALUES ('KWD', 60), ('BHD', 100), ('SAR', 1000), ('EUR', 500)) AS c (code, at),
     LATERAL (VALUES (1, -0.001), (2, 0), (3, 0.001), (4, -59)) AS d (k, delta);
SELECT txn_id, (detail ->> 'threshold')::numeric AS threshold FROM calo_recon.alerts
WHERE alert_kind = 'amount_rule' AND txn_id LIKE 'A-%' ORDER BY txn_id;
SELECT (SELECT array_agg(txn_id ORDER BY txn_id) FROM calo_recon.alerts
        WHERE alert_kind = 'amount_rule' AND txn_id LIKE 'A-%')
     = (SELECT array_agg(txn_id ORDER BY txn_id) FROM calo_recon.amount_rule_hits
        WHERE txn_id LIKE 'A-%') AS alerts_are_amount_rule_hits;
