/*
 * gen.h: what the parts of calo_recon_gen share (the .c files of tools/gen).
 *
 * The generator is single-threaded and writes one export per run, so its
 * state is a handful of globals defined in the part that owns them.
 */
#ifndef CALO_RECON_GEN_H
#define CALO_RECON_GEN_H

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
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

/* Exact money: signed 128-bit count of 1e-12 units, enough for float noise
 * such as 11608.930300000001 without any rounding. */
typedef __int128 money_t;
#define PICO ((money_t) 1000000000000LL)

typedef struct
{
	const char *code;
	int			minor;
} currency_t;

#define N_CURRENCIES 5

typedef struct
{
	money_t		balance;		/* last newBalance as logged */
	uint8_t		currency;
	bool		has_txn;
} user_t;

typedef struct
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
	double		behaviour;		/* planted behavioural anomalies per transaction, 0: off */
	const char *out;
} options_t;

enum
{
	L_TXN, L_ERR, L_REJ, L_FILE, L_DUP, L_ARITH, L_CHAIN, L_DRIFT,
	L_OVER, L_CONFLICT, L_JUNK, N_LISTS
};

typedef struct
{
	int64_t		events, sync_blocks, duplicates, conflicts, distinct, error_blocks,
				discrepancies, rejections, overdrafts, arith, chain, drift,
				malformed, truncated, junk, log_files, legacy, sync_errors,
				requests, bytes_text;
} counts_t;

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

enum
{
	F_ARITH, F_CHAIN, F_DRIFT, F_OVERDRAFT, F_DUP, F_CONFLICT, F_DISCREP,
	F_EQUAL_ERR, F_REJECT, F_MALFORMED, F_TRUNCATED, F_SYNC_ERROR, N_FAULTS
};

/* main.c: options, the wallets and main() */
extern const currency_t CURRENCIES[];
extern int64_t clock_ms;
extern char function_id[37];
extern int64_t start_ms, slot_ms, intra_max;
extern user_t *users;
extern options_t opt;
extern void die(const char *fmt, ...);
extern void mkdirs(const char *path);
extern char *put_user_id(char *p, int64_t u);
extern void *xmalloc(size_t n);

/* format.c: exact money, randomness, calendar and the text of log lines */
extern uint64_t rng_state;
extern void civil_from_days(int64_t z, int *y, int *m, int *d);
extern int64_t days_from_civil(int y, int m, int d);
extern void make_ulid(char out[27], int64_t ms);
extern money_t minor_to_money(int64_t minor_units, int minor);
extern uint64_t mix64(uint64_t z);
extern money_t money_abs(money_t v);
extern char *put_app_prefix(char *p, int64_t ms, const char *request, const char *level);
extern char *put_date(char *p, int64_t day);
extern char *put_event_ts(char *p, int64_t ms);
extern char *put_hex(char *p, uint64_t v, int digits);
extern char *put_money(char *p, money_t v);
extern char *put_str(char *p, const char *s);
extern char *put_ts(char *p, int64_t ms);
extern char *put_uuid(char *p);
extern char *put_uuid_words(char *p, uint64_t a, uint64_t b);
extern uint64_t rng_below(uint64_t n);
extern bool rng_chance(double p);
extern uint64_t rng_next(void);
extern int64_t rng_range(int64_t lo, int64_t hi);

/* streams.c: the files of the export: gzip log streams, CSV, junk */
extern FILE *csv_txn, *csv_err;
extern int64_t csv_error_id;
extern stream_t *streams;
extern void csv_money(FILE *f, money_t v);
extern void csv_ts(FILE *f, int64_t ms);
extern void csv_write_txn(const txn_t *t);
extern char *ev_begin(stream_t *s);
extern void ev_end(stream_t *s, char *end, bool terminated);
extern void pick_stream(void);
extern void stream_close(stream_t *s, bool last);
extern void write_junk(void);

/* events.c: transactions, faults and the requests that log them */
extern const char *const CREDIT_SOURCES[][2];
extern const char *const DEBIT_SOURCES[][2];
extern stream_t *cur;
extern int64_t injected[N_FAULTS];
extern int64_t txn_done;
extern void crash_sequence(void);
extern void invoke_error_request(void);
extern void malformed_request(void);
extern void rejection_request(void);
extern void skip_request(void);
extern void sync_error_request(void);
extern void sync_request(void);
extern money_t tolerance(int currency);
extern void truncated_tail(stream_t *s);
extern bool want_fault(int kind);

/* behaviour.c: users with habits and planted behavioural anomalies (--behaviour) */
enum
{
	PLANT_NONE, PLANT_SPEND, PLANT_VAT, PLANT_HOUR, PLANT_DOUBLE, PLANT_TOPUP, N_PLANTS
};
extern const char *const PLANT_NAMES[N_PLANTS];
extern int64_t planted[N_PLANTS];
extern void behaviour_init(void);
extern void behaviour_close(void);
extern int behaviour_due(void);
extern int64_t behaviour_pick_user(int plant);
extern bool behaviour_shape(txn_t *t, int plant, bool overdraft, bool faulted);
extern bool behaviour_double_ready(const txn_t *t);
extern void behaviour_doubled(const txn_t *copy);

/* answer_key.c: the answer key: counts, lists and the reconciliation verdicts */
extern FILE *lists[N_LISTS];
extern counts_t cnt;
extern void judge_transaction(const txn_t *t, bool has_prev, money_t prev_new);
extern void list_add(int which, const char *fmt, ...);
extern void write_answer_key(void);

#endif
