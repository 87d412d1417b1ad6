/*
 * anomaly_features.h: the anomaly features of a transaction, the one
 * home of their definitions and of their names and order. Plain C, no
 * PostgreSQL headers. The calo_recon.transaction_features view, train_model(),
 * score_transactions() and the model alerts all read features through
 * feat_user(); transaction_feature_names() returns feat_names.
 *
 * A user's rows are walked in chain order (walk_order() of walk.h). Every
 * "usual" is over the user's rows BEFORE the row in chain order, never after,
 * so a row's features do not change when later rows arrive; with fewer than
 * FEAT_MIN_HISTORY earlier rows of the kind (FEAT_MIN_HOUR_HISTORY for the
 * hours) a feature against the usual is 0, "as usual".
 *
 *   amount_scaled: amount * 10^(minor_unit - 3), the amount in thousands of
 *       the currency's minor units (1 BHD = 1000 fils, 10 SAR = 1000
 *       halalas): one scale for the currencies, so the forest does not learn
 *       "which currency";
 *   balance_change_scaled: (new - old) on the same scale;
 *   direction: +1 CREDIT, -1 DEBIT; legacy rows the sign of balance_change;
 *   vat_rate: vat / amount (0 when amount is 0);
 *   vat_rate_vs_usual: vat_rate - the median vat_rate of the user's earlier
 *       rows with an amount (all directions);
 *   debit_vs_usual: for a debit, ln(|amount| / median |amount| of the user's
 *       earlier debits); 0 for other rows or a zero amount or median;
 *   topup_vs_usual: the same for a credit (a top-up) against earlier credits;
 *   hours_from_usual: circular distance in hours (0..12) from the row's UTC
 *       hour to the nearest hour of the user's earlier rows; 0 for an
 *       infinite time;
 *   log_seconds_since_previous: log10(1 + seconds since the previous row in
 *       chain order), the seconds computed as PostgreSQL's
 *       date_part('epoch', a - b) does; -1 for the first row or when either
 *       time is infinite;
 *   repeats_previous: 1 when the row has the amount and the direction of the
 *       previous row and comes at most FEAT_REPEAT_WINDOW_SECS after it (a
 *       double charge), else 0.
 * Every value is finite: ratios and differences are held within
 * +-SCL_FEATURE_BOUND like money.
 */
#ifndef CALO_ANOMALY_FEATURES_H
#define CALO_ANOMALY_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance.h"

enum feat_index
{
	FEAT_AMOUNT_SCALED = 0,
	FEAT_BALANCE_CHANGE_SCALED,
	FEAT_DIRECTION,
	FEAT_VAT_RATE,
	FEAT_VAT_RATE_VS_USUAL,
	FEAT_DEBIT_VS_USUAL,
	FEAT_TOPUP_VS_USUAL,
	FEAT_HOURS_FROM_USUAL,
	FEAT_LOG_SECONDS_SINCE_PREVIOUS,
	FEAT_REPEATS_PREVIOUS,
	FEAT_COUNT
};

extern const char *const feat_names[FEAT_COUNT];

/* earlier rows a usual amount or VAT rate needs */
#define FEAT_MIN_HISTORY 3
/* earlier rows the usual hours need */
#define FEAT_MIN_HOUR_HISTORY 10
/* a repeat of the previous amount within this many seconds is a double charge */
#define FEAT_REPEAT_WINDOW_SECS 3600
/* the minor unit of amount_scaled's unit: thousands of minor units */
#define FEAT_SCALE_MINOR_UNIT 3

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
	double		amount;			/* already through feat_money() */
	double		vat;
	double		balance_change; /* new - old */
	int64_t		logged_at;		/* microseconds, PostgreSQL's timestamptz */
	bal_type	type;
	int			minor_unit;		/* the currency's, bal_minor_unit() applied */
} feat_row;

/* -1, 0 or +1: the row's direction (feature direction) */
int			feat_direction(const feat_row *r);

/* doubles of scratch feat_user needs for n rows */
size_t		feat_scratch_size(size_t n);

/*
 * The features of one user's n rows. order[k] is the index in rows of the
 * k-th row in chain order; the features of rows[i] go to
 * out[i * FEAT_COUNT ...]. scratch holds feat_scratch_size(n) doubles.
 * O(n log n): the usual values are running medians (two heaps each).
 */
void		feat_user(const feat_row *rows, const uint32_t *order, size_t n,
					  double *scratch, double *out);

/* UTC hour 0..23 of a finite time */
int			feat_hour_of(int64_t t);

/*
 * PostgreSQL's percentile_cont(fraction) of n > 0 values without NaN (linear
 * interpolation, in its order of rounding); sorts values in place. The
 * threshold of a model (1 - contamination).
 */
double		feat_percentile_cont(double *values, size_t n, double fraction);
/* feat_percentile_cont(values, n, 0.5) */
double		feat_median(double *values, size_t n);

#endif
