-- pgTAP: nothing is lost.  After ingesting the sample export and the folder
-- of bad inputs, for every ingested file: events read = rows of log_events,
-- the per-file counts equal the rows stored from it, and every data event is
-- stored, a duplicate delivery, a repeat of a stored event or quarantined;
-- every file of the walked folders is either ingested or quarantined.
-- Damaged texts too (issue 7: lines run together, oversized values and
-- events, duplicate keys, lone CR line ends, a BOM): every event that holds
-- a transaction is stored or quarantined, never an informational event.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(9);

CREATE TEMP TABLE walked AS
SELECT 'samples' AS folder, * FROM calo_recon.ingest_file('samples')
UNION ALL
SELECT 'bad/walk', * FROM calo_recon.ingest_file('bad/walk')
UNION ALL
SELECT 'bad/line_ends', * FROM calo_recon.ingest_file('bad/line_ends');

-- a damaged text: lines run together after Processing message, START, REPORT
-- and an app_log; a 3,000-character request id and txn id; a 2 MB event; a
-- duplicate key; each beside a valid transaction
CREATE TEMP TABLE damaged AS
WITH txn AS (
    SELECT 'Start syncing the balance { transaction: { id: ''%s'', userId: ''c0ffee00-0000-4000-8000-0000000000ac'', '
           'currency: ''SAR'', amount: %s, vat: 0, oldBalance: 100, newBalance: 95 } }' AS f
)
SELECT c.* FROM txn, calo_recon.ingest_log(
    E'2024-03-06T10:00:00.000Z 2024-03-06T10:00:00.000Z\tacc-1\tINFO\tProcessing message 7b84\tINFO\t'
    || format(f, '01HRTAP0000000000000000011', '5') || E'\n\n'
    || E'2024-03-06T10:00:01.000Z START RequestId: acc-1 Version: $LATEST 2024-03-06T10:00:01.000Z\tacc-1\tINFO\t'
    || format(f, '01HRTAP0000000000000000012', '5') || E'\n\n'
    || E'2024-03-06T10:00:02.000Z REPORT RequestId: acc-1\tDuration: 1 ms\tINFO\t'
    || format(f, '01HRTAP0000000000000000013', '5') || E'\n\n'
    || E'2024-03-06T10:00:03.000Z 2024-03-06T10:00:03.000Z\tacc-1\tINFO\tdone\tINFO\t'
    || format(f, '01HRTAP0000000000000000014', '5') || E'\n\n'
    || E'2024-03-06T10:00:04.000Z 2024-03-06T10:00:04.000Z\t' || (SELECT left(string_agg(md5(g::text), '' ORDER BY g), 3000) FROM generate_series(1, 94) AS g) || E'\tINFO\t'
    || format(f, '01HRTAP0000000000000000015', '5') || E'\n\n'
    || E'2024-03-06T10:00:05.000Z 2024-03-06T10:00:05.000Z\tacc-1\tINFO\t'
    || format(f, (SELECT left(string_agg(md5(g::text), '' ORDER BY g), 3000) FROM generate_series(1, 94) AS g), '5') || E'\n\n'
    || E'2024-03-06T10:00:06.000Z 2024-03-06T10:00:06.000Z\tacc-1\tINFO\t'
    || format(f, '01HRTAP0000000000000000016', '5 ' || repeat(' ', 2000000)) || E'\n\n'
    || E'2024-03-06T10:00:07.000Z 2024-03-06T10:00:07.000Z\tacc-1\tINFO\t'
    || format(f, '01HRTAP0000000000000000017', '5, amount: 500') || E'\n\n'
    || E'2024-03-06T10:00:08.000Z 2024-03-06T10:00:08.000Z\tacc-1\tINFO\t'
    || format(f, '01HRTAP0000000000000000018', '5') || E'\n',
    'damaged') AS c;

SELECT is((SELECT sum(events)::int FROM walked) + (SELECT events FROM damaged),
          (SELECT count(*)::int FROM calo_recon.log_events),
          'events read = rows of log_events');
-- samples: 2 logs, .DS_Store, answer-key.json; bad/walk: 10 entries;
-- bad/line_ends: 5 logs (see test/data/bad)
SELECT is((SELECT sum(files + skipped_files)::int FROM walked), 19,
          'every file of the folders is ingested or skipped');
SELECT is((SELECT sum(skipped_files)::int FROM walked),
          (SELECT count(*)::int FROM calo_recon.quarantine WHERE kind = 'file'),
          'every skipped file is recorded in quarantine');
SELECT is((SELECT sum(files)::int FROM walked) + 1,
          (SELECT count(*)::int FROM calo_recon.ingested_files),
          'every log file is recorded in ingested_files');

SELECT is_empty($$
    SELECT f.file_name FROM calo_recon.ingested_files f
    WHERE f.events <> (SELECT count(*) FROM calo_recon.log_events e WHERE e.source_file = f.file_name)
$$, 'per file: events = rows of log_events');

SELECT is_empty($$
    SELECT f.file_name FROM calo_recon.ingested_files f
    WHERE f.transactions <> (SELECT count(*) FROM calo_recon.transactions t WHERE t.source_file = f.file_name)
       OR f.balance_errors <> (SELECT count(*) FROM calo_recon.balance_errors b WHERE b.source_file = f.file_name)
       OR f.rejections <> (SELECT count(*) FROM calo_recon.negative_balance_rejections r WHERE r.source_file = f.file_name)
       OR f.quarantined <> (SELECT count(*) FROM calo_recon.quarantine q
                            WHERE q.source_file = f.file_name AND q.event_no IS NOT NULL)
       OR f.conflicts <> (SELECT count(*) FROM calo_recon.quarantine q
                          WHERE q.source_file = f.file_name AND q.reason = 'conflict')
$$, 'per file: the counts equal the rows stored from it');

SELECT is_empty($$
    SELECT f.file_name FROM calo_recon.ingested_files f
    WHERE (SELECT count(*) FROM calo_recon.log_events e
           WHERE e.source_file = f.file_name
             AND e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection', 'malformed'))
          <> f.transactions + f.duplicates + f.balance_errors + f.rejections + f.repeated + f.quarantined
$$, 'per file: every data event is stored, a duplicate, a repeat or quarantined');

SELECT is_empty($$
    SELECT e.source_file, e.event_no, e.kind FROM calo_recon.log_events e
    WHERE e.raw LIKE '%Start syncing the balance%'
      AND e.kind <> 'transaction'
      AND NOT EXISTS (SELECT 1 FROM calo_recon.quarantine q
                      WHERE q.source_file = e.source_file AND q.event_no = e.event_no)
$$, 'every event holding a transaction is a transaction or quarantined');

SELECT results_eq($$
    SELECT t.txn_id FROM calo_recon.transactions t WHERE t.source_file = 'damaged'
    UNION ALL
    SELECT q.reason || ':' || q.kind FROM calo_recon.quarantine q WHERE q.source_file = 'damaged'
    ORDER BY 1
$$, $$ VALUES ('01HRTAP0000000000000000018'), ('malformed_event:transaction'), ('malformed_event:transaction'),
              ('malformed_event:transaction'), ('malformed_event:transaction'), ('malformed_event:transaction'),
              ('out_of_range:transaction'), ('out_of_range:transaction'), ('too_large:transaction') $$,
   'the damaged text: the valid transaction stored, every damaged one quarantined with its reason');

SELECT * FROM finish();
ROLLBACK;
