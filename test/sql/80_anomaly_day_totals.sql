-- daily_summary's anomalies per day: refresh() stores them
-- (anomaly_day_totals) and daily_summary reads the stored counts while
-- anomaly_input_changes is empty; every statement that changes an input of
-- the anomalies view notes itself there, so daily_summary counts live
-- until the next refresh().  Before each change the stored counts are made
-- current; each change moves the counts (stale = the stored counts no
-- longer equal the live ones), so a change that failed to note itself
-- would show here as daily_summary disagreeing with the live count.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET calo_recon.alerts = off;

-- noted: changes waiting; stale: the stored per-day counts differ from the
-- live ones; agrees: daily_summary's anomalies per day equal the live ones
CREATE FUNCTION pg_temp.state() RETURNS TABLE (noted boolean, stale boolean, agrees boolean, anomalies bigint)
LANGUAGE sql AS $$
    SELECT EXISTS (SELECT FROM calo_recon.anomaly_input_changes),
           EXISTS ((SELECT day, currency, anomalies FROM calo_recon.anomaly_day_totals
                    EXCEPT SELECT day, currency, anomalies FROM calo_recon.anomaly_day_counts)
                   UNION ALL
                   (SELECT day, currency, anomalies FROM calo_recon.anomaly_day_counts
                    EXCEPT SELECT day, currency, anomalies FROM calo_recon.anomaly_day_totals)),
           NOT EXISTS ((SELECT day, currency, anomalies FROM calo_recon.daily_summary WHERE anomalies > 0
                        EXCEPT SELECT day, currency, anomalies FROM calo_recon.anomaly_day_counts)
                       UNION ALL
                       (SELECT day, currency, anomalies FROM calo_recon.anomaly_day_counts
                        EXCEPT SELECT day, currency, anomalies FROM calo_recon.daily_summary)),
           (SELECT coalesce(sum(d.anomalies), 0)::bigint FROM calo_recon.daily_summary d)
$$;
CREATE FUNCTION pg_temp.refreshed() RETURNS TABLE (status text, noted boolean, stored bigint)
LANGUAGE plpgsql AS $$
BEGIN
    status := (calo_recon.refresh('samples/balance-sync-logs')).status;
    noted := EXISTS (SELECT FROM calo_recon.anomaly_input_changes);
    stored := (SELECT coalesce(sum(t.anomalies), 0)::bigint FROM calo_recon.anomaly_day_totals t);
    RETURN NEXT;
END;
$$;

-- nothing yet: nothing stored, nothing noted, nothing shown
SELECT * FROM pg_temp.state();

-- generated wallets over three days in SAR and BHD, every fifth amount
-- above the built-in thresholds (SAR 1000, BHD 100)
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'D' || lpad(k::text, 3, '0') || '-' || u, 'day-' || u, 'DEBIT', c.cur, a.amount, 0,
       100000 - k * 1500, 100000 - k * 1500 - a.amount,
       timestamptz '2024-06-01 00:00+00' + k * interval '3 hours' + u * interval '1 minute'
FROM generate_series(0, 11) AS u
CROSS JOIN generate_series(0, 23) AS k
CROSS JOIN LATERAL (SELECT CASE WHEN u % 2 = 0 THEN 'SAR' ELSE 'BHD' END AS cur) c
CROSS JOIN LATERAL (SELECT CASE WHEN (u + k) % 5 = 0 THEN 1200 + u ELSE 20 + k END::numeric AS amount) a;
SELECT * FROM pg_temp.state();

-- refresh() stores the counts and empties the notes
SELECT * FROM pg_temp.refreshed();
SELECT * FROM pg_temp.state();
-- the stored counts are what daily_summary reads: spoiled on purpose (a
-- write to the stored counts is not an input), daily_summary shows it
UPDATE calo_recon.anomaly_day_totals SET anomalies = anomalies + 100;
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();

-- each input, changed after a refresh: noted, and daily_summary counts live
-- a transaction above the threshold
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('D-new', 'day-0', 'DEBIT', 'SAR', 5000, 0, 0, -5000, '2024-06-02 12:00+00');
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
-- an amount corrected below it
UPDATE calo_recon.transactions SET amount = 10 WHERE txn_id = 'D-new';
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
-- a transaction deleted
DELETE FROM calo_recon.transactions WHERE txn_id = 'D000-0';
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
-- a threshold
SELECT currency, threshold FROM calo_recon.set_amount_threshold('BHD', 30);
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
-- a verdict
SELECT verdict FROM calo_recon.record_feedback('D005-0', 'dismissed');
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
-- a model trained (its scores written by the bulk writer in the same call)
SELECT model_name, active FROM calo_recon.train_model('days', 0.2, 50, 64, 7);
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
-- scores deleted by hand, then written again by the bulk writer alone
DELETE FROM calo_recon.transaction_scores s WHERE s.flagged;
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
UPDATE calo_recon.transaction_scores SET flagged = true WHERE txn_id IN ('D001-1', 'D002-2');
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
TRUNCATE calo_recon.transaction_scores;
SELECT * FROM pg_temp.state();
-- stored with no score at all (what refresh() does last, without its
-- scoring), then the scores written by score_transactions() alone: noted
SELECT calo_recon.store_anomaly_day_totals() > 0 AS stored;
SELECT * FROM pg_temp.state();
SELECT calo_recon.score_transactions() > 0 AS scored;
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
-- the model deactivated
UPDATE calo_recon.models SET active = false;
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.refreshed();
SELECT * FROM pg_temp.state();

-- the bulk write of scores fires statement triggers, as COPY does, and
-- refuses row-level insert triggers (which it would not fire): 0A000
CREATE TABLE pg_temp.score_statements (n int);
CREATE FUNCTION pg_temp.count_score_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO score_statements VALUES (1);
    RETURN NULL;
END;
$$;
CREATE TRIGGER count_statements AFTER INSERT ON calo_recon.transaction_scores
    FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.count_score_statement();
UPDATE calo_recon.models SET active = true;
SELECT calo_recon.score_transactions(false) > 0 AS scored;
SELECT count(*) > 0 AS fired FROM pg_temp.score_statements;
DROP TRIGGER count_statements ON calo_recon.transaction_scores;
CREATE TRIGGER count_rows AFTER INSERT ON calo_recon.transaction_scores
    FOR EACH ROW EXECUTE FUNCTION pg_temp.count_score_statement();
\set VERBOSITY sqlstate
SELECT calo_recon.score_transactions(false);
\set VERBOSITY default
DROP TRIGGER count_rows ON calo_recon.transaction_scores;

-- only refresh() and its owner store the counts
CREATE ROLE day_totals_reader;
SET ROLE day_totals_reader;
\set VERBOSITY sqlstate
SELECT calo_recon.store_anomaly_day_totals();
\set VERBOSITY default
RESET ROLE;
DROP ROLE day_totals_reader;
