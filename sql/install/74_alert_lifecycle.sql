-- Alert lifecycle (README "Alert lifecycle"): open -> acknowledged ->
-- resolved, with who, when and a note.  acknowledge_alert and resolve_alert
-- are SECURITY DEFINER entry points (calo_recon.definer_entry_points): an
-- operator changes alerts only through them.  A trigger stamps who and when
-- itself, from the session's login role (session_user, which neither SET
-- ROLE nor a SECURITY DEFINER call changes) and the transaction time,
-- whatever an UPDATE says, so the record cannot be signed in someone else's
-- name, not even by the owner.  The reconciliation's
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

-- An alert's group, the one definition acknowledge_alert(), resolve_alert()
-- and the alert_groups view share: the transaction that raised it, its user
-- and its kind.  Groups compare as composite values, so alerts about the
-- system (user_id NULL) group with each other as GROUP BY groups them.
CREATE FUNCTION calo_recon.alert_group(a calo_recon.alerts,
                                       OUT raised_in xid8, OUT user_id text, OUT alert_kind text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.raised_in, a.user_id, a.alert_kind
$$;
COMMENT ON FUNCTION calo_recon.alert_group(calo_recon.alerts) IS
  'The group of an alert: raised_in (the transaction that raised it), user_id and alert_kind; two alerts are in one group when their alert_group() values are equal (NULL user_ids equal). Used by acknowledge_alert, resolve_alert and alert_groups';

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
           OR (whole_group AND calo_recon.alert_group(a) =
               (SELECT calo_recon.alert_group(g) FROM calo_recon.alerts g
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
           OR (whole_group AND calo_recon.alert_group(a) =
               (SELECT calo_recon.alert_group(g) FROM calo_recon.alerts g
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
SELECT g.raised_in, pg_catalog.max(a.run_id) AS run_id, g.user_id, g.alert_kind, k.severity,
       pg_catalog.count(*) AS alerts,
       pg_catalog.count(*) FILTER (WHERE a.status = 'open') AS open,
       pg_catalog.count(*) FILTER (WHERE a.status = 'acknowledged') AS acknowledged,
       pg_catalog.min(a.alert_id) AS first_alert_id,
       pg_catalog.min(a.created_at) AS created_at
FROM calo_recon.alerts a
CROSS JOIN LATERAL calo_recon.alert_group(a) g
JOIN calo_recon.alert_kinds k ON k.alert_kind = g.alert_kind
GROUP BY g.raised_in, g.user_id, g.alert_kind, k.severity;
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
