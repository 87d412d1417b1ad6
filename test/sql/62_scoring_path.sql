-- The one scoring path (src/glue/score_glue.c): train_model() stores the scores
-- it computed for the threshold, score_transactions() gives the very same
-- scores and explanations for the same model, the scores equal the SQL
-- building blocks (scaler_transform, iforest_score) applied to the feature
-- view, exactly the flagged rows carry an explanation and an attribution,
-- and the bulk write refuses what it cannot honour.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

SELECT setseed(0.2525);
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('P%s', i), format('U%s', i % 25),
       CASE WHEN random() < 0.1 THEN NULL WHEN random() < 0.3 THEN 'CREDIT' ELSE 'DEBIT' END,
       'BHD', a, round(a * 0.1, 3), b, b - a,
       timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => floor(random() * 40 * 86400))
FROM (SELECT i, round((random() * CASE WHEN i % 97 = 0 THEN 5000 ELSE 60 END)::numeric, 3) AS a,
             round((random() * 900)::numeric, 2) AS b
      FROM generate_series(1, 1200) AS i) g;
SELECT (calo_recon.record_feedback('P194', 'confirmed')).verdict;

SELECT model_name, training_rows, parameters->>'excluded_confirmed' AS excluded
FROM calo_recon.train_model('path', 0.05, 60, 128, 7);

-- the stored scores are the building blocks' over the feature view, exactly
CREATE TEMP TABLE expected_scores AS
SELECT x.txn_id, x.score, x.score > m.threshold AS flagged
FROM calo_recon.models m,
     LATERAL (SELECT f.txn_id, z.z, calo_recon.iforest_score(m.forest, z.z) AS score
              FROM calo_recon.transaction_features f,
                   LATERAL (SELECT calo_recon.scaler_transform(m.scaler, f.features) AS z) z) x
WHERE m.active;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE s.score IS DISTINCT FROM e.score) AS score_differs,
       count(*) FILTER (WHERE s.flagged IS DISTINCT FROM e.flagged) AS flag_differs,
       count(*) FILTER (WHERE (s.explanation IS NOT NULL) IS DISTINCT FROM e.flagged
                           OR (s.attribution IS NOT NULL) IS DISTINCT FROM e.flagged) AS explanation_differs,
       count(*) FILTER (WHERE e.flagged) > 0 AS some_flagged
FROM expected_scores e
LEFT JOIN calo_recon.transaction_scores s
       ON s.txn_id = e.txn_id AND s.model_id = (SELECT model_id FROM calo_recon.models WHERE active);

-- the explanations train_model() stored, which every later path must repeat
CREATE TEMP TABLE first_explanations AS
SELECT s.txn_id, s.explanation, s.attribution FROM calo_recon.transaction_scores s
WHERE s.model_id = (SELECT model_id FROM calo_recon.models WHERE active);

-- the threshold is the (1 - contamination) quantile of the training rows' scores
SELECT m.threshold = (SELECT percentile_cont(1 - m.contamination) WITHIN GROUP (ORDER BY s.score)
                      FROM calo_recon.transaction_scores s
                      WHERE s.model_id = m.model_id
                        AND s.txn_id NOT IN (SELECT txn_id FROM calo_recon.anomaly_verdicts
                                             WHERE verdict = 'confirmed')) AS threshold_from_training_scores
FROM calo_recon.models m WHERE m.active;

-- scoring again with the same model stores the same scores
SELECT calo_recon.score_transactions(false) AS rescored;
SELECT count(*) FILTER (WHERE s.score IS DISTINCT FROM e.score OR s.flagged IS DISTINCT FROM e.flagged
                           OR s.explanation IS DISTINCT FROM x.explanation
                           OR s.attribution IS DISTINCT FROM x.attribution) AS differs,
       count(*) AS rows
FROM expected_scores e
JOIN first_explanations x USING (txn_id)
JOIN calo_recon.transaction_scores s
  ON s.txn_id = e.txn_id AND s.model_id = (SELECT model_id FROM calo_recon.models WHERE active);

-- model_scores(): the same scores for some users, not stored (the alerts' path)
SELECT count(*) AS rows,
       count(*) FILTER (WHERE ms.score IS DISTINCT FROM e.score OR ms.flagged IS DISTINCT FROM e.flagged
                           OR ms.explanation IS DISTINCT FROM x.explanation) AS differs,
       count(DISTINCT ms.user_id) AS users
FROM calo_recon.model_scores((SELECT model_id FROM calo_recon.models WHERE active), ARRAY['U3', 'U7', 'nobody']) ms
JOIN expected_scores e USING (txn_id)
JOIN first_explanations x USING (txn_id);
-- more than 1000 users: read in one sequential scan, the others' rows left out
SELECT count(*) AS rows,
       count(*) FILTER (WHERE ms.score IS DISTINCT FROM e.score OR ms.flagged IS DISTINCT FROM e.flagged
                           OR ms.explanation IS DISTINCT FROM x.explanation) AS differs,
       count(DISTINCT ms.user_id) AS users
FROM calo_recon.model_scores((SELECT model_id FROM calo_recon.models WHERE active),
                             ARRAY['U3', 'U7'] || ARRAY(SELECT 'nobody-' || g FROM generate_series(1, 1000) g)) ms
JOIN expected_scores e USING (txn_id)
JOIN first_explanations x USING (txn_id);
-- txn_ids: only those rows, with the scores and explanations the whole
-- users' rows have (the others still make their features); an id of
-- another user, NULL or unknown matches nothing; NULL txn_ids: every row
SELECT t.user_id AS flagged_user FROM calo_recon.transactions t JOIN expected_scores e USING (txn_id)
WHERE e.flagged ORDER BY t.txn_id LIMIT 1 \gset
CREATE TEMP TABLE some_ids AS
SELECT array_agg(t.txn_id ORDER BY t.txn_id) FILTER (WHERE t.txn_id::text LIKE '%3')
       || array_agg(t.txn_id ORDER BY t.txn_id) FILTER (WHERE e.flagged)
       || ARRAY[NULL, 'P2', 'unknown'] AS ids
FROM calo_recon.transactions t JOIN expected_scores e USING (txn_id)
WHERE t.user_id = :'flagged_user';
SELECT count(*) AS rows,
       count(*) = (SELECT count(DISTINCT u) FROM some_ids, unnest(ids) u
                   JOIN calo_recon.transactions t ON t.txn_id = u AND t.user_id IN (:'flagged_user', 'U7')) AS only_those,
       count(*) FILTER (WHERE ms.flagged) > 0 AS some_flagged,
       count(*) FILTER (WHERE ms.score IS DISTINCT FROM e.score OR ms.flagged IS DISTINCT FROM e.flagged
                           OR ms.explanation IS DISTINCT FROM x.explanation) AS differs
FROM some_ids, calo_recon.model_scores((SELECT model_id FROM calo_recon.models WHERE active),
                                       ARRAY[:'flagged_user', 'U7'], ids) ms
JOIN expected_scores e USING (txn_id)
JOIN first_explanations x USING (txn_id);
SELECT count(*) AS rows FROM calo_recon.model_scores((SELECT model_id FROM calo_recon.models WHERE active), ARRAY['U3'], '{}');
SELECT count(*) = (SELECT count(*) FROM calo_recon.transactions WHERE user_id = 'U3') AS every_row
FROM calo_recon.model_scores((SELECT model_id FROM calo_recon.models WHERE active), ARRAY['U3'], NULL);
SELECT count(*) AS rows FROM calo_recon.model_scores(NULL, ARRAY['U3']);
SELECT count(*) AS rows FROM calo_recon.model_scores((SELECT model_id FROM calo_recon.models WHERE active), NULL);
\set VERBOSITY sqlstate
SELECT * FROM calo_recon.model_scores(-1, ARRAY['U3']);
-- fit_and_score_model checks its parameters itself (it may be called directly)
SELECT calo_recon.fit_and_score_model(998, 0, 10, 32, 1);
SELECT calo_recon.fit_and_score_model(998, 'NaN', 10, 32, 1);
SELECT calo_recon.fit_and_score_model(998, 0.01, 0, 32, 1);
SELECT calo_recon.fit_and_score_model(998, 0.01, 10, 1, 1);
\set VERBOSITY default

-- only the new rows are scored
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('NEW-1', 'U3', 'DEBIT', 'BHD', 10, 1, 50, 41, '2024-03-01 10:00:00+00'),
       ('NEW-2', 'U-NEW', 'CREDIT', 'BHD', 7000, 700, 0, 6300, '2024-03-01 11:00:00+00');
SELECT calo_recon.score_transactions() AS scored_new;
SELECT calo_recon.score_transactions() AS nothing_left;
SELECT txn_id, flagged FROM calo_recon.transaction_scores
WHERE txn_id LIKE 'NEW-%' ORDER BY txn_id;

-- a trigger on transaction_scores would not fire in the bulk write: refused
BEGIN;
CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER watch AFTER INSERT ON calo_recon.transaction_scores
    FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
\set VERBOSITY sqlstate
SELECT calo_recon.score_transactions(false);
\set VERBOSITY default
ROLLBACK;

-- writing scores needs the right to insert them
SET client_min_messages = warning;
DROP ROLE IF EXISTS score_path_reader;
RESET client_min_messages;
CREATE ROLE score_path_reader;
GRANT USAGE ON SCHEMA calo_recon TO score_path_reader;
GRANT SELECT ON calo_recon.transactions, calo_recon.anomaly_verdicts, calo_recon.anomaly_feedback TO score_path_reader;
GRANT EXECUTE ON FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint, text, timestamptz, timestamptz),
                           calo_recon.model_scope(text) TO score_path_reader;
SET ROLE score_path_reader;
\set VERBOSITY sqlstate
SELECT calo_recon.fit_and_score_model(999, 0.05, 10, 32, 1);
\set VERBOSITY default
SELECT calo_recon.fit_and_score_model(999, 0.05, 10, 32, 1);
\set VERBOSITY default
RESET ROLE;
REVOKE ALL ON SCHEMA calo_recon FROM score_path_reader;
REVOKE ALL ON calo_recon.transactions, calo_recon.anomaly_verdicts, calo_recon.anomaly_feedback FROM score_path_reader;
REVOKE ALL ON FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint, text, timestamptz, timestamptz),
                       calo_recon.model_scope(text) FROM score_path_reader;
DROP ROLE score_path_reader;
