-- Access control recipes (README "Roles").  Roles are cluster-wide, so the
-- extension creates none: calo_recon.grant_role() runs the documented GRANT
-- statements for an existing role, with the caller's own rights (it is not
-- SECURITY DEFINER: only a role that may grant them, e.g. the owner, can).
--   reader   : USAGE on the schema, SELECT on the BI views and transactions
--   analyst  : reader + reads models, scores and feedback, records feedback
--              (EXECUTE on every function but the operator-only ones below)
--   operator : reader + every table and function of the schema (refresh,
--              ingest, reconcile, training, scoring, exports) but grant_role;
--              server file access itself comes from membership in
--              pg_read_server_files / pg_write_server_files, which a
--              superuser grants.
-- The record: functions run with the caller's rights, so whoever runs one
-- that writes a table holds that write right directly too.  Analysts, who
-- judge the findings, therefore run nothing that writes models or scores and
-- hold no write right on any table; the one thing they write is feedback,
-- through column privileges on the columns a caller fills in.  The
-- signature (analyst), the date and the ordering key of a feedback row come
-- from their defaults, which no recipe lets a role override, and no role of
-- a recipe may UPDATE or DELETE feedback: a correction is a new row.

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
                          'daily_summary', 'as_of'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- what only operators run: everything that reads server files, writes
    -- wallets, findings, models or scores, or writes files; analysts may
    -- execute the rest
    operator_only text[] := ARRAY['ingest_log', 'ingest_log_unreconciled', 'ingest_file', 'read_log_file',
                                  'reconcile', 'refresh', 'check_last_refresh', 'train_model',
                                  'score_transactions', 'export_reports', 'export_workbook', 'export_dashboard', 'grant_role',
                                  'lock_writer', 'try_lock_writer', 'writer_lock_holder', 'lock_user_chains',
                                  'refresh_work', 'reconcile_pending', 'ingest_file_unreconciled'];
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
