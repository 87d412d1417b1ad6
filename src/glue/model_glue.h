/*
 * model_glue.h: helpers shared by the scaler and isolation forest glue:
 * reading float8[] feature vectors without allocating, and reading and
 * writing the JSON forms of the models.
 */
#ifndef CALO_MODEL_GLUE_H
#define CALO_MODEL_GLUE_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

/*
 * Number of elements of a float8[] feature vector, after checking that it
 * is one-dimensional, not empty and has no NULL element (errors otherwise).
 * fname names the calling function in messages.
 */
int			mglue_feature_count(Datum array, const char *fname);

/*
 * Checks a float8[] like mglue_feature_count, that it has exactly n elements
 * (want_from says what fixed n) and that each is finite, and copies them into
 * out.  Arrays stored inline (also with a 1-byte header) are read in place,
 * so scoring a row allocates nothing.
 */
void		mglue_read_features(Datum array, int n, double *out, const char *fname,
								const char *want_from);

/* Raises the error for a feature vector of the wrong length. */
void		mglue_wrong_length(const char *fname, int got, int want, const char *want_from) pg_attribute_noreturn();

/*
 * The text form of the binary types (models and fit states) is the base64 of
 * their binary form. mglue_base64_decode returns the bytes of text in
 * *len, or raises 22P02 naming type_name ("a model", "a sample" in what);
 * mglue_base64_encode returns the text of a binary value.
 */
char	   *mglue_base64_decode(const char *text, int *len, const char *type_name, const char *what);
char	   *mglue_base64_encode(const bytea *value);

/*
 * The binary (send/recv) forms of those types are their bytes as they are:
 * mglue_binary_rest returns the rest of a received message (its length in
 * *len), for the type's validator; mglue_binary_send wraps a value's bytes.
 */
const char *mglue_binary_rest(StringInfo msg, int *len);
bytea	   *mglue_binary_send(const bytea *value);

/* Appends a double in its shortest exact decimal form (JSON number). */
void		mglue_append_double(StringInfo buf, double d);
/* Appends "[a,b,...]" of n doubles. */
void		mglue_append_double_array(StringInfo buf, const double *v, int n);
Jsonb	   *mglue_text_to_jsonb(const char *text);

/* JSON import helpers: every failure is ERRCODE_INVALID_TEXT_REPRESENTATION. */
JsonbContainer *mglue_json_object(Jsonb *jb, const char *what);
/* Value of key in an object; NULL when absent and !required. */
bool		mglue_json_get(JsonbContainer *obj, const char *key, JsonbValue *out, bool required, const char *what);
double		mglue_json_number(const JsonbValue *v, const char *what);
int64		mglue_json_integer(const JsonbValue *v, int64 min, int64 max, const char *what);
/* Array container of a value (error when not an array); *n gets its size. */
JsonbContainer *mglue_json_array(const JsonbValue *v, int *n, const char *what);
/* Element i of an array container. */
void		mglue_json_element(JsonbContainer *arr, int i, JsonbValue *out);
/* A JSON array of numbers into a palloc'd double array of exactly n. */
double	   *mglue_json_doubles(const JsonbValue *v, int n, const char *what);

/* ---- the scaler and the forest, for the one scoring path (score_glue.c) ---- */
struct scl_model;
struct ifo_forest;
/* A stored calo_recon.scaler, decoded and validated (ERRCODE_DATA_CORRUPTED). */
void		mglue_scaler_decode(Datum stored, struct scl_model *m);
/* scaler_fit over rows (n_rows x nf, in order); fitted gets the model too. */
bytea	   *mglue_scaler_fit(const double *rows, uint64 n_rows, int nf, struct scl_model *fitted);
/*
 * A stored calo_recon.iforest, decoded into its scoring layout: from the
 * backend's cache of decoded forests (forest_cache_glue.c) when it holds
 * those bytes.  Read-only; valid until the end of the transaction.
 */
struct ifo_forest *mglue_forest_decode(Datum stored);
/* The bytes of a stored model, decoded into the current memory context
 * (ERRCODE_DATA_CORRUPTED when they are not a valid model). */
struct ifo_forest *mglue_forest_decode_bytes(const uint8 *buf, size_t len);
/* Errors (22023, 54000) when iforest_fit would refuse these parameters. */
void		mglue_forest_check(int32 n_trees, int32 sample_size, uint32 nf);
/* iforest_fit over rows (n_rows x nf, in order) with these parameters. */
bytea	   *mglue_forest_fit(const double *rows, uint64 n_rows, uint32 nf, int32 n_trees,
							 int32 sample_size, int64 seed);

#endif
