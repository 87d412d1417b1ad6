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

-- The one reading of the rule: the anomalies view and the alert trigger
-- select from it.
CREATE VIEW calo_recon.amount_rule_hits AS
SELECT t.txn_id, t.user_id, t.currency, t.amount,
       coalesce(own.threshold, fallback.threshold) AS threshold,
       coalesce(own.currency, fallback.currency) AS threshold_row
FROM calo_recon.transactions t
LEFT JOIN calo_recon.amount_thresholds own ON own.currency = t.currency
LEFT JOIN calo_recon.amount_thresholds fallback ON fallback.currency = '*'
WHERE t.amount > coalesce(own.threshold, fallback.threshold);
COMMENT ON VIEW calo_recon.amount_rule_hits IS
  'Transactions whose amount is above their currency''s threshold in calo_recon.amount_thresholds (its own row, else the row ''*''; with neither, none): the amount rule of calo_recon.anomalies and of the amount_rule alert';
COMMENT ON COLUMN calo_recon.amount_rule_hits.txn_id IS 'Transaction id';
COMMENT ON COLUMN calo_recon.amount_rule_hits.user_id IS 'Wallet owner';
COMMENT ON COLUMN calo_recon.amount_rule_hits.currency IS 'ISO 4217 currency code';
COMMENT ON COLUMN calo_recon.amount_rule_hits.amount IS 'Gross amount';
COMMENT ON COLUMN calo_recon.amount_rule_hits.threshold IS 'The threshold it is above';
COMMENT ON COLUMN calo_recon.amount_rule_hits.threshold_row IS 'The row of calo_recon.amount_thresholds that applied: the currency, or ''*''';

SELECT pg_catalog.pg_extension_config_dump('calo_recon.amount_thresholds', 'WHERE NOT builtin');
