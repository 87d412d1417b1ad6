/*
 * anomaly_features.c: the anomaly features of a user's transactions. See anomaly_features.h.
 */
#include "anomaly_features.h"

#include <math.h>
#include <stdlib.h>

#include "scaler.h"

const char *const feat_names[FEAT_COUNT] = {
	"amount", "vat", "net", "balance_change", "old_balance",
	"hour_of_day", "seconds_since_previous", "amount_vs_user_median", "direction"
};

#define FEAT_USECS_PER_SEC 1000000
#define FEAT_USECS_PER_HOUR INT64_C(3600000000)
#define FEAT_USECS_PER_DAY INT64_C(86400000000)
#define FEAT_SECS_PER_DAY 86400
/* below it, the median is too close to 0 to divide by */
#define FEAT_MEDIAN_FLOOR 0.0001

double
feat_money(bool present, double value)
{
	if (!present || isnan(value))
		return 0.0;
	if (value > SCL_FEATURE_BOUND)
		return SCL_FEATURE_BOUND;
	if (value < -SCL_FEATURE_BOUND)
		return -SCL_FEATURE_BOUND;
	return value;
}

static const int64_t feat_pow10_int[] = {
	INT64_C(1), INT64_C(10), INT64_C(100), INT64_C(1000), INT64_C(10000), INT64_C(100000),
	INT64_C(1000000), INT64_C(10000000), INT64_C(100000000), INT64_C(1000000000),
	INT64_C(10000000000), INT64_C(100000000000), INT64_C(1000000000000),
	INT64_C(10000000000000), INT64_C(100000000000000), INT64_C(1000000000000000),
	INT64_C(10000000000000000), INT64_C(100000000000000000), INT64_C(1000000000000000000)
};

static const double feat_pow10[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18
};

_Static_assert(BAL_SCALE_DIGITS == 18, "feat_dec_to_double splits at 10^18");

double
feat_dec_to_double(bal_dec value)
{
	const int64_t one = INT64_C(1000000000000000000);	/* 10^BAL_SCALE_DIGITS */
	bal_dec		whole = value / one;
	int64_t		fraction = (int64_t) (value % one);
	int			places = BAL_SCALE_DIGITS;
	bal_dec		mantissa;
	char		text[BAL_FORMAT_MAX];

	/* the trailing zeros of the fraction, in 64-bit arithmetic */
	if (fraction == 0)
		places = 0;
	else
		while (fraction % 10 == 0)
		{
			fraction /= 10;
			places--;
		}
	mantissa = whole * (bal_dec) feat_pow10_int[places] + fraction;

	/*
	 * Clinger's fast path: an integer below 2^53 and a power of ten up to
	 * 10^22 are exact doubles, and IEEE division rounds their quotient
	 * correctly.
	 */
	if (mantissa > -((bal_dec) 1 << 53) && mantissa < ((bal_dec) 1 << 53))
		return (double) (int64_t) mantissa / feat_pow10[places];
	bal_format(value, text);
	return strtod(text, NULL);
}

static int
feat_double_cmp(const void *pa, const void *pb)
{
	double		a = *(const double *) pa;
	double		b = *(const double *) pb;

	return a < b ? -1 : (a > b ? 1 : 0);
}

double
feat_percentile_cont(double *values, size_t n, double fraction)
{
	double		position = fraction * (double) (n - 1);
	size_t		lo = (size_t) floor(position);
	size_t		hi = (size_t) ceil(position);

	qsort(values, n, sizeof(double), feat_double_cmp);
	if (lo == hi)
		return values[lo];
	/* PostgreSQL's float8 lerp: lo + (fraction * (hi - lo)) */
	return values[lo] + ((position - (double) lo) * (values[hi] - values[lo]));
}

double
feat_median(double *values, size_t n)
{
	return feat_percentile_cont(values, n, 0.5);
}

static bool
feat_time_finite(int64_t t)
{
	return t != FEAT_TIME_NOBEGIN && t != FEAT_TIME_NOEND;
}

/* date_part('hour', t AT TIME ZONE 'UTC') */
static double
feat_hour(int64_t t)
{
	int64_t		in_day;

	if (!feat_time_finite(t))
		return 0.0;
	in_day = t % FEAT_USECS_PER_DAY;
	if (in_day < 0)
		in_day += FEAT_USECS_PER_DAY;
	return (double) (in_day / FEAT_USECS_PER_HOUR);
}

/*
 * date_part('epoch', later - earlier): the difference is justified into
 * days and microseconds, and the epoch is time / 1e6 + 86400 * days, in
 * that order of rounding. Chain order makes later >= earlier.
 */
static double
feat_seconds_between(int64_t earlier, int64_t later)
{
	int64_t		span = later - earlier;
	int64_t		days = span / FEAT_USECS_PER_DAY;
	int64_t		time = span % FEAT_USECS_PER_DAY;
	double		result = (double) time / 1000000.0;

	result += (double) FEAT_SECS_PER_DAY * (double) days;
	return result;
}

void
feat_user(const feat_row *rows, const uint32_t *order, size_t n, double *scratch, double *out)
{
	double		median;
	double		divisor;
	size_t		k;

	if (n == 0)
		return;
	for (k = 0; k < n; k++)
		scratch[k] = rows[k].money[FEAT_AMOUNT];
	median = fabs(feat_median(scratch, n));
	divisor = median >= FEAT_MEDIAN_FLOOR ? median : 1.0;

	for (k = 0; k < n; k++)
	{
		uint32_t	i = order[k];
		const feat_row *r = &rows[i];
		double	   *f = out + (size_t) i * FEAT_COUNT;
		int			m;

		for (m = 0; m < FEAT_MONEY; m++)
			f[m] = r->money[m];
		f[FEAT_HOUR_OF_DAY] = feat_hour(r->logged_at);
		f[FEAT_SECONDS_SINCE_PREVIOUS] = -1.0;
		if (k > 0 && feat_time_finite(r->logged_at) && feat_time_finite(rows[order[k - 1]].logged_at))
			f[FEAT_SECONDS_SINCE_PREVIOUS] = feat_seconds_between(rows[order[k - 1]].logged_at,
																 r->logged_at);
		f[FEAT_AMOUNT_VS_USER_MEDIAN] = r->money[FEAT_AMOUNT] / divisor;
		switch (r->type)
		{
			case BAL_CREDIT:
				f[FEAT_DIRECTION] = 1.0;
				break;
			case BAL_DEBIT:
				f[FEAT_DIRECTION] = -1.0;
				break;
			case BAL_LEGACY:
				f[FEAT_DIRECTION] = r->money[FEAT_BALANCE_CHANGE] > 0 ? 1.0
					: (r->money[FEAT_BALANCE_CHANGE] < 0 ? -1.0 : 0.0);
				break;
		}
	}
}
