-- The reconcile queue of reconcile() and refresh(): who needs reconciling, kept
-- by a trigger on transactions and worked by reconcile() (src/glue/recon_glue.c),
-- ingest_log, ingest_file and refresh() (README "Scheduled refresh").

-- Users with transactions stored since they were last reconciled: filled by
-- a trigger whatever inserts them (ingest, COPY, INSERT), so nothing is
-- missed.  It is the one record of who needs reconciling: ingest_log,
-- ingest_file and refresh() reconcile what they see of it once, through
-- reconcile_pending(), and reconcile() deletes the entries of the users it
-- reconciles.  One entry per inserting statement and user, never merged with
-- an entry of another transaction: reconcile() deletes exactly the entries
-- that the snapshot it reads the transactions with sees, so an entry
-- committed during a run stays for the next one.  A single row per user
-- would be lost: the insert finds the committed row and adds none, a
-- reconcile deletes it, the insert commits.
-- Each entry keeps whether calo_recon.alerts was on in the session that
-- queued it: reconcile() raises alerts only for users queued with alerts on
-- (src/glue/recon_glue.c, recon_sync_alerts).
-- Not dumped: a restore queues every restored transaction again, so the first
-- refresh() after it reconciles everyone once more.
CREATE TABLE calo_recon.pending_reconcile (
    entry_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   text   NOT NULL,
    alerts    boolean NOT NULL DEFAULT coalesce(pg_catalog.current_setting('calo_recon.alerts', true), 'on')::boolean
);
COMMENT ON TABLE calo_recon.pending_reconcile IS
  'Users with transactions inserted since they were last reconciled, one entry per inserting statement and user; reconcile() deletes the entries of the users it reconciles';
COMMENT ON COLUMN calo_recon.pending_reconcile.entry_id IS 'Surrogate key of the entry';
COMMENT ON COLUMN calo_recon.pending_reconcile.user_id IS 'Wallet owner to be reconciled';
COMMENT ON COLUMN calo_recon.pending_reconcile.alerts IS
  'calo_recon.alerts of the session that queued the entry: reconcile() raises the alerts of new breaks only for users with an entry queued while alerts were on, so a load with alerts off pages nobody later (README "Real-time alerts")';

-- A bulk load of a million rows queues only its distinct users.
-- jit off: compiling the plan over a large transition table costs more
-- than running it.  The users are read from the transition table first and
-- inserted from an array: on a Citus cluster the trigger fires on a shard of
-- transactions, where the insert into (the colocated shard of)
-- pending_reconcile is planned by Citus, which cannot read a transition table.
CREATE FUNCTION calo_recon.track_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
BEGIN
    -- DISTINCT in a subquery is hashed; array_agg(DISTINCT) sorted a
    -- million-row COPY's user ids in the database collation
    SELECT pg_catalog.array_agg(d.user_id) INTO users
    FROM (SELECT DISTINCT n.user_id FROM new_rows n) d;
    INSERT INTO calo_recon.pending_reconcile (user_id)
    SELECT u.user_id FROM pg_catalog.unnest(users) AS u (user_id);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_new_transactions() IS
  'Trigger: queues the users of inserted transactions in pending_reconcile for the next reconciliation';
CREATE TRIGGER transactions_track_new
    AFTER INSERT ON calo_recon.transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_new_transactions();

-- An update or a delete changes the chain of the users of its old rows (and
-- of its new ones): they are queued too, so that neither the findings nor
-- the report totals that reconcile() stores stay stale (README "Reports").
-- One trigger per event: a trigger with transition tables has one event.
CREATE FUNCTION calo_recon.track_changed_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT pg_catalog.array_agg(DISTINCT c.user_id) INTO users
        FROM (SELECT o.user_id FROM old_rows o UNION ALL SELECT n.user_id FROM new_rows n) c;
    ELSE
        SELECT pg_catalog.array_agg(DISTINCT o.user_id) INTO users FROM old_rows o;
    END IF;
    INSERT INTO calo_recon.pending_reconcile (user_id)
    SELECT u.user_id FROM pg_catalog.unnest(users) AS u (user_id);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_changed_transactions() IS
  'Trigger: queues the users of updated or deleted transactions in pending_reconcile for the next reconciliation';
CREATE TRIGGER transactions_track_updated
    AFTER UPDATE ON calo_recon.transactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_changed_transactions();
CREATE TRIGGER transactions_track_deleted
    AFTER DELETE ON calo_recon.transactions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_changed_transactions();

-- The one way the entry points work the queue.  One statement: the users
-- and reconcile() see the same snapshot, with which reconcile() deletes the
-- entries, so it deletes no entry whose user it does not reconcile.
CREATE FUNCTION calo_recon.reconcile_pending()
RETURNS TABLE (users bigint, transactions bigint, arithmetic_breaks bigint,
               chain_breaks bigint, drift bigint, overdrafts bigint)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.*
    FROM (SELECT ARRAY(SELECT DISTINCT p.user_id FROM calo_recon.pending_reconcile p
                       ORDER BY 1) AS queued
          OFFSET 0) q  -- the queue read once
    CROSS JOIN LATERAL calo_recon.reconcile(q.queued) r
    WHERE pg_catalog.cardinality(q.queued) > 0
$$;
COMMENT ON FUNCTION calo_recon.reconcile_pending() IS
  'Internal to ingest_log, ingest_file and refresh(): reconciles every user queued in pending_reconcile, once, and so empties what it sees of the queue; returns reconcile()''s counts, or no row when nobody is queued';
REVOKE EXECUTE ON FUNCTION calo_recon.reconcile_pending() FROM PUBLIC;
