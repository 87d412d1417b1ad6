-- Ingestion of the balance-sync logs: log text -> log_events, transactions,
-- balance_errors, negative_balance_rejections and quarantine, idempotent per
-- content digest; ingest_file() / read_log_file() read the import folder (C).

-- The same balance error or rejection event read again from an overlapping
-- export (same request, time, user and figures) is not stored twice.  The key
-- holds only what the event's own line says: a balance error's message_id
-- (and txn_id) come from the other lines of the same export (link_events in
-- src/core/logparse.c), which an export starting later does not hold.
CREATE UNIQUE INDEX balance_errors_event_key
    ON calo_recon.balance_errors
       (user_id, logged_at, request_id, subscription_balance, payment_balance)
    NULLS NOT DISTINCT;
CREATE UNIQUE INDEX negative_balance_rejections_event_key
    ON calo_recon.negative_balance_rejections
       (user_id, logged_at, request_id, txn_id, current_balance)
    NULLS NOT DISTINCT;

-- Quarantine rows are looked up by file (tracing, the per-file accounting,
-- not recording a skipped file twice).
CREATE INDEX quarantine_source_idx ON calo_recon.quarantine (source_file, event_no);

-- The rules of a source name, which every stored row keeps as its
-- source_file: those of a path below the import folder (no control
-- character, valid in the database encoding, at most 1023 bytes), checked by
-- the code that checks paths (src/glue/safe_path_glue.c).  22023 otherwise.
CREATE FUNCTION calo_recon.check_source_name(source text) RETURNS void
AS 'MODULE_PATHNAME', 'calo_recon_check_source_name'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.check_source_name(text) IS
  'Raises 22023 when a source name given to ingest_log breaks the rules of paths below calo_recon.import_directory: a control character, bytes not valid in the database encoding, more than 1023 bytes; NULL and valid names pass';

-- The ingest's two big writes, through COPY's multi-insert path
-- (src/glue/ingest_store_glue.c); what to write is ingest_log_unreconciled's.
CREATE FUNCTION calo_recon.parse_and_store_log(log text, source_file text)
RETURNS TABLE (event_no integer, logged_at timestamptz, request_id text, level text,
               kind text, body jsonb, message_id text, raw text)
AS 'MODULE_PATHNAME', 'calo_recon_parse_and_store_log'
LANGUAGE C STRICT VOLATILE ROWS 1000;
COMMENT ON FUNCTION calo_recon.parse_and_store_log(text, text) IS
  'Internal to ingest_log: calo_recon.parse_log(log), each event also written to calo_recon.log_events under source_file (the caller needs INSERT on it)';
REVOKE ALL ON FUNCTION calo_recon.parse_and_store_log(text, text) FROM PUBLIC;

CREATE FUNCTION calo_recon.store_new_transactions(rows calo_recon.transactions[])
RETURNS SETOF calo_recon.transactions
AS 'MODULE_PATHNAME', 'calo_recon_store_new_transactions'
LANGUAGE C STRICT VOLATILE ROWS 1000;
COMMENT ON FUNCTION calo_recon.store_new_transactions(calo_recon.transactions[]) IS
  'Internal to ingest_log: writes the rows into calo_recon.transactions as INSERT ... ON CONFLICT DO NOTHING would (the table''s triggers fire as for that INSERT) and returns those written; the caller needs INSERT on the table';
REVOKE ALL ON FUNCTION calo_recon.store_new_transactions(calo_recon.transactions[]) FROM PUBLIC;

-- Everything ingest_log does except reconciling: ingest_file calls it per
-- file and reconciles once at the end.  Who needs reconciling is recorded in
-- one place only, calo_recon.pending_reconcile (filled by a trigger on
-- transactions), which the callers drain with reconcile_pending().
--
-- Validation is wholly the parser's (src/core/lpfield.c, one table of field
-- rules per data kind): an event that breaks a rule comes out of parse_log
-- malformed, with its reason, the key ("field") and the event's own id
-- ("txn_id") in its body.  This function only routes: malformed events to
-- quarantine, data events to their tables, converting the parser's JSON
-- values (null or a value) to columns.  A rule added to the parser changes
-- nothing here.
--
-- The conversions are written out inline rather than as helper functions: a
-- SQL function with a pinned search_path is never inlined, and calling one
-- per event cost more than everything else ingestion does.
CREATE FUNCTION calo_recon.ingest_log_unreconciled(log text, source text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- planned for each file: a plan cached while the table was small (never
-- analyzed inside one long ingest_file) kept reading it whole for the
-- stored ids, once per file
SET plan_cache_mode = force_custom_plan
AS $fn$
#variable_conflict use_column
DECLARE
    v_digest     bytea;
    v_source     text;
    v_name       text;
    v_taken      integer := 0;
    v_events     integer := 0;
    v_txns       integer := 0;
    v_dups       integer := 0;
    v_conflicts  integer := 0;
    v_errors     integer := 0;
    v_rejections integer := 0;
    v_quarantine integer := 0;
    v_repeated   integer := 0;
    v_others     integer[];
    v_other_rows calo_recon.transactions[];
    v_valid      integer;
    -- on a Citus cluster the stored rows go to the alert check by hand
    -- (alert_distributed: the table's trigger is off there), unless
    -- ingest_file checks them at its end (alert_check_deferred: the shards'
    -- trigger has queued them)
    v_distributed boolean := calo_recon.is_distributed() AND NOT calo_recon.alert_check_deferred();
    v_new_rows   calo_recon.transactions[];
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;
    -- a source name follows the rules of paths (22023 otherwise)
    PERFORM calo_recon.check_source_name(source);

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM calo_recon.lock_writer();

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0;
        RETURN;
    END IF;

    -- log_events is keyed by (source_file, event_no): a different content
    -- under a name already used gets the name plus its digest prefix, and
    -- when that is taken too (a source may be named so), a counter after it.
    v_source := COALESCE(NULLIF(source, ''),
                         'inline:' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16));
    v_name := v_source;
    WHILE EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.file_name = v_name)
          OR EXISTS (SELECT 1 FROM calo_recon.log_events e WHERE e.source_file = v_name) LOOP
        v_taken := v_taken + 1;
        v_name := v_source || '#' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16)
                  || CASE WHEN v_taken > 1 THEN '#' || v_taken ELSE '' END;
    END LOOP;
    v_source := v_name;

    -- One statement stores the file: every event into log_events; the events
    -- the parser made malformed into quarantine (kind: the kind intended);
    -- the first occurrence of each transaction id, the balance errors and the
    -- rejections into their tables.  The parse is read once, never read back.
    WITH parsed AS MATERIALIZED (
        -- every event, stored into log_events as it is parsed
        SELECT p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
               p.body, p.raw
        FROM calo_recon.parse_and_store_log(log, v_source) AS p
    ), quarantined AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, e.event_no, e.logged_at, COALESCE(e.body ->> 'intended_kind', 'malformed'),
               e.body ->> 'txn_id', e.body ->> 'reason', e.body, e.raw
        FROM parsed e
        WHERE e.kind = 'malformed'
        ORDER BY e.event_no
        RETURNING 1
    ), valid AS (
        SELECT e.event_no, e.logged_at, e.request_id, e.message_id, e.kind, e.body
        FROM parsed e
        WHERE e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection')
    ), valid_txns AS (
        -- each valid transaction event as the row it would be stored as
        SELECT v.event_no, v.body ->> 'id' AS txn_id,
               row_number() OVER (PARTITION BY v.body ->> 'id' ORDER BY v.event_no) AS occurrence,
               -- the legacy form has no type key: its txn_type is NULL
               ROW(v.body ->> 'id', v.body ->> 'userId', v.body ->> 'type',
                   v.body ->> 'source', v.body ->> 'action', v.body ->> 'currency',
                   (v.body -> 'amount')::numeric, (v.body -> 'vat')::numeric,
                   (v.body -> 'oldBalance')::numeric, (v.body -> 'newBalance')::numeric,
                   NULLIF(v.body -> 'paymentBalance', 'null'::jsonb)::numeric,
                   NULLIF(v.body -> 'updatePaymentBalance', 'null'::jsonb)::boolean,
                   NULLIF(v.body -> 'metadata', 'null'::jsonb),
                   v.logged_at, v.request_id, v.message_id, v_source)::calo_recon.transactions AS r
        FROM valid v
        WHERE v.kind = 'transaction'
    ), stored_ids AS MATERIALIZED (
        -- ids already stored, under any user: on a Citus cluster the table
        -- is distributed by user_id and its key cannot hold a txn_id alone
        -- (README "Scaling out with Citus"); ingests hold the writer lock,
        -- so no other ingest stores an id between this look-up and the insert
        SELECT t.txn_id
        FROM calo_recon.transactions t
        WHERE t.txn_id = ANY (ARRAY(SELECT f.txn_id FROM valid_txns f WHERE f.occurrence = 1))
    ), new_txns AS MATERIALIZED (
        -- first valid occurrence of each id, in id order (stable lock order);
        -- a concurrent COPY or INSERT (not under the writer lock) of the same
        -- id leaves it out, as ON CONFLICT DO NOTHING would
        SELECT n.*
        FROM calo_recon.store_new_transactions(ARRAY(
                 SELECT f.r
                 FROM valid_txns f
                 WHERE f.occurrence = 1
                   AND f.txn_id NOT IN (SELECT s.txn_id FROM stored_ids s)
                 ORDER BY f.txn_id)) AS n
    ), new_errors AS (
        INSERT INTO calo_recon.balance_errors
               (user_id, subscription_balance, payment_balance, logged_at, request_id,
                message_id, txn_id, source_file)
        SELECT v.body ->> 'userId', (v.body -> 'subscriptionBalance')::numeric,
               (v.body -> 'paymentBalance')::numeric, v.logged_at, v.request_id,
               v.message_id, v.body ->> 'txn_id', v_source
        FROM valid v
        WHERE v.kind = 'balance_error'
        ORDER BY 1, 4, 5
        -- only the event key: a clash of error_id must fail, not vanish
        ON CONFLICT (user_id, logged_at, request_id, subscription_balance, payment_balance)
            DO NOTHING
        RETURNING user_id
    ), new_rejections AS (
        INSERT INTO calo_recon.negative_balance_rejections
               (txn_id, user_id, current_balance, logged_at, request_id, source_file)
        SELECT v.body ->> 'transactionId', v.body ->> 'userId',
               (v.body -> 'currentBalance')::numeric, v.logged_at, v.request_id, v_source
        FROM valid v
        WHERE v.kind = 'negative_balance_rejection'
        ORDER BY 2, 4, 5
        ON CONFLICT (user_id, logged_at, request_id, txn_id, current_balance) DO NOTHING
        RETURNING user_id
    ), others AS (
        SELECT o.event_no, o.r
        FROM valid_txns o
        WHERE o.occurrence > 1 OR o.txn_id NOT IN (SELECT t.txn_id FROM new_txns t)
    )
    SELECT (SELECT count(*) FROM parsed)::integer,
           (SELECT count(*) FROM quarantined)::integer,
           (SELECT count(*) FROM new_txns)::integer,
           (SELECT count(*) FROM new_errors)::integer,
           (SELECT count(*) FROM new_rejections)::integer,
           (SELECT count(*) FROM valid v WHERE v.kind <> 'transaction')::integer,
           -- every other valid occurrence is compared with the stored row below
           (SELECT array_agg(o.event_no ORDER BY o.event_no) FROM others o),
           (SELECT array_agg(o.r ORDER BY o.event_no) FROM others o),
           CASE WHEN v_distributed
                THEN (SELECT array_agg(ROW(n.*)::calo_recon.transactions ORDER BY n.txn_id) FROM new_txns n) END
    INTO v_events, v_quarantine, v_txns, v_errors, v_rejections, v_valid, v_others,
         v_other_rows, v_new_rows;
    IF v_new_rows IS NOT NULL THEN
        PERFORM calo_recon.alert_distributed(v_new_rows);
        -- checked: not again by raise_alerts() (the shards queued them)
        DELETE FROM calo_recon.alert_queue q
        WHERE (q.user_id, q.txn_id) IN (SELECT r.user_id, r.txn_id FROM unnest(v_new_rows) r);
    END IF;
    -- errors and rejections already stored from an overlapping export
    v_repeated := v_valid - v_errors - v_rejections;

    -- The other valid occurrences meet a stored row: same payload is a
    -- duplicate delivery, a different one a conflict (the stored row stays).
    IF v_others IS NOT NULL THEN
        WITH others AS (
            SELECT n.event_no, o.*
            FROM unnest(v_other_rows) WITH ORDINALITY AS o
            JOIN unnest(v_others) WITH ORDINALITY AS n (event_no, ordinality)
              ON n.ordinality = o.ordinality
        ), stored_rows AS MATERIALIZED (
            -- the stored rows of these ids, by id alone (one look-up, which a
            -- Citus cluster runs on every shard)
            SELECT t.*
            FROM calo_recon.transactions t
            WHERE t.txn_id = ANY (ARRAY(SELECT o.txn_id FROM others o))
        ), compared AS (
            SELECT o.event_no, o.logged_at, o.txn_id,
                   to_jsonb(t) AS stored,
                   jsonb_build_object(
                       'txn_id', o.txn_id, 'user_id', o.user_id, 'txn_type', o.txn_type,
                       'source', o.source, 'action', o.action, 'currency', o.currency,
                       'amount', o.amount, 'vat', o.vat, 'old_balance', o.old_balance,
                       'new_balance', o.new_balance, 'payment_balance', o.payment_balance,
                       'update_payment_balance', o.update_payment_balance,
                       'metadata', o.metadata) AS incoming,
                   t.txn_id IS NOT NULL
                     AND ROW(o.user_id, o.txn_type, o.source, o.action, o.currency,
                             o.amount, o.vat, o.old_balance, o.new_balance,
                             o.payment_balance, o.update_payment_balance, o.metadata)
                         IS NOT DISTINCT FROM
                         ROW(t.user_id, t.txn_type, t.source, t.action, t.currency,
                             t.amount, t.vat, t.old_balance, t.new_balance,
                             t.payment_balance, t.update_payment_balance, t.metadata) AS same
            FROM others o
            LEFT JOIN stored_rows t ON t.txn_id = o.txn_id
        ), conflicted AS (
            INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
            SELECT v_source, c.event_no, c.logged_at, 'transaction', c.txn_id, 'conflict',
                   jsonb_build_object('stored', c.stored, 'incoming', c.incoming), e.raw
            FROM compared c
            JOIN calo_recon.log_events e ON e.source_file = v_source AND e.event_no = c.event_no
            WHERE NOT c.same
            ORDER BY c.event_no
            RETURNING 1
        )
        SELECT count(*) FILTER (WHERE c.same)::integer,
               count(*) FILTER (WHERE NOT c.same)::integer
        INTO v_dups, v_conflicts
        FROM compared c;
        v_quarantine := v_quarantine + v_conflicts;
    END IF;

    INSERT INTO calo_recon.ingested_files
           (digest, file_name, bytes, events, transactions, duplicates, conflicts,
            balance_errors, rejections, quarantined, repeated)
    VALUES (v_digest, v_source, pg_catalog.octet_length(log), v_events, v_txns, v_dups,
            v_conflicts, v_errors, v_rejections, v_quarantine, v_repeated);

    RETURN QUERY
    SELECT v_events, v_txns, v_dups, v_conflicts, v_errors, v_rejections, v_quarantine,
           v_repeated;
END;
$fn$;
COMMENT ON FUNCTION calo_recon.ingest_log_unreconciled(text, text) IS
  'Internal to ingest_log and ingest_file: ingest_log without the final reconcile (the users of new transactions are queued in pending_reconcile)';

CREATE FUNCTION calo_recon.ingest_log(log text, source text DEFAULT NULL)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_counts record;
BEGIN
    SELECT * INTO v_counts FROM calo_recon.ingest_log_unreconciled(log, source);
    PERFORM calo_recon.reconcile_pending();
    RETURN QUERY SELECT v_counts.events, v_counts.transactions, v_counts.duplicates,
                        v_counts.conflicts, v_counts.balance_errors, v_counts.rejections,
                        v_counts.quarantined, v_counts.repeated;
END;
$fn$;
COMMENT ON FUNCTION calo_recon.ingest_log(text, text) IS
  'Ingests the text of one log file: every event into log_events, transactions (duplicates counted, conflicts quarantined), balance errors, rejections; malformed or invalid events quarantined; then reconciles every user queued in pending_reconcile (its own and any queued before). Loading the same content again returns zeros and changes nothing.';

REVOKE ALL ON FUNCTION calo_recon.ingest_log(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.ingest_log_unreconciled(text, text) FROM PUBLIC;

CREATE FUNCTION calo_recon.read_log_file(path text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_read_log_file';
COMMENT ON FUNCTION calo_recon.read_log_file(text) IS
  'Text of one log file under calo_recon.import_directory (gzip decompressed, checked as UTF-8); needs pg_read_server_files';
REVOKE ALL ON FUNCTION calo_recon.read_log_file(text) FROM PUBLIC;

CREATE FUNCTION calo_recon.ingest_file(path text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer, files integer, skipped_files integer, new_files integer)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_ingest_file';
-- refresh() reconciles the queue itself, once, and counts what it reconciled
CREATE FUNCTION calo_recon.ingest_file_unreconciled(path text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer, files integer, skipped_files integer, new_files integer)
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_ingest_file_unreconciled';
COMMENT ON FUNCTION calo_recon.ingest_file(text) IS
  'Ingests a log file or a folder (walked recursively, in name order) under calo_recon.import_directory through ingest_log; gzip or plain text; files that are not logs are counted, skipped and recorded in quarantine; a walk counts files unchanged since it last read them (calo_recon.import_files) without reading them again; then reconciles every user queued in pending_reconcile (its own and any queued before). Runs as the extension owner (SECURITY DEFINER entry point, README "Roles"): EXECUTE, which the operator kind has, is the right to ingest from the import directory, and no path leads out of it';
REVOKE ALL ON FUNCTION calo_recon.ingest_file(text) FROM PUBLIC;
COMMENT ON FUNCTION calo_recon.ingest_file_unreconciled(text) IS
  'Internal to refresh(): ingest_file without the final reconcile, which refresh() does itself from pending_reconcile';
REVOKE ALL ON FUNCTION calo_recon.ingest_file_unreconciled(text) FROM PUBLIC;
