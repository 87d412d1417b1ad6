-- Retention (README "Retention"): what may be forgotten, and what never is.
-- Transactions, balance errors, rejections, the reconciliation's findings,
-- models, scores and feedback are the record: purge() never touches them.
-- It forgets what only explains or operates that record once it is old:
--   log_events.raw   the event's text (the parsed body, kind and ids stay)
--   alerts           resolved ones (open and acknowledged ones stay)
--   runs             ended ones (the newest run, the newest success and the
--                    newest failure stay: calo_recon.health reads them)
--   quarantine       unreadable input (conflicts stay: they are findings,
--                    see balance_breaks)
--   cron.job_run_details   of the calo_recon jobs of this database (run
--                    in it, their command calls calo_recon), whichever role
--                    ran them, when pg_cron is installed in it; purge() runs
--                    as the extension owner (README "Roles"), so pg_cron's
--                    row policy limits it only for an owner that is not a
--                    superuser
-- It takes the writer lock, so it never runs beside an ingest or a refresh.

CREATE FUNCTION calo_recon.purge(older_than interval)
RETURNS TABLE (purged text, "rows" bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'older_than must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative: %', older_than
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: calo_recon.purge(''90 days'').';
    END IF;
    BEGIN
        cutoff := pg_catalog.now() - older_than;
    EXCEPTION WHEN datetime_field_overflow THEN
        -- before the earliest timestamp: nothing is that old
        cutoff := '-infinity';
    END;
    PERFORM calo_recon.lock_writer();

    UPDATE calo_recon.log_events e SET raw = ''
    WHERE e.logged_at < cutoff AND e.raw <> '';
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'log_events.raw'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.alerts a WHERE a.resolved_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'alerts'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.runs r
    WHERE r.finished_at < cutoff
      AND r.run_id NOT IN (SELECT k.run_id
                           FROM (VALUES ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x)),
                                        ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x WHERE x.status = 'succeeded')),
                                        ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x WHERE x.status = 'failed'))) AS k(run_id)
                           WHERE k.run_id IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'runs'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.quarantine q WHERE q.quarantined_at < cutoff AND q.reason <> 'conflict';
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'quarantine'; "rows" := n; RETURN NEXT;

    purged := 'cron.job_run_details'; "rows" := NULL;
    IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
        EXECUTE 'DELETE FROM cron.job_run_details d
                 WHERE d.end_time OPERATOR(pg_catalog.<) $1
                   AND d.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
                   AND d.command OPERATOR(pg_catalog.~~) ''%calo\_recon.%'''
        USING cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        "rows" := n;
    END IF;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION calo_recon.purge(interval) IS
  'Forgets what is older than older_than (before now() - older_than): the raw text of log events (by logged_at; the parsed event stays), resolved alerts (by resolved_at), ended runs (by finished_at; the newest run, success and failure stay), quarantined unreadable input (by quarantined_at; conflicts stay) and, when pg_cron is installed in this database, the history of its calo_recon jobs, whichever role ran them (by end_time). Never touches transactions, balance errors, rejections, findings, models, scores or feedback. Takes the writer lock. Returns the rows purged per item (NULL for cron.job_run_details without pg_cron). 22004 for NULL, 22023 for a negative interval; an interval reaching before the earliest timestamp purges nothing';
REVOKE EXECUTE ON FUNCTION calo_recon.purge(interval) FROM PUBLIC;
