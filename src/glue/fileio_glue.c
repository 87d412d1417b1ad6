/*
 * fileio_glue.c: server-side reading of log exports from the import folder.
 *
 *   calo_recon.read_log_file(path text) -> text
 *   calo_recon.ingest_file(path text)   -> one row of counts
 *
 * Paths are relative to calo_recon.import_directory and follow the shared
 * rules of safe_path_glue.h (no absolute path, no "..", no control character, no
 * symlink leading out; pg_read_server_files).  A folder is walked
 * recursively in byte order of names; every log file goes through
 * calo_recon.ingest_log_unreconciled(text, relative path), the body of
 * ingest_log, so idempotency and counts have one code path; at the end the
 * users queued in calo_recon.pending_reconcile are reconciled once, as
 * ingest_log does per text (calo_recon.ingest_file_unreconciled(path) leaves
 * that to its caller, refresh()).  Files that are not logs are counted, skipped and recorded
 * in quarantine; damaged logs (corrupt gzip, invalid UTF-8, too large) are an
 * error when named explicitly and quarantined during a folder walk.  A name a
 * walk meets that breaks the rule of names (safe_path_bad_byte: a control
 * character, bytes not valid in the database encoding) is not read, since it
 * could be stored nowhere: it is quarantined bad_file_name, escaped.
 *
 * The walk works relative to folder descriptors (openat, O_NOFOLLOW), so no
 * absolute path is rebuilt and its depth is not bounded by PATH_MAX; paths
 * over SAFE_PATH_MAX_BYTES and folders over WALK_MAX_DEPTH are quarantined
 * (path_too_long) instead of entered.  What a walk read to a conclusion is
 * recorded in calo_recon.import_files with the file's size, modification
 * time and inode; a later walk counts such a file again without reading it
 * while those are unchanged (a file named explicitly is always read).
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "alert_batch_glue.h"
#include "module_glue.h"
#include "locks.h"
#include "logfile.h"
#include "safe_path_glue.h"

/*
 * Folders are entered at most this many levels below the import folder (a
 * CloudWatch export is 3 deep); the walk holds one descriptor per level.
 */
#define WALK_MAX_DEPTH 64

/* the largest text value PostgreSQL can hold */
#define LOG_TEXT_MAX ((size_t) (MaxAllocSize - VARHDRSZ - 1))

/* counts returned by ingest_log, then ingest_file's own */
#define N_LOG_COUNTS 8
#define N_FILE_COUNTS (N_LOG_COUNTS + 3)
#define COUNT_TRANSACTIONS 1
#define COUNT_QUARANTINED 6
#define COUNT_FILES 8
#define COUNT_SKIPPED 9
#define COUNT_NEW_FILES 10

/* A file's content, or why it is not a usable log */
typedef struct LogContent
{
	text	   *text;			/* NULL when unusable */
	const char *reason;			/* quarantine reason */
	int			sqlstate;		/* error code when named explicitly */
	char	   *message;		/* what is wrong */
	long long	offset;			/* byte offset for invalid_utf8, else -1 */
	off_t		file_bytes;
} LogContent;

/*
 * The descriptors and folder streams a call holds, closed when its memory
 * context goes, on success or error alike (fd.c tracks paths, not openat).
 */
typedef struct OpenFiles
{
	int			n;
	int			fds[WALK_MAX_DEPTH + 8];
	DIR		   *dirs[WALK_MAX_DEPTH + 8];	/* non-NULL once fdopendir took the fd */
} OpenFiles;

typedef struct WalkState
{
	SafePathRoot *root;
	OpenFiles  *files;
	int			root_fd;		/* the import folder */
	SPIPlanPtr	ingest_plan;
	SPIPlanPtr	quarantine_plan;
	SPIPlanPtr	seen_plan;		/* import_files row of a path */
	SPIPlanPtr	record_plan;	/* upsert of it */
	MemoryContext file_cxt;		/* reset after each file */
	MemoryContext walk_cxt;		/* lives for the whole call */
	AlertBatch	alerts;			/* the stored rows' alert check */
	int64		counts[N_FILE_COUNTS];
} WalkState;

PG_FUNCTION_INFO_V1(calo_recon_read_log_file);
PG_FUNCTION_INFO_V1(calo_recon_ingest_file);
PG_FUNCTION_INFO_V1(calo_recon_ingest_file_unreconciled);
PG_FUNCTION_INFO_V1(calo_recon_check_source_name);

/*
 * Opens the import folder and checks the caller's relative path against the
 * shared rules; returns it normalized ("" for the folder itself) and sets
 * *resolved_out to its realpath inside the folder.
 */
static char *
open_user_path(const char *path, SafePathRoot **root_out, char **resolved_out)
{
	SafePathRoot *root = safe_path_open_root("calo_recon.import_directory",
											 calo_recon_import_directory);
	char	   *rel = safe_path_normalize(root, path);

	*resolved_out = safe_path_resolve(root, rel);
	if (root_out)
		*root_out = root;
	return rel;
}

static void
close_open_files(void *arg)
{
	OpenFiles  *of = (OpenFiles *) arg;

	while (of->n > 0)
	{
		of->n--;
		if (of->dirs[of->n])
			closedir(of->dirs[of->n]);
		else
			close(of->fds[of->n]);
		ReleaseExternalFD();
	}
}

static OpenFiles *
open_files_create(void)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "calo_recon open files",
											  ALLOCSET_SMALL_SIZES);
	OpenFiles  *of = MemoryContextAllocZero(cxt, sizeof(OpenFiles));
	MemoryContextCallback *cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));

	cb->func = close_open_files;
	cb->arg = of;
	MemoryContextRegisterResetCallback(cxt, cb);
	return of;
}

/* closes everything (by deleting the context that owns the callback) */
static void
open_files_done(OpenFiles *of)
{
	MemoryContextDelete(GetMemoryChunkContext(of));
}

/* openat registered in of; -1 with errno on failure */
static int
open_at(OpenFiles *of, int dirfd, const char *name, int flags)
{
	int			fd;

	if (of->n >= (int) lengthof(of->fds))
		elog(ERROR, "calo_recon: too many open files in one walk");
	ReserveExternalFD();
	fd = openat(dirfd, name, flags | O_CLOEXEC);
	if (fd < 0)
	{
		int			err = errno;

		ReleaseExternalFD();
		errno = err;
		return -1;
	}
	of->fds[of->n] = fd;
	of->dirs[of->n] = NULL;
	of->n++;
	return fd;
}

static int
find_open(OpenFiles *of, int fd)
{
	int			i;

	for (i = of->n - 1; i >= 0; i--)
		if (of->fds[i] == fd)
			return i;
	elog(ERROR, "calo_recon: descriptor %d is not open", fd);
	return -1;					/* keep the compiler quiet */
}

static void
close_at(OpenFiles *of, int fd)
{
	int			i = find_open(of, fd);

	if (of->dirs[i])
		closedir(of->dirs[i]);
	else
		close(fd);
	ReleaseExternalFD();
	of->n--;
	memmove(&of->fds[i], &of->fds[i + 1], (of->n - i) * sizeof(int));
	memmove(&of->dirs[i], &of->dirs[i + 1], (of->n - i) * sizeof(DIR *));
}

/* a folder stream over a registered descriptor (which stays usable for openat) */
static DIR *
open_folder_stream(OpenFiles *of, int fd, const char *rel)
{
	int			i = find_open(of, fd);

	of->dirs[i] = fdopendir(fd);
	if (of->dirs[i] == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read folder \"%s\": %m", rel[0] ? rel : ".")));
	return of->dirs[i];
}

/*
 * Opens a path relative to the import folder one name at a time, none of
 * them followed if it is a symbolic link, so nothing outside can be reached
 * whatever changes meanwhile.  -1 with errno on failure.
 */
static int
open_beneath(OpenFiles *of, int root_fd, const char *rel, int flags)
{
	char	   *copy = pstrdup(rel);
	char	   *name = copy;
	char	   *slash;
	int			dirfd = root_fd;
	int			fd;

	if (rel[0] == '\0')
		return open_at(of, root_fd, ".", flags);
	while ((slash = strchr(name, '/')) != NULL)
	{
		*slash = '\0';
		fd = open_at(of, dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		if (dirfd != root_fd)
		{
			int			err = errno;

			close_at(of, dirfd);
			errno = err;
		}
		if (fd < 0)
			return -1;
		dirfd = fd;
		name = slash + 1;
	}
	fd = open_at(of, dirfd, name, flags | O_NOFOLLOW);
	if (dirfd != root_fd)
	{
		int			err = errno;

		close_at(of, dirfd);
		errno = err;
	}
	pfree(copy);
	return fd;
}

/* one byte more than asked, for the terminating NUL the conversion needs */
static void *
palloc_grow(void *ctx, void *old, size_t size)
{
	if (old == NULL)
		return palloc_extended(size + 1, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	return repalloc_huge(old, size + 1);
}

static void
interrupt_tick(void *ctx)
{
	CHECK_FOR_INTERRUPTS();
}

static void
set_problem(LogContent *lc, const char *reason, int sqlstate, char *message)
{
	lc->text = NULL;
	lc->reason = reason;
	lc->sqlstate = sqlstate;
	lc->message = message;
}

/*
 * Reads an open regular file (st: its fstat) and returns its text
 * (decompressed, checked as UTF-8, converted to the server encoding) or the
 * problem.  check_log adds the leading-timestamp check.  Errors of the file
 * system itself are raised.
 */
static LogContent
read_log_content(int fd, const struct stat *st_in, const char *rel, bool check_log)
{
	LogContent	lc;
	struct stat st = *st_in;
	unsigned char *raw;
	unsigned char *data;
	size_t		len;
	size_t		got = 0;
	size_t		bad;
	char	   *converted;

	memset(&lc, 0, sizeof(lc));
	lc.offset = -1;
	lc.file_bytes = st.st_size;
	if ((size_t) st.st_size > LOG_TEXT_MAX)
	{
		set_problem(&lc, "too_large", ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					psprintf("file is %lld bytes, more than the limit of %zu bytes",
							 (long long) st.st_size, LOG_TEXT_MAX));
		return lc;
	}

	/* room for a varlena header in front, so plain text needs no copy */
	raw = palloc_extended(VARHDRSZ + st.st_size + 1, MCXT_ALLOC_HUGE);
	while (got < (size_t) st.st_size)
	{
		ssize_t		n;

		CHECK_FOR_INTERRUPTS();
		n = read(fd, raw + VARHDRSZ + got, Min((size_t) st.st_size - got, (size_t) 1 << 20));
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", rel)));
		if (n == 0)
			break;				/* the file shrank meanwhile */
		got += n;
	}

	data = raw;
	len = got;
	if (lf_is_gzip(raw + VARHDRSZ, got))
	{
		lf_allocator alloc = {palloc_grow, interrupt_tick, NULL};
		const char *why = NULL;
		lf_status	status;

		status = lf_gunzip(raw + VARHDRSZ, got, VARHDRSZ, LOG_TEXT_MAX, &alloc,
						   &data, &len, &why);
		pfree(raw);
		if (status == LF_NO_MEMORY)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory decompressing \"%s\"", rel)));
		if (status != LF_OK)
		{
			if (data)
				pfree(data);
			if (status == LF_TOO_LARGE)
				set_problem(&lc, "too_large", ERRCODE_PROGRAM_LIMIT_EXCEEDED,
							psprintf("decompressed text exceeds the limit of %zu bytes",
									 LOG_TEXT_MAX));
			else
				set_problem(&lc,
							status == LF_GZIP_TRUNCATED ? "truncated_gzip" : "corrupt_gzip",
							ERRCODE_BAD_COPY_FILE_FORMAT,
							psprintf("%s: %s", lf_status_text(status), why ? why : ""));
			return lc;
		}
	}

	if (check_log && (len == 0 || !lf_starts_with_timestamp(data + VARHDRSZ, len)))
	{
		pfree(data);
		set_problem(&lc, "not_a_log", ERRCODE_BAD_COPY_FILE_FORMAT,
					pstrdup(len == 0 ? "empty file"
							: "does not start with a log timestamp (YYYY-MM-DDTHH:MM:SS)"));
		return lc;
	}

	bad = lf_utf8_invalid_offset(data + VARHDRSZ, len);
	if (bad != (size_t) -1)
	{
		pfree(data);
		set_problem(&lc, "invalid_utf8", ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
					psprintf("invalid UTF-8 byte sequence at byte offset %zu of the text", bad));
		lc.offset = (long long) bad;
		return lc;
	}

	data[VARHDRSZ + len] = '\0';
	converted = pg_any_to_server((char *) data + VARHDRSZ, (int) len, PG_UTF8);
	if (converted != (char *) data + VARHDRSZ)
	{
		lc.text = cstring_to_text(converted);
		pfree(data);
	}
	else
	{
		SET_VARSIZE(data, VARHDRSZ + len);
		lc.text = (text *) data;
	}
	return lc;
}

/* ERROR for a problem of a file named explicitly */
static void
raise_problem(const char *rel, const LogContent *lc)
{
	if (lc->offset >= 0)
		ereport(ERROR,
				(errcode(lc->sqlstate),
				 errmsg("log file \"%s\" is not valid UTF-8", rel),
				 errdetail("Invalid byte sequence at byte offset %lld of the (decompressed) text.",
						   lc->offset)));
	ereport(ERROR,
			(errcode(lc->sqlstate),
			 errmsg("cannot ingest \"%s\": %s", rel, lc->message),
			 errdetail("Quarantine reason: %s.", lc->reason)));
}

static void
json_field(StringInfo buf, const char *key, const char *value, bool first)
{
	if (!first)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	escape_json(buf, value);
}

/* Records a skipped file in quarantine once (the same finding is not repeated). */
static void
quarantine_file(WalkState *ws, const char *rel, const char *reason,
				const char *message, long long offset, long long file_bytes)
{
	StringInfoData detail;
	Datum		values[3];
	int			rc;

	initStringInfo(&detail);
	appendStringInfoChar(&detail, '{');
	json_field(&detail, "message", message, true);
	appendStringInfo(&detail, ", \"file_bytes\": %lld", file_bytes);
	if (offset >= 0)
		appendStringInfo(&detail, ", \"offset\": %lld", offset);
	appendStringInfoChar(&detail, '}');

	values[0] = CStringGetTextDatum(rel);
	values[1] = CStringGetTextDatum(reason);
	values[2] = CStringGetTextDatum(detail.data);
	rc = SPI_execute_plan(ws->quarantine_plan, values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "calo_recon: quarantine insert failed: %s", SPI_result_code_string(rc));
	ws->counts[COUNT_QUARANTINED] += SPI_processed;
	ws->counts[COUNT_SKIPPED]++;
}

static void
ingest_text(WalkState *ws, const char *rel, text *log)
{
	Datum		values[2];
	int			rc;
	int			i;
	bool		isnull;
	int64		events;
	int64		stored_before = ws->counts[COUNT_TRANSACTIONS];

	values[0] = PointerGetDatum(log);
	values[1] = CStringGetTextDatum(rel);
	rc = SPI_execute_plan(ws->ingest_plan, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1
		|| SPI_tuptable->tupdesc->natts != N_LOG_COUNTS)
		elog(ERROR, "calo_recon: ingest_log_unreconciled returned no row of counts");
	for (i = 0; i < N_LOG_COUNTS; i++)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									  i + 1, &isnull);

		if (!isnull)
			ws->counts[i] += DatumGetInt32(d);
	}
	events = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	alert_batch_stored(&ws->alerts, ws->counts[COUNT_TRANSACTIONS] - stored_before);
	ws->counts[COUNT_FILES]++;
	/* a log file has at least one event; zero means it was loaded before */
	if (events > 0)
		ws->counts[COUNT_NEW_FILES]++;
}

/*
 * One reconcile at the end, of every user queued in pending_reconcile: the
 * users of the transactions the walk stored and any queued before (as
 * ingest_log does per text).
 */
static void
reconcile_queued_users(void)
{
	if (SPI_execute("SELECT 1 FROM calo_recon.reconcile_pending()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "calo_recon: reconcile of the queued users failed");
}

/* the modification time as import_files keeps it (timestamptz, microseconds) */
static TimestampTz
mtime_of(const struct stat *st)
{
	return time_t_to_timestamptz(st->st_mtim.tv_sec) + st->st_mtim.tv_nsec / 1000;
}

/*
 * The outcome recorded when the file at rel was last read, if its size,
 * modification time and inode are still those; NULL when it must be read.
 */
static char *
unchanged_outcome(WalkState *ws, const char *rel, const struct stat *st)
{
	Datum		arg = CStringGetTextDatum(rel);
	char	   *outcome = NULL;

	if (SPI_execute_plan(ws->seen_plan, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "calo_recon: import_files lookup failed");
	if (SPI_processed == 1)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		if (DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull)) == (int64) st->st_size
			&& DatumGetTimestampTz(SPI_getbinval(row, desc, 2, &isnull)) == mtime_of(st)
			&& DatumGetInt64(SPI_getbinval(row, desc, 3, &isnull)) == (int64) st->st_ino)
			outcome = TextDatumGetCString(SPI_getbinval(row, desc, 4, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return outcome;
}

/* Records what reading the file at rel (st: as read) came to. */
static void
record_outcome(WalkState *ws, const char *rel, const struct stat *st, const char *outcome)
{
	Datum		values[5];

	values[0] = CStringGetTextDatum(rel);
	values[1] = Int64GetDatum((int64) st->st_size);
	values[2] = TimestampTzGetDatum(mtime_of(st));
	/* an inode beyond 2^63 keeps its bits: only equality matters */
	values[3] = Int64GetDatum((int64) st->st_ino);
	values[4] = CStringGetTextDatum(outcome);
	if (SPI_execute_plan(ws->record_plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "calo_recon: import_files insert failed");
}

/*
 * One open regular file (st: its fstat): ingest it, or quarantine it (walk) /
 * raise (named); either way the outcome is recorded, since it follows from
 * the content alone.
 */
static void
ingest_one_file(WalkState *ws, int fd, const struct stat *st, const char *rel, bool named)
{
	LogContent	lc = read_log_content(fd, st, rel, true);

	close_at(ws->files, fd);
	if (lc.text != NULL)
		ingest_text(ws, rel, lc.text);
	else if (named && strcmp(lc.reason, "not_a_log") != 0)
		raise_problem(rel, &lc);
	else
		quarantine_file(ws, rel, lc.reason, lc.message, lc.offset, (long long) lc.file_bytes);
	record_outcome(ws, rel, st, lc.text != NULL ? "ingested" : lc.reason);
}

/*
 * What a walk cannot open (err: the errno of openat; what: "file" or
 * "folder") is quarantined, or left to the next walk when it changed
 * meanwhile; other errors are raised.
 */
static void
quarantine_unopened(WalkState *ws, const char *rel, int err, const char *what)
{
	switch (err)
	{
		case EACCES:
		case EPERM:
			quarantine_file(ws, rel, "unreadable",
							psprintf("the server has no permission to read the %s", what), -1, 0);
			break;
		case ENAMETOOLONG:
			quarantine_file(ws, rel, "path_too_long", "the path is over the operating system's limits", -1, 0);
			break;
		case ENOENT:
		case ENOTDIR:
		case ELOOP:
			/* removed, or replaced by a link, since it was listed */
			break;
		default:
			errno = err;
			ereport(ERROR,
					(safe_path_errcode_for_file_access(err),
					 errmsg("could not open \"%s\": %m", rel)));
	}
}

/*
 * A regular file met in a walk, to be opened at name below dirfd (st: its
 * stat when listed): counted without reading when unchanged since it was
 * last read, else read.
 */
static void
walk_file(WalkState *ws, int dirfd, const char *name, const struct stat *st, const char *rel)
{
	MemoryContext old = MemoryContextSwitchTo(ws->file_cxt);
	char	   *outcome = unchanged_outcome(ws, rel, st);

	if (outcome != NULL)
		ws->counts[strcmp(outcome, "ingested") == 0 ? COUNT_FILES : COUNT_SKIPPED]++;
	else
	{
		int			fd = open_beneath(ws->files, dirfd, name, O_RDONLY | O_NONBLOCK);
		struct stat opened;

		if (fd < 0)
			quarantine_unopened(ws, rel, errno, "file");
		else if (fstat(fd, &opened) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", rel)));
		else if (!S_ISREG(opened.st_mode))
		{
			close_at(ws->files, fd);
			quarantine_file(ws, rel, "not_a_regular_file", "not a regular file", -1, 0);
		}
		else
			ingest_one_file(ws, fd, &opened, rel, false);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(ws->file_cxt);
}

/*
 * A symbolic link met in a walk: followed only to a regular file inside the
 * import folder, which is then opened from the import folder down.
 */
static void
walk_link(WalkState *ws, const char *rel)
{
	char	   *target = realpath(psprintf("%s/%s", ws->root->path, rel), NULL);
	int			err = errno;
	struct stat st;

	if (target == NULL && err == ENAMETOOLONG)
		quarantine_file(ws, rel, "path_too_long",
						"the symbolic link's path is over the operating system's limits", -1, 0);
	else if (target == NULL && err == ELOOP)
		quarantine_file(ws, rel, "symlink_loop",
						"the symbolic link leads round in a loop of links", -1, 0);
	else if (target == NULL || !safe_path_contains(ws->root, target) || stat(target, &st) != 0)
		quarantine_file(ws, rel, "outside_import_directory",
						target ? "symbolic link leads outside the import folder"
						: "dangling symbolic link", -1, 0);
	else if (S_ISDIR(st.st_mode))
		quarantine_file(ws, rel, "symlinked_folder",
						"symbolic links to folders are not followed", -1, 0);
	else if (S_ISREG(st.st_mode))
	{
		char	   *target_rel = pstrdup(safe_path_relative(ws->root, target));

		free(target);
		target = NULL;
		walk_file(ws, ws->root_fd, target_rel, &st, rel);
		pfree(target_rel);
	}
	else
		quarantine_file(ws, rel, "not_a_regular_file", "not a regular file", -1, 0);
	free(target);
}

/*
 * A name met in a walk that breaks the rule of names (safe_path_bad_byte:
 * a control character, or bytes not valid in the database encoding) is not
 * read or entered: it could not be stored as the source of anything.  It is
 * quarantined bad_file_name under its escaped path (safe_path_escaped).
 */
static void
quarantine_bad_name(WalkState *ws, const char *child_rel, const char *name, int bad,
					bool control)
{
	const char *problem = control
		? "a control character"
		: psprintf("a byte that is not valid %s", GetDatabaseEncodingName());

	quarantine_file(ws, safe_path_escaped(child_rel), "bad_file_name",
					psprintf("the name has %s (byte 0x%02x at offset %d of the name); it is not read",
							 problem, (unsigned char) name[bad], bad), -1, 0);
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Walks the open folder fd (rel "" is the import folder itself, depth its
 * number of names) in byte order of names.
 */
static void
walk_folder(WalkState *ws, int fd, const char *rel, int depth)
{
	DIR		   *dir;
	struct dirent *de;
	char	  **names = NULL;
	int			n = 0;
	int			cap = 0;
	int			i;

	check_stack_depth();
	dir = open_folder_stream(ws->files, fd, rel);
	for (;;)
	{
		errno = 0;
		de = readdir(dir);
		if (de == NULL)
		{
			if (errno != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not read folder \"%s\": %m", rel[0] ? rel : ".")));
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 16;
			names = names ? repalloc(names, cap * sizeof(char *)) : palloc(cap * sizeof(char *));
		}
		names[n++] = pstrdup(de->d_name);
	}
	if (n > 1)
		qsort(names, n, sizeof(char *), compare_names);

	for (i = 0; i < n; i++)
	{
		char	   *child_rel = rel[0] ? psprintf("%s/%s", rel, names[i]) : pstrdup(names[i]);
		int			child_len = strlen(child_rel);
		bool		control;
		int			bad = safe_path_bad_byte(names[i], strlen(names[i]), &control);
		struct stat st;

		CHECK_FOR_INTERRUPTS();
		if (bad >= 0)
			quarantine_bad_name(ws, child_rel, names[i], bad, control);
		else if (child_len > SAFE_PATH_MAX_BYTES)
			quarantine_file(ws, child_rel, "path_too_long",
							psprintf("path is %d bytes long, more than the limit of %d bytes",
									 child_len, SAFE_PATH_MAX_BYTES), -1, 0);
		else if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
			quarantine_unopened(ws, child_rel, errno, "file");
		else if (S_ISLNK(st.st_mode))
			walk_link(ws, child_rel);
		else if (S_ISDIR(st.st_mode) && depth + 1 > WALK_MAX_DEPTH)
			quarantine_file(ws, child_rel, "path_too_long",
							psprintf("folder is %d levels below the import folder, more than the limit of %d",
									 depth + 1, WALK_MAX_DEPTH), -1, 0);
		else if (S_ISDIR(st.st_mode))
		{
			int			child_fd = open_at(ws->files, fd, names[i],
										   O_RDONLY | O_DIRECTORY | O_NOFOLLOW);

			if (child_fd < 0)
				quarantine_unopened(ws, child_rel, errno, "folder");
			else
			{
				walk_folder(ws, child_fd, child_rel, depth + 1);
				close_at(ws->files, child_fd);
			}
		}
		else if (S_ISREG(st.st_mode))
			walk_file(ws, fd, names[i], &st, child_rel);
		else
			quarantine_file(ws, child_rel, "not_a_regular_file", "not a regular file", -1, 0);
		pfree(child_rel);
	}
	for (i = 0; i < n; i++)
		pfree(names[i]);
	if (names)
		pfree(names);
}

/* number of names in a normalized relative path */
static int
depth_of(const char *rel)
{
	int			depth = rel[0] ? 1 : 0;

	for (; *rel; rel++)
		if (*rel == '/')
			depth++;
	return depth;
}

/* the import folder itself, opened */
static int
open_root_fd(OpenFiles *of, const SafePathRoot *root)
{
	int			fd = open_at(of, AT_FDCWD, root->path, O_RDONLY | O_DIRECTORY);
	int			err = errno;

	if (fd < 0)
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not open %s: %m", root->setting)));
	return fd;
}

/*
 * Opens a file named explicitly (resolved: its realpath) from the import
 * folder down and returns the descriptor, *st its fstat; a file the server
 * may not read is 42501, one that is not a regular file 42809.
 */
static int
open_named_file(OpenFiles *of, const SafePathRoot *root, const char *resolved,
				const char *rel, struct stat *st)
{
	int			root_fd = open_root_fd(of, root);
	int			fd = open_beneath(of, root_fd, safe_path_relative(root, resolved),
								  O_RDONLY | O_NONBLOCK);
	int			err = errno;

	if (fd < 0 && (err == EACCES || err == EPERM))
	{
		LogContent	lc;

		memset(&lc, 0, sizeof(lc));
		lc.offset = -1;
		set_problem(&lc, "unreadable", ERRCODE_INSUFFICIENT_PRIVILEGE,
					pstrdup("the server has no permission to read the file"));
		raise_problem(rel, &lc);
	}
	if (fd < 0)
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not open file \"%s\" for reading: %m", rel)));
	close_at(of, root_fd);
	if (fstat(fd, st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", rel)));
	if (!S_ISREG(st->st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a regular file", rel[0] ? rel : ".")));
	return fd;
}

static text *
text_arg(FunctionCallInfo fcinfo, const char *fname)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: path must not be NULL", fname),
				 errhint("Use '' for the whole import folder.")));
	return PG_GETARG_TEXT_PP(0);
}

Datum
calo_recon_read_log_file(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(text_arg(fcinfo, "calo_recon.read_log_file"));
	SafePathRoot *root;
	char	   *resolved;
	char	   *rel;
	struct stat st;
	OpenFiles  *files;
	int			fd;
	LogContent	lc;

	safe_path_check_privilege(SAFE_PATH_READ, "read_log_file()");
	rel = open_user_path(path, &root, &resolved);
	if (stat(resolved, &st) != 0)
	{
		int			err = errno;

		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not stat \"%s\": %m", rel)));
	}
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a regular file", rel[0] ? rel : "."),
				 errhint("read_log_file reads one file; ingest_file also walks folders.")));
	files = open_files_create();
	fd = open_named_file(files, root, resolved, rel, &st);
	lc = read_log_content(fd, &st, rel, false);
	open_files_done(files);
	if (lc.text == NULL)
		raise_problem(rel, &lc);
	PG_RETURN_TEXT_P(lc.text);
}

static Datum
ingest_file(FunctionCallInfo fcinfo, bool reconcile)
{
	char	   *path = text_to_cstring(text_arg(fcinfo, "calo_recon.ingest_file"));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WalkState	ws;
	char	   *resolved;
	char	   *rel;
	struct stat st;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Oid			record_types[5] = {TEXTOID, INT8OID, TIMESTAMPTZOID, INT8OID, TEXTOID};
	Datum		values[N_FILE_COUNTS];
	bool		nulls[N_FILE_COUNTS];
	int			i;

	safe_path_check_privilege(SAFE_PATH_READ, "ingest_file()");
	InitMaterializedSRF(fcinfo, 0);

	memset(&ws, 0, sizeof(ws));
	rel = open_user_path(path, &ws.root, &resolved);
	if (stat(resolved, &st) != 0)
	{
		int			err = errno;

		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not stat \"%s\": %m", rel)));
	}
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is neither a file nor a folder", rel)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "calo_recon: SPI_connect failed");
	/* serialize with other ingests before looking at anything */
	calo_lock_writer();
	ws.ingest_plan = SPI_prepare("SELECT * FROM calo_recon.ingest_log_unreconciled($1, $2)",
								 2, argtypes);
	ws.quarantine_plan = SPI_prepare(
		"INSERT INTO calo_recon.quarantine (source_file, kind, reason, detail) "
		"SELECT $1, 'file', $2, $3::pg_catalog.jsonb "
		"WHERE NOT EXISTS (SELECT 1 FROM calo_recon.quarantine q "
		"  WHERE q.source_file OPERATOR(pg_catalog.=) $1 "
		"    AND q.kind OPERATOR(pg_catalog.=) 'file'::pg_catalog.text "
		"    AND q.reason OPERATOR(pg_catalog.=) $2 "
		"    AND q.detail OPERATOR(pg_catalog.=) $3::pg_catalog.jsonb)",
		3, argtypes);
	ws.seen_plan = SPI_prepare(
		"SELECT f.file_size, f.file_mtime, f.file_inode, f.outcome "
		"FROM calo_recon.import_files f WHERE f.path OPERATOR(pg_catalog.=) $1",
		1, argtypes);
	ws.record_plan = SPI_prepare(
		"INSERT INTO calo_recon.import_files AS f "
		"  (path, file_size, file_mtime, file_inode, outcome) VALUES ($1, $2, $3, $4, $5) "
		"ON CONFLICT (path) DO UPDATE SET file_size = excluded.file_size, "
		"  file_mtime = excluded.file_mtime, file_inode = excluded.file_inode, "
		"  outcome = excluded.outcome, read_at = pg_catalog.now()",
		5, record_types);
	if (ws.ingest_plan == NULL || ws.quarantine_plan == NULL || ws.seen_plan == NULL
		|| ws.record_plan == NULL)
		elog(ERROR, "calo_recon: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	ws.walk_cxt = CurrentMemoryContext;
	ws.file_cxt = AllocSetContextCreate(CurrentMemoryContext, "calo_recon ingest file",
										ALLOCSET_DEFAULT_SIZES);

	ws.files = open_files_create();
	alert_batch_begin(&ws.alerts);
	PG_TRY();
	{
		if (S_ISDIR(st.st_mode))
		{
			int			fd;
			int			err;

			ws.root_fd = open_root_fd(ws.files, ws.root);
			fd = open_beneath(ws.files, ws.root_fd, safe_path_relative(ws.root, resolved),
							  O_RDONLY | O_DIRECTORY);
			err = errno;
			if (fd < 0)
				ereport(ERROR,
						(safe_path_errcode_for_file_access(err),
						 errmsg("could not open folder \"%s\": %m", rel[0] ? rel : ".")));
			walk_folder(&ws, fd, rel, depth_of(rel));
		}
		else
		{
			int			fd = open_named_file(ws.files, ws.root, resolved, rel, &st);

			MemoryContextSwitchTo(ws.file_cxt);
			ingest_one_file(&ws, fd, &st, rel, true);
			MemoryContextSwitchTo(ws.walk_cxt);
		}
		open_files_done(ws.files);
		alert_batch_end(&ws.alerts);
	}
	PG_CATCH();
	{
		alert_batch_abandon(&ws.alerts);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (reconcile)
		reconcile_queued_users();

	MemoryContextDelete(ws.file_cxt);
	SPI_finish();

	for (i = 0; i < N_FILE_COUNTS; i++)
	{
		values[i] = Int32GetDatum((int32) Min(ws.counts[i], (int64) PG_INT32_MAX));
		nulls[i] = false;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

Datum
calo_recon_ingest_file(PG_FUNCTION_ARGS)
{
	return ingest_file(fcinfo, true);
}

Datum
calo_recon_ingest_file_unreconciled(PG_FUNCTION_ARGS)
{
	return ingest_file(fcinfo, false);
}

/*
 * calo_recon.check_source_name(source text): 22023 when a source name given
 * to ingest_log breaks the rules of paths (safe_path_check_source_name), so
 * that every source_file, however it came, follows the same rules.
 */
Datum
calo_recon_check_source_name(PG_FUNCTION_ARGS)
{
	safe_path_check_source_name(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
