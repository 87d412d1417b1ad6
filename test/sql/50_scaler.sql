-- StandardScaler: scaler_fit / scaler_transform, the scaler type's text,
-- JSON and binary forms, and every bad input with its SQLSTATE.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;
SET extra_float_digits = 0;

CREATE TEMP TABLE rows AS
SELECT i, ARRAY[i::float8, 1e9 + (i % 4), 7.0, (i * i) % 11]::float8[] AS f
FROM generate_series(1, 100) AS i;

-- mean, population variance (ddof 0); the constant feature gets scale 1
SELECT (j -> 'mean') AS mean, (j -> 'var') AS var, (j -> 'scale') AS scale, j -> 'n_samples' AS n
FROM (SELECT calo_recon.scaler_to_json(calo_recon.scaler_fit(f)) AS j FROM rows) s;

SELECT * FROM calo_recon.scaler_info((SELECT calo_recon.scaler_fit(f) FROM rows));

-- transform: (x - mean) / scale
SELECT calo_recon.scaler_transform(calo_recon.scaler_fit(f), ARRAY[50.5, 1e9 + 1.5, 7, 5]) FROM rows;
SELECT round(avg(x)::numeric, 12) AS mean_after, round(stddev_pop(x)::numeric, 12) AS sd_after
FROM (SELECT calo_recon.scaler_transform((SELECT calo_recon.scaler_fit(f) FROM rows), f) AS t FROM rows) r,
     unnest(r.t) WITH ORDINALITY AS u(x, k)
GROUP BY k ORDER BY k;

-- text and JSON round trips are exact
SELECT s::text::calo_recon.scaler::text = s::text AS text_round_trip,
       calo_recon.scaler_from_json(calo_recon.scaler_to_json(s))::text = s::text AS json_round_trip
FROM (SELECT calo_recon.scaler_fit(f) AS s FROM rows) q;

-- a scaler from JSON; scale derived from var when absent
SELECT calo_recon.scaler_from_json('{"n_features": 2, "n_samples": 10, "mean": [1, 2], "var": [4, 0]}');
SELECT calo_recon.scaler_transform('{"n_features": 2, "n_samples": 10, "mean": [1, 2], "var": [4, 0], "scale": [2, 1]}', ARRAY[3, 5]);

-- a near-constant feature (variance below rounding noise of its mean) is constant
SELECT calo_recon.scaler_to_json(calo_recon.scaler_fit(ARRAY[x]))->'scale' AS scale
FROM (VALUES (1e9::float8), (1e9 + 1e-7), (1e9)) v(x);

-- the same fit in parallel: same model within rounding
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TABLE scaler_big AS
SELECT ARRAY[i::float8, sin(i) * 1000, 5]::float8[] AS f FROM generate_series(1, 20000) i;
ANALYZE scaler_big;
EXPLAIN (COSTS OFF) SELECT calo_recon.scaler_fit(f) FROM scaler_big;
SELECT round((j->'mean'->>0)::numeric, 6) AS mean1, round((j->'var'->>0)::numeric, 3) AS var1,
       round((j->'scale'->>1)::numeric, 6) AS scale2, j->'scale'->2 AS scale3
FROM (SELECT calo_recon.scaler_to_json(calo_recon.scaler_fit(f)) AS j FROM scaler_big) s;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE scaler_big;

-- S1: arrays with a null bitmap and no NULL (a slice of an array with a NULL,
-- an element assigned over a NULL) read like any other.  By hand: rows (1, 2)
-- and (3, 6) have mean (2, 4) and population variance (1, 4); (3, 5) under
-- mean (1, 2), scale (2, 1) is (1, 3).
CREATE TEMP TABLE bitmap_rows (k int, f float8[]);
INSERT INTO bitmap_rows VALUES (1, (ARRAY[1, 2, NULL]::float8[])[1:2]), (2, ARRAY[NULL, 6]);
UPDATE bitmap_rows SET f[1] = 3 WHERE k = 2;
SELECT pg_column_size(f) AS bytes FROM bitmap_rows ORDER BY k;
SELECT j -> 'mean' AS mean, j -> 'var' AS var, j -> 'scale' AS scale
FROM (SELECT calo_recon.scaler_to_json(calo_recon.scaler_fit(f)) AS j FROM bitmap_rows) s;
SELECT calo_recon.scaler_transform('{"n_features": 2, "n_samples": 10, "mean": [1, 2], "var": [4, 1], "scale": [2, 1]}',
                                   (ARRAY[3, 5, NULL]::float8[])[1:2]) AS transformed;

-- B1: a fit whose variance overflows float8 is refused at once (22003) rather
-- than stored as a scaler that fails its own validator
\set VERBOSITY sqlstate
SELECT calo_recon.scaler_fit(ARRAY[x]) FROM (VALUES (1e200::float8), (-1e200)) v(x);           -- 22003 variance 1e400
SELECT calo_recon.scaler_fit(ARRAY[0, x]) FROM (VALUES (1.7e308::float8), (-1.7e308)) v(x);    -- 22003 mean difference overflows
\set VERBOSITY default
SELECT calo_recon.scaler_fit(ARRAY[0, x]) FROM (VALUES (1e200::float8), (-1e200)) v(x);
-- large but representable spreads still fit
SELECT (calo_recon.scaler_to_json(calo_recon.scaler_fit(ARRAY[x])) -> 'scale' ->> 0)::float8 AS scale
FROM (VALUES (1e150::float8), (-1e150)) v(x);

-- bad inputs: the SQLSTATE of each
\set VERBOSITY sqlstate
SELECT calo_recon.scaler_fit(f) FROM (VALUES (ARRAY[1, 2]::float8[]), (NULL)) v(f);            -- 22004 NULL array
SELECT calo_recon.scaler_fit(f) FROM (VALUES (ARRAY[1, NULL]::float8[])) v(f);                 -- 22004 NULL element
SELECT calo_recon.scaler_fit(f) FROM (VALUES (ARRAY[1, 'NaN']::float8[])) v(f);                -- 22P01 NaN
SELECT calo_recon.scaler_fit(f) FROM (VALUES (ARRAY[1, '-Infinity']::float8[])) v(f);          -- 22P01 -Infinity
SELECT calo_recon.scaler_fit(f) FROM (VALUES (ARRAY[1, 2]::float8[]), (ARRAY[1, 2, 3])) v(f);  -- 2202E wrong length
SELECT calo_recon.scaler_fit(f) FROM (VALUES ('{{1,2},{3,4}}'::float8[])) v(f);                -- 2202E two dimensions
SELECT calo_recon.scaler_fit(f) FROM (VALUES ('{}'::float8[])) v(f);                           -- 2202E empty array
SELECT calo_recon.scaler_fit(f) FROM (VALUES (ARRAY[1]::float8[])) v(f) WHERE false;           -- 22000 empty training set
SELECT calo_recon.scaler_transform('{"n_features": 2, "n_samples": 1, "mean": [0, 0], "var": [1, 1]}', ARRAY[1, 2, 3]); -- 2202E
SELECT 'not json'::calo_recon.scaler;                                                          -- 22P02
SELECT '{"n_features": 2, "n_samples": 1, "mean": [0], "var": [1, 1]}'::calo_recon.scaler;     -- 22P02 short array
SELECT '{"n_features": 1, "n_samples": 1, "mean": [0], "var": [-1]}'::calo_recon.scaler;       -- 22P02 negative variance
SELECT '{"n_features": 1, "n_samples": 0, "mean": [0], "var": [1]}'::calo_recon.scaler;        -- 22P02 no samples
SELECT calo_recon.scaler_from_json('[1, 2]');                                                  -- 22P02 not an object
SELECT calo_recon.scaler_fit(f) FROM (VALUES ((ARRAY[1, NULL, 3]::float8[])[1:2])) v(f);       -- 22004 NULL inside a slice
SELECT '{"n_features": 1, "n_samples": 1, "mean": [1e400], "var": [1]}'::calo_recon.scaler;    -- 22P02 mean 1e400
SELECT '{"n_features": 1, "n_samples": 1, "mean": [0], "var": [1e-400]}'::calo_recon.scaler;   -- 22P02 var 1e-400
SELECT '{"n_features": 1, "n_samples": 1e400, "mean": [0], "var": [1]}'::calo_recon.scaler;    -- 22P02 n_samples 1e400
SELECT calo_recon.scaler_from_json('{"n_features": 1, "n_samples": 1, "mean": [0], "var": [1], "scale": [-1e400]}'); -- 22P02 scale -1e400
SELECT calo_recon.scaler_from_json('{"n_features": 1, "n_samples": 1, "mean": [0], "var": [1], "scale": [1e-310]}'); -- 22P02 subnormal scale
\set VERBOSITY default
-- the message names the problem
SELECT calo_recon.scaler_fit(f) FROM (VALUES (ARRAY[1, 2]::float8[]), (ARRAY[1, 2, 3])) v(f);
SELECT '{"n_features": 1, "n_samples": 1, "mean": [0], "var": [-1]}'::calo_recon.scaler;
SELECT '{"n_features": 1, "n_samples": 1, "mean": [1e400], "var": [1]}'::calo_recon.scaler;
SELECT calo_recon.scaler_from_json('{"n_features": 1, "n_samples": 1, "mean": [0], "var": [1], "scale": [1e-310]}');
