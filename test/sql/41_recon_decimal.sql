-- numeric -> exact decimal: the direct varlena decoding agrees with
-- numeric_out on many values (signs, scales 0..18, huge, tiny, short and
-- long numeric formats, in memory and as stored on disk).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

CREATE TEMP TABLE vals AS
SELECT round(((i * 2654435761::bigint) % 100000000000000 - 50000000000000)::numeric
             / (10::numeric ^ (i % 33)), i % 19) AS v
FROM generate_series(1, 20000) AS i
UNION ALL SELECT round(random_normal, 12) FROM (SELECT (i % 97 - 48) * 1234.5678901234567 AS random_normal FROM generate_series(1, 200) i) s
UNION ALL VALUES (0), (-0.0), (1), (-1), (0.000000000000000001), (-0.000000000000000001),
  (99999999999999999999.999999999999999999), (-99999999999999999999.999999999999999999),
  (268.0000000001), (11608.930300000001), (1516.54), (10000), (0.0001), (123456789.000000001),
  (1.000000000000000000000000000000000000000000000000000000000000000000000000000000),
  (-7.50000000000000000000000000000000000000000000000000000000000000000000000000000000),
  (1e19), (-1e19), (12345678901234567890.5);

SELECT count(*) AS values_tested,
       count(*) FILTER (WHERE calo_recon.exact_decimal(v) <> trim_scale(v)::text) AS direct_mismatches,
       count(*) FILTER (WHERE calo_recon.exact_decimal(v, true) <> trim_scale(v)::text) AS text_mismatches,
       count(DISTINCT scale(v)) AS scales
FROM vals;

-- long-format numerics (display scale above 63) decode too
SELECT calo_recon.exact_decimal(1.000000000000000000000000000000000000000000000000000000000000000000000000000000),
       calo_recon.exact_decimal(-7.5000000000000000000000000000000000000000000000000000000000000000000000000000000);

-- out of range: 10^20, more than 18 decimals, NaN and infinity are errors here
SELECT calo_recon.exact_decimal(100000000000000000000);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT calo_recon.exact_decimal(-100000000000000000000, true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT calo_recon.exact_decimal(0.0000000000000000001);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT calo_recon.exact_decimal(1e300);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT calo_recon.exact_decimal('NaN');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT calo_recon.exact_decimal('Infinity', true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT calo_recon.exact_decimal('-Infinity');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- trailing zeros beyond 18 places are still exact
SELECT calo_recon.exact_decimal(2.50000000000000000000000);

