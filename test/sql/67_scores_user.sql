-- The scores carry the user of the scored transaction (issue 13: so that
-- they can be distributed by user beside the transactions on a Citus
-- cluster): train_model(), score_transactions() of new rows and of all rows
-- write it, and a score without one is refused.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET max_parallel_workers_per_gather = 0;

SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('S%s-%s', lpad(u::text, 2, '0'), lpad(k::text, 2, '0')), format('owner-%s', lpad(u::text, 2, '0')),
       'DEBIT', CASE WHEN u % 2 = 0 THEN 'SAR' ELSE 'BHD' END, a.amount, 0,
       9000 - (k - 1) * a.amount, 9000 - k * a.amount,
       timestamptz '2024-03-01 00:00+00' + make_interval(days => k, hours => (u * 3 + k) % 24)
FROM generate_series(0, 19) AS u, generate_series(1, 12) AS k,
     LATERAL (SELECT (5 + (u * 17 + k * 13) % 40)::numeric AS amount) a;
RESET calo_recon.alerts;

-- every score names the user of its transaction, under every model
CREATE TEMP VIEW scores_check AS
SELECT count(*) AS scores,
       count(*) FILTER (WHERE t.user_id IS NOT DISTINCT FROM s.user_id) AS with_its_user
FROM calo_recon.transaction_scores s
LEFT JOIN calo_recon.transactions t ON t.txn_id = s.txn_id;

SELECT model_name, currency FROM calo_recon.train_model('all', 0.05, 30, 64, 31);
SELECT model_name, currency FROM calo_recon.train_model('sar', 0.05, 30, 64, 32, 'SAR');
SELECT * FROM scores_check;

-- new rows scored by score_transactions(), then all of them again
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('S-NEW-1', 'owner-new', 'CREDIT', 'SAR', 50, 0, 0, 50, '2024-03-20 10:00+00'),
       ('S-NEW-2', 'owner-new', 'DEBIT', 'SAR', 20, 0, 50, 30, '2024-03-20 11:00+00');
RESET calo_recon.alerts;
SELECT calo_recon.score_transactions() AS scored_new;
SELECT * FROM scores_check;
SELECT s.txn_id, s.user_id, m.model_name FROM calo_recon.transaction_scores s
JOIN calo_recon.models m USING (model_id) WHERE s.txn_id LIKE 'S-NEW-%' ORDER BY 1, 3;
SELECT calo_recon.score_transactions(false) AS scored_all;
SELECT * FROM scores_check;

-- a score without its user is refused
\set VERBOSITY sqlstate
INSERT INTO calo_recon.transaction_scores (txn_id, model_id, score, flagged)
SELECT 'S-NEW-1', m.model_id, 0.5, false FROM calo_recon.models m WHERE m.model_name = 'all';
\set VERBOSITY default
