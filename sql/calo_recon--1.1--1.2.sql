\echo Use "ALTER EXTENSION calo_recon UPDATE TO '1.2'" to load this file. \quit
-- calo_recon 1.1 -> 1.2 (under development: this script may change until 1.2
-- is released, then it is frozen like the scripts before it). Every change to
-- sql/install/*.sql is also written here as a migration.

-- ops (issue 11): alert lifecycle and severity (sql/install/72_alerts.sql,
-- 74_alert_lifecycle.sql), roles (73_roles.sql).
CREATE TABLE calo_recon.alert_kinds (
    alert_kind  text PRIMARY KEY,
    severity    text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    raised_by   text NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE calo_recon.alert_kinds IS
  'Every kind of alert with its severity: the one definition of both (README "Alert lifecycle")';
COMMENT ON COLUMN calo_recon.alert_kinds.alert_kind IS 'Name of the kind, as in calo_recon.alerts.alert_kind';
COMMENT ON COLUMN calo_recon.alert_kinds.severity IS 'critical (money may be wrong: act now), warning (look today), info (review)';
COMMENT ON COLUMN calo_recon.alert_kinds.raised_by IS 'What raises it: the insert-time check of new transactions, reconcile(), refresh() or check_health()';
COMMENT ON COLUMN calo_recon.alert_kinds.description IS 'When it is raised';
INSERT INTO calo_recon.alert_kinds (alert_kind, severity, raised_by, description) VALUES
  ('arithmetic',   'critical', 'insert', 'the balances of a new transaction do not add up (same core as reconcile())'),
  ('chain',        'critical', 'insert', 'old_balance differs from the new_balance of the user''s previous stored transaction in chain order'),
  ('out_of_range', 'warning',  'insert', 'a value too large or too precise to check exactly'),
  ('overdraft',    'warning',  'insert', 'new_balance < 0'),
  ('amount_rule',  'info',     'insert', 'amount > calo_recon.amount_threshold'),
  ('model',        'info',     'insert', 'the active model''s score is above its threshold');
ALTER TABLE calo_recon.alerts
    DROP CONSTRAINT alerts_alert_kind_check,
    ADD CONSTRAINT alerts_alert_kind_fkey FOREIGN KEY (alert_kind) REFERENCES calo_recon.alert_kinds,
    ADD COLUMN resolved_by name,
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by name,
    ADD COLUMN acknowledge_note text,
    ADD COLUMN run_id bigint DEFAULT NULLIF(pg_catalog.current_setting('calo_recon_run.run_id', true), '')::bigint,
    ADD COLUMN raised_in xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    ADD CONSTRAINT alerts_resolved_by_check CHECK (resolved_at IS NOT NULL OR resolved_by IS NULL),
    ADD CONSTRAINT alerts_acknowledged_check CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL)
                                                    AND (acknowledged_at IS NOT NULL OR acknowledge_note IS NULL));
ALTER TABLE calo_recon.alerts
    ADD COLUMN status text NOT NULL GENERATED ALWAYS AS (
        CASE WHEN resolved_at IS NOT NULL THEN 'resolved'
             WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
             ELSE 'open' END) STORED;
COMMENT ON TABLE calo_recon.alerts IS
  'Alerts raised when a transaction was inserted (calo_recon.alerts on), or when an out-of-order insert re-checked its chain; each was also sent as NOTIFY calo_recon_alerts. Lifecycle: open, acknowledged (acknowledge_alert), resolved (resolve_alert, or by the reconciliation when it no longer supports the alert); see status';
COMMENT ON COLUMN calo_recon.alerts.alert_id IS 'Surrogate key; the notification payload carries it and alert_kind only';
COMMENT ON COLUMN calo_recon.alerts.txn_id IS 'Transaction that raised the alert';
COMMENT ON COLUMN calo_recon.alerts.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.alerts.alert_kind IS
  'Kind of alert, one of calo_recon.alert_kinds (which gives its severity): arithmetic, chain or out_of_range (as in balance_breaks, chain against the previous transaction of the user, concurrent inserts of the user included), overdraft (new_balance < 0), amount_rule (amount > calo_recon.amount_threshold), model (active model score > its threshold)';
COMMENT ON COLUMN calo_recon.alerts.detail IS
  'What was found: expected, actual, difference and tolerance for balance findings, new_balance for overdrafts, amount and threshold for the amount rule, score, threshold and model_id for the model';
COMMENT ON COLUMN calo_recon.alerts.created_at IS 'When the alert was raised (the inserting transaction''s start time)';
COMMENT ON COLUMN calo_recon.alerts.resolved_at IS
  'NULL while the alert is not resolved; else when it was resolved (the resolving transaction''s start time), by resolve_alert() or by the reconciliation';
COMMENT ON COLUMN calo_recon.alerts.resolution IS
  'Why the alert was resolved: the note given to resolve_alert(), or, resolved by the reconciliation, a later out-of-order insert re-checked the chain (no break any more, or a break against another predecessor, raised as a new alert), or reconcile() found no such finding; NULL until resolved';
COMMENT ON COLUMN calo_recon.alerts.resolved_by IS
  'Login role (session_user) of the session that resolved the alert, by resolve_alert() or by a statement whose reconciliation resolved it; stamped by the product';
COMMENT ON COLUMN calo_recon.alerts.acknowledged_at IS 'When someone took the alert on with acknowledge_alert(); NULL until then';
COMMENT ON COLUMN calo_recon.alerts.acknowledged_by IS 'Login role (session_user) that acknowledged it; stamped by the product';
COMMENT ON COLUMN calo_recon.alerts.acknowledge_note IS 'Note given to acknowledge_alert(), if any';
COMMENT ON COLUMN calo_recon.alerts.run_id IS 'calo_recon.runs row of the refresh() run that raised it; NULL when raised outside a run (an ingest, an insert)';
COMMENT ON COLUMN calo_recon.alerts.raised_in IS 'Database transaction that raised it: with user_id and alert_kind, the alert''s group (see alert_groups)';
COMMENT ON COLUMN calo_recon.alerts.status IS 'open, acknowledged or resolved, from resolved_at and acknowledged_at';
COMMENT ON INDEX calo_recon.alerts_open_idx IS 'At most one unresolved alert of a kind per transaction';
-- Alert lifecycle (README "Alert lifecycle"): open -> acknowledged ->
-- resolved, with who, when and a note.  Functions run with the caller's
-- rights (no SECURITY DEFINER), so whoever may acknowledge may also UPDATE
-- calo_recon.alerts; a trigger therefore stamps who and when itself, from the
-- session's login role and the transaction time, whatever an UPDATE says, so
-- the record cannot be signed in someone else's name.  The reconciliation's
-- own resolutions (the insert-time re-check, reconcile()) are UPDATEs of
-- resolved_at and resolution, stamped the same way.

CREATE FUNCTION calo_recon.alert_stamp_lifecycle() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.resolved_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already resolved', OLD.alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Resolved by %s at %s: %s', OLD.resolved_by, OLD.resolved_at, OLD.resolution),
                  HINT = 'A resolved alert is final; a new finding raises a new alert.';
    END IF;
    IF (NEW.acknowledged_at, NEW.acknowledged_by, NEW.acknowledge_note)
       IS DISTINCT FROM (OLD.acknowledged_at, OLD.acknowledged_by, OLD.acknowledge_note) THEN
        IF OLD.acknowledged_at IS NOT NULL THEN
            RAISE EXCEPTION 'alert % is already acknowledged', OLD.alert_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = pg_catalog.format('Acknowledged by %s at %s.', OLD.acknowledged_by, OLD.acknowledged_at);
        END IF;
        NEW.acknowledged_at := pg_catalog.now();
        NEW.acknowledged_by := session_user;
    END IF;
    IF NEW.resolved_at IS NOT NULL THEN
        NEW.resolved_at := pg_catalog.now();
        NEW.resolved_by := session_user;
    ELSIF NEW.resolved_by IS NOT NULL THEN
        NEW.resolved_by := NULL;  -- the CHECK explains: only a resolved alert has a resolver
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_stamp_lifecycle() IS
  'Trigger: stamps who (session_user) and when (now()) of an acknowledgement or resolution of calo_recon.alerts, and refuses to change a resolved alert or acknowledge one twice (55000)';
CREATE TRIGGER alerts_stamp_lifecycle
    BEFORE UPDATE ON calo_recon.alerts
    FOR EACH ROW EXECUTE FUNCTION calo_recon.alert_stamp_lifecycle();

-- why acknowledge_alert/resolve_alert changed nothing: the alert is missing
-- (P0002) or its state refuses it (55000, from the stamping trigger's rules)
CREATE FUNCTION calo_recon.alert_refuse(alert_id bigint, action text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a calo_recon.alerts;
BEGIN
    SELECT x.* INTO a FROM calo_recon.alerts x WHERE x.alert_id = alert_refuse.alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_refuse.alert_id USING ERRCODE = 'no_data_found';
    END IF;
    IF a.resolved_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already resolved', a.alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Resolved by %s at %s: %s', a.resolved_by, a.resolved_at, a.resolution);
    END IF;
    RAISE EXCEPTION 'alert % is already acknowledged', a.alert_id
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = pg_catalog.format('Acknowledged by %s at %s.', a.acknowledged_by, a.acknowledged_at),
              HINT = CASE action WHEN 'acknowledge' THEN 'Resolve it with calo_recon.resolve_alert() once handled.' END;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_refuse(bigint, text) IS
  'Internal to acknowledge_alert() and resolve_alert(): raises why the alert could not be changed (P0002 missing, 55000 already acknowledged or resolved, naming by whom and when)';
REVOKE EXECUTE ON FUNCTION calo_recon.alert_refuse(bigint, text) FROM PUBLIC;

CREATE FUNCTION calo_recon.acknowledge_alert(alert_id bigint, note text DEFAULT NULL,
                                             whole_group boolean DEFAULT false)
RETURNS SETOF calo_recon.alerts
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed bigint;
BEGIN
    IF alert_id IS NULL OR whole_group IS NULL THEN
        RAISE EXCEPTION 'alert_id and whole_group must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- waits for a concurrent acknowledgement or resolution of these rows,
    -- then re-reads them: the second of two people is told who came first
    RETURN QUERY
    UPDATE calo_recon.alerts a SET acknowledged_at = pg_catalog.now(), acknowledge_note = note
    WHERE a.acknowledged_at IS NULL AND a.resolved_at IS NULL
      AND (a.alert_id = acknowledge_alert.alert_id
           OR (whole_group AND (a.raised_in, a.user_id, a.alert_kind) =
               (SELECT g.raised_in, g.user_id, g.alert_kind FROM calo_recon.alerts g
                WHERE g.alert_id = acknowledge_alert.alert_id)))
    RETURNING a.*;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 0 THEN
        PERFORM calo_recon.alert_refuse(alert_id, 'acknowledge');
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.acknowledge_alert(bigint, text, boolean) IS
  'Acknowledges an open alert (status acknowledged, acknowledged_by the session''s login role, acknowledged_at now, the note), or with whole_group every open alert of its group (same raising transaction, user and kind); returns the rows changed. P0002 when there is no such alert, 55000 when it is already acknowledged or resolved (naming by whom and when): of two people acknowledging at once, the second waits for the first and gets 55000';
REVOKE EXECUTE ON FUNCTION calo_recon.acknowledge_alert(bigint, text, boolean) FROM PUBLIC;

CREATE FUNCTION calo_recon.resolve_alert(alert_id bigint, note text, whole_group boolean DEFAULT false)
RETURNS SETOF calo_recon.alerts
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed bigint;
BEGIN
    IF alert_id IS NULL OR whole_group IS NULL THEN
        RAISE EXCEPTION 'alert_id and whole_group must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.btrim(coalesce(note, '')) = '' THEN
        RAISE EXCEPTION 'resolving an alert needs a note saying why'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: calo_recon.resolve_alert(42, ''refund issued, ticket FIN-123'').';
    END IF;
    RETURN QUERY
    UPDATE calo_recon.alerts a SET resolved_at = pg_catalog.now(), resolution = note
    WHERE a.resolved_at IS NULL
      AND (a.alert_id = resolve_alert.alert_id
           OR (whole_group AND (a.raised_in, a.user_id, a.alert_kind) =
               (SELECT g.raised_in, g.user_id, g.alert_kind FROM calo_recon.alerts g
                WHERE g.alert_id = resolve_alert.alert_id)))
    RETURNING a.*;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 0 THEN
        PERFORM calo_recon.alert_refuse(alert_id, 'resolve');
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.resolve_alert(bigint, text, boolean) IS
  'Resolves an open or acknowledged alert with a note saying why (status resolved, resolved_by the session''s login role, resolved_at now), or with whole_group every unresolved alert of its group; returns the rows changed. 22023 without a note, P0002 when there is no such alert, 55000 when it is already resolved (naming by whom, when and why)';
REVOKE EXECUTE ON FUNCTION calo_recon.resolve_alert(bigint, text, boolean) FROM PUBLIC;

CREATE VIEW calo_recon.alert_groups AS
SELECT a.raised_in, pg_catalog.max(a.run_id) AS run_id, a.user_id, a.alert_kind, k.severity,
       pg_catalog.count(*) AS alerts,
       pg_catalog.count(*) FILTER (WHERE a.status = 'open') AS open,
       pg_catalog.count(*) FILTER (WHERE a.status = 'acknowledged') AS acknowledged,
       pg_catalog.min(a.alert_id) AS first_alert_id,
       pg_catalog.min(a.created_at) AS created_at
FROM calo_recon.alerts a
JOIN calo_recon.alert_kinds k ON k.alert_kind = a.alert_kind
GROUP BY a.raised_in, a.user_id, a.alert_kind, k.severity;
COMMENT ON VIEW calo_recon.alert_groups IS
  'Alerts grouped by the transaction that raised them (a refresh() run, an ingest), the user and the kind: what on-call looks at first; acknowledge or resolve a whole group with acknowledge_alert(first_alert_id, note, true)';
COMMENT ON COLUMN calo_recon.alert_groups.raised_in IS 'Database transaction that raised the group';
COMMENT ON COLUMN calo_recon.alert_groups.run_id IS 'refresh() run that raised it, NULL outside a run';
COMMENT ON COLUMN calo_recon.alert_groups.user_id IS 'Wallet owner (NULL for alerts about the system)';
COMMENT ON COLUMN calo_recon.alert_groups.alert_kind IS 'Kind of alert';
COMMENT ON COLUMN calo_recon.alert_groups.severity IS 'Severity of the kind (calo_recon.alert_kinds)';
COMMENT ON COLUMN calo_recon.alert_groups.alerts IS 'Alerts in the group';
COMMENT ON COLUMN calo_recon.alert_groups.open IS 'Of which open (neither acknowledged nor resolved)';
COMMENT ON COLUMN calo_recon.alert_groups.acknowledged IS 'Of which acknowledged and not resolved';
COMMENT ON COLUMN calo_recon.alert_groups.first_alert_id IS 'Lowest alert_id of the group, to pass to acknowledge_alert or resolve_alert with whole_group';
COMMENT ON COLUMN calo_recon.alert_groups.created_at IS 'When the group''s first alert was raised';
-- refresh_work() names its run for the alerts it raises: its signature is
-- unchanged, so refresh() and refresh_job() keep calling it
DROP FUNCTION calo_recon.refresh_work(bigint);
CREATE FUNCTION calo_recon.refresh_work(run_id bigint)
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
    ingested record;
    reconciled record;
BEGIN
    SELECT r.* INTO run FROM calo_recon.runs r WHERE r.run_id = refresh_work.run_id;
    IF NOT FOUND OR run.status <> 'running' THEN
        RAISE EXCEPTION 'calo_recon.runs has no run % in status running', refresh_work.run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- runs that this one holds the lock against: their sessions stopped
    -- running them (terminated, crashed) without recording how they ended
    -- the alerts this run raises name it (calo_recon.alerts.run_id's default)
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', run.run_id::text, true);
    UPDATE calo_recon.runs r
       SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
           error = 'did not finish: process ' || r.backend_pid
                   || ' stopped running it before recording an outcome (terminated or crashed)'
     WHERE r.status = 'running' AND r.run_id <> run.run_id;
    BEGIN
        -- the users of the new files are queued: reconciled once, below
        SELECT * INTO ingested FROM calo_recon.ingest_file_unreconciled(run.folder);
        run.files := ingested.new_files;
        run.skipped_files := ingested.skipped_files;
        run.events := ingested.events;
        run.transactions := ingested.transactions;

        SELECT * INTO reconciled FROM calo_recon.reconcile_pending();
        IF FOUND THEN
            run.reconciled_users := reconciled.users;
            run.breaks := reconciled.arithmetic_breaks + reconciled.chain_breaks;
        END IF;

        run.scored := calo_recon.score_transactions(true);
        run.status := 'succeeded';
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- the work above is rolled back; the run row stays, saying why (a
        -- cancel ends the work as asked, and the run is recorded as failed)
        run.status := 'failed';
        run.error := SQLSTATE || ': ' || SQLERRM;
        run.files := 0; run.skipped_files := 0; run.events := 0; run.transactions := 0;
        run.reconciled_users := 0; run.breaks := 0; run.scored := 0;
        RAISE WARNING 'calo_recon.refresh() run % failed: %', run.run_id, run.error;
    END;
    run.finished_at := pg_catalog.clock_timestamp();
    UPDATE calo_recon.runs r
       SET finished_at = run.finished_at, status = run.status, files = run.files,
           skipped_files = run.skipped_files, events = run.events,
           transactions = run.transactions, reconciled_users = run.reconciled_users,
           breaks = run.breaks, scored = run.scored, error = run.error
     WHERE r.run_id = run.run_id;
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', '', true);
    RETURN run;
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh_work(bigint) IS
  'Internal to refresh() and refresh_job(): the work of the run in status running with this run_id, recorded in its row';
REVOKE EXECUTE ON FUNCTION calo_recon.refresh_work(bigint) FROM PUBLIC;
DROP FUNCTION calo_recon.grant_role(name, text);
CREATE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- what only operators run: everything that reads server files, writes
    -- wallets, findings, models or scores, or writes files; analysts may
    -- execute the rest
    operator_only text[] := ARRAY['ingest_log', 'ingest_log_unreconciled', 'ingest_file', 'read_log_file',
                                  'reconcile', 'refresh', 'check_last_refresh', 'train_model',
                                  'score_transactions', 'export_reports', 'export_workbook', 'grant_role',
                                  'lock_writer', 'try_lock_writer', 'writer_lock_holder', 'lock_user_chains',
                                  'refresh_work', 'reconcile_pending', 'ingest_file_unreconciled',
                                  'acknowledge_alert', 'resolve_alert', 'alert_refuse'];
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind NOT IN ('reader', 'analyst', 'operator') THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use reader, analyst or operator.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (operator_only))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA calo_recon TO %I', role_name)
            -- table-level rights first: revoking one revokes its column rights
            || format('REVOKE INSERT, UPDATE, DELETE ON calo_recon.anomaly_feedback FROM %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        statements := statements
            || format('GRANT EXECUTE ON ALL ROUTINES IN SCHEMA calo_recon TO %I', role_name)
            || format('REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM %I', role_name);
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views), analyst (reader + reading models, scores and feedback, recording feedback; no write right on any table) or operator (reader + refresh, ingestion, reconciliation, training, scoring, exports, feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights; server file access needs pg_read_server_files / pg_write_server_files, granted by a superuser';
REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM PUBLIC;
-- end of ops (issue 11)
