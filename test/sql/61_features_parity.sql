-- The feature view is computed by the C walk (src/core/anomaly_features.c); its values
-- must equal those of the SQL definition below, written from the README's
-- definitions with window functions and correlated subqueries (every "usual"
-- over the user's earlier rows in chain order).  The digests cover every row
-- and column of a random book and of the bundled sample export, and the
-- tricky rows below are shown in full.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET extra_float_digits = 3;

-- one row per transaction: every value in its shortest exact form
CREATE TEMP VIEW feature_rows AS
SELECT f.txn_id, f.user_id, f.logged_at, f.features::text AS features,
       f.amount_vs_usual, f.vat_rate, f.vat_rate_vs_usual, f.hours_from_usual,
       f.log_seconds_since_previous, f.repeats_previous, f.amount_scaled,
       f.features = ARRAY[f.amount_vs_usual, f.vat_rate, f.vat_rate_vs_usual, f.hours_from_usual,
                          f.log_seconds_since_previous, f.repeats_previous, f.amount_scaled] AS same_order
FROM calo_recon.transaction_features f;

-- the SQL definition, only as the oracle of this test
CREATE TEMP VIEW chain AS
SELECT t.txn_id, t.user_id, t.logged_at, calo_recon.chain_key(t.logged_at, t.txn_id) AS k,
       calo_recon.feature_value(t.amount) AS amount,
       round(log(1 + abs(CASE WHEN coalesce(cu.minor_unit, 2) < 3
                              THEN calo_recon.feature_value(t.amount) / (10::float8 ^ (3 - coalesce(cu.minor_unit, 2)))
                              ELSE calo_recon.feature_value(t.amount) * (10::float8 ^ (coalesce(cu.minor_unit, 2) - 3)) END))
             / 0.1) * 0.1 + 0 AS amount_scaled,
       CASE WHEN calo_recon.feature_value(t.amount) = 0 THEN NULL
            ELSE round(greatest(-10, least(10, calo_recon.feature_value(t.vat)
                                               / calo_recon.feature_value(t.amount))) / 0.001) * 0.001 + 0
       END AS rate,
       CASE t.txn_type WHEN 'CREDIT' THEN 1 WHEN 'DEBIT' THEN -1
            ELSE pg_catalog.sign(calo_recon.feature_value(t.new_balance - t.old_balance))::int END AS direction,
       CASE WHEN pg_catalog.isfinite(t.logged_at)
            THEN pg_catalog.date_part('hour', t.logged_at AT TIME ZONE 'UTC')::int END AS hour
FROM calo_recon.transactions t
LEFT JOIN calo_recon.currencies cu ON cu.code = t.currency;

CREATE TEMP VIEW sql_reference_features AS
SELECT r.txn_id, r.user_id, r.logged_at,
       ARRAY[r.amount_vs_usual, r.vat_rate, r.vat_rate_vs_usual, r.hours_from_usual,
             r.log_seconds_since_previous, r.repeats_previous, r.amount_scaled] AS features,
       r.amount_vs_usual, r.vat_rate, r.vat_rate_vs_usual, r.hours_from_usual,
       r.log_seconds_since_previous, r.repeats_previous, r.amount_scaled
FROM (
    SELECT c.txn_id, c.user_id, c.logged_at,
           coalesce((SELECT CASE WHEN count(*) >= 3 AND percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(e.amount)) > 0
                                  AND c.amount <> 0
                                 THEN round(log(2::numeric, (abs(c.amount)
                                          / percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(e.amount)))::numeric))::float8 END
                     FROM chain e
                     WHERE e.user_id = c.user_id AND e.k < c.k AND e.direction = c.direction
                       AND e.amount <> 0 AND c.direction <> 0), 0) AS amount_vs_usual,
           coalesce(c.rate, 0) AS vat_rate,
           coalesce((SELECT CASE WHEN count(*) >= 3
                                 THEN round((c.rate - percentile_cont(0.5) WITHIN GROUP (ORDER BY e.rate)) / 0.01) * 0.01 + 0 END
                     FROM chain e
                     WHERE e.user_id = c.user_id AND e.k < c.k AND e.rate IS NOT NULL AND c.rate IS NOT NULL), 0)
             AS vat_rate_vs_usual,
           coalesce((SELECT CASE WHEN count(*) >= 10
                                 THEN greatest(0, min(least(abs(c.hour - e.hour), 24 - abs(c.hour - e.hour))) - 2) END
                     FROM chain e
                     WHERE e.user_id = c.user_id AND e.k < c.k AND e.hour IS NOT NULL AND c.hour IS NOT NULL), 0)::float8
             AS hours_from_usual,
           round(log(1 + least(86400, coalesce(
               CASE WHEN pg_catalog.isfinite(c.logged_at) AND pg_catalog.isfinite(p.logged_at)
                    THEN pg_catalog.date_part('epoch', c.logged_at - p.logged_at) END, 86400)))) AS log_seconds_since_previous,
           CASE WHEN pg_catalog.isfinite(c.logged_at) AND pg_catalog.isfinite(p.logged_at)
                 AND pg_catalog.date_part('epoch', c.logged_at - p.logged_at) <= 3600
                 AND c.direction <> 0 AND c.direction = p.direction AND c.amount = p.amount
                THEN 1 ELSE 0 END::float8 AS repeats_previous,
           c.amount_scaled
    FROM chain c
    LEFT JOIN LATERAL (SELECT e.logged_at, e.direction, e.amount FROM chain e
                       WHERE e.user_id = c.user_id AND e.k < c.k ORDER BY e.k DESC LIMIT 1) p ON true
) r;

-- rows where the two disagree (NaN-free values: = is exact)
CREATE TEMP VIEW disagreements AS
SELECT count(*) AS disagreements FROM (
    (SELECT txn_id, user_id, logged_at, features::text, amount_vs_usual, vat_rate, vat_rate_vs_usual,
            hours_from_usual, log_seconds_since_previous, repeats_previous, amount_scaled
     FROM calo_recon.transaction_features
     EXCEPT ALL
     SELECT txn_id, user_id, logged_at, features::text, amount_vs_usual, vat_rate, vat_rate_vs_usual,
            hours_from_usual, log_seconds_since_previous, repeats_previous, amount_scaled
     FROM sql_reference_features)
    UNION ALL
    (SELECT txn_id, user_id, logged_at, features::text, amount_vs_usual, vat_rate, vat_rate_vs_usual,
            hours_from_usual, log_seconds_since_previous, repeats_previous, amount_scaled
     FROM sql_reference_features
     EXCEPT ALL
     SELECT txn_id, user_id, logged_at, features::text, amount_vs_usual, vat_rate, vat_rate_vs_usual,
            hours_from_usual, log_seconds_since_previous, repeats_previous, amount_scaled
     FROM calo_recon.transaction_features)) d;

CREATE TEMP VIEW feature_digest AS
SELECT count(*) AS n_rows,
       md5(string_agg(r::text, E'\n' ORDER BY r.txn_id COLLATE "C")) AS digest
FROM feature_rows r;

-- the bundled sample export
SELECT transactions FROM calo_recon.ingest_file('samples/balance-sync-logs');
SELECT * FROM feature_digest;
SELECT * FROM disagreements;
TRUNCATE calo_recon.transactions;

-- a random book: 4000 rows of 70 users, amounts with up to 4 places,
-- times to the microsecond over two years (many share a second)
SELECT setseed(0.5151);
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('R%s', i), format('U%s', i % 70),
       CASE WHEN random() < 0.1 THEN NULL WHEN random() < 0.3 THEN 'CREDIT' ELSE 'DEBIT' END,
       'BHD', a, round(a * 0.15, 4), b, b + round((random() - 0.6)::numeric * 100, 3),
       timestamptz '2023-01-01 00:00:00+00'
         + make_interval(secs => round((random() * 730 * 86400)::numeric, 6)::float8)
FROM (SELECT i, round((random() * 200)::numeric, (i % 5)) AS a,
             round((random() * 1000 - 100)::numeric, 2) AS b
      FROM generate_series(1, 4000) AS i) g;
SELECT * FROM feature_digest;
SELECT * FROM disagreements;
TRUNCATE calo_recon.transactions;

-- tricky rows: ties in chain order (txn_id bytewise, shorter first), the
-- legacy direction (up, down, flat), NaN and infinities, money beyond the
-- 1e100 bound, beyond the exact range of the reconciliation (1e20, 19+
-- places), infinite and pre-1970 times, gaps of days with microseconds, an
-- even count (median between two rows), a median below 0.0001, a negative
-- median, a user with one row, and repeats of an amount (12 s later: a double
-- charge; 3601 s later, or the other direction: none)
-- non-finite money as 1.1 stored it: an update to 1.2 keeps such rows, its
-- finiteness checks NOT VALID (README "Bad input"), so the readers must still
-- cope; the checks are off for this insert, then back NOT VALID
CREATE TEMP TABLE finite_checks AS
SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
WHERE conrelid = 'calo_recon.transactions'::regclass AND conname LIKE '%\_finite';
DO $$ DECLARE c record; BEGIN
    FOR c IN SELECT * FROM finite_checks LOOP
        EXECUTE format('ALTER TABLE calo_recon.transactions DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES
    ('b',    'TIE', 'DEBIT',  'BHD', 10, 1, 100, 91, '2024-03-01 12:00:00+00'),
    ('a',    'TIE', 'DEBIT',  'BHD', 11, 1, 91, 81, '2024-03-01 12:00:00+00'),
    ('ab',   'TIE', 'CREDIT', 'BHD', 12, 1, 81, 92, '2024-03-01 12:00:00+00'),
    ('B',    'TIE', 'DEBIT',  'BHD', 13, 1, 92, 80, '2024-03-01 12:00:00+00'),
    ('a0',   'TIE', 'DEBIT',  'BHD', 14, 1, 80, 67, '2024-03-01 11:59:59.999999+00'),
    ('L-UP',   'LEG', NULL, 'BHD', 5, 0.5, 10, 14.5, '2024-02-01 00:00:00+00'),
    ('L-DOWN', 'LEG', NULL, 'BHD', 5, 0.5, 14.5, 10, '2024-02-03 07:08:09.123456+00'),
    ('L-FLAT', 'LEG', NULL, 'BHD', 0, 0, 10, 10, '2024-02-03 07:08:09.123457+00'),
    ('L-NAN',  'LEG', NULL, 'BHD', 1, 0, 'NaN', 10, '2024-02-10 00:00:00+00'),
    ('S-NAN',  'SPC', 'DEBIT', 'BHD', 'NaN', 1, 200, 199, '2024-01-02 10:00:00+00'),
    ('S-INF',  'SPC', 'DEBIT', 'BHD', 3, 'Infinity', 'Infinity', 5, '2024-01-02 10:00:01+00'),
    ('S-NINF', 'SPC', 'CREDIT', 'BHD', '-Infinity', 0, 5, '-Infinity', '2024-01-02 10:00:02+00'),
    ('S-HUGE', 'SPC', 'CREDIT', 'BHD', 1e120, 1e119, -1e150, 1e150, '2024-01-02 10:00:03+00'),
    ('S-BIG',  'SPC', 'DEBIT', 'BHD', 123456789012345678901234.5, 0.000000000000000000001,
               99999999999999999999.99, -1, '2024-01-02 10:00:04+00'),
    ('S-PREC', 'SPC', 'DEBIT', 'BHD', 0.1234567890123456789, 0.1, 0.3, 0.1000000000000000001,
               '2024-01-02 10:00:05+00'),
    ('S-TINY', 'SPC', 'DEBIT', 'BHD', 1e-300, 1e-310, 0.1, 0.2, '2024-01-02 10:00:06+00'),
    ('S-DIG',  'SPC', 'CREDIT', 'BHD', 9007199254740993, 0.3, 0.7, 9007199254740993.123,
               '2024-01-02 10:00:07+00'),
    ('T-NINF', 'TIM', 'DEBIT', 'BHD', 1, 0, 5, 4, '-infinity'),
    ('T-OLD',  'TIM', 'DEBIT', 'BHD', 2, 0, 4, 2, '1901-12-13 20:45:52.000001+00'),
    ('T-1969', 'TIM', 'DEBIT', 'BHD', 3, 0, 2, -1, '1969-12-31 23:59:59.5+00'),
    ('T-NEXT', 'TIM', 'CREDIT', 'BHD', 4, 0, -1, 3, '2031-06-07 08:09:10.654321+00'),
    ('T-INF',  'TIM', 'CREDIT', 'BHD', 5, 0, 3, 8, 'infinity'),
    ('T-AFTER','TIM', 'CREDIT', 'BHD', 6, 0, 8, 14, 'infinity'),
    ('E-1',    'EVN', 'DEBIT', 'BHD', 1.5, 0, 10, 8.5, '2024-05-05 05:05:05+00'),
    ('E-2',    'EVN', 'DEBIT', 'BHD', 2.25, 0, 8.5, 6.25, '2024-05-05 05:05:06+00'),
    ('E-3',    'EVN', 'DEBIT', 'BHD', 7.1, 0, 6.25, -0.85, '2024-05-05 05:05:07+00'),
    ('E-4',    'EVN', 'DEBIT', 'BHD', 0.3, 0, -0.85, -1.15, '2024-05-05 05:05:08+00'),
    ('Z-1',    'ZER', 'DEBIT', 'BHD', 0.00004, 0, 1, 1, '2024-05-05 05:05:05+00'),
    ('Z-2',    'ZER', 'DEBIT', 'BHD', 0.00002, 0, 1, 1, '2024-05-05 05:05:06+00'),
    ('Z-3',    'ZER', 'DEBIT', 'BHD', 5, 0, 1, 1, '2024-05-05 05:05:07+00'),
    ('N-1',    'NEG', 'CREDIT', 'BHD', -3, 0, 1, 1, '2024-05-05 05:05:05+00'),
    ('N-2',    'NEG', 'CREDIT', 'BHD', -7.77, 0, 1, 1, '2024-05-05 05:05:06+00'),
    ('ONE',    'SOLO', 'CREDIT', 'BHD', 42, 4.2, 0, 37.8, '2024-07-07 23:59:59.999999+00'),
    ('D-1',    'DUP', 'DEBIT', 'SAR', 61.5, 0, 100, 38.5, '2024-05-05 05:05:05+00'),
    ('D-2',    'DUP', 'DEBIT', 'SAR', 61.5, 0, 38.5, -23, '2024-05-05 05:05:17+00'),
    ('D-3',    'DUP', 'DEBIT', 'SAR', 61.5, 0, -23, -84.5, '2024-05-05 06:05:18+00'),
    ('D-4',    'DUP', 'CREDIT', 'SAR', 61.5, 0, -84.5, -23, '2024-05-05 06:05:19+00');
DO $$ DECLARE c record; BEGIN
    FOR c IN SELECT * FROM finite_checks LOOP
        EXECUTE format('ALTER TABLE calo_recon.transactions ADD CONSTRAINT %I %s NOT VALID', c.conname, c.def);
    END LOOP;
END $$;
DROP TABLE finite_checks;
SELECT txn_id, user_id, amount_vs_usual, vat_rate, vat_rate_vs_usual, hours_from_usual,
       log_seconds_since_previous, repeats_previous, amount_scaled, same_order
FROM feature_rows ORDER BY user_id COLLATE "C", txn_id COLLATE "C";
SELECT * FROM feature_digest;
SELECT * FROM disagreements;

-- beyond float8's range: held at +-1e100 (compared with the oracle only:
-- captured after the digests above)
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('S-E400', 'SPC', 'DEBIT', 'BHD', 1e400, -1e400, -1e400, 1e400, '2024-01-02 10:00:08+00');
SELECT amount_vs_usual, vat_rate, vat_rate_vs_usual, repeats_previous, amount_scaled
FROM calo_recon.transaction_features WHERE txn_id = 'S-E400';
SELECT * FROM disagreements;
