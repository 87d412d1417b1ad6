-- The peer of bench/reports/run.sh: user_summary as calo_recon 1.1 defined
-- it (its txn CTE, referenced twice, is materialized for every user before a
-- filter on user_id applies).
CREATE VIEW bench_user_summary_1_1 AS
WITH txn AS (
    SELECT t.user_id,
           pg_catalog.count(*) AS transactions,
           pg_catalog.min(t.logged_at) AS first_logged_at,
           pg_catalog.max(t.logged_at) AS last_logged_at,
           (pg_catalog.array_agg(t.currency ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC))[1] AS currency,
           (pg_catalog.array_agg(t.new_balance ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC))[1] AS current_balance,
           pg_catalog.count(*) FILTER (WHERE calo_recon.is_overdraft(t.new_balance)) AS overdrafts,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS credits_total,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE NOT calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS debits_total
    FROM calo_recon.transactions t
    GROUP BY t.user_id
),
findings AS (
    SELECT f.user_id,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
    FROM calo_recon.reconciliation_findings f
    GROUP BY f.user_id
),
disc AS (
    SELECT d.user_id, pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d GROUP BY d.user_id
),
rej AS (
    SELECT r.user_id, pg_catalog.count(*) AS rejections
    FROM calo_recon.negative_balance_rejections r GROUP BY r.user_id
),
users AS (
    SELECT user_id FROM txn
    UNION SELECT user_id FROM calo_recon.balance_errors
    UNION SELECT user_id FROM rej
)
SELECT u.user_id,
       coalesce(x.transactions, 0) AS transactions,
       x.first_logged_at, x.last_logged_at, x.currency, x.current_balance,
       coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(f.chain_breaks, 0) AS chain_breaks,
       coalesce(f.drift, 0) AS drift,
       coalesce(x.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(r.rejections, 0) AS rejections,
       coalesce(x.credits_total, 0) AS credits_total,
       coalesce(x.debits_total, 0) AS debits_total
FROM users u
LEFT JOIN txn x ON x.user_id = u.user_id
LEFT JOIN findings f ON f.user_id = u.user_id
LEFT JOIN disc d ON d.user_id = u.user_id
LEFT JOIN rej r ON r.user_id = u.user_id;
