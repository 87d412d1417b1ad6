-- Isolation Forest: iforest_fit (classic and extended), iforest_score,
-- iforest_explain, iforest_info, the JSON form, and every bad input with
-- its SQLSTATE.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS calo_recon CASCADE;
CREATE EXTENSION calo_recon;
RESET client_min_messages;

-- 2000 deterministic rows in 3 features, plus one row far out in feature 2
CREATE TABLE forest_rows AS
SELECT i, ARRAY[sin(i * 0.7) * 3, cos(i * 1.3) * 3, sin(i * 0.11) * 3]::float8[] AS f
FROM generate_series(1, 2000) AS i;
INSERT INTO forest_rows VALUES (0, ARRAY[0, 40, 0]);

CREATE TABLE models AS
SELECT calo_recon.iforest_fit(f ORDER BY i) AS classic,
       calo_recon.iforest_fit(f, 50, 128, 7 ORDER BY i) AS small,
       calo_recon.iforest_fit(f, 50, 128, 7, 2 ORDER BY i) AS extended
FROM forest_rows;

SELECT 'classic' AS model, i.* FROM models, calo_recon.iforest_info(classic) i
UNION ALL
SELECT 'extended', i.* FROM models, calo_recon.iforest_info(extended) i
ORDER BY 1;
SELECT i.trees, i.sample_size, i.features, i.extension_level FROM models, calo_recon.iforest_info(small) i;

-- scores, stable to 6 places
SELECT r.i, round(calo_recon.iforest_score(m.classic, r.f)::numeric, 6) AS classic,
       round(calo_recon.iforest_score(m.small, r.f)::numeric, 6) AS small,
       round(calo_recon.iforest_score(m.extended, r.f)::numeric, 6) AS extended
FROM forest_rows r, models m WHERE r.i IN (0, 1, 2, 500, 1000) ORDER BY r.i;

-- a point beyond the data in every feature scores above the training rows' mean
-- (it lands in the corner leaf: Isolation Forest scores out-of-range points like the boundary)
SELECT round(calo_recon.iforest_score(classic, ARRAY[40, 40, 40])::numeric, 6) AS far_point,
       calo_recon.iforest_score(classic, ARRAY[40, 40, 40])
         > (SELECT avg(calo_recon.iforest_score(classic, f)) FROM forest_rows) AS above_mean,
       (SELECT round(avg(calo_recon.iforest_score(classic, f))::numeric, 6) FROM forest_rows) AS mean_training
FROM models;

-- a row extreme in one feature only is explained by that feature (the row
-- (0, 40, 0) is a training row; (-50, 0, 0) lies beyond every split on feature 1)
SELECT calo_recon.iforest_explain(classic, ARRAY[0, 40, 0]) AS classic,
       calo_recon.iforest_explain(classic, ARRAY[-50, 0, 0]) AS first_feature,
       calo_recon.iforest_explain(classic, ARRAY[0, 0, 99]) AS third_feature
FROM models;
-- extended forests explain by the vote of the split above the leaf (a feature index in range)
SELECT calo_recon.iforest_explain(extended, ARRAY[0, 40, 0]) BETWEEN 1 AND 3 AS extended_in_range FROM models;

-- same seed and same rows in the same order: the same bytes; another seed differs
SELECT (SELECT calo_recon.iforest_fit(f, 50, 128, 7 ORDER BY i) FROM forest_rows)::text = small::text AS same_seed_same_model,
       (SELECT calo_recon.iforest_fit(f, 50, 128, 8 ORDER BY i) FROM forest_rows)::text = small::text AS other_seed_same_model
FROM models;

-- JSON, text and bytea round trips are exact
SELECT calo_recon.iforest_from_json(calo_recon.iforest_to_json(classic))::text = classic::text AS json_classic,
       calo_recon.iforest_from_json(calo_recon.iforest_to_json(extended))::text = extended::text AS json_extended,
       classic::text::calo_recon.iforest::text = classic::text AS text_form,
       calo_recon.iforest_from_bytea(calo_recon.iforest_to_bytea(classic))::text = classic::text AS binary_form
FROM models;
SELECT j->'n_trees' AS n_trees, j->'sample_size' AS sample_size, j->'input_dtype' AS input_dtype,
       jsonb_array_length(j->'trees') AS trees, (j->'trees'->0->'children_left'->>0)::int AS root_left
FROM (SELECT calo_recon.iforest_to_json(classic) AS j FROM models) q;

-- a hand-written forest: root x1 <= 0.5 ? leaf(1) : (x2 <= 2 ? leaf(2) : leaf(1))
CREATE TABLE tiny AS SELECT calo_recon.iforest_from_json('{
  "n_features": 2, "sample_size": 4, "trees": [{
    "children_left": [1, -1, 3, -1, -1], "children_right": [2, -1, 4, -1, -1],
    "feature": [0, -2, 1, -2, -2], "threshold": [0.5, -2, 2.0, -2, -2],
    "n_node_samples": [4, 1, 3, 2, 1]}]}') AS m;
-- path lengths 1, 2 and 2 + c(2) = 3 over c(4) = 1.8516559...
SELECT x, round(calo_recon.iforest_score(m, x)::numeric, 12) AS score,
       round(power(2, -p / 1.8516559071392846)::numeric, 12) AS expected
FROM tiny, (VALUES (ARRAY[0, 0]::float8[], 1), (ARRAY[1, 3], 2), (ARRAY[1, 1], 3)) v(x, p) ORDER BY p;
SELECT * FROM calo_recon.iforest_info((SELECT m FROM tiny));

-- labels: anomalous when the score is above the threshold
SELECT calo_recon.iforest_label(0.7, 0.6) AS above, calo_recon.iforest_label(0.6, 0.6) AS equal,
       calo_recon.iforest_label(NULL, 0.6) AS unknown;

-- scoring NULL features gives NULL (the function is strict)
SELECT calo_recon.iforest_score(classic, NULL) IS NULL AS null_score FROM models;

-- bad inputs: the SQLSTATE of each
\set VERBOSITY sqlstate
SELECT calo_recon.iforest_fit(f) FROM (VALUES (ARRAY[1, 2]::float8[]), (NULL)) v(f);            -- 22004 NULL array
SELECT calo_recon.iforest_fit(f) FROM (VALUES (ARRAY[1, NULL]::float8[])) v(f);                 -- 22004 NULL element
SELECT calo_recon.iforest_fit(f) FROM (VALUES (ARRAY[1, 'NaN']::float8[])) v(f);                -- 22P01 NaN
SELECT calo_recon.iforest_fit(f) FROM (VALUES (ARRAY[1, 'Infinity']::float8[])) v(f);           -- 22P01 Infinity
SELECT calo_recon.iforest_fit(f) FROM (VALUES (ARRAY[1, 2]::float8[]), (ARRAY[1, 2, 3])) v(f);  -- 2202E wrong length
SELECT calo_recon.iforest_fit(f) FROM (VALUES ('{{1,2},{3,4}}'::float8[])) v(f);                -- 2202E two dimensions
SELECT calo_recon.iforest_fit(f) FROM (VALUES ('{}'::float8[])) v(f);                           -- 2202E empty array
SELECT calo_recon.iforest_fit(f) FROM forest_rows WHERE false;                                  -- 22000 empty training set
SELECT calo_recon.iforest_fit(f, 0, 256, 1) FROM forest_rows;                                   -- 22023 n_trees 0
SELECT calo_recon.iforest_fit(f, 20000, 256, 1) FROM forest_rows;                               -- 22023 n_trees absurd
SELECT calo_recon.iforest_fit(f, 100, 1, 1) FROM forest_rows;                                   -- 22023 sample_size 1
SELECT calo_recon.iforest_fit(f, 100, 1000000, 1) FROM forest_rows;                             -- 22023 sample_size absurd
SELECT calo_recon.iforest_fit(f, 10000, 100000, 1) FROM forest_rows;                            -- 54000 over 1 GB
SELECT calo_recon.iforest_fit(f, 100, 256, 1, 3) FROM forest_rows;                              -- 22023 extension_level = n_features
SELECT calo_recon.iforest_fit(f, 100, 256, 1, -1) FROM forest_rows;                             -- 22023 extension_level < 0
SELECT calo_recon.iforest_score(classic, ARRAY[1, 2]) FROM models;                              -- 2202E wrong length
SELECT calo_recon.iforest_score(classic, ARRAY[1, 'NaN'::float8, 2]) FROM models;                      -- 22P01 NaN
SELECT calo_recon.iforest_score(classic, ARRAY[1, NULL, 2]) FROM models;                        -- 22004 NULL element
SELECT 'bm90IGEgbW9kZWw='::calo_recon.iforest;                                                  -- 22P02 not a model
SELECT '!!!'::calo_recon.iforest;                                                               -- 22P02 not base64
SELECT calo_recon.iforest_from_bytea(substr(calo_recon.iforest_to_bytea(m), 1, 100)) FROM tiny; -- 22P03 truncated
SELECT calo_recon.iforest_from_bytea(set_byte(calo_recon.iforest_to_bytea(m), 60, 255)) FROM tiny; -- 22P03 bit flip
SELECT calo_recon.iforest_from_json('[]');                                                      -- 22P02 not an object
SELECT calo_recon.iforest_from_json('{"n_features": 2, "sample_size": 4, "trees": []}');         -- 22P02 no trees
SELECT calo_recon.iforest_from_json(calo_recon.iforest_to_json(m) || '{"format": "other"}') FROM tiny;  -- 22P02 another format
SELECT calo_recon.iforest_from_json(calo_recon.iforest_to_json(m) || '{"version": 2}') FROM tiny;        -- 22P02 another version
SELECT calo_recon.iforest_from_json(calo_recon.iforest_to_json(m) || '{"n_trees": 7}') FROM tiny;        -- 22P02 n_trees is not the trees'
SELECT calo_recon.iforest_from_json('{"n_features": 2, "sample_size": 4, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [5, -2, -2], "threshold": [0, -2, -2], "n_node_samples": [4, 2, 2]}]}'); -- 22P02 feature 5 of 2
SELECT calo_recon.iforest_from_json('{"n_features": 2, "sample_size": 4, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [0, -2, -2], "n_node_samples": [4, 1, 2]}]}'); -- 22P02 sizes do not add up
SELECT calo_recon.iforest_from_json('{"n_features": 2, "sample_size": 4, "trees": [{"children_left": [2, -1, -1], "children_right": [1, -1, -1], "feature": [0, -2, -2], "threshold": [0, -2, -2], "n_node_samples": [4, 2, 2]}, {"children_left": [0], "children_right": [0], "feature": [0], "threshold": [0], "n_node_samples": [4]}]}'); -- 22P02 cycle
\set VERBOSITY default
-- the messages name the problem
SELECT calo_recon.iforest_fit(f, 0, 256, 1) FROM forest_rows;
SELECT calo_recon.iforest_from_bytea(substr(calo_recon.iforest_to_bytea(m), 1, 100)) FROM tiny;
SELECT calo_recon.iforest_from_bytea(set_byte(calo_recon.iforest_to_bytea(m), 60, 255)) FROM tiny;
SELECT calo_recon.iforest_from_json('{"n_features": 2, "sample_size": 4, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [5, -2, -2], "threshold": [0, -2, -2], "n_node_samples": [4, 2, 2]}]}');

-- S1: a float8[] may carry a null bitmap without holding a NULL (a slice of an
-- array with a NULL, an element assigned over a NULL, PL/pgSQL element
-- assignment): 8 bytes larger, its data further on.  It reads like any other.
-- Expected from the tiny forest by hand: (1, 3) has path 2; (3, 2) lies 2.5
-- widths beyond feature 1's only split and is explained by feature 1.
CREATE TABLE bitmap_rows (k int, f float8[]);
INSERT INTO bitmap_rows VALUES (1, (ARRAY[1, 3, NULL]::float8[])[1:2]), (2, ARRAY[1, NULL]), (4, ARRAY[1, 3]);
UPDATE bitmap_rows SET f[2] = 3 WHERE k = 2;
CREATE FUNCTION assigned_features() RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE a float8[] := ARRAY[NULL, 3];
BEGIN
    a[1] := 1;
    RETURN a;
END $$;
INSERT INTO bitmap_rows VALUES (3, assigned_features());
SELECT k, pg_column_size(f) AS bytes, round(calo_recon.iforest_score(m, f)::numeric, 12) AS score,
       round(power(2, -2 / 1.8516559071392846)::numeric, 12) AS expected
FROM bitmap_rows, tiny ORDER BY k;
SELECT calo_recon.iforest_explain(m, (ARRAY[3, 2, NULL]::float8[])[1:2]) AS slice_explained,
       calo_recon.iforest_explain(m, ARRAY[3, 2]) AS plain_explained
FROM tiny;
-- fitting reads them alike: the same rows with a null bitmap give the same bytes
SELECT (SELECT calo_recon.iforest_fit((f || NULL::float8)[1:3], 50, 128, 7 ORDER BY i) FROM forest_rows)::text
         = small::text AS bitmap_rows_same_model
FROM models;
\set VERBOSITY sqlstate
SELECT calo_recon.iforest_score(classic, (ARRAY[1, NULL, 3, 4]::float8[])[1:3]) FROM models;  -- 22004 NULL inside a slice
\set VERBOSITY default

-- S2 / H2: every tree is at most ceil(log2(sample_size)) deep, the depth
-- limit of iforest_fit and of scikit-learn's IsolationForest
-- (max_depth = ceil(log2(max(max_samples, 2)))).  chain_model(ss, d) is one
-- tree: a chain of d splits on feature 1 (x <= 0 goes deeper), each peeling
-- off a one-row leaf, ending in a leaf of ss - d rows.
CREATE FUNCTION chain_model(ss int, depth int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('n_features', 1, 'sample_size', ss, 'trees', jsonb_build_array(jsonb_build_object(
    'children_left', jsonb_agg(CASE WHEN i % 2 = 0 AND i < 2 * depth THEN i + 2 ELSE -1 END ORDER BY i),
    'children_right', jsonb_agg(CASE WHEN i % 2 = 0 AND i < 2 * depth THEN i + 1 ELSE -1 END ORDER BY i),
    'feature', jsonb_agg(CASE WHEN i % 2 = 0 AND i < 2 * depth THEN 0 ELSE -2 END ORDER BY i),
    'threshold', jsonb_agg(CASE WHEN i % 2 = 0 AND i < 2 * depth THEN 0 ELSE -2 END ORDER BY i),
    'n_node_samples', jsonb_agg(CASE WHEN i % 2 = 1 THEN 1 WHEN i = 2 * depth THEN ss - depth
                                     ELSE ss - i / 2 END ORDER BY i))))
  FROM generate_series(0, 2 * depth) AS i
$$;
-- at the bound (16 rows: depth 4) the chain is a model: path 4 + c(12) over c(16)
SELECT round(calo_recon.iforest_score(calo_recon.iforest_from_json(chain_model(16, 4)), ARRAY[0])::numeric, 12) AS at_bound,
       round(power(2, -(4 + (2 * (ln(11) + 0.5772156649015329) - 2 * 11 / 12.0))
                       / (2 * (ln(15) + 0.5772156649015329) - 2 * 15 / 16.0))::numeric, 12) AS expected;
\set VERBOSITY sqlstate
SELECT calo_recon.iforest_from_json(chain_model(16, 5));                                        -- 22P02 one level too deep
SELECT calo_recon.iforest_score(calo_recon.iforest_from_json(chain_model(65536, 65535)), ARRAY[0]); -- 22P02 (scored 0 before)
SELECT calo_recon.iforest_from_bytea(decode(  -- 22P03 the same as bytes: 4 rows, depth 3 > 2
  'Q0lGUgEAAAABAAAAAQAAAAQAAAAAAAAABwAAAAAAAACSUva62rLSjwcAAAACAAAAAAAAAAQAAAAAAAAABgAAAAAAAAAAAAAAAQAAAAAAAAADAAAAAAAAAAUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAQAAAAMAAAABAAAAAgAAAAEAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
  'base64'));
\set VERBOSITY default
-- the same chain at depth 2 is a model
SELECT (calo_recon.iforest_info(calo_recon.iforest_from_bytea(decode(
  'Q0lGUgEAAAABAAAAAQAAAAQAAAAAAAAABQAAAAAAAABR9oR+51lCdAUAAAACAAAAAAAAAAQAAAAAAAAAAAAAAAEAAAAAAAAAAwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAQAAAAMAAAABAAAAAgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
  'base64')))).nodes AS depth_two_nodes;
SELECT calo_recon.iforest_from_json(chain_model(16, 5));

-- a fit over features near +-1e308 (a node's range wider than the largest
-- double) stores only thresholds its own validator accepts
SELECT (calo_recon.iforest_info(calo_recon.iforest_fit(ARRAY[x, x], 10, 16, 1, 1))).trees AS extended_trees,
       (calo_recon.iforest_info(calo_recon.iforest_fit(ARRAY[x, x], 10, 16, 1))).trees AS classic_trees
FROM (VALUES (1e308::float8), (-1e308), (0), (1.7e308), (-1.7e308)) v(x);

-- B3: a number a float8 cannot hold is bad model text, in any field
\set VERBOSITY sqlstate
SELECT calo_recon.iforest_from_json('{"n_features": 1, "sample_size": 4, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [1e400, -2, -2], "n_node_samples": [4, 2, 2]}]}');  -- 22P02 threshold 1e400
SELECT calo_recon.iforest_from_json('{"n_features": 1, "sample_size": 4, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [-1e400, -2, -2], "n_node_samples": [4, 2, 2]}]}'); -- 22P02 threshold -1e400
SELECT calo_recon.iforest_from_json('{"n_features": 1, "sample_size": 4, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [1e-400, -2, -2], "n_node_samples": [4, 2, 2]}]}'); -- 22P02 threshold 1e-400
SELECT calo_recon.iforest_from_json('{"n_features": 1e400, "sample_size": 4, "trees": []}');     -- 22P02 n_features 1e400
SELECT calo_recon.iforest_from_json('{"n_features": 1, "sample_size": 1e400, "trees": []}');     -- 22P02 sample_size 1e400
SELECT calo_recon.iforest_from_json('{"n_features": 1, "sample_size": 4, "trees": [{"children_left": [1e400, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [0, -2, -2], "n_node_samples": [4, 2, 2]}]}'); -- 22P02 child 1e400
SELECT calo_recon.iforest_from_json('{"n_features": 1, "sample_size": 4, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [0, -2, -2], "n_node_samples": [-1e400, 2, 2]}]}'); -- 22P02 size -1e400
SELECT calo_recon.iforest_from_json('{"n_features": 2, "sample_size": 4, "extension_level": 1, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [0, -2, -2], "n_node_samples": [4, 2, 2], "normal": [[1e400, 1], [0, 0], [0, 0]]}]}'); -- 22P02 normal 1e400
\set VERBOSITY default
SELECT calo_recon.iforest_from_json('{"n_features": 1, "sample_size": 4, "trees": [{"children_left": [1, -1, -1], "children_right": [2, -1, -1], "feature": [0, -2, -2], "threshold": [1e400, -2, -2], "n_node_samples": [4, 2, 2]}]}');

DROP TABLE bitmap_rows;
DROP FUNCTION assigned_features(), chain_model(int, int);

DROP TABLE forest_rows, models, tiny;
