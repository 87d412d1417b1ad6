/*
 * behaviour.c: users with habits and planted behavioural anomalies
 * (calo_recon_gen --behaviour RATE). Off by default: without the flag
 * nothing here draws from the PRNG, so every existing export and answer
 * key stays byte for byte the same.
 *
 * With it, each user has habits: a window of 8 UTC hours they transact in,
 * a usual debit (5 to 60 major units) and a usual top-up (50 to 1000), each
 * transaction within 0.7x to 1.4x of the usual, and every transaction
 * carries its currency's VAT rate (included in the amount). About RATE of
 * the transactions are planted anomalies that reconcile (no break), one
 * kind after the other:
 *   spend   a debit 8x to 25x the user's usual debit
 *   vat     a VAT of 35 % to 60 % of the amount
 *   hour    a transaction 5 or more hours away from the user's window
 *   double  the same debit again 2 to 90 seconds after the first
 *   topup   a top-up 8x to 25x the user's usual top-up
 * each only for a user with enough history to make it stand out; every
 * other transaction is at an hour inside its user's window. Every
 * planted transaction is listed in DIR/anomaly-labels.csv (txn_id,kind).
 */
#include "gen.h"

#define WINDOW_HOURS 8
/* an hour anomaly is at least this many hours from the window */
#define HOURS_AWAY 5
#define MIN_HISTORY_SPEND 5
#define MIN_HISTORY_TOPUP 3
#define MIN_HISTORY_VAT 5
#define MIN_HISTORY_HOUR 12
#define MIN_HISTORY_DOUBLE 3

const char *const PLANT_NAMES[N_PLANTS] = {"none", "spend", "vat", "hour", "double", "topup"};

/* VAT of each currency of CURRENCIES, percent: BHD, SAR, AED, KWD, QAR */
static const int VAT_PCT[N_CURRENCIES] = {10, 15, 5, 0, 0};

typedef struct
{
	int			window_start;	/* first UTC hour of the window */
	money_t		usual_debit;
	money_t		usual_topup;
	int			debits,
				credits,
				txns;
} habit_t;

static habit_t *habits;
static FILE *labels;
static int next_kind = PLANT_SPEND;
static double owed;				/* planted transactions due, fractional */
int64_t		planted[N_PLANTS];

static money_t
major_log_uniform(int currency, double lo, double hi)
{
	int			minor = CURRENCIES[currency].minor;
	double		x = lo * exp(log(hi / lo) * ((double) rng_below(1000000) / 1e6));
	int64_t		scale = minor == 3 ? 1000 : 100;

	return minor_to_money((int64_t) (x * (double) scale), minor == 3 ? 3 : 2);
}

/* v * factor, to the currency's minor unit */
static money_t
scaled(money_t v, double factor, int currency)
{
	money_t		unit = minor_to_money(1, CURRENCIES[currency].minor);
	double		units = (double) (v / unit) * factor;

	return (money_t) (units < 1 ? 1 : units) * unit;
}

static double
uniform(double lo, double hi)
{
	return lo + (hi - lo) * ((double) rng_below(1000000) / 1e6);
}

void
behaviour_init(void)
{
	char		path[4096];

	habits = xmalloc(sizeof(habit_t) * (size_t) opt.users);
	for (int64_t u = 0; u < opt.users; u++)
	{
		int			c = users[u].currency;

		habits[u].window_start = (int) rng_below(24);
		habits[u].usual_debit = major_log_uniform(c, 5, 60);
		habits[u].usual_topup = major_log_uniform(c, 50, 1000);
	}
	snprintf(path, sizeof path, "%s/anomaly-labels.csv", opt.out);
	if (!(labels = fopen(path, "w")))
		die("cannot write %s: %s", path, strerror(errno));
	fputs("txn_id,kind\n", labels);
}

void
behaviour_close(void)
{
	if (labels && fclose(labels) != 0)
		die("write failed: %s", strerror(errno));
	fprintf(stderr, "calo_recon_gen: planted %" PRId64 " spend, %" PRId64 " vat, %" PRId64 " hour, %"
			PRId64 " double, %" PRId64 " topup\n", planted[PLANT_SPEND], planted[PLANT_VAT],
			planted[PLANT_HOUR], planted[PLANT_DOUBLE], planted[PLANT_TOPUP]);
}

/* hours from hour to the user's window, around the clock (0 inside it) */
static int
hours_outside(const habit_t *h, int hour)
{
	int			into = ((hour - h->window_start) % 24 + 24) % 24;

	if (into < WINDOW_HOURS)
		return 0;
	return into - WINDOW_HOURS + 1 < 24 - into ? into - WINDOW_HOURS + 1 : 24 - into;
}

int
behaviour_due(void)
{
	owed += opt.behaviour;
	if (owed < 1)
		return PLANT_NONE;
	return next_kind;
}

static void
planted_one(int kind, const char *txn_id)
{
	fprintf(labels, "%s,%s\n", txn_id, PLANT_NAMES[kind]);
	planted[kind]++;
	owed -= 1;
	next_kind = next_kind == PLANT_TOPUP ? PLANT_SPEND : next_kind + 1;
}

/* the user can take plant at hour: an hour plant needs history and a time
 * far from the window, every other transaction a time inside it */
static bool
fits(int64_t u, int plant, int hour)
{
	if (plant == PLANT_HOUR)
		return habits[u].txns >= MIN_HISTORY_HOUR && hours_outside(&habits[u], hour) >= HOURS_AWAY;
	return hours_outside(&habits[u], hour) == 0;
}

/*
 * A user for the transaction: one that fits the plant due, else (no user
 * has the history for an hour anomaly yet) one transacting inside their
 * window, so that no unlabeled transaction breaks its user's habit.
 */
int64_t
behaviour_pick_user(int plant)
{
	int			hour = (int) ((clock_ms / 3600000) % 24);
	int64_t		start;

	for (int tries = 0; tries < 256; tries++)
	{
		int64_t		u = (int64_t) rng_below((uint64_t) opt.users);

		if (fits(u, plant, hour))
			return u;
	}
	start = (int64_t) rng_below((uint64_t) opt.users);
	for (int64_t i = 0; i < opt.users; i++)
		if (fits((start + i) % opt.users, plant, hour))
			return (start + i) % opt.users;
	for (int64_t i = 0; i < opt.users; i++)
		if (fits((start + i) % opt.users, PLANT_NONE, hour))
			return (start + i) % opt.users;
	return start;
}

/*
 * The amount and VAT of a transaction by the user's habits (an injected
 * overdraft keeps its amount), and the planted anomaly when one is due, the
 * user has the history for it and no fault is injected into the row.
 */
bool
behaviour_shape(txn_t *t, int plant, bool overdraft, bool faulted)
{
	habit_t    *h = &habits[t->user];
	int			c = users[t->user].currency;
	int			pct = VAT_PCT[c];
	money_t		unit = minor_to_money(1, CURRENCIES[c].minor);
	bool		applied = false;

	if (faulted)
		plant = PLANT_NONE;
	if (!overdraft)
	{
		if (t->credit)
			t->amount = scaled(h->usual_topup, uniform(0.7, 1.4), c);
		else
		{
			t->amount = scaled(h->usual_debit, uniform(0.7, 1.4), c);
			if (t->amount > t->old_balance)
			{
				t->credit = true;
				t->amount = scaled(h->usual_topup, uniform(0.7, 1.4), c);
			}
		}
		if (plant == PLANT_SPEND && h->debits >= MIN_HISTORY_SPEND)
		{
			money_t		big = scaled(h->usual_debit, uniform(8, 25), c);

			if (big <= t->old_balance)
			{
				t->credit = false;
				t->amount = big;
				applied = true;
			}
		}
		else if (plant == PLANT_TOPUP && h->credits >= MIN_HISTORY_TOPUP)
		{
			t->credit = true;
			t->amount = scaled(h->usual_topup, uniform(8, 25), c);
			applied = true;
		}
		t->vat = (t->amount * pct / (100 + pct) + unit / 2) / unit * unit;
		if (plant == PLANT_VAT && h->txns >= MIN_HISTORY_VAT)
		{
			t->vat = scaled(t->amount, uniform(0.35, 0.6), c);
			applied = true;
		}
		if (plant == PLANT_HOUR
			&& fits(t->user, PLANT_HOUR, (int) ((t->logged_at / 3600000) % 24)))
			applied = true;		/* the user was picked outside the window */
	}
	if (t->credit)
		h->credits++;
	else
		h->debits++;
	h->txns++;
	if (applied)
		planted_one(plant, t->id);
	return applied;
}

bool
behaviour_double_ready(const txn_t *t)
{
	return !t->credit && !t->legacy && habits[t->user].txns > MIN_HISTORY_DOUBLE
		&& users[t->user].balance >= t->amount - t->vat;
}

void
behaviour_doubled(const txn_t *copy)
{
	habits[copy->user].debits++;
	habits[copy->user].txns++;
	planted_one(PLANT_DOUBLE, copy->id);
}
