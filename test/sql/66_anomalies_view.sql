-- The anomalies view read in one pass (issue 10 item 7): the same rows,
-- columns and types as its previous definition (candidates from the flagged
-- scores of active models, the amount rule and the confirmed verdicts,
-- grouped, then each looked up with its model), kept below as plain SQL and
-- compared row for row while currencies, models, verdicts and thresholds
-- change.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET max_parallel_workers_per_gather = 0;

-- 4 currencies x 10 users x 15 rows; EUR is not in calo_recon.currencies
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('V%s-%s', lpad(u::text, 2, '0'), lpad(k::text, 2, '0')), format('W%s', lpad(u::text, 2, '0')),
       'DEBIT', c.currency, a.amount, 0, 9000 - (k - 1) * a.amount, 9000 - k * a.amount,
       timestamptz '2024-02-01 00:00+00' + make_interval(days => k, hours => (u * 5 + k * 7) % 24)
FROM generate_series(0, 39) AS u, generate_series(1, 15) AS k,
     LATERAL (SELECT (ARRAY['SAR', 'BHD', 'KWD', 'EUR'])[u / 10 + 1] AS currency) c,
     LATERAL (SELECT (10 + (u * 37 + k * 11) % 90 + CASE WHEN (u + k) % 23 = 0 THEN 400 ELSE 0 END)::numeric AS amount) a;
RESET calo_recon.alerts;

-- the previous definition, as it was (with the amount rule and the model
-- choice it read): the benchmark's peer, bench_anomalies_before (pg_regress
-- runs from the top of the tree)
\set ECHO none
SET client_min_messages = warning;
\i bench/anomaly/anomalies_before.sql
RESET client_min_messages;
\set ECHO all
CREATE TEMP VIEW anomalies_before AS SELECT * FROM bench_anomalies_before;

-- the same columns, in the same order, of the same types
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attname = b.attname AND a.atttypid = b.atttypid AND a.atttypmod = b.atttypmod AS same
FROM pg_attribute a
JOIN pg_attribute b ON b.attrelid = 'anomalies_before'::regclass AND b.attnum = a.attnum
WHERE a.attrelid = 'calo_recon.anomalies'::regclass AND a.attnum > 0
ORDER BY a.attnum;
SELECT count(*) AS columns_before FROM pg_attribute WHERE attrelid = 'anomalies_before'::regclass AND attnum > 0;

-- compare: the rows of each reason in both, and the rows of one not in the
-- other (duplicates counted)
CREATE TEMP VIEW comparison AS
SELECT coalesce(n.reason, b.reason) AS reason, coalesce(n.rows, 0) AS rows_now, coalesce(b.rows, 0) AS rows_before,
       (SELECT count(*) FROM (SELECT * FROM calo_recon.anomalies EXCEPT ALL SELECT * FROM anomalies_before) x) AS only_now,
       (SELECT count(*) FROM (SELECT * FROM anomalies_before EXCEPT ALL SELECT * FROM calo_recon.anomalies) x) AS only_before
FROM (SELECT reason, count(*) AS rows FROM calo_recon.anomalies GROUP BY reason) n
FULL JOIN (SELECT reason, count(*) AS rows FROM anomalies_before GROUP BY reason) b USING (reason)
ORDER BY 1;

-- 1. no model: the amount rule alone (SAR 1000, BHD 100, KWD 80, EUR '*')
SELECT * FROM comparison;

-- 2. an all-currency model and a SAR model: SAR rows under the SAR model,
-- the rest under the all-currency one (EUR included)
SELECT model_name, currency, active FROM calo_recon.train_model('all', 0.05, 50, 64, 21);
SELECT model_name, currency, active FROM calo_recon.train_model('sar', 0.05, 50, 64, 22, 'SAR');
SELECT * FROM comparison;
SELECT currency, model_name, count(*) FROM calo_recon.anomalies GROUP BY 1, 2 ORDER BY 1, 2;

-- 3. a newer all-currency model and a BHD model: the flags of the
-- inactive 'all' no longer count
SELECT model_name, currency, active FROM calo_recon.train_model('all2', 0.10, 50, 64, 23);
SELECT model_name, currency, active FROM calo_recon.train_model('bhd', 0.10, 50, 64, 24, 'BHD');
SELECT count(*) > 0 AS inactive_model_has_flags
FROM calo_recon.transaction_scores s JOIN calo_recon.models m USING (model_id)
WHERE m.model_name = 'all' AND s.flagged;
SELECT * FROM comparison;

-- 4. thresholds: SAR lower, KWD higher, '*' lower (EUR)
SELECT currency, threshold FROM calo_recon.set_amount_threshold('SAR', 60);
SELECT currency, threshold FROM calo_recon.set_amount_threshold('KWD', 95);
SELECT currency, threshold FROM calo_recon.set_amount_threshold('*', 90);
SELECT * FROM comparison;

-- 5. verdicts: flagged rows dismissed, unflagged rows confirmed, a verdict
-- changed both ways (the latest counts)
SELECT count(*) FROM (SELECT calo_recon.record_feedback(a.txn_id, 'dismissed')
                      FROM calo_recon.anomalies a WHERE a.reason = 'model' ORDER BY a.txn_id LIMIT 3) d;
SELECT count(*) FROM (SELECT calo_recon.record_feedback(a.txn_id, 'dismissed')
                      FROM calo_recon.anomalies a WHERE a.reason = 'amount_rule' ORDER BY a.txn_id LIMIT 3) d;
SELECT count(*) FROM (SELECT calo_recon.record_feedback(t.txn_id, 'confirmed')
                      FROM calo_recon.transactions t
                      WHERE NOT EXISTS (SELECT 1 FROM calo_recon.anomalies a WHERE a.txn_id = t.txn_id)
                      ORDER BY t.txn_id LIMIT 4) c;
SELECT (calo_recon.record_feedback(txn_id, 'confirmed')).verdict AS reconfirmed
FROM (SELECT f.txn_id FROM calo_recon.anomaly_feedback f WHERE f.verdict = 'dismissed' ORDER BY f.txn_id LIMIT 1) d;
SELECT (calo_recon.record_feedback(txn_id, 'dismissed')).verdict AS redismissed
FROM (SELECT f.txn_id FROM calo_recon.anomaly_feedback f WHERE f.verdict = 'confirmed' ORDER BY f.txn_id LIMIT 1) c;
SELECT * FROM comparison;
SELECT verdict, count(*) FROM calo_recon.anomalies GROUP BY verdict ORDER BY verdict;

-- 6. no all-currency model and no '*' row: KWD and EUR rows have no model
-- and EUR no threshold; only BHD, SAR and the analysts' rows remain
UPDATE calo_recon.models SET active = false WHERE currency IS NULL;
DELETE FROM calo_recon.amount_thresholds WHERE currency = '*';
SELECT * FROM comparison;
SELECT currency, count(*) FILTER (WHERE model_name IS NULL) AS without_model, count(*) AS rows
FROM calo_recon.anomalies GROUP BY currency ORDER BY currency;

-- the view reads the transactions once, and a count reads only the
-- flagged scores (the score, explanation and attribution are not joined)
CREATE FUNCTION pg_temp.plan_lines(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT line;
    END LOOP;
END
$$;
SELECT count(*) FILTER (WHERE l ~ ' on transactions( |$)') AS transactions_read,
       count(*) FILTER (WHERE l ~ ' on transaction_scores( |$)') AS scores_read
FROM pg_temp.plan_lines('SELECT count(*) FROM calo_recon.anomalies') l;
SELECT count(*) FILTER (WHERE l ~ ' on transactions( |$)') AS transactions_read
FROM pg_temp.plan_lines('SELECT * FROM calo_recon.anomalies') l;
