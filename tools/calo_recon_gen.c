/*
 * calo_recon_gen: synthetic balance-sync CloudWatch export with an answer key.
 *
 *   calo_recon_gen --seed N --transactions N --out DIR [--users N]
 *       [--start-date YYYY-MM-DD] [--days N] [--fault-rate F]
 *       [--format logs|csv] [--streams N] [--file-kb N] [--level 0-9]
 *
 * Writes DIR/balance-sync-logs/<function-id>/<YYYY-MM-DD>-[$LATEST]<hex>/000000.gz
 * in the layout and event shapes of the real export, junk
 * files beside them, and DIR/answer-key.json: what each injected fault is and
 * the counts that the reconciliation rules (README, "Reconciliation") give
 * on exactly what was written.
 * --format csv writes DIR/transactions.csv and DIR/balance_errors.csv (the
 * columns of calo_recon.transactions / calo_recon.balance_errors) instead.
 *
 * Output is a pure function of the arguments (own PRNG, gzip header without
 * mtime); memory is O(users): the log text is streamed and the answer-key
 * lists go through temporary files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

/* ------------------------------------------------------------------ */
/* Exact money: signed 128-bit count of 1e-12 units, enough for float  */
/* noise such as 11608.930300000001 without any rounding.              */

typedef __int128 money_t;
#define PICO ((money_t) 1000000000000LL)

static money_t
minor_to_money(int64_t minor_units, int minor)
{
	money_t unit = 1;
	for (int i = 0; i < 12 - minor; i++)
		unit *= 10;
	return (money_t) minor_units * unit;
}

static money_t
money_abs(money_t v)
{
	return v < 0 ? -v : v;
}

static char *
put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Shortest exact decimal, like JavaScript prints a number. */
static char *
put_money(char *p, money_t v)
{
	if (v < 0)
	{
		*p++ = '-';
		v = -v;
	}
	p = put_u64(p, (uint64_t) (v / PICO));
	uint64_t frac = (uint64_t) (v % PICO);
	if (frac)
	{
		char d[12];
		int len = 12;
		for (int i = 11; i >= 0; i--)
		{
			d[i] = (char) ('0' + frac % 10);
			frac /= 10;
		}
		while (d[len - 1] == '0')
			len--;
		*p++ = '.';
		memcpy(p, d, (size_t) len);
		p += len;
	}
	return p;
}

/* ------------------------------------------------------------------ */
/* Deterministic randomness: splitmix64.                               */

static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t
mix64(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* uniform in [0, n).  Never call the PRNG twice in one argument list: the
 * order C evaluates arguments in is unspecified, and output must not depend
 * on the compiler. */
static uint64_t
rng_below(uint64_t n)
{
	return n ? rng_next() % n : 0;
}

static int64_t
rng_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t) rng_below((uint64_t) (hi - lo + 1));
}

static bool
rng_chance(double p)
{
	return (double) (rng_next() >> 11) * (1.0 / 9007199254740992.0) < p;
}

static const char HEX[] = "0123456789abcdef";

static char *
put_hex(char *p, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--)
		p[i] = HEX[(v >> (4 * (digits - 1 - i))) & 15];
	return p + digits;
}

/* version-4 style UUID from two 64-bit words */
static char *
put_uuid_words(char *p, uint64_t a, uint64_t b)
{
	a = (a & ~0xF000ULL) | 0x4000ULL;
	b = (b & ~(3ULL << 62)) | (2ULL << 62);
	p = put_hex(p, a >> 32, 8);
	*p++ = '-';
	p = put_hex(p, (a >> 16) & 0xFFFF, 4);
	*p++ = '-';
	p = put_hex(p, a & 0xFFFF, 4);
	*p++ = '-';
	p = put_hex(p, b >> 48, 4);
	*p++ = '-';
	return put_hex(p, b & 0xFFFFFFFFFFFFULL, 12);
}

static char *
put_uuid(char *p)
{
	uint64_t a = rng_next();
	return put_uuid_words(p, a, rng_next());
}

/* ULID: 48-bit millisecond time + 80 random bits, Crockford base32 */
static void
make_ulid(char out[27], int64_t ms)
{
	static const char B32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t r1 = rng_next(), r2 = rng_next() & 0xFFFF;

	for (int i = 9; i >= 0; i--)
	{
		out[i] = B32[ms & 31];
		ms >>= 5;
	}
	/* 80 random bits = 16 chars of 5 bits */
	for (int i = 25; i >= 10; i--)
	{
		out[i] = B32[r1 & 31];
		r1 = (r1 >> 5) | ((r2 & 31) << 59);
		r2 >>= 5;
	}
	out[26] = '\0';
}

/* ------------------------------------------------------------------ */
/* Calendar                                                           */

static int64_t
days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yoe + era * 400 + (*m <= 2));
}

static char *
put_2(char *p, int v)
{
	*p++ = (char) ('0' + v / 10);
	*p++ = (char) ('0' + v % 10);
	return p;
}

static char *
put_date(char *p, int64_t day)
{
	int y, m, d;
	civil_from_days(day, &y, &m, &d);
	p = put_2(p, y / 100);
	p = put_2(p, y % 100);
	*p++ = '-';
	p = put_2(p, m);
	*p++ = '-';
	return put_2(p, d);
}

/* 2024-01-14T21:00:00.104Z */
static char *
put_ts(char *p, int64_t ms)
{
	int64_t day = ms / 86400000, rem = ms % 86400000;
	p = put_date(p, day);
	*p++ = 'T';
	p = put_2(p, (int) (rem / 3600000));
	*p++ = ':';
	p = put_2(p, (int) (rem / 60000 % 60));
	*p++ = ':';
	p = put_2(p, (int) (rem / 1000 % 60));
	*p++ = '.';
	*p++ = (char) ('0' + rem % 1000 / 100);
	p = put_2(p, (int) (rem % 100));
	*p++ = 'Z';
	return p;
}

/* ------------------------------------------------------------------ */
/* Settings and state                                                  */

typedef struct
{
	const char *code;
	int			minor;
} currency_t;

static const currency_t CURRENCIES[] = {
	{"BHD", 3}, {"SAR", 2}, {"AED", 2}, {"KWD", 3}, {"QAR", 2}
};
#define N_CURRENCIES 5

typedef struct
{
	money_t		balance;		/* last newBalance as logged */
	uint8_t		currency;
	bool		has_txn;
} user_t;

static struct
{
	uint64_t	seed;
	int64_t		transactions;
	int64_t		users;
	int64_t		start_day;
	int64_t		days;
	double		fault_rate;
	bool		csv;
	int			streams;
	int64_t		file_bytes;
	int			level;
	int64_t		key_list_limit;
	const char *out;
} opt;

static user_t *users;
static uint64_t user_salt;
static char function_id[37];
static int64_t clock_ms;
static int64_t start_ms, slot_ms, intra_max;

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("calo_recon_gen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *
xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static void
mkdirs(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *s = buf + 1; *s; s++)
		if (*s == '/')
		{
			*s = '\0';
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				die("cannot create %s: %s", buf, strerror(errno));
			*s = '/';
		}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		die("cannot create %s: %s", buf, strerror(errno));
}

static char *
put_user_id(char *p, int64_t u)
{
	return put_uuid_words(p, mix64(user_salt ^ (uint64_t) u * 2),
						  mix64(user_salt ^ ((uint64_t) u * 2 + 1)));
}

/* ------------------------------------------------------------------ */
/* Answer-key accumulation: counts plus lists streamed to temp files.  */

enum
{
	L_TXN, L_ERR, L_REJ, L_FILE, L_DUP, L_ARITH, L_CHAIN, L_DRIFT,
	L_OVER, L_CONFLICT, L_JUNK, N_LISTS
};

static const char *const LIST_NAMES[N_LISTS] = {
	"transactions", "errors", "negative_balance_rejections", "files",
	"duplicate_deliveries", "arithmetic_break_ids", "chain_break_ids",
	"precision_drift_ids", "overdraft_ids", "conflict_ids", "junk_files"
};

static FILE *lists[N_LISTS];
static int64_t list_n[N_LISTS];

static struct
{
	int64_t		events, sync_blocks, duplicates, conflicts, distinct, error_blocks,
				discrepancies, rejections, overdrafts, arith, chain, drift,
				malformed, truncated, junk, log_files, legacy, sync_errors,
				requests, bytes_text;
} cnt;

static void
list_add(int which, const char *fmt, ...)
{
	va_list ap;
	FILE *f = lists[which];
	if (list_n[which]++)
		fputs(",\n", f);
	fputs(which == L_TXN || which == L_ERR || which == L_REJ ? "  " : "   ", f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Log streams: one gzip file per Lambda container and day.           */

typedef struct
{
	bool		open;
	FILE	   *file;
	z_stream	z;
	char	   *buf;
	size_t		len;
	int64_t		text_bytes;
	int64_t		events;
	bool		need_init;		/* next request starts with INIT_START */
} stream_t;

#define BUF_CAP (256 * 1024)
#define EVENT_MAX (64 * 1024)

static stream_t *streams;
static unsigned char zout[BUF_CAP];
static int64_t stream_day = -1;

static void
stream_flush(stream_t *s, int mode)
{
	s->z.next_in = (unsigned char *) s->buf;
	s->z.avail_in = (uInt) s->len;
	do
	{
		s->z.next_out = zout;
		s->z.avail_out = sizeof zout;
		if (deflate(&s->z, mode) == Z_STREAM_ERROR)
			die("deflate failed");
		size_t have = sizeof zout - s->z.avail_out;
		if (have && fwrite(zout, 1, have, s->file) != have)
			die("write failed: %s", strerror(errno));
	} while (s->z.avail_out == 0 || (mode == Z_FINISH && s->z.avail_in));
	s->len = 0;
}

static void
stream_open(stream_t *s)
{
	char rel[512], path[4096];
	char hex[33];
	char *p = rel;

	put_hex(hex, rng_next(), 16);
	put_hex(hex + 16, rng_next(), 16);
	hex[32] = '\0';
	p += sprintf(p, "balance-sync-logs/%s/", function_id);
	p = put_date(p, stream_day);
	sprintf(p, "-[$LATEST]%s", hex);
	snprintf(path, sizeof path, "%s/%s", opt.out, rel);
	mkdirs(path);
	strcat(path, "/000000.gz");
	s->file = fopen(path, "wb");
	if (!s->file)
		die("cannot write %s: %s", path, strerror(errno));
	memset(&s->z, 0, sizeof s->z);
	/* windowBits 15 + 16: gzip wrapper; its header has mtime 0 */
	if (deflateInit2(&s->z, opt.level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		die("deflateInit2 failed");
	if (!s->buf)
		s->buf = xmalloc(BUF_CAP + EVENT_MAX);
	s->len = 0;
	s->text_bytes = 0;
	s->events = 0;
	s->open = true;
	s->need_init = true;
	cnt.log_files++;
	list_add(L_FILE, "\"%s/000000.gz\"", rel);
}

/* Every event is its text followed by a blank line. */
static char *
ev_begin(stream_t *s)
{
	return s->buf + s->len;
}

static void
ev_end(stream_t *s, char *end, bool terminated)
{
	if (terminated)
	{
		*end++ = '\n';
		*end++ = '\n';
	}
	size_t n = (size_t) (end - (s->buf + s->len));
	s->len += n;
	s->text_bytes += (int64_t) n;
	cnt.bytes_text += (int64_t) n;
	s->events++;
	cnt.events++;
	if (s->len >= BUF_CAP)
		stream_flush(s, Z_NO_FLUSH);
}

static char *
put_str(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

static char *
put_event_ts(char *p, int64_t ms)
{
	p = put_ts(p, ms);
	*p++ = ' ';
	return p;
}

/* "<ts> <ts>\t<request>\t<LEVEL>\t" */
static char *
put_app_prefix(char *p, int64_t ms, const char *request, const char *level)
{
	p = put_event_ts(p, ms);
	p = put_ts(p, ms);
	*p++ = '\t';
	p = put_str(p, request);
	*p++ = '\t';
	p = put_str(p, level);
	*p++ = '\t';
	return p;
}

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

typedef struct
{
	char		id[27];
	int64_t		user;
	bool		legacy;
	bool		credit;
	int			src;			/* index into SOURCES */
	money_t		amount, vat, old_balance, new_balance, payment_balance;
	char		metadata[1024]; /* JSON text, or "" for undefined */
	int64_t		logged_at;
	char		request[37], message[37];
} txn_t;

static const char *const DEBIT_SOURCES[][2] = {
	{"MANUAL_DEDUCTION", "DELIVERY_DEDUCTION"},
	{"MANUAL_DEDUCTION", "DELIVERY_DEDUCTION"},
	{"MANUAL_DEDUCTION", "DELIVERY_DEDUCTION"},
	{"SUBSCRIPTION", "ADD_ON_DEDUCTION"},
	{"MANUAL_DEDUCTION", "DONATE_RAMADAN_MEAL"},
};
static const char *const CREDIT_SOURCES[][2] = {
	{"PAYMENT", "RENEW_SUBSCRIPTION"},
	{"PAYMENT", "RENEW_SUBSCRIPTION"},
	{"PAYMENT", "PAY_PENDING_AMOUNT"},
	{"PAYMENT", "ADD_TO_WALLET"},
	{"REFUND", "REFUND_DELIVERY"},
};

static money_t
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

enum
{
	F_ARITH, F_CHAIN, F_DRIFT, F_OVERDRAFT, F_DUP, F_CONFLICT, F_DISCREP,
	F_EQUAL_ERR, F_REJECT, F_MALFORMED, F_TRUNCATED, F_SYNC_ERROR, N_FAULTS
};
static int64_t injected[N_FAULTS];
static int64_t txn_done;

static bool
want_fault(int kind)
{
	if (rng_chance(opt.fault_rate))
		return true;
	return opt.fault_rate > 0 && injected[kind] == 0 &&
		txn_done >= (kind + 1) * opt.transactions / (N_FAULTS + 2);
}

/* ------------------------------------------------------------------ */
/* CSV output                                                           */

static FILE *csv_txn, *csv_err;
static int64_t csv_error_id;

static void
csv_text(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n\r"))
	{
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++)
	{
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void
csv_money(FILE *f, money_t v)
{
	char b[64];
	*put_money(b, v) = '\0';
	fputs(b, f);
}

static void
csv_ts(FILE *f, int64_t ms)
{
	char b[32];
	*put_ts(b, ms) = '\0';
	fputs(b, f);
}

static void
csv_write_txn(const txn_t *t)
{
	char uid[37];
	int c = users[t->user].currency;
	const char *const *src = t->credit ? CREDIT_SOURCES[t->src] : DEBIT_SOURCES[t->src];

	put_user_id(uid, t->user)[0] = '\0';
	fprintf(csv_txn, "%s,%s,", t->id, uid);
	if (!t->legacy)
		fprintf(csv_txn, "%s,%s,%s", t->credit ? "CREDIT" : "DEBIT", src[0], src[1]);
	else
		fputs(",,", csv_txn);
	fprintf(csv_txn, ",%s,", CURRENCIES[c].code);
	csv_money(csv_txn, t->amount);
	fputc(',', csv_txn);
	csv_money(csv_txn, t->vat);
	fputc(',', csv_txn);
	csv_money(csv_txn, t->old_balance);
	fputc(',', csv_txn);
	csv_money(csv_txn, t->new_balance);
	fputc(',', csv_txn);
	if (!t->legacy)
	{
		csv_money(csv_txn, t->payment_balance);
		fputs(",true,", csv_txn);
		if (t->metadata[0])
			csv_text(csv_txn, t->metadata);
	}
	else
		fputs(",,", csv_txn);
	fputc(',', csv_txn);
	csv_ts(csv_txn, t->logged_at);
	fprintf(csv_txn, ",%s,%s,generated\n", t->request, t->message);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static stream_t *cur;			/* stream of the request being written */
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

/* The reconciliation rules on the values as written; adds the transaction to the key. */
static void
judge_transaction(const txn_t *t, bool has_prev, money_t prev_new)
{
	int c = users[t->user].currency;
	money_t tol = tolerance(c);
	money_t net = t->amount - t->vat;
	money_t expected;
	const char *truth[4];
	int nt = 0;
	char uid[37];

	if (t->legacy)
	{
		money_t move = t->new_balance - t->old_balance;
		expected = t->old_balance + (move > 0 ? net : move < 0 ? -net : 0);
	}
	else
		expected = t->credit ? t->old_balance + net : t->old_balance - net;
	money_t diff = money_abs(t->new_balance - expected);

	if (diff >= tol)
	{
		truth[nt++] = "arithmetic_break";
		cnt.arith++;
		list_add(L_ARITH, "\"%s\"", t->id);
	}
	else if (diff > 0)
	{
		truth[nt++] = "precision_drift";
		cnt.drift++;
		list_add(L_DRIFT, "\"%s\"", t->id);
	}
	if (has_prev && money_abs(t->old_balance - prev_new) >= tol)
	{
		truth[nt++] = "chain_break";
		cnt.chain++;
		list_add(L_CHAIN, "\"%s\"", t->id);
	}
	if (t->new_balance < 0)
	{
		truth[nt++] = "overdraft";
		cnt.overdrafts++;
		list_add(L_OVER, "\"%s\"", t->id);
	}
	cnt.distinct++;
	if (t->legacy)
		cnt.legacy++;
	if (list_n[L_TXN] < opt.key_list_limit)
	{
		char tl[96] = "";
		for (int i = 0; i < nt; i++)
		{
			strcat(tl, i ? ", \"" : "\"");
			strcat(tl, truth[i]);
			strcat(tl, "\"");
		}
		put_user_id(uid, t->user)[0] = '\0';
		list_add(L_TXN, "{\"id\": \"%s\", \"userId\": \"%s\", \"legacy\": %s, \"truth\": [%s]}",
				 t->id, uid, t->legacy ? "true" : "false", tl);
	}
}

/* Builds one transaction of a user with the faults chosen for it. */
static void
build_transaction(txn_t *t, int64_t u, bool *dup, bool *conflict, int *error_kind)
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

#define MAX_MESSAGES 3

static void
sync_request(void)
{
	static txn_t batch[MAX_MESSAGES];
	bool dup[MAX_MESSAGES], conflict[MAX_MESSAGES];
	int n = rng_chance(0.85) ? 1 : rng_chance(0.8) ? 2 : 3;

	if (n > opt.transactions - txn_done)
		n = (int) (opt.transactions - txn_done);
	request_start();
	for (int i = 0; i < n; i++)
	{
		txn_t *t = &batch[i];
		int64_t u = (int64_t) rng_below((uint64_t) opt.users);
		int error_kind;

		if (!opt.csv && rng_chance(0.03))
			transaction_lock_line(u);
		processing_message(t->message);
		build_transaction(t, u, &dup[i], &conflict[i], &error_kind);
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
}

static void
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
static void
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
	build_transaction(&t, u, &d, &c, &e);
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

static void
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

static void
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
static void
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

static void
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
static void
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

static void
stream_close(stream_t *s, bool last)
{
	if (!s->open)
		return;
	if (rng_chance(opt.fault_rate) || (opt.fault_rate > 0 && injected[F_TRUNCATED] == 0 &&
										(last || txn_done * 2 >= opt.transactions)))
		truncated_tail(s);
	stream_flush(s, Z_FINISH);
	deflateEnd(&s->z);
	if (fclose(s->file) != 0)
		die("write failed: %s", strerror(errno));
	s->open = false;
}

/* Picks the stream of the next request: a day change closes every stream,
 * a full one is closed and replaced by a new container. */
static void
pick_stream(void)
{
	int64_t day = clock_ms / 86400000;

	if (opt.csv)
		return;
	if (day != stream_day)
	{
		for (int i = 0; i < opt.streams; i++)
			stream_close(&streams[i], false);
		stream_day = day;
	}
	cur = &streams[rng_below((uint64_t) opt.streams)];
	if (cur->open && cur->text_bytes >= opt.file_bytes)
		stream_close(cur, false);
	if (!cur->open)
		stream_open(cur);
}

/* ------------------------------------------------------------------ */
/* Junk in the tree, as real exports have.                             */

static void
write_file(const char *rel, const void *data, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", opt.out, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	mkdirs(path);
	*slash = '/';
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
		die("cannot write %s: %s", path, strerror(errno));
	cnt.junk++;
	list_add(L_JUNK, "\"%s\"", rel);
}

static void
write_junk(void)
{
	static const unsigned char ds_store[] = {
		0, 0, 0, 1, 'B', 'u', 'd', '1', 0, 0, 16, 0, 0, 0, 8, 0,
		0, 0, 16, 0, 0, 0, 4, 12, 0, 0, 0, 0, 0, 0, 0, 0
	};
	char rel[512];
	unsigned char bin[2048];

	write_file("balance-sync-logs/.DS_Store", ds_store, sizeof ds_store);
	snprintf(rel, sizeof rel, "balance-sync-logs/%s/.DS_Store", function_id);
	write_file(rel, ds_store, sizeof ds_store);
	snprintf(rel, sizeof rel, "balance-sync-logs/%s/empty.log", function_id);
	write_file(rel, "", 0);
	const char *note = "CloudWatch Logs export task\nlog group: /aws/lambda/balance-sync\n"
		"exported by: finance-ops\nThis folder holds one gzip file per log stream and day.\n";
	write_file("balance-sync-logs/export-notes.txt", note, strlen(note));
	for (size_t i = 0; i < sizeof bin; i += 8)
	{
		uint64_t r = rng_next();
		memcpy(bin + i, &r, 8);
	}
	bin[0] = 0x89;				/* looks like a PNG, is noise */
	memcpy(bin + 1, "PNG\r\n\032\n", 7);
	snprintf(rel, sizeof rel, "balance-sync-logs/%s/thumbnail.png", function_id);
	write_file(rel, bin, sizeof bin);
}

/* ------------------------------------------------------------------ */
/* Answer key                                                           */

static void
copy_list(FILE *out, int which, const char *indent)
{
	char buf[65536];
	size_t n;

	fputs("[", out);
	if (list_n[which])
	{
		fputc('\n', out);
		rewind(lists[which]);
		while ((n = fread(buf, 1, sizeof buf, lists[which])) > 0)
			fwrite(buf, 1, n, out);
		fprintf(out, "\n%s", indent);
	}
	fputs("]", out);
}

static void
write_answer_key(void)
{
	char path[4096], start[16];
	snprintf(path, sizeof path, "%s/answer-key.json", opt.out);
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot write %s: %s", path, strerror(errno));
	*put_date(start, opt.start_day) = '\0';

	fprintf(f, "{\n \"generator\": {\"seed\": %" PRIu64 ", \"transactions\": %" PRId64 ", \"users\": %" PRId64
			", \"start_date\": \"%s\", \"days\": %" PRId64 ", \"fault_rate\": %g, \"format\": \"%s\", "
			"\"transactions_listed\": %s},\n",
			opt.seed, opt.transactions, opt.users, start, opt.days, opt.fault_rate,
			opt.csv ? "csv" : "logs", list_n[L_TXN] == cnt.distinct ? "true" : "false");
	const int top[] = {L_TXN, L_ERR, L_REJ, L_FILE, L_DUP, L_JUNK};
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
	{
		fprintf(f, " \"%s\": ", LIST_NAMES[top[i]]);
		copy_list(f, top[i], " ");
		fputs(",\n", f);
	}
	fprintf(f, " \"expected\": {\n"
			"  \"events\": %" PRId64 ",\n  \"log_files\": %" PRId64 ",\n  \"sync_blocks\": %" PRId64 ",\n"
			"  \"duplicate_deliveries\": %" PRId64 ",\n  \"conflicts\": %" PRId64 ",\n"
			"  \"distinct_transactions\": %" PRId64 ",\n  \"legacy_transactions\": %" PRId64 ",\n"
			"  \"error_blocks\": %" PRId64 ",\n  \"discrepancies\": %" PRId64 ",\n"
			"  \"negative_balance_rejections\": %" PRId64 ",\n  \"overdrafts\": %" PRId64 ",\n"
			"  \"arithmetic_breaks\": %" PRId64 ",\n  \"chain_breaks\": %" PRId64 ",\n"
			"  \"precision_drift\": %" PRId64 ",\n  \"malformed_events\": %" PRId64 ",\n"
			"  \"truncated_events\": %" PRId64 ",\n  \"sync_errors\": %" PRId64 ",\n"
			"  \"junk_files\": %" PRId64 ",\n",
			cnt.events, cnt.log_files, cnt.sync_blocks, cnt.duplicates, cnt.conflicts,
			cnt.distinct, cnt.legacy, cnt.error_blocks, cnt.discrepancies, cnt.rejections,
			cnt.overdrafts, cnt.arith, cnt.chain, cnt.drift, cnt.malformed, cnt.truncated,
			cnt.sync_errors, cnt.junk);
	const int ids[] = {L_ARITH, L_CHAIN, L_DRIFT, L_OVER, L_CONFLICT};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
	{
		fprintf(f, "  \"%s\": ", LIST_NAMES[ids[i]]);
		copy_list(f, ids[i], "  ");
		fputs(i + 1 < sizeof ids / sizeof ids[0] ? ",\n" : "\n", f);
	}
	fputs(" }\n}\n", f);
	if (fclose(f) != 0)
		die("cannot write %s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------------ */

static void
usage(void)
{
	fputs("usage: calo_recon_gen --seed N --transactions N --out DIR [options]\n"
		  "Writes a synthetic balance-sync CloudWatch export with injected faults and\n"
		  "DIR/answer-key.json; the same arguments always give the same bytes.\n"
		  "  --seed N              PRNG seed\n"
		  "  --transactions N      distinct wallet transactions to write\n"
		  "  --out DIR             output folder (created)\n"
		  "  --users N             wallets (default transactions / 20, at least 3)\n"
		  "  --start-date DATE     first day, YYYY-MM-DD (default: the span straddles\n"
		  "                        2024-01-01: legacy 7-key form before, 13-key after)\n"
		  "  --days N              days covered (default 4, 10 or 31 by size)\n"
		  "  --fault-rate F        rate of each injected fault, 0..0.2 (default 0.01)\n"
		  "  --format logs|csv     gzip log tree (default) or transactions.csv +\n"
		  "                        balance_errors.csv for COPY\n"
		  "  --streams N           concurrent log streams per day (default 3)\n"
		  "  --file-kb N           log text per file before a new stream (default 100)\n"
		  "  --level 0-9           gzip level (default 6; 1 above 200k transactions)\n"
		  "  --key-list-limit N    most transactions listed in the key (default 200000)\n",
		  stderr);
	exit(2);
}

static int64_t
parse_int(const char *name, const char *v, int64_t lo, int64_t hi)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || *end || end == v || x < lo || x > hi)
		die("%s must be an integer in [%" PRId64 ", %" PRId64 "], got \"%s\"", name, lo, hi, v);
	return x;
}

static void
parse_args(int argc, char **argv)
{
	bool have_seed = false, have_n = false, have_start = false;
	int y = 2023, m = 12, d = 16;

	opt.days = -1;
	opt.fault_rate = 0.01;
	opt.streams = 3;
	opt.file_bytes = 100 * 1024;
	opt.level = -1;
	opt.key_list_limit = 200000;
	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			usage();
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--seed"))
		{
			char *end;
			errno = 0;
			opt.seed = strtoull(v, &end, 10);
			if (errno || *end || end == v)
				die("--seed must be a non-negative integer");
			have_seed = true;
		}
		else if (!strcmp(a, "--transactions"))
		{
			opt.transactions = parse_int(a, v, 1, 1000000000);
			have_n = true;
		}
		else if (!strcmp(a, "--users"))
			opt.users = parse_int(a, v, 1, 100000000);
		else if (!strcmp(a, "--days"))
			opt.days = parse_int(a, v, 1, 3650);
		else if (!strcmp(a, "--streams"))
			opt.streams = (int) parse_int(a, v, 1, 64);
		else if (!strcmp(a, "--file-kb"))
			opt.file_bytes = parse_int(a, v, 1, 1024 * 1024) * 1024;
		else if (!strcmp(a, "--level"))
			opt.level = (int) parse_int(a, v, 0, 9);
		else if (!strcmp(a, "--key-list-limit"))
			opt.key_list_limit = parse_int(a, v, 0, INT64_MAX);
		else if (!strcmp(a, "--start-date"))
		{
			if (sscanf(v, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31 ||
				y < 2000 || y > 2100)
				die("--start-date must be YYYY-MM-DD, got \"%s\"", v);
			have_start = true;
		}
		else if (!strcmp(a, "--fault-rate"))
		{
			char *end;
			opt.fault_rate = strtod(v, &end);
			if (*end || end == v || !(opt.fault_rate >= 0 && opt.fault_rate <= 0.2))
				die("--fault-rate must be a number in [0, 0.2], got \"%s\"", v);
		}
		else if (!strcmp(a, "--format"))
		{
			if (!strcmp(v, "csv"))
				opt.csv = true;
			else if (strcmp(v, "logs"))
				die("--format must be logs or csv");
		}
		else if (!strcmp(a, "--out"))
			opt.out = v;
		else
			usage();
	}
	if (!have_seed || !have_n || !opt.out)
		usage();
	opt.start_day = days_from_civil(y, m, d);
	if (opt.users == 0)
		opt.users = opt.transactions / 20 > 3 ? opt.transactions / 20 : 3;
	/* zlib's default level like the real export; level 1 for big runs */
	if (opt.level < 0)
		opt.level = opt.transactions <= 200000 ? 6 : 1;
	if (opt.days < 0)
		opt.days = opt.transactions < 500 ? 4 : opt.transactions < 5000 ? 10 : 31;
	/* by default the span straddles New Year: legacy form before, current after */
	if (!have_start)
		opt.start_day = days_from_civil(2024, 1, 1) - opt.days / 2;
}

int
main(int argc, char **argv)
{
	struct timespec t0, t1;

	parse_args(argc, argv);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rng_state = mix64(opt.seed ^ 0x63616c6f5f726563ULL);
	user_salt = rng_next();
	{
		uint64_t	a = rng_next();

		*put_uuid_words(function_id, a, rng_next()) = '\0';
	}
	users = xmalloc(sizeof(user_t) * (size_t) opt.users);
	for (int64_t u = 0; u < opt.users; u++)
		users[u].currency = (uint8_t) rng_below(N_CURRENCIES);
	for (int i = 0; i < N_LISTS; i++)
		if (!(lists[i] = tmpfile()))
			die("cannot create a temporary file: %s", strerror(errno));
	streams = xmalloc(sizeof(stream_t) * (size_t) opt.streams);
	mkdirs(opt.out);

	if (opt.csv)
	{
		char path[4096];
		snprintf(path, sizeof path, "%s/transactions.csv", opt.out);
		csv_txn = fopen(path, "w");
		snprintf(path, sizeof path, "%s/balance_errors.csv", opt.out);
		csv_err = fopen(path, "w");
		if (!csv_txn || !csv_err)
			die("cannot write CSV files in %s: %s", opt.out, strerror(errno));
		fputs("txn_id,user_id,txn_type,source,action,currency,amount,vat,old_balance,new_balance,"
			  "payment_balance,update_payment_balance,metadata,logged_at,request_id,message_id,source_file\n", csv_txn);
		fputs("error_id,user_id,subscription_balance,payment_balance,logged_at,request_id,message_id,txn_id,source_file\n", csv_err);
	}

	/* Transaction i is due near start + i * slot, so the run spans --days
	 * whatever the size; events of a request follow 1..intra_max ms apart. */
	start_ms = opt.start_day * 86400000;
	slot_ms = opt.days * 86400000 / opt.transactions;
	intra_max = slot_ms / 16 < 1 ? 1 : slot_ms / 16 > 90 ? 90 : slot_ms / 16;
	clock_ms = start_ms;

	while (txn_done < opt.transactions)
	{
		int64_t due = start_ms + (int64_t) ((double) (opt.days * 86400000) * (double) txn_done /
											(double) opt.transactions) + (int64_t) rng_below((uint64_t) slot_ms + 1);
		clock_ms = due > clock_ms ? due : clock_ms + 1;
		pick_stream();
		if (opt.csv)
		{
			sync_request();
			continue;
		}
		if (want_fault(F_REJECT) && rng_chance(0.5))
			rejection_request();
		else if (want_fault(F_MALFORMED) && rng_chance(0.5))
			malformed_request();
		else if (want_fault(F_SYNC_ERROR) && rng_chance(0.5))
			sync_error_request();
		else if (rng_chance(0.05))
			skip_request();
		else if (rng_chance(0.003))
			crash_sequence();
		else if (rng_chance(0.003))
			invoke_error_request();
		else
			sync_request();
	}
	if (!opt.csv)
	{
		for (int i = 0; i < opt.streams; i++)
			stream_close(&streams[i], true);
		write_junk();
	}
	else if (fclose(csv_txn) != 0 || fclose(csv_err) != 0)
		die("write failed: %s", strerror(errno));
	write_answer_key();

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "calo_recon_gen: %" PRId64 " transactions, %" PRId64 " events, %" PRId64
			" log files, %.1f MB of log text in %.2f s (%.1f MB/s)\n",
			cnt.distinct, cnt.events, cnt.log_files, (double) cnt.bytes_text / 1e6, secs,
			secs > 0 ? (double) cnt.bytes_text / 1e6 / secs : 0.0);
	return 0;
}
