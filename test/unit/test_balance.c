/*
 * Unit tests of the balance core: exact decimals, tolerance, the
 * reconciliation rules and the per-user chain walk.
 */
#include "balance.h"
#include "unit.h"

static bal_dec
D(const char *s)
{
	bal_dec		v = 0;
	bal_status	st = bal_parse(s, strlen(s), &v);

	if (st != BAL_OK)
		fprintf(stderr, "D(%s): %s\n", s, bal_status_name(st));
	return v;
}

static const char *
F(bal_dec v)
{
	static char buf[4][BAL_FORMAT_MAX];
	static int	next;
	char	   *b = buf[next++ % 4];

	bal_format(v, b);
	return b;
}

static bal_status
P(const char *s)
{
	bal_dec		v;

	return bal_parse(s, strlen(s), &v);
}

static void
test_parse_format(void)
{
	const char *round[] = {"0", "1", "-1", "268.0000000001", "11608.930300000001",
		"0.000000000000000001", "-0.000000000000000001", "99999999999999999999.999999999999999999",
		"-99999999999999999999.999999999999999999", "1516.54", "-40", "0.5", "123456789012.5"};
	size_t		i;

	for (i = 0; i < sizeof(round) / sizeof(round[0]); i++)
		CHECK_STR(F(D(round[i])), round[i]);
	CHECK_STR(F(D("+12.50")), "12.5");
	CHECK_STR(F(D("-0.000")), "0");
	CHECK_STR(F(D("007")), "7");
	CHECK_STR(F(D(".5")), "0.5");
	CHECK_STR(F(D("5.")), "5");
	CHECK_STR(F(D("1.0000000000000000000000")), "1");	/* zeros past 18 places are exact */
	CHECK(P("100000000000000000000") == BAL_OVERFLOW);
	CHECK(P("-100000000000000000000.5") == BAL_OVERFLOW);
	CHECK(P("0.0000000000000000001") == BAL_TOO_PRECISE);
	CHECK(P("NaN") == BAL_SPECIAL);
	CHECK(P("-Infinity") == BAL_SPECIAL);
	CHECK(P("") == BAL_SYNTAX);
	CHECK(P("-") == BAL_SYNTAX);
	CHECK(P(".") == BAL_SYNTAX);
	CHECK(P("1e5") == BAL_SYNTAX);
	CHECK(P("1.2.3") == BAL_SYNTAX);
	CHECK(P(" 1") == BAL_SYNTAX);
}

static void
test_nbase(void)
{
	bal_dec		v;
	uint16_t	d1[] = {268, 0, 0, 100};	/* 268.0000000001: weight 0 */
	uint16_t	d2[] = {1, 1608, 9303, 0, 1};	/* 11608.930300000001 */
	uint16_t	d3[] = {100};		/* 1e-18 = 100 * 10000^-5 */
	uint16_t	d4[] = {1};			/* 1e-20: too precise */
	uint16_t	d5[] = {9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999, 9999};
	uint16_t	d6[] = {1, 0, 0, 0, 0, 0};	/* 10^20 */
	uint16_t	d7[] = {10000};

	CHECK(bal_from_nbase(d1, 4, 0, false, &v) == BAL_OK);
	CHECK_STR(F(v), "268.0000000001");
	CHECK(bal_from_nbase(d2, 5, 1, true, &v) == BAL_OK);
	CHECK_STR(F(v), "-11608.930300000001");
	CHECK(bal_from_nbase(d3, 1, -5, false, &v) == BAL_OK);
	CHECK_STR(F(v), "0.000000000000000001");
	CHECK(bal_from_nbase(d4, 1, -5, false, &v) == BAL_TOO_PRECISE);
	CHECK(bal_from_nbase(d5, 9, 4, false, &v) == BAL_OK);
	CHECK_STR(F(v), "99999999999999999999.9999999999999999");
	CHECK(bal_from_nbase(d6, 6, 5, false, &v) == BAL_OVERFLOW);
	CHECK(bal_from_nbase(d5, 4, 4, false, &v) == BAL_OK);	/* fast path at its edge */
	CHECK_STR(F(v), "99999999999999990000");
	CHECK(bal_from_nbase(d5, 4, 5, false, &v) == BAL_OVERFLOW);
	CHECK(bal_from_nbase(d5, 2, -3, true, &v) == BAL_OK);
	CHECK_STR(F(v), "-0.0000000099999999");
	CHECK(bal_from_nbase(d6, 1, 30, false, &v) == BAL_OVERFLOW);
	CHECK(bal_from_nbase(d7, 1, 0, false, &v) == BAL_SYNTAX);
	CHECK(bal_from_nbase(NULL, 0, 0, false, &v) == BAL_OK);
	CHECK(v == 0);
}

/* bal_from_nbase agrees with bal_parse of the same number written out in
 * decimal, on pseudo-random digit strings around both paths and the limits. */
static void
test_nbase_vs_parse(void)
{
	uint32_t	seed = 12345;
	int			n;
	int			agree = 0;

	for (n = 0; n < 20000; n++)
	{
		uint16_t	d[6];
		int			nd,
					weight,
					i,
					len = 0;
		bool		neg;
		char		text[128];
		bal_dec		a = 0,
					b = 0;
		bal_status	sa,
					sb;

		seed = seed * 1103515245u + 12345u;
		nd = 1 + (int) ((seed >> 16) % 6);
		seed = seed * 1103515245u + 12345u;
		weight = (int) ((seed >> 16) % 13) - 7;
		neg = (seed >> 8) & 1;
		for (i = 0; i < nd; i++)
		{
			seed = seed * 1103515245u + 12345u;
			d[i] = (uint16_t) ((seed >> 16) % 10000);
			if ((seed & 7) == 0)
				d[i] = (uint16_t) (d[i] / 100 * 100);	/* whole at 18 places */
		}
		/* write sum d[i] * 10000^(weight - i) as a decimal string */
		if (neg)
			text[len++] = '-';
		{
			int			hi = weight > 0 ? weight : 0;
			int			lo = weight - nd + 1 < 0 ? weight - nd + 1 : 0;
			int			g;

			for (g = hi; g >= lo; g--)
			{
				int			idx = weight - g;
				int			v = (idx >= 0 && idx < nd) ? d[idx] : 0;

				if (g == -1)
					text[len++] = '.';
				len += sprintf(text + len, "%04d", v);
			}
		}
		text[len] = '\0';
		sa = bal_from_nbase(d, nd, weight, neg, &a);
		sb = bal_parse(text, strlen(text), &b);
		if (sa == sb && (sa != BAL_OK || a == b))
			agree++;
		else
			fprintf(stderr, "nbase/parse disagree on %s: %s vs %s\n", text,
					bal_status_name(sa), bal_status_name(sb));
	}
	CHECK(agree == 20000);
}

static void
test_arith_ops(void)
{
	bal_dec		r;
	bal_dec		max = D("99999999999999999999.999999999999999999");

	CHECK(bal_add(D("0.1"), D("0.2"), &r) == BAL_OK);
	CHECK_STR(F(r), "0.3");
	CHECK(bal_sub(D("-40"), D("268.0000000001"), &r) == BAL_OK);
	CHECK_STR(F(r), "-308.0000000001");
	CHECK(bal_add(max, D("0.000000000000000001"), &r) == BAL_OVERFLOW);
	CHECK(bal_sub(-max, D("1"), &r) == BAL_OVERFLOW);
	CHECK(bal_sub(max, max, &r) == BAL_OK && r == 0);
	CHECK(bal_cmp(D("-1"), D("0")) < 0);
	CHECK(bal_cmp(D("2.5"), D("2.50")) == 0);
	CHECK(bal_abs(D("-3.25")) == D("3.25"));
}

static void
test_tolerance(void)
{
	CHECK_STR(F(bal_tolerance(3)), "0.0005");
	CHECK_STR(F(bal_tolerance(2)), "0.005");
	CHECK_STR(F(bal_tolerance(0)), "0.5");
	CHECK_STR(F(bal_tolerance(6)), "0.0000005");
	CHECK_STR(F(bal_tolerance(-1)), "0.005");	/* unknown: 2 decimals */
	CHECK_STR(F(bal_tolerance(99)), "0.005");
}

static void
test_rules(void)
{
	bal_check	c;

	/* the sample's arithmetic break: DEBIT 34.5 from 73 logged as 31.5 (SAR) */
	c = bal_check_arithmetic(BAL_DEBIT, D("34.5"), D("0"), D("73"), D("31.5"), bal_tolerance(2));
	CHECK(c.finding == BAL_ARITHMETIC);
	CHECK_STR(F(c.expected), "38.5");
	CHECK_STR(F(c.actual), "31.5");
	CHECK_STR(F(c.difference), "-7");
	/* CREDIT with VAT: 71.5 + (55 - 5) = 121.5 */
	c = bal_check_arithmetic(BAL_CREDIT, D("55"), D("5"), D("71.5"), D("121.5"), bal_tolerance(3));
	CHECK(c.finding == BAL_NONE && c.difference == 0);
	c = bal_check_arithmetic(BAL_CREDIT, D("1516.54"), D("197.81"), D("411"), D("1729.73"), bal_tolerance(2));
	CHECK(c.finding == BAL_NONE);
	/* drift 1e-10 (BHD) */
	c = bal_check_arithmetic(BAL_DEBIT, D("42"), D("0"), D("310"), D("268.0000000001"), bal_tolerance(3));
	CHECK(c.finding == BAL_DRIFT);
	CHECK_STR(F(c.difference), "0.0000000001");
	/* boundary: exactly the tolerance is a break, just below is drift */
	c = bal_check_arithmetic(BAL_DEBIT, D("1"), D("0"), D("10"), D("9.0005"), bal_tolerance(3));
	CHECK(c.finding == BAL_ARITHMETIC);
	c = bal_check_arithmetic(BAL_DEBIT, D("1"), D("0"), D("10"), D("9.000499999999"), bal_tolerance(3));
	CHECK(c.finding == BAL_DRIFT);
	c = bal_check_arithmetic(BAL_CREDIT, D("1"), D("0"), D("10"), D("10.995"), bal_tolerance(2));
	CHECK(c.finding == BAL_ARITHMETIC);
	CHECK_STR(F(c.difference), "-0.005");
	c = bal_check_arithmetic(BAL_CREDIT, D("1"), D("0"), D("10"), D("11.5"), bal_tolerance(0));
	CHECK(c.finding == BAL_ARITHMETIC);
	c = bal_check_arithmetic(BAL_CREDIT, D("1"), D("0"), D("10"), D("11.4999"), bal_tolerance(0));
	CHECK(c.finding == BAL_DRIFT);
	/* legacy: direction of new - old */
	c = bal_check_arithmetic(BAL_LEGACY, D("5"), D("0"), D("87.5"), D("82.5"), bal_tolerance(3));
	CHECK(c.finding == BAL_NONE);
	c = bal_check_arithmetic(BAL_LEGACY, D("5"), D("0"), D("82.5"), D("87.5"), bal_tolerance(3));
	CHECK(c.finding == BAL_NONE);
	c = bal_check_arithmetic(BAL_LEGACY, D("5"), D("0"), D("82.5"), D("88.5"), bal_tolerance(3));
	CHECK(c.finding == BAL_ARITHMETIC);
	CHECK_STR(F(c.expected), "87.5");
	CHECK_STR(F(c.difference), "1");
	c = bal_check_arithmetic(BAL_LEGACY, D("5"), D("0"), D("10"), D("10"), bal_tolerance(2));
	CHECK(c.finding == BAL_ARITHMETIC);
	CHECK_STR(F(c.difference), "-5");
	/* zero and negative values */
	c = bal_check_arithmetic(BAL_DEBIT, D("308.0000000001"), D("0"), D("268.0000000001"), D("-40"), bal_tolerance(3));
	CHECK(c.finding == BAL_NONE);
	c = bal_check_arithmetic(BAL_DEBIT, D("0"), D("0"), D("0"), D("0"), bal_tolerance(2));
	CHECK(c.finding == BAL_NONE);
	c = bal_check_arithmetic(BAL_CREDIT, D("-5"), D("0"), D("-10"), D("-15"), bal_tolerance(2));
	CHECK(c.finding == BAL_NONE);
	/* overflow of the expectation is reported, not wrapped */
	c = bal_check_arithmetic(BAL_CREDIT, D("99999999999999999999"), D("0"), D("99999999999999999999"), D("1"), bal_tolerance(2));
	CHECK(c.finding == BAL_OUT_OF_RANGE);
	c = bal_check_arithmetic(BAL_DEBIT, D("99999999999999999999"), D("-99999999999999999999"), D("0"), D("1"), bal_tolerance(2));
	CHECK(c.finding == BAL_OUT_OF_RANGE);
	/* chain */
	c = bal_check_chain(D("59"), D("84"), bal_tolerance(2));
	CHECK(c.finding == BAL_CHAIN);
	CHECK_STR(F(c.expected), "59");
	CHECK_STR(F(c.actual), "84");
	CHECK_STR(F(c.difference), "25");
	c = bal_check_chain(D("59"), D("59.001"), bal_tolerance(2));
	CHECK(c.finding == BAL_CHAIN_DRIFT);
	c = bal_check_chain(D("59"), D("59.0"), bal_tolerance(2));
	CHECK(c.finding == BAL_NONE);
	CHECK(bal_finding_is_break(BAL_CHAIN) && bal_finding_is_break(BAL_ARITHMETIC));
	CHECK(!bal_finding_is_break(BAL_DRIFT) && !bal_finding_is_break(BAL_CHAIN_DRIFT));
	CHECK_STR(bal_finding_name(BAL_CHAIN_DRIFT), "chain_drift");
}

/* Two users walked one after the other, several breaks each. */
static void
test_walk(void)
{
	struct row
	{
		int			user;
		const char *old_balance,
				   *new_balance;
		bal_finding want;
		bool		want_first;
	}			rows[] = {
		{1, "100", "90", BAL_NONE, false},
		{1, "95", "85", BAL_CHAIN, true},
		{1, "85", "80", BAL_NONE, false},
		{1, "70", "60", BAL_CHAIN, false},
		{1, "60.0001", "50", BAL_CHAIN_DRIFT, false},
		{2, "500", "400", BAL_NONE, false},	/* a new user: no chain with user 1 */
		{2, "400", "300", BAL_NONE, false},
		{2, "301", "200", BAL_CHAIN, true},
	};
	bal_walk	w;
	int			user = 0;
	size_t		i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
	{
		bal_check	c;

		if (rows[i].user != user)
		{
			bal_walk_init(&w);
			user = rows[i].user;
		}
		c = bal_walk_chain(&w, true, D(rows[i].old_balance), D(rows[i].new_balance), bal_tolerance(2));
		CHECK(c.finding == rows[i].want);
		CHECK(bal_walk_first_break(&w, c.finding) == rows[i].want_first);
	}

	/* an unrepresentable row resets the chain instead of inventing a break */
	bal_walk_init(&w);
	CHECK(bal_walk_chain(&w, true, D("1"), D("2"), bal_tolerance(2)).finding == BAL_NONE);
	CHECK(bal_walk_chain(&w, false, 0, 0, bal_tolerance(2)).finding == BAL_NONE);
	CHECK(bal_walk_chain(&w, true, D("7"), D("8"), bal_tolerance(2)).finding == BAL_NONE);
	CHECK(bal_walk_chain(&w, true, D("9"), D("8"), bal_tolerance(2)).finding == BAL_CHAIN);
	/* drift never counts as the first break; out_of_range does */
	bal_walk_init(&w);
	CHECK(!bal_walk_first_break(&w, BAL_DRIFT));
	CHECK(bal_walk_first_break(&w, BAL_OUT_OF_RANGE));
	CHECK(!bal_walk_first_break(&w, BAL_ARITHMETIC));
}

int
main(void)
{
	test_parse_format();
	test_nbase();
	test_nbase_vs_parse();
	test_arith_ops();
	test_tolerance();
	test_rules();
	test_walk();
	return unit_summary("balance");
}
