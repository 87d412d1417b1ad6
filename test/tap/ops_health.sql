-- Health (README "Health and monitoring"): the health view, check_health()
-- and its SQLSTATE RH001, the monitor role.  One transaction: now() is its
-- start, so ages are set by moving runs into the past, never by waiting.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(34);

SELECT columns_are('calo_recon', 'health',
    ARRAY['checked_at', 'last_success_at', 'last_success_age', 'last_run_id', 'last_run_status',
          'last_ended_run_failed', 'skipping_since', 'last_error_run_id', 'last_error_at', 'last_error',
          'last_error_detail', 'last_error_hint', 'last_data_loaded_at', 'runs_running',
          'users_pending_reconcile', 'quarantine_by_reason', 'open_alerts', 'acknowledged_alerts', 'table_bytes',
           'alert_checks_queued', 'users_pending_rescore'],
    'health columns');
SELECT is((SELECT count(*)::int FROM calo_recon.health), 1, 'health is one row');
SELECT is((SELECT row(last_success_at, last_run_id)::text FROM calo_recon.health), '(,)', 'nothing has run yet');
SELECT throws_ok($$SELECT calo_recon.check_health()$$, 'RH001',
                 'calo_recon is unhealthy: no refresh() run has succeeded', 'check_health() before any run: RH001');
SELECT throws_ok($$SELECT calo_recon.check_health('-1 minute')$$, '22023', NULL, 'a negative max_age: 22023');

CREATE TEMP TABLE run1 AS SELECT * FROM calo_recon.refresh('samples');
SELECT is((SELECT row(last_run_id, last_run_status, last_ended_run_failed, runs_running, users_pending_reconcile)::text
           FROM calo_recon.health),
          row((SELECT run_id FROM run1), 'succeeded', false, 0, 0)::text, 'health after a successful run');
SELECT is((SELECT alert_checks_queued FROM calo_recon.health), 0::bigint, 'one node queues no alert check');
-- a changed row queues its user for rescoring, and health counts the users queued
SELECT is((SELECT users_pending_rescore FROM calo_recon.health), 0::bigint, 'nothing queued for rescoring after the run');
SAVEPOINT rescore_queue;
UPDATE calo_recon.transactions SET amount = amount + 1 WHERE txn_id = (SELECT min(txn_id) FROM calo_recon.transactions);
SELECT is((SELECT users_pending_rescore FROM calo_recon.health), 1::bigint, 'a changed row: its user queued for rescoring');
ROLLBACK TO SAVEPOINT rescore_queue;
SELECT is((SELECT last_success_at FROM calo_recon.health), (SELECT finished_at FROM run1), 'last_success_at');
SELECT is((SELECT open_alerts FROM calo_recon.health),
          (SELECT jsonb_object_agg(k.severity, (SELECT count(*) FROM calo_recon.alerts a JOIN calo_recon.alert_kinds k2 USING (alert_kind)
                                                WHERE a.status = 'open' AND k2.severity = k.severity))
           FROM (SELECT DISTINCT severity FROM calo_recon.alert_kinds) k),
          'open_alerts counts open alerts per severity');
SELECT is((SELECT array_agg(k ORDER BY k) FROM calo_recon.health, jsonb_object_keys(acknowledged_alerts) k),
          ARRAY['critical', 'info', 'warning'], 'every severity is a key, even at 0');
SELECT is((SELECT quarantine_by_reason FROM calo_recon.health),
          (SELECT jsonb_object_agg(reason, n) FROM (SELECT reason, count(*) AS n FROM calo_recon.quarantine GROUP BY reason) q),
          'quarantine_by_reason');
SELECT ok((SELECT (table_bytes->>'transactions')::bigint > 0 AND (table_bytes->>'log_events')::bigint > 0 FROM calo_recon.health),
          'table_bytes gives the sizes of the tables');
SELECT is((SELECT last_data_loaded_at FROM calo_recon.health),
          (SELECT max(loaded_at) FROM calo_recon.ingested_files WHERE transactions > 0), 'last_data_loaded_at');

-- the samples raise critical alerts: unhealthy until someone takes them on
SELECT throws_ok($$SELECT calo_recon.check_health('1 hour')$$, 'RH001', NULL, 'open critical alerts: RH001');
SELECT count(*) FROM calo_recon.alerts a JOIN calo_recon.alert_kinds k USING (alert_kind),
     LATERAL calo_recon.acknowledge_alert(a.alert_id, 'tap') x
WHERE k.severity = 'critical' AND a.status = 'open';
SELECT is((SELECT (acknowledged_alerts->>'critical')::int > 0 AND (open_alerts->>'critical')::int = 0 FROM calo_recon.health),
          true, 'acknowledged critical alerts move to acknowledged_alerts');
SELECT lives_ok($$SELECT calo_recon.check_health('1 hour')$$, 'healthy: check_health() returns');
SELECT is((SELECT last_run_id FROM calo_recon.check_health()), (SELECT run_id FROM run1), 'it returns the health row');

-- an old last success
UPDATE calo_recon.runs SET started_at = now() - interval '2 hours 1 minute', finished_at = now() - interval '2 hours';
SELECT is((SELECT last_success_age FROM calo_recon.health), interval '2 hours', 'last_success_age');
SELECT throws_ok($$SELECT calo_recon.check_health('1 hour')$$, 'RH001', NULL, 'older than max_age: RH001');
SELECT lives_ok($$SELECT calo_recon.check_health('3 hours')$$, 'within max_age: healthy');
SELECT lives_ok($$SELECT calo_recon.check_health()$$, 'max_age NULL: not checked');

-- a failed run: RH001 with the run's DETAIL
CREATE TEMP TABLE bad AS SELECT * FROM calo_recon.refresh('../etc');
SELECT is((SELECT row(last_run_status, last_ended_run_failed, last_error_run_id, last_error, last_error_detail)::text FROM calo_recon.health),
          (SELECT row('failed', true, run_id, error, error_detail)::text FROM bad), 'health shows the failed run');
CREATE FUNCTION pg_temp.health_error() RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text;
BEGIN
    PERFORM calo_recon.check_health('3 hours');
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
    RETURN s || ' | ' || m || ' | ' || d;
END $$;
SELECT is(pg_temp.health_error(),
          format('RH001 | calo_recon is unhealthy: refresh() run %s failed: %s; 1 critical alerts are open (not acknowledged) | %s',
                 (SELECT run_id FROM bad), (SELECT error FROM bad), (SELECT error_detail FROM bad)),
          'the last run failed: RH001 naming every problem (its refresh_failed alert too), with the run''s DETAIL');
SELECT is((SELECT status FROM calo_recon.refresh('samples')), 'succeeded', 'a good run');
SELECT lives_ok($$SELECT calo_recon.check_health('3 hours')$$, 'healthy again');

-- monitor: the health, nothing else
CREATE ROLE calo_tap_monitor;
SELECT is((SELECT array_agg(x ORDER BY x) FROM calo_recon.grant_role('calo_tap_monitor', 'monitor') x),
          ARRAY['GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO calo_tap_monitor',
                'GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO calo_tap_monitor',
                'GRANT SELECT ON calo_recon.amount_thresholds TO calo_tap_monitor',
                'GRANT SELECT ON calo_recon.health TO calo_tap_monitor',
                'GRANT USAGE ON SCHEMA calo_recon TO calo_tap_monitor'], 'grant_role monitor');
SET ROLE calo_tap_monitor;
SELECT lives_ok($$SELECT calo_recon.check_health('3 hours')$$, 'monitor: check_health()');
SELECT is((SELECT count(*)::int FROM calo_recon.health), 1, 'monitor: health');
SELECT throws_ok($$SELECT count(*) FROM calo_recon.transactions$$, '42501', NULL, 'monitor: no transactions');
SELECT throws_ok($$SELECT count(*) FROM calo_recon.alerts$$, '42501', NULL, 'monitor: no alerts table');
SELECT throws_ok($$SELECT count(*) FROM calo_recon.runs$$, '42501', NULL, 'monitor: no runs table');
SELECT throws_ok($$SELECT calo_recon.refresh()$$, '42501', NULL, 'monitor: no refresh');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
