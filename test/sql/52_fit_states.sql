-- The partial states of scaler_fit and iforest_fit as types of their own
-- (calo_recon.scaler_state, calo_recon.iforest_sample): the same forest
-- through parallel aggregation, serially, and from samples taken apart and
-- combined in any order; text and binary round trips; every bad input with
-- its SQLSTATE; the 1.1 entry points.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- 30000 rows in 3 features, one in ten a copy of another row (counts matter)
CREATE TABLE fit_rows AS
SELECT i, ARRAY[sin(i * 0.7) * 3, cos(i * 1.3) * 3, (i % 97) * 0.25]::float8[] AS f
FROM generate_series(1, 27000) AS i;
INSERT INTO fit_rows SELECT 27000 + i, f FROM fit_rows WHERE i % 9 = 0;
ANALYZE fit_rows;

-- the aggregates' states are the new types, with combine functions
SELECT a.aggfnoid::regprocedure AS aggregate, a.aggtranstype::regtype AS state,
       a.aggcombinefn AS combine, a.aggserialfn AS serial
FROM pg_aggregate a
WHERE a.aggfnoid::regproc::text IN ('calo_recon.iforest_fit', 'calo_recon.scaler_fit')
ORDER BY 1::text;

-- serially
SET max_parallel_workers_per_gather = 0;
CREATE TABLE fits AS
SELECT 'serial'::text AS plan,
       md5(calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 20, 64, 11))) AS forest,
       md5(calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 20, 64, 11, 1))) AS extended,
       calo_recon.scaler_fit(f) AS scaler
FROM fit_rows;

-- through parallel aggregation: partial aggregates in the workers, combined in the leader
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT calo_recon.iforest_fit(f, 20, 64, 11), calo_recon.scaler_fit(f) FROM fit_rows;
INSERT INTO fits
SELECT 'parallel',
       md5(calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 20, 64, 11))),
       md5(calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 20, 64, 11, 1))),
       calo_recon.scaler_fit(f)
FROM fit_rows;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;

-- as Citus runs it: a sample per part of the rows (here 7 parts, each in
-- another order), sent as text, combined in two orders
CREATE AGGREGATE pg_temp.sample_of(float8[], int, int, bigint) (
    SFUNC = calo_recon.iforest_sample_add, STYPE = calo_recon.iforest_sample);
CREATE AGGREGATE pg_temp.state_of(float8[]) (
    SFUNC = calo_recon.scaler_state_add, STYPE = calo_recon.scaler_state);
CREATE AGGREGATE pg_temp.sample_union(calo_recon.iforest_sample) (
    SFUNC = calo_recon.iforest_sample_combine, STYPE = calo_recon.iforest_sample);
CREATE AGGREGATE pg_temp.state_union(calo_recon.scaler_state) (
    SFUNC = calo_recon.scaler_state_combine, STYPE = calo_recon.scaler_state);
CREATE TABLE parts AS
SELECT i % 7 AS part,
       pg_temp.sample_of(f, 20, 64, 11 ORDER BY md5(i::text))::text AS sample,
       pg_temp.state_of(f ORDER BY md5(i::text))::text AS state
FROM fit_rows GROUP BY i % 7;
INSERT INTO fits
SELECT 'parts, ' || o.name,
       md5(calo_recon.iforest_to_bytea(calo_recon.iforest_sample_fit(
           pg_temp.sample_union(p.sample::calo_recon.iforest_sample ORDER BY o.key)))),
       NULL,
       calo_recon.scaler_state_fit(pg_temp.state_union(p.state::calo_recon.scaler_state ORDER BY o.key))
FROM parts p,
     LATERAL (VALUES ('ascending', p.part), ('descending', -p.part)) AS o(name, key)
GROUP BY o.name;

-- the forests and the scalers are the same bytes whatever the plan (the
-- scaler's state holds exact sums, so its merge does not round)
SELECT f.plan, f.forest = s.forest AS same_forest,
       CASE WHEN f.extended IS NULL THEN NULL ELSE f.extended = s.extended END AS same_extended,
       f.scaler::text = s.scaler::text AS same_scaler,
       (calo_recon.scaler_info(f.scaler)).samples
FROM fits f, fits s WHERE s.plan = 'serial'
ORDER BY f.plan;

-- what a sample holds
SELECT s.* FROM parts p, calo_recon.iforest_sample_info(p.sample::calo_recon.iforest_sample) s WHERE p.part = 3;
SELECT s.* FROM calo_recon.iforest_sample_info(
    (SELECT pg_temp.sample_union(sample::calo_recon.iforest_sample) FROM parts)) s;
SELECT s.* FROM parts p, calo_recon.scaler_state_info(p.state::calo_recon.scaler_state) s WHERE p.part = 3;

-- text and binary round trips are exact
SELECT sample::calo_recon.iforest_sample::text = sample AS sample_text,
       state::calo_recon.scaler_state::text = state AS state_text
FROM parts WHERE part = 3;
CREATE TABLE typed (sample calo_recon.iforest_sample, state calo_recon.scaler_state);
INSERT INTO typed SELECT sample::calo_recon.iforest_sample, state::calo_recon.scaler_state FROM parts WHERE part = 3;
DO $$
BEGIN
    EXECUTE format('COPY typed TO %L (FORMAT binary)',
                   current_setting('calo_recon.export_directory') || '/fit_states.bin');
    EXECUTE format('COPY typed FROM %L (FORMAT binary)',
                   current_setting('calo_recon.export_directory') || '/fit_states.bin');
END $$;
SELECT count(*) AS copies, count(DISTINCT sample::text) AS samples, count(DISTINCT state::text) AS states FROM typed;

-- bad text: 22P02 with what is wrong (encode() breaks base64 lines: joined here)
SELECT 'not base64!'::calo_recon.iforest_sample;
SELECT 'AAAA'::calo_recon.iforest_sample;
SELECT 'AAAA'::calo_recon.scaler_state;
SELECT 'not base64!'::calo_recon.scaler_state;
-- a sample whose count was changed, and one whose entries were swapped
SELECT replace(encode(overlay(decode(sample, 'base64') PLACING '\x0000000000000000'::bytea FROM 49), 'base64'), E'\n', '')::calo_recon.iforest_sample
FROM parts WHERE part = 3;
SELECT replace(encode(overlay(decode(sample, 'base64') PLACING substr(decode(sample, 'base64'), 49, 32) FROM 81), 'base64'), E'\n', '')::calo_recon.iforest_sample
FROM parts WHERE part = 3;
-- a state with a negative sum of squares (the last digit of feature 1's), and
-- one whose sum no rows could have with its sum of squares
SELECT replace(encode(overlay(decode(state, 'base64') PLACING '\xffffffff'::bytea FROM 829), 'base64'), E'\n', '')::calo_recon.scaler_state
FROM parts WHERE part = 3;
SELECT replace(encode(overlay(decode(state, 'base64') PLACING '\x01'::bytea FROM 289), 'base64'), E'\n', '')::calo_recon.scaler_state
FROM parts WHERE part = 3;

-- bad binary: 22P03 (bytea's binary form is its bytes)
CREATE TABLE raw_bytes (b bytea);
INSERT INTO raw_bytes VALUES ('\x43494653'::bytea);
CREATE TABLE typed_sample (sample calo_recon.iforest_sample);
CREATE TABLE typed_state (state calo_recon.scaler_state);
DO $$
BEGIN
    EXECUTE format('COPY raw_bytes TO %L (FORMAT binary)',
                   current_setting('calo_recon.export_directory') || '/raw.bin');
END $$;
-- (the errors are shown without the COPY's context, which names a private folder)
DO $$
DECLARE
    state text;
    detail text;
BEGIN
    FOREACH state IN ARRAY ARRAY['typed_sample', 'typed_state'] LOOP
        BEGIN
            EXECUTE format('COPY %I FROM %L (FORMAT binary)', state,
                           current_setting('calo_recon.export_directory') || '/raw.bin');
        EXCEPTION WHEN others THEN
            GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
            RAISE NOTICE '%: % % (%)', state, SQLSTATE, SQLERRM, detail;
        END;
    END LOOP;
END $$;

-- samples of other parameters do not combine: 22023
SELECT calo_recon.iforest_sample_combine(a.s, b.s)
FROM (SELECT pg_temp.sample_of(f, 20, 64, 11) AS s FROM fit_rows WHERE i < 100) a,
     (SELECT pg_temp.sample_of(f, 20, 64, 12) AS s FROM fit_rows WHERE i < 100) b;
-- nor scaler states of other widths: 2202E
SELECT calo_recon.scaler_state_combine(a.s, b.s)
FROM (SELECT pg_temp.state_of(f) AS s FROM fit_rows WHERE i < 100) a,
     (SELECT pg_temp.state_of(f[1:2]) AS s FROM fit_rows WHERE i < 100) b;
-- combining with NULL keeps the other; the fit of nothing is 22000
SELECT calo_recon.iforest_sample_combine(NULL, NULL) IS NULL AS both_null,
       calo_recon.scaler_state_combine(NULL, s)::text = s::text AS null_and_state
FROM (SELECT pg_temp.state_of(f) AS s FROM fit_rows WHERE i < 100) a;
SELECT calo_recon.iforest_sample_fit(NULL);
SELECT calo_recon.scaler_state_fit(NULL);
-- the transitions are for aggregates only: 0A000
SELECT calo_recon.iforest_sample_add(NULL, ARRAY[1.0]);
SELECT calo_recon.scaler_state_add(NULL, ARRAY[1.0]);

-- the C entry points of the 1.1 aggregates (frozen scripts create functions
-- on them) tell a database not updated yet what to do: 0A000
CREATE FUNCTION pg_temp.v11_transfn(internal, float8[]) RETURNS internal
    AS '$libdir/calo_recon', 'iforest_fit_transfn' LANGUAGE C;
CREATE FUNCTION pg_temp.v11_finalfn(internal) RETURNS calo_recon.iforest
    AS '$libdir/calo_recon', 'iforest_fit_finalfn' LANGUAGE C;
CREATE AGGREGATE pg_temp.v11_iforest_fit(float8[]) (
    SFUNC = pg_temp.v11_transfn, STYPE = internal, FINALFUNC = pg_temp.v11_finalfn);
SELECT pg_temp.v11_iforest_fit(f) FROM fit_rows;
CREATE FUNCTION pg_temp.v11_scaler_transfn(internal, float8[]) RETURNS internal
    AS '$libdir/calo_recon', 'scaler_fit_transfn' LANGUAGE C;
CREATE FUNCTION pg_temp.v11_scaler_finalfn(internal) RETURNS calo_recon.scaler
    AS '$libdir/calo_recon', 'scaler_fit_finalfn' LANGUAGE C;
CREATE AGGREGATE pg_temp.v11_scaler_fit(float8[]) (
    SFUNC = pg_temp.v11_scaler_transfn, STYPE = internal, FINALFUNC = pg_temp.v11_scaler_finalfn);
SELECT pg_temp.v11_scaler_fit(f) FROM fit_rows;

DROP TABLE fit_rows, fits, parts, typed, raw_bytes, typed_sample, typed_state;
