\echo Use "ALTER EXTENSION calo_recon UPDATE TO '1.2'" to load this file. \quit
-- calo_recon 1.1 -> 1.2 (under development: this script may change until 1.2
-- is released, then it is frozen like the scripts before it). Every change to
-- sql/install/*.sql is also written here as a migration.

-- Bulk writes (issue 8 item 4, issue 11 item 2's NOTIFY): the alert trigger
-- walks from what its transition table holds (chain_findings_since: no
-- look-up of every new row by id, one scan for a bulk insert), sends one
-- NOTIFY per statement with the counts (alerts_notice), and both
-- transaction triggers run without JIT.
ALTER FUNCTION calo_recon.track_new_transactions() SET jit = off;
-- The walk of the alert trigger: chain_findings() from what the transition
-- table already holds (each user's earliest new instant), not from a look-up
-- of every new row by id.
CREATE FUNCTION calo_recon.chain_findings_since(user_ids text[], first_new timestamptz[],
                                                new_txn_ids text[])
RETURNS TABLE (txn_id text, user_id text, finding text, expected numeric, actual numeric,
               difference numeric, tolerance numeric, currency text, is_new boolean)
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'calo_recon_chain_findings_since';
COMMENT ON FUNCTION calo_recon.chain_findings_since(text[], timestamptz[], text[]) IS
  'Internal to the alert trigger: what chain_findings(new_txn_ids) returns, the users of those rows and their earliest logged_at given (first_new at the same position as user_ids; 2202E when the lengths differ), with is_new true for the rows of new_txn_ids';
REVOKE ALL ON FUNCTION calo_recon.chain_findings_since(text[], timestamptz[], text[]) FROM PUBLIC;

-- One notification per inserting statement: how many alerts of each kind it
-- raised and the range of their ids (other sessions' alerts may fall in the
-- range); LISTEN needs no privilege, so no user, amount or balance.
CREATE FUNCTION calo_recon.alerts_notice(alert_ids bigint[], alert_kinds text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.jsonb_build_object(
               'alerts', pg_catalog.count(*),
               'first_alert_id', pg_catalog.min(a.alert_id),
               'last_alert_id', pg_catalog.max(a.alert_id),
               'kinds', (SELECT pg_catalog.jsonb_object_agg(k.alert_kind, k.n)
                         FROM (SELECT b.alert_kind, pg_catalog.count(*) AS n
                               FROM unnest(alert_ids, alert_kinds) AS b (alert_id, alert_kind)  -- multi-argument form: unqualified
                               GROUP BY b.alert_kind) k))::text
    FROM unnest(alert_ids, alert_kinds) AS a (alert_id, alert_kind)  -- multi-argument form: unqualified
$$;
COMMENT ON FUNCTION calo_recon.alerts_notice(bigint[], text[]) IS
  'JSON payload of the one NOTIFY calo_recon_alerts of an inserting statement: alerts (how many it raised), first_alert_id and last_alert_id (their range), kinds (count per alert_kind); the rest is in calo_recon.alerts';
REVOKE EXECUTE ON FUNCTION calo_recon.alerts_notice(bigint[], text[]) FROM PUBLIC;

DROP TRIGGER transactions_alert ON calo_recon.transactions;
DROP FUNCTION calo_recon.alert_new_transactions();
-- jit off: compiling the plans over a large transition table costs more
-- than running them.
CREATE FUNCTION calo_recon.alert_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    first_new timestamptz[];
    new_ids text[];
    one_user text;
    scored_txns text[] := '{}';
    scored_users text[] := '{}';
    scores float8[] := '{}';
    model record;
    amount_threshold numeric;
    raised_ids bigint[] := '{}';
    raised_kinds text[] := '{}';
    found_txns text[];
    found_users text[];
    found_kinds text[];
    found_details jsonb[];
    found_ranks integer[];
    rechecked text[];
BEGIN
    IF NOT coalesce(pg_catalog.current_setting('calo_recon.alerts', true), 'on')::boolean THEN
        RETURN NULL;
    END IF;
    amount_threshold := coalesce(nullif(pg_catalog.current_setting('calo_recon.amount_threshold', true), ''),
                                 '1000')::numeric;

    -- each user of the new rows with its earliest new instant: where the
    -- walk starts re-checking
    SELECT pg_catalog.array_agg(u.user_id), pg_catalog.array_agg(u.first_new)
    INTO users, first_new
    FROM (SELECT n.user_id, pg_catalog.min(n.logged_at) AS first_new
          FROM new_rows n GROUP BY n.user_id) u;

    -- wait for concurrent inserts of these users, so that the statement
    -- below (a new snapshot under READ COMMITTED) sees their rows; a
    -- REPEATABLE READ or SERIALIZABLE snapshot cannot see them, so such an
    -- insert that had to wait fails as a serialization failure, to be retried
    IF calo_recon.lock_user_chains(users)
       AND pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'could not check the chain of a transaction: a concurrent insert of the same user ended after this transaction''s snapshot was taken'
            USING ERRCODE = 'serialization_failure',
                  HINT = 'Retry the transaction; the chain alert needs the user''s previous transaction.';
    END IF;

    -- the walk of reconcile() over the stored rows (chain order and rules in
    -- C, each row against its predecessor in chain order): the findings of
    -- the new rows, and the chain findings of the stored rows after them,
    -- whose predecessor may now be a new row
    SELECT pg_catalog.array_agg(n.txn_id) INTO new_ids FROM new_rows n;
    WITH walked AS MATERIALIZED (
        SELECT f.* FROM calo_recon.chain_findings_since(users, first_new, new_ids) f
    ), found AS (
        SELECT w.txn_id, w.user_id, w.finding AS alert_kind,
               CASE w.finding
                   -- actual is new_balance, unless it is beyond the walk's range
                   WHEN 'overdraft' THEN pg_catalog.jsonb_build_object(
                       'new_balance', coalesce(w.actual, (SELECT n.new_balance FROM new_rows n
                                                          WHERE n.txn_id = w.txn_id)),
                       'currency', w.currency)
                   ELSE pg_catalog.jsonb_build_object('expected', w.expected, 'actual', w.actual,
                                                      'difference', w.difference, 'tolerance', w.tolerance,
                                                      'currency', w.currency)
               END AS detail,
               calo_recon.finding_rank(w.finding) AS ord
        FROM walked w
        WHERE (w.is_new AND w.finding IN ('arithmetic', 'chain', 'out_of_range', 'overdraft'))
           OR (NOT w.is_new AND w.finding = 'chain')
    )
    SELECT (SELECT pg_catalog.array_agg(DISTINCT w.txn_id) FROM walked w WHERE NOT w.is_new),
           pg_catalog.array_agg(found.txn_id), pg_catalog.array_agg(found.user_id),
           pg_catalog.array_agg(found.alert_kind), pg_catalog.array_agg(found.detail),
           pg_catalog.array_agg(found.ord)
    INTO rechecked, found_txns, found_users, found_kinds, found_details, found_ranks
    FROM found;

    -- an open chain alert of a re-checked row that the walk no longer makes,
    -- with that detail (another predecessor), is resolved before the new one
    -- is raised
    IF rechecked IS NOT NULL THEN
        UPDATE calo_recon.alerts a
        SET resolved_at = pg_catalog.now(),
            resolution = CASE WHEN a.txn_id = ANY (found_txns)
                              THEN 'chain re-checked after an out-of-order insert: a break against another predecessor in chain order, raised as a new alert'
                              ELSE 'chain re-checked after an out-of-order insert: old_balance follows the predecessor in chain order'
                         END
        WHERE a.txn_id = ANY (rechecked) AND a.alert_kind = 'chain' AND a.resolved_at IS NULL
          AND NOT EXISTS (SELECT FROM unnest(found_txns, found_kinds, found_details) AS f(txn_id, kind, detail)  -- multi-argument form: unqualified
                          WHERE f.txn_id = a.txn_id AND f.kind = 'chain' AND f.detail = a.detail);
    END IF;

    -- the new alerts and the amount rule
    WITH found AS (
        SELECT f.txn_id, f.user_id, f.alert_kind, f.detail, f.ord
        FROM unnest(found_txns, found_users, found_kinds, found_details, found_ranks)  -- multi-argument form: unqualified
             AS f(txn_id, user_id, alert_kind, detail, ord)
        UNION ALL
        SELECT n.txn_id, n.user_id, 'amount_rule',
               pg_catalog.jsonb_build_object('amount', n.amount, 'threshold', amount_threshold,
                                             'currency', n.currency),
               NULL::integer  -- after the walk's findings
        FROM new_rows n
        WHERE n.amount > amount_threshold
    ), stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT found.txn_id, found.user_id, found.alert_kind, found.detail
        FROM found ORDER BY found.txn_id, found.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
           raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
    INTO raised_ids, raised_kinds FROM stored;

    -- the active model, with the same features and flag rule as
    -- score_transactions() (no model part in partial builds)
    IF pg_catalog.to_regclass('calo_recon.models') IS NOT NULL THEN
        SELECT m.* INTO model FROM calo_recon.models m WHERE m.active;
    END IF;
    IF model.model_id IS NOT NULL
       AND model.features IS NOT DISTINCT FROM calo_recon.transaction_feature_names() THEN
        -- The feature view has per-user window functions and aggregates: an
        -- equality on user_id is pushed below both, so a few users are scored
        -- one by one (the real-time case); a bulk insert scores the view once.
        IF pg_catalog.cardinality(users) <= 20 THEN
            FOREACH one_user IN ARRAY (SELECT pg_catalog.array_agg(u.u ORDER BY u.u)
                                       FROM pg_catalog.unnest(users) AS u (u)) LOOP
                SELECT scored_txns || pg_catalog.array_agg(f.txn_id),
                       scored_users || pg_catalog.array_agg(f.user_id),
                       scores || pg_catalog.array_agg(calo_recon.iforest_score(model.forest,
                                     calo_recon.scaler_transform(model.scaler, f.features)))
                INTO scored_txns, scored_users, scores
                FROM calo_recon.transaction_features f
                WHERE f.user_id = one_user AND f.txn_id IN (SELECT n.txn_id FROM new_rows n);
            END LOOP;
        ELSE
            SELECT pg_catalog.array_agg(f.txn_id), pg_catalog.array_agg(f.user_id),
                   pg_catalog.array_agg(calo_recon.iforest_score(model.forest,
                       calo_recon.scaler_transform(model.scaler, f.features)))
            INTO scored_txns, scored_users, scores
            FROM calo_recon.transaction_features f
            WHERE f.txn_id IN (SELECT n.txn_id FROM new_rows n);
        END IF;

        WITH stored AS (
            INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
            SELECT s.txn_id, s.user_id, 'model',
                   pg_catalog.jsonb_build_object('score', s.score, 'threshold', model.threshold,
                                                 'model_id', model.model_id, 'model_name', model.model_name)
            FROM unnest(scored_txns, scored_users, scores) AS s(txn_id, user_id, score)  -- multi-argument form: unqualified
            WHERE s.score > model.threshold
            ORDER BY s.txn_id
            ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
            RETURNING alert_id, alert_kind
        )
        SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
               raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
        INTO raised_ids, raised_kinds FROM stored;
    END IF;

    -- one notification for the statement, with the count (the alert ids
    -- keep NOTIFY from folding two statements' equal payloads)
    IF pg_catalog.cardinality(raised_ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(raised_ids, raised_kinds));
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_new_transactions() IS
  'Trigger: checks inserted transactions (when calo_recon.alerts is on), raises alerts rows and sends one NOTIFY calo_recon_alerts per statement that raised any (payload: calo_recon.alerts_notice)';
CREATE TRIGGER transactions_alert
    AFTER INSERT ON calo_recon.transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.alert_new_transactions();

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
    LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 1000;
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

-- The model alerts of new rows score through model_scores() (the C scoring
-- path, the new rows' users only); the rest of the trigger is as the bulk
-- block above left it.
CREATE OR REPLACE FUNCTION calo_recon.alert_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    first_new timestamptz[];
    new_ids text[];
    model record;
    amount_threshold numeric;
    raised_ids bigint[] := '{}';
    raised_kinds text[] := '{}';
    found_txns text[];
    found_users text[];
    found_kinds text[];
    found_details jsonb[];
    found_ranks integer[];
    rechecked text[];
BEGIN
    IF NOT coalesce(pg_catalog.current_setting('calo_recon.alerts', true), 'on')::boolean THEN
        RETURN NULL;
    END IF;
    amount_threshold := coalesce(nullif(pg_catalog.current_setting('calo_recon.amount_threshold', true), ''),
                                 '1000')::numeric;

    -- each user of the new rows with its earliest new instant: where the
    -- walk starts re-checking
    SELECT pg_catalog.array_agg(u.user_id), pg_catalog.array_agg(u.first_new)
    INTO users, first_new
    FROM (SELECT n.user_id, pg_catalog.min(n.logged_at) AS first_new
          FROM new_rows n GROUP BY n.user_id) u;

    -- wait for concurrent inserts of these users, so that the statement
    -- below (a new snapshot under READ COMMITTED) sees their rows; a
    -- REPEATABLE READ or SERIALIZABLE snapshot cannot see them, so such an
    -- insert that had to wait fails as a serialization failure, to be retried
    IF calo_recon.lock_user_chains(users)
       AND pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'could not check the chain of a transaction: a concurrent insert of the same user ended after this transaction''s snapshot was taken'
            USING ERRCODE = 'serialization_failure',
                  HINT = 'Retry the transaction; the chain alert needs the user''s previous transaction.';
    END IF;

    -- the walk of reconcile() over the stored rows (chain order and rules in
    -- C, each row against its predecessor in chain order): the findings of
    -- the new rows, and the chain findings of the stored rows after them,
    -- whose predecessor may now be a new row
    SELECT pg_catalog.array_agg(n.txn_id) INTO new_ids FROM new_rows n;
    WITH walked AS MATERIALIZED (
        SELECT f.* FROM calo_recon.chain_findings_since(users, first_new, new_ids) f
    ), found AS (
        SELECT w.txn_id, w.user_id, w.finding AS alert_kind,
               CASE w.finding
                   -- actual is new_balance, unless it is beyond the walk's range
                   WHEN 'overdraft' THEN pg_catalog.jsonb_build_object(
                       'new_balance', coalesce(w.actual, (SELECT n.new_balance FROM new_rows n
                                                          WHERE n.txn_id = w.txn_id)),
                       'currency', w.currency)
                   ELSE pg_catalog.jsonb_build_object('expected', w.expected, 'actual', w.actual,
                                                      'difference', w.difference, 'tolerance', w.tolerance,
                                                      'currency', w.currency)
               END AS detail,
               calo_recon.finding_rank(w.finding) AS ord
        FROM walked w
        WHERE (w.is_new AND w.finding IN ('arithmetic', 'chain', 'out_of_range', 'overdraft'))
           OR (NOT w.is_new AND w.finding = 'chain')
    )
    SELECT (SELECT pg_catalog.array_agg(DISTINCT w.txn_id) FROM walked w WHERE NOT w.is_new),
           pg_catalog.array_agg(found.txn_id), pg_catalog.array_agg(found.user_id),
           pg_catalog.array_agg(found.alert_kind), pg_catalog.array_agg(found.detail),
           pg_catalog.array_agg(found.ord)
    INTO rechecked, found_txns, found_users, found_kinds, found_details, found_ranks
    FROM found;

    -- an open chain alert of a re-checked row that the walk no longer makes,
    -- with that detail (another predecessor), is resolved before the new one
    -- is raised
    IF rechecked IS NOT NULL THEN
        UPDATE calo_recon.alerts a
        SET resolved_at = pg_catalog.now(),
            resolution = CASE WHEN a.txn_id = ANY (found_txns)
                              THEN 'chain re-checked after an out-of-order insert: a break against another predecessor in chain order, raised as a new alert'
                              ELSE 'chain re-checked after an out-of-order insert: old_balance follows the predecessor in chain order'
                         END
        WHERE a.txn_id = ANY (rechecked) AND a.alert_kind = 'chain' AND a.resolved_at IS NULL
          AND NOT EXISTS (SELECT FROM unnest(found_txns, found_kinds, found_details) AS f(txn_id, kind, detail)  -- multi-argument form: unqualified
                          WHERE f.txn_id = a.txn_id AND f.kind = 'chain' AND f.detail = a.detail);
    END IF;

    -- the new alerts and the amount rule
    WITH found AS (
        SELECT f.txn_id, f.user_id, f.alert_kind, f.detail, f.ord
        FROM unnest(found_txns, found_users, found_kinds, found_details, found_ranks)  -- multi-argument form: unqualified
             AS f(txn_id, user_id, alert_kind, detail, ord)
        UNION ALL
        SELECT n.txn_id, n.user_id, 'amount_rule',
               pg_catalog.jsonb_build_object('amount', n.amount, 'threshold', amount_threshold,
                                             'currency', n.currency),
               NULL::integer  -- after the walk's findings
        FROM new_rows n
        WHERE n.amount > amount_threshold
    ), stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT found.txn_id, found.user_id, found.alert_kind, found.detail
        FROM found ORDER BY found.txn_id, found.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
           raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
    INTO raised_ids, raised_kinds FROM stored;

    -- the active model, through the scoring path of score_transactions()
    -- (calo_recon.model_scores: only the new rows' users are read and
    -- walked; no model part in partial builds)
    IF pg_catalog.to_regclass('calo_recon.models') IS NOT NULL THEN
        SELECT m.* INTO model FROM calo_recon.models m WHERE m.active;
    END IF;
    IF model.model_id IS NOT NULL
       AND model.features IS NOT DISTINCT FROM calo_recon.transaction_feature_names() THEN
        WITH stored AS (
            INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
            SELECT s.txn_id, s.user_id, 'model',
                   pg_catalog.jsonb_build_object('score', s.score, 'threshold', model.threshold,
                                                 'model_id', model.model_id, 'model_name', model.model_name)
            FROM calo_recon.model_scores(model.model_id, users) s
            WHERE s.flagged AND s.txn_id IN (SELECT n.txn_id FROM new_rows n)
            ORDER BY s.txn_id
            ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
            RETURNING alert_id, alert_kind
        )
        SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
               raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
        INTO raised_ids, raised_kinds FROM stored;
    END IF;

    -- one notification for the statement, with the count (the alert ids
    -- keep NOTIFY from folding two statements' equal payloads)
    IF pg_catalog.cardinality(raised_ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(raised_ids, raised_kinds));
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_new_transactions() IS
  'Trigger: checks inserted transactions (when calo_recon.alerts is on), raises alerts rows and sends one NOTIFY calo_recon_alerts per statement that raised any (payload: calo_recon.alerts_notice)';
