-- Properties of the anomaly models: parallel fitting (Partial Aggregate,
-- valid model), determinism of the serial fit, and rejection of truncated,
-- bit-flipped or forged model values with their SQLSTATEs.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(17);

CREATE TABLE tap_rows AS
SELECT i, ARRAY[sin(i * 0.37) * 5, cos(i * 0.71), (i % 17)::float8, sqrt(i)]::float8[] AS f
FROM generate_series(1, 30000) AS i;
ANALYZE tap_rows;

CREATE FUNCTION tap_plan(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END;
$$;

-- parallel plans
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL force_parallel_mode = on;

SELECT matches(tap_plan('SELECT calo_recon.iforest_fit(f) FROM tap_rows'), 'Partial Aggregate',
               'iforest_fit runs as a partial (parallel) aggregate');
SELECT matches(tap_plan('SELECT calo_recon.iforest_fit(f, 50, 128, 3, 2) FROM tap_rows'), 'Partial Aggregate',
               'the extended iforest_fit runs as a partial aggregate');
SELECT matches(tap_plan('SELECT calo_recon.scaler_fit(f) FROM tap_rows'), 'Partial Aggregate',
               'scaler_fit runs as a partial aggregate');

CREATE TABLE tap_parallel AS
SELECT calo_recon.iforest_fit(f) AS m, calo_recon.iforest_fit(f, 50, 128, 3, 2) AS e,
       calo_recon.scaler_fit(f) AS s
FROM tap_rows;
SELECT is((SELECT (trees, sample_size, features, extension_level)::text
           FROM tap_parallel, calo_recon.iforest_info(m)), '(100,256,4,0)',
          'the parallel fit gives a valid model of the requested shape');
SELECT is((SELECT (trees, sample_size, features, extension_level)::text
           FROM tap_parallel, calo_recon.iforest_info(e)), '(50,128,4,2)',
          'the parallel extended fit gives a valid model');
SELECT lives_ok($$SELECT calo_recon.iforest_from_bytea(calo_recon.iforest_to_bytea(m)) FROM tap_parallel$$,
                'the parallel model passes the full validator');
SELECT cmp_ok((SELECT avg(calo_recon.iforest_score(m, f)) FROM tap_rows, tap_parallel), '<',
              (SELECT calo_recon.iforest_score(m, ARRAY[100, 100, 100, 1000]) FROM tap_parallel),
              'a far point scores above the mean training row');

-- the parallel scaler equals the serial one to 1e-12
CREATE TABLE tap_parallel_scaler AS
SELECT k, (calo_recon.scaler_to_json(s) -> 'mean' ->> k)::float8 AS mean,
          (calo_recon.scaler_to_json(s) -> 'var' ->> k)::float8 AS var
FROM tap_parallel, generate_series(0, 3) k;
SET LOCAL max_parallel_workers_per_gather = 0;
SET LOCAL force_parallel_mode = off;
SELECT ok((SELECT bool_and(abs(p.mean - (calo_recon.scaler_to_json(s) -> 'mean' ->> p.k)::float8)
                           <= 1e-12 * greatest(1, abs(p.mean))
                       AND abs(p.var - (calo_recon.scaler_to_json(s) -> 'var' ->> p.k)::float8) <= 1e-12 * p.var)
           FROM tap_parallel_scaler p, (SELECT calo_recon.scaler_fit(f) AS s FROM tap_rows) q),
          'the parallel scaler fit equals the serial one to 1e-12');

-- serial determinism
SELECT unalike(tap_plan('SELECT calo_recon.iforest_fit(f) FROM tap_rows'), '%Partial Aggregate%',
               'with parallelism off the fit is serial');
SELECT is((SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 30, 64, 99 ORDER BY i)) FROM tap_rows),
          (SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 30, 64, 99 ORDER BY i)) FROM tap_rows),
          'same seed, same rows, same order: byte-identical models');
SELECT isnt((SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 30, 64, 99 ORDER BY i)) FROM tap_rows),
            (SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 30, 64, 100 ORDER BY i)) FROM tap_rows),
            'another seed gives another model');
SELECT is((SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f ORDER BY i)) FROM tap_rows),
          (SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 100, 256, 42 ORDER BY i)) FROM tap_rows),
          'iforest_fit(features) is iforest_fit(features, 100, 256, 42)');

-- tampered values are rejected with the SQLSTATE of their way in
CREATE TABLE tap_model AS
SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 10, 32, 5)) AS b FROM tap_rows;
SELECT throws_ok($$SELECT calo_recon.iforest_from_bytea(substr(b, 1, length(b) - 8)) FROM tap_model$$,
                 '22P03', NULL, 'a truncated binary model is rejected (22P03)');
SELECT throws_ok($$SELECT calo_recon.iforest_from_bytea(set_bit(b, 8 * 200 + 3, 1 - get_bit(b, 8 * 200 + 3))) FROM tap_model$$,
                 '22P03', NULL, 'a bit-flipped binary model is rejected (22P03)');
SELECT throws_ok($$SELECT calo_recon.iforest_from_bytea(set_byte(b, 12, 0)) FROM tap_model$$,
                 '22P03', NULL, 'a model whose header claims zero trees is rejected (22P03)');
SELECT throws_ok($$SELECT encode(substr(b, 1, 100), 'base64')::calo_recon.iforest FROM tap_model$$,
                 '22P02', NULL, 'a truncated text model is rejected (22P02)');
SELECT throws_ok($$SELECT calo_recon.iforest_from_json(jsonb_set(calo_recon.iforest_to_json(calo_recon.iforest_from_bytea(b)),
                                                               '{trees,0,children_left,0}', '0'))
                   FROM tap_model$$,
                 '22P02', NULL, 'a forged JSON model with a cycle is rejected (22P02)');

SELECT * FROM finish();
ROLLBACK;
