-- Roles as operations needs them (README "Roles"): the monitor kind, what
-- each kind holds over the whole catalog, revoke_role(), grants recorded in
-- role_grants and re-applied by reapply_grants() (which every update script
-- runs last: test/integration/upgrade.sh).  Roles vanish with the ROLLBACK.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(48);

CREATE ROLE calo_tap_r_reader;
CREATE ROLE calo_tap_r_analyst;
CREATE ROLE calo_tap_r_operator;
CREATE ROLE calo_tap_r_monitor;
CREATE ROLE calo_tap_r_both;
CREATE ROLE calo_tap_r_fresh;
SELECT count(*) FROM calo_recon.grant_role('calo_tap_r_reader', 'reader');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_r_analyst', 'analyst');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_r_operator', 'operator');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_r_monitor', 'monitor');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_r_both', 'reader');
SELECT count(*) FROM calo_recon.grant_role('calo_tap_r_both', 'monitor');

-- every privilege a role holds over the schema's relations, sequences and
-- routines (beyond what PUBLIC has), as text
CREATE FUNCTION pg_temp.held(role_name name) RETURNS text[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM (
        SELECT c.relname || ':' || p AS x
        FROM pg_class c CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
        WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
          AND has_table_privilege(role_name, c.oid, p)
        UNION ALL
        SELECT c.relname || ':' || p FROM pg_class c CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) p
        WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind = 'S' AND has_sequence_privilege(role_name, c.oid, p)
        UNION ALL
        SELECT c.relname || '.' || a.attname || ':' || p
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) p
        WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind = 'r'
          AND has_column_privilege(role_name, c.oid, a.attnum, p) AND NOT has_table_privilege(role_name, c.oid, p)
        UNION ALL
        SELECT f.proname || ':EXECUTE' FROM pg_proc f
        WHERE f.pronamespace = 'calo_recon'::regnamespace AND has_function_privilege(role_name, f.oid, 'EXECUTE')
          AND NOT has_function_privilege('public', f.oid, 'EXECUTE')
        UNION ALL
        SELECT 'schema:USAGE' WHERE has_schema_privilege(role_name, 'calo_recon', 'USAGE')) s
$$;

SELECT is((SELECT array_agg(kind ORDER BY kind) FROM calo_recon.role_kinds), ARRAY['analyst', 'monitor', 'operator', 'reader'],
          'four role kinds, listed once');
SELECT is((SELECT array_agg(role_name || ':' || kind ORDER BY role_name, kind) FROM calo_recon.role_grants),
          ARRAY['calo_tap_r_analyst:analyst', 'calo_tap_r_both:monitor', 'calo_tap_r_both:reader', 'calo_tap_r_monitor:monitor',
                'calo_tap_r_operator:operator', 'calo_tap_r_reader:reader'], 'grant_role records every grant');
SELECT is(pg_temp.held('calo_tap_r_fresh'), '{}'::text[], 'a role never granted holds nothing beyond PUBLIC');

-- the matrix, kind by kind
SELECT is(pg_temp.held('calo_tap_r_monitor'), ARRAY['amount_thresholds:SELECT', 'check_health:EXECUTE', 'health:SELECT',
                                                    'health_figures:EXECUTE', 'schema:USAGE'],
          'monitor: the health view and its counts, the amount thresholds, check_health() and the schema, nothing else');
SELECT is(pg_temp.held('calo_tap_r_reader'),
          ARRAY['amount_rule_hits:SELECT', 'amount_thresholds:SELECT', 'anomalies:SELECT', 'as_of:SELECT', 'balance_breaks:SELECT', 'daily_summary:SELECT',
                'discrepancies:SELECT', 'overdraft_episodes:SELECT', 'overdrafts:SELECT', 'precision_drift:SELECT',
                'schema:USAGE', 'transactions:SELECT', 'user_day_figures:EXECUTE', 'user_figures:EXECUTE',
                'user_overdraft_episodes:EXECUTE', 'user_summary:SELECT'],
          'reader: the BI views (and the functions they compute the queued users'' report totals with), transactions and the amount thresholds, nothing else');
SELECT is((SELECT array_agg(x ORDER BY x) FROM unnest(pg_temp.held('calo_tap_r_analyst')) x
           WHERE x ~ ':(INSERT|UPDATE|DELETE|TRUNCATE)$'),
          ARRAY['amount_thresholds.currency:INSERT', 'amount_thresholds.threshold:INSERT', 'amount_thresholds.threshold:UPDATE',
                'amount_thresholds:DELETE', 'anomaly_feedback.note:INSERT', 'anomaly_feedback.txn_id:INSERT', 'anomaly_feedback.verdict:INSERT',
                'anomaly_input_changes.changed_table:INSERT'],
          'analyst: writes only the feedback columns its author fills in, the amount thresholds, and the note that they changed');
SELECT is((SELECT array_agg(x ORDER BY x) FROM unnest(pg_temp.held('calo_tap_r_analyst')) x
           WHERE x IN ('acknowledge_alert:EXECUTE', 'resolve_alert:EXECUTE', 'purge:EXECUTE', 'raise_alerts:EXECUTE',
                       'refresh:EXECUTE', 'grant_role:EXECUTE', 'check_health:EXECUTE', 'alerts:SELECT', 'runs:SELECT')),
          NULL, 'analyst: no alert lifecycle, refresh, retention, grants, health, alerts or runs');
SELECT is((SELECT array_agg(x ORDER BY x) FROM unnest(pg_temp.held('calo_tap_r_operator')) x
           WHERE x ~ '^(role_grants|role_kinds|alert_kinds):(INSERT|UPDATE|DELETE|TRUNCATE)$'
              OR x IN ('grant_role:EXECUTE', 'revoke_role:EXECUTE', 'reapply_grants:EXECUTE')),
          NULL, 'operator: cannot change who gets what, the kinds, or the severities');
SELECT ok((SELECT ARRAY['acknowledge_alert:EXECUTE', 'resolve_alert:EXECUTE', 'purge:EXECUTE', 'raise_alerts:EXECUTE',
                        'refresh:EXECUTE', 'refresh_job:EXECUTE', 'refresh_start:EXECUTE', 'refresh_finish:EXECUTE',
                        'check_health:EXECUTE', 'health:SELECT', 'alert_groups:SELECT']
                  <@ pg_temp.held('calo_tap_r_operator')),
          'operator: runs the alert lifecycle, refresh, retention and health');
SELECT is(pg_temp.held('calo_tap_r_both'),
          (SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(pg_temp.held('calo_tap_r_reader') || pg_temp.held('calo_tap_r_monitor')) x),
          'reader + monitor: the union of both');

-- revoke_role
SELECT throws_ok($$SELECT * FROM calo_recon.revoke_role(NULL)$$, '22004', NULL, 'revoke_role(NULL): 22004');
SELECT throws_ok($$SELECT * FROM calo_recon.revoke_role('calo_tap_r_reader', 'admin')$$, '22023', NULL, 'unknown kind: 22023');
SELECT throws_ok($$SELECT * FROM calo_recon.revoke_role('calo_tap_no_such_role')$$, '42704', NULL, 'unknown role: 42704');
SELECT throws_ok($$SELECT * FROM calo_recon.revoke_role('calo_tap_r_reader', 'operator')$$, 'P0002', NULL,
                 'a kind the role does not hold: P0002');
SELECT throws_ok($$SELECT * FROM calo_recon.revoke_role('calo_tap_r_fresh')$$, 'P0002', NULL, 'a role never granted: P0002');
SELECT ok((SELECT count(*) > 0 FROM calo_recon.revoke_role('calo_tap_r_both', 'monitor')), 'revoke one of two kinds');
SELECT is(pg_temp.held('calo_tap_r_both'), pg_temp.held('calo_tap_r_reader'), '... the other kind stays, whole');
SELECT ok((SELECT count(*) > 0 FROM calo_recon.revoke_role('calo_tap_r_operator')), 'revoke every kind of an operator');
SELECT is(pg_temp.held('calo_tap_r_operator'), '{}'::text[], '... it holds nothing any more (column rights included)');
SELECT ok((SELECT count(*) > 0 FROM calo_recon.revoke_role('calo_tap_r_analyst')), 'revoke an analyst');
SELECT is(pg_temp.held('calo_tap_r_analyst'), '{}'::text[], '... feedback column rights gone too');
SELECT is((SELECT array_agg(role_name || ':' || kind ORDER BY role_name, kind) FROM calo_recon.role_grants),
          ARRAY['calo_tap_r_both:reader', 'calo_tap_r_monitor:monitor', 'calo_tap_r_reader:reader'], 'role_grants follows');

-- reapply_grants: what an update re-created is granted again
CREATE TEMP TABLE monitor_held AS SELECT pg_temp.held('calo_tap_r_monitor') AS held;
REVOKE EXECUTE ON FUNCTION calo_recon.check_health(interval) FROM calo_tap_r_monitor;  -- as a DROP + CREATE would
REVOKE SELECT ON calo_recon.health FROM calo_tap_r_monitor;
SELECT is(pg_temp.held('calo_tap_r_monitor'), ARRAY['amount_thresholds:SELECT', 'health_figures:EXECUTE', 'schema:USAGE'],
          'a re-created object has lost its grants');
CREATE ROLE calo_tap_r_gone;
SELECT count(*) FROM calo_recon.grant_role('calo_tap_r_gone', 'reader');
REVOKE ALL ON ALL TABLES IN SCHEMA calo_recon FROM calo_tap_r_gone;
REVOKE ALL ON ALL ROUTINES IN SCHEMA calo_recon FROM calo_tap_r_gone;
REVOKE ALL ON SCHEMA calo_recon FROM calo_tap_r_gone;
DROP ROLE calo_tap_r_gone;
SELECT is((SELECT array_agg(role_name || ':' || kind ORDER BY role_name, kind) FROM calo_recon.reapply_grants()),
          ARRAY['calo_tap_r_both:reader', 'calo_tap_r_monitor:monitor', 'calo_tap_r_reader:reader'],
          'reapply_grants() grants every recorded kind again, skipping dropped roles');
SELECT is(pg_temp.held('calo_tap_r_monitor'), (SELECT held FROM monitor_held), '... the monitor holds what it held');

-- the operator does its whole job through the functions, with no file role
-- and no write right on the record: the SECURITY DEFINER entry points
-- (calo_recon.definer_entry_points) write it; the operator writes directly
-- only configuration and the feedback columns an author fills in
CREATE ROLE calo_tap_r_op2;
SELECT count(*) FROM calo_recon.grant_role('calo_tap_r_op2', 'operator');
SELECT is((SELECT array_agg(x ORDER BY x) FROM unnest(pg_temp.held('calo_tap_r_op2')) x WHERE x ~ ':(INSERT|UPDATE|DELETE|TRUNCATE)$'),
          ARRAY['anomaly_feedback.note:INSERT', 'anomaly_feedback.txn_id:INSERT', 'anomaly_feedback.verdict:INSERT',
                'anomaly_input_changes.changed_table:INSERT',
                'currencies:DELETE', 'currencies:INSERT', 'currencies:UPDATE', 'models.active:UPDATE',
                'pending_reconcile.user_id:INSERT'],
          'operator: no write right on the record, only configuration, feedback and the queueing of a currency''s users');
SELECT is((SELECT array_agg(e.routine_name::text ORDER BY 1) FROM calo_recon.definer_entry_points e
           WHERE e.routine_name || ':EXECUTE' <> ALL (pg_temp.held('calo_tap_r_op2'))),
          NULL, 'operator: EXECUTE on every SECURITY DEFINER entry point');
SELECT is((SELECT array_agg(x ORDER BY x) FROM unnest(pg_temp.held('calo_tap_r_op2')) x
           WHERE x IN ('ingest_log_unreconciled:EXECUTE', 'ingest_file_unreconciled:EXECUTE', 'reconcile_pending:EXECUTE',
                       'refresh_work:EXECUTE', 'refresh_skipped:EXECUTE', 'raise_system_alert:EXECUTE', 'raise_run_alert:EXECUTE', 'alert_refuse:EXECUTE',
                       'lock_writer:EXECUTE', 'try_lock_writer:EXECUTE', 'lock_user_chains:EXECUTE',
                       'harden_entry_points:EXECUTE', 'revoke_all:EXECUTE', 'drop_stale_scores:EXECUTE')),
          NULL, 'operator: none of the internals the entry points call as the owner');
SET ROLE calo_tap_r_op2;
SELECT is((SELECT status FROM calo_recon.refresh('samples')), 'succeeded', 'operator: refresh ingests the samples');
SELECT ok((SELECT count(*) > 0 FROM calo_recon.transactions), '... which are stored');
SELECT lives_ok($$SELECT * FROM calo_recon.ingest_file('bad/walk')$$, 'operator: ingest_file of out-of-order and damaged files');
SELECT lives_ok($$SELECT * FROM calo_recon.raise_alerts()$$, 'operator: raise_alerts');
SELECT lives_ok($$SELECT * FROM calo_recon.acknowledge_alert((SELECT min(alert_id) FROM calo_recon.alerts WHERE status = 'open'))$$,
                'operator: acknowledge_alert');
SELECT lives_ok($$SELECT * FROM calo_recon.resolve_alert((SELECT min(alert_id) FROM calo_recon.alerts WHERE status <> 'resolved'), 'tap')$$,
                'operator: resolve_alert');
SELECT lives_ok($$SELECT calo_recon.train_model('tap-ops-roles', 0.05, 20, 32, 5)$$, 'operator: train_model');
SELECT lives_ok($$SELECT calo_recon.score_transactions(false)$$, 'operator: score_transactions');
SELECT lives_ok($$SELECT * FROM calo_recon.purge('1 year')$$, 'operator: purge');
SELECT throws_ok($$UPDATE calo_recon.transactions SET amount = 0$$, '42501', NULL, 'operator: cannot rewrite a transaction');
SELECT throws_ok($$DELETE FROM calo_recon.transactions$$, '42501', NULL, 'operator: cannot delete a transaction');
SELECT throws_ok($$DELETE FROM calo_recon.log_events$$, '42501', NULL, 'operator: cannot delete log events');
SELECT throws_ok($$UPDATE calo_recon.log_events SET body = '{}'$$, '42501', NULL, 'operator: cannot rewrite a parsed event');
SELECT throws_ok($$UPDATE calo_recon.alerts SET detail = '{}'$$, '42501', NULL, 'operator: cannot rewrite what an alert found');
SELECT throws_ok($$UPDATE calo_recon.alert_kinds SET severity = 'info'$$, '42501', NULL, 'operator: cannot downgrade a severity');
SELECT throws_ok($$SELECT * FROM calo_recon.revoke_role('calo_tap_r_reader')$$, '42501', NULL, 'operator: no revoke_role');
SELECT throws_ok($$INSERT INTO calo_recon.role_grants (role_name, kind) VALUES ('calo_tap_r_op2', 'operator')$$, '42501', NULL,
                 'operator: cannot record a grant for the next update to apply');
RESET ROLE;

-- harden_entry_points() (run last by the install and every update script)
-- puts the catalog back to the one list, whatever a script left behind
ALTER FUNCTION calo_recon.check_health(interval) SECURITY DEFINER;
ALTER FUNCTION calo_recon.purge(interval) SECURITY INVOKER RESET search_path;
GRANT EXECUTE ON FUNCTION calo_recon.purge(interval) TO PUBLIC;
SELECT is((SELECT array_agg(x ORDER BY x) FROM calo_recon.harden_entry_points() x
           WHERE x ~ '(check_health|purge)\('),
          ARRAY['ALTER ROUTINE calo_recon.check_health(interval) SECURITY INVOKER',
                'ALTER ROUTINE calo_recon.purge(interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp',
                'REVOKE ALL ON ROUTINE calo_recon.purge(interval) FROM PUBLIC'],
          'harden_entry_points(): a stray definer runs with its caller''s rights again, a listed one is hardened again');
SELECT ok((SELECT NOT c.prosecdef AND p.prosecdef AND p.proconfig = ARRAY['search_path=pg_catalog, pg_temp']
                  AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
           FROM pg_proc c, pg_proc p
           WHERE c.oid = 'calo_recon.check_health(interval)'::regprocedure AND p.oid = 'calo_recon.purge(interval)'::regprocedure),
          '... as the catalog shows');
INSERT INTO calo_recon.definer_entry_points (routine_name, writes) VALUES ('no_such_routine', 'nothing');
SELECT throws_ok($$SELECT * FROM calo_recon.harden_entry_points()$$, '42883',
                 'calo_recon.definer_entry_points names no routine: no_such_routine',
                 'harden_entry_points(): a listed name without a routine is 42883');
DELETE FROM calo_recon.definer_entry_points WHERE routine_name = 'no_such_routine';

SELECT * FROM finish();
ROLLBACK;
