/*
 * Unit tests of src/core/report_totals.c: a user's figures (direction rule,
 * legacy rows, overdrafts, exact sums, inexact inputs), the per (currency,
 * UTC day) figures with the liability change across days and currencies,
 * and the overdraft runs with their lowest balance per currency.
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

static void
test_user(void)
{
	walk_row	rows[4];
	rt_user		u;

	rows[0] = R(0, 1, 0, BAL_CREDIT, "11", "1", "5", "15");
	rows[1] = R(1, 2, 0, BAL_DEBIT, "20", "0", "15", "-5");
	/* legacy: no type, the balance did not go down: a credit */
	rows[2] = R(2, 3, 1, BAL_LEGACY, "7.5", "0.5", "-5", "2");
	/* legacy whose balance went down: a debit */
	rows[3] = R(3, 4, 1, BAL_LEGACY, "0.000000000000000001", "0", "2", "1.999999999999999999");
	rt_user_figures(rows, 4, &u);
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
	rt_user_figures(rows, 4, &u);
	CHECK(!u.debits_total.exact && !u.debits_net.exact && !u.vat_total.exact);
	CHECK(is(u.credits_total, "18.5"));
	/* unrepresentable balances: the sign rules still decide */
	rows[1].amounts_valid = true;
	rows[3].balances_valid = false;
	rows[3].new_balance_sign = -1;
	rows[3].new_vs_old_sign = 1;
	rt_user_figures(rows, 4, &u);
	CHECK(!u.closing_balance.exact);
	CHECK(u.overdrafts == 2);
	CHECK(is(u.credits_total, "18.500000000000000001"));
	/* a sum that leaves the range */
	rows[0] = R(0, 1, 0, BAL_CREDIT, "99999999999999999999", "0", "0", "1");
	rows[1] = R(1, 2, 0, BAL_CREDIT, "99999999999999999999", "0", "0", "1");
	rt_user_figures(rows, 2, &u);
	CHECK(!u.credits_total.exact && is(u.debits_total, "0"));
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
	uint32_t	low_currency[8][4];
	rt_money	low[8][4];
} episodes_seen;

static void
record_episode(void *ctx, const rt_episode *e)
{
	episodes_seen *s = ctx;
	size_t		i;

	if (s->n < 8)
	{
		s->e[s->n] = *e;
		for (i = 0; i < e->nlows && i < 4; i++)
		{
			s->low_currency[s->n][i] = e->low_currencies[i];
			s->low[s->n][i] = e->low_balances[i];
		}
	}
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
	rows[0] = R(0, 1, 0, BAL_CREDIT, "1", "0", "0", "1");
	rows[1] = R(1, 2, 1, BAL_DEBIT, "3", "0", "1", "-2");
	rows[2] = R(2, 3, 0, BAL_DEBIT, "5", "0", "-2", "-7");
	rows[3] = R(3, 4, 1, BAL_CREDIT, "1", "0", "-7", "-6");
	rows[4] = R(4, 5, 0, BAL_CREDIT, "6", "0", "-6", "0");	/* zero is not overdrawn */
	rows[5] = R(5, 6, 0, BAL_DEBIT, "1", "0", "0", "-1");
	memset(&s, 0, sizeof(s));
	rt_episodes(rows, 6, &scratch, record_episode, &s);
	CHECK(s.n == 2);
	CHECK(s.e[0].currency == 1 && s.e[0].started_at == 2 && s.e[0].ended && s.e[0].ended_at == 5
		  && s.e[0].transactions == 3 && s.e[0].first == &rows[1] && s.e[0].last == &rows[3]
		  && s.e[0].nlows == 2);
	CHECK(s.low_currency[0][0] == 1 && is(s.low[0][0], "-6"));
	CHECK(s.low_currency[0][1] == 0 && is(s.low[0][1], "-7"));
	CHECK(s.e[1].currency == 0 && !s.e[1].ended && s.e[1].transactions == 1 && s.e[1].nlows == 1
		  && s.low_currency[1][0] == 0 && is(s.low[1][0], "-1"));
	/* no overdraft, no run */
	memset(&s, 0, sizeof(s));
	rt_episodes(rows, 1, &scratch, record_episode, &s);
	CHECK(s.n == 0);
	/* an overdrawn row whose balance the exact math cannot hold */
	rows[2].balances_valid = false;
	rows[2].new_balance_sign = -1;
	memset(&s, 0, sizeof(s));
	rt_episodes(rows, 5, &scratch, record_episode, &s);
	CHECK(s.n == 1 && s.e[0].transactions == 3 && is(s.low[0][0], "-6") && !s.low[0][1].exact);
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
