-- Scaling out with Citus (README "Scaling out with Citus"): distribute()
-- turns an installed database into a Citus cluster layout, and the per-shard
-- entry points run the reconciliation next to the data.  Nothing here needs
-- Citus to install: its functions and catalogs are named only in function
-- bodies, which run on a cluster.

-- One row per shard group: distribute() puts a value into every shard of the
-- colocation group of transactions, so that a query over this table runs
-- once per shard group, on the node of its placements, inside the caller's
-- transaction (tableoid there is the anchor's shard).  Empty on one node.
CREATE TABLE calo_recon.shard_anchors (
    user_id text PRIMARY KEY
);
COMMENT ON TABLE calo_recon.shard_anchors IS
  'On a Citus cluster: one row per shard of the wallet tables'' colocation group (a user_id value hashing into it), written by distribute(); reconcile() runs once per shard group through it. Empty on one node';
COMMENT ON COLUMN calo_recon.shard_anchors.user_id IS 'A value of the distribution column that falls into the shard';

CREATE FUNCTION calo_recon.reconcile_placement(anchor_shard oid, user_ids text[])
RETURNS bigint[]
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_reconcile_placement';
COMMENT ON FUNCTION calo_recon.reconcile_placement(oid, text[]) IS
  'Internal to reconcile() on a Citus cluster: reconcile() of the given users (all when NULL) on the shards of the shard group of anchor_shard (a shard of shard_anchors on this node); returns reconcile()''s six counts as an array';
REVOKE ALL ON FUNCTION calo_recon.reconcile_placement(oid, text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.transaction_features_placement(anchor_shard oid, user_ids text[], want_context boolean)
RETURNS TABLE (txn_id text, user_id text, logged_at timestamptz, features float8[],
               context float8[], amount float8, direction smallint, currency text,
               minor_unit integer)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'calo_recon_transaction_features_placement';
COMMENT ON FUNCTION calo_recon.transaction_features_placement(oid, text[], boolean) IS
  'Internal to the anomaly features on a Citus cluster: the features of the given users (all when NULL) over the shard of transactions in the shard group of anchor_shard (a shard of shard_anchors on this node), with what the explanations need of each row: the context (when want_context, else NULL), amount, direction, currency and its minor unit';
REVOKE ALL ON FUNCTION calo_recon.transaction_features_placement(oid, text[], boolean) FROM PUBLIC;

CREATE FUNCTION calo_recon.chain_findings_since_placement(anchor_shard oid, user_ids text[],
                                                          first_new timestamptz[], new_txn_ids text[])
RETURNS TABLE (txn_id text, user_id text, finding text, expected numeric, actual numeric,
               difference numeric, tolerance numeric, currency text, is_new boolean)
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'calo_recon_chain_findings_since_placement';
COMMENT ON FUNCTION calo_recon.chain_findings_since_placement(oid, text[], timestamptz[], text[]) IS
  'Internal to the alert check on a Citus cluster: chain_findings_since() over the shard of transactions in the shard group of anchor_shard (a shard of shard_anchors on this node)';
REVOKE ALL ON FUNCTION calo_recon.chain_findings_since_placement(oid, text[], timestamptz[], text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.score_placement(anchor_shard oid, user_ids text[], only_new boolean, currencies text[],
                                           currency_models bigint[], model_ids bigint[],
                                           scalers calo_recon.scaler[], forests calo_recon.iforest[],
                                           thresholds float8[])
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_score_placement';
COMMENT ON FUNCTION calo_recon.score_placement(oid, text[], boolean, text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]) IS
  'Internal to score_transactions() and train_model() on a Citus cluster: scores the given users'' transactions (all when NULL) in the shard group of anchor_shard (a shard of shard_anchors on this node), each row by the model (model_ids, scalers, forests, thresholds) that currency_models gives its currency (as calo_recon.transaction_models or the new model''s scope chose on the coordinator; a currency not in currencies is not scored), and stores the scores, with the explanation and attribution of flagged rows, in the shard of transaction_scores there: with only_new the rows whose model has no score of them there, else all of them, the given models'' scores in the shard deleted first. Returns the rows stored';
REVOKE ALL ON FUNCTION calo_recon.score_placement(oid, text[], boolean, text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.is_distributed()
RETURNS boolean
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_is_distributed';
COMMENT ON FUNCTION calo_recon.is_distributed() IS
  'true when calo_recon.transactions is a Citus distributed table (distribute() has run), false on one node';
REVOKE ALL ON FUNCTION calo_recon.is_distributed() FROM PUBLIC;

-- Insert-time alerts on a cluster.  The transactions' alert trigger would
-- run on each shard, where neither the user's other rows in chain order
-- seen through the writer's locks nor calo_recon.alerts can be reached, so
-- distribute() disables it; instead the ingest (on the coordinator) puts the
-- rows it stored into this coordinator table, whose trigger runs the same
-- function, calo_recon.alert_new_transactions(), over the same transition
-- table: the rules keep their one home, and the walk runs per shard
-- (chain_findings_since_placement).  The ingest empties it in the same
-- transaction.
CREATE TABLE calo_recon.alert_inbox (LIKE calo_recon.transactions INCLUDING COMMENTS);
COMMENT ON TABLE calo_recon.alert_inbox IS
  'On a Citus cluster: the transactions an ingest has just stored, handed to the insert-time alert check (trigger alert_inbox_alert, the function of transactions_alert) on the coordinator and removed in the same transaction; always empty between statements';
CREATE TRIGGER alert_inbox_alert
    AFTER INSERT ON calo_recon.alert_inbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.alert_new_transactions();

CREATE FUNCTION calo_recon.alert_distributed(new_rows calo_recon.transactions[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO calo_recon.alert_inbox SELECT r.* FROM pg_catalog.unnest(new_rows) AS r;
    DELETE FROM calo_recon.alert_inbox;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_distributed(calo_recon.transactions[]) IS
  'Internal to the ingest on a Citus cluster: the insert-time alert check of the transactions it stored (calo_recon.alert_new_transactions() through calo_recon.alert_inbox)';
REVOKE ALL ON FUNCTION calo_recon.alert_distributed(calo_recon.transactions[]) FROM PUBLIC;

-- Insert-time alerts of a bare INSERT or COPY on a cluster: no ingest hands
-- its rows to alert_distributed(), so a trigger on the shards of
-- transactions queues them here, beside them (colocated by user_id, the
-- pattern of track_new_transactions: the transition table read into arrays
-- first, since Citus plans the insert and cannot read a transition table),
-- and raise_alerts() (pg_cron, refresh()) checks them later through
-- alert_distributed(): the rules keep their one home.  ingest_log removes
-- the entries of the rows it alerted itself, in the same transaction;
-- ingest_file leaves them and checks them at its end (alert_queued()).  On
-- one node too, inside ingest_file the alert trigger queues its rows here
-- (alert_check_deferred).  One entry per stored row; raise_alerts() deletes exactly the entries it read,
-- so an entry committed meanwhile stays for the next one.  The trigger is
-- created disabled: one node keeps its synchronous check (transactions_alert),
-- and distribute() enables this one (citus_layout).
CREATE TABLE calo_recon.alert_queue (
    entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  text   NOT NULL,
    txn_id   text   NOT NULL
);
COMMENT ON TABLE calo_recon.alert_queue IS
  'On a Citus cluster: transactions stored by a bare INSERT or COPY, waiting for their insert-time alert check, which the next raise_alerts() (and so refresh()) runs; ingest_log removes the entries of the rows it checked itself. On one node, and for ingest_file on a cluster: the rows ingest_file stored, checked at the end of the call, so empty between statements';
COMMENT ON COLUMN calo_recon.alert_queue.entry_id IS 'Surrogate key of the entry';
COMMENT ON COLUMN calo_recon.alert_queue.user_id IS 'Wallet owner of the stored transaction';
COMMENT ON COLUMN calo_recon.alert_queue.txn_id IS 'Transaction id of the stored transaction';

CREATE FUNCTION calo_recon.queue_alert_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    ids text[];
BEGIN
    SELECT pg_catalog.array_agg(n.user_id), pg_catalog.array_agg(n.txn_id) INTO users, ids
    FROM new_rows n;
    INSERT INTO calo_recon.alert_queue (user_id, txn_id)
    SELECT q.user_id, q.txn_id
    FROM unnest(users, ids) AS q (user_id, txn_id);  -- multi-argument form: unqualified
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.queue_alert_check() IS
  'Trigger on a Citus cluster: queues inserted transactions in alert_queue for the alert check of the next raise_alerts()';
CREATE TRIGGER transactions_alert_queue
    AFTER INSERT ON calo_recon.transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.queue_alert_check();
ALTER TABLE calo_recon.transactions DISABLE TRIGGER transactions_alert_queue;

-- What raise_alerts() does with the queue: the rows of the entries it sees
-- (read by user and id) through the ingest's path, then those entries
-- deleted (also those whose row is gone).  No-op on one node.
CREATE FUNCTION calo_recon.alert_queued()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entries bigint[];
    users text[];
    ids text[];
    queued calo_recon.transactions[];
BEGIN
    SELECT pg_catalog.array_agg(q.entry_id), pg_catalog.array_agg(q.user_id), pg_catalog.array_agg(q.txn_id)
    INTO entries, users, ids
    FROM calo_recon.alert_queue q;
    IF entries IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM calo_recon.alert_queue q
    WHERE q.user_id = ANY (users) AND q.entry_id = ANY (entries);
    -- the rows read on the shards, made transactions rows on the coordinator
    WITH stored AS MATERIALIZED (
        SELECT t.* FROM calo_recon.transactions t
        WHERE (t.user_id, t.txn_id) IN (SELECT q.user_id, q.txn_id
                                        FROM unnest(users, ids) AS q (user_id, txn_id))  -- multi-argument form: unqualified
    )
    SELECT pg_catalog.array_agg(ROW(s.*)::calo_recon.transactions ORDER BY s.txn_id) INTO queued
    FROM stored s;
    IF queued IS NOT NULL THEN
        PERFORM calo_recon.alert_distributed(queued);
    END IF;
    RETURN coalesce(pg_catalog.cardinality(queued), 0);
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_queued() IS
  'On a Citus cluster: the insert-time alert check (alert_distributed()) of the transactions queued in alert_queue by a bare INSERT or COPY, and the entries it read deleted; run by raise_alerts() and, on a coordinator that preloads calo_recon, at the end of each client statement that inserted into transactions. Returns how many transactions it checked (0 on one node)';
REVOKE ALL ON FUNCTION calo_recon.alert_queued() FROM PUBLIC;

-- The layout, one home: which tables are distributed by user_id (in one
-- colocation group), which are reference tables; every other table stays on
-- the coordinator.  Triggers on distributed tables run on their shards
-- (citus.enable_unsafe_triggers), where a query may only reach the
-- colocated shards on the same node: the reconcile queue trigger does
-- exactly that and stays, as does the rescore queue's (track_rescore), and
-- so does the currency override of the reference table (it changes only the
-- placement it fires on); the alert
-- check (the user's whole chain, and the alerts table on the coordinator)
-- and the note of anomaly inputs changed (a coordinator table) cannot, and
-- are disabled, and so is the scores' truncate (truncate_scores), which the
-- shards' truncate would not reach.  The triggers installed
-- disabled serve the cluster only, and distribute() enables them: the queue
-- of the alert check (alert_queue) replaces the transactions' own.
CREATE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[], enabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed',
            '{transactions_alert,transactions_anomaly_input,transactions_track_truncated,transactions_truncate_scores}'::name[],
            '{transactions_alert_queue}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}', '{}'),
           ('calo_recon.pending_rescore', 'distributed', '{}', '{}'),
           ('calo_recon.alert_queue', 'distributed', '{}', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}', '{}'),
           -- the scores beside their transactions, written per shard group
           -- by score_placement(); daily_summary counts live on a cluster
           ('calo_recon.transaction_scores', 'distributed', '{transaction_scores_anomaly_input}', '{}'),
           -- its override trigger replaces the built-in row on each placement
           -- (the queueing of a currency's users after an edit cannot reach
           -- the shards from a placement: reconcile() everyone instead)
           ('calo_recon.currencies', 'reference',
            '{currencies_track_inserted,currencies_track_updated,currencies_track_deleted}', '{}')
$$;
COMMENT ON FUNCTION calo_recon.citus_layout() IS
  'What distribute() does with each table on a Citus cluster: distributed (hash by user_id, colocated with transactions) or reference (a copy on every node), the triggers it disables there and those (installed disabled) it enables; tables not listed stay on the coordinator';
REVOKE ALL ON FUNCTION calo_recon.citus_layout() FROM PUBLIC;

-- The rights grant_role() gives on routines, on the workers too: Citus
-- carries the grants on the schema and on distributed tables to the
-- workers, not those on the extension's functions, and a worker checks
-- EXECUTE on the per-shard functions a view calls there (the features) with
-- the caller's rights.  No-op on one node.
CREATE FUNCTION calo_recon.grant_on_workers(statements text[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    batch text;
    failed text;
BEGIN
    IF NOT calo_recon.is_distributed() THEN
        RETURN;
    END IF;
    -- one command per worker
    SELECT pg_catalog.string_agg(s.statement, '; ') INTO batch
    FROM pg_catalog.unnest(statements) AS s (statement)
    WHERE s.statement ~ ' ON (FUNCTION|ROUTINE|ALL ROUTINES IN SCHEMA) ';
    IF batch IS NULL THEN
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ')
    INTO failed
    FROM pg_catalog.run_command_on_workers(batch) AS w
    WHERE NOT w.success;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'calo_recon: could not grant on the workers: %', failed
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Every worker must have calo_recon and the role (CREATE ROLE on the coordinator reaches the workers).';
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_on_workers(text[]) IS
  'Internal to grant_role() and revoke_all() on a Citus cluster: runs their statements on routines on every worker too (Citus carries those on the schema and tables itself); 55000 when a worker refuses one. No-op on one node';
REVOKE ALL ON FUNCTION calo_recon.grant_on_workers(text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name regclass, placement text, shards integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    key_columns text;
    key_name name;
    preloaded boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'calo_recon.distribute: Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On the coordinator, with shared_preload_libraries = ''citus'' on every node: CREATE EXTENSION citus; add the workers (citus_add_node); then call distribute().';
    END IF;
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'calo_recon.distribute: shard_count % is out of range', shard_count
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give 1 to 64000 shards, or NULL for citus.shard_count.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
               WHERE p.logicalrelid = 'calo_recon.transactions'::regclass) THEN
        RAISE EXCEPTION 'calo_recon.distribute: calo_recon.transactions is already distributed'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- no ingest, reconcile or refresh while the tables move
    PERFORM calo_recon.lock_writer();
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    -- transactions first: the others are colocated with it
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l
             ORDER BY l.table_name <> 'calo_recon.transactions'::regclass LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.disabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER %I', t.table_name,
                                      t.disabled_triggers[i]);
        END LOOP;
        IF t.placement = 'reference' THEN
            PERFORM pg_catalog.create_reference_table(t.table_name);
            -- the rows were copied to the shards; the shell keeps none
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
            CONTINUE;
        END IF;
        -- a unique key of a distributed table holds the distribution column:
        -- the primary key gets user_id in front (ids stay unique: on one node
        -- they are unique alone, and the ingest keeps a txn_id from being
        -- stored under a second user, see ingest_log_unreconciled)
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
        INTO key_columns
        FROM pg_catalog.pg_constraint c
        CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = t.table_name AND c.contype = 'p';
        IF key_columns IS NOT NULL AND key_columns NOT LIKE 'user_id%' THEN
            SELECT c.conname INTO key_name FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = t.table_name AND c.contype = 'p';
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (user_id, %s)',
                                      t.table_name, key_name, key_name, key_columns);
        END IF;
        IF t.table_name = 'calo_recon.transactions'::regclass THEN
            -- the ingest looks stored ids up by id alone, on every shard
            -- (stored_ids, the stored rows of repeated ids): without the
            -- key on txn_id alone each file's look-up would read every shard
            CREATE INDEX transactions_txn_id_idx ON calo_recon.transactions (txn_id);
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id', 'hash',
                                                        colocate_with := 'none',
                                                        shard_count := shard_count);
        ELSE
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id',
                                                        colocate_with := 'calo_recon.transactions');
        END IF;
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;

    -- the cluster's own triggers once every table has moved: the rows
    -- copied into the shards were checked on one node
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.enabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER %I', t.table_name,
                                      t.enabled_triggers[i]);
        END LOOP;
    END LOOP;

    -- one anchor per shard: the first of k1, k2, ... that hashes into it
    INSERT INTO calo_recon.shard_anchors (user_id)
    SELECT DISTINCT ON (s.shardid) 'k' || g.i
    FROM pg_catalog.pg_dist_shard s
    CROSS JOIN pg_catalog.generate_series(1, 100 * (SELECT pg_catalog.count(*)::integer
                                                     FROM pg_catalog.pg_dist_shard x
                                                     WHERE x.logicalrelid = 'calo_recon.shard_anchors'::regclass)) AS g (i)
    WHERE s.logicalrelid = 'calo_recon.shard_anchors'::regclass
      AND pg_catalog.worker_hash('k' || g.i) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer
    ORDER BY s.shardid, g.i;

    -- a client's bare INSERT or COPY into transactions is alerted at the end
    -- of its statement only by a coordinator that loads calo_recon from the
    -- start (src/glue/cluster_alert_hook_glue.c)
    BEGIN
        preloaded := pg_catalog.concat_ws(',', pg_catalog.current_setting('shared_preload_libraries'),
                                          pg_catalog.current_setting('session_preload_libraries'))
                     ~ '(^|[\s,"])calo_recon([\s,"]|$)';
    EXCEPTION WHEN insufficient_privilege THEN
        preloaded := NULL;  -- not readable without pg_read_all_settings: no claim
    END;
    IF NOT preloaded THEN
        RAISE WARNING 'calo_recon.distribute: calo_recon is not preloaded on this coordinator'
            USING DETAIL = 'A bare INSERT or COPY into calo_recon.transactions will be alerted at the next raise_alerts() (refresh()), not at insert time.',
                  HINT = 'Set shared_preload_libraries = ''citus,calo_recon'' on the coordinator and restart it.';
    END IF;

    -- daily_summary counts anomalies live from now on: the transactions'
    -- note of changes is disabled, and refresh() stores no counts here
    INSERT INTO calo_recon.anomaly_input_changes (changed_table) VALUES ('distribute()');

    -- the roles granted before: their rights on the cluster (grant_role)
    PERFORM calo_recon.reapply_grants();

    RETURN QUERY
    SELECT l.table_name, l.placement,
           (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
            WHERE s.logicalrelid = l.table_name)
    FROM calo_recon.citus_layout() l;
END;
$$;
COMMENT ON FUNCTION calo_recon.distribute(integer) IS
  'On the coordinator of a Citus cluster: distributes the wallet tables by user_id in one colocation group (shard_count shards, NULL for citus.shard_count) and makes the small ones reference tables, as calo_recon.citus_layout() lists; the other tables stay on the coordinator. 0A000 without Citus; run once (README "Scaling out with Citus")';
REVOKE ALL ON FUNCTION calo_recon.distribute(integer) FROM PUBLIC;
