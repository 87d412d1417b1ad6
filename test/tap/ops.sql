-- refresh(), runs, the reconcile queue, and the install-wide promises of the
-- ops area: SECURITY DEFINER only for the listed entry points, pinned
-- search_path, nothing for PUBLIC.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(57);

-- install-wide promises
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
           JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'calo_recon'
           WHERE p.prosecdef AND NOT (p.proname IN (SELECT routine_name FROM calo_recon.definer_entry_points)
                                      AND p.proconfig = ARRAY['search_path=pg_catalog, pg_temp'])),
          0, 'no calo_recon function is SECURITY DEFINER but the listed entry points, each with search_path pinned');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
           JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'calo_recon'
           JOIN pg_language l ON l.oid = p.prolang
           WHERE l.lanname IN ('sql', 'plpgsql') AND p.prokind <> 'p'
             AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
          0, 'every SQL and PL/pgSQL function pins search_path = pg_catalog, pg_temp');
-- a procedure that COMMITs cannot have a SET clause: it qualifies every name instead
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
           JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'calo_recon' WHERE p.prokind = 'p'),
          ARRAY['calo_recon.refresh_job(text)'], 'the only procedure is refresh_job(), which commits');
SELECT ok(NOT has_function_privilege('public', 'calo_recon.refresh(text)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'calo_recon.export_reports(text, timestamptz, timestamptz)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'calo_recon.export_workbook(text, timestamptz, timestamptz)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'calo_recon.grant_role(name, text)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'calo_recon.refresh_job(text)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'calo_recon.lock_writer()', 'EXECUTE')
          AND NOT has_function_privilege('public', 'calo_recon.lock_user_chains(text[])', 'EXECUTE'),
          'PUBLIC may not execute the ops functions');
SELECT ok(NOT has_schema_privilege('public', 'calo_recon', 'USAGE'), 'PUBLIC has no USAGE on the schema');
SELECT ok((SELECT bool_and(c.oid = ANY (e.extconfig))
           FROM pg_extension e, pg_class c
           WHERE e.extname = 'calo_recon'
             AND c.oid IN ('calo_recon.runs'::regclass, 'calo_recon.runs_run_id_seq'::regclass,
                           'calo_recon.alerts'::regclass, 'calo_recon.alerts_alert_id_seq'::regclass)),
          'runs and alerts are kept by pg_dump');
SELECT ok(NOT (SELECT 'calo_recon.pending_reconcile'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'calo_recon'),
          'the reconcile queue is not dumped');
SELECT has_table('calo_recon', 'runs', 'runs table');
SELECT columns_are('calo_recon', 'runs',
    ARRAY['run_id', 'started_at', 'finished_at', 'status', 'folder', 'files', 'skipped_files', 'events',
          'transactions', 'reconciled_users', 'breaks', 'scored', 'error', 'backend_pid',
          'error_detail', 'error_hint', 'skipped_since', 'duration', 'started_by', 'retrained'], 'runs columns');

SELECT throws_ok($$SELECT calo_recon.check_last_refresh()$$, 'P0002', NULL, 'check_last_refresh() without a run');

-- a first refresh ingests the samples and reconciles them, once: the queue
-- is the one record of who needs reconciling (counted by the statistics of
-- this transaction: reconcile() calls and findings written)
SET LOCAL track_functions = 'all';
CREATE TEMP VIEW reconcile_work AS
SELECT (SELECT coalesce(sum(f.calls), 0) FROM pg_stat_xact_user_functions f
        WHERE f.funcid = 'calo_recon.reconcile(text[])'::regprocedure) AS reconciles,
       (SELECT t.n_tup_ins FROM pg_stat_xact_user_tables t
        WHERE t.relid = 'calo_recon.reconciliation_findings'::regclass) AS findings_written;
CREATE TEMP TABLE work_before AS SELECT * FROM reconcile_work;
CREATE TEMP TABLE first_run AS SELECT * FROM calo_recon.refresh('samples');
SELECT is((SELECT w.reconciles - b.reconciles FROM reconcile_work w, work_before b), 1::numeric,
          'a run calls reconcile() once (not again for the users its ingest reconciled)');
SELECT is((SELECT w.findings_written - b.findings_written FROM reconcile_work w, work_before b),
          (SELECT count(*) FROM calo_recon.reconciliation_findings),
          'a run writes each finding once');
SELECT is((SELECT status FROM first_run), 'succeeded', 'first refresh succeeds');
SELECT ok((SELECT files > 0 AND transactions > 0 AND events > 0 FROM first_run), 'first refresh ingests the sample files');
SELECT is((SELECT transactions FROM first_run), (SELECT count(*) FROM calo_recon.transactions),
          'it counts every stored transaction');
SELECT ok((SELECT reconciled_users > 0 FROM first_run), 'it reconciles the users with new rows');
SELECT is((SELECT breaks FROM first_run),
          (SELECT count(*) FROM calo_recon.reconciliation_findings WHERE finding IN ('arithmetic', 'chain')),
          'breaks counts the arithmetic and chain findings');
SELECT is((SELECT count(*)::int FROM calo_recon.pending_reconcile), 0, 'the reconcile queue is empty after a run');
SELECT is((SELECT scored FROM first_run), 0::bigint, 'nothing scored without an active model');
SELECT is((SELECT row(r.status, r.files, r.transactions, r.error) FROM calo_recon.runs r JOIN first_run f USING (run_id))::text,
          (SELECT row(status, files, transactions, error) FROM first_run)::text, 'the run row is recorded as returned');
SELECT ok((SELECT finished_at >= started_at FROM first_run), 'finished after it started');

-- idempotent: nothing new, nothing done
CREATE TEMP TABLE second_run AS SELECT * FROM calo_recon.refresh('samples');
SELECT is((SELECT row(status, files, transactions, reconciled_users)::text FROM second_run),
          '(succeeded,0,0,0)', 'a second refresh finds nothing new');

-- a row inserted by any path is queued and reconciled by the next run
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-OPS-1', 'tap-ops-user', 'CREDIT', 'SAR', 10, 0, 0, 11, '2024-06-01 00:00+00');
SELECT is((SELECT user_id FROM calo_recon.pending_reconcile), 'tap-ops-user', 'the user of an inserted row is queued');
-- a queued user gets another entry for every inserting statement (D1: an
-- entry is never shared with another transaction, which refresh() could
-- delete before this one commits)
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-OPS-1b', 'tap-ops-user', 'CREDIT', 'SAR', 1, 0, 11, 12, '2024-06-01 00:01+00'),
       ('TAP-OPS-1c', 'tap-ops-user', 'CREDIT', 'SAR', 1, 0, 12, 13, '2024-06-01 00:02+00');
SELECT is((SELECT count(*)::int FROM calo_recon.pending_reconcile WHERE user_id = 'tap-ops-user'), 2,
          'one entry per statement and user');
CREATE TEMP TABLE third_run AS SELECT * FROM calo_recon.refresh('samples');
SELECT is((SELECT row(status, reconciled_users, breaks)::text FROM third_run), '(succeeded,1,1)',
          'the next run reconciles that user and counts its break');
SELECT is((SELECT finding FROM calo_recon.reconciliation_findings WHERE txn_id = 'TAP-OPS-1'), 'arithmetic',
          'the break is in the findings');

-- every entry point drains what it sees of the queue, once: reconcile()
-- the entries of the users it reconciles
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-OPS-R1', 'tap-ops-r', 'CREDIT', 'SAR', 10, 0, 0, 10, '2024-06-01 00:00+00');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-OPS-S1', 'tap-ops-s', 'CREDIT', 'SAR', 10, 0, 0, 10, '2024-06-01 00:00+00');
SELECT is((SELECT users FROM calo_recon.reconcile(ARRAY['tap-ops-r'])), 1::bigint, 'reconcile(users) reconciles them');
SELECT is((SELECT array_agg(user_id) FROM calo_recon.pending_reconcile), ARRAY['tap-ops-s'],
          'reconcile(users) drains the entries of those users, and only those');
SELECT is((SELECT users FROM calo_recon.reconcile()), (SELECT count(DISTINCT user_id) FROM calo_recon.transactions),
          'reconcile() reconciles everyone');
SELECT is((SELECT count(*)::int FROM calo_recon.pending_reconcile), 0, 'reconcile() drains every entry');
SELECT is((SELECT reconciled_users FROM calo_recon.refresh('samples')), 0::bigint,
          'so the next run reconciles nobody again');
-- ingest_log: its own users and every user queued before it
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-OPS-Q1', 'tap-ops-q', 'CREDIT', 'SAR', 10, 0, 0, 11, '2024-06-01 00:00+00');
SELECT is((SELECT transactions FROM calo_recon.ingest_log($log$2024-02-01T10:00:00.020Z 2024-02-01T10:00:00.020Z	b1a1e5e1-0000-4000-8000-0000000000a1	INFO	Start syncing the balance {
  transaction: {
    id: '01HQTAPOPSOPSOPSOPSOPS0001',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: 'tap-ops-log',
    paymentBalance: 90,
    updatePaymentBalance: true,
    currency: 'BHD',
    amount: 10,
    vat: 0,
    oldBalance: 100,
    newBalance: 91
  }
}
$log$, 'tap-ops-inline')), 1, 'ingest_log stores a transaction');
SELECT is((SELECT count(*)::int FROM calo_recon.pending_reconcile), 0,
          'ingest_log drains the queue: its own user and the one queued before');
SELECT is((SELECT array_agg(txn_id ORDER BY txn_id) FROM calo_recon.reconciliation_findings
           WHERE user_id IN ('tap-ops-q', 'tap-ops-log')),
          ARRAY['01HQTAPOPSOPSOPSOPSOPS0001', 'TAP-OPS-Q1'], 'and has reconciled both');
-- ingest_file likewise
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-OPS-F1', 'tap-ops-f', 'CREDIT', 'SAR', 10, 0, 0, 11, '2024-06-01 00:00+00');
SELECT ok((SELECT transactions > 0 FROM calo_recon.ingest_file('bad/walk/b_second.log')), 'ingest_file stores transactions');
SELECT is((SELECT count(*)::int FROM calo_recon.pending_reconcile), 0,
          'ingest_file drains the queue: its own users and the one queued before');
SELECT is((SELECT finding FROM calo_recon.reconciliation_findings WHERE txn_id = 'TAP-OPS-F1'), 'arithmetic',
          'and has reconciled the user queued before');
SELECT is((SELECT reconciled_users FROM calo_recon.refresh('samples')), 0::bigint,
          'the next run has nobody left to reconcile');

-- with an active model, new rows are scored once
SELECT lives_ok($$SELECT calo_recon.train_model('tap-ops', 0.01, 50, 64, 5)$$, 'a model is trained');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('TAP-OPS-2', 'tap-ops-user', 'CREDIT', 'SAR', 1, 0, 11, 12, '2024-06-02 00:00+00');
SELECT is((SELECT scored FROM calo_recon.refresh('samples')), 1::bigint, 'the next run scores only the new row');

-- a failing run is recorded, and what it did is rolled back
CREATE TEMP TABLE failed_run AS SELECT * FROM calo_recon.refresh('no-such-folder');
SELECT is((SELECT status FROM failed_run), 'failed', 'a refresh of a missing folder fails');
SELECT ok((SELECT error ~ '^[0-9A-Z]{5}: ' FROM failed_run), 'with the SQLSTATE and message');
SELECT is((SELECT r.status FROM calo_recon.runs r JOIN failed_run f USING (run_id)), 'failed', 'the failed run is recorded');
SELECT throws_ok($$SELECT calo_recon.check_last_refresh()$$, '38000', NULL,
                 'check_last_refresh() fails after a failed run (what pg_cron sees)');
SELECT is((SELECT status FROM calo_recon.refresh('samples')), 'succeeded', 'a good run again');
SELECT is((SELECT status FROM calo_recon.check_last_refresh()), 'succeeded', 'check_last_refresh() returns it');
SELECT throws_ok($$SELECT calo_recon.refresh(NULL)$$, '22004', NULL, 'refresh(NULL) is refused');

-- S5: a run whose row was committed as running and whose call ended without
-- an outcome (refresh_job() in a terminated session): check_last_refresh()
-- reports it, and the next run marks it failed
INSERT INTO calo_recon.runs (run_id, status, folder, backend_pid) VALUES (900001, 'running', 'samples', pg_backend_pid());
SELECT throws_ok($$SELECT calo_recon.check_last_refresh()$$, '38000', 'calo_recon.refresh() run 900001 did not finish',
                 'check_last_refresh() reports a run of this session that did not finish');
INSERT INTO calo_recon.runs (run_id, status, folder, backend_pid) VALUES (900002, 'running', 'samples', 0);
SELECT is((SELECT status FROM calo_recon.refresh('samples')), 'succeeded', 'a run after them succeeds');
SELECT is((SELECT array_agg(row(run_id, status, error ~ '^did not finish: process [0-9]+ stopped running it')::text ORDER BY run_id)
           FROM calo_recon.runs WHERE run_id IN (900001, 900002)),
          ARRAY['(900001,failed,t)', '(900002,failed,t)'], 'and marks them failed, naming their process');
SELECT throws_ok($$CALL calo_recon.refresh_job('samples')$$, '2D000', NULL,
                 'refresh_job() commits, so it cannot run inside a transaction block');
SELECT throws_ok($$CALL calo_recon.refresh_job(NULL)$$, '22004', NULL, 'refresh_job(NULL) is refused');
SELECT throws_ok($$SELECT calo_recon.refresh_work((SELECT run_id FROM first_run))$$, '55000', NULL,
                 'refresh_work() does not redo a finished run');
-- refresh_finish(), an entry point operators run as the owner, finishes only
-- a run this session started: no one records another session's run
INSERT INTO calo_recon.runs (run_id, status, folder, backend_pid) VALUES (900003, 'running', 'samples', 0);
SELECT throws_ok($$SELECT calo_recon.refresh_finish(900003)$$, '55000',
                 'calo_recon.runs has no run 900003 in status running started by this session',
                 'refresh_finish() refuses a run another session started');
SELECT throws_ok($$SELECT calo_recon.refresh_finish((SELECT run_id FROM first_run))$$, '55000', NULL,
                 'refresh_finish() refuses a finished run');
SELECT is((SELECT status FROM calo_recon.refresh_finish((calo_recon.refresh_start('samples')).run_id)), 'succeeded',
          'refresh_start() then refresh_finish(): a run');
DELETE FROM calo_recon.runs WHERE run_id = 900003;

-- (a cancelled run: test/specs/refresh_cancel.spec; a skipped run naming the
-- holder: test/specs/refresh_lock_holder.spec)

-- P4: the notification carries only what every role may see
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(calo_recon.alert_payload(
              jsonb_populate_record(NULL::calo_recon.alerts,
                  '{"alert_id": 7, "txn_id": "T", "user_id": "secret-user", "alert_kind": "overdraft",
                    "detail": {"new_balance": -40}, "acknowledge_note": "secret note"}'))::jsonb) k),
          ARRAY['alert_id', 'alert_kind'], 'the alert payload is the alert id and kind only');

SELECT * FROM finish();
ROLLBACK;
