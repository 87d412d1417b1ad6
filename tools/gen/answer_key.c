/* answer_key.c: the answer key: counts, lists and the reconciliation verdicts (calo_recon_gen). */
#include "gen.h"

/* ------------------------------------------------------------------ */
/* Answer-key accumulation: counts plus lists streamed to temp files.  */

static const char *const LIST_NAMES[N_LISTS] = {
	"transactions", "errors", "negative_balance_rejections", "files",
	"duplicate_deliveries", "arithmetic_break_ids", "chain_break_ids",
	"precision_drift_ids", "overdraft_ids", "conflict_ids", "junk_files"
};

FILE *lists[N_LISTS];
static int64_t list_n[N_LISTS];

counts_t cnt;

void
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

/* The reconciliation rules on the values as written; adds the transaction to the key. */
void
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

void
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
