-- ingest_log's source names and the identity of a repeated event: what an
-- audit of the ingestion path found.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- SQLSTATE and message of a statement that must fail
CREATE FUNCTION pg_temp.error_of(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_state text; v_message text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || v_message;
END;
$$;

-- The same balance error in two overlapping exports: file A holds the
-- "Processing message" line of its request, file B starts after it, so the
-- parser links the error to message M in A and to no message in B.  The
-- message id is not part of the event: B's error is a repeat (was stored a
-- second time, balance_errors_event_key held message_id).
CREATE TEMP TABLE overlap AS SELECT
    E'2024-04-01T10:00:00.000Z 2024-04-01T10:00:00.000Z\treq-ov-1\tINFO\tProcessing message msg-ov-1\n' AS processing,
    E'2024-04-01T10:00:00.100Z 2024-04-01T10:00:00.100Z\treq-ov-1\tINFO\tStart syncing the balance { transaction: { '
    'id: ''01HVOVERLAP000000000000001'', userId: ''u-ov-1'', currency: ''SAR'', amount: 5, vat: 0, '
    'oldBalance: 100, newBalance: 95 } }\n' AS txn,
    E'2024-04-01T10:00:00.200Z 2024-04-01T10:00:00.200Z\treq-ov-1\tERROR\tSubscription balance and payment '
    'balance are not in sync { userId: ''u-ov-1'', subscriptionBalance: 95, paymentBalance: 90 }\n' AS error;
SELECT 'A' AS file, * FROM calo_recon.ingest_log((SELECT processing || E'\n' || txn || E'\n' || error FROM overlap), 'ovA');
SELECT 'B' AS file, * FROM calo_recon.ingest_log((SELECT txn || E'\n' || error FROM overlap), 'ovB');
SELECT source_file, message_id FROM calo_recon.log_events WHERE kind = 'balance_error' ORDER BY source_file;
SELECT user_id, message_id, txn_id, source_file FROM calo_recon.balance_errors;
SELECT file_name, balance_errors, repeated FROM calo_recon.ingested_files ORDER BY file_name;
-- a rejection's key is its own line's alone (transactionId is in its body)
SELECT pg_catalog.pg_get_indexdef('calo_recon.balance_errors_event_key'::regclass) AS balance_errors_key;
SELECT pg_catalog.pg_get_indexdef('calo_recon.negative_balance_rejections_event_key'::regclass) AS rejections_key;

-- A source name follows the rules of paths: at most 1023 bytes, no control
-- character (was a raw 54000 from the btree of log_events for a long one)
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_log((SELECT txn FROM overlap),
    (SELECT pg_catalog.left(pg_catalog.string_agg(pg_catalog.md5(g::text), '' ORDER BY g), 3000) FROM generate_series(1, 94) AS g))$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_log((SELECT txn FROM overlap), repeat('s', 1024))$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_log((SELECT txn FROM overlap), E'two\nlines')$$);
SELECT pg_catalog.left(pg_temp.error_of($$SELECT * FROM calo_recon.ingest_log((SELECT txn FROM overlap), E'tab\there')$$), 5) AS tab;
-- the longest name passes, as do NULL and '' (named by the digest)
SELECT events, duplicates FROM calo_recon.ingest_log((SELECT txn FROM overlap), repeat('s', 1023));
SELECT pg_temp.error_of($$SELECT calo_recon.check_source_name(NULL)$$) AS null_name,
       pg_temp.error_of($$SELECT calo_recon.check_source_name('')$$) AS empty_name,
       pg_catalog.left(pg_temp.error_of($$SELECT calo_recon.check_source_name(E'x\x7f')$$), 5) AS delete_char;

-- A different content under a name already used gets name#digest16; when
-- that name is taken too, a counter after it (was 23505 on
-- log_events_source_file_event_no_key).
CREATE TEMP TABLE coll AS
SELECT n, pg_catalog.format('2024-04-02T00:00:00.000Z START RequestId: coll-%s Version: $LATEST', n) AS log
FROM unnest(ARRAY['a', 'b', 'c', 'd', 'e', 'f']) AS n;
CREATE FUNCTION pg_temp.coll(n text) RETURNS text LANGUAGE sql AS $$ SELECT c.log FROM coll c WHERE c.n = $1 $$;
CREATE FUNCTION pg_temp.digest16(n text) RETURNS text LANGUAGE sql
AS $$ SELECT pg_catalog.left(pg_catalog.encode(sha256(convert_to(pg_temp.coll(n), 'UTF8')), 'hex'), 16) $$;
SELECT events FROM calo_recon.ingest_log(pg_temp.coll('a'), 'coll.log');
SELECT events FROM calo_recon.ingest_log(pg_temp.coll('b'), 'coll.log#' || pg_temp.digest16('c'));
SELECT events FROM calo_recon.ingest_log(pg_temp.coll('c'), 'coll.log');
-- the counter goes on while the names are taken
SELECT events FROM calo_recon.ingest_log(pg_temp.coll('d'), 'coll.log#' || pg_temp.digest16('f'));
SELECT events FROM calo_recon.ingest_log(pg_temp.coll('e'), 'coll.log#' || pg_temp.digest16('f') || '#2');
SELECT events FROM calo_recon.ingest_log(pg_temp.coll('f'), 'coll.log');
SELECT pg_catalog.replace(pg_catalog.replace(f.file_name, pg_temp.digest16('c'), '<digest16 of c>'),
                          pg_temp.digest16('f'), '<digest16 of f>') AS file_name,
       e.request_id
FROM calo_recon.ingested_files f JOIN calo_recon.log_events e ON e.source_file = f.file_name
WHERE f.file_name LIKE 'coll.log%' ORDER BY e.request_id;
