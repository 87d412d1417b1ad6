/*
 * report_totals.c: the report figures of one user's chain. See report_totals.h.
 */
#include "report_totals.h"

#include <string.h>

#define RT_USEC_PER_DAY INT64_C(86400000000)

#define RT_IN_DAY	0x01
#define RT_IN_USER	0x02
#define RT_IN_RUN	0x04
#define RT_IN_FIGURES 0x08

static const rt_money rt_zero = {0, true};

int32_t
rt_day_of(int64_t logged_at)
{
	int64_t		d = logged_at / RT_USEC_PER_DAY;

	if (logged_at % RT_USEC_PER_DAY < 0)
		d--;					/* floor, not truncation, before 2000 */
	return (int32_t) d;
}

static rt_money
rt_value(bal_dec value, bool valid)
{
	rt_money	m = {valid ? value : 0, valid};

	return m;
}

static void
rt_add(rt_money *sum, rt_money term)
{
	if (!sum->exact)
		return;
	if (!term.exact || bal_add(sum->value, term.value, &sum->value) != BAL_OK)
	{
		sum->value = 0;
		sum->exact = false;
	}
}

static rt_money
rt_sub(rt_money a, rt_money b)
{
	rt_money	m = {0, false};

	if (a.exact && b.exact && bal_sub(a.value, b.value, &m.value) == BAL_OK)
		m.exact = true;
	else
		m.value = 0;
	return m;
}

static rt_money
rt_amount(const walk_row *r)
{
	return rt_value(r->amount, r->amounts_valid);
}

static rt_money
rt_vat(const walk_row *r)
{
	return rt_value(r->vat, r->amounts_valid);
}

static rt_money
rt_new_balance(const walk_row *r)
{
	return rt_value(r->new_balance, r->balances_valid);
}

size_t
rt_scratch_bytes(size_t ncurrencies)
{
	size_t		k = ncurrencies > 0 ? ncurrencies : 1;

	/* the arrays holding rt_money first: they keep the 16-byte alignment */
	return k * (sizeof(rt_day) + sizeof(rt_user) + sizeof(rt_episode) + sizeof(rt_money)
				+ 4 * sizeof(uint32_t) + 1);
}

void
rt_scratch_init(rt_scratch *s, void *memory, size_t ncurrencies)
{
	size_t		k = ncurrencies > 0 ? ncurrencies : 1;
	char	   *p = memory;

	memset(memory, 0, rt_scratch_bytes(ncurrencies));
	s->ncurrencies = ncurrencies;
	s->days = (rt_day *) (void *) p;
	p += k * sizeof(rt_day);
	s->figures = (rt_user *) (void *) p;
	p += k * sizeof(rt_user);
	s->runs = (rt_episode *) (void *) p;
	p += k * sizeof(rt_episode);
	s->prev_closing = (rt_money *) (void *) p;
	p += k * sizeof(rt_money);
	s->day_list = (uint32_t *) (void *) p;
	p += k * sizeof(uint32_t);
	s->user_list = (uint32_t *) (void *) p;
	p += k * sizeof(uint32_t);
	s->figure_list = (uint32_t *) (void *) p;
	p += k * sizeof(uint32_t);
	s->run_list = (uint32_t *) (void *) p;
	p += k * sizeof(uint32_t);
	s->state = (uint8_t *) p;
	s->nday = s->nuser = s->nfigure = s->nrun = 0;
}

void
rt_users(const walk_row *rows, size_t n, rt_scratch *s, rt_user_fn emit, void *ctx)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		const walk_row *r = &rows[i];
		rt_user    *u = &s->figures[r->currency];
		rt_money	net = rt_sub(rt_amount(r), rt_vat(r));

		if (!(s->state[r->currency] & RT_IN_FIGURES))
		{
			memset(u, 0, sizeof(*u));
			u->credits_total = u->debits_total = rt_zero;
			u->credits_net = u->debits_net = u->vat_total = rt_zero;
			u->currency = r->currency;
			u->first_logged_at = r->logged_at;
			u->opening_balance = rt_value(r->old_balance, r->balances_valid);
			s->state[r->currency] |= RT_IN_FIGURES;
			s->figure_list[s->nfigure++] = r->currency;
		}
		u->transactions++;
		u->last_logged_at = r->logged_at;
		u->closing_balance = rt_new_balance(r);
		if (walk_row_is_overdraft(r))
			u->overdrafts++;
		if (walk_row_is_credit(r))
		{
			rt_add(&u->credits_total, rt_amount(r));
			rt_add(&u->credits_net, net);
		}
		else
		{
			rt_add(&u->debits_total, rt_amount(r));
			rt_add(&u->debits_net, net);
		}
		rt_add(&u->vat_total, rt_vat(r));
	}
	for (i = 0; i < s->nfigure; i++)
	{
		uint32_t	c = s->figure_list[i];

		emit(ctx, &s->figures[c]);
		s->state[c] &= (uint8_t) ~RT_IN_FIGURES;
	}
	s->nfigure = 0;
}

/* Emits the open day of every currency; its closing becomes the previous. */
static void
rt_flush_day(rt_scratch *s, rt_day_fn emit, void *ctx)
{
	size_t		i;

	for (i = 0; i < s->nday; i++)
	{
		uint32_t	c = s->day_list[i];
		rt_day	   *d = &s->days[c];
		rt_money	closing = d->liability_change;	/* held there until now */

		d->liability_change = rt_sub(closing, (s->state[c] & RT_IN_USER) ? s->prev_closing[c] : rt_zero);
		emit(ctx, d);
		if (!(s->state[c] & RT_IN_USER))
		{
			s->state[c] |= RT_IN_USER;
			s->user_list[s->nuser++] = c;
		}
		s->prev_closing[c] = closing;
		s->state[c] &= (uint8_t) ~RT_IN_DAY;
	}
	s->nday = 0;
}

void
rt_days(const walk_row *rows, size_t n, rt_scratch *s, rt_day_fn emit, void *ctx)
{
	size_t		i;
	int32_t		day = 0;

	for (i = 0; i < n; i++)
	{
		const walk_row *r = &rows[i];
		int32_t		d = rt_day_of(r->logged_at);
		rt_day	   *acc;

		/* chain order is logged_at order: a user's days come one after another */
		if (i > 0 && d != day)
			rt_flush_day(s, emit, ctx);
		day = d;
		acc = &s->days[r->currency];
		if (!(s->state[r->currency] & RT_IN_DAY))
		{
			memset(acc, 0, sizeof(*acc));
			acc->currency = r->currency;
			acc->day = d;
			acc->credits = acc->debits = acc->vat = rt_zero;
			s->state[r->currency] |= RT_IN_DAY;
			s->day_list[s->nday++] = r->currency;
		}
		acc->transactions++;
		rt_add(walk_row_is_credit(r) ? &acc->credits : &acc->debits, rt_amount(r));
		rt_add(&acc->vat, rt_vat(r));
		if (walk_row_is_overdraft(r))
			acc->overdrafts++;
		acc->liability_change = rt_new_balance(r);	/* the closing so far */
	}
	rt_flush_day(s, emit, ctx);
	for (i = 0; i < s->nuser; i++)
		s->state[s->user_list[i]] &= (uint8_t) ~RT_IN_USER;
	s->nuser = 0;
}

void
rt_episodes(const walk_row *rows, size_t n, rt_scratch *s, rt_episode_fn emit, void *ctx)
{
	size_t		i;
	size_t		j;

	for (i = 0; i < n; i++)
	{
		const walk_row *r = &rows[i];
		uint32_t	c = r->currency;
		rt_episode *e = &s->runs[c];

		if (!walk_row_is_overdraft(r))
		{
			if (!(s->state[c] & RT_IN_RUN))
				continue;
			/* the row in the run's currency after it ends it */
			e->ended = true;
			e->ended_at = r->logged_at;
			emit(ctx, e);
			s->state[c] &= (uint8_t) ~RT_IN_RUN;
			for (j = 0; s->run_list[j] != c; j++)
				;
			for (; j + 1 < s->nrun; j++)
				s->run_list[j] = s->run_list[j + 1];
			s->nrun--;
			continue;
		}
		if (!(s->state[c] & RT_IN_RUN))
		{
			memset(e, 0, sizeof(*e));
			e->currency = c;
			e->started_at = r->logged_at;
			e->first = r;
			e->low_balance = rt_new_balance(r);
			s->state[c] |= RT_IN_RUN;
			s->run_list[s->nrun++] = c;
		}
		else if (!e->low_balance.exact || !r->balances_valid)
			e->low_balance = rt_value(0, false);
		else if (bal_cmp(r->new_balance, e->low_balance.value) < 0)
			e->low_balance.value = r->new_balance;
		e->transactions++;
		e->last = r;
	}
	/* the runs still open, in the order they started */
	for (j = 0; j < s->nrun; j++)
	{
		uint32_t	c = s->run_list[j];

		emit(ctx, &s->runs[c]);
		s->state[c] &= (uint8_t) ~RT_IN_RUN;
	}
	s->nrun = 0;
}
