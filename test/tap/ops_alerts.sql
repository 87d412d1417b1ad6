-- Alert lifecycle (README "Alert lifecycle"): severity per kind, open ->
-- acknowledged -> resolved with who, when and a note, groups, who may.
-- (Two people acknowledging at once: test/specs/alert_acknowledge.spec.)
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(49);

CREATE ROLE calo_tap_ops_operator;
CREATE ROLE calo_tap_ops_analyst;
CREATE ROLE calo_tap_ops_reader;
SELECT count(*) FROM calo_recon.grant_role('calo_tap_ops_operator', 'operator');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_ops_analyst', 'analyst');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_ops_reader', 'reader');

-- severity: one row per kind, and every kind an alert may have is there
SELECT is((SELECT count(*)::int FROM calo_recon.alert_kinds WHERE severity IS NULL), 0, 'every kind has a severity');
SELECT is((SELECT severity FROM calo_recon.alert_kinds WHERE alert_kind = 'chain'), 'critical', 'chain is critical');
SELECT is((SELECT severity FROM calo_recon.alert_kinds WHERE alert_kind = 'amount_rule'), 'info', 'amount_rule is info');
SELECT throws_ok($$INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind) VALUES ('X', 'u', 'no_such_kind')$$,
                 '23503', NULL, 'an alert of an unknown kind is refused (the kinds have one home)');
SELECT throws_ok($$INSERT INTO calo_recon.alert_kinds VALUES ('loud', 'page-everyone', 'insert', 'x')$$,
                 '23514', NULL, 'an unknown severity is refused');

-- two inserting transactions of one user: an overdraft and two amount-rule
-- alerts in the first (one group per user and kind), one in the second
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-AL-1', 'tap-al', 'DEBIT', 'SAR', 5000, 0, 100, -4900, '2025-01-01 00:00+00'),
       ('TAP-AL-2', 'tap-al', 'CREDIT', 'SAR', 6000, 0, -4900, 1100, '2025-01-01 01:00+00');
-- one node keeps the check at insert time: the cluster's queue of bare
-- inserts (alert_queue, for raise_alerts()) stays empty, its trigger disabled
SELECT is((SELECT count(*)::int FROM calo_recon.alert_queue), 0,
          'one node: an insert queues nothing for raise_alerts() (alerted at once)');
SELECT is((SELECT tgenabled::text FROM pg_trigger
           WHERE tgrelid = 'calo_recon.transactions'::regclass AND tgname = 'transactions_alert_queue'), 'D',
          'one node: the queue trigger of a cluster is installed disabled');
SELECT is((SELECT array_agg(alert_kind || ':' || status || ':' || severity ORDER BY alert_id)
           FROM calo_recon.alerts JOIN calo_recon.alert_kinds USING (alert_kind) WHERE user_id = 'tap-al'),
          ARRAY['overdraft:open:warning', 'amount_rule:open:info', 'amount_rule:open:info'],
          'new alerts are open, each with its kind''s severity');
SELECT is((SELECT count(DISTINCT raised_in)::int FROM calo_recon.alerts WHERE user_id = 'tap-al'), 1,
          'alerts of one transaction share raised_in');
SELECT is((SELECT array_agg(alert_kind || ':' || alerts || ':' || open ORDER BY alert_kind)
           FROM calo_recon.alert_groups WHERE user_id = 'tap-al'),
          ARRAY['amount_rule:2:2', 'overdraft:1:1'], 'alert_groups: one group per user and kind within the transaction');
SELECT is((SELECT count(*)::int FROM calo_recon.alerts WHERE user_id = 'tap-al' AND run_id IS NOT NULL), 0,
          'an alert raised outside a run has no run_id');

CREATE TEMP TABLE al AS SELECT alert_id, alert_kind, txn_id FROM calo_recon.alerts WHERE user_id = 'tap-al';
CREATE FUNCTION pg_temp.al(kind text, txn text) RETURNS bigint LANGUAGE sql AS
  $$SELECT alert_id FROM al WHERE alert_kind = kind AND txn_id = txn$$;

-- acknowledge: who (the login role), when (now), the note
SELECT is((SELECT row(status, acknowledged_by, acknowledged_at = now(), acknowledge_note)::text
           FROM calo_recon.acknowledge_alert(pg_temp.al('overdraft', 'TAP-AL-1'), 'looking into it')),
          row('acknowledged', session_user, true, 'looking into it')::text, 'acknowledge_alert stamps who, when and the note');
SELECT is((SELECT status FROM calo_recon.alerts WHERE alert_id = pg_temp.al('overdraft', 'TAP-AL-1')), 'acknowledged',
          'the alert is acknowledged');
SELECT throws_ok(format('SELECT * FROM calo_recon.acknowledge_alert(%s)', pg_temp.al('overdraft', 'TAP-AL-1')),
                 '55000', format('alert %s is already acknowledged', pg_temp.al('overdraft', 'TAP-AL-1')),
                 'acknowledging twice: 55000');
SELECT throws_ok($$SELECT * FROM calo_recon.acknowledge_alert(-1)$$, 'P0002', 'alert -1 does not exist', 'unknown alert: P0002');
SELECT throws_ok($$SELECT * FROM calo_recon.acknowledge_alert(NULL)$$, '22004', NULL, 'NULL alert: 22004');
SELECT throws_ok($$SELECT * FROM calo_recon.resolve_alert(NULL, 'x')$$, '22004', NULL, 'resolve NULL alert: 22004');
SELECT throws_ok(format('SELECT * FROM calo_recon.resolve_alert(%s, NULL)', pg_temp.al('overdraft', 'TAP-AL-1')),
                 '22023', NULL, 'resolving without a note: 22023');
SELECT throws_ok(format('SELECT * FROM calo_recon.resolve_alert(%s, %L)', pg_temp.al('overdraft', 'TAP-AL-1'), '  '),
                 '22023', NULL, 'resolving with a blank note: 22023');
SELECT throws_ok($$SELECT * FROM calo_recon.resolve_alert(-1, 'x')$$, 'P0002', NULL, 'resolve unknown alert: P0002');

-- resolve: an acknowledged alert too; then final
SELECT is((SELECT row(status, resolved_by, resolved_at = now(), resolution, acknowledged_by)::text
           FROM calo_recon.resolve_alert(pg_temp.al('overdraft', 'TAP-AL-1'), 'customer topped up, ticket FIN-1')),
          row('resolved', session_user, true, 'customer topped up, ticket FIN-1', session_user)::text,
          'resolve_alert stamps who, when and why, keeping the acknowledgement');
SELECT throws_ok(format('SELECT * FROM calo_recon.resolve_alert(%s, %L)', pg_temp.al('overdraft', 'TAP-AL-1'), 'again'),
                 '55000', NULL, 'resolving twice: 55000');
SELECT throws_ok(format('SELECT * FROM calo_recon.acknowledge_alert(%s)', pg_temp.al('overdraft', 'TAP-AL-1')),
                 '55000', format('alert %s is already resolved', pg_temp.al('overdraft', 'TAP-AL-1')),
                 'acknowledging a resolved alert: 55000');
SELECT throws_ok(format('UPDATE calo_recon.alerts SET resolution = %L WHERE alert_id = %s', 'rewritten',
                        pg_temp.al('overdraft', 'TAP-AL-1')),
                 '55000', NULL, 'a resolved alert cannot be rewritten by UPDATE');

-- whole group: both amount-rule alerts of the transaction, not the other kind
SELECT is((SELECT count(*)::int FROM calo_recon.acknowledge_alert(pg_temp.al('amount_rule', 'TAP-AL-1'), 'batch', true)),
          2, 'acknowledge_alert(..., true) acknowledges the whole group');
SELECT is((SELECT array_agg(txn_id || ':' || status ORDER BY txn_id) FROM calo_recon.alerts WHERE alert_kind = 'amount_rule' AND user_id = 'tap-al'),
          ARRAY['TAP-AL-1:acknowledged', 'TAP-AL-2:acknowledged'], 'the group is acknowledged');
SELECT is((SELECT count(*)::int FROM calo_recon.resolve_alert(pg_temp.al('amount_rule', 'TAP-AL-2'), 'expected top-ups', true)),
          2, 'resolve_alert(..., true) resolves the whole group');

-- one group predicate (calo_recon.alert_group) for the view and both
-- functions: alerts without a user group together in the view, so
-- whole_group takes all of them too (a row comparison of the columns would
-- have left the NULL user_id out)
INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind)
VALUES ('TAP-AL-G1', NULL, 'conflict'), ('TAP-AL-G2', NULL, 'conflict');
SELECT is((SELECT alerts::int FROM calo_recon.alert_groups g
           WHERE g.user_id IS NULL AND g.alert_kind = 'conflict' AND g.open > 0), 2,
          'alert_groups: two alerts without a user in one group');
SELECT is((SELECT array_agg(txn_id ORDER BY txn_id) FROM calo_recon.acknowledge_alert(
               (SELECT first_alert_id FROM calo_recon.alert_groups g
                WHERE g.user_id IS NULL AND g.alert_kind = 'conflict' AND g.open > 0), 'no user', true)),
          ARRAY['TAP-AL-G1', 'TAP-AL-G2'], 'acknowledge_alert(..., true) takes the group the view shows');
SELECT is((SELECT array_agg(txn_id ORDER BY txn_id) FROM calo_recon.resolve_alert(
               (SELECT max(alert_id) FROM calo_recon.alerts WHERE txn_id = 'TAP-AL-G2'), 'no user', true)),
          ARRAY['TAP-AL-G1', 'TAP-AL-G2'], 'resolve_alert(..., true) resolves the same group');

-- who and when cannot be forged by a direct UPDATE
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-AL-3', 'tap-al-3', 'DEBIT', 'SAR', 10, 0, 5, -5, '2025-01-02 00:00+00');
UPDATE calo_recon.alerts SET acknowledged_at = '2000-01-01', acknowledged_by = 'somebody_else', acknowledge_note = 'forged'
WHERE txn_id = 'TAP-AL-3';
SELECT is((SELECT row(acknowledged_by, acknowledged_at = now())::text FROM calo_recon.alerts WHERE txn_id = 'TAP-AL-3'),
          row(session_user, true)::text, 'an UPDATE cannot sign in someone else''s name or date');
UPDATE calo_recon.alerts SET resolved_by = 'somebody_else' WHERE txn_id = 'TAP-AL-3';
SELECT is((SELECT resolved_by FROM calo_recon.alerts WHERE txn_id = 'TAP-AL-3'), NULL, 'an unresolved alert has no resolver');

-- the reconciliation's own resolution is part of the lifecycle
SET LOCAL calo_recon.alerts = on;
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-AL-4', 'tap-al-4', 'DEBIT', 'SAR', 10, 0, 100, 50, '2025-01-03 00:00+00');
SELECT is((SELECT status FROM calo_recon.alerts WHERE txn_id = 'TAP-AL-4' AND alert_kind = 'arithmetic'), 'open',
          'an arithmetic break raises an open alert');
SELECT calo_recon.acknowledge_alert(alert_id) FROM calo_recon.alerts WHERE txn_id = 'TAP-AL-4' AND alert_kind = 'arithmetic';
SET LOCAL calo_recon.alerts = off;
UPDATE calo_recon.transactions SET new_balance = 90 WHERE txn_id = 'TAP-AL-4';
SELECT count(*) FROM calo_recon.reconcile(ARRAY['tap-al-4']);
SELECT is((SELECT row(status, resolved_by, resolution LIKE 'not supported by reconcile()%')::text
           FROM calo_recon.alerts WHERE txn_id = 'TAP-AL-4' AND alert_kind = 'arithmetic'),
          row('resolved', session_user, true)::text,
          'reconcile() resolves an acknowledged alert it no longer supports: status resolved, stamped');
RESET calo_recon.alerts;

-- a refresh() run names itself on the alerts it raises
SELECT is((SELECT count(*)::int FROM calo_recon.refresh('samples')), 1, 'a run');
SELECT ok((SELECT count(*) > 0 AND bool_and(a.run_id = (SELECT max(run_id) FROM calo_recon.runs))
           FROM calo_recon.alerts a WHERE a.txn_id NOT LIKE 'TAP-AL-%'),
          'alerts raised by a refresh() run carry its run_id');
SELECT is(current_setting('calo_recon_run.run_id', true), '', 'the run''s name does not outlive it');

-- who may: operators acknowledge and resolve; analysts and readers cannot
CREATE TEMP TABLE open_one AS SELECT min(alert_id) AS alert_id FROM calo_recon.alerts WHERE status = 'open';
GRANT SELECT ON open_one TO calo_tap_ops_operator, calo_tap_ops_analyst, calo_tap_ops_reader;
SET ROLE calo_tap_ops_analyst;
SELECT throws_ok($$SELECT * FROM calo_recon.acknowledge_alert((SELECT alert_id FROM open_one))$$, '42501', NULL,
                 'analyst: no acknowledge_alert');
SELECT throws_ok($$SELECT * FROM calo_recon.resolve_alert((SELECT alert_id FROM open_one), 'x')$$, '42501', NULL,
                 'analyst: no resolve_alert');
RESET ROLE;
SET ROLE calo_tap_ops_reader;
SELECT throws_ok($$SELECT * FROM calo_recon.acknowledge_alert((SELECT alert_id FROM open_one))$$, '42501', NULL,
                 'reader: no acknowledge_alert');
SELECT throws_ok($$SELECT * FROM calo_recon.alert_groups$$, '42501', NULL, 'reader: no alert_groups');
RESET ROLE;
SET ROLE calo_tap_ops_operator;
SELECT is((SELECT status FROM calo_recon.acknowledge_alert((SELECT alert_id FROM open_one), 'on it')), 'acknowledged',
          'operator: acknowledge_alert');
SELECT is((SELECT status FROM calo_recon.resolve_alert((SELECT alert_id FROM open_one), 'handled')), 'resolved',
          'operator: resolve_alert');
SELECT ok((SELECT count(*) > 0 FROM calo_recon.alert_groups), 'operator: alert_groups');
RESET ROLE;
SELECT ok(NOT has_function_privilege('public', 'calo_recon.acknowledge_alert(bigint, text, boolean)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'calo_recon.resolve_alert(bigint, text, boolean)', 'EXECUTE'),
          'PUBLIC may not acknowledge or resolve');

-- a backfill pages nobody (issue 11 item 1): with calo_recon.alert_backfill_age
-- set, transactions logged before now() minus it raise no alert when they are
-- inserted, by any path; their findings are still recorded
SET LOCAL calo_recon.alert_backfill_age = '30d';
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-AL-BF-OLD', 'tap-al-bf', 'DEBIT', 'SAR', 5000, 0, 100, -4800, now() - interval '31 days'),
       ('TAP-AL-BF-NEW', 'tap-al-bf', 'DEBIT', 'SAR', 5000, 0, -4800, -9000, now());
SELECT is((SELECT array_agg(txn_id || ':' || alert_kind ORDER BY txn_id, alert_id) FROM calo_recon.alerts WHERE user_id = 'tap-al-bf'),
          ARRAY['TAP-AL-BF-NEW:arithmetic', 'TAP-AL-BF-NEW:overdraft', 'TAP-AL-BF-NEW:amount_rule'],
          'alert_backfill_age: an insert alerts on the new row only, not on the one logged before it');
SELECT is((SELECT count(*)::int FROM calo_recon.ingest_log($log$2024-02-01T10:00:00.020Z 2024-02-01T10:00:00.020Z	b1a1e5e1-0000-4000-8000-0000000000b1	INFO	Start syncing the balance {
  transaction: {
    id: '01HQTAPALBFALBFALBFALBF001',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: 'tap-al-bf-log',
    paymentBalance: 90,
    updatePaymentBalance: true,
    currency: 'BHD',
    amount: 5000,
    vat: 0,
    oldBalance: 100,
    newBalance: -3000
  }
}
$log$, 'tap-al-backfill') WHERE transactions = 1), 1, 'alert_backfill_age: ingest_log stores a transaction of 2024');
SELECT is((SELECT count(*)::int FROM calo_recon.alerts WHERE user_id = 'tap-al-bf-log'), 0,
          'alert_backfill_age: ... without an alert (arithmetic, overdraft and amount rule all quiet)');
SELECT is((SELECT array_agg(finding ORDER BY finding) FROM calo_recon.reconciliation_findings
           WHERE txn_id IN ('TAP-AL-BF-OLD', '01HQTAPALBFALBFALBFALBF001')),
          ARRAY['arithmetic', 'arithmetic'], 'alert_backfill_age: their findings are recorded all the same');
RESET calo_recon.alert_backfill_age;

SELECT * FROM finish();
ROLLBACK;
