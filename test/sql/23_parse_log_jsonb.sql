-- parse_log builds each body's jsonb straight from the parser's tokens
-- instead of running jsonb_in on the body text: the probe below (a C function
-- of the test probe, test/probe/calo_recon_probe.c, which the fixtures put in
-- the private import folder; it calls the installed module's builder) says
-- for every event whether that jsonb has exactly the bytes jsonb_in(body
-- text) gives ('direct'), whether the token reader refused the body so
-- jsonb_in was used ('jsonb_in'), or 'MISMATCH'.  Run on the samples, the
-- bad-input files, the fuzz seed corpus and numbers and strings chosen to
-- stress the direct path.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

SELECT pg_catalog.current_setting('calo_recon.import_directory') || '/probe/calo_recon_probe' AS probe_module
\gset
CREATE FUNCTION pg_temp.body_check(log text)
RETURNS TABLE (event_no integer, path text, body text)
AS :'probe_module', 'calo_recon_probe_parse_log_body_check'
LANGUAGE C STRICT;

CREATE TEMP TABLE probe_log (name text PRIMARY KEY, log text NOT NULL);

-- the two sample exports and two bad-input files that read
INSERT INTO probe_log
SELECT f, calo_recon.read_log_file(f)
FROM unnest(ARRAY[
    'samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2023-12-12-[$LATEST]6ca06496aad7c7c03a53c17641db898e/000000.gz',
    'samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2024-01-14-[$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz',
    'bad/walk/a_first.gz', 'bad/walk/b_second.log']) AS f;

-- numbers: integers, decimals with trailing zeros, negative zeros, tiny and
-- 18/19/22-digit values (the int64 shortcut ends at 18 digits), exponents;
-- strings: every escape, \u forms, surrogate pairs, raw UTF-8; empty and
-- nested containers (duplicate keys in JSON make the parser refuse it: the
-- metadata below stays a string; a REPORT line's repeated segment names
-- still reach the glue's de-duplication, the last wins)
INSERT INTO probe_log VALUES ('numbers and strings', E'2024-01-14T21:00:00.104Z {"_aws":{"Timestamp":1702384510307},'
    '"n":[0,-0,-0.0,0.00,7,-7,10000,-10000,0.5,1.50,-12.345,1234.5678,12345.6789,0.0001,0.00012,0.000001234,'
    '100000000.000000001,999999999999999999,-999999999999999999,1234567890123456789,-99999999999999999999.99,'
    '0.123456789012345678,0.1234567890123456789,1e5,1E-3,-1.5e+2,2.50E+10,0.1e-20,5e30,-2E+0],'
    '"s":["tab\\tq\\"b\\\\s\\/u\\u00e9\\u0001\\b\\f\\r\\n\\u20ac\\ud83d\\ude00","€😀 plain","",'
    '"\\u001f\\u007f\\u0080\\uffff"],'
    '"a":2,"b":{"x":{"y":[]}},"ee":{},"e":[],"deep":[[[{"x":null,"y":true,"z":false}]]],'
    '"":"empty key","longer key than the others":"z","aa":0}\n'
    '2024-01-14T21:00:01.104Z 2024-01-14T21:00:01.105Z\tr-1\tINFO\tStart syncing the balance { transaction: { id: ''T\\u00e9'', '
    'type: ''CREDIT'', source: undefined, action: null, userId: ''u\\n1'', paymentBalance: -0.0, updatePaymentBalance: true, '
    'metadata: ''{"k": [1.10, {"z": "\\\\u0041"}], "k": 2}'', currency: ''BHD'', amount: .5, vat: +0.25, oldBalance: 1e2, newBalance: 99.50 } }\n'
    '2024-01-14T21:00:02.104Z 2024-01-14T21:00:02.105Z\tr-1\tERROR\tSubscription balance and payment balance are not in sync { userId: ''u\\n1'', subscriptionBalance: 999999999999999.99999, paymentBalance: -0.000 }\n'
    '2024-01-14T21:00:03.104Z REPORT RequestId: r-1\tDuration: 235.15 ms\tBilled Duration: 236 ms\tMemory Size: 1024 MB\tMax Memory Used: 104 MB\tDuration: 1 ms\t\n'
    '2024-01-14T21:00:04.104Z 2024-01-14T21:00:04.105Z\tr-1\tERROR\tInvoke Error {"errorType":"Error","errorMessage":"a\\u0000b","stack":["x"]}\n'
    'a continuation line\n');

-- an object of more keys than the insertion sort takes (37 distinct, 8 of
-- them twice; the last written wins), in reverse order: a REPORT line's
-- segments (JSON with a repeated name is refused by the parser)
INSERT INTO probe_log
SELECT 'many keys', '2024-01-14T21:00:00.104Z REPORT RequestId: r-1	'
    || string_agg(format('K%s: %s', i % 37, i), E'\t' ORDER BY i DESC)
FROM generate_series(1, 45) AS i;

-- the fuzz seed corpus, read by psql from the source tree (base64: any bytes);
-- texts that are not UTF-8 or hold NUL go in as their escaped form
CREATE TEMP TABLE corpus_b64 (name text, b64 text);
\copy corpus_b64 FROM PROGRAM 'cd test/fuzz/corpus/logparse && for f in *; do printf "%s\t%s\n" "$f" "$(base64 -w0 "$f")"; done'
CREATE FUNCTION pg_temp.as_text(b bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN pg_catalog.convert_from(b, 'UTF8');
EXCEPTION WHEN OTHERS THEN
    RETURN pg_catalog.encode(b, 'escape');
END $$;
INSERT INTO probe_log SELECT 'corpus/' || name, pg_temp.as_text(decode(b64, 'base64')) FROM corpus_b64;
SELECT count(*) >= 20 AS corpus_loaded FROM corpus_b64;

-- every body of the samples, bad files and probe texts takes the direct path
SELECT name, c.path, count(*)
FROM probe_log, LATERAL pg_temp.body_check(log) AS c
WHERE name NOT LIKE 'corpus/%'
GROUP BY name, c.path
ORDER BY name, c.path;

-- the corpus: no mismatch, every body direct
SELECT c.path, count(*) > 0 AS some
FROM probe_log, LATERAL pg_temp.body_check(log) AS c
WHERE name LIKE 'corpus/%'
GROUP BY c.path
ORDER BY c.path;

-- anything not direct, shown in full
SELECT name, c.event_no, c.path, c.body
FROM probe_log, LATERAL pg_temp.body_check(log) AS c
WHERE c.path <> 'direct'
ORDER BY name, c.event_no;

-- and what parse_log returns equals jsonb_in of the core's text, through the
-- text output too (which shows each number's display scale)
SELECT count(*) AS events,
       count(*) FILTER (WHERE p.body::text IS DISTINCT FROM c.body::jsonb::text) AS differing
FROM probe_log, LATERAL calo_recon.parse_log(log) AS p
JOIN LATERAL pg_temp.body_check(log) AS c USING (event_no);

-- the probe's numbers, as parse_log returns them
SELECT jsonb_array_elements(body -> 'n')::text AS n
FROM probe_log, LATERAL calo_recon.parse_log(log)
WHERE name = 'numbers and strings' AND kind = 'metric';
SELECT body -> 's' AS s, body -> 'a' AS a, body -> 'b' AS b
FROM probe_log, LATERAL calo_recon.parse_log(log)
WHERE name = 'numbers and strings' AND kind = 'metric';
SELECT event_no, kind, body
FROM probe_log, LATERAL calo_recon.parse_log(log)
WHERE name = 'numbers and strings' AND kind <> 'metric'
ORDER BY event_no;
SELECT body FROM probe_log, LATERAL calo_recon.parse_log(log) WHERE name = 'many keys';
