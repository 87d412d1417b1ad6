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
