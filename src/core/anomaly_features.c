/*
 * anomaly_features.c: the anomaly features of a user's transactions. See anomaly_features.h.
 */
#include "anomaly_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scaler.h"

const char *const feat_names[FEAT_COUNT] = {
	"amount_vs_usual", "vat_rate", "vat_rate_vs_usual", "hours_from_usual",
	"log_seconds_since_previous", "repeats_previous", "amount_scaled"
};

#define FEAT_USECS_PER_SEC 1000000
#define FEAT_USECS_PER_HOUR INT64_C(3600000000)
#define FEAT_USECS_PER_DAY INT64_C(86400000000)
#define FEAT_SECS_PER_DAY 86400

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

int
feat_hour_of(int64_t t)
{
	int64_t		in_day = t % FEAT_USECS_PER_DAY;

	if (in_day < 0)
		in_day += FEAT_USECS_PER_DAY;
	return (int) (in_day / FEAT_USECS_PER_HOUR);
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

/* the nearest whole number, ties to even as PostgreSQL's round(float8); never -0 */
static double
feat_whole(double value)
{
	return rint(value) + 0.0;
}

/* value to the nearest multiple of step, held within the bound */
static double
feat_step(double value, double step)
{
	return feat_money(true, feat_whole(value / step) * step);
}

/* a ratio or difference as a feature: finite, held within the money bound */
static double
feat_bounded(double value)
{
	return feat_money(true, value);
}

int
feat_direction(const feat_row *r)
{
	switch (r->type)
	{
		case BAL_CREDIT:
			return 1;
		case BAL_DEBIT:
			return -1;
		case BAL_LEGACY:
			break;
	}
	return r->balance_change > 0 ? 1 : (r->balance_change < 0 ? -1 : 0);
}

/*
 * log10(1 + |amount| in thousands of minor units), to 0.1: one scale for the
 * currencies (1 BHD = 1000 fils, 10 SAR = 1000 halalas)
 */
static double
feat_amount_scaled(double money, int minor_unit)
{
	double		m = minor_unit < FEAT_SCALE_MINOR_UNIT
		? money / feat_pow10[FEAT_SCALE_MINOR_UNIT - minor_unit]
		: money * feat_pow10[minor_unit - FEAT_SCALE_MINOR_UNIT];

	return feat_step(log10(1.0 + fabs(m)), 0.1);
}

/*
 * A running median: a max-heap of the lower half and a min-heap of the
 * upper half, in caller-given arrays of n doubles each (no allocation).
 */
typedef struct feat_running_median
{
	double	   *lo;
	double	   *hi;
	size_t		nlo;
	size_t		nhi;
} feat_running_median;

static void
feat_heap_push(double *heap, size_t *n, double value, bool max_heap)
{
	size_t		i = (*n)++;

	while (i > 0)
	{
		size_t		parent = (i - 1) / 2;

		if (max_heap ? heap[parent] >= value : heap[parent] <= value)
			break;
		heap[i] = heap[parent];
		i = parent;
	}
	heap[i] = value;
}

static double
feat_heap_pop(double *heap, size_t *n, bool max_heap)
{
	double		top = heap[0];
	double		last = heap[--(*n)];
	size_t		i = 0;

	for (;;)
	{
		size_t		child = 2 * i + 1;

		if (child >= *n)
			break;
		if (child + 1 < *n && (max_heap ? heap[child + 1] > heap[child] : heap[child + 1] < heap[child]))
			child++;
		if (max_heap ? last >= heap[child] : last <= heap[child])
			break;
		heap[i] = heap[child];
		i = child;
	}
	if (*n > 0)
		heap[i] = last;
	return top;
}

static void
feat_median_add(feat_running_median *m, double value)
{
	if (m->nlo == 0 || value <= m->lo[0])
		feat_heap_push(m->lo, &m->nlo, value, true);
	else
		feat_heap_push(m->hi, &m->nhi, value, false);
	if (m->nlo > m->nhi + 1)
		feat_heap_push(m->hi, &m->nhi, feat_heap_pop(m->lo, &m->nlo, true), false);
	else if (m->nhi > m->nlo)
		feat_heap_push(m->lo, &m->nlo, feat_heap_pop(m->hi, &m->nhi, false), true);
}

/* the median of the values added (an even count: the mean of the middle two) */
static double
feat_median_now(const feat_running_median *m)
{
	return m->nlo > m->nhi ? m->lo[0] : m->lo[0] / 2 + m->hi[0] / 2;
}

static size_t
feat_median_count(const feat_running_median *m)
{
	return m->nlo + m->nhi;
}

/* the medians of feat_user: VAT rates, debit amounts, credit amounts */
enum
{
	FEAT_USUAL_VAT_RATE, FEAT_USUAL_DEBIT, FEAT_USUAL_CREDIT, FEAT_N_USUAL
};

size_t
feat_scratch_size(size_t n)
{
	return 2 * FEAT_N_USUAL * (n > 0 ? n : 1);
}

/* the usual |amount| of m, 0 without enough history */
static double
feat_usual(const feat_running_median *m)
{
	double		usual;

	if (feat_median_count(m) < FEAT_MIN_HISTORY)
		return 0.0;
	usual = feat_median_now(m);
	return usual > 0 ? usual : 0.0;
}

/* circular distance in hours from hour to the nearest hour set in used (non-empty) */
static int
feat_hours_from(uint32_t used, int hour)
{
	for (int d = 0; d < 12; d++)
		if ((used >> ((hour + d) % 24) & 1) || (used >> ((hour + 24 - d) % 24) & 1))
			return d;
	return 12;
}

void
feat_user(const feat_row *rows, const uint32_t *order, size_t n, double *scratch, double *out,
		  double *context)
{
	feat_running_median usual[FEAT_N_USUAL];
	uint32_t	hours_used = 0;
	size_t		hours_seen = 0;

	for (int u = 0; u < FEAT_N_USUAL; u++)
	{
		usual[u].lo = scratch + (size_t) (2 * u) * n;
		usual[u].hi = scratch + (size_t) (2 * u + 1) * n;
		usual[u].nlo = usual[u].nhi = 0;
	}
	for (size_t k = 0; k < n; k++)
	{
		uint32_t	i = order[k];
		const feat_row *r = &rows[i];
		const feat_row *prev = k > 0 ? &rows[order[k - 1]] : NULL;
		double	   *f = out + (size_t) i * FEAT_COUNT;
		double		c[FEAT_CONTEXT_COUNT] = {0.0, NAN, -1.0, -1.0};
		int			direction = feat_direction(r);
		double		magnitude = fabs(r->amount);
		double		seconds = -1.0;

		f[FEAT_AMOUNT_SCALED] = feat_amount_scaled(r->amount, r->minor_unit);
		f[FEAT_VAT_RATE] = 0.0;
		f[FEAT_VAT_RATE_VS_USUAL] = 0.0;
		if (r->amount != 0)
		{
			double		rate = r->vat / r->amount;

			rate = feat_step(isnan(rate) ? 0.0 : fmax(-FEAT_RATE_BOUND, fmin(FEAT_RATE_BOUND, rate)),
							 FEAT_RATE_STEP);
			f[FEAT_VAT_RATE] = rate;
			if (feat_median_count(&usual[FEAT_USUAL_VAT_RATE]) >= FEAT_MIN_HISTORY)
			{
				c[FEAT_CONTEXT_USUAL_VAT_RATE] = feat_median_now(&usual[FEAT_USUAL_VAT_RATE]);
				f[FEAT_VAT_RATE_VS_USUAL] = feat_step(rate - c[FEAT_CONTEXT_USUAL_VAT_RATE],
													  FEAT_RATE_DIFF_STEP);
			}
			feat_median_add(&usual[FEAT_USUAL_VAT_RATE], rate);
		}

		/* debits against the usual debit, top-ups against the usual top-up */
		f[FEAT_AMOUNT_VS_USUAL] = 0.0;
		if (direction != 0)
		{
			feat_running_median *m = &usual[direction < 0 ? FEAT_USUAL_DEBIT : FEAT_USUAL_CREDIT];

			c[FEAT_CONTEXT_USUAL_AMOUNT] = feat_usual(m);
			if (c[FEAT_CONTEXT_USUAL_AMOUNT] > 0 && magnitude > 0)
				f[FEAT_AMOUNT_VS_USUAL] = feat_bounded(feat_whole(log2(magnitude / c[FEAT_CONTEXT_USUAL_AMOUNT])));
			if (magnitude > 0)
				feat_median_add(m, magnitude);
		}

		f[FEAT_HOURS_FROM_USUAL] = 0.0;
		if (feat_time_finite(r->logged_at))
		{
			int			hour = feat_hour_of(r->logged_at);

			if (hours_seen >= FEAT_MIN_HOUR_HISTORY)
			{
				c[FEAT_CONTEXT_HOURS_AWAY] = (double) feat_hours_from(hours_used, hour);
				f[FEAT_HOURS_FROM_USUAL] = fmax(0.0, c[FEAT_CONTEXT_HOURS_AWAY] - FEAT_HOUR_MARGIN);
			}
			hours_used |= UINT32_C(1) << hour;
			hours_seen++;
		}

		if (prev != NULL && feat_time_finite(r->logged_at) && feat_time_finite(prev->logged_at))
			seconds = feat_seconds_between(prev->logged_at, r->logged_at);
		c[FEAT_CONTEXT_SECONDS] = seconds;
		f[FEAT_LOG_SECONDS_SINCE_PREVIOUS] =
			feat_whole(log10(1.0 + (seconds < 0 || seconds > FEAT_SECONDS_CAP ? FEAT_SECONDS_CAP : seconds)));
		f[FEAT_REPEATS_PREVIOUS] =
			(seconds >= 0 && seconds <= FEAT_REPEAT_WINDOW_SECS && direction != 0
			 && direction == feat_direction(prev) && r->amount == prev->amount) ? 1.0 : 0.0;
		if (context != NULL)
			memcpy(context + (size_t) i * FEAT_CONTEXT_COUNT, c, sizeof(c));
	}
}
