-- Tables that hold users' data. Money is numeric, times are
-- timestamptz, and every table is registered for pg_dump.

-- The value rules a table shares with the log parser are the parser's own
-- (src/core/lpfield.c), so that COPY and ingest_log meet one definition.
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

-- Money is finite: numeric takes NaN and +-Infinity, which the log parser
-- refuses and no amount is.  The one rule of every money column's CHECK
-- (<table>_<column>_finite, 23514).
CREATE FUNCTION calo_recon.is_finite_money(value numeric) RETURNS boolean
AS 'MODULE_PATHNAME', 'calo_recon_is_finite_money'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.is_finite_money(numeric) IS
  'false for NaN, Infinity and -Infinity, true for any other number (NULL for NULL): the rule the money columns of transactions, balance_errors and negative_balance_rejections are checked with';

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
-- The row is deleted from the relation the trigger fired on: on a Citus
-- cluster, where currencies is a reference table, that is its placement on
-- each node, and the trigger there may reach nothing else.
CREATE FUNCTION calo_recon.currencies_override_builtin() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE pg_catalog.format('DELETE FROM %I.%I WHERE code = $1 AND builtin', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        USING NEW.code;
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
    amount                  numeric     NOT NULL CONSTRAINT transactions_amount_finite CHECK (calo_recon.is_finite_money(amount)),
    vat                     numeric     NOT NULL CONSTRAINT transactions_vat_finite CHECK (calo_recon.is_finite_money(vat)),
    old_balance             numeric     NOT NULL CONSTRAINT transactions_old_balance_finite CHECK (calo_recon.is_finite_money(old_balance)),
    new_balance             numeric     NOT NULL CONSTRAINT transactions_new_balance_finite CHECK (calo_recon.is_finite_money(new_balance)),
    payment_balance         numeric     CONSTRAINT transactions_payment_balance_finite CHECK (calo_recon.is_finite_money(payment_balance)),
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
    subscription_balance  numeric     NOT NULL CONSTRAINT balance_errors_subscription_balance_finite CHECK (calo_recon.is_finite_money(subscription_balance)),
    payment_balance       numeric     NOT NULL CONSTRAINT balance_errors_payment_balance_finite CHECK (calo_recon.is_finite_money(payment_balance)),
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
    current_balance  numeric     NOT NULL CONSTRAINT negative_balance_rejections_current_balance_finite CHECK (calo_recon.is_finite_money(current_balance)),
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
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    -- balance errors and rejections already stored from an overlapping file
    -- are counted per file too, so that every event of a file is accounted for
    repeated      integer     NOT NULL DEFAULT 0
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
COMMENT ON COLUMN calo_recon.ingested_files.repeated IS
  'Balance errors and rejections not stored again because the same event was already stored (overlapping exports)';

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
