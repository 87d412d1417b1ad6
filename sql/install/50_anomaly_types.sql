-- Anomaly detection types: calo_recon.scaler (StandardScaler)
-- and calo_recon.iforest (Isolation Forest), their fitting aggregates and
-- scoring functions, all in C (src/scaler*.c, src/iforest*.c).

-------------------------------------------------------------------- scaler

CREATE TYPE calo_recon.scaler;

CREATE FUNCTION calo_recon.scaler_in(cstring) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_in(cstring) IS
  'Input of calo_recon.scaler: its JSON form {"n_features", "n_samples", "mean", "var", "scale"}';
CREATE FUNCTION calo_recon.scaler_out(calo_recon.scaler) RETURNS cstring
    AS 'MODULE_PATHNAME', 'scaler_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_out(calo_recon.scaler) IS
  'Output of calo_recon.scaler as JSON (numbers in shortest exact form)';
CREATE FUNCTION calo_recon.scaler_recv(internal) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_recv(internal) IS
  'Binary input of calo_recon.scaler: the versioned binary form, fully validated';
CREATE FUNCTION calo_recon.scaler_send(calo_recon.scaler) RETURNS bytea
    AS 'MODULE_PATHNAME', 'scaler_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_send(calo_recon.scaler) IS
  'Binary output of calo_recon.scaler: the versioned binary form';

CREATE TYPE calo_recon.scaler (
    INPUT = calo_recon.scaler_in,
    OUTPUT = calo_recon.scaler_out,
    RECEIVE = calo_recon.scaler_recv,
    SEND = calo_recon.scaler_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);
COMMENT ON TYPE calo_recon.scaler IS
  'A fitted StandardScaler: per-feature mean, population variance (ddof 0) and scale (1 for constant features, as scikit-learn)';

-- The partial state of scaler_fit, a type of its own with text and binary
-- forms and a combine function, so that parallel workers and Citus workers
-- run the partial aggregation and the leader or coordinator combines.
CREATE TYPE calo_recon.scaler_state;

CREATE FUNCTION calo_recon.scaler_state_in(cstring) RETURNS calo_recon.scaler_state
    AS 'MODULE_PATHNAME', 'scaler_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_in(cstring) IS
  'Input of calo_recon.scaler_state: base64 of its binary form, fully validated (22P02 when invalid)';
CREATE FUNCTION calo_recon.scaler_state_out(calo_recon.scaler_state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'scaler_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_out(calo_recon.scaler_state) IS
  'Output of calo_recon.scaler_state: base64 of its binary form';
CREATE FUNCTION calo_recon.scaler_state_recv(internal) RETURNS calo_recon.scaler_state
    AS 'MODULE_PATHNAME', 'scaler_state_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_recv(internal) IS
  'Binary input of calo_recon.scaler_state, fully validated (22P03 when invalid)';
CREATE FUNCTION calo_recon.scaler_state_send(calo_recon.scaler_state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'scaler_state_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_send(calo_recon.scaler_state) IS
  'Binary output of calo_recon.scaler_state: the versioned binary form';

CREATE TYPE calo_recon.scaler_state (
    INPUT = calo_recon.scaler_state_in,
    OUTPUT = calo_recon.scaler_state_out,
    RECEIVE = calo_recon.scaler_state_recv,
    SEND = calo_recon.scaler_state_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);
COMMENT ON TYPE calo_recon.scaler_state IS
  'A running StandardScaler fit (count, and per feature the exact sums of x and x*x): the partial state of scaler_fit';

CREATE FUNCTION calo_recon.scaler_state_add(calo_recon.scaler_state, float8[]) RETURNS calo_recon.scaler_state
    AS 'MODULE_PATHNAME', 'scaler_state_add' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_add(calo_recon.scaler_state, float8[]) IS
  'scaler_fit state transition: adds one row to the exact sums (an aggregate''s transition only)';
-- the transitions run as the aggregates' owner; nobody calls them directly
REVOKE ALL ON FUNCTION calo_recon.scaler_state_add(calo_recon.scaler_state, float8[]) FROM PUBLIC;
CREATE FUNCTION calo_recon.scaler_state_combine(calo_recon.scaler_state, calo_recon.scaler_state) RETURNS calo_recon.scaler_state
    AS 'MODULE_PATHNAME', 'scaler_state_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_combine(calo_recon.scaler_state, calo_recon.scaler_state) IS
  'The running fits of two sets of rows into the fit of their union, exactly (any split gives the same scaler); scaler_fit''s combine function';
CREATE FUNCTION calo_recon.scaler_state_fit(calo_recon.scaler_state) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_state_fit' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_fit(calo_recon.scaler_state) IS
  'The scaler of a running fit: mean, variance and scale; an empty training set is an error (scaler_fit''s final function)';
CREATE FUNCTION calo_recon.scaler_state_info(calo_recon.scaler_state, OUT features int, OUT samples bigint)
    AS 'MODULE_PATHNAME', 'scaler_state_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_state_info(calo_recon.scaler_state) IS
  'Number of features and of rows of a running scaler fit';

CREATE AGGREGATE calo_recon.scaler_fit(features float8[]) (
    SFUNC = calo_recon.scaler_state_add,
    STYPE = calo_recon.scaler_state,
    FINALFUNC = calo_recon.scaler_state_fit,
    COMBINEFUNC = calo_recon.scaler_state_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.scaler_fit(float8[]) IS
  'Fits a StandardScaler (scikit-learn semantics) over feature vectors; NULL/NaN/Infinity features, ragged rows and empty input are errors';

CREATE FUNCTION calo_recon.scaler_transform(calo_recon.scaler, float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'scaler_transform' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_transform(calo_recon.scaler, float8[]) IS
  'Standardizes a feature vector: (x - mean) / scale per feature';

CREATE FUNCTION calo_recon.scaler_to_json(calo_recon.scaler) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'scaler_to_json' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_to_json(calo_recon.scaler) IS
  'The scaler as JSON: n_features, n_samples, mean, var, scale';
CREATE FUNCTION calo_recon.scaler_from_json(jsonb) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_from_json' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_from_json(jsonb) IS
  'Builds a scaler from JSON (e.g. scikit-learn mean_, var_, scale_, n_samples_seen_); scale is derived from var when absent';

CREATE FUNCTION calo_recon.scaler_info(calo_recon.scaler, OUT features int, OUT samples bigint)
    AS 'MODULE_PATHNAME', 'scaler_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_info(calo_recon.scaler) IS
  'Number of features and of training rows of a scaler';

------------------------------------------------------------------- iforest

CREATE TYPE calo_recon.iforest;

CREATE FUNCTION calo_recon.iforest_in(cstring) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_in(cstring) IS
  'Input of calo_recon.iforest: base64 of its binary form, fully validated (22P02 when invalid)';
CREATE FUNCTION calo_recon.iforest_out(calo_recon.iforest) RETURNS cstring
    AS 'MODULE_PATHNAME', 'iforest_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_out(calo_recon.iforest) IS
  'Output of calo_recon.iforest: base64 of its binary form';
CREATE FUNCTION calo_recon.iforest_recv(internal) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_recv(internal) IS
  'Binary input of calo_recon.iforest, fully validated (22P03 when invalid)';
CREATE FUNCTION calo_recon.iforest_send(calo_recon.iforest) RETURNS bytea
    AS 'MODULE_PATHNAME', 'iforest_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_send(calo_recon.iforest) IS
  'Binary output of calo_recon.iforest: the versioned binary form';

-- Stored out of line without compression when large, so that scoring
-- recognizes a stored model by its TOAST pointer and decodes it once per query.
CREATE TYPE calo_recon.iforest (
    INPUT = calo_recon.iforest_in,
    OUTPUT = calo_recon.iforest_out,
    RECEIVE = calo_recon.iforest_recv,
    SEND = calo_recon.iforest_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = external
);
COMMENT ON TYPE calo_recon.iforest IS
  'An Isolation Forest model (classic or extended) in a versioned, checksummed, validated binary form';

CREATE FUNCTION calo_recon.iforest_to_bytea(calo_recon.iforest) RETURNS bytea
    AS 'MODULE_PATHNAME', 'iforest_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_to_bytea(calo_recon.iforest) IS
  'The binary form of a model as bytea';
CREATE FUNCTION calo_recon.iforest_from_bytea(bytea) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_from_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_from_bytea(bytea) IS
  'A model from its binary form, fully validated (22P03 when invalid)';

-- The partial state of iforest_fit: a bottom-k sample of the training rows
-- by a hashed priority, a type of its own with text and binary forms and a
-- combine function (see scaler_state).  A model fitted from any split of the
-- rows, combined in any order, is the same bytes.
CREATE TYPE calo_recon.iforest_sample;

CREATE FUNCTION calo_recon.iforest_sample_in(cstring) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_in(cstring) IS
  'Input of calo_recon.iforest_sample: base64 of its binary form, fully validated (22P02 when invalid)';
CREATE FUNCTION calo_recon.iforest_sample_out(calo_recon.iforest_sample) RETURNS cstring
    AS 'MODULE_PATHNAME', 'iforest_sample_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_out(calo_recon.iforest_sample) IS
  'Output of calo_recon.iforest_sample: base64 of its binary form';
CREATE FUNCTION calo_recon.iforest_sample_recv(internal) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_recv(internal) IS
  'Binary input of calo_recon.iforest_sample, fully validated (22P03 when invalid)';
CREATE FUNCTION calo_recon.iforest_sample_send(calo_recon.iforest_sample) RETURNS bytea
    AS 'MODULE_PATHNAME', 'iforest_sample_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_send(calo_recon.iforest_sample) IS
  'Binary output of calo_recon.iforest_sample: the versioned binary form';

CREATE TYPE calo_recon.iforest_sample (
    INPUT = calo_recon.iforest_sample_in,
    OUTPUT = calo_recon.iforest_sample_out,
    RECEIVE = calo_recon.iforest_sample_recv,
    SEND = calo_recon.iforest_sample_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);
COMMENT ON TYPE calo_recon.iforest_sample IS
  'The training sample of an Isolation Forest fit (the n_trees * sample_size rows of least hashed priority, with their counts, and the fit''s parameters): the partial state of iforest_fit';

CREATE FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[]) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_add' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[]) IS
  'iforest_fit state transition: validates the row and offers it to the sample (an aggregate''s transition only)';
CREATE FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_add' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint) IS
  'iforest_fit state transition with n_trees, sample_size and seed';
CREATE FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint, int) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_add' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint, int) IS
  'iforest_fit state transition with n_trees, sample_size, seed and extension_level';
-- the transitions run as the aggregates' owner; nobody calls them directly
REVOKE ALL ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION calo_recon.iforest_sample_add(calo_recon.iforest_sample, float8[], int, int, bigint, int) FROM PUBLIC;
CREATE FUNCTION calo_recon.iforest_sample_combine(calo_recon.iforest_sample, calo_recon.iforest_sample) RETURNS calo_recon.iforest_sample
    AS 'MODULE_PATHNAME', 'iforest_sample_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_combine(calo_recon.iforest_sample, calo_recon.iforest_sample) IS
  'The samples of two sets of rows into the sample of their union (22023 when taken with different parameters); iforest_fit''s combine function';
CREATE FUNCTION calo_recon.iforest_sample_fit(calo_recon.iforest_sample) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_sample_fit' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_fit(calo_recon.iforest_sample) IS
  'The forest grown from a sample, with the sample''s parameters; an empty training set is an error (iforest_fit''s final function)';
CREATE FUNCTION calo_recon.iforest_sample_info(calo_recon.iforest_sample,
    OUT rows_seen bigint, OUT entries bigint, OUT rows_kept bigint, OUT features int,
    OUT trees int, OUT sample_size int, OUT seed bigint, OUT extension_level int)
    AS 'MODULE_PATHNAME', 'iforest_sample_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_sample_info(calo_recon.iforest_sample) IS
  'A sample''s rows seen, entries (distinct rows kept), rows kept (their counts summed) and the fit''s parameters';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[]) (
    SFUNC = calo_recon.iforest_sample_add,
    STYPE = calo_recon.iforest_sample,
    FINALFUNC = calo_recon.iforest_sample_fit,
    COMBINEFUNC = calo_recon.iforest_sample_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[]) IS
  'Fits an Isolation Forest: 100 trees, sample_size min(256, rows), seed 42';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[], n_trees int, sample_size int, seed bigint) (
    SFUNC = calo_recon.iforest_sample_add,
    STYPE = calo_recon.iforest_sample,
    FINALFUNC = calo_recon.iforest_sample_fit,
    COMBINEFUNC = calo_recon.iforest_sample_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint) IS
  'Fits an Isolation Forest with n_trees (1..10000), sample_size (2..100000) and seed (NULL arguments take the defaults 100, 256, 42)';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[], n_trees int, sample_size int, seed bigint, extension_level int) (
    SFUNC = calo_recon.iforest_sample_add,
    STYPE = calo_recon.iforest_sample,
    FINALFUNC = calo_recon.iforest_sample_fit,
    COMBINEFUNC = calo_recon.iforest_sample_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint, int) IS
  'Fits an Extended Isolation Forest (Hariri et al. 2018); extension_level 0 .. n_features - 1, 0 is the classic forest';

CREATE FUNCTION calo_recon.iforest_score(calo_recon.iforest, float8[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'iforest_score' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_score(calo_recon.iforest, float8[]) IS
  'Anomaly score s(x) = 2^(-mean path length / c(sample_size)) in (0, 1]; higher is more anomalous';

CREATE FUNCTION calo_recon.iforest_label(score float8, threshold float8) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN score > threshold;
COMMENT ON FUNCTION calo_recon.iforest_label(float8, float8) IS
  'true (anomaly) when the score is above the threshold, as scikit-learn''s predict with offset_ = -threshold';

CREATE FUNCTION calo_recon.iforest_explain(calo_recon.iforest, float8[]) RETURNS int
    AS 'MODULE_PATHNAME', 'iforest_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_explain(calo_recon.iforest, float8[]) IS
  '1-based feature that isolated the row soonest: in each tree the split just above the row''s leaf votes for its feature with weight 1/depth; the largest total wins (NULL when no tree splits)';

CREATE FUNCTION calo_recon.iforest_info(calo_recon.iforest)
    RETURNS TABLE(trees int, sample_size int, features int, nodes bigint, bytes int, extension_level int)
    AS 'MODULE_PATHNAME', 'iforest_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_info(calo_recon.iforest) IS
  'Shape of a model: trees, sample_size, features, total nodes, size of its binary form, extension level';

CREATE FUNCTION calo_recon.iforest_to_json(calo_recon.iforest) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'iforest_to_json' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_to_json(calo_recon.iforest) IS
  'The model as JSON with scikit-learn tree_ arrays per tree (children_left, children_right, feature, threshold, n_node_samples)';
CREATE FUNCTION calo_recon.iforest_from_json(jsonb) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_from_json' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_from_json(jsonb) IS
  'A model from its JSON form (also a scikit-learn IsolationForest exported by tools/sklearn_export.py), validated like any model (22P02 when invalid)';
