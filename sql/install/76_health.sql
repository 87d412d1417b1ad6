-- Health (README "Health and monitoring"): one row that says whether
-- calo_recon is doing its job, for the monitor role and any monitoring
-- system, and check_health(), which fails when it is not.  The view reads
-- runs, alerts and the quarantine with its owner's rights, and the queues
-- and sizes through health_figures() (a definer entry point), so a monitor
-- needs SELECT on the view and EXECUTE on that, never a right on the record.

-- What the health view reads from the tables a Citus cluster distributes
-- (README "Scaling out with Citus"), and every table's size.  Citus reads
-- a distributed table's shards with the caller's rights, and a monitor has
-- no right on the wallet tables, so this runs as the owner (one of
-- calo_recon.definer_entry_points) and gives only counts and sizes.  On a
-- cluster a distributed or reference table's size is that of its shards.
CREATE FUNCTION calo_recon.health_figures(OUT users_pending_reconcile bigint, OUT alert_checks_queued bigint,
                                          OUT table_bytes jsonb, OUT users_pending_rescore bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sharded regclass[] := '{}';
    sizes jsonb := '{}';
BEGIN
    SELECT pg_catalog.count(DISTINCT p.user_id) INTO users_pending_reconcile FROM calo_recon.pending_reconcile p;
    SELECT pg_catalog.count(*) INTO alert_checks_queued FROM calo_recon.alert_queue q;
    SELECT pg_catalog.count(DISTINCT p.user_id) INTO users_pending_rescore FROM calo_recon.pending_rescore p;
    IF calo_recon.is_distributed() THEN
        SELECT pg_catalog.array_agg(l.table_name) INTO sharded FROM calo_recon.citus_layout() l;
        -- a Citus function: named only where Citus is installed
        EXECUTE 'SELECT pg_catalog.jsonb_object_agg(c.relname, pg_catalog.citus_total_relation_size(c.oid))
                 FROM pg_catalog.pg_class c WHERE c.oid = ANY ($1)'
        INTO sizes USING sharded;
    END IF;
    SELECT pg_catalog.jsonb_object_agg(c.relname, coalesce(sizes -> c.relname::text,
                                                           pg_catalog.to_jsonb(pg_catalog.pg_total_relation_size(c.oid)))
                                       ORDER BY c.relname)
    INTO table_bytes
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'calo_recon'::pg_catalog.regnamespace AND c.relkind = 'r';
END;
$$;
COMMENT ON FUNCTION calo_recon.health_figures() IS
  'Internal to the health view: the users queued for reconciliation and for rescoring, the transactions queued for their alert check on a Citus cluster, and each table''s size (on a cluster, its shards'' for the distributed and reference tables), read as the owner so that a monitor needs no right on the wallet tables';

CREATE VIEW calo_recon.health AS
WITH figures AS (
    SELECT f.* FROM calo_recon.health_figures() f
), last_run AS (
    SELECT r.* FROM calo_recon.runs r ORDER BY r.run_id DESC LIMIT 1
), last_success AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1
), last_ended AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1
), last_failure AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'failed' ORDER BY r.run_id DESC LIMIT 1
)
SELECT pg_catalog.now() AS checked_at,
       (SELECT s.finished_at FROM last_success s) AS last_success_at,
       pg_catalog.now() - (SELECT s.finished_at FROM last_success s) AS last_success_age,
       (SELECT r.run_id FROM last_run r) AS last_run_id,
       (SELECT r.status FROM last_run r) AS last_run_status,
       (SELECT e.status = 'failed' FROM last_ended e) AS last_ended_run_failed,
       (SELECT r.skipped_since FROM last_run r WHERE r.skipped_since IS NOT NULL) AS skipping_since,
       (SELECT f.run_id FROM last_failure f) AS last_error_run_id,
       (SELECT f.finished_at FROM last_failure f) AS last_error_at,
       (SELECT f.error FROM last_failure f) AS last_error,
       (SELECT f.error_detail FROM last_failure f) AS last_error_detail,
       (SELECT f.error_hint FROM last_failure f) AS last_error_hint,
       (SELECT pg_catalog.max(f.loaded_at) FROM calo_recon.ingested_files f WHERE f.transactions > 0) AS last_data_loaded_at,
       (SELECT pg_catalog.count(*) FROM calo_recon.runs r WHERE r.status = 'running') AS runs_running,
       (SELECT f.users_pending_reconcile FROM figures f) AS users_pending_reconcile,
       (SELECT pg_catalog.jsonb_object_agg(q.reason, q.n ORDER BY q.reason)
        FROM (SELECT x.reason, pg_catalog.count(*) AS n FROM calo_recon.quarantine x GROUP BY x.reason) q) AS quarantine_by_reason,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'open'
              GROUP BY k.severity) s) AS open_alerts,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'acknowledged'
              GROUP BY k.severity) s) AS acknowledged_alerts,
       (SELECT f.table_bytes FROM figures f) AS table_bytes,
       (SELECT f.alert_checks_queued FROM figures f) AS alert_checks_queued,
       (SELECT f.users_pending_rescore FROM figures f) AS users_pending_rescore;
COMMENT ON VIEW calo_recon.health IS
  'One row: is calo_recon doing its job (last successful refresh and its age, the last error with DETAIL and HINT, skipping, queue, quarantine, open alerts by severity, table sizes); for the monitor role, check_health() and postgres_exporter (README "Health and monitoring")';
COMMENT ON COLUMN calo_recon.health.checked_at IS 'now() of the reading transaction';
COMMENT ON COLUMN calo_recon.health.last_success_at IS 'When the last successful refresh() run finished; NULL when none has';
COMMENT ON COLUMN calo_recon.health.last_success_age IS 'checked_at - last_success_at: how fresh the reconciled data is';
COMMENT ON COLUMN calo_recon.health.last_run_id IS 'The newest run';
COMMENT ON COLUMN calo_recon.health.last_run_status IS 'Its status: running, succeeded, failed or skipped';
COMMENT ON COLUMN calo_recon.health.last_ended_run_failed IS 'Whether the newest run that did end (succeeded or failed) failed';
COMMENT ON COLUMN calo_recon.health.skipping_since IS 'When the newest run is one of a series of runs that could not start (writer lock held): when the series began';
COMMENT ON COLUMN calo_recon.health.last_error_run_id IS 'The newest failed run';
COMMENT ON COLUMN calo_recon.health.last_error_at IS 'When it finished';
COMMENT ON COLUMN calo_recon.health.last_error IS 'Its error: SQLSTATE: message';
COMMENT ON COLUMN calo_recon.health.last_error_detail IS 'Its error''s DETAIL';
COMMENT ON COLUMN calo_recon.health.last_error_hint IS 'Its error''s HINT';
COMMENT ON COLUMN calo_recon.health.last_data_loaded_at IS 'When the last file with transactions was ingested (see calo_recon.max_data_age)';
COMMENT ON COLUMN calo_recon.health.runs_running IS 'Runs in status running (more than one, or one that is old, is a run whose session stopped)';
COMMENT ON COLUMN calo_recon.health.users_pending_reconcile IS 'Users queued for the next reconciliation (calo_recon.pending_reconcile)';
COMMENT ON COLUMN calo_recon.health.quarantine_by_reason IS 'Quarantined items per reason, as a JSON object; NULL when there are none';
COMMENT ON COLUMN calo_recon.health.open_alerts IS 'Open alerts (neither acknowledged nor resolved) per severity, as a JSON object with every severity';
COMMENT ON COLUMN calo_recon.health.acknowledged_alerts IS 'Acknowledged, unresolved alerts per severity, as a JSON object with every severity';
COMMENT ON COLUMN calo_recon.health.table_bytes IS 'Size on disk of each calo_recon table, indexes and TOAST included, as a JSON object (on a Citus cluster, of all its shards for the distributed and reference tables)';
COMMENT ON COLUMN calo_recon.health.users_pending_rescore IS 'Users whose rows changed since they were scored, queued for the next score_transactions() or refresh() (calo_recon.pending_rescore)';
COMMENT ON COLUMN calo_recon.health.alert_checks_queued IS 'On a Citus cluster: transactions stored where no insert-time alert check ran (sent to a worker, or the coordinator without calo_recon preloaded), waiting for the next raise_alerts(); always 0 on one node. One that stays above 0 means raise_alerts() (refresh()) is not running';

-- For pg_cron or any monitoring system that judges by an error: RH001
-- (calo_recon unhealthy) says what is wrong, every problem at once.
CREATE FUNCTION calo_recon.check_health(max_age interval DEFAULT NULL)
RETURNS calo_recon.health
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h calo_recon.health;
    problems text[] := '{}';
    detail text;  -- the failed run's DETAIL, if any
BEGIN
    IF max_age < interval '0' THEN
        RAISE EXCEPTION 'max_age must not be negative: %', max_age USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x.* INTO h FROM calo_recon.health x;
    IF h.last_success_at IS NULL THEN
        problems := problems || 'no refresh() run has succeeded'::text;
    ELSIF h.last_success_age > max_age THEN
        problems := problems || pg_catalog.format('the last successful refresh() finished %s ago, longer than %s',
                                                  h.last_success_age, max_age);
    END IF;
    IF h.last_ended_run_failed THEN
        problems := problems || pg_catalog.format('refresh() run %s failed: %s', h.last_error_run_id, h.last_error);
        detail := h.last_error_detail;
    END IF;
    IF (h.open_alerts ->> 'critical')::bigint > 0 THEN
        problems := problems || pg_catalog.format('%s critical alerts are open (not acknowledged)', h.open_alerts ->> 'critical');
    END IF;
    IF pg_catalog.cardinality(problems) > 0 AND detail IS NOT NULL THEN
        RAISE EXCEPTION 'calo_recon is unhealthy: %', pg_catalog.array_to_string(problems, '; ')
            USING ERRCODE = 'RH001', DETAIL = detail,
                  HINT = coalesce(h.last_error_hint, 'See calo_recon.health, calo_recon.runs and calo_recon.alert_groups.');
    ELSIF pg_catalog.cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'calo_recon is unhealthy: %', pg_catalog.array_to_string(problems, '; ')
            USING ERRCODE = 'RH001',
                  HINT = coalesce(h.last_error_hint, 'See calo_recon.health, calo_recon.runs and calo_recon.alert_groups.');
    END IF;
    RETURN h;
END;
$$;
COMMENT ON FUNCTION calo_recon.check_health(interval) IS
  'Returns the health row, or raises RH001 (calo_recon unhealthy) naming every problem: no successful refresh() run, or the last one older than max_age (not checked when NULL), the last run that ended failed (its DETAIL and HINT passed on), open critical alerts. 22023 for a negative max_age. For pg_cron and monitoring systems; the monitor role may run it';
REVOKE EXECUTE ON FUNCTION calo_recon.check_health(interval) FROM PUBLIC;
