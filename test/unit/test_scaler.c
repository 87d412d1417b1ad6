/*
 * test_scaler.c: StandardScaler core: the exact sums against a long-double
 * two-pass reference on hard data, correct rounding, any split merged in any
 * order equal to serial bit for bit, sklearn's constant rule, and the binary
 * forms' validation.
 */
#include <float.h>
#include <stdlib.h>

#include "rng.h"
#include "scaler.h"
#include "unit.h"

#define K 3
#define N 20000

static double data[N][K];

static void
fill_hard_data(void)
{
	rng_state	rng;

	rng_seed(&rng, 7);
	for (int i = 0; i < N; i++)
	{
		data[i][0] = 1e9 + rng_uniform(&rng);	/* huge offset, unit noise */
		data[i][1] = 1e-8 * rng_normal(&rng);	/* tiny scale */
		data[i][2] = 42.0;						/* constant */
	}
}

static scl_acc *
new_acc(void)
{
	scl_acc    *a = malloc(scl_acc_size(K));

	scl_acc_init(a, K);
	return a;
}

static void
test_exact_vs_two_pass(void)
{
	scl_acc    *a = new_acc();
	double		mean[K],
				var[K],
				scale[K];
	scl_model	m = {0, K, mean, var, scale};

	for (int i = 0; i < N; i++)
		scl_acc_add(a, data[i]);
	CHECK(scl_acc_finish(a, &m, NULL, 0) == 0);
	CHECK(m.n_samples == N);
	for (int j = 0; j < K; j++)
	{
		long double s = 0,
					ss = 0,
					mu;

		for (int i = 0; i < N; i++)
			s += data[i][j];
		mu = s / N;
		for (int i = 0; i < N; i++)
			ss += (data[i][j] - mu) * (data[i][j] - mu);
		CHECK_CLOSE(mean[j], (double) mu, 1e-14);
		if (j < 2)
			CHECK(fabs(var[j] - (double) (ss / N)) <= 1e-12 * (double) (ss / N));
	}
	CHECK(scale[2] == 1.0);		/* constant feature */
	CHECK(var[2] == 0.0);
	CHECK(scale[0] > 0.28 && scale[0] < 0.3);	/* sd of U(0,1) = 0.2887 */
	free(a);
}

/* Fits rows of one feature; returns scl_acc_finish's result. */
static int
fit_one(const double *x, int n, double *mean, double *var, double *scale, char *err)
{
	scl_acc    *a = malloc(scl_acc_size(1));
	scl_model	m = {0, 1, mean, var, scale};
	int			rc;

	scl_acc_init(a, 1);
	for (int i = 0; i < n; i++)
		scl_acc_add(a, &x[i]);
	rc = scl_acc_finish(a, &m, err, 200);
	free(a);
	return rc;
}

/* The encoded state of an accumulator (canonical: normalized digits). */
static uint8_t *
state_bytes(const scl_acc *a)
{
	uint8_t    *buf = malloc(scl_state_encoded_size(a->n_features));

	scl_state_encode(a, buf);
	return buf;
}

/* Any split of the rows, merged in any order: the same sums, bit for bit. */
static void
test_exact_merge(void)
{
	scl_acc    *serial = new_acc();
	uint8_t    *want;
	size_t		len = scl_state_encoded_size(K);
	double		mean[K],
				var[K],
				scale[K],
				mean2[K],
				var2[K],
				scale2[K];
	scl_model	m = {0, K, mean, var, scale},
				m2 = {0, K, mean2, var2, scale2};
	rng_state	rng;
	int			same = 1;

	for (int i = 0; i < N; i++)
		scl_acc_add(serial, data[i]);
	want = state_bytes(serial);
	CHECK(scl_acc_finish(serial, &m, NULL, 0) == 0);
	rng_seed(&rng, 3);
	for (int trial = 0; trial < 12; trial++)
	{
		int			parts = 1 + trial % 7;
		scl_acc    *p[7],
				   *merged = new_acc();
		uint8_t    *got;

		for (int k = 0; k < parts; k++)
			p[k] = new_acc();
		/* rows dealt at random, each part in reverse order */
		for (int i = N - 1; i >= 0; i--)
			scl_acc_add(p[rng_below(&rng, (uint64_t) parts)], data[i]);
		for (int k = parts - 1; k >= 0; k--)
			scl_acc_merge(merged, p[(k + trial) % parts]);
		got = state_bytes(merged);
		if (merged->n != N || memcmp(got, want, len) != 0)
			same = 0;
		CHECK(scl_acc_finish(merged, &m2, NULL, 0) == 0);
		if (memcmp(mean, mean2, sizeof mean) != 0 || memcmp(var, var2, sizeof var) != 0)
			same = 0;
		free(got);
		for (int k = 0; k < parts; k++)
			free(p[k]);
		free(merged);
	}
	CHECK(same);
	/* merging an empty partial changes nothing */
	{
		scl_acc    *empty = new_acc();
		uint8_t    *got;

		scl_acc_merge(serial, empty);
		got = state_bytes(serial);
		CHECK(memcmp(got, want, len) == 0 && serial->n == N);
		free(got);
		free(empty);
	}
	free(want);
	free(serial);
}

/* Correct rounding on values whose moments are known exactly. */
static void
test_correctly_rounded(void)
{
	double		mean,
				var,
				scale;
	char		err[200];

	/* 0.1, 0.2, 0.3: mean 0.2 and var 1/150 of the doubles' exact values */
	{
		double		x[3] = {0.1, 0.2, 0.3};
		long double s = 0,
					ss = 0;

		CHECK(fit_one(x, 3, &mean, &var, &scale, err) == 0);
		for (int i = 0; i < 3; i++)
			s += x[i];
		CHECK(mean == (double) (s / 3));
		for (int i = 0; i < 3; i++)
			ss += (x[i] - s / 3) * (x[i] - s / 3);
		CHECK(fabs(var - (double) (ss / 3)) <= 1e-16 * var);
	}
	/* a huge offset does not cost the noise its precision */
	{
		double		x[4] = {1e15 + 1, 1e15 + 2, 1e15 + 3, 1e15 + 4};

		CHECK(fit_one(x, 4, &mean, &var, &scale, err) == 0);
		CHECK(mean == 1e15 + 2.5 && var == 1.25);
	}
	/* subnormals: the smallest double and its double */
	{
		double		tiny = 4.9406564584124654e-324,
					x[2] = {tiny, 3 * tiny};

		CHECK(fit_one(x, 2, &mean, &var, &scale, err) == 0);
		CHECK(mean == 2 * tiny && var == 0.0);
	}
	/* negative values */
	{
		double		x[3] = {-1.5, -2.5, -3.5};

		CHECK(fit_one(x, 3, &mean, &var, &scale, err) == 0);
		CHECK(mean == -2.5 && var == 2.0 / 3.0);
	}
}

static void
test_overflow_refused(void)
{
	double		mean,
				var,
				scale;
	char		err[200] = "";
	rng_state	rng;

	/* +-1e200: the variance, 1e400, is beyond a double */
	{
		double		x[2] = {1e200, -1e200};

		CHECK(fit_one(x, 2, &mean, &var, &scale, err) == -1);
		CHECK(strstr(err, "variance of feature 1 overflows") != NULL);
	}
	/* the first row's shift overflows the difference: the mean is lost */
	{
		double		x[2] = {1.7e308, -1.7e308};

		CHECK(fit_one(x, 2, &mean, &var, &scale, err) == -1);
	}
	/* a wide spread a double can hold still fits */
	{
		double		x[2] = {1e150, -1e150};

		CHECK(fit_one(x, 2, &mean, &var, &scale, err) == 0);
		CHECK_CLOSE(scale, 1e150, 1e-15);
	}
	/* whatever a fit accepts, the validator accepts: extreme random magnitudes */
	rng_seed(&rng, 99);
	for (int trial = 0; trial < 5000; trial++)
	{
		double		x[4];
		int			n = 2 + (int) rng_below(&rng, 3);
		double		mean_arr[1],
					var_arr[1],
					scale_arr[1];
		scl_model	m = {0, 1, mean_arr, var_arr, scale_arr};

		for (int i = 0; i < n; i++)
			x[i] = (rng_uniform(&rng) - 0.5) * pow(10.0, (double) rng_below(&rng, 309));
		if (fit_one(x, n, mean_arr, var_arr, scale_arr, err) == 0)
		{
			m.n_samples = n;
			CHECK(scl_check(&m, err, sizeof err) == 0);
		}
	}
}

static void
test_constant_rule(void)
{
	/* sklearn: var <= n*eps*var + (n*mean*eps)^2 means constant */
	CHECK(scl_scale_of(0.0, 5.0, 10) == 1.0);
	CHECK(scl_scale_of(1e-30, 1e9, 1000) == 1.0);	/* below rounding noise of the mean */
	CHECK(scl_scale_of(4.0, 1e9, 1000) == 2.0);
	CHECK(scl_scale_of(1e-30, 0.0, 1000) == sqrt(1e-30));	/* tiny but real */
}

static void
test_transform(void)
{
	double		mean[2] = {1.0, -2.0},
				var[2] = {4.0, 0.0},
				scale[2] = {2.0, 1.0};
	scl_model	m = {3, 2, mean, var, scale};
	double		x[2] = {5.0, 3.0},
				out[2];

	scl_transform(&m, x, out);
	CHECK(out[0] == 2.0 && out[1] == 5.0);
}

static void
test_binary_form(void)
{
	double		mean[2] = {1.5, -2.0},
				var[2] = {4.0, 0.0},
				scale[2] = {2.0, 1.0},
				m2[2],
				v2[2],
				s2[2];
	scl_model	m = {3, 2, mean, var, scale},
				back = {0, 2, m2, v2, s2};
	size_t		len = scl_encoded_size(2);
	uint8_t    *buf = malloc(len),
			   *bad = malloc(len);
	char		err[200];

	scl_encode(&m, buf);
	CHECK(scl_peek_features(buf, len, err, sizeof err) == 2);
	CHECK(scl_decode(buf, len, &back, err, sizeof err) == 0);
	CHECK(back.n_samples == 3 && m2[0] == 1.5 && v2[0] == 4.0 && s2[1] == 1.0);
	for (size_t cut = 0; cut < len; cut++)
		CHECK(scl_decode(buf, cut, &back, err, sizeof err) == -1);
	memcpy(bad, buf, len);
	bad[0] = 'X';
	CHECK(scl_decode(bad, len, &back, err, sizeof err) == -1 && strstr(err, "magic"));
	memcpy(bad, buf, len);
	bad[4] = 9;
	CHECK(scl_decode(bad, len, &back, err, sizeof err) == -1 && strstr(err, "version"));
	memcpy(bad, buf, len);
	memset(bad + len - 8, 0, 8);	/* scale 0 */
	CHECK(scl_decode(bad, len, &back, err, sizeof err) == -1 && strstr(err, "scale"));
	memcpy(bad, buf, len);
	memset(bad + len - 8, 0, 8);
	bad[len - 8] = 1;			/* the smallest subnormal scale */
	CHECK(scl_decode(bad, len, &back, err, sizeof err) == -1 && strstr(err, "scale"));
	memcpy(bad, buf, len);
	memset(bad + SCL_HEADER_BYTES, 0xff, 8);	/* NaN mean */
	CHECK(scl_decode(bad, len, &back, err, sizeof err) == -1 && strstr(err, "mean"));
	memcpy(bad, buf, len);
	memset(bad + 16, 0, 8);		/* zero samples */
	CHECK(scl_decode(bad, len, &back, err, sizeof err) == -1 && strstr(err, "n_samples"));
	free(buf);
	free(bad);
}

static void
test_state_form(void)
{
	scl_acc    *a = new_acc(),
			   *back = new_acc();
	size_t		len = scl_state_encoded_size(K);
	uint8_t    *buf = malloc(len),
			   *bad = malloc(len),
			   *again = malloc(len);
	char		err[200];

	/* the empty state, then a running one: decode, encode, the same bytes */
	scl_state_encode(a, buf);
	CHECK(scl_state_decode(buf, len, back, err, sizeof err) == 0 && back->n == 0);
	for (int i = 0; i < 100; i++)
		scl_acc_add(a, data[i]);
	scl_state_encode(a, buf);
	CHECK(scl_state_peek_features(buf, len, err, sizeof err) == K);
	CHECK(scl_state_decode(buf, len, back, err, sizeof err) == 0);
	scl_state_encode(back, again);
	CHECK(memcmp(buf, again, len) == 0 && back->n == 100);
	for (size_t cut = 0; cut < len; cut++)
		CHECK(scl_state_decode(buf, cut, back, err, sizeof err) == -1);
#define STATE_DAMAGED(stmt, needle) \
	do { memcpy(bad, buf, len); stmt; CHECK(scl_state_decode(bad, len, back, err, sizeof err) == -1 && strstr(err, needle)); } while (0)
	STATE_DAMAGED(bad[0] = 'X', "magic");
	STATE_DAMAGED(bad[4] = 9, "version");
	STATE_DAMAGED(bad[6] = 1, "flags");
	STATE_DAMAGED(bad[12] = 1, "reserved");
	STATE_DAMAGED(memset(bad + 8, 0, 4), "n_features");
	STATE_DAMAGED(bad[8] = K + 1, "length");
	STATE_DAMAGED(memset(bad + 16, 0xff, 8), "out of range");
	/* a sum of squares below zero: its last digit negative */
	STATE_DAMAGED(memset(bad + SCL_STATE_HEADER_BYTES + 4 * (SCL_DIGITS - 1), 0xff, 4), "feature 1 are inconsistent");
	/* a sum of x far beyond what its sum of squares allows */
	STATE_DAMAGED(bad[SCL_STATE_HEADER_BYTES + 4 * (SCL_SUM_DIGITS - 2)] = 1, "feature 1 are inconsistent");
	STATE_DAMAGED(memset(bad + 16, 0, 8), "empty state");
#undef STATE_DAMAGED
	free(buf);
	free(bad);
	free(again);
	free(a);
	free(back);
}

int
main(void)
{
	fill_hard_data();
	test_exact_vs_two_pass();
	test_exact_merge();
	test_correctly_rounded();
	test_overflow_refused();
	test_constant_rule();
	test_transform();
	test_binary_form();
	test_state_form();
	return unit_summary("scaler");
}
