/*
 * Unit tests of src/core/anomaly_features.c (not features.c: glibc has a <features.h>): names and order, the money rule, exact
 * decimal to double conversion against strtod, the median (odd, even), and
 * the per-user features (chain predecessor, infinite times, pre-1970 hours,
 * legacy direction, the median floor).
 */
#include "anomaly_features.h"

#include <stdlib.h>

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
	CHECK_STR(feat_names[FEAT_AMOUNT], "amount");
	CHECK_STR(feat_names[FEAT_SECONDS_SINCE_PREVIOUS], "seconds_since_previous");
	CHECK_STR(feat_names[FEAT_DIRECTION], "direction");
	CHECK(FEAT_COUNT == 9);
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
#define DAY (86400 * USEC)

static void
test_user(void)
{
	/* stored out of chain order: order[] gives it */
	feat_row	rows[5];
	uint32_t	order[5] = {3, 0, 1, 2, 4};
	double		scratch[5];
	double		out[5 * FEAT_COUNT];

	memset(rows, 0, sizeof(rows));
	rows[3].logged_at = FEAT_TIME_NOBEGIN;
	rows[3].money[FEAT_AMOUNT] = 1;
	rows[3].type = BAL_DEBIT;
	rows[0].logged_at = -USEC / 2;	/* 1969-12-31 23:59:59.5 */
	rows[0].money[FEAT_AMOUNT] = 2;
	rows[0].type = BAL_CREDIT;
	rows[1].logged_at = 3 * DAY + 7 * 3600 * USEC + 1;
	rows[1].money[FEAT_AMOUNT] = 3;
	rows[1].money[FEAT_BALANCE_CHANGE] = -0.5;
	rows[1].type = BAL_LEGACY;
	rows[2].logged_at = rows[1].logged_at;
	rows[2].money[FEAT_AMOUNT] = 4;
	rows[2].type = BAL_LEGACY;	/* balance did not move: direction 0 */
	rows[4].logged_at = FEAT_TIME_NOEND;
	rows[4].money[FEAT_AMOUNT] = 5;
	rows[4].money[FEAT_BALANCE_CHANGE] = 2;
	rows[4].type = BAL_LEGACY;
	feat_user(rows, order, 5, scratch, out);

	CHECK(out[3 * FEAT_COUNT + FEAT_SECONDS_SINCE_PREVIOUS] == -1);
	CHECK(out[3 * FEAT_COUNT + FEAT_HOUR_OF_DAY] == 0);
	CHECK(out[0 * FEAT_COUNT + FEAT_SECONDS_SINCE_PREVIOUS] == -1);	/* after -infinity */
	CHECK(out[0 * FEAT_COUNT + FEAT_HOUR_OF_DAY] == 23);
	CHECK(out[1 * FEAT_COUNT + FEAT_SECONDS_SINCE_PREVIOUS] == 0.500001 + 7 * 3600 + 3 * 86400.0);
	CHECK(out[1 * FEAT_COUNT + FEAT_HOUR_OF_DAY] == 7);
	CHECK(out[2 * FEAT_COUNT + FEAT_SECONDS_SINCE_PREVIOUS] == 0);
	CHECK(out[4 * FEAT_COUNT + FEAT_SECONDS_SINCE_PREVIOUS] == -1);	/* infinity */
	CHECK(out[1 * FEAT_COUNT + FEAT_DIRECTION] == -1);
	CHECK(out[2 * FEAT_COUNT + FEAT_DIRECTION] == 0);
	CHECK(out[4 * FEAT_COUNT + FEAT_DIRECTION] == 1);
	CHECK(out[0 * FEAT_COUNT + FEAT_DIRECTION] == 1);
	CHECK(out[3 * FEAT_COUNT + FEAT_DIRECTION] == -1);
	/* median 3 */
	CHECK(out[2 * FEAT_COUNT + FEAT_AMOUNT_VS_USER_MEDIAN] == 4.0 / 3.0);
	CHECK(out[2 * FEAT_COUNT + FEAT_AMOUNT] == 4);
}

static void
test_median_floor(void)
{
	feat_row	rows[2];
	uint32_t	order[2] = {0, 1};
	double		scratch[2];
	double		out[2 * FEAT_COUNT];

	memset(rows, 0, sizeof(rows));
	rows[0].money[FEAT_AMOUNT] = 0.00004;
	rows[1].money[FEAT_AMOUNT] = 0.00002;
	rows[1].logged_at = 1;
	feat_user(rows, order, 2, scratch, out);
	CHECK(out[FEAT_AMOUNT_VS_USER_MEDIAN] == 0.00004);	/* divided by 1 */
	CHECK(out[FEAT_COUNT + FEAT_SECONDS_SINCE_PREVIOUS] == 1e-6);
}

int
main(void)
{
	test_names();
	test_money();
	test_dec_to_double();
	test_median();
	test_user();
	test_median_floor();
	return unit_summary("anomaly_features");
}
