-- The alerts follow the reconciliation (README "Real-time alerts"): the
-- insert-time check (calo_recon.alert_new_transactions) raises at once, and
-- reconcile() (so every ingest and refresh()) makes the open arithmetic,
-- chain and out_of_range alerts of the users it walks agree with its
-- findings: it resolves those the findings do not support and raises, through
-- the same code as the insert-time check (raise_transaction_alerts,
-- notify_alerts), those the findings call for that no open alert carries
-- (src/glue/recon_glue.c, recon_sync_alerts).  So an UPDATE, a DELETE, an
-- upsert, a TRUNCATE or a currency's new minor unit, which raise nothing at
-- once, are alerted by the next reconciliation of their users, which the
-- triggers below and those of sql/install/41_reconcile_queue.sql queue.

-- The backfill rule's one home: a transaction logged before this instant
-- raises no alert, by any path (NULL: calo_recon.alert_backfill_age is off).
CREATE FUNCTION calo_recon.alert_backfill_before() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.now() OPERATOR(pg_catalog.-) (calo_recon.ops_settings()).alert_backfill_age
$$;
COMMENT ON FUNCTION calo_recon.alert_backfill_before() IS
  'now() - calo_recon.alert_backfill_age: a transaction logged before it raises no alert (a backfill of history), whether checked at insert time or by reconcile(); NULL when the setting is 0 (off)';
REVOKE EXECUTE ON FUNCTION calo_recon.alert_backfill_before() FROM PUBLIC;

-- The detail of a break's alert, as the insert-time check and reconcile()
-- write it and reconcile() compares it with its finding.
CREATE FUNCTION calo_recon.break_alert_detail(expected numeric, actual numeric, difference numeric,
                                              tolerance numeric, currency text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.jsonb_build_object('expected', expected, 'actual', actual, 'difference', difference,
                                         'tolerance', tolerance, 'currency', currency)
$$;
COMMENT ON FUNCTION calo_recon.break_alert_detail(numeric, numeric, numeric, numeric, text) IS
  'detail of an arithmetic, chain or out_of_range alert: expected, actual, difference, tolerance and currency of the finding; an open alert whose detail differs from its finding''s is resolved by reconcile() and raised again';
REVOKE EXECUTE ON FUNCTION calo_recon.break_alert_detail(numeric, numeric, numeric, numeric, text) FROM PUBLIC;

-- Stores the alerts of transactions, in the order of the arrays' positions
-- given by txn_id then rank: the one insert of the insert-time check and of
-- reconcile().  A transaction has at most one open alert of a kind: one
-- already open is kept (the caller resolves those it replaces first).
CREATE FUNCTION calo_recon.raise_transaction_alerts(
    txn_ids text[], user_ids text[], alert_kinds text[], details jsonb[], ranks integer[],
    OUT alert_ids bigint[], OUT raised_kinds text[])
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET jit = off
SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    backfill_before timestamptz := calo_recon.alert_backfill_before();
    stale_ids text[];
BEGIN
    -- the rows logged before backfill_before raise no alert: looked up by id
    -- (not correlated per row: a Citus cluster cannot run that)
    IF backfill_before IS NOT NULL THEN
        SELECT pg_catalog.array_agg(t.txn_id) INTO stale_ids
        FROM calo_recon.transactions t
        WHERE t.txn_id IN (SELECT pg_catalog.unnest(txn_ids)) AND t.logged_at < backfill_before;
    END IF;
    WITH stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT f.txn_id, f.user_id, f.alert_kind, f.detail
        FROM unnest(txn_ids, user_ids, alert_kinds, details, ranks)  -- multi-argument form: unqualified
             AS f (txn_id, user_id, alert_kind, detail, ord)
        WHERE f.txn_id NOT IN (SELECT pg_catalog.unnest(stale_ids))
        ORDER BY f.txn_id, f.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT coalesce(pg_catalog.array_agg(s.alert_id ORDER BY s.alert_id), '{}'),
           coalesce(pg_catalog.array_agg(s.alert_kind ORDER BY s.alert_id), '{}')
    INTO alert_ids, raised_kinds FROM stored s;
END;
$$;
COMMENT ON FUNCTION calo_recon.raise_transaction_alerts(text[], text[], text[], jsonb[], integer[]) IS
  'Internal to the insert-time check and reconcile(): stores one alert per position of the arrays (transaction, user, kind, detail, rank: ordered by transaction then rank), none for a transaction logged before alert_backfill_before() nor where the transaction has an open alert of the kind; returns the ids and kinds stored, for notify_alerts()';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_transaction_alerts(text[], text[], text[], jsonb[], integer[]) FROM PUBLIC;

-- The one NOTIFY of a statement that raised alerts of transactions.
CREATE FUNCTION calo_recon.notify_alerts(alert_ids bigint[], alert_kinds text[]) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_catalog.cardinality(alert_ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(alert_ids, alert_kinds));
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.notify_alerts(bigint[], text[]) IS
  'Internal to the insert-time check and reconcile(): one NOTIFY calo_recon_alerts (payload alerts_notice) for the alerts a statement raised, none when it raised none';
REVOKE EXECUTE ON FUNCTION calo_recon.notify_alerts(bigint[], text[]) FROM PUBLIC;

-- TRUNCATE removes every transaction at once, with no transition table: the
-- users the last reconciliation knew (findings, report totals) and those of
-- open alerts are queued, so that refresh() clears their findings and
-- report rows, and the open alerts of the removed transactions are resolved
-- now.  Disabled on a Citus cluster (citus_layout), whose shards cannot reach
-- the alerts: there reconcile() everyone after a TRUNCATE.
CREATE FUNCTION calo_recon.track_truncated_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    users text[];
BEGIN
    SELECT pg_catalog.array_agg(u.user_id) INTO users
    FROM (SELECT f.user_id FROM calo_recon.reconciliation_findings f
          UNION SELECT ut.user_id FROM calo_recon.user_totals ut
          UNION SELECT a.user_id FROM calo_recon.alerts a
                WHERE a.resolved_at IS NULL AND a.txn_id IS NOT NULL AND a.user_id IS NOT NULL) u;
    INSERT INTO calo_recon.pending_reconcile (user_id)
    SELECT u.user_id FROM pg_catalog.unnest(users) AS u (user_id);
    UPDATE calo_recon.alerts a
    SET resolved_at = pg_catalog.now(),
        resolution = 'the transaction was removed by TRUNCATE calo_recon.transactions'
    WHERE a.resolved_at IS NULL AND a.txn_id IS NOT NULL
      AND a.alert_kind IN (SELECT k.alert_kind FROM calo_recon.alert_kinds k WHERE k.raised_by = 'insert');
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_truncated_transactions() IS
  'Trigger: after TRUNCATE calo_recon.transactions, queues in pending_reconcile the users of the findings, report totals and open alerts, and resolves the open insert-time alerts of transactions (resolution: removed by TRUNCATE)';
REVOKE ALL ON FUNCTION calo_recon.track_truncated_transactions() FROM PUBLIC;
CREATE TRIGGER transactions_track_truncated
    AFTER TRUNCATE ON calo_recon.transactions
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_truncated_transactions();

-- A currency's minor unit is its tolerance and rounding: a statement that
-- changes it (or adds or removes a currency: an unknown one counts with 2
-- decimals) queues the users with transactions in it.  It runs with the
-- writer's rights: grant_role() lets operators, who edit currencies, queue
-- users.  Disabled on a Citus cluster (citus_layout), where currencies is a
-- reference table: there reconcile() everyone after such an edit.
CREATE FUNCTION calo_recon.track_currency_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    codes text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT pg_catalog.array_agg(DISTINCT c.code) INTO codes
        FROM ((SELECT o.code, o.minor_unit FROM old_rows o EXCEPT SELECT n.code, n.minor_unit FROM new_rows n)
              UNION ALL
              (SELECT n.code, n.minor_unit FROM new_rows n EXCEPT SELECT o.code, o.minor_unit FROM old_rows o)) c;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(n.code) INTO codes FROM new_rows n;
    ELSE
        SELECT pg_catalog.array_agg(o.code) INTO codes FROM old_rows o;
    END IF;
    IF codes IS NOT NULL THEN
        INSERT INTO calo_recon.pending_reconcile (user_id)
        SELECT DISTINCT t.user_id FROM calo_recon.transactions t
        WHERE t.currency OPERATOR(pg_catalog.=) ANY (codes);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_currency_changes() IS
  'Trigger: queues in pending_reconcile the users with transactions in a currency whose minor unit a statement set, changed or removed, so that the next reconciliation applies its tolerance';
REVOKE ALL ON FUNCTION calo_recon.track_currency_changes() FROM PUBLIC;
-- one trigger per event: a trigger with transition tables has one event
CREATE TRIGGER currencies_track_inserted
    AFTER INSERT ON calo_recon.currencies
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_currency_changes();
CREATE TRIGGER currencies_track_updated
    AFTER UPDATE ON calo_recon.currencies
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_currency_changes();
CREATE TRIGGER currencies_track_deleted
    AFTER DELETE ON calo_recon.currencies
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_currency_changes();
