-- Anomaly detection in the database (isolation forest on scaled features): the feature
-- view, the model registry, scores, analysts' feedback, train_model(),
-- score_transactions(), record_feedback(), the amount rule per currency and
-- the anomalies view.  Builds on the scaler and iforest types of
-- 50_anomaly_types.sql.

-- The feature order is part of every stored model: scoring refuses a model
-- whose names differ, so that a reordered view can never be scored silently.
-- The names, like the features, are defined once, in src/core/anomaly_features.c.
CREATE FUNCTION calo_recon.transaction_feature_names() RETURNS text[]
    AS 'MODULE_PATHNAME', 'calo_recon_transaction_feature_names'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.transaction_feature_names() IS
  'Names of the anomaly features, in the order of calo_recon.transaction_features.features; stored with every model';

-- Money becomes float8 only here, for the forest, through feature_value: NULL,
-- NaN and +-Infinity become 0 and magnitudes beyond 1e100 are held at +-1e100
-- (SCL_FEATURE_BOUND in src/core/scaler.h), so that no fit or transform of the
-- features can overflow and a huge amount still stands out.  Ratios and
-- differences are held the same way, and a feature against the user's usual
-- is 0 while the user has too little history, so no NULL, NaN or infinity
-- ever reaches the scaler.
CREATE FUNCTION calo_recon.feature_value(numeric) RETURNS float8
    AS 'MODULE_PATHNAME', 'feature_value' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.feature_value(numeric) IS
  'Money as an anomaly feature: NULL, NaN and +-Infinity give 0, magnitudes beyond 1e100 are held at +-1e100, anything else is the float8 value';

-- The features are computed by the per-user walk in C (src/core/anomaly_features.c,
-- README "Anomaly detection"): one read of the transactions, each user's rows
-- in chain order, every "usual" over the user's earlier rows only.  Rows come
-- users by user_id, each in chain order.
CREATE FUNCTION calo_recon.compute_transaction_features(user_ids text[] DEFAULT NULL)
RETURNS TABLE (txn_id text, user_id text, logged_at timestamptz, features float8[],
               amount_vs_usual float8, vat_rate float8, vat_rate_vs_usual float8,
               hours_from_usual float8, log_seconds_since_previous float8,
               repeats_previous float8, amount_scaled float8)
    AS 'MODULE_PATHNAME', 'calo_recon_compute_transaction_features'
    LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 1000;
COMMENT ON FUNCTION calo_recon.compute_transaction_features(text[]) IS
  'The rows of calo_recon.transaction_features, of all users (NULL) or of the given users only';

CREATE VIEW calo_recon.transaction_features AS
SELECT f.txn_id, f.user_id, f.logged_at, f.features,
       f.amount_vs_usual, f.vat_rate, f.vat_rate_vs_usual,
       f.hours_from_usual, f.log_seconds_since_previous, f.repeats_previous,
       f.amount_scaled
FROM calo_recon.compute_transaction_features() f;
COMMENT ON VIEW calo_recon.transaction_features IS
  'Per-transaction anomaly features (float8, always finite), one row per transaction; features holds them in the order of calo_recon.transaction_feature_names(). Every "usual" is over the user''s earlier rows in chain order (logged_at, txn_id), never later ones';
COMMENT ON COLUMN calo_recon.transaction_features.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.transaction_features.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.transaction_features.logged_at IS 'Time the transaction was logged';
COMMENT ON COLUMN calo_recon.transaction_features.features IS
  'All features as one array, in the order of calo_recon.transaction_feature_names(): the input of the scaler and the forest';
COMMENT ON COLUMN calo_recon.transaction_features.amount_vs_usual IS
  'log2(|amount| / the median |amount| of the user''s earlier rows of the same direction: debits against debits, credits (top-ups) against credits), to the nearest whole number; 0 with fewer than 3 of them, for a zero amount or a row that moved no balance. A ratio: the same in every currency';
COMMENT ON COLUMN calo_recon.transaction_features.vat_rate IS 'vat / amount to 0.001 (0 when amount is 0, held within +-10)';
COMMENT ON COLUMN calo_recon.transaction_features.vat_rate_vs_usual IS
  'vat_rate minus the median vat_rate of the user''s earlier transactions with an amount, to 0.01; 0 with fewer than 3 of them';
COMMENT ON COLUMN calo_recon.transaction_features.hours_from_usual IS
  'Hours beyond 2 from the UTC hour of logged_at to the nearest hour of the user''s earlier transactions, around the clock (0 to 10); 0 with fewer than 10 of them or for an infinite time';
COMMENT ON COLUMN calo_recon.transaction_features.log_seconds_since_previous IS
  'log10(1 + seconds since the user''s previous transaction in chain order), to the nearest whole number, the seconds held at 86400 (a day), which a user''s first transaction and one next to an infinite time also get';
COMMENT ON COLUMN calo_recon.transaction_features.repeats_previous IS
  '1 when the transaction repeats the amount and direction of the user''s previous one within 3600 seconds (a double charge), else 0';
COMMENT ON COLUMN calo_recon.transaction_features.amount_scaled IS
  'log10(1 + |amount| * 10^(minor_unit - 3)), to 0.1: the size of the amount in thousands of the currency''s minor units (calo_recon.currencies; 2 decimals when unknown), one scale for all currencies (1 BHD = 1000 fils, 10 SAR = 1000 halalas)';

-- A model's parts describe the same features: as many names as the scaler
-- and the forest have features.  A model imported by hand whose parts
-- disagree is refused when stored (23514), not when it scores.
CREATE FUNCTION calo_recon.model_shape_agrees(features text[], scaler calo_recon.scaler,
                                              forest calo_recon.iforest)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.cardinality(model_shape_agrees.features) OPERATOR(pg_catalog.=) s.features
           AND s.features OPERATOR(pg_catalog.=) f.features
    FROM calo_recon.scaler_info(scaler) s, calo_recon.iforest_info(forest) f
$$;
COMMENT ON FUNCTION calo_recon.model_shape_agrees(text[], calo_recon.scaler, calo_recon.iforest) IS
  'Whether a model''s feature names, scaler and forest have the same number of features (the CHECK models_shape_check of calo_recon.models)';

CREATE TABLE calo_recon.models (
    model_id       bigint           GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model_name     text             NOT NULL CHECK (model_name <> ''),
    features       text[]           NOT NULL,
    scaler         calo_recon.scaler  NOT NULL,
    forest         calo_recon.iforest NOT NULL,
    contamination  float8           NOT NULL CHECK (contamination > 0 AND contamination <= 0.5),
    threshold      float8           NOT NULL CHECK (threshold > 0 AND threshold <= 1),
    trained_at     timestamptz      NOT NULL DEFAULT now(),
    training_rows  bigint           NOT NULL CHECK (training_rows > 0),
    parameters     jsonb            NOT NULL DEFAULT '{}',
    active         boolean          NOT NULL DEFAULT false,
    currency       text             CHECK (calo_recon.is_currency_code(currency)),
    trained_from   timestamptz,
    trained_to     timestamptz,
    CONSTRAINT models_training_window_check CHECK (trained_from < trained_to),
    CONSTRAINT models_shape_check CHECK (calo_recon.model_shape_agrees(features, scaler, forest))
);
-- One active model per currency scope (a currency, or all of them: NULL):
-- calo_recon.transaction_models gives each transaction exactly one.
CREATE UNIQUE INDEX models_one_active_per_currency_idx ON calo_recon.models (currency) NULLS NOT DISTINCT WHERE active;
COMMENT ON TABLE calo_recon.models IS
  'Anomaly model registry: every model train_model() fitted, with what it was trained on; the active ones score, at most one per currency scope (calo_recon.transaction_models)';
COMMENT ON COLUMN calo_recon.models.model_id IS 'Surrogate key';
COMMENT ON COLUMN calo_recon.models.model_name IS 'Name given at training; several versions may share it';
COMMENT ON COLUMN calo_recon.models.features IS 'Feature names in the order the model expects (calo_recon.transaction_feature_names() at training)';
COMMENT ON COLUMN calo_recon.models.scaler IS 'StandardScaler fitted on the training rows';
COMMENT ON COLUMN calo_recon.models.forest IS 'Isolation Forest fitted on the standardized training rows';
COMMENT ON COLUMN calo_recon.models.contamination IS 'Expected share of anomalies; sets the threshold';
COMMENT ON COLUMN calo_recon.models.threshold IS
  'The (1 - contamination) quantile (linear interpolation) of the training scores; a score above it is flagged, as sklearn''s predict()';
COMMENT ON COLUMN calo_recon.models.trained_at IS 'When the model was trained';
COMMENT ON COLUMN calo_recon.models.training_rows IS 'Transactions the model was trained on';
COMMENT ON COLUMN calo_recon.models.parameters IS
  'Training parameters: n_trees, sample_size, seed (drawn and recorded when none was given), seed_given, excluded_confirmed, scope_rows (the transactions of its scope at training: refresh() counts new ones from it)';
COMMENT ON COLUMN calo_recon.models.active IS 'true for the models that score, one per currency scope; training a model deactivates the previous one of the same scope';
COMMENT ON COLUMN calo_recon.models.currency IS 'The currency the model was trained on and scores (its scope); NULL: every currency, scoring those without an active model of their own';
COMMENT ON COLUMN calo_recon.models.trained_from IS 'Start (inclusive) of the window of logged_at the model was trained on; NULL: from the first transaction';
COMMENT ON COLUMN calo_recon.models.trained_to IS 'End (exclusive) of the window of logged_at the model was trained on; NULL: up to the last transaction at training';

-- What a model of a currency scope covers: the rows it is trained on (those
-- of its window) and scores.  fit_and_score_model() reads it, and refresh()
-- counts the transactions a model has not seen from it.
-- PL/pgSQL, not SQL: Citus cannot plan a SQL function's query with a
-- parameter over a distributed table.
CREATE FUNCTION calo_recon.model_scope(currency text) RETURNS TABLE (txn_id text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT t.txn_id FROM calo_recon.transactions t
    WHERE model_scope.currency IS NULL OR t.currency = model_scope.currency;
END
$$;
COMMENT ON FUNCTION calo_recon.model_scope(text) IS
  'The transactions (txn_id) of a model''s currency scope: those of the currency, or all of them for NULL; a model is trained on those of its window and scores them all';

-- Which active model scores each transaction: its currency's own, else the
-- all-currency one (NULL when neither is active).  The one home of the
-- choice: score_transactions(), the anomalies view and the model alerts read
-- it.  The all-currency model is an uncorrelated subquery: computed once per
-- query, not joined to every row.  The currencies' own models are a DISTINCT
-- ON subquery (a no-op beside models_one_active_per_currency_idx) because
-- the planner drops a LEFT JOIN whose columns nobody reads only when it can
-- prove the joined rows unique, which a partial index does not prove to it:
-- so a reader of the amount rule alone (calo_recon.amount_rule_hits) does
-- not pay for the model join.
CREATE VIEW calo_recon.transaction_models AS
SELECT t.txn_id, t.user_id, t.currency,
       coalesce(own.model_id, (SELECT fallback.model_id FROM calo_recon.models fallback
                               WHERE fallback.active AND fallback.currency IS NULL)) AS model_id,
       t.amount, t.logged_at
FROM calo_recon.transactions t
LEFT JOIN (SELECT DISTINCT ON (active_model.currency) active_model.currency, active_model.model_id
           FROM calo_recon.models active_model
           WHERE active_model.active
           ORDER BY active_model.currency) own ON own.currency = t.currency;
COMMENT ON VIEW calo_recon.transaction_models IS
  'The active model that scores each transaction: the one of its currency, else the all-currency one (currency NULL); model_id NULL when neither is active';
COMMENT ON COLUMN calo_recon.transaction_models.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.transaction_models.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.transaction_models.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.transaction_models.model_id IS 'The model (calo_recon.models) whose score counts for it; NULL when none is active for its currency';
COMMENT ON COLUMN calo_recon.transaction_models.amount IS 'Gross amount (so that the anomalies view reads the transactions once)';
COMMENT ON COLUMN calo_recon.transaction_models.logged_at IS 'Time the transaction was logged';

CREATE TABLE calo_recon.transaction_scores (
    txn_id       text        NOT NULL,
    model_id     bigint      NOT NULL,
    score        float8      NOT NULL CHECK (score > 0 AND score <= 1),
    flagged      boolean     NOT NULL,
    explanation  text,
    scored_at    timestamptz NOT NULL DEFAULT now(),
    attribution  jsonb,
    -- the wallet owner of the scored transaction (last: added by 1.2's
    -- update), so that the scores can live beside the user's transactions
    -- on a Citus cluster
    user_id      text        NOT NULL,
    -- model first: a model's scores are written in one bulk write in txn_id
    -- order (src/glue/score_glue.c), so those of a new model go to the
    -- right edge of the key, not one into every leaf page of the old ones
    PRIMARY KEY (model_id, txn_id)
);
-- The flagged scores of a model, with the transaction: the anomalies view
-- reads them (an index-only scan once vacuum has marked the pages visible)
-- to hash them against every transaction.
CREATE INDEX transaction_scores_flagged_idx
    ON calo_recon.transaction_scores (model_id, txn_id) WHERE flagged;
COMMENT ON TABLE calo_recon.transaction_scores IS
  'Anomaly score of each transaction under each model that scored it; deleting a model deletes its scores. No foreign keys: they would block TRUNCATE of transactions and cost a check per scored row; views join through transactions and models';
COMMENT ON COLUMN calo_recon.transaction_scores.txn_id IS 'Scored transaction';
COMMENT ON COLUMN calo_recon.transaction_scores.model_id IS 'Model that scored it';
COMMENT ON COLUMN calo_recon.transaction_scores.score IS 'Isolation Forest score s in (0, 1]; higher is more anomalous';
COMMENT ON COLUMN calo_recon.transaction_scores.flagged IS 'score > the model''s threshold';
COMMENT ON COLUMN calo_recon.transaction_scores.explanation IS
  'For flagged rows, one sentence naming the top cause with the numbers (e.g. "amount 14.2× this user''s usual debit of 5.400 BHD"); NULL otherwise';
COMMENT ON COLUMN calo_recon.transaction_scores.attribution IS
  'For flagged rows, the isolation bits of every feature: {"cause", "total_bits", "features": [{"feature", "bits", "direction": above|below|none}, ...]} most bits first; the bits sum to total_bits, the mean over the trees of log2(tree samples / samples of the row''s leaf). NULL otherwise';
COMMENT ON COLUMN calo_recon.transaction_scores.scored_at IS 'When it was scored';
COMMENT ON COLUMN calo_recon.transaction_scores.user_id IS 'Wallet owner of the scored transaction (its user_id in calo_recon.transactions)';

-- Replaces an ON DELETE CASCADE foreign key, whose per-row check would
-- cost more than scoring itself on large tables.  The deleted ids as an
-- array, not a subquery of the transition table: on a Citus cluster the
-- scores are distributed, and their shards cannot read it.
CREATE FUNCTION calo_recon.models_delete_scores() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deleted bigint[];
BEGIN
    SELECT pg_catalog.array_agg(d.model_id) INTO deleted FROM deleted_models d;
    DELETE FROM calo_recon.transaction_scores s
    WHERE s.model_id = ANY (deleted);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.models_delete_scores() IS
  'Trigger: deleting models deletes their scores';
CREATE TRIGGER models_delete_scores
    AFTER DELETE ON calo_recon.models
    REFERENCING OLD TABLE AS deleted_models
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.models_delete_scores();

CREATE TABLE calo_recon.anomaly_feedback (
    feedback_id  bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    txn_id       text        NOT NULL,
    verdict      text        NOT NULL CHECK (verdict IN ('confirmed', 'dismissed')),
    analyst      text        NOT NULL DEFAULT session_user,
    note         text,
    decided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anomaly_feedback_txn_idx
    ON calo_recon.anomaly_feedback (txn_id, decided_at DESC, feedback_id DESC);
-- Append-only and signed (README "Roles"): the roles of grant_role() may
-- insert only txn_id, verdict and note and never update or delete, so the
-- signature, the date and the tie-breaking key come from these defaults.
-- session_user, not current_user: SET ROLE cannot change the signature.
COMMENT ON TABLE calo_recon.anomaly_feedback IS
  'Analysts'' verdicts on transactions, kept as history (append-only: a correction is a new row); the latest verdict per transaction counts (see anomaly_verdicts)';
COMMENT ON COLUMN calo_recon.anomaly_feedback.feedback_id IS 'Surrogate key; breaks ties between verdicts of the same instant';
COMMENT ON COLUMN calo_recon.anomaly_feedback.txn_id IS 'Transaction judged';
COMMENT ON COLUMN calo_recon.anomaly_feedback.verdict IS 'confirmed (a real anomaly: kept out of training) or dismissed (leaves the anomalies view)';
COMMENT ON COLUMN calo_recon.anomaly_feedback.analyst IS 'Login role (session_user) that recorded the verdict, set by the product';
COMMENT ON COLUMN calo_recon.anomaly_feedback.note IS 'Free-text justification';
COMMENT ON COLUMN calo_recon.anomaly_feedback.decided_at IS 'When the verdict was recorded (start of its transaction), set by the product';

CREATE VIEW calo_recon.anomaly_verdicts AS
SELECT DISTINCT ON (fb.txn_id)
       fb.txn_id, fb.verdict, fb.analyst, fb.note, fb.decided_at
FROM calo_recon.anomaly_feedback fb
ORDER BY fb.txn_id, fb.decided_at DESC, fb.feedback_id DESC;
COMMENT ON VIEW calo_recon.anomaly_verdicts IS
  'The verdict in force for each judged transaction: its latest feedback';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.txn_id IS 'Transaction judged';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.verdict IS 'confirmed or dismissed';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.analyst IS 'Login role (session_user) that recorded it';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.note IS 'Justification';
COMMENT ON COLUMN calo_recon.anomaly_verdicts.decided_at IS 'When it was recorded';

CREATE FUNCTION calo_recon.record_feedback(txn_id text, verdict text, note text DEFAULT NULL)
RETURNS calo_recon.anomaly_feedback
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_verdict text := lower(btrim(record_feedback.verdict));
    stored calo_recon.anomaly_feedback;
BEGIN
    IF record_feedback.txn_id IS NULL THEN
        RAISE EXCEPTION 'txn_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF v_verdict IS NULL OR v_verdict NOT IN ('confirmed', 'dismissed') THEN
        RAISE EXCEPTION 'invalid verdict: %', coalesce(quote_literal(record_feedback.verdict), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The verdict is ''confirmed'' or ''dismissed''.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.transactions t WHERE t.txn_id = record_feedback.txn_id) THEN
        RAISE EXCEPTION 'transaction % does not exist', quote_literal(record_feedback.txn_id)
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    INSERT INTO calo_recon.anomaly_feedback AS fb (txn_id, verdict, note)
    VALUES (record_feedback.txn_id, v_verdict, record_feedback.note)
    RETURNING fb.* INTO stored;
    RETURN stored;
END;
$$;
COMMENT ON FUNCTION calo_recon.record_feedback(text, text, text) IS
  'Records an analyst''s verdict (confirmed or dismissed) on a transaction, signed with the session''s login role; the latest verdict counts, earlier ones are kept. Returns the stored row';

-- Scores with the active models the transactions they have not scored yet
-- (or, with only_new = false, all of them again), each row with the model
-- calo_recon.transaction_models gives it: one read of the transactions,
-- the features of the C walk, the scaler, the forest, the threshold and the
-- explanation of flagged rows in C (src/glue/score_glue.c), the scores written
-- with COPY's multi-insert path.  Scorers take turns on transaction_scores.
CREATE FUNCTION calo_recon.score_transactions(only_new boolean DEFAULT true)
RETURNS bigint
    AS 'MODULE_PATHNAME', 'calo_recon_score_transactions'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION calo_recon.score_transactions(boolean) IS
  'Scores each transaction with the active model that scores it (calo_recon.transaction_models: its currency''s, else the all-currency one), the rows that model has not scored yet (only_new, the default) or all of them; returns the number of rows scored (0 when no model is active)';

-- The scores of some users' rows under a model, computed as
-- score_transactions() computes them but not stored: the model alerts of the
-- transactions an INSERT adds (72_alerts.sql), which ask for the new rows
-- only (txn_ids), so that a user's history is walked for the features but
-- not scored nor explained again at every insert.  Not STRICT for txn_ids'
-- sake: a NULL model or user list gives no rows, as STRICT did.
CREATE FUNCTION calo_recon.model_scores(model_id bigint, user_ids text[], txn_ids text[] DEFAULT NULL)
RETURNS TABLE (txn_id text, user_id text, score float8, flagged boolean, explanation text)
    AS 'MODULE_PATHNAME', 'calo_recon_model_scores'
    LANGUAGE C STABLE ROWS 100;
COMMENT ON FUNCTION calo_recon.model_scores(bigint, text[], text[]) IS
  'Scores of the given users'' transactions under a model (score, flagged as score > its threshold, explanation of flagged rows), computed by the scoring path of score_transactions() and not stored; with txn_ids, only those of their transactions (the others still make the features). No rows for a NULL model_id or user_ids';

-- train_model()'s work after its checks: the feature rows in the view's
-- order (so that a seed reproduces the model), the scaler and the forest
-- fitted on the rows of the scope (model_scope(currency)) in the window
-- [trained_from, trained_to) not confirmed as anomalies, every row of the
-- scope scored once, the threshold from the training rows' scores, and those
-- scores stored as the new model's.  training_rows is 0 (and the scaler,
-- forest and threshold NULL) when nothing can be trained on.
CREATE FUNCTION calo_recon.fit_and_score_model(
    model_id bigint, contamination float8, n_trees int, sample_size int, seed bigint,
    currency text DEFAULT NULL, trained_from timestamptz DEFAULT NULL, trained_to timestamptz DEFAULT NULL,
    OUT training_rows bigint, OUT excluded bigint, OUT scaler calo_recon.scaler,
    OUT forest calo_recon.iforest, OUT threshold float8, OUT scope_rows bigint)
    AS 'MODULE_PATHNAME', 'calo_recon_fit_and_score_model'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint, text, timestamptz, timestamptz) IS
  'The work of calo_recon.train_model(): fits the scaler and the forest on the scope''s rows of the window (currency and the window''s ends NULL: all), sets the threshold and stores the score of every transaction of the scope under model_id; returns the training row counts (excluded: confirmed anomalies of the window), the fitted scaler and forest, the threshold and the rows of the scope';

CREATE FUNCTION calo_recon.train_model(
    model_name    text        DEFAULT 'default',
    contamination float8      DEFAULT 0.01,
    n_trees       int         DEFAULT 100,
    sample_size   int         DEFAULT 4096,
    seed          bigint      DEFAULT NULL,
    currency      text        DEFAULT NULL,
    trained_from  timestamptz DEFAULT NULL,
    trained_to    timestamptz DEFAULT NULL)
RETURNS calo_recon.models
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_names   text[] := calo_recon.transaction_feature_names();
    v_seed    bigint := train_model.seed;
    v_currency text := upper(btrim(train_model.currency));
    v_scaler  calo_recon.scaler;
    v_forest  calo_recon.iforest;
    v_rows    bigint;
    v_excluded bigint;
    v_scope_rows bigint;
    v_threshold float8;
    v_model_id bigint;
    stored    calo_recon.models;
BEGIN
    IF train_model.model_name IS NULL OR train_model.contamination IS NULL
       OR train_model.n_trees IS NULL OR train_model.sample_size IS NULL THEN
        RAISE EXCEPTION 'model_name, contamination, n_trees and sample_size must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'currency, trained_from and trained_to may be NULL: every currency, an open window.';
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
    IF v_currency IS NOT NULL AND NOT EXISTS (SELECT 1 FROM calo_recon.currencies c WHERE c.code = v_currency) THEN
        RAISE EXCEPTION 'unknown currency %', quote_literal(train_model.currency)
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Use a code of calo_recon.currencies, or NULL for a model of every currency.';
    END IF;
    IF train_model.trained_from >= train_model.trained_to THEN
        RAISE EXCEPTION 'the training window is empty: trained_from (%) must be before trained_to (%)',
                        train_model.trained_from, train_model.trained_to
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The window is [trained_from, trained_to) on logged_at; NULL leaves an end open.';
    END IF;
    IF v_seed IS NULL THEN
        -- recorded in parameters, so that the model can be fitted again
        v_seed := floor(random() * 9007199254740992)::bigint;
    END IF;

    -- the scores that changes of the transactions made stale go first
    -- (their entries of the rescore queue with them): the rows are scored
    -- below as they are, and the next score_transactions() does not score
    -- them again (61_rescore_queue.sql)
    PERFORM calo_recon.drop_stale_scores();

    -- the model's key first, so that its scores are stored while they are
    -- computed, without the lock below (taken before any write to models)
    v_model_id := nextval('calo_recon.models_model_id_seq');

    -- One call, so one snapshot: the scaler, the forest, the threshold and
    -- the scores all read the same rows, read once; every row of the scope
    -- is scored once and those scores are stored.  Confirmed anomalies are
    -- scored but not trained on.
    SELECT r.training_rows, r.excluded, r.scaler, r.forest, r.threshold, r.scope_rows
      INTO v_rows, v_excluded, v_scaler, v_forest, v_threshold, v_scope_rows
      FROM calo_recon.fit_and_score_model(v_model_id, train_model.contamination,
                                          train_model.n_trees, train_model.sample_size, v_seed,
                                          v_currency, train_model.trained_from, train_model.trained_to) r;
    IF v_rows = 0 THEN
        RAISE EXCEPTION 'the training set is empty'
            USING ERRCODE = 'data_exception',
                  DETAIL = CASE WHEN v_excluded = 0
                                THEN format('calo_recon.transactions has no rows%s%s.',
                                            CASE WHEN v_currency IS NOT NULL THEN format(' in %s', v_currency) ELSE '' END,
                                            CASE WHEN train_model.trained_from IS NOT NULL OR train_model.trained_to IS NOT NULL
                                                 THEN format(' logged in [%s, %s)', coalesce(train_model.trained_from::text, '-infinity'),
                                                             coalesce(train_model.trained_to::text, 'infinity'))
                                                 ELSE '' END)
                                ELSE format('All %s transactions to train on are confirmed anomalies, which are never trained on.',
                                            v_excluded) END,
                  HINT = CASE WHEN v_excluded = 0
                              THEN 'Load transactions first, e.g. with calo_recon.ingest_file(), or widen the currency and window.'
                              ELSE 'Load more transactions; confirmed anomalies are kept out of training.' END;
    END IF;

    -- Serialize trainers only for the switch of the active model of the scope.
    LOCK TABLE calo_recon.models IN SHARE ROW EXCLUSIVE MODE;
    UPDATE calo_recon.models m SET active = false
    WHERE m.active AND m.currency IS NOT DISTINCT FROM v_currency;
    INSERT INTO calo_recon.models AS m
        (model_id, model_name, features, scaler, forest, contamination, threshold,
         training_rows, parameters, active, currency, trained_from, trained_to)
    VALUES (v_model_id, train_model.model_name, v_names, v_scaler, v_forest, train_model.contamination,
            v_threshold, v_rows,
            jsonb_build_object('n_trees', train_model.n_trees,
                               'sample_size', train_model.sample_size,
                               'seed', v_seed,
                               'seed_given', train_model.seed IS NOT NULL,
                               'excluded_confirmed', v_excluded,
                               'scope_rows', v_scope_rows),
            true, v_currency, train_model.trained_from, train_model.trained_to)
    RETURNING m.* INTO stored;
    RETURN stored;
END;
$$;
COMMENT ON FUNCTION calo_recon.train_model(text, float8, int, int, bigint, text, timestamptz, timestamptz) IS
  'Fits the scaler and the Isolation Forest on the transactions of the currency (NULL: every currency) logged in [trained_from, trained_to) (NULL: open) not confirmed as anomalies, sets the threshold at the (1 - contamination) quantile of the training scores, stores the model as the active one of its currency scope (the previous one of that scope is deactivated) with what it was trained on and the scores it computed, one per transaction of its scope (the confirmed anomalies and the rows outside the window included), and returns the stored model row. 22004 NULL arguments, 22023 bad parameters or an empty window, 23503 unknown currency, 22000 empty training set';

-- The amount rule (README "Amount rule"): a transaction whose amount is above
-- the threshold of its currency is flagged in calo_recon.anomalies and raises
-- an amount_rule alert.  The thresholds are rows of one table, so every
-- session, BI tool and trigger sees the same rule; analysts set them
-- (set_amount_threshold, grant_role's analyst kind).  The row '*' is the
-- threshold of every currency without a row of its own.

CREATE TABLE calo_recon.amount_thresholds (
    currency   text        PRIMARY KEY CHECK (currency = '*' OR calo_recon.is_currency_code(currency)),
    threshold  numeric     NOT NULL CHECK (threshold > 0 AND threshold <> 'NaN' AND threshold <> 'Infinity'),
    builtin    boolean     NOT NULL DEFAULT false,
    set_by     text        NOT NULL DEFAULT session_user,
    set_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE calo_recon.amount_thresholds IS
  'The amount rule: a transaction whose amount is above its currency''s threshold (the row of its currency, else the row ''*'') is flagged in calo_recon.anomalies and alerted. One table for every reader; analysts set rows with calo_recon.set_amount_threshold()';
COMMENT ON COLUMN calo_recon.amount_thresholds.currency IS 'ISO 4217 code of calo_recon.currencies, or ''*'': the threshold of every currency without a row of its own';
COMMENT ON COLUMN calo_recon.amount_thresholds.threshold IS 'Amount (in the currency) above which a transaction is flagged; positive and finite';
COMMENT ON COLUMN calo_recon.amount_thresholds.builtin IS 'true for the defaults the extension installed; a row set since is false, and those are the rows pg_dump keeps';
COMMENT ON COLUMN calo_recon.amount_thresholds.set_by IS 'Login role (session_user) that set the threshold, set by the product';
COMMENT ON COLUMN calo_recon.amount_thresholds.set_at IS 'When the threshold was set (start of its transaction), set by the product';

-- The defaults: the seed's "amount above 1000" for every currency ('*'), and
-- for the Gulf currencies of the balance-sync export (and USD) about what
-- 1000 SAR is worth at the USD pegs (1 USD = 3.75 SAR, 3.6725 AED, 3.64 QAR,
-- 0.376 BHD, 0.3845 OMR, about 0.307 KWD), rounded: README "Amount rule".
INSERT INTO calo_recon.amount_thresholds (currency, threshold, builtin, set_by) VALUES
    ('*', 1000, true, 'calo_recon'),
    ('SAR', 1000, true, 'calo_recon'), ('AED', 1000, true, 'calo_recon'), ('QAR', 1000, true, 'calo_recon'),
    ('BHD', 100, true, 'calo_recon'), ('OMR', 100, true, 'calo_recon'), ('KWD', 80, true, 'calo_recon'),
    ('USD', 250, true, 'calo_recon');

-- Who and when come from the product: an inserted row from the columns'
-- defaults (no recipe grants those columns), an updated one from here.  A
-- row set for a built-in currency replaces the built-in row, so that a
-- restored dump (CREATE EXTENSION, then the rows set) never collides.
CREATE FUNCTION calo_recon.amount_thresholds_stamp() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        DELETE FROM calo_recon.amount_thresholds t WHERE t.currency = NEW.currency AND t.builtin;
    ELSE
        NEW.builtin := false;
        NEW.set_by := session_user;
        NEW.set_at := now();
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION calo_recon.amount_thresholds_stamp() IS
  'Trigger: a threshold set for a currency with a built-in row replaces it; an updated threshold is signed with the session''s login role and the time';
REVOKE ALL ON FUNCTION calo_recon.amount_thresholds_stamp() FROM PUBLIC;
CREATE TRIGGER amount_thresholds_stamp
    BEFORE INSERT OR UPDATE ON calo_recon.amount_thresholds
    FOR EACH ROW WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION calo_recon.amount_thresholds_stamp();

CREATE FUNCTION calo_recon.set_amount_threshold(currency text, threshold numeric)
RETURNS calo_recon.amount_thresholds
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_currency text := upper(btrim(set_amount_threshold.currency));
    stored calo_recon.amount_thresholds;
BEGIN
    IF set_amount_threshold.currency IS NULL OR set_amount_threshold.threshold IS NULL THEN
        RAISE EXCEPTION 'currency and threshold must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'The threshold of every currency without a row of its own is the currency ''*''.';
    END IF;
    -- NaN compares greater than every number, so it is named first
    IF set_amount_threshold.threshold = 'NaN' OR set_amount_threshold.threshold <= 0
       OR set_amount_threshold.threshold = 'Infinity' THEN
        RAISE EXCEPTION 'the threshold must be a positive finite amount, got %', set_amount_threshold.threshold
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_currency <> '*' AND NOT EXISTS (SELECT 1 FROM calo_recon.currencies c WHERE c.code = v_currency) THEN
        RAISE EXCEPTION 'unknown currency %', quote_literal(set_amount_threshold.currency)
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Use a code of calo_recon.currencies (an operator adds new ones), or ''*'' for every currency without a row of its own.';
    END IF;
    INSERT INTO calo_recon.amount_thresholds AS a (currency, threshold)
    VALUES (v_currency, set_amount_threshold.threshold)
    ON CONFLICT ON CONSTRAINT amount_thresholds_pkey DO UPDATE SET threshold = excluded.threshold
    RETURNING a.* INTO stored;
    RETURN stored;
END;
$$;
COMMENT ON FUNCTION calo_recon.set_amount_threshold(text, numeric) IS
  'Sets the amount rule''s threshold of a currency (a code of calo_recon.currencies, or ''*'' for every currency without a row of its own), signed with the session''s login role; every session sees it at once. Returns the stored row. 22004 for NULL, 22023 for a threshold not positive and finite, 23503 for an unknown currency';
REVOKE ALL ON FUNCTION calo_recon.set_amount_threshold(text, numeric) FROM PUBLIC;

-- The one reading of the rule: every transaction with the threshold that
-- applies to it (its currency's row, else the row '*') and whether its amount
-- is above it, beside the model that scores it (calo_recon.transaction_models),
-- so that the anomalies view reads the transactions once.  The '*' row is an
-- uncorrelated subquery, read once per query.  A reader that needs only some
-- columns pays for those only: a LEFT JOIN to a unique key whose columns are
-- not read is dropped by the planner.
CREATE VIEW calo_recon.transaction_rules AS
SELECT r.txn_id, r.user_id, r.currency, r.amount, r.logged_at, r.model_id,
       r.amount_threshold, r.threshold_row,
       coalesce(r.amount > r.amount_threshold, false) AS amount_rule_hit
FROM (SELECT t.txn_id, t.user_id, t.currency, t.amount, t.logged_at, t.model_id,
             coalesce(own.threshold, (SELECT fallback.threshold FROM calo_recon.amount_thresholds fallback
                                      WHERE fallback.currency = '*')) AS amount_threshold,
             coalesce(own.currency, (SELECT fallback.currency FROM calo_recon.amount_thresholds fallback
                                     WHERE fallback.currency = '*')) AS threshold_row
      FROM calo_recon.transaction_models t
      LEFT JOIN calo_recon.amount_thresholds own ON own.currency = t.currency) r;
COMMENT ON VIEW calo_recon.transaction_rules IS
  'What the anomaly rules say of each transaction: the active model that scores it (calo_recon.transaction_models) and the amount rule (its currency''s threshold in calo_recon.amount_thresholds, else the row ''*''; with neither, no threshold and no hit). The one home of the amount rule: calo_recon.amount_rule_hits and calo_recon.anomalies read it';
COMMENT ON COLUMN calo_recon.transaction_rules.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.transaction_rules.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.transaction_rules.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.transaction_rules.amount IS 'Gross amount';
COMMENT ON COLUMN calo_recon.transaction_rules.logged_at IS 'Time the transaction was logged';
COMMENT ON COLUMN calo_recon.transaction_rules.model_id IS 'The active model whose score counts for it (calo_recon.transaction_models); NULL when none is active for its currency';
COMMENT ON COLUMN calo_recon.transaction_rules.amount_threshold IS 'The amount rule''s threshold of its currency; NULL when neither its currency nor ''*'' has a row';
COMMENT ON COLUMN calo_recon.transaction_rules.threshold_row IS 'The row of calo_recon.amount_thresholds that applies: the currency, or ''*''; NULL with neither';
COMMENT ON COLUMN calo_recon.transaction_rules.amount_rule_hit IS 'true when the amount is above amount_threshold: flagged by the amount rule';

CREATE VIEW calo_recon.amount_rule_hits AS
SELECT r.txn_id, r.user_id, r.currency, r.amount, r.amount_threshold AS threshold, r.threshold_row
FROM calo_recon.transaction_rules r
WHERE r.amount_rule_hit;
COMMENT ON VIEW calo_recon.amount_rule_hits IS
  'Transactions whose amount is above their currency''s threshold in calo_recon.amount_thresholds (its own row, else the row ''*''; with neither, none): the amount rule of calo_recon.anomalies and of the amount_rule alert';
COMMENT ON COLUMN calo_recon.amount_rule_hits.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.amount_rule_hits.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.amount_rule_hits.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.amount_rule_hits.amount IS 'Gross amount';
COMMENT ON COLUMN calo_recon.amount_rule_hits.threshold IS 'The threshold it is above';
COMMENT ON COLUMN calo_recon.amount_rule_hits.threshold_row IS 'The row of calo_recon.amount_thresholds that applied: the currency, or ''*''';

SELECT pg_catalog.pg_extension_config_dump('calo_recon.amount_thresholds', 'WHERE NOT builtin');

-- One read of the transactions (calo_recon.transaction_rules: each row with
-- the model that scores it and the amount rule), hash-joined once to what
-- marks a few thousand of them: the models each is flagged under (the
-- flagged scores, through their partial index) and the verdict in force.  A
-- model's flag counts only under the model that scores the row.  The score,
-- explanation and attribution come from a join by primary key that nothing
-- filters on, so count(*) never reads them and LIMIT reads only its rows;
-- by user_id too: on a Citus cluster the scores are distributed by it beside
-- the transactions, so that join runs per shard group (on one node it is a
-- filter: a score's user is its transaction's).
-- (Before: candidates from the three sources, grouped by txn_id and looked
-- up one by one: 2.3 s for LIMIT 100 on 1M transactions.)
CREATE VIEW calo_recon.anomalies AS
SELECT t.txn_id, t.user_id, t.currency, t.amount, t.logged_at,
       s.score, m.threshold,
       f.model_flag,
       t.amount_rule_hit AS rule_flag,
       CASE WHEN f.model_flag AND t.amount_rule_hit THEN 'model+amount_rule'
            WHEN f.model_flag THEN 'model'
            WHEN t.amount_rule_hit THEN 'amount_rule'
            ELSE 'analyst' END AS reason,
       s.explanation,
       k.verdict,
       m.model_name,
       s.attribution
FROM calo_recon.transaction_rules t
LEFT JOIN (SELECT x.txn_id,
                  pg_catalog.array_agg(x.model_id) FILTER (WHERE x.model_id IS NOT NULL) AS flagged_under,
                  pg_catalog.max(x.verdict) AS verdict
           FROM (SELECT fs.txn_id, fs.model_id, NULL::text AS verdict
                 FROM calo_recon.transaction_scores fs WHERE fs.flagged
                 UNION ALL
                 SELECT v.txn_id, NULL::bigint, v.verdict FROM calo_recon.anomaly_verdicts v) x
           GROUP BY x.txn_id) k ON k.txn_id = t.txn_id
CROSS JOIN LATERAL (SELECT coalesce(t.model_id = ANY (k.flagged_under), false) AS model_flag) f
LEFT JOIN calo_recon.transaction_scores s
       ON s.user_id = t.user_id AND s.model_id = t.model_id AND s.txn_id = t.txn_id
LEFT JOIN calo_recon.models m ON m.model_id = t.model_id
WHERE k.verdict IS DISTINCT FROM 'dismissed'
  AND (f.model_flag OR t.amount_rule_hit OR k.verdict = 'confirmed');
COMMENT ON VIEW calo_recon.anomalies IS
  'Transactions flagged by the active model that scores them (calo_recon.transaction_models) or by the amount rule (calo_recon.amount_rule_hits: amount above its currency''s threshold in calo_recon.amount_thresholds), plus those analysts confirmed, minus those analysts dismissed';
COMMENT ON COLUMN calo_recon.anomalies.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.anomalies.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.anomalies.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.anomalies.amount IS 'Gross amount';
COMMENT ON COLUMN calo_recon.anomalies.logged_at IS 'Time the transaction was logged';
COMMENT ON COLUMN calo_recon.anomalies.score IS 'Score under the active model that scores it (its currency''s, else the all-currency one), in (0, 1], higher is more anomalous; NULL when not scored yet';
COMMENT ON COLUMN calo_recon.anomalies.threshold IS 'Threshold of that model: a score above it is flagged';
COMMENT ON COLUMN calo_recon.anomalies.model_flag IS 'Flagged by that model (score > threshold)';
COMMENT ON COLUMN calo_recon.anomalies.rule_flag IS 'Flagged by the amount rule: amount above its currency''s threshold in calo_recon.amount_thresholds (calo_recon.amount_rule_hits)';
COMMENT ON COLUMN calo_recon.anomalies.reason IS 'model, amount_rule, model+amount_rule, or analyst (confirmed by an analyst, flagged by neither)';
COMMENT ON COLUMN calo_recon.anomalies.explanation IS 'The top cause in plain words with the numbers, when the model flags it (NULL otherwise)';
COMMENT ON COLUMN calo_recon.anomalies.verdict IS 'Analyst verdict in force: confirmed, or NULL when not judged (dismissed rows are not shown)';
COMMENT ON COLUMN calo_recon.anomalies.model_name IS 'Name of that model; NULL when no model is active for its currency';
COMMENT ON COLUMN calo_recon.anomalies.attribution IS
  'Isolation bits per feature with their direction and the top cause, when the model flags it (calo_recon.transaction_scores.attribution; NULL otherwise)';

SELECT pg_catalog.pg_extension_config_dump('calo_recon.models', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.models_model_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.transaction_scores', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.anomaly_feedback', '');
SELECT pg_catalog.pg_extension_config_dump('calo_recon.anomaly_feedback_feedback_id_seq', '');

REVOKE ALL ON FUNCTION calo_recon.transaction_feature_names() FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.compute_transaction_features(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.models_delete_scores() FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.record_feedback(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.score_transactions(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.train_model(text, float8, int, int, bigint, text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint, text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.model_scope(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.model_scores(bigint, text[], text[]) FROM PUBLIC;
