/*
 * Unit tests of src/core/report_totals.c: a user's figures per currency
 * (direction rule, legacy rows, overdrafts, exact sums, inexact inputs, two
 * currencies never added), the per (currency, UTC day) figures with the
 * liability change across days and currencies, and the overdraft runs of
 * one currency each with their lowest balance.
 */
#include "report_totals.h"

#include <stdlib.h>

#include "unit.h"

#define HOUR INT64_C(3600000000)
#define DAY (24 * HOUR)

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

static bool
is(rt_money m, const char *want)
{
	return m.exact && bal_cmp(m.value, D(want)) == 0;
}

static walk_row
R(uint32_t ref, int64_t at, uint32_t currency, bal_type type, const char *amount,
  const char *vat, const char *old_balance, const char *new_balance)
{
	walk_row	r;

	memset(&r, 0, sizeof(r));
	r.ref = ref;
	r.logged_at = at;
	r.currency = currency;
	r.type = type;
	r.amount = D(amount);
	r.vat = D(vat);
	r.old_balance = D(old_balance);
	r.new_balance = D(new_balance);
	r.balances_valid = r.amounts_valid = true;
	r.new_balance_sign = (int8_t) bal_cmp(r.new_balance, 0);
	r.new_vs_old_sign = (int8_t) bal_cmp(r.new_balance, r.old_balance);
	return r;
}

typedef struct users_seen
{
	int			n;
	rt_user		u[4];
} users_seen;

static void
record_user(void *ctx, const rt_user *user)
{
	users_seen *s = ctx;

	if (s->n < 4)
		s->u[s->n] = *user;
	s->n++;
}

/* The figures of rows[0..n) in one currency (the test's rows have one). */
static rt_user
one_currency(const walk_row *rows, size_t n, rt_scratch *scratch)
{
	users_seen	s;

	memset(&s, 0, sizeof(s));
	rt_users(rows, n, scratch, record_user, &s);
	CHECK(s.n == 1);
	return s.u[0];
}

static void
test_user(void)
{
	walk_row	rows[6];
	rt_user		u;
	users_seen	s;
	rt_scratch	scratch;
	void	   *mem = aligned_alloc(16, (rt_scratch_bytes(3) + 15) / 16 * 16);

	rt_scratch_init(&scratch, mem, 3);
	rows[0] = R(0, 1, 1, BAL_CREDIT, "11", "1", "5", "15");
	rows[1] = R(1, 2, 1, BAL_DEBIT, "20", "0", "15", "-5");
	/* legacy: no type, the balance did not go down: a credit */
	rows[2] = R(2, 3, 1, BAL_LEGACY, "7.5", "0.5", "-5", "2");
	/* legacy whose balance went down: a debit */
	rows[3] = R(3, 4, 1, BAL_LEGACY, "0.000000000000000001", "0", "2", "1.999999999999999999");
	u = one_currency(rows, 4, &scratch);
	CHECK(u.transactions == 4);
	CHECK(u.first_logged_at == 1 && u.last_logged_at == 4);
	CHECK(u.currency == 1);
	CHECK(is(u.opening_balance, "5"));
	CHECK(is(u.closing_balance, "1.999999999999999999"));
	CHECK(u.overdrafts == 1);
	CHECK(is(u.credits_total, "18.5"));
	CHECK(is(u.credits_net, "17"));
	CHECK(is(u.debits_total, "20.000000000000000001"));
	CHECK(is(u.debits_net, "20.000000000000000001"));
	CHECK(is(u.vat_total, "1.5"));

	/* a row whose amounts the exact math cannot hold: its sums are inexact,
	 * the others stay exact */
	rows[1].amounts_valid = false;
	u = one_currency(rows, 4, &scratch);
	CHECK(!u.debits_total.exact && !u.debits_net.exact && !u.vat_total.exact);
	CHECK(is(u.credits_total, "18.5"));
	/* unrepresentable balances: the sign rules still decide */
	rows[1].amounts_valid = true;
	rows[3].balances_valid = false;
	rows[3].new_balance_sign = -1;
	rows[3].new_vs_old_sign = 1;
	u = one_currency(rows, 4, &scratch);
	CHECK(!u.closing_balance.exact);
	CHECK(u.overdrafts == 2);
	CHECK(is(u.credits_total, "18.500000000000000001"));
	/* a sum that leaves the range */
	rows[0] = R(0, 1, 0, BAL_CREDIT, "99999999999999999999", "0", "0", "1");
	rows[1] = R(1, 2, 0, BAL_CREDIT, "99999999999999999999", "0", "0", "1");
	u = one_currency(rows, 2, &scratch);
	CHECK(!u.credits_total.exact && is(u.debits_total, "0"));

	/*
	 * Two currencies interleaved: one figure per currency, in the order
	 * they first appear, none adding money of the other; opening and
	 * closing of the currency's own first and last rows.
	 */
	rows[0] = R(0, 1, 2, BAL_CREDIT, "100", "0", "0", "100");
	rows[1] = R(1, 2, 0, BAL_CREDIT, "5", "0", "0", "5");
	rows[2] = R(2, 3, 2, BAL_DEBIT, "30", "2", "100", "72");
	rows[3] = R(3, 4, 0, BAL_DEBIT, "7", "0", "5", "-2");
	rows[4] = R(4, 5, 2, BAL_CREDIT, "1", "0", "72", "73");
	memset(&s, 0, sizeof(s));
	rt_users(rows, 5, &scratch, record_user, &s);
	CHECK(s.n == 2);
	CHECK(s.u[0].currency == 2 && s.u[0].transactions == 3 && s.u[0].first_logged_at == 1
		  && s.u[0].last_logged_at == 5 && is(s.u[0].opening_balance, "0")
		  && is(s.u[0].closing_balance, "73") && is(s.u[0].credits_total, "101")
		  && is(s.u[0].debits_total, "30") && is(s.u[0].debits_net, "28")
		  && is(s.u[0].vat_total, "2") && s.u[0].overdrafts == 0);
	CHECK(s.u[1].currency == 0 && s.u[1].transactions == 2 && s.u[1].first_logged_at == 2
		  && s.u[1].last_logged_at == 4 && is(s.u[1].opening_balance, "0")
		  && is(s.u[1].closing_balance, "-2") && is(s.u[1].credits_total, "5")
		  && is(s.u[1].debits_total, "7") && is(s.u[1].vat_total, "0") && s.u[1].overdrafts == 1);
	/* the next user starts from nothing */
	rows[0] = R(5, 9, 0, BAL_CREDIT, "1", "0", "10", "11");
	u = one_currency(rows, 1, &scratch);
	CHECK(u.transactions == 1 && is(u.opening_balance, "10") && is(u.credits_total, "1")
		  && is(u.debits_total, "0") && u.overdrafts == 0);
	free(mem);
}

typedef struct days_seen
{
	int			n;
	rt_day		d[16];
} days_seen;

static void
record_day(void *ctx, const rt_day *day)
{
	days_seen  *s = ctx;

	if (s->n < 16)
		s->d[s->n] = *day;
	s->n++;
}

static const rt_day *
find_day(const days_seen *s, uint32_t currency, int32_t day)
{
	int			i;

	for (i = 0; i < s->n && i < 16; i++)
		if (s->d[i].currency == currency && s->d[i].day == day)
			return &s->d[i];
	return NULL;
}

static void
test_days(void)
{
	walk_row	rows[6];
	days_seen	s;
	rt_scratch	scratch;
	void	   *mem = aligned_alloc(16, (rt_scratch_bytes(3) + 15) / 16 * 16);
	const rt_day *d;

	CHECK(rt_day_of(0) == 0);
	CHECK(rt_day_of(DAY - 1) == 0);
	CHECK(rt_day_of(DAY) == 1);
	CHECK(rt_day_of(-1) == -1);	/* 1999-12-31 */
	CHECK(rt_day_of(-DAY) == -1);

	rt_scratch_init(&scratch, mem, 3);
	/* day 0: two rows in currency 0, one in 2; day 2: currency 0 only */
	rows[0] = R(0, 1 * HOUR, 0, BAL_CREDIT, "10", "1", "0", "9");
	rows[1] = R(1, 2 * HOUR, 2, BAL_CREDIT, "4", "0", "0", "4");
	rows[2] = R(2, 3 * HOUR, 0, BAL_DEBIT, "20", "0", "9", "-11");
	rows[3] = R(3, 2 * DAY, 0, BAL_CREDIT, "15", "0", "-11", "4");
	rows[4] = R(4, 2 * DAY + HOUR, 0, BAL_DEBIT, "1", "0", "4", "3");
	memset(&s, 0, sizeof(s));
	rt_days(rows, 5, &scratch, record_day, &s);
	CHECK(s.n == 3);
	d = find_day(&s, 0, 0);
	CHECK(d != NULL && d->transactions == 2 && is(d->credits, "10") && is(d->debits, "20")
		  && is(d->vat, "1") && d->overdrafts == 1 && is(d->liability_change, "-11"));
	d = find_day(&s, 2, 0);
	CHECK(d != NULL && d->transactions == 1 && is(d->liability_change, "4"));
	/* the change from day 0's closing in that currency (-11) to 3 */
	d = find_day(&s, 0, 2);
	CHECK(d != NULL && d->transactions == 2 && is(d->liability_change, "14") && d->overdrafts == 0);

	/* the next user starts from nothing: no previous closing carried over */
	rows[0] = R(5, 2 * DAY, 0, BAL_CREDIT, "1", "0", "100", "101");
	memset(&s, 0, sizeof(s));
	rt_days(rows, 1, &scratch, record_day, &s);
	CHECK(s.n == 1 && is(s.d[0].liability_change, "101"));

	/* an unrepresentable closing makes that day's change and the next inexact */
	rows[0] = R(0, 1 * HOUR, 1, BAL_CREDIT, "1", "0", "0", "1");
	rows[0].balances_valid = false;
	rows[1] = R(1, DAY + 1, 1, BAL_CREDIT, "1", "0", "1", "2");
	rows[2] = R(2, 2 * DAY + 1, 1, BAL_CREDIT, "1", "0", "2", "3");
	memset(&s, 0, sizeof(s));
	rt_days(rows, 3, &scratch, record_day, &s);
	CHECK(s.n == 3 && !s.d[0].liability_change.exact && !s.d[1].liability_change.exact
		  && is(s.d[2].liability_change, "1") && is(s.d[0].credits, "1"));
	free(mem);
}

typedef struct episodes_seen
{
	int			n;
	rt_episode	e[8];
} episodes_seen;

static void
record_episode(void *ctx, const rt_episode *e)
{
	episodes_seen *s = ctx;

	if (s->n < 8)
		s->e[s->n] = *e;
	s->n++;
}

static void
test_episodes(void)
{
	walk_row	rows[8];
	episodes_seen s;
	rt_scratch	scratch;
	void	   *mem = aligned_alloc(16, (rt_scratch_bytes(2) + 15) / 16 * 16);

	rt_scratch_init(&scratch, mem, 2);
	/*
	 * A run is of one currency: the rows in another leave it open, neither
	 * continuing nor ending it, and its lowest balance is of its own rows.
	 */
	rows[0] = R(0, 1, 0, BAL_CREDIT, "1", "0", "0", "1");
	rows[1] = R(1, 2, 1, BAL_DEBIT, "3", "0", "0", "-2");
	rows[2] = R(2, 3, 0, BAL_DEBIT, "8", "0", "1", "-7");
	rows[3] = R(3, 4, 1, BAL_CREDIT, "1", "0", "-2", "-1");
	rows[4] = R(4, 5, 0, BAL_CREDIT, "7", "0", "-7", "0");	/* zero is not overdrawn */
	rows[5] = R(5, 6, 0, BAL_DEBIT, "1", "0", "0", "-1");
	memset(&s, 0, sizeof(s));
	rt_episodes(rows, 6, &scratch, record_episode, &s);
	CHECK(s.n == 3);
	/* currency 0's first run ends first, at its next row in currency 0 */
	CHECK(s.e[0].currency == 0 && s.e[0].started_at == 3 && s.e[0].ended && s.e[0].ended_at == 5
		  && s.e[0].transactions == 1 && s.e[0].first == &rows[2] && s.e[0].last == &rows[2]
		  && is(s.e[0].low_balance, "-7"));
	/* then the runs still open, in the order they started */
	CHECK(s.e[1].currency == 1 && s.e[1].started_at == 2 && !s.e[1].ended
		  && s.e[1].transactions == 2 && s.e[1].first == &rows[1] && s.e[1].last == &rows[3]
		  && is(s.e[1].low_balance, "-2"));
	CHECK(s.e[2].currency == 0 && s.e[2].started_at == 6 && !s.e[2].ended
		  && s.e[2].transactions == 1 && is(s.e[2].low_balance, "-1"));
	/* no overdraft, no run */
	memset(&s, 0, sizeof(s));
	rt_episodes(rows, 1, &scratch, record_episode, &s);
	CHECK(s.n == 0);
	/* an overdrawn row whose balance the exact math cannot hold: that run's
	 * lowest is inexact, the other currency's is not */
	rows[4] = R(4, 5, 0, BAL_DEBIT, "1", "0", "-7", "-8");
	rows[4].balances_valid = false;
	rows[4].new_balance_sign = -1;
	memset(&s, 0, sizeof(s));
	rt_episodes(rows, 5, &scratch, record_episode, &s);
	CHECK(s.n == 2 && s.e[0].currency == 1 && is(s.e[0].low_balance, "-2")
		  && s.e[1].currency == 0 && s.e[1].transactions == 2 && !s.e[1].low_balance.exact);
	free(mem);
}

int
main(void)
{
	test_user();
	test_days();
	test_episodes();
	return unit_summary("report_totals");
}
