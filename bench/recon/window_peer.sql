-- The best plain-SQL equivalent of calo_recon.reconcile() for all users:
-- one window pass (lag of new_balance in chain order), the arithmetic rule,
-- the tolerance from calo_recon.currencies, both checks of a row produced
-- from the same pass, first_break by a second window over the findings
-- only; written into a table like reconcile() writes its findings.
INSERT INTO bench_peer_findings
    (txn_id, user_id, finding, expected, actual, difference, tolerance, currency, logged_at, first_break)
SELECT f.txn_id, f.user_id, f.finding, f.expected, f.actual, f.difference, f.tolerance,
       f.currency, f.logged_at,
       f.is_break AND pg_catalog.row_number() OVER (PARTITION BY f.user_id, f.is_break
           ORDER BY f.logged_at, f.txn_id COLLATE "C", f.ord) = 1
FROM (
    SELECT w.txn_id, w.user_id, w.currency, w.logged_at, w.tolerance, x.ord,
           x.expected, x.actual, x.difference,
           CASE WHEN abs(x.difference) >= w.tolerance THEN x.break_kind ELSE x.drift_kind END AS finding,
           abs(x.difference) >= w.tolerance AS is_break
    FROM (
        SELECT t.txn_id, t.user_id, t.currency, t.logged_at, t.old_balance, t.new_balance,
               CASE WHEN t.txn_type = 'CREDIT' OR (t.txn_type IS NULL AND t.new_balance >= t.old_balance)
                    THEN t.old_balance + (t.amount - t.vat)
                    ELSE t.old_balance - (t.amount - t.vat) END AS expected_new,
               pg_catalog.lag(t.new_balance) OVER (PARTITION BY t.user_id
                   ORDER BY t.logged_at, t.txn_id COLLATE "C") AS prev_new,
               pg_catalog.trim_scale(0.5 / 10::numeric ^ coalesce(cu.minor_unit, 2)) AS tolerance
        FROM calo_recon.transactions t
        LEFT JOIN calo_recon.currencies cu ON cu.code = t.currency
    ) w
    CROSS JOIN LATERAL (VALUES
        (1, 'chain', 'chain_drift', w.prev_new, w.old_balance, w.old_balance - w.prev_new),
        (2, 'arithmetic', 'drift', w.expected_new, w.new_balance, w.new_balance - w.expected_new)
    ) AS x(ord, break_kind, drift_kind, expected, actual, difference)
    WHERE x.difference <> 0
) f;
