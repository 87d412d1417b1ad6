/*
 * Unit tests of src/core/anomaly_features.c (not features.c: glibc has a <features.h>): names and order, the money rule, exact
 * decimal to double conversion against strtod, the median (odd, even), and
 * the per-user features (chain predecessor, infinite times, pre-1970 hours,
 * legacy direction, the currency scale, the usual values over earlier rows
 * only and the running median against a sorted one).
 */
#include "anomaly_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static bal_dec
D(const char *s)
{
	bal_dec		v = 0;

	if (bal_parse(s, strlen(s), &v) != BAL_OK)
	{
		fprintf(stderr, "bad literal %s\n", s);
		abort();
	}
	return v;
}

static void
test_names(void)
{
	CHECK_STR(feat_names[FEAT_AMOUNT_VS_USUAL], "amount_vs_usual");
	CHECK_STR(feat_names[FEAT_HOURS_FROM_USUAL], "hours_from_usual");
	CHECK_STR(feat_names[FEAT_REPEATS_PREVIOUS], "repeats_previous");
	CHECK_STR(feat_names[FEAT_AMOUNT_SCALED], "amount_scaled");
	CHECK(FEAT_COUNT == 7);
}

static void
test_money(void)
{
	CHECK(feat_money(false, 5.0) == 0.0);
	CHECK(feat_money(true, NAN) == 0.0);
	CHECK(feat_money(false, NAN) == 0.0);
	CHECK(feat_money(true, INFINITY) == 1e100);	/* 1e400 as float8 */
	CHECK(feat_money(true, -INFINITY) == -1e100);
	CHECK(feat_money(true, 1e120) == 1e100);
	CHECK(feat_money(true, -1e120) == -1e100);
	CHECK(feat_money(true, 12.5) == 12.5);
}

/* every conversion equals strtod of the decimal's text, fast path or not */
static void
test_dec_to_double(void)
{
	const char *lits[] = {"0", "0.1", "-0.1", "4.5", "0.000000000000000001", "12345.678",
		"9007199254740993", "9007199254740992.5", "-99999999999999999999.999999999999999999",
		"0.123456789012345678", "1.05", "-7.77", "123456789.123456789"};
	unsigned	seed = 12345;

	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++)
		CHECK(feat_dec_to_double(D(lits[i])) == strtod(lits[i], NULL));
	for (int i = 0; i < 20000; i++)
	{
		char		text[BAL_FORMAT_MAX];
		bal_dec		v;
		int			places;

		seed = seed * 1103515245u + 12345u;
		places = (int) (seed >> 16) % 19;
		seed = seed * 1103515245u + 12345u;
		v = (bal_dec) (int64_t) ((uint64_t) seed * 2654435761u) * (bal_dec) ((seed >> 8) % 1000 + 1);
		for (int p = 0; p < BAL_SCALE_DIGITS - places; p++)
			v = (v / 10) * 10;
		if (i % 2)
			v = -v;
		bal_format(v, text);
		CHECK(feat_dec_to_double(v) == strtod(text, NULL));
	}
}

static void
test_median(void)
{
	double		odd[] = {3, 1, 2};
	double		even[] = {7.1, 1.5, 0.3, 2.25};
	double		one[] = {-4};

	CHECK(feat_median(odd, 3) == 2);
	CHECK(feat_median(even, 4) == 1.5 + 0.5 * (2.25 - 1.5));
	CHECK(feat_median(one, 1) == -4);
}

#define USEC INT64_C(1000000)
#define HOUR (3600 * USEC)
#define DAY (86400 * USEC)

static feat_row
R(bal_type type, double amount, double vat, int64_t logged_at)
{
	feat_row	r;

	memset(&r, 0, sizeof(r));
	r.type = type;
	r.amount = amount;
	r.vat = vat;
	r.balance_change = type == BAL_CREDIT ? amount - vat : -(amount - vat);
	r.logged_at = logged_at;
	r.minor_unit = 3;
	return r;
}

#define CAP_LOG 5				/* round(log10(1 + 86400)) */

/* the times, chain order through order[], infinities, the legacy direction */
static void
test_user_times(void)
{
	feat_row	rows[5];
	uint32_t	order[5] = {3, 0, 1, 2, 4};
	double		scratch[6 * 5];
	double		out[5 * FEAT_COUNT];
	double		ctx[5 * FEAT_CONTEXT_COUNT];

	CHECK(feat_scratch_size(5) == 6 * 5);
	rows[3] = R(BAL_DEBIT, 1, 0, FEAT_TIME_NOBEGIN);
	rows[0] = R(BAL_CREDIT, 2, 0, -USEC / 2);	/* 1969-12-31 23:59:59.5 */
	rows[1] = R(BAL_LEGACY, 3, 0, 20 * 60 * USEC);	/* 20 minutes later */
	rows[1].balance_change = -0.5;
	rows[2] = R(BAL_LEGACY, 3, 0, rows[1].logged_at);
	rows[2].balance_change = 0;		/* did not move: direction 0 */
	rows[4] = R(BAL_LEGACY, 5, 0, FEAT_TIME_NOEND);
	rows[4].balance_change = 2;
	feat_user(rows, order, 5, scratch, out, ctx);

	/* first row, after -infinity, before +infinity: held at a day */
	CHECK(out[3 * FEAT_COUNT + FEAT_LOG_SECONDS_SINCE_PREVIOUS] == CAP_LOG);
	CHECK(out[0 * FEAT_COUNT + FEAT_LOG_SECONDS_SINCE_PREVIOUS] == CAP_LOG);
	CHECK(ctx[0 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_SECONDS] == -1);
	CHECK(out[1 * FEAT_COUNT + FEAT_LOG_SECONDS_SINCE_PREVIOUS] == 3);	/* log10(1201.5) */
	CHECK(ctx[1 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_SECONDS] == 1200.5);
	CHECK(out[2 * FEAT_COUNT + FEAT_LOG_SECONDS_SINCE_PREVIOUS] == 0);
	CHECK(out[4 * FEAT_COUNT + FEAT_LOG_SECONDS_SINCE_PREVIOUS] == CAP_LOG);
	CHECK(feat_direction(&rows[1]) == -1);
	CHECK(feat_direction(&rows[2]) == 0);
	CHECK(feat_direction(&rows[4]) == 1);
	CHECK(feat_direction(&rows[0]) == 1);
	CHECK(feat_direction(&rows[3]) == -1);
	/* the same amount 0 s later but not the same direction: no repeat */
	CHECK(out[2 * FEAT_COUNT + FEAT_REPEATS_PREVIOUS] == 0);
	/* a row that moved nothing has no usual to compare with */
	CHECK(out[2 * FEAT_COUNT + FEAT_AMOUNT_VS_USUAL] == 0);
	CHECK(feat_hour_of(-USEC / 2) == 23);
	CHECK(feat_hour_of(3 * DAY + 7 * HOUR + 1) == 7);
	/* no context asked for: the features alone, the same */
	{
		double		again[5 * FEAT_COUNT];

		feat_user(rows, order, 5, scratch, again, NULL);
		CHECK(memcmp(again, out, sizeof(out)) == 0);
	}
}

/*
 * The usual amounts, VAT rate and hours come from the rows BEFORE the row
 * only: a large debit after three small ones stands out, and the debits
 * after it are not measured against it more than a median lets them be.
 */
static void
test_user_usual(void)
{
	enum { N = 16 };
	feat_row	rows[N];
	uint32_t	order[N];
	double		scratch[6 * N];
	double		out[N * FEAT_COUNT];
	double		ctx[N * FEAT_CONTEXT_COUNT];

	for (int i = 0; i < N; i++)
	{
		order[i] = (uint32_t) i;
		/* debits of 4, 5, 6, 4, ... at 09:00-11:00, 15 % VAT included */
		rows[i] = R(BAL_DEBIT, 4 + i % 3, (4 + i % 3) * 0.15 / 1.15, i * DAY + (9 + i % 3) * HOUR);
	}
	rows[3].amount = 71;			/* 14.2x the usual (median of 4, 5, 6: 5) */
	rows[5] = R(BAL_CREDIT, 20, 0, 5 * DAY + 10 * HOUR);	/* the first credit, VAT 0 */
	rows[6].amount = 13;			/* 2.6x the usual: log2 1.38, one doubling */
	rows[12].vat = rows[12].amount * 0.52;	/* wrong VAT */
	rows[13].logged_at = 13 * DAY + 3 * HOUR;	/* an hour never used */
	rows[15] = rows[14];			/* a double charge 12 s later */
	rows[15].logged_at += 12 * USEC;
	feat_user(rows, order, N, scratch, out, ctx);

	/* too little history: as usual */
	CHECK(out[0 * FEAT_COUNT + FEAT_AMOUNT_VS_USUAL] == 0);
	CHECK(out[2 * FEAT_COUNT + FEAT_AMOUNT_VS_USUAL] == 0);
	CHECK(ctx[2 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_USUAL_AMOUNT] == 0);
	CHECK(out[2 * FEAT_COUNT + FEAT_VAT_RATE_VS_USUAL] == 0);
	CHECK(isnan(ctx[2 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_USUAL_VAT_RATE]));
	/* 71 / 5 = 14.2: log2 3.83, four doublings */
	CHECK(out[3 * FEAT_COUNT + FEAT_AMOUNT_VS_USUAL] == 4);
	CHECK(ctx[3 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_USUAL_AMOUNT] == 5);
	CHECK(out[5 * FEAT_COUNT + FEAT_AMOUNT_VS_USUAL] == 0);	/* first credit */
	CHECK(out[5 * FEAT_COUNT + FEAT_VAT_RATE] == 0);
	/* the median of 4, 5, 6, 71 is 5.5: 71 moves it by half a step only */
	CHECK(ctx[4 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_USUAL_AMOUNT] == 5.5);
	CHECK(out[4 * FEAT_COUNT + FEAT_AMOUNT_VS_USUAL] == 0);
	CHECK(out[6 * FEAT_COUNT + FEAT_AMOUNT_VS_USUAL] == 1);
	/* the rate to 0.001, the difference to 0.01 */
	CHECK(out[11 * FEAT_COUNT + FEAT_VAT_RATE] == 0.13);
	CHECK(out[12 * FEAT_COUNT + FEAT_VAT_RATE] == 0.52);
	CHECK(fabs(out[12 * FEAT_COUNT + FEAT_VAT_RATE_VS_USUAL] - 0.39) < 1e-12);
	CHECK(ctx[12 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_USUAL_VAT_RATE] == 0.13);
	CHECK(out[11 * FEAT_COUNT + FEAT_VAT_RATE_VS_USUAL] == 0);
	/* hours: 9, 10, 11 used, none counted before the tenth row; 03:00 is 6 h
	 * from 09:00, 4 beyond the margin */
	CHECK(out[9 * FEAT_COUNT + FEAT_HOURS_FROM_USUAL] == 0);
	CHECK(ctx[9 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_HOURS_AWAY] == -1);
	CHECK(out[13 * FEAT_COUNT + FEAT_HOURS_FROM_USUAL] == 6 - FEAT_HOUR_MARGIN);
	CHECK(ctx[13 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_HOURS_AWAY] == 6);
	CHECK(out[14 * FEAT_COUNT + FEAT_HOURS_FROM_USUAL] == 0);
	CHECK(out[15 * FEAT_COUNT + FEAT_REPEATS_PREVIOUS] == 1);
	CHECK(out[14 * FEAT_COUNT + FEAT_REPEATS_PREVIOUS] == 0);
	CHECK(out[15 * FEAT_COUNT + FEAT_LOG_SECONDS_SINCE_PREVIOUS] == 1);	/* log10(13) */
	CHECK(ctx[15 * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_SECONDS] == 12);
}

/* one scale for the currencies: 10 BHD (3 decimals) is 100 SAR (2 decimals) */
static void
test_amount_scaled(void)
{
	feat_row	rows[3];
	uint32_t	order[3] = {0, 1, 2};
	double		scratch[18];
	double		out[3 * FEAT_COUNT];

	rows[0] = R(BAL_DEBIT, 10, 0, 0);
	rows[1] = R(BAL_DEBIT, 100, 0, HOUR);
	rows[1].minor_unit = 2;
	rows[2] = R(BAL_DEBIT, -1e100, 0, 2 * HOUR);	/* held money: finite */
	feat_user(rows, order, 3, scratch, out, NULL);
	CHECK(out[FEAT_AMOUNT_SCALED] == 1.0);	/* log10(11) to 0.1 */
	CHECK(out[FEAT_COUNT + FEAT_AMOUNT_SCALED] == out[FEAT_AMOUNT_SCALED]);
	CHECK(out[2 * FEAT_COUNT + FEAT_AMOUNT_SCALED] == 100);
}

/* a VAT on a tiny amount is held, so the scaler's variance stays finite */
static void
test_rate_bound(void)
{
	feat_row	rows[2];
	uint32_t	order[2] = {0, 1};
	double		scratch[12];
	double		out[2 * FEAT_COUNT];

	rows[0] = R(BAL_DEBIT, 1e-300, 5, 0);
	rows[1] = R(BAL_DEBIT, -1e-300, 5, HOUR);
	feat_user(rows, order, 2, scratch, out, NULL);
	CHECK(out[FEAT_VAT_RATE] == FEAT_RATE_BOUND);
	CHECK(out[FEAT_COUNT + FEAT_VAT_RATE] == -FEAT_RATE_BOUND);
}

/* the running median agrees with the sorted median on a long random history */
static void
test_running_median(void)
{
	enum { N = 301 };
	static feat_row rows[N];
	static uint32_t order[N];
	static double scratch[6 * N];
	static double out[N * FEAT_COUNT];
	static double ctx[N * FEAT_CONTEXT_COUNT];
	static double seen[N];
	uint64_t	x = 88172645463325252ULL;

	for (int i = 0; i < N; i++)
	{
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		order[i] = (uint32_t) i;
		rows[i] = R(BAL_DEBIT, 1 + (double) (x % 1000) / 10, 0, i * HOUR);
	}
	feat_user(rows, order, N, scratch, out, ctx);
	for (int i = FEAT_MIN_HISTORY; i < N; i += 7)
	{
		for (int k = 0; k < i; k++)
			seen[k] = rows[k].amount;
		/* percentile_cont's median: the mean of the middle two for an even count */
		CHECK_CLOSE(ctx[i * FEAT_CONTEXT_COUNT + FEAT_CONTEXT_USUAL_AMOUNT], feat_median(seen, (size_t) i),
					1e-15);
	}
}

int
main(void)
{
	test_names();
	test_money();
	test_dec_to_double();
	test_median();
	test_user_times();
	test_user_usual();
	test_amount_scaled();
	test_rate_bound();
	test_running_median();
	return unit_summary("anomaly_features");
}
