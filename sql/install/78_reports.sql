-- Reports with a time axis (issue 10): the figures per currency and UTC day,
-- and the time the data is as of. Money is rounded with round_money, as in
-- every other view.

-- ---------------------------------------------------------------------
-- Report totals (issue 10 item 7): what user_summary, overdraft_episodes
-- and daily_summary need of each user's chain, per currency, stored by reconcile() for the
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
  'Internal to user_summary and user_summary_in: per user of user_ids (all when NULL) and currency, the figures of their transactions in that currency logged in [period_from, period_to) (NULL: open) in chain order, as reconcile() stores them in user_totals: count, first and last time, currency, opening (old_balance of the first) and closing (new_balance of the last) balance, overdrafts, credits and debits gross and net, VAT; exact, not rounded';
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
  'Internal to overdraft_episodes: the runs of consecutive negative balances (is_overdraft) of the users of user_ids (all when NULL) per currency in chain order, as reconcile() stores them in overdraft_episode_totals: one row per run, with the lowest new_balance of its rows (exact); low_currency is the run''s currency and run_currencies 1';
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
-- user's rows and writes them again (src/glue/report_totals_glue.c), and a unique
-- check would visit every deleted row of the same key; one user's row is
-- found through this index, the other tables are read whole or per queued
-- user (a few thousand rows per 100,000 transactions).
CREATE INDEX user_totals_user_idx ON calo_recon.user_totals (user_id);
COMMENT ON TABLE calo_recon.user_totals IS
  'Internal to user_summary: user_figures() of each user, one row per currency, as of their last reconcile(); user_summary reads the queued users live instead. Money NULL where the exact math cannot hold it. Not dumped: a restore queues every user again';
COMMENT ON COLUMN calo_recon.user_totals.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.user_totals.transactions IS 'Number of transactions in the currency';
COMMENT ON COLUMN calo_recon.user_totals.first_logged_at IS 'First transaction time in the currency';
COMMENT ON COLUMN calo_recon.user_totals.last_logged_at IS 'Last transaction time in the currency';
COMMENT ON COLUMN calo_recon.user_totals.currency IS 'Currency of the row''s transactions';
COMMENT ON COLUMN calo_recon.user_totals.opening_balance IS 'old_balance of the first transaction in the currency in chain order, exact';
COMMENT ON COLUMN calo_recon.user_totals.closing_balance IS 'new_balance of the last transaction in the currency in chain order, exact';
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
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.currency IS 'Currency of the run''s transactions';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.started_at IS 'logged_at of the first negative transaction';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.ended_at IS 'logged_at of the next transaction in the currency after the run; NULL while still negative';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.transactions IS 'Negative transactions of the run';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.first_txn_id IS 'First negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.last_txn_id IS 'Last negative transaction of the run';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.low_currency IS 'The run''s currency (a run is of one currency)';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.low_balance IS 'The lowest new_balance of the run''s rows, exact; NULL when the exact math cannot hold it';
COMMENT ON COLUMN calo_recon.overdraft_episode_totals.run_currencies IS 'Always 1: a run is of one currency';

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

CREATE VIEW calo_recon.daily_summary AS
SELECT f.day, f.currency, f.transactions, f.credits, f.debits, f.vat, f.wallet_liability,
       f.arithmetic_breaks, f.chain_breaks, f.conflicts, f.out_of_range, f.overdrafts,
       f.discrepancies, f.anomalies
FROM calo_recon.daily_figures f;
COMMENT ON VIEW calo_recon.daily_summary IS
  'The figures per currency and UTC day (days with transactions or discrepancies): activity, the wallet liability at the end of the day, breaks by kind, overdrafts, discrepancies and anomalies. Money rounded to the currency''s minor unit (round_money); NULL where a value is outside the exact range of the reconciliation (out_of_range). Breaks are as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.daily_summary.day IS 'Day (UTC) the rows were logged';
COMMENT ON COLUMN calo_recon.daily_summary.currency IS 'Currency';
COMMENT ON COLUMN calo_recon.daily_summary.transactions IS 'Transactions logged that day';
COMMENT ON COLUMN calo_recon.daily_summary.credits IS 'Sum of amount (gross) over credits (is_credit)';
COMMENT ON COLUMN calo_recon.daily_summary.debits IS 'Sum of amount (gross) over debits';
COMMENT ON COLUMN calo_recon.daily_summary.vat IS 'Sum of vat';
COMMENT ON COLUMN calo_recon.daily_summary.wallet_liability IS 'Closing wallet liability: the sum over wallets of their last new_balance (chain order) logged in that currency up to the end of the day; NULL from a day with a value outside the exact range on';
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
-- takes its users from an uncorrelated subquery and the views join on
-- user_id (and currency), so that a Citus cluster plans them: the stored rows and the
-- counts in the shards, the queued users' figures on the coordinator.

CREATE VIEW calo_recon.user_summary AS
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
REVOKE ALL ON FUNCTION calo_recon.user_summary_in(timestamptz, timestamptz) FROM PUBLIC;

CREATE VIEW calo_recon.overdraft_episodes AS
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
