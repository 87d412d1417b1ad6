/*
 * scaler.h: StandardScaler core (no PostgreSQL headers).
 *
 * Fitting keeps, per feature, the exact sum of x and the exact sum of x * x
 * (fixed-point accumulators wide enough for any double and 2^63 rows), so
 * that partial fits combine exactly: a fit over any split of the rows, merged
 * in any order, is the same as over all of them, to the last bit.  Finishing
 * gives the mean and the population variance (ddof 0) correctly rounded from
 * the exact sums, and the scale, with scikit-learn's rule for (near-)constant
 * features: scale 1 when var <= n*eps*var + (n*mean*eps)^2 (sklearn 1.2
 * _is_constant_feature).
 *
 * The fitted model's binary form (version 1, little-endian):
 *   0  "CSCL"   4  u16 version   6  u16 flags (0)   8  u32 n_features
 *   12 u32 0    16 u64 n_samples  24 f64 mean[n]  f64 var[n]  f64 scale[n]
 */
#ifndef CALO_SCALER_H
#define CALO_SCALER_H

#include <stddef.h>
#include <stdint.h>

#define SCL_MAGIC "CSCL"
#define SCL_VERSION 1
#define SCL_HEADER_BYTES 24
#define SCL_MAX_FEATURES 10000
/*
 * Magnitude the transaction features hold money at (calo_recon.feature_value):
 * far beyond any real amount, and small enough that neither a fit nor a
 * transform of the features overflows.  With every feature within 1e104
 * (amount_vs_user_median divides by at least 1e-4), squared deviations summed
 * over 2^63 rows stay below 1e228, and (x - mean) / scale stays below 1e267
 * for every positive scale (the least is sqrt of the least double, 2e-162).
 */
#define SCL_FEATURE_BOUND 1e100

/*
 * Running fit.  digits[] holds, per feature, the sum of x in units of 2^-1074
 * (SCL_SUM_DIGITS) then the sum of x * x in units of 2^-2148
 * (SCL_SQUARES_DIGITS), as base-2^32 digits in int64 words, least significant
 * first: additions carry lazily (pending counts them), normalizing leaves
 * every digit but the last in [0, 2^32).
 */
#define SCL_SUM_DIGITS 68
#define SCL_SQUARES_DIGITS 134
#define SCL_DIGITS (SCL_SUM_DIGITS + SCL_SQUARES_DIGITS)
typedef struct scl_acc
{
	int64_t		n;
	int32_t		n_features;
	int32_t		pending;		/* additions since the digits were normalized */
	int64_t		digits[];
} scl_acc;

/* Fitted model; the arrays are owned by the caller. */
typedef struct scl_model
{
	int64_t		n_samples;
	int32_t		n_features;
	double	   *mean;
	double	   *var;
	double	   *scale;
} scl_model;

size_t		scl_acc_size(int n_features);
void		scl_acc_init(scl_acc *acc, int n_features);
void		scl_acc_add(scl_acc *acc, const double *x);
/* Merges b into a (same n_features), exactly; a may be empty. */
void		scl_acc_merge(scl_acc *a, const scl_acc *b);
/*
 * Fills model (arrays of acc->n_features); acc->n must be > 0.  Returns 0,
 * or -1 (err says why) when a mean or variance overflows a double (values
 * of +-1e200 have a variance of 1e400): a fit never yields a model that
 * scl_check, and so the decoder, would refuse.
 */
int			scl_acc_finish(const scl_acc *acc, scl_model *model, char *err, size_t errlen);

/*
 * The running fit's binary form (calo_recon.scaler_state; version 1,
 * little-endian; its text form is the base64 of it):
 *   0  "CSST"   4  u16 version   6  u16 flags (0)   8  u32 n_features
 *   12 u32 0    16 u64 n
 *   24 per feature: the normalized digits of its two sums, SCL_SUM_DIGITS
 *      then SCL_SQUARES_DIGITS u32, each sum's last digit signed (i32)
 * An empty fit (n 0) has every digit 0; the sums of squares are not
 * negative, and n * (sum of squares) >= (sum)^2, as for any rows.
 */
#define SCL_STATE_MAGIC "CSST"
#define SCL_STATE_VERSION 1
#define SCL_STATE_HEADER_BYTES 24
size_t		scl_state_encoded_size(int n_features);
void		scl_state_encode(const scl_acc *acc, uint8_t *buf);
/* Returns n_features of a well-formed header and length, or -1 (err says why). */
int			scl_state_peek_features(const uint8_t *buf, size_t len, char *err, size_t errlen);
/* Validates everything into acc (scl_acc_size of the features). 0 ok, -1 bad. */
int			scl_state_decode(const uint8_t *buf, size_t len, scl_acc *acc, char *err, size_t errlen);

/* Scale of a feature with this population variance, mean and count. */
double		scl_scale_of(double var, double mean, int64_t n);
void		scl_transform(const scl_model *model, const double *x, double *out);

size_t		scl_encoded_size(int n_features);
void		scl_encode(const scl_model *model, uint8_t *buf);
/* Returns n_features of a well-formed header, or -1 (err says why). */
int			scl_peek_features(const uint8_t *buf, size_t len, char *err, size_t errlen);
/* Validates everything; model arrays must hold n_features. 0 ok, -1 bad. */
int			scl_decode(const uint8_t *buf, size_t len, scl_model *model, char *err, size_t errlen);
/* Validates a model built elsewhere (JSON import). 0 ok, -1 bad. */
int			scl_check(const scl_model *model, char *err, size_t errlen);

#endif
