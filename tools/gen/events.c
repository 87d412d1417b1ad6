/* events.c: transactions, faults and the requests that log them (calo_recon_gen). */
#include "gen.h"

static int64_t
tick(void)
{
	clock_ms += 1 + (int64_t) rng_below((uint64_t) intra_max);
	return clock_ms;
}

/* ------------------------------------------------------------------ */
/* Fake people for informational lines (never real data).              */

static const char *const FIRST[] = {
	"Test", "Sara", "Omar", "Fatima", "Ali", "Noor", "Yousef", "Mariam",
	"Hassan", "Layla", "Khalid", "Aisha", "Ahmed", "Huda", "Zaid", "Reem"
};
static const char *const LAST[] = {
	"Customer", "Example", "Sample", "Placeholder", "Demo", "Fixture",
	"Synthetic", "Testcase"
};

/* ------------------------------------------------------------------ */
/* Transactions                                                        */

const char *const DEBIT_SOURCES[][2] = {
	{"MANUAL_DEDUCTION", "DELIVERY_DEDUCTION"},
	{"MANUAL_DEDUCTION", "DELIVERY_DEDUCTION"},
	{"MANUAL_DEDUCTION", "DELIVERY_DEDUCTION"},
	{"SUBSCRIPTION", "ADD_ON_DEDUCTION"},
	{"MANUAL_DEDUCTION", "DONATE_RAMADAN_MEAL"},
};
const char *const CREDIT_SOURCES[][2] = {
	{"PAYMENT", "RENEW_SUBSCRIPTION"},
	{"PAYMENT", "RENEW_SUBSCRIPTION"},
	{"PAYMENT", "PAY_PENDING_AMOUNT"},
	{"PAYMENT", "ADD_TO_WALLET"},
	{"REFUND", "REFUND_DELIVERY"},
};

money_t
tolerance(int currency)
{
	/* half a minor unit */
	return minor_to_money(5, CURRENCIES[currency].minor + 1);
}

/* A random amount in minor units of the currency, occasionally with four
 * decimals; values stay in the ranges the real export shows. */
static money_t
random_amount(int currency, int64_t lo_major, int64_t hi_major)
{
	int minor = CURRENCIES[currency].minor;
	int64_t scale = minor == 3 ? 1000 : 100;
	int64_t units;

	if (rng_chance(0.6))
		units = rng_range(lo_major * 2, hi_major * 2) * scale / 2;	/* .5 steps */
	else
		units = rng_range(lo_major * scale, hi_major * scale);
	money_t v = minor_to_money(units, minor);
	if (rng_chance(0.01))
		v += minor_to_money(rng_range(1, 9), 4);	/* a fourth decimal */
	return v;
}

/* float noise such as 0.000000000001 or 0.0000000001 */
static money_t
float_noise(void)
{
	int64_t digits = rng_range(1, 3);
	int decimals = 12 - (int) rng_range(0, 2);
	money_t n = minor_to_money(digits, decimals);
	return rng_chance(0.5) ? n : -n;
}

static void
make_metadata(txn_t *t)
{
	char *p = t->metadata;
	char uid[37];

	put_user_id(uid, t->user)[0] = '\0';
	if (rng_chance(0.05))
	{
		t->metadata[0] = '\0';	/* logged as: metadata: undefined */
		return;
	}
	p += sprintf(p, "{\"walletId\":\"wallet#%s\",", uid);
	if (!t->credit)
	{
		p = put_str(p, "\"deliveryId\":\"");
		p = put_uuid(p);
		p = put_str(p, "\",");
	}
	p = put_str(p, "\"walletSk\":\"");
	p = put_uuid(p);
	p = put_str(p, "\",\"version\":\"syncBalanceSQS\"");
	if (t->credit && rng_chance(0.5))
	{
		static const char *const goals[] = {"loseWeight", "gainWeight", "maintain"};
		static const char *const freq[] = {"weekly", "monthly"};
		int y, m, d;
		const char *goal = goals[rng_below(3)];
		const char *frequency = freq[rng_below(2)];
		civil_from_days(t->logged_at / 86400000 + 28, &y, &m, &d);
		p += sprintf(p, ",\"planType\":\"custom\",\"goal\":\"%s\",\"renewalDate\":\"%04d-%02d-%02d\","
					 "\"nextPlan\":\"{\\\"id\\\": \\\"custom\\\", \\\"frequency\\\": \\\"%s\\\", "
					 "\\\"foodType\\\": [\\\"breakfast\\\", \\\"lunch\\\"]}\"",
					 goal, y, m, d, frequency);
	}
	if (rng_chance(0.04))
		p = put_str(p, ",\"note\":\"customer's request\"");
	*p++ = '}';
	*p = '\0';
}

/* JS string literal as Node prints it: backticks when the text has an
 * apostrophe, else single quotes; backslashes doubled. */
static char *
put_js_string(char *p, const char *s)
{
	char q = strchr(s, '\'') ? '`' : '\'';
	*p++ = q;
	for (; *s; s++)
	{
		if (*s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p++ = q;
	return p;
}

static char *
put_quoted(char *p, const char *s)
{
	*p++ = '\'';
	p = put_str(p, s);
	*p++ = '\'';
	return p;
}

static char *
put_txn_body(char *p, const txn_t *t)
{
	char uid[37];
	int c = users[t->user].currency;

	put_user_id(uid, t->user)[0] = '\0';
	p = put_str(p, "Start syncing the balance {\n  transaction: {\n    id: ");
	p = put_quoted(p, t->id);
	if (!t->legacy)
	{
		const char *const *src = t->credit ? CREDIT_SOURCES[t->src] : DEBIT_SOURCES[t->src];
		p = put_str(p, ",\n    type: ");
		p = put_quoted(p, t->credit ? "CREDIT" : "DEBIT");
		p = put_str(p, ",\n    source: ");
		p = put_quoted(p, src[0]);
		p = put_str(p, ",\n    action: ");
		p = put_quoted(p, src[1]);
	}
	p = put_str(p, ",\n    userId: ");
	p = put_quoted(p, uid);
	if (!t->legacy)
	{
		p = put_str(p, ",\n    paymentBalance: ");
		p = put_money(p, t->payment_balance);
		p = put_str(p, ",\n    updatePaymentBalance: true,\n    metadata: ");
		p = t->metadata[0] ? put_js_string(p, t->metadata) : put_str(p, "undefined");
	}
	p = put_str(p, ",\n    currency: ");
	p = put_quoted(p, CURRENCIES[c].code);
	p = put_str(p, ",\n    amount: ");
	p = put_money(p, t->amount);
	p = put_str(p, ",\n    vat: ");
	p = put_money(p, t->vat);
	p = put_str(p, ",\n    oldBalance: ");
	p = put_money(p, t->old_balance);
	p = put_str(p, ",\n    newBalance: ");
	p = put_money(p, t->new_balance);
	return put_str(p, "\n  }\n}");
}

/* ------------------------------------------------------------------ */
/* Fault scheduling: each kind at the fault rate, and each kind forced  */
/* once at a fixed point of the run if chance has not produced it yet.  */

int64_t injected[N_FAULTS];
int64_t txn_done;

bool
want_fault(int kind)
{
	if (rng_chance(opt.fault_rate))
		return true;
	return opt.fault_rate > 0 && injected[kind] == 0 &&
		txn_done >= (kind + 1) * opt.transactions / (N_FAULTS + 2);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

stream_t *cur;			/* stream of the request being written */
static char cur_request[37];

static void
event_app(const char *level, const char *message)
{
	char *p = ev_begin(cur);
	p = put_app_prefix(p, tick(), cur_request, level);
	ev_end(cur, put_str(p, message), true);
}

static void
new_request_id(void)
{
	*put_uuid(cur_request) = '\0';
}

static void
request_start(void)
{
	char *p;

	cnt.requests++;
	new_request_id();
	if (opt.csv)
		return;
	if (cur->need_init)
	{
		p = ev_begin(cur);
		p = put_event_ts(p, tick());
		p = put_str(p, "INIT_START Runtime Version: nodejs:20.v14\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:");
		p = put_hex(p, rng_next(), 16);
		p = put_hex(p, rng_next(), 16);
		p = put_hex(p, rng_next(), 16);
		p = put_hex(p, rng_next(), 16);
		ev_end(cur, p, true);
		cur->need_init = false;
	}
	p = ev_begin(cur);
	p = put_event_ts(p, tick());
	p = put_str(p, "START RequestId: ");
	p = put_str(p, cur_request);
	ev_end(cur, put_str(p, " Version: $LATEST"), true);
}

static void
request_end(void)
{
	char *p;
	int64_t ms;

	if (opt.csv)
		return;
	p = ev_begin(cur);
	p = put_event_ts(p, tick());
	p = put_str(p, "END RequestId: ");
	ev_end(cur, put_str(p, cur_request), true);

	p = ev_begin(cur);
	ms = tick();
	p = put_event_ts(p, ms);
	p = put_str(p, "REPORT RequestId: ");
	p = put_str(p, cur_request);
	{
		int			ms_int = (int) rng_range(20, 499);
		int			ms_frac = (int) rng_below(100);
		int			memory = (int) rng_range(96, 130);

		p += sprintf(p, "\tDuration: %d.%02d ms\tBilled Duration: 100 ms\tMemory Size: 1024 MB\tMax Memory Used: %d MB\t",
					 ms_int, ms_frac, memory);
	}
	if (ms >= days_from_civil(2024, 1, 1) * 86400000 && rng_chance(0.6))
	{
		p = put_str(p, "\nXRAY TraceId: 1-");
		p = put_hex(p, (uint64_t) (ms / 1000), 8);
		*p++ = '-';
		p = put_hex(p, rng_next(), 16);
		p = put_hex(p, rng_next(), 8);
		p = put_str(p, "\tSegmentId: ");
		p = put_hex(p, rng_next(), 16);
		p = put_str(p, "\tSampled: true\t");
	}
	ev_end(cur, p, true);
}

static void
processing_message(char message[37])
{
	*put_uuid(message) = '\0';
	if (opt.csv)
		return;
	char *p = ev_begin(cur);
	p = put_app_prefix(p, tick(), cur_request, "INFO");
	p = put_str(p, "Processing message ");
	ev_end(cur, put_str(p, message), true);
}

static void
informational_transaction_line(const txn_t *t)
{
	char uid[37];
	const char *const *src = t->credit ? CREDIT_SOURCES[t->src] : DEBIT_SOURCES[t->src];
	const char *first = FIRST[rng_below(16)], *last = LAST[rng_below(8)];
	char *p = ev_begin(cur);

	put_user_id(uid, t->user)[0] = '\0';
	p = put_app_prefix(p, tick(), cur_request, "INFO");
	p += sprintf(p, "transaction {\"id\":\"%s\",\"type\":\"%s\",\"source\":\"%s\",\"action\":\"%s\",\"amount\":",
				 t->id, t->credit ? "CREDIT" : "DEBIT", src[0], src[1]);
	p = put_money(p, t->amount);
	p = put_str(p, ",\"vat\":");
	p = put_money(p, t->vat);
	p = put_str(p, ",\"userBalance\":");
	p = put_money(p, t->old_balance);
	int			mail_no = (int) rng_below(1000);
	int			phone = (int) rng_below(10000000);

	p += sprintf(p, ",\"userId\":\"%s\",\"name\":\"%s %s\",\"email\":\"%c.%s%d@example.com\",\"phone\":\"+9733%07d\"}",
				 uid, first, last, first[0] | 0x20, last, mail_no, phone);
	ev_end(cur, p, true);
}

static void
record_body_line(const txn_t *t)
{
	char uid[37];
	char *p = ev_begin(cur);

	put_user_id(uid, t->user)[0] = '\0';
	const char *first = FIRST[rng_below(16)];
	const char *last = LAST[rng_below(8)];
	int64_t ms = tick();

	p = put_app_prefix(p, ms, rng_chance(0.3) ? "undefined" : cur_request, "INFO");
	p += sprintf(p, "record.body {\"Type\":\"Notification\",\"Message\":\"{\\\"transactionId\\\":\\\"%s\\\",\\\"userId\\\":\\\"%s\\\",\\\"customerName\\\":\\\"%s %s\\\"}\"}",
				 t->id, uid, first, last);
	ev_end(cur, p, true);
}

static void
transaction_lock_line(int64_t user)
{
	char uid[37], ulid[27];
	char ts[32];
	char *p = ev_begin(cur);
	int64_t ms = tick();

	put_user_id(uid, user)[0] = '\0';
	make_ulid(ulid, ms);
	*put_ts(ts, ms) = '\0';
	p = put_app_prefix(p, ms, cur_request, "INFO");
	p += sprintf(p, "Transaction Lock created!!!!!!!!!!!!!!!!!!!!!!!!!!! Rr {\n  dirty: {},\n  original: {\n"
				 "    id: 'trxLock#%s',\n    sk: '%s',\n    userId: '%s',\n    dataType: 'trxLock',\n"
				 "    createdAt: '%s',\n    updatedAt: '%s'\n  }\n}",
				 uid, ulid, uid, ts, ts);
	ev_end(cur, p, true);
}

static void
aws_metric(const char *metric, const char *user, const char *action)
{
	char *p = ev_begin(cur);
	int64_t ms = tick();
	p = put_event_ts(p, ms);
	p += sprintf(p, "{\"_aws\":{\"Timestamp\":%" PRId64 ",\"CloudWatchMetrics\":[{\"Namespace\":\"apiService\","
				 "\"Dimensions\":[[\"service\"]],\"Metrics\":[{\"Name\":\"%s\",\"Unit\":\"Count\"}]}]},"
				 "\"service\":\"syncBalanceSQS\",\"%s\":1",
				 ms - (int64_t) rng_below(200), metric, metric);
	if (user)
		p += sprintf(p, ",\"userId\":\"%s\",\"action\":\"%s\"", user, action);
	*p++ = '}';
	ev_end(cur, p, true);
}

static void
balance_error(const txn_t *t, bool discrepancy)
{
	char uid[37];
	int c = users[t->user].currency;
	money_t sub = t->new_balance, pay = t->new_balance;
	int64_t ms = tick();

	if (discrepancy)
	{
		money_t off = random_amount(c, 10, 3000);
		pay = rng_chance(0.7) ? pay + off : pay - off;
	}
	put_user_id(uid, t->user)[0] = '\0';
	cnt.error_blocks++;
	if (discrepancy)
		cnt.discrepancies++;
	{
		char a[64], b[64];
		*put_money(a, sub) = '\0';
		*put_money(b, pay) = '\0';
		list_add(L_ERR, "{\"userId\": \"%s\", \"subscriptionBalance\": %s, \"paymentBalance\": %s, "
				 "\"discrepancy\": %s, \"txnId\": \"%s\"}",
				 uid, a, b, discrepancy ? "true" : "false", t->id);
	}
	if (opt.csv)
	{
		fprintf(csv_err, "%" PRId64 ",%s,", ++csv_error_id, uid);
		csv_money(csv_err, sub);
		fputc(',', csv_err);
		csv_money(csv_err, pay);
		fputc(',', csv_err);
		csv_ts(csv_err, ms);
		fprintf(csv_err, ",%s,%s,%s,generated\n", t->request, t->message, t->id);
		return;
	}
	char *p = ev_begin(cur);
	p = put_app_prefix(p, ms, cur_request, "ERROR");
	p = put_str(p, "Subscription balance and payment balance are not in sync {\n  userId: ");
	p = put_quoted(p, uid);
	p = put_str(p, ",\n  subscriptionBalance: ");
	p = put_money(p, sub);
	p = put_str(p, ",\n  paymentBalance: ");
	p = put_money(p, pay);
	ev_end(cur, put_str(p, "\n}"), true);
	aws_metric("subBalanceDiscrapancy", uid,
			   t->legacy ? "DELIVERY_DEDUCTION" :
			   (t->credit ? CREDIT_SOURCES[t->src][1] : DEBIT_SOURCES[t->src][1]));
}

/* Builds one transaction of a user with the faults chosen for it. */
/* plant: a PLANT_* kind due (--behaviour), or -1 for no habits at all */
static void
build_transaction(txn_t *t, int64_t u, int plant, bool *dup, bool *conflict, int *error_kind)
{
	user_t *us = &users[u];
	int c = us->currency;
	int minor = CURRENCIES[c].minor;
	money_t tol = tolerance(c);
	bool f_arith = want_fault(F_ARITH);
	bool f_chain = us->has_txn && want_fault(F_CHAIN);
	bool f_drift = !f_arith && want_fault(F_DRIFT);
	bool f_over = !f_arith && !f_drift && want_fault(F_OVERDRAFT);

	memset(t, 0, offsetof(txn_t, metadata));
	t->metadata[0] = '\0';
	t->user = u;
	t->logged_at = clock_ms;
	t->legacy = clock_ms < days_from_civil(2024, 1, 1) * 86400000;
	make_ulid(t->id, clock_ms - (int64_t) rng_below(86400000LL * 150));
	t->old_balance = us->has_txn ? us->balance : random_amount(c, 0, 500);
	if (f_chain)
	{
		money_t off = random_amount(c, 1, 100);
		t->old_balance += rng_chance(0.5) ? off : -off;
		injected[F_CHAIN]++;
	}
	/* natural debits never overdraw; a low balance gets a top-up */
	t->credit = !f_over && rng_chance(t->old_balance < minor_to_money(80, 0) ? 0.85 :
										 t->old_balance < minor_to_money(600, 0) ? 0.12 : 0.03);
	t->src = (int) rng_below(5);
	if (t->credit)
	{
		static const int vat_pct[] = {10, 15, 5, 0};
		t->amount = random_amount(c, 20, 4000);
		int pct = vat_pct[rng_below(4)];
		/* VAT included in the amount, rounded to the minor unit */
		money_t unit = minor_to_money(1, minor);
		money_t raw = t->amount * pct / (100 + pct);
		t->vat = (raw + unit / 2) / unit * unit;
	}
	else if (f_over)
	{
		t->amount = (t->old_balance > 0 ? t->old_balance : 0) + random_amount(c, 1, 60);
		injected[F_OVERDRAFT]++;
	}
	else
	{
		money_t cap = t->old_balance;
		t->amount = random_amount(c, 3, 60);
		if (t->amount > cap)
			t->amount = cap > minor_to_money(1, minor) ? cap : minor_to_money(1, minor);
		if (t->amount > cap)
		{
			t->credit = true;	/* nothing to debit: a top-up instead */
			t->amount = random_amount(c, 20, 400);
		}
		if (!t->credit && rng_chance(0.05))
			t->vat = minor_to_money(t->amount * 5 / 105 / minor_to_money(1, minor), minor);
	}
	if (opt.behaviour > 0 && plant >= 0)
		behaviour_shape(t, plant, f_over, f_arith || f_drift || f_chain);
	{
		/* float noise below 1e-6 in the balance: a debit mostly absorbs it
		 * (old 268.0000000001, amount 308.0000000001, new -40), else it is
		 * carried on exactly; now and then new noise appears */
		money_t grid = minor_to_money(1, 4);
		money_t off = (t->old_balance % grid + grid) % grid;
		money_t noise = off * 2 < grid ? off : off - grid;	/* signed, |noise| < grid / 2 */
		if (noise && !t->credit && rng_chance(0.9) &&
			t->amount + noise > t->vat && t->amount + noise - t->vat <= t->old_balance)
			t->amount += noise;
		else if (rng_chance(0.03) && (t->credit || f_over ||
									  t->amount - t->vat + minor_to_money(1, minor) <= t->old_balance))
			t->amount += money_abs(float_noise());
	}
	money_t net = t->amount - t->vat;
	t->new_balance = t->credit ? t->old_balance + net : t->old_balance - net;
	if (f_arith)
	{
		/* same direction as the movement, so the legacy rule sees it too */
		money_t delta = (t->vat > 0 && rng_chance(0.5)) ? t->vat : random_amount(c, 1, 50);
		t->new_balance += t->credit ? delta : -delta;
		injected[F_ARITH]++;
	}
	if (f_drift)
	{
		money_t delta = rng_chance(0.5) ? money_abs(float_noise())
			: minor_to_money(rng_range(1, 4), minor + 1);
		if (delta >= tol)
			delta = tol - 1;
		t->new_balance += t->credit ? delta : -delta;
		injected[F_DRIFT]++;
	}
	t->payment_balance = t->new_balance;

	*dup = want_fault(F_DUP);
	*conflict = want_fault(F_CONFLICT);
	if (*dup)
		injected[F_DUP]++;
	if (*conflict)
		injected[F_CONFLICT]++;
	*error_kind = 0;
	if (want_fault(F_DISCREP))
	{
		*error_kind = 2;
		injected[F_DISCREP]++;
	}
	else if (want_fault(F_EQUAL_ERR) || (t->new_balance < 0 && rng_chance(0.5)))
	{
		*error_kind = 1;
		injected[F_EQUAL_ERR]++;
	}
}

/* A second delivery of a transaction: identical payload (duplicate) or the
 * same id with another payload (conflict), in a later request of the same
 * file so that it is always read after the original. */
static void
redelivery(const txn_t *orig, bool conflict)
{
	txn_t copy = *orig;
	char message[37];

	if (conflict)
	{
		money_t bump = random_amount(users[orig->user].currency, 1, 20);
		copy.amount += bump;
		copy.new_balance += copy.credit ? bump : -bump;
		copy.payment_balance = copy.new_balance;
	}
	request_start();
	processing_message(message);
	char *p = ev_begin(cur);
	p = put_app_prefix(p, tick(), cur_request, "INFO");
	ev_end(cur, put_txn_body(p, &copy), true);
	cnt.sync_blocks++;
	if (conflict)
	{
		cnt.conflicts++;
		list_add(L_CONFLICT, "\"%s\"", orig->id);
		event_app("INFO", "SubscriptionBalanceUpdated event published");
	}
	else
	{
		cnt.duplicates++;
		list_add(L_DUP, "\"%s\"", orig->id);
		event_app("INFO", "Skipping the process, balance is already synced from other listeners");
	}
	request_end();
}

/* The same debit charged again 2 to 90 s after it (--behaviour): a new
 * transaction that reconciles, listed in the anomaly labels. */
static void
double_charge(const txn_t *orig)
{
	txn_t copy = *orig;
	int64_t u = orig->user;

	request_start();
	processing_message(copy.message);
	make_ulid(copy.id, clock_ms);
	copy.old_balance = users[u].balance;
	copy.new_balance = copy.old_balance - (copy.amount - copy.vat);
	copy.payment_balance = copy.new_balance;
	clock_ms = orig->logged_at + 1000 * rng_range(2, 90);
	copy.logged_at = clock_ms;
	memcpy(copy.request, cur_request, sizeof copy.request);
	judge_transaction(&copy, true, users[u].balance);
	users[u].balance = copy.new_balance;
	txn_done++;
	cnt.sync_blocks++;
	behaviour_doubled(&copy);
	if (opt.csv)
		csv_write_txn(&copy);
	else
	{
		char *p = ev_begin(cur);
		p = put_app_prefix(p, copy.logged_at, cur_request, "INFO");
		ev_end(cur, put_txn_body(p, &copy), true);
		event_app("INFO", "SubscriptionBalanceUpdated event published");
	}
	request_end();
}

#define MAX_MESSAGES 3

void
sync_request(void)
{
	static txn_t batch[MAX_MESSAGES];
	bool dup[MAX_MESSAGES], conflict[MAX_MESSAGES];
	int n = rng_chance(0.85) ? 1 : rng_chance(0.8) ? 2 : 3;
	int doubled = -1;			/* the transaction charged twice (--behaviour) */

	if (n > opt.transactions - txn_done)
		n = (int) (opt.transactions - txn_done);
	request_start();
	for (int i = 0; i < n; i++)
	{
		txn_t *t = &batch[i];
		int plant = opt.behaviour > 0 ? behaviour_due() : PLANT_NONE;
		int64_t u = opt.behaviour > 0 ? behaviour_pick_user(plant)
			: (int64_t) rng_below((uint64_t) opt.users);
		int error_kind;

		if (!opt.csv && rng_chance(0.03))
			transaction_lock_line(u);
		processing_message(t->message);
		build_transaction(t, u, plant, &dup[i], &conflict[i], &error_kind);
		make_metadata(t);
		memcpy(t->request, cur_request, sizeof t->request);
		if (!opt.csv && rng_chance(0.1))
			informational_transaction_line(t);
		if (!opt.csv && rng_chance(0.01))
			record_body_line(t);
		t->logged_at = tick();

		judge_transaction(t, users[u].has_txn, users[u].balance);
		users[u].balance = t->new_balance;
		users[u].has_txn = true;
		txn_done++;
		if (plant == PLANT_DOUBLE && doubled < 0 && !dup[i] && !conflict[i] && !error_kind
			&& behaviour_double_ready(t))
			doubled = i;
		cnt.sync_blocks++;
		if (opt.csv)
			csv_write_txn(t);
		else
		{
			char *p = ev_begin(cur);
			p = put_app_prefix(p, t->logged_at, cur_request, "INFO");
			ev_end(cur, put_txn_body(p, t), true);
			event_app("INFO", "SubscriptionBalanceUpdated event published");
		}
		if (error_kind)
			balance_error(t, error_kind == 2);
	}
	request_end();
	if (!opt.csv)
		for (int i = 0; i < n; i++)
		{
			if (dup[i])
				redelivery(&batch[i], false);
			if (conflict[i])
				redelivery(&batch[i], true);
		}
	if (doubled >= 0 && txn_done < opt.transactions)
		double_charge(&batch[doubled]);
}

void
rejection_request(void)
{
	int64_t u = (int64_t) rng_below((uint64_t) opt.users);
	char uid[37], id[27], bal[64];
	money_t balance = users[u].has_txn ? users[u].balance : 0;

	put_user_id(uid, u)[0] = '\0';
	make_ulid(id, clock_ms - (int64_t) rng_below(86400000LL * 30));
	*put_money(bal, balance) = '\0';
	cnt.rejections++;
	injected[F_REJECT]++;
	list_add(L_REJ, "{\"userId\": \"%s\", \"transactionId\": \"%s\", \"currentBalance\": %s}", uid, id, bal);
	request_start();
	char *p = ev_begin(cur);
	p = put_app_prefix(p, tick(), cur_request, "INFO");
	p += sprintf(p, "{\n  message: 'Subscriber will have a negative balance due to this action, the process will terminate.',\n"
				 "  data: {\n    userId: '%s',\n    currentBalance: %s,\n    transactionId: '%s'\n  }\n}",
				 uid, bal, id);
	ev_end(cur, p, true);
	request_end();
}

/* A transaction event whose object literal is broken: never stored. */
void
malformed_request(void)
{
	txn_t t;
	bool d, c;
	int e;
	int64_t u = (int64_t) rng_below((uint64_t) opt.users);
	user_t saved = users[u];
	int64_t saved_inj[N_FAULTS];
	char body[4096], *end;
	char message[37];

	memcpy(saved_inj, injected, sizeof injected);
	request_start();
	processing_message(message);
	tick();
	build_transaction(&t, u, -1, &d, &c, &e);
	make_metadata(&t);
	users[u] = saved;			/* the wallet never saw it */
	memcpy(injected, saved_inj, sizeof injected);
	end = put_txn_body(body, &t);
	*end = '\0';
	switch (rng_below(3))
	{
		case 0:					/* a value lost: "amount: ," */
			{
				char *a = strstr(body, "amount: ");
				char *comma = strchr(a, ',');
				memmove(a + 8, comma, strlen(comma) + 1);
				break;
			}
		case 1:					/* a number with two decimal points */
			{
				char *a = strstr(body, "oldBalance: ");
				char *comma = strchr(a, ',');
				memmove(comma + 2, comma, strlen(comma) + 1);
				memcpy(comma, strchr(a, '.') && strchr(a, '.') < comma ? ".5" : "..", 2);
				break;
			}
		default:				/* two values for one key: "vat: 0:0," */
			{
				char *a = strstr(body, "vat: ");
				char *comma = strchr(a, ',');
				memmove(comma + 2, comma, strlen(comma) + 1);
				comma[0] = ':';
				comma[1] = '0';
				break;
			}
	}
	char *p = ev_begin(cur);
	p = put_app_prefix(p, t.logged_at, cur_request, "INFO");
	ev_end(cur, put_str(p, body), true);
	cnt.malformed++;
	injected[F_MALFORMED]++;
	request_end();
}

static const char *const SYNC_ERRORS[] = {
	"TypeError: Cannot read properties of null (reading 'getBalance')\n"
	"    at Zi.exec (/src/syncBalance/useCase.ts:55:37)\n"
	"    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
	"ConditionalCheckFailedException: The conditional request failed\n"
	"    at throwDefaultError (/var/task/node_modules/@smithy/smithy-client/dist-cjs/index.js:838:20)\n"
	"    at /var/task/node_modules/@aws-sdk/lib-dynamodb/dist-cjs/index.js:127:12\n"
	"    at async Zi.exec (/src/syncBalance/useCase.ts:71:9)",
	"Error: Transaction lock already exists for user\n"
	"    at Ln.acquire (/src/shared/transactionLock.ts:31:13)\n"
	"    at async Zi.exec (/src/syncBalance/useCase.ts:40:5)",
};

void
sync_error_request(void)
{
	char message[37];
	char text[1024];

	request_start();
	processing_message(message);
	snprintf(text, sizeof text, "An error occured while syncing the balance %s", SYNC_ERRORS[rng_below(3)]);
	event_app("ERROR", text);
	aws_metric("synBalanceError", NULL, NULL);
	cnt.sync_errors++;
	injected[F_SYNC_ERROR]++;
	request_end();
}

void
skip_request(void)
{
	static const char *const actions[] = {"DONATE_RAMADAN_MEAL", "GIFT_CARD", "REFERRAL_BONUS"};
	char text[256];

	request_start();
	if (rng_chance(0.5))
		event_app("INFO", "Skipping the balance sync for create subscription, it will be synced from create subscription payment listener");
	else
	{
		snprintf(text, sizeof text, "Skipping the process, Update Payment Balance Flag is set to false { transactionAction: '%s' }",
				 actions[rng_below(3)]);
		event_app("INFO", text);
	}
	request_end();
}

/* A container that dies: bare platform text, an uncaught exception with an
 * undefined request id, INIT_REPORT; the next request starts a new init. */
void
crash_sequence(void)
{
	char *p = ev_begin(cur);
	p = put_event_ts(p, tick());
	ev_end(cur, put_str(p, "Unknown application error occurred\nRuntime.Unknown"), true);
	p = ev_begin(cur);
	p = put_app_prefix(p, tick(), "undefined", "ERROR");
	p = put_str(p, "Uncaught Exception \t{\"errorType\":\"Error\",\"errorMessage\":\"Cannot find module '/var/task/node_modules/aws-sdk/clients/dynamodb'\","
				"\"stack\":[\"Error: Cannot find module\",\"    at Module._resolve (node:internal/modules:1)\"]}");
	ev_end(cur, p, true);
	p = ev_begin(cur);
	p = put_event_ts(p, tick());
	int			init_ms = (int) rng_range(300, 900);
	int			init_frac = (int) rng_below(100);

	p += sprintf(p, "INIT_REPORT Init Duration: %d.%02d ms\tPhase: invoke\tStatus: error\tError Type: Runtime.ExitError",
				 init_ms, init_frac);
	ev_end(cur, p, true);
	cur->need_init = true;
}

void
invoke_error_request(void)
{
	char message[37];
	request_start();
	processing_message(message);
	char *p = ev_begin(cur);
	p = put_app_prefix(p, tick(), cur_request, "ERROR");
	p = put_str(p, "Invoke Error \t{\"errorType\":\"TimeoutError\",\"errorMessage\":\"Connection timed out after 3000 ms\","
				"\"stack\":[\"TimeoutError: Connection timed out after 3000 ms\",\"    at Timeout._onTimeout (/var/task/node_modules/@smithy/node-http-handler/dist-cjs/index.js:59:19)\","
				"\"    at listOnTimeout (node:internal/timers:573:17)\"]}");
	ev_end(cur, p, true);
	request_end();
}

/* The end of a file cut in the middle of a transaction event. */
void
truncated_tail(stream_t *s)
{
	txn_t t;
	char body[4096];
	int64_t u = (int64_t) rng_below((uint64_t) opt.users);

	memset(&t, 0, offsetof(txn_t, metadata));
	t.user = u;
	t.legacy = clock_ms < days_from_civil(2024, 1, 1) * 86400000;
	t.credit = false;
	make_ulid(t.id, clock_ms);
	strcpy(t.metadata, "{\"version\":\"syncBalanceSQS\"}");
	t.amount = t.new_balance = t.old_balance = t.payment_balance = minor_to_money(5, 0);
	char *end = put_txn_body(body, &t);
	size_t keep = (size_t) (end - body) / 2 + rng_below((size_t) (end - body) / 3);
	char *p = ev_begin(s);
	p = put_app_prefix(p, tick(), cur_request, "INFO");
	memcpy(p, body, keep);
	ev_end(s, p + keep, false);
	cnt.truncated++;
	injected[F_TRUNCATED]++;
}
