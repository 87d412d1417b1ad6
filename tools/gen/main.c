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
#include "gen.h"

/* ------------------------------------------------------------------ */
/* Settings and state                                                  */

const currency_t CURRENCIES[] = {
	{"BHD", 3}, {"SAR", 2}, {"AED", 2}, {"KWD", 3}, {"QAR", 2}
};

options_t opt;

user_t *users;
static uint64_t user_salt;
char function_id[37];
int64_t clock_ms;
int64_t start_ms, slot_ms, intra_max;

void
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

void *
xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

void
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

char *
put_user_id(char *p, int64_t u)
{
	return put_uuid_words(p, mix64(user_salt ^ (uint64_t) u * 2),
						  mix64(user_salt ^ ((uint64_t) u * 2 + 1)));
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
		  "  --key-list-limit N    most transactions listed in the key (default 200000)\n"
		  "  --behaviour RATE      users with habits and about RATE (0..0.05) planted\n"
		  "                        behavioural anomalies per transaction, listed in\n"
		  "                        DIR/anomaly-labels.csv (default 0: off)\n",
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
		else if (!strcmp(a, "--behaviour"))
		{
			char *end;
			opt.behaviour = strtod(v, &end);
			if (*end || end == v || !(opt.behaviour >= 0 && opt.behaviour <= 0.05))
				die("--behaviour must be a number in [0, 0.05], got \"%s\"", v);
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
	if (opt.behaviour > 0)
		behaviour_init();

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
	if (opt.behaviour > 0)
		behaviour_close();

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "calo_recon_gen: %" PRId64 " transactions, %" PRId64 " events, %" PRId64
			" log files, %.1f MB of log text in %.2f s (%.1f MB/s)\n",
			cnt.distinct, cnt.events, cnt.log_files, (double) cnt.bytes_text / 1e6, secs,
			secs > 0 ? (double) cnt.bytes_text / 1e6 / secs : 0.0);
	return 0;
}
