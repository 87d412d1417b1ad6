\echo Use "ALTER EXTENSION calo_recon UPDATE TO '1.2'" to load this file. \quit
-- calo_recon 1.1 -> 1.2 (under development: this script may change until 1.2
-- is released, then it is frozen like the scripts before it). Every change to
-- sql/install/*.sql is also written here as a migration.

-- ---------------------------------------------------------------------------
-- Anomaly features and scoring in C (issue 8 item 3, helper "score").
-- OR REPLACE keeps the grants calo_recon.grant_role() gave on the function
-- and the view (a DROP would silently take them from the analysts' roles).
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION calo_recon.transaction_feature_names() RETURNS text[]
    AS 'MODULE_PATHNAME', 'calo_recon_transaction_feature_names'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.transaction_feature_names() IS
  'Names of the anomaly features, in the order of calo_recon.transaction_features.features; stored with every model';

CREATE FUNCTION calo_recon.compute_transaction_features(user_ids text[] DEFAULT NULL)
RETURNS TABLE (txn_id text, user_id text, logged_at timestamptz, features float8[],
               amount float8, vat float8, net float8, balance_change float8,
               old_balance float8, hour_of_day float8, seconds_since_previous float8,
               amount_vs_user_median float8, direction float8)
    AS 'MODULE_PATHNAME', 'calo_recon_compute_transaction_features'
    LANGUAGE C STABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION calo_recon.compute_transaction_features(text[]) IS
  'The rows of calo_recon.transaction_features, of all users (NULL) or of the given users only';
REVOKE ALL ON FUNCTION calo_recon.compute_transaction_features(text[]) FROM PUBLIC;

CREATE OR REPLACE VIEW calo_recon.transaction_features AS
SELECT f.txn_id, f.user_id, f.logged_at, f.features,
       f.amount, f.vat, f.net, f.balance_change, f.old_balance,
       f.hour_of_day, f.seconds_since_previous,
       f.amount_vs_user_median, f.direction
FROM calo_recon.compute_transaction_features() f;

-- score_transactions() becomes the C scoring path (same signature, so OR
-- REPLACE keeps its grants); train_model() hands its work to
-- fit_and_score_model().
-- Scores with the active model the transactions it has not scored yet (or,
-- with only_new = false, all of them again): one read of the transactions,
-- the features of the C walk, the scaler, the forest, the threshold and the
-- explanation of flagged rows in C (src/score_glue.c), the scores written
-- with COPY's multi-insert path.  Scorers take turns on transaction_scores.
CREATE OR REPLACE FUNCTION calo_recon.score_transactions(only_new boolean DEFAULT true)
RETURNS bigint
    AS 'MODULE_PATHNAME', 'calo_recon_score_transactions'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION calo_recon.score_transactions(boolean) IS
  'Scores with the active model the transactions it has not scored yet (only_new, the default) or all of them; returns the number of rows scored (0 when no model is active)';

-- train_model()'s work after its checks: the feature rows in the view's
-- order (so that a seed reproduces the model), the scaler and the forest
-- fitted on those not confirmed as anomalies, every row scored once, the
-- threshold from the training rows' scores, and those scores stored as the
-- new model's.  training_rows is 0 (and the rest NULL) when nothing can be
-- trained on.
CREATE FUNCTION calo_recon.fit_and_score_model(
    model_id bigint, contamination float8, n_trees int, sample_size int, seed bigint,
    OUT training_rows bigint, OUT excluded bigint, OUT scaler calo_recon.scaler,
    OUT forest calo_recon.iforest, OUT threshold float8)
    AS 'MODULE_PATHNAME', 'calo_recon_fit_and_score_model'
    LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint) IS
  'The work of calo_recon.train_model(): fits the scaler and the forest, sets the threshold and stores every transaction''s score under model_id; returns the training row counts, the fitted scaler and forest and the threshold';

REVOKE ALL ON FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION calo_recon.train_model(
    model_name    text   DEFAULT 'default',
    contamination float8 DEFAULT 0.01,
    n_trees       int    DEFAULT 100,
    sample_size   int    DEFAULT 256,
    seed          bigint DEFAULT NULL)
RETURNS calo_recon.models
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_names   text[] := calo_recon.transaction_feature_names();
    v_seed    bigint := train_model.seed;
    v_scaler  calo_recon.scaler;
    v_forest  calo_recon.iforest;
    v_rows    bigint;
    v_excluded bigint;
    v_threshold float8;
    v_model_id bigint;
    stored    calo_recon.models;
BEGIN
    IF train_model.model_name IS NULL OR train_model.contamination IS NULL
       OR train_model.n_trees IS NULL OR train_model.sample_size IS NULL THEN
        RAISE EXCEPTION 'model_name, contamination, n_trees and sample_size must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(train_model.model_name) = '' THEN
        RAISE EXCEPTION 'model_name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- NaN compares greater than every number, so it fails the upper bound.
    IF NOT (train_model.contamination > 0 AND train_model.contamination <= 0.5) THEN
        RAISE EXCEPTION 'contamination must be in (0, 0.5], got %', train_model.contamination
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF train_model.n_trees NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'n_trees must be between 1 and 10000, got %', train_model.n_trees
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF train_model.sample_size NOT BETWEEN 2 AND 100000 THEN
        RAISE EXCEPTION 'sample_size must be between 2 and 100000, got %', train_model.sample_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_seed IS NULL THEN
        -- recorded in parameters, so that the model can be fitted again
        v_seed := floor(random() * 9007199254740992)::bigint;
    END IF;

    -- the model's key first, so that its scores are stored while they are
    -- computed, without the lock below (taken before any write to models)
    v_model_id := nextval('calo_recon.models_model_id_seq');

    -- One call, so one snapshot: the scaler, the forest, the threshold and
    -- the scores all read the same rows, read once; every row is scored
    -- once and those scores are stored.  Confirmed anomalies are scored but
    -- not trained on.
    SELECT r.training_rows, r.excluded, r.scaler, r.forest, r.threshold
      INTO v_rows, v_excluded, v_scaler, v_forest, v_threshold
      FROM calo_recon.fit_and_score_model(v_model_id, train_model.contamination,
                                          train_model.n_trees, train_model.sample_size, v_seed) r;
    IF v_rows = 0 THEN
        RAISE EXCEPTION 'the training set is empty'
            USING ERRCODE = 'data_exception',
                  DETAIL = CASE WHEN v_excluded = 0 THEN 'calo_recon.transactions has no rows.'
                                ELSE format('All %s transactions are confirmed anomalies, which are never trained on.',
                                            v_excluded) END,
                  HINT = CASE WHEN v_excluded = 0
                              THEN 'Load transactions first, e.g. with calo_recon.ingest_file().'
                              ELSE 'Load more transactions; confirmed anomalies are kept out of training.' END;
    END IF;

    -- Serialize trainers only for the switch of the active model.
    LOCK TABLE calo_recon.models IN SHARE ROW EXCLUSIVE MODE;
    UPDATE calo_recon.models m SET active = false WHERE m.active;
    INSERT INTO calo_recon.models AS m
        (model_id, model_name, features, scaler, forest, contamination, threshold,
         training_rows, parameters, active)
    VALUES (v_model_id, train_model.model_name, v_names, v_scaler, v_forest, train_model.contamination,
            v_threshold, v_rows,
            jsonb_build_object('n_trees', train_model.n_trees,
                               'sample_size', train_model.sample_size,
                               'seed', v_seed,
                               'seed_given', train_model.seed IS NOT NULL,
                               'excluded_confirmed', v_excluded),
            true)
    RETURNING m.* INTO stored;
    RETURN stored;
END;
$$;
COMMENT ON FUNCTION calo_recon.train_model(text, float8, int, int, bigint) IS
  'Fits the scaler and the Isolation Forest on every transaction not confirmed as an anomaly, sets the threshold at the (1 - contamination) quantile of the training scores, stores the model as the active one (the previous one is deactivated) with the scores it computed, one per transaction (the confirmed anomalies included), and returns the stored model row';

-- The scores of some users' rows under a model, computed as
-- score_transactions() computes them but not stored: the model alerts of the
-- transactions an INSERT adds (72_alerts.sql).
CREATE FUNCTION calo_recon.model_scores(model_id bigint, user_ids text[])
RETURNS TABLE (txn_id text, user_id text, score float8, flagged boolean, explanation text)
    AS 'MODULE_PATHNAME', 'calo_recon_model_scores'
    LANGUAGE C STABLE STRICT ROWS 100;
COMMENT ON FUNCTION calo_recon.model_scores(bigint, text[]) IS
  'Scores of the given users'' transactions under a model (score, flagged as score > its threshold, explanation of flagged rows), computed by the scoring path of score_transactions() and not stored';

REVOKE ALL ON FUNCTION calo_recon.model_scores(bigint, text[]) FROM PUBLIC;
