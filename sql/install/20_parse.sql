-- Log parser: calo_recon.parse_log and the list of
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
A malformed body is {"reason", "detail", "intended_kind"}, plus "field" (the key) and "txn_id" (the event's own id, when readable) for a data field that breaks its rule; reasons: no_timestamp, bad_timestamp, truncated_event, malformed_event (also: a duplicate key, or another log line starting inside the event), missing_field, bad_field (also: an empty string, a currency not of three capital letters, a type not CREDIT or DEBIT), out_of_range (an id, string field or number beyond the parser's limits, money of 10^15 or more), too_large (an event beyond the parser's size limit: not parsed, raw cut to an excerpt); the limits are in src/core/logparse.h and the README. See calo_recon.parse_log_kinds().$$;

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
