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

CREATE FUNCTION calo_recon.scaler_fit_transfn(internal, float8[]) RETURNS internal
    AS 'MODULE_PATHNAME', 'scaler_fit_transfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_transfn(internal, float8[]) IS
  'scaler_fit state transition: Welford update of one row';
CREATE FUNCTION calo_recon.scaler_fit_combinefn(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'scaler_fit_combinefn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_combinefn(internal, internal) IS
  'scaler_fit combine: Chan et al. merge of two partial fits';
CREATE FUNCTION calo_recon.scaler_fit_serialfn(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'scaler_fit_serialfn' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_serialfn(internal) IS 'scaler_fit state serialization';
CREATE FUNCTION calo_recon.scaler_fit_deserialfn(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'scaler_fit_deserialfn' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_deserialfn(bytea, internal) IS 'scaler_fit state deserialization';
CREATE FUNCTION calo_recon.scaler_fit_finalfn(internal) RETURNS calo_recon.scaler
    AS 'MODULE_PATHNAME', 'scaler_fit_finalfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.scaler_fit_finalfn(internal) IS
  'scaler_fit final: mean, variance and scale; an empty training set is an error';

CREATE AGGREGATE calo_recon.scaler_fit(features float8[]) (
    SFUNC = calo_recon.scaler_fit_transfn,
    STYPE = internal,
    FINALFUNC = calo_recon.scaler_fit_finalfn,
    COMBINEFUNC = calo_recon.scaler_fit_combinefn,
    SERIALFUNC = calo_recon.scaler_fit_serialfn,
    DESERIALFUNC = calo_recon.scaler_fit_deserialfn,
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

CREATE FUNCTION calo_recon.iforest_fit_transfn(internal, float8[]) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_transfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_transfn(internal, float8[]) IS
  'iforest_fit state transition: validates the row and offers it to the reservoir sample';
CREATE FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_transfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint) IS
  'iforest_fit state transition with n_trees, sample_size and seed';
CREATE FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint, int) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_transfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_transfn(internal, float8[], int, int, bigint, int) IS
  'iforest_fit state transition with n_trees, sample_size, seed and extension_level';
CREATE FUNCTION calo_recon.iforest_fit_combinefn(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_combinefn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_combinefn(internal, internal) IS
  'iforest_fit combine: merges two reservoirs into a uniform sample of the union';
CREATE FUNCTION calo_recon.iforest_fit_serialfn(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'iforest_fit_serialfn' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_serialfn(internal) IS 'iforest_fit state serialization';
CREATE FUNCTION calo_recon.iforest_fit_deserialfn(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'iforest_fit_deserialfn' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_deserialfn(bytea, internal) IS 'iforest_fit state deserialization';
CREATE FUNCTION calo_recon.iforest_fit_finalfn(internal) RETURNS calo_recon.iforest
    AS 'MODULE_PATHNAME', 'iforest_fit_finalfn' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION calo_recon.iforest_fit_finalfn(internal) IS
  'iforest_fit final: grows the trees from the reservoir; an empty training set is an error';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[]) (
    SFUNC = calo_recon.iforest_fit_transfn,
    STYPE = internal,
    FINALFUNC = calo_recon.iforest_fit_finalfn,
    COMBINEFUNC = calo_recon.iforest_fit_combinefn,
    SERIALFUNC = calo_recon.iforest_fit_serialfn,
    DESERIALFUNC = calo_recon.iforest_fit_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[]) IS
  'Fits an Isolation Forest: 100 trees, sample_size min(256, rows), seed 42';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[], n_trees int, sample_size int, seed bigint) (
    SFUNC = calo_recon.iforest_fit_transfn,
    STYPE = internal,
    FINALFUNC = calo_recon.iforest_fit_finalfn,
    COMBINEFUNC = calo_recon.iforest_fit_combinefn,
    SERIALFUNC = calo_recon.iforest_fit_serialfn,
    DESERIALFUNC = calo_recon.iforest_fit_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE calo_recon.iforest_fit(float8[], int, int, bigint) IS
  'Fits an Isolation Forest with n_trees (1..10000), sample_size (2..100000) and seed (NULL arguments take the defaults 100, 256, 42)';

CREATE AGGREGATE calo_recon.iforest_fit(features float8[], n_trees int, sample_size int, seed bigint, extension_level int) (
    SFUNC = calo_recon.iforest_fit_transfn,
    STYPE = internal,
    FINALFUNC = calo_recon.iforest_fit_finalfn,
    COMBINEFUNC = calo_recon.iforest_fit_combinefn,
    SERIALFUNC = calo_recon.iforest_fit_serialfn,
    DESERIALFUNC = calo_recon.iforest_fit_deserialfn,
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
