-- Alerts that no single inserted transaction raises (README "More alerts"):
-- discrepancies and conflicts found by ingestion, failed or long-skipped
-- refresh() runs, stale data.  refresh() raises them at the end of every run
-- (and refresh_skipped when it gives up waiting); raise_alerts() does the same
-- on demand.  Like the insert-time alerts they honour calo_recon.alerts: with
-- it off, what is found is recorded as seen (the high-water marks below move
-- on) without alerting, which is how a backfill pages nobody.

CREATE FUNCTION calo_recon.ops_settings(OUT refresh_max_skip interval, OUT max_data_age interval,
                                        OUT alert_backfill_age interval)
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_ops_settings';
COMMENT ON FUNCTION calo_recon.ops_settings() IS
  'The operations settings calo_recon.refresh_max_skip, calo_recon.max_data_age and calo_recon.alert_backfill_age of this session as intervals (NULL when 0, off)';
REVOKE EXECUTE ON FUNCTION calo_recon.ops_settings() FROM PUBLIC;

-- How far raise_alerts() has looked: each new balance error or conflict is
-- considered once.  Ingests and refresh() take the writer lock, so ids are
-- handed out in commit order for the rows they write.
CREATE TABLE calo_recon.alert_marks (
    source  text   PRIMARY KEY CHECK (source IN ('balance_errors', 'quarantine')),
    last_id bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE calo_recon.alert_marks IS
  'High-water marks of raise_alerts(): the last balance_errors.error_id and quarantine.quarantine_id it has considered for discrepancy and conflict alerts';
COMMENT ON COLUMN calo_recon.alert_marks.source IS 'balance_errors (discrepancies) or quarantine (conflicts)';
COMMENT ON COLUMN calo_recon.alert_marks.last_id IS 'Highest id considered; rows above it are new';
-- no rows at install: raise_alerts() adds them, so a restored dump (which
-- holds them) never collides with the extension's own
SELECT pg_catalog.pg_extension_config_dump('calo_recon.alert_marks', '');

-- An alert about the system (no user, no transaction): at most one open per
-- kind, so a failure repeated every five minutes stays one alert.
CREATE FUNCTION calo_recon.raise_system_alert(alert_kind text, detail jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    raised bigint;
BEGIN
    IF NOT pg_catalog.current_setting('calo_recon.alerts')::boolean THEN
        RETURN NULL;
    END IF;
    INSERT INTO calo_recon.alerts (alert_kind, detail)
    VALUES (raise_system_alert.alert_kind, raise_system_alert.detail)
    ON CONFLICT DO NOTHING
    RETURNING alerts.alert_id INTO raised;
    IF raised IS NOT NULL THEN
        -- the payload of the insert-time notification (one home: alerts_notice)
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(ARRAY[raised], ARRAY[alert_kind]));
    END IF;
    RETURN raised;
END;
$$;
COMMENT ON FUNCTION calo_recon.raise_system_alert(text, jsonb) IS
  'Internal: raises an alert of a kind about the system (no user or transaction) unless one is open already or calo_recon.alerts is off; returns its alert_id, else NULL';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_system_alert(text, jsonb) FROM PUBLIC;

-- The alert of a run that ended failed: refresh_skipped when it failed for
-- skipping too long (skipped_since), else refresh_failed; at most one open.
CREATE FUNCTION calo_recon.raise_run_alert(run calo_recon.runs) RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT calo_recon.raise_system_alert(
        CASE WHEN run.skipped_since IS NULL THEN 'refresh_failed' ELSE 'refresh_skipped' END,
        pg_catalog.jsonb_build_object('run_id', run.run_id, 'error', run.error,
                                      'error_detail', run.error_detail, 'error_hint', run.error_hint))
    WHERE run.status = 'failed'
$$;
COMMENT ON FUNCTION calo_recon.raise_run_alert(calo_recon.runs) IS
  'Internal to raise_alerts() and refresh(): raises refresh_failed (refresh_skipped when it failed for skipping longer than calo_recon.refresh_max_skip) for a failed run unless one is open or calo_recon.alerts is off; returns its alert_id, else NULL';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_run_alert(calo_recon.runs) FROM PUBLIC;

CREATE FUNCTION calo_recon.raise_alerts()
RETURNS TABLE (alert_kind text, raised bigint, resolved bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    settings record := calo_recon.ops_settings();
    paging boolean := pg_catalog.current_setting('calo_recon.alerts')::boolean;
    errors_mark bigint;
    quarantine_mark bigint;
    errors_top bigint;
    quarantine_top bigint;
    last_run calo_recon.runs;
    last_loaded timestamptz;
    ids bigint[] := '{}';
    kinds text[] := '{}';
    system_raised bigint[] := '{}';
    raised_id bigint;
    resolved_kinds text[] := '{}';
BEGIN
    -- the writer lock first (src/glue/locks.h): refresh() takes the marks'
    -- row locks while holding it, so taking them first could deadlock with
    -- a refresh() when this transaction then ingests or reconciles
    PERFORM calo_recon.lock_writer();
    -- one raiser at a time: the marks are read and moved under a row lock
    INSERT INTO calo_recon.alert_marks (source) VALUES ('balance_errors'), ('quarantine') ON CONFLICT DO NOTHING;
    SELECT m.last_id INTO errors_mark FROM calo_recon.alert_marks m WHERE m.source = 'balance_errors' FOR UPDATE;
    SELECT m.last_id INTO quarantine_mark FROM calo_recon.alert_marks m WHERE m.source = 'quarantine' FOR UPDATE;
    SELECT pg_catalog.max(e.error_id) INTO errors_top FROM calo_recon.balance_errors e;
    SELECT pg_catalog.max(q.quarantine_id) INTO quarantine_top FROM calo_recon.quarantine q;

    -- on a Citus cluster, the insert-time check of the transactions a bare
    -- INSERT or COPY stored (alert_queue, always empty on one node)
    PERFORM calo_recon.alert_queued();

    -- new discrepancies, one alert each (a user's without a transaction share
    -- one open alert)
    WITH raised AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT d.txn_id, d.user_id, 'discrepancy',
               pg_catalog.jsonb_build_object('error_id', d.error_id, 'subscription_balance', d.subscription_balance,
                                             'payment_balance', d.payment_balance, 'difference', d.difference,
                                             'tolerance', d.tolerance, 'currency', d.currency,
                                             'logged_at', d.logged_at, 'source_file', d.source_file)
        FROM calo_recon.discrepancies d
        WHERE paging AND d.error_id > errors_mark AND d.error_id <= errors_top
          AND (settings.alert_backfill_age IS NULL OR d.logged_at >= pg_catalog.now() - settings.alert_backfill_age)
        ORDER BY d.error_id
        ON CONFLICT DO NOTHING
        RETURNING alerts.alert_id, alerts.alert_kind
    )
    SELECT ids || coalesce(pg_catalog.array_agg(r.alert_id), '{}'), kinds || coalesce(pg_catalog.array_agg(r.alert_kind), '{}')
    INTO ids, kinds FROM raised r;

    -- new conflicts: one alert per transaction id, whatever the number of
    -- conflicting deliveries
    WITH raised AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT DISTINCT ON (q.txn_id) q.txn_id, t.user_id, 'conflict',
               pg_catalog.jsonb_build_object('quarantine_id', q.quarantine_id, 'source_file', q.source_file,
                                             'logged_at', q.logged_at, 'delivered', q.detail)
        FROM calo_recon.quarantine q
        LEFT JOIN calo_recon.transactions t ON t.txn_id = q.txn_id
        WHERE paging AND q.reason = 'conflict' AND q.txn_id IS NOT NULL
          AND q.quarantine_id > quarantine_mark AND q.quarantine_id <= quarantine_top
          AND (settings.alert_backfill_age IS NULL OR q.logged_at >= pg_catalog.now() - settings.alert_backfill_age)
        ORDER BY q.txn_id, q.quarantine_id
        ON CONFLICT DO NOTHING
        RETURNING alerts.alert_id, alerts.alert_kind
    )
    SELECT ids || coalesce(pg_catalog.array_agg(r.alert_id), '{}'), kinds || coalesce(pg_catalog.array_agg(r.alert_kind), '{}')
    INTO ids, kinds FROM raised r;

    UPDATE calo_recon.alert_marks m
       SET last_id = CASE m.source WHEN 'balance_errors' THEN GREATEST(errors_mark, errors_top)
                                   ELSE GREATEST(quarantine_mark, quarantine_top) END
     WHERE m.source IN ('balance_errors', 'quarantine');

    -- the last run that ended: a failure raises, a success resolves
    SELECT r.* INTO last_run FROM calo_recon.runs r
    WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1;
    IF last_run.status = 'succeeded' THEN
        WITH solved AS (
            UPDATE calo_recon.alerts a
               SET resolved_at = pg_catalog.now(),
                   resolution = pg_catalog.format('refresh() run %s succeeded', last_run.run_id)
             WHERE a.alert_kind IN ('refresh_failed', 'refresh_skipped') AND a.txn_id IS NULL AND a.resolved_at IS NULL
            RETURNING a.alert_kind
        )
        SELECT resolved_kinds || coalesce(pg_catalog.array_agg(x.alert_kind), '{}') INTO resolved_kinds FROM solved x;
    ELSIF last_run.status = 'failed' THEN
        raised_id := calo_recon.raise_run_alert(last_run);
        IF raised_id IS NOT NULL THEN
            system_raised := system_raised || raised_id;
        END IF;
    END IF;

    -- stale data: no file with transactions loaded for max_data_age
    IF settings.max_data_age IS NOT NULL THEN
        SELECT pg_catalog.max(f.loaded_at) INTO last_loaded FROM calo_recon.ingested_files f WHERE f.transactions > 0;
        IF last_loaded IS NULL OR pg_catalog.now() - last_loaded > settings.max_data_age THEN
            raised_id := calo_recon.raise_system_alert('stale_data',
                pg_catalog.jsonb_build_object('last_loaded_at', last_loaded, 'max_data_age', settings.max_data_age));
            IF raised_id IS NOT NULL THEN
                system_raised := system_raised || raised_id;
            END IF;
        END IF;
    END IF;
    IF settings.max_data_age IS NULL OR pg_catalog.now() - last_loaded <= settings.max_data_age THEN
        WITH solved AS (
            UPDATE calo_recon.alerts a
               SET resolved_at = pg_catalog.now(),
                   resolution = CASE WHEN settings.max_data_age IS NULL THEN 'calo_recon.max_data_age is off'
                                     ELSE pg_catalog.format('a file with transactions was loaded at %s', last_loaded) END
             WHERE a.alert_kind = 'stale_data' AND a.txn_id IS NULL AND a.resolved_at IS NULL
            RETURNING a.alert_kind
        )
        SELECT resolved_kinds || coalesce(pg_catalog.array_agg(x.alert_kind), '{}') INTO resolved_kinds FROM solved x;
    END IF;

    -- one notification for the discrepancies and conflicts (the system
    -- alerts sent their own), with the insert-time trigger's payload
    IF pg_catalog.cardinality(ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(ids, kinds));
    END IF;
    RETURN QUERY
    SELECT k.alert_kind,
           (SELECT pg_catalog.count(*) FROM unnest(ids || system_raised) AS r(alert_id)
            JOIN calo_recon.alerts a ON a.alert_id = r.alert_id WHERE a.alert_kind = k.alert_kind),
           (SELECT pg_catalog.count(*) FROM unnest(resolved_kinds) AS x(alert_kind) WHERE x.alert_kind = k.alert_kind)
    FROM calo_recon.alert_kinds k
    WHERE k.raised_by IN ('raise_alerts', 'refresh')
    ORDER BY k.alert_kind;
END;
$$;
COMMENT ON FUNCTION calo_recon.raise_alerts() IS
  'Raises the alerts no inserted transaction raises: discrepancy for each new balance error at or above the tolerance, conflict for each transaction id newly delivered with a different payload (both once, not for rows logged before now() - calo_recon.alert_backfill_age, and with calo_recon.alerts off only recorded as seen), refresh_failed or refresh_skipped when the last run that ended failed, stale_data when no file with transactions was loaded for calo_recon.max_data_age; resolves refresh alerts after a successful run and stale_data once data is fresh; on a Citus cluster, first the insert-time alerts of the transactions a bare INSERT or COPY stored (calo_recon.alert_queue). One NOTIFY calo_recon_alerts for what it raised. Returns per kind the alerts raised and resolved. Takes the writer lock first (it waits for an ingest or a refresh). refresh() calls it at the end of every run';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_alerts() FROM PUBLIC;
