/* streams.c: the files of the export: gzip log streams, CSV, junk (calo_recon_gen). */
#include "gen.h"

/* ------------------------------------------------------------------ */
/* Log streams: one gzip file per Lambda container and day.           */

stream_t *streams;
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
char *
ev_begin(stream_t *s)
{
	return s->buf + s->len;
}

void
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

/* ------------------------------------------------------------------ */
/* CSV output                                                           */

FILE *csv_txn, *csv_err;
int64_t csv_error_id;

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

void
csv_money(FILE *f, money_t v)
{
	char b[64];
	*put_money(b, v) = '\0';
	fputs(b, f);
}

void
csv_ts(FILE *f, int64_t ms)
{
	char b[32];
	*put_ts(b, ms) = '\0';
	fputs(b, f);
}

void
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

void
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
void
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

void
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
