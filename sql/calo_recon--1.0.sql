-- calo_recon install script, assembled by the Makefile from sql/install/*.sql.
-- Every object is schema-qualified; functions written in SQL or PL/pgSQL pin
-- their search_path, so a hostile search_path changes nothing computed here.

\echo Use "CREATE EXTENSION calo_recon" to load this file. \quit

COMMENT ON SCHEMA calo_recon IS
  'calo_recon: wallet-sync log ingestion, balance reconciliation, anomaly scoring and finance reports';

-- Nothing in the extension is granted to PUBLIC: see README "Roles".
REVOKE ALL ON SCHEMA calo_recon FROM PUBLIC;
-- Tables that hold users' data (SPEC section 3). Money is numeric, times are
-- timestamptz, and every table is registered for pg_dump.

-- The value rules a table shares with the log parser are the parser's own
-- (src/logparse.c), so that COPY and ingest_log meet one definition.
CREATE FUNCTION calo_recon.is_currency_code(code text) RETURNS boolean
AS 'MODULE_PATHNAME', 'calo_recon_is_currency_code'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.is_currency_code(text) IS
  'true when code has the shape of an ISO 4217 alphabetic code (three capital letters A-Z): the log parser''s currency rule';
CREATE FUNCTION calo_recon.is_transaction_type(txn_type text) RETURNS boolean
AS 'MODULE_PATHNAME', 'calo_recon_is_transaction_type'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.is_transaction_type(text) IS
  'true for CREDIT and DEBIT: the log parser''s rule for the type of a transaction';

CREATE TABLE calo_recon.currencies (
    code        text     PRIMARY KEY CHECK (calo_recon.is_currency_code(code)),
    minor_unit  smallint NOT NULL CHECK (minor_unit BETWEEN 0 AND 6),
    builtin     boolean  NOT NULL DEFAULT false
);
COMMENT ON TABLE calo_recon.currencies IS
  'ISO 4217 minor units per currency; the reconciliation tolerance is half a minor unit. Editable: an inserted or updated row overrides the built-in one.';
COMMENT ON COLUMN calo_recon.currencies.code IS 'ISO 4217 alphabetic code, e.g. BHD';
COMMENT ON COLUMN calo_recon.currencies.minor_unit IS 'Number of decimal places of the currency (BHD 3, SAR 2, JPY 0)';
COMMENT ON COLUMN calo_recon.currencies.builtin IS 'true for rows the extension installed; user rows are false and are the ones pg_dump keeps';

INSERT INTO calo_recon.currencies (code, minor_unit, builtin) VALUES
    ('BHD', 3, true), ('KWD', 3, true), ('OMR', 3, true), ('JOD', 3, true),
    ('IQD', 3, true), ('LYD', 3, true), ('TND', 3, true),
    ('JPY', 0, true), ('KRW', 0, true), ('CLP', 0, true), ('ISK', 0, true),
    ('VND', 0, true), ('UGX', 0, true), ('XAF', 0, true), ('XOF', 0, true),
    ('SAR', 2, true), ('AED', 2, true), ('QAR', 2, true), ('USD', 2, true),
    ('EUR', 2, true), ('GBP', 2, true), ('EGP', 2, true), ('INR', 2, true),
    ('CHF', 2, true), ('CAD', 2, true), ('AUD', 2, true), ('CNY', 2, true);

-- An override of a built-in currency replaces the built-in row, so that a
-- restored dump (CREATE EXTENSION, then the user rows) never collides.
CREATE FUNCTION calo_recon.currencies_override_builtin() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        DELETE FROM calo_recon.currencies WHERE code = NEW.code AND builtin;
    ELSIF NEW.builtin AND OLD.builtin THEN
        NEW.builtin := false;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION calo_recon.currencies_override_builtin() IS
  'Trigger: a user row for a built-in currency replaces it and is kept by pg_dump';
CREATE TRIGGER currencies_override_builtin
    BEFORE INSERT OR UPDATE ON calo_recon.currencies
    FOR EACH ROW WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION calo_recon.currencies_override_builtin();

CREATE TABLE calo_recon.transactions (
    txn_id                  text        PRIMARY KEY,
    user_id                 text        NOT NULL,
    txn_type                text        CHECK (calo_recon.is_transaction_type(txn_type)),
    source                  text,
    action                  text,
    currency                text        NOT NULL,
    amount                  numeric     NOT NULL,
    vat                     numeric     NOT NULL,
    old_balance             numeric     NOT NULL,
    new_balance             numeric     NOT NULL,
    payment_balance         numeric,
    update_payment_balance  boolean,
    metadata                jsonb,
    logged_at               timestamptz NOT NULL,
    request_id              text,
    message_id              text,
    source_file             text
);
CREATE INDEX transactions_user_chain_idx
    ON calo_recon.transactions (user_id, logged_at, txn_id);
COMMENT ON TABLE calo_recon.transactions IS
  'One row per distinct wallet transaction ("Start syncing the balance"); txn_id is the idempotency key';
COMMENT ON COLUMN calo_recon.transactions.txn_id IS 'Transaction id (ULID) as logged';
COMMENT ON COLUMN calo_recon.transactions.user_id IS 'Wallet owner (userId)';
COMMENT ON COLUMN calo_recon.transactions.txn_type IS 'CREDIT or DEBIT; NULL for the legacy 7-key form';
COMMENT ON COLUMN calo_recon.transactions.source IS 'Origin of the transaction, e.g. PAYMENT, MANUAL_DEDUCTION';
COMMENT ON COLUMN calo_recon.transactions.action IS 'Business action, e.g. DELIVERY_DEDUCTION, RENEW_SUBSCRIPTION';
COMMENT ON COLUMN calo_recon.transactions.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.transactions.amount IS 'Gross amount, exactly as logged';
COMMENT ON COLUMN calo_recon.transactions.vat IS 'VAT included in amount; net = amount - vat';
COMMENT ON COLUMN calo_recon.transactions.old_balance IS 'Wallet balance before the transaction, as logged';
COMMENT ON COLUMN calo_recon.transactions.new_balance IS 'Wallet balance after the transaction, as logged';
COMMENT ON COLUMN calo_recon.transactions.payment_balance IS 'Balance held by the payment service, when logged';
COMMENT ON COLUMN calo_recon.transactions.update_payment_balance IS 'Whether the sync also updates the payment balance';
COMMENT ON COLUMN calo_recon.transactions.metadata IS 'Transaction metadata normalized to jsonb (nested JSON strings stay strings)';
COMMENT ON COLUMN calo_recon.transactions.logged_at IS 'Time the sync service logged the transaction';
COMMENT ON COLUMN calo_recon.transactions.request_id IS 'Lambda request id of the logging invocation';
COMMENT ON COLUMN calo_recon.transactions.message_id IS 'SQS message id the transaction belongs to';
COMMENT ON COLUMN calo_recon.transactions.source_file IS 'Export file the transaction was first read from';

CREATE TABLE calo_recon.balance_errors (
    error_id              bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id               text        NOT NULL,
    subscription_balance  numeric     NOT NULL,
    payment_balance       numeric     NOT NULL,
    logged_at             timestamptz NOT NULL,
    request_id            text,
    message_id            text,
    txn_id                text,
    source_file           text
);
CREATE INDEX balance_errors_user_idx ON calo_recon.balance_errors (user_id, logged_at);
CREATE INDEX balance_errors_txn_idx ON calo_recon.balance_errors (txn_id);
COMMENT ON TABLE calo_recon.balance_errors IS
  'ERROR events "Subscription balance and payment balance are not in sync"';
COMMENT ON COLUMN calo_recon.balance_errors.error_id IS 'Surrogate key';
COMMENT ON COLUMN calo_recon.balance_errors.user_id IS 'Wallet owner (userId)';
COMMENT ON COLUMN calo_recon.balance_errors.subscription_balance IS 'Balance according to the subscription service';
COMMENT ON COLUMN calo_recon.balance_errors.payment_balance IS 'Balance according to the payment service';
COMMENT ON COLUMN calo_recon.balance_errors.logged_at IS 'Time the error was logged';
COMMENT ON COLUMN calo_recon.balance_errors.request_id IS 'Lambda request id';
COMMENT ON COLUMN calo_recon.balance_errors.message_id IS 'SQS message id';
COMMENT ON COLUMN calo_recon.balance_errors.txn_id IS 'Transaction of the same request and message, when there is one';
COMMENT ON COLUMN calo_recon.balance_errors.source_file IS 'Export file the error was read from';

CREATE TABLE calo_recon.negative_balance_rejections (
    rejection_id     bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    txn_id           text,
    user_id          text        NOT NULL,
    current_balance  numeric     NOT NULL,
    logged_at        timestamptz NOT NULL,
    request_id       text,
    source_file      text
);
CREATE INDEX negative_balance_rejections_user_idx
    ON calo_recon.negative_balance_rejections (user_id, logged_at);
COMMENT ON TABLE calo_recon.negative_balance_rejections IS
  'Debits the sync service refused because the balance would go negative';
COMMENT ON COLUMN calo_recon.negative_balance_rejections.rejection_id IS 'Surrogate key';
COMMENT ON COLUMN calo_recon.negative_balance_rejections.txn_id IS 'Refused transaction id';
COMMENT ON COLUMN calo_recon.negative_balance_rejections.user_id IS 'Wallet owner (userId)';
COMMENT ON COLUMN calo_recon.negative_balance_rejections.current_balance IS 'Balance when the debit was refused';
COMMENT ON COLUMN calo_recon.negative_balance_rejections.logged_at IS 'Time the refusal was logged';
COMMENT ON COLUMN calo_recon.negative_balance_rejections.request_id IS 'Lambda request id';
COMMENT ON COLUMN calo_recon.negative_balance_rejections.source_file IS 'Export file the refusal was read from';

CREATE TABLE calo_recon.ingested_files (
    digest        bytea       PRIMARY KEY CHECK (octet_length(digest) = 32),
    file_name     text        NOT NULL,
    bytes         bigint      NOT NULL,
    events        integer     NOT NULL,
    transactions  integer     NOT NULL,
    duplicates    integer     NOT NULL,
    conflicts     integer     NOT NULL,
    balance_errors integer    NOT NULL,
    rejections    integer     NOT NULL,
    quarantined   integer     NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingested_files_name_idx ON calo_recon.ingested_files (file_name);
COMMENT ON TABLE calo_recon.ingested_files IS
  'Every ingested log text or file, keyed by the SHA-256 of its content: loading it again changes nothing';
COMMENT ON COLUMN calo_recon.ingested_files.digest IS 'SHA-256 of the (decompressed) log text';
COMMENT ON COLUMN calo_recon.ingested_files.file_name IS 'Source name given at ingestion (path relative to the import folder)';
COMMENT ON COLUMN calo_recon.ingested_files.bytes IS 'Size of the decompressed log text';
COMMENT ON COLUMN calo_recon.ingested_files.events IS 'Events read from the file';
COMMENT ON COLUMN calo_recon.ingested_files.transactions IS 'New transactions stored';
COMMENT ON COLUMN calo_recon.ingested_files.duplicates IS 'Duplicate deliveries of a stored transaction (same id, same payload)';
COMMENT ON COLUMN calo_recon.ingested_files.conflicts IS 'Transactions whose id was stored with a different payload (quarantined)';
COMMENT ON COLUMN calo_recon.ingested_files.balance_errors IS 'Balance errors stored';
COMMENT ON COLUMN calo_recon.ingested_files.rejections IS 'Negative-balance rejections stored';
COMMENT ON COLUMN calo_recon.ingested_files.quarantined IS 'Events quarantined';
COMMENT ON COLUMN calo_recon.ingested_files.loaded_at IS 'When the file was ingested';

-- What a folder walk (ingest_file, refresh) last read at each path, so that
-- a file unchanged since is counted again without being read, decompressed
-- and hashed on every run.  The digest in ingested_files stays the key of
-- content; this is only the shortcut before it.  Not dumped: after a
-- restore every file is read once more, which the digests make harmless.
CREATE TABLE calo_recon.import_files (
    path        text        PRIMARY KEY,
    file_size   bigint      NOT NULL,
    file_mtime  timestamptz NOT NULL,
    file_inode  bigint      NOT NULL,
    outcome     text        NOT NULL,
    read_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE calo_recon.import_files IS
  'Files under calo_recon.import_directory as a walk last read them: a walk does not read a file again while its size, modification time and inode are unchanged (delete the row, or touch the file, to have it read again)';
COMMENT ON COLUMN calo_recon.import_files.path IS 'Path relative to the import folder (the name of a symbolic link, not its target)';
COMMENT ON COLUMN calo_recon.import_files.file_size IS 'Size in bytes on disk when read';
COMMENT ON COLUMN calo_recon.import_files.file_mtime IS 'Modification time when read (to the microsecond)';
COMMENT ON COLUMN calo_recon.import_files.file_inode IS 'Inode number when read (a file replaced by rename is read again)';
COMMENT ON COLUMN calo_recon.import_files.outcome IS 'ingested (its content is in ingested_files, loaded then or before), or the quarantine reason of the file';
COMMENT ON COLUMN calo_recon.import_files.read_at IS 'When it was read';

CREATE TABLE calo_recon.log_events (
    event_id     bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source_file  text        NOT NULL,
    event_no     integer     NOT NULL,
    logged_at    timestamptz,
    request_id   text,
    message_id   text,
    level        text,
    kind         text        NOT NULL,
    body         jsonb,
    raw          text        NOT NULL,
    UNIQUE (source_file, event_no)
);
CREATE INDEX log_events_request_idx ON calo_recon.log_events (request_id);
COMMENT ON TABLE calo_recon.log_events IS
  'Every event of every ingested file, raw text included, so that anything can be traced (may hold personal data: never exported)';
COMMENT ON COLUMN calo_recon.log_events.event_id IS 'Surrogate key';
COMMENT ON COLUMN calo_recon.log_events.source_file IS 'Source name the event was read from';
COMMENT ON COLUMN calo_recon.log_events.event_no IS 'Position of the event in its file, from 1';
COMMENT ON COLUMN calo_recon.log_events.logged_at IS 'Export timestamp of the event';
COMMENT ON COLUMN calo_recon.log_events.request_id IS 'Lambda request id (NULL when the log says undefined or has none)';
COMMENT ON COLUMN calo_recon.log_events.message_id IS 'SQS message id the event belongs to';
COMMENT ON COLUMN calo_recon.log_events.level IS 'Log level of application lines (INFO, ERROR, ...); NULL for platform lines';
COMMENT ON COLUMN calo_recon.log_events.kind IS 'Event kind, see calo_recon.parse_log';
COMMENT ON COLUMN calo_recon.log_events.body IS 'Parsed content of the event';
COMMENT ON COLUMN calo_recon.log_events.raw IS 'Event text exactly as in the file';

CREATE TABLE calo_recon.quarantine (
    quarantine_id   bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source_file     text,
    event_no        integer,
    logged_at       timestamptz,
    kind            text,
    txn_id          text,
    reason          text        NOT NULL,
    detail          jsonb,
    raw             text,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_txn_idx ON calo_recon.quarantine (txn_id);
COMMENT ON TABLE calo_recon.quarantine IS
  'What could not be parsed, or conflicts with what is stored, with the reason and the raw text';
COMMENT ON COLUMN calo_recon.quarantine.quarantine_id IS 'Surrogate key';
COMMENT ON COLUMN calo_recon.quarantine.source_file IS 'Source name the item was read from';
COMMENT ON COLUMN calo_recon.quarantine.event_no IS 'Position of the event in its file, when it is an event';
COMMENT ON COLUMN calo_recon.quarantine.logged_at IS 'Export timestamp, when one could be read';
COMMENT ON COLUMN calo_recon.quarantine.kind IS 'Event kind the item was taken for, or file for a whole file';
COMMENT ON COLUMN calo_recon.quarantine.txn_id IS 'Transaction id, for conflicts';
COMMENT ON COLUMN calo_recon.quarantine.reason IS 'Why it was quarantined: malformed_event, truncated_event, conflict, invalid_utf8, not_a_log, ...';
COMMENT ON COLUMN calo_recon.quarantine.detail IS 'Machine-readable detail (parser message, conflicting payload)';
COMMENT ON COLUMN calo_recon.quarantine.raw IS 'Raw text of the item';
COMMENT ON COLUMN calo_recon.quarantine.quarantined_at IS 'When it was quarantined';

SELECT pg_catalog.pg_extension_config_dump('calo_recon.currencies', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.transactions', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.balance_errors', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.balance_errors_error_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.negative_balance_rejections', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.negative_balance_rejections_rejection_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.ingested_files', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.log_events', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.log_events_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.quarantine_quarantine_id_seq', '');
-- Locks (README "Locks"; keys and order defined once, in src/locks.h):
-- the writer lock serializes ingests, reconciliations and refresh(); the
-- chain locks let the chain alert of a new row see the user's previous row.
-- Internal: called by the functions and triggers below, not by users.

CREATE FUNCTION calo_recon.lock_writer() RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_lock_writer';
COMMENT ON FUNCTION calo_recon.lock_writer() IS
  'Internal: waits for the writer lock (ingests, reconcile, refresh) until the end of the transaction; 55P03 instead of waiting when the transaction already holds chain locks (it inserted transactions), which would invert the lock order';
REVOKE ALL ON FUNCTION calo_recon.lock_writer() FROM PUBLIC;

CREATE FUNCTION calo_recon.try_lock_writer() RETURNS boolean
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_try_lock_writer';
COMMENT ON FUNCTION calo_recon.try_lock_writer() IS
  'Internal: takes the writer lock until the end of the transaction when it is free at once; false when another session holds it';
REVOKE ALL ON FUNCTION calo_recon.try_lock_writer() FROM PUBLIC;

CREATE FUNCTION calo_recon.writer_lock_holder() RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_writer_lock_holder';
COMMENT ON FUNCTION calo_recon.writer_lock_holder() IS
  'Which other session holds the writer lock: "process PID (state): statement" from pg_locks and pg_stat_activity, or NULL when none does';
REVOKE ALL ON FUNCTION calo_recon.writer_lock_holder() FROM PUBLIC;

CREATE FUNCTION calo_recon.lock_user_chains(user_ids text[]) RETURNS boolean
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_lock_user_chains';
COMMENT ON FUNCTION calo_recon.lock_user_chains(text[]) IS
  'Internal: waits for the chain locks of these users (256 stripes, ascending) until the end of the transaction, so that a concurrent insert of the same user commits first and is seen; true when it had to wait';
REVOKE ALL ON FUNCTION calo_recon.lock_user_chains(text[]) FROM PUBLIC;
-- Log parser (SPEC sections 2 and 10): calo_recon.parse_log and the list of
-- event kinds it returns.
--
-- Both functions are pure: they read no table, write nothing and reveal
-- nothing but what the caller passes in, so EXECUTE stays with PUBLIC (the
-- schema itself is closed to PUBLIC anyway: see 00_header.sql).
-- parse_log is IMMUTABLE: logged_at is computed from the UTC fields of the
-- log's own ISO timestamps and bodies are plain jsonb, so no setting
-- (TimeZone, DateStyle, ...) changes a result.

CREATE FUNCTION calo_recon.parse_log(log text)
RETURNS TABLE (event_no integer, logged_at timestamptz, request_id text, level text,
               kind text, body jsonb, message_id text, raw text)
AS 'MODULE_PATHNAME', 'calo_recon_parse_log'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE ROWS 1000;

COMMENT ON FUNCTION calo_recon.parse_log(text) IS
$$Splits one CloudWatch balance-sync log text into events, one row each; writes nothing.
Columns: event_no (from 1), logged_at (application timestamp, else export timestamp), request_id (NULL when absent or "undefined"), level (INFO/ERROR/...; NULL for platform lines), kind, body (jsonb), message_id (SQS message the request was processing), raw (the event text as in the log).
Kinds: start, end, report, init_start, init_report, metric, platform_text, processing_message, transaction, balance_error, negative_balance_rejection, skip, balance_updated, transaction_lock, transaction_json, record_body, sync_error, uncaught_exception, invoke_error, app_log, malformed.
A malformed body is {"reason", "detail", "intended_kind"}, plus "field" (the key) and "txn_id" (the event's own id, when readable) for a data field that breaks its rule; reasons: no_timestamp, bad_timestamp, truncated_event, malformed_event (also: a duplicate key, or another log line starting inside the event), missing_field, bad_field (also: an empty string, a currency not of three capital letters, a type not CREDIT or DEBIT), out_of_range (an id, string field or number beyond the parser's limits, money of 10^15 or more), too_large (an event beyond the parser's size limit: not parsed, raw cut to an excerpt); the limits are in src/logparse.h and the README. See calo_recon.parse_log_kinds().$$;

CREATE FUNCTION calo_recon.parse_log_kinds()
RETURNS TABLE (kind text, family text, body text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
    ('start',                      'platform',    '{"version"}'),
    ('end',                        'platform',    '{}'),
    ('report',                     'platform',    '{"duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb", "init_duration_ms"?, "xray_trace_id"?, "xray_segment_id"?, "xray_sampled"?}'),
    ('init_start',                 'platform',    '{"runtime_version", "runtime_version_arn"}'),
    ('init_report',                'platform',    '{"init_duration_ms", "phase", "status", "error_type"}'),
    ('metric',                     'platform',    'the {"_aws": ...} embedded-metric object itself'),
    ('platform_text',              'platform',    '{"message"}'),
    ('processing_message',         'application', '{"message_id"}'),
    ('transaction',                'data',        '{"id", "type", "source", "action", "userId", "paymentBalance", "updatePaymentBalance", "metadata", "currency", "amount", "vat", "oldBalance", "newBalance", "legacy": false}, or legacy {"id", "userId", "currency", "amount", "vat", "oldBalance", "newBalance", "legacy": true}'),
    ('balance_error',              'data',        '{"userId", "subscriptionBalance", "paymentBalance", "txn_id"}'),
    ('negative_balance_rejection', 'data',        '{"userId", "currentBalance", "transactionId", "message"}'),
    ('skip',                       'application', '{"message"}'),
    ('balance_updated',            'application', '{"message"}'),
    ('transaction_lock',           'application', '{"message"}'),
    ('transaction_json',           'application', '{"message", "data"?}'),
    ('record_body',                'application', '{"message", "data"?}'),
    ('sync_error',                 'failure',     '{"message"} (stack text included)'),
    ('uncaught_exception',         'failure',     '{"message", "data"?}'),
    ('invoke_error',               'failure',     '{"message", "data"?}'),
    ('app_log',                    'application', '{"message"}'),
    ('malformed',                  'malformed',   '{"reason", "detail", "intended_kind", "field"?, "txn_id"?}')
$$;

COMMENT ON FUNCTION calo_recon.parse_log_kinds() IS
  'The event kinds calo_recon.parse_log returns: family (platform, application, data, failure, malformed) and the members of their body ("?" = only when present in the log)';
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

-- Everything ingest_log does except reconciling: ingest_file calls it per
-- file and reconciles once at the end.  Who needs reconciling is recorded in
-- one place only, calo_recon.pending_reconcile (filled by a trigger on
-- transactions), which the callers drain with reconcile_pending().
--
-- Validation is wholly the parser's (src/logparse.c, one table of field
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
    v_others     integer[];
    v_other_rows calo_recon.transactions[];
    v_valid      integer;
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM calo_recon.lock_writer();

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0;
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

    -- One statement stores the file: every event into log_events; the events
    -- the parser made malformed into quarantine (kind: the kind intended);
    -- the first occurrence of each transaction id, the balance errors and the
    -- rejections into their tables.  The parse is read once, never read back.
    WITH parsed AS MATERIALIZED (
        SELECT p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
               p.body, p.raw
        FROM calo_recon.parse_log(log) AS p
    ), logged AS (
        INSERT INTO calo_recon.log_events
               (source_file, event_no, logged_at, request_id, message_id, level, kind, body, raw)
        SELECT v_source, e.event_no, e.logged_at, e.request_id, e.message_id, e.level, e.kind,
               e.body, e.raw
        FROM parsed e
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
    ), new_txns AS (
        -- first valid occurrence of each id, in id order (stable lock order)
        INSERT INTO calo_recon.transactions
        SELECT (f.r).*
        FROM valid_txns f
        WHERE f.occurrence = 1
        ORDER BY f.txn_id
        ON CONFLICT (txn_id) DO NOTHING
        RETURNING txn_id, user_id
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
        ON CONFLICT (user_id, logged_at, request_id, message_id, subscription_balance, payment_balance)
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
           (SELECT array_agg(o.r ORDER BY o.event_no) FROM others o)
    INTO v_events, v_quarantine, v_txns, v_errors, v_rejections, v_valid, v_others,
         v_other_rows;
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
            LEFT JOIN calo_recon.transactions t ON t.txn_id = o.txn_id
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
  'Ingests a log file or a folder (walked recursively, in name order) under calo_recon.import_directory through ingest_log; gzip or plain text; files that are not logs are counted, skipped and recorded in quarantine; a walk counts files unchanged since it last read them (calo_recon.import_files) without reading them again; then reconciles every user queued in pending_reconcile (its own and any queued before); needs pg_read_server_files';
REVOKE ALL ON FUNCTION calo_recon.ingest_file(text) FROM PUBLIC;
COMMENT ON FUNCTION calo_recon.ingest_file_unreconciled(text) IS
  'Internal to refresh(): ingest_file without the final reconcile, which refresh() does itself from pending_reconcile';
REVOKE ALL ON FUNCTION calo_recon.ingest_file_unreconciled(text) FROM PUBLIC;
-- Reconciliation (SPEC section 4) and its views (SPEC section 6).
-- calo_recon.reconcile() materializes what needs the chain order into
-- reconciliation_findings; the views read that table and the data tables.

CREATE TABLE calo_recon.reconciliation_findings (
    txn_id         text        NOT NULL,
    user_id        text        NOT NULL,
    finding        text        NOT NULL
        CHECK (finding IN ('arithmetic', 'chain', 'drift', 'chain_drift', 'out_of_range')),
    expected       numeric,
    actual         numeric,
    difference     numeric,
    tolerance      numeric     NOT NULL,
    currency       text        NOT NULL,
    logged_at      timestamptz NOT NULL,
    first_break    boolean     NOT NULL,
    reconciled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txn_id, finding)
);
CREATE INDEX reconciliation_findings_user_idx
    ON calo_recon.reconciliation_findings (user_id);
COMMENT ON TABLE calo_recon.reconciliation_findings IS
  'What calo_recon.reconcile() found, per transaction: breaks (arithmetic, chain, out_of_range) and precision drift (drift, chain_drift). Rewritten per user by reconcile()';
COMMENT ON COLUMN calo_recon.reconciliation_findings.txn_id IS 'Transaction the finding is about';
COMMENT ON COLUMN calo_recon.reconciliation_findings.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.reconciliation_findings.finding IS
  'arithmetic: new_balance differs from old_balance -/+ (amount - vat) by at least the tolerance; chain: old_balance differs from the previous new_balance by at least the tolerance; drift / chain_drift: the same with a nonzero difference below the tolerance; out_of_range: a value the exact math cannot hold (|value| >= 10^20, more than 18 decimals, NaN)';
COMMENT ON COLUMN calo_recon.reconciliation_findings.expected IS 'Expected value: the computed new_balance (arithmetic) or the previous new_balance (chain); NULL for out_of_range';
COMMENT ON COLUMN calo_recon.reconciliation_findings.actual IS 'Logged value: new_balance (arithmetic) or old_balance (chain); NULL for out_of_range';
COMMENT ON COLUMN calo_recon.reconciliation_findings.difference IS 'actual - expected, exact; NULL for out_of_range';
COMMENT ON COLUMN calo_recon.reconciliation_findings.tolerance IS 'Half the minor unit of the currency (2 decimals, i.e. 0.005, when the currency is not in calo_recon.currencies)';
COMMENT ON COLUMN calo_recon.reconciliation_findings.currency IS 'Currency of the transaction';
COMMENT ON COLUMN calo_recon.reconciliation_findings.logged_at IS 'logged_at of the transaction';
COMMENT ON COLUMN calo_recon.reconciliation_findings.first_break IS 'true for the user''s first arithmetic/chain/out_of_range break in chain order (a chain break comes before an arithmetic one of the same transaction)';
COMMENT ON COLUMN calo_recon.reconciliation_findings.reconciled_at IS 'When reconcile() wrote the finding';
SELECT pg_catalog.pg_extension_config_dump('calo_recon.reconciliation_findings', '');

CREATE FUNCTION calo_recon.reconcile(user_ids text[] DEFAULT NULL)
RETURNS TABLE (users bigint, transactions bigint, arithmetic_breaks bigint,
               chain_breaks bigint, drift bigint, overdrafts bigint)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_reconcile';
COMMENT ON FUNCTION calo_recon.reconcile(text[]) IS
  'Recomputes the reconciliation findings of the given users (all users when NULL) in one pass over their transactions in chain order (logged_at, then txn_id); returns the counts. Values outside the exact range raise a WARNING and become out_of_range findings';
REVOKE ALL ON FUNCTION calo_recon.reconcile(text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.check_transaction(
    txn_type text, currency text, amount numeric, vat numeric,
    old_balance numeric, new_balance numeric, prev_new_balance numeric DEFAULT NULL)
RETURNS TABLE (finding text, expected numeric, actual numeric, difference numeric,
               tolerance numeric)
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_check_transaction';
COMMENT ON FUNCTION calo_recon.check_transaction(text, text, numeric, numeric, numeric, numeric, numeric) IS
  'Checks one transaction against the rules of reconcile(): chain (when prev_new_balance is given), arithmetic and overdraft; one row per finding (chain, chain_drift, arithmetic, drift, out_of_range, overdraft), none when it reconciles. STABLE, not IMMUTABLE: the tolerance comes from calo_recon.currencies, which is editable';
REVOKE ALL ON FUNCTION calo_recon.check_transaction(text, text, numeric, numeric, numeric, numeric, numeric) FROM PUBLIC;

CREATE FUNCTION calo_recon.exact_decimal(value numeric, via_text boolean DEFAULT false)
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_exact_decimal';
COMMENT ON FUNCTION calo_recon.exact_decimal(numeric, boolean) IS
  'Diagnostic: the exact value reconcile() computes with (fixed point, 18 decimals, |value| < 10^20), as text without trailing zeros; via_text uses the numeric_out path instead of decoding the numeric directly. Errors 22003 out of range, 22023 for NaN/infinity';

CREATE FUNCTION calo_recon.chain_findings(txn_ids text[])
RETURNS TABLE (txn_id text, user_id text, finding text, expected numeric, actual numeric,
               difference numeric, tolerance numeric, currency text)
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'calo_recon_chain_findings';
COMMENT ON FUNCTION calo_recon.chain_findings(text[]) IS
  'The findings the walk of reconcile() makes of the given stored transactions and of the stored rows after them in chain order (re-checked: a given row may be their new predecessor), each against its predecessor in chain order among the stored rows: chain, chain_drift, arithmetic, drift, out_of_range and overdraft (actual = new_balance); a re-checked row that is not given and has no finding gives one row with finding NULL. The insert-time check of the alert trigger';
REVOKE ALL ON FUNCTION calo_recon.chain_findings(text[]) FROM PUBLIC;

-- The walk's rules for SQL: the views order and decide with these, never
-- with a copy of the rule (src/walk.c, src/balance.c).
CREATE FUNCTION calo_recon.chain_key(logged_at timestamptz, txn_id text)
RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_chain_key';
COMMENT ON FUNCTION calo_recon.chain_key(timestamptz, text) IS
  'Sort key of the chain order of reconcile(): ORDER BY calo_recon.chain_key(logged_at, txn_id) is logged_at, then txn_id compared bytewise, in every database collation';

CREATE FUNCTION calo_recon.tolerance(minor_unit integer)
RETURNS numeric
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_tolerance';
COMMENT ON FUNCTION calo_recon.tolerance(integer) IS
  'Tolerance of reconcile() for a currency with that many decimals: half its minor unit (3 gives 0.0005); NULL (a currency not in calo_recon.currencies) gives that of 2 decimals, 0.005';

CREATE FUNCTION calo_recon.is_credit(txn_type text, old_balance numeric, new_balance numeric)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_is_credit';
COMMENT ON FUNCTION calo_recon.is_credit(text, numeric, numeric) IS
  'Direction rule of reconcile(): true for CREDIT, false for DEBIT; a legacy row (txn_type NULL) is a credit when new_balance >= old_balance. NULL when a balance is NULL; 22023 for another type';

CREATE FUNCTION calo_recon.is_overdraft(new_balance numeric)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_is_overdraft';
COMMENT ON FUNCTION calo_recon.is_overdraft(numeric) IS
  'Overdraft rule of reconcile() and the alerts: the transaction left the wallet below zero (new_balance < 0)';

CREATE FUNCTION calo_recon.finding_rank(finding text)
RETURNS integer
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_finding_rank';
COMMENT ON FUNCTION calo_recon.finding_rank(text) IS
  'Order in which reconcile() reports the findings of one transaction: chain, chain_drift, arithmetic, drift, out_of_range, overdraft (1 to 6); NULL for any other text';

-- ---------------------------------------------------------------------
-- Views (the BI contract)
-- ---------------------------------------------------------------------

CREATE VIEW calo_recon.balance_breaks AS
WITH breaks AS (
    SELECT f.txn_id, f.user_id, f.finding AS break_kind, f.currency,
           f.expected, f.actual, f.difference, f.tolerance, f.logged_at,
           calo_recon.finding_rank(f.finding) AS kind_order
    FROM calo_recon.reconciliation_findings f
    WHERE f.finding IN ('arithmetic', 'chain', 'out_of_range')
    UNION ALL
    SELECT DISTINCT ON (q.txn_id)
           q.txn_id, t.user_id, 'conflict', t.currency,
           NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric,
           coalesce(t.logged_at, q.logged_at), NULL::integer  -- after the walk's findings
    FROM calo_recon.quarantine q
    JOIN calo_recon.transactions t ON t.txn_id = q.txn_id
    WHERE q.reason = 'conflict'
)
SELECT b.txn_id, b.user_id, b.break_kind, b.currency, b.expected, b.actual,
       b.difference, b.tolerance,
       pg_catalog.row_number() OVER (PARTITION BY b.user_id
           ORDER BY calo_recon.chain_key(b.logged_at, b.txn_id), b.kind_order NULLS LAST) = 1 AS first_break,
       b.logged_at, t.source_file
FROM breaks b
LEFT JOIN calo_recon.transactions t ON t.txn_id = b.txn_id;
COMMENT ON VIEW calo_recon.balance_breaks IS
  'Every balance break, not just the first: arithmetic (new_balance does not follow from old_balance and amount - vat), chain (old_balance is not the previous new_balance), conflict (the id was delivered again with a different payload, see calo_recon.quarantine; one break per transaction however many conflicting deliveries) and out_of_range (a value too large or too precise to check exactly). Breaks are at or above the tolerance; see precision_drift for smaller differences. Up to date as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.balance_breaks.txn_id IS 'Transaction with the break';
COMMENT ON COLUMN calo_recon.balance_breaks.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.balance_breaks.break_kind IS 'arithmetic, chain, conflict or out_of_range';
COMMENT ON COLUMN calo_recon.balance_breaks.currency IS 'Currency of the transaction';
COMMENT ON COLUMN calo_recon.balance_breaks.expected IS 'arithmetic: old_balance - net (DEBIT) or + net (CREDIT; legacy rows take the direction of new - old), net = amount - vat; chain: the previous new_balance; NULL for conflict and out_of_range';
COMMENT ON COLUMN calo_recon.balance_breaks.actual IS 'arithmetic: the logged new_balance; chain: the logged old_balance; NULL for conflict and out_of_range';
COMMENT ON COLUMN calo_recon.balance_breaks.difference IS 'actual - expected (signed, exact)';
COMMENT ON COLUMN calo_recon.balance_breaks.tolerance IS 'Half the minor unit of the currency (BHD 0.0005, SAR 0.005, JPY 0.5; 0.005 when the currency is unknown); NULL for conflict';
COMMENT ON COLUMN calo_recon.balance_breaks.first_break IS 'true for the user''s first break in chain order (logged_at, txn_id; chain before arithmetic before conflict on one transaction)';
COMMENT ON COLUMN calo_recon.balance_breaks.logged_at IS 'logged_at of the transaction';
COMMENT ON COLUMN calo_recon.balance_breaks.source_file IS 'Export file the transaction was read from';

CREATE VIEW calo_recon.precision_drift AS
SELECT f.txn_id, f.user_id,
       CASE f.finding WHEN 'drift' THEN 'arithmetic' ELSE 'chain' END AS drift_kind,
       f.currency, f.expected, f.actual, f.difference, f.tolerance, f.logged_at,
       t.source_file
FROM calo_recon.reconciliation_findings f
LEFT JOIN calo_recon.transactions t ON t.txn_id = f.txn_id
WHERE f.finding IN ('drift', 'chain_drift');
COMMENT ON VIEW calo_recon.precision_drift IS
  'Nonzero differences below the tolerance (float noise such as 268.0000000001): reported apart, not breaks. Up to date as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.precision_drift.txn_id IS 'Transaction with the drift';
COMMENT ON COLUMN calo_recon.precision_drift.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.precision_drift.drift_kind IS 'arithmetic (new_balance against old_balance and amount - vat) or chain (old_balance against the previous new_balance)';
COMMENT ON COLUMN calo_recon.precision_drift.currency IS 'Currency of the transaction';
COMMENT ON COLUMN calo_recon.precision_drift.expected IS 'Expected value, as in balance_breaks';
COMMENT ON COLUMN calo_recon.precision_drift.actual IS 'Logged value, as in balance_breaks';
COMMENT ON COLUMN calo_recon.precision_drift.difference IS 'actual - expected (signed, exact, 0 < |difference| < tolerance)';
COMMENT ON COLUMN calo_recon.precision_drift.tolerance IS 'Half the minor unit of the currency (0.005 when unknown)';
COMMENT ON COLUMN calo_recon.precision_drift.logged_at IS 'logged_at of the transaction';
COMMENT ON COLUMN calo_recon.precision_drift.source_file IS 'Export file the transaction was read from';

CREATE VIEW calo_recon.overdrafts AS
SELECT t.txn_id, t.user_id, t.txn_type, t.source, t.action, t.currency, t.amount,
       t.vat, t.old_balance, t.new_balance, t.logged_at, t.source_file
FROM calo_recon.transactions t
WHERE calo_recon.is_overdraft(t.new_balance);
COMMENT ON VIEW calo_recon.overdrafts IS
  'Transactions that left the wallet below zero (new_balance < 0); see overdraft_episodes for runs of them';
COMMENT ON COLUMN calo_recon.overdrafts.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.overdrafts.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.overdrafts.txn_type IS 'CREDIT, DEBIT, or NULL for the legacy form';
COMMENT ON COLUMN calo_recon.overdrafts.source IS 'Origin of the transaction';
COMMENT ON COLUMN calo_recon.overdrafts.action IS 'Business action';
COMMENT ON COLUMN calo_recon.overdrafts.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.overdrafts.amount IS 'Gross amount';
COMMENT ON COLUMN calo_recon.overdrafts.vat IS 'VAT included in amount';
COMMENT ON COLUMN calo_recon.overdrafts.old_balance IS 'Balance before';
COMMENT ON COLUMN calo_recon.overdrafts.new_balance IS 'Balance after (negative)';
COMMENT ON COLUMN calo_recon.overdrafts.logged_at IS 'When the transaction was logged';
COMMENT ON COLUMN calo_recon.overdrafts.source_file IS 'Export file the transaction was read from';

CREATE VIEW calo_recon.overdraft_episodes AS
WITH ordered AS (
    SELECT t.txn_id, t.user_id, t.currency, t.new_balance, t.logged_at,
           calo_recon.is_overdraft(t.new_balance) AS negative,
           pg_catalog.row_number() OVER w AS pos,
           pg_catalog.row_number() OVER (PARTITION BY t.user_id, calo_recon.is_overdraft(t.new_balance)
               ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id)) AS pos_in_sign,
           pg_catalog.lead(t.logged_at) OVER w AS next_logged_at
    FROM calo_recon.transactions t
    WHERE t.user_id IN (SELECT o.user_id FROM calo_recon.transactions o
                        WHERE calo_recon.is_overdraft(o.new_balance))
    WINDOW w AS (PARTITION BY t.user_id ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id))
),
runs AS (
    -- consecutive negative rows share pos - pos_in_sign
    SELECT o.*, o.pos - o.pos_in_sign AS run FROM ordered o WHERE o.negative
)
SELECT r.user_id,
       (pg_catalog.array_agg(r.currency ORDER BY r.pos))[1] AS currency,
       pg_catalog.min(r.logged_at) AS started_at,
       (pg_catalog.array_agg(r.next_logged_at ORDER BY r.pos DESC))[1] AS ended_at,
       pg_catalog.min(r.new_balance) AS lowest_balance,
       pg_catalog.count(*) AS transactions,
       (pg_catalog.array_agg(r.txn_id ORDER BY r.pos))[1] AS first_txn_id,
       (pg_catalog.array_agg(r.txn_id ORDER BY r.pos DESC))[1] AS last_txn_id
FROM runs r
GROUP BY r.user_id, r.run;
COMMENT ON VIEW calo_recon.overdraft_episodes IS
  'Runs of consecutive negative balances per user in chain order (logged_at, txn_id): when the wallet went below zero, how low it went and when a later transaction brought it back to zero or above';
COMMENT ON COLUMN calo_recon.overdraft_episodes.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.overdraft_episodes.currency IS 'Currency of the first negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episodes.started_at IS 'logged_at of the first transaction that left the balance negative';
COMMENT ON COLUMN calo_recon.overdraft_episodes.ended_at IS 'logged_at of the transaction that brought the balance back to zero or above; NULL while still negative';
COMMENT ON COLUMN calo_recon.overdraft_episodes.lowest_balance IS 'Lowest new_balance during the run';
COMMENT ON COLUMN calo_recon.overdraft_episodes.transactions IS 'Number of consecutive transactions with a negative new_balance';
COMMENT ON COLUMN calo_recon.overdraft_episodes.first_txn_id IS 'First negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episodes.last_txn_id IS 'Last negative transaction of the run';

CREATE VIEW calo_recon.discrepancies AS
SELECT e.error_id, e.user_id, e.txn_id, e.subscription_balance, e.payment_balance,
       e.subscription_balance - e.payment_balance AS difference,
       tol.tolerance, tol.currency, e.logged_at, e.source_file
FROM calo_recon.balance_errors e
CROSS JOIN LATERAL (
    SELECT c.currency,
           calo_recon.tolerance(cu.minor_unit) AS tolerance
    FROM (SELECT coalesce(
                   (SELECT t.currency FROM calo_recon.transactions t WHERE t.txn_id = e.txn_id),
                   (SELECT t.currency FROM calo_recon.transactions t WHERE t.user_id = e.user_id
                    ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC LIMIT 1)) AS currency) c
    LEFT JOIN calo_recon.currencies cu ON cu.code = c.currency
) tol
WHERE abs(e.subscription_balance - e.payment_balance) >= tol.tolerance;
COMMENT ON VIEW calo_recon.discrepancies IS
  'Balance errors whose subscription and payment balances differ by at least the tolerance (currency of the linked transaction, else of the user''s latest transaction, else 2 decimals)';
COMMENT ON COLUMN calo_recon.discrepancies.error_id IS 'Balance error (calo_recon.balance_errors)';
COMMENT ON COLUMN calo_recon.discrepancies.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.discrepancies.txn_id IS 'Transaction of the same request and message, when there is one';
COMMENT ON COLUMN calo_recon.discrepancies.subscription_balance IS 'Balance according to the subscription service';
COMMENT ON COLUMN calo_recon.discrepancies.payment_balance IS 'Balance according to the payment service';
COMMENT ON COLUMN calo_recon.discrepancies.difference IS 'subscription_balance - payment_balance';
COMMENT ON COLUMN calo_recon.discrepancies.tolerance IS 'Half the minor unit of the currency used';
COMMENT ON COLUMN calo_recon.discrepancies.currency IS 'Currency the tolerance comes from; NULL when the user has no transaction (2 decimals assumed)';
COMMENT ON COLUMN calo_recon.discrepancies.logged_at IS 'When the error was logged';
COMMENT ON COLUMN calo_recon.discrepancies.source_file IS 'Export file the error was read from';

CREATE VIEW calo_recon.user_summary AS
WITH txn AS (
    SELECT t.user_id,
           pg_catalog.count(*) AS transactions,
           pg_catalog.min(t.logged_at) AS first_logged_at,
           pg_catalog.max(t.logged_at) AS last_logged_at,
           (pg_catalog.array_agg(t.currency ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC))[1] AS currency,
           (pg_catalog.array_agg(t.new_balance ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC))[1] AS current_balance,
           pg_catalog.count(*) FILTER (WHERE calo_recon.is_overdraft(t.new_balance)) AS overdrafts,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS credits_total,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE NOT calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS debits_total
    FROM calo_recon.transactions t
    GROUP BY t.user_id
),
findings AS (
    SELECT f.user_id,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
    FROM calo_recon.reconciliation_findings f
    GROUP BY f.user_id
),
disc AS (
    SELECT d.user_id, pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d GROUP BY d.user_id
),
rej AS (
    SELECT r.user_id, pg_catalog.count(*) AS rejections
    FROM calo_recon.negative_balance_rejections r GROUP BY r.user_id
),
users AS (
    SELECT user_id FROM txn
    UNION SELECT user_id FROM calo_recon.balance_errors
    UNION SELECT user_id FROM rej
)
SELECT u.user_id,
       coalesce(x.transactions, 0) AS transactions,
       x.first_logged_at, x.last_logged_at, x.currency, x.current_balance,
       coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(f.chain_breaks, 0) AS chain_breaks,
       coalesce(f.drift, 0) AS drift,
       coalesce(x.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(r.rejections, 0) AS rejections,
       coalesce(x.credits_total, 0) AS credits_total,
       coalesce(x.debits_total, 0) AS debits_total
FROM users u
LEFT JOIN txn x ON x.user_id = u.user_id
LEFT JOIN findings f ON f.user_id = u.user_id
LEFT JOIN disc d ON d.user_id = u.user_id
LEFT JOIN rej r ON r.user_id = u.user_id;
COMMENT ON VIEW calo_recon.user_summary IS
  'One row per user seen in transactions, balance errors or rejections: activity, current balance and counts of breaks, drift, overdrafts, discrepancies and refused debits. Break and drift counts are as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.user_summary.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.user_summary.transactions IS 'Number of transactions';
COMMENT ON COLUMN calo_recon.user_summary.first_logged_at IS 'First transaction time';
COMMENT ON COLUMN calo_recon.user_summary.last_logged_at IS 'Last transaction time';
COMMENT ON COLUMN calo_recon.user_summary.currency IS 'Currency of the last transaction';
COMMENT ON COLUMN calo_recon.user_summary.current_balance IS 'new_balance of the last transaction in chain order (logged_at, txn_id)';
COMMENT ON COLUMN calo_recon.user_summary.arithmetic_breaks IS 'Arithmetic breaks (see balance_breaks)';
COMMENT ON COLUMN calo_recon.user_summary.chain_breaks IS 'Chain breaks (see balance_breaks)';
COMMENT ON COLUMN calo_recon.user_summary.drift IS 'Precision drift findings (see precision_drift)';
COMMENT ON COLUMN calo_recon.user_summary.overdrafts IS 'Transactions with a negative new_balance';
COMMENT ON COLUMN calo_recon.user_summary.discrepancies IS 'Balance errors at or above the tolerance (see discrepancies)';
COMMENT ON COLUMN calo_recon.user_summary.rejections IS 'Debits refused for overdraft (negative_balance_rejections)';
COMMENT ON COLUMN calo_recon.user_summary.credits_total IS 'Sum of amount over CREDIT transactions (legacy rows whose balance did not decrease count as credits)';
COMMENT ON COLUMN calo_recon.user_summary.debits_total IS 'Sum of amount over DEBIT transactions (legacy rows whose balance decreased count as debits)';
-- The reconcile queue (SPEC sections 4 and 8): who needs reconciling, kept
-- by a trigger on transactions and worked by reconcile() (src/recon_glue.c),
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
-- Not dumped: a restore queues every restored transaction again, so the first
-- refresh() after it reconciles everyone once more.
CREATE TABLE calo_recon.pending_reconcile (
    entry_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   text   NOT NULL
);
COMMENT ON TABLE calo_recon.pending_reconcile IS
  'Users with transactions inserted since they were last reconciled, one entry per inserting statement and user; reconcile() deletes the entries of the users it reconciles';
COMMENT ON COLUMN calo_recon.pending_reconcile.entry_id IS 'Surrogate key of the entry';
COMMENT ON COLUMN calo_recon.pending_reconcile.user_id IS 'Wallet owner to be reconciled';

-- A bulk load of a million rows queues only its distinct users.
CREATE FUNCTION calo_recon.track_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO calo_recon.pending_reconcile (user_id)
    SELECT DISTINCT n.user_id FROM new_rows n;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_new_transactions() IS
  'Trigger: queues the users of inserted transactions in pending_reconcile for the next reconciliation';
CREATE TRIGGER transactions_track_new
    AFTER INSERT ON calo_recon.transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_new_transactions();

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
-- Anomaly detection types (SPEC section 5): calo_recon.scaler (StandardScaler)
-- and calo_recon.iforest (Isolation Forest), their fitting aggregates and
-- scoring functions, all in C (src/scaler*.c, src/iforest*.c).

-------------------------------------------------------------------- scaler

CREATE TYPE calo_recon.scaler;

CREATE FUNCTION calo_recon.scaler_in(cstring) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_in(cstring) IS
  'Input of calo_recon.scaler: its JSON form {"n_features", "n_samples", "mean", "var", "scale"}';
CREATE FUNCTION calo_recon.scaler_out(calo_recon.scaler) RETURNS cstring
    AS 'MODULE_PATHNAME', 'scaler_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_out(calo_recon.scaler) IS
  'Output of calo_recon.scaler as JSON (numbers in shortest exact form)';
CREATE FUNCTION calo_recon.scaler_recv(internal) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_recv(internal) IS
  'Binary input of calo_recon.scaler: the versioned binary form, fully validated';
CREATE FUNCTION calo_recon.scaler_send(calo_recon.scaler) RETURNS bytea
    AS 'MODULE_PATHNAME', 'scaler_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_send(calo_recon.scaler) IS
  'Binary output of calo_recon.scaler: the versioned binary form';

CREATE TYPE calo_recon.scaler (
    INPUT = calo_recon.scaler_in,
    OUTPUT = calo_recon.scaler_out,
    RECEIVE = calo_recon.scaler_recv,
    SEND = calo_recon.scaler_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);
COMMENT ON TYPE calo_recon.scaler IS
  'A fitted StandardScaler: per-feature mean, population variance (ddof 0) and scale (1 for constant features, as scikit-learn)';

CREATE FUNCTION calo_recon.scaler_fit_transfn(internal, float8[]) RETURNS internal
    AS 'MODULE_PATHNAME', 'scaler_fit_transfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_transfn(internal, float8[]) IS
  'scaler_fit state transition: Welford update of one row';
CREATE FUNCTION calo_recon.scaler_fit_combinefn(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'scaler_fit_combinefn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_combinefn(internal, internal) IS
  'scaler_fit combine: Chan et al. merge of two partial fits';
CREATE FUNCTION calo_recon.scaler_fit_serialfn(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'scaler_fit_serialfn' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_serialfn(internal) IS 'scaler_fit state serialization';
CREATE FUNCTION calo_recon.scaler_fit_deserialfn(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'scaler_fit_deserialfn' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_deserialfn(bytea, internal) IS 'scaler_fit state deserialization';
CREATE FUNCTION calo_recon.scaler_fit_finalfn(internal) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_fit_finalfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_finalfn(internal) IS
  'scaler_fit final: mean, variance and scale; an empty training set is an error';

CREATE AGGREGATE calo_recon.scaler_fit(features float8[]) (
    SFUNC = calo_recon.scaler_fit_transfn,
    STYPE = internal,
    FINALFUNC = calo_recon.scaler_fit_finalfn,
    COMBINEFUNC = calo_recon.scaler_fit_combinefn,
    SERIALFUNC = calo_recon.scaler_fit_serialfn,
    DESERIALFUNC = calo_recon.scaler_fit_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.scaler_fit(float8[]) IS
  'Fits a StandardScaler (scikit-learn semantics) over feature vectors; NULL/NaN/Infinity features, ragged rows and empty input are errors';

CREATE FUNCTION calo_recon.scaler_transform(calo_recon.scaler, float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'scaler_transform' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_transform(calo_recon.scaler, float8[]) IS
  'Standardizes a feature vector: (x - mean) / scale per feature';

CREATE FUNCTION calo_recon.scaler_to_json(calo_recon.scaler) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'scaler_to_json' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_to_json(calo_recon.scaler) IS
  'The scaler as JSON: n_features, n_samples, mean, var, scale';
CREATE FUNCTION calo_recon.scaler_from_json(jsonb) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_from_json' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_from_json(jsonb) IS
  'Builds a scaler from JSON (e.g. scikit-learn mean_, var_, scale_, n_samples_seen_); scale is derived from var when absent';

CREATE FUNCTION calo_recon.scaler_info(calo_recon.scaler, OUT features int, OUT samples bigint)
    AS 'MODULE_PATHNAME', 'scaler_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_info(calo_recon.scaler) IS
  'Number of features and of training rows of a scaler';

------------------------------------------------------------------- iforest

CREATE TYPE calo_recon.iforest;

CREATE FUNCTION calo_recon.iforest_in(cstring) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_in(cstring) IS
  'Input of calo_recon.iforest: base64 of its binary form, fully validated (22P02 when invalid)';
CREATE FUNCTION calo_recon.iforest_out(calo_recon.iforest) RETURNS cstring
    AS 'MODULE_PATHNAME', 'iforest_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_out(calo_recon.iforest) IS
  'Output of calo_recon.iforest: base64 of its binary form';
CREATE FUNCTION calo_recon.iforest_recv(internal) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_recv(internal) IS
  'Binary input of calo_recon.iforest, fully validated (22P03 when invalid)';
CREATE FUNCTION calo_recon.iforest_send(calo_recon.iforest) RETURNS bytea
    AS 'MODULE_PATHNAME', 'iforest_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_send(calo_recon.iforest) IS
  'Binary output of calo_recon.iforest: the versioned binary form';

-- Stored out of line without compression when large, so that scoring
-- recognizes a stored model by its TOAST pointer and decodes it once per query.
CREATE TYPE calo_recon.iforest (
    INPUT = calo_recon.iforest_in,
    OUTPUT = calo_recon.iforest_out,
    RECEIVE = calo_recon.iforest_recv,
    SEND = calo_recon.iforest_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = external
);
COMMENT ON TYPE calo_recon.iforest IS
  'An Isolation Forest model (classic or extended) in a versioned, checksummed, validated binary form';

CREATE FUNCTION calo_recon.iforest_to_bytea(calo_recon.iforest) RETURNS bytea
    AS 'MODULE_PATHNAME', 'iforest_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_to_bytea(calo_recon.iforest) IS
  'The binary form of a model as bytea';
CREATE FUNCTION calo_recon.iforest_from_bytea(bytea) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_from_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_from_bytea(bytea) IS
  'A model from its binary form, fully validated (22P03 when invalid)';

CREATE FUNCTION calo_recon.iforest_fit_transfn(internal, float8[]) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_transfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_transfn(internal, float8[]) IS
  'iforest_fit state transition: validates the row and offers it to the reservoir sample';
CREATE FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_transfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint) IS
  'iforest_fit state transition with n_trees, sample_size and seed';
CREATE FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint, int) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_transfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint, int) IS
  'iforest_fit state transition with n_trees, sample_size, seed and extension_level';
CREATE FUNCTION calo_recon.iforest_fit_combinefn(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_combinefn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_combinefn(internal, internal) IS
  'iforest_fit combine: merges two reservoirs into a uniform sample of the union';
CREATE FUNCTION calo_recon.iforest_fit_serialfn(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'iforest_fit_serialfn' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_serialfn(internal) IS 'iforest_fit state serialization';
CREATE FUNCTION calo_recon.iforest_fit_deserialfn(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_deserialfn' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_deserialfn(bytea, internal) IS 'iforest_fit state deserialization';
CREATE FUNCTION calo_recon.iforest_fit_finalfn(internal) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_fit_finalfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_finalfn(internal) IS
  'iforest_fit final: grows the trees from the reservoir; an empty training set is an error';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[]) (
    SFUNC = calo_recon.iforest_fit_transfn,
    STYPE = internal,
    FINALFUNC = calo_recon.iforest_fit_finalfn,
    COMBINEFUNC = calo_recon.iforest_fit_combinefn,
    SERIALFUNC = calo_recon.iforest_fit_serialfn,
    DESERIALFUNC = calo_recon.iforest_fit_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[]) IS
  'Fits an Isolation Forest: 100 trees, sample_size min(256, rows), seed 42';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[], n_trees int, sample_size int, seed bigint) (
    SFUNC = calo_recon.iforest_fit_transfn,
    STYPE = internal,
    FINALFUNC = calo_recon.iforest_fit_finalfn,
    COMBINEFUNC = calo_recon.iforest_fit_combinefn,
    SERIALFUNC = calo_recon.iforest_fit_serialfn,
    DESERIALFUNC = calo_recon.iforest_fit_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint) IS
  'Fits an Isolation Forest with n_trees (1..10000), sample_size (2..100000) and seed (NULL arguments take the defaults 100, 256, 42)';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[], n_trees int, sample_size int, seed bigint, extension_level int) (
    SFUNC = calo_recon.iforest_fit_transfn,
    STYPE = internal,
    FINALFUNC = calo_recon.iforest_fit_finalfn,
    COMBINEFUNC = calo_recon.iforest_fit_combinefn,
    SERIALFUNC = calo_recon.iforest_fit_serialfn,
    DESERIALFUNC = calo_recon.iforest_fit_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint, int) IS
  'Fits an Extended Isolation Forest (Hariri et al. 2018); extension_level 0 .. n_features - 1, 0 is the classic forest';

CREATE FUNCTION calo_recon.iforest_score(calo_recon.iforest, float8[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'iforest_score' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_score(calo_recon.iforest, float8[]) IS
  'Anomaly score s(x) = 2^(-mean path length / c(sample_size)) in (0, 1]; higher is more anomalous';

CREATE FUNCTION calo_recon.iforest_label(score float8, threshold float8) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN score > threshold;
COMMENT ON FUNCTION calo_recon.iforest_label(float8, float8) IS
  'true (anomaly) when the score is above the threshold, as scikit-learn''s predict with offset_ = -threshold';

CREATE FUNCTION calo_recon.iforest_explain(calo_recon.iforest, float8[]) RETURNS int
    AS 'MODULE_PATHNAME', 'iforest_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_explain(calo_recon.iforest, float8[]) IS
  '1-based feature that isolated the row soonest: in each tree the split just above the row''s leaf votes for its feature with weight 1/depth; the largest total wins (NULL when no tree splits)';

CREATE FUNCTION calo_recon.iforest_info(calo_recon.iforest)
    RETURNS TABLE(trees int, sample_size int, features int, nodes bigint, bytes int, extension_level int)
    AS 'MODULE_PATHNAME', 'iforest_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_info(calo_recon.iforest) IS
  'Shape of a model: trees, sample_size, features, total nodes, size of its binary form, extension level';

CREATE FUNCTION calo_recon.iforest_to_json(calo_recon.iforest) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'iforest_to_json' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_to_json(calo_recon.iforest) IS
  'The model as JSON with scikit-learn tree_ arrays per tree (children_left, children_right, feature, threshold, n_node_samples)';
CREATE FUNCTION calo_recon.iforest_from_json(jsonb) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_from_json' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_from_json(jsonb) IS
  'A model from its JSON form (also a scikit-learn IsolationForest exported by tools/sklearn_export.py), validated like any model (22P02 when invalid)';
-- Anomaly detection in the database (SPEC sections 5, 6 and 10): the feature
-- view, the model registry, scores, analysts' feedback, train_model(),
-- score_transactions(), record_feedback() and the anomalies view.  Builds on
-- the scaler and iforest types of 50_anomaly_types.sql.

-- The feature order is part of every stored model: scoring refuses a model
-- whose names differ, so that a reordered view can never be scored silently.
CREATE FUNCTION calo_recon.transaction_feature_names() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['amount', 'vat', 'net', 'balance_change', 'old_balance',
                 'hour_of_day', 'seconds_since_previous',
                 'amount_vs_user_median', 'direction']::text[]
$$;
COMMENT ON FUNCTION calo_recon.transaction_feature_names() IS
  'Names of the anomaly features, in the order of calo_recon.transaction_features.features; stored with every model';

-- Money becomes float8 only here, for the forest, through feature_value: NULL,
-- NaN and +-Infinity become 0 and magnitudes beyond 1e100 are held at +-1e100
-- (SCL_FEATURE_BOUND in src/scaler.h), so that no fit or transform of the
-- features can overflow and a huge amount still stands out.  The first
-- transaction of a user has seconds_since_previous -1, and a median below
-- 0.0001 divides by 1, so no NULL, NaN or infinity ever reaches the scaler.
CREATE FUNCTION calo_recon.feature_value(numeric) RETURNS float8
    AS 'MODULE_PATHNAME', 'feature_value' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.feature_value(numeric) IS
  'Money as an anomaly feature: NULL, NaN and +-Infinity give 0, magnitudes beyond 1e100 are held at +-1e100, anything else is the float8 value';

CREATE VIEW calo_recon.transaction_features AS
SELECT f.txn_id, f.user_id, f.logged_at,
       ARRAY[f.amount, f.vat, f.net, f.balance_change, f.old_balance,
             f.hour_of_day, f.seconds_since_previous,
             f.amount_vs_user_median, f.direction] AS features,
       f.amount, f.vat, f.net, f.balance_change, f.old_balance,
       f.hour_of_day, f.seconds_since_previous,
       f.amount_vs_user_median, f.direction
FROM (
    SELECT c.txn_id, c.user_id, c.logged_at,
           c.amount, c.vat, c.net, c.balance_change, c.old_balance,
           CASE WHEN pg_catalog.isfinite(c.logged_at)
                THEN pg_catalog.date_part('hour', c.logged_at AT TIME ZONE 'UTC')
                ELSE 0 END AS hour_of_day,
           coalesce(CASE WHEN pg_catalog.isfinite(c.logged_at)
                          AND pg_catalog.isfinite(c.previous_logged_at)
                         THEN pg_catalog.date_part('epoch', c.logged_at - c.previous_logged_at)
                    END, -1) AS seconds_since_previous,
           c.amount / CASE WHEN abs(u.median_amount) >= 0.0001
                           THEN abs(u.median_amount) ELSE 1 END AS amount_vs_user_median,
           CASE c.txn_type WHEN 'CREDIT' THEN 1::float8
                           WHEN 'DEBIT' THEN -1::float8
                           ELSE pg_catalog.sign(c.balance_change) END AS direction
    FROM (
        SELECT t.txn_id, t.user_id, t.logged_at, t.txn_type,
               -- the chain order of the reconciliation (calo_recon.chain_key);
               -- the partition stays on plain user_id so that a filter on it
               -- reaches below the window
               pg_catalog.lag(t.logged_at) OVER (PARTITION BY t.user_id
                                                 ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id)) AS previous_logged_at,
               calo_recon.feature_value(t.amount) AS amount,
               calo_recon.feature_value(t.vat) AS vat,
               calo_recon.feature_value(t.amount - t.vat) AS net,
               calo_recon.feature_value(t.new_balance - t.old_balance) AS balance_change,
               calo_recon.feature_value(t.old_balance) AS old_balance
        FROM calo_recon.transactions t
    ) c
    JOIN (
        SELECT t.user_id,
               pg_catalog.percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY calo_recon.feature_value(t.amount)
               ) AS median_amount
        FROM calo_recon.transactions t
        GROUP BY t.user_id
    ) u ON u.user_id = c.user_id
) f;
COMMENT ON VIEW calo_recon.transaction_features IS
  'Per-transaction anomaly features (float8, always finite), one row per transaction; features holds them in the order of calo_recon.transaction_feature_names()';
COMMENT ON COLUMN calo_recon.transaction_features.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.transaction_features.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.transaction_features.logged_at IS 'Time the transaction was logged';
COMMENT ON COLUMN calo_recon.transaction_features.features IS
  'All features as one array, in the order of calo_recon.transaction_feature_names(): the input of the scaler and the forest';
COMMENT ON COLUMN calo_recon.transaction_features.amount IS 'Gross amount (0 when not finite, held within +-1e100)';
COMMENT ON COLUMN calo_recon.transaction_features.vat IS 'VAT (0 when not finite, held within +-1e100)';
COMMENT ON COLUMN calo_recon.transaction_features.net IS 'amount - vat (0 when not finite, held within +-1e100)';
COMMENT ON COLUMN calo_recon.transaction_features.balance_change IS 'new_balance - old_balance (0 when not finite, held within +-1e100)';
COMMENT ON COLUMN calo_recon.transaction_features.old_balance IS 'Balance before the transaction (0 when not finite, held within +-1e100)';
COMMENT ON COLUMN calo_recon.transaction_features.hour_of_day IS 'Hour of logged_at in UTC, 0 to 23';
COMMENT ON COLUMN calo_recon.transaction_features.seconds_since_previous IS
  'Seconds since the user''s previous transaction in chain order (logged_at, txn_id); -1 for the user''s first transaction';
COMMENT ON COLUMN calo_recon.transaction_features.amount_vs_user_median IS
  'amount divided by the absolute median amount of the user''s transactions (all of them); divided by 1 when that median is below 0.0001';
COMMENT ON COLUMN calo_recon.transaction_features.direction IS
  '+1 for CREDIT, -1 for DEBIT; for the legacy form the sign of balance_change (0 when the balance did not move)';

CREATE TABLE calo_recon.models (
    model_id       bigint           GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model_name     text             NOT NULL CHECK (model_name <> ''),
    features       text[]           NOT NULL,
    scaler         calo_recon.scaler  NOT NULL,
    forest         calo_recon.iforest NOT NULL,
    contamination  float8           NOT NULL CHECK (contamination > 0 AND contamination <= 0.5),
    threshold      float8           NOT NULL CHECK (threshold > 0 AND threshold <= 1),
    trained_at     timestamptz      NOT NULL DEFAULT now(),
    training_rows  bigint           NOT NULL CHECK (training_rows > 0),
    parameters     jsonb            NOT NULL DEFAULT '{}',
    active         boolean          NOT NULL DEFAULT false
);
-- One active model overall (and so one per name): scoring and the anomalies
-- view never have to choose.
CREATE UNIQUE INDEX models_one_active_idx ON calo_recon.models ((true)) WHERE active;
CREATE UNIQUE INDEX models_one_active_per_name_idx ON calo_recon.models (model_name) WHERE active;
COMMENT ON TABLE calo_recon.models IS
  'Anomaly model registry: every model train_model() fitted; exactly the active one scores';
COMMENT ON COLUMN calo_recon.models.model_id IS 'Surrogate key';
COMMENT ON COLUMN calo_recon.models.model_name IS 'Name given at training; several versions may share it';
COMMENT ON COLUMN calo_recon.models.features IS 'Feature names in the order the model expects (calo_recon.transaction_feature_names() at training)';
COMMENT ON COLUMN calo_recon.models.scaler IS 'StandardScaler fitted on the training rows';
COMMENT ON COLUMN calo_recon.models.forest IS 'Isolation Forest fitted on the standardized training rows';
COMMENT ON COLUMN calo_recon.models.contamination IS 'Expected share of anomalies; sets the threshold';
COMMENT ON COLUMN calo_recon.models.threshold IS
  'The (1 - contamination) quantile (linear interpolation) of the training scores; a score above it is flagged, as sklearn''s predict()';
COMMENT ON COLUMN calo_recon.models.trained_at IS 'When the model was trained';
COMMENT ON COLUMN calo_recon.models.training_rows IS 'Transactions the model was trained on';
COMMENT ON COLUMN calo_recon.models.parameters IS
  'Training parameters: n_trees, sample_size, seed (drawn and recorded when none was given), seed_given, excluded_confirmed';
COMMENT ON COLUMN calo_recon.models.active IS 'true for the one model that scores; training a new model deactivates the previous one';

CREATE TABLE calo_recon.transaction_scores (
    txn_id       text        NOT NULL,
    model_id     bigint      NOT NULL,
    score        float8      NOT NULL CHECK (score > 0 AND score <= 1),
    flagged      boolean     NOT NULL,
    explanation  text,
    scored_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txn_id, model_id)
);
CREATE INDEX transaction_scores_flagged_idx
    ON calo_recon.transaction_scores (model_id) WHERE flagged;
COMMENT ON TABLE calo_recon.transaction_scores IS
  'Anomaly score of each transaction under each model that scored it; deleting a model deletes its scores. No foreign keys: they would block TRUNCATE of transactions and cost a check per scored row; views join through transactions and models';
COMMENT ON COLUMN calo_recon.transaction_scores.txn_id IS 'Scored transaction';
COMMENT ON COLUMN calo_recon.transaction_scores.model_id IS 'Model that scored it';
COMMENT ON COLUMN calo_recon.transaction_scores.score IS 'Isolation Forest score s in (0, 1]; higher is more anomalous';
COMMENT ON COLUMN calo_recon.transaction_scores.flagged IS 'score > the model''s threshold';
COMMENT ON COLUMN calo_recon.transaction_scores.explanation IS 'For flagged rows, the name of the feature that isolated the transaction soonest; NULL otherwise';
COMMENT ON COLUMN calo_recon.transaction_scores.scored_at IS 'When it was scored';

-- Replaces an ON DELETE CASCADE foreign key, whose per-row check would
-- cost more than scoring itself on large tables.
CREATE FUNCTION calo_recon.models_delete_scores() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM calo_recon.transaction_scores s
    WHERE s.model_id IN (SELECT d.model_id FROM deleted_models d);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.models_delete_scores() IS
  'Trigger: deleting models deletes their scores';
CREATE TRIGGER models_delete_scores
    AFTER DELETE ON calo_recon.models
    REFERENCING OLD TABLE AS deleted_models
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.models_delete_scores();

CREATE TABLE calo_recon.anomaly_feedback (
    feedback_id  bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    txn_id       text        NOT NULL,
    verdict      text        NOT NULL CHECK (verdict IN ('confirmed', 'dismissed')),
    analyst      text        NOT NULL DEFAULT session_user,
    note         text,
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anomaly_feedback_txn_idx
    ON calo_recon.anomaly_feedback (txn_id, decided_at DESC, feedback_id DESC);
-- Append-only and signed (README "Roles"): the roles of grant_role() may
-- insert only txn_id, verdict and note and never update or delete, so the
-- signature, the date and the tie-breaking key come from these defaults.
-- session_user, not current_user: SET ROLE cannot change the signature.
COMMENT ON TABLE calo_recon.anomaly_feedback IS
  'Analysts'' verdicts on transactions, kept as history (append-only: a correction is a new row); the latest verdict per transaction counts (see anomaly_verdicts)';
COMMENT ON COLUMN calo_recon.anomaly_feedback.feedback_id IS 'Surrogate key; breaks ties between verdicts of the same instant';
COMMENT ON COLUMN calo_recon.anomaly_feedback.txn_id IS 'Transaction judged';
COMMENT ON COLUMN calo_recon.anomaly_feedback.verdict IS 'confirmed (a real anomaly: kept out of training) or dismissed (leaves the anomalies view)';
COMMENT ON COLUMN calo_recon.anomaly_feedback.analyst IS 'Login role (session_user) that recorded the verdict, set by the product';
COMMENT ON COLUMN calo_recon.anomaly_feedback.note IS 'Free-text justification';
COMMENT ON COLUMN calo_recon.anomaly_feedback.decided_at IS 'When the verdict was recorded (start of its transaction), set by the product';

CREATE VIEW calo_recon.anomaly_verdicts AS
SELECT DISTINCT ON (fb.txn_id)
       fb.txn_id, fb.verdict, fb.analyst, fb.note, fb.decided_at
FROM calo_recon.anomaly_feedback fb
ORDER BY fb.txn_id, fb.decided_at DESC, fb.feedback_id DESC;
COMMENT ON VIEW calo_recon.anomaly_verdicts IS
  'The verdict in force for each judged transaction: its latest feedback';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.txn_id IS 'Transaction judged';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.verdict IS 'confirmed or dismissed';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.analyst IS 'Login role (session_user) that recorded it';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.note IS 'Justification';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.decided_at IS 'When it was recorded';

CREATE FUNCTION calo_recon.record_feedback(txn_id text, verdict text, note text DEFAULT NULL)
RETURNS calo_recon.anomaly_feedback
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_verdict text := lower(btrim(record_feedback.verdict));
    stored calo_recon.anomaly_feedback;
BEGIN
    IF record_feedback.txn_id IS NULL THEN
        RAISE EXCEPTION 'txn_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF v_verdict IS NULL OR v_verdict NOT IN ('confirmed', 'dismissed') THEN
        RAISE EXCEPTION 'invalid verdict: %', coalesce(quote_literal(record_feedback.verdict), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The verdict is ''confirmed'' or ''dismissed''.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.transactions t WHERE t.txn_id = record_feedback.txn_id) THEN
        RAISE EXCEPTION 'transaction % does not exist', quote_literal(record_feedback.txn_id)
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    INSERT INTO calo_recon.anomaly_feedback AS fb (txn_id, verdict, note)
    VALUES (record_feedback.txn_id, v_verdict, record_feedback.note)
    RETURNING fb.* INTO stored;
    RETURN stored;
END;
$$;
COMMENT ON FUNCTION calo_recon.record_feedback(text, text, text) IS
  'Records an analyst''s verdict (confirmed or dismissed) on a transaction, signed with the session''s login role; the latest verdict counts, earlier ones are kept. Returns the stored row';

-- Scores with the active model the transactions it has not scored yet (or,
-- with only_new = false, all of them again).  Set-based: one INSERT ... SELECT.
-- New rows are looked for first, so that the feature view is computed only for
-- their users: user_id = ANY(...) reaches below its window and its median.
CREATE FUNCTION calo_recon.score_transactions(only_new boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    model calo_recon.models;
    users text[];
    scored bigint;
BEGIN
    IF only_new IS NULL THEN
        RAISE EXCEPTION 'only_new must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT m.* INTO model FROM calo_recon.models m WHERE m.active;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF model.features IS DISTINCT FROM calo_recon.transaction_feature_names() THEN
        RAISE EXCEPTION 'model % (%) was trained on other features than calo_recon.transaction_features has',
                        model.model_id, model.model_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('model: %s; view: %s', model.features, calo_recon.transaction_feature_names()),
                  HINT = 'Train a new model with calo_recon.train_model().';
    END IF;
    IF only_new THEN
        SELECT array_agg(DISTINCT t.user_id) INTO users
        FROM calo_recon.transactions t
        WHERE NOT EXISTS (SELECT 1 FROM calo_recon.transaction_scores old
                          WHERE old.txn_id = t.txn_id AND old.model_id = model.model_id);
        IF users IS NULL THEN
            RETURN 0;
        END IF;
    END IF;

    -- iforest_explain costs several times iforest_score: only flagged rows get it.
    EXECUTE format($sql$
        INSERT INTO calo_recon.transaction_scores AS ts (txn_id, model_id, score, flagged, explanation)
        SELECT s.txn_id, $1, s.score, s.score > $4,
               CASE WHEN s.score > $4 THEN $5[calo_recon.iforest_explain($2, s.standardized)] END
        FROM (
            SELECT x.txn_id, x.standardized, calo_recon.iforest_score($2, x.standardized) AS score
            FROM (
                SELECT f.txn_id, calo_recon.scaler_transform($3, f.features) AS standardized
                FROM calo_recon.transaction_features f
                %s
                OFFSET 0  -- each function once per row, not once per use
            ) x
            OFFSET 0
        ) s
        ON CONFLICT (txn_id, model_id) DO UPDATE
            SET score = excluded.score, flagged = excluded.flagged,
                explanation = excluded.explanation, scored_at = excluded.scored_at
        $sql$,
        CASE WHEN only_new THEN
            'WHERE f.user_id = ANY ($6)
               AND NOT EXISTS (SELECT 1 FROM calo_recon.transaction_scores old
                               WHERE old.txn_id = f.txn_id AND old.model_id = $1)'
        ELSE '' END)
    USING model.model_id, model.forest, model.scaler, model.threshold, model.features, users;
    GET DIAGNOSTICS scored = ROW_COUNT;
    RETURN scored;
END;
$$;
COMMENT ON FUNCTION calo_recon.score_transactions(boolean) IS
  'Scores with the active model the transactions it has not scored yet (only_new, the default) or all of them; returns the number of rows scored (0 when no model is active)';

CREATE FUNCTION calo_recon.train_model(
    model_name    text   DEFAULT 'default',
    contamination float8 DEFAULT 0.01,
    n_trees       int    DEFAULT 100,
    sample_size   int    DEFAULT 256,
    seed          bigint DEFAULT NULL)
RETURNS calo_recon.models
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_names   text[] := calo_recon.transaction_feature_names();
    v_seed    bigint := train_model.seed;
    v_scaler  calo_recon.scaler;
    v_forest  calo_recon.iforest;
    v_rows    bigint;
    v_excluded bigint;
    v_threshold float8;
    v_model_id bigint;
    stored    calo_recon.models;
BEGIN
    IF train_model.model_name IS NULL OR train_model.contamination IS NULL
       OR train_model.n_trees IS NULL OR train_model.sample_size IS NULL THEN
        RAISE EXCEPTION 'model_name, contamination, n_trees and sample_size must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(train_model.model_name) = '' THEN
        RAISE EXCEPTION 'model_name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- NaN compares greater than every number, so it fails the upper bound.
    IF NOT (train_model.contamination > 0 AND train_model.contamination <= 0.5) THEN
        RAISE EXCEPTION 'contamination must be in (0, 0.5], got %', train_model.contamination
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF train_model.n_trees NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'n_trees must be between 1 and 10000, got %', train_model.n_trees
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF train_model.sample_size NOT BETWEEN 2 AND 100000 THEN
        RAISE EXCEPTION 'sample_size must be between 2 and 100000, got %', train_model.sample_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_seed IS NULL THEN
        -- recorded in parameters, so that the model can be fitted again
        v_seed := floor(random() * 9007199254740992)::bigint;
    END IF;

    -- the model's key first, so that its scores are stored while they are
    -- computed, without the lock below (taken before any write to models)
    v_model_id := nextval('calo_recon.models_model_id_seq');

    -- One statement, so one snapshot: the scaler, the forest, the threshold
    -- and the scores all read the same rows, taken from the feature view once
    -- (in the order the view gives them, so that a seed reproduces the
    -- model).  Every row is scored once: the training rows' scores set the
    -- threshold, and all scores are stored as the model's.  No named
    -- temporary relation: a session's own temporary objects could collide
    -- with it.  Confirmed anomalies are scored but not trained on.  Each fit
    -- runs only when there is something to fit, so that an empty training set
    -- gets the error below, which says why it is empty.
    WITH tr AS MATERIALIZED (
        SELECT f.txn_id, f.features, coalesce(v.verdict = 'confirmed', false) AS confirmed
        FROM calo_recon.transaction_features f
        LEFT JOIN calo_recon.anomaly_verdicts v ON v.txn_id = f.txn_id
    ), counts AS (
        SELECT count(*) FILTER (WHERE NOT tr.confirmed) AS training,
               count(*) FILTER (WHERE tr.confirmed) AS excluded
        FROM tr
    ), fitted_scaler AS (
        SELECT CASE WHEN c.training > 0 THEN
                   (SELECT calo_recon.scaler_fit(tr.features) FROM tr WHERE NOT tr.confirmed)
               END AS scaler
        FROM counts c
    ), fitted_forest AS (
        SELECT CASE WHEN s.scaler IS NOT NULL THEN
                   (SELECT calo_recon.iforest_fit(calo_recon.scaler_transform(s.scaler, tr.features),
                                                  train_model.n_trees, train_model.sample_size, v_seed)
                    FROM tr WHERE NOT tr.confirmed)
               END AS forest
        FROM fitted_scaler s
    ), scored AS MATERIALIZED (
        SELECT x.txn_id, x.confirmed, x.standardized,
               calo_recon.iforest_score(fo.forest, x.standardized) AS score
        FROM (SELECT tr.txn_id, tr.confirmed,
                     calo_recon.scaler_transform(s.scaler, tr.features) AS standardized
              FROM tr, fitted_scaler s
              WHERE s.scaler IS NOT NULL
              OFFSET 0) x,  -- each function once per row, not once per use
             fitted_forest fo
    ), cut AS (
        -- sklearn: offset_ = np.percentile(-s, 100 * contamination), linear
        -- interpolation; the same cut on s is percentile_cont(1 - contamination).
        SELECT percentile_cont(1 - train_model.contamination) WITHIN GROUP (ORDER BY sc.score) AS threshold
        FROM scored sc WHERE NOT sc.confirmed
    ), stored_scores AS (
        -- as score_transactions() stores them; iforest_explain only for flagged rows
        INSERT INTO calo_recon.transaction_scores AS ts (txn_id, model_id, score, flagged, explanation)
        SELECT sc.txn_id, v_model_id, sc.score, sc.score > cut.threshold,
               CASE WHEN sc.score > cut.threshold
                    THEN v_names[calo_recon.iforest_explain(fo.forest, sc.standardized)] END
        FROM scored sc, cut, fitted_forest fo
        ON CONFLICT (txn_id, model_id) DO UPDATE
            SET score = excluded.score, flagged = excluded.flagged,
                explanation = excluded.explanation, scored_at = excluded.scored_at
    )
    SELECT c.training, c.excluded, s.scaler, fo.forest, cut.threshold
      INTO v_rows, v_excluded, v_scaler, v_forest, v_threshold
      FROM counts c, fitted_scaler s, fitted_forest fo, cut;
    IF v_rows = 0 THEN
        RAISE EXCEPTION 'the training set is empty'
            USING ERRCODE = 'data_exception',
                  DETAIL = CASE WHEN v_excluded = 0 THEN 'calo_recon.transactions has no rows.'
                                ELSE format('All %s transactions are confirmed anomalies, which are never trained on.',
                                            v_excluded) END,
                  HINT = CASE WHEN v_excluded = 0
                              THEN 'Load transactions first, e.g. with calo_recon.ingest_file().'
                              ELSE 'Load more transactions; confirmed anomalies are kept out of training.' END;
    END IF;

    -- Serialize trainers only for the switch of the active model.
    LOCK TABLE calo_recon.models IN SHARE ROW EXCLUSIVE MODE;
    UPDATE calo_recon.models m SET active = false WHERE m.active;
    INSERT INTO calo_recon.models AS m
        (model_id, model_name, features, scaler, forest, contamination, threshold,
         training_rows, parameters, active)
    VALUES (v_model_id, train_model.model_name, v_names, v_scaler, v_forest, train_model.contamination,
            v_threshold, v_rows,
            jsonb_build_object('n_trees', train_model.n_trees,
                               'sample_size', train_model.sample_size,
                               'seed', v_seed,
                               'seed_given', train_model.seed IS NOT NULL,
                               'excluded_confirmed', v_excluded),
            true)
    RETURNING m.* INTO stored;
    RETURN stored;
END;
$$;
COMMENT ON FUNCTION calo_recon.train_model(text, float8, int, int, bigint) IS
  'Fits the scaler and the Isolation Forest on every transaction not confirmed as an anomaly, sets the threshold at the (1 - contamination) quantile of the training scores, stores the model as the active one (the previous one is deactivated) with the scores it computed, one per transaction (the confirmed anomalies included), and returns the stored model row';

-- The candidates come from three cheap sources (flagged scores through their
-- partial index, one pass of the amount rule over transactions, confirmed
-- verdicts) instead of joining every transaction to every score.
CREATE VIEW calo_recon.anomalies AS
WITH rule AS (
    -- the library defines the setting; before it is loaded, a value set in the
    -- configuration or the session is still visible, else the default 1000
    SELECT coalesce(nullif(pg_catalog.current_setting('calo_recon.amount_threshold', true), ''),
                    '1000')::numeric AS amount_threshold
), active AS (
    SELECT m.model_id, m.model_name, m.threshold FROM calo_recon.models m WHERE m.active
), candidates AS (
    SELECT s.txn_id
    FROM active a JOIN calo_recon.transaction_scores s ON s.model_id = a.model_id AND s.flagged
    UNION
    SELECT t.txn_id FROM calo_recon.transactions t, rule r WHERE t.amount > r.amount_threshold
    UNION
    SELECT v.txn_id FROM calo_recon.anomaly_verdicts v WHERE v.verdict = 'confirmed'
)
SELECT t.txn_id, t.user_id, t.currency, t.amount, t.logged_at,
       s.score, m.threshold,
       coalesce(s.flagged, false) AS model_flag,
       coalesce(t.amount > r.amount_threshold, false) AS rule_flag,
       CASE WHEN s.flagged AND t.amount > r.amount_threshold THEN 'model+amount_rule'
            WHEN s.flagged THEN 'model'
            WHEN t.amount > r.amount_threshold THEN 'amount_rule'
            ELSE 'analyst' END AS reason,
       s.explanation,
       v.verdict,
       m.model_name
FROM candidates c
JOIN calo_recon.transactions t ON t.txn_id = c.txn_id
CROSS JOIN rule r
LEFT JOIN active m ON true
LEFT JOIN calo_recon.transaction_scores s ON s.txn_id = t.txn_id AND s.model_id = m.model_id
LEFT JOIN calo_recon.anomaly_verdicts v ON v.txn_id = t.txn_id
WHERE v.verdict IS DISTINCT FROM 'dismissed';
COMMENT ON VIEW calo_recon.anomalies IS
  'Transactions flagged by the active model or by the amount rule (amount > calo_recon.amount_threshold), plus those analysts confirmed, minus those analysts dismissed';
COMMENT ON COLUMN calo_recon.anomalies.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.anomalies.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.anomalies.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.anomalies.amount IS 'Gross amount';
COMMENT ON COLUMN calo_recon.anomalies.logged_at IS 'Time the transaction was logged';
COMMENT ON COLUMN calo_recon.anomalies.score IS 'Score under the active model, in (0, 1], higher is more anomalous; NULL when not scored yet';
COMMENT ON COLUMN calo_recon.anomalies.threshold IS 'Threshold of the active model: a score above it is flagged';
COMMENT ON COLUMN calo_recon.anomalies.model_flag IS 'Flagged by the active model (score > threshold)';
COMMENT ON COLUMN calo_recon.anomalies.rule_flag IS 'Flagged by the amount rule (amount > calo_recon.amount_threshold, default 1000)';
COMMENT ON COLUMN calo_recon.anomalies.reason IS 'model, amount_rule, model+amount_rule, or analyst (confirmed by an analyst, flagged by neither)';
COMMENT ON COLUMN calo_recon.anomalies.explanation IS 'Feature that isolated the transaction soonest in the forest, when the model flags it (NULL otherwise)';
COMMENT ON COLUMN calo_recon.anomalies.verdict IS 'Analyst verdict in force: confirmed, or NULL when not judged (dismissed rows are not shown)';
COMMENT ON COLUMN calo_recon.anomalies.model_name IS 'Name of the active model; NULL when no model is active';

SELECT pg_catalog.pg_extension_config_dump('calo_recon.models', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.models_model_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.transaction_scores', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.anomaly_feedback', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.anomaly_feedback_feedback_id_seq', '');

REVOKE ALL ON FUNCTION calo_recon.transaction_feature_names() FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.models_delete_scores() FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.record_feedback(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.score_transactions(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.train_model(text, float8, int, int, bigint) FROM PUBLIC;
