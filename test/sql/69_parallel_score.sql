-- Scoring with parallel workers (src/glue/parallel_score_glue.c): train_model()
-- and score_transactions() scored by workers alone (the leader kept out)
-- store the scores of the SQL building blocks (scaler_transform,
-- iforest_score) over the feature view, exactly, as the serial scorer does;
-- max_parallel_workers_per_gather = 0 keeps the scoring serial.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

SELECT setseed(0.6969);
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('Q%s', i), format('U%s', i % 40), 'DEBIT', 'BHD', a, round(a * 0.1, 3), b, b - a,
       timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => floor(random() * 40 * 86400))
FROM (SELECT i, round((random() * CASE WHEN i % 89 = 0 THEN 4000 ELSE 50 END)::numeric, 3) AS a,
             round((random() * 900)::numeric, 2) AS b
      FROM generate_series(1, 9000) AS i) g;

-- workers for any number of rows, and the leader only waits for them
SET force_parallel_mode = on;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SET client_min_messages = debug1;
SELECT model_name, training_rows FROM calo_recon.train_model('parallel', 0.02, 60, 128, 11);
SELECT calo_recon.score_transactions(false) AS rescored;
RESET client_min_messages;

CREATE TEMP TABLE expected_scores AS
SELECT x.txn_id, x.score, x.score > m.threshold AS flagged
FROM calo_recon.models m,
     LATERAL (SELECT f.txn_id, calo_recon.iforest_score(m.forest, calo_recon.scaler_transform(m.scaler, f.features)) AS score
              FROM calo_recon.transaction_features f) x
WHERE m.active;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE s.score IS DISTINCT FROM e.score) AS score_differs,
       count(*) FILTER (WHERE s.flagged IS DISTINCT FROM e.flagged) AS flag_differs,
       count(*) FILTER (WHERE e.flagged) > 0 AS some_flagged
FROM expected_scores e
LEFT JOIN calo_recon.transaction_scores s ON s.txn_id = e.txn_id;

-- no workers allowed: the serial scorer, no parallel message, the same scores
SET max_parallel_workers_per_gather = 0;
SET client_min_messages = debug1;
SELECT calo_recon.score_transactions(false) AS rescored_serially;
RESET client_min_messages;
SELECT count(*) FILTER (WHERE s.score IS DISTINCT FROM e.score) AS score_differs
FROM expected_scores e
LEFT JOIN calo_recon.transaction_scores s ON s.txn_id = e.txn_id;

RESET force_parallel_mode;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
