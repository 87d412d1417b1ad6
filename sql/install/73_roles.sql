-- Access control recipes (README "Roles").  Roles are cluster-wide, so the
-- extension creates none: calo_recon.grant_role() runs the documented GRANT
-- statements for an existing role, with the caller's own rights (it is not
-- SECURITY DEFINER: only a role that may grant them, e.g. the owner, can).
--   reader   : USAGE on the schema, SELECT on the BI views and transactions
--   analyst  : reader + reads models, scores and feedback, records feedback,
--              sets the amount rule's thresholds
--              (EXECUTE on every function but the entry points and
--              internals named in grant_role)
--   monitor  : USAGE on the schema, SELECT on the health view and the
--              amount thresholds and EXECUTE on check_health(): how
--              calo_recon is doing, never a wallet
--   operator : reader + reads every table, and runs ingestion, refresh,
--              reconciliation, training, scoring, exports, the alert
--              lifecycle and retention THROUGH THE FUNCTIONS: it holds no
--              INSERT, UPDATE or DELETE on the record.
-- The record: nobody but the owner writes transactions, events, findings,
-- alerts, runs, models or scores directly.  The functions that write them
-- for an operator are SECURITY DEFINER entry points owned by the extension
-- owner, listed once in calo_recon.definer_entry_points and hardened by
-- harden_entry_points() (search_path pinned to pg_catalog, pg_temp; EXECUTE
-- revoked from PUBLIC and granted per kind), which the install and every
-- update script run last.  Who did what is still the caller's: the product
-- signs with session_user (the login role), which a SECURITY DEFINER call
-- does not change.  The entry points that touch files stay inside the
-- superuser-chosen calo_recon.import_directory / export_directory, so the
-- operator needs neither pg_read_server_files nor pg_write_server_files
-- (each of which reaches every file the server can); read_log_file(), which
-- writes nothing and returns a file's text, still requires the former.
-- Analysts judge the findings, run nothing that writes models or scores and
-- hold no write right on any table but two: feedback, through column
-- privileges on the columns a caller fills in, and the amount rule's
-- thresholds (amount_thresholds, signed by its defaults and trigger).  The
-- signature (analyst), the date and the ordering key of a feedback row come
-- from their defaults, which no recipe lets a role override, and no role of
-- a recipe may UPDATE or DELETE feedback: a correction is a new row.

-- The role kinds, and which roles got which: grant_role() records each grant
-- here, so that revoke_role() can undo it and an update script can re-apply
-- them to the objects it adds or re-creates (reapply_grants(), last in every
-- update script).
CREATE TABLE calo_recon.role_kinds (
    kind        text PRIMARY KEY,
    description text NOT NULL
);
COMMENT ON TABLE calo_recon.role_kinds IS 'The kinds of role grant_role() knows (README "Roles"): the one list of them';
COMMENT ON COLUMN calo_recon.role_kinds.kind IS 'Name of the kind';
COMMENT ON COLUMN calo_recon.role_kinds.description IS 'What a role of the kind may do';
INSERT INTO calo_recon.role_kinds (kind, description) VALUES
  ('reader',   'USAGE on the schema, SELECT on transactions, the BI views and the amount thresholds'),
  ('analyst',  'reader + reads models, scores, feedback and the feature views; records feedback; sets the amount rule''s thresholds'),
  ('operator', 'reader + reads every table; runs ingestion, reconciliation, refresh, training, scoring, exports, alerts and retention through the functions (no direct writes to the record); feedback'),
  ('monitor',  'USAGE on the schema, the health view, the amount thresholds and check_health(); no wallet data');

-- The operator's jobs that run with the extension owner's rights: the one
-- list of the SECURITY DEFINER routines (every overload of each name).
CREATE TABLE calo_recon.definer_entry_points (
    routine_name name PRIMARY KEY,
    writes       text NOT NULL
);
COMMENT ON TABLE calo_recon.definer_entry_points IS
  'The SECURITY DEFINER entry points (README "Roles"): the operator''s jobs that write the record, run as the extension owner; harden_entry_points() makes exactly these SECURITY DEFINER with search_path = pg_catalog, pg_temp and no EXECUTE for PUBLIC, grant_role() gives operators EXECUTE on them';
COMMENT ON COLUMN calo_recon.definer_entry_points.routine_name IS 'Name of the routine in the calo_recon schema (every overload)';
COMMENT ON COLUMN calo_recon.definer_entry_points.writes IS 'What it writes for the operator, who may not write it directly';
INSERT INTO calo_recon.definer_entry_points (routine_name, writes) VALUES
  ('ingest_log',         'transactions, log_events, balance errors, rejections, quarantine, ingested_files; reconciles'),
  ('ingest_file',        'what ingest_log writes, from files under calo_recon.import_directory; import_files'),
  ('reconcile',          'reconciliation_findings, the reconcile queue, the alerts the findings no longer support'),
  ('refresh_start',      'a runs row in status running'),
  ('refresh_finish',     'the work of a run (ingestion, reconciliation, scoring, alerts) and its outcome in runs'),
  ('train_model',        'models and their scores'),
  ('score_transactions', 'transaction_scores'),
  ('export_reports',     'CSV files under calo_recon.export_directory'),
  ('export_workbook',    'an Excel file under calo_recon.export_directory'),
  ('export_dashboard',   'an HTML file under calo_recon.export_directory'),
  ('acknowledge_alert',  'the acknowledgement of alerts'),
  ('resolve_alert',      'the resolution of alerts'),
  ('raise_alerts',       'alerts and alert_marks'),
  ('purge',              'old log text, resolved alerts, ended runs, quarantine, pg_cron history'),
  ('health_figures',     'nothing: reads, for the health view, the queues in the tables a Citus cluster distributes and the tables'' sizes'),
  ('alert_queued',       'alerts: the insert-time check of the transactions queued on a Citus cluster, and their entries of alert_queue');

-- Makes exactly the listed entry points SECURITY DEFINER, hardened; every
-- other routine of the schema runs with its caller's rights.  Run last by
-- the install and by every update script (which may have re-created one).
CREATE FUNCTION calo_recon.harden_entry_points()
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    routine regprocedure;
    definer boolean;
    statement text;
BEGIN
    SELECT pg_catalog.string_agg(e.routine_name, ', ' ORDER BY e.routine_name) INTO missing
    FROM calo_recon.definer_entry_points e
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                      WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.proname = e.routine_name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'calo_recon.definer_entry_points names no routine: %', missing
            USING ERRCODE = 'undefined_function';
    END IF;
    FOR routine, definer IN
        SELECT p.oid, p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'calo_recon'::regnamespace
          AND (p.prosecdef OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
        ORDER BY p.oid::regprocedure::text
    LOOP
        FOREACH statement IN ARRAY CASE WHEN definer THEN ARRAY[
                format('ALTER ROUTINE %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', routine),
                format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', routine)]
            ELSE ARRAY[format('ALTER ROUTINE %s SECURITY INVOKER', routine)] END
        LOOP
            EXECUTE statement;
            RETURN NEXT statement;
        END LOOP;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.harden_entry_points() IS
  'Makes exactly the routines named in calo_recon.definer_entry_points SECURITY DEFINER with search_path = pg_catalog, pg_temp and no EXECUTE for PUBLIC, and any other SECURITY DEFINER routine of the schema SECURITY INVOKER; returns the statements. 42883 when a listed name has no routine. The install and every update script run it last; only the owner may';
REVOKE EXECUTE ON FUNCTION calo_recon.harden_entry_points() FROM PUBLIC;

CREATE TABLE calo_recon.role_grants (
    role_name  name        NOT NULL,
    kind       text        NOT NULL REFERENCES calo_recon.role_kinds,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    granted_by name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (role_name, kind)
);
COMMENT ON TABLE calo_recon.role_grants IS
  'Every kind grant_role() gave a role, until revoke_role() takes it back; reapply_grants() grants them again (every update script ends with it)';
COMMENT ON COLUMN calo_recon.role_grants.role_name IS 'The role (cluster-wide; a dropped role is skipped)';
COMMENT ON COLUMN calo_recon.role_grants.kind IS 'The kind it was granted (calo_recon.role_kinds)';
COMMENT ON COLUMN calo_recon.role_grants.granted_at IS 'When it was first granted';
COMMENT ON COLUMN calo_recon.role_grants.granted_by IS 'Who granted it first';
SELECT pg_catalog.pg_extension_config_dump('calo_recon.role_grants', '');

CREATE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'raise_run_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued',
                                     'drop_stale_scores', 'parse_and_store_log', 'store_new_transactions'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    -- an operator's edit of a currency's minor unit queues the users with
    -- transactions in it through a trigger that runs with the writer's
    -- rights (track_currency_changes)
    queue_users text := 'GRANT INSERT (user_id) ON calo_recon.pending_reconcile TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name)
            || format(queue_users, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views and the amount thresholds, EXECUTE on the functions the views compute the queued users'' report totals with), monitor (schema USAGE, the health view, the amount thresholds and check_health(); no wallet data), analyst (reader + reading models, scores and feedback, recording feedback, setting the amount rule''s thresholds; no other write right on any table) or operator (reader + reading every table; refresh, ingestion, reconciliation, training, scoring, exports, alerts and retention through the SECURITY DEFINER entry points of calo_recon.definer_entry_points, with no write right on the record and no server-file role needed; currencies and the active model; feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights';
REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM PUBLIC;

-- every right on the schema and its objects, column rights included (they go
-- with the table's)
CREATE FUNCTION calo_recon.revoke_all(role_name name) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[] := ARRAY[
        format('REVOKE ALL ON ALL TABLES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON ALL ROUTINES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON SCHEMA calo_recon FROM %I', role_name)];
BEGIN
    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
END;
$$;
COMMENT ON FUNCTION calo_recon.revoke_all(name) IS
  'Internal to revoke_role() and reapply_grants(): revokes every right the role holds on the calo_recon schema and its tables, sequences and routines; returns the statements';
REVOKE EXECUTE ON FUNCTION calo_recon.revoke_all(name) FROM PUBLIC;

CREATE FUNCTION calo_recon.revoke_role(role_name name, kind text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    remaining text;
BEGIN
    IF role_name IS NULL THEN
        RAISE EXCEPTION 'role_name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind IS NOT NULL AND NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = revoke_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_grants g
                   WHERE g.role_name = revoke_role.role_name AND (revoke_role.kind IS NULL OR g.kind = revoke_role.kind)) THEN
        RAISE EXCEPTION 'role "%" was not granted calo_recon kind %', role_name, coalesce(kind, '(any)')
            USING ERRCODE = 'no_data_found', HINT = 'See calo_recon.role_grants.';
    END IF;
    -- everything the schema grants the role goes (column rights with their
    -- table's); the kinds it keeps are granted again
    RETURN QUERY SELECT x FROM calo_recon.revoke_all(role_name) AS x;
    DELETE FROM calo_recon.role_grants g
    WHERE g.role_name = revoke_role.role_name AND (revoke_role.kind IS NULL OR g.kind = revoke_role.kind);
    FOR remaining IN SELECT g.kind FROM calo_recon.role_grants g WHERE g.role_name = revoke_role.role_name ORDER BY g.kind LOOP
        RETURN QUERY SELECT x FROM calo_recon.grant_role(role_name, remaining) AS x;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.revoke_role(name, text) IS
  'Takes back from a role what grant_role() gave it: every kind, or only the one given (the others are granted again); returns the statements it ran. 22004 for a NULL role, 22023 for an unknown kind, 42704 for an unknown role, P0002 when the role does not hold it. Runs with the caller''s rights';
REVOKE EXECUTE ON FUNCTION calo_recon.revoke_role(name, text) FROM PUBLIC;

CREATE FUNCTION calo_recon.reapply_grants()
RETURNS TABLE (role_name name, kind text, statements bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    grantee name;
BEGIN
    -- each role's rights are rebuilt from its kinds: what a new version no
    -- longer grants a kind is taken back, what it adds is granted
    FOR grantee IN SELECT DISTINCT g.role_name FROM calo_recon.role_grants g
                   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = g.role_name)
                   ORDER BY 1
    LOOP
        PERFORM calo_recon.revoke_all(grantee);
        RETURN QUERY
        SELECT g.role_name, g.kind, (SELECT pg_catalog.count(*) FROM calo_recon.grant_role(g.role_name, g.kind))
        FROM calo_recon.role_grants g WHERE g.role_name = grantee ORDER BY g.kind;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.reapply_grants() IS
  'Rebuilds the rights of every role recorded in calo_recon.role_grants (roles dropped since are skipped) from its kinds: everything calo_recon granted it is revoked, then grant_role() runs for each kind, so that objects an update added or re-created are granted, and rights a kind no longer has are gone; every update script ends with it. Returns the statements grant_role() ran per role and kind';
REVOKE EXECUTE ON FUNCTION calo_recon.reapply_grants() FROM PUBLIC;
