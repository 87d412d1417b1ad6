-- After refresh() (reconcile() of the queued users), the open chain and
-- arithmetic alerts are the chain and arithmetic breaks of balance_breaks,
-- whatever changed the transactions: an UPDATE, a DELETE, an upsert, a
-- delete and re-insert in one transaction, TRUNCATE, a currency's minor unit
-- (README "Real-time alerts").  reconcile() raises the alerts its findings
-- call for that no open alert carries, with the insert-time check's NOTIFY
-- (test/integration/alerts.sh), and resolves the others saying why; the
-- backfill age and calo_recon.alerts off hold as at insert time.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- open chain/arithmetic alerts against the breaks, both ways: 0 and 0
CREATE FUNCTION pg_temp.mismatch(OUT alerts_without_break bigint, OUT breaks_without_alert bigint)
LANGUAGE sql AS $$
WITH alerted AS (
    SELECT a.txn_id, a.user_id, a.alert_kind AS kind FROM calo_recon.alerts a
    WHERE a.alert_kind IN ('chain', 'arithmetic') AND a.resolved_at IS NULL),
broken AS (
    SELECT b.txn_id, b.user_id, b.break_kind AS kind FROM calo_recon.balance_breaks b
    WHERE b.break_kind IN ('chain', 'arithmetic'))
SELECT (SELECT count(*) FROM (SELECT * FROM alerted EXCEPT SELECT * FROM broken) x),
       (SELECT count(*) FROM (SELECT * FROM broken EXCEPT SELECT * FROM alerted) x)
$$;
-- the chain and arithmetic alerts of some users, in order
CREATE FUNCTION pg_temp.alerts_of(users text[])
RETURNS TABLE (txn_id text, user_id text, kind text, status text, actual text, tolerance text, resolution text)
LANGUAGE sql AS $$
SELECT a.txn_id, a.user_id, a.alert_kind, a.status, a.detail ->> 'actual', a.detail ->> 'tolerance',
       regexp_replace(a.resolution, '^(not supported by reconcile\(\)) at .*?: ', '\1: ')
FROM calo_recon.alerts a
WHERE a.alert_kind IN ('chain', 'arithmetic') AND a.user_id = ANY (users)
ORDER BY a.alert_id
$$;
-- refresh() as a scheduler runs it: the sample export, then nothing new
CREATE FUNCTION pg_temp.refresh() RETURNS text
LANGUAGE sql AS $$ SELECT status FROM calo_recon.refresh('samples/balance-sync-logs') $$;
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.mismatch();

-- 1. A DELETE: D3 now follows D1, a chain break without an insert
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('D1', 'del', 'DEBIT', 'SAR', 10, 0, 100, 90, '2024-01-01 10:00+00'),
  ('D2', 'del', 'DEBIT', 'SAR', 10, 0, 90, 80, '2024-01-01 10:01+00'),
  ('D3', 'del', 'DEBIT', 'SAR', 10, 0, 80, 70, '2024-01-01 10:02+00');
SELECT pg_temp.refresh();
DELETE FROM calo_recon.transactions WHERE txn_id = 'D2';
SELECT pg_temp.refresh();  -- with one NOTIFY (test/integration/alerts.sh)
SELECT * FROM pg_temp.alerts_of('{del}');
SELECT * FROM pg_temp.mismatch();
-- D2 back: the break is gone, its alert resolved
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('D2', 'del', 'DEBIT', 'SAR', 10, 0, 90, 80, '2024-01-01 10:01+00');
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{del}');
SELECT * FROM pg_temp.mismatch();

-- 2. An UPDATE of the amount: an arithmetic break; of the user: the alert
-- moves with the transaction
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('U1', 'upd', 'DEBIT', 'SAR', 10, 0, 100, 90, '2024-01-01 10:00+00'),
  ('U2', 'upd', 'DEBIT', 'SAR', 10, 0, 90, 80, '2024-01-01 10:01+00');
SELECT pg_temp.refresh();
UPDATE calo_recon.transactions SET amount = 12 WHERE txn_id = 'U2';
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{upd,upd-moved}');
UPDATE calo_recon.transactions SET user_id = 'upd-moved' WHERE txn_id = 'U2';
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{upd,upd-moved}');
SELECT * FROM pg_temp.mismatch();
-- the old_balance of a break changes: the same expected value, another
-- actual and difference: the alert with the stale detail is resolved and a
-- new one raised
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('V1', 'val', 'DEBIT', 'SAR', 10, 0, 100, 90, '2024-01-01 10:00+00'),
  ('V2', 'val', 'DEBIT', 'SAR', 10, 0, 95, 85, '2024-01-01 10:01+00');
SELECT pg_temp.refresh();
UPDATE calo_recon.transactions SET old_balance = 97, new_balance = 87 WHERE txn_id = 'V2';
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{val}');
SELECT * FROM pg_temp.mismatch();

-- 3. An upsert that rewrites a row into a break
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('P1', 'ups', 'DEBIT', 'SAR', 10, 0, 100, 90, '2024-01-01 10:00+00'),
  ('P2', 'ups', 'DEBIT', 'SAR', 10, 0, 90, 80, '2024-01-01 10:01+00');
SELECT pg_temp.refresh();
INSERT INTO calo_recon.transactions AS t (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('P2', 'ups', 'DEBIT', 'SAR', 10, 0, 91, 81, '2024-01-01 10:01+00')
ON CONFLICT (txn_id) DO UPDATE SET old_balance = excluded.old_balance, new_balance = excluded.new_balance;
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{ups}');
SELECT * FROM pg_temp.mismatch();

-- 4. A delete and re-insert in one transaction, under another user and with
-- another old_balance: the stale open alert does not swallow the new break
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('H1', 'hid', 'DEBIT', 'SAR', 10, 0, 100, 90, '2024-01-01 10:00+00'),
  ('H2', 'hid', 'DEBIT', 'SAR', 10, 0, 95, 85, '2024-01-01 10:01+00'),
  ('H0', 'hid-2', 'DEBIT', 'SAR', 10, 0, 50, 40, '2024-01-01 09:00+00');
SELECT pg_temp.refresh();
BEGIN;
DELETE FROM calo_recon.transactions WHERE txn_id = 'H2';
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('H2', 'hid-2', 'DEBIT', 'SAR', 10, 0, 45, 35, '2024-01-01 10:01+00');
COMMIT;
-- at once, the insert-time check: the stale alert is resolved, the new
-- break raised
SELECT * FROM pg_temp.alerts_of('{hid,hid-2}');
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{hid,hid-2}');
SELECT * FROM pg_temp.mismatch();

-- 5. TRUNCATE: no finding, no open alert, no report row of the users is left
SELECT pg_temp.refresh();
CREATE TEMP TABLE kept AS SELECT * FROM calo_recon.transactions;
TRUNCATE calo_recon.transactions;
SELECT pg_temp.refresh();
SELECT (SELECT count(*) FROM calo_recon.reconciliation_findings) AS findings,
       (SELECT count(*) FROM calo_recon.balance_breaks) AS breaks,
       (SELECT count(*) FROM calo_recon.user_summary WHERE transactions > 0) AS summary_rows,
       (SELECT count(*) FROM calo_recon.alerts
        WHERE resolved_at IS NULL AND alert_kind IN (SELECT k.alert_kind FROM calo_recon.alert_kinds k WHERE k.raised_by = 'insert')) AS open_alerts;
SELECT alert_kind, resolution, count(*) FROM calo_recon.alerts
WHERE resolution LIKE '%TRUNCATE%' GROUP BY 1, 2 ORDER BY 1;
SELECT * FROM pg_temp.mismatch();
-- 6. A currency's minor unit: its users are queued, and their breaks
-- follow the new tolerance.  M2 is 0.004 off: drift in SAR (2 decimals), a
-- chain break with 3
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('M1', 'minor', 'DEBIT', 'SAR', 10, 0, 100, 90, '2024-01-01 10:00+00'),
  ('M2', 'minor', 'DEBIT', 'SAR', 10, 0, 90.004, 80.004, '2024-01-01 10:01+00');
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{minor}');
UPDATE calo_recon.currencies SET minor_unit = 3 WHERE code = 'SAR';
SELECT DISTINCT user_id FROM calo_recon.pending_reconcile WHERE user_id = 'minor';
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{minor}');
SELECT * FROM pg_temp.mismatch();
UPDATE calo_recon.currencies SET minor_unit = 2 WHERE code = 'SAR';
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{minor}');
SELECT * FROM pg_temp.mismatch();

-- 7. The backfill age: rows logged before now() minus it raise no alert at
-- reconcile() either
SET calo_recon.alert_backfill_age = '30d';
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('B1', 'back', 'DEBIT', 'SAR', 10, 0, 100, 90, '2024-01-01 10:00+00'),
  ('B2', 'back', 'DEBIT', 'SAR', 10, 0, 90, 80, '2024-01-01 10:01+00'),
  ('B3', 'back', 'DEBIT', 'SAR', 10, 0, 80, 70, '2024-01-01 10:02+00'),
  ('B4', 'back', 'DEBIT', 'SAR', 10, 0, 70, 60, now() - interval '30 minutes');
SELECT pg_temp.refresh();
DELETE FROM calo_recon.transactions WHERE txn_id = 'B2';
UPDATE calo_recon.transactions SET old_balance = 75, new_balance = 65 WHERE txn_id = 'B4';
SELECT pg_temp.refresh();
RESET calo_recon.alert_backfill_age;
SELECT txn_id, kind, status FROM pg_temp.alerts_of('{back}');
SELECT txn_id, break_kind FROM calo_recon.balance_breaks WHERE user_id = 'back' ORDER BY txn_id;
DELETE FROM calo_recon.transactions WHERE user_id = 'back';
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.mismatch();

-- 8. The rows truncated above back, with alerts off (a reload is not new): the
-- findings come back, no alert
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions SELECT * FROM kept WHERE txn_id NOT IN (SELECT txn_id FROM calo_recon.transactions);
SELECT pg_temp.refresh();
RESET calo_recon.alerts;
SELECT count(*) > 0 AS breaks_back, (SELECT count(*) FROM calo_recon.alerts WHERE resolved_at IS NULL AND alert_kind IN ('chain', 'arithmetic')) AS open_break_alerts
FROM calo_recon.balance_breaks;
-- a finding reconcile() recorded with alerts off stays quiet afterwards,
-- and so does one resolved by hand: only what changes raises again
SELECT pg_temp.refresh();
SELECT count(*) AS open_break_alerts FROM calo_recon.alerts WHERE resolved_at IS NULL AND alert_kind IN ('chain', 'arithmetic');
SELECT users FROM calo_recon.reconcile();
SELECT count(*) AS open_break_alerts FROM calo_recon.alerts WHERE resolved_at IS NULL AND alert_kind IN ('chain', 'arithmetic');
UPDATE calo_recon.transactions SET old_balance = 96, new_balance = 86 WHERE txn_id = 'V2';
SELECT pg_temp.refresh();
SELECT * FROM pg_temp.alerts_of('{val}') WHERE status = 'open';
SELECT alert_id AS v2_alert FROM calo_recon.alerts WHERE txn_id = 'V2' AND resolved_at IS NULL \gset
SELECT status FROM calo_recon.resolve_alert(:v2_alert, 'checked with payments');
SELECT users FROM calo_recon.reconcile(ARRAY['val']);
SELECT * FROM pg_temp.alerts_of('{val}') WHERE status <> 'resolved';


-- 9. The one-row alerts (overdraft, amount rule) of a deleted transaction, or
-- of one moved to another user, are resolved by the reconciliation of the
-- user, saying why; those of a row still stored stay open
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
  ('G1', 'gone', 'DEBIT', 'SAR', 1200, 0, 100, -1100, '2024-01-02 10:00+00'),
  ('G2', 'gone', 'CREDIT', 'SAR', 1095, 0, -1100, -5, '2024-01-02 10:01+00'),
  ('G3', 'gone', 'DEBIT', 'SAR', 10, 0, -5, -15, '2024-01-02 10:02+00');
SELECT txn_id, alert_kind FROM calo_recon.alerts
WHERE user_id = 'gone' AND alert_kind NOT IN ('chain', 'arithmetic') AND resolved_at IS NULL ORDER BY 1, 2;
DELETE FROM calo_recon.transactions WHERE txn_id = 'G1';
UPDATE calo_recon.transactions SET user_id = 'gone-elsewhere' WHERE txn_id = 'G3';
SELECT pg_temp.refresh();
SELECT txn_id, alert_kind, status, regexp_replace(resolution, '^(not supported by reconcile\(\)) at .*?: ', '\1: ') AS resolution
FROM calo_recon.alerts
WHERE user_id = 'gone' AND alert_kind NOT IN ('chain', 'arithmetic') ORDER BY 1, 2;
