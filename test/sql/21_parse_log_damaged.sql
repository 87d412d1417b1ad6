-- Damaged and hostile log texts (issue 7): lines run together (D2),
-- oversized values and events (D3), lone-CR line ends and a byte order mark
-- (D4), duplicate keys (S3), a 5,000-digit fraction (B6), U+0000 in metadata
-- (C3).  Each case: what parse_log makes of it, and what ingest_log stores or
-- quarantines (with its reason), the per-file accounting still balanced.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- a valid current-form transaction literal of id $1 and amount $2
CREATE FUNCTION pg_temp.txn(id text, amount text, metadata text DEFAULT $m$'{"walletId":"w1"}'$m$)
RETURNS text LANGUAGE sql AS $$
SELECT 'Start syncing the balance {' || E'\n' ||
       '  transaction: {' || E'\n' ||
       '    id: ''' || id || ''',' || E'\n' ||
       '    type: ''DEBIT'',' || E'\n' ||
       '    source: ''MANUAL_DEDUCTION'',' || E'\n' ||
       '    action: ''DELIVERY_DEDUCTION'',' || E'\n' ||
       '    userId: ''c0ffee00-0000-4000-8000-0000000000d7'',' || E'\n' ||
       '    paymentBalance: 90,' || E'\n' ||
       '    updatePaymentBalance: true,' || E'\n' ||
       '    metadata: ' || metadata || ',' || E'\n' ||
       '    currency: ''SAR'',' || E'\n' ||
       '    amount: ' || amount || ',' || E'\n' ||
       '    vat: 0,' || E'\n' ||
       '    oldBalance: 100,' || E'\n' ||
       '    newBalance: 90' || E'\n' ||
       '  }' || E'\n' ||
       '}'
$$;
-- an application line of request $1 at second $2
CREATE FUNCTION pg_temp.app(rid text, sec int, msg text) RETURNS text LANGUAGE sql AS $$
SELECT pg_catalog.format('2024-03-05T10:00:%1$s.000Z 2024-03-05T10:00:%1$s.000Z', pg_catalog.lpad(sec::text, 2, '0'))
       || E'\t' || rid || E'\tINFO\t' || msg || E'\n\n'
$$;

-- n characters that do not compress (a repeated letter would fit a btree row)
CREATE FUNCTION pg_temp.noise(n int) RETURNS text LANGUAGE sql AS $$
SELECT pg_catalog.left(pg_catalog.string_agg(pg_catalog.md5(g::text), '' ORDER BY g), n)
FROM pg_catalog.generate_series(1, n / 32 + 1) AS g
$$;

-- what one text parses into, one line per event
CREATE FUNCTION pg_temp.events(log text)
RETURNS TABLE (event_no int, kind text, request_id text, reason text, intended text, detail text)
LANGUAGE sql AS $$
SELECT p.event_no, p.kind, pg_catalog.left(p.request_id, 40), p.body ->> 'reason',
       p.body ->> 'intended_kind', pg_catalog.replace(p.body ->> 'detail', E'\t', '<TAB>')
FROM calo_recon.parse_log(log) AS p ORDER BY p.event_no
$$;

-- what ingest_log did with one text: its counts, then where each event went
CREATE FUNCTION pg_temp.ingest(log text, p_source text)
RETURNS TABLE (line text) LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    SELECT * INTO c FROM calo_recon.ingest_log(log, p_source);
    RETURN QUERY SELECT pg_catalog.format('events %s, transactions %s, balance_errors %s, quarantined %s, balanced %s',
        c.events, c.transactions, c.balance_errors, c.quarantined,
        (SELECT c.events = f.transactions + f.duplicates + f.balance_errors + f.rejections + f.repeated
                           + f.quarantined
                           + (SELECT pg_catalog.count(*) FROM calo_recon.log_events e
                              WHERE e.source_file = p_source
                                AND e.kind NOT IN ('transaction', 'balance_error',
                                                   'negative_balance_rejection', 'malformed'))
         FROM calo_recon.ingested_files f WHERE f.file_name = p_source));
    RETURN QUERY SELECT pg_catalog.format('quarantined event %s: kind %s, reason %s, raw %s bytes',
                                          q.event_no, q.kind, q.reason, pg_catalog.octet_length(q.raw))
                 FROM calo_recon.quarantine q WHERE q.source_file = p_source ORDER BY q.event_no;
    RETURN QUERY SELECT pg_catalog.format('stored %s amount %s', t.txn_id, t.amount)
                 FROM calo_recon.transactions t WHERE t.source_file = p_source ORDER BY t.txn_id;
END;
$$;

-- D2: the issue's damaged line (two application lines run together) and the
-- same with START, REPORT and app_log: each is one malformed event that names
-- the transaction it swallowed; the valid transaction after it is stored.
CREATE TEMP TABLE run_together (name text, log text);
INSERT INTO run_together VALUES
('processing_message', pg_temp.app('d2000000-0000-4000-8000-000000000001', 1,
    E'Processing message 7b84\tINFO\t' || pg_temp.txn('01HRD2000000000000000000A1', '10'))),
('start', E'2024-03-05T10:00:00.000Z START RequestId: d2000000-0000-4000-8000-000000000001 Version: $LATEST'
    || pg_temp.app('d2000000-0000-4000-8000-000000000001', 1, pg_temp.txn('01HRD2000000000000000000A2', '10'))),
('report', E'2024-03-05T10:00:00.000Z REPORT RequestId: d2000000-0000-4000-8000-000000000001\tDuration: 1 ms\tINFO\t'
    || pg_temp.txn('01HRD2000000000000000000A3', '10') || E'\n\n'),
('app_log', pg_temp.app('d2000000-0000-4000-8000-000000000001', 1,
    E'Lock released\n2024-03-05T10:00:01.500Z\td2000000-0000-4000-8000-000000000001\tINFO\t'
    || pg_temp.txn('01HRD2000000000000000000A4', '10')));
SELECT r.name, e.*
FROM run_together r, pg_temp.events(r.log) e ORDER BY r.name, e.event_no;
SELECT r.name, i.line
FROM run_together r,
     pg_temp.ingest(r.log || pg_temp.app('d2000000-0000-4000-8000-000000000002', 5,
                                         pg_temp.txn('01HRD2000000000000000000B' || pg_catalog.length(r.name), '5')),
                    'd2-' || r.name) WITH ORDINALITY AS i (line, n)
ORDER BY r.name, i.n;

-- D3: a request id and a txn id of 3,000 characters (were 54000 "index row
-- size exceeds btree maximum" for the whole file): out_of_range, quarantined;
-- the rest of the file is stored.
SELECT * FROM pg_temp.events(
    pg_temp.app(pg_temp.noise(3000), 1, pg_temp.txn('01HRD3000000000000000000A1', '10'))
    || pg_temp.app('d3000000-0000-4000-8000-000000000001', 2, pg_temp.txn(pg_temp.noise(3000), '10'))
    || E'2024-03-05T10:00:03.000Z END RequestId: ' || pg_temp.noise(3000) || E'\n\n'
    || pg_temp.app('d3000000-0000-4000-8000-000000000001', 4, 'Processing message ' || pg_catalog.repeat('m', 257)));
SELECT * FROM pg_temp.ingest(
    pg_temp.app(pg_temp.noise(3000), 1, pg_temp.txn('01HRD3000000000000000000A1', '10'))
    || pg_temp.app('d3000000-0000-4000-8000-000000000001', 2, pg_temp.txn(pg_temp.noise(3000), '10'))
    || E'2024-03-05T10:00:03.000Z END RequestId: ' || pg_temp.noise(3000) || E'\n\n'
    || pg_temp.app('d3000000-0000-4000-8000-000000000001', 4, pg_temp.txn('01HRD3000000000000000000A2', '10')),
    'd3-ids');
-- an event over the 1 MiB limit (a 2 MB message): too_large, not parsed, its
-- raw cut to a 4 KiB excerpt in log_events and quarantine; the rest is stored
SELECT event_no, kind, body ->> 'reason' AS reason, body ->> 'intended_kind' AS intended,
       body ->> 'detail' AS detail, pg_catalog.octet_length(raw) AS raw_bytes
FROM calo_recon.parse_log(
    pg_temp.app('d3000000-0000-4000-8000-000000000002', 1,
                pg_temp.txn('01HRD3000000000000000000B1', '10', '''' || pg_catalog.repeat('é', 1000000) || ''''))
    || pg_temp.app('d3000000-0000-4000-8000-000000000002', 2, pg_catalog.repeat('x', 2000000)));
SELECT * FROM pg_temp.ingest(
    pg_temp.app('d3000000-0000-4000-8000-000000000002', 1,
                pg_temp.txn('01HRD3000000000000000000B1', '10', '''' || pg_catalog.repeat('é', 1000000) || ''''))
    || pg_temp.app('d3000000-0000-4000-8000-000000000002', 2, pg_temp.txn('01HRD3000000000000000000B2', '10')),
    'd3-big');
SELECT event_no, kind, pg_catalog.octet_length(raw) AS raw_bytes, pg_catalog.left(raw, 60) AS raw_start
FROM calo_recon.log_events WHERE source_file = 'd3-big' ORDER BY event_no;

-- D4: lone CR line ends (parsed as one START event before) and a UTF-8 byte
-- order mark give the same events as LF
SELECT * FROM pg_temp.events(pg_catalog.replace(
    E'2024-03-05T10:00:00.000Z START RequestId: d4000000-0000-4000-8000-000000000009 Version: $LATEST\n\n'
    || pg_temp.app('d4000000-0000-4000-8000-000000000009', 1, pg_temp.txn('01HRD4000000000000000000A1', '10'))
    || E'2024-03-05T10:00:02.000Z END RequestId: d4000000-0000-4000-8000-000000000009\n',
    E'\n', E'\r'));
SELECT * FROM pg_temp.events(
    E'\uFEFF2024-03-05T10:00:00.000Z START RequestId: d4000000-0000-4000-8000-000000000009 Version: $LATEST\r\n\r\n'
    || pg_catalog.replace(pg_temp.app('d4000000-0000-4000-8000-000000000009', 1, pg_temp.txn('01HRD4000000000000000000A1', '10')),
                          E'\n', E'\r\n'));
SELECT * FROM pg_temp.ingest(pg_catalog.replace(
    E'2024-03-05T10:00:00.000Z START RequestId: d4000000-0000-4000-8000-000000000009 Version: $LATEST\n\n'
    || pg_temp.app('d4000000-0000-4000-8000-000000000009', 1, pg_temp.txn('01HRD4000000000000000000A1', '10'))
    || E'2024-03-05T10:00:02.000Z END RequestId: d4000000-0000-4000-8000-000000000009\n',
    E'\n', E'\r'), 'd4-cr');

-- S3: a key twice in the transaction literal (the last silently won):
-- malformed_event naming the key; nothing stored
SELECT * FROM pg_temp.events(pg_temp.app('d5000000-0000-4000-8000-000000000001', 1,
    pg_catalog.replace(pg_temp.txn('01HRS3000000000000000000A1', '5'), 'amount: 5,', 'amount: 5, amount: 500,')));
SELECT * FROM pg_temp.ingest(pg_temp.app('d5000000-0000-4000-8000-000000000001', 1,
    pg_catalog.replace(pg_temp.txn('01HRS3000000000000000000A1', '5'), 'amount: 5,', 'amount: 5, amount: 500,')), 's3');

-- B6: a 5,000-digit fraction is out_of_range (as money of 10^15 or more), not
-- "not a finite number"; NaN stays bad_field
SELECT event_no, reason, detail FROM pg_temp.events(
    pg_temp.app('d6000000-0000-4000-8000-000000000001', 1,
                pg_temp.txn('01HRB6000000000000000000A1', '0.' || pg_catalog.repeat('3', 5000)))
    || pg_temp.app('d6000000-0000-4000-8000-000000000001', 2, pg_temp.txn('01HRB6000000000000000000A2', '1e1001'))
    || pg_temp.app('d6000000-0000-4000-8000-000000000001', 3, pg_temp.txn('01HRB6000000000000000000A3', 'NaN')));
SELECT * FROM pg_temp.ingest(
    pg_temp.app('d6000000-0000-4000-8000-000000000001', 1,
                pg_temp.txn('01HRB6000000000000000000A1', '0.' || pg_catalog.repeat('3', 5000)))
    || pg_temp.app('d6000000-0000-4000-8000-000000000001', 2, pg_temp.txn('01HRB6000000000000000000A4', '1000000000000000')),
    'b6');

-- C3: \u0000 in the JSON of metadata (became U+FFFD silently) is kept
-- escaped: metadata is that JSON text, a string; U+0000 in the string
-- itself (a JavaScript \0) cannot be stored and is bad_field
SELECT * FROM pg_temp.ingest(
    pg_temp.app('d7000000-0000-4000-8000-000000000001', 1,
                pg_temp.txn('01HRC3000000000000000000A1', '5', $m$'{"note":"a\\u0000b"}'$m$))
    || pg_temp.app('d7000000-0000-4000-8000-000000000001', 2,
                   pg_temp.txn('01HRC3000000000000000000A2', '5', $m$'a\0b'$m$)),
    'c3');
SELECT txn_id, pg_catalog.jsonb_typeof(metadata) AS type, metadata, metadata #>> '{}' AS text
FROM calo_recon.transactions WHERE source_file = 'c3';
SELECT event_no, reason, detail ->> 'detail' AS detail FROM calo_recon.quarantine WHERE source_file = 'c3';
