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
-- and the view; ops' reapply_grants() at the end grants the new functions.
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
-- explanation of flagged rows in C (src/glue/score_glue.c), the scores written
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

-- ops (issue 11): alert lifecycle and severity (sql/install/72_alerts.sql,
-- 74_alert_lifecycle.sql), more alerts (75), health (76), retention (77),
-- roles (73_roles.sql).  The grants given with grant_role() before this
-- update are recorded first (the kind read from what the role holds), and
-- re-applied at the very end, so the functions this script re-creates and
-- the objects it adds are granted as before: reapply_grants() must stay the
-- last statement of the script.
CREATE TABLE calo_recon.role_kinds (
    kind        text PRIMARY KEY,
    description text NOT NULL
);
COMMENT ON TABLE calo_recon.role_kinds IS 'The kinds of role grant_role() knows (README "Roles"): the one list of them';
COMMENT ON COLUMN calo_recon.role_kinds.kind IS 'Name of the kind';
COMMENT ON COLUMN calo_recon.role_kinds.description IS 'What a role of the kind may do';
INSERT INTO calo_recon.role_kinds (kind, description) VALUES
  ('reader',   'USAGE on the schema, SELECT on transactions and the BI views'),
  ('analyst',  'reader + reads models, scores, feedback and the feature views; records feedback'),
  ('operator', 'reader + ingestion, reconciliation, refresh, training, scoring, exports, alerts, retention, feedback'),
  ('monitor',  'USAGE on the schema, the health view and check_health(); no wallet data');
CREATE TABLE calo_recon.role_grants (
    role_name  name        NOT NULL,
    kind       text        NOT NULL REFERENCES calo_recon.role_kinds,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    granted_by name        NOT NULL DEFAULT CURRENT_USER,
    PRIMARY KEY (role_name, kind)
);
COMMENT ON TABLE calo_recon.role_grants IS
  'Every kind grant_role() gave a role, until revoke_role() takes it back; reapply_grants() grants them again (every update script ends with it)';
COMMENT ON COLUMN calo_recon.role_grants.role_name IS 'The role (cluster-wide; a dropped role is skipped)';
COMMENT ON COLUMN calo_recon.role_grants.kind IS 'The kind it was granted (calo_recon.role_kinds)';
COMMENT ON COLUMN calo_recon.role_grants.granted_at IS 'When it was first granted';
COMMENT ON COLUMN calo_recon.role_grants.granted_by IS 'Who granted it first';
SELECT pg_catalog.pg_extension_config_dump('calo_recon.role_grants', '');
INSERT INTO calo_recon.role_grants (role_name, kind)
SELECT r.rolname,
       CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
                         WHERE p.oid = 'calo_recon.refresh(text)'::pg_catalog.regprocedure
                           AND a.grantee = r.oid AND a.privilege_type = 'EXECUTE') THEN 'operator'
            WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
                         WHERE c.oid = 'calo_recon.anomaly_feedback'::pg_catalog.regclass
                           AND a.grantee = r.oid AND a.privilege_type = 'SELECT') THEN 'analyst'
            ELSE 'reader' END
FROM pg_catalog.pg_namespace n
CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) a
JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
WHERE n.nspname = 'calo_recon' AND a.privilege_type = 'USAGE' AND a.grantee <> n.nspowner;
CREATE TABLE calo_recon.alert_kinds (
    alert_kind  text PRIMARY KEY,
    severity    text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    raised_by   text NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE calo_recon.alert_kinds IS
  'Every kind of alert with its severity: the one definition of both (README "Alert lifecycle")';
COMMENT ON COLUMN calo_recon.alert_kinds.alert_kind IS 'Name of the kind, as in calo_recon.alerts.alert_kind';
COMMENT ON COLUMN calo_recon.alert_kinds.severity IS 'critical (money may be wrong: act now), warning (look today), info (review)';
COMMENT ON COLUMN calo_recon.alert_kinds.raised_by IS 'What raises it: the insert-time check of new transactions, reconcile(), refresh() or check_health()';
COMMENT ON COLUMN calo_recon.alert_kinds.description IS 'When it is raised';
INSERT INTO calo_recon.alert_kinds (alert_kind, severity, raised_by, description) VALUES
  ('arithmetic',   'critical', 'insert', 'the balances of a new transaction do not add up (same core as reconcile())'),
  ('chain',        'critical', 'insert', 'old_balance differs from the new_balance of the user''s previous stored transaction in chain order'),
  ('out_of_range', 'warning',  'insert', 'a value too large or too precise to check exactly'),
  ('overdraft',    'warning',  'insert', 'new_balance < 0'),
  ('amount_rule',  'info',     'insert', 'amount > calo_recon.amount_threshold'),
  ('model',        'info',     'insert', 'the active model''s score is above its threshold'),
  ('discrepancy',  'critical', 'raise_alerts', 'a new balance error whose subscription and payment balances differ by at least the tolerance (calo_recon.discrepancies)'),
  ('conflict',     'critical', 'raise_alerts', 'a transaction id delivered again with a different payload: a possible double charge (quarantine reason conflict)'),
  ('refresh_failed',  'critical', 'raise_alerts', 'the last refresh() run failed or did not finish; resolved by the next run that succeeds'),
  ('refresh_skipped', 'warning',  'refresh', 'refresh() runs have been skipped (writer lock held) for longer than calo_recon.refresh_max_skip; the run is recorded as failed; resolved by the next run that succeeds'),
  ('stale_data',   'warning',  'raise_alerts', 'no file with transactions was ingested for longer than calo_recon.max_data_age; resolved once one is');
ALTER TABLE calo_recon.alerts
    DROP CONSTRAINT alerts_alert_kind_check,
    ADD CONSTRAINT alerts_alert_kind_fkey FOREIGN KEY (alert_kind) REFERENCES calo_recon.alert_kinds,
    ADD COLUMN resolved_by name,
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN acknowledged_by name,
    ADD COLUMN acknowledge_note text,
    ADD COLUMN run_id bigint DEFAULT NULLIF(pg_catalog.current_setting('calo_recon_run.run_id', true), '')::bigint,
    ADD COLUMN raised_in xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    ADD CONSTRAINT alerts_resolved_by_check CHECK (resolved_at IS NOT NULL OR resolved_by IS NULL),
    ADD CONSTRAINT alerts_acknowledged_check CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL)
                                                    AND (acknowledged_at IS NOT NULL OR acknowledge_note IS NULL));
ALTER TABLE calo_recon.alerts
    ADD COLUMN status text NOT NULL GENERATED ALWAYS AS (
        CASE WHEN resolved_at IS NOT NULL THEN 'resolved'
             WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
             ELSE 'open' END) STORED;
ALTER TABLE calo_recon.alerts ALTER COLUMN txn_id DROP NOT NULL, ALTER COLUMN user_id DROP NOT NULL;
CREATE UNIQUE INDEX alerts_open_subject_idx ON calo_recon.alerts (alert_kind, user_id) NULLS NOT DISTINCT
    WHERE txn_id IS NULL AND resolved_at IS NULL;
COMMENT ON TABLE calo_recon.alerts IS
  'Alerts raised when a transaction was inserted (calo_recon.alerts on), or when an out-of-order insert re-checked its chain; each was also sent as NOTIFY calo_recon_alerts. Lifecycle: open, acknowledged (acknowledge_alert), resolved (resolve_alert, or by the reconciliation when it no longer supports the alert); see status';
COMMENT ON COLUMN calo_recon.alerts.alert_id IS 'Surrogate key; the notification payload carries it and alert_kind only';
COMMENT ON COLUMN calo_recon.alerts.txn_id IS 'Transaction that raised the alert; NULL for alerts about a user''s balance error without one, or about the system (refresh, staleness)';
COMMENT ON COLUMN calo_recon.alerts.user_id IS 'Wallet owner; NULL for alerts about the system';
COMMENT ON COLUMN calo_recon.alerts.alert_kind IS
  'Kind of alert, one of calo_recon.alert_kinds (which gives its severity and when it is raised): arithmetic, chain, out_of_range, overdraft, amount_rule and model at insert time; discrepancy, conflict, refresh_failed, refresh_skipped and stale_data by refresh() and raise_alerts()';
COMMENT ON COLUMN calo_recon.alerts.detail IS
  'What was found: expected, actual, difference and tolerance for balance findings, new_balance for overdrafts, amount and threshold for the amount rule, score, threshold and model_id for the model; error_id and the balances for discrepancies; quarantine_id and the delivered payload for conflicts; run_id and error for refresh alerts; last_loaded_at and max_data_age for stale_data';
COMMENT ON COLUMN calo_recon.alerts.created_at IS 'When the alert was raised (the inserting transaction''s start time)';
COMMENT ON COLUMN calo_recon.alerts.resolved_at IS
  'NULL while the alert is not resolved; else when it was resolved (the resolving transaction''s start time), by resolve_alert() or by the reconciliation';
COMMENT ON COLUMN calo_recon.alerts.resolution IS
  'Why the alert was resolved: the note given to resolve_alert(), or, resolved by the reconciliation, a later out-of-order insert re-checked the chain (no break any more, or a break against another predecessor, raised as a new alert), or reconcile() found no such finding; NULL until resolved';
COMMENT ON COLUMN calo_recon.alerts.resolved_by IS
  'Login role (session_user) of the session that resolved the alert, by resolve_alert() or by a statement whose reconciliation resolved it; stamped by the product';
COMMENT ON COLUMN calo_recon.alerts.acknowledged_at IS 'When someone took the alert on with acknowledge_alert(); NULL until then';
COMMENT ON COLUMN calo_recon.alerts.acknowledged_by IS 'Login role (session_user) that acknowledged it; stamped by the product';
COMMENT ON COLUMN calo_recon.alerts.acknowledge_note IS 'Note given to acknowledge_alert(), if any';
COMMENT ON COLUMN calo_recon.alerts.run_id IS 'calo_recon.runs row of the refresh() run that raised it; NULL when raised outside a run (an ingest, an insert)';
COMMENT ON COLUMN calo_recon.alerts.raised_in IS 'Database transaction that raised it: with user_id and alert_kind, the alert''s group (see alert_groups)';
COMMENT ON COLUMN calo_recon.alerts.status IS 'open, acknowledged or resolved, from resolved_at and acknowledged_at';
COMMENT ON INDEX calo_recon.alerts_open_idx IS 'At most one unresolved alert of a kind per transaction';
COMMENT ON INDEX calo_recon.alerts_open_subject_idx IS 'At most one unresolved alert of a kind per user (or about the system) among those without a transaction';
-- Alert lifecycle (README "Alert lifecycle"): open -> acknowledged ->
-- resolved, with who, when and a note.  Functions run with the caller's
-- rights (no SECURITY DEFINER), so whoever may acknowledge may also UPDATE
-- calo_recon.alerts; a trigger therefore stamps who and when itself, from the
-- session's login role and the transaction time, whatever an UPDATE says, so
-- the record cannot be signed in someone else's name.  The reconciliation's
-- own resolutions (the insert-time re-check, reconcile()) are UPDATEs of
-- resolved_at and resolution, stamped the same way.

CREATE FUNCTION calo_recon.alert_stamp_lifecycle() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.resolved_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already resolved', OLD.alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Resolved by %s at %s: %s', OLD.resolved_by, OLD.resolved_at, OLD.resolution),
                  HINT = 'A resolved alert is final; a new finding raises a new alert.';
    END IF;
    IF (NEW.acknowledged_at, NEW.acknowledged_by, NEW.acknowledge_note)
       IS DISTINCT FROM (OLD.acknowledged_at, OLD.acknowledged_by, OLD.acknowledge_note) THEN
        IF OLD.acknowledged_at IS NOT NULL THEN
            RAISE EXCEPTION 'alert % is already acknowledged', OLD.alert_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = pg_catalog.format('Acknowledged by %s at %s.', OLD.acknowledged_by, OLD.acknowledged_at);
        END IF;
        NEW.acknowledged_at := pg_catalog.now();
        NEW.acknowledged_by := session_user;
    END IF;
    IF NEW.resolved_at IS NOT NULL THEN
        NEW.resolved_at := pg_catalog.now();
        NEW.resolved_by := session_user;
    ELSIF NEW.resolved_by IS NOT NULL THEN
        NEW.resolved_by := NULL;  -- the CHECK explains: only a resolved alert has a resolver
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_stamp_lifecycle() IS
  'Trigger: stamps who (session_user) and when (now()) of an acknowledgement or resolution of calo_recon.alerts, and refuses to change a resolved alert or acknowledge one twice (55000)';
CREATE TRIGGER alerts_stamp_lifecycle
    BEFORE UPDATE ON calo_recon.alerts
    FOR EACH ROW EXECUTE FUNCTION calo_recon.alert_stamp_lifecycle();

-- why acknowledge_alert/resolve_alert changed nothing: the alert is missing
-- (P0002) or its state refuses it (55000, from the stamping trigger's rules)
CREATE FUNCTION calo_recon.alert_refuse(alert_id bigint, action text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a calo_recon.alerts;
BEGIN
    SELECT x.* INTO a FROM calo_recon.alerts x WHERE x.alert_id = alert_refuse.alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_refuse.alert_id USING ERRCODE = 'no_data_found';
    END IF;
    IF a.resolved_at IS NOT NULL THEN
        RAISE EXCEPTION 'alert % is already resolved', a.alert_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Resolved by %s at %s: %s', a.resolved_by, a.resolved_at, a.resolution);
    END IF;
    RAISE EXCEPTION 'alert % is already acknowledged', a.alert_id
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = pg_catalog.format('Acknowledged by %s at %s.', a.acknowledged_by, a.acknowledged_at),
              HINT = CASE action WHEN 'acknowledge' THEN 'Resolve it with calo_recon.resolve_alert() once handled.' END;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_refuse(bigint, text) IS
  'Internal to acknowledge_alert() and resolve_alert(): raises why the alert could not be changed (P0002 missing, 55000 already acknowledged or resolved, naming by whom and when)';
REVOKE EXECUTE ON FUNCTION calo_recon.alert_refuse(bigint, text) FROM PUBLIC;

CREATE FUNCTION calo_recon.acknowledge_alert(alert_id bigint, note text DEFAULT NULL,
                                             whole_group boolean DEFAULT false)
RETURNS SETOF calo_recon.alerts
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed bigint;
BEGIN
    IF alert_id IS NULL OR whole_group IS NULL THEN
        RAISE EXCEPTION 'alert_id and whole_group must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- waits for a concurrent acknowledgement or resolution of these rows,
    -- then re-reads them: the second of two people is told who came first
    RETURN QUERY
    UPDATE calo_recon.alerts a SET acknowledged_at = pg_catalog.now(), acknowledge_note = note
    WHERE a.acknowledged_at IS NULL AND a.resolved_at IS NULL
      AND (a.alert_id = acknowledge_alert.alert_id
           OR (whole_group AND (a.raised_in, a.user_id, a.alert_kind) =
               (SELECT g.raised_in, g.user_id, g.alert_kind FROM calo_recon.alerts g
                WHERE g.alert_id = acknowledge_alert.alert_id)))
    RETURNING a.*;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 0 THEN
        PERFORM calo_recon.alert_refuse(alert_id, 'acknowledge');
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.acknowledge_alert(bigint, text, boolean) IS
  'Acknowledges an open alert (status acknowledged, acknowledged_by the session''s login role, acknowledged_at now, the note), or with whole_group every open alert of its group (same raising transaction, user and kind); returns the rows changed. P0002 when there is no such alert, 55000 when it is already acknowledged or resolved (naming by whom and when): of two people acknowledging at once, the second waits for the first and gets 55000';
REVOKE EXECUTE ON FUNCTION calo_recon.acknowledge_alert(bigint, text, boolean) FROM PUBLIC;

CREATE FUNCTION calo_recon.resolve_alert(alert_id bigint, note text, whole_group boolean DEFAULT false)
RETURNS SETOF calo_recon.alerts
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed bigint;
BEGIN
    IF alert_id IS NULL OR whole_group IS NULL THEN
        RAISE EXCEPTION 'alert_id and whole_group must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.btrim(coalesce(note, '')) = '' THEN
        RAISE EXCEPTION 'resolving an alert needs a note saying why'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: calo_recon.resolve_alert(42, ''refund issued, ticket FIN-123'').';
    END IF;
    RETURN QUERY
    UPDATE calo_recon.alerts a SET resolved_at = pg_catalog.now(), resolution = note
    WHERE a.resolved_at IS NULL
      AND (a.alert_id = resolve_alert.alert_id
           OR (whole_group AND (a.raised_in, a.user_id, a.alert_kind) =
               (SELECT g.raised_in, g.user_id, g.alert_kind FROM calo_recon.alerts g
                WHERE g.alert_id = resolve_alert.alert_id)))
    RETURNING a.*;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 0 THEN
        PERFORM calo_recon.alert_refuse(alert_id, 'resolve');
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.resolve_alert(bigint, text, boolean) IS
  'Resolves an open or acknowledged alert with a note saying why (status resolved, resolved_by the session''s login role, resolved_at now), or with whole_group every unresolved alert of its group; returns the rows changed. 22023 without a note, P0002 when there is no such alert, 55000 when it is already resolved (naming by whom, when and why)';
REVOKE EXECUTE ON FUNCTION calo_recon.resolve_alert(bigint, text, boolean) FROM PUBLIC;

CREATE VIEW calo_recon.alert_groups AS
SELECT a.raised_in, pg_catalog.max(a.run_id) AS run_id, a.user_id, a.alert_kind, k.severity,
       pg_catalog.count(*) AS alerts,
       pg_catalog.count(*) FILTER (WHERE a.status = 'open') AS open,
       pg_catalog.count(*) FILTER (WHERE a.status = 'acknowledged') AS acknowledged,
       pg_catalog.min(a.alert_id) AS first_alert_id,
       pg_catalog.min(a.created_at) AS created_at
FROM calo_recon.alerts a
JOIN calo_recon.alert_kinds k ON k.alert_kind = a.alert_kind
GROUP BY a.raised_in, a.user_id, a.alert_kind, k.severity;
COMMENT ON VIEW calo_recon.alert_groups IS
  'Alerts grouped by the transaction that raised them (a refresh() run, an ingest), the user and the kind: what on-call looks at first; acknowledge or resolve a whole group with acknowledge_alert(first_alert_id, note, true)';
COMMENT ON COLUMN calo_recon.alert_groups.raised_in IS 'Database transaction that raised the group';
COMMENT ON COLUMN calo_recon.alert_groups.run_id IS 'refresh() run that raised it, NULL outside a run';
COMMENT ON COLUMN calo_recon.alert_groups.user_id IS 'Wallet owner (NULL for alerts about the system)';
COMMENT ON COLUMN calo_recon.alert_groups.alert_kind IS 'Kind of alert';
COMMENT ON COLUMN calo_recon.alert_groups.severity IS 'Severity of the kind (calo_recon.alert_kinds)';
COMMENT ON COLUMN calo_recon.alert_groups.alerts IS 'Alerts in the group';
COMMENT ON COLUMN calo_recon.alert_groups.open IS 'Of which open (neither acknowledged nor resolved)';
COMMENT ON COLUMN calo_recon.alert_groups.acknowledged IS 'Of which acknowledged and not resolved';
COMMENT ON COLUMN calo_recon.alert_groups.first_alert_id IS 'Lowest alert_id of the group, to pass to acknowledge_alert or resolve_alert with whole_group';
COMMENT ON COLUMN calo_recon.alert_groups.created_at IS 'When the group''s first alert was raised';
-- runs explain themselves (duration, DETAIL, HINT, how long skipped)
ALTER TABLE calo_recon.runs
    ADD COLUMN error_detail text,
    ADD COLUMN error_hint text,
    ADD COLUMN skipped_since timestamptz;
ALTER TABLE calo_recon.runs
    ADD COLUMN duration interval GENERATED ALWAYS AS (finished_at - started_at) STORED;
COMMENT ON TABLE calo_recon.runs IS
  'One row per calo_recon.refresh() call: what it did, how it ended, and the error when it failed';
COMMENT ON COLUMN calo_recon.runs.run_id IS 'Surrogate key, increasing with each run';
COMMENT ON COLUMN calo_recon.runs.started_at IS 'When the run started';
COMMENT ON COLUMN calo_recon.runs.finished_at IS 'When the run ended (NULL while it runs)';
COMMENT ON COLUMN calo_recon.runs.status IS 'running (refresh_job() commits it before the work), succeeded, failed (see error; also a run whose session stopped running it, and a skipped run once runs have been skipped longer than calo_recon.refresh_max_skip), or skipped (another session held the writer lock: see error)';
COMMENT ON COLUMN calo_recon.runs.folder IS 'Folder under calo_recon.import_directory the run ingested';
COMMENT ON COLUMN calo_recon.runs.files IS 'Files ingested (files seen before are not counted)';
COMMENT ON COLUMN calo_recon.runs.skipped_files IS 'Files that were not logs (or already ingested), skipped';
COMMENT ON COLUMN calo_recon.runs.events IS 'Log events read';
COMMENT ON COLUMN calo_recon.runs.transactions IS 'New transactions stored';
COMMENT ON COLUMN calo_recon.runs.reconciled_users IS 'Users whose findings were recomputed';
COMMENT ON COLUMN calo_recon.runs.breaks IS 'Arithmetic and chain breaks of the reconciled users';
COMMENT ON COLUMN calo_recon.runs.scored IS 'Transactions scored with the active model (0 when none is active)';
COMMENT ON COLUMN calo_recon.runs.error IS 'SQLSTATE and message of the failure, or which process held the writer lock and what it ran when the run was skipped';
COMMENT ON COLUMN calo_recon.runs.backend_pid IS 'Server process that ran it (see check_last_refresh())';
COMMENT ON COLUMN calo_recon.runs.error_detail IS 'DETAIL of the error of a failed run, if it had one';
COMMENT ON COLUMN calo_recon.runs.error_hint IS 'HINT of the error of a failed run, if it had one';
COMMENT ON COLUMN calo_recon.runs.skipped_since IS 'For a run that did not start (the writer lock held): when the unbroken series of such runs it ends began';
COMMENT ON COLUMN calo_recon.runs.duration IS 'finished_at - started_at; NULL while it runs';
-- Alerts that no single inserted transaction raises (README "More alerts"):
-- discrepancies and conflicts found by ingestion, failed or long-skipped
-- refresh() runs, stale data.  refresh() raises them at the end of every run
-- (and refresh_skipped when it gives up waiting); raise_alerts() does the same
-- on demand.  Like the insert-time alerts they honour calo_recon.alerts: with
-- it off, what is found is recorded as seen (the high-water marks below move
-- on) without alerting, which is how a backfill pages nobody.

CREATE FUNCTION calo_recon.ops_settings(OUT refresh_max_skip interval, OUT max_data_age interval,
                                        OUT alert_backfill_age interval)
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_ops_settings';
COMMENT ON FUNCTION calo_recon.ops_settings() IS
  'The operations settings calo_recon.refresh_max_skip, calo_recon.max_data_age and calo_recon.alert_backfill_age of this session as intervals (NULL when 0, off)';
REVOKE EXECUTE ON FUNCTION calo_recon.ops_settings() FROM PUBLIC;

-- How far raise_alerts() has looked: each new balance error or conflict is
-- considered once.  Ingests and refresh() take the writer lock, so ids are
-- handed out in commit order for the rows they write.
CREATE TABLE calo_recon.alert_marks (
    source  text   PRIMARY KEY CHECK (source IN ('balance_errors', 'quarantine')),
    last_id bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE calo_recon.alert_marks IS
  'High-water marks of raise_alerts(): the last balance_errors.error_id and quarantine.quarantine_id it has considered for discrepancy and conflict alerts';
COMMENT ON COLUMN calo_recon.alert_marks.source IS 'balance_errors (discrepancies) or quarantine (conflicts)';
COMMENT ON COLUMN calo_recon.alert_marks.last_id IS 'Highest id considered; rows above it are new';
-- no rows at install: raise_alerts() adds them, so a restored dump (which
-- holds them) never collides with the extension's own
SELECT pg_catalog.pg_extension_config_dump('calo_recon.alert_marks', '');

-- An alert about the system (no user, no transaction): at most one open per
-- kind, so a failure repeated every five minutes stays one alert.
CREATE FUNCTION calo_recon.raise_system_alert(alert_kind text, detail jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    raised bigint;
BEGIN
    IF NOT pg_catalog.current_setting('calo_recon.alerts')::boolean THEN
        RETURN NULL;
    END IF;
    INSERT INTO calo_recon.alerts (alert_kind, detail)
    VALUES (raise_system_alert.alert_kind, raise_system_alert.detail)
    ON CONFLICT DO NOTHING
    RETURNING alerts.alert_id INTO raised;
    IF raised IS NOT NULL THEN
        -- the payload of the insert-time notification (one home: alerts_notice)
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(ARRAY[raised], ARRAY[alert_kind]));
    END IF;
    RETURN raised;
END;
$$;
COMMENT ON FUNCTION calo_recon.raise_system_alert(text, jsonb) IS
  'Internal: raises an alert of a kind about the system (no user or transaction) unless one is open already or calo_recon.alerts is off; returns its alert_id, else NULL';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_system_alert(text, jsonb) FROM PUBLIC;

CREATE FUNCTION calo_recon.raise_alerts()
RETURNS TABLE (alert_kind text, raised bigint, resolved bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    settings record := calo_recon.ops_settings();
    paging boolean := pg_catalog.current_setting('calo_recon.alerts')::boolean;
    errors_mark bigint;
    quarantine_mark bigint;
    errors_top bigint;
    quarantine_top bigint;
    last_run calo_recon.runs;
    last_loaded timestamptz;
    ids bigint[] := '{}';
    kinds text[] := '{}';
    system_raised bigint[] := '{}';
    raised_id bigint;
    resolved_kinds text[] := '{}';
BEGIN
    -- one raiser at a time: the marks are read and moved under a row lock
    INSERT INTO calo_recon.alert_marks (source) VALUES ('balance_errors'), ('quarantine') ON CONFLICT DO NOTHING;
    SELECT m.last_id INTO errors_mark FROM calo_recon.alert_marks m WHERE m.source = 'balance_errors' FOR UPDATE;
    SELECT m.last_id INTO quarantine_mark FROM calo_recon.alert_marks m WHERE m.source = 'quarantine' FOR UPDATE;
    SELECT pg_catalog.max(e.error_id) INTO errors_top FROM calo_recon.balance_errors e;
    SELECT pg_catalog.max(q.quarantine_id) INTO quarantine_top FROM calo_recon.quarantine q;

    -- new discrepancies, one alert each (a user's without a transaction share
    -- one open alert)
    WITH raised AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT d.txn_id, d.user_id, 'discrepancy',
               pg_catalog.jsonb_build_object('error_id', d.error_id, 'subscription_balance', d.subscription_balance,
                                             'payment_balance', d.payment_balance, 'difference', d.difference,
                                             'tolerance', d.tolerance, 'currency', d.currency,
                                             'logged_at', d.logged_at, 'source_file', d.source_file)
        FROM calo_recon.discrepancies d
        WHERE paging AND d.error_id > errors_mark AND d.error_id <= errors_top
          AND (settings.alert_backfill_age IS NULL OR d.logged_at >= pg_catalog.now() - settings.alert_backfill_age)
        ORDER BY d.error_id
        ON CONFLICT DO NOTHING
        RETURNING alerts.alert_id, alerts.alert_kind
    )
    SELECT ids || coalesce(pg_catalog.array_agg(r.alert_id), '{}'), kinds || coalesce(pg_catalog.array_agg(r.alert_kind), '{}')
    INTO ids, kinds FROM raised r;

    -- new conflicts: one alert per transaction id, whatever the number of
    -- conflicting deliveries
    WITH raised AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT DISTINCT ON (q.txn_id) q.txn_id, t.user_id, 'conflict',
               pg_catalog.jsonb_build_object('quarantine_id', q.quarantine_id, 'source_file', q.source_file,
                                             'logged_at', q.logged_at, 'delivered', q.detail)
        FROM calo_recon.quarantine q
        LEFT JOIN calo_recon.transactions t ON t.txn_id = q.txn_id
        WHERE paging AND q.reason = 'conflict' AND q.txn_id IS NOT NULL
          AND q.quarantine_id > quarantine_mark AND q.quarantine_id <= quarantine_top
          AND (settings.alert_backfill_age IS NULL OR q.logged_at >= pg_catalog.now() - settings.alert_backfill_age)
        ORDER BY q.txn_id, q.quarantine_id
        ON CONFLICT DO NOTHING
        RETURNING alerts.alert_id, alerts.alert_kind
    )
    SELECT ids || coalesce(pg_catalog.array_agg(r.alert_id), '{}'), kinds || coalesce(pg_catalog.array_agg(r.alert_kind), '{}')
    INTO ids, kinds FROM raised r;

    UPDATE calo_recon.alert_marks m
       SET last_id = CASE m.source WHEN 'balance_errors' THEN GREATEST(errors_mark, errors_top)
                                   ELSE GREATEST(quarantine_mark, quarantine_top) END
     WHERE m.source IN ('balance_errors', 'quarantine');

    -- the last run that ended: a failure raises, a success resolves
    SELECT r.* INTO last_run FROM calo_recon.runs r
    WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1;
    IF last_run.status = 'succeeded' THEN
        WITH solved AS (
            UPDATE calo_recon.alerts a
               SET resolved_at = pg_catalog.now(),
                   resolution = pg_catalog.format('refresh() run %s succeeded', last_run.run_id)
             WHERE a.alert_kind IN ('refresh_failed', 'refresh_skipped') AND a.txn_id IS NULL AND a.resolved_at IS NULL
            RETURNING a.alert_kind
        )
        SELECT resolved_kinds || coalesce(pg_catalog.array_agg(x.alert_kind), '{}') INTO resolved_kinds FROM solved x;
    ELSIF last_run.status = 'failed' THEN
        raised_id := calo_recon.raise_system_alert(
            CASE WHEN last_run.skipped_since IS NULL THEN 'refresh_failed' ELSE 'refresh_skipped' END,
            pg_catalog.jsonb_build_object('run_id', last_run.run_id, 'error', last_run.error,
                                          'error_detail', last_run.error_detail, 'error_hint', last_run.error_hint));
        IF raised_id IS NOT NULL THEN
            system_raised := system_raised || raised_id;
        END IF;
    END IF;

    -- stale data: no file with transactions loaded for max_data_age
    IF settings.max_data_age IS NOT NULL THEN
        SELECT pg_catalog.max(f.loaded_at) INTO last_loaded FROM calo_recon.ingested_files f WHERE f.transactions > 0;
        IF last_loaded IS NULL OR pg_catalog.now() - last_loaded > settings.max_data_age THEN
            raised_id := calo_recon.raise_system_alert('stale_data',
                pg_catalog.jsonb_build_object('last_loaded_at', last_loaded, 'max_data_age', settings.max_data_age));
            IF raised_id IS NOT NULL THEN
                system_raised := system_raised || raised_id;
            END IF;
        END IF;
    END IF;
    IF settings.max_data_age IS NULL OR pg_catalog.now() - last_loaded <= settings.max_data_age THEN
        WITH solved AS (
            UPDATE calo_recon.alerts a
               SET resolved_at = pg_catalog.now(),
                   resolution = CASE WHEN settings.max_data_age IS NULL THEN 'calo_recon.max_data_age is off'
                                     ELSE pg_catalog.format('a file with transactions was loaded at %s', last_loaded) END
             WHERE a.alert_kind = 'stale_data' AND a.txn_id IS NULL AND a.resolved_at IS NULL
            RETURNING a.alert_kind
        )
        SELECT resolved_kinds || coalesce(pg_catalog.array_agg(x.alert_kind), '{}') INTO resolved_kinds FROM solved x;
    END IF;

    -- one notification for the discrepancies and conflicts (the system
    -- alerts sent their own), with the insert-time trigger's payload
    IF pg_catalog.cardinality(ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(ids, kinds));
    END IF;
    RETURN QUERY
    SELECT k.alert_kind,
           (SELECT pg_catalog.count(*) FROM unnest(ids || system_raised) AS r(alert_id)
            JOIN calo_recon.alerts a ON a.alert_id = r.alert_id WHERE a.alert_kind = k.alert_kind),
           (SELECT pg_catalog.count(*) FROM unnest(resolved_kinds) AS x(alert_kind) WHERE x.alert_kind = k.alert_kind)
    FROM calo_recon.alert_kinds k
    WHERE k.raised_by IN ('raise_alerts', 'refresh')
    ORDER BY k.alert_kind;
END;
$$;
COMMENT ON FUNCTION calo_recon.raise_alerts() IS
  'Raises the alerts no inserted transaction raises: discrepancy for each new balance error at or above the tolerance, conflict for each transaction id newly delivered with a different payload (both once, not for rows logged before now() - calo_recon.alert_backfill_age, and with calo_recon.alerts off only recorded as seen), refresh_failed or refresh_skipped when the last run that ended failed, stale_data when no file with transactions was loaded for calo_recon.max_data_age; resolves refresh alerts after a successful run and stale_data once data is fresh. One NOTIFY calo_recon_alerts for what it raised. Returns per kind the alerts raised and resolved. refresh() calls it at the end of every run';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_alerts() FROM PUBLIC;
-- what an updated database already holds was there before raise_alerts():
-- recorded as seen, not paged
INSERT INTO calo_recon.alert_marks (source, last_id)
VALUES ('balance_errors', coalesce((SELECT max(e.error_id) FROM calo_recon.balance_errors e), 0)),
       ('quarantine', coalesce((SELECT max(q.quarantine_id) FROM calo_recon.quarantine q), 0));
-- refresh(): names its run for the alerts it raises, records DETAIL and
-- HINT, logs success, raises alerts, fails endless skipping
DROP FUNCTION calo_recon.refresh_work(bigint);
CREATE FUNCTION calo_recon.refresh_work(run_id bigint)
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
    ingested record;
    reconciled record;
BEGIN
    SELECT r.* INTO run FROM calo_recon.runs r WHERE r.run_id = refresh_work.run_id;
    IF NOT FOUND OR run.status <> 'running' THEN
        RAISE EXCEPTION 'calo_recon.runs has no run % in status running', refresh_work.run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- runs that this one holds the lock against: their sessions stopped
    -- running them (terminated, crashed) without recording how they ended
    -- the alerts this run raises name it (calo_recon.alerts.run_id's default)
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', run.run_id::text, true);
    UPDATE calo_recon.runs r
       SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
           error = 'did not finish: process ' || r.backend_pid
                   || ' stopped running it before recording an outcome (terminated or crashed)'
     WHERE r.status = 'running' AND r.run_id <> run.run_id;
    BEGIN
        -- the users of the new files are queued: reconciled once, below
        SELECT * INTO ingested FROM calo_recon.ingest_file_unreconciled(run.folder);
        run.files := ingested.new_files;
        run.skipped_files := ingested.skipped_files;
        run.events := ingested.events;
        run.transactions := ingested.transactions;

        SELECT * INTO reconciled FROM calo_recon.reconcile_pending();
        IF FOUND THEN
            run.reconciled_users := reconciled.users;
            run.breaks := reconciled.arithmetic_breaks + reconciled.chain_breaks;
        END IF;

        run.scored := calo_recon.score_transactions(true);
        run.status := 'succeeded';
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- the work above is rolled back; the run row stays, saying why (a
        -- cancel ends the work as asked, and the run is recorded as failed)
        run.status := 'failed';
        run.error := SQLSTATE || ': ' || SQLERRM;
        GET STACKED DIAGNOSTICS run.error_detail = PG_EXCEPTION_DETAIL, run.error_hint = PG_EXCEPTION_HINT;
        run.error_detail := NULLIF(run.error_detail, '');
        run.error_hint := NULLIF(run.error_hint, '');
        run.files := 0; run.skipped_files := 0; run.events := 0; run.transactions := 0;
        run.reconciled_users := 0; run.breaks := 0; run.scored := 0;
        RAISE WARNING 'calo_recon.refresh() run % failed: %', run.run_id, run.error;
    END;
    run.finished_at := pg_catalog.clock_timestamp();
    UPDATE calo_recon.runs r
       SET finished_at = run.finished_at, status = run.status, files = run.files,
           skipped_files = run.skipped_files, events = run.events,
           transactions = run.transactions, reconciled_users = run.reconciled_users,
           breaks = run.breaks, scored = run.scored, error = run.error,
           error_detail = run.error_detail, error_hint = run.error_hint
     WHERE r.run_id = run.run_id
    RETURNING r.* INTO run;
    IF run.status = 'succeeded' THEN
        RAISE LOG 'calo_recon.refresh() run % succeeded in %: % files, % transactions, % users reconciled, % breaks, % scored',
            run.run_id, run.duration, run.files, run.transactions, run.reconciled_users, run.breaks, run.scored;
    END IF;
    -- what this run (its outcome included) and the data now call for; a
    -- failure to alert must not lose the run's record
    BEGIN
        PERFORM calo_recon.raise_alerts();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'calo_recon.refresh() run %: raise_alerts() failed: % %', run.run_id, SQLSTATE, SQLERRM;
    END;
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', '', true);
    RETURN run;
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh_work(bigint) IS
  'Internal to refresh() and refresh_job(): the work of the run in status running with this run_id, recorded in its row';
REVOKE EXECUTE ON FUNCTION calo_recon.refresh_work(bigint) FROM PUBLIC;
CREATE FUNCTION calo_recon.refresh_skipped(run_id bigint) RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
    since timestamptz;
    max_skip interval := (calo_recon.ops_settings()).refresh_max_skip;
    reason text := calo_recon.refresh_skipped_reason();
BEGIN
    SELECT r.* INTO run FROM calo_recon.runs r WHERE r.run_id = refresh_skipped.run_id;
    IF NOT FOUND OR run.status <> 'running' THEN
        RAISE EXCEPTION 'calo_recon.runs has no run % in status running', refresh_skipped.run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT coalesce(p.skipped_since, run.started_at) INTO since
    FROM (SELECT NULL) AS one
    LEFT JOIN LATERAL (SELECT r.skipped_since FROM calo_recon.runs r
                       WHERE r.run_id < run.run_id ORDER BY r.run_id DESC LIMIT 1) p ON true;
    IF max_skip IS NOT NULL AND pg_catalog.clock_timestamp() - since > max_skip THEN
        UPDATE calo_recon.runs r
           SET status = 'failed', finished_at = pg_catalog.clock_timestamp(), skipped_since = since,
               error = pg_catalog.format('skipped since %s, longer than calo_recon.refresh_max_skip (%s): %s',
                                         since, max_skip, reason),
               error_hint = 'Find what holds the writer lock (see error) and why: a long ingest, a session left idle in transaction.'
         WHERE r.run_id = run.run_id
        RETURNING r.* INTO run;
        RAISE WARNING 'calo_recon.refresh() run % failed: %', run.run_id, run.error;
        PERFORM calo_recon.raise_system_alert('refresh_skipped',
            pg_catalog.jsonb_build_object('run_id', run.run_id, 'skipped_since', since, 'error', run.error));
    ELSE
        UPDATE calo_recon.runs r
           SET status = 'skipped', finished_at = pg_catalog.clock_timestamp(), skipped_since = since,
               error = reason
         WHERE r.run_id = run.run_id
        RETURNING r.* INTO run;
    END IF;
    RETURN run;
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh_skipped(bigint) IS
  'Internal to refresh() and refresh_job(): records the run in status running with this run_id as not started (writer lock held): skipped, or failed with a refresh_skipped alert once runs have been skipped for longer than calo_recon.refresh_max_skip';
REVOKE EXECUTE ON FUNCTION calo_recon.refresh_skipped(bigint) FROM PUBLIC;
DROP FUNCTION calo_recon.refresh(text);
CREATE FUNCTION calo_recon.refresh(folder text DEFAULT '')
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
BEGIN
    IF folder IS NULL THEN
        RAISE EXCEPTION 'folder must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO calo_recon.runs (status, folder) VALUES ('running', folder) RETURNING * INTO run;
    IF NOT calo_recon.try_lock_writer() THEN
        RETURN calo_recon.refresh_skipped(run.run_id);
    END IF;
    RETURN calo_recon.refresh_work(run.run_id);
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh(text) IS
  'Ingests new files from the folder (relative to calo_recon.import_directory, default all of it), reconciles every user with transactions inserted since the last run, scores new transactions with the active model, and records the run in calo_recon.runs. A run that finds the writer lock held (another refresh, an ingest, a reconcile) returns at once with status skipped and names the holding process; a failed run (a cancel or statement_timeout included) is rolled back but recorded with status failed and the error (and a WARNING); a scheduler sees the failure with check_last_refresh(), or schedules CALL calo_recon.refresh_job() instead';
REVOKE EXECUTE ON FUNCTION calo_recon.refresh(text) FROM PUBLIC;
DROP PROCEDURE calo_recon.refresh_job(text);
CREATE PROCEDURE calo_recon.refresh_job(folder text DEFAULT '')
LANGUAGE plpgsql
AS $$
DECLARE
    run calo_recon.runs;
BEGIN
    IF folder IS NULL THEN
        RAISE EXCEPTION 'folder must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO calo_recon.runs (status, folder) VALUES ('running', folder) RETURNING * INTO run;
    COMMIT;
    IF calo_recon.try_lock_writer() THEN
        run := calo_recon.refresh_work(run.run_id);
    ELSE
        run := calo_recon.refresh_skipped(run.run_id);
    END IF;
    COMMIT;
    -- the run is this session's last: a failure is reported as the check reports it
    PERFORM calo_recon.check_last_refresh();
END;
$$;
COMMENT ON PROCEDURE calo_recon.refresh_job(text) IS
  'refresh() in two transactions, for pg_cron: commits the run as running, does the work and commits its outcome; fails with 38000 when the run failed (still recorded). A run cancelled, timed out or terminated mid-way stays visible in calo_recon.runs';
REVOKE EXECUTE ON PROCEDURE calo_recon.refresh_job(text) FROM PUBLIC;
DROP FUNCTION calo_recon.check_last_refresh();
CREATE FUNCTION calo_recon.check_last_refresh()
RETURNS calo_recon.runs
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
BEGIN
    SELECT r.* INTO run FROM calo_recon.runs r
    WHERE r.backend_pid = pg_catalog.pg_backend_pid()
    ORDER BY r.run_id DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no calo_recon.refresh() run in this session' USING ERRCODE = 'no_data_found';
    END IF;
    IF run.status = 'failed' THEN
        -- an empty DETAIL or HINT would still be printed: pass on only those the run had
        IF run.error_detail IS NOT NULL AND run.error_hint IS NOT NULL THEN
            RAISE EXCEPTION 'calo_recon.refresh() run % failed: %', run.run_id, run.error
                USING ERRCODE = 'external_routine_exception', DETAIL = run.error_detail, HINT = run.error_hint;
        ELSIF run.error_detail IS NOT NULL THEN
            RAISE EXCEPTION 'calo_recon.refresh() run % failed: %', run.run_id, run.error
                USING ERRCODE = 'external_routine_exception', DETAIL = run.error_detail;
        ELSIF run.error_hint IS NOT NULL THEN
            RAISE EXCEPTION 'calo_recon.refresh() run % failed: %', run.run_id, run.error
                USING ERRCODE = 'external_routine_exception', HINT = run.error_hint;
        END IF;
        RAISE EXCEPTION 'calo_recon.refresh() run % failed: %', run.run_id, run.error
            USING ERRCODE = 'external_routine_exception';
    END IF;
    IF run.status = 'running' THEN
        RAISE EXCEPTION 'calo_recon.refresh() run % did not finish', run.run_id
            USING ERRCODE = 'external_routine_exception',
                  DETAIL = 'Its row was committed as running and the call ended before recording an outcome.';
    END IF;
    RETURN run;
END;
$$;
COMMENT ON FUNCTION calo_recon.check_last_refresh() IS
  'Returns the last refresh() run of this session, or raises 38000 when it failed or did not finish (P0002 when there is none): for pg_cron, BEGIN; SELECT calo_recon.refresh(); COMMIT; SELECT calo_recon.check_last_refresh(); records the failed run and shows the job as failed';
REVOKE EXECUTE ON FUNCTION calo_recon.check_last_refresh() FROM PUBLIC;
-- Health (README "Health and monitoring"): one row that says whether
-- calo_recon is doing its job, for the monitor role and any monitoring
-- system, and check_health(), which fails when it is not.  The view reads
-- runs, alerts, the queue and the quarantine with its owner's rights, so a
-- monitor needs SELECT on the view only, never on the record itself.

CREATE VIEW calo_recon.health AS
WITH last_run AS (
    SELECT r.* FROM calo_recon.runs r ORDER BY r.run_id DESC LIMIT 1
), last_success AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1
), last_ended AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1
), last_failure AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'failed' ORDER BY r.run_id DESC LIMIT 1
)
SELECT pg_catalog.now() AS checked_at,
       (SELECT s.finished_at FROM last_success s) AS last_success_at,
       pg_catalog.now() - (SELECT s.finished_at FROM last_success s) AS last_success_age,
       (SELECT r.run_id FROM last_run r) AS last_run_id,
       (SELECT r.status FROM last_run r) AS last_run_status,
       (SELECT e.status = 'failed' FROM last_ended e) AS last_ended_run_failed,
       (SELECT r.skipped_since FROM last_run r WHERE r.skipped_since IS NOT NULL) AS skipping_since,
       (SELECT f.run_id FROM last_failure f) AS last_error_run_id,
       (SELECT f.finished_at FROM last_failure f) AS last_error_at,
       (SELECT f.error FROM last_failure f) AS last_error,
       (SELECT f.error_detail FROM last_failure f) AS last_error_detail,
       (SELECT f.error_hint FROM last_failure f) AS last_error_hint,
       (SELECT pg_catalog.max(f.loaded_at) FROM calo_recon.ingested_files f WHERE f.transactions > 0) AS last_data_loaded_at,
       (SELECT pg_catalog.count(*) FROM calo_recon.runs r WHERE r.status = 'running') AS runs_running,
       (SELECT pg_catalog.count(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p) AS users_pending_reconcile,
       (SELECT pg_catalog.jsonb_object_agg(q.reason, q.n ORDER BY q.reason)
        FROM (SELECT x.reason, pg_catalog.count(*) AS n FROM calo_recon.quarantine x GROUP BY x.reason) q) AS quarantine_by_reason,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'open'
              GROUP BY k.severity) s) AS open_alerts,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'acknowledged'
              GROUP BY k.severity) s) AS acknowledged_alerts,
       (SELECT pg_catalog.jsonb_object_agg(c.relname, pg_catalog.pg_total_relation_size(c.oid) ORDER BY c.relname)
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'calo_recon'::pg_catalog.regnamespace AND c.relkind = 'r') AS table_bytes;
COMMENT ON VIEW calo_recon.health IS
  'One row: is calo_recon doing its job (last successful refresh and its age, the last error with DETAIL and HINT, skipping, queue, quarantine, open alerts by severity, table sizes); for the monitor role, check_health() and postgres_exporter (README "Health and monitoring")';
COMMENT ON COLUMN calo_recon.health.checked_at IS 'now() of the reading transaction';
COMMENT ON COLUMN calo_recon.health.last_success_at IS 'When the last successful refresh() run finished; NULL when none has';
COMMENT ON COLUMN calo_recon.health.last_success_age IS 'checked_at - last_success_at: how fresh the reconciled data is';
COMMENT ON COLUMN calo_recon.health.last_run_id IS 'The newest run';
COMMENT ON COLUMN calo_recon.health.last_run_status IS 'Its status: running, succeeded, failed or skipped';
COMMENT ON COLUMN calo_recon.health.last_ended_run_failed IS 'Whether the newest run that did end (succeeded or failed) failed';
COMMENT ON COLUMN calo_recon.health.skipping_since IS 'When the newest run is one of a series of runs that could not start (writer lock held): when the series began';
COMMENT ON COLUMN calo_recon.health.last_error_run_id IS 'The newest failed run';
COMMENT ON COLUMN calo_recon.health.last_error_at IS 'When it finished';
COMMENT ON COLUMN calo_recon.health.last_error IS 'Its error: SQLSTATE: message';
COMMENT ON COLUMN calo_recon.health.last_error_detail IS 'Its error''s DETAIL';
COMMENT ON COLUMN calo_recon.health.last_error_hint IS 'Its error''s HINT';
COMMENT ON COLUMN calo_recon.health.last_data_loaded_at IS 'When the last file with transactions was ingested (see calo_recon.max_data_age)';
COMMENT ON COLUMN calo_recon.health.runs_running IS 'Runs in status running (more than one, or one that is old, is a run whose session stopped)';
COMMENT ON COLUMN calo_recon.health.users_pending_reconcile IS 'Users queued for the next reconciliation (calo_recon.pending_reconcile)';
COMMENT ON COLUMN calo_recon.health.quarantine_by_reason IS 'Quarantined items per reason, as a JSON object; NULL when there are none';
COMMENT ON COLUMN calo_recon.health.open_alerts IS 'Open alerts (neither acknowledged nor resolved) per severity, as a JSON object with every severity';
COMMENT ON COLUMN calo_recon.health.acknowledged_alerts IS 'Acknowledged, unresolved alerts per severity, as a JSON object with every severity';
COMMENT ON COLUMN calo_recon.health.table_bytes IS 'Size on disk of each calo_recon table, indexes and TOAST included, as a JSON object';

-- For pg_cron or any monitoring system that judges by an error: RH001
-- (calo_recon unhealthy) says what is wrong, every problem at once.
CREATE FUNCTION calo_recon.check_health(max_age interval DEFAULT NULL)
RETURNS calo_recon.health
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h calo_recon.health;
    problems text[] := '{}';
    detail text;  -- the failed run's DETAIL, if any
BEGIN
    IF max_age < interval '0' THEN
        RAISE EXCEPTION 'max_age must not be negative: %', max_age USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x.* INTO h FROM calo_recon.health x;
    IF h.last_success_at IS NULL THEN
        problems := problems || 'no refresh() run has succeeded'::text;
    ELSIF h.last_success_age > max_age THEN
        problems := problems || pg_catalog.format('the last successful refresh() finished %s ago, longer than %s',
                                                  h.last_success_age, max_age);
    END IF;
    IF h.last_ended_run_failed THEN
        problems := problems || pg_catalog.format('refresh() run %s failed: %s', h.last_error_run_id, h.last_error);
        detail := h.last_error_detail;
    END IF;
    IF (h.open_alerts ->> 'critical')::bigint > 0 THEN
        problems := problems || pg_catalog.format('%s critical alerts are open (not acknowledged)', h.open_alerts ->> 'critical');
    END IF;
    IF pg_catalog.cardinality(problems) > 0 AND detail IS NOT NULL THEN
        RAISE EXCEPTION 'calo_recon is unhealthy: %', pg_catalog.array_to_string(problems, '; ')
            USING ERRCODE = 'RH001', DETAIL = detail,
                  HINT = coalesce(h.last_error_hint, 'See calo_recon.health, calo_recon.runs and calo_recon.alert_groups.');
    ELSIF pg_catalog.cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'calo_recon is unhealthy: %', pg_catalog.array_to_string(problems, '; ')
            USING ERRCODE = 'RH001',
                  HINT = coalesce(h.last_error_hint, 'See calo_recon.health, calo_recon.runs and calo_recon.alert_groups.');
    END IF;
    RETURN h;
END;
$$;
COMMENT ON FUNCTION calo_recon.check_health(interval) IS
  'Returns the health row, or raises RH001 (calo_recon unhealthy) naming every problem: no successful refresh() run, or the last one older than max_age (not checked when NULL), the last run that ended failed (its DETAIL and HINT passed on), open critical alerts. 22023 for a negative max_age. For pg_cron and monitoring systems; the monitor role may run it';
REVOKE EXECUTE ON FUNCTION calo_recon.check_health(interval) FROM PUBLIC;
-- Retention (README "Retention"): what may be forgotten, and what never is.
-- Transactions, balance errors, rejections, the reconciliation's findings,
-- models, scores and feedback are the record: purge() never touches them.
-- It forgets what only explains or operates that record once it is old:
--   log_events.raw   the event's text (the parsed body, kind and ids stay)
--   alerts           resolved ones (open and acknowledged ones stay)
--   runs             ended ones (the newest run, the newest success and the
--                    newest failure stay: calo_recon.health reads them)
--   quarantine       unreadable input (conflicts stay: they are findings,
--                    see balance_breaks)
--   cron.job_run_details   of the calo_recon jobs of this database, when
--                    pg_cron is installed in it
-- It takes the writer lock, so it never runs beside an ingest or a refresh.

CREATE FUNCTION calo_recon.purge(older_than interval)
RETURNS TABLE (purged text, "rows" bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'older_than must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative: %', older_than
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: calo_recon.purge(''90 days'').';
    END IF;
    cutoff := pg_catalog.now() - older_than;
    PERFORM calo_recon.lock_writer();

    UPDATE calo_recon.log_events e SET raw = ''
    WHERE e.logged_at < cutoff AND e.raw <> '';
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'log_events.raw'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.alerts a WHERE a.resolved_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'alerts'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.runs r
    WHERE r.finished_at < cutoff
      AND r.run_id NOT IN (SELECT k.run_id
                           FROM (VALUES ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x)),
                                        ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x WHERE x.status = 'succeeded')),
                                        ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x WHERE x.status = 'failed'))) AS k(run_id)
                           WHERE k.run_id IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'runs'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.quarantine q WHERE q.quarantined_at < cutoff AND q.reason <> 'conflict';
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'quarantine'; "rows" := n; RETURN NEXT;

    purged := 'cron.job_run_details'; "rows" := NULL;
    IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
        EXECUTE 'DELETE FROM cron.job_run_details d
                 WHERE d.end_time OPERATOR(pg_catalog.<) $1
                   AND d.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
                   AND d.command OPERATOR(pg_catalog.~~) ''%calo\_recon.%'''
        USING cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        "rows" := n;
    END IF;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION calo_recon.purge(interval) IS
  'Forgets what is older than older_than (before now() - older_than): the raw text of log events (by logged_at; the parsed event stays), resolved alerts (by resolved_at), ended runs (by finished_at; the newest run, success and failure stay), quarantined unreadable input (by quarantined_at; conflicts stay) and, when pg_cron is installed in this database, the history of its calo_recon jobs (by end_time). Never touches transactions, balance errors, rejections, findings, models, scores or feedback. Takes the writer lock. Returns the rows purged per item (NULL for cron.job_run_details without pg_cron). 22004 for NULL, 22023 for a negative interval';
REVOKE EXECUTE ON FUNCTION calo_recon.purge(interval) FROM PUBLIC;
DROP FUNCTION calo_recon.grant_role(name, text);
CREATE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- what only operators run: everything that reads server files, writes
    -- wallets, findings, models or scores, or writes files; analysts may
    -- execute the rest
    operator_only text[] := ARRAY['ingest_log', 'ingest_log_unreconciled', 'ingest_file', 'read_log_file',
                                  'reconcile', 'refresh', 'check_last_refresh', 'train_model',
                                  'score_transactions', 'export_reports', 'export_workbook', 'export_dashboard', 'grant_role',
                                  'lock_writer', 'try_lock_writer', 'writer_lock_holder', 'lock_user_chains',
                                  'refresh_work', 'reconcile_pending', 'ingest_file_unreconciled',
                                  'acknowledge_alert', 'resolve_alert', 'alert_refuse', 'refresh_skipped',
                                  'raise_alerts', 'raise_system_alert', 'check_health', 'purge',
                                  'revoke_role', 'reapply_grants', 'revoke_all'];
    -- What the operator's functions write, and no more: they run with the
    -- operator's rights, so these are the DML rights the operator holds.  The
    -- record (transactions, balance errors, rejections, ingested files) is
    -- insert-only; of a log event only the raw text may change (purge);
    -- of an alert only its lifecycle (who and when stamped by a trigger).
    -- Every other table, and what decides who gets what or what is worth an
    -- alert (role_grants, role_kinds, alert_kinds), is read-only to them.
    operator_writes text[] := ARRAY[
        'transactions:INSERT', 'balance_errors:INSERT', 'negative_balance_rejections:INSERT',
        'ingested_files:INSERT', 'import_files:INSERT, UPDATE', 'log_events:INSERT, UPDATE (raw)',
        'quarantine:INSERT, DELETE', 'pending_reconcile:INSERT, DELETE', 'reconciliation_findings:INSERT, DELETE',
        'currencies:INSERT, UPDATE, DELETE', 'models:INSERT, UPDATE', 'transaction_scores:INSERT, UPDATE, DELETE',
        'alerts:INSERT, DELETE, UPDATE (resolved_at, resolution, resolved_by, acknowledged_at, acknowledged_by, acknowledge_note)',
        'alert_marks:INSERT, UPDATE', 'runs:INSERT, UPDATE, DELETE'];
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (operator_only))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        statements := statements
            || format('GRANT EXECUTE ON ALL ROUTINES IN SCHEMA calo_recon TO %I', role_name)
            || format('REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text), calo_recon.revoke_role(name, text), calo_recon.reapply_grants(), calo_recon.revoke_all(name) FROM %I', role_name);
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views), monitor (schema USAGE, the health view and check_health(); no wallet data), analyst (reader + reading models, scores and feedback, recording feedback; no write right on any table) or operator (reader + refresh, ingestion, reconciliation, training, scoring, exports, feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights; server file access needs pg_read_server_files / pg_write_server_files, granted by a superuser';
REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM PUBLIC;
CREATE FUNCTION calo_recon.revoke_all(role_name name) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
BEGIN
    FOREACH statement IN ARRAY ARRAY[
        format('REVOKE ALL ON ALL TABLES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON ALL ROUTINES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON SCHEMA calo_recon FROM %I', role_name)]
    LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.revoke_all(name) IS
  'Internal to revoke_role() and reapply_grants(): revokes every right the role holds on the calo_recon schema and its tables, sequences and routines; returns the statements';
REVOKE EXECUTE ON FUNCTION calo_recon.revoke_all(name) FROM PUBLIC;
CREATE FUNCTION calo_recon.revoke_role(role_name name, kind text DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    remaining text;
BEGIN
    IF role_name IS NULL THEN
        RAISE EXCEPTION 'role_name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind IS NOT NULL AND NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = revoke_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_grants g
                   WHERE g.role_name = revoke_role.role_name AND (revoke_role.kind IS NULL OR g.kind = revoke_role.kind)) THEN
        RAISE EXCEPTION 'role "%" was not granted calo_recon kind %', role_name, coalesce(kind, '(any)')
            USING ERRCODE = 'no_data_found', HINT = 'See calo_recon.role_grants.';
    END IF;
    -- everything the schema grants the role goes (column rights with their
    -- table's); the kinds it keeps are granted again
    RETURN QUERY SELECT x FROM calo_recon.revoke_all(role_name) AS x;
    DELETE FROM calo_recon.role_grants g
    WHERE g.role_name = revoke_role.role_name AND (revoke_role.kind IS NULL OR g.kind = revoke_role.kind);
    FOR remaining IN SELECT g.kind FROM calo_recon.role_grants g WHERE g.role_name = revoke_role.role_name ORDER BY g.kind LOOP
        RETURN QUERY SELECT x FROM calo_recon.grant_role(role_name, remaining) AS x;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.revoke_role(name, text) IS
  'Takes back from a role what grant_role() gave it: every kind, or only the one given (the others are granted again); returns the statements it ran. 22004 for a NULL role, 22023 for an unknown kind, 42704 for an unknown role, P0002 when the role does not hold it. Runs with the caller''s rights';
REVOKE EXECUTE ON FUNCTION calo_recon.revoke_role(name, text) FROM PUBLIC;
CREATE FUNCTION calo_recon.reapply_grants()
RETURNS TABLE (role_name name, kind text, statements bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    grantee name;
BEGIN
    -- each role's rights are rebuilt from its kinds: what a new version no
    -- longer grants a kind is taken back, what it adds is granted
    FOR grantee IN SELECT DISTINCT g.role_name FROM calo_recon.role_grants g
                   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = g.role_name)
                   ORDER BY 1
    LOOP
        PERFORM calo_recon.revoke_all(grantee);
        RETURN QUERY
        SELECT g.role_name, g.kind, (SELECT pg_catalog.count(*) FROM calo_recon.grant_role(g.role_name, g.kind))
        FROM calo_recon.role_grants g WHERE g.role_name = grantee ORDER BY g.kind;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.reapply_grants() IS
  'Rebuilds the rights of every role recorded in calo_recon.role_grants (roles dropped since are skipped) from its kinds: everything calo_recon granted it is revoked, then grant_role() runs for each kind, so that objects an update added or re-created are granted, and rights a kind no longer has are gone; every update script ends with it. Returns the statements grant_role() ran per role and kind';
REVOKE EXECUTE ON FUNCTION calo_recon.reapply_grants() FROM PUBLIC;
-- ---------------------------------------------------------------------
-- reports (issue 10): money rounded to the currency's minor unit in the
-- views (round_money), user_summary that reconciles, daily_summary and
-- as_of, exports with a period, the dashboard page.  Views are replaced in
-- place (columns only appended) so that the rights granted on them stay; it
-- runs before the ops block's final reapply_grants(), which grants the new
-- views and functions to the roles grant_role() gave a kind.
-- ---------------------------------------------------------------------
CREATE FUNCTION calo_recon.round_money(value numeric, minor_unit integer)
RETURNS numeric
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_round_money';
COMMENT ON FUNCTION calo_recon.round_money(numeric, integer) IS
  'The rounding of every report: value to minor_unit decimals (calo_recon.currencies.minor_unit), half away from zero; NULL minor_unit (a currency not in calo_recon.currencies) gives 2 decimals, as the tolerance does. NULL for a NULL value';


CREATE OR REPLACE VIEW calo_recon.balance_breaks AS
WITH breaks AS (
    SELECT f.txn_id, f.user_id, f.finding AS break_kind, f.currency,
           f.expected, f.actual, f.difference, f.tolerance, f.logged_at,
           calo_recon.finding_rank(f.finding) AS kind_order
    FROM calo_recon.reconciliation_findings f
    WHERE f.finding IN ('arithmetic', 'chain', 'out_of_range')
    UNION ALL
    SELECT DISTINCT ON (q.txn_id)
           q.txn_id, t.user_id, 'conflict', t.currency,
           NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric,
           coalesce(t.logged_at, q.logged_at), NULL::integer  -- after the walk's findings
    FROM calo_recon.quarantine q
    JOIN calo_recon.transactions t ON t.txn_id = q.txn_id
    WHERE q.reason = 'conflict'
)
SELECT b.txn_id, b.user_id, b.break_kind, b.currency,
       calo_recon.round_money(b.expected, cu.minor_unit) AS expected,
       calo_recon.round_money(b.actual, cu.minor_unit) AS actual,
       calo_recon.round_money(b.difference, cu.minor_unit) AS difference, b.tolerance,
       pg_catalog.row_number() OVER (PARTITION BY b.user_id
           ORDER BY calo_recon.chain_key(b.logged_at, b.txn_id), b.kind_order NULLS LAST) = 1 AS first_break,
       b.logged_at, t.source_file
FROM breaks b
LEFT JOIN calo_recon.transactions t ON t.txn_id = b.txn_id
LEFT JOIN calo_recon.currencies cu ON cu.code = b.currency;
COMMENT ON VIEW calo_recon.balance_breaks IS
  'Every balance break, not just the first: arithmetic (new_balance does not follow from old_balance and amount - vat), chain (old_balance is not the previous new_balance), conflict (the id was delivered again with a different payload, see calo_recon.quarantine; one break per transaction however many conflicting deliveries) and out_of_range (a value too large or too precise to check exactly). Breaks are at or above the tolerance; see precision_drift for smaller differences. Up to date as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.balance_breaks.txn_id IS 'Transaction with the break';
COMMENT ON COLUMN calo_recon.balance_breaks.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.balance_breaks.break_kind IS 'arithmetic, chain, conflict or out_of_range';
COMMENT ON COLUMN calo_recon.balance_breaks.currency IS 'Currency of the transaction';
COMMENT ON COLUMN calo_recon.balance_breaks.expected IS 'arithmetic: old_balance - net (DEBIT) or + net (CREDIT; legacy rows take the direction of new - old), net = amount - vat; chain: the previous new_balance; NULL for conflict and out_of_range. Rounded to the currency''s minor unit (round_money)';
COMMENT ON COLUMN calo_recon.balance_breaks.actual IS 'arithmetic: the logged new_balance; chain: the logged old_balance; NULL for conflict and out_of_range. Rounded to the currency''s minor unit';
COMMENT ON COLUMN calo_recon.balance_breaks.difference IS 'actual - expected (signed), computed exactly then rounded to the currency''s minor unit; the exact value is in reconciliation_findings';
COMMENT ON COLUMN calo_recon.balance_breaks.tolerance IS 'Half the minor unit of the currency (BHD 0.0005, SAR 0.005, JPY 0.5; 0.005 when the currency is unknown); NULL for conflict';
COMMENT ON COLUMN calo_recon.balance_breaks.first_break IS 'true for the user''s first break in chain order (logged_at, txn_id; chain before arithmetic before conflict on one transaction)';
COMMENT ON COLUMN calo_recon.balance_breaks.logged_at IS 'logged_at of the transaction';
COMMENT ON COLUMN calo_recon.balance_breaks.source_file IS 'Export file the transaction was read from';

CREATE OR REPLACE VIEW calo_recon.overdrafts AS
SELECT t.txn_id, t.user_id, t.txn_type, t.source, t.action, t.currency,
       calo_recon.round_money(t.amount, cu.minor_unit) AS amount,
       calo_recon.round_money(t.vat, cu.minor_unit) AS vat,
       calo_recon.round_money(t.old_balance, cu.minor_unit) AS old_balance,
       calo_recon.round_money(t.new_balance, cu.minor_unit) AS new_balance,
       t.logged_at, t.source_file
FROM calo_recon.transactions t
LEFT JOIN calo_recon.currencies cu ON cu.code = t.currency
WHERE calo_recon.is_overdraft(t.new_balance);
COMMENT ON VIEW calo_recon.overdrafts IS
  'Transactions that left the wallet below zero (new_balance < 0, as logged); see overdraft_episodes for runs of them. Money rounded to the currency''s minor unit (round_money)';
COMMENT ON COLUMN calo_recon.overdrafts.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.overdrafts.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.overdrafts.txn_type IS 'CREDIT, DEBIT, or NULL for the legacy form';
COMMENT ON COLUMN calo_recon.overdrafts.source IS 'Origin of the transaction';
COMMENT ON COLUMN calo_recon.overdrafts.action IS 'Business action';
COMMENT ON COLUMN calo_recon.overdrafts.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.overdrafts.amount IS 'Gross amount';
COMMENT ON COLUMN calo_recon.overdrafts.vat IS 'VAT included in amount';
COMMENT ON COLUMN calo_recon.overdrafts.old_balance IS 'Balance before';
COMMENT ON COLUMN calo_recon.overdrafts.new_balance IS 'Balance after (negative)';
COMMENT ON COLUMN calo_recon.overdrafts.logged_at IS 'When the transaction was logged';
COMMENT ON COLUMN calo_recon.overdrafts.source_file IS 'Export file the transaction was read from';

CREATE OR REPLACE VIEW calo_recon.overdraft_episodes AS
WITH ordered AS (
    SELECT t.txn_id, t.user_id, t.currency, t.new_balance, t.logged_at,
           calo_recon.is_overdraft(t.new_balance) AS negative,
           pg_catalog.row_number() OVER w AS pos,
           pg_catalog.row_number() OVER (PARTITION BY t.user_id, calo_recon.is_overdraft(t.new_balance)
               ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id)) AS pos_in_sign,
           pg_catalog.lead(t.logged_at) OVER w AS next_logged_at
    FROM calo_recon.transactions t
    WHERE t.user_id IN (SELECT o.user_id FROM calo_recon.transactions o
                        WHERE calo_recon.is_overdraft(o.new_balance))
    WINDOW w AS (PARTITION BY t.user_id ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id))
),
runs AS (
    -- consecutive negative rows share pos - pos_in_sign
    SELECT o.*, o.pos - o.pos_in_sign AS run,
           calo_recon.round_money(o.new_balance, cu.minor_unit) AS shown_balance
    FROM ordered o
    LEFT JOIN calo_recon.currencies cu ON cu.code = o.currency
    WHERE o.negative
)
SELECT r.user_id,
       (pg_catalog.array_agg(r.currency ORDER BY r.pos))[1] AS currency,
       pg_catalog.min(r.logged_at) AS started_at,
       (pg_catalog.array_agg(r.next_logged_at ORDER BY r.pos DESC))[1] AS ended_at,
       pg_catalog.min(r.shown_balance) AS lowest_balance,
       pg_catalog.count(*) AS transactions,
       (pg_catalog.array_agg(r.txn_id ORDER BY r.pos))[1] AS first_txn_id,
       (pg_catalog.array_agg(r.txn_id ORDER BY r.pos DESC))[1] AS last_txn_id
FROM runs r
GROUP BY r.user_id, r.run;
COMMENT ON VIEW calo_recon.overdraft_episodes IS
  'Runs of consecutive negative balances per user in chain order (logged_at, txn_id): when the wallet went below zero, how low it went and when a later transaction brought it back to zero or above';
COMMENT ON COLUMN calo_recon.overdraft_episodes.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.overdraft_episodes.currency IS 'Currency of the first negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episodes.started_at IS 'logged_at of the first transaction that left the balance negative';
COMMENT ON COLUMN calo_recon.overdraft_episodes.ended_at IS 'logged_at of the transaction that brought the balance back to zero or above; NULL while still negative';
COMMENT ON COLUMN calo_recon.overdraft_episodes.lowest_balance IS 'Lowest new_balance during the run, rounded to the currency''s minor unit';
COMMENT ON COLUMN calo_recon.overdraft_episodes.transactions IS 'Number of consecutive transactions with a negative new_balance';
COMMENT ON COLUMN calo_recon.overdraft_episodes.first_txn_id IS 'First negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episodes.last_txn_id IS 'Last negative transaction of the run';

CREATE OR REPLACE VIEW calo_recon.discrepancies AS
SELECT e.error_id, e.user_id, e.txn_id,
       calo_recon.round_money(e.subscription_balance, tol.minor_unit) AS subscription_balance,
       calo_recon.round_money(e.payment_balance, tol.minor_unit) AS payment_balance,
       calo_recon.round_money(e.subscription_balance - e.payment_balance, tol.minor_unit) AS difference,
       tol.tolerance, tol.currency, e.logged_at, e.source_file
FROM calo_recon.balance_errors e
CROSS JOIN LATERAL (
    SELECT c.currency, cu.minor_unit::integer AS minor_unit,
           calo_recon.tolerance(cu.minor_unit) AS tolerance
    FROM (SELECT coalesce(
                   (SELECT t.currency FROM calo_recon.transactions t WHERE t.txn_id = e.txn_id),
                   (SELECT t.currency FROM calo_recon.transactions t WHERE t.user_id = e.user_id
                    ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC LIMIT 1)) AS currency) c
    LEFT JOIN calo_recon.currencies cu ON cu.code = c.currency
) tol
WHERE abs(e.subscription_balance - e.payment_balance) >= tol.tolerance;
COMMENT ON VIEW calo_recon.discrepancies IS
  'Balance errors whose subscription and payment balances differ by at least the tolerance (currency of the linked transaction, else of the user''s latest transaction, else 2 decimals); balances and difference rounded to that currency''s minor unit (round_money), the test on the exact difference';
COMMENT ON COLUMN calo_recon.discrepancies.error_id IS 'Balance error (calo_recon.balance_errors)';
COMMENT ON COLUMN calo_recon.discrepancies.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.discrepancies.txn_id IS 'Transaction of the same request and message, when there is one';
COMMENT ON COLUMN calo_recon.discrepancies.subscription_balance IS 'Balance according to the subscription service';
COMMENT ON COLUMN calo_recon.discrepancies.payment_balance IS 'Balance according to the payment service';
COMMENT ON COLUMN calo_recon.discrepancies.difference IS 'subscription_balance - payment_balance';
COMMENT ON COLUMN calo_recon.discrepancies.tolerance IS 'Half the minor unit of the currency used';
COMMENT ON COLUMN calo_recon.discrepancies.currency IS 'Currency the tolerance comes from; NULL when the user has no transaction (2 decimals assumed)';
COMMENT ON COLUMN calo_recon.discrepancies.logged_at IS 'When the error was logged';
COMMENT ON COLUMN calo_recon.discrepancies.source_file IS 'Export file the error was read from';

CREATE OR REPLACE VIEW calo_recon.user_summary AS
-- Every subquery is referenced once and groups by user_id, so the planner
-- inlines them and pushes a filter on user_id down to the user indexes
-- (one user's row reads that user's rows only).
WITH txn AS (
    SELECT t.user_id,
           pg_catalog.count(*) AS transactions,
           pg_catalog.min(t.logged_at) AS first_logged_at,
           pg_catalog.max(t.logged_at) AS last_logged_at,
           (pg_catalog.array_agg(t.currency ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC))[1] AS currency,
           (pg_catalog.array_agg(t.old_balance ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id)))[1] AS opening_balance,
           (pg_catalog.array_agg(t.new_balance ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC))[1] AS closing_balance,
           pg_catalog.count(*) FILTER (WHERE calo_recon.is_overdraft(t.new_balance)) AS overdrafts,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS credits_total,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE NOT calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS debits_total,
           coalesce(pg_catalog.sum(t.amount - t.vat) FILTER (
               WHERE calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS credits_net,
           coalesce(pg_catalog.sum(t.amount - t.vat) FILTER (
               WHERE NOT calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS debits_net,
           pg_catalog.sum(t.vat) AS vat_total
    FROM calo_recon.transactions t
    GROUP BY t.user_id
),
findings AS (
    SELECT f.user_id,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
    FROM calo_recon.reconciliation_findings f
    GROUP BY f.user_id
),
disc AS (
    SELECT d.user_id, pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d GROUP BY d.user_id
),
rej AS (
    SELECT r.user_id, pg_catalog.count(*) AS rejections
    FROM calo_recon.negative_balance_rejections r GROUP BY r.user_id
),
users AS (
    SELECT t.user_id FROM calo_recon.transactions t
    UNION SELECT e.user_id FROM calo_recon.balance_errors e
    UNION SELECT n.user_id FROM calo_recon.negative_balance_rejections n
)
SELECT u.user_id,
       coalesce(x.transactions, 0) AS transactions,
       x.first_logged_at, x.last_logged_at, x.currency,
       calo_recon.round_money(x.closing_balance, cu.minor_unit) AS current_balance,
       coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(f.chain_breaks, 0) AS chain_breaks,
       coalesce(f.drift, 0) AS drift,
       coalesce(x.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(r.rejections, 0) AS rejections,
       calo_recon.round_money(coalesce(x.credits_total, 0), cu.minor_unit) AS credits_total,
       calo_recon.round_money(coalesce(x.debits_total, 0), cu.minor_unit) AS debits_total,
       calo_recon.round_money(x.opening_balance, cu.minor_unit) AS opening_balance,
       calo_recon.round_money(x.credits_net, cu.minor_unit) AS credits_net,
       calo_recon.round_money(x.debits_net, cu.minor_unit) AS debits_net,
       calo_recon.round_money(x.vat_total, cu.minor_unit) AS vat_total,
       pg_catalog.abs(x.closing_balance - (x.opening_balance + x.credits_net - x.debits_net))
           < calo_recon.tolerance(cu.minor_unit) AS reconciles,
       calo_recon.round_money(x.closing_balance - (x.opening_balance + x.credits_net - x.debits_net),
                              cu.minor_unit) AS reconcile_difference
FROM users u
LEFT JOIN txn x ON x.user_id = u.user_id
LEFT JOIN calo_recon.currencies cu ON cu.code = x.currency
LEFT JOIN findings f ON f.user_id = u.user_id
LEFT JOIN disc d ON d.user_id = u.user_id
LEFT JOIN rej r ON r.user_id = u.user_id;
COMMENT ON VIEW calo_recon.user_summary IS
  'One row per user seen in transactions, balance errors or rejections: activity, opening and closing balance, credits, debits and VAT, whether they add up (opening_balance + credits_net - debits_net = current_balance), and counts of breaks, drift, overdrafts, discrepancies and refused debits. Money rounded to the currency''s minor unit (round_money). Break and drift counts are as of the last calo_recon.reconcile(). WHERE user_id = ... reads only that user''s rows';
COMMENT ON COLUMN calo_recon.user_summary.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.user_summary.transactions IS 'Number of transactions';
COMMENT ON COLUMN calo_recon.user_summary.first_logged_at IS 'First transaction time';
COMMENT ON COLUMN calo_recon.user_summary.last_logged_at IS 'Last transaction time';
COMMENT ON COLUMN calo_recon.user_summary.currency IS 'Currency of the last transaction';
COMMENT ON COLUMN calo_recon.user_summary.current_balance IS 'Closing balance: new_balance of the last transaction in chain order (logged_at, txn_id)';
COMMENT ON COLUMN calo_recon.user_summary.arithmetic_breaks IS 'Arithmetic breaks (see balance_breaks)';
COMMENT ON COLUMN calo_recon.user_summary.chain_breaks IS 'Chain breaks (see balance_breaks)';
COMMENT ON COLUMN calo_recon.user_summary.drift IS 'Precision drift findings (see precision_drift)';
COMMENT ON COLUMN calo_recon.user_summary.overdrafts IS 'Transactions with a negative new_balance';
COMMENT ON COLUMN calo_recon.user_summary.discrepancies IS 'Balance errors at or above the tolerance (see discrepancies)';
COMMENT ON COLUMN calo_recon.user_summary.rejections IS 'Debits refused for overdraft (negative_balance_rejections)';
COMMENT ON COLUMN calo_recon.user_summary.credits_total IS 'Sum of amount (gross, VAT included) over CREDIT transactions (legacy rows whose balance did not decrease count as credits)';
COMMENT ON COLUMN calo_recon.user_summary.debits_total IS 'Sum of amount (gross, VAT included) over DEBIT transactions (legacy rows whose balance decreased count as debits)';
COMMENT ON COLUMN calo_recon.user_summary.opening_balance IS 'Opening balance: old_balance of the first transaction in chain order';
COMMENT ON COLUMN calo_recon.user_summary.credits_net IS 'Sum of amount - vat over credits: what credits added to the wallet';
COMMENT ON COLUMN calo_recon.user_summary.debits_net IS 'Sum of amount - vat over debits: what debits took from the wallet';
COMMENT ON COLUMN calo_recon.user_summary.vat_total IS 'Sum of vat over all transactions';
COMMENT ON COLUMN calo_recon.user_summary.reconciles IS 'true when opening_balance + credits_net - debits_net equals current_balance within the tolerance (half a minor unit), computed on the logged values; NULL without transactions';
COMMENT ON COLUMN calo_recon.user_summary.reconcile_difference IS 'current_balance - (opening_balance + credits_net - debits_net), rounded to the minor unit: what the breaks of the user add up to';

DROP FUNCTION calo_recon.export_reports(text);
DROP FUNCTION calo_recon.export_workbook(text);
CREATE FUNCTION calo_recon.export_reports(folder text DEFAULT '',
                                          period_from timestamptz DEFAULT NULL,
                                          period_to timestamptz DEFAULT NULL)
RETURNS TABLE (report text, file text, rows bigint)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_reports';
COMMENT ON FUNCTION calo_recon.export_reports(text, timestamptz, timestamptz) IS
  'Writes one CSV file with a header per report (daily_summary, transactions, overdrafts, overdraft_episodes, anomalies by score, discrepancies, balance_breaks, precision_drift, user_summary) with the rows of the period [period_from, period_to) (NULL: open; user_summary keeps the users with a transaction in it), and period.csv saying the period and the as-of time, into a folder under calo_recon.export_directory (created when missing). Times are UTC (YYYY-MM-DD HH:MM:SS), booleans TRUE/FALSE; text cells that a spreadsheet would read as a formula get a leading apostrophe; files are mode 0600, or 0640 for calo_recon.export_group; never writes outside the export directory nor replaces a file it did not write. Needs superuser or pg_write_server_files.';
REVOKE EXECUTE ON FUNCTION calo_recon.export_reports(text, timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION calo_recon.export_workbook(file text DEFAULT 'balance_reports.xlsx',
                                           period_from timestamptz DEFAULT NULL,
                                           period_to timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_workbook';
COMMENT ON FUNCTION calo_recon.export_workbook(text, timestamptz, timestamptz) IS
  'Writes the Excel workbook of the period [period_from, period_to) under calo_recon.export_directory: a Summary sheet first (period, as-of time, figures per currency, breaks by kind, charts of the wallet liability, the breaks per day and the anomaly scores, the list of sheets), one sheet per report of export_reports (a report longer than calo_recon.workbook_sheet_rows continues on "<sheet> (2)", ...) and the Chart Data; money in its currency''s format, UTC dates, TRUE/FALSE, frozen header row, autofilter, landscape one page wide with the header row repeated. Returns the data rows of the report sheets. Same path and permission rules as export_reports.';
REVOKE EXECUTE ON FUNCTION calo_recon.export_workbook(text, timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION calo_recon.export_dashboard(file text DEFAULT 'dashboard.html',
                                            period_from timestamptz DEFAULT NULL,
                                            period_to timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_dashboard';
COMMENT ON FUNCTION calo_recon.export_dashboard(text, timestamptz, timestamptz) IS
  'Writes one self-contained HTML page (no script, no network: inline CSS and SVG charts) of the period [period_from, period_to) under calo_recon.export_directory: period, as-of time, figures per currency, breaks by kind, the workbook''s three charts, the top 10 open breaks by difference and the top 10 anomalies by score with their explanations; readable on screen and printed (A4 landscape). Returns the file written. Same path and permission rules as export_reports; the name must end in .html.';
REVOKE EXECUTE ON FUNCTION calo_recon.export_dashboard(text, timestamptz, timestamptz) FROM PUBLIC;

CREATE VIEW calo_recon.daily_summary AS
WITH activity AS (
    SELECT pg_catalog.timezone('UTC', t.logged_at)::pg_catalog.date AS day, t.currency,
           pg_catalog.count(*) AS transactions,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS credits,
           coalesce(pg_catalog.sum(t.amount) FILTER (
               WHERE NOT calo_recon.is_credit(t.txn_type, t.old_balance, t.new_balance)), 0) AS debits,
           pg_catalog.sum(t.vat) AS vat,
           pg_catalog.count(*) FILTER (WHERE calo_recon.is_overdraft(t.new_balance)) AS overdrafts
    FROM calo_recon.transactions t
    GROUP BY 1, 2
),
user_day AS (
    -- each wallet's last balance of the day (the last logged_at of the day,
    -- chain order among its ties), as a change from its previous one
    SELECT l.day, l.currency,
           l.closing - coalesce(pg_catalog.lag(l.closing) OVER (
               PARTITION BY l.user_id, l.currency ORDER BY l.day), 0) AS change
    FROM (SELECT DISTINCT ON (g.user_id, g.currency, g.day) g.user_id, g.currency, g.day,
                 t.new_balance AS closing
          FROM (SELECT t.user_id, t.currency, pg_catalog.timezone('UTC', t.logged_at)::pg_catalog.date AS day,
                       pg_catalog.max(t.logged_at) AS last_at
                FROM calo_recon.transactions t GROUP BY 1, 2, 3) g
          JOIN calo_recon.transactions t
            ON t.user_id = g.user_id AND t.logged_at = g.last_at AND t.currency = g.currency
          ORDER BY g.user_id, g.currency, g.day, calo_recon.chain_key(t.logged_at, t.txn_id) DESC) l
),
liability AS (
    SELECT u.day, u.currency, pg_catalog.sum(u.change) AS change
    FROM user_day u GROUP BY u.day, u.currency
),
breaks AS (
    SELECT pg_catalog.timezone('UTC', b.logged_at)::pg_catalog.date AS day, b.currency,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'conflict') AS conflicts,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'out_of_range') AS out_of_range
    FROM calo_recon.balance_breaks b
    GROUP BY 1, 2
),
disc AS (
    SELECT pg_catalog.timezone('UTC', d.logged_at)::pg_catalog.date AS day, d.currency,
           pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d
    WHERE d.currency IS NOT NULL
    GROUP BY 1, 2
),
anom AS (
    SELECT pg_catalog.timezone('UTC', a.logged_at)::pg_catalog.date AS day, a.currency,
           pg_catalog.count(*) AS anomalies
    FROM calo_recon.anomalies a
    GROUP BY 1, 2
),
days AS (
    SELECT a.day, a.currency FROM activity a
    UNION SELECT d.day, d.currency FROM disc d
)
SELECT k.day, k.currency,
       coalesce(a.transactions, 0) AS transactions,
       calo_recon.round_money(coalesce(a.credits, 0), cu.minor_unit) AS credits,
       calo_recon.round_money(coalesce(a.debits, 0), cu.minor_unit) AS debits,
       calo_recon.round_money(coalesce(a.vat, 0), cu.minor_unit) AS vat,
       calo_recon.round_money(pg_catalog.sum(coalesce(l.change, 0)) OVER (
           PARTITION BY k.currency ORDER BY k.day), cu.minor_unit) AS wallet_liability,
       coalesce(b.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(b.chain_breaks, 0) AS chain_breaks,
       coalesce(b.conflicts, 0) AS conflicts,
       coalesce(b.out_of_range, 0) AS out_of_range,
       coalesce(a.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(n.anomalies, 0) AS anomalies
FROM days k
LEFT JOIN activity a ON a.day = k.day AND a.currency = k.currency
LEFT JOIN liability l ON l.day = k.day AND l.currency = k.currency
LEFT JOIN breaks b ON b.day = k.day AND b.currency = k.currency
LEFT JOIN disc d ON d.day = k.day AND d.currency = k.currency
LEFT JOIN anom n ON n.day = k.day AND n.currency = k.currency
LEFT JOIN calo_recon.currencies cu ON cu.code = k.currency;
COMMENT ON VIEW calo_recon.daily_summary IS
  'The figures per currency and UTC day (days with transactions or discrepancies): activity, the wallet liability at the end of the day, breaks by kind, overdrafts, discrepancies and anomalies. Money rounded to the currency''s minor unit (round_money). Breaks are as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.daily_summary.day IS 'Day (UTC) the rows were logged';
COMMENT ON COLUMN calo_recon.daily_summary.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.daily_summary.transactions IS 'Transactions logged that day';
COMMENT ON COLUMN calo_recon.daily_summary.credits IS 'Sum of amount (gross) over credits (is_credit)';
COMMENT ON COLUMN calo_recon.daily_summary.debits IS 'Sum of amount (gross) over debits';
COMMENT ON COLUMN calo_recon.daily_summary.vat IS 'Sum of vat';
COMMENT ON COLUMN calo_recon.daily_summary.wallet_liability IS 'Closing wallet liability: the sum over wallets of their last new_balance (chain order) logged in that currency up to the end of the day';
COMMENT ON COLUMN calo_recon.daily_summary.arithmetic_breaks IS 'Arithmetic breaks of that day''s transactions (balance_breaks)';
COMMENT ON COLUMN calo_recon.daily_summary.chain_breaks IS 'Chain breaks of that day''s transactions';
COMMENT ON COLUMN calo_recon.daily_summary.conflicts IS 'Conflicting deliveries of that day''s transactions';
COMMENT ON COLUMN calo_recon.daily_summary.out_of_range IS 'Values too large or too precise to check exactly';
COMMENT ON COLUMN calo_recon.daily_summary.overdrafts IS 'Transactions that left a wallet below zero';
COMMENT ON COLUMN calo_recon.daily_summary.discrepancies IS 'Balance errors logged that day at or above the tolerance (discrepancies; those of users without a transaction have no currency and are not counted here)';
COMMENT ON COLUMN calo_recon.daily_summary.anomalies IS 'Rows of the anomalies view logged that day';

CREATE VIEW calo_recon.as_of AS
SELECT pg_catalog.max(r.finished_at) AS as_of,
       pg_catalog.max(r.run_id) AS run_id
FROM calo_recon.runs r
WHERE r.status = 'succeeded'
  AND r.run_id = (SELECT pg_catalog.max(s.run_id) FROM calo_recon.runs s WHERE s.status = 'succeeded');
COMMENT ON VIEW calo_recon.as_of IS
  'The time the reports are as of: the end of the last successful calo_recon.refresh() run (one row; NULLs before the first)';
COMMENT ON COLUMN calo_recon.as_of.as_of IS 'finished_at of the last succeeded run in calo_recon.runs';
COMMENT ON COLUMN calo_recon.as_of.run_id IS 'That run';

-- ---------------------------------------------------------------------------
-- cschema (issue 13 items 2-5): a schema that distributes on Citus (README
-- "Scaling out with Citus").  The ingest looks a stored txn_id up by id
-- alone (the key of transactions holds user_id on a cluster) and the queue
-- trigger inserts from an array (Citus cannot read a transition table on a
-- shard); balance_breaks and precision_drift join transactions by user_id
-- too (the same rows; colocated shards on a cluster); same signatures and
-- columns, so OR REPLACE keeps the grants.  Then
-- sql/install/80_citus.sql as it is; before the ops block's reapply_grants(),
-- which grants the new functions to the recorded roles.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION calo_recon.ingest_log_unreconciled(log text, source text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_digest     bytea;
    v_source     text;
    v_events     integer := 0;
    v_txns       integer := 0;
    v_dups       integer := 0;
    v_conflicts  integer := 0;
    v_errors     integer := 0;
    v_rejections integer := 0;
    v_quarantine integer := 0;
    v_repeated   integer := 0;
    v_others     integer[];
    v_other_rows calo_recon.transactions[];
    v_valid      integer;
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM calo_recon.lock_writer();

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0;
        RETURN;
    END IF;

    -- log_events is keyed by (source_file, event_no): a different content
    -- under a name already used gets the name plus its digest prefix.
    v_source := COALESCE(NULLIF(source, ''),
                         'inline:' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.file_name = v_source)
       OR EXISTS (SELECT 1 FROM calo_recon.log_events e WHERE e.source_file = v_source) THEN
        v_source := v_source || '#' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16);
    END IF;

    -- One statement stores the file: every event into log_events; the events
    -- the parser made malformed into quarantine (kind: the kind intended);
    -- the first occurrence of each transaction id, the balance errors and the
    -- rejections into their tables.  The parse is read once, never read back.
    WITH parsed AS MATERIALIZED (
        SELECT p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
               p.body, p.raw
        FROM calo_recon.parse_log(log) AS p
    ), logged AS (
        INSERT INTO calo_recon.log_events
               (source_file, event_no, logged_at, request_id, message_id, level, kind, body, raw)
        SELECT v_source, e.event_no, e.logged_at, e.request_id, e.message_id, e.level, e.kind,
               e.body, e.raw
        FROM parsed e
    ), quarantined AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, e.event_no, e.logged_at, COALESCE(e.body ->> 'intended_kind', 'malformed'),
               e.body ->> 'txn_id', e.body ->> 'reason', e.body, e.raw
        FROM parsed e
        WHERE e.kind = 'malformed'
        ORDER BY e.event_no
        RETURNING 1
    ), valid AS (
        SELECT e.event_no, e.logged_at, e.request_id, e.message_id, e.kind, e.body
        FROM parsed e
        WHERE e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection')
    ), valid_txns AS (
        -- each valid transaction event as the row it would be stored as
        SELECT v.event_no, v.body ->> 'id' AS txn_id,
               row_number() OVER (PARTITION BY v.body ->> 'id' ORDER BY v.event_no) AS occurrence,
               -- the legacy form has no type key: its txn_type is NULL
               ROW(v.body ->> 'id', v.body ->> 'userId', v.body ->> 'type',
                   v.body ->> 'source', v.body ->> 'action', v.body ->> 'currency',
                   (v.body -> 'amount')::numeric, (v.body -> 'vat')::numeric,
                   (v.body -> 'oldBalance')::numeric, (v.body -> 'newBalance')::numeric,
                   NULLIF(v.body -> 'paymentBalance', 'null'::jsonb)::numeric,
                   NULLIF(v.body -> 'updatePaymentBalance', 'null'::jsonb)::boolean,
                   NULLIF(v.body -> 'metadata', 'null'::jsonb),
                   v.logged_at, v.request_id, v.message_id, v_source)::calo_recon.transactions AS r
        FROM valid v
        WHERE v.kind = 'transaction'
    ), stored_ids AS MATERIALIZED (
        -- ids already stored, under any user: on a Citus cluster the table
        -- is distributed by user_id and its key cannot hold a txn_id alone
        -- (README "Scaling out with Citus"); ingests hold the writer lock,
        -- so no other ingest stores an id between this look-up and the insert
        SELECT t.txn_id
        FROM calo_recon.transactions t
        WHERE t.txn_id = ANY (ARRAY(SELECT f.txn_id FROM valid_txns f WHERE f.occurrence = 1))
    ), new_txns AS (
        -- first valid occurrence of each id, in id order (stable lock order)
        INSERT INTO calo_recon.transactions
        SELECT (f.r).*
        FROM valid_txns f
        WHERE f.occurrence = 1
          AND f.txn_id NOT IN (SELECT s.txn_id FROM stored_ids s)
        ORDER BY f.txn_id
        -- a concurrent COPY or INSERT (not under the writer lock) of the same
        -- id: the key of the table, on one node or on the cluster
        ON CONFLICT DO NOTHING
        RETURNING txn_id, user_id
    ), new_errors AS (
        INSERT INTO calo_recon.balance_errors
               (user_id, subscription_balance, payment_balance, logged_at, request_id,
                message_id, txn_id, source_file)
        SELECT v.body ->> 'userId', (v.body -> 'subscriptionBalance')::numeric,
               (v.body -> 'paymentBalance')::numeric, v.logged_at, v.request_id,
               v.message_id, v.body ->> 'txn_id', v_source
        FROM valid v
        WHERE v.kind = 'balance_error'
        ORDER BY 1, 4, 5
        -- only the event key: a clash of error_id must fail, not vanish
        ON CONFLICT (user_id, logged_at, request_id, message_id, subscription_balance, payment_balance)
            DO NOTHING
        RETURNING user_id
    ), new_rejections AS (
        INSERT INTO calo_recon.negative_balance_rejections
               (txn_id, user_id, current_balance, logged_at, request_id, source_file)
        SELECT v.body ->> 'transactionId', v.body ->> 'userId',
               (v.body -> 'currentBalance')::numeric, v.logged_at, v.request_id, v_source
        FROM valid v
        WHERE v.kind = 'negative_balance_rejection'
        ORDER BY 2, 4, 5
        ON CONFLICT (user_id, logged_at, request_id, txn_id, current_balance) DO NOTHING
        RETURNING user_id
    ), others AS (
        SELECT o.event_no, o.r
        FROM valid_txns o
        WHERE o.occurrence > 1 OR o.txn_id NOT IN (SELECT t.txn_id FROM new_txns t)
    )
    SELECT (SELECT count(*) FROM parsed)::integer,
           (SELECT count(*) FROM quarantined)::integer,
           (SELECT count(*) FROM new_txns)::integer,
           (SELECT count(*) FROM new_errors)::integer,
           (SELECT count(*) FROM new_rejections)::integer,
           (SELECT count(*) FROM valid v WHERE v.kind <> 'transaction')::integer,
           -- every other valid occurrence is compared with the stored row below
           (SELECT array_agg(o.event_no ORDER BY o.event_no) FROM others o),
           (SELECT array_agg(o.r ORDER BY o.event_no) FROM others o)
    INTO v_events, v_quarantine, v_txns, v_errors, v_rejections, v_valid, v_others,
         v_other_rows;
    -- errors and rejections already stored from an overlapping export
    v_repeated := v_valid - v_errors - v_rejections;

    -- The other valid occurrences meet a stored row: same payload is a
    -- duplicate delivery, a different one a conflict (the stored row stays).
    IF v_others IS NOT NULL THEN
        WITH others AS (
            SELECT n.event_no, o.*
            FROM unnest(v_other_rows) WITH ORDINALITY AS o
            JOIN unnest(v_others) WITH ORDINALITY AS n (event_no, ordinality)
              ON n.ordinality = o.ordinality
        ), stored_rows AS MATERIALIZED (
            -- the stored rows of these ids, by id alone (one look-up, which a
            -- Citus cluster runs on every shard)
            SELECT t.*
            FROM calo_recon.transactions t
            WHERE t.txn_id = ANY (ARRAY(SELECT o.txn_id FROM others o))
        ), compared AS (
            SELECT o.event_no, o.logged_at, o.txn_id,
                   to_jsonb(t) AS stored,
                   jsonb_build_object(
                       'txn_id', o.txn_id, 'user_id', o.user_id, 'txn_type', o.txn_type,
                       'source', o.source, 'action', o.action, 'currency', o.currency,
                       'amount', o.amount, 'vat', o.vat, 'old_balance', o.old_balance,
                       'new_balance', o.new_balance, 'payment_balance', o.payment_balance,
                       'update_payment_balance', o.update_payment_balance,
                       'metadata', o.metadata) AS incoming,
                   t.txn_id IS NOT NULL
                     AND ROW(o.user_id, o.txn_type, o.source, o.action, o.currency,
                             o.amount, o.vat, o.old_balance, o.new_balance,
                             o.payment_balance, o.update_payment_balance, o.metadata)
                         IS NOT DISTINCT FROM
                         ROW(t.user_id, t.txn_type, t.source, t.action, t.currency,
                             t.amount, t.vat, t.old_balance, t.new_balance,
                             t.payment_balance, t.update_payment_balance, t.metadata) AS same
            FROM others o
            LEFT JOIN stored_rows t ON t.txn_id = o.txn_id
        ), conflicted AS (
            INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
            SELECT v_source, c.event_no, c.logged_at, 'transaction', c.txn_id, 'conflict',
                   jsonb_build_object('stored', c.stored, 'incoming', c.incoming), e.raw
            FROM compared c
            JOIN calo_recon.log_events e ON e.source_file = v_source AND e.event_no = c.event_no
            WHERE NOT c.same
            ORDER BY c.event_no
            RETURNING 1
        )
        SELECT count(*) FILTER (WHERE c.same)::integer,
               count(*) FILTER (WHERE NOT c.same)::integer
        INTO v_dups, v_conflicts
        FROM compared c;
        v_quarantine := v_quarantine + v_conflicts;
    END IF;

    INSERT INTO calo_recon.ingested_files
           (digest, file_name, bytes, events, transactions, duplicates, conflicts,
            balance_errors, rejections, quarantined, repeated)
    VALUES (v_digest, v_source, pg_catalog.octet_length(log), v_events, v_txns, v_dups,
            v_conflicts, v_errors, v_rejections, v_quarantine, v_repeated);

    RETURN QUERY
    SELECT v_events, v_txns, v_dups, v_conflicts, v_errors, v_rejections, v_quarantine,
           v_repeated;
END;
$fn$;

CREATE OR REPLACE FUNCTION calo_recon.track_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT n.user_id) INTO users FROM new_rows n;
    INSERT INTO calo_recon.pending_reconcile (user_id)
    SELECT u.user_id FROM pg_catalog.unnest(users) AS u (user_id);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE VIEW calo_recon.balance_breaks AS
WITH breaks AS (
    SELECT f.txn_id, f.user_id, f.finding AS break_kind, f.currency,
           f.expected, f.actual, f.difference, f.tolerance, f.logged_at,
           calo_recon.finding_rank(f.finding) AS kind_order
    FROM calo_recon.reconciliation_findings f
    WHERE f.finding IN ('arithmetic', 'chain', 'out_of_range')
    UNION ALL
    SELECT DISTINCT ON (q.txn_id)
           q.txn_id, t.user_id, 'conflict', t.currency,
           NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric,
           coalesce(t.logged_at, q.logged_at), NULL::integer  -- after the walk's findings
    FROM calo_recon.quarantine q
    JOIN calo_recon.transactions t ON t.txn_id = q.txn_id
    WHERE q.reason = 'conflict'
)
SELECT b.txn_id, b.user_id, b.break_kind, b.currency,
       calo_recon.round_money(b.expected, cu.minor_unit) AS expected,
       calo_recon.round_money(b.actual, cu.minor_unit) AS actual,
       calo_recon.round_money(b.difference, cu.minor_unit) AS difference, b.tolerance,
       pg_catalog.row_number() OVER (PARTITION BY b.user_id
           ORDER BY calo_recon.chain_key(b.logged_at, b.txn_id), b.kind_order NULLS LAST) = 1 AS first_break,
       b.logged_at, t.source_file
FROM breaks b
-- by user_id too (the same row: a break is of its transaction's user), so
-- that a Citus cluster joins the colocated shards (README "Scaling out with Citus")
LEFT JOIN calo_recon.transactions t ON t.txn_id = b.txn_id AND t.user_id = b.user_id
LEFT JOIN calo_recon.currencies cu ON cu.code = b.currency;

CREATE OR REPLACE VIEW calo_recon.precision_drift AS
SELECT f.txn_id, f.user_id,
       CASE f.finding WHEN 'drift' THEN 'arithmetic' ELSE 'chain' END AS drift_kind,
       f.currency, f.expected, f.actual, f.difference, f.tolerance, f.logged_at,
       t.source_file
FROM calo_recon.reconciliation_findings f
-- by user_id too, as balance_breaks
LEFT JOIN calo_recon.transactions t ON t.txn_id = f.txn_id AND t.user_id = f.user_id
WHERE f.finding IN ('drift', 'chain_drift');

-- Scaling out with Citus (README "Scaling out with Citus"): distribute()
-- turns an installed database into a Citus cluster layout, and the per-shard
-- entry points run the reconciliation next to the data.  Nothing here needs
-- Citus to install: its functions and catalogs are named only in function
-- bodies, which run on a cluster.

-- One row per shard group: distribute() puts a value into every shard of the
-- colocation group of transactions, so that a query over this table runs
-- once per shard group, on the node of its placements, inside the caller's
-- transaction (tableoid there is the anchor's shard).  Empty on one node.
CREATE TABLE calo_recon.shard_anchors (
    user_id text PRIMARY KEY
);
COMMENT ON TABLE calo_recon.shard_anchors IS
  'On a Citus cluster: one row per shard of the wallet tables'' colocation group (a user_id value hashing into it), written by distribute(); reconcile() runs once per shard group through it. Empty on one node';
COMMENT ON COLUMN calo_recon.shard_anchors.user_id IS 'A value of the distribution column that falls into the shard';

CREATE FUNCTION calo_recon.reconcile_placement(anchor_shard oid, user_ids text[])
RETURNS bigint[]
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_reconcile_placement';
COMMENT ON FUNCTION calo_recon.reconcile_placement(oid, text[]) IS
  'Internal to reconcile() on a Citus cluster: reconcile() of the given users (all when NULL) on the shards of the shard group of anchor_shard (a shard of shard_anchors on this node); returns reconcile()''s six counts as an array';
REVOKE ALL ON FUNCTION calo_recon.reconcile_placement(oid, text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.transaction_features_placement(anchor_shard oid, user_ids text[], want_context boolean)
RETURNS TABLE (txn_id text, user_id text, logged_at timestamptz, features float8[],
               context float8[], amount float8, direction smallint, currency text,
               minor_unit integer)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'calo_recon_transaction_features_placement';
COMMENT ON FUNCTION calo_recon.transaction_features_placement(oid, text[], boolean) IS
  'Internal to the anomaly features on a Citus cluster: the features of the given users (all when NULL) over the shard of transactions in the shard group of anchor_shard (a shard of shard_anchors on this node), with what the explanations need of each row: the context (when want_context, else NULL), amount, direction, currency and its minor unit';
REVOKE ALL ON FUNCTION calo_recon.transaction_features_placement(oid, text[], boolean) FROM PUBLIC;

-- The layout, one home: which tables are distributed by user_id (in one
-- colocation group), which are reference tables; every other table stays on
-- the coordinator.  Triggers on distributed tables run on their shards
-- (citus.enable_unsafe_triggers), where a query may only reach the
-- colocated shards on the same node: the reconcile queue trigger does
-- exactly that and stays; the alert check (the user's whole chain, and the
-- alerts table on the coordinator) and the currency override (a query on its
-- own reference table) cannot, and are disabled.
CREATE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed', '{transactions_alert}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}'),
           ('calo_recon.currencies', 'reference', '{currencies_override_builtin}')
$$;
COMMENT ON FUNCTION calo_recon.citus_layout() IS
  'What distribute() does with each table on a Citus cluster: distributed (hash by user_id, colocated with transactions) or reference (a copy on every node), and the triggers it disables there; tables not listed stay on the coordinator';
REVOKE ALL ON FUNCTION calo_recon.citus_layout() FROM PUBLIC;

CREATE FUNCTION calo_recon.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name regclass, placement text, shards integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    key_columns text;
    key_name name;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'calo_recon.distribute: Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On the coordinator, with shared_preload_libraries = ''citus'' on every node: CREATE EXTENSION citus; add the workers (citus_add_node); then call distribute().';
    END IF;
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'calo_recon.distribute: shard_count % is out of range', shard_count
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give 1 to 64000 shards, or NULL for citus.shard_count.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
               WHERE p.logicalrelid = 'calo_recon.transactions'::regclass) THEN
        RAISE EXCEPTION 'calo_recon.distribute: calo_recon.transactions is already distributed'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- no ingest, reconcile or refresh while the tables move
    PERFORM calo_recon.lock_writer();
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    -- transactions first: the others are colocated with it
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l
             ORDER BY l.table_name <> 'calo_recon.transactions'::regclass LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.disabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER %I', t.table_name,
                                      t.disabled_triggers[i]);
        END LOOP;
        IF t.placement = 'reference' THEN
            PERFORM pg_catalog.create_reference_table(t.table_name);
            -- the rows were copied to the shards; the shell keeps none
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
            CONTINUE;
        END IF;
        -- a unique key of a distributed table holds the distribution column:
        -- the primary key gets user_id in front (ids stay unique: on one node
        -- they are unique alone, and the ingest keeps a txn_id from being
        -- stored under a second user, see ingest_log_unreconciled)
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
        INTO key_columns
        FROM pg_catalog.pg_constraint c
        CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = t.table_name AND c.contype = 'p';
        IF key_columns IS NOT NULL AND key_columns NOT LIKE 'user_id%' THEN
            SELECT c.conname INTO key_name FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = t.table_name AND c.contype = 'p';
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (user_id, %s)',
                                      t.table_name, key_name, key_name, key_columns);
        END IF;
        IF t.table_name = 'calo_recon.transactions'::regclass THEN
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id', 'hash',
                                                        colocate_with := 'none',
                                                        shard_count := shard_count);
        ELSE
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id',
                                                        colocate_with := 'calo_recon.transactions');
        END IF;
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;

    -- one anchor per shard: the first of k1, k2, ... that hashes into it
    INSERT INTO calo_recon.shard_anchors (user_id)
    SELECT DISTINCT ON (s.shardid) 'k' || g.i
    FROM pg_catalog.pg_dist_shard s
    CROSS JOIN pg_catalog.generate_series(1, 100 * (SELECT pg_catalog.count(*)::integer
                                                     FROM pg_catalog.pg_dist_shard x
                                                     WHERE x.logicalrelid = 'calo_recon.shard_anchors'::regclass)) AS g (i)
    WHERE s.logicalrelid = 'calo_recon.shard_anchors'::regclass
      AND pg_catalog.worker_hash('k' || g.i) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer
    ORDER BY s.shardid, g.i;

    RETURN QUERY
    SELECT l.table_name, l.placement,
           (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
            WHERE s.logicalrelid = l.table_name)
    FROM calo_recon.citus_layout() l;
END;
$$;
COMMENT ON FUNCTION calo_recon.distribute(integer) IS
  'On the coordinator of a Citus cluster: distributes the wallet tables by user_id in one colocation group (shard_count shards, NULL for citus.shard_count) and makes the small ones reference tables, as calo_recon.citus_layout() lists; the other tables stay on the coordinator. 0A000 without Citus; run once (README "Scaling out with Citus")';
REVOKE ALL ON FUNCTION calo_recon.distribute(integer) FROM PUBLIC;
-- end of cschema (issue 13)

-- last: the recorded grants, on every object as it now is
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of ops (issue 11)

-- layout (issue 12, item 5): the sources moved into src/core and src/glue;
-- the comment of parse_log names the new home of the parser limits.
COMMENT ON FUNCTION calo_recon.parse_log(text) IS
$$Splits one CloudWatch balance-sync log text into events, one row each; writes nothing.
Columns: event_no (from 1), logged_at (application timestamp, else export timestamp), request_id (NULL when absent or "undefined"), level (INFO/ERROR/...; NULL for platform lines), kind, body (jsonb), message_id (SQS message the request was processing), raw (the event text as in the log).
Kinds: start, end, report, init_start, init_report, metric, platform_text, processing_message, transaction, balance_error, negative_balance_rejection, skip, balance_updated, transaction_lock, transaction_json, record_body, sync_error, uncaught_exception, invoke_error, app_log, malformed.
A malformed body is {"reason", "detail", "intended_kind"}, plus "field" (the key) and "txn_id" (the event's own id, when readable) for a data field that breaks its rule; reasons: no_timestamp, bad_timestamp, truncated_event, malformed_event (also: a duplicate key, or another log line starting inside the event), missing_field, bad_field (also: an empty string, a currency not of three capital letters, a type not CREDIT or DEBIT), out_of_range (an id, string field or number beyond the parser's limits, money of 10^15 or more), too_large (an event beyond the parser's size limit: not parsed, raw cut to an excerpt); the limits are in src/core/logparse.h and the README. See calo_recon.parse_log_kinds().$$;

-- perf (issue 8 benchmarks): transaction_scores keyed model first, so that a
-- model's scores, written in one bulk write in txn_id order, are appended at
-- the right edge of the key instead of going into every leaf page of the
-- scores of the models before it.
ALTER TABLE calo_recon.transaction_scores
    DROP CONSTRAINT transaction_scores_pkey,
    ADD CONSTRAINT transaction_scores_pkey PRIMARY KEY (model_id, txn_id);
-- end of perf
-- Aggregates that distribute (issue 13 item 1): scaler_fit and iforest_fit
-- keep their names and signatures, on partial states of their own types
-- (calo_recon.scaler_state, calo_recon.iforest_sample) with text and binary
-- forms and combine functions, in place of internal states, so that parallel
-- workers and Citus workers run the partial aggregation.  The 1.1 support
-- functions go; their C symbols stay, raising 0A000 (src/glue/fit_v11_glue.c).
-- Stored models are untouched (calo_recon.scaler and calo_recon.iforest keep
-- their forms).
DROP AGGREGATE calo_recon.scaler_fit(float8[]);
DROP FUNCTION calo_recon.scaler_fit_transfn(internal, float8[]);
DROP FUNCTION calo_recon.scaler_fit_combinefn(internal, internal);
DROP FUNCTION calo_recon.scaler_fit_serialfn(internal);
DROP FUNCTION calo_recon.scaler_fit_deserialfn(bytea, internal);
DROP FUNCTION calo_recon.scaler_fit_finalfn(internal);
DROP AGGREGATE calo_recon.iforest_fit(float8[]);
DROP AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint);
DROP AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint, int);
DROP FUNCTION calo_recon.iforest_fit_transfn(internal, float8[]);
DROP FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint);
DROP FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint, int);
DROP FUNCTION calo_recon.iforest_fit_combinefn(internal, internal);
DROP FUNCTION calo_recon.iforest_fit_serialfn(internal);
DROP FUNCTION calo_recon.iforest_fit_deserialfn(bytea, internal);
DROP FUNCTION calo_recon.iforest_fit_finalfn(internal);

-- The partial state of scaler_fit, a type of its own with text and binary
-- forms and a combine function, so that parallel workers and Citus workers
-- run the partial aggregation and the leader or coordinator combines.
CREATE TYPE calo_recon.scaler_state;

CREATE FUNCTION calo_recon.scaler_state_in(cstring) RETURNS calo_recon.scaler_state
    AS 'MODULE_PATHNAME', 'scaler_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_in(cstring) IS
  'Input of calo_recon.scaler_state: base64 of its binary form, fully validated (22P02 when invalid)';
CREATE FUNCTION calo_recon.scaler_state_out(calo_recon.scaler_state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'scaler_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_out(calo_recon.scaler_state) IS
  'Output of calo_recon.scaler_state: base64 of its binary form';
CREATE FUNCTION calo_recon.scaler_state_recv(internal) RETURNS calo_recon.scaler_state
    AS 'MODULE_PATHNAME', 'scaler_state_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_recv(internal) IS
  'Binary input of calo_recon.scaler_state, fully validated (22P03 when invalid)';
CREATE FUNCTION calo_recon.scaler_state_send(calo_recon.scaler_state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'scaler_state_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_send(calo_recon.scaler_state) IS
  'Binary output of calo_recon.scaler_state: the versioned binary form';

CREATE TYPE calo_recon.scaler_state (
    INPUT = calo_recon.scaler_state_in,
    OUTPUT = calo_recon.scaler_state_out,
    RECEIVE = calo_recon.scaler_state_recv,
    SEND = calo_recon.scaler_state_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);
COMMENT ON TYPE calo_recon.scaler_state IS
  'A running StandardScaler fit (count, and per feature the exact sums of x and x*x): the partial state of scaler_fit';

CREATE FUNCTION calo_recon.scaler_state_add(calo_recon.scaler_state, float8[]) RETURNS calo_recon.scaler_state
    AS 'MODULE_PATHNAME', 'scaler_state_add' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_add(calo_recon.scaler_state, float8[]) IS
  'scaler_fit state transition: adds one row to the exact sums (an aggregate''s transition only)';
-- the transitions run as the aggregates' owner; nobody calls them directly
REVOKE ALL ON FUNCTION calo_recon.scaler_state_add(calo_recon.scaler_state, float8[]) FROM PUBLIC;
CREATE FUNCTION calo_recon.scaler_state_combine(calo_recon.scaler_state, calo_recon.scaler_state) RETURNS calo_recon.scaler_state
    AS 'MODULE_PATHNAME', 'scaler_state_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_combine(calo_recon.scaler_state, calo_recon.scaler_state) IS
  'The running fits of two sets of rows into the fit of their union, exactly (any split gives the same scaler); scaler_fit''s combine function';
CREATE FUNCTION calo_recon.scaler_state_fit(calo_recon.scaler_state) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_state_fit' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_fit(calo_recon.scaler_state) IS
  'The scaler of a running fit: mean, variance and scale; an empty training set is an error (scaler_fit''s final function)';
CREATE FUNCTION calo_recon.scaler_state_info(calo_recon.scaler_state, OUT features int, OUT samples bigint)
    AS 'MODULE_PATHNAME', 'scaler_state_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_info(calo_recon.scaler_state) IS
  'Number of features and of rows of a running scaler fit';

CREATE AGGREGATE calo_recon.scaler_fit(features float8[]) (
    SFUNC = calo_recon.scaler_state_add,
    STYPE = calo_recon.scaler_state,
    FINALFUNC = calo_recon.scaler_state_fit,
    COMBINEFUNC = calo_recon.scaler_state_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.scaler_fit(float8[]) IS
  'Fits a StandardScaler (scikit-learn semantics) over feature vectors; NULL/NaN/Infinity features, ragged rows and empty input are errors';

-- The partial state of iforest_fit: a bottom-k sample of the training rows
-- by a hashed priority, a type of its own with text and binary forms and a
-- combine function (see scaler_state).  A model fitted from any split of the
-- rows, combined in any order, is the same bytes.
CREATE TYPE calo_recon.iforest_sample;

CREATE FUNCTION calo_recon.iforest_sample_in(cstring) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_in(cstring) IS
  'Input of calo_recon.iforest_sample: base64 of its binary form, fully validated (22P02 when invalid)';
CREATE FUNCTION calo_recon.iforest_sample_out(calo_recon.iforest_sample) RETURNS cstring
    AS 'MODULE_PATHNAME', 'iforest_sample_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_out(calo_recon.iforest_sample) IS
  'Output of calo_recon.iforest_sample: base64 of its binary form';
CREATE FUNCTION calo_recon.iforest_sample_recv(internal) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_recv(internal) IS
  'Binary input of calo_recon.iforest_sample, fully validated (22P03 when invalid)';
CREATE FUNCTION calo_recon.iforest_sample_send(calo_recon.iforest_sample) RETURNS bytea
    AS 'MODULE_PATHNAME', 'iforest_sample_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_send(calo_recon.iforest_sample) IS
  'Binary output of calo_recon.iforest_sample: the versioned binary form';

CREATE TYPE calo_recon.iforest_sample (
    INPUT = calo_recon.iforest_sample_in,
    OUTPUT = calo_recon.iforest_sample_out,
    RECEIVE = calo_recon.iforest_sample_recv,
    SEND = calo_recon.iforest_sample_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);
COMMENT ON TYPE calo_recon.iforest_sample IS
  'The training sample of an Isolation Forest fit (the n_trees * sample_size rows of least hashed priority, with their counts, and the fit''s parameters): the partial state of iforest_fit';

CREATE FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[]) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_add' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[]) IS
  'iforest_fit state transition: validates the row and offers it to the sample (an aggregate''s transition only)';
CREATE FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_add' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint) IS
  'iforest_fit state transition with n_trees, sample_size and seed';
CREATE FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint, int) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_add' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint, int) IS
  'iforest_fit state transition with n_trees, sample_size, seed and extension_level';
-- the transitions run as the aggregates' owner; nobody calls them directly
REVOKE ALL ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint, int) FROM PUBLIC;
CREATE FUNCTION calo_recon.iforest_sample_combine(calo_recon.iforest_sample, calo_recon.iforest_sample) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_combine(calo_recon.iforest_sample, calo_recon.iforest_sample) IS
  'The samples of two sets of rows into the sample of their union (22023 when taken with different parameters); iforest_fit''s combine function';
CREATE FUNCTION calo_recon.iforest_sample_fit(calo_recon.iforest_sample) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_sample_fit' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_fit(calo_recon.iforest_sample) IS
  'The forest grown from a sample, with the sample''s parameters; an empty training set is an error (iforest_fit''s final function)';
CREATE FUNCTION calo_recon.iforest_sample_info(calo_recon.iforest_sample,
    OUT rows_seen bigint, OUT entries bigint, OUT rows_kept bigint, OUT features int,
    OUT trees int, OUT sample_size int, OUT seed bigint, OUT extension_level int)
    AS 'MODULE_PATHNAME', 'iforest_sample_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_info(calo_recon.iforest_sample) IS
  'A sample''s rows seen, entries (distinct rows kept), rows kept (their counts summed) and the fit''s parameters';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[]) (
    SFUNC = calo_recon.iforest_sample_add,
    STYPE = calo_recon.iforest_sample,
    FINALFUNC = calo_recon.iforest_sample_fit,
    COMBINEFUNC = calo_recon.iforest_sample_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[]) IS
  'Fits an Isolation Forest: 100 trees, sample_size min(256, rows), seed 42';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[], n_trees int, sample_size int, seed bigint) (
    SFUNC = calo_recon.iforest_sample_add,
    STYPE = calo_recon.iforest_sample,
    FINALFUNC = calo_recon.iforest_sample_fit,
    COMBINEFUNC = calo_recon.iforest_sample_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint) IS
  'Fits an Isolation Forest with n_trees (1..10000), sample_size (2..100000) and seed (NULL arguments take the defaults 100, 256, 42)';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[], n_trees int, sample_size int, seed bigint, extension_level int) (
    SFUNC = calo_recon.iforest_sample_add,
    STYPE = calo_recon.iforest_sample,
    FINALFUNC = calo_recon.iforest_sample_fit,
    COMBINEFUNC = calo_recon.iforest_sample_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint, int) IS
  'Fits an Extended Isolation Forest (Hariri et al. 2018); extension_level 0 .. n_features - 1, 0 is the classic forest';
-- (ops' block below ends with reapply_grants(), which grants the fit
-- states' transitions to the recorded roles as on a fresh install)
-- end of the fit states (issue 13 item 1)

-- ops (issue 11 leftovers, session 4): one alert-group predicate, the
-- operator without direct DML (SECURITY DEFINER entry points), backfill age
-- at insert time.
-- One alert-group predicate: calo_recon.alert_group() for acknowledge_alert,
-- resolve_alert and alert_groups.
DROP VIEW calo_recon.alert_groups;
DROP FUNCTION calo_recon.acknowledge_alert(bigint, text, boolean);
DROP FUNCTION calo_recon.resolve_alert(bigint, text, boolean);
-- An alert's group, the one definition acknowledge_alert(), resolve_alert()
-- and the alert_groups view share: the transaction that raised it, its user
-- and its kind.  Groups compare as composite values, so alerts about the
-- system (user_id NULL) group with each other as GROUP BY groups them.
CREATE FUNCTION calo_recon.alert_group(a calo_recon.alerts,
                                       OUT raised_in xid8, OUT user_id text, OUT alert_kind text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.raised_in, a.user_id, a.alert_kind
$$;
COMMENT ON FUNCTION calo_recon.alert_group(calo_recon.alerts) IS
  'The group of an alert: raised_in (the transaction that raised it), user_id and alert_kind; two alerts are in one group when their alert_group() values are equal (NULL user_ids equal). Used by acknowledge_alert, resolve_alert and alert_groups';

CREATE FUNCTION calo_recon.acknowledge_alert(alert_id bigint, note text DEFAULT NULL,
                                             whole_group boolean DEFAULT false)
RETURNS SETOF calo_recon.alerts
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed bigint;
BEGIN
    IF alert_id IS NULL OR whole_group IS NULL THEN
        RAISE EXCEPTION 'alert_id and whole_group must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- waits for a concurrent acknowledgement or resolution of these rows,
    -- then re-reads them: the second of two people is told who came first
    RETURN QUERY
    UPDATE calo_recon.alerts a SET acknowledged_at = pg_catalog.now(), acknowledge_note = note
    WHERE a.acknowledged_at IS NULL AND a.resolved_at IS NULL
      AND (a.alert_id = acknowledge_alert.alert_id
           OR (whole_group AND calo_recon.alert_group(a) =
               (SELECT calo_recon.alert_group(g) FROM calo_recon.alerts g
                WHERE g.alert_id = acknowledge_alert.alert_id)))
    RETURNING a.*;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 0 THEN
        PERFORM calo_recon.alert_refuse(alert_id, 'acknowledge');
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.acknowledge_alert(bigint, text, boolean) IS
  'Acknowledges an open alert (status acknowledged, acknowledged_by the session''s login role, acknowledged_at now, the note), or with whole_group every open alert of its group (same raising transaction, user and kind); returns the rows changed. P0002 when there is no such alert, 55000 when it is already acknowledged or resolved (naming by whom and when): of two people acknowledging at once, the second waits for the first and gets 55000';
REVOKE EXECUTE ON FUNCTION calo_recon.acknowledge_alert(bigint, text, boolean) FROM PUBLIC;

CREATE FUNCTION calo_recon.resolve_alert(alert_id bigint, note text, whole_group boolean DEFAULT false)
RETURNS SETOF calo_recon.alerts
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    changed bigint;
BEGIN
    IF alert_id IS NULL OR whole_group IS NULL THEN
        RAISE EXCEPTION 'alert_id and whole_group must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.btrim(coalesce(note, '')) = '' THEN
        RAISE EXCEPTION 'resolving an alert needs a note saying why'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: calo_recon.resolve_alert(42, ''refund issued, ticket FIN-123'').';
    END IF;
    RETURN QUERY
    UPDATE calo_recon.alerts a SET resolved_at = pg_catalog.now(), resolution = note
    WHERE a.resolved_at IS NULL
      AND (a.alert_id = resolve_alert.alert_id
           OR (whole_group AND calo_recon.alert_group(a) =
               (SELECT calo_recon.alert_group(g) FROM calo_recon.alerts g
                WHERE g.alert_id = resolve_alert.alert_id)))
    RETURNING a.*;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed = 0 THEN
        PERFORM calo_recon.alert_refuse(alert_id, 'resolve');
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.resolve_alert(bigint, text, boolean) IS
  'Resolves an open or acknowledged alert with a note saying why (status resolved, resolved_by the session''s login role, resolved_at now), or with whole_group every unresolved alert of its group; returns the rows changed. 22023 without a note, P0002 when there is no such alert, 55000 when it is already resolved (naming by whom, when and why)';
REVOKE EXECUTE ON FUNCTION calo_recon.resolve_alert(bigint, text, boolean) FROM PUBLIC;

CREATE VIEW calo_recon.alert_groups AS
SELECT g.raised_in, pg_catalog.max(a.run_id) AS run_id, g.user_id, g.alert_kind, k.severity,
       pg_catalog.count(*) AS alerts,
       pg_catalog.count(*) FILTER (WHERE a.status = 'open') AS open,
       pg_catalog.count(*) FILTER (WHERE a.status = 'acknowledged') AS acknowledged,
       pg_catalog.min(a.alert_id) AS first_alert_id,
       pg_catalog.min(a.created_at) AS created_at
FROM calo_recon.alerts a
CROSS JOIN LATERAL calo_recon.alert_group(a) g
JOIN calo_recon.alert_kinds k ON k.alert_kind = g.alert_kind
GROUP BY g.raised_in, g.user_id, g.alert_kind, k.severity;
COMMENT ON VIEW calo_recon.alert_groups IS
  'Alerts grouped by the transaction that raised them (a refresh() run, an ingest), the user and the kind: what on-call looks at first; acknowledge or resolve a whole group with acknowledge_alert(first_alert_id, note, true)';
COMMENT ON COLUMN calo_recon.alert_groups.raised_in IS 'Database transaction that raised the group';
COMMENT ON COLUMN calo_recon.alert_groups.run_id IS 'refresh() run that raised it, NULL outside a run';
COMMENT ON COLUMN calo_recon.alert_groups.user_id IS 'Wallet owner (NULL for alerts about the system)';
COMMENT ON COLUMN calo_recon.alert_groups.alert_kind IS 'Kind of alert';
COMMENT ON COLUMN calo_recon.alert_groups.severity IS 'Severity of the kind (calo_recon.alert_kinds)';
COMMENT ON COLUMN calo_recon.alert_groups.alerts IS 'Alerts in the group';
COMMENT ON COLUMN calo_recon.alert_groups.open IS 'Of which open (neither acknowledged nor resolved)';
COMMENT ON COLUMN calo_recon.alert_groups.acknowledged IS 'Of which acknowledged and not resolved';
COMMENT ON COLUMN calo_recon.alert_groups.first_alert_id IS 'Lowest alert_id of the group, to pass to acknowledge_alert or resolve_alert with whole_group';
COMMENT ON COLUMN calo_recon.alert_groups.created_at IS 'When the group''s first alert was raised';
-- Backfill age at insert time (issue 11 item 1): the alert trigger raises
-- nothing for rows logged before now() - calo_recon.alert_backfill_age.
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
    model record;
    amount_threshold numeric;
    -- rows logged before it raise no alert (a backfill of history)
    backfill_before timestamptz := pg_catalog.now() - (calo_recon.ops_settings()).alert_backfill_age;
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
        FROM found
        -- a scalar look-up per row (by primary key): NOT EXISTS was planned
        -- as a hashed subplan over every stored transaction
        WHERE backfill_before IS NULL
           OR NOT coalesce((SELECT t.logged_at < backfill_before FROM calo_recon.transactions t
                            WHERE t.txn_id = found.txn_id), false)
        ORDER BY found.txn_id, found.ord NULLS LAST
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
            WHERE s.flagged AND s.txn_id IN (SELECT n.txn_id FROM new_rows n
                                             WHERE backfill_before IS NULL OR n.logged_at >= backfill_before)
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
  'Trigger: checks inserted transactions (when calo_recon.alerts is on), raises alerts rows (none for a transaction logged before now() - calo_recon.alert_backfill_age) and sends one NOTIFY calo_recon_alerts per statement that raised any (payload: calo_recon.alerts_notice)';
CREATE TRIGGER transactions_alert
    AFTER INSERT ON calo_recon.transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.alert_new_transactions();
-- Least privilege (issue 11 item 6): the operator writes the record only
-- through the SECURITY DEFINER entry points of calo_recon.definer_entry_points.
-- The operator's jobs that run with the extension owner's rights: the one
-- list of the SECURITY DEFINER routines (every overload of each name).
CREATE TABLE calo_recon.definer_entry_points (
    routine_name name PRIMARY KEY,
    writes       text NOT NULL
);
COMMENT ON TABLE calo_recon.definer_entry_points IS
  'The SECURITY DEFINER entry points (README "Roles"): the operator''s jobs that write the record, run as the extension owner; harden_entry_points() makes exactly these SECURITY DEFINER with search_path = pg_catalog, pg_temp and no EXECUTE for PUBLIC, grant_role() gives operators EXECUTE on them';
COMMENT ON COLUMN calo_recon.definer_entry_points.routine_name IS 'Name of the routine in the calo_recon schema (every overload)';
COMMENT ON COLUMN calo_recon.definer_entry_points.writes IS 'What it writes for the operator, who may not write it directly';
INSERT INTO calo_recon.definer_entry_points (routine_name, writes) VALUES
  ('ingest_log',         'transactions, log_events, balance errors, rejections, quarantine, ingested_files; reconciles'),
  ('ingest_file',        'what ingest_log writes, from files under calo_recon.import_directory; import_files'),
  ('reconcile',          'reconciliation_findings, the reconcile queue, the alerts the findings no longer support'),
  ('refresh_start',      'a runs row in status running'),
  ('refresh_finish',     'the work of a run (ingestion, reconciliation, scoring, alerts) and its outcome in runs'),
  ('train_model',        'models and their scores'),
  ('score_transactions', 'transaction_scores'),
  ('export_reports',     'CSV files under calo_recon.export_directory'),
  ('export_workbook',    'an Excel file under calo_recon.export_directory'),
  ('export_dashboard',   'an HTML file under calo_recon.export_directory'),
  ('acknowledge_alert',  'the acknowledgement of alerts'),
  ('resolve_alert',      'the resolution of alerts'),
  ('raise_alerts',       'alerts and alert_marks'),
  ('purge',              'old log text, resolved alerts, ended runs, quarantine, pg_cron history');

-- Makes exactly the listed entry points SECURITY DEFINER, hardened; every
-- other routine of the schema runs with its caller's rights.  Run last by
-- the install and by every update script (which may have re-created one).
CREATE FUNCTION calo_recon.harden_entry_points()
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
    routine regprocedure;
    definer boolean;
    statement text;
BEGIN
    SELECT pg_catalog.string_agg(e.routine_name, ', ' ORDER BY e.routine_name) INTO missing
    FROM calo_recon.definer_entry_points e
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                      WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.proname = e.routine_name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'calo_recon.definer_entry_points names no routine: %', missing
            USING ERRCODE = 'undefined_function';
    END IF;
    FOR routine, definer IN
        SELECT p.oid, p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'calo_recon'::regnamespace
          AND (p.prosecdef OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
        ORDER BY p.oid::regprocedure::text
    LOOP
        FOREACH statement IN ARRAY CASE WHEN definer THEN ARRAY[
                format('ALTER ROUTINE %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', routine),
                format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', routine)]
            ELSE ARRAY[format('ALTER ROUTINE %s SECURITY INVOKER', routine)] END
        LOOP
            EXECUTE statement;
            RETURN NEXT statement;
        END LOOP;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.harden_entry_points() IS
  'Makes exactly the routines named in calo_recon.definer_entry_points SECURITY DEFINER with search_path = pg_catalog, pg_temp and no EXECUTE for PUBLIC, and any other SECURITY DEFINER routine of the schema SECURITY INVOKER; returns the statements. 42883 when a listed name has no routine. The install and every update script run it last; only the owner may';
REVOKE EXECUTE ON FUNCTION calo_recon.harden_entry_points() FROM PUBLIC;
UPDATE calo_recon.role_kinds SET description = 'reader + reads every table; runs ingestion, reconciliation, refresh, training, scoring, exports, alerts and retention through the functions (no direct writes to the record); feedback'
WHERE kind = 'operator';
DROP FUNCTION calo_recon.grant_role(name, text);
CREATE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views), monitor (schema USAGE, the health view and check_health(); no wallet data), analyst (reader + reading models, scores and feedback, recording feedback; no write right on any table) or operator (reader + reading every table; refresh, ingestion, reconciliation, training, scoring, exports, alerts and retention through the SECURITY DEFINER entry points of calo_recon.definer_entry_points, with no write right on the record and no server-file role needed; currencies and the active model; feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights';
REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM PUBLIC;
-- who started a run: the login role, which the owner's refresh_start() does
-- not change; runs recorded before stay NULL
ALTER TABLE calo_recon.runs ADD COLUMN started_by name;
ALTER TABLE calo_recon.runs ALTER COLUMN started_by SET DEFAULT session_user;
COMMENT ON COLUMN calo_recon.runs.started_by IS 'Login role (session_user) of the session that started the run, set by the product (refresh_start() runs as the extension owner; session_user is still the caller''s); NULL for runs recorded before 1.2';
-- the health view reads whole runs rows: made again with the new column
DROP FUNCTION calo_recon.check_health(interval);
DROP VIEW calo_recon.health;
CREATE VIEW calo_recon.health AS
WITH last_run AS (
    SELECT r.* FROM calo_recon.runs r ORDER BY r.run_id DESC LIMIT 1
), last_success AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1
), last_ended AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1
), last_failure AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'failed' ORDER BY r.run_id DESC LIMIT 1
)
SELECT pg_catalog.now() AS checked_at,
       (SELECT s.finished_at FROM last_success s) AS last_success_at,
       pg_catalog.now() - (SELECT s.finished_at FROM last_success s) AS last_success_age,
       (SELECT r.run_id FROM last_run r) AS last_run_id,
       (SELECT r.status FROM last_run r) AS last_run_status,
       (SELECT e.status = 'failed' FROM last_ended e) AS last_ended_run_failed,
       (SELECT r.skipped_since FROM last_run r WHERE r.skipped_since IS NOT NULL) AS skipping_since,
       (SELECT f.run_id FROM last_failure f) AS last_error_run_id,
       (SELECT f.finished_at FROM last_failure f) AS last_error_at,
       (SELECT f.error FROM last_failure f) AS last_error,
       (SELECT f.error_detail FROM last_failure f) AS last_error_detail,
       (SELECT f.error_hint FROM last_failure f) AS last_error_hint,
       (SELECT pg_catalog.max(f.loaded_at) FROM calo_recon.ingested_files f WHERE f.transactions > 0) AS last_data_loaded_at,
       (SELECT pg_catalog.count(*) FROM calo_recon.runs r WHERE r.status = 'running') AS runs_running,
       (SELECT pg_catalog.count(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p) AS users_pending_reconcile,
       (SELECT pg_catalog.jsonb_object_agg(q.reason, q.n ORDER BY q.reason)
        FROM (SELECT x.reason, pg_catalog.count(*) AS n FROM calo_recon.quarantine x GROUP BY x.reason) q) AS quarantine_by_reason,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'open'
              GROUP BY k.severity) s) AS open_alerts,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'acknowledged'
              GROUP BY k.severity) s) AS acknowledged_alerts,
       (SELECT pg_catalog.jsonb_object_agg(c.relname, pg_catalog.pg_total_relation_size(c.oid) ORDER BY c.relname)
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'calo_recon'::pg_catalog.regnamespace AND c.relkind = 'r') AS table_bytes;
COMMENT ON VIEW calo_recon.health IS
  'One row: is calo_recon doing its job (last successful refresh and its age, the last error with DETAIL and HINT, skipping, queue, quarantine, open alerts by severity, table sizes); for the monitor role, check_health() and postgres_exporter (README "Health and monitoring")';
COMMENT ON COLUMN calo_recon.health.checked_at IS 'now() of the reading transaction';
COMMENT ON COLUMN calo_recon.health.last_success_at IS 'When the last successful refresh() run finished; NULL when none has';
COMMENT ON COLUMN calo_recon.health.last_success_age IS 'checked_at - last_success_at: how fresh the reconciled data is';
COMMENT ON COLUMN calo_recon.health.last_run_id IS 'The newest run';
COMMENT ON COLUMN calo_recon.health.last_run_status IS 'Its status: running, succeeded, failed or skipped';
COMMENT ON COLUMN calo_recon.health.last_ended_run_failed IS 'Whether the newest run that did end (succeeded or failed) failed';
COMMENT ON COLUMN calo_recon.health.skipping_since IS 'When the newest run is one of a series of runs that could not start (writer lock held): when the series began';
COMMENT ON COLUMN calo_recon.health.last_error_run_id IS 'The newest failed run';
COMMENT ON COLUMN calo_recon.health.last_error_at IS 'When it finished';
COMMENT ON COLUMN calo_recon.health.last_error IS 'Its error: SQLSTATE: message';
COMMENT ON COLUMN calo_recon.health.last_error_detail IS 'Its error''s DETAIL';
COMMENT ON COLUMN calo_recon.health.last_error_hint IS 'Its error''s HINT';
COMMENT ON COLUMN calo_recon.health.last_data_loaded_at IS 'When the last file with transactions was ingested (see calo_recon.max_data_age)';
COMMENT ON COLUMN calo_recon.health.runs_running IS 'Runs in status running (more than one, or one that is old, is a run whose session stopped)';
COMMENT ON COLUMN calo_recon.health.users_pending_reconcile IS 'Users queued for the next reconciliation (calo_recon.pending_reconcile)';
COMMENT ON COLUMN calo_recon.health.quarantine_by_reason IS 'Quarantined items per reason, as a JSON object; NULL when there are none';
COMMENT ON COLUMN calo_recon.health.open_alerts IS 'Open alerts (neither acknowledged nor resolved) per severity, as a JSON object with every severity';
COMMENT ON COLUMN calo_recon.health.acknowledged_alerts IS 'Acknowledged, unresolved alerts per severity, as a JSON object with every severity';
COMMENT ON COLUMN calo_recon.health.table_bytes IS 'Size on disk of each calo_recon table, indexes and TOAST included, as a JSON object';

-- For pg_cron or any monitoring system that judges by an error: RH001
-- (calo_recon unhealthy) says what is wrong, every problem at once.
CREATE FUNCTION calo_recon.check_health(max_age interval DEFAULT NULL)
RETURNS calo_recon.health
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h calo_recon.health;
    problems text[] := '{}';
    detail text;  -- the failed run's DETAIL, if any
BEGIN
    IF max_age < interval '0' THEN
        RAISE EXCEPTION 'max_age must not be negative: %', max_age USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x.* INTO h FROM calo_recon.health x;
    IF h.last_success_at IS NULL THEN
        problems := problems || 'no refresh() run has succeeded'::text;
    ELSIF h.last_success_age > max_age THEN
        problems := problems || pg_catalog.format('the last successful refresh() finished %s ago, longer than %s',
                                                  h.last_success_age, max_age);
    END IF;
    IF h.last_ended_run_failed THEN
        problems := problems || pg_catalog.format('refresh() run %s failed: %s', h.last_error_run_id, h.last_error);
        detail := h.last_error_detail;
    END IF;
    IF (h.open_alerts ->> 'critical')::bigint > 0 THEN
        problems := problems || pg_catalog.format('%s critical alerts are open (not acknowledged)', h.open_alerts ->> 'critical');
    END IF;
    IF pg_catalog.cardinality(problems) > 0 AND detail IS NOT NULL THEN
        RAISE EXCEPTION 'calo_recon is unhealthy: %', pg_catalog.array_to_string(problems, '; ')
            USING ERRCODE = 'RH001', DETAIL = detail,
                  HINT = coalesce(h.last_error_hint, 'See calo_recon.health, calo_recon.runs and calo_recon.alert_groups.');
    ELSIF pg_catalog.cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'calo_recon is unhealthy: %', pg_catalog.array_to_string(problems, '; ')
            USING ERRCODE = 'RH001',
                  HINT = coalesce(h.last_error_hint, 'See calo_recon.health, calo_recon.runs and calo_recon.alert_groups.');
    END IF;
    RETURN h;
END;
$$;
COMMENT ON FUNCTION calo_recon.check_health(interval) IS
  'Returns the health row, or raises RH001 (calo_recon unhealthy) naming every problem: no successful refresh() run, or the last one older than max_age (not checked when NULL), the last run that ended failed (its DETAIL and HINT passed on), open critical alerts. 22023 for a negative max_age. For pg_cron and monitoring systems; the monitor role may run it';
REVOKE EXECUTE ON FUNCTION calo_recon.check_health(interval) FROM PUBLIC;
DROP FUNCTION calo_recon.refresh(text);
DROP PROCEDURE calo_recon.refresh_job(text);
-- The two steps of every run, the operator's entry points into runs (they
-- run as the extension owner: README "Roles"): refresh_start() records the
-- run as running, refresh_finish() does or skips its work and records the
-- outcome.  refresh() takes both in one transaction, refresh_job() commits
-- after each.
CREATE FUNCTION calo_recon.refresh_start(folder text)
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
BEGIN
    IF folder IS NULL THEN
        RAISE EXCEPTION 'folder must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO calo_recon.runs (status, folder) VALUES ('running', folder) RETURNING * INTO run;
    RETURN run;
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh_start(text) IS
  'First step of refresh() and refresh_job(): records a run of the folder in calo_recon.runs as running, by this session (backend_pid), and returns it; refresh_finish() does the rest. 22004 for a NULL folder';
REVOKE EXECUTE ON FUNCTION calo_recon.refresh_start(text) FROM PUBLIC;

CREATE FUNCTION calo_recon.refresh_finish(run_id bigint)
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- only the session that started a run finishes it: nobody can record
    -- another session's run as skipped, or work it twice
    IF NOT EXISTS (SELECT 1 FROM calo_recon.runs r
                   WHERE r.run_id = refresh_finish.run_id AND r.status = 'running'
                     AND r.backend_pid = pg_catalog.pg_backend_pid()) THEN
        RAISE EXCEPTION 'calo_recon.runs has no run % in status running started by this session', refresh_finish.run_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Start a run with calo_recon.refresh_start(folder), or call calo_recon.refresh().';
    END IF;
    IF NOT calo_recon.try_lock_writer() THEN
        RETURN calo_recon.refresh_skipped(run_id);
    END IF;
    RETURN calo_recon.refresh_work(run_id);
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh_finish(bigint) IS
  'Second step of refresh() and refresh_job(): for the run this session started with refresh_start(), takes the writer lock and does the work, or records the run as skipped (failed once skipping lasts longer than calo_recon.refresh_max_skip) when the lock is held; returns the run. 55000 for a run that is not running or was started by another session';
REVOKE EXECUTE ON FUNCTION calo_recon.refresh_finish(bigint) FROM PUBLIC;

CREATE FUNCTION calo_recon.refresh(folder text DEFAULT '')
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN calo_recon.refresh_finish((calo_recon.refresh_start(folder)).run_id);
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh(text) IS
  'Ingests new files from the folder (relative to calo_recon.import_directory, default all of it), reconciles every user with transactions inserted since the last run, scores new transactions with the active model, and records the run in calo_recon.runs. A run that finds the writer lock held (another refresh, an ingest, a reconcile) returns at once with status skipped and names the holding process; a failed run (a cancel or statement_timeout included) is rolled back but recorded with status failed and the error (and a WARNING); a scheduler sees the failure with check_last_refresh(), or schedules CALL calo_recon.refresh_job() instead';
REVOKE EXECUTE ON FUNCTION calo_recon.refresh(text) FROM PUBLIC;
-- For pg_cron: the 'running' row is committed before the work, so on-call
-- sees a run in progress, and a run whose session is terminated stays as a
-- row (marked failed by the next run, reported by check_last_refresh()).
-- A procedure with transaction control cannot pin its search_path with SET
-- (every name below is schema-qualified, every operator OPERATOR(pg_catalog.x))
-- nor be SECURITY DEFINER: it writes only through refresh_start() and
-- refresh_finish(), which are.
CREATE PROCEDURE calo_recon.refresh_job(folder text DEFAULT '')
LANGUAGE plpgsql
AS $$
DECLARE
    run calo_recon.runs;
BEGIN
    run := calo_recon.refresh_start(folder);
    COMMIT;
    run := calo_recon.refresh_finish(run.run_id);
    COMMIT;
    -- the run is this session's last: a failure is reported as the check reports it
    PERFORM calo_recon.check_last_refresh();
END;
$$;
COMMENT ON PROCEDURE calo_recon.refresh_job(text) IS
  'refresh() in two transactions, for pg_cron: commits the run as running, does the work and commits its outcome; fails with 38000 when the run failed (still recorded). A run cancelled, timed out or terminated mid-way stays visible in calo_recon.runs';
REVOKE EXECUTE ON PROCEDURE calo_recon.refresh_job(text) FROM PUBLIC;
COMMENT ON FUNCTION calo_recon.refresh_work(bigint) IS
  'Internal to refresh_finish(): the work of the run in status running with this run_id, recorded in its row';
COMMENT ON FUNCTION calo_recon.refresh_skipped_reason() IS
  'Internal to refresh_finish(): the error text of a skipped run, naming the process that holds the writer lock and its statement';
COMMENT ON FUNCTION calo_recon.refresh_skipped(bigint) IS
  'Internal to refresh_finish(): records the run in status running with this run_id as not started (writer lock held): skipped, or failed with a refresh_skipped alert once runs have been skipped for longer than calo_recon.refresh_max_skip';
COMMENT ON FUNCTION calo_recon.ingest_file(text) IS
  'Ingests a log file or a folder (walked recursively, in name order) under calo_recon.import_directory through ingest_log; gzip or plain text; files that are not logs are counted, skipped and recorded in quarantine; a walk counts files unchanged since it last read them (calo_recon.import_files) without reading them again; then reconciles every user queued in pending_reconcile (its own and any queued before). Runs as the extension owner (SECURITY DEFINER entry point, README "Roles"): EXECUTE, which the operator kind has, is the right to ingest from the import directory, and no path leads out of it';
COMMENT ON FUNCTION calo_recon.export_reports(text, timestamptz, timestamptz) IS
  'Writes one CSV file with a header per report (daily_summary, transactions, overdrafts, overdraft_episodes, anomalies by score, discrepancies, balance_breaks, precision_drift, user_summary) with the rows of the period [period_from, period_to) (NULL: open; user_summary keeps the users with a transaction in it), and period.csv saying the period and the as-of time, into a folder under calo_recon.export_directory (created when missing). Times are UTC (YYYY-MM-DD HH:MM:SS), booleans TRUE/FALSE; text cells that a spreadsheet would read as a formula get a leading apostrophe; files are mode 0600, or 0640 for calo_recon.export_group; never writes outside the export directory nor replaces a file it did not write. Runs as the extension owner (SECURITY DEFINER entry point): EXECUTE, which the operator kind has, is the right to export.';
-- purge() runs as the owner: of pg_cron's history it forgets what the
-- session's login role may see (every role's for a superuser)
DROP FUNCTION calo_recon.purge(interval);
CREATE FUNCTION calo_recon.purge(older_than interval)
RETURNS TABLE (purged text, "rows" bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'older_than must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative: %', older_than
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: calo_recon.purge(''90 days'').';
    END IF;
    cutoff := pg_catalog.now() - older_than;
    PERFORM calo_recon.lock_writer();

    UPDATE calo_recon.log_events e SET raw = ''
    WHERE e.logged_at < cutoff AND e.raw <> '';
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'log_events.raw'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.alerts a WHERE a.resolved_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'alerts'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.runs r
    WHERE r.finished_at < cutoff
      AND r.run_id NOT IN (SELECT k.run_id
                           FROM (VALUES ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x)),
                                        ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x WHERE x.status = 'succeeded')),
                                        ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x WHERE x.status = 'failed'))) AS k(run_id)
                           WHERE k.run_id IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'runs'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.quarantine q WHERE q.quarantined_at < cutoff AND q.reason <> 'conflict';
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'quarantine'; "rows" := n; RETURN NEXT;

    purged := 'cron.job_run_details'; "rows" := NULL;
    IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
        EXECUTE 'DELETE FROM cron.job_run_details d
                 WHERE d.end_time OPERATOR(pg_catalog.<) $1
                   AND d.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
                   AND d.command OPERATOR(pg_catalog.~~) ''%calo\_recon.%''
                   AND (d.username OPERATOR(pg_catalog.=) session_user
                        OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) session_user))'
        USING cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        "rows" := n;
    END IF;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION calo_recon.purge(interval) IS
  'Forgets what is older than older_than (before now() - older_than): the raw text of log events (by logged_at; the parsed event stays), resolved alerts (by resolved_at), ended runs (by finished_at; the newest run, success and failure stay), quarantined unreadable input (by quarantined_at; conflicts stay) and, when pg_cron is installed in this database, the history of its calo_recon jobs run by the session''s login role, or by any role for a superuser (by end_time). Never touches transactions, balance errors, rejections, findings, models, scores or feedback. Takes the writer lock. Returns the rows purged per item (NULL for cron.job_run_details without pg_cron). 22004 for NULL, 22023 for a negative interval';
REVOKE EXECUTE ON FUNCTION calo_recon.purge(interval) FROM PUBLIC;
-- exactly the listed entry points run as the owner (also last in the install: 99_entry_points.sql)
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
-- last: the recorded grants, on every object as it now is
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of ops (issue 11 leftovers, session 4)

-- ---------------------------------------------------------------------------
-- rules (issue 9 items 3 and 5): the amount rule per currency in a table
-- (sql/install/60_anomaly.sql) read by the anomalies view and the
-- amount_rule alert alike, set by analysts; train_model() per currency and
-- on a window of logged_at, recorded in the registry; one active model per
-- currency scope, chosen per transaction by transaction_models; scheduled
-- retraining in refresh() (runs.retrained).  OR REPLACE keeps the grants of
-- what keeps its signature; reapply_grants() at the end grants the rest.
-- ---------------------------------------------------------------------------
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

-- The one reading of the rule: the anomalies view and the alert trigger
-- select from it.  The '*' row is an uncorrelated subquery, read once per
-- query; a row that is a hit without its currency's row is one of '*'.
CREATE VIEW calo_recon.amount_rule_hits AS
SELECT t.txn_id, t.user_id, t.currency, t.amount,
       coalesce(own.threshold, (SELECT fallback.threshold FROM calo_recon.amount_thresholds fallback
                                WHERE fallback.currency = '*')) AS threshold,
       coalesce(own.currency, '*') AS threshold_row
FROM calo_recon.transactions t
LEFT JOIN calo_recon.amount_thresholds own ON own.currency = t.currency
WHERE t.amount > coalesce(own.threshold, (SELECT fallback.threshold FROM calo_recon.amount_thresholds fallback
                                          WHERE fallback.currency = '*'));
COMMENT ON VIEW calo_recon.amount_rule_hits IS
  'Transactions whose amount is above their currency''s threshold in calo_recon.amount_thresholds (its own row, else the row ''*''; with neither, none): the amount rule of calo_recon.anomalies and of the amount_rule alert';
COMMENT ON COLUMN calo_recon.amount_rule_hits.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.amount_rule_hits.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.amount_rule_hits.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.amount_rule_hits.amount IS 'Gross amount';
COMMENT ON COLUMN calo_recon.amount_rule_hits.threshold IS 'The threshold it is above';
COMMENT ON COLUMN calo_recon.amount_rule_hits.threshold_row IS 'The row of calo_recon.amount_thresholds that applied: the currency, or ''*''';

SELECT pg_catalog.pg_extension_config_dump('calo_recon.amount_thresholds', 'WHERE NOT builtin');

-- the registry records what each model was trained on; one active model
-- per currency scope
ALTER TABLE calo_recon.models
    ADD COLUMN currency text CHECK (calo_recon.is_currency_code(currency)),
    ADD COLUMN trained_from timestamptz,
    ADD COLUMN trained_to timestamptz,
    ADD CONSTRAINT models_training_window_check CHECK (trained_from < trained_to);
DROP INDEX calo_recon.models_one_active_idx;
DROP INDEX calo_recon.models_one_active_per_name_idx;
CREATE UNIQUE INDEX models_one_active_per_currency_idx ON calo_recon.models (currency) NULLS NOT DISTINCT WHERE active;
COMMENT ON TABLE calo_recon.models IS
  'Anomaly model registry: every model train_model() fitted, with what it was trained on; the active ones score, at most one per currency scope (calo_recon.transaction_models)';
COMMENT ON COLUMN calo_recon.models.parameters IS
  'Training parameters: n_trees, sample_size, seed (drawn and recorded when none was given), seed_given, excluded_confirmed, scope_rows (the transactions of its scope at training: refresh() counts new ones from it)';
COMMENT ON COLUMN calo_recon.models.active IS 'true for the models that score, one per currency scope; training a model deactivates the previous one of the same scope';
COMMENT ON COLUMN calo_recon.models.currency IS 'The currency the model was trained on and scores (its scope); NULL: every currency, scoring those without an active model of their own';
COMMENT ON COLUMN calo_recon.models.trained_from IS 'Start (inclusive) of the window of logged_at the model was trained on; NULL: from the first transaction';
COMMENT ON COLUMN calo_recon.models.trained_to IS 'End (exclusive) of the window of logged_at the model was trained on; NULL: up to the last transaction at training';

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
REVOKE ALL ON FUNCTION calo_recon.model_scope(text) FROM PUBLIC;

CREATE VIEW calo_recon.transaction_models AS
SELECT t.txn_id, t.user_id, t.currency,
       coalesce(own.model_id, (SELECT fallback.model_id FROM calo_recon.models fallback
                               WHERE fallback.active AND fallback.currency IS NULL)) AS model_id,
       t.amount, t.logged_at
FROM calo_recon.transactions t
LEFT JOIN calo_recon.models own ON own.active AND own.currency = t.currency;
COMMENT ON VIEW calo_recon.transaction_models IS
  'The active model that scores each transaction: the one of its currency, else the all-currency one (currency NULL); model_id NULL when neither is active';
COMMENT ON COLUMN calo_recon.transaction_models.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.transaction_models.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.transaction_models.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.transaction_models.model_id IS 'The model (calo_recon.models) whose score counts for it; NULL when none is active for its currency';
COMMENT ON COLUMN calo_recon.transaction_models.amount IS 'Gross amount (so that the anomalies view reads the transactions once)';
COMMENT ON COLUMN calo_recon.transaction_models.logged_at IS 'Time the transaction was logged';

-- score_transactions() scores each row with its model (same signature)
COMMENT ON FUNCTION calo_recon.score_transactions(boolean) IS
  'Scores each transaction with the active model that scores it (calo_recon.transaction_models: its currency''s, else the all-currency one), the rows that model has not scored yet (only_new, the default) or all of them; returns the number of rows scored (0 when no model is active)';

-- train_model() and its work take the currency and the window
DROP FUNCTION calo_recon.train_model(text, float8, int, int, bigint);
DROP FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint);
CREATE FUNCTION calo_recon.fit_and_score_model(
    model_id bigint, contamination float8, n_trees int, sample_size int, seed bigint,
    currency text DEFAULT NULL, trained_from timestamptz DEFAULT NULL, trained_to timestamptz DEFAULT NULL,
    OUT training_rows bigint, OUT excluded bigint, OUT scaler calo_recon.scaler,
    OUT forest calo_recon.iforest, OUT threshold float8, OUT scope_rows bigint)
    AS 'MODULE_PATHNAME', 'calo_recon_fit_and_score_model'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint, text, timestamptz, timestamptz) IS
  'The work of calo_recon.train_model(): fits the scaler and the forest on the scope''s rows of the window (currency and the window''s ends NULL: all), sets the threshold and stores the score of every transaction of the scope under model_id; returns the training row counts (excluded: confirmed anomalies of the window), the fitted scaler and forest, the threshold and the rows of the scope';
REVOKE ALL ON FUNCTION calo_recon.fit_and_score_model(bigint, float8, int, int, bigint, text, timestamptz, timestamptz) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION calo_recon.train_model(text, float8, int, int, bigint, text, timestamptz, timestamptz) FROM PUBLIC;

-- the anomalies view: the rule of amount_rule_hits, each row under its model
CREATE OR REPLACE VIEW calo_recon.anomalies AS
WITH candidates AS (
    SELECT c.txn_id, pg_catalog.bool_or(c.by_rule) AS by_rule
    FROM (SELECT s.txn_id, false AS by_rule
          FROM calo_recon.models a JOIN calo_recon.transaction_scores s ON s.model_id = a.model_id AND s.flagged
          WHERE a.active
          UNION ALL
          SELECT h.txn_id, true FROM calo_recon.amount_rule_hits h
          UNION ALL
          SELECT v.txn_id, false FROM calo_recon.anomaly_verdicts v WHERE v.verdict = 'confirmed') c
    GROUP BY c.txn_id
)
SELECT t.txn_id, t.user_id, t.currency, t.amount, t.logged_at,
       s.score, m.threshold,
       coalesce(s.flagged, false) AS model_flag,
       c.by_rule AS rule_flag,
       CASE WHEN s.flagged AND c.by_rule THEN 'model+amount_rule'
            WHEN s.flagged THEN 'model'
            WHEN c.by_rule THEN 'amount_rule'
            ELSE 'analyst' END AS reason,
       s.explanation,
       v.verdict,
       m.model_name
FROM candidates c
JOIN calo_recon.transaction_models t ON t.txn_id = c.txn_id
LEFT JOIN calo_recon.models m ON m.model_id = t.model_id
LEFT JOIN calo_recon.transaction_scores s ON s.txn_id = t.txn_id AND s.model_id = t.model_id
LEFT JOIN calo_recon.anomaly_verdicts v ON v.txn_id = t.txn_id
WHERE v.verdict IS DISTINCT FROM 'dismissed'
  AND (s.flagged OR c.by_rule OR v.verdict = 'confirmed');
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
COMMENT ON COLUMN calo_recon.anomalies.explanation IS 'Feature that isolated the transaction soonest in the forest, when the model flags it (NULL otherwise)';
COMMENT ON COLUMN calo_recon.anomalies.verdict IS 'Analyst verdict in force: confirmed, or NULL when not judged (dismissed rows are not shown)';
COMMENT ON COLUMN calo_recon.anomalies.model_name IS 'Name of that model; NULL when no model is active for its currency';

-- the alerts: the amount rule of amount_rule_hits, each new row under its model
UPDATE calo_recon.alert_kinds SET description = 'amount above its currency''s threshold in calo_recon.amount_thresholds (calo_recon.amount_rule_hits)' WHERE alert_kind = 'amount_rule';
UPDATE calo_recon.alert_kinds SET description = 'the score under the active model that scores the transaction (calo_recon.transaction_models) is above its threshold' WHERE alert_kind = 'model';
CREATE OR REPLACE FUNCTION calo_recon.alert_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    first_new timestamptz[];
    new_ids text[];
    model record;
    model_users text[];
    -- rows logged before it raise no alert (a backfill of history)
    backfill_before timestamptz := pg_catalog.now() - (calo_recon.ops_settings()).alert_backfill_age;
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
        SELECT h.txn_id, h.user_id, 'amount_rule',
               pg_catalog.jsonb_build_object('amount', h.amount, 'threshold', h.threshold,
                                             'currency', h.currency),
               NULL::integer  -- after the walk's findings
        FROM calo_recon.amount_rule_hits h
        WHERE h.txn_id IN (SELECT n.txn_id FROM new_rows n)
    ), stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT found.txn_id, found.user_id, found.alert_kind, found.detail
        FROM found
        -- a scalar look-up per row (by primary key): NOT EXISTS was planned
        -- as a hashed subplan over every stored transaction
        WHERE backfill_before IS NULL
           OR NOT coalesce((SELECT t.logged_at < backfill_before FROM calo_recon.transactions t
                            WHERE t.txn_id = found.txn_id), false)
        ORDER BY found.txn_id, found.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
           raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
    INTO raised_ids, raised_kinds FROM stored;

    -- each active model, through the scoring path of score_transactions()
    -- (calo_recon.model_scores: only the users of the new rows it scores are
    -- read and walked), alerts the new rows that calo_recon.transaction_models
    -- gives it (no model part in partial builds)
    IF pg_catalog.to_regclass('calo_recon.models') IS NOT NULL THEN
        FOR model IN SELECT m.* FROM calo_recon.models m WHERE m.active ORDER BY m.model_id LOOP
            CONTINUE WHEN model.features IS DISTINCT FROM calo_recon.transaction_feature_names();
            SELECT pg_catalog.array_agg(DISTINCT n.user_id) INTO model_users
            FROM new_rows n JOIN calo_recon.transaction_models tm ON tm.txn_id = n.txn_id
            WHERE tm.model_id = model.model_id;
            CONTINUE WHEN model_users IS NULL;
            WITH stored AS (
                INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
                SELECT s.txn_id, s.user_id, 'model',
                       pg_catalog.jsonb_build_object('score', s.score, 'threshold', model.threshold,
                                                     'model_id', model.model_id, 'model_name', model.model_name)
                FROM calo_recon.model_scores(model.model_id, model_users) s
                JOIN calo_recon.transaction_models tm ON tm.txn_id = s.txn_id AND tm.model_id = model.model_id
                WHERE s.flagged AND s.txn_id IN (SELECT n.txn_id FROM new_rows n
                                                 WHERE backfill_before IS NULL OR n.logged_at >= backfill_before)
                ORDER BY s.txn_id
                ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
                RETURNING alert_id, alert_kind
            )
            SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
                   raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
            INTO raised_ids, raised_kinds FROM stored;
        END LOOP;
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
  'Trigger: checks inserted transactions (when calo_recon.alerts is on), raises alerts rows (none for a transaction logged before now() - calo_recon.alert_backfill_age) and sends one NOTIFY calo_recon_alerts per statement that raised any (payload: calo_recon.alerts_notice)';

-- scheduled retraining, recorded in runs
ALTER TABLE calo_recon.runs ADD COLUMN retrained bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN calo_recon.runs.retrained IS 'Active models the run trained again (calo_recon.retrain_due_models(): older than calo_recon.retrain_after, or calo_recon.retrain_after_transactions new transactions in their scope); they scored their scope as they were trained, not counted in scored';
COMMENT ON COLUMN calo_recon.runs.scored IS 'Transactions scored with the active models (0 when none is active)';
-- the health view reads runs with r.*: defined again, so that it has the new column
CREATE OR REPLACE VIEW calo_recon.health AS
WITH last_run AS (
    SELECT r.* FROM calo_recon.runs r ORDER BY r.run_id DESC LIMIT 1
), last_success AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1
), last_ended AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1
), last_failure AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'failed' ORDER BY r.run_id DESC LIMIT 1
)
SELECT pg_catalog.now() AS checked_at,
       (SELECT s.finished_at FROM last_success s) AS last_success_at,
       pg_catalog.now() - (SELECT s.finished_at FROM last_success s) AS last_success_age,
       (SELECT r.run_id FROM last_run r) AS last_run_id,
       (SELECT r.status FROM last_run r) AS last_run_status,
       (SELECT e.status = 'failed' FROM last_ended e) AS last_ended_run_failed,
       (SELECT r.skipped_since FROM last_run r WHERE r.skipped_since IS NOT NULL) AS skipping_since,
       (SELECT f.run_id FROM last_failure f) AS last_error_run_id,
       (SELECT f.finished_at FROM last_failure f) AS last_error_at,
       (SELECT f.error FROM last_failure f) AS last_error,
       (SELECT f.error_detail FROM last_failure f) AS last_error_detail,
       (SELECT f.error_hint FROM last_failure f) AS last_error_hint,
       (SELECT pg_catalog.max(f.loaded_at) FROM calo_recon.ingested_files f WHERE f.transactions > 0) AS last_data_loaded_at,
       (SELECT pg_catalog.count(*) FROM calo_recon.runs r WHERE r.status = 'running') AS runs_running,
       (SELECT pg_catalog.count(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p) AS users_pending_reconcile,
       (SELECT pg_catalog.jsonb_object_agg(q.reason, q.n ORDER BY q.reason)
        FROM (SELECT x.reason, pg_catalog.count(*) AS n FROM calo_recon.quarantine x GROUP BY x.reason) q) AS quarantine_by_reason,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'open'
              GROUP BY k.severity) s) AS open_alerts,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'acknowledged'
              GROUP BY k.severity) s) AS acknowledged_alerts,
       (SELECT pg_catalog.jsonb_object_agg(c.relname, pg_catalog.pg_total_relation_size(c.oid) ORDER BY c.relname)
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'calo_recon'::pg_catalog.regnamespace AND c.relkind = 'r') AS table_bytes;
CREATE FUNCTION calo_recon.retrain_due_models()
RETURNS SETOF calo_recon.models
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_age interval := pg_catalog.current_setting('calo_recon.retrain_after')::interval;
    min_new bigint := pg_catalog.current_setting('calo_recon.retrain_after_transactions')::bigint;
    m calo_recon.models;
BEGIN
    IF max_age = interval '0' AND min_new = 0 THEN
        RETURN;
    END IF;
    FOR m IN SELECT a.* FROM calo_recon.models a WHERE a.active ORDER BY a.model_id LOOP
        IF (max_age > interval '0' AND pg_catalog.now() - m.trained_at >= max_age)
           OR (min_new > 0
               AND (SELECT pg_catalog.count(*) FROM calo_recon.model_scope(m.currency))
                   - coalesce((m.parameters ->> 'scope_rows')::bigint,
                              m.training_rows + coalesce((m.parameters ->> 'excluded_confirmed')::bigint, 0))
                   >= min_new) THEN
            RETURN QUERY
            SELECT * FROM calo_recon.train_model(
                m.model_name, m.contamination,
                (m.parameters ->> 'n_trees')::int,
                (m.parameters ->> 'sample_size')::int,
                NULL, m.currency,
                CASE WHEN m.trained_to IS NULL THEN m.trained_from
                     ELSE (SELECT pg_catalog.max(t.logged_at) - (m.trained_to - m.trained_from)
                           FROM calo_recon.model_scope(m.currency) s
                           JOIN calo_recon.transactions t ON t.txn_id = s.txn_id) END,
                NULL);
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.retrain_due_models() IS
  'Trains again each active model older than calo_recon.retrain_after, or whose currency scope has calo_recon.retrain_after_transactions more transactions than at its training (0: never), with the same name, contamination, trees, sample size and currency, a new seed, and the same window when it was open-ended (all history when it had none) or, when it was closed, one as long ending with the newest transaction of its scope (open at the end, so that one is included); returns the new models. refresh() runs it and counts them in runs.retrained';
REVOKE EXECUTE ON FUNCTION calo_recon.retrain_due_models() FROM PUBLIC;
CREATE OR REPLACE FUNCTION calo_recon.refresh_work(run_id bigint)
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
    ingested record;
    reconciled record;
BEGIN
    SELECT r.* INTO run FROM calo_recon.runs r WHERE r.run_id = refresh_work.run_id;
    IF NOT FOUND OR run.status <> 'running' THEN
        RAISE EXCEPTION 'calo_recon.runs has no run % in status running', refresh_work.run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- runs that this one holds the lock against: their sessions stopped
    -- running them (terminated, crashed) without recording how they ended
    -- the alerts this run raises name it (calo_recon.alerts.run_id's default)
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', run.run_id::text, true);
    UPDATE calo_recon.runs r
       SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
           error = 'did not finish: process ' || r.backend_pid
                   || ' stopped running it before recording an outcome (terminated or crashed)'
     WHERE r.status = 'running' AND r.run_id <> run.run_id;
    BEGIN
        -- the users of the new files are queued: reconciled once, below
        SELECT * INTO ingested FROM calo_recon.ingest_file_unreconciled(run.folder);
        run.files := ingested.new_files;
        run.skipped_files := ingested.skipped_files;
        run.events := ingested.events;
        run.transactions := ingested.transactions;

        SELECT * INTO reconciled FROM calo_recon.reconcile_pending();
        IF FOUND THEN
            run.reconciled_users := reconciled.users;
            run.breaks := reconciled.arithmetic_breaks + reconciled.chain_breaks;
        END IF;

        -- models due are trained again first: they score their whole scope
        run.retrained := (SELECT pg_catalog.count(*) FROM calo_recon.retrain_due_models());
        run.scored := calo_recon.score_transactions(true);
        run.status := 'succeeded';
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- the work above is rolled back; the run row stays, saying why (a
        -- cancel ends the work as asked, and the run is recorded as failed)
        run.status := 'failed';
        run.error := SQLSTATE || ': ' || SQLERRM;
        GET STACKED DIAGNOSTICS run.error_detail = PG_EXCEPTION_DETAIL, run.error_hint = PG_EXCEPTION_HINT;
        run.error_detail := NULLIF(run.error_detail, '');
        run.error_hint := NULLIF(run.error_hint, '');
        run.files := 0; run.skipped_files := 0; run.events := 0; run.transactions := 0;
        run.reconciled_users := 0; run.breaks := 0; run.scored := 0; run.retrained := 0;
        RAISE WARNING 'calo_recon.refresh() run % failed: %', run.run_id, run.error;
    END;
    run.finished_at := pg_catalog.clock_timestamp();
    UPDATE calo_recon.runs r
       SET finished_at = run.finished_at, status = run.status, files = run.files,
           skipped_files = run.skipped_files, events = run.events,
           transactions = run.transactions, reconciled_users = run.reconciled_users,
           breaks = run.breaks, scored = run.scored, retrained = run.retrained, error = run.error,
           error_detail = run.error_detail, error_hint = run.error_hint
     WHERE r.run_id = run.run_id
    RETURNING r.* INTO run;
    IF run.status = 'succeeded' THEN
        -- the line of 1.1, with the models retrained after it when there are
        -- any (log parsers that know the old line keep working)
        RAISE LOG 'calo_recon.refresh() run % succeeded in %: % files, % transactions, % users reconciled, % breaks, % scored%',
            run.run_id, run.duration, run.files, run.transactions, run.reconciled_users, run.breaks, run.scored,
            CASE WHEN run.retrained > 0 THEN ', ' || run.retrained || ' models retrained' ELSE '' END;
    END IF;
    -- what this run (its outcome included) and the data now call for; a
    -- failure to alert must not lose the run's record
    BEGIN
        PERFORM calo_recon.raise_alerts();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'calo_recon.refresh() run %: raise_alerts() failed: % %', run.run_id, SQLSTATE, SQLERRM;
    END;
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', '', true);
    RETURN run;
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh(text) IS
  'Ingests new files from the folder (relative to calo_recon.import_directory, default all of it), reconciles every user with transactions inserted since the last run, trains again the active models that are due (calo_recon.retrain_due_models()), scores new transactions with the active models, and records the run in calo_recon.runs. A run that finds the writer lock held (another refresh, an ingest, a reconcile) returns at once with status skipped and names the holding process; a failed run (a cancel or statement_timeout included) is rolled back but recorded with status failed and the error (and a WARNING); a scheduler sees the failure with check_last_refresh(), or schedules CALL calo_recon.refresh_job() instead';

-- roles: analysts set the thresholds; readers and monitors read them
UPDATE calo_recon.role_kinds SET description = 'USAGE on the schema, SELECT on transactions, the BI views and the amount thresholds' WHERE kind = 'reader';
UPDATE calo_recon.role_kinds SET description = 'reader + reads models, scores, feedback and the feature views; records feedback; sets the amount rule''s thresholds' WHERE kind = 'analyst';
UPDATE calo_recon.role_kinds SET description = 'USAGE on the schema, the health view, the amount thresholds and check_health(); no wallet data' WHERE kind = 'monitor';
DROP FUNCTION calo_recon.grant_role(name, text);
CREATE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views and the amount thresholds), monitor (schema USAGE, the health view, the amount thresholds and check_health(); no wallet data), analyst (reader + reading models, scores and feedback, recording feedback, setting the amount rule''s thresholds; no other write right on any table) or operator (reader + reading every table; refresh, ingestion, reconciliation, training, scoring, exports, alerts and retention through the SECURITY DEFINER entry points of calo_recon.definer_entry_points, with no write right on the record and no server-file role needed; currencies and the active model; feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights';
REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM PUBLIC;

-- exactly the listed entry points run as the owner (train_model was re-created)
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
-- last: the recorded grants, on every object as it now is
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of rules (issue 9)

-- ---------------------------------------------------------------------
-- features and explanations (issue 9 items 1, 2): the features a finance
-- team names, against the user's usual before the row (src/core/
-- anomaly_features.c); the explanation of a flagged row becomes a sentence
-- naming its top cause (src/core/explanation.c) and its attribution over all
-- features (src/core/attribution.c) is stored beside it.  Models trained on
-- the former features are refused by scoring (55000) until one is trained
-- again.  The feature view's columns change, so it is dropped and created
-- again; reapply_grants() below gives back the rights grant_role() gave on it.
-- ---------------------------------------------------------------------
DROP VIEW calo_recon.transaction_features;
DROP FUNCTION calo_recon.compute_transaction_features(text[]);
CREATE FUNCTION calo_recon.compute_transaction_features(user_ids text[] DEFAULT NULL)
RETURNS TABLE (txn_id text, user_id text, logged_at timestamptz, features float8[],
               amount_vs_usual float8, vat_rate float8, vat_rate_vs_usual float8,
               hours_from_usual float8, log_seconds_since_previous float8,
               repeats_previous float8, amount_scaled float8)
    AS 'MODULE_PATHNAME', 'calo_recon_compute_transaction_features'
    LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 1000;
COMMENT ON FUNCTION calo_recon.compute_transaction_features(text[]) IS
  'The rows of calo_recon.transaction_features, of all users (NULL) or of the given users only';
REVOKE ALL ON FUNCTION calo_recon.compute_transaction_features(text[]) FROM PUBLIC;

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

ALTER TABLE calo_recon.transaction_scores ADD COLUMN attribution jsonb;
COMMENT ON COLUMN calo_recon.transaction_scores.explanation IS
  'For flagged rows, one sentence naming the top cause with the numbers (e.g. "amount 14.2× this user''s usual debit of 5.400 BHD"); NULL otherwise';
COMMENT ON COLUMN calo_recon.transaction_scores.attribution IS
  'For flagged rows, the isolation bits of every feature: {"cause", "total_bits", "features": [{"feature", "bits", "direction": above|below|none}, ...]} most bits first; the bits sum to total_bits, the mean over the trees of log2(tree samples / samples of the row''s leaf). NULL otherwise';

-- the anomalies view gains attribution as its last column (in place: the
-- reports' views depend on it)
CREATE OR REPLACE VIEW calo_recon.anomalies AS
WITH candidates AS (
    SELECT c.txn_id, pg_catalog.bool_or(c.by_rule) AS by_rule
    FROM (SELECT s.txn_id, false AS by_rule
          FROM calo_recon.models a JOIN calo_recon.transaction_scores s ON s.model_id = a.model_id AND s.flagged
          WHERE a.active
          UNION ALL
          SELECT h.txn_id, true FROM calo_recon.amount_rule_hits h
          UNION ALL
          SELECT v.txn_id, false FROM calo_recon.anomaly_verdicts v WHERE v.verdict = 'confirmed') c
    GROUP BY c.txn_id
)
SELECT t.txn_id, t.user_id, t.currency, t.amount, t.logged_at,
       s.score, m.threshold,
       coalesce(s.flagged, false) AS model_flag,
       c.by_rule AS rule_flag,
       CASE WHEN s.flagged AND c.by_rule THEN 'model+amount_rule'
            WHEN s.flagged THEN 'model'
            WHEN c.by_rule THEN 'amount_rule'
            ELSE 'analyst' END AS reason,
       s.explanation,
       v.verdict,
       m.model_name,
       s.attribution
FROM candidates c
JOIN calo_recon.transaction_models t ON t.txn_id = c.txn_id
LEFT JOIN calo_recon.models m ON m.model_id = t.model_id
LEFT JOIN calo_recon.transaction_scores s ON s.txn_id = t.txn_id AND s.model_id = t.model_id
LEFT JOIN calo_recon.anomaly_verdicts v ON v.txn_id = t.txn_id
WHERE v.verdict IS DISTINCT FROM 'dismissed'
  AND (s.flagged OR c.by_rule OR v.verdict = 'confirmed');
COMMENT ON COLUMN calo_recon.anomalies.explanation IS 'The top cause in plain words with the numbers, when the model flags it (NULL otherwise)';
COMMENT ON COLUMN calo_recon.anomalies.attribution IS
  'Isolation bits per feature with their direction and the top cause, when the model flags it (calo_recon.transaction_scores.attribution; NULL otherwise)';

SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of features and explanations (issue 9 items 1, 2)

-- ---------------------------------------------------------------------
-- one list of the log's event kinds (issue 8 item 1): parse_log_kinds()
-- reads the parser's own catalog (src/core/lpkind.c, the data kinds'
-- bodies from the field tables of src/core/lpfield.c) instead of a second
-- list in SQL
-- ---------------------------------------------------------------------
DROP FUNCTION calo_recon.parse_log_kinds();
CREATE FUNCTION calo_recon.parse_log_kinds()
RETURNS TABLE (kind text, family text, body text)
AS 'MODULE_PATHNAME', 'calo_recon_parse_log_kinds'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.parse_log_kinds() IS
  'The event kinds calo_recon.parse_log returns: family (platform, application, data, failure, malformed) and the members of their body ("?" = only when present in the log)';
COMMENT ON FUNCTION calo_recon.parse_log(text) IS
$$Splits one CloudWatch balance-sync log text into events, one row each; writes nothing.
Columns: event_no (from 1), logged_at (application timestamp, else export timestamp), request_id (NULL when absent or "undefined"), level (INFO/ERROR/...; NULL for platform lines), kind, body (jsonb), message_id (SQS message the request was processing), raw (the event text as in the log).
Kinds: calo_recon.parse_log_kinds() lists them with their bodies.
A malformed body is {"reason", "detail", "intended_kind"}, plus "field" (the key) and "txn_id" (the event's own id, when readable) for a data field that breaks its rule; reasons: no_timestamp, bad_timestamp, truncated_event, malformed_event (also: a duplicate key, or another log line starting inside the event), missing_field, bad_field (also: an empty string, a currency not of three capital letters, a type not CREDIT or DEBIT), out_of_range (an id, string field or number beyond the parser's limits, money of 10^15 or more), too_large (an event beyond the parser's size limit: not parsed, raw cut to an excerpt); the limits are in src/core/logparse.h and the README. See calo_recon.parse_log_kinds().$$;
-- end of one list of event kinds

-- ---------------------------------------------------------------------------
-- citus (issue 13 leftovers): alerts, reports and roles on a Citus cluster.
-- The ingest hands the rows it stored to the alert check on the coordinator
-- (alert_distributed through alert_inbox, whose trigger runs
-- alert_new_transactions()); the alert trigger names the new ids, not the
-- transition table, in its queries over transactions, and looks the
-- backfill's old rows up by id (Citus cannot read a transition table nor
-- correlate there); chain_findings_since() walks per shard on a cluster
-- (C); discrepancies joins the linked transaction by user_id too and the
-- latest one laterally; grant_role() grants the layout's tables on a
-- cluster and its routine grants reach the workers (grant_on_workers);
-- distribute() re-applies the grants.  Same signatures and columns, so OR
-- REPLACE keeps the triggers and grants.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION calo_recon.ingest_log_unreconciled(log text, source text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_digest     bytea;
    v_source     text;
    v_events     integer := 0;
    v_txns       integer := 0;
    v_dups       integer := 0;
    v_conflicts  integer := 0;
    v_errors     integer := 0;
    v_rejections integer := 0;
    v_quarantine integer := 0;
    v_repeated   integer := 0;
    v_others     integer[];
    v_other_rows calo_recon.transactions[];
    v_valid      integer;
    -- on a Citus cluster the stored rows go to the alert check by hand
    -- (alert_distributed: the table's trigger is off there)
    v_distributed boolean := calo_recon.is_distributed();
    v_new_rows   calo_recon.transactions[];
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM calo_recon.lock_writer();

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0;
        RETURN;
    END IF;

    -- log_events is keyed by (source_file, event_no): a different content
    -- under a name already used gets the name plus its digest prefix.
    v_source := COALESCE(NULLIF(source, ''),
                         'inline:' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.file_name = v_source)
       OR EXISTS (SELECT 1 FROM calo_recon.log_events e WHERE e.source_file = v_source) THEN
        v_source := v_source || '#' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16);
    END IF;

    -- One statement stores the file: every event into log_events; the events
    -- the parser made malformed into quarantine (kind: the kind intended);
    -- the first occurrence of each transaction id, the balance errors and the
    -- rejections into their tables.  The parse is read once, never read back.
    WITH parsed AS MATERIALIZED (
        SELECT p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
               p.body, p.raw
        FROM calo_recon.parse_log(log) AS p
    ), logged AS (
        INSERT INTO calo_recon.log_events
               (source_file, event_no, logged_at, request_id, message_id, level, kind, body, raw)
        SELECT v_source, e.event_no, e.logged_at, e.request_id, e.message_id, e.level, e.kind,
               e.body, e.raw
        FROM parsed e
    ), quarantined AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, e.event_no, e.logged_at, COALESCE(e.body ->> 'intended_kind', 'malformed'),
               e.body ->> 'txn_id', e.body ->> 'reason', e.body, e.raw
        FROM parsed e
        WHERE e.kind = 'malformed'
        ORDER BY e.event_no
        RETURNING 1
    ), valid AS (
        SELECT e.event_no, e.logged_at, e.request_id, e.message_id, e.kind, e.body
        FROM parsed e
        WHERE e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection')
    ), valid_txns AS (
        -- each valid transaction event as the row it would be stored as
        SELECT v.event_no, v.body ->> 'id' AS txn_id,
               row_number() OVER (PARTITION BY v.body ->> 'id' ORDER BY v.event_no) AS occurrence,
               -- the legacy form has no type key: its txn_type is NULL
               ROW(v.body ->> 'id', v.body ->> 'userId', v.body ->> 'type',
                   v.body ->> 'source', v.body ->> 'action', v.body ->> 'currency',
                   (v.body -> 'amount')::numeric, (v.body -> 'vat')::numeric,
                   (v.body -> 'oldBalance')::numeric, (v.body -> 'newBalance')::numeric,
                   NULLIF(v.body -> 'paymentBalance', 'null'::jsonb)::numeric,
                   NULLIF(v.body -> 'updatePaymentBalance', 'null'::jsonb)::boolean,
                   NULLIF(v.body -> 'metadata', 'null'::jsonb),
                   v.logged_at, v.request_id, v.message_id, v_source)::calo_recon.transactions AS r
        FROM valid v
        WHERE v.kind = 'transaction'
    ), stored_ids AS MATERIALIZED (
        -- ids already stored, under any user: on a Citus cluster the table
        -- is distributed by user_id and its key cannot hold a txn_id alone
        -- (README "Scaling out with Citus"); ingests hold the writer lock,
        -- so no other ingest stores an id between this look-up and the insert
        SELECT t.txn_id
        FROM calo_recon.transactions t
        WHERE t.txn_id = ANY (ARRAY(SELECT f.txn_id FROM valid_txns f WHERE f.occurrence = 1))
    ), new_txns AS (
        -- first valid occurrence of each id, in id order (stable lock order)
        INSERT INTO calo_recon.transactions
        SELECT (f.r).*
        FROM valid_txns f
        WHERE f.occurrence = 1
          AND f.txn_id NOT IN (SELECT s.txn_id FROM stored_ids s)
        ORDER BY f.txn_id
        -- a concurrent COPY or INSERT (not under the writer lock) of the same
        -- id: the key of the table, on one node or on the cluster
        ON CONFLICT DO NOTHING
        RETURNING *
    ), new_errors AS (
        INSERT INTO calo_recon.balance_errors
               (user_id, subscription_balance, payment_balance, logged_at, request_id,
                message_id, txn_id, source_file)
        SELECT v.body ->> 'userId', (v.body -> 'subscriptionBalance')::numeric,
               (v.body -> 'paymentBalance')::numeric, v.logged_at, v.request_id,
               v.message_id, v.body ->> 'txn_id', v_source
        FROM valid v
        WHERE v.kind = 'balance_error'
        ORDER BY 1, 4, 5
        -- only the event key: a clash of error_id must fail, not vanish
        ON CONFLICT (user_id, logged_at, request_id, message_id, subscription_balance, payment_balance)
            DO NOTHING
        RETURNING user_id
    ), new_rejections AS (
        INSERT INTO calo_recon.negative_balance_rejections
               (txn_id, user_id, current_balance, logged_at, request_id, source_file)
        SELECT v.body ->> 'transactionId', v.body ->> 'userId',
               (v.body -> 'currentBalance')::numeric, v.logged_at, v.request_id, v_source
        FROM valid v
        WHERE v.kind = 'negative_balance_rejection'
        ORDER BY 2, 4, 5
        ON CONFLICT (user_id, logged_at, request_id, txn_id, current_balance) DO NOTHING
        RETURNING user_id
    ), others AS (
        SELECT o.event_no, o.r
        FROM valid_txns o
        WHERE o.occurrence > 1 OR o.txn_id NOT IN (SELECT t.txn_id FROM new_txns t)
    )
    SELECT (SELECT count(*) FROM parsed)::integer,
           (SELECT count(*) FROM quarantined)::integer,
           (SELECT count(*) FROM new_txns)::integer,
           (SELECT count(*) FROM new_errors)::integer,
           (SELECT count(*) FROM new_rejections)::integer,
           (SELECT count(*) FROM valid v WHERE v.kind <> 'transaction')::integer,
           -- every other valid occurrence is compared with the stored row below
           (SELECT array_agg(o.event_no ORDER BY o.event_no) FROM others o),
           (SELECT array_agg(o.r ORDER BY o.event_no) FROM others o),
           CASE WHEN v_distributed
                THEN (SELECT array_agg(ROW(n.*)::calo_recon.transactions ORDER BY n.txn_id) FROM new_txns n) END
    INTO v_events, v_quarantine, v_txns, v_errors, v_rejections, v_valid, v_others,
         v_other_rows, v_new_rows;
    IF v_new_rows IS NOT NULL THEN
        PERFORM calo_recon.alert_distributed(v_new_rows);
    END IF;
    -- errors and rejections already stored from an overlapping export
    v_repeated := v_valid - v_errors - v_rejections;

    -- The other valid occurrences meet a stored row: same payload is a
    -- duplicate delivery, a different one a conflict (the stored row stays).
    IF v_others IS NOT NULL THEN
        WITH others AS (
            SELECT n.event_no, o.*
            FROM unnest(v_other_rows) WITH ORDINALITY AS o
            JOIN unnest(v_others) WITH ORDINALITY AS n (event_no, ordinality)
              ON n.ordinality = o.ordinality
        ), stored_rows AS MATERIALIZED (
            -- the stored rows of these ids, by id alone (one look-up, which a
            -- Citus cluster runs on every shard)
            SELECT t.*
            FROM calo_recon.transactions t
            WHERE t.txn_id = ANY (ARRAY(SELECT o.txn_id FROM others o))
        ), compared AS (
            SELECT o.event_no, o.logged_at, o.txn_id,
                   to_jsonb(t) AS stored,
                   jsonb_build_object(
                       'txn_id', o.txn_id, 'user_id', o.user_id, 'txn_type', o.txn_type,
                       'source', o.source, 'action', o.action, 'currency', o.currency,
                       'amount', o.amount, 'vat', o.vat, 'old_balance', o.old_balance,
                       'new_balance', o.new_balance, 'payment_balance', o.payment_balance,
                       'update_payment_balance', o.update_payment_balance,
                       'metadata', o.metadata) AS incoming,
                   t.txn_id IS NOT NULL
                     AND ROW(o.user_id, o.txn_type, o.source, o.action, o.currency,
                             o.amount, o.vat, o.old_balance, o.new_balance,
                             o.payment_balance, o.update_payment_balance, o.metadata)
                         IS NOT DISTINCT FROM
                         ROW(t.user_id, t.txn_type, t.source, t.action, t.currency,
                             t.amount, t.vat, t.old_balance, t.new_balance,
                             t.payment_balance, t.update_payment_balance, t.metadata) AS same
            FROM others o
            LEFT JOIN stored_rows t ON t.txn_id = o.txn_id
        ), conflicted AS (
            INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
            SELECT v_source, c.event_no, c.logged_at, 'transaction', c.txn_id, 'conflict',
                   jsonb_build_object('stored', c.stored, 'incoming', c.incoming), e.raw
            FROM compared c
            JOIN calo_recon.log_events e ON e.source_file = v_source AND e.event_no = c.event_no
            WHERE NOT c.same
            ORDER BY c.event_no
            RETURNING 1
        )
        SELECT count(*) FILTER (WHERE c.same)::integer,
               count(*) FILTER (WHERE NOT c.same)::integer
        INTO v_dups, v_conflicts
        FROM compared c;
        v_quarantine := v_quarantine + v_conflicts;
    END IF;

    INSERT INTO calo_recon.ingested_files
           (digest, file_name, bytes, events, transactions, duplicates, conflicts,
            balance_errors, rejections, quarantined, repeated)
    VALUES (v_digest, v_source, pg_catalog.octet_length(log), v_events, v_txns, v_dups,
            v_conflicts, v_errors, v_rejections, v_quarantine, v_repeated);

    RETURN QUERY
    SELECT v_events, v_txns, v_dups, v_conflicts, v_errors, v_rejections, v_quarantine,
           v_repeated;
END;
$fn$;
CREATE OR REPLACE FUNCTION calo_recon.alert_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    first_new timestamptz[];
    new_ids text[];
    -- the new rows logged since backfill_before, and the walk's rows before it
    fresh_ids text[];
    stale_ids text[];
    model record;
    model_users text[];
    -- rows logged before it raise no alert (a backfill of history)
    backfill_before timestamptz := pg_catalog.now() - (calo_recon.ops_settings()).alert_backfill_age;
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
    SELECT pg_catalog.array_agg(n.txn_id),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE backfill_before IS NULL OR n.logged_at >= backfill_before)
    INTO new_ids, fresh_ids FROM new_rows n;
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

    -- the walk's rows logged before backfill_before raise no alert: looked
    -- up by id (not correlated per row: a Citus cluster cannot run that)
    IF backfill_before IS NOT NULL THEN
        SELECT pg_catalog.array_agg(t.txn_id) INTO stale_ids
        FROM calo_recon.transactions t
        WHERE t.txn_id IN (SELECT pg_catalog.unnest(found_txns)) AND t.logged_at < backfill_before;
    END IF;

    -- the new alerts and the amount rule
    WITH found AS (
        SELECT f.txn_id, f.user_id, f.alert_kind, f.detail, f.ord
        FROM unnest(found_txns, found_users, found_kinds, found_details, found_ranks)  -- multi-argument form: unqualified
             AS f(txn_id, user_id, alert_kind, detail, ord)
        UNION ALL
        SELECT h.txn_id, h.user_id, 'amount_rule',
               pg_catalog.jsonb_build_object('amount', h.amount, 'threshold', h.threshold,
                                             'currency', h.currency),
               NULL::integer  -- after the walk's findings
        FROM calo_recon.amount_rule_hits h
        -- the ids, not a join to new_rows: Citus cannot read a transition
        -- table in a query over a distributed table (README "Scaling out
        -- with Citus"); IN (unnest), not = ANY: a hashed semi-join for a
        -- bulk insert's million ids
        WHERE h.txn_id IN (SELECT pg_catalog.unnest(fresh_ids))
    ), stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT found.txn_id, found.user_id, found.alert_kind, found.detail
        FROM found
        WHERE found.txn_id NOT IN (SELECT pg_catalog.unnest(stale_ids))
        ORDER BY found.txn_id, found.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
           raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
    INTO raised_ids, raised_kinds FROM stored;

    -- each active model, through the scoring path of score_transactions()
    -- (calo_recon.model_scores: only the users of the new rows it scores are
    -- read and walked), alerts the new rows that calo_recon.transaction_models
    -- gives it (no model part in partial builds)
    IF pg_catalog.to_regclass('calo_recon.models') IS NOT NULL THEN
        FOR model IN SELECT m.* FROM calo_recon.models m WHERE m.active ORDER BY m.model_id LOOP
            CONTINUE WHEN model.features IS DISTINCT FROM calo_recon.transaction_feature_names();
            SELECT pg_catalog.array_agg(DISTINCT tm.user_id) INTO model_users
            FROM calo_recon.transaction_models tm
            WHERE tm.txn_id IN (SELECT pg_catalog.unnest(new_ids)) AND tm.model_id = model.model_id;
            CONTINUE WHEN model_users IS NULL;
            WITH stored AS (
                INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
                SELECT s.txn_id, s.user_id, 'model',
                       pg_catalog.jsonb_build_object('score', s.score, 'threshold', model.threshold,
                                                     'model_id', model.model_id, 'model_name', model.model_name)
                FROM calo_recon.model_scores(model.model_id, model_users) s
                JOIN calo_recon.transaction_models tm ON tm.txn_id = s.txn_id AND tm.model_id = model.model_id
                WHERE s.flagged AND s.txn_id IN (SELECT pg_catalog.unnest(fresh_ids))
                ORDER BY s.txn_id
                ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
                RETURNING alert_id, alert_kind
            )
            SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
                   raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
            INTO raised_ids, raised_kinds FROM stored;
        END LOOP;
    END IF;

    -- one notification for the statement, with the count (the alert ids
    -- keep NOTIFY from folding two statements' equal payloads)
    IF pg_catalog.cardinality(raised_ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(raised_ids, raised_kinds));
    END IF;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE VIEW calo_recon.discrepancies AS
SELECT e.error_id, e.user_id, e.txn_id,
       calo_recon.round_money(e.subscription_balance, cu.minor_unit::integer) AS subscription_balance,
       calo_recon.round_money(e.payment_balance, cu.minor_unit::integer) AS payment_balance,
       calo_recon.round_money(e.subscription_balance - e.payment_balance, cu.minor_unit::integer) AS difference,
       calo_recon.tolerance(cu.minor_unit) AS tolerance, coalesce(linked.currency, latest.currency) AS currency,
       e.logged_at, e.source_file
FROM calo_recon.balance_errors e
-- joined by user_id (a transaction is its user's), so that a Citus cluster
-- joins the colocated shards (README "Scaling out with Citus")
LEFT JOIN calo_recon.transactions linked ON linked.user_id = e.user_id AND linked.txn_id = e.txn_id
LEFT JOIN LATERAL (
    SELECT t.currency FROM calo_recon.transactions t WHERE t.user_id = e.user_id
    ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC LIMIT 1
) latest ON linked.txn_id IS NULL
LEFT JOIN calo_recon.currencies cu ON cu.code = coalesce(linked.currency, latest.currency)
WHERE abs(e.subscription_balance - e.payment_balance) >= calo_recon.tolerance(cu.minor_unit);
COMMENT ON VIEW calo_recon.discrepancies IS
  'Balance errors whose subscription and payment balances differ by at least the tolerance (currency of the linked transaction of the same user, else of the user''s latest transaction, else 2 decimals); balances and difference rounded to that currency''s minor unit (round_money), the test on the exact difference';
CREATE FUNCTION calo_recon.chain_findings_since_placement(anchor_shard oid, user_ids text[],
                                                          first_new timestamptz[], new_txn_ids text[])
RETURNS TABLE (txn_id text, user_id text, finding text, expected numeric, actual numeric,
               difference numeric, tolerance numeric, currency text, is_new boolean)
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'calo_recon_chain_findings_since_placement';
COMMENT ON FUNCTION calo_recon.chain_findings_since_placement(oid, text[], timestamptz[], text[]) IS
  'Internal to the alert check on a Citus cluster: chain_findings_since() over the shard of transactions in the shard group of anchor_shard (a shard of shard_anchors on this node)';
REVOKE ALL ON FUNCTION calo_recon.chain_findings_since_placement(oid, text[], timestamptz[], text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.is_distributed()
RETURNS boolean
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_is_distributed';
COMMENT ON FUNCTION calo_recon.is_distributed() IS
  'true when calo_recon.transactions is a Citus distributed table (distribute() has run), false on one node';
REVOKE ALL ON FUNCTION calo_recon.is_distributed() FROM PUBLIC;

-- Insert-time alerts on a cluster.  The transactions' alert trigger would
-- run on each shard, where neither the user's other rows in chain order
-- seen through the writer's locks nor calo_recon.alerts can be reached, so
-- distribute() disables it; instead the ingest (on the coordinator) puts the
-- rows it stored into this coordinator table, whose trigger runs the same
-- function, calo_recon.alert_new_transactions(), over the same transition
-- table: the rules keep their one home, and the walk runs per shard
-- (chain_findings_since_placement).  The ingest empties it in the same
-- transaction.
CREATE TABLE calo_recon.alert_inbox (LIKE calo_recon.transactions INCLUDING COMMENTS);
COMMENT ON TABLE calo_recon.alert_inbox IS
  'On a Citus cluster: the transactions an ingest has just stored, handed to the insert-time alert check (trigger alert_inbox_alert, the function of transactions_alert) on the coordinator and removed in the same transaction; always empty between statements';
CREATE TRIGGER alert_inbox_alert
    AFTER INSERT ON calo_recon.alert_inbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.alert_new_transactions();

CREATE FUNCTION calo_recon.alert_distributed(new_rows calo_recon.transactions[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO calo_recon.alert_inbox SELECT r.* FROM pg_catalog.unnest(new_rows) AS r;
    DELETE FROM calo_recon.alert_inbox;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_distributed(calo_recon.transactions[]) IS
  'Internal to the ingest on a Citus cluster: the insert-time alert check of the transactions it stored (calo_recon.alert_new_transactions() through calo_recon.alert_inbox)';
REVOKE ALL ON FUNCTION calo_recon.alert_distributed(calo_recon.transactions[]) FROM PUBLIC;

-- The rights grant_role() gives on routines, on the workers too: Citus
-- carries the grants on the schema and on distributed tables to the
-- workers, not those on the extension's functions, and a worker checks
-- EXECUTE on the per-shard functions a view calls there (the features) with
-- the caller's rights.  No-op on one node.
CREATE FUNCTION calo_recon.grant_on_workers(statements text[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    batch text;
    failed text;
BEGIN
    IF NOT calo_recon.is_distributed() THEN
        RETURN;
    END IF;
    -- one command per worker
    SELECT pg_catalog.string_agg(s.statement, '; ') INTO batch
    FROM pg_catalog.unnest(statements) AS s (statement)
    WHERE s.statement ~ ' ON (FUNCTION|ROUTINE|ALL ROUTINES IN SCHEMA) ';
    IF batch IS NULL THEN
        RETURN;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ')
    INTO failed
    FROM pg_catalog.run_command_on_workers(batch) AS w
    WHERE NOT w.success;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'calo_recon: could not grant on the workers: %', failed
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Every worker must have calo_recon and the role (CREATE ROLE on the coordinator reaches the workers).';
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_on_workers(text[]) IS
  'Internal to grant_role() and revoke_all() on a Citus cluster: runs their statements on routines on every worker too (Citus carries those on the schema and tables itself); 55000 when a worker refuses one. No-op on one node';
REVOKE ALL ON FUNCTION calo_recon.grant_on_workers(text[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION calo_recon.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name regclass, placement text, shards integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    key_columns text;
    key_name name;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'calo_recon.distribute: Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On the coordinator, with shared_preload_libraries = ''citus'' on every node: CREATE EXTENSION citus; add the workers (citus_add_node); then call distribute().';
    END IF;
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'calo_recon.distribute: shard_count % is out of range', shard_count
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give 1 to 64000 shards, or NULL for citus.shard_count.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
               WHERE p.logicalrelid = 'calo_recon.transactions'::regclass) THEN
        RAISE EXCEPTION 'calo_recon.distribute: calo_recon.transactions is already distributed'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- no ingest, reconcile or refresh while the tables move
    PERFORM calo_recon.lock_writer();
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    -- transactions first: the others are colocated with it
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l
             ORDER BY l.table_name <> 'calo_recon.transactions'::regclass LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.disabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER %I', t.table_name,
                                      t.disabled_triggers[i]);
        END LOOP;
        IF t.placement = 'reference' THEN
            PERFORM pg_catalog.create_reference_table(t.table_name);
            -- the rows were copied to the shards; the shell keeps none
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
            CONTINUE;
        END IF;
        -- a unique key of a distributed table holds the distribution column:
        -- the primary key gets user_id in front (ids stay unique: on one node
        -- they are unique alone, and the ingest keeps a txn_id from being
        -- stored under a second user, see ingest_log_unreconciled)
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
        INTO key_columns
        FROM pg_catalog.pg_constraint c
        CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = t.table_name AND c.contype = 'p';
        IF key_columns IS NOT NULL AND key_columns NOT LIKE 'user_id%' THEN
            SELECT c.conname INTO key_name FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = t.table_name AND c.contype = 'p';
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (user_id, %s)',
                                      t.table_name, key_name, key_name, key_columns);
        END IF;
        IF t.table_name = 'calo_recon.transactions'::regclass THEN
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id', 'hash',
                                                        colocate_with := 'none',
                                                        shard_count := shard_count);
        ELSE
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id',
                                                        colocate_with := 'calo_recon.transactions');
        END IF;
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;

    -- one anchor per shard: the first of k1, k2, ... that hashes into it
    INSERT INTO calo_recon.shard_anchors (user_id)
    SELECT DISTINCT ON (s.shardid) 'k' || g.i
    FROM pg_catalog.pg_dist_shard s
    CROSS JOIN pg_catalog.generate_series(1, 100 * (SELECT pg_catalog.count(*)::integer
                                                     FROM pg_catalog.pg_dist_shard x
                                                     WHERE x.logicalrelid = 'calo_recon.shard_anchors'::regclass)) AS g (i)
    WHERE s.logicalrelid = 'calo_recon.shard_anchors'::regclass
      AND pg_catalog.worker_hash('k' || g.i) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer
    ORDER BY s.shardid, g.i;

    -- the roles granted before: their rights on the cluster (grant_role)
    PERFORM calo_recon.reapply_grants();

    RETURN QUERY
    SELECT l.table_name, l.placement,
           (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
            WHERE s.logicalrelid = l.table_name)
    FROM calo_recon.citus_layout() l;
END;
$$;
CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
CREATE OR REPLACE FUNCTION calo_recon.revoke_all(role_name name) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[] := ARRAY[
        format('REVOKE ALL ON ALL TABLES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON ALL ROUTINES IN SCHEMA calo_recon FROM %I', role_name),
        format('REVOKE ALL ON SCHEMA calo_recon FROM %I', role_name)];
BEGIN
    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
END;
$$;
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of citus (issue 13 leftovers)

-- perf (issue 8 benchmark targets, session 5): the alert trigger asks the
-- amount rule only about the new rows above the lowest threshold, and the
-- reconcile queue's trigger hashes its users instead of sorting them.
-- Replaced in place: the triggers on transactions and alert_inbox keep them.
CREATE OR REPLACE FUNCTION calo_recon.alert_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    first_new timestamptz[];
    new_ids text[];
    -- the new rows logged since backfill_before, and the walk's rows before it
    fresh_ids text[];
    -- the new rows the amount rule is asked about: only a row above the
    -- lowest threshold can be above its own (a million-row COPY probed
    -- amount_rule_hits a million times by primary key)
    rule_ids text[];
    lowest_threshold numeric := (SELECT pg_catalog.min(a.threshold) FROM calo_recon.amount_thresholds a);
    stale_ids text[];
    model record;
    model_users text[];
    -- rows logged before it raise no alert (a backfill of history)
    backfill_before timestamptz := pg_catalog.now() - (calo_recon.ops_settings()).alert_backfill_age;
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
    SELECT pg_catalog.array_agg(n.txn_id),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE backfill_before IS NULL OR n.logged_at >= backfill_before),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE (backfill_before IS NULL OR n.logged_at >= backfill_before)
                                                  AND n.amount > lowest_threshold)
    INTO new_ids, fresh_ids, rule_ids FROM new_rows n;
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

    -- the walk's rows logged before backfill_before raise no alert: looked
    -- up by id (not correlated per row: a Citus cluster cannot run that)
    IF backfill_before IS NOT NULL THEN
        SELECT pg_catalog.array_agg(t.txn_id) INTO stale_ids
        FROM calo_recon.transactions t
        WHERE t.txn_id IN (SELECT pg_catalog.unnest(found_txns)) AND t.logged_at < backfill_before;
    END IF;

    -- the new alerts and the amount rule
    WITH found AS (
        SELECT f.txn_id, f.user_id, f.alert_kind, f.detail, f.ord
        FROM unnest(found_txns, found_users, found_kinds, found_details, found_ranks)  -- multi-argument form: unqualified
             AS f(txn_id, user_id, alert_kind, detail, ord)
        UNION ALL
        SELECT h.txn_id, h.user_id, 'amount_rule',
               pg_catalog.jsonb_build_object('amount', h.amount, 'threshold', h.threshold,
                                             'currency', h.currency),
               NULL::integer  -- after the walk's findings
        FROM calo_recon.amount_rule_hits h
        -- the ids, not a join to new_rows: Citus cannot read a transition
        -- table in a query over a distributed table (README "Scaling out
        -- with Citus"); IN (unnest), not = ANY: a hashed semi-join for a
        -- bulk insert's many ids.  The view decides; it is asked only about
        -- rule_ids
        WHERE h.txn_id IN (SELECT pg_catalog.unnest(rule_ids))
    ), stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT found.txn_id, found.user_id, found.alert_kind, found.detail
        FROM found
        WHERE found.txn_id NOT IN (SELECT pg_catalog.unnest(stale_ids))
        ORDER BY found.txn_id, found.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
           raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
    INTO raised_ids, raised_kinds FROM stored;

    -- each active model, through the scoring path of score_transactions()
    -- (calo_recon.model_scores: only the users of the new rows it scores are
    -- read and walked), alerts the new rows that calo_recon.transaction_models
    -- gives it (no model part in partial builds)
    IF pg_catalog.to_regclass('calo_recon.models') IS NOT NULL THEN
        FOR model IN SELECT m.* FROM calo_recon.models m WHERE m.active ORDER BY m.model_id LOOP
            CONTINUE WHEN model.features IS DISTINCT FROM calo_recon.transaction_feature_names();
            SELECT pg_catalog.array_agg(DISTINCT tm.user_id) INTO model_users
            FROM calo_recon.transaction_models tm
            WHERE tm.txn_id IN (SELECT pg_catalog.unnest(new_ids)) AND tm.model_id = model.model_id;
            CONTINUE WHEN model_users IS NULL;
            WITH stored AS (
                INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
                SELECT s.txn_id, s.user_id, 'model',
                       pg_catalog.jsonb_build_object('score', s.score, 'threshold', model.threshold,
                                                     'model_id', model.model_id, 'model_name', model.model_name)
                FROM calo_recon.model_scores(model.model_id, model_users) s
                JOIN calo_recon.transaction_models tm ON tm.txn_id = s.txn_id AND tm.model_id = model.model_id
                WHERE s.flagged AND s.txn_id IN (SELECT pg_catalog.unnest(fresh_ids))
                ORDER BY s.txn_id
                ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
                RETURNING alert_id, alert_kind
            )
            SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
                   raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
            INTO raised_ids, raised_kinds FROM stored;
        END LOOP;
    END IF;

    -- one notification for the statement, with the count (the alert ids
    -- keep NOTIFY from folding two statements' equal payloads)
    IF pg_catalog.cardinality(raised_ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(raised_ids, raised_kinds));
    END IF;
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION calo_recon.track_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
BEGIN
    -- DISTINCT in a subquery is hashed; array_agg(DISTINCT) sorted a
    -- million-row COPY's user ids in the database collation
    SELECT pg_catalog.array_agg(d.user_id) INTO users
    FROM (SELECT DISTINCT n.user_id FROM new_rows n) d;
    INSERT INTO calo_recon.pending_reconcile (user_id)
    SELECT u.user_id FROM pg_catalog.unnest(users) AS u (user_id);
    RETURN NULL;
END;
$$;
-- end of perf (issue 8 benchmark targets, session 5)

-- Workbook read-through (issue 10 item 4): the sheets print readably, json left to the CSV
COMMENT ON FUNCTION calo_recon.export_workbook(text, timestamptz, timestamptz) IS
  'Writes the Excel workbook of the period [period_from, period_to) under calo_recon.export_directory: a Summary sheet first (period, as-of time, figures per currency, breaks by kind, charts of the wallet liability, the breaks per day and the anomaly scores, the list of sheets), one sheet per report of export_reports (a report longer than calo_recon.workbook_sheet_rows continues on "<sheet> (2)", ...) and the Chart Data; headings in words, money in its currency''s format, UTC dates, TRUE/FALSE, long text wrapped, json columns (an anomaly''s attribution, a transaction''s metadata) left to the CSV, frozen header row, autofilter; printed landscape one page wide, or when wider at 70 % on pages across with the first column repeated, the header row repeated. Returns the data rows of the report sheets. Same path and permission rules as export_reports.';

-- citus2 (issue 13 item 3): scoring per shard group on the workers
CREATE FUNCTION calo_recon.score_placement(anchor_shard oid, user_ids text[], currencies text[],
                                           currency_models bigint[], model_ids bigint[],
                                           scalers calo_recon.scaler[], forests calo_recon.iforest[],
                                           thresholds float8[])
RETURNS TABLE (txn_id text, model_id bigint, score float8, flagged boolean, explanation text,
               attribution jsonb)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'calo_recon_score_placement';
COMMENT ON FUNCTION calo_recon.score_placement(oid, text[], text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]) IS
  'Internal to score_transactions() on a Citus cluster: the scores of the given users'' transactions (all when NULL) over the shard of transactions in the shard group of anchor_shard (a shard of shard_anchors on this node), each row scored by the model (model_ids, scalers, forests, thresholds) that currency_models gives its currency (as calo_recon.transaction_models chose on the coordinator; a currency not in currencies is not scored), with the explanation and attribution of flagged rows';
REVOKE ALL ON FUNCTION calo_recon.score_placement(oid, text[], text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]) FROM PUBLIC;
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of citus2

-- is_break (one home of the break kinds): balance_breaks, the insert-time
-- alerts and reconcile()'s resolution of unsupported alerts ask the core
-- which findings are breaks instead of each spelling the list.  OR REPLACE
-- keeps the grants and comments of the view and the trigger function.
-- model_scores(txn_ids): the model alerts score the new rows only.
CREATE FUNCTION calo_recon.is_break(finding text)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_is_break';
COMMENT ON FUNCTION calo_recon.is_break(text) IS
  'Whether a finding of reconcile() is a break (chain, arithmetic, out_of_range) rather than precision drift or an overdraft: the one list balance_breaks, the insert-time alerts and the resolution of unsupported alerts use; false for any other text';
CREATE OR REPLACE VIEW calo_recon.balance_breaks AS
WITH breaks AS (
    SELECT f.txn_id, f.user_id, f.finding AS break_kind, f.currency,
           f.expected, f.actual, f.difference, f.tolerance, f.logged_at,
           calo_recon.finding_rank(f.finding) AS kind_order
    FROM calo_recon.reconciliation_findings f
    WHERE calo_recon.is_break(f.finding)
    UNION ALL
    SELECT DISTINCT ON (q.txn_id)
           q.txn_id, t.user_id, 'conflict', t.currency,
           NULL::numeric, NULL::numeric, NULL::numeric, NULL::numeric,
           coalesce(t.logged_at, q.logged_at), NULL::integer  -- after the walk's findings
    FROM calo_recon.quarantine q
    JOIN calo_recon.transactions t ON t.txn_id = q.txn_id
    WHERE q.reason = 'conflict'
)
SELECT b.txn_id, b.user_id, b.break_kind, b.currency,
       calo_recon.round_money(b.expected, cu.minor_unit) AS expected,
       calo_recon.round_money(b.actual, cu.minor_unit) AS actual,
       calo_recon.round_money(b.difference, cu.minor_unit) AS difference, b.tolerance,
       pg_catalog.row_number() OVER (PARTITION BY b.user_id
           ORDER BY calo_recon.chain_key(b.logged_at, b.txn_id), b.kind_order NULLS LAST) = 1 AS first_break,
       b.logged_at, t.source_file
FROM breaks b
-- by user_id too (the same row: a break is of its transaction's user), so
-- that a Citus cluster joins the colocated shards (README "Scaling out with Citus")
LEFT JOIN calo_recon.transactions t ON t.txn_id = b.txn_id AND t.user_id = b.user_id
LEFT JOIN calo_recon.currencies cu ON cu.code = b.currency;
-- The scores of some users' rows under a model, computed as
-- score_transactions() computes them but not stored: the model alerts of the
-- transactions an INSERT adds (72_alerts.sql), which ask for the new rows
-- only (txn_ids), so that a user's history is walked for the features but
-- not scored nor explained again at every insert.  Not STRICT for txn_ids'
-- sake: a NULL model or user list gives no rows, as STRICT did.
DROP FUNCTION calo_recon.model_scores(bigint, text[]);
CREATE FUNCTION calo_recon.model_scores(model_id bigint, user_ids text[], txn_ids text[] DEFAULT NULL)
RETURNS TABLE (txn_id text, user_id text, score float8, flagged boolean, explanation text)
    AS 'MODULE_PATHNAME', 'calo_recon_model_scores'
    LANGUAGE C STABLE ROWS 100;
COMMENT ON FUNCTION calo_recon.model_scores(bigint, text[], text[]) IS
  'Scores of the given users'' transactions under a model (score, flagged as score > its threshold, explanation of flagged rows), computed by the scoring path of score_transactions() and not stored; with txn_ids, only those of their transactions (the others still make the features). No rows for a NULL model_id or user_ids';
REVOKE ALL ON FUNCTION calo_recon.model_scores(bigint, text[], text[]) FROM PUBLIC;
CREATE OR REPLACE FUNCTION calo_recon.alert_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    first_new timestamptz[];
    new_ids text[];
    -- the new rows logged since backfill_before, and the walk's rows before it
    fresh_ids text[];
    -- the new rows the amount rule is asked about: only a row above the
    -- lowest threshold can be above its own (a million-row COPY probed
    -- amount_rule_hits a million times by primary key)
    rule_ids text[];
    lowest_threshold numeric := (SELECT pg_catalog.min(a.threshold) FROM calo_recon.amount_thresholds a);
    stale_ids text[];
    model record;
    model_users text[];
    -- rows logged before it raise no alert (a backfill of history)
    backfill_before timestamptz := pg_catalog.now() - (calo_recon.ops_settings()).alert_backfill_age;
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
    SELECT pg_catalog.array_agg(n.txn_id),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE backfill_before IS NULL OR n.logged_at >= backfill_before),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE (backfill_before IS NULL OR n.logged_at >= backfill_before)
                                                  AND n.amount > lowest_threshold)
    INTO new_ids, fresh_ids, rule_ids FROM new_rows n;
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
        WHERE (w.is_new AND (calo_recon.is_break(w.finding) OR w.finding = 'overdraft'))
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

    -- the walk's rows logged before backfill_before raise no alert: looked
    -- up by id (not correlated per row: a Citus cluster cannot run that)
    IF backfill_before IS NOT NULL THEN
        SELECT pg_catalog.array_agg(t.txn_id) INTO stale_ids
        FROM calo_recon.transactions t
        WHERE t.txn_id IN (SELECT pg_catalog.unnest(found_txns)) AND t.logged_at < backfill_before;
    END IF;

    -- the new alerts and the amount rule
    WITH found AS (
        SELECT f.txn_id, f.user_id, f.alert_kind, f.detail, f.ord
        FROM unnest(found_txns, found_users, found_kinds, found_details, found_ranks)  -- multi-argument form: unqualified
             AS f(txn_id, user_id, alert_kind, detail, ord)
        UNION ALL
        SELECT h.txn_id, h.user_id, 'amount_rule',
               pg_catalog.jsonb_build_object('amount', h.amount, 'threshold', h.threshold,
                                             'currency', h.currency),
               NULL::integer  -- after the walk's findings
        FROM calo_recon.amount_rule_hits h
        -- the ids, not a join to new_rows: Citus cannot read a transition
        -- table in a query over a distributed table (README "Scaling out
        -- with Citus"); IN (unnest), not = ANY: a hashed semi-join for a
        -- bulk insert's many ids.  The view decides; it is asked only about
        -- rule_ids
        WHERE h.txn_id IN (SELECT pg_catalog.unnest(rule_ids))
    ), stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT found.txn_id, found.user_id, found.alert_kind, found.detail
        FROM found
        WHERE found.txn_id NOT IN (SELECT pg_catalog.unnest(stale_ids))
        ORDER BY found.txn_id, found.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
           raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
    INTO raised_ids, raised_kinds FROM stored;

    -- each active model, through the scoring path of score_transactions()
    -- (calo_recon.model_scores: only the users of the new rows are read and
    -- walked, and only the new rows scored), alerts the new rows that
    -- calo_recon.transaction_models gives it (no model part in partial builds)
    IF pg_catalog.to_regclass('calo_recon.models') IS NOT NULL THEN
        FOR model IN SELECT m.* FROM calo_recon.models m WHERE m.active ORDER BY m.model_id LOOP
            CONTINUE WHEN model.features IS DISTINCT FROM calo_recon.transaction_feature_names();
            SELECT pg_catalog.array_agg(DISTINCT tm.user_id) INTO model_users
            FROM calo_recon.transaction_models tm
            WHERE tm.txn_id IN (SELECT pg_catalog.unnest(new_ids)) AND tm.model_id = model.model_id;
            CONTINUE WHEN model_users IS NULL;
            WITH stored AS (
                INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
                SELECT s.txn_id, s.user_id, 'model',
                       pg_catalog.jsonb_build_object('score', s.score, 'threshold', model.threshold,
                                                     'model_id', model.model_id, 'model_name', model.model_name)
                FROM calo_recon.model_scores(model.model_id, model_users, coalesce(fresh_ids, '{}')) s
                JOIN calo_recon.transaction_models tm ON tm.txn_id = s.txn_id AND tm.model_id = model.model_id
                WHERE s.flagged AND s.txn_id IN (SELECT pg_catalog.unnest(fresh_ids))
                ORDER BY s.txn_id
                ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
                RETURNING alert_id, alert_kind
            )
            SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
                   raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
            INTO raised_ids, raised_kinds FROM stored;
        END LOOP;
    END IF;

    -- one notification for the statement, with the count (the alert ids
    -- keep NOTIFY from folding two statements' equal payloads)
    IF pg_catalog.cardinality(raised_ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(raised_ids, raised_kinds));
    END IF;
    RETURN NULL;
END;
$$;
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of is_break

-- ---------------------------------------------------------------------------
-- scores (issue 10 item 7): the anomalies view fast on 1M transactions. One
-- read of the transactions through transaction_rules (new: the model that
-- scores each row and the amount rule, the rule's one home, which
-- amount_rule_hits now selects from), the flagged scores hash-joined, the
-- score, explanation and attribution joined by primary key. Same columns,
-- rows and comments; OR REPLACE keeps the views' grants and dependants.
-- ---------------------------------------------------------------------------
-- Which active model scores each transaction (unchanged rule): the
-- currencies' own models as a DISTINCT ON subquery, so that the join is
-- dropped for readers that do not read model_id.
CREATE OR REPLACE VIEW calo_recon.transaction_models AS
SELECT t.txn_id, t.user_id, t.currency,
       coalesce(own.model_id, (SELECT fallback.model_id FROM calo_recon.models fallback
                               WHERE fallback.active AND fallback.currency IS NULL)) AS model_id,
       t.amount, t.logged_at
FROM calo_recon.transactions t
LEFT JOIN (SELECT DISTINCT ON (active_model.currency) active_model.currency, active_model.model_id
           FROM calo_recon.models active_model
           WHERE active_model.active
           ORDER BY active_model.currency) own ON own.currency = t.currency;

-- The flagged scores with their transaction, for the anomalies view's hash
-- of them (an index-only scan once vacuum has marked the pages visible).
DROP INDEX calo_recon.transaction_scores_flagged_idx;
CREATE INDEX transaction_scores_flagged_idx
    ON calo_recon.transaction_scores (model_id, txn_id) WHERE flagged;

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

CREATE OR REPLACE VIEW calo_recon.amount_rule_hits AS
SELECT r.txn_id, r.user_id, r.currency, r.amount, r.amount_threshold AS threshold, r.threshold_row
FROM calo_recon.transaction_rules r
WHERE r.amount_rule_hit;
-- One read of the transactions (calo_recon.transaction_rules: each row with
-- the model that scores it and the amount rule), hash-joined once to what
-- marks a few thousand of them: the models each is flagged under (the
-- flagged scores, through their partial index) and the verdict in force.  A
-- model's flag counts only under the model that scores the row.  The score,
-- explanation and attribution come from a join by primary key that nothing
-- filters on, so count(*) never reads them and LIMIT reads only its rows.
-- (Before: candidates from the three sources, grouped by txn_id and looked
-- up one by one: 2.3 s for LIMIT 100 on 1M transactions.)
CREATE OR REPLACE VIEW calo_recon.anomalies AS
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
LEFT JOIN calo_recon.transaction_scores s ON s.model_id = t.model_id AND s.txn_id = t.txn_id
LEFT JOIN calo_recon.models m ON m.model_id = t.model_id
WHERE k.verdict IS DISTINCT FROM 'dismissed'
  AND (f.model_flag OR t.amount_rule_hit OR k.verdict = 'confirmed');
-- the roles granted before see the new view as a fresh install's do
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of scores (issue 10 item 7)

-- ---------------------------------------------------------------------------
-- scores (issue 13, first step): transaction_scores carries the user_id of
-- the scored transaction, so that the scores can be distributed by user
-- beside the transactions on a Citus cluster. Backfilled from transactions;
-- scores of transactions no longer stored (no view showed them: every
-- reader joins through transactions) are deleted. score_placement() returns
-- the row's user.
-- ---------------------------------------------------------------------------
ALTER TABLE calo_recon.transaction_scores ADD COLUMN user_id text;
UPDATE calo_recon.transaction_scores s SET user_id = t.user_id
FROM calo_recon.transactions t WHERE t.txn_id = s.txn_id;
DELETE FROM calo_recon.transaction_scores s WHERE s.user_id IS NULL;
ALTER TABLE calo_recon.transaction_scores ALTER COLUMN user_id SET NOT NULL;
COMMENT ON COLUMN calo_recon.transaction_scores.user_id IS 'Wallet owner of the scored transaction (its user_id in calo_recon.transactions)';
DROP FUNCTION calo_recon.score_placement(oid, text[], text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]);
CREATE FUNCTION calo_recon.score_placement(anchor_shard oid, user_ids text[], currencies text[],
                                           currency_models bigint[], model_ids bigint[],
                                           scalers calo_recon.scaler[], forests calo_recon.iforest[],
                                           thresholds float8[])
RETURNS TABLE (txn_id text, model_id bigint, score float8, flagged boolean, explanation text,
               attribution jsonb, user_id text)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'calo_recon_score_placement';
COMMENT ON FUNCTION calo_recon.score_placement(oid, text[], text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]) IS
  'Internal to score_transactions() on a Citus cluster: the scores of the given users'' transactions (all when NULL) over the shard of transactions in the shard group of anchor_shard (a shard of shard_anchors on this node), each row scored by the model (model_ids, scalers, forests, thresholds) that currency_models gives its currency (as calo_recon.transaction_models chose on the coordinator; a currency not in currencies is not scored), with the explanation and attribution of flagged rows and the row''s user';
REVOKE ALL ON FUNCTION calo_recon.score_placement(oid, text[], text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]) FROM PUBLIC;
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of scores (issue 13, first step)

-- ---------------------------------------------------------------------
-- views (issue 10 item 7): the report totals.  reconcile() stores per user
-- what user_summary, overdraft_episodes and daily_summary need, from its
-- walk (src/core/report_totals.c); the views read those rows, and the users
-- still queued live (the same C code).  Updates and deletes of transactions queue their users too.
-- The three views are dropped and created again (same columns, comments and
-- rows); user_summary_in() gives user_summary over an export's period.
-- reapply_grants() below gives back the rights grant_role() gave.
-- ---------------------------------------------------------------------
-- An update or a delete changes the chain of the users of its old rows (and
-- of its new ones): they are queued too, so that neither the findings nor
-- the report totals that reconcile() stores stay stale (README "Reports").
-- One trigger per event: a trigger with transition tables has one event.
CREATE FUNCTION calo_recon.track_changed_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT pg_catalog.array_agg(DISTINCT c.user_id) INTO users
        FROM (SELECT o.user_id FROM old_rows o UNION ALL SELECT n.user_id FROM new_rows n) c;
    ELSE
        SELECT pg_catalog.array_agg(DISTINCT o.user_id) INTO users FROM old_rows o;
    END IF;
    INSERT INTO calo_recon.pending_reconcile (user_id)
    SELECT u.user_id FROM pg_catalog.unnest(users) AS u (user_id);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_changed_transactions() IS
  'Trigger: queues the users of updated or deleted transactions in pending_reconcile for the next reconciliation';
CREATE TRIGGER transactions_track_updated
    AFTER UPDATE ON calo_recon.transactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_changed_transactions();
CREATE TRIGGER transactions_track_deleted
    AFTER DELETE ON calo_recon.transactions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_changed_transactions();

-- ---------------------------------------------------------------------
-- Report totals (issue 10 item 7): what user_summary, overdraft_episodes
-- and daily_summary need of each user's chain, stored by reconcile() for the
-- users it reconciles, so that the views read a few rows per user, or per
-- currency and day, instead of every transaction.  The figures are computed
-- once, in C (src/core/report_totals.c), from the rows reconcile()'s walk
-- puts in chain order; reconcile() stores them, and the three functions
-- below give the same figures live for the users still queued in
-- pending_reconcile, whose stored rows may be stale (they run the same scan
-- and walk for those users).  A view is therefore exact at every moment,
-- not only after a refresh.  Money is exact (not rounded); a figure the
-- exact math cannot hold (a value outside its range, see out_of_range in
-- balance_breaks) is NULL.
-- ---------------------------------------------------------------------

CREATE FUNCTION calo_recon.user_figures(user_ids text[], period_from timestamptz, period_to timestamptz)
RETURNS TABLE (user_id text, transactions bigint, first_logged_at timestamptz,
               last_logged_at timestamptz, currency text, opening_balance numeric,
               closing_balance numeric, overdrafts bigint, credits_total numeric,
               debits_total numeric, credits_net numeric, debits_net numeric, vat_total numeric)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'calo_recon_user_figures';
COMMENT ON FUNCTION calo_recon.user_figures(text[], timestamptz, timestamptz) IS
  'Internal to user_summary and user_summary_in: per user of user_ids (all when NULL), the figures of their transactions logged in [period_from, period_to) (NULL: open) in chain order, as reconcile() stores them in user_totals: count, first and last time, currency of the last, opening (old_balance of the first) and closing (new_balance of the last) balance, overdrafts, credits and debits gross and net, VAT; exact, not rounded';
REVOKE ALL ON FUNCTION calo_recon.user_figures(text[], timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION calo_recon.user_day_figures(user_ids text[])
RETURNS TABLE (user_id text, currency text, day date, transactions bigint, credits numeric,
               debits numeric, vat numeric, overdrafts bigint, liability_change numeric)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'calo_recon_user_day_figures';
COMMENT ON FUNCTION calo_recon.user_day_figures(text[]) IS
  'Internal to daily_summary: per user of user_ids (all when NULL), currency and UTC day, the figures of their transactions, as reconcile() stores them in user_day_totals: count, credits and debits (gross), VAT, overdrafts, and the change of the wallet''s last balance of the day (chain order) from its previous day in that currency; exact, not rounded';
REVOKE ALL ON FUNCTION calo_recon.user_day_figures(text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.user_overdraft_episodes(user_ids text[])
RETURNS TABLE (user_id text, currency text, started_at timestamptz, ended_at timestamptz,
               transactions bigint, first_txn_id text, last_txn_id text,
               low_currency text, low_balance numeric, run_currencies integer)
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'calo_recon_user_overdraft_episodes';
COMMENT ON FUNCTION calo_recon.user_overdraft_episodes(text[]) IS
  'Internal to overdraft_episodes: the runs of consecutive negative balances (is_overdraft) of the users of user_ids (all when NULL) in chain order, as reconcile() stores them in overdraft_episode_totals: one row per run and currency of its rows, with the lowest new_balance of the run''s rows in that currency (exact) and the number of those currencies';
REVOKE ALL ON FUNCTION calo_recon.user_overdraft_episodes(text[]) FROM PUBLIC;

CREATE TABLE calo_recon.user_totals (
    user_id          text        NOT NULL,
    transactions     bigint      NOT NULL,
    first_logged_at  timestamptz NOT NULL,
    last_logged_at   timestamptz NOT NULL,
    currency         text        NOT NULL,
    opening_balance  numeric,
    closing_balance  numeric,
    overdrafts       bigint      NOT NULL,
    credits_total    numeric,
    debits_total     numeric,
    credits_net      numeric,
    debits_net       numeric,
    vat_total        numeric
);
-- The report totals tables have no unique key: reconcile() deletes a
-- user's rows and writes them again (src/glue/recon_glue.c), and a unique
-- check would visit every deleted row of the same key; one user's row is
-- found through this index, the other tables are read whole or per queued
-- user (a few thousand rows per 100,000 transactions).
CREATE INDEX user_totals_user_idx ON calo_recon.user_totals (user_id);
COMMENT ON TABLE calo_recon.user_totals IS
  'Internal to user_summary: user_figures() of each user as of their last reconcile(); user_summary reads the queued users live instead. Money NULL where the exact math cannot hold it. Not dumped: a restore queues every user again';
COMMENT ON COLUMN calo_recon.user_totals.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.user_totals.transactions IS 'Number of transactions';
COMMENT ON COLUMN calo_recon.user_totals.first_logged_at IS 'First transaction time';
COMMENT ON COLUMN calo_recon.user_totals.last_logged_at IS 'Last transaction time';
COMMENT ON COLUMN calo_recon.user_totals.currency IS 'Currency of the last transaction in chain order';
COMMENT ON COLUMN calo_recon.user_totals.opening_balance IS 'old_balance of the first transaction in chain order, exact';
COMMENT ON COLUMN calo_recon.user_totals.closing_balance IS 'new_balance of the last transaction in chain order, exact';
COMMENT ON COLUMN calo_recon.user_totals.overdrafts IS 'Transactions with a negative new_balance';
COMMENT ON COLUMN calo_recon.user_totals.credits_total IS 'Sum of amount over credits, exact';
COMMENT ON COLUMN calo_recon.user_totals.debits_total IS 'Sum of amount over debits, exact';
COMMENT ON COLUMN calo_recon.user_totals.credits_net IS 'Sum of amount - vat over credits, exact';
COMMENT ON COLUMN calo_recon.user_totals.debits_net IS 'Sum of amount - vat over debits, exact';
COMMENT ON COLUMN calo_recon.user_totals.vat_total IS 'Sum of vat, exact';

CREATE TABLE calo_recon.user_day_totals (
    user_id           text    NOT NULL,
    currency          text    NOT NULL,
    day               date    NOT NULL,
    transactions      bigint  NOT NULL,
    credits           numeric,
    debits            numeric,
    vat               numeric,
    overdrafts        bigint  NOT NULL,
    liability_change  numeric
);
COMMENT ON TABLE calo_recon.user_day_totals IS
  'Internal to daily_summary: user_day_figures() of each user as of their last reconcile(); day_totals is their sum. Money NULL where the exact math cannot hold it. Not dumped: a restore queues every user again';
COMMENT ON COLUMN calo_recon.user_day_totals.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.user_day_totals.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.user_day_totals.day IS 'UTC day';
COMMENT ON COLUMN calo_recon.user_day_totals.transactions IS 'Transactions logged that day';
COMMENT ON COLUMN calo_recon.user_day_totals.credits IS 'Sum of amount over credits, exact';
COMMENT ON COLUMN calo_recon.user_day_totals.debits IS 'Sum of amount over debits, exact';
COMMENT ON COLUMN calo_recon.user_day_totals.vat IS 'Sum of vat, exact';
COMMENT ON COLUMN calo_recon.user_day_totals.overdrafts IS 'Transactions with a negative new_balance';
COMMENT ON COLUMN calo_recon.user_day_totals.liability_change IS 'The wallet''s last balance of the day minus that of its previous day in the currency (0 before), exact';

CREATE TABLE calo_recon.day_totals (
    currency          text    NOT NULL,
    day               date    NOT NULL,
    transactions      bigint  NOT NULL,
    credits           numeric,
    debits            numeric,
    vat               numeric,
    overdrafts        bigint  NOT NULL,
    liability_change  numeric,
    PRIMARY KEY (currency, day)
);
COMMENT ON TABLE calo_recon.day_totals IS
  'Internal to daily_summary: the sum of user_day_totals per currency and day (NULL where one of them is), made again by reconcile() for the days of the users it reconciles; on a Citus cluster it stays on the coordinator. Not dumped';
COMMENT ON COLUMN calo_recon.day_totals.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.day_totals.day IS 'UTC day';
COMMENT ON COLUMN calo_recon.day_totals.transactions IS 'Sum of user_day_totals.transactions';
COMMENT ON COLUMN calo_recon.day_totals.credits IS 'Sum of user_day_totals.credits';
COMMENT ON COLUMN calo_recon.day_totals.debits IS 'Sum of user_day_totals.debits';
COMMENT ON COLUMN calo_recon.day_totals.vat IS 'Sum of user_day_totals.vat';
COMMENT ON COLUMN calo_recon.day_totals.overdrafts IS 'Sum of user_day_totals.overdrafts';
COMMENT ON COLUMN calo_recon.day_totals.liability_change IS 'Sum of user_day_totals.liability_change';

CREATE TABLE calo_recon.overdraft_episode_totals (
    user_id         text        NOT NULL,
    currency        text        NOT NULL,
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    transactions    bigint      NOT NULL,
    first_txn_id    text        NOT NULL,
    last_txn_id     text        NOT NULL,
    low_currency    text        NOT NULL,
    low_balance     numeric,
    run_currencies  integer     NOT NULL
);
COMMENT ON TABLE calo_recon.overdraft_episode_totals IS
  'Internal to overdraft_episodes: user_overdraft_episodes() of each user as of their last reconcile(). Not dumped: a restore queues every user again';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.currency IS 'Currency of the first negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.started_at IS 'logged_at of the first negative transaction';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.ended_at IS 'logged_at of the transaction after the run; NULL while still negative';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.transactions IS 'Negative transactions of the run';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.first_txn_id IS 'First negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.last_txn_id IS 'Last negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.low_currency IS 'A currency of the run''s rows (one row per run and currency)';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.low_balance IS 'The lowest new_balance of the run''s rows in low_currency, exact; NULL when the exact math cannot hold it';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.run_currencies IS 'The number of currencies among the run''s rows: the rows this run has here';

DROP VIEW calo_recon.daily_summary;
DROP VIEW calo_recon.user_summary;
DROP VIEW calo_recon.overdraft_episodes;

CREATE VIEW calo_recon.daily_summary AS
WITH activity AS (
    -- day_totals, with the stored rows of the queued users replaced by
    -- their live ones
    SELECT a.day, a.currency,
           pg_catalog.sum(a.transactions) AS transactions, pg_catalog.sum(a.credits) AS credits,
           pg_catalog.sum(a.debits) AS debits, pg_catalog.sum(a.vat) AS vat,
           pg_catalog.sum(a.overdrafts) AS overdrafts, pg_catalog.sum(a.liability_change) AS change
    FROM (SELECT d.day, d.currency, d.transactions, d.credits, d.debits, d.vat, d.overdrafts,
                 d.liability_change
          FROM calo_recon.day_totals d
          UNION ALL
          SELECT u.day, u.currency, -u.transactions, -u.credits, -u.debits, -u.vat, -u.overdrafts,
                 -u.liability_change
          FROM calo_recon.user_day_totals u
          WHERE u.user_id IN (SELECT p.user_id FROM calo_recon.pending_reconcile p)
          UNION ALL
          SELECT l.day, l.currency, l.transactions, l.credits, l.debits, l.vat, l.overdrafts,
                 l.liability_change
          FROM calo_recon.user_day_figures(coalesce((SELECT pg_catalog.array_agg(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p), '{}')) l) a
    GROUP BY a.day, a.currency
    HAVING pg_catalog.sum(a.transactions) > 0
),
breaks AS (
    SELECT pg_catalog.timezone('UTC', b.logged_at)::pg_catalog.date AS day, b.currency,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'conflict') AS conflicts,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'out_of_range') AS out_of_range
    FROM calo_recon.balance_breaks b
    GROUP BY 1, 2
),
disc AS (
    SELECT pg_catalog.timezone('UTC', d.logged_at)::pg_catalog.date AS day, d.currency,
           pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d
    WHERE d.currency IS NOT NULL
    GROUP BY 1, 2
),
anom AS (
    SELECT pg_catalog.timezone('UTC', a.logged_at)::pg_catalog.date AS day, a.currency,
           pg_catalog.count(*) AS anomalies
    FROM calo_recon.anomalies a
    GROUP BY 1, 2
),
days AS (
    SELECT a.day, a.currency FROM activity a
    UNION SELECT d.day, d.currency FROM disc d
)
SELECT k.day, k.currency,
       coalesce(a.transactions, 0)::bigint AS transactions,
       calo_recon.round_money(coalesce(a.credits, 0), cu.minor_unit) AS credits,
       calo_recon.round_money(coalesce(a.debits, 0), cu.minor_unit) AS debits,
       calo_recon.round_money(coalesce(a.vat, 0), cu.minor_unit) AS vat,
       calo_recon.round_money(pg_catalog.sum(coalesce(a.change, 0)) OVER (
           PARTITION BY k.currency ORDER BY k.day), cu.minor_unit) AS wallet_liability,
       coalesce(b.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(b.chain_breaks, 0) AS chain_breaks,
       coalesce(b.conflicts, 0) AS conflicts,
       coalesce(b.out_of_range, 0) AS out_of_range,
       coalesce(a.overdrafts, 0)::bigint AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(n.anomalies, 0) AS anomalies
FROM days k
LEFT JOIN activity a ON a.day = k.day AND a.currency = k.currency
LEFT JOIN breaks b ON b.day = k.day AND b.currency = k.currency
LEFT JOIN disc d ON d.day = k.day AND d.currency = k.currency
LEFT JOIN anom n ON n.day = k.day AND n.currency = k.currency
LEFT JOIN calo_recon.currencies cu ON cu.code = k.currency;
COMMENT ON VIEW calo_recon.daily_summary IS
  'The figures per currency and UTC day (days with transactions or discrepancies): activity, the wallet liability at the end of the day, breaks by kind, overdrafts, discrepancies and anomalies. Money rounded to the currency''s minor unit (round_money); NULL where a value is outside the exact range of the reconciliation (out_of_range). Breaks are as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.daily_summary.day IS 'Day (UTC) the rows were logged';
COMMENT ON COLUMN calo_recon.daily_summary.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.daily_summary.transactions IS 'Transactions logged that day';
COMMENT ON COLUMN calo_recon.daily_summary.credits IS 'Sum of amount (gross) over credits (is_credit)';
COMMENT ON COLUMN calo_recon.daily_summary.debits IS 'Sum of amount (gross) over debits';
COMMENT ON COLUMN calo_recon.daily_summary.vat IS 'Sum of vat';
COMMENT ON COLUMN calo_recon.daily_summary.wallet_liability IS 'Closing wallet liability: the sum over wallets of their last new_balance (chain order) logged in that currency up to the end of the day';
COMMENT ON COLUMN calo_recon.daily_summary.arithmetic_breaks IS 'Arithmetic breaks of that day''s transactions (balance_breaks)';
COMMENT ON COLUMN calo_recon.daily_summary.chain_breaks IS 'Chain breaks of that day''s transactions';
COMMENT ON COLUMN calo_recon.daily_summary.conflicts IS 'Conflicting deliveries of that day''s transactions';
COMMENT ON COLUMN calo_recon.daily_summary.out_of_range IS 'Values too large or too precise to check exactly';
COMMENT ON COLUMN calo_recon.daily_summary.overdrafts IS 'Transactions that left a wallet below zero';
COMMENT ON COLUMN calo_recon.daily_summary.discrepancies IS 'Balance errors logged that day at or above the tolerance (discrepancies; those of users without a transaction have no currency and are not counted here)';
COMMENT ON COLUMN calo_recon.daily_summary.anomalies IS 'Rows of the anomalies view logged that day';

-- The users whose stored totals may be stale: queued in pending_reconcile.
-- Each view reads the stored rows of the other users and computes these
-- live, all in one call (the queue is drained by every refresh).  The call
-- takes its users from an uncorrelated subquery and the views join only on
-- user_id, so that a Citus cluster plans them: the stored rows and the
-- counts in the shards, the queued users' figures on the coordinator.

CREATE VIEW calo_recon.user_summary AS
-- Every part is keyed by user_id and referenced once, so a filter on
-- user_id reaches the stored row and the user's counts only.
WITH txn AS (
    SELECT s.user_id, s.transactions, s.first_logged_at, s.last_logged_at, s.currency,
           s.opening_balance, s.closing_balance, s.overdrafts, s.credits_total, s.debits_total,
           s.credits_net, s.debits_net, s.vat_total
    FROM calo_recon.user_totals s
    WHERE NOT EXISTS (SELECT FROM calo_recon.pending_reconcile p WHERE p.user_id = s.user_id)
    UNION ALL
    SELECT l.user_id, l.transactions, l.first_logged_at, l.last_logged_at, l.currency,
           l.opening_balance, l.closing_balance, l.overdrafts, l.credits_total, l.debits_total,
           l.credits_net, l.debits_net, l.vat_total
    FROM calo_recon.user_figures(coalesce((SELECT pg_catalog.array_agg(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p), '{}'), NULL, NULL) l
    UNION ALL
    -- users seen only in balance errors or rejections
    SELECT o.user_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM (SELECT e.user_id FROM calo_recon.balance_errors e
          UNION SELECT n.user_id FROM calo_recon.negative_balance_rejections n) o
    WHERE NOT EXISTS (SELECT FROM calo_recon.transactions t WHERE t.user_id = o.user_id)
),
findings AS (
    SELECT f.user_id,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
    FROM calo_recon.reconciliation_findings f
    GROUP BY f.user_id
),
disc AS (
    SELECT d.user_id, pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d GROUP BY d.user_id
),
rej AS (
    SELECT r.user_id, pg_catalog.count(*) AS rejections
    FROM calo_recon.negative_balance_rejections r GROUP BY r.user_id
)
SELECT x.user_id,
       coalesce(x.transactions, 0) AS transactions,
       x.first_logged_at, x.last_logged_at, x.currency,
       calo_recon.round_money(x.closing_balance, cu.minor_unit) AS current_balance,
       coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(f.chain_breaks, 0) AS chain_breaks,
       coalesce(f.drift, 0) AS drift,
       coalesce(x.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(r.rejections, 0) AS rejections,
       calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.credits_total END, cu.minor_unit) AS credits_total,
       calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.debits_total END, cu.minor_unit) AS debits_total,
       calo_recon.round_money(x.opening_balance, cu.minor_unit) AS opening_balance,
       calo_recon.round_money(x.credits_net, cu.minor_unit) AS credits_net,
       calo_recon.round_money(x.debits_net, cu.minor_unit) AS debits_net,
       calo_recon.round_money(x.vat_total, cu.minor_unit) AS vat_total,
       pg_catalog.abs(x.closing_balance - (x.opening_balance + x.credits_net - x.debits_net))
           < calo_recon.tolerance(cu.minor_unit) AS reconciles,
       calo_recon.round_money(x.closing_balance - (x.opening_balance + x.credits_net - x.debits_net),
                              cu.minor_unit) AS reconcile_difference
FROM txn x
LEFT JOIN calo_recon.currencies cu ON cu.code = x.currency
LEFT JOIN findings f ON f.user_id = x.user_id
LEFT JOIN disc d ON d.user_id = x.user_id
LEFT JOIN rej r ON r.user_id = x.user_id;
COMMENT ON VIEW calo_recon.user_summary IS
  'One row per user seen in transactions, balance errors or rejections: activity, opening and closing balance, credits, debits and VAT, whether they add up (opening_balance + credits_net - debits_net = current_balance), and counts of breaks, drift, overdrafts, discrepancies and refused debits. Money rounded to the currency''s minor unit (round_money). Break and drift counts are as of the last calo_recon.reconcile(). A money figure one of whose values is outside the exact range of the reconciliation (out_of_range in balance_breaks) is NULL. WHERE user_id = ... reads only that user''s rows';
COMMENT ON COLUMN calo_recon.user_summary.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.user_summary.transactions IS 'Number of transactions';
COMMENT ON COLUMN calo_recon.user_summary.first_logged_at IS 'First transaction time';
COMMENT ON COLUMN calo_recon.user_summary.last_logged_at IS 'Last transaction time';
COMMENT ON COLUMN calo_recon.user_summary.currency IS 'Currency of the last transaction';
COMMENT ON COLUMN calo_recon.user_summary.current_balance IS 'Closing balance: new_balance of the last transaction in chain order (logged_at, txn_id)';
COMMENT ON COLUMN calo_recon.user_summary.arithmetic_breaks IS 'Arithmetic breaks (see balance_breaks)';
COMMENT ON COLUMN calo_recon.user_summary.chain_breaks IS 'Chain breaks (see balance_breaks)';
COMMENT ON COLUMN calo_recon.user_summary.drift IS 'Precision drift findings (see precision_drift)';
COMMENT ON COLUMN calo_recon.user_summary.overdrafts IS 'Transactions with a negative new_balance';
COMMENT ON COLUMN calo_recon.user_summary.discrepancies IS 'Balance errors at or above the tolerance (see discrepancies)';
COMMENT ON COLUMN calo_recon.user_summary.rejections IS 'Debits refused for overdraft (negative_balance_rejections)';
COMMENT ON COLUMN calo_recon.user_summary.credits_total IS 'Sum of amount (gross, VAT included) over CREDIT transactions (legacy rows whose balance did not decrease count as credits)';
COMMENT ON COLUMN calo_recon.user_summary.debits_total IS 'Sum of amount (gross, VAT included) over DEBIT transactions (legacy rows whose balance decreased count as debits)';
COMMENT ON COLUMN calo_recon.user_summary.opening_balance IS 'Opening balance: old_balance of the first transaction in chain order';
COMMENT ON COLUMN calo_recon.user_summary.credits_net IS 'Sum of amount - vat over credits: what credits added to the wallet';
COMMENT ON COLUMN calo_recon.user_summary.debits_net IS 'Sum of amount - vat over debits: what debits took from the wallet';
COMMENT ON COLUMN calo_recon.user_summary.vat_total IS 'Sum of vat over all transactions';
COMMENT ON COLUMN calo_recon.user_summary.reconciles IS 'true when opening_balance + credits_net - debits_net equals current_balance within the tolerance (half a minor unit), computed on the logged values; NULL without transactions';
COMMENT ON COLUMN calo_recon.user_summary.reconcile_difference IS 'current_balance - (opening_balance + credits_net - debits_net), rounded to the minor unit: what the breaks of the user add up to';

-- user_summary over a period (export_reports, export_workbook): the same
-- columns, each of the period [period_from, period_to) (NULL: open).  The
-- figures come from user_figures, as user_summary's; the projection below
-- is user_summary's, which test/sql/79_report_totals.sql checks by
-- comparing the two over an open period.
CREATE FUNCTION calo_recon.user_summary_in(period_from timestamptz, period_to timestamptz)
RETURNS SETOF calo_recon.user_summary
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF period_from IS NOT NULL AND period_to IS NOT NULL AND period_from >= period_to THEN
        RAISE EXCEPTION 'the period must end after it starts'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('period_from is %s, period_to is %s.', period_from, period_to),
                  HINT = 'The period is [period_from, period_to): period_to is excluded.';
    END IF;
    RETURN QUERY EXECUTE $q$
    WITH x AS (SELECT * FROM calo_recon.user_figures(NULL::pg_catalog.text[], $1, $2)),
    findings AS (
        SELECT f.user_id,
               pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
               pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
               pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
        FROM calo_recon.reconciliation_findings f
        WHERE ($1 IS NULL OR f.logged_at >= $1) AND ($2 IS NULL OR f.logged_at < $2)
        GROUP BY f.user_id
    ),
    disc AS (
        SELECT d.user_id, pg_catalog.count(*) AS discrepancies
        FROM calo_recon.discrepancies d
        WHERE ($1 IS NULL OR d.logged_at >= $1) AND ($2 IS NULL OR d.logged_at < $2)
        GROUP BY d.user_id
    ),
    rej AS (
        SELECT r.user_id, pg_catalog.count(*) AS rejections
        FROM calo_recon.negative_balance_rejections r
        WHERE ($1 IS NULL OR r.logged_at >= $1) AND ($2 IS NULL OR r.logged_at < $2)
        GROUP BY r.user_id
    ),
    users AS (
        -- with an open period, every user of user_summary; else those with
        -- a transaction in it (the export's rule)
        SELECT x.user_id FROM x
        UNION SELECT e.user_id FROM calo_recon.balance_errors e WHERE $1 IS NULL AND $2 IS NULL
        UNION SELECT n.user_id FROM calo_recon.negative_balance_rejections n WHERE $1 IS NULL AND $2 IS NULL
    )
    SELECT u.user_id,
           coalesce(x.transactions, 0) AS transactions,
           x.first_logged_at, x.last_logged_at, x.currency,
           calo_recon.round_money(x.closing_balance, cu.minor_unit) AS current_balance,
           coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
           coalesce(f.chain_breaks, 0) AS chain_breaks,
           coalesce(f.drift, 0) AS drift,
           coalesce(x.overdrafts, 0) AS overdrafts,
           coalesce(d.discrepancies, 0) AS discrepancies,
           coalesce(r.rejections, 0) AS rejections,
           calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.credits_total END, cu.minor_unit) AS credits_total,
           calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.debits_total END, cu.minor_unit) AS debits_total,
           calo_recon.round_money(x.opening_balance, cu.minor_unit) AS opening_balance,
           calo_recon.round_money(x.credits_net, cu.minor_unit) AS credits_net,
           calo_recon.round_money(x.debits_net, cu.minor_unit) AS debits_net,
           calo_recon.round_money(x.vat_total, cu.minor_unit) AS vat_total,
           pg_catalog.abs(x.closing_balance - (x.opening_balance + x.credits_net - x.debits_net))
               < calo_recon.tolerance(cu.minor_unit) AS reconciles,
           calo_recon.round_money(x.closing_balance - (x.opening_balance + x.credits_net - x.debits_net),
                                  cu.minor_unit) AS reconcile_difference
    FROM users u
    LEFT JOIN x ON x.user_id = u.user_id
    LEFT JOIN calo_recon.currencies cu ON cu.code = x.currency
    LEFT JOIN findings f ON f.user_id = u.user_id
    LEFT JOIN disc d ON d.user_id = u.user_id
    LEFT JOIN rej r ON r.user_id = u.user_id
    $q$ USING period_from, period_to;
END;
$$;
COMMENT ON FUNCTION calo_recon.user_summary_in(timestamptz, timestamptz) IS
  'user_summary over the period [period_from, period_to) (NULL: open), as export_reports() and export_workbook() write it: the users with a transaction in the period (every user of user_summary when both ends are open), with the period''s figures: transactions, first and last time, opening balance (old_balance of the first transaction in the period, chain order), credits, debits and VAT within it, closing balance (new_balance of its last transaction) and whether opening + credits_net - debits_net = closing (reconcile_difference the gap), and the breaks, drift, overdrafts, discrepancies and refused debits logged in it. 22023 when the period does not end after it starts';
REVOKE ALL ON FUNCTION calo_recon.user_summary_in(timestamptz, timestamptz) FROM PUBLIC;

CREATE VIEW calo_recon.overdraft_episodes AS
-- NOT MATERIALIZED: each branch below reads its own runs, so LIMIT stops
-- early and a filter on user_id reaches the stored rows
WITH episodes AS NOT MATERIALIZED (
    SELECT e.user_id, e.currency, e.started_at, e.ended_at, e.transactions, e.first_txn_id,
           e.last_txn_id, e.low_currency, e.low_balance, e.run_currencies
    FROM calo_recon.overdraft_episode_totals e
    WHERE NOT EXISTS (SELECT FROM calo_recon.pending_reconcile p WHERE p.user_id = e.user_id)
    UNION ALL
    SELECT l.user_id, l.currency, l.started_at, l.ended_at, l.transactions, l.first_txn_id,
           l.last_txn_id, l.low_currency, l.low_balance, l.run_currencies
    FROM calo_recon.user_overdraft_episodes(coalesce((SELECT pg_catalog.array_agg(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p), '{}')) l
)
-- the lowest balance of a run in one currency, rounded to its minor unit
SELECT e.user_id, e.currency, e.started_at, e.ended_at,
       calo_recon.round_money(e.low_balance, cu.minor_unit) AS lowest_balance,
       e.transactions, e.first_txn_id, e.last_txn_id
FROM episodes e
LEFT JOIN calo_recon.currencies cu ON cu.code = e.low_currency
WHERE e.run_currencies = 1
UNION ALL
-- of a run in several: each currency's rounded, then the lowest (NULL when
-- one is)
SELECT e.user_id, e.currency, e.started_at, e.ended_at,
       CASE WHEN pg_catalog.count(e.low_balance) = pg_catalog.count(*)
            THEN pg_catalog.min(calo_recon.round_money(e.low_balance, cu.minor_unit)) END,
       e.transactions, e.first_txn_id, e.last_txn_id
FROM episodes e
LEFT JOIN calo_recon.currencies cu ON cu.code = e.low_currency
WHERE e.run_currencies > 1
GROUP BY e.user_id, e.first_txn_id, e.currency, e.started_at, e.ended_at, e.transactions, e.last_txn_id;
COMMENT ON VIEW calo_recon.overdraft_episodes IS
  'Runs of consecutive negative balances per user in chain order (logged_at, txn_id): when the wallet went below zero, how low it went and when a later transaction brought it back to zero or above';
COMMENT ON COLUMN calo_recon.overdraft_episodes.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.overdraft_episodes.currency IS 'Currency of the first negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episodes.started_at IS 'logged_at of the first transaction that left the balance negative';
COMMENT ON COLUMN calo_recon.overdraft_episodes.ended_at IS 'logged_at of the transaction that brought the balance back to zero or above; NULL while still negative';
COMMENT ON COLUMN calo_recon.overdraft_episodes.lowest_balance IS 'Lowest new_balance during the run, rounded to the currency''s minor unit';
COMMENT ON COLUMN calo_recon.overdraft_episodes.transactions IS 'Number of consecutive transactions with a negative new_balance';
COMMENT ON COLUMN calo_recon.overdraft_episodes.first_txn_id IS 'First negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episodes.last_txn_id IS 'Last negative transaction of the run';

-- the per-user report totals are distributed with the wallet tables on a
-- Citus cluster (citus_layout)
DROP FUNCTION calo_recon.citus_layout();
CREATE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed', '{transactions_alert}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}'),
           ('calo_recon.currencies', 'reference', '{currencies_override_builtin}')
$$;
COMMENT ON FUNCTION calo_recon.citus_layout() IS
  'What distribute() does with each table on a Citus cluster: distributed (hash by user_id, colocated with transactions) or reference (a copy on every node), and the triggers it disables there; tables not listed stay on the coordinator';
REVOKE ALL ON FUNCTION calo_recon.citus_layout() FROM PUBLIC;

-- the data already there: every user is queued, so that the views read
-- them live until the next reconcile() stores their totals
INSERT INTO calo_recon.pending_reconcile (user_id)
SELECT DISTINCT t.user_id FROM calo_recon.transactions t;

-- grant_role() grants the readers of the views the report totals' functions
-- (not PUBLIC's: they read transactions)
DROP FUNCTION calo_recon.grant_role(name, text);
CREATE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views and the amount thresholds, EXECUTE on the functions the views compute the queued users'' report totals with), monitor (schema USAGE, the health view, the amount thresholds and check_health(); no wallet data), analyst (reader + reading models, scores and feedback, recording feedback, setting the amount rule''s thresholds; no other write right on any table) or operator (reader + reading every table; refresh, ingestion, reconciliation, training, scoring, exports, alerts and retention through the SECURITY DEFINER entry points of calo_recon.definer_entry_points, with no write right on the record and no server-file role needed; currencies and the active model; feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights';
REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM PUBLIC;


SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of views (issue 10 item 7)

-- within_tolerance and wallet_gap (one home of the tolerance test and of a
-- wallet's unexplained gap): discrepancies, user_summary and
-- user_summary_in() ask them instead of each writing the arithmetic.  OR
-- REPLACE keeps the views' and the function's grants and comments.
CREATE FUNCTION calo_recon.within_tolerance(difference numeric, minor_unit integer)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_within_tolerance';
COMMENT ON FUNCTION calo_recon.within_tolerance(numeric, integer) IS
  'Whether a difference is within the tolerance of a currency with that many decimals (|difference| < tolerance(minor_unit)): the rule by which reconcile() tells drift from a break, for the differences the views compute (discrepancies, user_summary); NULL for a NULL difference';

CREATE FUNCTION calo_recon.wallet_gap(opening numeric, credits_net numeric, debits_net numeric, closing numeric)
RETURNS numeric
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_wallet_gap';
COMMENT ON FUNCTION calo_recon.wallet_gap(numeric, numeric, numeric, numeric) IS
  'closing - (opening + credits_net - debits_net), exact: what a wallet''s figures leave unexplained (user_summary''s reconcile_difference; 0 when they add up)';

CREATE OR REPLACE VIEW calo_recon.discrepancies AS
SELECT e.error_id, e.user_id, e.txn_id,
       calo_recon.round_money(e.subscription_balance, cu.minor_unit::integer) AS subscription_balance,
       calo_recon.round_money(e.payment_balance, cu.minor_unit::integer) AS payment_balance,
       calo_recon.round_money(e.subscription_balance - e.payment_balance, cu.minor_unit::integer) AS difference,
       calo_recon.tolerance(cu.minor_unit) AS tolerance, coalesce(linked.currency, latest.currency) AS currency,
       e.logged_at, e.source_file
FROM calo_recon.balance_errors e
-- joined by user_id (a transaction is its user's), so that a Citus cluster
-- joins the colocated shards (README "Scaling out with Citus")
LEFT JOIN calo_recon.transactions linked ON linked.user_id = e.user_id AND linked.txn_id = e.txn_id
LEFT JOIN LATERAL (
    SELECT t.currency FROM calo_recon.transactions t WHERE t.user_id = e.user_id
    ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC LIMIT 1
) latest ON linked.txn_id IS NULL
LEFT JOIN calo_recon.currencies cu ON cu.code = coalesce(linked.currency, latest.currency)
WHERE NOT calo_recon.within_tolerance(e.subscription_balance - e.payment_balance, cu.minor_unit::integer);
CREATE OR REPLACE VIEW calo_recon.user_summary AS
-- Every part is keyed by user_id and referenced once, so a filter on
-- user_id reaches the stored row and the user's counts only.
WITH txn AS (
    SELECT s.user_id, s.transactions, s.first_logged_at, s.last_logged_at, s.currency,
           s.opening_balance, s.closing_balance, s.overdrafts, s.credits_total, s.debits_total,
           s.credits_net, s.debits_net, s.vat_total
    FROM calo_recon.user_totals s
    WHERE NOT EXISTS (SELECT FROM calo_recon.pending_reconcile p WHERE p.user_id = s.user_id)
    UNION ALL
    SELECT l.user_id, l.transactions, l.first_logged_at, l.last_logged_at, l.currency,
           l.opening_balance, l.closing_balance, l.overdrafts, l.credits_total, l.debits_total,
           l.credits_net, l.debits_net, l.vat_total
    FROM calo_recon.user_figures(coalesce((SELECT pg_catalog.array_agg(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p), '{}'), NULL, NULL) l
    UNION ALL
    -- users seen only in balance errors or rejections
    SELECT o.user_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM (SELECT e.user_id FROM calo_recon.balance_errors e
          UNION SELECT n.user_id FROM calo_recon.negative_balance_rejections n) o
    WHERE NOT EXISTS (SELECT FROM calo_recon.transactions t WHERE t.user_id = o.user_id)
),
findings AS (
    SELECT f.user_id,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
    FROM calo_recon.reconciliation_findings f
    GROUP BY f.user_id
),
disc AS (
    SELECT d.user_id, pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d GROUP BY d.user_id
),
rej AS (
    SELECT r.user_id, pg_catalog.count(*) AS rejections
    FROM calo_recon.negative_balance_rejections r GROUP BY r.user_id
)
SELECT x.user_id,
       coalesce(x.transactions, 0) AS transactions,
       x.first_logged_at, x.last_logged_at, x.currency,
       calo_recon.round_money(x.closing_balance, cu.minor_unit) AS current_balance,
       coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(f.chain_breaks, 0) AS chain_breaks,
       coalesce(f.drift, 0) AS drift,
       coalesce(x.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(r.rejections, 0) AS rejections,
       calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.credits_total END, cu.minor_unit) AS credits_total,
       calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.debits_total END, cu.minor_unit) AS debits_total,
       calo_recon.round_money(x.opening_balance, cu.minor_unit) AS opening_balance,
       calo_recon.round_money(x.credits_net, cu.minor_unit) AS credits_net,
       calo_recon.round_money(x.debits_net, cu.minor_unit) AS debits_net,
       calo_recon.round_money(x.vat_total, cu.minor_unit) AS vat_total,
       calo_recon.within_tolerance(calo_recon.wallet_gap(x.opening_balance, x.credits_net, x.debits_net,
                                                         x.closing_balance), cu.minor_unit) AS reconciles,
       calo_recon.round_money(calo_recon.wallet_gap(x.opening_balance, x.credits_net, x.debits_net,
                                                    x.closing_balance), cu.minor_unit) AS reconcile_difference
FROM txn x
LEFT JOIN calo_recon.currencies cu ON cu.code = x.currency
LEFT JOIN findings f ON f.user_id = x.user_id
LEFT JOIN disc d ON d.user_id = x.user_id
LEFT JOIN rej r ON r.user_id = x.user_id;
CREATE OR REPLACE FUNCTION calo_recon.user_summary_in(period_from timestamptz, period_to timestamptz)
RETURNS SETOF calo_recon.user_summary
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF period_from IS NOT NULL AND period_to IS NOT NULL AND period_from >= period_to THEN
        RAISE EXCEPTION 'the period must end after it starts'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('period_from is %s, period_to is %s.', period_from, period_to),
                  HINT = 'The period is [period_from, period_to): period_to is excluded.';
    END IF;
    RETURN QUERY EXECUTE $q$
    WITH x AS (SELECT * FROM calo_recon.user_figures(NULL::pg_catalog.text[], $1, $2)),
    findings AS (
        SELECT f.user_id,
               pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
               pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
               pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
        FROM calo_recon.reconciliation_findings f
        WHERE ($1 IS NULL OR f.logged_at >= $1) AND ($2 IS NULL OR f.logged_at < $2)
        GROUP BY f.user_id
    ),
    disc AS (
        SELECT d.user_id, pg_catalog.count(*) AS discrepancies
        FROM calo_recon.discrepancies d
        WHERE ($1 IS NULL OR d.logged_at >= $1) AND ($2 IS NULL OR d.logged_at < $2)
        GROUP BY d.user_id
    ),
    rej AS (
        SELECT r.user_id, pg_catalog.count(*) AS rejections
        FROM calo_recon.negative_balance_rejections r
        WHERE ($1 IS NULL OR r.logged_at >= $1) AND ($2 IS NULL OR r.logged_at < $2)
        GROUP BY r.user_id
    ),
    users AS (
        -- with an open period, every user of user_summary; else those with
        -- a transaction in it (the export's rule)
        SELECT x.user_id FROM x
        UNION SELECT e.user_id FROM calo_recon.balance_errors e WHERE $1 IS NULL AND $2 IS NULL
        UNION SELECT n.user_id FROM calo_recon.negative_balance_rejections n WHERE $1 IS NULL AND $2 IS NULL
    )
    SELECT u.user_id,
           coalesce(x.transactions, 0) AS transactions,
           x.first_logged_at, x.last_logged_at, x.currency,
           calo_recon.round_money(x.closing_balance, cu.minor_unit) AS current_balance,
           coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
           coalesce(f.chain_breaks, 0) AS chain_breaks,
           coalesce(f.drift, 0) AS drift,
           coalesce(x.overdrafts, 0) AS overdrafts,
           coalesce(d.discrepancies, 0) AS discrepancies,
           coalesce(r.rejections, 0) AS rejections,
           calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.credits_total END, cu.minor_unit) AS credits_total,
           calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.debits_total END, cu.minor_unit) AS debits_total,
           calo_recon.round_money(x.opening_balance, cu.minor_unit) AS opening_balance,
           calo_recon.round_money(x.credits_net, cu.minor_unit) AS credits_net,
           calo_recon.round_money(x.debits_net, cu.minor_unit) AS debits_net,
           calo_recon.round_money(x.vat_total, cu.minor_unit) AS vat_total,
           calo_recon.within_tolerance(calo_recon.wallet_gap(x.opening_balance, x.credits_net, x.debits_net,
                                                             x.closing_balance), cu.minor_unit) AS reconciles,
           calo_recon.round_money(calo_recon.wallet_gap(x.opening_balance, x.credits_net, x.debits_net,
                                                        x.closing_balance), cu.minor_unit) AS reconcile_difference
    FROM users u
    LEFT JOIN x ON x.user_id = u.user_id
    LEFT JOIN calo_recon.currencies cu ON cu.code = x.currency
    LEFT JOIN findings f ON f.user_id = u.user_id
    LEFT JOIN disc d ON d.user_id = u.user_id
    LEFT JOIN rej r ON r.user_id = u.user_id
    $q$ USING period_from, period_to;
END;
$$;
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of within_tolerance and wallet_gap

-- daily_summary's anomalies per day: stored by refresh() while nothing they
-- depend on has changed (anomaly_day_totals, anomaly_input_changes)
-- ---------------------------------------------------------------------
-- daily_summary's anomalies per day.  Counting them reads every
-- transaction (any may be above its currency's threshold), about a second
-- on a million rows, so refresh() stores the counts it finds at its end
-- (anomaly_day_totals), and daily_summary reads the stored counts while
-- nothing the anomalies depend on has changed since, else it counts live.
-- What changed is known from anomaly_input_changes: a statement trigger on
-- every input (transactions, models, thresholds, verdicts, scores; the bulk
-- writes of scores fire statement triggers as COPY does) appends a row to
-- it, never updating one, so no two writers wait on each other.  refresh()
-- deletes exactly the rows its count saw (one statement, one snapshot): a
-- change committed meanwhile leaves its row, and the view counts live until
-- the next refresh().  So the view is exact at every moment.
-- ---------------------------------------------------------------------

CREATE VIEW calo_recon.anomaly_day_counts AS
SELECT pg_catalog.timezone('UTC', a.logged_at)::pg_catalog.date AS day, a.currency,
       pg_catalog.count(*) AS anomalies
FROM calo_recon.anomalies a
GROUP BY 1, 2;
COMMENT ON VIEW calo_recon.anomaly_day_counts IS
  'Internal to daily_summary: the rows of calo_recon.anomalies per UTC day and currency, counted now (reads every transaction)';
COMMENT ON COLUMN calo_recon.anomaly_day_counts.day IS 'Day (UTC) the transactions were logged';
COMMENT ON COLUMN calo_recon.anomaly_day_counts.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.anomaly_day_counts.anomalies IS 'Rows of calo_recon.anomalies';

CREATE TABLE calo_recon.anomaly_day_totals (
    day        date   NOT NULL,
    currency   text   NOT NULL,
    anomalies  bigint NOT NULL CHECK (anomalies > 0),
    PRIMARY KEY (day, currency)
);
COMMENT ON TABLE calo_recon.anomaly_day_totals IS
  'Internal to daily_summary: anomaly_day_counts as the last refresh() found them; read while anomaly_input_changes is empty. Not dumped: a restore notes its rows as changes';
COMMENT ON COLUMN calo_recon.anomaly_day_totals.day IS 'UTC day';
COMMENT ON COLUMN calo_recon.anomaly_day_totals.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.anomaly_day_totals.anomalies IS 'Rows of calo_recon.anomalies that day in that currency';

CREATE TABLE calo_recon.anomaly_input_changes (
    change_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    changed_table text        NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE calo_recon.anomaly_input_changes IS
  'Internal to daily_summary: one row per statement that changed what calo_recon.anomalies depends on since the last refresh() stored anomaly_day_totals (empty: the stored counts hold); refresh() deletes the rows it has counted. Not dumped';
COMMENT ON COLUMN calo_recon.anomaly_input_changes.change_id IS 'Surrogate key';
COMMENT ON COLUMN calo_recon.anomaly_input_changes.changed_table IS 'Table the statement changed (or what else made the stored counts stale: an update of the extension, distribute())';
COMMENT ON COLUMN calo_recon.anomaly_input_changes.changed_at IS 'Start of the changing transaction';

-- It runs with the writer's rights: grant_role() lets analysts and
-- operators, who write some inputs directly, insert a note
CREATE FUNCTION calo_recon.note_anomaly_input_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO calo_recon.anomaly_input_changes (changed_table) VALUES (TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.note_anomaly_input_change() IS
  'Trigger: notes in anomaly_input_changes that a statement changed an input of calo_recon.anomalies, so that daily_summary counts anomalies live until the next refresh()';
REVOKE ALL ON FUNCTION calo_recon.note_anomaly_input_change() FROM PUBLIC;
-- the inputs of calo_recon.anomalies (transaction_rules, the flagged scores,
-- the verdicts, the models in force)
CREATE TRIGGER transactions_anomaly_input
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calo_recon.transactions
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.note_anomaly_input_change();
CREATE TRIGGER models_anomaly_input
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calo_recon.models
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.note_anomaly_input_change();
CREATE TRIGGER amount_thresholds_anomaly_input
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calo_recon.amount_thresholds
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.note_anomaly_input_change();
CREATE TRIGGER transaction_scores_anomaly_input
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calo_recon.transaction_scores
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.note_anomaly_input_change();
CREATE TRIGGER anomaly_feedback_anomaly_input
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON calo_recon.anomaly_feedback
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.note_anomaly_input_change();

-- Called at the end of refresh()'s work, under its writer lock.  On a Citus
-- cluster the transactions' trigger would run on the shards, which cannot
-- reach this coordinator table (distribute() disables it and notes a
-- change), so nothing is stored there and daily_summary counts live.
CREATE FUNCTION calo_recon.store_anomaly_day_totals() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored bigint;
BEGIN
    IF calo_recon.is_distributed() THEN
        RETURN 0;
    END IF;
    PERFORM calo_recon.lock_writer();
    -- counted again even when nothing was noted: a change no trigger saw
    -- (triggers disabled, as by a data-only restore) lasts one run at most
    DELETE FROM calo_recon.anomaly_day_totals;
    -- one statement: the changes deleted are those its count saw
    WITH counted AS (DELETE FROM calo_recon.anomaly_input_changes)
    INSERT INTO calo_recon.anomaly_day_totals (day, currency, anomalies)
    SELECT c.day, c.currency, c.anomalies FROM calo_recon.anomaly_day_counts c;
    GET DIAGNOSTICS stored = ROW_COUNT;
    RETURN stored;
END;
$$;
COMMENT ON FUNCTION calo_recon.store_anomaly_day_totals() IS
  'Internal to refresh(): stores anomaly_day_counts in anomaly_day_totals and empties anomaly_input_changes of the changes counted, so that daily_summary reads the stored counts until the next change; returns the rows stored (0 on a Citus cluster, where daily_summary counts live)';
REVOKE ALL ON FUNCTION calo_recon.store_anomaly_day_totals() FROM PUBLIC;

CREATE OR REPLACE VIEW calo_recon.daily_summary AS
WITH activity AS (
    -- day_totals, with the stored rows of the queued users replaced by
    -- their live ones
    SELECT a.day, a.currency,
           pg_catalog.sum(a.transactions) AS transactions, pg_catalog.sum(a.credits) AS credits,
           pg_catalog.sum(a.debits) AS debits, pg_catalog.sum(a.vat) AS vat,
           pg_catalog.sum(a.overdrafts) AS overdrafts, pg_catalog.sum(a.liability_change) AS change
    FROM (SELECT d.day, d.currency, d.transactions, d.credits, d.debits, d.vat, d.overdrafts,
                 d.liability_change
          FROM calo_recon.day_totals d
          UNION ALL
          SELECT u.day, u.currency, -u.transactions, -u.credits, -u.debits, -u.vat, -u.overdrafts,
                 -u.liability_change
          FROM calo_recon.user_day_totals u
          WHERE u.user_id IN (SELECT p.user_id FROM calo_recon.pending_reconcile p)
          UNION ALL
          SELECT l.day, l.currency, l.transactions, l.credits, l.debits, l.vat, l.overdrafts,
                 l.liability_change
          FROM calo_recon.user_day_figures(coalesce((SELECT pg_catalog.array_agg(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p), '{}')) l) a
    GROUP BY a.day, a.currency
    HAVING pg_catalog.sum(a.transactions) > 0
),
breaks AS (
    SELECT pg_catalog.timezone('UTC', b.logged_at)::pg_catalog.date AS day, b.currency,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'conflict') AS conflicts,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'out_of_range') AS out_of_range
    FROM calo_recon.balance_breaks b
    GROUP BY 1, 2
),
disc AS (
    SELECT pg_catalog.timezone('UTC', d.logged_at)::pg_catalog.date AS day, d.currency,
           pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d
    WHERE d.currency IS NOT NULL
    GROUP BY 1, 2
),
anom AS (
    -- stored while nothing has changed since refresh() counted them
    -- ("SELECT 1": Citus cannot plan an EXISTS of no column here)
    SELECT s.day, s.currency, s.anomalies FROM calo_recon.anomaly_day_totals s
    WHERE NOT EXISTS (SELECT 1 FROM calo_recon.anomaly_input_changes c)
    UNION ALL
    SELECT l.day, l.currency, l.anomalies FROM calo_recon.anomaly_day_counts l
    WHERE EXISTS (SELECT 1 FROM calo_recon.anomaly_input_changes c)
),
days AS (
    SELECT a.day, a.currency FROM activity a
    UNION SELECT d.day, d.currency FROM disc d
)
SELECT k.day, k.currency,
       coalesce(a.transactions, 0)::bigint AS transactions,
       calo_recon.round_money(coalesce(a.credits, 0), cu.minor_unit) AS credits,
       calo_recon.round_money(coalesce(a.debits, 0), cu.minor_unit) AS debits,
       calo_recon.round_money(coalesce(a.vat, 0), cu.minor_unit) AS vat,
       calo_recon.round_money(pg_catalog.sum(coalesce(a.change, 0)) OVER (
           PARTITION BY k.currency ORDER BY k.day), cu.minor_unit) AS wallet_liability,
       coalesce(b.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(b.chain_breaks, 0) AS chain_breaks,
       coalesce(b.conflicts, 0) AS conflicts,
       coalesce(b.out_of_range, 0) AS out_of_range,
       coalesce(a.overdrafts, 0)::bigint AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(n.anomalies, 0) AS anomalies
FROM days k
LEFT JOIN activity a ON a.day = k.day AND a.currency = k.currency
LEFT JOIN breaks b ON b.day = k.day AND b.currency = k.currency
LEFT JOIN disc d ON d.day = k.day AND d.currency = k.currency
LEFT JOIN anom n ON n.day = k.day AND n.currency = k.currency
LEFT JOIN calo_recon.currencies cu ON cu.code = k.currency;

CREATE OR REPLACE FUNCTION calo_recon.refresh_work(run_id bigint)
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
    ingested record;
    reconciled record;
BEGIN
    SELECT r.* INTO run FROM calo_recon.runs r WHERE r.run_id = refresh_work.run_id;
    IF NOT FOUND OR run.status <> 'running' THEN
        RAISE EXCEPTION 'calo_recon.runs has no run % in status running', refresh_work.run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- runs that this one holds the lock against: their sessions stopped
    -- running them (terminated, crashed) without recording how they ended
    -- the alerts this run raises name it (calo_recon.alerts.run_id's default)
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', run.run_id::text, true);
    UPDATE calo_recon.runs r
       SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
           error = 'did not finish: process ' || r.backend_pid
                   || ' stopped running it before recording an outcome (terminated or crashed)'
     WHERE r.status = 'running' AND r.run_id <> run.run_id;
    BEGIN
        -- the users of the new files are queued: reconciled once, below
        SELECT * INTO ingested FROM calo_recon.ingest_file_unreconciled(run.folder);
        run.files := ingested.new_files;
        run.skipped_files := ingested.skipped_files;
        run.events := ingested.events;
        run.transactions := ingested.transactions;

        SELECT * INTO reconciled FROM calo_recon.reconcile_pending();
        IF FOUND THEN
            run.reconciled_users := reconciled.users;
            run.breaks := reconciled.arithmetic_breaks + reconciled.chain_breaks;
        END IF;

        -- models due are trained again first: they score their whole scope
        run.retrained := (SELECT pg_catalog.count(*) FROM calo_recon.retrain_due_models());
        run.scored := calo_recon.score_transactions(true);
        -- last: what daily_summary reads until the next change
        PERFORM calo_recon.store_anomaly_day_totals();
        run.status := 'succeeded';
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        -- the work above is rolled back; the run row stays, saying why (a
        -- cancel ends the work as asked, and the run is recorded as failed)
        run.status := 'failed';
        run.error := SQLSTATE || ': ' || SQLERRM;
        GET STACKED DIAGNOSTICS run.error_detail = PG_EXCEPTION_DETAIL, run.error_hint = PG_EXCEPTION_HINT;
        run.error_detail := NULLIF(run.error_detail, '');
        run.error_hint := NULLIF(run.error_hint, '');
        run.files := 0; run.skipped_files := 0; run.events := 0; run.transactions := 0;
        run.reconciled_users := 0; run.breaks := 0; run.scored := 0; run.retrained := 0;
        RAISE WARNING 'calo_recon.refresh() run % failed: %', run.run_id, run.error;
    END;
    run.finished_at := pg_catalog.clock_timestamp();
    UPDATE calo_recon.runs r
       SET finished_at = run.finished_at, status = run.status, files = run.files,
           skipped_files = run.skipped_files, events = run.events,
           transactions = run.transactions, reconciled_users = run.reconciled_users,
           breaks = run.breaks, scored = run.scored, retrained = run.retrained, error = run.error,
           error_detail = run.error_detail, error_hint = run.error_hint
     WHERE r.run_id = run.run_id
    RETURNING r.* INTO run;
    IF run.status = 'succeeded' THEN
        -- the line of 1.1, with the models retrained after it when there are
        -- any (log parsers that know the old line keep working)
        RAISE LOG 'calo_recon.refresh() run % succeeded in %: % files, % transactions, % users reconciled, % breaks, % scored%',
            run.run_id, run.duration, run.files, run.transactions, run.reconciled_users, run.breaks, run.scored,
            CASE WHEN run.retrained > 0 THEN ', ' || run.retrained || ' models retrained' ELSE '' END;
    END IF;
    -- what this run (its outcome included) and the data now call for; a
    -- failure to alert must not lose the run's record
    BEGIN
        PERFORM calo_recon.raise_alerts();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'calo_recon.refresh() run %: raise_alerts() failed: % %', run.run_id, SQLSTATE, SQLERRM;
    END;
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', '', true);
    RETURN run;
END;
$$;

CREATE OR REPLACE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed', '{transactions_alert,transactions_anomaly_input}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}'),
           ('calo_recon.currencies', 'reference', '{currencies_override_builtin}')
$$;

CREATE OR REPLACE FUNCTION calo_recon.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name regclass, placement text, shards integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    key_columns text;
    key_name name;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'calo_recon.distribute: Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On the coordinator, with shared_preload_libraries = ''citus'' on every node: CREATE EXTENSION citus; add the workers (citus_add_node); then call distribute().';
    END IF;
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'calo_recon.distribute: shard_count % is out of range', shard_count
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give 1 to 64000 shards, or NULL for citus.shard_count.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
               WHERE p.logicalrelid = 'calo_recon.transactions'::regclass) THEN
        RAISE EXCEPTION 'calo_recon.distribute: calo_recon.transactions is already distributed'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- no ingest, reconcile or refresh while the tables move
    PERFORM calo_recon.lock_writer();
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    -- transactions first: the others are colocated with it
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l
             ORDER BY l.table_name <> 'calo_recon.transactions'::regclass LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.disabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER %I', t.table_name,
                                      t.disabled_triggers[i]);
        END LOOP;
        IF t.placement = 'reference' THEN
            PERFORM pg_catalog.create_reference_table(t.table_name);
            -- the rows were copied to the shards; the shell keeps none
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
            CONTINUE;
        END IF;
        -- a unique key of a distributed table holds the distribution column:
        -- the primary key gets user_id in front (ids stay unique: on one node
        -- they are unique alone, and the ingest keeps a txn_id from being
        -- stored under a second user, see ingest_log_unreconciled)
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
        INTO key_columns
        FROM pg_catalog.pg_constraint c
        CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = t.table_name AND c.contype = 'p';
        IF key_columns IS NOT NULL AND key_columns NOT LIKE 'user_id%' THEN
            SELECT c.conname INTO key_name FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = t.table_name AND c.contype = 'p';
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (user_id, %s)',
                                      t.table_name, key_name, key_name, key_columns);
        END IF;
        IF t.table_name = 'calo_recon.transactions'::regclass THEN
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id', 'hash',
                                                        colocate_with := 'none',
                                                        shard_count := shard_count);
        ELSE
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id',
                                                        colocate_with := 'calo_recon.transactions');
        END IF;
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;

    -- one anchor per shard: the first of k1, k2, ... that hashes into it
    INSERT INTO calo_recon.shard_anchors (user_id)
    SELECT DISTINCT ON (s.shardid) 'k' || g.i
    FROM pg_catalog.pg_dist_shard s
    CROSS JOIN pg_catalog.generate_series(1, 100 * (SELECT pg_catalog.count(*)::integer
                                                     FROM pg_catalog.pg_dist_shard x
                                                     WHERE x.logicalrelid = 'calo_recon.shard_anchors'::regclass)) AS g (i)
    WHERE s.logicalrelid = 'calo_recon.shard_anchors'::regclass
      AND pg_catalog.worker_hash('k' || g.i) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer
    ORDER BY s.shardid, g.i;

    -- daily_summary counts anomalies live from now on: the transactions'
    -- note of changes is disabled, and refresh() stores no counts here
    INSERT INTO calo_recon.anomaly_input_changes (changed_table) VALUES ('distribute()');

    -- the roles granted before: their rights on the cluster (grant_role)
    PERFORM calo_recon.reapply_grants();

    RETURN QUERY
    SELECT l.table_name, l.placement,
           (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
            WHERE s.logicalrelid = l.table_name)
    FROM calo_recon.citus_layout() l;
END;
$$;

CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;

-- the data this update finds was never counted
INSERT INTO calo_recon.anomaly_input_changes (changed_table) VALUES ('update to 1.2');
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of daily_summary's anomalies per day

-- ---------------------------------------------------------------------------
-- citus-scores (issue 13): transaction_scores distributed by user_id beside
-- the transactions on a Citus cluster (citus_layout, its note of anomaly
-- inputs disabled there as the transactions' is), written per shard group
-- by score_placement() (which now stores the scores in its shard and
-- returns how many, for score_transactions() and train_model()); the
-- anomalies view joins a row's score by user_id too, and deleting a model
-- deletes its scores through an array (the shards cannot read a transition
-- table).
-- ---------------------------------------------------------------------------
DROP TRIGGER models_delete_scores ON calo_recon.models;
DROP FUNCTION calo_recon.models_delete_scores();
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
REVOKE ALL ON FUNCTION calo_recon.models_delete_scores() FROM PUBLIC;
DROP FUNCTION calo_recon.score_placement(oid, text[], text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]);
CREATE FUNCTION calo_recon.score_placement(anchor_shard oid, user_ids text[], only_new boolean, currencies text[],
                                           currency_models bigint[], model_ids bigint[],
                                           scalers calo_recon.scaler[], forests calo_recon.iforest[],
                                           thresholds float8[])
RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_score_placement';
COMMENT ON FUNCTION calo_recon.score_placement(oid, text[], boolean, text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]) IS
  'Internal to score_transactions() and train_model() on a Citus cluster: scores the given users'' transactions (all when NULL) in the shard group of anchor_shard (a shard of shard_anchors on this node), each row by the model (model_ids, scalers, forests, thresholds) that currency_models gives its currency (as calo_recon.transaction_models or the new model''s scope chose on the coordinator; a currency not in currencies is not scored), and stores the scores, with the explanation and attribution of flagged rows, in the shard of transaction_scores there: with only_new the rows whose model has no score of them there, else all of them, the given models'' scores in the shard deleted first. Returns the rows stored';
REVOKE ALL ON FUNCTION calo_recon.score_placement(oid, text[], boolean, text[], bigint[], bigint[], calo_recon.scaler[], calo_recon.iforest[], float8[]) FROM PUBLIC;
DROP FUNCTION calo_recon.citus_layout();
CREATE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed', '{transactions_alert,transactions_anomaly_input}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}'),
           -- the scores beside their transactions, written per shard group
           -- by score_placement(); daily_summary counts live on a cluster
           ('calo_recon.transaction_scores', 'distributed', '{transaction_scores_anomaly_input}'),
           ('calo_recon.currencies', 'reference', '{currencies_override_builtin}')
$$;
COMMENT ON FUNCTION calo_recon.citus_layout() IS
  'What distribute() does with each table on a Citus cluster: distributed (hash by user_id, colocated with transactions) or reference (a copy on every node), and the triggers it disables there; tables not listed stay on the coordinator';
REVOKE ALL ON FUNCTION calo_recon.citus_layout() FROM PUBLIC;
CREATE OR REPLACE VIEW calo_recon.anomalies AS
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
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of citus-scores (issue 13)

-- ---------------------------------------------------------------------------
-- calerts (issue 13): a bare INSERT or COPY on a Citus cluster raises its
-- alerts.  The shards of transactions queue the rows they store in
-- alert_queue (distributed, colocated by user_id; its trigger installed
-- disabled, enabled by distribute() as citus_layout's new enabled_triggers
-- lists); raise_alerts() checks the queued rows through alert_distributed()
-- (alert_queued(), not for analysts: grant_role) and the ingest removes the
-- entries of the rows it checked itself.
-- ---------------------------------------------------------------------------
-- Insert-time alerts of a bare INSERT or COPY on a cluster: no ingest hands
-- its rows to alert_distributed(), so a trigger on the shards of
-- transactions queues them here, beside them (colocated by user_id, the
-- pattern of track_new_transactions: the transition table read into arrays
-- first, since Citus plans the insert and cannot read a transition table),
-- and raise_alerts() (pg_cron, refresh()) checks them later through
-- alert_distributed(): the rules keep their one home.  The ingest removes
-- the entries of the rows it alerted itself, in the same transaction.  One
-- entry per stored row; raise_alerts() deletes exactly the entries it read,
-- so an entry committed meanwhile stays for the next one.  The trigger is
-- created disabled: one node keeps its synchronous check (transactions_alert),
-- and distribute() enables this one (citus_layout).
CREATE TABLE calo_recon.alert_queue (
    entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  text   NOT NULL,
    txn_id   text   NOT NULL
);
COMMENT ON TABLE calo_recon.alert_queue IS
  'On a Citus cluster: transactions stored by a bare INSERT or COPY, waiting for their insert-time alert check, which the next raise_alerts() (and so refresh()) runs; the ingest removes the entries of the rows it checked itself. Always empty on one node';
COMMENT ON COLUMN calo_recon.alert_queue.entry_id IS 'Surrogate key of the entry';
COMMENT ON COLUMN calo_recon.alert_queue.user_id IS 'Wallet owner of the stored transaction';
COMMENT ON COLUMN calo_recon.alert_queue.txn_id IS 'Transaction id of the stored transaction';

CREATE FUNCTION calo_recon.queue_alert_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    ids text[];
BEGIN
    SELECT pg_catalog.array_agg(n.user_id), pg_catalog.array_agg(n.txn_id) INTO users, ids
    FROM new_rows n;
    INSERT INTO calo_recon.alert_queue (user_id, txn_id)
    SELECT q.user_id, q.txn_id
    FROM unnest(users, ids) AS q (user_id, txn_id);  -- multi-argument form: unqualified
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.queue_alert_check() IS
  'Trigger on a Citus cluster: queues inserted transactions in alert_queue for the alert check of the next raise_alerts()';
CREATE TRIGGER transactions_alert_queue
    AFTER INSERT ON calo_recon.transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.queue_alert_check();
ALTER TABLE calo_recon.transactions DISABLE TRIGGER transactions_alert_queue;

-- What raise_alerts() does with the queue: the rows of the entries it sees
-- (read by user and id) through the ingest's path, then those entries
-- deleted (also those whose row is gone).  No-op on one node.
CREATE FUNCTION calo_recon.alert_queued()
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entries bigint[];
    users text[];
    ids text[];
    queued calo_recon.transactions[];
BEGIN
    SELECT pg_catalog.array_agg(q.entry_id), pg_catalog.array_agg(q.user_id), pg_catalog.array_agg(q.txn_id)
    INTO entries, users, ids
    FROM calo_recon.alert_queue q;
    IF entries IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM calo_recon.alert_queue q
    WHERE q.user_id = ANY (users) AND q.entry_id = ANY (entries);
    -- the rows read on the shards, made transactions rows on the coordinator
    WITH stored AS MATERIALIZED (
        SELECT t.* FROM calo_recon.transactions t
        WHERE (t.user_id, t.txn_id) IN (SELECT q.user_id, q.txn_id
                                        FROM unnest(users, ids) AS q (user_id, txn_id))  -- multi-argument form: unqualified
    )
    SELECT pg_catalog.array_agg(ROW(s.*)::calo_recon.transactions ORDER BY s.txn_id) INTO queued
    FROM stored s;
    IF queued IS NOT NULL THEN
        PERFORM calo_recon.alert_distributed(queued);
    END IF;
    RETURN coalesce(pg_catalog.cardinality(queued), 0);
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_queued() IS
  'Internal to raise_alerts(): the insert-time alert check (alert_distributed()) of the transactions queued in alert_queue by a bare INSERT or COPY on a Citus cluster, and the entries it read deleted; returns how many transactions it checked (0 on one node)';
REVOKE ALL ON FUNCTION calo_recon.alert_queued() FROM PUBLIC;
DROP FUNCTION calo_recon.citus_layout();
CREATE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[], enabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed', '{transactions_alert,transactions_anomaly_input}'::name[],
            '{transactions_alert_queue}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}', '{}'),
           ('calo_recon.alert_queue', 'distributed', '{}', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}', '{}'),
           -- the scores beside their transactions, written per shard group
           -- by score_placement(); daily_summary counts live on a cluster
           ('calo_recon.transaction_scores', 'distributed', '{transaction_scores_anomaly_input}', '{}'),
           ('calo_recon.currencies', 'reference', '{currencies_override_builtin}', '{}')
$$;
COMMENT ON FUNCTION calo_recon.citus_layout() IS
  'What distribute() does with each table on a Citus cluster: distributed (hash by user_id, colocated with transactions) or reference (a copy on every node), the triggers it disables there and those (installed disabled) it enables; tables not listed stay on the coordinator';
REVOKE ALL ON FUNCTION calo_recon.citus_layout() FROM PUBLIC;
CREATE OR REPLACE FUNCTION calo_recon.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name regclass, placement text, shards integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    key_columns text;
    key_name name;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'calo_recon.distribute: Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On the coordinator, with shared_preload_libraries = ''citus'' on every node: CREATE EXTENSION citus; add the workers (citus_add_node); then call distribute().';
    END IF;
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'calo_recon.distribute: shard_count % is out of range', shard_count
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give 1 to 64000 shards, or NULL for citus.shard_count.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
               WHERE p.logicalrelid = 'calo_recon.transactions'::regclass) THEN
        RAISE EXCEPTION 'calo_recon.distribute: calo_recon.transactions is already distributed'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- no ingest, reconcile or refresh while the tables move
    PERFORM calo_recon.lock_writer();
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    -- transactions first: the others are colocated with it
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l
             ORDER BY l.table_name <> 'calo_recon.transactions'::regclass LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.disabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER %I', t.table_name,
                                      t.disabled_triggers[i]);
        END LOOP;
        IF t.placement = 'reference' THEN
            PERFORM pg_catalog.create_reference_table(t.table_name);
            -- the rows were copied to the shards; the shell keeps none
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
            CONTINUE;
        END IF;
        -- a unique key of a distributed table holds the distribution column:
        -- the primary key gets user_id in front (ids stay unique: on one node
        -- they are unique alone, and the ingest keeps a txn_id from being
        -- stored under a second user, see ingest_log_unreconciled)
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
        INTO key_columns
        FROM pg_catalog.pg_constraint c
        CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = t.table_name AND c.contype = 'p';
        IF key_columns IS NOT NULL AND key_columns NOT LIKE 'user_id%' THEN
            SELECT c.conname INTO key_name FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = t.table_name AND c.contype = 'p';
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (user_id, %s)',
                                      t.table_name, key_name, key_name, key_columns);
        END IF;
        IF t.table_name = 'calo_recon.transactions'::regclass THEN
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id', 'hash',
                                                        colocate_with := 'none',
                                                        shard_count := shard_count);
        ELSE
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id',
                                                        colocate_with := 'calo_recon.transactions');
        END IF;
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;

    -- the cluster's own triggers once every table has moved: the rows
    -- copied into the shards were checked on one node
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.enabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER %I', t.table_name,
                                      t.enabled_triggers[i]);
        END LOOP;
    END LOOP;

    -- one anchor per shard: the first of k1, k2, ... that hashes into it
    INSERT INTO calo_recon.shard_anchors (user_id)
    SELECT DISTINCT ON (s.shardid) 'k' || g.i
    FROM pg_catalog.pg_dist_shard s
    CROSS JOIN pg_catalog.generate_series(1, 100 * (SELECT pg_catalog.count(*)::integer
                                                     FROM pg_catalog.pg_dist_shard x
                                                     WHERE x.logicalrelid = 'calo_recon.shard_anchors'::regclass)) AS g (i)
    WHERE s.logicalrelid = 'calo_recon.shard_anchors'::regclass
      AND pg_catalog.worker_hash('k' || g.i) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer
    ORDER BY s.shardid, g.i;

    -- daily_summary counts anomalies live from now on: the transactions'
    -- note of changes is disabled, and refresh() stores no counts here
    INSERT INTO calo_recon.anomaly_input_changes (changed_table) VALUES ('distribute()');

    -- the roles granted before: their rights on the cluster (grant_role)
    PERFORM calo_recon.reapply_grants();

    RETURN QUERY
    SELECT l.table_name, l.placement,
           (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
            WHERE s.logicalrelid = l.table_name)
    FROM calo_recon.citus_layout() l;
END;
$$;
COMMENT ON FUNCTION calo_recon.distribute(integer) IS
  'On the coordinator of a Citus cluster: distributes the wallet tables by user_id in one colocation group (shard_count shards, NULL for citus.shard_count) and makes the small ones reference tables, as calo_recon.citus_layout() lists; the other tables stay on the coordinator. 0A000 without Citus; run once (README "Scaling out with Citus")';
CREATE OR REPLACE FUNCTION calo_recon.raise_alerts()
RETURNS TABLE (alert_kind text, raised bigint, resolved bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    settings record := calo_recon.ops_settings();
    paging boolean := pg_catalog.current_setting('calo_recon.alerts')::boolean;
    errors_mark bigint;
    quarantine_mark bigint;
    errors_top bigint;
    quarantine_top bigint;
    last_run calo_recon.runs;
    last_loaded timestamptz;
    ids bigint[] := '{}';
    kinds text[] := '{}';
    system_raised bigint[] := '{}';
    raised_id bigint;
    resolved_kinds text[] := '{}';
BEGIN
    -- one raiser at a time: the marks are read and moved under a row lock
    INSERT INTO calo_recon.alert_marks (source) VALUES ('balance_errors'), ('quarantine') ON CONFLICT DO NOTHING;
    SELECT m.last_id INTO errors_mark FROM calo_recon.alert_marks m WHERE m.source = 'balance_errors' FOR UPDATE;
    SELECT m.last_id INTO quarantine_mark FROM calo_recon.alert_marks m WHERE m.source = 'quarantine' FOR UPDATE;
    SELECT pg_catalog.max(e.error_id) INTO errors_top FROM calo_recon.balance_errors e;
    SELECT pg_catalog.max(q.quarantine_id) INTO quarantine_top FROM calo_recon.quarantine q;

    -- on a Citus cluster, the insert-time check of the transactions a bare
    -- INSERT or COPY stored (alert_queue, always empty on one node)
    PERFORM calo_recon.alert_queued();

    -- new discrepancies, one alert each (a user's without a transaction share
    -- one open alert)
    WITH raised AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT d.txn_id, d.user_id, 'discrepancy',
               pg_catalog.jsonb_build_object('error_id', d.error_id, 'subscription_balance', d.subscription_balance,
                                             'payment_balance', d.payment_balance, 'difference', d.difference,
                                             'tolerance', d.tolerance, 'currency', d.currency,
                                             'logged_at', d.logged_at, 'source_file', d.source_file)
        FROM calo_recon.discrepancies d
        WHERE paging AND d.error_id > errors_mark AND d.error_id <= errors_top
          AND (settings.alert_backfill_age IS NULL OR d.logged_at >= pg_catalog.now() - settings.alert_backfill_age)
        ORDER BY d.error_id
        ON CONFLICT DO NOTHING
        RETURNING alerts.alert_id, alerts.alert_kind
    )
    SELECT ids || coalesce(pg_catalog.array_agg(r.alert_id), '{}'), kinds || coalesce(pg_catalog.array_agg(r.alert_kind), '{}')
    INTO ids, kinds FROM raised r;

    -- new conflicts: one alert per transaction id, whatever the number of
    -- conflicting deliveries
    WITH raised AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT DISTINCT ON (q.txn_id) q.txn_id, t.user_id, 'conflict',
               pg_catalog.jsonb_build_object('quarantine_id', q.quarantine_id, 'source_file', q.source_file,
                                             'logged_at', q.logged_at, 'delivered', q.detail)
        FROM calo_recon.quarantine q
        LEFT JOIN calo_recon.transactions t ON t.txn_id = q.txn_id
        WHERE paging AND q.reason = 'conflict' AND q.txn_id IS NOT NULL
          AND q.quarantine_id > quarantine_mark AND q.quarantine_id <= quarantine_top
          AND (settings.alert_backfill_age IS NULL OR q.logged_at >= pg_catalog.now() - settings.alert_backfill_age)
        ORDER BY q.txn_id, q.quarantine_id
        ON CONFLICT DO NOTHING
        RETURNING alerts.alert_id, alerts.alert_kind
    )
    SELECT ids || coalesce(pg_catalog.array_agg(r.alert_id), '{}'), kinds || coalesce(pg_catalog.array_agg(r.alert_kind), '{}')
    INTO ids, kinds FROM raised r;

    UPDATE calo_recon.alert_marks m
       SET last_id = CASE m.source WHEN 'balance_errors' THEN GREATEST(errors_mark, errors_top)
                                   ELSE GREATEST(quarantine_mark, quarantine_top) END
     WHERE m.source IN ('balance_errors', 'quarantine');

    -- the last run that ended: a failure raises, a success resolves
    SELECT r.* INTO last_run FROM calo_recon.runs r
    WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1;
    IF last_run.status = 'succeeded' THEN
        WITH solved AS (
            UPDATE calo_recon.alerts a
               SET resolved_at = pg_catalog.now(),
                   resolution = pg_catalog.format('refresh() run %s succeeded', last_run.run_id)
             WHERE a.alert_kind IN ('refresh_failed', 'refresh_skipped') AND a.txn_id IS NULL AND a.resolved_at IS NULL
            RETURNING a.alert_kind
        )
        SELECT resolved_kinds || coalesce(pg_catalog.array_agg(x.alert_kind), '{}') INTO resolved_kinds FROM solved x;
    ELSIF last_run.status = 'failed' THEN
        raised_id := calo_recon.raise_system_alert(
            CASE WHEN last_run.skipped_since IS NULL THEN 'refresh_failed' ELSE 'refresh_skipped' END,
            pg_catalog.jsonb_build_object('run_id', last_run.run_id, 'error', last_run.error,
                                          'error_detail', last_run.error_detail, 'error_hint', last_run.error_hint));
        IF raised_id IS NOT NULL THEN
            system_raised := system_raised || raised_id;
        END IF;
    END IF;

    -- stale data: no file with transactions loaded for max_data_age
    IF settings.max_data_age IS NOT NULL THEN
        SELECT pg_catalog.max(f.loaded_at) INTO last_loaded FROM calo_recon.ingested_files f WHERE f.transactions > 0;
        IF last_loaded IS NULL OR pg_catalog.now() - last_loaded > settings.max_data_age THEN
            raised_id := calo_recon.raise_system_alert('stale_data',
                pg_catalog.jsonb_build_object('last_loaded_at', last_loaded, 'max_data_age', settings.max_data_age));
            IF raised_id IS NOT NULL THEN
                system_raised := system_raised || raised_id;
            END IF;
        END IF;
    END IF;
    IF settings.max_data_age IS NULL OR pg_catalog.now() - last_loaded <= settings.max_data_age THEN
        WITH solved AS (
            UPDATE calo_recon.alerts a
               SET resolved_at = pg_catalog.now(),
                   resolution = CASE WHEN settings.max_data_age IS NULL THEN 'calo_recon.max_data_age is off'
                                     ELSE pg_catalog.format('a file with transactions was loaded at %s', last_loaded) END
             WHERE a.alert_kind = 'stale_data' AND a.txn_id IS NULL AND a.resolved_at IS NULL
            RETURNING a.alert_kind
        )
        SELECT resolved_kinds || coalesce(pg_catalog.array_agg(x.alert_kind), '{}') INTO resolved_kinds FROM solved x;
    END IF;

    -- one notification for the discrepancies and conflicts (the system
    -- alerts sent their own), with the insert-time trigger's payload
    IF pg_catalog.cardinality(ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(ids, kinds));
    END IF;
    RETURN QUERY
    SELECT k.alert_kind,
           (SELECT pg_catalog.count(*) FROM unnest(ids || system_raised) AS r(alert_id)
            JOIN calo_recon.alerts a ON a.alert_id = r.alert_id WHERE a.alert_kind = k.alert_kind),
           (SELECT pg_catalog.count(*) FROM unnest(resolved_kinds) AS x(alert_kind) WHERE x.alert_kind = k.alert_kind)
    FROM calo_recon.alert_kinds k
    WHERE k.raised_by IN ('raise_alerts', 'refresh')
    ORDER BY k.alert_kind;
END;
$$;
COMMENT ON FUNCTION calo_recon.raise_alerts() IS
  'Raises the alerts no inserted transaction raises: discrepancy for each new balance error at or above the tolerance, conflict for each transaction id newly delivered with a different payload (both once, not for rows logged before now() - calo_recon.alert_backfill_age, and with calo_recon.alerts off only recorded as seen), refresh_failed or refresh_skipped when the last run that ended failed, stale_data when no file with transactions was loaded for calo_recon.max_data_age; resolves refresh alerts after a successful run and stale_data once data is fresh; on a Citus cluster, first the insert-time alerts of the transactions a bare INSERT or COPY stored (calo_recon.alert_queue). One NOTIFY calo_recon_alerts for what it raised. Returns per kind the alerts raised and resolved. refresh() calls it at the end of every run';
CREATE OR REPLACE FUNCTION calo_recon.ingest_log_unreconciled(log text, source text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_digest     bytea;
    v_source     text;
    v_events     integer := 0;
    v_txns       integer := 0;
    v_dups       integer := 0;
    v_conflicts  integer := 0;
    v_errors     integer := 0;
    v_rejections integer := 0;
    v_quarantine integer := 0;
    v_repeated   integer := 0;
    v_others     integer[];
    v_other_rows calo_recon.transactions[];
    v_valid      integer;
    -- on a Citus cluster the stored rows go to the alert check by hand
    -- (alert_distributed: the table's trigger is off there)
    v_distributed boolean := calo_recon.is_distributed();
    v_new_rows   calo_recon.transactions[];
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM calo_recon.lock_writer();

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0;
        RETURN;
    END IF;

    -- log_events is keyed by (source_file, event_no): a different content
    -- under a name already used gets the name plus its digest prefix.
    v_source := COALESCE(NULLIF(source, ''),
                         'inline:' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.file_name = v_source)
       OR EXISTS (SELECT 1 FROM calo_recon.log_events e WHERE e.source_file = v_source) THEN
        v_source := v_source || '#' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16);
    END IF;

    -- One statement stores the file: every event into log_events; the events
    -- the parser made malformed into quarantine (kind: the kind intended);
    -- the first occurrence of each transaction id, the balance errors and the
    -- rejections into their tables.  The parse is read once, never read back.
    WITH parsed AS MATERIALIZED (
        SELECT p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
               p.body, p.raw
        FROM calo_recon.parse_log(log) AS p
    ), logged AS (
        INSERT INTO calo_recon.log_events
               (source_file, event_no, logged_at, request_id, message_id, level, kind, body, raw)
        SELECT v_source, e.event_no, e.logged_at, e.request_id, e.message_id, e.level, e.kind,
               e.body, e.raw
        FROM parsed e
    ), quarantined AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, e.event_no, e.logged_at, COALESCE(e.body ->> 'intended_kind', 'malformed'),
               e.body ->> 'txn_id', e.body ->> 'reason', e.body, e.raw
        FROM parsed e
        WHERE e.kind = 'malformed'
        ORDER BY e.event_no
        RETURNING 1
    ), valid AS (
        SELECT e.event_no, e.logged_at, e.request_id, e.message_id, e.kind, e.body
        FROM parsed e
        WHERE e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection')
    ), valid_txns AS (
        -- each valid transaction event as the row it would be stored as
        SELECT v.event_no, v.body ->> 'id' AS txn_id,
               row_number() OVER (PARTITION BY v.body ->> 'id' ORDER BY v.event_no) AS occurrence,
               -- the legacy form has no type key: its txn_type is NULL
               ROW(v.body ->> 'id', v.body ->> 'userId', v.body ->> 'type',
                   v.body ->> 'source', v.body ->> 'action', v.body ->> 'currency',
                   (v.body -> 'amount')::numeric, (v.body -> 'vat')::numeric,
                   (v.body -> 'oldBalance')::numeric, (v.body -> 'newBalance')::numeric,
                   NULLIF(v.body -> 'paymentBalance', 'null'::jsonb)::numeric,
                   NULLIF(v.body -> 'updatePaymentBalance', 'null'::jsonb)::boolean,
                   NULLIF(v.body -> 'metadata', 'null'::jsonb),
                   v.logged_at, v.request_id, v.message_id, v_source)::calo_recon.transactions AS r
        FROM valid v
        WHERE v.kind = 'transaction'
    ), stored_ids AS MATERIALIZED (
        -- ids already stored, under any user: on a Citus cluster the table
        -- is distributed by user_id and its key cannot hold a txn_id alone
        -- (README "Scaling out with Citus"); ingests hold the writer lock,
        -- so no other ingest stores an id between this look-up and the insert
        SELECT t.txn_id
        FROM calo_recon.transactions t
        WHERE t.txn_id = ANY (ARRAY(SELECT f.txn_id FROM valid_txns f WHERE f.occurrence = 1))
    ), new_txns AS (
        -- first valid occurrence of each id, in id order (stable lock order)
        INSERT INTO calo_recon.transactions
        SELECT (f.r).*
        FROM valid_txns f
        WHERE f.occurrence = 1
          AND f.txn_id NOT IN (SELECT s.txn_id FROM stored_ids s)
        ORDER BY f.txn_id
        -- a concurrent COPY or INSERT (not under the writer lock) of the same
        -- id: the key of the table, on one node or on the cluster
        ON CONFLICT DO NOTHING
        RETURNING *
    ), new_errors AS (
        INSERT INTO calo_recon.balance_errors
               (user_id, subscription_balance, payment_balance, logged_at, request_id,
                message_id, txn_id, source_file)
        SELECT v.body ->> 'userId', (v.body -> 'subscriptionBalance')::numeric,
               (v.body -> 'paymentBalance')::numeric, v.logged_at, v.request_id,
               v.message_id, v.body ->> 'txn_id', v_source
        FROM valid v
        WHERE v.kind = 'balance_error'
        ORDER BY 1, 4, 5
        -- only the event key: a clash of error_id must fail, not vanish
        ON CONFLICT (user_id, logged_at, request_id, message_id, subscription_balance, payment_balance)
            DO NOTHING
        RETURNING user_id
    ), new_rejections AS (
        INSERT INTO calo_recon.negative_balance_rejections
               (txn_id, user_id, current_balance, logged_at, request_id, source_file)
        SELECT v.body ->> 'transactionId', v.body ->> 'userId',
               (v.body -> 'currentBalance')::numeric, v.logged_at, v.request_id, v_source
        FROM valid v
        WHERE v.kind = 'negative_balance_rejection'
        ORDER BY 2, 4, 5
        ON CONFLICT (user_id, logged_at, request_id, txn_id, current_balance) DO NOTHING
        RETURNING user_id
    ), others AS (
        SELECT o.event_no, o.r
        FROM valid_txns o
        WHERE o.occurrence > 1 OR o.txn_id NOT IN (SELECT t.txn_id FROM new_txns t)
    )
    SELECT (SELECT count(*) FROM parsed)::integer,
           (SELECT count(*) FROM quarantined)::integer,
           (SELECT count(*) FROM new_txns)::integer,
           (SELECT count(*) FROM new_errors)::integer,
           (SELECT count(*) FROM new_rejections)::integer,
           (SELECT count(*) FROM valid v WHERE v.kind <> 'transaction')::integer,
           -- every other valid occurrence is compared with the stored row below
           (SELECT array_agg(o.event_no ORDER BY o.event_no) FROM others o),
           (SELECT array_agg(o.r ORDER BY o.event_no) FROM others o),
           CASE WHEN v_distributed
                THEN (SELECT array_agg(ROW(n.*)::calo_recon.transactions ORDER BY n.txn_id) FROM new_txns n) END
    INTO v_events, v_quarantine, v_txns, v_errors, v_rejections, v_valid, v_others,
         v_other_rows, v_new_rows;
    IF v_new_rows IS NOT NULL THEN
        PERFORM calo_recon.alert_distributed(v_new_rows);
        -- checked: not again by raise_alerts() (the shards queued them)
        DELETE FROM calo_recon.alert_queue q
        WHERE (q.user_id, q.txn_id) IN (SELECT r.user_id, r.txn_id FROM unnest(v_new_rows) r);
    END IF;
    -- errors and rejections already stored from an overlapping export
    v_repeated := v_valid - v_errors - v_rejections;

    -- The other valid occurrences meet a stored row: same payload is a
    -- duplicate delivery, a different one a conflict (the stored row stays).
    IF v_others IS NOT NULL THEN
        WITH others AS (
            SELECT n.event_no, o.*
            FROM unnest(v_other_rows) WITH ORDINALITY AS o
            JOIN unnest(v_others) WITH ORDINALITY AS n (event_no, ordinality)
              ON n.ordinality = o.ordinality
        ), stored_rows AS MATERIALIZED (
            -- the stored rows of these ids, by id alone (one look-up, which a
            -- Citus cluster runs on every shard)
            SELECT t.*
            FROM calo_recon.transactions t
            WHERE t.txn_id = ANY (ARRAY(SELECT o.txn_id FROM others o))
        ), compared AS (
            SELECT o.event_no, o.logged_at, o.txn_id,
                   to_jsonb(t) AS stored,
                   jsonb_build_object(
                       'txn_id', o.txn_id, 'user_id', o.user_id, 'txn_type', o.txn_type,
                       'source', o.source, 'action', o.action, 'currency', o.currency,
                       'amount', o.amount, 'vat', o.vat, 'old_balance', o.old_balance,
                       'new_balance', o.new_balance, 'payment_balance', o.payment_balance,
                       'update_payment_balance', o.update_payment_balance,
                       'metadata', o.metadata) AS incoming,
                   t.txn_id IS NOT NULL
                     AND ROW(o.user_id, o.txn_type, o.source, o.action, o.currency,
                             o.amount, o.vat, o.old_balance, o.new_balance,
                             o.payment_balance, o.update_payment_balance, o.metadata)
                         IS NOT DISTINCT FROM
                         ROW(t.user_id, t.txn_type, t.source, t.action, t.currency,
                             t.amount, t.vat, t.old_balance, t.new_balance,
                             t.payment_balance, t.update_payment_balance, t.metadata) AS same
            FROM others o
            LEFT JOIN stored_rows t ON t.txn_id = o.txn_id
        ), conflicted AS (
            INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
            SELECT v_source, c.event_no, c.logged_at, 'transaction', c.txn_id, 'conflict',
                   jsonb_build_object('stored', c.stored, 'incoming', c.incoming), e.raw
            FROM compared c
            JOIN calo_recon.log_events e ON e.source_file = v_source AND e.event_no = c.event_no
            WHERE NOT c.same
            ORDER BY c.event_no
            RETURNING 1
        )
        SELECT count(*) FILTER (WHERE c.same)::integer,
               count(*) FILTER (WHERE NOT c.same)::integer
        INTO v_dups, v_conflicts
        FROM compared c;
        v_quarantine := v_quarantine + v_conflicts;
    END IF;

    INSERT INTO calo_recon.ingested_files
           (digest, file_name, bytes, events, transactions, duplicates, conflicts,
            balance_errors, rejections, quarantined, repeated)
    VALUES (v_digest, v_source, pg_catalog.octet_length(log), v_events, v_txns, v_dups,
            v_conflicts, v_errors, v_rejections, v_quarantine, v_repeated);

    RETURN QUERY
    SELECT v_events, v_txns, v_dups, v_conflicts, v_errors, v_rejections, v_quarantine,
           v_repeated;
END;
$fn$;
COMMENT ON FUNCTION calo_recon.ingest_log_unreconciled(text, text) IS
  'Internal to ingest_log and ingest_file: ingest_log without the final reconcile (the users of new transactions are queued in pending_reconcile)';
CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views and the amount thresholds, EXECUTE on the functions the views compute the queued users'' report totals with), monitor (schema USAGE, the health view, the amount thresholds and check_health(); no wallet data), analyst (reader + reading models, scores and feedback, recording feedback, setting the amount rule''s thresholds; no other write right on any table) or operator (reader + reading every table; refresh, ingestion, reconciliation, training, scoring, exports, alerts and retention through the SECURITY DEFINER entry points of calo_recon.definer_entry_points, with no write right on the record and no server-file role needed; currencies and the active model; feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights';
-- raise_alerts() replaced is an entry point again (SECURITY DEFINER, hardened)
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of calerts (issue 13)

-- session 8 (issue 13): on a Citus cluster the override of a built-in
-- currency stays on (its trigger changes only the placement it fires on),
-- and distribute() warns when the coordinator does not preload calo_recon,
-- whose hooks check a client's bare INSERT or COPY at the statement's end
CREATE OR REPLACE FUNCTION calo_recon.currencies_override_builtin() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE pg_catalog.format('DELETE FROM %I.%I WHERE code = $1 AND builtin', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        USING NEW.code;
    ELSIF NEW.builtin AND OLD.builtin THEN
        NEW.builtin := false;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[], enabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed', '{transactions_alert,transactions_anomaly_input}'::name[],
            '{transactions_alert_queue}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}', '{}'),
           ('calo_recon.alert_queue', 'distributed', '{}', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}', '{}'),
           -- the scores beside their transactions, written per shard group
           -- by score_placement(); daily_summary counts live on a cluster
           ('calo_recon.transaction_scores', 'distributed', '{transaction_scores_anomaly_input}', '{}'),
           -- its override trigger replaces the built-in row on each placement
           ('calo_recon.currencies', 'reference', '{}', '{}')
$$;

CREATE OR REPLACE FUNCTION calo_recon.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name regclass, placement text, shards integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    key_columns text;
    key_name name;
    preloaded boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'calo_recon.distribute: Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On the coordinator, with shared_preload_libraries = ''citus'' on every node: CREATE EXTENSION citus; add the workers (citus_add_node); then call distribute().';
    END IF;
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'calo_recon.distribute: shard_count % is out of range', shard_count
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give 1 to 64000 shards, or NULL for citus.shard_count.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
               WHERE p.logicalrelid = 'calo_recon.transactions'::regclass) THEN
        RAISE EXCEPTION 'calo_recon.distribute: calo_recon.transactions is already distributed'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- no ingest, reconcile or refresh while the tables move
    PERFORM calo_recon.lock_writer();
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    -- transactions first: the others are colocated with it
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l
             ORDER BY l.table_name <> 'calo_recon.transactions'::regclass LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.disabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER %I', t.table_name,
                                      t.disabled_triggers[i]);
        END LOOP;
        IF t.placement = 'reference' THEN
            PERFORM pg_catalog.create_reference_table(t.table_name);
            -- the rows were copied to the shards; the shell keeps none
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
            CONTINUE;
        END IF;
        -- a unique key of a distributed table holds the distribution column:
        -- the primary key gets user_id in front (ids stay unique: on one node
        -- they are unique alone, and the ingest keeps a txn_id from being
        -- stored under a second user, see ingest_log_unreconciled)
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
        INTO key_columns
        FROM pg_catalog.pg_constraint c
        CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = t.table_name AND c.contype = 'p';
        IF key_columns IS NOT NULL AND key_columns NOT LIKE 'user_id%' THEN
            SELECT c.conname INTO key_name FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = t.table_name AND c.contype = 'p';
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (user_id, %s)',
                                      t.table_name, key_name, key_name, key_columns);
        END IF;
        IF t.table_name = 'calo_recon.transactions'::regclass THEN
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id', 'hash',
                                                        colocate_with := 'none',
                                                        shard_count := shard_count);
        ELSE
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id',
                                                        colocate_with := 'calo_recon.transactions');
        END IF;
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;

    -- the cluster's own triggers once every table has moved: the rows
    -- copied into the shards were checked on one node
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.enabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER %I', t.table_name,
                                      t.enabled_triggers[i]);
        END LOOP;
    END LOOP;

    -- one anchor per shard: the first of k1, k2, ... that hashes into it
    INSERT INTO calo_recon.shard_anchors (user_id)
    SELECT DISTINCT ON (s.shardid) 'k' || g.i
    FROM pg_catalog.pg_dist_shard s
    CROSS JOIN pg_catalog.generate_series(1, 100 * (SELECT pg_catalog.count(*)::integer
                                                     FROM pg_catalog.pg_dist_shard x
                                                     WHERE x.logicalrelid = 'calo_recon.shard_anchors'::regclass)) AS g (i)
    WHERE s.logicalrelid = 'calo_recon.shard_anchors'::regclass
      AND pg_catalog.worker_hash('k' || g.i) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer
    ORDER BY s.shardid, g.i;

    -- a client's bare INSERT or COPY into transactions is alerted at the end
    -- of its statement only by a coordinator that loads calo_recon from the
    -- start (src/glue/cluster_alert_hook_glue.c)
    BEGIN
        preloaded := pg_catalog.concat_ws(',', pg_catalog.current_setting('shared_preload_libraries'),
                                          pg_catalog.current_setting('session_preload_libraries'))
                     ~ '(^|[\s,"])calo_recon([\s,"]|$)';
    EXCEPTION WHEN insufficient_privilege THEN
        preloaded := NULL;  -- not readable without pg_read_all_settings: no claim
    END;
    IF NOT preloaded THEN
        RAISE WARNING 'calo_recon.distribute: calo_recon is not preloaded on this coordinator'
            USING DETAIL = 'A bare INSERT or COPY into calo_recon.transactions will be alerted at the next raise_alerts() (refresh()), not at insert time.',
                  HINT = 'Set shared_preload_libraries = ''citus,calo_recon'' on the coordinator and restart it.';
    END IF;

    -- daily_summary counts anomalies live from now on: the transactions'
    -- note of changes is disabled, and refresh() stores no counts here
    INSERT INTO calo_recon.anomaly_input_changes (changed_table) VALUES ('distribute()');

    -- the roles granted before: their rights on the cluster (grant_role)
    PERFORM calo_recon.reapply_grants();

    RETURN QUERY
    SELECT l.table_name, l.placement,
           (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
            WHERE s.logicalrelid = l.table_name)
    FROM calo_recon.citus_layout() l;
END;
$$;
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of session 8 cluster

-- session 8 (issue 13): the health view's counts of the tables a Citus
-- cluster distributes (and every table's size) come from health_figures(),
-- a SECURITY DEFINER entry point: Citus reads shards with the caller's
-- rights, and a monitor has none on the wallet tables.  New column
-- alert_checks_queued.
CREATE FUNCTION calo_recon.health_figures(OUT users_pending_reconcile bigint, OUT alert_checks_queued bigint,
                                          OUT table_bytes jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sharded regclass[] := '{}';
    sizes jsonb := '{}';
BEGIN
    SELECT pg_catalog.count(DISTINCT p.user_id) INTO users_pending_reconcile FROM calo_recon.pending_reconcile p;
    SELECT pg_catalog.count(*) INTO alert_checks_queued FROM calo_recon.alert_queue q;
    IF calo_recon.is_distributed() THEN
        SELECT pg_catalog.array_agg(l.table_name) INTO sharded FROM calo_recon.citus_layout() l;
        -- a Citus function: named only where Citus is installed
        EXECUTE 'SELECT pg_catalog.jsonb_object_agg(c.relname, pg_catalog.citus_total_relation_size(c.oid))
                 FROM pg_catalog.pg_class c WHERE c.oid = ANY ($1)'
        INTO sizes USING sharded;
    END IF;
    SELECT pg_catalog.jsonb_object_agg(c.relname, coalesce(sizes -> c.relname::text,
                                                           pg_catalog.to_jsonb(pg_catalog.pg_total_relation_size(c.oid)))
                                       ORDER BY c.relname)
    INTO table_bytes
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'calo_recon'::pg_catalog.regnamespace AND c.relkind = 'r';
END;
$$;
COMMENT ON FUNCTION calo_recon.health_figures() IS
  'Internal to the health view: the users queued for reconciliation, the transactions queued for their alert check on a Citus cluster, and each table''s size (on a cluster, its shards'' for the distributed and reference tables), read as the owner so that a monitor needs no right on the wallet tables';
CREATE OR REPLACE VIEW calo_recon.health AS
WITH figures AS (
    SELECT f.* FROM calo_recon.health_figures() f
), last_run AS (
    SELECT r.* FROM calo_recon.runs r ORDER BY r.run_id DESC LIMIT 1
), last_success AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1
), last_ended AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1
), last_failure AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'failed' ORDER BY r.run_id DESC LIMIT 1
)
SELECT pg_catalog.now() AS checked_at,
       (SELECT s.finished_at FROM last_success s) AS last_success_at,
       pg_catalog.now() - (SELECT s.finished_at FROM last_success s) AS last_success_age,
       (SELECT r.run_id FROM last_run r) AS last_run_id,
       (SELECT r.status FROM last_run r) AS last_run_status,
       (SELECT e.status = 'failed' FROM last_ended e) AS last_ended_run_failed,
       (SELECT r.skipped_since FROM last_run r WHERE r.skipped_since IS NOT NULL) AS skipping_since,
       (SELECT f.run_id FROM last_failure f) AS last_error_run_id,
       (SELECT f.finished_at FROM last_failure f) AS last_error_at,
       (SELECT f.error FROM last_failure f) AS last_error,
       (SELECT f.error_detail FROM last_failure f) AS last_error_detail,
       (SELECT f.error_hint FROM last_failure f) AS last_error_hint,
       (SELECT pg_catalog.max(f.loaded_at) FROM calo_recon.ingested_files f WHERE f.transactions > 0) AS last_data_loaded_at,
       (SELECT pg_catalog.count(*) FROM calo_recon.runs r WHERE r.status = 'running') AS runs_running,
       (SELECT f.users_pending_reconcile FROM figures f) AS users_pending_reconcile,
       (SELECT pg_catalog.jsonb_object_agg(q.reason, q.n ORDER BY q.reason)
        FROM (SELECT x.reason, pg_catalog.count(*) AS n FROM calo_recon.quarantine x GROUP BY x.reason) q) AS quarantine_by_reason,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'open'
              GROUP BY k.severity) s) AS open_alerts,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'acknowledged'
              GROUP BY k.severity) s) AS acknowledged_alerts,
       (SELECT f.table_bytes FROM figures f) AS table_bytes,
       (SELECT f.alert_checks_queued FROM figures f) AS alert_checks_queued;
COMMENT ON COLUMN calo_recon.health.table_bytes IS 'Size on disk of each calo_recon table, indexes and TOAST included, as a JSON object (on a Citus cluster, of all its shards for the distributed and reference tables)';
COMMENT ON COLUMN calo_recon.health.alert_checks_queued IS 'On a Citus cluster: transactions stored where no insert-time alert check ran (sent to a worker, or the coordinator without calo_recon preloaded), waiting for the next raise_alerts(); always 0 on one node. One that stays above 0 means raise_alerts() (refresh()) is not running';
INSERT INTO calo_recon.definer_entry_points (routine_name, writes) VALUES
  ('health_figures',     'nothing: reads, for the health view, the queues in the tables a Citus cluster distributes and the tables'' sizes'),
  ('alert_queued',       'alerts: the insert-time check of the transactions queued on a Citus cluster, and their entries of alert_queue');
CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION calo_recon.alert_queued() IS
  'On a Citus cluster: the insert-time alert check (alert_distributed()) of the transactions queued in alert_queue by a bare INSERT or COPY, and the entries it read deleted; run by raise_alerts() and, on a coordinator that preloads calo_recon, at the end of each client statement that inserted into transactions. Returns how many transactions it checked (0 on one node)';
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of session 8 health

-- session 8 (issue 13): distribute() keeps an index on txn_id alone in the
-- shards of transactions, which the ingest's look-up of stored ids needs
CREATE OR REPLACE FUNCTION calo_recon.distribute(shard_count integer DEFAULT NULL)
RETURNS TABLE (table_name regclass, placement text, shards integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    key_columns text;
    key_name name;
    preloaded boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus') THEN
        RAISE EXCEPTION 'calo_recon.distribute: Citus is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On the coordinator, with shared_preload_libraries = ''citus'' on every node: CREATE EXTENSION citus; add the workers (citus_add_node); then call distribute().';
    END IF;
    IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'calo_recon.distribute: shard_count % is out of range', shard_count
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give 1 to 64000 shards, or NULL for citus.shard_count.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
               WHERE p.logicalrelid = 'calo_recon.transactions'::regclass) THEN
        RAISE EXCEPTION 'calo_recon.distribute: calo_recon.transactions is already distributed'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- no ingest, reconcile or refresh while the tables move
    PERFORM calo_recon.lock_writer();
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

    -- transactions first: the others are colocated with it
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l
             ORDER BY l.table_name <> 'calo_recon.transactions'::regclass LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.disabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER %I', t.table_name,
                                      t.disabled_triggers[i]);
        END LOOP;
        IF t.placement = 'reference' THEN
            PERFORM pg_catalog.create_reference_table(t.table_name);
            -- the rows were copied to the shards; the shell keeps none
            PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
            CONTINUE;
        END IF;
        -- a unique key of a distributed table holds the distribution column:
        -- the primary key gets user_id in front (ids stay unique: on one node
        -- they are unique alone, and the ingest keeps a txn_id from being
        -- stored under a second user, see ingest_log_unreconciled)
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
        INTO key_columns
        FROM pg_catalog.pg_constraint c
        CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.conrelid = t.table_name AND c.contype = 'p';
        IF key_columns IS NOT NULL AND key_columns NOT LIKE 'user_id%' THEN
            SELECT c.conname INTO key_name FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = t.table_name AND c.contype = 'p';
            EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (user_id, %s)',
                                      t.table_name, key_name, key_name, key_columns);
        END IF;
        IF t.table_name = 'calo_recon.transactions'::regclass THEN
            -- the ingest looks stored ids up by id alone, on every shard
            -- (stored_ids, the stored rows of repeated ids): without the
            -- key on txn_id alone each file's look-up would read every shard
            CREATE INDEX transactions_txn_id_idx ON calo_recon.transactions (txn_id);
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id', 'hash',
                                                        colocate_with := 'none',
                                                        shard_count := shard_count);
        ELSE
            PERFORM pg_catalog.create_distributed_table(t.table_name, 'user_id',
                                                        colocate_with := 'calo_recon.transactions');
        END IF;
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END LOOP;

    -- the cluster's own triggers once every table has moved: the rows
    -- copied into the shards were checked on one node
    FOR t IN SELECT l.* FROM calo_recon.citus_layout() l LOOP
        FOR i IN 1 .. coalesce(pg_catalog.array_length(t.enabled_triggers, 1), 0) LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER %I', t.table_name,
                                      t.enabled_triggers[i]);
        END LOOP;
    END LOOP;

    -- one anchor per shard: the first of k1, k2, ... that hashes into it
    INSERT INTO calo_recon.shard_anchors (user_id)
    SELECT DISTINCT ON (s.shardid) 'k' || g.i
    FROM pg_catalog.pg_dist_shard s
    CROSS JOIN pg_catalog.generate_series(1, 100 * (SELECT pg_catalog.count(*)::integer
                                                     FROM pg_catalog.pg_dist_shard x
                                                     WHERE x.logicalrelid = 'calo_recon.shard_anchors'::regclass)) AS g (i)
    WHERE s.logicalrelid = 'calo_recon.shard_anchors'::regclass
      AND pg_catalog.worker_hash('k' || g.i) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer
    ORDER BY s.shardid, g.i;

    -- a client's bare INSERT or COPY into transactions is alerted at the end
    -- of its statement only by a coordinator that loads calo_recon from the
    -- start (src/glue/cluster_alert_hook_glue.c)
    BEGIN
        preloaded := pg_catalog.concat_ws(',', pg_catalog.current_setting('shared_preload_libraries'),
                                          pg_catalog.current_setting('session_preload_libraries'))
                     ~ '(^|[\s,"])calo_recon([\s,"]|$)';
    EXCEPTION WHEN insufficient_privilege THEN
        preloaded := NULL;  -- not readable without pg_read_all_settings: no claim
    END;
    IF NOT preloaded THEN
        RAISE WARNING 'calo_recon.distribute: calo_recon is not preloaded on this coordinator'
            USING DETAIL = 'A bare INSERT or COPY into calo_recon.transactions will be alerted at the next raise_alerts() (refresh()), not at insert time.',
                  HINT = 'Set shared_preload_libraries = ''citus,calo_recon'' on the coordinator and restart it.';
    END IF;

    -- daily_summary counts anomalies live from now on: the transactions'
    -- note of changes is disabled, and refresh() stores no counts here
    INSERT INTO calo_recon.anomaly_input_changes (changed_table) VALUES ('distribute()');

    -- the roles granted before: their rights on the cluster (grant_role)
    PERFORM calo_recon.reapply_grants();

    RETURN QUERY
    SELECT l.table_name, l.placement,
           (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_dist_shard s
            WHERE s.logicalrelid = l.table_name)
    FROM calo_recon.citus_layout() l;
END;
$$;
-- end of session 8 id index

-- session 8: each file's statement of the ingest is planned for that file; a
-- plan cached while transactions was small (never analyzed inside one long
-- ingest_file) read the table whole once per file
ALTER FUNCTION calo_recon.ingest_log_unreconciled(text, text) SET plan_cache_mode = force_custom_plan;
-- end of session 8 ingest plans

-- session 8: the insert-time alert check plans each statement for its
-- call, as the ingest does: it runs once per ingested file, over a table
-- that grows (and is never analyzed) inside one ingest_file
ALTER FUNCTION calo_recon.alert_new_transactions() SET plan_cache_mode = force_custom_plan;
-- end of session 8 alert plans


-- session 9 (issue 8): ingest_file checks the alerts of the rows it stores
-- once at the end of the call (alert_queued()), not once per file: inside
-- it the alert trigger queues the new rows (alert_check_deferred), and on a
-- cluster the ingest leaves them to the shards' queue trigger.  OR REPLACE
-- keeps the grants the functions were given.
CREATE FUNCTION calo_recon.alert_check_deferred() RETURNS boolean
LANGUAGE c VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'calo_recon_alert_check_deferred';
COMMENT ON FUNCTION calo_recon.alert_check_deferred() IS
  'Internal to the alert trigger: true while ingest_file stores files, whose rows the trigger queues in alert_queue for one check at the end of the call';
REVOKE ALL ON FUNCTION calo_recon.alert_check_deferred() FROM PUBLIC;

CREATE OR REPLACE FUNCTION calo_recon.alert_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    users text[];
    first_new timestamptz[];
    new_ids text[];
    -- the new rows logged since backfill_before, and the walk's rows before it
    fresh_ids text[];
    -- the new rows the amount rule is asked about: only a row above the
    -- lowest threshold can be above its own (a million-row COPY probed
    -- amount_rule_hits a million times by primary key)
    rule_ids text[];
    lowest_threshold numeric;
    stale_ids text[];
    model record;
    model_users text[];
    -- rows logged before it raise no alert (a backfill of history)
    backfill_before timestamptz;
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
    IF calo_recon.alert_check_deferred() THEN
        INSERT INTO calo_recon.alert_queue (user_id, txn_id)
        SELECT n.user_id, n.txn_id FROM new_rows n;
        RETURN NULL;
    END IF;
    -- read only by a check that runs: a deferred one (each file of
    -- ingest_file) stops above
    lowest_threshold := (SELECT pg_catalog.min(a.threshold) FROM calo_recon.amount_thresholds a);
    backfill_before := pg_catalog.now() - (calo_recon.ops_settings()).alert_backfill_age;

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
    SELECT pg_catalog.array_agg(n.txn_id),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE backfill_before IS NULL OR n.logged_at >= backfill_before),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE (backfill_before IS NULL OR n.logged_at >= backfill_before)
                                                  AND n.amount > lowest_threshold)
    INTO new_ids, fresh_ids, rule_ids FROM new_rows n;
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
        WHERE (w.is_new AND (calo_recon.is_break(w.finding) OR w.finding = 'overdraft'))
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

    -- the walk's rows logged before backfill_before raise no alert: looked
    -- up by id (not correlated per row: a Citus cluster cannot run that)
    IF backfill_before IS NOT NULL THEN
        SELECT pg_catalog.array_agg(t.txn_id) INTO stale_ids
        FROM calo_recon.transactions t
        WHERE t.txn_id IN (SELECT pg_catalog.unnest(found_txns)) AND t.logged_at < backfill_before;
    END IF;

    -- the new alerts and the amount rule
    WITH found AS (
        SELECT f.txn_id, f.user_id, f.alert_kind, f.detail, f.ord
        FROM unnest(found_txns, found_users, found_kinds, found_details, found_ranks)  -- multi-argument form: unqualified
             AS f(txn_id, user_id, alert_kind, detail, ord)
        UNION ALL
        SELECT h.txn_id, h.user_id, 'amount_rule',
               pg_catalog.jsonb_build_object('amount', h.amount, 'threshold', h.threshold,
                                             'currency', h.currency),
               NULL::integer  -- after the walk's findings
        FROM calo_recon.amount_rule_hits h
        -- the ids, not a join to new_rows: Citus cannot read a transition
        -- table in a query over a distributed table (README "Scaling out
        -- with Citus"); IN (unnest), not = ANY: a hashed semi-join for a
        -- bulk insert's many ids.  The view decides; it is asked only about
        -- rule_ids
        WHERE h.txn_id IN (SELECT pg_catalog.unnest(rule_ids))
    ), stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT found.txn_id, found.user_id, found.alert_kind, found.detail
        FROM found
        WHERE found.txn_id NOT IN (SELECT pg_catalog.unnest(stale_ids))
        ORDER BY found.txn_id, found.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
           raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
    INTO raised_ids, raised_kinds FROM stored;

    -- each active model, through the scoring path of score_transactions()
    -- (calo_recon.model_scores: only the users of the new rows are read and
    -- walked, and only the new rows scored), alerts the new rows that
    -- calo_recon.transaction_models gives it (no model part in partial builds)
    IF pg_catalog.to_regclass('calo_recon.models') IS NOT NULL THEN
        FOR model IN SELECT m.* FROM calo_recon.models m WHERE m.active ORDER BY m.model_id LOOP
            CONTINUE WHEN model.features IS DISTINCT FROM calo_recon.transaction_feature_names();
            SELECT pg_catalog.array_agg(DISTINCT tm.user_id) INTO model_users
            FROM calo_recon.transaction_models tm
            WHERE tm.txn_id IN (SELECT pg_catalog.unnest(new_ids)) AND tm.model_id = model.model_id;
            CONTINUE WHEN model_users IS NULL;
            WITH stored AS (
                INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
                SELECT s.txn_id, s.user_id, 'model',
                       pg_catalog.jsonb_build_object('score', s.score, 'threshold', model.threshold,
                                                     'model_id', model.model_id, 'model_name', model.model_name)
                FROM calo_recon.model_scores(model.model_id, model_users, coalesce(fresh_ids, '{}')) s
                JOIN calo_recon.transaction_models tm ON tm.txn_id = s.txn_id AND tm.model_id = model.model_id
                WHERE s.flagged AND s.txn_id IN (SELECT pg_catalog.unnest(fresh_ids))
                ORDER BY s.txn_id
                ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
                RETURNING alert_id, alert_kind
            )
            SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
                   raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
            INTO raised_ids, raised_kinds FROM stored;
        END LOOP;
    END IF;

    -- one notification for the statement, with the count (the alert ids
    -- keep NOTIFY from folding two statements' equal payloads)
    IF pg_catalog.cardinality(raised_ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(raised_ids, raised_kinds));
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION calo_recon.ingest_log_unreconciled(log text, source text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- planned for each file: a plan cached while the table was small (never
-- analyzed inside one long ingest_file) kept reading it whole for the
-- stored ids, once per file
SET plan_cache_mode = force_custom_plan
AS $fn$
#variable_conflict use_column
DECLARE
    v_digest     bytea;
    v_source     text;
    v_events     integer := 0;
    v_txns       integer := 0;
    v_dups       integer := 0;
    v_conflicts  integer := 0;
    v_errors     integer := 0;
    v_rejections integer := 0;
    v_quarantine integer := 0;
    v_repeated   integer := 0;
    v_others     integer[];
    v_other_rows calo_recon.transactions[];
    v_valid      integer;
    -- on a Citus cluster the stored rows go to the alert check by hand
    -- (alert_distributed: the table's trigger is off there), unless
    -- ingest_file checks them at its end (alert_check_deferred: the shards'
    -- trigger has queued them)
    v_distributed boolean := calo_recon.is_distributed() AND NOT calo_recon.alert_check_deferred();
    v_new_rows   calo_recon.transactions[];
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM calo_recon.lock_writer();

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0;
        RETURN;
    END IF;

    -- log_events is keyed by (source_file, event_no): a different content
    -- under a name already used gets the name plus its digest prefix.
    v_source := COALESCE(NULLIF(source, ''),
                         'inline:' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.file_name = v_source)
       OR EXISTS (SELECT 1 FROM calo_recon.log_events e WHERE e.source_file = v_source) THEN
        v_source := v_source || '#' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16);
    END IF;

    -- One statement stores the file: every event into log_events; the events
    -- the parser made malformed into quarantine (kind: the kind intended);
    -- the first occurrence of each transaction id, the balance errors and the
    -- rejections into their tables.  The parse is read once, never read back.
    WITH parsed AS MATERIALIZED (
        SELECT p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
               p.body, p.raw
        FROM calo_recon.parse_log(log) AS p
    ), logged AS (
        INSERT INTO calo_recon.log_events
               (source_file, event_no, logged_at, request_id, message_id, level, kind, body, raw)
        SELECT v_source, e.event_no, e.logged_at, e.request_id, e.message_id, e.level, e.kind,
               e.body, e.raw
        FROM parsed e
    ), quarantined AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, e.event_no, e.logged_at, COALESCE(e.body ->> 'intended_kind', 'malformed'),
               e.body ->> 'txn_id', e.body ->> 'reason', e.body, e.raw
        FROM parsed e
        WHERE e.kind = 'malformed'
        ORDER BY e.event_no
        RETURNING 1
    ), valid AS (
        SELECT e.event_no, e.logged_at, e.request_id, e.message_id, e.kind, e.body
        FROM parsed e
        WHERE e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection')
    ), valid_txns AS (
        -- each valid transaction event as the row it would be stored as
        SELECT v.event_no, v.body ->> 'id' AS txn_id,
               row_number() OVER (PARTITION BY v.body ->> 'id' ORDER BY v.event_no) AS occurrence,
               -- the legacy form has no type key: its txn_type is NULL
               ROW(v.body ->> 'id', v.body ->> 'userId', v.body ->> 'type',
                   v.body ->> 'source', v.body ->> 'action', v.body ->> 'currency',
                   (v.body -> 'amount')::numeric, (v.body -> 'vat')::numeric,
                   (v.body -> 'oldBalance')::numeric, (v.body -> 'newBalance')::numeric,
                   NULLIF(v.body -> 'paymentBalance', 'null'::jsonb)::numeric,
                   NULLIF(v.body -> 'updatePaymentBalance', 'null'::jsonb)::boolean,
                   NULLIF(v.body -> 'metadata', 'null'::jsonb),
                   v.logged_at, v.request_id, v.message_id, v_source)::calo_recon.transactions AS r
        FROM valid v
        WHERE v.kind = 'transaction'
    ), stored_ids AS MATERIALIZED (
        -- ids already stored, under any user: on a Citus cluster the table
        -- is distributed by user_id and its key cannot hold a txn_id alone
        -- (README "Scaling out with Citus"); ingests hold the writer lock,
        -- so no other ingest stores an id between this look-up and the insert
        SELECT t.txn_id
        FROM calo_recon.transactions t
        WHERE t.txn_id = ANY (ARRAY(SELECT f.txn_id FROM valid_txns f WHERE f.occurrence = 1))
    ), new_txns AS (
        -- first valid occurrence of each id, in id order (stable lock order)
        INSERT INTO calo_recon.transactions
        SELECT (f.r).*
        FROM valid_txns f
        WHERE f.occurrence = 1
          AND f.txn_id NOT IN (SELECT s.txn_id FROM stored_ids s)
        ORDER BY f.txn_id
        -- a concurrent COPY or INSERT (not under the writer lock) of the same
        -- id: the key of the table, on one node or on the cluster
        ON CONFLICT DO NOTHING
        RETURNING *
    ), new_errors AS (
        INSERT INTO calo_recon.balance_errors
               (user_id, subscription_balance, payment_balance, logged_at, request_id,
                message_id, txn_id, source_file)
        SELECT v.body ->> 'userId', (v.body -> 'subscriptionBalance')::numeric,
               (v.body -> 'paymentBalance')::numeric, v.logged_at, v.request_id,
               v.message_id, v.body ->> 'txn_id', v_source
        FROM valid v
        WHERE v.kind = 'balance_error'
        ORDER BY 1, 4, 5
        -- only the event key: a clash of error_id must fail, not vanish
        ON CONFLICT (user_id, logged_at, request_id, message_id, subscription_balance, payment_balance)
            DO NOTHING
        RETURNING user_id
    ), new_rejections AS (
        INSERT INTO calo_recon.negative_balance_rejections
               (txn_id, user_id, current_balance, logged_at, request_id, source_file)
        SELECT v.body ->> 'transactionId', v.body ->> 'userId',
               (v.body -> 'currentBalance')::numeric, v.logged_at, v.request_id, v_source
        FROM valid v
        WHERE v.kind = 'negative_balance_rejection'
        ORDER BY 2, 4, 5
        ON CONFLICT (user_id, logged_at, request_id, txn_id, current_balance) DO NOTHING
        RETURNING user_id
    ), others AS (
        SELECT o.event_no, o.r
        FROM valid_txns o
        WHERE o.occurrence > 1 OR o.txn_id NOT IN (SELECT t.txn_id FROM new_txns t)
    )
    SELECT (SELECT count(*) FROM parsed)::integer,
           (SELECT count(*) FROM quarantined)::integer,
           (SELECT count(*) FROM new_txns)::integer,
           (SELECT count(*) FROM new_errors)::integer,
           (SELECT count(*) FROM new_rejections)::integer,
           (SELECT count(*) FROM valid v WHERE v.kind <> 'transaction')::integer,
           -- every other valid occurrence is compared with the stored row below
           (SELECT array_agg(o.event_no ORDER BY o.event_no) FROM others o),
           (SELECT array_agg(o.r ORDER BY o.event_no) FROM others o),
           CASE WHEN v_distributed
                THEN (SELECT array_agg(ROW(n.*)::calo_recon.transactions ORDER BY n.txn_id) FROM new_txns n) END
    INTO v_events, v_quarantine, v_txns, v_errors, v_rejections, v_valid, v_others,
         v_other_rows, v_new_rows;
    IF v_new_rows IS NOT NULL THEN
        PERFORM calo_recon.alert_distributed(v_new_rows);
        -- checked: not again by raise_alerts() (the shards queued them)
        DELETE FROM calo_recon.alert_queue q
        WHERE (q.user_id, q.txn_id) IN (SELECT r.user_id, r.txn_id FROM unnest(v_new_rows) r);
    END IF;
    -- errors and rejections already stored from an overlapping export
    v_repeated := v_valid - v_errors - v_rejections;

    -- The other valid occurrences meet a stored row: same payload is a
    -- duplicate delivery, a different one a conflict (the stored row stays).
    IF v_others IS NOT NULL THEN
        WITH others AS (
            SELECT n.event_no, o.*
            FROM unnest(v_other_rows) WITH ORDINALITY AS o
            JOIN unnest(v_others) WITH ORDINALITY AS n (event_no, ordinality)
              ON n.ordinality = o.ordinality
        ), stored_rows AS MATERIALIZED (
            -- the stored rows of these ids, by id alone (one look-up, which a
            -- Citus cluster runs on every shard)
            SELECT t.*
            FROM calo_recon.transactions t
            WHERE t.txn_id = ANY (ARRAY(SELECT o.txn_id FROM others o))
        ), compared AS (
            SELECT o.event_no, o.logged_at, o.txn_id,
                   to_jsonb(t) AS stored,
                   jsonb_build_object(
                       'txn_id', o.txn_id, 'user_id', o.user_id, 'txn_type', o.txn_type,
                       'source', o.source, 'action', o.action, 'currency', o.currency,
                       'amount', o.amount, 'vat', o.vat, 'old_balance', o.old_balance,
                       'new_balance', o.new_balance, 'payment_balance', o.payment_balance,
                       'update_payment_balance', o.update_payment_balance,
                       'metadata', o.metadata) AS incoming,
                   t.txn_id IS NOT NULL
                     AND ROW(o.user_id, o.txn_type, o.source, o.action, o.currency,
                             o.amount, o.vat, o.old_balance, o.new_balance,
                             o.payment_balance, o.update_payment_balance, o.metadata)
                         IS NOT DISTINCT FROM
                         ROW(t.user_id, t.txn_type, t.source, t.action, t.currency,
                             t.amount, t.vat, t.old_balance, t.new_balance,
                             t.payment_balance, t.update_payment_balance, t.metadata) AS same
            FROM others o
            LEFT JOIN stored_rows t ON t.txn_id = o.txn_id
        ), conflicted AS (
            INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
            SELECT v_source, c.event_no, c.logged_at, 'transaction', c.txn_id, 'conflict',
                   jsonb_build_object('stored', c.stored, 'incoming', c.incoming), e.raw
            FROM compared c
            JOIN calo_recon.log_events e ON e.source_file = v_source AND e.event_no = c.event_no
            WHERE NOT c.same
            ORDER BY c.event_no
            RETURNING 1
        )
        SELECT count(*) FILTER (WHERE c.same)::integer,
               count(*) FILTER (WHERE NOT c.same)::integer
        INTO v_dups, v_conflicts
        FROM compared c;
        v_quarantine := v_quarantine + v_conflicts;
    END IF;

    INSERT INTO calo_recon.ingested_files
           (digest, file_name, bytes, events, transactions, duplicates, conflicts,
            balance_errors, rejections, quarantined, repeated)
    VALUES (v_digest, v_source, pg_catalog.octet_length(log), v_events, v_txns, v_dups,
            v_conflicts, v_errors, v_rejections, v_quarantine, v_repeated);

    RETURN QUERY
    SELECT v_events, v_txns, v_dups, v_conflicts, v_errors, v_rejections, v_quarantine,
           v_repeated;
END;
$fn$;

COMMENT ON TABLE calo_recon.alert_queue IS
  'On a Citus cluster: transactions stored by a bare INSERT or COPY, waiting for their insert-time alert check, which the next raise_alerts() (and so refresh()) runs; ingest_log removes the entries of the rows it checked itself. On one node, and for ingest_file on a cluster: the rows ingest_file stored, checked at the end of the call, so empty between statements';
COMMENT ON FUNCTION calo_recon.alert_new_transactions() IS
  'Trigger: checks inserted transactions (when calo_recon.alerts is on), raises alerts rows (none for a transaction logged before now() - calo_recon.alert_backfill_age) and sends one NOTIFY calo_recon_alerts per statement that raised any (payload: calo_recon.alerts_notice); inside ingest_file it queues them in alert_queue instead, for one check at the end of the call';
-- the roles granted before: their rights on the new function
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of session 9 alert batch

-- hostile tester (models, explanations, exports): money is finite.  numeric
-- takes NaN and +-Infinity, which the log parser refuses and no amount is;
-- every money column gets a CHECK with the one rule (is_finite_money).  Rows
-- 1.1 stored may hold them: a table whose rows all pass gets its checks
-- validated in one ALTER TABLE (one scan); one with a bad row gets them NOT
-- VALID and a WARNING, so the update never fails on old data (README
-- "Input"); new rows are checked either way.
CREATE FUNCTION calo_recon.is_finite_money(value numeric) RETURNS boolean
AS 'MODULE_PATHNAME', 'calo_recon_is_finite_money'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.is_finite_money(numeric) IS
  'false for NaN, Infinity and -Infinity, true for any other number (NULL for NULL): the rule the money columns of transactions, balance_errors and negative_balance_rejections are checked with';
DO $migrate$
DECLARE
    t record;
    checks text;
    unchecked text;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('transactions', ARRAY['amount', 'vat', 'old_balance', 'new_balance', 'payment_balance']),
        ('balance_errors', ARRAY['subscription_balance', 'payment_balance']),
        ('negative_balance_rejections', ARRAY['current_balance'])) AS v (tbl, cols)
    LOOP
        SELECT pg_catalog.string_agg(a.clause, ', ' ORDER BY a.n),
               pg_catalog.string_agg(a.clause || ' NOT VALID', ', ' ORDER BY a.n)
        INTO checks, unchecked
        FROM (SELECT u.n, pg_catalog.format('ADD CONSTRAINT %I CHECK (calo_recon.is_finite_money(%I))',
                                            t.tbl || '_' || u.c || '_finite', u.c) AS clause
              FROM pg_catalog.unnest(t.cols) WITH ORDINALITY AS u (c, n)) a;
        BEGIN
            EXECUTE pg_catalog.format('ALTER TABLE calo_recon.%I %s', t.tbl, checks);
        EXCEPTION WHEN check_violation THEN
            EXECUTE pg_catalog.format('ALTER TABLE calo_recon.%I %s', t.tbl, unchecked);
            RAISE WARNING 'calo_recon.% holds NaN or infinite money: its finiteness checks were added NOT VALID', t.tbl
                USING DETAIL = 'Rows stored before 1.2 may hold NaN, Infinity or -Infinity; new rows are checked.',
                      HINT = pg_catalog.format('Correct or delete those rows, then VALIDATE CONSTRAINT the checks %s of calo_recon.%I.',
                                               (SELECT pg_catalog.string_agg(t.tbl || '_' || c || '_finite', ', ')
                                                FROM pg_catalog.unnest(t.cols) AS c), t.tbl);
        END;
    END LOOP;
END
$migrate$;
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();

-- ingestion audit: what a hostile tester found in the ingestion path.
-- (1) ingest_file: a name that is not valid in the database encoding or has
-- a control character is not read during a walk (C only).  (3) A log that
-- starts with blank lines is a log (C only).  (4) A source name follows the
-- rules of paths: calo_recon.check_source_name(), called by
-- ingest_log_unreconciled.  (5) A source name taken already twice (name and
-- name#digest16) gets a counter instead of failing on
-- log_events_source_file_event_no_key.
-- (2) balance_errors_event_key without message_id: message_id is not part
-- of the event but filled in from the "Processing message" line of the same
-- export, so the same error read from two overlapping exports was stored
-- twice.  A database updated from 1.0 or 1.1 may hold such pairs, which the
-- new key refuses: the update keeps the earliest row of each (the lowest
-- error_id, the one a fresh install would have stored and the other export
-- would then have counted as repeated) and removes the later ones, moving
-- them in ingested_files from balance_errors to repeated for the file they
-- came from, so the per-file counts stay equal to the stored rows.  Nothing
-- is lost: the event itself stays in log_events with the rest of its file.
-- (An index that tolerated the pairs would leave the discrepancies view
-- counting one error twice, and a fresh install and an updated one would
-- not agree.)  An alert raised for a removed row keeps its error_id in its
-- detail.
WITH ranked AS (
    SELECT e.error_id,
           pg_catalog.row_number() OVER (PARTITION BY e.user_id, e.logged_at, e.request_id,
                                                      e.subscription_balance, e.payment_balance
                                         ORDER BY e.error_id) AS n
    FROM calo_recon.balance_errors e
), removed AS (
    DELETE FROM calo_recon.balance_errors e
    USING ranked r
    WHERE r.error_id OPERATOR(pg_catalog.=) e.error_id AND r.n OPERATOR(pg_catalog.>) 1
    RETURNING e.source_file
), per_file AS (
    SELECT r.source_file, pg_catalog.count(*)::integer AS n FROM removed r GROUP BY r.source_file
)
UPDATE calo_recon.ingested_files f
SET balance_errors = f.balance_errors OPERATOR(pg_catalog.-) p.n,
    repeated = f.repeated OPERATOR(pg_catalog.+) p.n
FROM per_file p
WHERE f.file_name OPERATOR(pg_catalog.=) p.source_file;
DROP INDEX calo_recon.balance_errors_event_key;
CREATE UNIQUE INDEX balance_errors_event_key
    ON calo_recon.balance_errors
       (user_id, logged_at, request_id, subscription_balance, payment_balance)
    NULLS NOT DISTINCT;

CREATE FUNCTION calo_recon.check_source_name(source text) RETURNS void
AS 'MODULE_PATHNAME', 'calo_recon_check_source_name'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.check_source_name(text) IS
  'Raises 22023 when a source name given to ingest_log breaks the rules of paths below calo_recon.import_directory: a control character, bytes not valid in the database encoding, more than 1023 bytes; NULL and valid names pass';

CREATE OR REPLACE FUNCTION calo_recon.ingest_log_unreconciled(log text, source text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- planned for each file: a plan cached while the table was small (never
-- analyzed inside one long ingest_file) kept reading it whole for the
-- stored ids, once per file
SET plan_cache_mode = force_custom_plan
AS $fn$
#variable_conflict use_column
DECLARE
    v_digest     bytea;
    v_source     text;
    v_name       text;
    v_taken      integer := 0;
    v_events     integer := 0;
    v_txns       integer := 0;
    v_dups       integer := 0;
    v_conflicts  integer := 0;
    v_errors     integer := 0;
    v_rejections integer := 0;
    v_quarantine integer := 0;
    v_repeated   integer := 0;
    v_others     integer[];
    v_other_rows calo_recon.transactions[];
    v_valid      integer;
    -- on a Citus cluster the stored rows go to the alert check by hand
    -- (alert_distributed: the table's trigger is off there), unless
    -- ingest_file checks them at its end (alert_check_deferred: the shards'
    -- trigger has queued them)
    v_distributed boolean := calo_recon.is_distributed() AND NOT calo_recon.alert_check_deferred();
    v_new_rows   calo_recon.transactions[];
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;
    -- a source name follows the rules of paths (22023 otherwise)
    PERFORM calo_recon.check_source_name(source);

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM calo_recon.lock_writer();

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0;
        RETURN;
    END IF;

    -- log_events is keyed by (source_file, event_no): a different content
    -- under a name already used gets the name plus its digest prefix, and
    -- when that is taken too (a source may be named so), a counter after it.
    v_source := COALESCE(NULLIF(source, ''),
                         'inline:' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16));
    v_name := v_source;
    WHILE EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.file_name = v_name)
          OR EXISTS (SELECT 1 FROM calo_recon.log_events e WHERE e.source_file = v_name) LOOP
        v_taken := v_taken + 1;
        v_name := v_source || '#' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16)
                  || CASE WHEN v_taken > 1 THEN '#' || v_taken ELSE '' END;
    END LOOP;
    v_source := v_name;

    -- One statement stores the file: every event into log_events; the events
    -- the parser made malformed into quarantine (kind: the kind intended);
    -- the first occurrence of each transaction id, the balance errors and the
    -- rejections into their tables.  The parse is read once, never read back.
    WITH parsed AS MATERIALIZED (
        SELECT p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
               p.body, p.raw
        FROM calo_recon.parse_log(log) AS p
    ), logged AS (
        INSERT INTO calo_recon.log_events
               (source_file, event_no, logged_at, request_id, message_id, level, kind, body, raw)
        SELECT v_source, e.event_no, e.logged_at, e.request_id, e.message_id, e.level, e.kind,
               e.body, e.raw
        FROM parsed e
    ), quarantined AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, e.event_no, e.logged_at, COALESCE(e.body ->> 'intended_kind', 'malformed'),
               e.body ->> 'txn_id', e.body ->> 'reason', e.body, e.raw
        FROM parsed e
        WHERE e.kind = 'malformed'
        ORDER BY e.event_no
        RETURNING 1
    ), valid AS (
        SELECT e.event_no, e.logged_at, e.request_id, e.message_id, e.kind, e.body
        FROM parsed e
        WHERE e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection')
    ), valid_txns AS (
        -- each valid transaction event as the row it would be stored as
        SELECT v.event_no, v.body ->> 'id' AS txn_id,
               row_number() OVER (PARTITION BY v.body ->> 'id' ORDER BY v.event_no) AS occurrence,
               -- the legacy form has no type key: its txn_type is NULL
               ROW(v.body ->> 'id', v.body ->> 'userId', v.body ->> 'type',
                   v.body ->> 'source', v.body ->> 'action', v.body ->> 'currency',
                   (v.body -> 'amount')::numeric, (v.body -> 'vat')::numeric,
                   (v.body -> 'oldBalance')::numeric, (v.body -> 'newBalance')::numeric,
                   NULLIF(v.body -> 'paymentBalance', 'null'::jsonb)::numeric,
                   NULLIF(v.body -> 'updatePaymentBalance', 'null'::jsonb)::boolean,
                   NULLIF(v.body -> 'metadata', 'null'::jsonb),
                   v.logged_at, v.request_id, v.message_id, v_source)::calo_recon.transactions AS r
        FROM valid v
        WHERE v.kind = 'transaction'
    ), stored_ids AS MATERIALIZED (
        -- ids already stored, under any user: on a Citus cluster the table
        -- is distributed by user_id and its key cannot hold a txn_id alone
        -- (README "Scaling out with Citus"); ingests hold the writer lock,
        -- so no other ingest stores an id between this look-up and the insert
        SELECT t.txn_id
        FROM calo_recon.transactions t
        WHERE t.txn_id = ANY (ARRAY(SELECT f.txn_id FROM valid_txns f WHERE f.occurrence = 1))
    ), new_txns AS (
        -- first valid occurrence of each id, in id order (stable lock order)
        INSERT INTO calo_recon.transactions
        SELECT (f.r).*
        FROM valid_txns f
        WHERE f.occurrence = 1
          AND f.txn_id NOT IN (SELECT s.txn_id FROM stored_ids s)
        ORDER BY f.txn_id
        -- a concurrent COPY or INSERT (not under the writer lock) of the same
        -- id: the key of the table, on one node or on the cluster
        ON CONFLICT DO NOTHING
        RETURNING *
    ), new_errors AS (
        INSERT INTO calo_recon.balance_errors
               (user_id, subscription_balance, payment_balance, logged_at, request_id,
                message_id, txn_id, source_file)
        SELECT v.body ->> 'userId', (v.body -> 'subscriptionBalance')::numeric,
               (v.body -> 'paymentBalance')::numeric, v.logged_at, v.request_id,
               v.message_id, v.body ->> 'txn_id', v_source
        FROM valid v
        WHERE v.kind = 'balance_error'
        ORDER BY 1, 4, 5
        -- only the event key: a clash of error_id must fail, not vanish
        ON CONFLICT (user_id, logged_at, request_id, subscription_balance, payment_balance)
            DO NOTHING
        RETURNING user_id
    ), new_rejections AS (
        INSERT INTO calo_recon.negative_balance_rejections
               (txn_id, user_id, current_balance, logged_at, request_id, source_file)
        SELECT v.body ->> 'transactionId', v.body ->> 'userId',
               (v.body -> 'currentBalance')::numeric, v.logged_at, v.request_id, v_source
        FROM valid v
        WHERE v.kind = 'negative_balance_rejection'
        ORDER BY 2, 4, 5
        ON CONFLICT (user_id, logged_at, request_id, txn_id, current_balance) DO NOTHING
        RETURNING user_id
    ), others AS (
        SELECT o.event_no, o.r
        FROM valid_txns o
        WHERE o.occurrence > 1 OR o.txn_id NOT IN (SELECT t.txn_id FROM new_txns t)
    )
    SELECT (SELECT count(*) FROM parsed)::integer,
           (SELECT count(*) FROM quarantined)::integer,
           (SELECT count(*) FROM new_txns)::integer,
           (SELECT count(*) FROM new_errors)::integer,
           (SELECT count(*) FROM new_rejections)::integer,
           (SELECT count(*) FROM valid v WHERE v.kind <> 'transaction')::integer,
           -- every other valid occurrence is compared with the stored row below
           (SELECT array_agg(o.event_no ORDER BY o.event_no) FROM others o),
           (SELECT array_agg(o.r ORDER BY o.event_no) FROM others o),
           CASE WHEN v_distributed
                THEN (SELECT array_agg(ROW(n.*)::calo_recon.transactions ORDER BY n.txn_id) FROM new_txns n) END
    INTO v_events, v_quarantine, v_txns, v_errors, v_rejections, v_valid, v_others,
         v_other_rows, v_new_rows;
    IF v_new_rows IS NOT NULL THEN
        PERFORM calo_recon.alert_distributed(v_new_rows);
        -- checked: not again by raise_alerts() (the shards queued them)
        DELETE FROM calo_recon.alert_queue q
        WHERE (q.user_id, q.txn_id) IN (SELECT r.user_id, r.txn_id FROM unnest(v_new_rows) r);
    END IF;
    -- errors and rejections already stored from an overlapping export
    v_repeated := v_valid - v_errors - v_rejections;

    -- The other valid occurrences meet a stored row: same payload is a
    -- duplicate delivery, a different one a conflict (the stored row stays).
    IF v_others IS NOT NULL THEN
        WITH others AS (
            SELECT n.event_no, o.*
            FROM unnest(v_other_rows) WITH ORDINALITY AS o
            JOIN unnest(v_others) WITH ORDINALITY AS n (event_no, ordinality)
              ON n.ordinality = o.ordinality
        ), stored_rows AS MATERIALIZED (
            -- the stored rows of these ids, by id alone (one look-up, which a
            -- Citus cluster runs on every shard)
            SELECT t.*
            FROM calo_recon.transactions t
            WHERE t.txn_id = ANY (ARRAY(SELECT o.txn_id FROM others o))
        ), compared AS (
            SELECT o.event_no, o.logged_at, o.txn_id,
                   to_jsonb(t) AS stored,
                   jsonb_build_object(
                       'txn_id', o.txn_id, 'user_id', o.user_id, 'txn_type', o.txn_type,
                       'source', o.source, 'action', o.action, 'currency', o.currency,
                       'amount', o.amount, 'vat', o.vat, 'old_balance', o.old_balance,
                       'new_balance', o.new_balance, 'payment_balance', o.payment_balance,
                       'update_payment_balance', o.update_payment_balance,
                       'metadata', o.metadata) AS incoming,
                   t.txn_id IS NOT NULL
                     AND ROW(o.user_id, o.txn_type, o.source, o.action, o.currency,
                             o.amount, o.vat, o.old_balance, o.new_balance,
                             o.payment_balance, o.update_payment_balance, o.metadata)
                         IS NOT DISTINCT FROM
                         ROW(t.user_id, t.txn_type, t.source, t.action, t.currency,
                             t.amount, t.vat, t.old_balance, t.new_balance,
                             t.payment_balance, t.update_payment_balance, t.metadata) AS same
            FROM others o
            LEFT JOIN stored_rows t ON t.txn_id = o.txn_id
        ), conflicted AS (
            INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
            SELECT v_source, c.event_no, c.logged_at, 'transaction', c.txn_id, 'conflict',
                   jsonb_build_object('stored', c.stored, 'incoming', c.incoming), e.raw
            FROM compared c
            JOIN calo_recon.log_events e ON e.source_file = v_source AND e.event_no = c.event_no
            WHERE NOT c.same
            ORDER BY c.event_no
            RETURNING 1
        )
        SELECT count(*) FILTER (WHERE c.same)::integer,
               count(*) FILTER (WHERE NOT c.same)::integer
        INTO v_dups, v_conflicts
        FROM compared c;
        v_quarantine := v_quarantine + v_conflicts;
    END IF;

    INSERT INTO calo_recon.ingested_files
           (digest, file_name, bytes, events, transactions, duplicates, conflicts,
            balance_errors, rejections, quarantined, repeated)
    VALUES (v_digest, v_source, pg_catalog.octet_length(log), v_events, v_txns, v_dups,
            v_conflicts, v_errors, v_rejections, v_quarantine, v_repeated);

    RETURN QUERY
    SELECT v_events, v_txns, v_dups, v_conflicts, v_errors, v_rejections, v_quarantine,
           v_repeated;
END;
$fn$;
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of ingestion audit

-- Report figures (finance audit): daily_figures, the exact money of
-- daily_summary's days, so that the workbook's Summary and the dashboard
-- round a period's total once; out-of-range money NULL, never 0, and the
-- liability NULL from such a day on, live and stored alike
-- daily_summary's figures, with the exact money beside the rounded: the
-- workbook's Summary and the dashboard add up a currency's days from the
-- exact values and round once (src/glue/report_queries.h); daily_summary
-- shows the rounded columns.  A money figure one of whose inputs the exact
-- math cannot hold is NULL (README "Reconciliation"), and so is every later
-- wallet_liability of that currency, which adds it up.
CREATE VIEW calo_recon.daily_figures AS
WITH activity AS (
    -- day_totals, with the stored rows of the queued users replaced by
    -- their live ones.  A day_totals row with a NULL (a value out of the
    -- exact range) cannot have a queued user's row taken out of it: its
    -- day is summed again from the stored rows of the users not queued
    -- (rare).  Uncorrelated subqueries only, as Citus plans them.
    SELECT a.day, a.currency,
           pg_catalog.sum(a.transactions) AS transactions,
           CASE WHEN pg_catalog.count(a.credits) = pg_catalog.count(*) THEN pg_catalog.sum(a.credits) END AS credits,
           CASE WHEN pg_catalog.count(a.debits) = pg_catalog.count(*) THEN pg_catalog.sum(a.debits) END AS debits,
           CASE WHEN pg_catalog.count(a.vat) = pg_catalog.count(*) THEN pg_catalog.sum(a.vat) END AS vat,
           pg_catalog.sum(a.overdrafts) AS overdrafts,
           CASE WHEN pg_catalog.count(a.liability_change) = pg_catalog.count(*)
                THEN pg_catalog.sum(a.liability_change) END AS change
    FROM (SELECT d.day, d.currency, d.transactions, d.credits, d.debits, d.vat, d.overdrafts,
                 d.liability_change
          FROM calo_recon.day_totals d
          WHERE d.credits IS NOT NULL AND d.debits IS NOT NULL AND d.vat IS NOT NULL
            AND d.liability_change IS NOT NULL
          UNION ALL
          SELECT u.day, u.currency, -u.transactions, -u.credits, -u.debits, -u.vat, -u.overdrafts,
                 -u.liability_change
          FROM calo_recon.user_day_totals u
          WHERE u.user_id IN (SELECT p.user_id FROM calo_recon.pending_reconcile p)
            AND (u.currency, u.day) NOT IN (
                SELECT d.currency, d.day FROM calo_recon.day_totals d
                WHERE d.credits IS NULL OR d.debits IS NULL OR d.vat IS NULL OR d.liability_change IS NULL)
          UNION ALL
          SELECT u.day, u.currency, u.transactions, u.credits, u.debits, u.vat, u.overdrafts,
                 u.liability_change
          FROM calo_recon.user_day_totals u
          WHERE u.user_id NOT IN (SELECT p.user_id FROM calo_recon.pending_reconcile p)
            AND (u.currency, u.day) IN (
                SELECT d.currency, d.day FROM calo_recon.day_totals d
                WHERE d.credits IS NULL OR d.debits IS NULL OR d.vat IS NULL OR d.liability_change IS NULL)
          UNION ALL
          SELECT l.day, l.currency, l.transactions, l.credits, l.debits, l.vat, l.overdrafts,
                 l.liability_change
          FROM calo_recon.user_day_figures(coalesce((SELECT pg_catalog.array_agg(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p), '{}')) l) a
    GROUP BY a.day, a.currency
    HAVING pg_catalog.sum(a.transactions) > 0
),
breaks AS (
    SELECT pg_catalog.timezone('UTC', b.logged_at)::pg_catalog.date AS day, b.currency,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'conflict') AS conflicts,
           pg_catalog.count(*) FILTER (WHERE b.break_kind = 'out_of_range') AS out_of_range
    FROM calo_recon.balance_breaks b
    GROUP BY 1, 2
),
disc AS (
    SELECT pg_catalog.timezone('UTC', d.logged_at)::pg_catalog.date AS day, d.currency,
           pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d
    WHERE d.currency IS NOT NULL
    GROUP BY 1, 2
),
anom AS (
    -- stored while nothing has changed since refresh() counted them
    -- ("SELECT 1": Citus cannot plan an EXISTS of no column here)
    SELECT s.day, s.currency, s.anomalies FROM calo_recon.anomaly_day_totals s
    WHERE NOT EXISTS (SELECT 1 FROM calo_recon.anomaly_input_changes c)
    UNION ALL
    SELECT l.day, l.currency, l.anomalies FROM calo_recon.anomaly_day_counts l
    WHERE EXISTS (SELECT 1 FROM calo_recon.anomaly_input_changes c)
),
days AS (
    SELECT a.day, a.currency FROM activity a
    UNION SELECT d.day, d.currency FROM disc d
),
figures AS (
    -- a day without activity (discrepancies only) adds 0; a NULL stays
    SELECT k.day, k.currency,
           coalesce(a.transactions, 0)::bigint AS transactions,
           CASE WHEN a.day IS NULL THEN 0 ELSE a.credits END AS credits,
           CASE WHEN a.day IS NULL THEN 0 ELSE a.debits END AS debits,
           CASE WHEN a.day IS NULL THEN 0 ELSE a.vat END AS vat,
           CASE WHEN pg_catalog.bool_and(a.day IS NULL OR a.change IS NOT NULL) OVER w
                THEN pg_catalog.sum(coalesce(a.change, 0)) OVER w END AS wallet_liability,
           coalesce(a.overdrafts, 0)::bigint AS overdrafts,
           cu.minor_unit
    FROM days k
    LEFT JOIN activity a ON a.day = k.day AND a.currency = k.currency
    LEFT JOIN calo_recon.currencies cu ON cu.code = k.currency
    WINDOW w AS (PARTITION BY k.currency ORDER BY k.day)
)
SELECT x.day, x.currency, x.transactions,
       calo_recon.round_money(x.credits, x.minor_unit) AS credits,
       calo_recon.round_money(x.debits, x.minor_unit) AS debits,
       calo_recon.round_money(x.vat, x.minor_unit) AS vat,
       calo_recon.round_money(x.wallet_liability, x.minor_unit) AS wallet_liability,
       coalesce(b.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(b.chain_breaks, 0) AS chain_breaks,
       coalesce(b.conflicts, 0) AS conflicts,
       coalesce(b.out_of_range, 0) AS out_of_range,
       x.overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(n.anomalies, 0) AS anomalies,
       x.credits AS exact_credits, x.debits AS exact_debits, x.vat AS exact_vat, x.minor_unit
FROM figures x
LEFT JOIN breaks b ON b.day = x.day AND b.currency = x.currency
LEFT JOIN disc d ON d.day = x.day AND d.currency = x.currency
LEFT JOIN anom n ON n.day = x.day AND n.currency = x.currency;
COMMENT ON VIEW calo_recon.daily_figures IS
  'Internal to daily_summary, the workbook''s Summary and the dashboard: daily_summary''s columns, then the day''s credits, debits and VAT exact (not rounded) and the currency''s minor unit, so that a period''s total is rounded once';
COMMENT ON COLUMN calo_recon.daily_figures.day IS 'daily_summary.day';
COMMENT ON COLUMN calo_recon.daily_figures.currency IS 'daily_summary.currency';
COMMENT ON COLUMN calo_recon.daily_figures.transactions IS 'daily_summary.transactions';
COMMENT ON COLUMN calo_recon.daily_figures.credits IS 'daily_summary.credits';
COMMENT ON COLUMN calo_recon.daily_figures.debits IS 'daily_summary.debits';
COMMENT ON COLUMN calo_recon.daily_figures.vat IS 'daily_summary.vat';
COMMENT ON COLUMN calo_recon.daily_figures.wallet_liability IS 'daily_summary.wallet_liability';
COMMENT ON COLUMN calo_recon.daily_figures.arithmetic_breaks IS 'daily_summary.arithmetic_breaks';
COMMENT ON COLUMN calo_recon.daily_figures.chain_breaks IS 'daily_summary.chain_breaks';
COMMENT ON COLUMN calo_recon.daily_figures.conflicts IS 'daily_summary.conflicts';
COMMENT ON COLUMN calo_recon.daily_figures.out_of_range IS 'daily_summary.out_of_range';
COMMENT ON COLUMN calo_recon.daily_figures.overdrafts IS 'daily_summary.overdrafts';
COMMENT ON COLUMN calo_recon.daily_figures.discrepancies IS 'daily_summary.discrepancies';
COMMENT ON COLUMN calo_recon.daily_figures.anomalies IS 'daily_summary.anomalies';
COMMENT ON COLUMN calo_recon.daily_figures.exact_credits IS 'credits, exact';
COMMENT ON COLUMN calo_recon.daily_figures.exact_debits IS 'debits, exact';
COMMENT ON COLUMN calo_recon.daily_figures.exact_vat IS 'vat, exact';
COMMENT ON COLUMN calo_recon.daily_figures.minor_unit IS 'The currency''s minor unit (calo_recon.currencies; NULL: not in it, round_money''s 2)';

CREATE OR REPLACE VIEW calo_recon.daily_summary AS
SELECT f.day, f.currency, f.transactions, f.credits, f.debits, f.vat, f.wallet_liability,
       f.arithmetic_breaks, f.chain_breaks, f.conflicts, f.out_of_range, f.overdrafts,
       f.discrepancies, f.anomalies
FROM calo_recon.daily_figures f;
COMMENT ON COLUMN calo_recon.daily_summary.wallet_liability IS 'Closing wallet liability: the sum over wallets of their last new_balance (chain order) logged in that currency up to the end of the day; NULL from a day with a value outside the exact range on';
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of report figures audit


-- ops audit, retention: purge() forgets the history of every calo_recon job
-- of this database, whichever role ran it, and purges nothing for an
-- interval reaching before the earliest timestamp
CREATE OR REPLACE FUNCTION calo_recon.purge(older_than interval)
RETURNS TABLE (purged text, "rows" bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    n bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'older_than must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative: %', older_than
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: calo_recon.purge(''90 days'').';
    END IF;
    BEGIN
        cutoff := pg_catalog.now() - older_than;
    EXCEPTION WHEN datetime_field_overflow THEN
        -- before the earliest timestamp: nothing is that old
        cutoff := '-infinity';
    END;
    PERFORM calo_recon.lock_writer();

    UPDATE calo_recon.log_events e SET raw = ''
    WHERE e.logged_at < cutoff AND e.raw <> '';
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'log_events.raw'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.alerts a WHERE a.resolved_at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'alerts'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.runs r
    WHERE r.finished_at < cutoff
      AND r.run_id NOT IN (SELECT k.run_id
                           FROM (VALUES ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x)),
                                        ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x WHERE x.status = 'succeeded')),
                                        ((SELECT pg_catalog.max(x.run_id) FROM calo_recon.runs x WHERE x.status = 'failed'))) AS k(run_id)
                           WHERE k.run_id IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'runs'; "rows" := n; RETURN NEXT;

    DELETE FROM calo_recon.quarantine q WHERE q.quarantined_at < cutoff AND q.reason <> 'conflict';
    GET DIAGNOSTICS n = ROW_COUNT;
    purged := 'quarantine'; "rows" := n; RETURN NEXT;

    purged := 'cron.job_run_details'; "rows" := NULL;
    IF pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL THEN
        EXECUTE 'DELETE FROM cron.job_run_details d
                 WHERE d.end_time OPERATOR(pg_catalog.<) $1
                   AND d.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
                   AND d.command OPERATOR(pg_catalog.~~) ''%calo\_recon.%'''
        USING cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        "rows" := n;
    END IF;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION calo_recon.purge(interval) IS
  'Forgets what is older than older_than (before now() - older_than): the raw text of log events (by logged_at; the parsed event stays), resolved alerts (by resolved_at), ended runs (by finished_at; the newest run, success and failure stay), quarantined unreadable input (by quarantined_at; conflicts stay) and, when pg_cron is installed in this database, the history of its calo_recon jobs, whichever role ran them (by end_time). Never touches transactions, balance errors, rejections, findings, models, scores or feedback. Takes the writer lock. Returns the rows purged per item (NULL for cron.job_run_details without pg_cron). 22004 for NULL, 22023 for a negative interval; an interval reaching before the earliest timestamp purges nothing';
REVOKE EXECUTE ON FUNCTION calo_recon.purge(interval) FROM PUBLIC;
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of ops audit, retention

-- ops audit, refresh: refresh_work() marks only runs whose session is gone
-- and records every failure or cancel of a run (its outcome and alerts
-- included); raise_alerts() takes the writer lock first and raises a failed
-- run's alert through raise_run_alert() (an internal: grant_role() grants it
-- to nobody)
CREATE OR REPLACE FUNCTION calo_recon.refresh_work(run_id bigint)
RETURNS calo_recon.runs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run calo_recon.runs;
    ingested record;
    reconciled record;
    failed_in text;
    step text;
BEGIN
    SELECT r.* INTO run FROM calo_recon.runs r WHERE r.run_id = refresh_work.run_id;
    IF NOT FOUND OR run.status <> 'running' THEN
        RAISE EXCEPTION 'calo_recon.runs has no run % in status running', refresh_work.run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- the alerts this run raises name it (calo_recon.alerts.run_id's default)
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', run.run_id::text, true);
    -- twice at most: the run, then, when it failed, the record of the failure
    LOOP
        BEGIN
            step := 'work';
            -- runs whose sessions stopped running them (terminated, crashed)
            -- without recording how they ended: their server process is gone
            -- (a process of that pid that started after the run is another
            -- session), or it is this one, which runs this run now.  Another
            -- live session's run may be between refresh_start() and
            -- refresh_finish(), or recording its skip: it is left alone, and
            -- a row another session has locked is never waited for.  Done
            -- again after a failure: the failed work's marks are rolled back.
            PERFORM pg_catalog.pg_stat_clear_snapshot();
            UPDATE calo_recon.runs r
               SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
                   error = 'did not finish: process ' || r.backend_pid
                           || ' stopped running it before recording an outcome (terminated or crashed)'
             WHERE r.run_id IN (
                 SELECT o.run_id FROM calo_recon.runs o
                 WHERE o.status = 'running' AND o.run_id <> run.run_id
                   AND (o.backend_pid = pg_catalog.pg_backend_pid()
                        OR NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a
                                       WHERE a.pid = o.backend_pid
                                         AND (a.backend_start IS NULL OR a.backend_start <= o.started_at)))
                 FOR UPDATE SKIP LOCKED);
            IF failed_in IS NULL THEN
                -- the users of the new files are queued: reconciled once, below
                SELECT * INTO ingested FROM calo_recon.ingest_file_unreconciled(run.folder);
                run.files := ingested.new_files;
                run.skipped_files := ingested.skipped_files;
                run.events := ingested.events;
                run.transactions := ingested.transactions;

                SELECT * INTO reconciled FROM calo_recon.reconcile_pending();
                IF FOUND THEN
                    run.reconciled_users := reconciled.users;
                    run.breaks := reconciled.arithmetic_breaks + reconciled.chain_breaks;
                END IF;

                -- models due are trained again first: they score their whole scope
                run.retrained := (SELECT pg_catalog.count(*) FROM calo_recon.retrain_due_models());
                run.scored := calo_recon.score_transactions(true);
                -- last: what daily_summary reads until the next change
                PERFORM calo_recon.store_anomaly_day_totals();
                run.status := 'succeeded';
            END IF;
            step := 'outcome';
            run.finished_at := pg_catalog.clock_timestamp();
            UPDATE calo_recon.runs r
               SET finished_at = run.finished_at, status = run.status, files = run.files,
                   skipped_files = run.skipped_files, events = run.events,
                   transactions = run.transactions, reconciled_users = run.reconciled_users,
                   breaks = run.breaks, scored = run.scored, retrained = run.retrained, error = run.error,
                   error_detail = run.error_detail, error_hint = run.error_hint
             WHERE r.run_id = run.run_id
            RETURNING r.* INTO run;
            IF run.status = 'succeeded' THEN
                -- the line of 1.1, with the models retrained after it when there are
                -- any (log parsers that know the old line keep working)
                RAISE LOG 'calo_recon.refresh() run % succeeded in %: % files, % transactions, % users reconciled, % breaks, % scored%',
                    run.run_id, run.duration, run.files, run.transactions, run.reconciled_users, run.breaks, run.scored,
                    CASE WHEN run.retrained > 0 THEN ', ' || run.retrained || ' models retrained' ELSE '' END;
            END IF;
            step := 'alerts';
            IF failed_in IS NULL THEN
                -- what this run (its outcome included) and the data now call
                -- for; an error in alerting must not lose the run's outcome,
                -- but a cancel ends the run (below)
                BEGIN
                    PERFORM calo_recon.raise_alerts();
                EXCEPTION WHEN OTHERS THEN
                    RAISE WARNING 'calo_recon.refresh() run %: raise_alerts() failed: % %', run.run_id, SQLSTATE, SQLERRM;
                END;
            ELSE
                -- the failure is recorded: alerting it may only warn
                BEGIN
                    IF failed_in = 'alerts' THEN
                        -- raise_alerts() would wait again for what it was
                        -- cancelled on: only this run's alert
                        PERFORM calo_recon.raise_run_alert(run);
                    ELSE
                        PERFORM calo_recon.raise_alerts();
                    END IF;
                EXCEPTION WHEN OTHERS OR query_canceled THEN
                    RAISE WARNING 'calo_recon.refresh() run %: raising its alerts failed: % %', run.run_id, SQLSTATE, SQLERRM;
                END;
            END IF;
            EXIT;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            -- everything in this block is rolled back, the work included;
            -- the run row stays, saying why (a cancel ends the run as asked)
            IF failed_in IS NOT NULL THEN
                RAISE;
            END IF;
            failed_in := step;
            run.status := 'failed';
            run.error := SQLSTATE || ': ' || SQLERRM;
            GET STACKED DIAGNOSTICS run.error_detail = PG_EXCEPTION_DETAIL, run.error_hint = PG_EXCEPTION_HINT;
            run.error_detail := NULLIF(run.error_detail, '');
            run.error_hint := NULLIF(run.error_hint, '');
            run.files := 0; run.skipped_files := 0; run.events := 0; run.transactions := 0;
            run.reconciled_users := 0; run.breaks := 0; run.scored := 0; run.retrained := 0;
            RAISE WARNING 'calo_recon.refresh() run % failed: %', run.run_id, run.error;
        END;
    END LOOP;
    PERFORM pg_catalog.set_config('calo_recon_run.run_id', '', true);
    RETURN run;
END;
$$;
COMMENT ON FUNCTION calo_recon.refresh_work(bigint) IS
  'Internal to refresh_finish(): the work of the run in status running with this run_id, recorded in its row';
REVOKE EXECUTE ON FUNCTION calo_recon.refresh_work(bigint) FROM PUBLIC;

CREATE FUNCTION calo_recon.raise_run_alert(run calo_recon.runs) RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT calo_recon.raise_system_alert(
        CASE WHEN run.skipped_since IS NULL THEN 'refresh_failed' ELSE 'refresh_skipped' END,
        pg_catalog.jsonb_build_object('run_id', run.run_id, 'error', run.error,
                                      'error_detail', run.error_detail, 'error_hint', run.error_hint))
    WHERE run.status = 'failed'
$$;
COMMENT ON FUNCTION calo_recon.raise_run_alert(calo_recon.runs) IS
  'Internal to raise_alerts() and refresh(): raises refresh_failed (refresh_skipped when it failed for skipping longer than calo_recon.refresh_max_skip) for a failed run unless one is open or calo_recon.alerts is off; returns its alert_id, else NULL';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_run_alert(calo_recon.runs) FROM PUBLIC;

CREATE OR REPLACE FUNCTION calo_recon.raise_alerts()
RETURNS TABLE (alert_kind text, raised bigint, resolved bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    settings record := calo_recon.ops_settings();
    paging boolean := pg_catalog.current_setting('calo_recon.alerts')::boolean;
    errors_mark bigint;
    quarantine_mark bigint;
    errors_top bigint;
    quarantine_top bigint;
    last_run calo_recon.runs;
    last_loaded timestamptz;
    ids bigint[] := '{}';
    kinds text[] := '{}';
    system_raised bigint[] := '{}';
    raised_id bigint;
    resolved_kinds text[] := '{}';
BEGIN
    -- the writer lock first (src/glue/locks.h): refresh() takes the marks'
    -- row locks while holding it, so taking them first could deadlock with
    -- a refresh() when this transaction then ingests or reconciles
    PERFORM calo_recon.lock_writer();
    -- one raiser at a time: the marks are read and moved under a row lock
    INSERT INTO calo_recon.alert_marks (source) VALUES ('balance_errors'), ('quarantine') ON CONFLICT DO NOTHING;
    SELECT m.last_id INTO errors_mark FROM calo_recon.alert_marks m WHERE m.source = 'balance_errors' FOR UPDATE;
    SELECT m.last_id INTO quarantine_mark FROM calo_recon.alert_marks m WHERE m.source = 'quarantine' FOR UPDATE;
    SELECT pg_catalog.max(e.error_id) INTO errors_top FROM calo_recon.balance_errors e;
    SELECT pg_catalog.max(q.quarantine_id) INTO quarantine_top FROM calo_recon.quarantine q;

    -- on a Citus cluster, the insert-time check of the transactions a bare
    -- INSERT or COPY stored (alert_queue, always empty on one node)
    PERFORM calo_recon.alert_queued();

    -- new discrepancies, one alert each (a user's without a transaction share
    -- one open alert)
    WITH raised AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT d.txn_id, d.user_id, 'discrepancy',
               pg_catalog.jsonb_build_object('error_id', d.error_id, 'subscription_balance', d.subscription_balance,
                                             'payment_balance', d.payment_balance, 'difference', d.difference,
                                             'tolerance', d.tolerance, 'currency', d.currency,
                                             'logged_at', d.logged_at, 'source_file', d.source_file)
        FROM calo_recon.discrepancies d
        WHERE paging AND d.error_id > errors_mark AND d.error_id <= errors_top
          AND (settings.alert_backfill_age IS NULL OR d.logged_at >= pg_catalog.now() - settings.alert_backfill_age)
        ORDER BY d.error_id
        ON CONFLICT DO NOTHING
        RETURNING alerts.alert_id, alerts.alert_kind
    )
    SELECT ids || coalesce(pg_catalog.array_agg(r.alert_id), '{}'), kinds || coalesce(pg_catalog.array_agg(r.alert_kind), '{}')
    INTO ids, kinds FROM raised r;

    -- new conflicts: one alert per transaction id, whatever the number of
    -- conflicting deliveries
    WITH raised AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT DISTINCT ON (q.txn_id) q.txn_id, t.user_id, 'conflict',
               pg_catalog.jsonb_build_object('quarantine_id', q.quarantine_id, 'source_file', q.source_file,
                                             'logged_at', q.logged_at, 'delivered', q.detail)
        FROM calo_recon.quarantine q
        LEFT JOIN calo_recon.transactions t ON t.txn_id = q.txn_id
        WHERE paging AND q.reason = 'conflict' AND q.txn_id IS NOT NULL
          AND q.quarantine_id > quarantine_mark AND q.quarantine_id <= quarantine_top
          AND (settings.alert_backfill_age IS NULL OR q.logged_at >= pg_catalog.now() - settings.alert_backfill_age)
        ORDER BY q.txn_id, q.quarantine_id
        ON CONFLICT DO NOTHING
        RETURNING alerts.alert_id, alerts.alert_kind
    )
    SELECT ids || coalesce(pg_catalog.array_agg(r.alert_id), '{}'), kinds || coalesce(pg_catalog.array_agg(r.alert_kind), '{}')
    INTO ids, kinds FROM raised r;

    UPDATE calo_recon.alert_marks m
       SET last_id = CASE m.source WHEN 'balance_errors' THEN GREATEST(errors_mark, errors_top)
                                   ELSE GREATEST(quarantine_mark, quarantine_top) END
     WHERE m.source IN ('balance_errors', 'quarantine');

    -- the last run that ended: a failure raises, a success resolves
    SELECT r.* INTO last_run FROM calo_recon.runs r
    WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1;
    IF last_run.status = 'succeeded' THEN
        WITH solved AS (
            UPDATE calo_recon.alerts a
               SET resolved_at = pg_catalog.now(),
                   resolution = pg_catalog.format('refresh() run %s succeeded', last_run.run_id)
             WHERE a.alert_kind IN ('refresh_failed', 'refresh_skipped') AND a.txn_id IS NULL AND a.resolved_at IS NULL
            RETURNING a.alert_kind
        )
        SELECT resolved_kinds || coalesce(pg_catalog.array_agg(x.alert_kind), '{}') INTO resolved_kinds FROM solved x;
    ELSIF last_run.status = 'failed' THEN
        raised_id := calo_recon.raise_run_alert(last_run);
        IF raised_id IS NOT NULL THEN
            system_raised := system_raised || raised_id;
        END IF;
    END IF;

    -- stale data: no file with transactions loaded for max_data_age
    IF settings.max_data_age IS NOT NULL THEN
        SELECT pg_catalog.max(f.loaded_at) INTO last_loaded FROM calo_recon.ingested_files f WHERE f.transactions > 0;
        IF last_loaded IS NULL OR pg_catalog.now() - last_loaded > settings.max_data_age THEN
            raised_id := calo_recon.raise_system_alert('stale_data',
                pg_catalog.jsonb_build_object('last_loaded_at', last_loaded, 'max_data_age', settings.max_data_age));
            IF raised_id IS NOT NULL THEN
                system_raised := system_raised || raised_id;
            END IF;
        END IF;
    END IF;
    IF settings.max_data_age IS NULL OR pg_catalog.now() - last_loaded <= settings.max_data_age THEN
        WITH solved AS (
            UPDATE calo_recon.alerts a
               SET resolved_at = pg_catalog.now(),
                   resolution = CASE WHEN settings.max_data_age IS NULL THEN 'calo_recon.max_data_age is off'
                                     ELSE pg_catalog.format('a file with transactions was loaded at %s', last_loaded) END
             WHERE a.alert_kind = 'stale_data' AND a.txn_id IS NULL AND a.resolved_at IS NULL
            RETURNING a.alert_kind
        )
        SELECT resolved_kinds || coalesce(pg_catalog.array_agg(x.alert_kind), '{}') INTO resolved_kinds FROM solved x;
    END IF;

    -- one notification for the discrepancies and conflicts (the system
    -- alerts sent their own), with the insert-time trigger's payload
    IF pg_catalog.cardinality(ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(ids, kinds));
    END IF;
    RETURN QUERY
    SELECT k.alert_kind,
           (SELECT pg_catalog.count(*) FROM unnest(ids || system_raised) AS r(alert_id)
            JOIN calo_recon.alerts a ON a.alert_id = r.alert_id WHERE a.alert_kind = k.alert_kind),
           (SELECT pg_catalog.count(*) FROM unnest(resolved_kinds) AS x(alert_kind) WHERE x.alert_kind = k.alert_kind)
    FROM calo_recon.alert_kinds k
    WHERE k.raised_by IN ('raise_alerts', 'refresh')
    ORDER BY k.alert_kind;
END;
$$;
COMMENT ON FUNCTION calo_recon.raise_alerts() IS
  'Raises the alerts no inserted transaction raises: discrepancy for each new balance error at or above the tolerance, conflict for each transaction id newly delivered with a different payload (both once, not for rows logged before now() - calo_recon.alert_backfill_age, and with calo_recon.alerts off only recorded as seen), refresh_failed or refresh_skipped when the last run that ended failed, stale_data when no file with transactions was loaded for calo_recon.max_data_age; resolves refresh alerts after a successful run and stale_data once data is fresh; on a Citus cluster, first the insert-time alerts of the transactions a bare INSERT or COPY stored (calo_recon.alert_queue). One NOTIFY calo_recon_alerts for what it raised. Returns per kind the alerts raised and resolved. Takes the writer lock first (it waits for an ingest or a refresh). refresh() calls it at the end of every run';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_alerts() FROM PUBLIC;

CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'raise_run_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views and the amount thresholds, EXECUTE on the functions the views compute the queued users'' report totals with), monitor (schema USAGE, the health view, the amount thresholds and check_health(); no wallet data), analyst (reader + reading models, scores and feedback, recording feedback, setting the amount rule''s thresholds; no other write right on any table) or operator (reader + reading every table; refresh, ingestion, reconciliation, training, scoring, exports, alerts and retention through the SECURITY DEFINER entry points of calo_recon.definer_entry_points, with no write right on the record and no server-file role needed; currencies and the active model; feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights';
REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM PUBLIC;
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of ops audit, refresh

-- Money of two currencies is never added up: user_summary and
-- user_summary_in give one row per user and currency (the report totals
-- store one user_totals row per user and currency), and an overdraft run is
-- of one currency (overdraft_episodes loses its branch for runs over
-- several).  The tables and functions keep their columns.  The update from
-- 1.1 queues every user (above), so no stored total of the old shape is
-- read.
COMMENT ON FUNCTION calo_recon.user_figures(text[], timestamptz, timestamptz) IS
  'Internal to user_summary and user_summary_in: per user of user_ids (all when NULL) and currency, the figures of their transactions in that currency logged in [period_from, period_to) (NULL: open) in chain order, as reconcile() stores them in user_totals: count, first and last time, currency, opening (old_balance of the first) and closing (new_balance of the last) balance, overdrafts, credits and debits gross and net, VAT; exact, not rounded';
COMMENT ON FUNCTION calo_recon.user_overdraft_episodes(text[]) IS
  'Internal to overdraft_episodes: the runs of consecutive negative balances (is_overdraft) of the users of user_ids (all when NULL) per currency in chain order, as reconcile() stores them in overdraft_episode_totals: one row per run, with the lowest new_balance of its rows (exact); low_currency is the run''s currency and run_currencies 1';
COMMENT ON TABLE calo_recon.user_totals IS
  'Internal to user_summary: user_figures() of each user, one row per currency, as of their last reconcile(); user_summary reads the queued users live instead. Money NULL where the exact math cannot hold it. Not dumped: a restore queues every user again';
COMMENT ON COLUMN calo_recon.user_totals.transactions IS 'Number of transactions in the currency';
COMMENT ON COLUMN calo_recon.user_totals.first_logged_at IS 'First transaction time in the currency';
COMMENT ON COLUMN calo_recon.user_totals.last_logged_at IS 'Last transaction time in the currency';
COMMENT ON COLUMN calo_recon.user_totals.currency IS 'Currency of the row''s transactions';
COMMENT ON COLUMN calo_recon.user_totals.opening_balance IS 'old_balance of the first transaction in the currency in chain order, exact';
COMMENT ON COLUMN calo_recon.user_totals.closing_balance IS 'new_balance of the last transaction in the currency in chain order, exact';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.currency IS 'Currency of the run''s transactions';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.ended_at IS 'logged_at of the next transaction in the currency after the run; NULL while still negative';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.low_currency IS 'The run''s currency (a run is of one currency)';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.low_balance IS 'The lowest new_balance of the run''s rows, exact; NULL when the exact math cannot hold it';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.run_currencies IS 'Always 1: a run is of one currency';

CREATE OR REPLACE VIEW calo_recon.user_summary AS
-- Every part is keyed by user_id and referenced once, so a filter on
-- user_id reaches the stored rows and the user's counts only.  One row per
-- user and currency: money of two currencies is never added up.
WITH txn AS (
    SELECT s.user_id, s.transactions, s.first_logged_at, s.last_logged_at, s.currency,
           s.opening_balance, s.closing_balance, s.overdrafts, s.credits_total, s.debits_total,
           s.credits_net, s.debits_net, s.vat_total
    FROM calo_recon.user_totals s
    WHERE NOT EXISTS (SELECT FROM calo_recon.pending_reconcile p WHERE p.user_id = s.user_id)
    UNION ALL
    SELECT l.user_id, l.transactions, l.first_logged_at, l.last_logged_at, l.currency,
           l.opening_balance, l.closing_balance, l.overdrafts, l.credits_total, l.debits_total,
           l.credits_net, l.debits_net, l.vat_total
    FROM calo_recon.user_figures(coalesce((SELECT pg_catalog.array_agg(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p), '{}'), NULL, NULL) l
    UNION ALL
    -- users seen only in balance errors or rejections (no currency)
    SELECT o.user_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM (SELECT e.user_id FROM calo_recon.balance_errors e
          UNION SELECT n.user_id FROM calo_recon.negative_balance_rejections n) o
    WHERE NOT EXISTS (SELECT FROM calo_recon.transactions t WHERE t.user_id = o.user_id)
),
findings AS (
    SELECT f.user_id, f.currency,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
           pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
    FROM calo_recon.reconciliation_findings f
    GROUP BY f.user_id, f.currency
),
-- a discrepancy in the currency the discrepancies view gives it (of its
-- transaction, else of the user's latest); NULL for a user without any
disc AS (
    SELECT d.user_id, d.currency, pg_catalog.count(*) AS discrepancies
    FROM calo_recon.discrepancies d GROUP BY d.user_id, d.currency
),
-- a rejection has no transaction: in the currency of the user's latest,
-- the discrepancies view's fallback
rej AS (
    SELECT g.user_id, latest.currency, g.rejections
    FROM (SELECT r.user_id, pg_catalog.count(*) AS rejections
          FROM calo_recon.negative_balance_rejections r GROUP BY r.user_id) g
    LEFT JOIN LATERAL (
        SELECT t.currency FROM calo_recon.transactions t WHERE t.user_id = g.user_id
        ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC LIMIT 1
    ) latest ON true
)
SELECT x.user_id,
       coalesce(x.transactions, 0) AS transactions,
       x.first_logged_at, x.last_logged_at, x.currency,
       calo_recon.round_money(x.closing_balance, cu.minor_unit) AS current_balance,
       coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
       coalesce(f.chain_breaks, 0) AS chain_breaks,
       coalesce(f.drift, 0) AS drift,
       coalesce(x.overdrafts, 0) AS overdrafts,
       coalesce(d.discrepancies, 0) AS discrepancies,
       coalesce(r.rejections, 0) AS rejections,
       calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.credits_total END, cu.minor_unit) AS credits_total,
       calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.debits_total END, cu.minor_unit) AS debits_total,
       calo_recon.round_money(x.opening_balance, cu.minor_unit) AS opening_balance,
       calo_recon.round_money(x.credits_net, cu.minor_unit) AS credits_net,
       calo_recon.round_money(x.debits_net, cu.minor_unit) AS debits_net,
       calo_recon.round_money(x.vat_total, cu.minor_unit) AS vat_total,
       calo_recon.within_tolerance(calo_recon.wallet_gap(x.opening_balance, x.credits_net, x.debits_net,
                                                         x.closing_balance), cu.minor_unit) AS reconciles,
       calo_recon.round_money(calo_recon.wallet_gap(x.opening_balance, x.credits_net, x.debits_net,
                                                    x.closing_balance), cu.minor_unit) AS reconcile_difference
FROM txn x
LEFT JOIN calo_recon.currencies cu ON cu.code = x.currency
LEFT JOIN findings f ON f.user_id = x.user_id AND f.currency = x.currency
LEFT JOIN disc d ON d.user_id = x.user_id AND d.currency IS NOT DISTINCT FROM x.currency
LEFT JOIN rej r ON r.user_id = x.user_id AND r.currency IS NOT DISTINCT FROM x.currency;
COMMENT ON VIEW calo_recon.user_summary IS
  'One row per user and currency of their transactions (one row without a currency for a user seen only in balance errors or rejections): activity, opening and closing balance, credits, debits and VAT in that currency, whether they add up (opening_balance + credits_net - debits_net = current_balance), and counts of breaks, drift, overdrafts, discrepancies and refused debits (those without a transaction of their own in the currency of the user''s latest transaction, as in discrepancies). Money of two currencies is never added up. Money rounded to the currency''s minor unit (round_money). Break and drift counts are as of the last calo_recon.reconcile(). A money figure one of whose values is outside the exact range of the reconciliation (out_of_range in balance_breaks) is NULL. WHERE user_id = ... reads only that user''s rows';
COMMENT ON COLUMN calo_recon.user_summary.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.user_summary.transactions IS 'Number of transactions in the currency';
COMMENT ON COLUMN calo_recon.user_summary.first_logged_at IS 'First transaction time in the currency';
COMMENT ON COLUMN calo_recon.user_summary.last_logged_at IS 'Last transaction time in the currency';
COMMENT ON COLUMN calo_recon.user_summary.currency IS 'Currency of the row''s transactions and money; NULL for a user without transactions';
COMMENT ON COLUMN calo_recon.user_summary.current_balance IS 'Closing balance: new_balance of the last transaction in the currency in chain order (logged_at, txn_id)';
COMMENT ON COLUMN calo_recon.user_summary.arithmetic_breaks IS 'Arithmetic breaks of the transactions in the currency (see balance_breaks)';
COMMENT ON COLUMN calo_recon.user_summary.chain_breaks IS 'Chain breaks of the transactions in the currency (see balance_breaks)';
COMMENT ON COLUMN calo_recon.user_summary.drift IS 'Precision drift findings of the transactions in the currency (see precision_drift)';
COMMENT ON COLUMN calo_recon.user_summary.overdrafts IS 'Transactions in the currency with a negative new_balance';
COMMENT ON COLUMN calo_recon.user_summary.discrepancies IS 'Balance errors at or above the tolerance in the currency discrepancies gives them (see discrepancies)';
COMMENT ON COLUMN calo_recon.user_summary.rejections IS 'Debits refused for overdraft (negative_balance_rejections), on the row of the currency of the user''s latest transaction';
COMMENT ON COLUMN calo_recon.user_summary.credits_total IS 'Sum of amount (gross, VAT included) over CREDIT transactions in the currency (legacy rows whose balance did not decrease count as credits)';
COMMENT ON COLUMN calo_recon.user_summary.debits_total IS 'Sum of amount (gross, VAT included) over DEBIT transactions in the currency (legacy rows whose balance decreased count as debits)';
COMMENT ON COLUMN calo_recon.user_summary.opening_balance IS 'Opening balance: old_balance of the first transaction in the currency in chain order';
COMMENT ON COLUMN calo_recon.user_summary.credits_net IS 'Sum of amount - vat over credits in the currency: what credits added to the wallet';
COMMENT ON COLUMN calo_recon.user_summary.debits_net IS 'Sum of amount - vat over debits in the currency: what debits took from the wallet';
COMMENT ON COLUMN calo_recon.user_summary.vat_total IS 'Sum of vat over the transactions in the currency';
COMMENT ON COLUMN calo_recon.user_summary.reconciles IS 'true when opening_balance + credits_net - debits_net equals current_balance within the tolerance (half a minor unit), computed on the logged values; NULL without transactions';
COMMENT ON COLUMN calo_recon.user_summary.reconcile_difference IS 'current_balance - (opening_balance + credits_net - debits_net), rounded to the minor unit: what the breaks of the user in the currency add up to';

-- user_summary over a period (export_reports, export_workbook): the same
-- columns, each of the period [period_from, period_to) (NULL: open).  The
-- figures come from user_figures, as user_summary's; the projection below
-- is user_summary's, which test/sql/79_report_totals.sql checks by
-- comparing the two over an open period.
CREATE OR REPLACE FUNCTION calo_recon.user_summary_in(period_from timestamptz, period_to timestamptz)
RETURNS SETOF calo_recon.user_summary
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF period_from IS NOT NULL AND period_to IS NOT NULL AND period_from >= period_to THEN
        RAISE EXCEPTION 'the period must end after it starts'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('period_from is %s, period_to is %s.', period_from, period_to),
                  HINT = 'The period is [period_from, period_to): period_to is excluded.';
    END IF;
    RETURN QUERY EXECUTE $q$
    WITH x AS (SELECT * FROM calo_recon.user_figures(NULL::pg_catalog.text[], $1, $2)),
    findings AS (
        SELECT f.user_id, f.currency,
               pg_catalog.count(*) FILTER (WHERE f.finding = 'arithmetic') AS arithmetic_breaks,
               pg_catalog.count(*) FILTER (WHERE f.finding = 'chain') AS chain_breaks,
               pg_catalog.count(*) FILTER (WHERE f.finding IN ('drift', 'chain_drift')) AS drift
        FROM calo_recon.reconciliation_findings f
        WHERE ($1 IS NULL OR f.logged_at >= $1) AND ($2 IS NULL OR f.logged_at < $2)
        GROUP BY f.user_id, f.currency
    ),
    disc AS (
        SELECT d.user_id, d.currency, pg_catalog.count(*) AS discrepancies
        FROM calo_recon.discrepancies d
        WHERE ($1 IS NULL OR d.logged_at >= $1) AND ($2 IS NULL OR d.logged_at < $2)
        GROUP BY d.user_id, d.currency
    ),
    rej AS (
        SELECT g.user_id, latest.currency, g.rejections
        FROM (SELECT r.user_id, pg_catalog.count(*) AS rejections
              FROM calo_recon.negative_balance_rejections r
              WHERE ($1 IS NULL OR r.logged_at >= $1) AND ($2 IS NULL OR r.logged_at < $2)
              GROUP BY r.user_id) g
        LEFT JOIN LATERAL (
            SELECT t.currency FROM calo_recon.transactions t WHERE t.user_id = g.user_id
            ORDER BY calo_recon.chain_key(t.logged_at, t.txn_id) DESC LIMIT 1
        ) latest ON true
    ),
    users AS (
        -- with an open period, every row of user_summary; else the users'
        -- currencies with a transaction in it (the export's rule)
        SELECT x.user_id, x.currency FROM x
        UNION ALL
        SELECT o.user_id, NULL FROM (
            SELECT e.user_id FROM calo_recon.balance_errors e WHERE $1 IS NULL AND $2 IS NULL
            UNION SELECT n.user_id FROM calo_recon.negative_balance_rejections n WHERE $1 IS NULL AND $2 IS NULL) o
        WHERE NOT EXISTS (SELECT FROM x WHERE x.user_id = o.user_id)
    )
    SELECT u.user_id,
           coalesce(x.transactions, 0) AS transactions,
           x.first_logged_at, x.last_logged_at, x.currency,
           calo_recon.round_money(x.closing_balance, cu.minor_unit) AS current_balance,
           coalesce(f.arithmetic_breaks, 0) AS arithmetic_breaks,
           coalesce(f.chain_breaks, 0) AS chain_breaks,
           coalesce(f.drift, 0) AS drift,
           coalesce(x.overdrafts, 0) AS overdrafts,
           coalesce(d.discrepancies, 0) AS discrepancies,
           coalesce(r.rejections, 0) AS rejections,
           calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.credits_total END, cu.minor_unit) AS credits_total,
           calo_recon.round_money(CASE WHEN x.transactions IS NULL THEN 0 ELSE x.debits_total END, cu.minor_unit) AS debits_total,
           calo_recon.round_money(x.opening_balance, cu.minor_unit) AS opening_balance,
           calo_recon.round_money(x.credits_net, cu.minor_unit) AS credits_net,
           calo_recon.round_money(x.debits_net, cu.minor_unit) AS debits_net,
           calo_recon.round_money(x.vat_total, cu.minor_unit) AS vat_total,
           calo_recon.within_tolerance(calo_recon.wallet_gap(x.opening_balance, x.credits_net, x.debits_net,
                                                             x.closing_balance), cu.minor_unit) AS reconciles,
           calo_recon.round_money(calo_recon.wallet_gap(x.opening_balance, x.credits_net, x.debits_net,
                                                        x.closing_balance), cu.minor_unit) AS reconcile_difference
    FROM users u
    LEFT JOIN x ON x.user_id = u.user_id AND x.currency = u.currency
    LEFT JOIN calo_recon.currencies cu ON cu.code = x.currency
    LEFT JOIN findings f ON f.user_id = u.user_id AND f.currency = u.currency
    LEFT JOIN disc d ON d.user_id = u.user_id AND d.currency IS NOT DISTINCT FROM u.currency
    LEFT JOIN rej r ON r.user_id = u.user_id AND r.currency IS NOT DISTINCT FROM u.currency
    $q$ USING period_from, period_to;
END;
$$;
COMMENT ON FUNCTION calo_recon.user_summary_in(timestamptz, timestamptz) IS
  'user_summary over the period [period_from, period_to) (NULL: open), as export_reports() and export_workbook() write it: one row per user and currency with a transaction in the period (every row of user_summary when both ends are open), with the period''s figures in that currency: transactions, first and last time, opening balance (old_balance of the first transaction in the period, chain order), credits, debits and VAT within it, closing balance (new_balance of its last transaction) and whether opening + credits_net - debits_net = closing (reconcile_difference the gap), and the breaks, drift, overdrafts, discrepancies and refused debits logged in it (counted in a currency as user_summary counts them; one in a currency without a transaction in the period is not shown). 22023 when the period does not end after it starts';

CREATE OR REPLACE VIEW calo_recon.overdraft_episodes AS
-- a filter on user_id reaches the stored rows; the run's lowest balance
-- rounded to the minor unit of its currency
SELECT e.user_id, e.currency, e.started_at, e.ended_at,
       calo_recon.round_money(e.low_balance, cu.minor_unit) AS lowest_balance,
       e.transactions, e.first_txn_id, e.last_txn_id
FROM (SELECT s.user_id, s.currency, s.started_at, s.ended_at, s.transactions, s.first_txn_id,
             s.last_txn_id, s.low_balance
      FROM calo_recon.overdraft_episode_totals s
      WHERE NOT EXISTS (SELECT FROM calo_recon.pending_reconcile p WHERE p.user_id = s.user_id)
      UNION ALL
      SELECT l.user_id, l.currency, l.started_at, l.ended_at, l.transactions, l.first_txn_id,
             l.last_txn_id, l.low_balance
      FROM calo_recon.user_overdraft_episodes(coalesce((SELECT pg_catalog.array_agg(DISTINCT p.user_id) FROM calo_recon.pending_reconcile p), '{}')) l) e
LEFT JOIN calo_recon.currencies cu ON cu.code = e.currency;
COMMENT ON VIEW calo_recon.overdraft_episodes IS
  'Runs of consecutive negative balances per user and currency in chain order (logged_at, txn_id), the user''s transactions in other currencies left out: when the wallet went below zero in that currency, how low it went and when its next transaction in that currency brought it back to zero or above';
COMMENT ON COLUMN calo_recon.overdraft_episodes.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.overdraft_episodes.currency IS 'Currency of the run''s transactions';
COMMENT ON COLUMN calo_recon.overdraft_episodes.started_at IS 'logged_at of the first transaction that left the balance negative';
COMMENT ON COLUMN calo_recon.overdraft_episodes.ended_at IS 'logged_at of the next transaction in the currency, which brought the balance back to zero or above; NULL while still negative';
COMMENT ON COLUMN calo_recon.overdraft_episodes.lowest_balance IS 'Lowest new_balance during the run, rounded to the currency''s minor unit';
COMMENT ON COLUMN calo_recon.overdraft_episodes.transactions IS 'Number of consecutive transactions in the currency with a negative new_balance';
COMMENT ON COLUMN calo_recon.overdraft_episodes.first_txn_id IS 'First negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episodes.last_txn_id IS 'Last negative transaction of the run';
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of money per currency

-- session 10 (alerts follow the reconciliation): reconcile() raises the
-- alerts its findings call for that no open alert carries (an UPDATE, a
-- DELETE, an upsert, a re-insert, a currency's minor unit), through the
-- insert-time check's insert and NOTIFY, now shared; TRUNCATE and currency
-- edits queue their users; the insert-time check fails with 40001 when a
-- REPEATABLE READ snapshot misses a committed row of the user.  OR REPLACE
-- keeps the grants the functions were given.
ALTER TABLE calo_recon.pending_reconcile
    ADD COLUMN alerts boolean NOT NULL DEFAULT coalesce(pg_catalog.current_setting('calo_recon.alerts', true), 'on')::boolean;
COMMENT ON COLUMN calo_recon.pending_reconcile.alerts IS
  'calo_recon.alerts of the session that queued the entry: reconcile() raises the alerts of new breaks only for users with an entry queued while alerts were on, so a load with alerts off pages nobody later (README "Real-time alerts")';
CREATE FUNCTION calo_recon.chain_snapshot_behind(user_ids text[]) RETURNS boolean
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_chain_snapshot_behind';
COMMENT ON FUNCTION calo_recon.chain_snapshot_behind(text[]) IS
  'Internal to the alert trigger: under REPEATABLE READ or SERIALIZABLE, true when the transaction''s snapshot misses a committed change to the stored rows of these users that a snapshot taken now sees (the chain check would compare with a stale predecessor); false under READ COMMITTED and on a Citus cluster';
REVOKE ALL ON FUNCTION calo_recon.chain_snapshot_behind(text[]) FROM PUBLIC;

-- The alerts follow the reconciliation (README "Real-time alerts"): the
-- insert-time check (calo_recon.alert_new_transactions) raises at once, and
-- reconcile() (so every ingest and refresh()) makes the open arithmetic,
-- chain and out_of_range alerts of the users it walks agree with its
-- findings: it resolves those the findings do not support and raises, through
-- the same code as the insert-time check (raise_transaction_alerts,
-- notify_alerts), those the findings call for that no open alert carries
-- (src/glue/recon_glue.c, recon_sync_alerts).  So an UPDATE, a DELETE, an
-- upsert, a TRUNCATE or a currency's new minor unit, which raise nothing at
-- once, are alerted by the next reconciliation of their users, which the
-- triggers below and those of sql/install/41_reconcile_queue.sql queue.

-- The backfill rule's one home: a transaction logged before this instant
-- raises no alert, by any path (NULL: calo_recon.alert_backfill_age is off).
CREATE FUNCTION calo_recon.alert_backfill_before() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.now() OPERATOR(pg_catalog.-) (calo_recon.ops_settings()).alert_backfill_age
$$;
COMMENT ON FUNCTION calo_recon.alert_backfill_before() IS
  'now() - calo_recon.alert_backfill_age: a transaction logged before it raises no alert (a backfill of history), whether checked at insert time or by reconcile(); NULL when the setting is 0 (off)';
REVOKE EXECUTE ON FUNCTION calo_recon.alert_backfill_before() FROM PUBLIC;

-- The detail of a break's alert, as the insert-time check and reconcile()
-- write it and reconcile() compares it with its finding.
CREATE FUNCTION calo_recon.break_alert_detail(expected numeric, actual numeric, difference numeric,
                                              tolerance numeric, currency text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.jsonb_build_object('expected', expected, 'actual', actual, 'difference', difference,
                                         'tolerance', tolerance, 'currency', currency)
$$;
COMMENT ON FUNCTION calo_recon.break_alert_detail(numeric, numeric, numeric, numeric, text) IS
  'detail of an arithmetic, chain or out_of_range alert: expected, actual, difference, tolerance and currency of the finding; an open alert whose detail differs from its finding''s is resolved by reconcile() and raised again';
REVOKE EXECUTE ON FUNCTION calo_recon.break_alert_detail(numeric, numeric, numeric, numeric, text) FROM PUBLIC;

-- Stores the alerts of transactions, in the order of the arrays' positions
-- given by txn_id then rank: the one insert of the insert-time check and of
-- reconcile().  A transaction has at most one open alert of a kind: one
-- already open is kept (the caller resolves those it replaces first).
CREATE FUNCTION calo_recon.raise_transaction_alerts(
    txn_ids text[], user_ids text[], alert_kinds text[], details jsonb[], ranks integer[],
    OUT alert_ids bigint[], OUT raised_kinds text[])
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET jit = off
SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    backfill_before timestamptz := calo_recon.alert_backfill_before();
    stale_ids text[];
BEGIN
    -- the rows logged before backfill_before raise no alert: looked up by id
    -- (not correlated per row: a Citus cluster cannot run that)
    IF backfill_before IS NOT NULL THEN
        SELECT pg_catalog.array_agg(t.txn_id) INTO stale_ids
        FROM calo_recon.transactions t
        WHERE t.txn_id IN (SELECT pg_catalog.unnest(txn_ids)) AND t.logged_at < backfill_before;
    END IF;
    WITH stored AS (
        INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
        SELECT f.txn_id, f.user_id, f.alert_kind, f.detail
        FROM unnest(txn_ids, user_ids, alert_kinds, details, ranks)  -- multi-argument form: unqualified
             AS f (txn_id, user_id, alert_kind, detail, ord)
        WHERE f.txn_id NOT IN (SELECT pg_catalog.unnest(stale_ids))
        ORDER BY f.txn_id, f.ord NULLS LAST
        ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
        RETURNING alert_id, alert_kind
    )
    SELECT coalesce(pg_catalog.array_agg(s.alert_id ORDER BY s.alert_id), '{}'),
           coalesce(pg_catalog.array_agg(s.alert_kind ORDER BY s.alert_id), '{}')
    INTO alert_ids, raised_kinds FROM stored s;
END;
$$;
COMMENT ON FUNCTION calo_recon.raise_transaction_alerts(text[], text[], text[], jsonb[], integer[]) IS
  'Internal to the insert-time check and reconcile(): stores one alert per position of the arrays (transaction, user, kind, detail, rank: ordered by transaction then rank), none for a transaction logged before alert_backfill_before() nor where the transaction has an open alert of the kind; returns the ids and kinds stored, for notify_alerts()';
REVOKE EXECUTE ON FUNCTION calo_recon.raise_transaction_alerts(text[], text[], text[], jsonb[], integer[]) FROM PUBLIC;

-- The one NOTIFY of a statement that raised alerts of transactions.
CREATE FUNCTION calo_recon.notify_alerts(alert_ids bigint[], alert_kinds text[]) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_catalog.cardinality(alert_ids) > 0 THEN
        PERFORM pg_catalog.pg_notify('calo_recon_alerts', calo_recon.alerts_notice(alert_ids, alert_kinds));
    END IF;
END;
$$;
COMMENT ON FUNCTION calo_recon.notify_alerts(bigint[], text[]) IS
  'Internal to the insert-time check and reconcile(): one NOTIFY calo_recon_alerts (payload alerts_notice) for the alerts a statement raised, none when it raised none';
REVOKE EXECUTE ON FUNCTION calo_recon.notify_alerts(bigint[], text[]) FROM PUBLIC;

-- TRUNCATE removes every transaction at once, with no transition table: the
-- users the last reconciliation knew (findings, report totals) and those of
-- open alerts are queued, so that refresh() clears their findings and
-- report rows, and the open alerts of the removed transactions are resolved
-- now.  Disabled on a Citus cluster (citus_layout), whose shards cannot reach
-- the alerts: there reconcile() everyone after a TRUNCATE.
CREATE FUNCTION calo_recon.track_truncated_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    users text[];
BEGIN
    SELECT pg_catalog.array_agg(u.user_id) INTO users
    FROM (SELECT f.user_id FROM calo_recon.reconciliation_findings f
          UNION SELECT ut.user_id FROM calo_recon.user_totals ut
          UNION SELECT a.user_id FROM calo_recon.alerts a
                WHERE a.resolved_at IS NULL AND a.txn_id IS NOT NULL AND a.user_id IS NOT NULL) u;
    INSERT INTO calo_recon.pending_reconcile (user_id)
    SELECT u.user_id FROM pg_catalog.unnest(users) AS u (user_id);
    UPDATE calo_recon.alerts a
    SET resolved_at = pg_catalog.now(),
        resolution = 'the transaction was removed by TRUNCATE calo_recon.transactions'
    WHERE a.resolved_at IS NULL AND a.txn_id IS NOT NULL
      AND a.alert_kind IN (SELECT k.alert_kind FROM calo_recon.alert_kinds k WHERE k.raised_by = 'insert');
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_truncated_transactions() IS
  'Trigger: after TRUNCATE calo_recon.transactions, queues in pending_reconcile the users of the findings, report totals and open alerts, and resolves the open insert-time alerts of transactions (resolution: removed by TRUNCATE)';
REVOKE ALL ON FUNCTION calo_recon.track_truncated_transactions() FROM PUBLIC;
CREATE TRIGGER transactions_track_truncated
    AFTER TRUNCATE ON calo_recon.transactions
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_truncated_transactions();

-- A currency's minor unit is its tolerance and rounding: a statement that
-- changes it (or adds or removes a currency: an unknown one counts with 2
-- decimals) queues the users with transactions in it.  It runs with the
-- writer's rights: grant_role() lets operators, who edit currencies, queue
-- users.  Disabled on a Citus cluster (citus_layout), where currencies is a
-- reference table: there reconcile() everyone after such an edit.
CREATE FUNCTION calo_recon.track_currency_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    codes text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT pg_catalog.array_agg(DISTINCT c.code) INTO codes
        FROM ((SELECT o.code, o.minor_unit FROM old_rows o EXCEPT SELECT n.code, n.minor_unit FROM new_rows n)
              UNION ALL
              (SELECT n.code, n.minor_unit FROM new_rows n EXCEPT SELECT o.code, o.minor_unit FROM old_rows o)) c;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(n.code) INTO codes FROM new_rows n;
    ELSE
        SELECT pg_catalog.array_agg(o.code) INTO codes FROM old_rows o;
    END IF;
    IF codes IS NOT NULL THEN
        INSERT INTO calo_recon.pending_reconcile (user_id)
        SELECT DISTINCT t.user_id FROM calo_recon.transactions t
        WHERE t.currency OPERATOR(pg_catalog.=) ANY (codes);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_currency_changes() IS
  'Trigger: queues in pending_reconcile the users with transactions in a currency whose minor unit a statement set, changed or removed, so that the next reconciliation applies its tolerance';
REVOKE ALL ON FUNCTION calo_recon.track_currency_changes() FROM PUBLIC;
-- one trigger per event: a trigger with transition tables has one event
CREATE TRIGGER currencies_track_inserted
    AFTER INSERT ON calo_recon.currencies
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_currency_changes();
CREATE TRIGGER currencies_track_updated
    AFTER UPDATE ON calo_recon.currencies
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_currency_changes();
CREATE TRIGGER currencies_track_deleted
    AFTER DELETE ON calo_recon.currencies
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_currency_changes();

CREATE OR REPLACE FUNCTION calo_recon.alert_new_transactions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    users text[];
    first_new timestamptz[];
    new_ids text[];
    -- the new rows logged since backfill_before, and the walk's rows before it
    fresh_ids text[];
    -- the new rows the amount rule is asked about: only a row above the
    -- lowest threshold can be above its own (a million-row COPY probed
    -- amount_rule_hits a million times by primary key)
    rule_ids text[];
    lowest_threshold numeric;
    model record;
    model_users text[];
    -- rows logged before it raise no alert (a backfill of history)
    backfill_before timestamptz;
    raised_ids bigint[] := '{}';
    raised_kinds text[] := '{}';
    stored_ids bigint[];
    stored_kinds text[];
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
    IF calo_recon.alert_check_deferred() THEN
        INSERT INTO calo_recon.alert_queue (user_id, txn_id)
        SELECT n.user_id, n.txn_id FROM new_rows n;
        RETURN NULL;
    END IF;
    -- read only by a check that runs: a deferred one (each file of
    -- ingest_file) stops above
    lowest_threshold := (SELECT pg_catalog.min(a.threshold) FROM calo_recon.amount_thresholds a);
    backfill_before := calo_recon.alert_backfill_before();

    -- each user of the new rows with its earliest new instant: where the
    -- walk starts re-checking
    SELECT pg_catalog.array_agg(u.user_id), pg_catalog.array_agg(u.first_new)
    INTO users, first_new
    FROM (SELECT n.user_id, pg_catalog.min(n.logged_at) AS first_new
          FROM new_rows n GROUP BY n.user_id) u;

    -- wait for concurrent inserts of these users, so that the statement
    -- below (a new snapshot under READ COMMITTED) sees their rows; a
    -- REPEATABLE READ or SERIALIZABLE snapshot cannot see them, so such an
    -- insert that had to wait fails as a serialization failure, to be
    -- retried, and so does one whose snapshot misses a row of these users
    -- committed before it took the locks (chain_snapshot_behind)
    IF (calo_recon.lock_user_chains(users)
        AND pg_catalog.current_setting('transaction_isolation') <> 'read committed')
       OR calo_recon.chain_snapshot_behind(users) THEN
        RAISE EXCEPTION 'could not check the chain of a transaction: a concurrent insert of the same user ended after this transaction''s snapshot was taken'
            USING ERRCODE = 'serialization_failure',
                  HINT = 'Retry the transaction; the chain alert needs the user''s previous transaction.';
    END IF;

    -- the walk of reconcile() over the stored rows (chain order and rules in
    -- C, each row against its predecessor in chain order): the findings of
    -- the new rows, and the chain findings of the stored rows after them,
    -- whose predecessor may now be a new row
    SELECT pg_catalog.array_agg(n.txn_id),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE backfill_before IS NULL OR n.logged_at >= backfill_before),
           pg_catalog.array_agg(n.txn_id) FILTER (WHERE (backfill_before IS NULL OR n.logged_at >= backfill_before)
                                                  AND n.amount > lowest_threshold)
    INTO new_ids, fresh_ids, rule_ids FROM new_rows n;
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
                   ELSE calo_recon.break_alert_detail(w.expected, w.actual, w.difference, w.tolerance, w.currency)
               END AS detail,
               calo_recon.finding_rank(w.finding) AS ord
        FROM walked w
        WHERE (w.is_new AND (calo_recon.is_break(w.finding) OR w.finding = 'overdraft'))
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

    -- so is an open alert of the walk's kinds on a new row's id that the
    -- walk does not make with that user and detail: a row of that id was
    -- deleted and stored again (README "Real-time alerts"); = ANY: the open
    -- alerts' index for a few rows
    UPDATE calo_recon.alerts a
    SET resolved_at = pg_catalog.now(),
        resolution = CASE WHEN EXISTS (SELECT FROM unnest(found_txns, found_kinds) AS f(txn_id, kind)  -- multi-argument form: unqualified
                                       WHERE f.txn_id = a.txn_id AND f.kind = a.alert_kind)
                          THEN 'the transaction was stored again with another finding of this kind, raised as a new alert'
                          ELSE 'the transaction was stored again without this finding'
                     END
    WHERE a.txn_id = ANY (new_ids) AND a.resolved_at IS NULL
      AND (calo_recon.is_break(a.alert_kind) OR a.alert_kind = 'overdraft')
      AND NOT EXISTS (SELECT FROM unnest(found_txns, found_users, found_kinds, found_details)  -- multi-argument form: unqualified
                             AS f(txn_id, user_id, kind, detail)
                      WHERE f.txn_id = a.txn_id AND f.kind = a.alert_kind AND f.user_id = a.user_id
                        AND f.detail = a.detail);

    -- the walk's findings and the amount rule, through the insert of
    -- reconcile() too (raise_transaction_alerts: none for the rows logged
    -- before alert_backfill_before())
    SELECT r.alert_ids, r.raised_kinds INTO stored_ids, stored_kinds
    FROM (SELECT coalesce(found_txns, '{}') || coalesce(pg_catalog.array_agg(h.txn_id), '{}') AS txn_ids,
                 coalesce(found_users, '{}') || coalesce(pg_catalog.array_agg(h.user_id), '{}') AS user_ids,
                 coalesce(found_kinds, '{}') || coalesce(pg_catalog.array_agg('amount_rule'::text), '{}') AS kinds,
                 coalesce(found_details, '{}')
                   || coalesce(pg_catalog.array_agg(pg_catalog.jsonb_build_object('amount', h.amount, 'threshold', h.threshold,
                                                                                  'currency', h.currency)), '{}') AS details,
                 -- the amount rule after the walk's findings
                 coalesce(found_ranks, '{}') || coalesce(pg_catalog.array_agg(NULL::integer), '{}') AS ranks
          FROM calo_recon.amount_rule_hits h
          -- the ids, not a join to new_rows: Citus cannot read a transition
          -- table in a query over a distributed table (README "Scaling out
          -- with Citus"); IN (unnest), not = ANY: a hashed semi-join for a
          -- bulk insert's many ids.  The view decides; it is asked only about
          -- rule_ids
          WHERE h.txn_id IN (SELECT pg_catalog.unnest(rule_ids))) f
    CROSS JOIN LATERAL calo_recon.raise_transaction_alerts(f.txn_ids, f.user_ids, f.kinds, f.details, f.ranks) r;
    raised_ids := raised_ids || stored_ids;
    raised_kinds := raised_kinds || stored_kinds;

    -- each active model, through the scoring path of score_transactions()
    -- (calo_recon.model_scores: only the users of the new rows are read and
    -- walked, and only the new rows scored), alerts the new rows that
    -- calo_recon.transaction_models gives it (no model part in partial builds)
    IF pg_catalog.to_regclass('calo_recon.models') IS NOT NULL THEN
        FOR model IN SELECT m.* FROM calo_recon.models m WHERE m.active ORDER BY m.model_id LOOP
            CONTINUE WHEN model.features IS DISTINCT FROM calo_recon.transaction_feature_names();
            SELECT pg_catalog.array_agg(DISTINCT tm.user_id) INTO model_users
            FROM calo_recon.transaction_models tm
            WHERE tm.txn_id IN (SELECT pg_catalog.unnest(new_ids)) AND tm.model_id = model.model_id;
            CONTINUE WHEN model_users IS NULL;
            WITH stored AS (
                INSERT INTO calo_recon.alerts (txn_id, user_id, alert_kind, detail)
                SELECT s.txn_id, s.user_id, 'model',
                       pg_catalog.jsonb_build_object('score', s.score, 'threshold', model.threshold,
                                                     'model_id', model.model_id, 'model_name', model.model_name)
                FROM calo_recon.model_scores(model.model_id, model_users, coalesce(fresh_ids, '{}')) s
                JOIN calo_recon.transaction_models tm ON tm.txn_id = s.txn_id AND tm.model_id = model.model_id
                WHERE s.flagged AND s.txn_id IN (SELECT pg_catalog.unnest(fresh_ids))
                ORDER BY s.txn_id
                ON CONFLICT (txn_id, alert_kind) WHERE resolved_at IS NULL DO NOTHING
                RETURNING alert_id, alert_kind
            )
            SELECT raised_ids || pg_catalog.array_agg(stored.alert_id ORDER BY stored.alert_id),
                   raised_kinds || pg_catalog.array_agg(stored.alert_kind ORDER BY stored.alert_id)
            INTO raised_ids, raised_kinds FROM stored;
        END LOOP;
    END IF;

    -- one notification for the statement, with the count (the alert ids
    -- keep NOTIFY from folding two statements' equal payloads)
    PERFORM calo_recon.notify_alerts(raised_ids, raised_kinds);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    -- an operator's edit of a currency's minor unit queues the users with
    -- transactions in it through a trigger that runs with the writer's
    -- rights (track_currency_changes)
    queue_users text := 'GRANT INSERT (user_id) ON calo_recon.pending_reconcile TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name)
            || format(queue_users, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;

CREATE OR REPLACE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[], enabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed',
            '{transactions_alert,transactions_anomaly_input,transactions_track_truncated}'::name[],
            '{transactions_alert_queue}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}', '{}'),
           ('calo_recon.alert_queue', 'distributed', '{}', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}', '{}'),
           -- the scores beside their transactions, written per shard group
           -- by score_placement(); daily_summary counts live on a cluster
           ('calo_recon.transaction_scores', 'distributed', '{transaction_scores_anomaly_input}', '{}'),
           -- its override trigger replaces the built-in row on each placement
           -- (the queueing of a currency's users after an edit cannot reach
           -- the shards from a placement: reconcile() everyone instead)
           ('calo_recon.currencies', 'reference',
            '{currencies_track_inserted,currencies_track_updated,currencies_track_deleted}', '{}')
$$;

-- a cluster distributed before: the new triggers cannot run there (citus_layout)
DO $do$
BEGIN
    IF calo_recon.is_distributed() THEN
        ALTER TABLE calo_recon.transactions DISABLE TRIGGER transactions_track_truncated;
        ALTER TABLE calo_recon.currencies DISABLE TRIGGER currencies_track_inserted;
        ALTER TABLE calo_recon.currencies DISABLE TRIGGER currencies_track_updated;
        ALTER TABLE calo_recon.currencies DISABLE TRIGGER currencies_track_deleted;
    END IF;
END
$do$;
-- the roles granted before: their rights on the new functions, operators'
-- queueing of a currency's users
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of session 10 alerts follow the reconciliation

-- merge of the session-10 audit fixes: the operations block (raise_run_alert
-- kept from analysts) and the alerts block (INSERT (user_id) on
-- pending_reconcile for operators) each replaced grant_role from its own
-- base; this is the one that has both, as sql/install/73_roles.sql has it.
CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'raise_run_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    -- an operator's edit of a currency's minor unit queues the users with
    -- transactions in it through a trigger that runs with the writer's
    -- rights (track_currency_changes)
    queue_users text := 'GRANT INSERT (user_id) ON calo_recon.pending_reconcile TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name)
            || format(queue_users, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of the audit merge

-- session 10: stale scores scored again (README "Anomaly detection", Scores):
-- the rescore queue, its triggers on transactions, its work in
-- score_transactions() and train_model(), the scores emptied with the
-- transactions by TRUNCATE, and the queue in the Citus layout
CREATE TABLE calo_recon.pending_rescore (
    entry_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       text        NOT NULL,
    changed_from  timestamptz NOT NULL,
    gone_txn_id   text
);
COMMENT ON TABLE calo_recon.pending_rescore IS
  'Users whose transactions changed since their scores were computed, one entry per changing statement and user: score_transactions() (and train_model()) deletes every model''s scores of the user''s rows logged at or after changed_from and the entries it read, and score_transactions() scores those rows again';
COMMENT ON COLUMN calo_recon.pending_rescore.entry_id IS 'Surrogate key of the entry';
COMMENT ON COLUMN calo_recon.pending_rescore.user_id IS 'Wallet owner whose rows changed';
COMMENT ON COLUMN calo_recon.pending_rescore.changed_from IS 'Earliest logged_at of the rows the statement inserted, updated (old and new) or deleted for the user (of the gone row, for an entry naming one): the scores of the user''s rows from it on are stale';
COMMENT ON COLUMN calo_recon.pending_rescore.gone_txn_id IS 'A row that is no longer the user''s (deleted, or updated to another txn_id or user), whose scores go; NULL for an entry of the rows still there';

-- The queue's work (src/glue/score_glue.c): score_transactions() runs it
-- under the scorers' lock, train_model() before the snapshot it scores with.
CREATE FUNCTION calo_recon.drop_stale_scores() RETURNS bigint
    AS 'MODULE_PATHNAME', 'calo_recon_drop_stale_scores'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION calo_recon.drop_stale_scores() IS
  'Internal to score_transactions() and train_model(): deletes every model''s scores of the rows of the users queued in pending_rescore logged at or after the queued instant (and of rows no longer theirs), then the entries it read; returns the scores deleted. The next score_transactions() scores those rows again';
REVOKE ALL ON FUNCTION calo_recon.drop_stale_scores() FROM PUBLIC;

-- One function for the three events (a trigger with transition tables has
-- one event).  GROUP BY is hashed: a million-row COPY costs one pass.  A
-- DELETE queues each row it deleted, an UPDATE each row that left its user.  The
-- users are read into arrays first, as track_new_transactions does: on a
-- Citus cluster the trigger fires on a shard of transactions and Citus plans
-- the insert into (the colocated shard of) pending_rescore, which cannot
-- read a transition table.  An UPDATE queues only the rows whose columns the
-- features, the explanation or the choice of model read changed (old rows
-- not among the new ones and new rows not among the old ones): an update of
-- the metadata, of the source file or of a typed row's balances leaves the
-- scores as they are.
CREATE FUNCTION calo_recon.track_rescore() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    users text[];
    instants timestamptz[];
    gone text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT pg_catalog.array_agg(d.user_id), pg_catalog.array_agg(d.changed_from) INTO users, instants
        FROM (SELECT n.user_id, pg_catalog.min(n.logged_at) AS changed_from
              FROM new_rows n GROUP BY n.user_id) d;
    ELSIF TG_OP = 'UPDATE' THEN
        -- the balances give the direction of a legacy row (no txn_type) only
        SELECT pg_catalog.array_agg(d.user_id), pg_catalog.array_agg(d.changed_from),
               pg_catalog.array_agg(d.gone_txn_id) INTO users, instants, gone
        FROM (SELECT c.user_id, pg_catalog.min(c.logged_at) AS changed_from, NULL::text AS gone_txn_id
              FROM ((SELECT o.txn_id, o.user_id, o.txn_type, o.currency, o.amount, o.vat,
                            CASE WHEN o.txn_type IS NULL THEN o.old_balance END,
                            CASE WHEN o.txn_type IS NULL THEN o.new_balance END, o.logged_at FROM old_rows o
                     EXCEPT ALL
                     SELECT n.txn_id, n.user_id, n.txn_type, n.currency, n.amount, n.vat,
                            CASE WHEN n.txn_type IS NULL THEN n.old_balance END,
                            CASE WHEN n.txn_type IS NULL THEN n.new_balance END, n.logged_at FROM new_rows n)
                    UNION ALL
                    (SELECT n.txn_id, n.user_id, n.txn_type, n.currency, n.amount, n.vat,
                            CASE WHEN n.txn_type IS NULL THEN n.old_balance END,
                            CASE WHEN n.txn_type IS NULL THEN n.new_balance END, n.logged_at FROM new_rows n
                     EXCEPT ALL
                     SELECT o.txn_id, o.user_id, o.txn_type, o.currency, o.amount, o.vat,
                            CASE WHEN o.txn_type IS NULL THEN o.old_balance END,
                            CASE WHEN o.txn_type IS NULL THEN o.new_balance END, o.logged_at FROM old_rows o)) c
              GROUP BY c.user_id
              UNION ALL
              -- the rows no longer the user's
              SELECT o.user_id, o.logged_at, o.txn_id FROM old_rows o
              WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.user_id = o.user_id AND n.txn_id = o.txn_id)) d;
    ELSE
        SELECT pg_catalog.array_agg(o.user_id), pg_catalog.array_agg(o.logged_at), pg_catalog.array_agg(o.txn_id)
        INTO users, instants, gone
        FROM old_rows o;
    END IF;
    INSERT INTO calo_recon.pending_rescore (user_id, changed_from, gone_txn_id)
    SELECT q.user_id, q.changed_from, q.gone_txn_id
    FROM unnest(users, instants, gone) AS q (user_id, changed_from, gone_txn_id);  -- multi-argument form: unqualified
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.track_rescore() IS
  'Trigger: queues in pending_rescore the users of inserted, updated or deleted transactions with the earliest logged_at changed, for score_transactions() to score their rows from it on again';
REVOKE ALL ON FUNCTION calo_recon.track_rescore() FROM PUBLIC;
CREATE TRIGGER transactions_rescore_new
    AFTER INSERT ON calo_recon.transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_rescore();
CREATE TRIGGER transactions_rescore_updated
    AFTER UPDATE ON calo_recon.transactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_rescore();
CREATE TRIGGER transactions_rescore_deleted
    AFTER DELETE ON calo_recon.transactions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.track_rescore();

-- A TRUNCATE of transactions leaves every score referring to nothing: the
-- views join through transactions and serve none of them, but a txn_id
-- stored again under another user would then meet its old score in the key
-- (model_id, txn_id) when it is scored.  So the scores go with the rows, and
-- the queue with them (nothing is left to score again).  On a Citus cluster
-- distribute() disables it (citus_layout): the shards' truncate does not
-- reach it there.
CREATE FUNCTION calo_recon.truncate_scores() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    TRUNCATE calo_recon.transaction_scores, calo_recon.pending_rescore;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION calo_recon.truncate_scores() IS
  'Trigger: a TRUNCATE of transactions empties transaction_scores and pending_rescore, whose rows would refer to nothing';
REVOKE ALL ON FUNCTION calo_recon.truncate_scores() FROM PUBLIC;
CREATE TRIGGER transactions_truncate_scores
    AFTER TRUNCATE ON calo_recon.transactions
    FOR EACH STATEMENT EXECUTE FUNCTION calo_recon.truncate_scores();

CREATE OR REPLACE FUNCTION calo_recon.train_model(
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

CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued',
                                     'drop_stale_scores'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;

CREATE OR REPLACE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[], enabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed',
            '{transactions_alert,transactions_anomaly_input,transactions_truncate_scores}'::name[],
            '{transactions_alert_queue}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}', '{}'),
           ('calo_recon.pending_rescore', 'distributed', '{}', '{}'),
           ('calo_recon.alert_queue', 'distributed', '{}', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}', '{}'),
           -- the scores beside their transactions, written per shard group
           -- by score_placement(); daily_summary counts live on a cluster
           ('calo_recon.transaction_scores', 'distributed', '{transaction_scores_anomaly_input}', '{}'),
           -- its override trigger replaces the built-in row on each placement
           ('calo_recon.currencies', 'reference', '{}', '{}')
$$;

-- train_model() re-created: the entry points hardened again, then the
-- roles granted before get their rights on what changed
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of session 10 stale scores

-- merge of the session-10 audit fixes, again: the stale-scores block replaced
-- grant_role and citus_layout from its own base; these are the ones with every
-- block's change, as sql/install/73_roles.sql and 80_citus.sql have them.
CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'raise_run_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued',
                                     'drop_stale_scores'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    -- an operator's edit of a currency's minor unit queues the users with
    -- transactions in it through a trigger that runs with the writer's
    -- rights (track_currency_changes)
    queue_users text := 'GRANT INSERT (user_id) ON calo_recon.pending_reconcile TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name)
            || format(queue_users, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;
CREATE OR REPLACE FUNCTION calo_recon.citus_layout()
RETURNS TABLE (table_name regclass, placement text, disabled_triggers name[], enabled_triggers name[])
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('calo_recon.transactions'::regclass, 'distributed',
            '{transactions_alert,transactions_anomaly_input,transactions_track_truncated,transactions_truncate_scores}'::name[],
            '{transactions_alert_queue}'::name[]),
           ('calo_recon.shard_anchors', 'distributed', '{}', '{}'),
           ('calo_recon.balance_errors', 'distributed', '{}', '{}'),
           ('calo_recon.negative_balance_rejections', 'distributed', '{}', '{}'),
           ('calo_recon.reconciliation_findings', 'distributed', '{}', '{}'),
           ('calo_recon.pending_reconcile', 'distributed', '{}', '{}'),
           ('calo_recon.pending_rescore', 'distributed', '{}', '{}'),
           ('calo_recon.alert_queue', 'distributed', '{}', '{}'),
           -- the report totals reconcile_placement() writes per shard group;
           -- day_totals (per currency and day) stays on the coordinator,
           -- where reconcile() sums user_day_totals again after the shards
           ('calo_recon.user_totals', 'distributed', '{}', '{}'),
           ('calo_recon.user_day_totals', 'distributed', '{}', '{}'),
           ('calo_recon.overdraft_episode_totals', 'distributed', '{}', '{}'),
           -- the scores beside their transactions, written per shard group
           -- by score_placement(); daily_summary counts live on a cluster
           ('calo_recon.transaction_scores', 'distributed', '{transaction_scores_anomaly_input}', '{}'),
           -- its override trigger replaces the built-in row on each placement
           -- (the queueing of a currency's users after an edit cannot reach
           -- the shards from a placement: reconcile() everyone instead)
           ('calo_recon.currencies', 'reference',
            '{currencies_track_inserted,currencies_track_updated,currencies_track_deleted}', '{}')
$$;
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of the second audit merge

-- Issue 8, item 4: the ingest writes its log events and new transactions
-- through COPY's multi-insert path (src/glue/ingest_store_glue.c); the bulk
-- writer fills the transition tables of the transactions' statement
-- triggers and leaves out a taken id as ON CONFLICT DO NOTHING does.
-- The ingest's two big writes, through COPY's multi-insert path
-- (src/glue/ingest_store_glue.c); what to write is ingest_log_unreconciled's.
CREATE FUNCTION calo_recon.parse_and_store_log(log text, source_file text)
RETURNS TABLE (event_no integer, logged_at timestamptz, request_id text, level text,
               kind text, body jsonb, message_id text, raw text)
AS 'MODULE_PATHNAME', 'calo_recon_parse_and_store_log'
LANGUAGE C STRICT VOLATILE ROWS 1000;
COMMENT ON FUNCTION calo_recon.parse_and_store_log(text, text) IS
  'Internal to ingest_log: calo_recon.parse_log(log), each event also written to calo_recon.log_events under source_file (the caller needs INSERT on it)';
REVOKE ALL ON FUNCTION calo_recon.parse_and_store_log(text, text) FROM PUBLIC;

CREATE FUNCTION calo_recon.store_new_transactions(rows calo_recon.transactions[])
RETURNS SETOF calo_recon.transactions
AS 'MODULE_PATHNAME', 'calo_recon_store_new_transactions'
LANGUAGE C STRICT VOLATILE ROWS 1000;
COMMENT ON FUNCTION calo_recon.store_new_transactions(calo_recon.transactions[]) IS
  'Internal to ingest_log: writes the rows into calo_recon.transactions as INSERT ... ON CONFLICT DO NOTHING would (the table''s triggers fire as for that INSERT) and returns those written; the caller needs INSERT on the table';
REVOKE ALL ON FUNCTION calo_recon.store_new_transactions(calo_recon.transactions[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION calo_recon.ingest_log_unreconciled(log text, source text)
RETURNS TABLE (events integer, transactions integer, duplicates integer, conflicts integer,
               balance_errors integer, rejections integer, quarantined integer,
               repeated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- planned for each file: a plan cached while the table was small (never
-- analyzed inside one long ingest_file) kept reading it whole for the
-- stored ids, once per file
SET plan_cache_mode = force_custom_plan
AS $fn$
#variable_conflict use_column
DECLARE
    v_digest     bytea;
    v_source     text;
    v_name       text;
    v_taken      integer := 0;
    v_events     integer := 0;
    v_txns       integer := 0;
    v_dups       integer := 0;
    v_conflicts  integer := 0;
    v_errors     integer := 0;
    v_rejections integer := 0;
    v_quarantine integer := 0;
    v_repeated   integer := 0;
    v_others     integer[];
    v_other_rows calo_recon.transactions[];
    v_valid      integer;
    -- on a Citus cluster the stored rows go to the alert check by hand
    -- (alert_distributed: the table's trigger is off there), unless
    -- ingest_file checks them at its end (alert_check_deferred: the shards'
    -- trigger has queued them)
    v_distributed boolean := calo_recon.is_distributed() AND NOT calo_recon.alert_check_deferred();
    v_new_rows   calo_recon.transactions[];
BEGIN
    IF log IS NULL THEN
        RAISE EXCEPTION 'calo_recon.ingest_log: log text is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the text of one log file (decompressed).';
    END IF;
    -- a source name follows the rules of paths (22023 otherwise)
    PERFORM calo_recon.check_source_name(source);

    -- Ingests are serialized: a concurrent caller waits here, then sees what
    -- the first one stored (no deadlock between overlapping files, first wins).
    PERFORM calo_recon.lock_writer();

    v_digest := pg_catalog.sha256(pg_catalog.convert_to(log, 'UTF8'));
    IF EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.digest = v_digest) THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, 0, 0;
        RETURN;
    END IF;

    -- log_events is keyed by (source_file, event_no): a different content
    -- under a name already used gets the name plus its digest prefix, and
    -- when that is taken too (a source may be named so), a counter after it.
    v_source := COALESCE(NULLIF(source, ''),
                         'inline:' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16));
    v_name := v_source;
    WHILE EXISTS (SELECT 1 FROM calo_recon.ingested_files f WHERE f.file_name = v_name)
          OR EXISTS (SELECT 1 FROM calo_recon.log_events e WHERE e.source_file = v_name) LOOP
        v_taken := v_taken + 1;
        v_name := v_source || '#' || pg_catalog.left(pg_catalog.encode(v_digest, 'hex'), 16)
                  || CASE WHEN v_taken > 1 THEN '#' || v_taken ELSE '' END;
    END LOOP;
    v_source := v_name;

    -- One statement stores the file: every event into log_events; the events
    -- the parser made malformed into quarantine (kind: the kind intended);
    -- the first occurrence of each transaction id, the balance errors and the
    -- rejections into their tables.  The parse is read once, never read back.
    WITH parsed AS MATERIALIZED (
        -- every event, stored into log_events as it is parsed
        SELECT p.event_no, p.logged_at, p.request_id, p.message_id, p.level, p.kind,
               p.body, p.raw
        FROM calo_recon.parse_and_store_log(log, v_source) AS p
    ), quarantined AS (
        INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
        SELECT v_source, e.event_no, e.logged_at, COALESCE(e.body ->> 'intended_kind', 'malformed'),
               e.body ->> 'txn_id', e.body ->> 'reason', e.body, e.raw
        FROM parsed e
        WHERE e.kind = 'malformed'
        ORDER BY e.event_no
        RETURNING 1
    ), valid AS (
        SELECT e.event_no, e.logged_at, e.request_id, e.message_id, e.kind, e.body
        FROM parsed e
        WHERE e.kind IN ('transaction', 'balance_error', 'negative_balance_rejection')
    ), valid_txns AS (
        -- each valid transaction event as the row it would be stored as
        SELECT v.event_no, v.body ->> 'id' AS txn_id,
               row_number() OVER (PARTITION BY v.body ->> 'id' ORDER BY v.event_no) AS occurrence,
               -- the legacy form has no type key: its txn_type is NULL
               ROW(v.body ->> 'id', v.body ->> 'userId', v.body ->> 'type',
                   v.body ->> 'source', v.body ->> 'action', v.body ->> 'currency',
                   (v.body -> 'amount')::numeric, (v.body -> 'vat')::numeric,
                   (v.body -> 'oldBalance')::numeric, (v.body -> 'newBalance')::numeric,
                   NULLIF(v.body -> 'paymentBalance', 'null'::jsonb)::numeric,
                   NULLIF(v.body -> 'updatePaymentBalance', 'null'::jsonb)::boolean,
                   NULLIF(v.body -> 'metadata', 'null'::jsonb),
                   v.logged_at, v.request_id, v.message_id, v_source)::calo_recon.transactions AS r
        FROM valid v
        WHERE v.kind = 'transaction'
    ), stored_ids AS MATERIALIZED (
        -- ids already stored, under any user: on a Citus cluster the table
        -- is distributed by user_id and its key cannot hold a txn_id alone
        -- (README "Scaling out with Citus"); ingests hold the writer lock,
        -- so no other ingest stores an id between this look-up and the insert
        SELECT t.txn_id
        FROM calo_recon.transactions t
        WHERE t.txn_id = ANY (ARRAY(SELECT f.txn_id FROM valid_txns f WHERE f.occurrence = 1))
    ), new_txns AS MATERIALIZED (
        -- first valid occurrence of each id, in id order (stable lock order);
        -- a concurrent COPY or INSERT (not under the writer lock) of the same
        -- id leaves it out, as ON CONFLICT DO NOTHING would
        SELECT n.*
        FROM calo_recon.store_new_transactions(ARRAY(
                 SELECT f.r
                 FROM valid_txns f
                 WHERE f.occurrence = 1
                   AND f.txn_id NOT IN (SELECT s.txn_id FROM stored_ids s)
                 ORDER BY f.txn_id)) AS n
    ), new_errors AS (
        INSERT INTO calo_recon.balance_errors
               (user_id, subscription_balance, payment_balance, logged_at, request_id,
                message_id, txn_id, source_file)
        SELECT v.body ->> 'userId', (v.body -> 'subscriptionBalance')::numeric,
               (v.body -> 'paymentBalance')::numeric, v.logged_at, v.request_id,
               v.message_id, v.body ->> 'txn_id', v_source
        FROM valid v
        WHERE v.kind = 'balance_error'
        ORDER BY 1, 4, 5
        -- only the event key: a clash of error_id must fail, not vanish
        ON CONFLICT (user_id, logged_at, request_id, subscription_balance, payment_balance)
            DO NOTHING
        RETURNING user_id
    ), new_rejections AS (
        INSERT INTO calo_recon.negative_balance_rejections
               (txn_id, user_id, current_balance, logged_at, request_id, source_file)
        SELECT v.body ->> 'transactionId', v.body ->> 'userId',
               (v.body -> 'currentBalance')::numeric, v.logged_at, v.request_id, v_source
        FROM valid v
        WHERE v.kind = 'negative_balance_rejection'
        ORDER BY 2, 4, 5
        ON CONFLICT (user_id, logged_at, request_id, txn_id, current_balance) DO NOTHING
        RETURNING user_id
    ), others AS (
        SELECT o.event_no, o.r
        FROM valid_txns o
        WHERE o.occurrence > 1 OR o.txn_id NOT IN (SELECT t.txn_id FROM new_txns t)
    )
    SELECT (SELECT count(*) FROM parsed)::integer,
           (SELECT count(*) FROM quarantined)::integer,
           (SELECT count(*) FROM new_txns)::integer,
           (SELECT count(*) FROM new_errors)::integer,
           (SELECT count(*) FROM new_rejections)::integer,
           (SELECT count(*) FROM valid v WHERE v.kind <> 'transaction')::integer,
           -- every other valid occurrence is compared with the stored row below
           (SELECT array_agg(o.event_no ORDER BY o.event_no) FROM others o),
           (SELECT array_agg(o.r ORDER BY o.event_no) FROM others o),
           CASE WHEN v_distributed
                THEN (SELECT array_agg(ROW(n.*)::calo_recon.transactions ORDER BY n.txn_id) FROM new_txns n) END
    INTO v_events, v_quarantine, v_txns, v_errors, v_rejections, v_valid, v_others,
         v_other_rows, v_new_rows;
    IF v_new_rows IS NOT NULL THEN
        PERFORM calo_recon.alert_distributed(v_new_rows);
        -- checked: not again by raise_alerts() (the shards queued them)
        DELETE FROM calo_recon.alert_queue q
        WHERE (q.user_id, q.txn_id) IN (SELECT r.user_id, r.txn_id FROM unnest(v_new_rows) r);
    END IF;
    -- errors and rejections already stored from an overlapping export
    v_repeated := v_valid - v_errors - v_rejections;

    -- The other valid occurrences meet a stored row: same payload is a
    -- duplicate delivery, a different one a conflict (the stored row stays).
    IF v_others IS NOT NULL THEN
        WITH others AS (
            SELECT n.event_no, o.*
            FROM unnest(v_other_rows) WITH ORDINALITY AS o
            JOIN unnest(v_others) WITH ORDINALITY AS n (event_no, ordinality)
              ON n.ordinality = o.ordinality
        ), stored_rows AS MATERIALIZED (
            -- the stored rows of these ids, by id alone (one look-up, which a
            -- Citus cluster runs on every shard)
            SELECT t.*
            FROM calo_recon.transactions t
            WHERE t.txn_id = ANY (ARRAY(SELECT o.txn_id FROM others o))
        ), compared AS (
            SELECT o.event_no, o.logged_at, o.txn_id,
                   to_jsonb(t) AS stored,
                   jsonb_build_object(
                       'txn_id', o.txn_id, 'user_id', o.user_id, 'txn_type', o.txn_type,
                       'source', o.source, 'action', o.action, 'currency', o.currency,
                       'amount', o.amount, 'vat', o.vat, 'old_balance', o.old_balance,
                       'new_balance', o.new_balance, 'payment_balance', o.payment_balance,
                       'update_payment_balance', o.update_payment_balance,
                       'metadata', o.metadata) AS incoming,
                   t.txn_id IS NOT NULL
                     AND ROW(o.user_id, o.txn_type, o.source, o.action, o.currency,
                             o.amount, o.vat, o.old_balance, o.new_balance,
                             o.payment_balance, o.update_payment_balance, o.metadata)
                         IS NOT DISTINCT FROM
                         ROW(t.user_id, t.txn_type, t.source, t.action, t.currency,
                             t.amount, t.vat, t.old_balance, t.new_balance,
                             t.payment_balance, t.update_payment_balance, t.metadata) AS same
            FROM others o
            LEFT JOIN stored_rows t ON t.txn_id = o.txn_id
        ), conflicted AS (
            INSERT INTO calo_recon.quarantine (source_file, event_no, logged_at, kind, txn_id, reason, detail, raw)
            SELECT v_source, c.event_no, c.logged_at, 'transaction', c.txn_id, 'conflict',
                   jsonb_build_object('stored', c.stored, 'incoming', c.incoming), e.raw
            FROM compared c
            JOIN calo_recon.log_events e ON e.source_file = v_source AND e.event_no = c.event_no
            WHERE NOT c.same
            ORDER BY c.event_no
            RETURNING 1
        )
        SELECT count(*) FILTER (WHERE c.same)::integer,
               count(*) FILTER (WHERE NOT c.same)::integer
        INTO v_dups, v_conflicts
        FROM compared c;
        v_quarantine := v_quarantine + v_conflicts;
    END IF;

    INSERT INTO calo_recon.ingested_files
           (digest, file_name, bytes, events, transactions, duplicates, conflicts,
            balance_errors, rejections, quarantined, repeated)
    VALUES (v_digest, v_source, pg_catalog.octet_length(log), v_events, v_txns, v_dups,
            v_conflicts, v_errors, v_rejections, v_quarantine, v_repeated);

    RETURN QUERY
    SELECT v_events, v_txns, v_dups, v_conflicts, v_errors, v_rejections, v_quarantine,
           v_repeated;
END;
$fn$;

CREATE OR REPLACE FUNCTION calo_recon.grant_role(role_name name, kind text)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    statements text[];
    views text[] := ARRAY['transactions', 'overdrafts', 'overdraft_episodes', 'anomalies',
                          'discrepancies', 'balance_breaks', 'precision_drift', 'user_summary',
                          'daily_summary', 'as_of', 'amount_thresholds', 'amount_rule_hits'];
    -- what those views run with the reader's rights that reads a table (so
    -- not PUBLIC's): the report totals of the users still queued, from
    -- their transactions (README "Reconciliation")
    view_functions text[] := ARRAY['user_figures(text[], timestamptz, timestamptz)',
                                   'user_day_figures(text[])', 'user_overdraft_episodes(text[])'];
    analyst_tables text[] := ARRAY['models', 'transaction_scores', 'anomaly_feedback', 'currencies'];
    -- the columns of a feedback row its author fills in; the rest is set by
    -- the product (README "Roles")
    feedback_columns text := 'txn_id, verdict, note';
    -- the amount rule is the analysts' to set (set_amount_threshold): the
    -- currency and threshold of a row; who and when are the product's
    threshold_writes text := 'INSERT (currency, threshold), UPDATE (threshold), DELETE';
    -- what analysts may not execute besides the entry points of
    -- calo_recon.definer_entry_points (which write the record): what reads
    -- server files, runs, health or grants, and the internals; analysts may
    -- execute the rest
    not_for_analysts text[] := ARRAY['ingest_log_unreconciled', 'ingest_file_unreconciled', 'read_log_file',
                                     'refresh', 'check_last_refresh', 'refresh_work', 'refresh_skipped',
                                     'reconcile_pending', 'lock_writer', 'try_lock_writer', 'writer_lock_holder',
                                     'lock_user_chains', 'alert_refuse', 'raise_system_alert', 'raise_run_alert', 'check_health',
                                     'grant_role', 'revoke_role', 'reapply_grants', 'revoke_all', 'harden_entry_points',
                                     'retrain_due_models', 'grant_on_workers', 'alert_distributed', 'alert_queued',
                                     'drop_stale_scores', 'parse_and_store_log', 'store_new_transactions'];
    -- what operators run with their own rights besides what analysts run:
    -- the entry points that write only through the definer ones
    -- (calo_recon.definer_entry_points), and readers of runs, health and
    -- files; the internals stay the owner's
    operator_runs text[] := ARRAY['refresh', 'refresh_job', 'check_last_refresh', 'check_health', 'read_log_file'];
    -- The operator's direct writes: configuration, not the record (which
    -- currencies there are and their minor units; which model is active).
    -- Everything else it writes through the definer entry points.
    operator_writes text[] := ARRAY['currencies:INSERT, UPDATE, DELETE', 'models:UPDATE (active)'];
    -- a write of an analyst or an operator to an input of the anomalies
    -- (a verdict, a threshold, the active model) notes itself through a
    -- trigger that runs with the writer's rights (daily_summary's counts)
    note_changes text := 'GRANT INSERT (changed_table) ON calo_recon.anomaly_input_changes TO %I';
    -- an operator's edit of a currency's minor unit queues the users with
    -- transactions in it through a trigger that runs with the writer's
    -- rights (track_currency_changes)
    queue_users text := 'GRANT INSERT (user_id) ON calo_recon.pending_reconcile TO %I';
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM calo_recon.role_kinds k WHERE k.kind = grant_role.kind) THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ' || (SELECT pg_catalog.string_agg(k.kind, ', ' ORDER BY k.kind) FROM calo_recon.role_kinds k) || '.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
    IF kind = 'monitor' THEN
        statements := statements
            || format('GRANT SELECT ON calo_recon.health TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.check_health(interval) TO %I', role_name)
            || format('GRANT EXECUTE ON FUNCTION calo_recon.health_figures() TO %I', role_name)
            || format('GRANT SELECT ON calo_recon.amount_thresholds TO %I', role_name);
        views := '{}';
    END IF;
    FOREACH name IN ARRAY views LOOP
        IF pg_catalog.to_regclass('calo_recon.' || name) IS NOT NULL THEN
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END IF;
    END LOOP;
    IF kind <> 'monitor' THEN
        FOREACH name IN ARRAY view_functions LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION calo_recon.%s TO %I', name, role_name);
        END LOOP;
    END IF;

    -- on a Citus cluster the shard queries of a view run with the caller's
    -- rights (README "Scaling out with Citus"): the tables of the layout too
    IF kind <> 'monitor' AND calo_recon.is_distributed() THEN
        FOR name IN SELECT l.table_name::text FROM calo_recon.citus_layout() l ORDER BY 1 LOOP
            statements := statements || format('GRANT SELECT ON %s TO %I', name, role_name);
        END LOOP;
        -- and the coordinator tables that Citus plans apart within
        -- daily_summary, with the caller's rights too
        statements := statements
            || format('GRANT SELECT ON calo_recon.anomaly_day_totals, calo_recon.anomaly_input_changes TO %I', role_name);
    END IF;

    IF kind = 'analyst' THEN
        statements := statements || format('GRANT SELECT ON calo_recon.transaction_features, calo_recon.anomaly_verdicts, calo_recon.transaction_models TO %I', role_name);
        FOREACH name IN ARRAY analyst_tables LOOP
            statements := statements || format('GRANT SELECT ON calo_recon.%I TO %I', name, role_name);
        END LOOP;
        statements := statements
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format('GRANT %s ON calo_recon.amount_thresholds TO %I', threshold_writes, role_name)
            || format(note_changes, role_name);
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a')
              AND p.prorettype <> 'trigger'::regtype AND NOT (p.proname = ANY (not_for_analysts))
              AND p.proname NOT IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e)
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON FUNCTION %s TO %I', routine, role_name);
        END LOOP;
    ELSIF kind = 'operator' THEN
        statements := statements
            || format('GRANT SELECT ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name)
            || format(note_changes, role_name)
            || format(queue_users, role_name);
        FOREACH name IN ARRAY operator_writes LOOP
            statements := statements || format('GRANT %s ON calo_recon.%I TO %I',
                                               pg_catalog.split_part(name, ':', 2), pg_catalog.split_part(name, ':', 1), role_name);
        END LOOP;
        FOR routine IN
            SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prokind IN ('f', 'a', 'p')
              AND p.prorettype IS DISTINCT FROM 'trigger'::regtype
              AND (NOT (p.proname = ANY (not_for_analysts)) OR p.proname = ANY (operator_runs)
                   OR p.proname IN (SELECT e.routine_name FROM calo_recon.definer_entry_points e))
            ORDER BY p.oid::regprocedure::text
        LOOP
            statements := statements || format('GRANT EXECUTE ON ROUTINE %s TO %I', routine, role_name);
        END LOOP;
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
    PERFORM calo_recon.grant_on_workers(statements);
    INSERT INTO calo_recon.role_grants (role_name, kind) VALUES (grant_role.role_name, grant_role.kind)
    ON CONFLICT DO NOTHING;
END;
$$;

SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of the bulk ingest writes

-- A model whose feature names, scaler and forest disagree is refused when
-- stored (23514) rather than when it scores (XX001).  Models stored before
-- 1.2 that break the rule keep their rows: the check is then NOT VALID, and
-- such a model, which cannot score, is deactivated first (the check applies
-- to any later update of its row, so an operator could not switch it off).
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

DO $migrate$
DECLARE
    switched_off text;
BEGIN
    WITH off AS (
        UPDATE calo_recon.models m SET active = false
        WHERE m.active AND NOT calo_recon.model_shape_agrees(m.features, m.scaler, m.forest)
        RETURNING m.model_id
    )
    SELECT pg_catalog.string_agg(off.model_id::text, ', ' ORDER BY off.model_id) INTO switched_off FROM off;
    IF switched_off IS NOT NULL THEN
        RAISE WARNING 'calo_recon: active models % could not score (their feature names, scaler and forest disagree) and were deactivated', switched_off
            USING HINT = 'Train a new model with calo_recon.train_model(), or activate a sound one.';
    END IF;
    BEGIN
        ALTER TABLE calo_recon.models
            ADD CONSTRAINT models_shape_check CHECK (calo_recon.model_shape_agrees(features, scaler, forest));
    EXCEPTION WHEN check_violation THEN
        ALTER TABLE calo_recon.models
            ADD CONSTRAINT models_shape_check CHECK (calo_recon.model_shape_agrees(features, scaler, forest)) NOT VALID;
        RAISE WARNING 'calo_recon.models holds a model whose feature names, scaler and forest disagree: models_shape_check was added NOT VALID'
            USING DETAIL = 'Such a model fails with XX001 when it scores; new models are checked.',
                  HINT = 'Delete those models (WHERE NOT calo_recon.model_shape_agrees(features, scaler, forest)), then ALTER TABLE calo_recon.models VALIDATE CONSTRAINT models_shape_check.';
    END;
END
$migrate$;
-- end of the models' shape check

-- The default file names of export_workbook() and export_dashboard() live in
-- the C code alone: the SQL default is NULL, which names them.
CREATE OR REPLACE FUNCTION calo_recon.export_workbook(file text DEFAULT NULL,
                                           period_from timestamptz DEFAULT NULL,
                                           period_to timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_workbook';
COMMENT ON FUNCTION calo_recon.export_workbook(text, timestamptz, timestamptz) IS
  'Writes the Excel workbook of the period [period_from, period_to) under calo_recon.export_directory (file NULL or omitted: balance_reports.xlsx): a Summary sheet first (period, as-of time, figures per currency, breaks by kind, charts of the wallet liability, the breaks per day and the anomaly scores, the list of sheets), one sheet per report of export_reports (a report longer than calo_recon.workbook_sheet_rows continues on "<sheet> (2)", ...) and the Chart Data; headings in words, money in its currency''s format, UTC dates, TRUE/FALSE, long text wrapped, json columns (an anomaly''s attribution, a transaction''s metadata) left to the CSV, frozen header row, autofilter; printed landscape one page wide, or when wider at 70 % on pages across with the first column repeated, the header row repeated. Returns the data rows of the report sheets. Same path and permission rules as export_reports.';
CREATE OR REPLACE FUNCTION calo_recon.export_dashboard(file text DEFAULT NULL,
                                            period_from timestamptz DEFAULT NULL,
                                            period_to timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'calo_recon_export_dashboard';
COMMENT ON FUNCTION calo_recon.export_dashboard(text, timestamptz, timestamptz) IS
  'Writes one self-contained HTML page (no script, no network: inline CSS and SVG charts) of the period [period_from, period_to) under calo_recon.export_directory (file NULL or omitted: dashboard.html): period, as-of time, figures per currency, breaks by kind, the workbook''s three charts, the top 10 open breaks by difference and the top 10 anomalies by score with their explanations; readable on screen and printed (A4 landscape). Returns the file written. Same path and permission rules as export_reports; the name must end in .html.';
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of the export file defaults

-- health shows the users queued for rescoring (users_pending_rescore), read
-- through health_figures() with the others.  Its result type changes, so the
-- view, the function and check_health() (which returns the view's row) are
-- made again; harden_entry_points() and reapply_grants() restore their
-- rights.
DROP FUNCTION calo_recon.check_health(interval);
DROP VIEW calo_recon.health;
DROP FUNCTION calo_recon.health_figures();
CREATE FUNCTION calo_recon.health_figures(OUT users_pending_reconcile bigint, OUT alert_checks_queued bigint,
                                          OUT table_bytes jsonb, OUT users_pending_rescore bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sharded regclass[] := '{}';
    sizes jsonb := '{}';
BEGIN
    SELECT pg_catalog.count(DISTINCT p.user_id) INTO users_pending_reconcile FROM calo_recon.pending_reconcile p;
    SELECT pg_catalog.count(*) INTO alert_checks_queued FROM calo_recon.alert_queue q;
    SELECT pg_catalog.count(DISTINCT p.user_id) INTO users_pending_rescore FROM calo_recon.pending_rescore p;
    IF calo_recon.is_distributed() THEN
        SELECT pg_catalog.array_agg(l.table_name) INTO sharded FROM calo_recon.citus_layout() l;
        -- a Citus function: named only where Citus is installed
        EXECUTE 'SELECT pg_catalog.jsonb_object_agg(c.relname, pg_catalog.citus_total_relation_size(c.oid))
                 FROM pg_catalog.pg_class c WHERE c.oid = ANY ($1)'
        INTO sizes USING sharded;
    END IF;
    SELECT pg_catalog.jsonb_object_agg(c.relname, coalesce(sizes -> c.relname::text,
                                                           pg_catalog.to_jsonb(pg_catalog.pg_total_relation_size(c.oid)))
                                       ORDER BY c.relname)
    INTO table_bytes
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'calo_recon'::pg_catalog.regnamespace AND c.relkind = 'r';
END;
$$;
COMMENT ON FUNCTION calo_recon.health_figures() IS
  'Internal to the health view: the users queued for reconciliation and for rescoring, the transactions queued for their alert check on a Citus cluster, and each table''s size (on a cluster, its shards'' for the distributed and reference tables), read as the owner so that a monitor needs no right on the wallet tables';

CREATE VIEW calo_recon.health AS
WITH figures AS (
    SELECT f.* FROM calo_recon.health_figures() f
), last_run AS (
    SELECT r.* FROM calo_recon.runs r ORDER BY r.run_id DESC LIMIT 1
), last_success AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1
), last_ended AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status IN ('succeeded', 'failed') ORDER BY r.run_id DESC LIMIT 1
), last_failure AS (
    SELECT r.* FROM calo_recon.runs r WHERE r.status = 'failed' ORDER BY r.run_id DESC LIMIT 1
)
SELECT pg_catalog.now() AS checked_at,
       (SELECT s.finished_at FROM last_success s) AS last_success_at,
       pg_catalog.now() - (SELECT s.finished_at FROM last_success s) AS last_success_age,
       (SELECT r.run_id FROM last_run r) AS last_run_id,
       (SELECT r.status FROM last_run r) AS last_run_status,
       (SELECT e.status = 'failed' FROM last_ended e) AS last_ended_run_failed,
       (SELECT r.skipped_since FROM last_run r WHERE r.skipped_since IS NOT NULL) AS skipping_since,
       (SELECT f.run_id FROM last_failure f) AS last_error_run_id,
       (SELECT f.finished_at FROM last_failure f) AS last_error_at,
       (SELECT f.error FROM last_failure f) AS last_error,
       (SELECT f.error_detail FROM last_failure f) AS last_error_detail,
       (SELECT f.error_hint FROM last_failure f) AS last_error_hint,
       (SELECT pg_catalog.max(f.loaded_at) FROM calo_recon.ingested_files f WHERE f.transactions > 0) AS last_data_loaded_at,
       (SELECT pg_catalog.count(*) FROM calo_recon.runs r WHERE r.status = 'running') AS runs_running,
       (SELECT f.users_pending_reconcile FROM figures f) AS users_pending_reconcile,
       (SELECT pg_catalog.jsonb_object_agg(q.reason, q.n ORDER BY q.reason)
        FROM (SELECT x.reason, pg_catalog.count(*) AS n FROM calo_recon.quarantine x GROUP BY x.reason) q) AS quarantine_by_reason,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'open'
              GROUP BY k.severity) s) AS open_alerts,
       (SELECT pg_catalog.jsonb_object_agg(s.severity, s.n ORDER BY s.severity)
        FROM (SELECT k.severity, pg_catalog.count(a.alert_id) AS n
              FROM calo_recon.alert_kinds k
              LEFT JOIN calo_recon.alerts a ON a.alert_kind = k.alert_kind AND a.status = 'acknowledged'
              GROUP BY k.severity) s) AS acknowledged_alerts,
       (SELECT f.table_bytes FROM figures f) AS table_bytes,
       (SELECT f.alert_checks_queued FROM figures f) AS alert_checks_queued,
       (SELECT f.users_pending_rescore FROM figures f) AS users_pending_rescore;
COMMENT ON VIEW calo_recon.health IS
  'One row: is calo_recon doing its job (last successful refresh and its age, the last error with DETAIL and HINT, skipping, queue, quarantine, open alerts by severity, table sizes); for the monitor role, check_health() and postgres_exporter (README "Health and monitoring")';
COMMENT ON COLUMN calo_recon.health.checked_at IS 'now() of the reading transaction';
COMMENT ON COLUMN calo_recon.health.last_success_at IS 'When the last successful refresh() run finished; NULL when none has';
COMMENT ON COLUMN calo_recon.health.last_success_age IS 'checked_at - last_success_at: how fresh the reconciled data is';
COMMENT ON COLUMN calo_recon.health.last_run_id IS 'The newest run';
COMMENT ON COLUMN calo_recon.health.last_run_status IS 'Its status: running, succeeded, failed or skipped';
COMMENT ON COLUMN calo_recon.health.last_ended_run_failed IS 'Whether the newest run that did end (succeeded or failed) failed';
COMMENT ON COLUMN calo_recon.health.skipping_since IS 'When the newest run is one of a series of runs that could not start (writer lock held): when the series began';
COMMENT ON COLUMN calo_recon.health.last_error_run_id IS 'The newest failed run';
COMMENT ON COLUMN calo_recon.health.last_error_at IS 'When it finished';
COMMENT ON COLUMN calo_recon.health.last_error IS 'Its error: SQLSTATE: message';
COMMENT ON COLUMN calo_recon.health.last_error_detail IS 'Its error''s DETAIL';
COMMENT ON COLUMN calo_recon.health.last_error_hint IS 'Its error''s HINT';
COMMENT ON COLUMN calo_recon.health.last_data_loaded_at IS 'When the last file with transactions was ingested (see calo_recon.max_data_age)';
COMMENT ON COLUMN calo_recon.health.runs_running IS 'Runs in status running (more than one, or one that is old, is a run whose session stopped)';
COMMENT ON COLUMN calo_recon.health.users_pending_reconcile IS 'Users queued for the next reconciliation (calo_recon.pending_reconcile)';
COMMENT ON COLUMN calo_recon.health.quarantine_by_reason IS 'Quarantined items per reason, as a JSON object; NULL when there are none';
COMMENT ON COLUMN calo_recon.health.open_alerts IS 'Open alerts (neither acknowledged nor resolved) per severity, as a JSON object with every severity';
COMMENT ON COLUMN calo_recon.health.acknowledged_alerts IS 'Acknowledged, unresolved alerts per severity, as a JSON object with every severity';
COMMENT ON COLUMN calo_recon.health.table_bytes IS 'Size on disk of each calo_recon table, indexes and TOAST included, as a JSON object (on a Citus cluster, of all its shards for the distributed and reference tables)';
COMMENT ON COLUMN calo_recon.health.users_pending_rescore IS 'Users whose rows changed since they were scored, queued for the next score_transactions() or refresh() (calo_recon.pending_rescore)';
COMMENT ON COLUMN calo_recon.health.alert_checks_queued IS 'On a Citus cluster: transactions stored where no insert-time alert check ran (sent to a worker, or the coordinator without calo_recon preloaded), waiting for the next raise_alerts(); always 0 on one node. One that stays above 0 means raise_alerts() (refresh()) is not running';

-- For pg_cron or any monitoring system that judges by an error: RH001
-- (calo_recon unhealthy) says what is wrong, every problem at once.
CREATE FUNCTION calo_recon.check_health(max_age interval DEFAULT NULL)
RETURNS calo_recon.health
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h calo_recon.health;
    problems text[] := '{}';
    detail text;  -- the failed run's DETAIL, if any
BEGIN
    IF max_age < interval '0' THEN
        RAISE EXCEPTION 'max_age must not be negative: %', max_age USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT x.* INTO h FROM calo_recon.health x;
    IF h.last_success_at IS NULL THEN
        problems := problems || 'no refresh() run has succeeded'::text;
    ELSIF h.last_success_age > max_age THEN
        problems := problems || pg_catalog.format('the last successful refresh() finished %s ago, longer than %s',
                                                  h.last_success_age, max_age);
    END IF;
    IF h.last_ended_run_failed THEN
        problems := problems || pg_catalog.format('refresh() run %s failed: %s', h.last_error_run_id, h.last_error);
        detail := h.last_error_detail;
    END IF;
    IF (h.open_alerts ->> 'critical')::bigint > 0 THEN
        problems := problems || pg_catalog.format('%s critical alerts are open (not acknowledged)', h.open_alerts ->> 'critical');
    END IF;
    IF pg_catalog.cardinality(problems) > 0 AND detail IS NOT NULL THEN
        RAISE EXCEPTION 'calo_recon is unhealthy: %', pg_catalog.array_to_string(problems, '; ')
            USING ERRCODE = 'RH001', DETAIL = detail,
                  HINT = coalesce(h.last_error_hint, 'See calo_recon.health, calo_recon.runs and calo_recon.alert_groups.');
    ELSIF pg_catalog.cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'calo_recon is unhealthy: %', pg_catalog.array_to_string(problems, '; ')
            USING ERRCODE = 'RH001',
                  HINT = coalesce(h.last_error_hint, 'See calo_recon.health, calo_recon.runs and calo_recon.alert_groups.');
    END IF;
    RETURN h;
END;
$$;
COMMENT ON FUNCTION calo_recon.check_health(interval) IS
  'Returns the health row, or raises RH001 (calo_recon unhealthy) naming every problem: no successful refresh() run, or the last one older than max_age (not checked when NULL), the last run that ended failed (its DETAIL and HINT passed on), open critical alerts. 22023 for a negative max_age. For pg_cron and monitoring systems; the monitor role may run it';
REVOKE EXECUTE ON FUNCTION calo_recon.check_health(interval) FROM PUBLIC;
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
SELECT pg_catalog.count(*) FROM calo_recon.reapply_grants();
-- end of the rescore queue in health
