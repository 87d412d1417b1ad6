-- The ingest's bulk writes (src/glue/ingest_store_glue.c): log_events holds
-- exactly parse_log's events, and the rows stored do not depend on how they
-- were written.  A row-level insert trigger or an insert rule added by hand
-- to transactions or log_events, which COPY's multi-insert path would not
-- fire, makes the ingest write with INSERT statements instead: the trigger
-- fires for every row stored and the stored rows are the same.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

CREATE TEMP TABLE sample AS
SELECT calo_recon.read_log_file(
    'samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2024-01-14-[$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz') AS log;

-- what an ingest stored, as one comparable set
CREATE FUNCTION pg_temp.stored() RETURNS TABLE (tbl text, row_text text)
LANGUAGE sql AS $$
    SELECT 'log_events', ROW(e.source_file, e.event_no, e.logged_at, e.request_id, e.message_id,
                             e.level, e.kind, e.body, e.raw)::text
    FROM calo_recon.log_events e
    UNION ALL
    SELECT 'transactions', t::text FROM calo_recon.transactions t
$$;

-- the bulk writes: log_events is parse_log's output, both ways
SELECT events, transactions, duplicates FROM calo_recon.ingest_log((SELECT s.log FROM sample s), 'bulk');
SELECT count(*) AS differing_events
FROM ((SELECT e.event_no, e.logged_at, e.request_id, e.level, e.kind, e.body, e.message_id, e.raw
       FROM calo_recon.log_events e WHERE e.source_file = 'bulk'
       EXCEPT ALL
       SELECT p.* FROM calo_recon.parse_log((SELECT s.log FROM sample s)) p)
      UNION ALL
      (SELECT p.* FROM calo_recon.parse_log((SELECT s.log FROM sample s)) p
       EXCEPT ALL
       SELECT e.event_no, e.logged_at, e.request_id, e.level, e.kind, e.body, e.message_id, e.raw
       FROM calo_recon.log_events e WHERE e.source_file = 'bulk')) d;
CREATE TEMP TABLE bulk_stored AS SELECT * FROM pg_temp.stored();

-- a DBA's audit triggers, one per row
TRUNCATE calo_recon.log_events, calo_recon.transactions, calo_recon.ingested_files,
         calo_recon.balance_errors, calo_recon.negative_balance_rejections, calo_recon.quarantine;
CREATE TABLE public.audited (tbl text, id text);
CREATE FUNCTION public.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'transactions' THEN
        INSERT INTO public.audited VALUES (TG_TABLE_NAME, NEW.txn_id);
    ELSE
        INSERT INTO public.audited VALUES (TG_TABLE_NAME, NEW.event_no::text);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_row AFTER INSERT ON calo_recon.transactions
    FOR EACH ROW EXECUTE FUNCTION public.audit_row();
CREATE TRIGGER audit_row BEFORE INSERT ON calo_recon.log_events
    FOR EACH ROW EXECUTE FUNCTION public.audit_row();
SELECT events, transactions, duplicates FROM calo_recon.ingest_log((SELECT s.log FROM sample s), 'bulk');
SELECT a.tbl, count(*) AS fired, count(DISTINCT a.id) AS rows FROM public.audited a GROUP BY a.tbl ORDER BY a.tbl;
SELECT count(*) AS differing_rows
FROM ((SELECT * FROM bulk_stored EXCEPT ALL SELECT * FROM pg_temp.stored())
      UNION ALL
      (SELECT * FROM pg_temp.stored() EXCEPT ALL SELECT * FROM bulk_stored)) d;
-- the ids already stored: left out by the INSERT too
SELECT count(*) AS stored_again
FROM calo_recon.store_new_transactions(ARRAY(SELECT t FROM calo_recon.transactions t));
-- a NULL row is refused on the INSERT path too (22004), not stored as NULLs
DO $$
BEGIN
    PERFORM calo_recon.store_new_transactions(ARRAY[NULL::calo_recon.transactions]);
EXCEPTION WHEN null_value_not_allowed THEN
    RAISE NOTICE 'refused with a row trigger: %', SQLSTATE;
END $$;
DROP TRIGGER audit_row ON calo_recon.transactions;
DROP TRIGGER audit_row ON calo_recon.log_events;

-- an insert rule that sends log events elsewhere is applied as well
TRUNCATE calo_recon.log_events, calo_recon.transactions, calo_recon.ingested_files,
         calo_recon.balance_errors, calo_recon.negative_balance_rejections, calo_recon.quarantine;
CREATE TABLE public.diverted (LIKE calo_recon.log_events);
CREATE RULE divert AS ON INSERT TO calo_recon.log_events DO INSTEAD
    INSERT INTO public.diverted SELECT NEW.*;
SELECT events, transactions FROM calo_recon.ingest_log((SELECT s.log FROM sample s), 'diverted');
SELECT (SELECT count(*) FROM calo_recon.log_events) AS kept, (SELECT count(*) FROM public.diverted) AS diverted;
DROP RULE divert ON calo_recon.log_events;

-- the bulk write of new transactions: a NULL element is refused (22004)
DO $$
BEGIN
    PERFORM calo_recon.store_new_transactions(ARRAY[NULL::calo_recon.transactions]);
EXCEPTION WHEN null_value_not_allowed THEN
    RAISE NOTICE 'refused: % %', SQLSTATE, SQLERRM;
END $$;

DROP TABLE public.audited, public.diverted;
DROP FUNCTION public.audit_row();

-- row-level security the bulk writer would not check (COPY FROM refuses a
-- table under it): for a caller it applies to, the rows go through INSERT
-- statements, whose policies refuse a row (42501) and store the others
CREATE ROLE bulk_rls_writer;
GRANT USAGE ON SCHEMA calo_recon TO bulk_rls_writer;
GRANT SELECT ON sample TO bulk_rls_writer;
GRANT INSERT, SELECT ON calo_recon.log_events, calo_recon.transactions TO bulk_rls_writer;
GRANT EXECUTE ON FUNCTION calo_recon.parse_and_store_log(text, text),
                          calo_recon.store_new_transactions(calo_recon.transactions[]) TO bulk_rls_writer;
ALTER TABLE calo_recon.log_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY bulk_rls ON calo_recon.log_events TO bulk_rls_writer
    USING (true) WITH CHECK (source_file LIKE 'allowed%');
ALTER TABLE calo_recon.transactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY bulk_rls ON calo_recon.transactions TO bulk_rls_writer
    USING (true) WITH CHECK (amount < 100);
SET ROLE bulk_rls_writer;
\set VERBOSITY terse
SELECT count(*) FROM calo_recon.parse_and_store_log((SELECT s.log FROM sample s), 'refused');
SELECT count(*) FROM calo_recon.store_new_transactions(ARRAY[
    ROW('TX-RLS', 'u-rls', 'DEBIT', NULL, NULL, 'SAR', 500, 0, 1000, 500, NULL, NULL, NULL,
        '2024-05-01 00:00+00', NULL, NULL, 'rls')::calo_recon.transactions]);
\set VERBOSITY default
SELECT count(*) AS stored FROM calo_recon.parse_and_store_log((SELECT s.log FROM sample s), 'allowed');
RESET ROLE;
SELECT source_file, count(*) FROM calo_recon.log_events
WHERE source_file IN ('refused', 'allowed') GROUP BY source_file;
SELECT count(*) AS stored_txn FROM calo_recon.transactions WHERE txn_id = 'TX-RLS';
DROP POLICY bulk_rls ON calo_recon.log_events;
DROP POLICY bulk_rls ON calo_recon.transactions;
ALTER TABLE calo_recon.log_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE calo_recon.transactions DISABLE ROW LEVEL SECURITY;
DELETE FROM calo_recon.log_events WHERE source_file = 'allowed';
REVOKE ALL ON calo_recon.log_events, calo_recon.transactions FROM bulk_rls_writer;
REVOKE ALL ON FUNCTION calo_recon.parse_and_store_log(text, text),
                       calo_recon.store_new_transactions(calo_recon.transactions[]) FROM bulk_rls_writer;
REVOKE ALL ON SCHEMA calo_recon FROM bulk_rls_writer;
REVOKE ALL ON sample FROM bulk_rls_writer;
DROP ROLE bulk_rls_writer;
