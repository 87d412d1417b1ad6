-- pgTAP: ingest_log semantics beyond the sample export: duplicates and
-- conflicts inside one log, all-or-nothing on failure, privileges.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(16);

CREATE TEMP TABLE log_text (name text PRIMARY KEY, body text);
INSERT INTO log_text VALUES ('txn', $log$2024-02-01T10:00:00.020Z 2024-02-01T10:00:00.020Z	b1a1e5e1-0000-4000-8000-0000000000a1	INFO	Start syncing the balance {
  transaction: {
    id: '01HQTAPTAPTAPTAPTAPTAPTA01',
    type: 'DEBIT',
    source: 'MANUAL_DEDUCTION',
    action: 'DELIVERY_DEDUCTION',
    userId: 'c0ffee00-0000-4000-8000-0000000000b1',
    paymentBalance: 90,
    updatePaymentBalance: true,
    metadata: undefined,
    currency: 'BHD',
    amount: 10,
    vat: 0,
    oldBalance: 100,
    newBalance: 90
  }
}
$log$);
-- the same transaction three times in one text: as logged, again, and with another amount
INSERT INTO log_text
SELECT 'thrice', body || E'\n' || replace(body, '10:00:00.020Z', '10:00:01.020Z') || E'\n'
       || replace(replace(body, '10:00:00.020Z', '10:00:02.020Z'), 'amount: 10,', 'amount: 11,')
FROM log_text WHERE name = 'txn';

SELECT results_eq(
  $$SELECT events, transactions, duplicates, conflicts, quarantined
    FROM calo_recon.ingest_log((SELECT body FROM log_text WHERE name = 'thrice'), 'thrice')$$,
  $$VALUES (3, 1, 1, 1, 1)$$,
  'one log with a transaction, its duplicate delivery and a conflicting copy');
SELECT is((SELECT amount FROM calo_recon.transactions WHERE txn_id = '01HQTAPTAPTAPTAPTAPTAPTA01'),
          10::numeric, 'the first occurrence stays');
SELECT is((SELECT logged_at FROM calo_recon.transactions WHERE txn_id = '01HQTAPTAPTAPTAPTAPTAPTA01'),
          '2024-02-01T10:00:00.020Z'::timestamptz, 'the stored row is the earliest event');
SELECT results_eq(
  $$SELECT reason, event_no, (detail -> 'incoming' ->> 'amount')::numeric
    FROM calo_recon.quarantine WHERE txn_id = '01HQTAPTAPTAPTAPTAPTAPTA01'$$,
  $$VALUES ('conflict', 3, 11::numeric)$$,
  'the conflicting copy is quarantined with its payload');

SELECT results_eq(
  $$SELECT events, transactions, duplicates, conflicts, quarantined
    FROM calo_recon.ingest_log((SELECT body FROM log_text WHERE name = 'thrice'), 'another name')$$,
  $$VALUES (0, 0, 0, 0, 0)$$,
  'the same content again, under any name, changes nothing');

-- a later file delivering the stored transaction again is a duplicate
SELECT results_eq(
  $$SELECT events, transactions, duplicates, conflicts
    FROM calo_recon.ingest_log((SELECT body FROM log_text WHERE name = 'txn'), 'later')$$,
  $$VALUES (1, 0, 1, 0)$$,
  'a duplicate delivery from another file is counted, not stored');
SELECT is((SELECT count(*)::int FROM calo_recon.transactions), 1, 'one row per transaction id');

-- all or nothing: a failure at the end of ingest_log leaves no trace
CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused for the test' USING ERRCODE = 'P0001'; END $$;
CREATE TRIGGER refuse BEFORE INSERT ON calo_recon.ingested_files
    FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();
SELECT throws_ok(
  $$SELECT * FROM calo_recon.ingest_log(replace((SELECT body FROM log_text WHERE name = 'txn'),
                                                '01HQTAPTAPTAPTAPTAPTAPTA01', '01HQTAPTAPTAPTAPTAPTAPTA02'), 'half')$$,
  'P0001', 'refused for the test', 'a failing ingest raises');
SELECT is((SELECT count(*)::int FROM calo_recon.log_events WHERE source_file = 'half'), 0,
          'no events of the failed ingest remain');
SELECT is((SELECT count(*)::int FROM calo_recon.transactions WHERE txn_id = '01HQTAPTAPTAPTAPTAPTAPTA02'), 0,
          'no transaction of the failed ingest remains');
DROP TRIGGER refuse ON calo_recon.ingested_files;

-- nothing is granted to PUBLIC; the readers of files need pg_read_server_files
SELECT ok(NOT has_function_privilege('public', 'calo_recon.ingest_log(text, text)', 'EXECUTE'),
          'ingest_log is not executable by PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'calo_recon.ingest_file(text)', 'EXECUTE'),
          'ingest_file is not executable by PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'calo_recon.read_log_file(text)', 'EXECUTE'),
          'read_log_file is not executable by PUBLIC');
-- ingest_log and ingest_file write the record for operators: hardened
-- SECURITY DEFINER entry points; read_log_file writes nothing and is not
SELECT ok(p.prosecdef = (p.proname <> 'read_log_file')
          AND coalesce(p.proconfig = ARRAY['search_path=pg_catalog, pg_temp'], NOT p.prosecdef),
          p.oid::regprocedure::text || CASE WHEN p.proname <> 'read_log_file'
                                            THEN ' is SECURITY DEFINER with search_path pinned'
                                            ELSE ' is not SECURITY DEFINER' END)
FROM pg_proc p
WHERE p.oid IN ('calo_recon.ingest_log(text, text)'::regprocedure,
                'calo_recon.ingest_file(text)'::regprocedure,
                'calo_recon.read_log_file(text)'::regprocedure)
ORDER BY p.oid::regprocedure::text;

SELECT * FROM finish();
ROLLBACK;
