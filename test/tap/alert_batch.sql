-- pgTAP: ingest_file checks the alerts of what it stores once, at the end of
-- the call (src/glue/alert_batch_glue.c): the alert trigger queues the rows
-- while the call runs, the call checks them through alert_queued(), and the
-- session's inserts are checked at once again afterwards, also after an
-- ingest_file that failed.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(10);

SELECT is(calo_recon.alert_check_deferred(), false, 'outside ingest_file the trigger checks the rows itself');

-- the sample export, a folder of two logs, in one call
SELECT is((SELECT sum(transactions)::int FROM calo_recon.ingest_file('samples')), 14,
          'the samples are stored');
SELECT is((SELECT count(*)::int FROM calo_recon.alert_queue), 0, 'the call checked every row it queued');
SELECT set_eq(
  $$SELECT a.txn_id, a.alert_kind FROM calo_recon.alerts a
    WHERE a.alert_kind IN ('chain', 'arithmetic') AND a.resolved_at IS NULL$$,
  $$SELECT b.txn_id, b.break_kind FROM calo_recon.balance_breaks b
    WHERE b.break_kind IN ('chain', 'arithmetic')$$,
  'its open chain and arithmetic alerts are the breaks reconcile() finds');
SELECT is((SELECT count(*)::int FROM calo_recon.alerts a WHERE a.resolved_at IS NOT NULL), 0,
          'no alert of the call was raised and then resolved: every row met its predecessor at once');
SELECT cmp_ok((SELECT count(*)::int FROM calo_recon.alerts a WHERE a.alert_kind = 'chain'), '>', 0,
              'the samples do raise chain alerts');

-- an ingest_file that fails leaves the trigger checking rows itself
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_file('bad/walk/e_corrupt.gz')$$, '22P04',
                 NULL, 'a named corrupt file fails the call');
SELECT is(calo_recon.alert_check_deferred(), false, 'after the failed call the trigger checks the rows itself');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, source, action, currency, amount, vat,
                                     old_balance, new_balance, logged_at)
VALUES ('TAP-BATCH-1', 'tap-batch-user', 'DEBIT', 'MANUAL_DEDUCTION', 'DELIVERY_DEDUCTION', 'SAR', 10, 0,
        100, 80, '2024-03-01 10:00+00');
SELECT is((SELECT pg_catalog.array_agg(a.alert_kind ORDER BY a.alert_kind) FROM calo_recon.alerts a
           WHERE a.txn_id = 'TAP-BATCH-1'),
          ARRAY['arithmetic'], 'an INSERT after it is alerted by its own statement');

-- with alerts off nothing is queued or checked
SET LOCAL calo_recon.alerts = off;
SELECT calo_recon.ingest_file('bad/walk');
SELECT is((SELECT count(*)::int FROM calo_recon.alert_queue), 0, 'alerts off: nothing queued');

SELECT * FROM finish();
ROLLBACK;
