-- Synthetic wallet transactions for the reconciliation benchmark.
-- :users users x :per_user transactions each, interleaved in time like a
-- real log (all users' k-th transactions before anyone's k+1-th).
-- Balances chain exactly: the k-th transaction of user u goes from g(u, k)
-- to g(u, k + 1), so every row is computed on its own (no window needed).
-- Injected: ~0.15 % arithmetic breaks (amount + 1), ~0.15 % chain breaks
-- (old_balance moved by 2, amount adjusted so the row itself adds up),
-- ~0.3 % drift (new_balance + 1e-10); ~5 % negative balances; 10 % legacy rows.
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat,
     old_balance, new_balance, logged_at, source_file)
SELECT 'B' || lpad(k::text, 4, '0') || lpad(u::text, 21, '0'),
       md5(u::text)::uuid::text,
       CASE WHEN legacy THEN NULL WHEN credit THEN 'CREDIT' ELSE 'DEBIT' END,
       CASE WHEN credit THEN 'PAYMENT' ELSE 'MANUAL_DEDUCTION' END,
       CASE WHEN credit THEN 'RENEW_SUBSCRIPTION' ELSE 'DELIVERY_DEDUCTION' END,
       cur,
       net + vat + CASE WHEN inject < 15 THEN 1 WHEN inject < 30 THEN 2 ELSE 0 END,
       vat,
       ob + CASE WHEN inject >= 15 AND inject < 30 THEN CASE WHEN credit THEN -2 ELSE 2 END ELSE 0 END,
       nb + CASE WHEN inject >= 30 AND inject < 60 THEN 0.0000000001 ELSE 0 END,
       timestamptz '2024-01-01 00:00:00+00' + k * interval '1 hour' + u * interval '1 millisecond',
       'bench'
FROM generate_series(0, :per_user - 1) AS k
CROSS JOIN generate_series(0, :users - 1) AS u
CROSS JOIN LATERAL (
    SELECT (ARRAY['BHD', 'SAR', 'AED', 'KWD', 'QAR'])[u % 5 + 1] AS cur,
           CASE WHEN u % 5 IN (0, 3) THEN 0.001 ELSE 0.01 END AS unit) c
CROSS JOIN LATERAL (
    SELECT (abs(hashint8(u::bigint * 64 + k)) % 2000000 - 100000) * c.unit AS ob,
           (abs(hashint8(u::bigint * 64 + k + 1)) % 2000000 - 100000) * c.unit AS nb,
           abs(hashint8(u::bigint * 64 + k + 7777777)) % 10000 AS inject,
           (u + k) % 10 = 0 AS legacy) g
CROSS JOIN LATERAL (SELECT g.nb >= g.ob AS credit, abs(g.nb - g.ob) AS net) d
CROSS JOIN LATERAL (
    SELECT CASE WHEN k % 3 = 0 THEN round(d.net * 0.1, CASE WHEN c.unit = 0.001 THEN 3 ELSE 2 END)
                ELSE 0 END AS vat) v
ORDER BY k, u;
