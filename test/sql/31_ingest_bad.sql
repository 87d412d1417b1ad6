-- Bad inputs of ingest_file / read_log_file / ingest_log: each one gets its
-- SQLSTATE, or is skipped and quarantined with its reason; nothing is lost.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- SQLSTATE, message and detail of a statement that must fail
CREATE FUNCTION pg_temp.error_of(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_state text; v_message text; v_detail text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL;
    RETURN v_state || ': ' || v_message || COALESCE(' | ' || NULLIF(v_detail, ''), '');
END;
$$;

-- paths must stay inside calo_recon.import_directory
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('/etc/passwd')$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('../import')$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('bad/walk/../walk')$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('bad/walk/h_escape.log')$$);
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file('/etc/passwd')$$);
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file('bad/walk/h_escape.log')$$);
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file('../import/samples/answer-key.json')$$);
-- control characters in a name are refused (22023), as on the export side
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file(E'bad/walk\x01')$$);
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file(E'samples/\x7fkey.json')$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('bad/no-such-file.log')$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file(NULL)$$);
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file('bad/walk')$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_log(NULL)$$);

-- an empty import_directory disables file ingestion
SET calo_recon.import_directory = '';
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('samples')$$);
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file('samples/answer-key.json')$$);
-- a setting that names no folder the server can open is 58P01
SET calo_recon.import_directory = '/nonexistent/calo_recon_import';
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('samples')$$);
SET calo_recon.import_directory = '/dev/null';
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file('samples/answer-key.json')$$);
RESET calo_recon.import_directory;

-- a role without pg_read_server_files may not read server files with
-- read_log_file, even with EXECUTE; ingest_file runs as the extension owner
-- (a SECURITY DEFINER entry point, README "Roles"): EXECUTE is the right,
-- and the path rules keep it in the import folder
SET client_min_messages = warning;
DROP ROLE IF EXISTS calo_ingest_reader;
RESET client_min_messages;
CREATE ROLE calo_ingest_reader;
GRANT USAGE ON SCHEMA calo_recon TO calo_ingest_reader;
GRANT EXECUTE ON FUNCTION calo_recon.ingest_file(text), calo_recon.read_log_file(text)
    TO calo_ingest_reader;
SET ROLE calo_ingest_reader;
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('/etc')$$);
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file('samples/answer-key.json')$$);
RESET ROLE;
-- ingest_log is not granted to PUBLIC
SET ROLE calo_ingest_reader;
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_log('x')$$);
RESET ROLE;
REVOKE ALL ON FUNCTION calo_recon.ingest_file(text), calo_recon.read_log_file(text)
    FROM calo_ingest_reader;
REVOKE USAGE ON SCHEMA calo_recon FROM calo_ingest_reader;
DROP ROLE calo_ingest_reader;

-- damaged logs named explicitly are errors; nothing is stored
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('bad/walk/c_invalid_utf8.log')$$);
SELECT pg_temp.error_of($$SELECT calo_recon.read_log_file('bad/walk/c_invalid_utf8.log')$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('bad/walk/d_truncated.gz')$$);
SELECT pg_temp.error_of($$SELECT * FROM calo_recon.ingest_file('bad/walk/e_corrupt.gz')$$);
SELECT count(*) AS rows_after_errors FROM calo_recon.log_events;

-- a file that is not a log, named explicitly: counted, skipped, quarantined
SELECT * FROM calo_recon.ingest_file('bad/walk/g_notes.txt');
SELECT source_file, kind, reason, detail FROM calo_recon.quarantine ORDER BY quarantine_id;

-- gzip is recognized by its magic bytes, not the name (a_first.gz is plain
-- text, b_second.log is gzip); the walk goes in name order and quarantines
-- the rest: .DS_Store, invalid UTF-8, truncated and corrupt gzip, empty
-- file, notes, a symlink out of the folder, a gzip that holds no log
SELECT * FROM calo_recon.ingest_file('bad/walk');

SELECT source_file, event_no, kind, txn_id, reason,
       CASE WHEN kind = 'file' OR reason <> 'conflict' THEN detail - 'body' END AS detail
FROM calo_recon.quarantine ORDER BY source_file, event_no, quarantine_id;

-- the conflict keeps the first row and shows both payloads
SELECT txn_id, amount, new_balance, source_file FROM calo_recon.transactions ORDER BY txn_id;
SELECT txn_id, detail -> 'stored' ->> 'amount' AS stored_amount,
       detail -> 'incoming' ->> 'amount' AS incoming_amount
FROM calo_recon.quarantine WHERE reason = 'conflict';

SELECT file_name, events, transactions, duplicates, conflicts, balance_errors, rejections,
       quarantined, repeated
FROM calo_recon.ingested_files ORDER BY file_name;

-- walking again: the logs are known, the junk is skipped but not recorded twice
SELECT * FROM calo_recon.ingest_file('bad/walk');
SELECT count(*) AS quarantine_rows FROM calo_recon.quarantine;

-- invalid rows in a log text do not fail the file: each is quarantined
CREATE TEMP TABLE invalid_txn (body text);
INSERT INTO invalid_txn VALUES ($log$2024-02-05T10:00:00.000Z 2024-02-05T10:00:00.000Z	b1a1e5e1-0000-4000-8000-000000000009	INFO	Start syncing the balance {
  transaction: {
    id: '01HQAAAAAAAAAAAAAAAAAAAA09',
    type: 'REFUND',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: 'c0ffee00-0000-4000-8000-00000000000a',
    paymentBalance: 1,
    updatePaymentBalance: true,
    metadata: undefined,
    currency: 'SAR',
    amount: 1,
    vat: 0,
    oldBalance: 2,
    newBalance: 1
  }
}
$log$);
-- the second event: a valid type but an amount of 10^24 (both the parser's
-- verdict: the body names the field)
SELECT events, transactions, quarantined FROM calo_recon.ingest_log(
    (SELECT body || E'\n' || replace(replace(replace(replace(body, '10:00:00.000Z', '10:00:00.010Z'),
                      'AAAA09', 'AAAA10'), 'REFUND', 'DEBIT'), 'amount: 1,', 'amount: 1000000000000000000000000,')
     FROM invalid_txn),
    'inline-invalid');
SELECT event_no, txn_id, reason, detail ->> 'field' AS field
FROM calo_recon.quarantine WHERE source_file = 'inline-invalid' ORDER BY event_no;

-- D4: line ends and a byte order mark (test/data/bad/line_ends): a log with
-- lone CR line ends (was one START event, its transactions lost), one that
-- starts with a UTF-8 BOM and one gzip with BOM and CR LF (were skipped as
-- not_a_log) are ingested like any other; so are one that starts with blank
-- lines (spaces, a tab, LF) and one with a BOM and a CR LF blank line (were
-- skipped as not_a_log, though parse_log and ingest_log took their text)
SELECT * FROM calo_recon.ingest_file('bad/line_ends/b_bom.log');
SELECT * FROM calo_recon.ingest_file('bad/line_ends');
SELECT file_name, events, transactions, quarantined FROM calo_recon.ingested_files
WHERE file_name LIKE 'bad/line_ends/%' ORDER BY file_name;
SELECT count(*) AS line_ends_quarantined FROM calo_recon.quarantine WHERE source_file LIKE 'bad/line_ends/%';
SELECT e.source_file, e.event_no, e.kind, pg_catalog.left(e.raw, 24) AS raw_start
FROM calo_recon.log_events e WHERE e.source_file LIKE 'bad/line_ends/%' ORDER BY 1, 2;
SELECT txn_id, old_balance, new_balance, logged_at, source_file FROM calo_recon.transactions
WHERE source_file LIKE 'bad/line_ends/%' ORDER BY logged_at;
-- the text read back keeps its BOM (the digest is the file's); the parser skips it
SELECT pg_catalog.left(calo_recon.read_log_file('bad/line_ends/b_bom.log'), 1) = E'\uFEFF' AS keeps_bom;

-- Issue 8: validation is wholly the parser's.  Each bad field below, as
-- parse_log sees it and as ingest_log quarantines it: the same reason, key
-- and id (on main the rules marked SQL were accepted by parse_log and only
-- the CASE chain of ingest_log quarantined them).
CREATE FUNCTION pg_temp.data_event(form text, key text, value text) RETURNS text
LANGUAGE sql AS $$
SELECT '2024-03-05T10:00:00.000Z 2024-03-05T10:00:00.000Z' || E'\t' || 'b1a1e5e1-0000-4000-8000-000000000008' || E'\t'
       || CASE form WHEN 'balance_error' THEN 'ERROR' ELSE 'INFO' END || E'\t'
       || CASE form WHEN 'transaction' THEN 'Start syncing the balance { transaction: {'
                    WHEN 'legacy' THEN 'Start syncing the balance { transaction: {'
                    WHEN 'balance_error' THEN 'Subscription balance and payment balance are not in sync {'
                    ELSE '{ message: ''Subscriber will have a negative balance'', data: {' END
       || (SELECT pg_catalog.string_agg(' ' || f.k || ': ' || CASE WHEN f.k = key THEN value ELSE f.v END || ',', '' ORDER BY f.n)
           FROM (VALUES
                   ('transaction', 1, 'id', '''01HRV8SQL000000000000000T1'''), ('transaction', 2, 'type', '''DEBIT'''),
                   ('transaction', 3, 'source', '''MANUAL_DEDUCTION'''), ('transaction', 4, 'action', '''DELIVERY_DEDUCTION'''),
                   ('transaction', 5, 'userId', '''u-sql-8'''), ('transaction', 6, 'paymentBalance', '90'),
                   ('transaction', 7, 'updatePaymentBalance', 'true'), ('transaction', 8, 'metadata', 'undefined'),
                   ('transaction', 9, 'currency', '''SAR'''), ('transaction', 10, 'amount', '10'), ('transaction', 11, 'vat', '0'),
                   ('transaction', 12, 'oldBalance', '100'), ('transaction', 13, 'newBalance', '90'),
                   ('legacy', 1, 'id', '''01HRV8SQL000000000000000L1'''), ('legacy', 2, 'userId', '''u-sql-8'''),
                   ('legacy', 3, 'currency', '''SAR'''), ('legacy', 4, 'amount', '10'), ('legacy', 5, 'vat', '0'),
                   ('legacy', 6, 'oldBalance', '100'), ('legacy', 7, 'newBalance', '90'),
                   ('balance_error', 1, 'userId', '''u-sql-8'''), ('balance_error', 2, 'subscriptionBalance', '5'),
                   ('balance_error', 3, 'paymentBalance', '6'),
                   ('rejection', 1, 'userId', '''u-sql-8'''), ('rejection', 2, 'currentBalance', '-5'),
                   ('rejection', 3, 'transactionId', '''01HRV8SQL000000000000000R1''')) AS f (form, n, k, v)
           WHERE f.form = data_event.form AND (f.k <> key OR value IS NOT NULL))
       || CASE form WHEN 'balance_error' THEN ' }' ELSE ' } }' END || E'\n'
$$;
CREATE TEMP TABLE bad_fields (case_no int, form text, key text, value text, rule text);
INSERT INTO bad_fields VALUES
    (1, 'transaction', 'type', '''REFUND''', 'SQL'),
    (2, 'transaction', 'type', NULL, 'SQL'),
    (3, 'transaction', 'source', '''''', 'SQL'),
    (4, 'transaction', 'action', '''''', 'SQL'),
    (5, 'transaction', 'currency', '''sar''', 'SQL'),
    (6, 'legacy', 'currency', '''SA''', 'SQL'),
    (7, 'transaction', 'amount', '1000000000000000', 'SQL'),
    (8, 'transaction', 'vat', '-1e15', 'SQL'),
    (9, 'transaction', 'oldBalance', '1e20', 'SQL'),
    (10, 'transaction', 'newBalance', '1E+15', 'SQL'),
    (11, 'transaction', 'paymentBalance', '1e15', 'SQL'),
    (12, 'legacy', 'amount', '1e15', 'SQL'),
    (13, 'balance_error', 'subscriptionBalance', '1e15', 'SQL'),
    (14, 'balance_error', 'paymentBalance', '-1e16', 'SQL'),
    (15, 'rejection', 'currentBalance', '1e15', 'SQL'),
    -- the disagreement: SQL had a rejection's transactionId optional, the parser required
    (16, 'rejection', 'transactionId', NULL, 'both, disagreeing'),
    (17, 'rejection', 'transactionId', '''''', 'both'),
    (18, 'transaction', 'id', '''''', 'both'),
    (19, 'transaction', 'userId', NULL, 'both'),
    (20, 'transaction', 'updatePaymentBalance', '''yes''', 'both'),
    (21, 'balance_error', 'userId', '5', 'both');
SELECT b.case_no, b.form, b.key, b.rule, p.kind, p.body ->> 'reason' AS parse_reason,
       p.body ->> 'field' AS parse_field, p.body ->> 'txn_id' AS parse_txn_id
FROM bad_fields b, calo_recon.parse_log(pg_temp.data_event(b.form, b.key, b.value)) AS p
ORDER BY b.case_no;
SELECT events, transactions, balance_errors, rejections, quarantined FROM calo_recon.ingest_log(
    (SELECT string_agg(pg_catalog.replace(pg_temp.data_event(b.form, b.key, b.value), '10:00:00.000Z',
                                          pg_catalog.format('10:00:%s.000Z', pg_catalog.lpad(b.case_no::text, 2, '0'))),
                       E'\n' ORDER BY b.case_no) FROM bad_fields b), 'inline-bad-fields');
-- the quarantine row of each: parse_log's verdict, its body the detail
SELECT q.event_no AS case_no, q.kind, q.reason, q.detail ->> 'field' AS field, q.txn_id,
       q.detail = p.body AS detail_is_parse_body
FROM calo_recon.quarantine q
JOIN bad_fields b ON b.case_no = q.event_no
CROSS JOIN LATERAL calo_recon.parse_log(pg_temp.data_event(b.form, b.key, b.value)) AS p
WHERE q.source_file = 'inline-bad-fields' ORDER BY q.event_no;
SELECT q.detail ->> 'detail' AS detail FROM calo_recon.quarantine q
WHERE q.source_file = 'inline-bad-fields' ORDER BY q.event_no;
-- the routing function holds no field rule: no type test, bound or pattern
SELECT p.prosrc ~ 'jsonb_typeof|1e15|A-Z|CREDIT|missing_field|bad_field|out_of_range' AS routing_validates
FROM pg_proc p WHERE p.oid = 'calo_recon.ingest_log_unreconciled(text, text)'::regprocedure;

-- The tables' CHECK constraints (COPY and INSERT) use the parser's rules:
-- a currency code and a transaction type have one definition
SELECT conrelid::regclass AS table_name, pg_get_constraintdef(oid) AS rule FROM pg_constraint
WHERE contype = 'c' AND conrelid IN ('calo_recon.currencies'::regclass, 'calo_recon.transactions'::regclass)
  AND pg_get_constraintdef(oid) ~ 'is_(currency_code|transaction_type)' ORDER BY 1, 2;
SELECT code, calo_recon.is_currency_code(code) FROM (VALUES ('SAR'), ('sar'), ('SA'), ('SARR'), ('S1R')) AS v (code);
SELECT t, calo_recon.is_transaction_type(t) FROM (VALUES ('CREDIT'), ('DEBIT'), ('debit'), ('REFUND'), ('')) AS v (t);
SELECT pg_temp.error_of($$INSERT INTO calo_recon.currencies (code, minor_unit) VALUES ('sar', 2)$$);
SELECT pg_catalog.split_part(pg_temp.error_of($$INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat,
                                                             old_balance, new_balance, logged_at)
                          VALUES ('01HRV8CHECK0000000000000T1', 'u', 'REFUND', 'SAR', 1, 0, 1, 0, '2024-03-05')$$), ' | ', 1);

-- money is finite: NaN, Infinity and -Infinity in any money column, by
-- INSERT or COPY, are 23514 naming the column's check (README "Bad input")
SELECT tbl, col, v, split_part(pg_temp.error_of(format(
           'INSERT INTO calo_recon.%I SELECT * FROM pg_catalog.jsonb_populate_record(NULL::calo_recon.%I, %L)',
           tbl, tbl, base || jsonb_build_object(col, v))), ' | ', 1) AS refused
FROM (VALUES ('transactions', '{"txn_id": "FIN-1", "user_id": "u", "txn_type": "DEBIT", "currency": "SAR", "amount": 1,
                                "vat": 0, "old_balance": 1, "new_balance": 0, "payment_balance": 0,
                                "logged_at": "2024-03-05T00:00:00Z"}'::jsonb,
              ARRAY['amount', 'vat', 'old_balance', 'new_balance', 'payment_balance']),
             ('balance_errors', '{"error_id": 1, "user_id": "u", "subscription_balance": 1, "payment_balance": 2,
                                  "logged_at": "2024-03-05T00:00:00Z"}',
              ARRAY['subscription_balance', 'payment_balance']),
             ('negative_balance_rejections', '{"rejection_id": 1, "user_id": "u", "current_balance": 1,
                                               "logged_at": "2024-03-05T00:00:00Z"}',
              ARRAY['current_balance'])) AS t (tbl, base, cols)
CROSS JOIN LATERAL unnest(cols) WITH ORDINALITY AS c (col, n)
CROSS JOIN (VALUES (1, 'NaN'), (2, 'Infinity'), (3, '-Infinity')) AS bad (k, v)
ORDER BY tbl, n, k;
SELECT calo_recon.is_finite_money(v::numeric) AS finite, v
FROM (VALUES ('0'), ('-1.5'), ('1e-300'), ('9e300'), ('NaN'), ('Infinity'), ('-Infinity')) AS x (v);
SELECT calo_recon.is_finite_money(NULL) IS NULL AS null_is_null;
COPY calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) FROM stdin;
FIN-COPY	u	DEBIT	SAR	1	0	Infinity	0	2024-03-05
\.
SELECT count(*) AS stored FROM calo_recon.transactions WHERE txn_id LIKE 'FIN-%';
