-- Reconciliation of each user's balance chain and the views of its findings
-- (breaks, precision drift, overdrafts, summaries).
-- calo_recon.reconcile() materializes what needs the chain order into
-- reconciliation_findings; the views read that table and the data tables.

CREATE TABLE calo_recon.reconciliation_findings (
    txn_id         text        NOT NULL,
    user_id        text        NOT NULL,
    finding        text        NOT NULL
        CHECK (finding IN ('arithmetic', 'chain', 'drift', 'chain_drift', 'out_of_range')),
    expected       numeric,
    actual         numeric,
    difference     numeric,
    tolerance      numeric     NOT NULL,
    currency       text        NOT NULL,
    logged_at      timestamptz NOT NULL,
    first_break    boolean     NOT NULL,
    reconciled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txn_id, finding)
);
CREATE INDEX reconciliation_findings_user_idx
    ON calo_recon.reconciliation_findings (user_id);
COMMENT ON TABLE calo_recon.reconciliation_findings IS
  'What calo_recon.reconcile() found, per transaction: breaks (arithmetic, chain, out_of_range) and precision drift (drift, chain_drift). Rewritten per user by reconcile()';
COMMENT ON COLUMN calo_recon.reconciliation_findings.txn_id IS 'Transaction the finding is about';
COMMENT ON COLUMN calo_recon.reconciliation_findings.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.reconciliation_findings.finding IS
  'arithmetic: new_balance differs from old_balance -/+ (amount - vat) by at least the tolerance; chain: old_balance differs from the previous new_balance by at least the tolerance; drift / chain_drift: the same with a nonzero difference below the tolerance; out_of_range: a value the exact math cannot hold (|value| >= 10^20, more than 18 decimals, NaN)';
COMMENT ON COLUMN calo_recon.reconciliation_findings.expected IS 'Expected value: the computed new_balance (arithmetic) or the previous new_balance (chain); NULL for out_of_range';
COMMENT ON COLUMN calo_recon.reconciliation_findings.actual IS 'Logged value: new_balance (arithmetic) or old_balance (chain); NULL for out_of_range';
COMMENT ON COLUMN calo_recon.reconciliation_findings.difference IS 'actual - expected, exact; NULL for out_of_range';
COMMENT ON COLUMN calo_recon.reconciliation_findings.tolerance IS 'Half the minor unit of the currency (2 decimals, i.e. 0.005, when the currency is not in calo_recon.currencies)';
COMMENT ON COLUMN calo_recon.reconciliation_findings.currency IS 'Currency of the transaction';
COMMENT ON COLUMN calo_recon.reconciliation_findings.logged_at IS 'logged_at of the transaction';
COMMENT ON COLUMN calo_recon.reconciliation_findings.first_break IS 'true for the user''s first arithmetic/chain/out_of_range break in chain order (a chain break comes before an arithmetic one of the same transaction)';
COMMENT ON COLUMN calo_recon.reconciliation_findings.reconciled_at IS 'When reconcile() wrote the finding';
SELECT pg_catalog.pg_extension_config_dump('calo_recon.reconciliation_findings', '');

CREATE FUNCTION calo_recon.reconcile(user_ids text[] DEFAULT NULL)
RETURNS TABLE (users bigint, transactions bigint, arithmetic_breaks bigint,
               chain_breaks bigint, drift bigint, overdrafts bigint)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_reconcile';
COMMENT ON FUNCTION calo_recon.reconcile(text[]) IS
  'Recomputes the reconciliation findings of the given users (all users when NULL) in one pass over their transactions in chain order (logged_at, then txn_id); returns the counts. Values outside the exact range raise a WARNING and become out_of_range findings';
REVOKE ALL ON FUNCTION calo_recon.reconcile(text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.check_transaction(
    txn_type text, currency text, amount numeric, vat numeric,
    old_balance numeric, new_balance numeric, prev_new_balance numeric DEFAULT NULL)
RETURNS TABLE (finding text, expected numeric, actual numeric, difference numeric,
               tolerance numeric)
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_check_transaction';
COMMENT ON FUNCTION calo_recon.check_transaction(text, text, numeric, numeric, numeric, numeric, numeric) IS
  'Checks one transaction against the rules of reconcile(): chain (when prev_new_balance is given), arithmetic and overdraft; one row per finding (chain, chain_drift, arithmetic, drift, out_of_range, overdraft), none when it reconciles. STABLE, not IMMUTABLE: the tolerance comes from calo_recon.currencies, which is editable';
REVOKE ALL ON FUNCTION calo_recon.check_transaction(text, text, numeric, numeric, numeric, numeric, numeric) FROM PUBLIC;

CREATE FUNCTION calo_recon.exact_decimal(value numeric, via_text boolean DEFAULT false)
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_exact_decimal';
COMMENT ON FUNCTION calo_recon.exact_decimal(numeric, boolean) IS
  'Diagnostic: the exact value reconcile() computes with (fixed point, 18 decimals, |value| < 10^20), as text without trailing zeros; via_text uses the numeric_out path instead of decoding the numeric directly. Errors 22003 out of range, 22023 for NaN/infinity';

CREATE FUNCTION calo_recon.chain_findings(txn_ids text[])
RETURNS TABLE (txn_id text, user_id text, finding text, expected numeric, actual numeric,
               difference numeric, tolerance numeric, currency text)
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'calo_recon_chain_findings';
COMMENT ON FUNCTION calo_recon.chain_findings(text[]) IS
  'The findings the walk of reconcile() makes of the given stored transactions and of the stored rows after them in chain order (re-checked: a given row may be their new predecessor), each against its predecessor in chain order among the stored rows: chain, chain_drift, arithmetic, drift, out_of_range and overdraft (actual = new_balance); a re-checked row that is not given and has no finding gives one row with finding NULL. The insert-time check of the alert trigger';
REVOKE ALL ON FUNCTION calo_recon.chain_findings(text[]) FROM PUBLIC;

-- The walk's rules for SQL: the views order and decide with these, never
-- with a copy of the rule (src/core/walk.c, src/core/balance.c).
CREATE FUNCTION calo_recon.chain_key(logged_at timestamptz, txn_id text)
RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_chain_key';
COMMENT ON FUNCTION calo_recon.chain_key(timestamptz, text) IS
  'Sort key of the chain order of reconcile(): ORDER BY calo_recon.chain_key(logged_at, txn_id) is logged_at, then txn_id compared bytewise, in every database collation';

CREATE FUNCTION calo_recon.tolerance(minor_unit integer)
RETURNS numeric
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_tolerance';
COMMENT ON FUNCTION calo_recon.tolerance(integer) IS
  'Tolerance of reconcile() for a currency with that many decimals: half its minor unit (3 gives 0.0005); NULL (a currency not in calo_recon.currencies) gives that of 2 decimals, 0.005';

CREATE FUNCTION calo_recon.is_credit(txn_type text, old_balance numeric, new_balance numeric)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_is_credit';
COMMENT ON FUNCTION calo_recon.is_credit(text, numeric, numeric) IS
  'Direction rule of reconcile(): true for CREDIT, false for DEBIT; a legacy row (txn_type NULL) is a credit when new_balance >= old_balance. NULL when a balance is NULL; 22023 for another type';

CREATE FUNCTION calo_recon.is_overdraft(new_balance numeric)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_is_overdraft';
COMMENT ON FUNCTION calo_recon.is_overdraft(numeric) IS
  'Overdraft rule of reconcile() and the alerts: the transaction left the wallet below zero (new_balance < 0)';

CREATE FUNCTION calo_recon.finding_rank(finding text)
RETURNS integer
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_finding_rank';
COMMENT ON FUNCTION calo_recon.finding_rank(text) IS
  'Order in which reconcile() reports the findings of one transaction: chain, chain_drift, arithmetic, drift, out_of_range, overdraft (1 to 6); NULL for any other text';

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

CREATE FUNCTION calo_recon.is_break(finding text)
RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_is_break';
COMMENT ON FUNCTION calo_recon.is_break(text) IS
  'Whether a finding of reconcile() is a break (chain, arithmetic, out_of_range) rather than precision drift or an overdraft: the one list balance_breaks, the insert-time alerts and the resolution of unsupported alerts use; false for any other text';

CREATE FUNCTION calo_recon.round_money(value numeric, minor_unit integer)
RETURNS numeric
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'calo_recon_round_money';
COMMENT ON FUNCTION calo_recon.round_money(numeric, integer) IS
  'The rounding of every report: value to minor_unit decimals (calo_recon.currencies.minor_unit), half away from zero; NULL minor_unit (a currency not in calo_recon.currencies) gives 2 decimals, as the tolerance does. NULL for a NULL value';

-- ---------------------------------------------------------------------
-- Views (the BI contract). Money is shown rounded to the currency's minor
-- unit (round_money); transactions keeps the logged values and
-- precision_drift the exact ones.
-- ---------------------------------------------------------------------

CREATE VIEW calo_recon.balance_breaks AS
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

CREATE VIEW calo_recon.precision_drift AS
SELECT f.txn_id, f.user_id,
       CASE f.finding WHEN 'drift' THEN 'arithmetic' ELSE 'chain' END AS drift_kind,
       f.currency, f.expected, f.actual, f.difference, f.tolerance, f.logged_at,
       t.source_file
FROM calo_recon.reconciliation_findings f
-- by user_id too, as balance_breaks
LEFT JOIN calo_recon.transactions t ON t.txn_id = f.txn_id AND t.user_id = f.user_id
WHERE f.finding IN ('drift', 'chain_drift');
COMMENT ON VIEW calo_recon.precision_drift IS
  'Nonzero differences below the tolerance (float noise such as 268.0000000001): reported apart, not breaks. Up to date as of the last calo_recon.reconcile()';
COMMENT ON COLUMN calo_recon.precision_drift.txn_id IS 'Transaction with the drift';
COMMENT ON COLUMN calo_recon.precision_drift.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.precision_drift.drift_kind IS 'arithmetic (new_balance against old_balance and amount - vat) or chain (old_balance against the previous new_balance)';
COMMENT ON COLUMN calo_recon.precision_drift.currency IS 'Currency of the transaction';
COMMENT ON COLUMN calo_recon.precision_drift.expected IS 'Expected value, as in balance_breaks';
COMMENT ON COLUMN calo_recon.precision_drift.actual IS 'Logged value, as in balance_breaks';
COMMENT ON COLUMN calo_recon.precision_drift.difference IS 'actual - expected (signed, exact, 0 < |difference| < tolerance)';
COMMENT ON COLUMN calo_recon.precision_drift.tolerance IS 'Half the minor unit of the currency (0.005 when unknown)';
COMMENT ON COLUMN calo_recon.precision_drift.logged_at IS 'logged_at of the transaction';
COMMENT ON COLUMN calo_recon.precision_drift.source_file IS 'Export file the transaction was read from';

CREATE VIEW calo_recon.overdrafts AS
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

CREATE VIEW calo_recon.discrepancies AS
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
COMMENT ON VIEW calo_recon.discrepancies IS
  'Balance errors whose subscription and payment balances differ by at least the tolerance (currency of the linked transaction of the same user, else of the user''s latest transaction, else 2 decimals); balances and difference rounded to that currency''s minor unit (round_money), the test on the exact difference';
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

-- overdraft_episodes and user_summary read the report totals: see
-- sql/install/78_reports.sql.
