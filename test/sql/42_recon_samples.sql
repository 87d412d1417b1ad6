-- End to end: ingest the bundled sample export, then the reconciliation
-- views must match answer-key.json (overdrafts 1, arithmetic_breaks 1,
-- chain_breaks 1, precision_drift 1, discrepancies 5).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

SELECT events, transactions, duplicates, conflicts, balance_errors, rejections
FROM calo_recon.ingest_file('samples/balance-sync-logs');

-- ingest reconciled the users it touched: the findings are already there
SELECT finding, txn_id FROM calo_recon.reconciliation_findings ORDER BY finding, txn_id;

SELECT 'overdrafts' AS check, count(*) AS n, string_agg(txn_id, ',' ORDER BY txn_id) AS txn_ids
FROM calo_recon.overdrafts
UNION ALL
SELECT 'arithmetic_breaks', count(*), string_agg(txn_id, ',' ORDER BY txn_id)
FROM calo_recon.balance_breaks WHERE break_kind = 'arithmetic'
UNION ALL
SELECT 'chain_breaks', count(*), string_agg(txn_id, ',' ORDER BY txn_id)
FROM calo_recon.balance_breaks WHERE break_kind = 'chain'
UNION ALL
SELECT 'precision_drift', count(*), string_agg(txn_id, ',' ORDER BY txn_id)
FROM calo_recon.precision_drift
UNION ALL
SELECT 'discrepancies', count(*), string_agg(user_id || '/' || subscription_balance, ',' ORDER BY error_id)
FROM calo_recon.discrepancies;

-- the one balance error in sync (-40 / -40) is not a discrepancy
SELECT user_id, subscription_balance, payment_balance
FROM calo_recon.balance_errors e
WHERE NOT EXISTS (SELECT 1 FROM calo_recon.discrepancies d WHERE d.error_id = e.error_id);

-- a full reconcile agrees with what the ingest left
SELECT * FROM calo_recon.reconcile();
SELECT user_id, transactions, current_balance, arithmetic_breaks, chain_breaks, drift,
       overdrafts, discrepancies, rejections
FROM calo_recon.user_summary ORDER BY user_id;

-- loading the export again changes nothing
SELECT events, transactions FROM calo_recon.ingest_file('samples/balance-sync-logs');
SELECT count(*) AS findings FROM calo_recon.reconciliation_findings;
