-- Anomaly registry, scores, feedback and views: structure, comments,
-- privileges and the one-active-model rule.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(52);

SELECT has_table('calo_recon', 'models', 'model registry exists');
SELECT col_is_pk('calo_recon', 'models', 'model_id', 'models.model_id is the key');
SELECT columns_are('calo_recon', 'models',
    ARRAY['model_id', 'model_name', 'features', 'scaler', 'forest', 'contamination',
          'threshold', 'trained_at', 'training_rows', 'parameters', 'active', 'currency', 'trained_from', 'trained_to'],
    'models has the registry columns');
SELECT col_type_is('calo_recon', 'models', 'scaler', 'calo_recon.scaler', 'models.scaler is a scaler');
SELECT col_type_is('calo_recon', 'models', 'forest', 'calo_recon.iforest', 'models.forest is an iforest');
SELECT col_type_is('calo_recon', 'models', 'features', 'text[]', 'models.features holds names');
SELECT col_type_is('calo_recon', 'models', 'parameters', 'jsonb', 'models.parameters is jsonb');
SELECT index_is_unique('calo_recon', 'models', 'models_one_active_per_currency_idx', 'one active model per currency scope');
SELECT col_type_is('calo_recon', 'models', 'trained_from', 'timestamp with time zone', 'models.trained_from is timestamptz');

SELECT has_table('calo_recon', 'transaction_scores', 'scores table exists');
-- model first: a new model's scores, written in txn_id order, are appended
-- at the right edge of the key instead of into every leaf page (README "Benchmarks")
SELECT col_is_pk('calo_recon', 'transaction_scores', ARRAY['model_id', 'txn_id'], 'one score per model and transaction, keyed model first');
SELECT has_trigger('calo_recon', 'models', 'models_delete_scores', 'deleting a model deletes its scores');
SELECT col_type_is('calo_recon', 'transaction_scores', 'score', 'double precision', 'score is float8');

SELECT has_table('calo_recon', 'anomaly_feedback', 'feedback table exists');
SELECT col_is_pk('calo_recon', 'anomaly_feedback', 'feedback_id', 'feedback has a surrogate key');
SELECT col_default_is('calo_recon', 'anomaly_feedback', 'analyst', 'SESSION_USER', 'analyst defaults to session_user (the login role)');
SELECT has_check('calo_recon', 'anomaly_feedback', 'verdict is checked');

SELECT has_view('calo_recon', 'transaction_features', 'feature view exists');
SELECT columns_are('calo_recon', 'transaction_features',
    ARRAY['txn_id', 'user_id', 'logged_at', 'features', 'amount_vs_usual', 'vat_rate', 'vat_rate_vs_usual',
          'hours_from_usual', 'log_seconds_since_previous', 'repeats_previous', 'amount_scaled'],
    'feature view columns');
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
           WHERE attrelid = 'calo_recon.transaction_features'::regclass AND attnum > 4),
          calo_recon.transaction_feature_names(),
          'feature columns follow transaction_feature_names()');
SELECT has_view('calo_recon', 'anomaly_verdicts', 'verdict view exists');
SELECT has_view('calo_recon', 'anomalies', 'anomalies view exists');
SELECT columns_are('calo_recon', 'anomalies',
    ARRAY['txn_id', 'user_id', 'currency', 'amount', 'logged_at', 'score', 'threshold', 'model_flag',
          'rule_flag', 'reason', 'explanation', 'verdict', 'model_name', 'attribution'],
    'anomalies columns (the BI contract)');
SELECT col_type_is('calo_recon', 'anomalies', 'attribution', 'jsonb', 'anomalies.attribution is jsonb');
SELECT col_type_is('calo_recon', 'anomalies', 'amount', 'numeric', 'anomalies.amount is numeric money');
SELECT col_type_is('calo_recon', 'anomalies', 'logged_at', 'timestamp with time zone', 'anomalies.logged_at is timestamptz');

SELECT is_empty($$
    SELECT c.relname || '.' || coalesce(a.attname, '')
    FROM pg_class c
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'calo_recon'::regnamespace
      AND c.relname IN ('models', 'transaction_scores', 'anomaly_feedback',
                        'transaction_features', 'anomaly_verdicts', 'anomalies')
      AND (obj_description(c.oid, 'pg_class') IS NULL
           OR (a.attnum IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))
$$, 'every anomaly table, view and column has a comment');

SELECT has_function('calo_recon', 'train_model', ARRAY['text', 'double precision', 'integer', 'integer', 'bigint', 'text', 'timestamp with time zone', 'timestamp with time zone'], 'train_model signature');
SELECT function_returns('calo_recon', 'train_model', ARRAY['text', 'double precision', 'integer', 'integer', 'bigint', 'text', 'timestamp with time zone', 'timestamp with time zone'], 'calo_recon.models', 'train_model returns the model row');
SELECT has_function('calo_recon', 'score_transactions', ARRAY['boolean'], 'score_transactions signature');
SELECT function_returns('calo_recon', 'score_transactions', ARRAY['boolean'], 'bigint', 'score_transactions returns a count');
SELECT has_function('calo_recon', 'record_feedback', ARRAY['text', 'text', 'text'], 'record_feedback signature');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.oid IN ('calo_recon.train_model(text, float8, int, int, bigint, text, timestamptz, timestamptz)'::regprocedure,
                    'calo_recon.score_transactions(boolean)'::regprocedure,
                    'calo_recon.record_feedback(text, text, text)'::regprocedure)
      AND (has_function_privilege('public', p.oid, 'EXECUTE')
           OR NOT ('search_path=pg_catalog, pg_temp' = ANY (p.proconfig)))
$$, 'anomaly functions: no EXECUTE for PUBLIC, pinned search_path');

SELECT ok((SELECT extconfig @> ARRAY['calo_recon.models'::regclass::oid,
                                     'calo_recon.models_model_id_seq'::regclass::oid,
                                     'calo_recon.transaction_scores'::regclass::oid,
                                     'calo_recon.anomaly_feedback'::regclass::oid,
                                     'calo_recon.anomaly_feedback_feedback_id_seq'::regclass::oid]
           FROM pg_extension WHERE extname = 'calo_recon'),
          'registry, scores and feedback are kept by pg_dump');

-- a small data set, two trainings: exactly one model is active
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('T%s', i), format('U%s', i % 5), 'DEBIT', 'BHD', 10 + i % 7, 1, 1000 - i, 1000 - i - (9 + i % 7),
       timestamptz '2024-01-01 00:00:00+00' + i * interval '7 minutes'
FROM generate_series(1, 200) i;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('BIG', 'U1', 'DEBIT', 'BHD', 5000, 500, 6000, 1500, '2024-01-02 00:00:00+00');
SELECT isnt((calo_recon.train_model('first', 0.01, 50, 64, 7)).model_id, NULL, 'first model trained');
SELECT ok((calo_recon.train_model('second', 0.05, 50, 64, 7)).active, 'second model is active');
SELECT results_eq('SELECT model_name FROM calo_recon.models WHERE active',
                  ARRAY['second'], 'only the newest model is active');
SELECT throws_ok($$UPDATE calo_recon.models SET active = true WHERE model_name = 'first'$$,
                 '23505', NULL, 'a second active model is refused');
SELECT is((SELECT count(*) FROM calo_recon.transaction_scores s
           JOIN calo_recon.models m USING (model_id) WHERE m.active), 201::bigint,
          'training scored every transaction');
SELECT results_eq($$SELECT reason FROM calo_recon.anomalies WHERE txn_id = 'BIG'$$,
                  ARRAY['model+amount_rule'], 'the planted outlier is flagged by both');
SELECT is((SELECT count(*) FROM calo_recon.transaction_scores), 402::bigint, 'both models scored every row');
DELETE FROM calo_recon.models WHERE model_name = 'first';
SELECT is((SELECT count(DISTINCT model_id) FROM calo_recon.transaction_scores), 1::bigint,
          'the deleted model''s scores are gone');

-- train_model keeps the scores it computed for the threshold: the one C
-- scoring path scores the rows (the confirmed anomaly it does not train on
-- included) without a call of the SQL iforest_score per row (counted by this
-- transaction's function statistics)
SET LOCAL track_functions = 'all';
SELECT lives_ok($$SELECT calo_recon.record_feedback('T5', 'confirmed', 'kept out of training')$$, 'T5 confirmed');
CREATE TEMP VIEW score_calls AS
SELECT coalesce(sum(f.calls), 0) AS calls FROM pg_stat_xact_user_functions f
WHERE f.funcid = 'calo_recon.iforest_score(calo_recon.iforest, float8[])'::regprocedure;
CREATE TEMP TABLE calls_before AS SELECT * FROM score_calls;
CREATE TEMP TABLE third AS SELECT * FROM calo_recon.train_model('third', 0.05, 50, 64, 7);
SELECT is((SELECT c.calls - b.calls FROM score_calls c, calls_before b), 0::numeric,
          'train_model scores in C, not through a SQL call per row');
SELECT is((SELECT row(training_rows, (parameters ->> 'excluded_confirmed')::int,
                      (SELECT count(*) FROM calo_recon.transaction_scores s WHERE s.model_id = t.model_id))::text
           FROM third t),
          '(200,1,201)', 'it trains on all but the confirmed row and stores a score for every row');
SELECT is((SELECT threshold FROM third),
          (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY s.score) FROM calo_recon.transaction_scores s, third t
           WHERE s.model_id = t.model_id AND s.txn_id <> 'T5'),
          'the threshold is the quantile of the stored training scores');
CREATE TEMP TABLE kept AS
SELECT s.txn_id, s.score, s.flagged, s.explanation FROM calo_recon.transaction_scores s, third t
WHERE s.model_id = t.model_id;
SELECT is(calo_recon.score_transactions(false), 201::bigint, 'scoring every row again');
SELECT results_eq($$SELECT s.txn_id, s.score, s.flagged, s.explanation FROM calo_recon.transaction_scores s, third t
                    WHERE s.model_id = t.model_id ORDER BY 1$$,
                  $$SELECT * FROM kept ORDER BY 1$$,
                  'gives the scores, flags and explanations train_model stored');

SELECT throws_ok($$SELECT calo_recon.record_feedback('BIG', 'perhaps')$$, '22023', NULL,
                 'a bad verdict is refused');

-- money as a feature: non-finite gives 0, magnitudes beyond 1e100 are held
-- at +-1e100 (so no scaler fit over the features can overflow)
SELECT is(ARRAY[calo_recon.feature_value(NULL), calo_recon.feature_value('NaN'),
                calo_recon.feature_value('Infinity'), calo_recon.feature_value('-Infinity'),
                calo_recon.feature_value(1e200), calo_recon.feature_value(-1e400),
                calo_recon.feature_value(1e-400), calo_recon.feature_value(-12.345)],
          ARRAY[0, 0, 0, 0, 1e100, -1e100, 0, -12.345]::float8[],
          'feature_value: 0 when not finite, held within +-1e100');

-- a read-only role with USAGE and SELECT can query the anomalies view
CREATE ROLE calo_tap_reader NOLOGIN;
GRANT USAGE ON SCHEMA calo_recon TO calo_tap_reader;
GRANT SELECT ON calo_recon.anomalies TO calo_tap_reader;
SET LOCAL ROLE calo_tap_reader;
SELECT lives_ok('SELECT count(*) FROM calo_recon.anomalies', 'a read-only role can query anomalies');
SELECT throws_ok('SELECT calo_recon.train_model()', '42501', NULL, 'a read-only role cannot train');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
