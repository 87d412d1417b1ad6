/*
 * report_totals.h: the report figures of one user's chain, the one home of
 * what user_summary, daily_summary and overdraft_episodes show of the
 * transactions (README "Reports"). Plain C, no PostgreSQL headers.
 *
 * reconcile() hands each user's rows to these functions after the walk has
 * put them in chain order (walk.h), and stores what they give; the views
 * compute the users still queued with the same functions (user_figures,
 * user_day_figures, user_overdraft_episodes). Sums are exact (balance.h);
 * a figure one of whose inputs the exact math cannot hold (or whose sum
 * leaves its range) is marked inexact, never rounded: the caller shows it
 * as NULL, as balance_breaks reports such rows as out_of_range.
 */
#ifndef CALO_REPORT_TOTALS_H
#define CALO_REPORT_TOTALS_H

#include "walk.h"

/* An exact sum, or inexact when an input or the sum left the exact range. */
typedef struct rt_money
{
	bal_dec		value;
	bool		exact;
} rt_money;

/*
 * The figures of a user in one currency over the rows given (user_summary):
 * money of two currencies is never added up, so a user with rows in several
 * currencies has one rt_user per currency.
 */
typedef struct rt_user
{
	int64_t		transactions;	/* rows in the currency */
	int64_t		first_logged_at;
	int64_t		last_logged_at;
	uint32_t	currency;
	rt_money	opening_balance;	/* old_balance of its first row in chain order */
	rt_money	closing_balance;	/* new_balance of its last row */
	int64_t		overdrafts;		/* rows walk_row_is_overdraft */
	rt_money	credits_total;	/* amount over walk_row_is_credit rows */
	rt_money	debits_total;	/* amount over the others */
	rt_money	credits_net;	/* amount - vat over credits */
	rt_money	debits_net;		/* amount - vat over debits */
	rt_money	vat_total;
} rt_user;

/* The figures of a user in one currency on one UTC day (daily_summary). */
typedef struct rt_day
{
	uint32_t	currency;
	int32_t		day;			/* days since 2000-01-01 (PostgreSQL's date) */
	int64_t		transactions;
	rt_money	credits;		/* amount (gross) over credits */
	rt_money	debits;			/* amount (gross) over debits */
	rt_money	vat;
	int64_t		overdrafts;
	/*
	 * The new_balance of the user's last row of the day in that currency
	 * (chain order) minus that of their previous day in it (0 before): the
	 * sum over users and days up to D is the wallet liability at the end of D.
	 */
	rt_money	liability_change;
} rt_day;

/*
 * A run of consecutive overdrawn rows of one currency, in chain order with
 * the user's rows in other currencies left out (overdraft_episodes).
 */
typedef struct rt_episode
{
	rt_money	low_balance;	/* the lowest new_balance of the run's rows */
	uint32_t	currency;
	int64_t		started_at;		/* logged_at of the run's first row */
	bool		ended;			/* a row in the currency follows the run */
	int64_t		ended_at;		/* logged_at of that row */
	int64_t		transactions;
	const walk_row *first;		/* the run's first and last rows */
	const walk_row *last;
} rt_episode;

/* UTC day of a PostgreSQL timestamptz (microseconds since 2000-01-01). */
int32_t		rt_day_of(int64_t logged_at);

/*
 * Working memory of rt_users, rt_days and rt_episodes for currencies numbered
 * 0..ncurrencies-1: rt_scratch_bytes(ncurrencies) bytes aligned to 16, the
 * caller's; rt_scratch_init prepares it once for any number of users.
 */
typedef struct rt_scratch
{
	size_t		ncurrencies;
	rt_day	   *days;			/* per currency: the open day */
	rt_user    *figures;		/* per currency: the user's figures so far */
	rt_episode *runs;			/* per currency: the open run */
	rt_money   *prev_closing;	/* per currency: the previous day's closing */
	uint32_t   *day_list;		/* currencies with an open day, in first-seen order */
	uint32_t   *user_list;		/* currencies with a previous closing */
	uint32_t   *figure_list;	/* currencies of the user's figures, first-seen order */
	uint32_t   *run_list;		/* currencies with an open run, in start order */
	uint8_t    *state;			/* per currency: RT_IN_DAY | RT_IN_USER | RT_IN_FIGURES | RT_IN_RUN */
	size_t		nday;
	size_t		nuser;
	size_t		nfigure;
	size_t		nrun;
} rt_scratch;

size_t		rt_scratch_bytes(size_t ncurrencies);
void		rt_scratch_init(rt_scratch *s, void *memory, size_t ncurrencies);

typedef void (*rt_user_fn) (void *ctx, const rt_user *user);
typedef void (*rt_day_fn) (void *ctx, const rt_day *day);
typedef void (*rt_episode_fn) (void *ctx, const rt_episode *episode);

/* The user's figures per currency of rows[0..n), in chain order, emitted in
 * the order the currencies first appear; each row's currency must be below
 * the scratch's ncurrencies. */
void		rt_users(const walk_row *rows, size_t n, rt_scratch *s, rt_user_fn emit, void *ctx);

/* The user's (currency, day) figures of rows[0..n), in chain order; each
 * row's currency must be below the scratch's ncurrencies. */
void		rt_days(const walk_row *rows, size_t n, rt_scratch *s, rt_day_fn emit, void *ctx);

/* The user's overdraft runs in rows[0..n), in chain order, per currency:
 * emitted when they end, then those still open in the order they started. */
void		rt_episodes(const walk_row *rows, size_t n, rt_scratch *s, rt_episode_fn emit,
						void *ctx);

#endif
