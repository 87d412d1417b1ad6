-- Access control per role kind (README "Roles"), and a hostile search_path
-- that changes nothing computed.  Roles are created inside the test's
-- transaction and vanish with its ROLLBACK.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(97);

CREATE ROLE calo_tap_nobody;
CREATE ROLE calo_tap_reader;
CREATE ROLE calo_tap_analyst;
CREATE ROLE calo_tap_operator;

SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'TAP-ROLE-' || i, 'tap-role-' || (i % 5), 'DEBIT', 'SAR', 10 + i % 7, 0, 100, 90 - i % 7,
       timestamptz '2024-07-01 00:00+00' + i * interval '1 hour'
FROM generate_series(1, 80) i;
SELECT calo_recon.reconcile();

SELECT ok((SELECT count(*) > 0 FROM calo_recon.grant_role('calo_tap_reader', 'reader')), 'grant_role reader');
SELECT ok((SELECT count(*) > 0 FROM calo_recon.grant_role('calo_tap_analyst', 'analyst')), 'grant_role analyst');
SELECT ok((SELECT count(*) > 0 FROM calo_recon.grant_role('calo_tap_operator', 'operator')), 'grant_role operator');
SELECT throws_ok($$SELECT calo_recon.grant_role('calo_tap_reader', 'admin')$$, '22023', NULL, 'unknown kind refused');
SELECT throws_ok($$SELECT calo_recon.grant_role('calo_tap_no_such_role', 'reader')$$, '42704', NULL, 'unknown role refused');

-- a role with no grant (what PUBLIC gets) reads and writes nothing
SET ROLE calo_tap_nobody;
SELECT throws_ok($$SELECT count(*) FROM calo_recon.transactions$$, '42501', NULL, 'nobody: no transactions');
SELECT throws_ok($$SELECT count(*) FROM calo_recon.balance_breaks$$, '42501', NULL, 'nobody: no views');
SELECT throws_ok($$SELECT calo_recon.refresh()$$, '42501', NULL, 'nobody: no refresh');
SELECT throws_ok($$SELECT calo_recon.reconcile()$$, '42501', NULL, 'nobody: no reconcile');
SELECT throws_ok($$SELECT * FROM calo_recon.ingest_log('x')$$, '42501', NULL, 'nobody: no ingest');
RESET ROLE;

-- reader: SELECT on the BI views, nothing else
SET ROLE calo_tap_reader;
SELECT lives_ok($$SELECT count(*) FROM calo_recon.transactions$$, 'reader: transactions');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.overdrafts$$, 'reader: overdrafts');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.overdraft_episodes$$, 'reader: overdraft_episodes');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.anomalies$$, 'reader: anomalies');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.discrepancies$$, 'reader: discrepancies');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.balance_breaks$$, 'reader: balance_breaks');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.precision_drift$$, 'reader: precision_drift');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.user_summary$$, 'reader: user_summary');
SELECT throws_ok($$SELECT count(*) FROM calo_recon.log_events$$, '42501', NULL, 'reader: no raw log text');
SELECT throws_ok($$SELECT count(*) FROM calo_recon.quarantine$$, '42501', NULL, 'reader: no quarantine');
SELECT throws_ok($$DELETE FROM calo_recon.transactions$$, '42501', NULL, 'reader: no writes');
SELECT throws_ok($$SELECT calo_recon.record_feedback('TAP-ROLE-1', 'confirmed')$$, '42501', NULL, 'reader: no feedback');
SELECT throws_ok($$SELECT * FROM calo_recon.export_reports('tap_roles')$$, '42501', NULL, 'reader: no exports');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.amount_thresholds$$, 'reader: the amount thresholds');
SELECT throws_ok($$SELECT calo_recon.set_amount_threshold('SAR', 5)$$, '42501', NULL, 'reader: sets no threshold');
RESET ROLE;

-- analyst: feedback, no training or scoring (they write models and scores),
-- no refresh, no exports
SET ROLE calo_tap_analyst;
SELECT lives_ok($$SELECT calo_recon.record_feedback('TAP-ROLE-1', 'confirmed')$$, 'analyst: feedback');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.anomalies$$, 'analyst: anomalies');
SELECT lives_ok($$SELECT count(*) FROM calo_recon.transaction_scores$$, 'analyst: reads scores');
SELECT throws_ok($$SELECT calo_recon.train_model('tap-roles', 0.01, 50, 64, 3)$$, '42501', NULL, 'analyst: no train_model');
SELECT throws_ok($$SELECT calo_recon.score_transactions()$$, '42501', NULL, 'analyst: no score_transactions');
SELECT throws_ok($$SELECT calo_recon.refresh()$$, '42501', NULL, 'analyst: no refresh');
SELECT throws_ok($$SELECT calo_recon.export_workbook('tap_roles/a.xlsx')$$, '42501', NULL, 'analyst: no exports');
SELECT throws_ok($$SELECT count(*) FROM calo_recon.log_events$$, '42501', NULL, 'analyst: no raw log text');
SELECT is((SELECT threshold FROM calo_recon.set_amount_threshold('KWD', 60)), 60::numeric, 'analyst: sets an amount threshold');
SELECT throws_ok($$UPDATE calo_recon.amount_thresholds SET set_by = 'calo_tap_operator'$$, '42501', NULL,
                 'analyst: a threshold cannot be signed as someone else');
SELECT throws_ok($$INSERT INTO calo_recon.amount_thresholds (currency, threshold, set_at) VALUES ('EUR', 5, now() - interval '1 year')$$,
                 '42501', NULL, 'analyst: no threshold dated at will');
SELECT throws_ok($$INSERT INTO calo_recon.amount_thresholds (currency, threshold, builtin) VALUES ('EUR', 5, true)$$,
                 '42501', NULL, 'analyst: no threshold passed off as built-in (pg_dump would drop it)');
RESET ROLE;

-- the record (issue 7 P6): feedback is append-only and signed by the
-- product with the session's login role; scores and models are written by
-- the product's functions, which analysts do not run
SELECT calo_recon.train_model('tap-roles', 0.01, 50, 64, 3);
SET ROLE calo_tap_analyst;
SELECT throws_ok($$UPDATE calo_recon.anomaly_feedback SET verdict = 'dismissed', note = 'rewritten'$$,
                 '42501', NULL, 'analyst: feedback verdicts and notes cannot be rewritten');
SELECT throws_ok($$UPDATE calo_recon.anomaly_feedback SET analyst = 'calo_tap_operator', decided_at = now() - interval '1 year'$$,
                 '42501', NULL, 'analyst: feedback signatures and dates cannot be rewritten');
SELECT throws_ok($$DELETE FROM calo_recon.anomaly_feedback$$, '42501', NULL, 'analyst: feedback cannot be deleted');
SELECT throws_ok($$INSERT INTO calo_recon.anomaly_feedback (txn_id, verdict, analyst) VALUES ('TAP-ROLE-2', 'dismissed', 'calo_tap_operator')$$,
                 '42501', NULL, 'analyst: no feedback signed as someone else');
SELECT throws_ok($$INSERT INTO calo_recon.anomaly_feedback (txn_id, verdict, decided_at) VALUES ('TAP-ROLE-2', 'dismissed', now() + interval '1 year')$$,
                 '42501', NULL, 'analyst: no feedback dated at will (the latest one counts)');
SELECT throws_ok($$INSERT INTO calo_recon.anomaly_feedback (feedback_id, txn_id, verdict) VALUES (9000000000, 'TAP-ROLE-2', 'dismissed')$$,
                 '42501', NULL, 'analyst: no feedback_id chosen at will (it breaks ties)');
SELECT throws_ok($$UPDATE calo_recon.transaction_scores SET flagged = false$$, '42501', NULL, 'analyst: model flags cannot be removed');
SELECT throws_ok($$DELETE FROM calo_recon.transaction_scores$$, '42501', NULL, 'analyst: scores cannot be deleted');
SELECT throws_ok($$INSERT INTO calo_recon.transaction_scores (txn_id, model_id, score, flagged) VALUES ('TAP-ROLE-3', 999999, 0.1, false)$$,
                 '42501', NULL, 'analyst: scores cannot be forged');
SELECT throws_ok($$UPDATE calo_recon.models SET threshold = 1$$, '42501', NULL, 'analyst: models cannot be rewritten');
SELECT throws_ok($$UPDATE calo_recon.models SET active = false$$, '42501', NULL, 'analyst: the active model cannot be switched');
RESET ROLE;
SELECT is_empty($$
    SELECT c.relname || ' ' || k.kind FROM pg_class c
    CROSS JOIN (VALUES ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('INSERT')) AS k(kind)
    WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind IN ('r', 'p', 'v')
      AND (has_table_privilege('calo_tap_analyst', c.oid, k.kind)
           OR (k.kind IN ('INSERT', 'UPDATE') AND has_any_column_privilege('calo_tap_analyst', c.oid, k.kind)))
    EXCEPT VALUES ('anomaly_feedback INSERT'), ('amount_thresholds INSERT'), ('amount_thresholds UPDATE'), ('amount_thresholds DELETE'),
                  ('anomaly_input_changes INSERT') $$,
  'analyst: no write privilege on any table or view but INSERT into feedback, the amount thresholds and the notes of their changes');
SELECT is(ARRAY(SELECT a.attname::text || ':' || k.kind FROM pg_attribute a CROSS JOIN (VALUES ('INSERT'), ('UPDATE')) AS k(kind)
                WHERE a.attrelid = 'calo_recon.amount_thresholds'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                  AND has_column_privilege('calo_tap_analyst', a.attrelid, a.attnum, k.kind)
                ORDER BY a.attnum, k.kind),
          ARRAY['currency:INSERT', 'threshold:INSERT', 'threshold:UPDATE'],
          'analyst: writes only the currency and threshold of a threshold row; who and when are the product''s');
SELECT is(ARRAY(SELECT a.attname::text FROM pg_attribute a
                WHERE a.attrelid = 'calo_recon.anomaly_feedback'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                  AND has_column_privilege('calo_tap_analyst', a.attrelid, a.attnum, 'INSERT')
                ORDER BY a.attnum),
          ARRAY['txn_id', 'verdict', 'note'], 'analyst: inserts into feedback only txn_id, verdict and note');
-- signed with the login role, whatever role is set; a correction is a new row
CREATE ROLE calo_tap_analyst_login IN ROLE calo_tap_analyst;
SET SESSION AUTHORIZATION calo_tap_analyst_login;
SELECT lives_ok($$SELECT calo_recon.record_feedback('TAP-ROLE-2', 'confirmed', 'first look')$$, 'analyst login: feedback');
SET ROLE calo_tap_analyst;
SELECT lives_ok($$SELECT calo_recon.record_feedback('TAP-ROLE-2', 'dismissed', 'correction')$$, 'analyst login: a correction');
RESET SESSION AUTHORIZATION;
SELECT results_eq($$SELECT verdict, analyst, note FROM calo_recon.anomaly_feedback WHERE txn_id = 'TAP-ROLE-2' ORDER BY feedback_id$$,
                  $$VALUES ('confirmed', 'calo_tap_analyst_login', 'first look'),
                           ('dismissed', 'calo_tap_analyst_login', 'correction')$$,
                  'feedback is kept as history and signed by the session''s login role, not the role set');
SELECT is((SELECT verdict FROM calo_recon.anomaly_verdicts WHERE txn_id = 'TAP-ROLE-2'), 'dismissed',
          'the latest feedback is the verdict in force');
-- a threshold is signed with the login role too, when set and when changed
SET SESSION AUTHORIZATION calo_tap_analyst_login;
SET ROLE calo_tap_analyst;
SELECT lives_ok($$SELECT calo_recon.set_amount_threshold('OMR', 90)$$, 'analyst login: a new threshold');
RESET SESSION AUTHORIZATION;
UPDATE calo_recon.amount_thresholds SET set_by = 'someone', set_at = '2000-01-01' WHERE currency = 'KWD';
SET SESSION AUTHORIZATION calo_tap_analyst_login;
SET ROLE calo_tap_analyst;
SELECT lives_ok($$SELECT calo_recon.set_amount_threshold('KWD', 70)$$, 'analyst login: a changed threshold');
RESET SESSION AUTHORIZATION;
SELECT results_eq($$SELECT currency, threshold, set_by, set_at = now() FROM calo_recon.amount_thresholds WHERE currency IN ('KWD', 'OMR') ORDER BY currency$$,
                  $$VALUES ('KWD', 70::numeric, 'calo_tap_analyst_login', true), ('OMR', 90::numeric, 'calo_tap_analyst_login', true)$$,
                  'thresholds are signed by the session''s login role and dated, whatever an UPDATE says');

-- operator (issue 11 item 6): a login with only the operator role -- no
-- pg_read_server_files, no pg_write_server_files, no write right on the
-- record -- does every job of the kind through the functions, which sign
-- with its login role (session_user), not with the owner they run as
CREATE ROLE calo_tap_operator_login IN ROLE calo_tap_operator;
SET SESSION AUTHORIZATION calo_tap_operator_login;
SELECT ok((SELECT transactions > 0 FROM calo_recon.ingest_file('bad/walk')), 'operator login: ingest_file');
SELECT lives_ok($$SELECT calo_recon.reconcile()$$, 'operator login: reconcile');
SELECT is((SELECT status || ' by ' || started_by FROM calo_recon.refresh('samples')), 'succeeded by calo_tap_operator_login',
          'operator login: refresh, the run signed with the login role');
SELECT lives_ok($$SELECT * FROM calo_recon.export_reports('tap_roles')$$, 'operator login: export_reports');
SELECT lives_ok($$SELECT calo_recon.export_workbook('tap_roles/book.xlsx')$$, 'operator login: export_workbook');
SELECT lives_ok($$SELECT calo_recon.export_dashboard('tap_roles/dashboard.html')$$, 'operator login: export_dashboard');
SELECT lives_ok($$SELECT calo_recon.train_model('tap-roles-ops', 0.01, 50, 64, 3)$$, 'operator login: train_model');
SELECT lives_ok($$SELECT calo_recon.score_transactions(false)$$, 'operator login: score_transactions');
-- going back to an older model: README "Anomaly detection", "Which model
-- scores a row", that recipe word for word, both ways (the older model first
-- in the table, then the newer); the one-statement UPDATE it replaces meets
-- the unique index row by row and fails when the chosen model comes first
SELECT lives_ok($$SELECT calo_recon.train_model('tap-roles-sar-a', seed => 1, currency => 'SAR')$$, 'operator login: train SAR model a');
SELECT lives_ok($$SELECT calo_recon.train_model('tap-roles-sar-b', seed => 2, currency => 'SAR')$$, 'operator login: train SAR model b');
SELECT throws_ok(format($$UPDATE calo_recon.models SET active = (model_id = %s) WHERE currency IS NOT DISTINCT FROM 'SAR'$$,
                        (SELECT model_id FROM calo_recon.models WHERE model_name = 'tap-roles-sar-a')),
                 '23505', NULL, 'operator login: one UPDATE over the scope cannot go back to the older model');
SELECT lives_ok(format($$
    UPDATE calo_recon.models SET active = false WHERE active AND currency IS NOT DISTINCT FROM 'SAR';
    UPDATE calo_recon.models SET active = true WHERE model_id = %s;$$,
    (SELECT model_id FROM calo_recon.models WHERE model_name = 'tap-roles-sar-a')),
  'operator login: the README recipe goes back to the older model');
SELECT results_eq($$SELECT model_name FROM calo_recon.models WHERE active AND currency = 'SAR'$$,
                  $$VALUES ('tap-roles-sar-a')$$, 'operator login: the older model is the active one of its scope');
SELECT lives_ok(format($$
    UPDATE calo_recon.models SET active = false WHERE active AND currency IS NOT DISTINCT FROM 'SAR';
    UPDATE calo_recon.models SET active = true WHERE model_id = %s;$$,
    (SELECT model_id FROM calo_recon.models WHERE model_name = 'tap-roles-sar-b')),
  'operator login: the README recipe goes forward to the newer model');
SELECT results_eq($$SELECT model_name FROM calo_recon.models WHERE active AND currency = 'SAR'$$,
                  $$VALUES ('tap-roles-sar-b')$$, 'operator login: the newer model is the active one again');
SELECT lives_ok($$SELECT * FROM calo_recon.raise_alerts()$$, 'operator login: raise_alerts');
SELECT is((SELECT acknowledged_by::text FROM calo_recon.acknowledge_alert(
               (SELECT min(alert_id) FROM calo_recon.alerts WHERE status = 'open'), 'on it')),
          'calo_tap_operator_login', 'operator login: acknowledge_alert, signed with the login role');
SELECT is((SELECT resolved_by::text FROM calo_recon.resolve_alert(
               (SELECT min(alert_id) FROM calo_recon.alerts WHERE status = 'acknowledged'), 'handled')),
          'calo_tap_operator_login', 'operator login: resolve_alert, signed with the login role');
SELECT lives_ok($$SELECT * FROM calo_recon.purge('1 year')$$, 'operator login: purge');
SELECT lives_ok($$SELECT calo_recon.record_feedback('TAP-ROLE-4', 'confirmed')$$, 'operator login: feedback');
SELECT is((SELECT analyst FROM calo_recon.anomaly_feedback WHERE txn_id = 'TAP-ROLE-4'), 'calo_tap_operator_login',
          'operator login: feedback signed with the session''s login role');
SELECT throws_ok($$SELECT calo_recon.read_log_file('samples/answer-key.json')$$, '42501',
                 'permission denied to read server files with read_log_file()',
                 'operator login: read_log_file, which is no entry point, still needs pg_read_server_files');
SELECT throws_ok($$SELECT calo_recon.refresh_work(1)$$, '42501', NULL, 'operator login: no internals (refresh_work)');
SELECT throws_ok($$SELECT calo_recon.ingest_log_unreconciled('x', 'x')$$, '42501', NULL,
                 'operator login: no internals (ingest_log_unreconciled)');
SELECT throws_ok($$INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
                   VALUES ('TAP-ROLE-OP', 'tap-role-op', 'CREDIT', 'SAR', 1, 0, 0, 1, now())$$,
                 '42501', NULL, 'operator login: no direct INSERT into transactions');
SELECT throws_ok($$UPDATE calo_recon.alerts SET resolution = 'x', resolved_at = now()$$, '42501', NULL,
                 'operator login: no direct UPDATE of alerts');
SELECT throws_ok($$DELETE FROM calo_recon.runs$$, '42501', NULL, 'operator login: no direct DELETE of runs');
SELECT throws_ok($$UPDATE calo_recon.anomaly_feedback SET verdict = 'dismissed'$$, '42501', NULL, 'operator: feedback cannot be rewritten');
SELECT throws_ok($$DELETE FROM calo_recon.anomaly_feedback$$, '42501', NULL, 'operator: feedback cannot be deleted');
SELECT throws_ok($$INSERT INTO calo_recon.anomaly_feedback (txn_id, verdict, analyst) VALUES ('TAP-ROLE-4', 'dismissed', 'calo_tap_analyst')$$,
                 '42501', NULL, 'operator: no feedback signed as someone else');
SELECT throws_ok($$SELECT calo_recon.set_amount_threshold('SAR', 5)$$, '42501', NULL, 'operator: the thresholds are the analysts''');
SELECT lives_ok($$UPDATE calo_recon.currencies SET minor_unit = 3 WHERE code = 'SAR'$$,
                'operator: a currency''s minor unit, whose trigger queues the currency''s users with the operator''s rights');
SELECT lives_ok($$UPDATE calo_recon.currencies SET minor_unit = 2 WHERE code = 'SAR'$$, '... and back');
RESET SESSION AUTHORIZATION;
-- the matrix: no INSERT, UPDATE, DELETE or TRUNCATE on any table (column
-- rights included) but the configuration (currencies, which model is
-- active) and the feedback columns an author fills in
SELECT is_empty($$
    SELECT c.relname || ' ' || k.kind FROM pg_class c
    CROSS JOIN (VALUES ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('INSERT')) AS k(kind)
    WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind IN ('r', 'p', 'v')
      AND (has_table_privilege('calo_tap_operator_login', c.oid, k.kind)
           OR (k.kind IN ('INSERT', 'UPDATE') AND has_any_column_privilege('calo_tap_operator_login', c.oid, k.kind)))
    EXCEPT VALUES ('currencies INSERT'), ('currencies UPDATE'), ('currencies DELETE'), ('models UPDATE'),
                  ('anomaly_feedback INSERT'), ('anomaly_input_changes INSERT'), ('pending_reconcile INSERT') $$,
  'operator: no write privilege on any table of the record');

-- hostile search_path: functions, operators and tables planted in public
-- and pg_temp change nothing computed by ingest, reconcile, refresh or the
-- views.  Results under the hostile path are stored first and compared only
-- after the plants are gone, since pgTAP itself would use the planted "=".
CREATE TEMP TABLE view_digests (path text, what text, digest text);
CREATE FUNCTION pg_temp.snapshot(path text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO view_digests
    SELECT path, 'balance_breaks', md5(string_agg(b::text, '|' ORDER BY b::text)) FROM calo_recon.balance_breaks b
    UNION ALL SELECT path, 'precision_drift', md5(string_agg(d::text, '|' ORDER BY d::text)) FROM calo_recon.precision_drift d
    UNION ALL SELECT path, 'overdrafts', md5(string_agg(o::text, '|' ORDER BY o::text)) FROM calo_recon.overdrafts o
    UNION ALL SELECT path, 'overdraft_episodes', md5(string_agg(o::text, '|' ORDER BY o::text)) FROM calo_recon.overdraft_episodes o
    UNION ALL SELECT path, 'user_summary', md5(string_agg(u::text, '|' ORDER BY u::text)) FROM calo_recon.user_summary u
    UNION ALL SELECT path, 'discrepancies', md5(string_agg(x::text, '|' ORDER BY x::text)) FROM calo_recon.discrepancies x
    UNION ALL SELECT path, 'anomalies', md5(string_agg(x::text, '|' ORDER BY x::text)) FROM calo_recon.anomalies x
$$;
SELECT pg_temp.snapshot('clean');

CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT '\x00'::bytea $$;
CREATE FUNCTION public.abs(numeric) RETURNS numeric LANGUAGE sql AS $$ SELECT 0::numeric $$;
CREATE FUNCTION public.hostile_texteq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hostile_texteq);
CREATE FUNCTION public.hostile_numlt(numeric, numeric) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
CREATE OPERATOR public.< (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = public.hostile_numlt);
CREATE FUNCTION public.hostile_numsub(numeric, numeric) RETURNS numeric LANGUAGE sql AS $$ SELECT 0::numeric $$;
CREATE OPERATOR public.- (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = public.hostile_numsub);
CREATE TABLE pg_temp.transactions (txn_id text);
CREATE TABLE pg_temp.currencies (code text, minor_unit int);
INSERT INTO pg_temp.currencies VALUES ('BHD', 0), ('SAR', 0);
SET LOCAL search_path = pg_temp, public, pg_catalog;
CREATE TEMP TABLE hostile_ingest AS SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs');
CREATE TEMP TABLE hostile_reconcile AS SELECT * FROM calo_recon.reconcile();
SELECT pg_temp.snapshot('hostile');
CREATE TEMP TABLE hostile_refresh AS SELECT * FROM calo_recon.refresh('samples');
RESET search_path;
DROP OPERATOR public.= (text, text);
DROP OPERATOR public.< (numeric, numeric);
DROP OPERATOR public.- (numeric, numeric);
DROP FUNCTION public.sha256(bytea), public.abs(numeric), public.hostile_texteq(text, text),
              public.hostile_numlt(numeric, numeric), public.hostile_numsub(numeric, numeric);

SELECT is((SELECT row(transactions, duplicates, conflicts)::text FROM hostile_ingest),
          '(0,0,0)', 'hostile path: re-ingesting the samples is still a no-op (digests unchanged)');
SELECT is((SELECT users FROM hostile_reconcile), (SELECT count(DISTINCT user_id) FROM calo_recon.transactions),
          'hostile path: reconcile sees every user');
SELECT set_eq($$SELECT what, digest FROM view_digests WHERE path = 'hostile'$$,
              $$SELECT what, digest FROM view_digests WHERE path = 'clean'$$,
              'hostile path: every view unchanged');
SELECT is((SELECT count(*)::int FROM view_digests WHERE path = 'hostile' AND digest IS NOT NULL), 7,
          'hostile path: seven views compared');
SELECT is((SELECT status FROM hostile_refresh), 'succeeded', 'hostile path: refresh');

SELECT * FROM finish();
ROLLBACK;
