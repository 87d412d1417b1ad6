-- Alerts no inserted transaction raises (README "More alerts"): discrepancies,
-- conflicts, failed refreshes, stale data; runs that explain themselves.
-- (Skipped runs that become failures: test/specs/refresh_skip_limit.spec.)
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(37);

SELECT is((SELECT array_agg(alert_kind || ':' || severity ORDER BY alert_kind) FROM calo_recon.alert_kinds
           WHERE raised_by IN ('raise_alerts', 'refresh')),
          ARRAY['conflict:critical', 'discrepancy:critical', 'refresh_failed:critical', 'refresh_skipped:warning',
                'stale_data:warning'], 'the kinds raise_alerts() and refresh() raise, with their severity');
SELECT is((SELECT refresh_max_skip FROM calo_recon.ops_settings()), interval '1 hour', 'refresh_max_skip defaults to 1 hour');
SELECT is((SELECT row(max_data_age, alert_backfill_age)::text FROM calo_recon.ops_settings()), '(,)',
          'max_data_age and alert_backfill_age are off by default');
SET LOCAL calo_recon.max_data_age = '2d';
SELECT is((SELECT max_data_age FROM calo_recon.ops_settings()), interval '48 hours', 'settings are read in this session');
RESET calo_recon.max_data_age;

-- a run raises the discrepancies of what it ingested, once each
CREATE TEMP TABLE run1 AS SELECT * FROM calo_recon.refresh('samples');
SELECT is((SELECT status FROM run1), 'succeeded', 'a refresh of the samples');
SELECT ok((SELECT count(*) > 0 FROM calo_recon.discrepancies), 'the samples have discrepancies');
SELECT is((SELECT array_agg((detail->>'error_id')::bigint ORDER BY 1) FROM calo_recon.alerts WHERE alert_kind = 'discrepancy'),
          (SELECT array_agg(error_id ORDER BY 1) FROM calo_recon.discrepancies),
          'one discrepancy alert per discrepancy');
SELECT ok((SELECT bool_and(run_id = (SELECT run_id FROM run1)) FROM calo_recon.alerts WHERE alert_kind = 'discrepancy'),
          'raised by the run');
SELECT is((SELECT array_agg(alert_kind || ':' || raised ORDER BY alert_kind) FROM calo_recon.raise_alerts() WHERE raised > 0),
          NULL, 'raise_alerts() again raises nothing: each discrepancy is considered once');
SELECT ok((SELECT duration >= interval '0' AND duration = finished_at - started_at FROM calo_recon.runs WHERE run_id = (SELECT run_id FROM run1)),
          'a run records its duration');

-- new balance errors: paged unless older than alert_backfill_age, or alerts off
INSERT INTO calo_recon.balance_errors (user_id, subscription_balance, payment_balance, logged_at, txn_id)
VALUES ('tap-chk-1', 10, 20, now(), NULL), ('tap-chk-1', 30, 50, now(), NULL),
       ('tap-chk-2', 10, 20, '2020-01-01', NULL), ('tap-chk-3', 10, 10, now(), NULL);
SET LOCAL calo_recon.alert_backfill_age = '30d';
SELECT is((SELECT raised FROM calo_recon.raise_alerts() WHERE alert_kind = 'discrepancy'), 1::bigint,
          'a new discrepancy alerts; one logged before alert_backfill_age does not; no discrepancy, no alert');
SELECT is((SELECT array_agg(user_id || ':' || (detail->>'error_id')) FROM calo_recon.alerts
           WHERE alert_kind = 'discrepancy' AND user_id LIKE 'tap-chk-%'),
          (SELECT ARRAY['tap-chk-1:' || min(error_id)] FROM calo_recon.balance_errors WHERE user_id = 'tap-chk-1'),
          'a user''s discrepancies without a transaction share one open alert');
RESET calo_recon.alert_backfill_age;
SET LOCAL calo_recon.alerts = off;
INSERT INTO calo_recon.balance_errors (user_id, subscription_balance, payment_balance, logged_at)
VALUES ('tap-chk-4', 10, 20, now());
SELECT is((SELECT raised FROM calo_recon.raise_alerts() WHERE alert_kind = 'discrepancy'), 0::bigint,
          'with calo_recon.alerts off nothing is raised');
RESET calo_recon.alerts;
SELECT is((SELECT raised FROM calo_recon.raise_alerts() WHERE alert_kind = 'discrepancy'), 0::bigint,
          '... and it was recorded as seen: turning alerts on does not page it later');
SELECT is((SELECT last_id FROM calo_recon.alert_marks WHERE source = 'balance_errors'),
          (SELECT max(error_id) FROM calo_recon.balance_errors), 'the mark is the last error considered');

-- conflicts: one alert per transaction id, on the stored row's user
INSERT INTO calo_recon.quarantine (source_file, reason, txn_id, detail, logged_at)
SELECT 'tap-conflict', 'conflict', t.txn_id, '{"amount": 99}', now()
FROM (SELECT txn_id FROM calo_recon.transactions ORDER BY txn_id LIMIT 1) t, generate_series(1, 2);
INSERT INTO calo_recon.quarantine (source_file, reason, detail) VALUES ('tap-malformed', 'malformed_event', '{}');
SELECT is((SELECT raised FROM calo_recon.raise_alerts() WHERE alert_kind = 'conflict'), 1::bigint,
          'two conflicting deliveries of one id raise one conflict alert; a malformed event none');
SELECT is((SELECT row(a.txn_id, a.user_id, s.severity)::text FROM calo_recon.alerts a JOIN calo_recon.alert_kinds s USING (alert_kind)
           WHERE a.alert_kind = 'conflict'),
          (SELECT row(txn_id, user_id, 'critical')::text FROM calo_recon.transactions ORDER BY txn_id LIMIT 1),
          'the conflict alert names the transaction and its user, critical');

-- a failed run: DETAIL and HINT kept, one open refresh_failed alert
CREATE TEMP TABLE bad AS SELECT * FROM calo_recon.refresh('../etc');
SELECT is((SELECT row(status, error, error_detail)::text FROM bad),
          row('failed', '42501: path must not contain "..": "../etc"', 'Paths must stay inside calo_recon.import_directory.')::text,
          'a failed run records the error with its DETAIL');
SELECT throws_ok($$SELECT calo_recon.check_last_refresh()$$, '38000', NULL, 'check_last_refresh() reports it');
CREATE FUNCTION pg_temp.last_refresh_error() RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    PERFORM calo_recon.check_last_refresh();
    RETURN NULL;
EXCEPTION WHEN external_routine_exception THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN d;
END $$;
SELECT is(pg_temp.last_refresh_error(), 'Paths must stay inside calo_recon.import_directory.',
          'check_last_refresh() passes the run''s DETAIL on');
SELECT is((SELECT row(status, detail->>'run_id')::text FROM calo_recon.alerts WHERE alert_kind = 'refresh_failed'),
          row('open', (SELECT run_id FROM bad)::text)::text, 'a failed run raises refresh_failed');
SELECT is((SELECT status FROM calo_recon.refresh('../etc')), 'failed', 'another failure');
SELECT is((SELECT count(*)::int FROM calo_recon.alerts WHERE alert_kind = 'refresh_failed'), 1,
          'a repeated failure stays one open alert');
CREATE TEMP TABLE good AS SELECT * FROM calo_recon.refresh('samples');
SELECT is((SELECT row(status, resolution)::text FROM calo_recon.alerts WHERE alert_kind = 'refresh_failed'),
          row('resolved', format('refresh() run %s succeeded', (SELECT run_id FROM good)))::text,
          'the next successful run resolves it');
SELECT is((SELECT error_detail FROM good), NULL, 'a successful run has no error detail');

-- stale data: no file with transactions loaded for max_data_age
SET LOCAL calo_recon.max_data_age = '1d';
SELECT is((SELECT raised FROM calo_recon.raise_alerts() WHERE alert_kind = 'stale_data'), 0::bigint,
          'fresh data: no stale_data alert');
UPDATE calo_recon.ingested_files SET loaded_at = loaded_at - interval '3 days';
SELECT is((SELECT raised FROM calo_recon.raise_alerts() WHERE alert_kind = 'stale_data'), 1::bigint,
          'no file loaded for longer than max_data_age: stale_data');
SELECT is((SELECT raised FROM calo_recon.raise_alerts() WHERE alert_kind = 'stale_data'), 0::bigint,
          'still stale: still one alert');
SELECT is((SELECT severity FROM calo_recon.alerts JOIN calo_recon.alert_kinds USING (alert_kind) WHERE alert_kind = 'stale_data'),
          'warning', 'stale_data is a warning');
UPDATE calo_recon.ingested_files SET loaded_at = now() WHERE file_name = (SELECT min(file_name) FROM calo_recon.ingested_files WHERE transactions > 0);
SELECT is((SELECT resolved FROM calo_recon.raise_alerts() WHERE alert_kind = 'stale_data'), 1::bigint,
          'fresh again: resolved');
SET LOCAL calo_recon.max_data_age = 0;
SELECT is((SELECT raised FROM calo_recon.raise_alerts() WHERE alert_kind = 'stale_data'), 0::bigint,
          'max_data_age 0 is off');
RESET calo_recon.max_data_age;
-- the setting says what the check above does (the age of the last ingest of
-- a file with transactions, for raise_alerts(); check_health() does not read it)
SELECT is((SELECT short_desc || ' ' || extra_desc FROM pg_settings WHERE name = 'calo_recon.max_data_age'),
          'Time since the last ingest of a file with transactions after which the data counts as stale. '
          '0 means never; raise_alerts(), and so every refresh(), raises stale_data, resolved once such a file is ingested.',
          'calo_recon.max_data_age describes what raise_alerts() does with it');

-- settings refuse nonsense with their SQLSTATE
SELECT throws_ok($$SET LOCAL calo_recon.refresh_max_skip = '-1'$$, '22023', NULL, 'a negative refresh_max_skip is refused');
SELECT throws_ok($$SET LOCAL calo_recon.max_data_age = 'soon'$$, '22023', NULL, 'a max_data_age that is no duration is refused');

-- who may: operators raise alerts; analysts may not
CREATE ROLE calo_tap_chk_analyst;
CREATE ROLE calo_tap_chk_operator;
SELECT count(*) FROM calo_recon.grant_role('calo_tap_chk_analyst', 'analyst');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_chk_operator', 'operator');
SET ROLE calo_tap_chk_analyst;
SELECT throws_ok($$SELECT * FROM calo_recon.raise_alerts()$$, '42501', NULL, 'analyst: no raise_alerts');
RESET ROLE;
SET ROLE calo_tap_chk_operator;
SELECT lives_ok($$SELECT * FROM calo_recon.raise_alerts()$$, 'operator: raise_alerts');
RESET ROLE;
SELECT ok(NOT has_function_privilege('public', 'calo_recon.raise_alerts()', 'EXECUTE'), 'PUBLIC may not raise alerts');

SELECT * FROM finish();
ROLLBACK;
