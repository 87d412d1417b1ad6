-- Ingesting the sample export reproduces test/data/samples/answer-key.json;
-- loading it again changes nothing.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- the folder holds two gzip logs and a .DS_Store (counted, skipped, quarantined)
SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs');

SELECT file_name, bytes, events, transactions, duplicates, conflicts,
       balance_errors, rejections, quarantined, repeated
FROM calo_recon.ingested_files ORDER BY file_name;

SELECT source_file, kind, reason, detail FROM calo_recon.quarantine ORDER BY source_file;

-- answer key "expected": events 130, sync blocks 15, duplicate deliveries 1,
-- distinct transactions 14, error blocks 6, negative balance rejections 1
SELECT (SELECT count(*) FROM calo_recon.log_events) AS events,
       (SELECT count(*) FROM calo_recon.log_events WHERE kind = 'transaction') AS sync_blocks,
       (SELECT sum(duplicates) FROM calo_recon.ingested_files) AS duplicate_deliveries,
       (SELECT count(*) FROM calo_recon.transactions) AS distinct_transactions,
       (SELECT count(*) FROM calo_recon.transactions WHERE txn_type IS NULL) AS legacy,
       (SELECT count(*) FROM calo_recon.balance_errors) AS error_blocks,
       (SELECT count(*) FROM calo_recon.negative_balance_rejections) AS rejections;

-- the duplicate delivery: two sync blocks, one row
SELECT body ->> 'id' AS txn_id, count(*) AS deliveries
FROM calo_recon.log_events WHERE kind = 'transaction'
GROUP BY 1 HAVING count(*) > 1;

-- every transaction of the answer key with its user and form, exact numbers
SELECT txn_id, user_id, txn_type IS NULL AS legacy, txn_type, source, action, currency,
       amount, vat, old_balance, new_balance, payment_balance, update_payment_balance
FROM calo_recon.transactions ORDER BY logged_at, txn_id;

-- the answer key's transactions and users match the stored ones exactly
WITH key AS (
    SELECT t ->> 'id' AS txn_id, t ->> 'userId' AS user_id, (t ->> 'legacy')::boolean AS legacy
    FROM jsonb_array_elements(calo_recon.read_log_file('samples/answer-key.json')::jsonb
                              -> 'transactions') AS t
)
SELECT count(*) AS key_rows,
       count(*) FILTER (WHERE t.txn_id IS NOT NULL AND t.user_id = k.user_id
                          AND (t.txn_type IS NULL) = k.legacy) AS matching
FROM key k LEFT JOIN calo_recon.transactions t USING (txn_id);

-- metadata: JSON string -> jsonb (nextPlan stays a string), backtick form, undefined -> NULL
SELECT txn_id, jsonb_typeof(metadata) AS type, metadata ->> 'walletSk' AS wallet_sk,
       metadata ->> 'note' AS note, jsonb_typeof(metadata -> 'nextPlan') AS next_plan_type,
       metadata ->> 'nextPlan' AS next_plan
FROM calo_recon.transactions
WHERE txn_type IS NOT NULL ORDER BY txn_id;

-- float noise and decimals are kept digit for digit
SELECT txn_id, amount::text, old_balance::text, new_balance::text, payment_balance::text
FROM calo_recon.transactions
WHERE txn_id IN ('01HH7QEZZS1A0ZWSK9TPRM7N0M', '01HH63J9FHVMCQV1SD53TW8JZ3', '01HJ2C49NGK80Y3ZH6DZJJXXX7')
ORDER BY txn_id;

-- balance errors, linked to the transaction of their request and message
SELECT b.user_id, b.subscription_balance, b.payment_balance, b.txn_id,
       t.user_id = b.user_id AS same_user, b.message_id = t.message_id AS same_message
FROM calo_recon.balance_errors b LEFT JOIN calo_recon.transactions t USING (txn_id)
ORDER BY b.logged_at;

SELECT txn_id, user_id, current_balance, request_id FROM calo_recon.negative_balance_rejections;

-- reconciliation is current right after the ingest: the answer key's figures
-- (discrepancies 5, overdrafts 1, arithmetic breaks 1, chain breaks 1, drift 1)
SELECT (SELECT count(*) FROM calo_recon.discrepancies) AS discrepancies,
       (SELECT count(*) FROM calo_recon.overdrafts) AS overdrafts,
       (SELECT count(*) FROM calo_recon.balance_breaks WHERE break_kind = 'arithmetic') AS arithmetic_breaks,
       (SELECT count(*) FROM calo_recon.balance_breaks WHERE break_kind = 'chain') AS chain_breaks,
       (SELECT count(*) FROM calo_recon.precision_drift) AS precision_drift;

-- and every transaction carries exactly the answer key's truth labels (the
-- others have none, on both sides)
WITH key AS (
    SELECT t ->> 'id' AS txn_id,
           ARRAY(SELECT jsonb_array_elements_text(t -> 'truth') ORDER BY 1) AS truth
    FROM jsonb_array_elements(calo_recon.read_log_file('samples/answer-key.json')::jsonb
                              -> 'transactions') AS t
), found AS (
    SELECT txn_id, break_kind || '_break' AS label FROM calo_recon.balance_breaks
    UNION ALL SELECT txn_id, 'precision_drift' FROM calo_recon.precision_drift
    UNION ALL SELECT txn_id, 'overdraft' FROM calo_recon.overdrafts
)
SELECT k.txn_id, k.truth, l.found, k.truth = l.found AS same
FROM key k
CROSS JOIN LATERAL (SELECT ARRAY(SELECT f.label FROM found f WHERE f.txn_id = k.txn_id ORDER BY 1)
                    AS found) AS l
WHERE cardinality(k.truth) > 0 OR cardinality(l.found) > 0
ORDER BY k.txn_id;

-- (nothing lost, event by event, is asserted in test/tap/ingest_accounting.sql)

-- loading again: all zero, nothing changes (the .DS_Store is skipped again, not re-quarantined)
CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM calo_recon.log_events) AS events,
       (SELECT count(*) FROM calo_recon.transactions) AS transactions,
       (SELECT count(*) FROM calo_recon.balance_errors) AS errors,
       (SELECT count(*) FROM calo_recon.negative_balance_rejections) AS rejections,
       (SELECT count(*) FROM calo_recon.quarantine) AS quarantine,
       (SELECT count(*) FROM calo_recon.ingested_files) AS files;
SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs');
SELECT * FROM calo_recon.ingest_log(calo_recon.read_log_file(
    'samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2024-01-14-[$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz'),
    'another name');
SELECT (SELECT count(*) FROM calo_recon.log_events) AS events,
       (SELECT count(*) FROM calo_recon.transactions) AS transactions,
       (SELECT count(*) FROM calo_recon.balance_errors) AS errors,
       (SELECT count(*) FROM calo_recon.negative_balance_rejections) AS rejections,
       (SELECT count(*) FROM calo_recon.quarantine) AS quarantine,
       (SELECT count(*) FROM calo_recon.ingested_files) AS files
EXCEPT SELECT * FROM before;

-- the same content under another name is recognized by its digest; a changed
-- content under a used name gets the name plus its digest prefix
SELECT events, transactions, duplicates, balance_errors, repeated
FROM calo_recon.ingest_log(calo_recon.read_log_file(
    'samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2024-01-14-[$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz')
    || E'\n', 'samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2024-01-14-[$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz');
SELECT file_name ~ '#[0-9a-f]{16}$' AS suffixed, events, transactions, duplicates, repeated
FROM calo_recon.ingested_files WHERE file_name LIKE '%#%';

-- inline text without a source name
SELECT * FROM calo_recon.ingest_log(E'2024-03-01T00:00:00.000Z START RequestId: 0a0a0a0a-0000-4000-8000-000000000000 Version: $LATEST\n');
SELECT file_name ~ '^inline:[0-9a-f]{16}$' AS inline_name, events FROM calo_recon.ingested_files
WHERE file_name LIKE 'inline:%';
