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
 * The features are coarse on purpose: the forest isolates whatever is rare
 * in its samples of 256 rows, so noise below what a person would call
 * unusual (VAT rounded to the minor unit, a debit 1.3x the usual, a gap of
 * 40 s or 70 s) is rounded away and does not compete with real deviations.
 *
 *   amount_vs_usual: log2(|amount| / the usual |amount| of the same
 *       direction), to the nearest whole number: debits against the median
 *       of the user's earlier debits, credits (top-ups) against the median
 *       of earlier credits; 0 for a zero amount, a legacy row whose balance
 *       did not move, or too little history. Being a ratio it is the same in
 *       every currency;
 *   vat_rate: vat / amount to 0.001 (0 when amount is 0, held within
 *       +-FEAT_RATE_BOUND);
 *   vat_rate_vs_usual: vat_rate - the median vat_rate of the user's earlier
 *       rows with an amount, to 0.01;
 *   hours_from_usual: hours beyond FEAT_HOUR_MARGIN from the row's UTC hour
 *       to the nearest hour of the user's earlier rows, around the clock
 *       (0..10); 0 for an infinite time;
 *   log_seconds_since_previous: log10(1 + seconds since the previous row in
 *       chain order) to the nearest whole number, the seconds computed as
 *       PostgreSQL's date_part('epoch', a - b) does and held at
 *       FEAT_SECONDS_CAP (a day), which the first row and a row next to an
 *       infinite time also get;
 *   repeats_previous: 1 when the row has the amount and the direction of the
 *       previous row and comes at most FEAT_REPEAT_WINDOW_SECS after it (a
 *       double charge), else 0.
 * "To the nearest" rounds ties to even, as PostgreSQL's round(float8) does,
 * and gives 0, never -0. Every value is finite.
 */
#ifndef CALO_ANOMALY_FEATURES_H
#define CALO_ANOMALY_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance.h"

enum feat_index
{
	FEAT_AMOUNT_VS_USUAL = 0,
	FEAT_VAT_RATE,
	FEAT_VAT_RATE_VS_USUAL,
	FEAT_HOURS_FROM_USUAL,
	FEAT_LOG_SECONDS_SINCE_PREVIOUS,
	FEAT_REPEATS_PREVIOUS,
	FEAT_AMOUNT_SCALED,
	FEAT_COUNT
};

extern const char *const feat_names[FEAT_COUNT];

/* earlier rows a usual amount or VAT rate needs */
#define FEAT_MIN_HISTORY 3
/* earlier rows the usual hours need */
#define FEAT_MIN_HOUR_HISTORY 10
/* a repeat of the previous amount within this many seconds is a double charge */
#define FEAT_REPEAT_WINDOW_SECS 3600
/* the minor unit of the common scale of money: thousands of minor units */
#define FEAT_SCALE_MINOR_UNIT 3
/* hours from the usual ones that still count as usual */
#define FEAT_HOUR_MARGIN 2
/* seconds since the previous row count up to a day: longer is as usual */
#define FEAT_SECONDS_CAP 86400
/* rates are compared to a tenth of a percent and to a percent: VAT rounded
 * to the minor unit moves the rate below that */
#define FEAT_RATE_STEP 0.001
#define FEAT_RATE_DIFF_STEP 0.01
/* a VAT rate is held within +-10 (1000 %): beyond, how far does not matter,
 * and a tiny amount must not blow the scaler's variance up */
#define FEAT_RATE_BOUND 10

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

/*
 * What a person needs beside the features to say why a row stands out
 * (explanation.h), per row: the usual |amount| of its direction (0: too
 * little history), the usual VAT rate (NaN: too little history), the seconds
 * since the previous row (-1: none) and the hours to the nearest usual hour
 * (-1: too little history or an infinite time).
 */
enum feat_context_index
{
	FEAT_CONTEXT_USUAL_AMOUNT = 0,
	FEAT_CONTEXT_USUAL_VAT_RATE,
	FEAT_CONTEXT_SECONDS,
	FEAT_CONTEXT_HOURS_AWAY,
	FEAT_CONTEXT_COUNT
};

/* doubles of scratch feat_user needs for n rows */
size_t		feat_scratch_size(size_t n);

/*
 * The features of one user's n rows. order[k] is the index in rows of the
 * k-th row in chain order; the features of rows[i] go to
 * out[i * FEAT_COUNT ...] and, unless context is NULL, its context to
 * context[i * FEAT_CONTEXT_COUNT ...]. scratch holds feat_scratch_size(n)
 * doubles. O(n log n): the usual values are running medians (two heaps each).
 */
void		feat_user(const feat_row *rows, const uint32_t *order, size_t n,
					  double *scratch, double *out, double *context);

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
