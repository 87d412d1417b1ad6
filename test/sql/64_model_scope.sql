-- Training that follows the business (issue 9 item 5): train_model() per
-- currency and on a window of logged_at, the registry's record of what each
-- model was trained on, the choice of the model that scores a row
-- (transaction_models: the currency's own active model, else the
-- all-currency one) in score_transactions(), the anomalies view and the
-- model alerts, and the retraining refresh() does on schedule.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET max_parallel_workers_per_gather = 0;

-- 40 users, 15 rows each over January 2024: U00-U19 in SAR, U20-U39 in BHD
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('M%s-%s', lpad(u::text, 2, '0'), lpad(k::text, 2, '0')), format('U%s', lpad(u::text, 2, '0')),
       'DEBIT', CASE WHEN u < 20 THEN 'SAR' ELSE 'BHD' END,
       a.amount, 0, 5000 - (k - 1) * a.amount, 5000 - k * a.amount,
       timestamptz '2024-01-01 00:00+00' + make_interval(days => k * 2 - 1, hours => (u * 7 + k * 5) % 24)
FROM generate_series(0, 39) AS u, generate_series(1, 15) AS k,
     LATERAL (SELECT CASE WHEN u < 20 THEN 20 + (u * 37 + k * 11) % 50 ELSE 2 + (u * 13 + k * 7) % 9 END::numeric AS amount) a;
RESET calo_recon.alerts;
SELECT currency, count(*) FROM calo_recon.transactions GROUP BY currency ORDER BY currency;

-- bad input
\set VERBOSITY sqlstate
SELECT calo_recon.train_model(currency => 'XYZ');
SELECT calo_recon.train_model(currency => '');
SELECT calo_recon.train_model(trained_from => '2024-01-10', trained_to => '2024-01-10');
SELECT calo_recon.train_model(trained_from => '2024-01-20', trained_to => '2024-01-10');
SELECT calo_recon.train_model(currency => 'USD');
SELECT calo_recon.train_model(trained_from => '2025-01-01');
SELECT calo_recon.train_model(NULL, currency => 'SAR');
SELECT * FROM calo_recon.fit_and_score_model(NULL, 0.01, 10, 16, 1, NULL, NULL, NULL);
SELECT * FROM calo_recon.fit_and_score_model(900, 0.01, 10, 16, 1, NULL, '2024-01-20', '2024-01-10');
\set VERBOSITY default
SELECT count(*) AS models_after_bad_input FROM calo_recon.models;

-- the window's rows only: [Jan 5, Jan 15) holds rows of days 5, 7, ..., 13
SELECT model_name, currency, trained_from, trained_to, training_rows, active,
       parameters ->> 'scope_rows' AS scope_rows
FROM calo_recon.train_model('window', 0.05, 50, 64, 11, NULL, '2024-01-05 00:00+00', '2024-01-15 00:00+00');
SELECT m.training_rows = (SELECT count(*) FROM calo_recon.transactions t
                          WHERE t.logged_at >= '2024-01-05 00:00+00' AND t.logged_at < '2024-01-15 00:00+00') AS trained_on_the_window,
       (calo_recon.scaler_info(m.scaler)).samples = m.training_rows AS scaler_saw_them_only,
       round(((calo_recon.scaler_to_json(m.scaler) -> 'mean' ->> 0)::float8)::numeric, 9)
         = (SELECT round(avg(f.features[1])::numeric, 9) FROM calo_recon.transaction_features f
            WHERE f.logged_at >= '2024-01-05 00:00+00' AND f.logged_at < '2024-01-15 00:00+00') AS mean_amount_of_the_window
FROM calo_recon.models m WHERE m.model_name = 'window';
-- ... and it scores every row of its scope, the window or not
SELECT count(*) AS scored FROM calo_recon.transaction_scores s JOIN calo_recon.models m USING (model_id)
WHERE m.model_name = 'window';

-- a model of every currency, then one of BHD: both active, one per scope
SELECT model_name, currency, training_rows, active FROM calo_recon.train_model('all', 0.05, 50, 64, 12);
SELECT model_name, currency, training_rows, active,
       parameters ->> 'scope_rows' AS scope_rows
FROM calo_recon.train_model('bhd', 0.05, 50, 64, 13, 'bhd');
SELECT model_name, currency, active FROM calo_recon.models ORDER BY model_id;
-- each row is scored by its currency's model, else the all-currency one
SELECT t.currency, m.model_name, count(*)
FROM calo_recon.transaction_models t JOIN calo_recon.models m USING (model_id)
GROUP BY 1, 2 ORDER BY 1, 2;
-- the BHD model scored the BHD rows, and only those
SELECT t.currency, count(*) FROM calo_recon.transaction_scores s
JOIN calo_recon.transactions t USING (txn_id) JOIN calo_recon.models m USING (model_id)
WHERE m.model_name = 'bhd' GROUP BY 1;
-- the anomalies view shows each row under the model that scores it
SELECT a.currency, a.model_name, count(*) FROM calo_recon.anomalies a
WHERE a.model_flag GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS rows_flagged_by_another_model
FROM calo_recon.anomalies a JOIN calo_recon.transaction_models tm USING (txn_id)
JOIN calo_recon.models m ON m.model_id = tm.model_id
WHERE a.model_name IS DISTINCT FROM m.model_name
   OR a.score IS DISTINCT FROM (SELECT s.score FROM calo_recon.transaction_scores s
                               WHERE s.txn_id = a.txn_id AND s.model_id = m.model_id);
-- a second active model in a scope is refused
\set VERBOSITY sqlstate
UPDATE calo_recon.models SET active = true WHERE model_name = 'window';
\set VERBOSITY default

-- new rows: the alert and score_transactions() use the model of the row's
-- currency; the spends are far above these users' habit
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('N-SAR', 'U03', 'DEBIT', 'SAR', 9000, 0, 4000, -5000, '2024-02-01 03:00+00'),
       ('N-BHD', 'U23', 'DEBIT', 'BHD', 900, 0, 4000, 3100, '2024-02-01 03:00+00');
SELECT txn_id, detail ->> 'model_name' AS model_name FROM calo_recon.alerts
WHERE alert_kind = 'model' ORDER BY txn_id;
SELECT calo_recon.score_transactions() AS scored;
SELECT s.txn_id, m.model_name, s.flagged FROM calo_recon.transaction_scores s JOIN calo_recon.models m USING (model_id)
WHERE s.txn_id LIKE 'N-%' ORDER BY 1, 2;
SELECT calo_recon.score_transactions() AS scored_again;

-- retraining the BHD scope replaces only the BHD model
SELECT model_name, currency, active FROM calo_recon.train_model('bhd', 0.05, 50, 64, 14, 'BHD');
SELECT model_name, currency, count(*) FILTER (WHERE active) AS active, count(*) AS models
FROM calo_recon.models GROUP BY 1, 2 ORDER BY 1, 2;
-- without a BHD model, BHD rows fall back to the all-currency one, which
-- scores those it has not scored (the new BHD row)
UPDATE calo_recon.models SET active = false WHERE currency = 'BHD';
SELECT calo_recon.score_transactions() AS scored_by_the_fallback;
SELECT m.model_name, count(*) FROM calo_recon.transaction_models tm JOIN calo_recon.models m USING (model_id)
WHERE tm.currency = 'BHD' GROUP BY 1;
UPDATE calo_recon.models SET active = true
WHERE model_id = (SELECT max(model_id) FROM calo_recon.models WHERE currency = 'BHD');

-- Scheduled retraining by refresh(): nothing is due by default
SELECT status, transactions, retrained FROM calo_recon.refresh('samples');
\set VERBOSITY sqlstate
SET calo_recon.retrain_after = -1;
SET calo_recon.retrain_after_transactions = -1;
\set VERBOSITY default
-- an active model older than calo_recon.retrain_after is trained again, once,
-- with its name, parameters and scope; the run records it
SET calo_recon.retrain_after = '30d';
UPDATE calo_recon.models SET trained_at = trained_at - interval '31 days' WHERE active AND currency IS NULL;
SELECT status, retrained FROM calo_recon.refresh('samples');
SELECT model_name, currency, active, contamination, parameters ->> 'n_trees' AS n_trees,
       parameters ->> 'sample_size' AS sample_size, parameters ->> 'seed_given' AS seed_given,
       training_rows = (SELECT count(*) FROM calo_recon.transactions) AS on_every_row
FROM calo_recon.models WHERE model_name = 'all' ORDER BY model_id;
SELECT status, retrained FROM calo_recon.refresh('samples');
SELECT model_name, count(*) AS models FROM calo_recon.models GROUP BY 1 ORDER BY 1;
-- after calo_recon.retrain_after_transactions new rows of its scope: the
-- BHD model (5 of the samples' rows are BHD, then 5 more)
RESET calo_recon.retrain_after;
SET calo_recon.retrain_after_transactions = 10;
SELECT status, retrained FROM calo_recon.refresh('samples');
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('L-BHD-%s', k), 'U24', 'DEBIT', 'BHD', 5, 0, 100, 95, timestamptz '2024-02-02 00:00+00' + make_interval(hours => k)
FROM generate_series(1, 5) k;
RESET calo_recon.alerts;
SELECT status, retrained FROM calo_recon.refresh('samples');
SELECT model_name, currency, active FROM calo_recon.models WHERE model_name = 'bhd' ORDER BY model_id;
SELECT status, retrained FROM calo_recon.refresh('samples');
RESET calo_recon.retrain_after_transactions;
-- a closed window keeps its length and moves to end with the scope's newest
-- transaction; an open one stays
SELECT model_name, currency, trained_from, trained_to
FROM calo_recon.train_model('sar', 0.05, 50, 64, 15, 'SAR', '2024-01-05 00:00+00', '2024-01-15 00:00+00');
SELECT model_name, currency, trained_from, trained_to
FROM calo_recon.train_model('bhd', 0.05, 50, 64, 16, 'BHD', '2024-01-05 00:00+00');
SET calo_recon.retrain_after = '30d';
UPDATE calo_recon.models SET trained_at = trained_at - interval '31 days' WHERE active AND currency IS NOT NULL;
SELECT status, retrained FROM calo_recon.refresh('samples');
SELECT model_name, currency, trained_from, trained_to,
       trained_from = (SELECT max(logged_at) - interval '10 days' FROM calo_recon.transactions WHERE currency = m.currency)
         AS ten_days_to_the_newest
FROM calo_recon.models m WHERE active AND currency IS NOT NULL ORDER BY currency;
RESET calo_recon.retrain_after;
SELECT run_id, status, retrained FROM calo_recon.runs ORDER BY run_id;

-- a model imported by hand whose feature names disagree with its scaler and
-- forest is refused when stored (23514), not when it scores (XX001)
\set VERBOSITY sqlstate
INSERT INTO calo_recon.models (model_name, features, scaler, forest, contamination, threshold, training_rows)
SELECT 'short names', m.features[1:3], m.scaler, m.forest, m.contamination, m.threshold, m.training_rows
FROM calo_recon.models m ORDER BY m.model_id LIMIT 1;
\set VERBOSITY default
SELECT calo_recon.model_shape_agrees(m.features, m.scaler, m.forest) AS trained_models_agree
FROM calo_recon.models m GROUP BY 1;
