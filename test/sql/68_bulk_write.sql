-- The one bulk writer (src/glue/bulk_write_glue.c) of the scores, the
-- findings and the report totals holds them to the same rules, the stricter
-- of the copies it replaced and COPY's: statement triggers fire; a
-- row-level insert trigger or an insert rule, which it would not fire or
-- apply, is refused (0A000; the score writer let insert rules through, the
-- totals' writer refused any trigger with an internal error); the table's
-- constraints are checked per row (the totals' writer checked none).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('W%s-%s', u, k), format('writer-%s', u), 'DEBIT', 'SAR', 5 + (u * 7 + k * 3) % 20, 0,
       1000 - (k - 1) * 10, 1000 - k * 10,
       timestamptz '2024-05-01 00:00+00' + make_interval(hours => k * 5 + u)
FROM generate_series(1, 6) AS u, generate_series(1, 10) AS k;
RESET calo_recon.alerts;
SELECT model_name FROM calo_recon.train_model('writer', 0.05, 20, 32, 5);
SELECT users, transactions FROM calo_recon.reconcile();
SELECT (SELECT count(*) FROM calo_recon.transaction_scores) AS scores,
       (SELECT count(*) FROM calo_recon.user_totals) AS user_totals,
       (SELECT count(*) FROM calo_recon.user_day_totals) AS user_day_totals;

-- an insert rule on transaction_scores would not be applied by the bulk write: refused
CREATE RULE scores_told AS ON INSERT TO calo_recon.transaction_scores DO ALSO NOTIFY scores_written;
\set VERBOSITY terse
SELECT calo_recon.score_transactions(false);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
DROP RULE scores_told ON calo_recon.transaction_scores;

-- a statement trigger on a table of the report totals fires, as the scores' do
CREATE TABLE pg_temp.totals_statements (n int);
CREATE FUNCTION pg_temp.count_totals_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.totals_statements VALUES (1);
    RETURN NULL;
END;
$$;
CREATE TRIGGER count_statements AFTER INSERT ON calo_recon.user_totals
    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.count_totals_statement();
SELECT users, transactions FROM calo_recon.reconcile();
SELECT count(*) AS statements FROM pg_temp.totals_statements;
DROP TRIGGER count_statements ON calo_recon.user_totals;

-- a row-level one would not fire: refused with the scores' SQLSTATE
CREATE TRIGGER count_rows AFTER INSERT ON calo_recon.user_totals
    FOR EACH ROW EXECUTE FUNCTION pg_temp.count_totals_statement();
\set VERBOSITY terse
SELECT * FROM calo_recon.reconcile();
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
DROP TRIGGER count_rows ON calo_recon.user_totals;

-- the findings go through it too; the writer fills each column the caller
-- leaves to the table's default from that default, so the findings and the
-- scores are stamped with now(); a row-level trigger on the findings is
-- refused the same way
BEGIN;
SELECT users, transactions FROM calo_recon.reconcile();
SELECT count(*) > 0 AS findings, bool_and(reconciled_at = now()) AS stamped_now
FROM calo_recon.reconciliation_findings;
SELECT calo_recon.score_transactions(false) AS scored;
SELECT bool_and(scored_at = now()) AS scores_stamped_now FROM calo_recon.transaction_scores;
COMMIT;
CREATE TRIGGER count_finding_rows AFTER INSERT ON calo_recon.reconciliation_findings
    FOR EACH ROW EXECUTE FUNCTION pg_temp.count_totals_statement();
\set VERBOSITY terse
SELECT * FROM calo_recon.reconcile();
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
DROP TRIGGER count_finding_rows ON calo_recon.reconciliation_findings;

-- the report totals' rows meet their table's CHECK constraints
ALTER TABLE calo_recon.user_day_totals
    ADD CONSTRAINT one_row_a_day CHECK (transactions OPERATOR(pg_catalog.<) 2) NOT VALID;
\set VERBOSITY terse
SELECT * FROM calo_recon.reconcile();
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
ALTER TABLE calo_recon.user_day_totals DROP CONSTRAINT one_row_a_day;

-- nothing was written around them: the stored rows are the same as before
SELECT users, transactions FROM calo_recon.reconcile();
SELECT calo_recon.score_transactions(false) AS scored_again;
SELECT (SELECT count(*) FROM calo_recon.transaction_scores) AS scores,
       (SELECT count(*) FROM calo_recon.user_totals) AS user_totals,
       (SELECT count(*) FROM calo_recon.user_day_totals) AS user_day_totals;
