-- Ingestion (SPEC sections 2, 3, 9): log text -> log_events, transactions,
-- balance_errors, negative_balance_rejections and quarantine, idempotent per
-- content digest; ingest_file() / read_log_file() read the import folder (C).

-- Balance errors and rejections already stored from an overlapping file are
-- counted per file too, so that every event of a file is accounted for.
ALTER TABLE calo_recon.ingested_files
    ADD COLUMN repeated integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN calo_recon.ingested_files.repeated IS
  'Balance errors and rejections not stored again because the same event was already stored (overlapping exports)';

-- The same balance error or rejection event read again from an overlapping
-- export (same request, time, user and figures) is not stored twice.
CREATE UNIQUE INDEX balance_errors_event_key
    ON calo_recon.balance_errors
       (user_id, logged_at, request_id, message_id, subscription_balance, payment_balance)
    NULLS NOT DISTINCT;
CREATE UNIQUE INDEX negative_balance_rejections_event_key
    ON calo_recon.negative_balance_rejections
       (user_id, logged_at, request_id, txn_id, current_balance)
    NULLS NOT DISTINCT;

-- Quarantine rows are looked up by file (tracing, the per-file accounting,
-- not recording a skipped file twice).
CREATE INDEX quarantine_source_idx ON calo_recon.quarantine (source_file, event_no);

-- The parser says which form it read; without that flag, no type means legacy.
CREATE FUNCTION calo_recon.ingest_is_legacy(body jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE jsonb_typeof(body -> 'legacy')
               WHEN 'boolean' THEN (body -> 'legacy')::boolean
               ELSE NOT body ? 'type'
           END
$$;
COMMENT ON FUNCTION calo_recon.ingest_is_legacy(jsonb) IS
  'Internal to ingest_log: whether a transaction event body has the legacy 7-key form (no type)';

-- NULL when a data event can be stored, else why not:
-- {"reason": missing_field | bad_field | out_of_range, "field", "value"}.
-- The fields of each kind are checked in order against one rule each:
-- strings must not be empty, currencies are 3 capital letters, the type of
-- the current form is CREDIT or DEBIT, and money of 10^15 or more in any
-- currency is not a wallet balance (quarantined rather than stored).
CREATE FUNCTION calo_recon.ingest_event_problem(kind text, body jsonb, logged_at timestamptz)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN logged_at IS NULL THEN
            jsonb_build_object('reason', 'missing_field', 'field', 'logged_at')
        ELSE (
            SELECT jsonb_build_object('reason', c.reason, 'field', s.field, 'value', body -> s.field)
            FROM (VALUES
                ('transaction', 1, 'id', 'string', true),
                ('transaction', 2, 'userId', 'string', true),
                ('transaction', 3, 'type', 'type', true),
                ('transaction', 4, 'source', 'string', false),
                ('transaction', 5, 'action', 'string', false),
                ('transaction', 6, 'currency', 'currency', true),
                ('transaction', 7, 'amount', 'number', true),
                ('transaction', 8, 'vat', 'number', true),
                ('transaction', 9, 'oldBalance', 'number', true),
                ('transaction', 10, 'newBalance', 'number', true),
                ('transaction', 11, 'paymentBalance', 'number', false),
                ('transaction', 12, 'updatePaymentBalance', 'boolean', false),
                ('balance_error', 1, 'userId', 'string', true),
                ('balance_error', 2, 'subscriptionBalance', 'number', true),
                ('balance_error', 3, 'paymentBalance', 'number', true),
                ('balance_error', 4, 'txn_id', 'string', false),
                ('negative_balance_rejection', 1, 'userId', 'string', true),
                ('negative_balance_rejection', 2, 'currentBalance', 'number', true),
                ('negative_balance_rejection', 3, 'transactionId', 'string', false)
            ) AS s (kind, ord, field, rule, required)
            CROSS JOIN LATERAL (SELECT body -> s.field AS v) AS f
            CROSS JOIN LATERAL (SELECT CASE
                WHEN s.rule = 'type' THEN
                    CASE WHEN calo_recon.ingest_is_legacy(body) THEN NULL
                         WHEN f.v IS NULL OR jsonb_typeof(f.v) = 'null' THEN 'missing_field'
                         WHEN f.v NOT IN ('"CREDIT"', '"DEBIT"') THEN 'bad_field'
                    END
                WHEN f.v IS NULL OR jsonb_typeof(f.v) = 'null' THEN
                    CASE WHEN s.required THEN 'missing_field' END
                WHEN s.rule = 'string' THEN
                    CASE WHEN jsonb_typeof(f.v) <> 'string' OR f.v #>> '{}' = '' THEN 'bad_field' END
                WHEN s.rule = 'currency' THEN
                    CASE WHEN jsonb_typeof(f.v) <> 'string' OR f.v #>> '{}' !~ '^[A-Z]{3}$' THEN 'bad_field' END
                WHEN s.rule = 'boolean' THEN
                    CASE WHEN jsonb_typeof(f.v) <> 'boolean' THEN 'bad_field' END
                WHEN s.rule = 'number' THEN
                    CASE WHEN jsonb_typeof(f.v) <> 'number' THEN 'bad_field'
                         WHEN abs(f.v::numeric) >= 1e15 THEN 'out_of_range'
                    END
                END AS reason) AS c
            WHERE s.kind = ingest_event_problem.kind AND c.reason IS NOT NULL
            ORDER BY s.ord
            LIMIT 1)
    END
$$;
COMMENT ON FUNCTION calo_recon.ingest_event_problem(text, jsonb, timestamptz) IS
  'Internal to ingest_log: NULL when a transaction, balance_error or negative_balance_rejection event can be stored, else why not (reason, field, value)';

-- A valid transaction event body as a transactions row (source_file, request
-- and message are filled in by the caller).
CREATE FUNCTION calo_recon.ingest_transaction_row(body jsonb, logged_at timestamptz)
RETURNS calo_recon.transactions
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ROW(
        body ->> 'id',
        body ->> 'userId',
        CASE WHEN NOT calo_recon.ingest_is_legacy(body) THEN body ->> 'type' END,
        body ->> 'source',
        body ->> 'action',
        body ->> 'currency',
        (body -> 'amount')::numeric,
        (body -> 'vat')::numeric,
        (body -> 'oldBalance')::numeric,
        (body -> 'newBalance')::numeric,
        CASE WHEN jsonb_typeof(body -> 'paymentBalance') = 'number'
             THEN (body -> 'paymentBalance')::numeric END,
        CASE WHEN jsonb_typeof(body -> 'updatePaymentBalance') = 'boolean'
             THEN (body -> 'updatePaymentBalance')::boolean END,
        NULLIF(body -> 'metadata', 'null'::jsonb),
        logged_at,
        NULL, NULL, NULL)::calo_recon.transactions
$$;
COMMENT ON FUNCTION calo_recon.ingest_transaction_row(jsonb, timestamptz) IS
  'Internal to ingest_log: a checked transaction event body converted to a transactions row, numbers exact';

-- The part of a transaction that must match for a repeated id to be a
-- duplicate delivery rather than a conflict (not where or when it was logged).
CREATE FUNCTION calo_recon.ingest_transaction_payload(t calo_recon.transactions)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'txn_id', t.txn_id, 'user_id', t.user_id, 'txn_type', t.txn_type,
        'source', t.source, 'action', t.action, 'currency', t.currency,
        'amount', t.amount, 'vat', t.vat, 'old_balance', t.old_balance,
        'new_balance', t.new_balance, 'payment_balance', t.payment_balance,
        'update_payment_balance', t.update_payment_balance, 'metadata', t.metadata)
$$;
COMMENT ON FUNCTION calo_recon.ingest_transaction_payload(calo_recon.transactions) IS
  'Internal to ingest_log: the fields of a transaction compared to tell a duplicate delivery from a conflict';

-- Everything ingest_log does except reconciling: ingest_file calls it per
-- file and reconciles all the affected users once at the end.
CREATE FUNCTION calo_recon.ingest_log_unreconciled(log text, source text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer, affected_users text[])
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_digest     bytea;
    v_source     text;
    v_events     integer := 0;
    v_txns       integer := 0;
    v_dups       integer := 0;
    v_conflicts  integer := 0;
    v_errors     integer := 0;
    v_rejections integer := 0;
    v_quarantine integer := 0;
    v_repeated   integer := 0;
    v_bad_events integer[];
    v_inserted   text[];
    v_users      text[];
    v_more_users text[];
    v_valid      integer;
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM pg_catalog.pg_advisory_xact_lock(1667329135, 1);

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0, '{}'::text[];
        RETURN;
    END IF;

    -- log_events is keyed by (source_file, event_no): a different content
    -- under a name already used gets the name plus its digest prefix.
    v_source := COALESCE(NULLIF(source, ''),
                         'inline:' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.file_name = v_source)
       OR EXISTS (SELECT 1 FROM calo_recon.log_events e WHERE e.source_file = v_source) THEN
        v_source := v_source || '#' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16);
    END IF;

    -- log_events is also the staging area: later steps read this file's rows back.
    INSERT INTO calo_recon.log_events
           (source_file, event_no, logged_at, request_id, message_id, level, kind, body, raw)
    SELECT v_source, p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
           p.body, p.raw
    FROM calo_recon.parse_log(log) AS p;
    GET DIAGNOSTICS v_events = ROW_COUNT;

    -- Malformed events and data events that cannot be stored go to quarantine;
    -- the remaining data events are the valid ones.
    WITH checked AS (
        SELECT e.event_no, e.logged_at, e.kind, e.body, e.raw,
               CASE WHEN e.kind <> 'malformed'
                    THEN calo_recon.ingest_event_problem(e.kind, e.body, e.logged_at) END AS problem
        FROM calo_recon.log_events e
        WHERE e.source_file = v_source
          AND e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection', 'malformed')
    ), quarantined AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, c.event_no, c.logged_at,
               CASE WHEN c.kind = 'malformed' THEN COALESCE(c.body ->> 'intended_kind', 'malformed') ELSE c.kind END,
               CASE c.kind WHEN 'transaction' THEN c.body ->> 'id'
                           WHEN 'negative_balance_rejection' THEN c.body ->> 'transactionId'
                           WHEN 'balance_error' THEN c.body ->> 'txn_id' END,
               CASE WHEN c.kind = 'malformed' THEN COALESCE(c.body ->> 'reason', 'malformed_event')
                    ELSE c.problem ->> 'reason' END,
               CASE WHEN c.kind = 'malformed' THEN c.body
                    ELSE c.problem || jsonb_build_object('body', c.body) END,
               c.raw
        FROM checked c
        WHERE c.kind = 'malformed' OR c.problem IS NOT NULL
        ORDER BY c.event_no
        RETURNING event_no
    )
    SELECT count(*)::integer, COALESCE(array_agg(q.event_no), '{}') INTO v_quarantine, v_bad_events
    FROM quarantined q;

    -- First valid occurrence of each id is stored, in id order (stable lock order).
    WITH ins AS (
        INSERT INTO calo_recon.transactions
        SELECT (r).txn_id, (r).user_id, (r).txn_type, (r).source, (r).action, (r).currency,
               (r).amount, (r).vat, (r).old_balance, (r).new_balance, (r).payment_balance,
               (r).update_payment_balance, (r).metadata, (r).logged_at,
               request_id, message_id, v_source
        FROM (SELECT DISTINCT ON (e.body ->> 'id')
                     calo_recon.ingest_transaction_row(e.body, e.logged_at) AS r,
                     e.request_id, e.message_id
              FROM calo_recon.log_events e
              WHERE e.source_file = v_source AND e.kind = 'transaction'
                AND NOT EXISTS (SELECT FROM unnest(v_bad_events) AS bad (event_no)
                                WHERE bad.event_no = e.event_no)
              ORDER BY e.body ->> 'id', e.event_no) AS firsts
        ON CONFLICT (txn_id) DO NOTHING
        RETURNING txn_id, user_id
    )
    SELECT count(*)::integer, array_agg(ins.txn_id), array_agg(DISTINCT ins.user_id)
    INTO v_txns, v_inserted, v_users
    FROM ins;

    -- Every other valid occurrence meets a stored row: same payload is a
    -- duplicate delivery, a different one a conflict (the stored row stays).
    WITH occurrences AS (
        SELECT e.event_no, e.logged_at, e.body, e.raw,
               calo_recon.ingest_transaction_row(e.body, e.logged_at) AS r,
               row_number() OVER (PARTITION BY e.body ->> 'id' ORDER BY e.event_no) AS occurrence
        FROM calo_recon.log_events e
        WHERE e.source_file = v_source AND e.kind = 'transaction'
          AND NOT EXISTS (SELECT FROM unnest(v_bad_events) AS bad (event_no)
                          WHERE bad.event_no = e.event_no)
    ), compared AS (
        SELECT o.event_no, o.logged_at, o.body, o.raw, (o.r).txn_id AS txn_id,
               t.user_id AS stored_user,
               to_jsonb(t) AS stored,
               calo_recon.ingest_transaction_payload(o.r) AS incoming,
               t.txn_id IS NOT NULL
                 AND ROW((o.r).user_id, (o.r).txn_type, (o.r).source, (o.r).action, (o.r).currency,
                         (o.r).amount, (o.r).vat, (o.r).old_balance, (o.r).new_balance,
                         (o.r).payment_balance, (o.r).update_payment_balance, (o.r).metadata)
                     IS NOT DISTINCT FROM
                     ROW(t.user_id, t.txn_type, t.source, t.action, t.currency,
                         t.amount, t.vat, t.old_balance, t.new_balance,
                         t.payment_balance, t.update_payment_balance, t.metadata) AS same
        FROM occurrences o
        LEFT JOIN calo_recon.transactions t ON t.txn_id = (o.r).txn_id
        LEFT JOIN unnest(v_inserted) AS inserted (txn_id)
               ON o.occurrence = 1 AND inserted.txn_id = (o.r).txn_id
        WHERE inserted.txn_id IS NULL
    ), conflicted AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, c.event_no, c.logged_at, 'transaction', c.txn_id, 'conflict',
               jsonb_build_object('stored', c.stored, 'incoming', c.incoming), c.raw
        FROM compared c
        WHERE NOT c.same
        ORDER BY c.event_no
        RETURNING 1
    )
    SELECT count(*) FILTER (WHERE c.same)::integer,
           count(*) FILTER (WHERE NOT c.same)::integer,
           array_agg(DISTINCT c.stored_user) FILTER (WHERE NOT c.same AND c.stored_user IS NOT NULL)
    INTO v_dups, v_conflicts, v_more_users
    FROM compared c;
    v_quarantine := v_quarantine + v_conflicts;
    v_users := COALESCE(v_users, '{}') || COALESCE(v_more_users, '{}');

    WITH valid AS (
        SELECT e.body, e.logged_at, e.request_id, e.message_id
        FROM calo_recon.log_events e
        WHERE e.source_file = v_source AND e.kind = 'balance_error'
          AND NOT EXISTS (SELECT FROM unnest(v_bad_events) AS bad (event_no)
                          WHERE bad.event_no = e.event_no)
    ), ins AS (
        INSERT INTO calo_recon.balance_errors
               (user_id, subscription_balance, payment_balance, logged_at, request_id,
                message_id, txn_id, source_file)
        SELECT v.body ->> 'userId', (v.body -> 'subscriptionBalance')::numeric,
               (v.body -> 'paymentBalance')::numeric, v.logged_at, v.request_id,
               v.message_id, v.body ->> 'txn_id', v_source
        FROM valid v
        ORDER BY 1, 4, 5
        -- only the event key: a clash of error_id must fail, not vanish
        ON CONFLICT (user_id, logged_at, request_id, message_id, subscription_balance, payment_balance)
            DO NOTHING
        RETURNING user_id
    )
    SELECT (SELECT count(*) FROM ins)::integer, (SELECT count(*) FROM valid)::integer,
           (SELECT array_agg(DISTINCT ins.user_id) FROM ins)
    INTO v_errors, v_valid, v_more_users;
    v_repeated := v_valid - v_errors;
    v_users := v_users || COALESCE(v_more_users, '{}');

    WITH valid AS (
        SELECT e.body, e.logged_at, e.request_id
        FROM calo_recon.log_events e
        WHERE e.source_file = v_source AND e.kind = 'negative_balance_rejection'
          AND NOT EXISTS (SELECT FROM unnest(v_bad_events) AS bad (event_no)
                          WHERE bad.event_no = e.event_no)
    ), ins AS (
        INSERT INTO calo_recon.negative_balance_rejections
               (txn_id, user_id, current_balance, logged_at, request_id, source_file)
        SELECT v.body ->> 'transactionId', v.body ->> 'userId',
               (v.body -> 'currentBalance')::numeric, v.logged_at, v.request_id, v_source
        FROM valid v
        ORDER BY 2, 4, 5
        ON CONFLICT (user_id, logged_at, request_id, txn_id, current_balance) DO NOTHING
        RETURNING user_id
    )
    SELECT (SELECT count(*) FROM ins)::integer, (SELECT count(*) FROM valid)::integer,
           (SELECT array_agg(DISTINCT ins.user_id) FROM ins)
    INTO v_rejections, v_valid, v_more_users;
    v_repeated := v_repeated + v_valid - v_rejections;
    v_users := v_users || COALESCE(v_more_users, '{}');

    INSERT INTO calo_recon.ingested_files
           (digest, file_name, bytes, events, transactions, duplicates, conflicts,
            balance_errors, rejections, quarantined, repeated)
    VALUES (v_digest, v_source, pg_catalog.octet_length(log), v_events, v_txns, v_dups,
            v_conflicts, v_errors, v_rejections, v_quarantine, v_repeated);

    RETURN QUERY
    SELECT v_events, v_txns, v_dups, v_conflicts, v_errors, v_rejections, v_quarantine,
           v_repeated, COALESCE(array_agg(DISTINCT u ORDER BY u), '{}')
    FROM unnest(v_users) AS u;
END;
$fn$;
COMMENT ON FUNCTION calo_recon.ingest_log_unreconciled(text, text) IS
  'Internal to ingest_log and ingest_file: ingest_log without the final reconcile; also returns the affected user ids';

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
    IF pg_catalog.cardinality(v_counts.affected_users) > 0 THEN
        PERFORM calo_recon.reconcile(v_counts.affected_users);
    END IF;
    RETURN QUERY SELECT v_counts.events, v_counts.transactions, v_counts.duplicates,
                        v_counts.conflicts, v_counts.balance_errors, v_counts.rejections,
                        v_counts.quarantined, v_counts.repeated;
END;
$fn$;
COMMENT ON FUNCTION calo_recon.ingest_log(text, text) IS
  'Ingests the text of one log file: every event into log_events, transactions (duplicates counted, conflicts quarantined), balance errors, rejections; malformed or invalid events quarantined; then reconciles the affected users. Loading the same content again returns zeros and changes nothing.';

REVOKE ALL ON FUNCTION calo_recon.ingest_log(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.ingest_log_unreconciled(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.ingest_is_legacy(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.ingest_event_problem(text, jsonb, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.ingest_transaction_row(jsonb, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.ingest_transaction_payload(calo_recon.transactions) FROM PUBLIC;

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
COMMENT ON FUNCTION calo_recon.ingest_file(text) IS
  'Ingests a log file or a folder (walked recursively, in name order) under calo_recon.import_directory through ingest_log; gzip or plain text; files that are not logs are counted, skipped and recorded in quarantine; needs pg_read_server_files';
REVOKE ALL ON FUNCTION calo_recon.ingest_file(text) FROM PUBLIC;
