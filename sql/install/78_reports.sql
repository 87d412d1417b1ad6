-- Reports with a time axis (issue 10): the figures per currency and UTC day,
-- and the time the data is as of. Money is rounded with round_money, as in
-- every other view.

CREATE VIEW calo_recon.daily_summary AS
WITH activity AS (
    SELECT pg_catalog.timezone('UTC', t.logged_at)::pg_catalog.date AS day, t.currency,
           pg_catalog.count(*) AS transactions,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS credits,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE NOT calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS debits,
           pg_catalog.sum(t.vat) AS vat,
           pg_catalog.count(*) FILTER (WHERE calo_recon.is_overdraft(t.new_balance)) AS overdrafts
    FROM calo_recon.transactions t
    GROUP BY 1, 2
),
user_day AS (
    -- each wallet's last balance of the day (the last logged_at of the day,
    -- chain order among its ties), as a change from its previous one
    SELECT l.day, l.currency,
           l.closing - coalesce(pg_catalog.lag(l.closing) OVER (
               PARTITION BY l.user_id, l.currency ORDER BY l.day), 0) AS change
    FROM (SELECT DISTINCT ON (g.user_id, g.currency, g.day) g.user_id, g.currency, g.day,
                 t.new_balance AS closing
          FROM (SELECT t.user_id, t.currency, pg_catalog.timezone('UTC', t.logged_at)::pg_catalog.date AS day,
                       pg_catalog.max(t.logged_at) AS last_at
                FROM calo_recon.transactions t GROUP BY 1, 2, 3) g
          JOIN calo_recon.transactions t
            ON t.user_id = g.user_id AND t.logged_at = g.last_at AND t.currency = g.currency
          ORDER BY g.user_id, g.currency, g.day, calo_recon.chain_key(t.logged_at, t.txn_id) DESC) l
),
liability AS (
    SELECT u.day, u.currency, pg_catalog.sum(u.change) AS change
    FROM user_day u GROUP BY u.day, u.currency
),
breaks AS (
    SELECT pg_catalog.timezone('UTC', b.logged_at)::pg_catalog.date AS day, b.currency,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'conflict') AS conflicts,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'out_of_range') AS out_of_range
    FROM calo_recon.balance_breaks b
    GROUP BY 1, 2
),
disc AS (
    SELECT pg_catalog.timezone('UTC', d.logged_at)::pg_catalog.date AS day, d.currency,
           pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d
    WHERE d.currency IS NOT NULL
    GROUP BY 1, 2
),
anom AS (
    SELECT pg_catalog.timezone('UTC', a.logged_at)::pg_catalog.date AS day, a.currency,
           pg_catalog.count(*) AS anomalies
    FROM calo_recon.anomalies a
    GROUP BY 1, 2
),
days AS (
    SELECT a.day, a.currency FROM activity a
    UNION SELECT d.day, d.currency FROM disc d
)
SELECT k.day, k.currency,
       coalesce(a.transactions, 0) AS transactions,
       calo_recon.round_money(coalesce(a.credits, 0), cu.minor_unit) AS credits,
       calo_recon.round_money(coalesce(a.debits, 0), cu.minor_unit) AS debits,
       calo_recon.round_money(coalesce(a.vat, 0), cu.minor_unit) AS vat,
       calo_recon.round_money(pg_catalog.sum(coalesce(l.change, 0)) OVER (
           PARTITION BY k.currency ORDER BY k.day), cu.minor_unit) AS wallet_liability,
       coalesce(b.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(b.chain_breaks, 0) AS chain_breaks,
       coalesce(b.conflicts, 0) AS conflicts,
       coalesce(b.out_of_range, 0) AS out_of_range,
       coalesce(a.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(n.anomalies, 0) AS anomalies
FROM days k
LEFT JOIN activity a ON a.day = k.day AND a.currency = k.currency
LEFT JOIN liability l ON l.day = k.day AND l.currency = k.currency
LEFT JOIN breaks b ON b.day = k.day AND b.currency = k.currency
LEFT JOIN disc d ON d.day = k.day AND d.currency = k.currency
LEFT JOIN anom n ON n.day = k.day AND n.currency = k.currency
LEFT JOIN calo_recon.currencies cu ON cu.code = k.currency;
COMMENT ON VIEW calo_recon.daily_summary IS
  'The figures per currency and UTC day (days with transactions or discrepancies): activity, the wallet liability at the end of the day, breaks by kind, overdrafts, discrepancies and anomalies. Money rounded to the currency''s minor unit (round_money). Breaks are as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.daily_summary.day IS 'Day (UTC) the rows were logged';
COMMENT ON COLUMN calo_recon.daily_summary.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.daily_summary.transactions IS 'Transactions logged that day';
COMMENT ON COLUMN calo_recon.daily_summary.credits IS 'Sum of amount (gross) over credits (is_credit)';
COMMENT ON COLUMN calo_recon.daily_summary.debits IS 'Sum of amount (gross) over debits';
COMMENT ON COLUMN calo_recon.daily_summary.vat IS 'Sum of vat';
COMMENT ON COLUMN calo_recon.daily_summary.wallet_liability IS 'Closing wallet liability: the sum over wallets of their last new_balance (chain order) logged in that currency up to the end of the day';
COMMENT ON COLUMN calo_recon.daily_summary.arithmetic_breaks IS 'Arithmetic breaks of that day''s transactions (balance_breaks)';
COMMENT ON COLUMN calo_recon.daily_summary.chain_breaks IS 'Chain breaks of that day''s transactions';
COMMENT ON COLUMN calo_recon.daily_summary.conflicts IS 'Conflicting deliveries of that day''s transactions';
COMMENT ON COLUMN calo_recon.daily_summary.out_of_range IS 'Values too large or too precise to check exactly';
COMMENT ON COLUMN calo_recon.daily_summary.overdrafts IS 'Transactions that left a wallet below zero';
COMMENT ON COLUMN calo_recon.daily_summary.discrepancies IS 'Balance errors logged that day at or above the tolerance (discrepancies; those of users without a transaction have no currency and are not counted here)';
COMMENT ON COLUMN calo_recon.daily_summary.anomalies IS 'Rows of the anomalies view logged that day';

CREATE VIEW calo_recon.as_of AS
SELECT pg_catalog.max(r.finished_at) AS as_of,
       pg_catalog.max(r.run_id) AS run_id
FROM calo_recon.runs r
WHERE r.status = 'succeeded'
  AND r.run_id = (SELECT pg_catalog.max(s.run_id) FROM calo_recon.runs s WHERE s.status = 'succeeded');
COMMENT ON VIEW calo_recon.as_of IS
  'The time the reports are as of: the end of the last successful calo_recon.refresh() run (one row; NULLs before the first)';
COMMENT ON COLUMN calo_recon.as_of.as_of IS 'finished_at of the last succeeded run in calo_recon.runs';
COMMENT ON COLUMN calo_recon.as_of.run_id IS 'That run';
