-- Retention (README "Retention"): purge() forgets old raw text, resolved
-- alerts, ended runs and unreadable input, and never the record.  Ages are
-- set by moving rows into the past.  (pg_cron's history:
-- test/integration/pg_cron.sh.)
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(22);

SELECT throws_ok($$SELECT * FROM calo_recon.purge(NULL)$$, '22004', NULL, 'purge(NULL): 22004');
SELECT throws_ok($$SELECT * FROM calo_recon.purge('-1 day')$$, '22023', NULL, 'a negative interval: 22023');

SELECT is((SELECT status FROM calo_recon.refresh('samples')), 'succeeded', 'the samples');
SELECT is((SELECT status FROM calo_recon.refresh('../etc')), 'failed', 'a failed run');
SELECT is((SELECT status FROM calo_recon.refresh('samples')), 'succeeded', 'another success');
SELECT is((SELECT status FROM calo_recon.refresh('samples')), 'succeeded', 'the newest run');
-- alerts: two resolved long ago, one resolved lately, one acknowledged long ago
CREATE TEMP TABLE picked AS SELECT alert_id, row_number() OVER (ORDER BY alert_id) AS n FROM calo_recon.alerts WHERE status = 'open' LIMIT 4;
SELECT count(*) FROM picked p, calo_recon.resolve_alert(p.alert_id, 'tap') x WHERE p.n <= 3;
SELECT count(*) FROM picked p, calo_recon.acknowledge_alert(p.alert_id) x WHERE p.n = 4;
ALTER TABLE calo_recon.alerts DISABLE TRIGGER alerts_stamp_lifecycle;  -- to move them into the past
UPDATE calo_recon.alerts a SET resolved_at = now() - interval '400 days' FROM picked p WHERE p.alert_id = a.alert_id AND p.n IN (1, 2);
UPDATE calo_recon.alerts a SET acknowledged_at = now() - interval '400 days' FROM picked p WHERE p.alert_id = a.alert_id AND p.n = 4;
ALTER TABLE calo_recon.alerts ENABLE TRIGGER alerts_stamp_lifecycle;
-- every run ended long ago
UPDATE calo_recon.runs SET started_at = now() - interval '401 days', finished_at = now() - interval '400 days';
-- quarantine: a conflict and the unreadable files, long ago
INSERT INTO calo_recon.quarantine (source_file, reason, txn_id, detail)
SELECT 'tap-conflict', 'conflict', min(txn_id), '{}' FROM calo_recon.transactions;
UPDATE calo_recon.quarantine SET quarantined_at = now() - interval '400 days';
-- the record, as it stands: purge() must leave it exactly so
CREATE TEMP TABLE record AS
SELECT 'transactions' AS t, md5(string_agg(x::text, ',' ORDER BY x::text)) AS digest FROM calo_recon.transactions x
UNION ALL SELECT 'findings', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM calo_recon.reconciliation_findings x
UNION ALL SELECT 'balance_breaks', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM calo_recon.balance_breaks x
UNION ALL SELECT 'balance_errors', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM calo_recon.balance_errors x
UNION ALL SELECT 'rejections', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM calo_recon.negative_balance_rejections x
UNION ALL SELECT 'events (but raw)', md5(string_agg((x.event_id, x.kind, x.body, x.logged_at)::text, ',' ORDER BY x.event_id)) FROM calo_recon.log_events x;

CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM calo_recon.alerts) AS alerts, (SELECT count(*) FROM calo_recon.runs) AS runs,
       (SELECT count(*) FROM calo_recon.quarantine) AS quarantine,
       (SELECT count(*) FROM calo_recon.log_events WHERE logged_at < now() - interval '1 year') AS old_events,
       (SELECT array[max(run_id), max(run_id) FILTER (WHERE status = 'succeeded'), max(run_id) FILTER (WHERE status = 'failed')]
        FROM calo_recon.runs) AS kept_runs;
SELECT ok((SELECT old_events > 0 AND runs = 4 FROM before), 'old events and four old runs to purge');

SELECT is((SELECT array_agg(purged || '=' || coalesce("rows"::text, 'absent')) FROM calo_recon.purge('10 years')),
          ARRAY['log_events.raw=0', 'alerts=0', 'runs=0', 'quarantine=0', 'cron.job_run_details=absent'],
          'nothing is older than 10 years; pg_cron is not installed here');
SELECT is((SELECT array_agg(purged || '=' || coalesce("rows"::text, 'absent')) FROM calo_recon.purge('100000000 years')),
          ARRAY['log_events.raw=0', 'alerts=0', 'runs=0', 'quarantine=0', 'cron.job_run_details=absent'],
          'an interval reaching before the earliest timestamp purges nothing (no 22008)');
CREATE TEMP TABLE purged AS SELECT * FROM calo_recon.purge('1 year');
SELECT is((SELECT "rows" FROM purged WHERE purged = 'log_events.raw'), (SELECT old_events FROM before),
          'the raw text of every event logged before the cutoff');
SELECT is((SELECT count(*) FROM calo_recon.log_events WHERE raw <> '' AND logged_at < now() - interval '1 year'), 0::bigint,
          'no old raw text is left');
SELECT is((SELECT "rows" FROM purged WHERE purged = 'alerts'), 2::bigint, 'the two alerts resolved before the cutoff');
SELECT ok((SELECT count(*) = 2 FROM picked p JOIN calo_recon.alerts a USING (alert_id) WHERE p.n IN (3, 4)),
          'a recently resolved and an (old) acknowledged alert stay');
SELECT is((SELECT "rows" FROM purged WHERE purged = 'runs'), 2::bigint, 'the two old runs that health does not read');
SELECT is((SELECT array_agg(run_id ORDER BY run_id) FROM calo_recon.runs),
          (SELECT array_agg(DISTINCT k ORDER BY k) FROM before, unnest(kept_runs) k),
          'the newest run, success and failure stay');
SELECT is((SELECT array_agg(reason ORDER BY reason) FROM calo_recon.quarantine), ARRAY['conflict'],
          'unreadable input goes, the conflict stays');
SELECT is((SELECT "rows" FROM purged WHERE purged = 'quarantine'), (SELECT quarantine - 1 FROM before), 'counted');
SELECT is((SELECT array_agg(t || '=' || digest ORDER BY t) FROM (
             SELECT 'transactions' AS t, md5(string_agg(x::text, ',' ORDER BY x::text)) AS digest FROM calo_recon.transactions x
             UNION ALL SELECT 'findings', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM calo_recon.reconciliation_findings x
             UNION ALL SELECT 'balance_breaks', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM calo_recon.balance_breaks x
             UNION ALL SELECT 'balance_errors', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM calo_recon.balance_errors x
             UNION ALL SELECT 'rejections', md5(string_agg(x::text, ',' ORDER BY x::text)) FROM calo_recon.negative_balance_rejections x
             UNION ALL SELECT 'events (but raw)', md5(string_agg((x.event_id, x.kind, x.body, x.logged_at)::text, ',' ORDER BY x.event_id)) FROM calo_recon.log_events x) now_),
          (SELECT array_agg(t || '=' || digest ORDER BY t) FROM record),
          'the record is untouched: transactions, findings, breaks, errors, rejections, parsed events');
SELECT is((SELECT array_agg("rows") FROM calo_recon.purge('1 year') WHERE purged <> 'cron.job_run_details'),
          ARRAY[0, 0, 0, 0]::bigint[], 'a second purge finds nothing');
SELECT is((SELECT row(last_run_id, last_error_run_id, last_success_at IS NOT NULL)::text FROM calo_recon.health),
          (SELECT row(kept_runs[1], kept_runs[3], true)::text FROM before), 'health still reads the newest run, success and failure');

-- who may
CREATE ROLE calo_tap_ret_analyst;
CREATE ROLE calo_tap_ret_monitor;
SELECT count(*) FROM calo_recon.grant_role('calo_tap_ret_analyst', 'analyst');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_ret_monitor', 'monitor');
SET ROLE calo_tap_ret_analyst;
SELECT throws_ok($$SELECT * FROM calo_recon.purge('1 year')$$, '42501', NULL, 'analyst: no purge');
RESET ROLE;
SET ROLE calo_tap_ret_monitor;
SELECT throws_ok($$SELECT * FROM calo_recon.purge('1 year')$$, '42501', NULL, 'monitor: no purge');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
