-- The one bulk writer (src/glue/bulk_write_glue.c) of the scores and the
-- report totals holds both to the stricter rules of the two copies it
-- replaced: a table with a trigger or a rule is refused (0A000; the score
-- writer let rules through, the totals' writer refused both with an internal
-- error), and the table's constraints are checked per row (the totals'
-- writer checked none).
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

-- a rule on transaction_scores would not be applied by the bulk write: refused
CREATE RULE scores_told AS ON INSERT TO calo_recon.transaction_scores DO ALSO NOTIFY scores_written;
\set VERBOSITY terse
SELECT calo_recon.score_transactions(false);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
DROP RULE scores_told ON calo_recon.transaction_scores;

-- nor a trigger on a table of the report totals: refused with the same SQLSTATE
CREATE TRIGGER totals_unchanged BEFORE UPDATE ON calo_recon.user_totals
    FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
\set VERBOSITY terse
SELECT * FROM calo_recon.reconcile();
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
DROP TRIGGER totals_unchanged ON calo_recon.user_totals;

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
