-- The rescore queue of score_transactions() (README "Anomaly detection",
-- Scores): whose stored scores a change of the transactions made stale.  A
-- row's features depend on the row and on the same user's earlier rows in
-- chain order (logged_at, then txn_id), so a change at instant T (a row
-- updated, deleted, or inserted late, before rows already scored) changes
-- the features of the user's rows at or after T.  Triggers on transactions
-- queue the user and the earliest logged_at a statement changed (for an
-- UPDATE of both its old and its new rows, for a DELETE of its old rows, for
-- an INSERT of its new rows); score_transactions() (src/glue/score_glue.c)
-- deletes every model's scores of the user's rows at or after that instant
-- (and of the rows that are no longer the user's) and the entries it read,
-- then scores those rows again with the rows it scores anyway (the same
-- bulk write).  train_model() does the same deletion before it scores.  A COPY in chain order queues the instant of its first row, after
-- every scored row of the user: nothing but the new rows is scored.
-- One entry per statement and user, never merged, as pending_reconcile: the
-- scorer deletes exactly the entries it read, so an entry committed meanwhile
-- stays for the next one.
-- Not dumped: a restore queues the restored transactions again, so the first
-- score_transactions() after it scores every row once more (the same scores).
-- A row that left the user (deleted, or updated to another txn_id or user)
-- has an entry of its own naming it (gone_txn_id), so that its scores are
-- found by key: the scores of the rows still there are found through the
-- user's rows from changed_from on (transactions_user_chain_idx), and an
-- append reads nothing but its own rows.
CREATE TABLE calo_recon.pending_rescore (
    entry_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       text        NOT NULL,
    changed_from  timestamptz NOT NULL,
    gone_txn_id   text
);
COMMENT ON TABLE calo_recon.pending_rescore IS
  'Users whose transactions changed since their scores were computed, one entry per changing statement and user: score_transactions() (and train_model()) deletes every model''s scores of the user''s rows logged at or after changed_from and the entries it read, and score_transactions() scores those rows again';
COMMENT ON COLUMN calo_recon.pending_rescore.entry_id IS 'Surrogate key of the entry';
COMMENT ON COLUMN calo_recon.pending_rescore.user_id IS 'Wallet owner whose rows changed';
COMMENT ON COLUMN calo_recon.pending_rescore.changed_from IS 'Earliest logged_at of the rows the statement inserted, updated (old and new) or deleted for the user (of the gone row, for an entry naming one): the scores of the user''s rows from it on are stale';
COMMENT ON COLUMN calo_recon.pending_rescore.gone_txn_id IS 'A row that is no longer the user''s (deleted, or updated to another txn_id or user), whose scores go; NULL for an entry of the rows still there';

-- The queue's work (src/glue/score_glue.c): score_transactions() runs it
-- under the scorers' lock, train_model() before the snapshot it scores with.
CREATE FUNCTION calo_recon.drop_stale_scores() RETURNS bigint
    AS 'MODULE_PATHNAME', 'calo_recon_drop_stale_scores'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION calo_recon.drop_stale_scores() IS
  'Internal to score_transactions() and train_model(): deletes every model''s scores of the rows of the users queued in pending_rescore logged at or after the queued instant (and of rows no longer theirs), then the entries it read; returns the scores deleted. The next score_transactions() scores those rows again';
REVOKE ALL ON FUNCTION calo_recon.drop_stale_scores() FROM PUBLIC;

-- One function for the three events (a trigger with transition tables has
-- one event).  GROUP BY is hashed: a million-row COPY costs one pass.  A
-- DELETE queues each row it deleted, an UPDATE each row that left its user.  The
-- users are read into arrays first, as track_new_transactions does: on a
-- Citus cluster the trigger fires on a shard of transactions and Citus plans
-- the insert into (the colocated shard of) pending_rescore, which cannot
-- read a transition table.  An UPDATE queues only the rows whose columns the
-- features, the explanation or the choice of model read changed (old rows
-- not among the new ones and new rows not among the old ones): an update of
-- the metadata, of the source file or of a typed row's balances leaves the
-- scores as they are.
CREATE FUNCTION calo_recon.track_rescore() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    instants timestamptz[];
    gone text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(d.user_id), pg_catalog.array_agg(d.changed_from) INTO users, instants
        FROM (SELECT n.user_id, pg_catalog.min(n.logged_at) AS changed_from
              FROM new_rows n GROUP BY n.user_id) d;
    ELSIF TG_OP = 'UPDATE' THEN
        -- the balances give the direction of a legacy row (no txn_type) only
        SELECT pg_catalog.array_agg(d.user_id), pg_catalog.array_agg(d.changed_from),
               pg_catalog.array_agg(d.gone_txn_id) INTO users, instants, gone
        FROM (SELECT c.user_id, pg_catalog.min(c.logged_at) AS changed_from, NULL::text AS gone_txn_id
              FROM ((SELECT o.txn_id, o.user_id, o.txn_type, o.currency, o.amount, o.vat,
                            CASE WHEN o.txn_type IS NULL THEN o.old_balance END,
                            CASE WHEN o.txn_type IS NULL THEN o.new_balance END, o.logged_at FROM old_rows o
                     EXCEPT ALL
                     SELECT n.txn_id, n.user_id, n.txn_type, n.currency, n.amount, n.vat,
                            CASE WHEN n.txn_type IS NULL THEN n.old_balance END,
                            CASE WHEN n.txn_type IS NULL THEN n.new_balance END, n.logged_at FROM new_rows n)
                    UNION ALL
                    (SELECT n.txn_id, n.user_id, n.txn_type, n.currency, n.amount, n.vat,
                            CASE WHEN n.txn_type IS NULL THEN n.old_balance END,
                            CASE WHEN n.txn_type IS NULL THEN n.new_balance END, n.logged_at FROM new_rows n
                     EXCEPT ALL
                     SELECT o.txn_id, o.user_id, o.txn_type, o.currency, o.amount, o.vat,
                            CASE WHEN o.txn_type IS NULL THEN o.old_balance END,
                            CASE WHEN o.txn_type IS NULL THEN o.new_balance END, o.logged_at FROM old_rows o)) c
              GROUP BY c.user_id
              UNION ALL
              -- the rows no longer the user's
              SELECT o.user_id, o.logged_at, o.txn_id FROM old_rows o
              WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.user_id = o.user_id AND n.txn_id = o.txn_id)) d;
    ELSE
        SELECT pg_catalog.array_agg(o.user_id), pg_catalog.array_agg(o.logged_at), pg_catalog.array_agg(o.txn_id)
        INTO users, instants, gone
        FROM old_rows o;
    END IF;
    INSERT INTO calo_recon.pending_rescore (user_id, changed_from, gone_txn_id)
    SELECT q.user_id, q.changed_from, q.gone_txn_id
    FROM unnest(users, instants, gone) AS q (user_id, changed_from, gone_txn_id);  -- multi-argument form: unqualified
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_rescore() IS
  'Trigger: queues in pending_rescore the users of inserted, updated or deleted transactions with the earliest logged_at changed, for score_transactions() to score their rows from it on again';
REVOKE ALL ON FUNCTION calo_recon.track_rescore() FROM PUBLIC;
CREATE TRIGGER transactions_rescore_new
    AFTER INSERT ON calo_recon.transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_rescore();
CREATE TRIGGER transactions_rescore_updated
    AFTER UPDATE ON calo_recon.transactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_rescore();
CREATE TRIGGER transactions_rescore_deleted
    AFTER DELETE ON calo_recon.transactions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_rescore();

-- A TRUNCATE of transactions leaves every score referring to nothing: the
-- views join through transactions and serve none of them, but a txn_id
-- stored again under another user would then meet its old score in the key
-- (model_id, txn_id) when it is scored.  So the scores go with the rows, and
-- the queue with them (nothing is left to score again).  On a Citus cluster
-- distribute() disables it (citus_layout): the shards' truncate does not
-- reach it there.
CREATE FUNCTION calo_recon.truncate_scores() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    TRUNCATE calo_recon.transaction_scores, calo_recon.pending_rescore;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.truncate_scores() IS
  'Trigger: a TRUNCATE of transactions empties transaction_scores and pending_rescore, whose rows would refer to nothing';
REVOKE ALL ON FUNCTION calo_recon.truncate_scores() FROM PUBLIC;
CREATE TRIGGER transactions_truncate_scores
    AFTER TRUNCATE ON calo_recon.transactions
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.truncate_scores();
