/*
 * calo_recon_load: loads a local CloudWatch export into calo_recon from the
 * client side, over an ordinary libpq connection.
 *
 *   calo_recon_load [--dbname CONNSTR] [--quiet] [--recheck] [--no-alerts]
 *                   [--no-alerts-older-than INTERVAL] EXPORT_DIR_OR_FILE...
 *
 * Walks each tree in byte order of names, reads and decompresses each file
 * (gzip by magic bytes, or plain text) and sends it with
 * SELECT * FROM calo_recon.ingest_log($1, $2), the source being the path
 * relative to the given root.  Resumable: names already in
 * calo_recon.ingested_files are skipped (--recheck sends them anyway; the
 * server's digest check still makes a reload a no-op).  Files that are not
 * logs, and files whose names the server refuses as source names (not valid
 * UTF-8, a control character: calo_recon.check_source_name), are skipped
 * and listed, as ingest_file quarantines them.  Any other failure stops with
 * a message naming it and exit status 1 (2 for usage and connection errors).
 *
 * A backfill should not page anyone: --no-alerts loads with calo_recon.alerts
 * off (reconcile() still records every finding), --no-alerts-older-than does
 * so only for files last modified longer ago than the interval (which the
 * server parses and measures from its now()).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "logfile.h"

#define LOAD_TEXT_MAX ((size_t) 1 << 30)	/* 1 GiB, the largest text value */
#define PLAIN_PROGRESS_EVERY 100

enum
{
	C_EVENTS, C_TRANSACTIONS, C_DUPLICATES, C_CONFLICTS, C_BALANCE_ERRORS,
	C_REJECTIONS, C_QUARANTINED, C_REPEATED, N_COUNTS
};
static const char *const count_names[N_COUNTS] = {
	"events", "transactions", "duplicates", "conflicts", "balance_errors",
	"rejections", "quarantined", "repeated"
};

typedef struct LoadFile
{
	char	   *path;			/* as opened */
	char	   *name;			/* relative to its root: the source name */
	long long	bytes;			/* size on disk */
	time_t		modified;		/* last modification */
} LoadFile;

typedef struct FileList
{
	LoadFile   *items;
	size_t		n;
	size_t		cap;
} FileList;

static const char *progname = "calo_recon_load";
static bool progress_line_open = false;	/* a TTY progress line awaits its newline */

static void
die(int status, const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s%s: ", progress_line_open ? "\n" : "", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void *
xmalloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		die(1, "out of memory");
	return p;
}

static char *
join_path(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);
	char	   *s = xmalloc(la + lb + 2);

	memcpy(s, a, la);
	s[la] = '/';
	memcpy(s + la + 1, b, lb + 1);
	return s;
}

static void
add_file(FileList *list, const char *path, const char *name, long long bytes, time_t modified)
{
	if (list->n == list->cap)
	{
		list->cap = list->cap ? list->cap * 2 : 64;
		list->items = realloc(list->items, list->cap * sizeof(LoadFile));
		if (list->items == NULL)
			die(1, "out of memory");
	}
	list->items[list->n].path = strdup(path);
	list->items[list->n].name = strdup(name);
	list->items[list->n].bytes = bytes;
	list->items[list->n].modified = modified;
	if (!list->items[list->n].path || !list->items[list->n].name)
		die(1, "out of memory");
	list->n++;
}

static int
compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Collects the regular files below dir in byte order; symlinked folders are not followed. */
static void
walk(FileList *list, const char *dir, const char *rel)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char	  **names = NULL;
	size_t		n = 0;
	size_t		cap = 0;
	size_t		i;

	if (d == NULL)
		die(1, "could not open folder \"%s\": %s", dir, strerror(errno));
	while ((errno = 0, de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 32;
			names = realloc(names, cap * sizeof(char *));
			if (names == NULL)
				die(1, "out of memory");
		}
		names[n] = strdup(de->d_name);
		if (names[n] == NULL)
			die(1, "out of memory");
		n++;
	}
	if (errno != 0)
		die(1, "could not read folder \"%s\": %s", dir, strerror(errno));
	closedir(d);
	qsort(names, n, sizeof(char *), compare_strings);

	for (i = 0; i < n; i++)
	{
		char	   *path = join_path(dir, names[i]);
		char	   *name = rel[0] ? join_path(rel, names[i]) : strdup(names[i]);
		struct stat lst;
		struct stat st;

		if (name == NULL)
			die(1, "out of memory");
		if (lstat(path, &lst) != 0)
			die(1, "could not stat \"%s\": %s", path, strerror(errno));
		if (S_ISDIR(lst.st_mode))
			walk(list, path, name);
		else if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			add_file(list, path, name, (long long) st.st_size, st.st_mtime);
		else
			add_file(list, path, name, -1, 0);	/* reported as skipped */
		free(path);
		free(name);
		free(names[i]);
	}
	free(names);
}

static void
collect(FileList *list, const char *root)
{
	struct stat st;
	size_t		len = strlen(root);
	char	   *clean = strdup(root);

	if (clean == NULL)
		die(1, "out of memory");
	while (len > 1 && clean[len - 1] == '/')
		clean[--len] = '\0';
	if (stat(clean, &st) != 0)
		die(1, "could not open \"%s\": %s", root, strerror(errno));
	if (S_ISDIR(st.st_mode))
		walk(list, clean, "");
	else if (S_ISREG(st.st_mode))
	{
		const char *slash = strrchr(clean, '/');

		add_file(list, clean, slash ? slash + 1 : clean, (long long) st.st_size, st.st_mtime);
	}
	else
		die(1, "\"%s\" is neither a file nor a folder", root);
	free(clean);
}

static void *
malloc_grow(void *ctx, void *old, size_t size)
{
	(void) ctx;
	return realloc(old, size + 1);	/* +1 for the terminating NUL */
}

/*
 * Reads one file as log text (NUL-terminated, in *text).  Returns NULL when
 * it is a log, else why it is skipped (a junk file); damage is fatal.
 */
static const char *
read_log(const LoadFile *f, char **text, size_t *textlen)
{
	FILE	   *fp;
	unsigned char *raw;
	size_t		got;
	size_t		bad;

	*text = NULL;
	*textlen = 0;
	if (f->bytes < 0)
		return "not a regular file";
	if ((size_t) f->bytes > LOAD_TEXT_MAX)
		die(1, "%s: file too large (%lld bytes, limit %zu)", f->path, f->bytes, LOAD_TEXT_MAX);
	fp = fopen(f->path, "rb");
	if (fp == NULL)
		die(1, "could not open \"%s\": %s", f->path, strerror(errno));
	raw = xmalloc((size_t) f->bytes + 1);
	got = fread(raw, 1, (size_t) f->bytes, fp);
	if (ferror(fp))
		die(1, "could not read \"%s\": %s", f->path, strerror(errno));
	fclose(fp);

	if (lf_is_gzip(raw, got))
	{
		lf_allocator alloc = {malloc_grow, NULL, NULL};
		unsigned char *out;
		size_t		outlen;
		const char *why = NULL;
		lf_status	st = lf_gunzip(raw, got, 0, LOAD_TEXT_MAX, &alloc, &out, &outlen, &why);

		free(raw);
		if (st != LF_OK)
			die(1, "%s: %s (%s)", f->path, lf_status_text(st), why ? why : "");
		raw = out;
		got = outlen;
	}
	if (got == 0)
	{
		free(raw);
		return "empty file";
	}
	if (!lf_starts_with_timestamp(raw, got))
	{
		free(raw);
		return "not a log (no leading timestamp)";
	}
	bad = lf_utf8_invalid_offset(raw, got);
	if (bad != (size_t) -1)
		die(1, "%s: invalid UTF-8 at byte offset %zu of the text", f->path, bad);
	raw[got] = '\0';
	*text = (char *) raw;
	*textlen = got;
	return NULL;
}

/*
 * name for a message: bytes outside printable ASCII as \xHH, so that a name
 * holding control characters cannot drive the terminal (display only: the
 * server's own escaped form is in its messages)
 */
static char *
printable(const char *name)
{
	size_t		len = strlen(name);
	char	   *out = xmalloc(4 * len + 1);
	char	   *o = out;

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) name[i];

		if (c < 0x20 || c >= 0x7f)
			o += sprintf(o, "\\x%02x", c);
		else
			*o++ = (char) c;
	}
	*o = '\0';
	return out;
}

/*
 * Why the server refuses name as a source name (calo_recon.check_source_name,
 * the one home of the rule), or NULL when it takes it.  A name that is not
 * valid UTF-8 is refused before the check, as a parameter (22021).
 */
static char *
source_name_refusal(PGconn *conn, const char *name)
{
	const char *params[1] = {name};
	PGresult   *res = PQexecParams(conn, "SELECT calo_recon.check_source_name($1)",
								   1, NULL, params, NULL, NULL, 0);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char	   *why = NULL;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		if (state == NULL || (strcmp(state, "22023") != 0 && strcmp(state, "22021") != 0))
			die(1, "checking the name of %s failed: SQLSTATE %s: %s", printable(name),
				state ? state : "?", PQerrorMessage(conn));
		why = strdup(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		if (why == NULL)
			die(1, "out of memory");
	}
	PQclear(res);
	return why;
}

/* the names already loaded, sorted, for bsearch */
static char **
fetch_loaded_names(PGconn *conn, size_t *count)
{
	PGresult   *res = PQexec(conn, "SELECT file_name FROM calo_recon.ingested_files");
	char	  **names;
	int			i;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die(1, "could not read calo_recon.ingested_files: SQLSTATE %s: %s",
			PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "?",
			PQerrorMessage(conn));
	*count = (size_t) PQntuples(res);
	names = xmalloc(*count * sizeof(char *));
	for (i = 0; i < PQntuples(res); i++)
	{
		names[i] = strdup(PQgetvalue(res, i, 0));
		if (names[i] == NULL)
			die(1, "out of memory");
	}
	PQclear(res);
	qsort(names, *count, sizeof(char *), compare_strings);
	return names;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
exec_or_die(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die(1, "%s failed: %s", sql, PQerrorMessage(conn));
	PQclear(res);
}

static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: %s [--dbname CONNSTR] [--quiet] [--recheck] [--no-alerts]\n"
			"       [--no-alerts-older-than INTERVAL] EXPORT_DIR_OR_FILE...\n"
			"Loads wallet-sync CloudWatch log exports (gzip or plain text) into calo_recon\n"
			"with calo_recon.ingest_log(); the source name is the path relative to the root.\n"
			"  --dbname CONNSTR  database name or connection string (default: PG* variables)\n"
			"  --quiet           no progress, only the summary and errors\n"
			"  --recheck         also send files whose names are already loaded\n"
			"  --no-alerts       a backfill: load with calo_recon.alerts off (no alert rows,\n"
			"                    no NOTIFY; reconcile() still records every finding)\n"
			"  --no-alerts-older-than INTERVAL\n"
			"                    the same for files last modified more than INTERVAL ago\n",
			progname);
}

int
main(int argc, char **argv)
{
	const char *dbname = NULL;
	bool		quiet = false;
	bool		recheck = false;
	bool		no_alerts = false;
	const char *quiet_age = NULL;	/* --no-alerts-older-than */
	double		quiet_before = 0;	/* files modified before this epoch load without alerts */
	FileList	files = {NULL, 0, 0};
	char	  **loaded;
	size_t		n_loaded;
	const char *keywords[4] = {"dbname", "fallback_application_name", "options", NULL};
	const char *values[4];
	char		options[4096];
	PGconn	   *conn;
	bool		tty;
	long long	total_bytes = 0;
	long long	done_bytes = 0;
	long long	text_bytes = 0;
	long long	counts[N_COUNTS] = {0};
	size_t		n_new = 0;
	size_t		n_known = 0;
	size_t		n_junk = 0;
	size_t		n_bad_names = 0;
	size_t		n_unchanged = 0;
	double		started;
	double		elapsed;
	size_t		i;
	int			argi;

	for (argi = 1; argi < argc; argi++)
	{
		if (strcmp(argv[argi], "--dbname") == 0 || strcmp(argv[argi], "-d") == 0)
		{
			if (++argi >= argc)
				die(2, "--dbname needs a value");
			dbname = argv[argi];
		}
		else if (strncmp(argv[argi], "--dbname=", 9) == 0)
			dbname = argv[argi] + 9;
		else if (strcmp(argv[argi], "--quiet") == 0 || strcmp(argv[argi], "-q") == 0)
			quiet = true;
		else if (strcmp(argv[argi], "--recheck") == 0)
			recheck = true;
		else if (strcmp(argv[argi], "--no-alerts") == 0)
			no_alerts = true;
		else if (strcmp(argv[argi], "--no-alerts-older-than") == 0)
		{
			if (++argi >= argc)
				die(2, "--no-alerts-older-than needs an interval");
			quiet_age = argv[argi];
		}
		else if (strcmp(argv[argi], "--help") == 0 || strcmp(argv[argi], "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		else if (strcmp(argv[argi], "--") == 0)
		{
			argi++;
			break;
		}
		else if (argv[argi][0] == '-')
		{
			usage(stderr);
			die(2, "unknown option \"%s\"", argv[argi]);
		}
		else
			break;
	}
	if (argi >= argc)
	{
		usage(stderr);
		die(2, "no export folder or file given");
	}
	for (; argi < argc; argi++)
		collect(&files, argv[argi]);
	for (i = 0; i < files.n; i++)
		if (files.items[i].bytes > 0)
			total_bytes += files.items[i].bytes;

	values[0] = dbname;
	values[1] = progname;
	/* keyword options replaces PGOPTIONS: keep the caller's */
	snprintf(options, sizeof(options), "%s%s", getenv("PGOPTIONS") ? getenv("PGOPTIONS") : "",
			 no_alerts ? " -c calo_recon.alerts=off" : "");
	values[2] = options;
	values[3] = NULL;
	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		die(2, "could not connect to the database: %s",
			conn ? PQerrorMessage(conn) : "out of memory");
	if (PQsetClientEncoding(conn, "UTF8") != 0)
		die(2, "could not set client_encoding to UTF8: %s", PQerrorMessage(conn));
	loaded = fetch_loaded_names(conn, &n_loaded);
	if (quiet_age != NULL)
	{
		const char *params[1] = {quiet_age};
		PGresult   *res = PQexecParams(conn,
									   "SELECT pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) $1::pg_catalog.interval)",
									   1, NULL, params, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
			die(2, "--no-alerts-older-than \"%s\": %s", quiet_age, PQerrorMessage(conn));
		quiet_before = atof(PQgetvalue(res, 0, 0));
		PQclear(res);
	}

	tty = isatty(STDERR_FILENO) && !quiet;
	started = now_seconds();
	for (i = 0; i < files.n; i++)
	{
		const LoadFile *f = &files.items[i];
		const char *name = f->name;
		char	   *text;
		size_t		textlen;
		const char *junk;
		char	   *refusal = NULL;
		const char *params[2];
		PGresult   *res;
		int			c;

		if (!recheck && bsearch(&name, loaded, n_loaded, sizeof(char *), compare_strings))
			n_known++;
		else if ((refusal = source_name_refusal(conn, f->name)) != NULL)
		{
			char	   *shown = printable(f->name);

			n_bad_names++;
			fprintf(stderr, "%s%s: skipped %s: %s\n", tty ? "\r\033[K" : "", progname, shown, refusal);
			free(shown);
			free(refusal);
		}
		else if ((junk = read_log(f, &text, &textlen)) != NULL)
		{
			char	   *shown = printable(f->name);

			n_junk++;
			fprintf(stderr, "%s%s: skipped %s: %s\n", tty ? "\r\033[K" : "", progname, shown, junk);
			free(shown);
		}
		else
		{
			bool		quiet_file = quiet_age != NULL && (double) f->modified < quiet_before;

			params[0] = text;
			params[1] = f->name;
			if (quiet_file)
				exec_or_die(conn, "SET calo_recon.alerts = off");
			res = PQexecParams(conn, "SELECT * FROM calo_recon.ingest_log($1, $2)",
							   2, NULL, params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
			{
				const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

				die(1, "loading %s failed: SQLSTATE %s: %s", f->name, state ? state : "?",
					PQerrorMessage(conn));
			}
			for (c = 0; c < N_COUNTS; c++)
			{
				int			col = PQfnumber(res, count_names[c]);

				if (col >= 0 && !PQgetisnull(res, 0, col))
					counts[c] += atoll(PQgetvalue(res, 0, col));
			}
			if (atoll(PQgetvalue(res, 0, 0)) > 0)
				n_new++;
			else
				n_unchanged++;
			PQclear(res);
			if (quiet_file)
				exec_or_die(conn, "RESET calo_recon.alerts");	/* to the --no-alerts default */
			text_bytes += (long long) textlen;
			free(text);
		}
		if (f->bytes > 0)
			done_bytes += f->bytes;

		progress_line_open = tty;
		if (tty)
			fprintf(stderr, "\r\033[K[%zu/%zu files] %.2f/%.2f MB, %lld transactions",
					i + 1, files.n, done_bytes / 1e6, total_bytes / 1e6, counts[C_TRANSACTIONS]);
		else if (!quiet && ((i + 1) % PLAIN_PROGRESS_EVERY == 0 || i + 1 == files.n))
			fprintf(stderr, "%s: %zu/%zu files, %.2f/%.2f MB, %lld transactions\n",
					progname, i + 1, files.n, done_bytes / 1e6, total_bytes / 1e6,
					counts[C_TRANSACTIONS]);
	}
	if (tty)
		fputc('\n', stderr);
	progress_line_open = false;
	elapsed = now_seconds() - started;

	printf("files: %zu loaded, %zu unchanged (same content loaded before), %zu skipped as already loaded, %zu skipped as not logs, %zu skipped for their names\n",
		   n_new, n_unchanged, n_known, n_junk, n_bad_names);
	printf("events: %lld, transactions: %lld, duplicates: %lld, conflicts: %lld, balance_errors: %lld, rejections: %lld, quarantined: %lld, repeated: %lld\n",
		   counts[C_EVENTS], counts[C_TRANSACTIONS], counts[C_DUPLICATES], counts[C_CONFLICTS],
		   counts[C_BALANCE_ERRORS], counts[C_REJECTIONS], counts[C_QUARANTINED], counts[C_REPEATED]);
	if (!quiet)
		printf("time: %.2f s, %.2f MB of log text (%.2f MB/s), %.0f transactions/s\n",
			   elapsed, text_bytes / 1e6, elapsed > 0 ? text_bytes / 1e6 / elapsed : 0.0,
			   elapsed > 0 ? counts[C_TRANSACTIONS] / elapsed : 0.0);

	PQfinish(conn);
	for (i = 0; i < n_loaded; i++)
		free(loaded[i]);
	free(loaded);
	for (i = 0; i < files.n; i++)
	{
		free(files.items[i].path);
		free(files.items[i].name);
	}
	free(files.items);
	return 0;
}
