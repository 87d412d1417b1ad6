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
Kinds: calo_recon.parse_log_kinds() lists them with their bodies.
A malformed body is {"reason", "detail", "intended_kind"}, plus "field" (the key) and "txn_id" (the event's own id, when readable) for a data field that breaks its rule; reasons: no_timestamp, bad_timestamp, truncated_event, malformed_event (also: a duplicate key, or another log line starting inside the event), missing_field, bad_field (also: an empty string, a currency not of three capital letters, a type not CREDIT or DEBIT), out_of_range (an id, string field or number beyond the parser's limits, money of 10^15 or more), too_large (an event beyond the parser's size limit: not parsed, raw cut to an excerpt); the limits are in src/core/logparse.h and the README. See calo_recon.parse_log_kinds().$$;

CREATE FUNCTION calo_recon.parse_log_kinds()
RETURNS TABLE (kind text, family text, body text)
AS 'MODULE_PATHNAME', 'calo_recon_parse_log_kinds'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION calo_recon.parse_log_kinds() IS
  'The event kinds calo_recon.parse_log returns: family (platform, application, data, failure, malformed) and the members of their body ("?" = only when present in the log)';
