-- The backend's cache of decoded forests (src/glue/forest_cache_glue.c) is
-- keyed by the stored bytes: a forest replaced under the same model id, or
-- put back by a rollback, is scored with what is stored now; and a statement
-- that scores with more models than the cache holds scores each with its own.
-- Every check compares the stored scores with the SQL building blocks
-- (scaler_transform, iforest_score) over the feature view, which decode the
-- forest themselves.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

SELECT setseed(0.6565);
-- ten currencies, more than the cache's eight entries
CREATE TEMP TABLE codes AS
SELECT c.code, row_number() OVER (ORDER BY c.code) - 1 AS k
FROM unnest(ARRAY['AED', 'BHD', 'EUR', 'GBP', 'JPY', 'KWD', 'OMR', 'QAR', 'SAR', 'USD']) AS c (code);
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('F%s', i), format('U%s', i % 40), 'DEBIT', c.code, a, 0, 1000, 1000 - a,
       timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => floor(random() * 40 * 86400))
FROM (SELECT i, round((random() * CASE WHEN i % 97 = 0 THEN 5000 ELSE 60 END)::numeric) AS a
      FROM generate_series(1, 2000) AS i) g
JOIN codes c ON c.k = g.i % 10;

CREATE TEMP VIEW score_mismatches AS
SELECT count(*) AS rows,
       count(*) FILTER (WHERE s.score IS DISTINCT FROM x.score) AS score_differs,
       count(*) FILTER (WHERE s.flagged IS DISTINCT FROM (x.score > m.threshold)) AS flag_differs
FROM calo_recon.transaction_models t
JOIN calo_recon.models m ON m.model_id = t.model_id
JOIN calo_recon.transaction_features f ON f.txn_id = t.txn_id
CROSS JOIN LATERAL (SELECT calo_recon.iforest_score(m.forest,
                               calo_recon.scaler_transform(m.scaler, f.features)) AS score) x
LEFT JOIN calo_recon.transaction_scores s ON s.txn_id = t.txn_id AND s.model_id = t.model_id;

-- one model for every currency: train, then score with all of them in one
-- statement (ten forests, eight cache entries)
SELECT count(*) AS models
FROM codes c, LATERAL calo_recon.train_model('cache', 0.05, 30, 64, 100 + c.k, c.code) m;
SELECT calo_recon.score_transactions(false) > 0 AS rescored;
SELECT * FROM score_mismatches;
-- and again, now that the cache holds some of them from an earlier statement
SELECT calo_recon.score_transactions(false) > 0 AS rescored;
SELECT * FROM score_mismatches;

-- two models from here on, both held by the cache after this scoring
UPDATE calo_recon.models SET active = false WHERE currency NOT IN ('SAR', 'USD');
SELECT calo_recon.score_transactions(false) > 0 AS rescored;
SELECT * FROM score_mismatches;

-- a forest replaced under the same model id is scored as stored now: the
-- SAR forest mirrored (each tree's root split negated), as long as before
-- but other bytes, so neither the id nor the length tells them apart
CREATE TEMP TABLE saved AS
SELECT m.model_id, m.forest, m.threshold FROM calo_recon.models m WHERE m.currency = 'SAR' AND m.active;
UPDATE calo_recon.models m
SET forest = calo_recon.iforest_from_json(pg_catalog.jsonb_set(j.j, '{trees}',
        (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_set(t, '{threshold,0}',
                    pg_catalog.to_jsonb(-(t->'threshold'->>0)::float8)) ORDER BY n)
         FROM pg_catalog.jsonb_array_elements(j.j->'trees') WITH ORDINALITY AS e (t, n))))
FROM saved s, LATERAL (SELECT calo_recon.iforest_to_json(s.forest) AS j) j
WHERE m.model_id = s.model_id;
SELECT length(calo_recon.iforest_to_bytea(m.forest)) = length(calo_recon.iforest_to_bytea(s.forest)) AS same_length,
       calo_recon.iforest_to_bytea(m.forest) <> calo_recon.iforest_to_bytea(s.forest) AS other_bytes
FROM calo_recon.models m JOIN saved s ON s.model_id = m.model_id;
SELECT calo_recon.score_transactions(false) > 0 AS rescored;
SELECT * FROM score_mismatches;

-- and a rollback puts the old forest back for this backend too
BEGIN;
UPDATE calo_recon.models m SET forest = s.forest, threshold = s.threshold
FROM saved s WHERE m.model_id = s.model_id;
SELECT calo_recon.score_transactions(false) > 0 AS rescored;
SELECT * FROM score_mismatches;
ROLLBACK;
SELECT calo_recon.score_transactions(false) > 0 AS rescored;
SELECT * FROM score_mismatches;
SELECT m.forest::text <> s.forest::text AS mirrored_again
FROM calo_recon.models m JOIN saved s ON s.model_id = m.model_id;

-- a one-row insert's model alert scores with the forest stored now
SET calo_recon.alerts = on;
UPDATE calo_recon.models m SET forest = s.forest, threshold = s.threshold
FROM saved s WHERE m.model_id = s.model_id;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('F-new', 'U1', 'DEBIT', 'SAR', 4999, 0, 10000, 5001, '2024-02-15 03:00:00+00');
SELECT x.score > m.threshold AS flagged,
       (a.detail->>'score')::float8 = x.score AS alert_has_the_score
FROM calo_recon.models m
JOIN calo_recon.transaction_features f ON f.txn_id = 'F-new'
CROSS JOIN LATERAL (SELECT calo_recon.iforest_score(m.forest,
                               calo_recon.scaler_transform(m.scaler, f.features)) AS score) x
LEFT JOIN calo_recon.alerts a ON a.txn_id = 'F-new' AND a.alert_kind = 'model'
WHERE m.currency = 'SAR' AND m.active;
SELECT calo_recon.score_transactions(false) > 0 AS rescored;
SELECT * FROM score_mismatches;
