/*
 * anomaly_features.h: the anomaly features of a transaction, the one
 * home of their definitions and of their names and order. Plain C, no
 * PostgreSQL headers. The calo_recon.transaction_features view, train_model(),
 * score_transactions() and the model alerts all read features through
 * feat_user(); transaction_feature_names() returns feat_names.
 *
 * A user's rows are walked in chain order (walk_order() of walk.h):
 *   amount, vat, net (amount - vat), balance_change (new - old), old_balance:
 *       money through feat_money();
 *   hour_of_day: hour of logged_at in UTC (0 for an infinite time);
 *   seconds_since_previous: seconds since the previous row in chain order,
 *       computed as PostgreSQL's date_part('epoch', a - b) does; -1 for the
 *       first row or when either time is infinite;
 *   amount_vs_user_median: amount / |median of the user's amounts|
 *       (percentile_cont(0.5), linear interpolation); / 1 when that median
 *       is below 0.0001;
 *   direction: +1 CREDIT, -1 DEBIT; legacy rows the sign of balance_change.
 */
#ifndef CALO_ANOMALY_FEATURES_H
#define CALO_ANOMALY_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance.h"

enum feat_index
{
	FEAT_AMOUNT = 0,
	FEAT_VAT,
	FEAT_NET,
	FEAT_BALANCE_CHANGE,
	FEAT_OLD_BALANCE,
	FEAT_HOUR_OF_DAY,
	FEAT_SECONDS_SINCE_PREVIOUS,
	FEAT_AMOUNT_VS_USER_MEDIAN,
	FEAT_DIRECTION,
	FEAT_COUNT
};

/* the money features, the first FEAT_MONEY of feat_index */
#define FEAT_MONEY 5

extern const char *const feat_names[FEAT_COUNT];

/* PostgreSQL's timestamptz -infinity and +infinity (DT_NOBEGIN, DT_NOEND) */
#define FEAT_TIME_NOBEGIN INT64_MIN
#define FEAT_TIME_NOEND INT64_MAX

/*
 * Money as a feature: a value that is absent (NULL, NaN, +-Infinity, or the
 * result of arithmetic on one) is 0, as is a NaN double; magnitudes beyond
 * SCL_FEATURE_BOUND (a number beyond float8's range converts to +-Infinity)
 * are held at it.
 */
double		feat_money(bool present, double value);

/*
 * The exact decimal value as the double nearest to it (ties to even), as
 * strtod gives it for the decimal's text: the value PostgreSQL's numeric to
 * float8 cast gives for the same number.
 */
double		feat_dec_to_double(bal_dec value);

typedef struct feat_row
{
	double		money[FEAT_MONEY];	/* already through feat_money() */
	int64_t		logged_at;			/* microseconds, PostgreSQL's timestamptz */
	bal_type	type;
} feat_row;

/*
 * The features of one user's n rows. order[k] is the index in rows of the
 * k-th row in chain order; the features of rows[i] go to
 * out[i * FEAT_COUNT ...]. scratch holds n doubles.
 */
void		feat_user(const feat_row *rows, const uint32_t *order, size_t n,
					  double *scratch, double *out);

/*
 * PostgreSQL's percentile_cont(fraction) of n > 0 values without NaN (linear
 * interpolation, in its order of rounding); sorts values in place. The
 * median of the features, and the threshold of a model (1 - contamination).
 */
double		feat_percentile_cont(double *values, size_t n, double fraction);
/* feat_percentile_cont(values, n, 0.5) */
double		feat_median(double *values, size_t n);

#endif
