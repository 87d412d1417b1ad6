-- The report totals (issue 10 item 7): user_summary, overdraft_episodes and
-- daily_summary read what reconcile() stored (calo_recon.store_report_totals)
-- plus the queued users live.  Each is compared here with its oracle, the
-- definition over every transaction it had before (kept below as plain SQL),
-- after ingest, out-of-order arrival, reconcile, refresh, purge, a replay,
-- an update and a delete; then a stored row is spoiled on purpose to show
-- that the comparison sees it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET calo_recon.alerts = off;

CREATE VIEW pg_temp.oracle_user_summary AS
-- One row per user and currency (money of two currencies never added up);
-- a user without transactions has one row without a currency.  Every
-- subquery is referenced once and groups by user_id, so the planner
-- inlines them and pushes a filter on user_id down to the user indexes
-- (one user's rows read that user's rows only).
WITH txn AS (
    SELECT t.user_id, t.currency,
           pg_catalog.count(*) AS transactions,
           pg_catalog.min(t.logged_at) AS first_logged_at,
           pg_catalog.max(t.logged_at) AS last_logged_at,
           (pg_catalog.array_agg(t.old_balance ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id)))[1] AS opening_balance,
           (pg_catalog.array_agg(t.new_balance ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC))[1] AS closing_balance,
           pg_catalog.count(*) FILTER (WHERE calo_recon.is_overdraft(t.new_balance)) AS overdrafts,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS credits_total,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE NOT calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS debits_total,
           coalesce(pg_catalog.sum(t.amount - t.vat) FILTER (
               WHERE calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS credits_net,
           coalesce(pg_catalog.sum(t.amount - t.vat) FILTER (
               WHERE NOT calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS debits_net,
           pg_catalog.sum(t.vat) AS vat_total
    FROM calo_recon.transactions t
    GROUP BY t.user_id, t.currency
),
latest AS (
    -- the currency of the user's latest transaction in chain order
    SELECT t.user_id,
           (pg_catalog.array_agg(t.currency ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC))[1] AS currency
    FROM calo_recon.transactions t
    GROUP BY t.user_id
),
findings AS (
    SELECT f.user_id, f.currency,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
    FROM calo_recon.reconciliation_findings f
    GROUP BY f.user_id, f.currency
),
disc AS (
    SELECT d.user_id, d.currency, pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d GROUP BY d.user_id, d.currency
),
rej AS (
    SELECT r.user_id, l.currency, pg_catalog.count(*) AS rejections
    FROM calo_recon.negative_balance_rejections r
    LEFT JOIN latest l ON l.user_id = r.user_id
    GROUP BY r.user_id, l.currency
),
users AS (
    SELECT t.user_id, t.currency FROM calo_recon.transactions t
    UNION SELECT o.user_id, NULL
    FROM (SELECT e.user_id FROM calo_recon.balance_errors e
          UNION SELECT n.user_id FROM calo_recon.negative_balance_rejections n) o
    WHERE NOT EXISTS (SELECT FROM calo_recon.transactions t WHERE t.user_id = o.user_id)
)
SELECT u.user_id,
       coalesce(x.transactions, 0) AS transactions,
       x.first_logged_at, x.last_logged_at, x.currency,
       calo_recon.round_money(x.closing_balance, cu.minor_unit) AS current_balance,
       coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(f.chain_breaks, 0) AS chain_breaks,
       coalesce(f.drift, 0) AS drift,
       coalesce(x.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(r.rejections, 0) AS rejections,
       calo_recon.round_money(coalesce(x.credits_total, 0), cu.minor_unit) AS credits_total,
       calo_recon.round_money(coalesce(x.debits_total, 0), cu.minor_unit) AS debits_total,
       calo_recon.round_money(x.opening_balance, cu.minor_unit) AS opening_balance,
       calo_recon.round_money(x.credits_net, cu.minor_unit) AS credits_net,
       calo_recon.round_money(x.debits_net, cu.minor_unit) AS debits_net,
       calo_recon.round_money(x.vat_total, cu.minor_unit) AS vat_total,
       pg_catalog.abs(x.closing_balance - (x.opening_balance + x.credits_net - x.debits_net))
           < calo_recon.tolerance(cu.minor_unit) AS reconciles,
       calo_recon.round_money(x.closing_balance - (x.opening_balance + x.credits_net - x.debits_net),
                              cu.minor_unit) AS reconcile_difference
FROM users u
LEFT JOIN txn x ON x.user_id = u.user_id AND x.currency = u.currency
LEFT JOIN calo_recon.currencies cu ON cu.code = x.currency
LEFT JOIN findings f ON f.user_id = u.user_id AND f.currency = u.currency
LEFT JOIN disc d ON d.user_id = u.user_id AND d.currency IS NOT DISTINCT FROM u.currency
LEFT JOIN rej r ON r.user_id = u.user_id AND r.currency IS NOT DISTINCT FROM u.currency;

CREATE VIEW pg_temp.oracle_overdraft_episodes AS
-- runs per user and currency: the user's rows in other currencies are left
-- out, so they neither continue nor end a run
WITH ordered AS (
    SELECT t.txn_id, t.user_id, t.currency, t.new_balance, t.logged_at,
           calo_recon.is_overdraft(t.new_balance) AS negative,
           pg_catalog.row_number() OVER w AS pos,
           pg_catalog.row_number() OVER (PARTITION BY t.user_id, t.currency, calo_recon.is_overdraft(t.new_balance)
               ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id)) AS pos_in_sign,
           pg_catalog.lead(t.logged_at) OVER w AS next_logged_at
    FROM calo_recon.transactions t
    WHERE t.user_id IN (SELECT o.user_id FROM calo_recon.transactions o
                        WHERE calo_recon.is_overdraft(o.new_balance))
    WINDOW w AS (PARTITION BY t.user_id, t.currency ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id))
),
runs AS (
    -- consecutive negative rows share pos - pos_in_sign
    SELECT o.*, o.pos - o.pos_in_sign AS run,
           calo_recon.round_money(o.new_balance, cu.minor_unit) AS shown_balance
    FROM ordered o
    LEFT JOIN calo_recon.currencies cu ON cu.code = o.currency
    WHERE o.negative
)
SELECT r.user_id, r.currency,
       pg_catalog.min(r.logged_at) AS started_at,
       (pg_catalog.array_agg(r.next_logged_at ORDER BY r.pos DESC))[1] AS ended_at,
       pg_catalog.min(r.shown_balance) AS lowest_balance,
       pg_catalog.count(*) AS transactions,
       (pg_catalog.array_agg(r.txn_id ORDER BY r.pos))[1] AS first_txn_id,
       (pg_catalog.array_agg(r.txn_id ORDER BY r.pos DESC))[1] AS last_txn_id
FROM runs r
GROUP BY r.user_id, r.currency, r.run;

CREATE VIEW pg_temp.oracle_daily_summary AS
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

-- rows of the view not in the oracle plus rows of the oracle not in the
-- view, compared as text (so a different scale counts too), per view
CREATE FUNCTION pg_temp.differences() RETURNS TABLE (view_name text, rows bigint, differences bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    FOREACH v IN ARRAY ARRAY['user_summary', 'overdraft_episodes', 'daily_summary'] LOOP
        view_name := v;
        EXECUTE format('SELECT count(*) FROM calo_recon.%I', v) INTO rows;
        EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM calo_recon.%1$I x EXCEPT ALL SELECT o::text FROM pg_temp.%2$I o)
                                              UNION ALL
                                              (SELECT o::text FROM pg_temp.%2$I o EXCEPT ALL SELECT x::text FROM calo_recon.%1$I x)) d',
                       v, 'oracle_' || v) INTO differences;
        RETURN NEXT;
    END LOOP;
END;
$$;
CREATE FUNCTION pg_temp.queued() RETURNS bigint
LANGUAGE sql AS $$ SELECT count(DISTINCT user_id) FROM calo_recon.pending_reconcile $$;

-- the sample export: ingest reconciles the users it touched
SELECT transactions, balance_errors, rejections FROM calo_recon.ingest_file('samples/balance-sync-logs');
SELECT pg_temp.queued() AS queued, (SELECT count(*) FROM calo_recon.user_totals) AS stored_users;
SELECT * FROM pg_temp.differences();

-- generated wallets: 5 currencies, legacy rows, overdraft runs, breaks,
-- float noise, a user in two currencies, several transactions a day;
-- inserted directly, so every user is queued and read live
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'G' || lpad(k::text, 3, '0') || '-' || u, 'gen-' || u,
       CASE WHEN (u + k) % 7 = 0 THEN NULL WHEN g.nb >= g.ob THEN 'CREDIT' ELSE 'DEBIT' END,
       'GEN', 'GEN', c.cur,
       abs(g.nb - g.ob) + CASE WHEN (u * 31 + k) % 53 = 0 THEN 1 ELSE 0 END
           + CASE WHEN k % 3 = 0 THEN round(abs(g.nb - g.ob) * 0.1, 2) ELSE 0 END,
       CASE WHEN k % 3 = 0 THEN round(abs(g.nb - g.ob) * 0.1, 2) ELSE 0 END,
       g.ob + CASE WHEN (u * 17 + k) % 41 = 0 THEN 2 ELSE 0 END,
       g.nb + CASE WHEN (u + k) % 13 = 0 THEN 0.0000000001 ELSE 0 END,
       timestamptz '2024-05-01 00:00:00+00' + k * interval '5 hours' + u * interval '1 minute'
FROM generate_series(0, 39) AS u
CROSS JOIN generate_series(0, 29) AS k
CROSS JOIN LATERAL (SELECT CASE WHEN u = 7 AND k >= 20 THEN 'SAR'
                                ELSE (ARRAY['BHD', 'SAR', 'JPY', 'KWD', 'XXX'])[u % 5 + 1] END AS cur) c
CROSS JOIN LATERAL (
    SELECT (abs(hashint8(u::bigint * 64 + k)) % 20000 - 4000) / 7.0 AS ob,
           (abs(hashint8(u::bigint * 64 + k + 1)) % 20000 - 4000) / 7.0 AS nb) g;
SELECT pg_temp.queued() AS queued;
SELECT * FROM pg_temp.differences();
SELECT users > 0 AS reconciled FROM calo_recon.reconcile_pending();
SELECT pg_temp.queued() AS queued, (SELECT count(*) FROM calo_recon.user_totals) AS stored_users,
       (SELECT count(*) FROM calo_recon.overdraft_episode_totals) AS stored_episodes;
SELECT * FROM pg_temp.differences();

-- out-of-order arrival: rows logged before and between reconciled ones,
-- one that ends an overdraft run, one that starts a new day; queued, read
-- live, then stored
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'L' || txn_id, user_id, 'CREDIT', currency, 1000, 0, new_balance, new_balance + 1000,
       logged_at + interval '1 second'
FROM calo_recon.transactions
WHERE txn_id IN ('G005-3', 'G012-8', 'G020-21', 'G029-30')
UNION ALL
SELECT 'E-early', 'gen-2', 'DEBIT', 'JPY', 5, 0, 0, -5, '2024-04-01 00:00:00+00';
SELECT pg_temp.queued() AS queued;
SELECT * FROM pg_temp.differences();
SELECT users FROM calo_recon.reconcile(ARRAY['gen-3', 'gen-8']);  -- part of the queue
SELECT pg_temp.queued() AS queued;
SELECT * FROM pg_temp.differences();
SELECT users FROM calo_recon.reconcile();  -- everyone
SELECT pg_temp.queued() AS queued;
SELECT * FROM pg_temp.differences();

-- refresh() (no new file: it reconciles what is queued), purge(), and a
-- replay of the sample export's text (duplicates only)
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('N1', 'new-user', 'CREDIT', 'BHD', 5.0005, 0, 0, 5.0005, '2024-05-02 10:00:00+00');
SELECT * FROM pg_temp.differences();
SELECT status, files, reconciled_users FROM calo_recon.refresh('samples/balance-sync-logs');
SELECT pg_temp.queued() AS queued;
SELECT * FROM pg_temp.differences();
SELECT purged FROM calo_recon.purge('0 days') ORDER BY purged;
SELECT * FROM pg_temp.differences();
SELECT events, transactions, repeated
FROM calo_recon.ingest_log(calo_recon.read_log_file(
    'samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2024-01-14-[$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz')
    || E'\n', 'replay');  -- the same events in another file
SELECT * FROM pg_temp.differences();

-- an update and a delete queue their users too
UPDATE calo_recon.transactions SET amount = amount + 3 WHERE txn_id = 'G010-4';
DELETE FROM calo_recon.transactions WHERE user_id = 'gen-9';
SELECT pg_temp.queued() AS queued;
SELECT * FROM pg_temp.differences();
SELECT users FROM calo_recon.reconcile_pending();
SELECT * FROM pg_temp.differences();

-- a currency's minor unit changes: the stored totals are exact, rounding
-- happens when read
UPDATE calo_recon.currencies SET minor_unit = 1 WHERE code = 'SAR';
SELECT * FROM pg_temp.differences();

-- a period's user_summary (export_reports, export_workbook): open, it is
-- user_summary itself (the projection is written twice; this keeps them one)
SELECT count(*) AS users,
       count(*) FILTER (WHERE NOT EXISTS (SELECT FROM calo_recon.user_summary s WHERE s::text = p::text)) AS differ
FROM calo_recon.user_summary_in(NULL, NULL) p;
-- a period that cuts the users' histories: opening is the old_balance of the
-- first transaction in it, closing the new_balance of its last, credits,
-- debits and VAT those within it; the check adds up where no break falls in
-- the period (gen-1), and shows the gap where one does (gen-15: an
-- arithmetic break, amount + 1; gen-8: a chain and an arithmetic break)
SELECT user_id, transactions, first_logged_at, last_logged_at, currency, opening_balance,
       credits_total, debits_total, credits_net, debits_net, vat_total, current_balance,
       arithmetic_breaks, chain_breaks, drift, overdrafts, reconciles, reconcile_difference
FROM calo_recon.user_summary_in('2024-05-03 00:00+00', '2024-05-05 00:00+00')
WHERE user_id IN ('gen-1', 'gen-15', 'gen-8')
ORDER BY user_id;
-- the same figures straight from the rows of the period
WITH p AS (
    SELECT t.*, row_number() OVER (PARTITION BY t.user_id ORDER BY t.logged_at, t.txn_id COLLATE "C") AS first_pos,
           row_number() OVER (PARTITION BY t.user_id ORDER BY t.logged_at DESC, t.txn_id COLLATE "C" DESC) AS last_pos
    FROM calo_recon.transactions t
    WHERE t.logged_at >= '2024-05-03 00:00+00' AND t.logged_at < '2024-05-05 00:00+00'
      AND t.user_id IN ('gen-1', 'gen-15', 'gen-8'))
SELECT user_id, count(*) AS transactions,
       round(max(old_balance) FILTER (WHERE first_pos = 1), 3) AS opening,
       round(sum(amount) FILTER (WHERE txn_type = 'CREDIT' OR (txn_type IS NULL AND new_balance >= old_balance)), 3) AS credits,
       round(max(new_balance) FILTER (WHERE last_pos = 1), 3) AS closing
FROM p GROUP BY user_id ORDER BY user_id;
-- only users with a transaction in the period; every user outside none
SELECT count(*) AS users_in_period,
       count(*) FILTER (WHERE transactions = 0) AS without_transactions
FROM calo_recon.user_summary_in('2024-05-03 00:00+00', '2024-05-05 00:00+00');
SELECT count(*) AS users_in_empty_period FROM calo_recon.user_summary_in('1999-01-01', '2000-01-01');
-- a period that does not end after it starts: 22023
SELECT * FROM calo_recon.user_summary_in('2024-05-05', '2024-05-03');

-- the comparison sees a stored row that is not updated: spoil one of each
-- table (what a reconcile() that forgot to store would leave)
BEGIN;
UPDATE calo_recon.user_totals SET credits_total = credits_total + 1 WHERE user_id = 'gen-4';
UPDATE calo_recon.overdraft_episode_totals SET transactions = transactions + 1
WHERE first_txn_id = (SELECT min(first_txn_id) FROM calo_recon.overdraft_episode_totals);
UPDATE calo_recon.day_totals SET vat = vat + 1 WHERE (currency, day) = (SELECT currency, min(day) FROM calo_recon.day_totals WHERE currency = 'BHD' GROUP BY currency);
SELECT * FROM pg_temp.differences();
ROLLBACK;
-- and a queued user is read live, not stored: the same spoiled row is not shown
BEGIN;
UPDATE calo_recon.user_totals SET credits_total = credits_total + 1 WHERE user_id = 'gen-4';
INSERT INTO calo_recon.pending_reconcile (user_id) VALUES ('gen-4');
SELECT * FROM pg_temp.differences();
ROLLBACK;

-- a value the exact math cannot hold (19 decimals): the figures it goes
-- into are NULL, never rounded, live and stored alike, and so is the day's
-- sum in day_totals; the other figures stay exact
BEGIN;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('R1', 'range-user', 'CREDIT', 'SAR', 0.0000000000000000001, 0, 0, 5, '2024-05-02 10:00+00'),
       ('R2', 'range-user', 'DEBIT', 'SAR', 1, 0, 5, 4, '2024-05-02 11:00+00');
SELECT transactions, credits_total, debits_total, vat_total, current_balance, reconciles
FROM calo_recon.user_summary WHERE user_id = 'range-user';
SELECT users FROM calo_recon.reconcile(ARRAY['range-user']);
SELECT transactions, credits_total, debits_total, vat_total, current_balance, reconciles
FROM calo_recon.user_summary WHERE user_id = 'range-user';
SELECT credits IS NULL AS credits_null, debits IS NULL AS debits_null
FROM calo_recon.day_totals WHERE currency = 'SAR' AND day = '2024-05-02';
ROLLBACK;

-- a user's rows in two currencies: a run is of one currency, the other
-- currency's rows neither continue nor end it (the JPY run ends at M3, the
-- BHD one is still open), each lowest rounded to its own minor unit, live
-- and stored
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('M1', 'mixed-user', 'DEBIT', 'JPY', 7, 0, 5, -2, '2024-05-03 10:00+00'),
       ('M2', 'mixed-user', 'DEBIT', 'BHD', 0.1234, 0, -2, -2.1234, '2024-05-03 11:00+00'),
       ('M3', 'mixed-user', 'CREDIT', 'JPY', 10, 0, -2.1234, 7.8766, '2024-05-03 12:00+00');
SELECT * FROM pg_temp.differences();
SELECT user_id, currency, started_at, ended_at, lowest_balance, transactions, first_txn_id, last_txn_id
FROM calo_recon.overdraft_episodes WHERE user_id = 'mixed-user' ORDER BY currency;
SELECT users FROM calo_recon.reconcile(ARRAY['mixed-user']);
SELECT currency, low_currency, run_currencies FROM calo_recon.overdraft_episode_totals
WHERE user_id = 'mixed-user' ORDER BY currency;
SELECT user_id, currency, started_at, ended_at, lowest_balance, transactions, first_txn_id, last_txn_id
FROM calo_recon.overdraft_episodes WHERE user_id = 'mixed-user' ORDER BY currency;
SELECT * FROM pg_temp.differences();

-- money of two currencies is never added up: one user_summary row per user
-- and currency, its opening, closing, credits and debits of that currency's
-- rows only (before, one row labelled KWD: credits 105 = 100 SAR + 5 KWD,
-- the SAR opening, a difference of -70), the chain break at the change of
-- currency counted in the currency of its row; a discrepancy in the
-- currency the discrepancies view gives it (its transaction's, else the
-- user's latest), a rejection (no transaction) in that of the user's latest
UPDATE calo_recon.currencies SET minor_unit = 2 WHERE code = 'SAR';
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('m1', 'multi', 'CREDIT', 'SAR', 100, 0, 0, 100, '2024-01-01 10:00Z'),
       ('m2', 'multi', 'DEBIT', 'SAR', 30, 0, 100, 70, '2024-01-01 11:00Z'),
       ('m3', 'multi', 'CREDIT', 'KWD', 5, 0, 0, 5, '2024-01-02 10:00Z'),
       ('m4', 'multi', 'DEBIT', 'KWD', 1, 0, 5, 4, '2024-01-02 11:00Z'),
       ('o1', 'ovm', 'DEBIT', 'SAR', 50, 0, 0, -50, '2024-01-03 10:00Z'),
       ('o2', 'ovm', 'DEBIT', 'KWD', 2, 0, 0, -2, '2024-01-03 11:00Z'),
       ('o3', 'ovm', 'CREDIT', 'KWD', 10, 0, -2, 8, '2024-01-03 12:00Z');
INSERT INTO calo_recon.negative_balance_rejections (txn_id, user_id, current_balance, logged_at)
VALUES ('m5', 'multi', 4, '2024-01-02 12:00Z');
INSERT INTO calo_recon.balance_errors (user_id, subscription_balance, payment_balance, logged_at, txn_id)
VALUES ('multi', 10, 4, '2024-01-02 12:00Z', NULL),  -- KWD, the latest
       ('multi', 80, 70, '2024-01-01 11:00Z', 'm2');  -- SAR, its transaction's
SELECT * FROM pg_temp.differences();
SELECT users FROM calo_recon.reconcile(ARRAY['multi', 'ovm']);
SELECT user_id, currency, transactions, opening_balance, credits_total, debits_total, current_balance,
       reconcile_difference, chain_breaks, overdrafts, discrepancies, rejections
FROM calo_recon.user_summary WHERE user_id IN ('multi', 'ovm') ORDER BY user_id, currency;
SELECT user_id, currency, transactions, opening_balance, credits_total, current_balance, rejections
FROM calo_recon.user_summary_in('2024-01-01', '2024-01-02') WHERE user_id = 'multi';
SELECT user_id, currency, started_at, ended_at, lowest_balance, transactions, first_txn_id, last_txn_id
FROM calo_recon.overdraft_episodes WHERE user_id = 'ovm' ORDER BY currency;
SELECT * FROM pg_temp.differences();
