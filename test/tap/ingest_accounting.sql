-- pgTAP: nothing is lost.  After ingesting the sample export and the folder
-- of bad inputs, for every ingested file: events read = rows of log_events,
-- the per-file counts equal the rows stored from it, and every data event is
-- stored, a duplicate delivery, a repeat of a stored event or quarantined;
-- every file of the walked folders is either ingested or quarantined.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(7);

CREATE TEMP TABLE walked AS
SELECT 'samples' AS folder, * FROM calo_recon.ingest_file('samples')
UNION ALL
SELECT 'bad/walk', * FROM calo_recon.ingest_file('bad/walk');

SELECT is((SELECT sum(events)::int FROM walked),
          (SELECT count(*)::int FROM calo_recon.log_events),
          'events read = rows of log_events');
-- samples: 2 logs, .DS_Store, answer-key.json; bad/walk: 10 entries (see test/data/bad)
SELECT is((SELECT sum(files + skipped_files)::int FROM walked), 14,
          'every file of both folders is ingested or skipped');
SELECT is((SELECT sum(skipped_files)::int FROM walked),
          (SELECT count(*)::int FROM calo_recon.quarantine WHERE kind = 'file'),
          'every skipped file is recorded in quarantine');
SELECT is((SELECT sum(files)::int FROM walked),
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

SELECT * FROM finish();
ROLLBACK;
