/*
 * Unit tests of src/core/attribution.c and src/core/explanation.c: the bits
 * of a row sum to the mean log2(tree samples / leaf samples) over the trees,
 * an outlier's bits and direction go to the feature it is out in (above or
 * below), the causes group the features, and the sentences carry the numbers.
 */
#include "attribution.h"
#include "explanation.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#define NR 600
#define NF 4

static double rows[NR * NF];

static ifo_forest *
build(uint32_t ext, void **mem)
{
	ifo_params	p = {100, 256, ext};
	size_t		need = ifo_build_workspace(NR, NF, &p);
	rng_state	rng;

	rng_seed(&rng, 3);
	for (int i = 0; i < NR * NF; i++)
		rows[i] = rng_normal(&rng);
	*mem = malloc(need);
	rng_seed(&rng, 17);
	return ifo_build(rows, NULL, NR, NR, NF, &p, &rng, *mem, need);
}

/* the sum the attribution promises, walked independently */
static double
mean_isolation_bits(const ifo_forest *f, const double *x)
{
	double		sum = 0.0;

	for (uint32_t t = 0; t < f->n_trees; t++)
	{
		uint32_t	i = f->tree_start[t];
		double		root = f->nodes[i].size;

		while (f->nodes[i].feature >= 0)
		{
			const ifo_node *n = &f->nodes[i];
			double		v = f->normals ? 0.0 : x[n->feature];

			if (f->normals)
				for (uint32_t j = 0; j < NF; j++)
					v += f->normals[(size_t) i * NF + j] * x[j];
			i = v <= n->threshold ? n->left : n->right;
		}
		sum += log2(root / (f->nodes[i].size > 1 ? f->nodes[i].size : 1));
	}
	return sum / f->n_trees;
}

static void
test_bits(uint32_t ext)
{
	void	   *mem;
	ifo_forest *f = build(ext, &mem);
	double		out_high[NF] = {0.1, 9.0, -0.2, 0.0};
	double		out_low[NF] = {0.1, 0.0, -0.2, -9.0};
	double		usual[NF] = {0.0, 0.1, 0.0, 0.1};
	double		bits[NF];
	int			dir[NF];
	double		total;

	total = attr_row(f, out_high, bits, dir);
	CHECK_CLOSE(total, mean_isolation_bits(f, out_high), 1e-9);
	CHECK_CLOSE(bits[0] + bits[1] + bits[2] + bits[3], total, 1e-12);
	if (ext == 0)
	{
		CHECK(bits[1] > bits[0] + bits[2] + bits[3]);
		CHECK(dir[1] == 1);
	}
	total = attr_row(f, out_low, bits, dir);
	CHECK_CLOSE(total, mean_isolation_bits(f, out_low), 1e-9);
	if (ext == 0)
	{
		CHECK(bits[3] > bits[0] + bits[1] + bits[2]);
		CHECK(dir[3] == -1);
	}
	/* an outlier carries more bits than a row of the bulk */
	CHECK(total > attr_row(f, usual, bits, dir));
	free(mem);
}

static int
format_money(double value, int minor_unit, char *buf, size_t len, void *arg)
{
	(void) arg;
	return snprintf(buf, len, "%.*f", minor_unit, value);
}

/* a format whose text is longer than any double's: 600 digits */
static int
format_money_long(double value, int minor_unit, char *buf, size_t len, void *arg)
{
	char		text[601];

	(void) value;
	(void) minor_unit;
	(void) arg;
	memset(text, '7', 600);
	text[600] = '\0';
	return snprintf(buf, len, "%s", text);
}

static expl_row
row_of(const double *features, const double *context, double amount, int direction,
	   int minor_unit, const char *currency, int hour)
{
	expl_row	r;

	r.features = features;
	r.context = context;
	r.amount = amount;
	r.direction = direction;
	r.minor_unit = minor_unit;
	r.currency = currency;
	r.hour = hour;
	r.format_money = format_money;
	r.format_arg = NULL;
	return r;
}

static void
test_causes(void)
{
	double		bits[FEAT_COUNT] = {0};

	bits[FEAT_AMOUNT_VS_USUAL] = 2.0;
	bits[FEAT_VAT_RATE] = 1.0;
	bits[FEAT_VAT_RATE_VS_USUAL] = 0.5;
	/* a debit's amount is a spend, a credit's a top-up: 2 > 1.5 */
	CHECK(expl_top_cause(-1, bits) == EXPL_SPEND);
	CHECK(expl_top_cause(1, bits) == EXPL_TOPUP);
	CHECK(expl_top_cause(0, bits) == EXPL_OTHER);
	bits[FEAT_VAT_RATE] = 1.6;
	CHECK(expl_top_cause(-1, bits) == EXPL_VAT);
	bits[FEAT_REPEATS_PREVIOUS] = 1.0;
	bits[FEAT_LOG_SECONDS_SINCE_PREVIOUS] = 1.5;
	CHECK(expl_top_cause(-1, bits) == EXPL_REPEAT);
	bits[FEAT_HOURS_FROM_USUAL] = 9;
	CHECK(expl_top_cause(-1, bits) == EXPL_HOUR);
	CHECK_STR(expl_cause_names[EXPL_TOPUP], "top-up");
}

static void
test_sentences(void)
{
	double		f[FEAT_COUNT] = {0};
	double		c[FEAT_CONTEXT_COUNT] = {5.4, NAN, -1, -1};
	char		buf[256];
	expl_row	r;

	r = row_of(f, c, 76.68, -1, 3, "BHD", 9);
	expl_sentence(EXPL_SPEND, &r, buf, sizeof(buf));
	CHECK_STR(buf, "amount 14.2× this user's usual debit of 5.400 BHD");
	c[FEAT_CONTEXT_USUAL_AMOUNT] = 0;
	expl_sentence(EXPL_SPEND, &r, buf, sizeof(buf));
	CHECK_STR(buf, "amount of 76.680 BHD with fewer than 3 earlier debits of this user to compare");

	f[FEAT_VAT_RATE] = 0.52;
	r = row_of(f, c, 100, -1, 2, "SAR", 9);
	expl_sentence(EXPL_VAT, &r, buf, sizeof(buf));
	CHECK_STR(buf, "VAT 52 % of the amount");
	c[FEAT_CONTEXT_USUAL_VAT_RATE] = 0.15;
	expl_sentence(EXPL_VAT, &r, buf, sizeof(buf));
	CHECK_STR(buf, "VAT 52 % of the amount; this user's usual rate is 15 %");

	c[FEAT_CONTEXT_SECONDS] = 12;
	f[FEAT_REPEATS_PREVIOUS] = 1;
	r = row_of(f, c, 61.5, -1, 2, "SAR", 9);
	expl_sentence(EXPL_REPEAT, &r, buf, sizeof(buf));
	CHECK_STR(buf, "second debit of 61.50 SAR 12 s after an identical one");
	f[FEAT_REPEATS_PREVIOUS] = 0;
	c[FEAT_CONTEXT_SECONDS] = 3 * 3600;
	expl_sentence(EXPL_REPEAT, &r, buf, sizeof(buf));
	CHECK_STR(buf, "debit 3.0 h after this user's previous transaction");
	c[FEAT_CONTEXT_SECONDS] = -1;
	expl_sentence(EXPL_REPEAT, &r, buf, sizeof(buf));
	CHECK_STR(buf, "first debit of this user");

	c[FEAT_CONTEXT_HOURS_AWAY] = 6;
	r = row_of(f, c, 61.5, -1, 2, "SAR", 3);
	expl_sentence(EXPL_HOUR, &r, buf, sizeof(buf));
	CHECK_STR(buf, "debit at 03:00 UTC, 6 h from any hour this user used before");

	c[FEAT_CONTEXT_USUAL_AMOUNT] = 200;
	r = row_of(f, c, 2400, 1, 2, "SAR", 3);
	expl_sentence(EXPL_TOPUP, &r, buf, sizeof(buf));
	CHECK_STR(buf, "top-up 12.0× this user's usual top-up of 200.00 SAR");
	/* a short buffer is cut, not overrun */
	CHECK(expl_sentence(EXPL_TOPUP, &r, buf, 8) > 8);
	CHECK(strlen(buf) == 7);
	r = row_of(f, c, 0, 0, 2, "", 3);
	expl_sentence(EXPL_OTHER, &r, buf, sizeof(buf));
	CHECK_STR(buf, "transaction of 0.00, unlike this user's others");
}

/* money is never cut, whatever its size; multiples past a million are compact */
static void
test_huge_amounts(void)
{
	double		f[FEAT_COUNT] = {0};
	double		c[FEAT_CONTEXT_COUNT] = {0, NAN, -1, -1};
	char		buf[1024];
	char		money[EXPL_MONEY_LEN];
	char		want[1200];
	expl_row	r;
	int			n;

	/* a first debit of -5e70: the whole amount with its decimals */
	r = row_of(f, c, -5e70, -1, 2, "SAR", 9);
	snprintf(money, sizeof(money), "%.2f", 5e70);
	snprintf(want, sizeof(want), "amount of %s SAR with fewer than 3 earlier debits of this user to compare", money);
	n = expl_sentence(EXPL_SPEND, &r, buf, sizeof(buf));
	CHECK_STR(buf, want);
	CHECK(n == (int) strlen(want));
	CHECK(strlen(money) == 74);	/* 71 digits, a point, 2 decimals: more than the old 63 */
	/* the largest double with 18 decimals fills EXPL_MONEY_LEN less the sign and NUL */
	r = row_of(f, c, -DBL_MAX, 0, 18, "", 9);
	n = expl_sentence(EXPL_OTHER, &r, buf, sizeof(buf));
	CHECK(n == (int) strlen(buf));
	CHECK(strncmp(buf, "transaction of -179769313486231570", 34) == 0);
	CHECK(strlen(buf) == strlen("transaction of ") + 1 + 309 + 1 + 18 + strlen(", unlike this user's others"));
	/* a format longer than EXPL_MONEY_LEN is asked again with room: 600 digits, whole */
	r = row_of(f, c, 1, -1, 2, "SAR", 9);
	r.format_money = format_money_long;
	n = expl_sentence(EXPL_SPEND, &r, buf, sizeof(buf));
	CHECK(n == (int) strlen(buf));
	CHECK(strstr(buf, " SAR with fewer") != NULL && strspn(buf + strlen("amount of "), "7") == 600);

	/* multiples: one decimal below a million, mantissa and power of ten from there */
	expl_ratio(14.2, money, sizeof(money));
	CHECK_STR(money, "14.2");
	expl_ratio(999999.94, money, sizeof(money));
	CHECK_STR(money, "999999.9");
	expl_ratio(999999.96, money, sizeof(money));
	CHECK_STR(money, "1.0e6");
	expl_ratio(9.96e6, money, sizeof(money));
	CHECK_STR(money, "1.0e7");
	expl_ratio(2.5e12, money, sizeof(money));
	CHECK_STR(money, "2.5e12");
	expl_ratio(INFINITY, money, sizeof(money));
	CHECK_STR(money, "more than 1.8e308");
	c[FEAT_CONTEXT_USUAL_AMOUNT] = 1;
	r = row_of(f, c, -1e79, -1, 2, "SAR", 9);
	expl_sentence(EXPL_SPEND, &r, buf, sizeof(buf));
	CHECK_STR(buf, "amount 1.0e79× this user's usual debit of 1.00 SAR");
}

int
main(void)
{
	test_bits(0);
	test_bits(1);
	test_causes();
	test_sentences();
	test_huge_amounts();
	return unit_summary("attribution");
}
