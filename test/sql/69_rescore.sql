-- Stored scores follow the rows they were computed from: a transaction's
-- features depend on the user's earlier rows in chain order, so an UPDATE,
-- a DELETE or a row that arrives late (logged before rows already scored)
-- changes the scores of the user's later rows.  score_transactions() scores
-- those again (the rescore queue, calo_recon.pending_rescore): afterwards
-- every stored score of an active model is what model_scores() gives for the
-- row now, while an append in chain order scores nothing but the new rows.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET max_parallel_workers_per_gather = 0;
SET calo_recon.alerts = off;

-- scores of active models that the current rows would not give (another
-- score, flag or explanation, or a row that is no longer the user's)
CREATE TEMP VIEW stale_scores AS
WITH stored AS (
    SELECT s.* FROM calo_recon.transaction_scores s
    JOIN calo_recon.models m ON m.model_id = s.model_id AND m.active
), fresh AS (
    SELECT p.model_id, f.*
    FROM (SELECT DISTINCT st.model_id, st.user_id FROM stored st) p
    CROSS JOIN LATERAL calo_recon.model_scores(p.model_id, ARRAY[p.user_id]) f
)
SELECT s.txn_id, s.user_id, s.flagged, f.flagged AS flagged_now, s.explanation,
       f.explanation AS explanation_now, f.txn_id IS NULL AS gone
FROM stored s
LEFT JOIN fresh f ON f.model_id = s.model_id AND f.txn_id = s.txn_id AND f.user_id = s.user_id
WHERE f.txn_id IS NULL OR f.score <> s.score OR f.flagged <> s.flagged
   OR f.explanation IS DISTINCT FROM s.explanation;
-- rows their active model has not scored
CREATE TEMP VIEW unscored AS
SELECT a.txn_id FROM calo_recon.transaction_models a
LEFT JOIN calo_recon.transaction_scores s ON s.model_id = a.model_id AND s.txn_id = a.txn_id
WHERE a.model_id IS NOT NULL AND s.txn_id IS NULL;
CREATE TEMP VIEW check_scores AS
SELECT (SELECT count(*) FROM stale_scores) AS stale,
       (SELECT count(*) FROM unscored) AS unscored,
       (SELECT count(*) FROM calo_recon.pending_rescore) AS queued;

-- background users, so that the model has something to learn from
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('B%s-%s', lpad(u::text, 2, '0'), lpad(k::text, 2, '0')), format('bg-%s', lpad(u::text, 2, '0')),
       'DEBIT', 'SAR', a.amount, 0, 9000 - (k - 1) * a.amount, 9000 - k * a.amount,
       timestamptz '2024-03-01 00:00+00' + make_interval(days => k, hours => (u * 3 + k) % 24)
FROM generate_series(0, 19) AS u, generate_series(1, 12) AS k,
     LATERAL (SELECT (5 + (u * 17 + k * 13) % 40)::numeric AS amount) a;
-- three users of 12 debits of 10 SAR a day apart
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('%s_%s', u, lpad(k::text, 2, '0')), u, 'DEBIT', 'SAR', 10, 0, 1000 - (k - 1) * 10, 1000 - k * 10,
       timestamptz '2024-03-01 09:00+00' + make_interval(days => k)
FROM unnest(ARRAY['h', 'l', 'd']) AS u, generate_series(1, 12) AS k;
-- h: then a debit of 1e80; d: then three debits ten minutes apart
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('h_big', 'h', 'DEBIT', 'SAR', 1e80, 0, 880, 880 - 1e80, '2024-03-14 09:00+00'),
       ('d_13', 'd', 'DEBIT', 'SAR', 10, 0, 880, 870, '2024-03-14 09:00+00'),
       ('d_14', 'd', 'DEBIT', 'SAR', 25, 0, 870, 845, '2024-03-14 09:10+00'),
       ('d_15', 'd', 'DEBIT', 'SAR', 10, 0, 845, 835, '2024-03-14 09:20+00');
-- train_model() works the queue of the loads before it and scores the rows
-- as they are: the scoring after it has nothing to score again
SELECT count(*) > 0 AS queued FROM calo_recon.pending_rescore;
SELECT model_name, currency FROM calo_recon.train_model('sar', 0.05, 50, 256, 7, 'SAR');
SELECT count(*) AS queued FROM calo_recon.pending_rescore;
SELECT calo_recon.score_transactions() AS scored;
SELECT * FROM check_scores;
SELECT txn_id, model_flag, explanation FROM calo_recon.anomalies WHERE txn_id = 'h_big';

-- 1. UPDATE: h_big becomes an ordinary debit; its score, flag and
--    explanation are those of the row now
UPDATE calo_recon.transactions SET amount = 10, new_balance = 870 WHERE txn_id = 'h_big';
SELECT * FROM check_scores;
SELECT calo_recon.score_transactions() AS scored;
SELECT * FROM check_scores;
SELECT count(*) AS h_big_in_anomalies FROM calo_recon.anomalies WHERE txn_id = 'h_big';
-- an update of what no score reads (the metadata, the balances of a typed
-- row) queues nothing
UPDATE calo_recon.transactions SET metadata = '{"note": "checked"}', new_balance = new_balance + 1 WHERE user_id = 'h';
UPDATE calo_recon.transactions SET new_balance = new_balance - 1 WHERE user_id = 'h';
SELECT count(*) AS queued FROM calo_recon.pending_rescore;
-- a row moved to another user: scored as that user's, the old score gone
UPDATE calo_recon.transactions SET user_id = 'l' WHERE txn_id = 'h_12';
SELECT calo_recon.score_transactions() AS scored;
SELECT * FROM check_scores;
SELECT txn_id, user_id FROM calo_recon.transaction_scores WHERE txn_id = 'h_12';

-- 2. a row that arrives late, a second before l_06 with the same amount
--    (l_06 now repeats it): the scores of l's rows from it on change
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('l_late', 'l', 'DEBIT', 'SAR', 10, 0, 950, 940, '2024-03-07 08:59:59+00');
SELECT * FROM check_scores;
SELECT calo_recon.score_transactions() AS scored;
SELECT * FROM check_scores;

-- 3. DELETE: without d_14, d_15 repeats d_13 ten minutes later (a double
--    charge); d_14's score goes with it
DELETE FROM calo_recon.transactions WHERE txn_id = 'd_14';
SELECT * FROM check_scores;
SELECT calo_recon.score_transactions() AS scored;
SELECT * FROM check_scores;
SELECT count(*) AS d_14_scores FROM calo_recon.transaction_scores WHERE txn_id = 'd_14';

-- 4. an append in chain order (after every scored row of its users, and a
--    new user) scores the new rows and nothing else: no stored score is
--    rewritten
CREATE TEMP TABLE before AS SELECT s.model_id, s.txn_id, s.xmin::text AS x FROM calo_recon.transaction_scores s;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('h_new', 'h', 'DEBIT', 'SAR', 10, 0, 880, 870, '2024-03-20 09:00+00'),
       ('d_new', 'd', 'DEBIT', 'SAR', 10, 0, 835, 825, '2024-03-20 09:00+00'),
       ('n_1', 'n', 'CREDIT', 'SAR', 100, 0, 0, 100, '2024-03-20 09:00+00');
SELECT calo_recon.score_transactions() AS scored;
SELECT * FROM check_scores;
SELECT count(*) FILTER (WHERE s.txn_id IS NULL) AS gone,
       count(*) FILTER (WHERE s.xmin::text <> b.x) AS rewritten
FROM before b
LEFT JOIN calo_recon.transaction_scores s ON s.model_id = b.model_id AND s.txn_id = b.txn_id;

-- refresh() scores through score_transactions(): an update, then a run
-- (which ingests the samples: their rows are scored too)
UPDATE calo_recon.transactions SET amount = 1e80, new_balance = 880 - 1e80 WHERE txn_id = 'h_new';
SELECT status, transactions, scored FROM calo_recon.refresh('samples');
SELECT * FROM check_scores;
SELECT txn_id, model_flag FROM calo_recon.anomalies WHERE txn_id = 'h_new';

-- scoring everything again drains the queue too
UPDATE calo_recon.transactions SET amount = 10, new_balance = 870 WHERE txn_id = 'h_new';
SELECT calo_recon.score_transactions(false) > 0 AS scored_all;
SELECT * FROM check_scores;

-- without an active model the queue is emptied: there is no score to fix
UPDATE calo_recon.models SET active = false;
DELETE FROM calo_recon.transactions WHERE txn_id = 'n_1';
SELECT count(*) AS queued FROM calo_recon.pending_rescore;
SELECT calo_recon.score_transactions() AS scored;
SELECT count(*) AS queued FROM calo_recon.pending_rescore;

-- TRUNCATE of the transactions empties the scores and the queue with them
UPDATE calo_recon.models SET active = true;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('n_2', 'n', 'CREDIT', 'SAR', 100, 0, 0, 100, '2024-03-21 09:00+00');
TRUNCATE calo_recon.transactions;
SELECT (SELECT count(*) FROM calo_recon.transaction_scores) AS scores,
       (SELECT count(*) FROM calo_recon.pending_rescore) AS queued;
-- a txn_id stored again under another user is scored as that user's
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('h_big', 'someone', 'DEBIT', 'SAR', 10, 0, 100, 90, '2024-03-21 09:00+00');
SELECT calo_recon.score_transactions() AS scored;
SELECT * FROM check_scores;
