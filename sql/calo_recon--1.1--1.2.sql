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
-- ---------------------------------------------------------------------
-- reports (issue 10): money rounded to the currency's minor unit in the
-- views (round_money), user_summary that reconciles, daily_summary and
-- as_of, exports with a period.  Views are replaced in place (columns only
-- appended) so that the rights granted on them stay.
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

-- grant_role: the readers' views include daily_summary and as_of
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
                                  'refresh_work', 'reconcile_pending', 'ingest_file_unreconciled'];
    routine regprocedure;
    name text;
BEGIN
    IF role_name IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'role_name and kind must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind NOT IN ('reader', 'analyst', 'operator') THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use reader, analyst or operator.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name
            USING ERRCODE = 'undefined_object', HINT = 'Create the role first: roles are cluster-wide.';
    END IF;

    statements := ARRAY[format('GRANT USAGE ON SCHEMA calo_recon TO %I', role_name)];
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
            || format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA calo_recon TO %I', role_name)
            || format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA calo_recon TO %I', role_name)
            -- table-level rights first: revoking one revokes its column rights
            || format('REVOKE INSERT, UPDATE, DELETE ON calo_recon.anomaly_feedback FROM %I', role_name)
            || format('GRANT INSERT (%s) ON calo_recon.anomaly_feedback TO %I', feedback_columns, role_name);
        statements := statements
            || format('GRANT EXECUTE ON ALL ROUTINES IN SCHEMA calo_recon TO %I', role_name)
            || format('REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM %I', role_name);
    END IF;

    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
        RETURN NEXT statement;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION calo_recon.grant_role(name, text) IS
  'Grants an existing role the calo_recon rights of a kind: reader (schema USAGE, SELECT on the BI views), analyst (reader + reading models, scores and feedback, recording feedback; no write right on any table) or operator (reader + refresh, ingestion, reconciliation, training, scoring, exports, feedback); feedback is append-only and signed by the product for both. Returns the statements it ran. Runs with the caller''s rights; server file access needs pg_read_server_files / pg_write_server_files, granted by a superuser';
REVOKE EXECUTE ON FUNCTION calo_recon.grant_role(name, text) FROM PUBLIC;
