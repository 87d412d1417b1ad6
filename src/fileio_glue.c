/*
 * fileio_glue.c: server-side reading of log exports from the import folder.
 *
 *   calo_recon.read_log_file(path text) -> text
 *   calo_recon.ingest_file(path text)   -> one row of counts
 *
 * Paths are relative to calo_recon.import_directory and follow the shared
 * rules of safe_path.h (no absolute path, no "..", no control character, no
 * symlink leading out; pg_read_server_files).  A folder is walked
 * recursively in byte order of names; every log file goes through
 * calo_recon.ingest_log_unreconciled(text, relative path), the body of
 * ingest_log, so idempotency and counts have one code path; the users it
 * touched are reconciled once at the end, as ingest_log does per text.  Files that are not logs are counted, skipped and recorded
 * in quarantine; damaged logs (corrupt gzip, invalid UTF-8, too large) are an
 * error when named explicitly and quarantined during a folder walk.
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
#include "utils/tuplestore.h"

#include "calo_recon.h"
#include "locks.h"
#include "logfile.h"
#include "safe_path.h"

/* the largest text value PostgreSQL can hold */
#define LOG_TEXT_MAX ((size_t) (MaxAllocSize - VARHDRSZ - 1))


/* counts returned by ingest_log, then ingest_file's own */
#define N_LOG_COUNTS 8
#define N_FILE_COUNTS (N_LOG_COUNTS + 3)
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

typedef struct WalkState
{
	SafePathRoot *root;
	SPIPlanPtr	ingest_plan;
	SPIPlanPtr	quarantine_plan;
	MemoryContext file_cxt;		/* reset after each file */
	MemoryContext walk_cxt;		/* lives for the whole call */
	ArrayBuildState *users;		/* affected user ids, reconciled at the end */
	int64		counts[N_FILE_COUNTS];
} WalkState;

PG_FUNCTION_INFO_V1(calo_recon_read_log_file);
PG_FUNCTION_INFO_V1(calo_recon_ingest_file);

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
 * Reads a regular file and returns its text (decompressed, checked as UTF-8,
 * converted to the server encoding) or the problem.  check_log adds the
 * leading-timestamp check.  Errors of the file system itself are raised.
 */
static LogContent
read_log_content(const char *resolved, const char *rel, bool check_log)
{
	LogContent	lc;
	int			fd;
	struct stat st;
	unsigned char *raw;
	unsigned char *data;
	size_t		len;
	size_t		got = 0;
	size_t		bad;
	char	   *converted;

	memset(&lc, 0, sizeof(lc));
	lc.offset = -1;

	/* a file the server may not read is a finding, not the end of a walk */
	fd = OpenTransientFile(resolved, O_RDONLY | PG_BINARY);
	if (fd < 0 && errno == EACCES)
	{
		set_problem(&lc, "unreadable", ERRCODE_INSUFFICIENT_PRIVILEGE,
					pstrdup("the server has no permission to read the file"));
		return lc;
	}
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", rel)));
	if (fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", rel)));
	lc.file_bytes = st.st_size;
	if ((size_t) st.st_size > LOG_TEXT_MAX)
	{
		CloseTransientFile(fd);
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
	CloseTransientFile(fd);

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
	Datum		users;

	values[0] = PointerGetDatum(log);
	values[1] = CStringGetTextDatum(rel);
	rc = SPI_execute_plan(ws->ingest_plan, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1
		|| SPI_tuptable->tupdesc->natts != N_LOG_COUNTS + 1)
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
	users = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
						  N_LOG_COUNTS + 1, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *elem_nulls;
		int			n;

		deconstruct_array(DatumGetArrayTypeP(users), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &elem_nulls, &n);
		for (i = 0; i < n; i++)
			if (!elem_nulls[i])
				ws->users = accumArrayResult(ws->users, elems[i], false, TEXTOID,
											 ws->walk_cxt);
	}
	SPI_freetuptable(SPI_tuptable);
	ws->counts[COUNT_FILES]++;
	/* a log file has at least one event; zero means it was loaded before */
	if (events > 0)
		ws->counts[COUNT_NEW_FILES]++;
}

/* One reconcile for every user the walk touched (as ingest_log does per text). */
static void
reconcile_users(WalkState *ws)
{
	Oid			argtype = TEXTARRAYOID;
	Datum		arg;

	if (ws->users == NULL)
		return;
	arg = makeArrayResult(ws->users, ws->walk_cxt);
	if (SPI_execute_with_args("SELECT 1 FROM calo_recon.reconcile("
							  "ARRAY(SELECT DISTINCT u FROM pg_catalog.unnest($1) AS u ORDER BY 1))",
							  1, &argtype, &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "calo_recon: reconcile of the ingested users failed");
}

/* One regular file: ingest it, or quarantine it (walk) / raise (named). */
static void
ingest_one_file(WalkState *ws, const char *resolved, const char *rel, bool named)
{
	MemoryContext old = MemoryContextSwitchTo(ws->file_cxt);
	LogContent	lc = read_log_content(resolved, rel, true);

	if (lc.text != NULL)
		ingest_text(ws, rel, lc.text);
	else if (named && strcmp(lc.reason, "not_a_log") != 0)
		raise_problem(rel, &lc);
	else
		quarantine_file(ws, rel, lc.reason, lc.message, lc.offset, (long long) lc.file_bytes);
	MemoryContextSwitchTo(old);
	MemoryContextReset(ws->file_cxt);
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Walks a folder (rel "" is the import folder itself) in byte order of names. */
static void
walk_folder(WalkState *ws, const char *dir_resolved, const char *rel)
{
	DIR		   *dir;
	struct dirent *de;
	char	  **names = NULL;
	int			n = 0;
	int			cap = 0;
	int			i;

	check_stack_depth();
	dir = AllocateDir(dir_resolved);
	if (dir == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open folder \"%s\": %m", rel[0] ? rel : ".")));
	while ((de = ReadDir(dir, dir_resolved)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 16;
			names = names ? repalloc(names, cap * sizeof(char *)) : palloc(cap * sizeof(char *));
		}
		names[n++] = pstrdup(de->d_name);
	}
	FreeDir(dir);
	if (n > 1)
		qsort(names, n, sizeof(char *), compare_names);

	for (i = 0; i < n; i++)
	{
		char	   *child_rel = rel[0] ? psprintf("%s/%s", rel, names[i]) : pstrdup(names[i]);
		char	   *child_path = psprintf("%s/%s", dir_resolved, names[i]);
		struct stat st;

		CHECK_FOR_INTERRUPTS();
		if (lstat(child_path, &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat \"%s\": %m", child_rel)));
		if (S_ISLNK(st.st_mode))
		{
			char	   *target = realpath(child_path, NULL);

			if (target == NULL || !safe_path_contains(ws->root, target) || stat(target, &st) != 0)
			{
				quarantine_file(ws, child_rel, "outside_import_directory",
								target ? "symbolic link leads outside the import folder"
								: "dangling symbolic link", -1, 0);
			}
			else if (S_ISDIR(st.st_mode))
				quarantine_file(ws, child_rel, "symlinked_folder",
								"symbolic links to folders are not followed", -1, 0);
			else if (S_ISREG(st.st_mode))
			{
				char	   *copy = pstrdup(target);

				free(target);
				target = NULL;
				ingest_one_file(ws, copy, child_rel, false);
			}
			else
				quarantine_file(ws, child_rel, "not_a_regular_file",
								"not a regular file", -1, 0);
			if (target)
				free(target);
		}
		else if (S_ISDIR(st.st_mode))
			walk_folder(ws, child_path, child_rel);
		else if (S_ISREG(st.st_mode))
			ingest_one_file(ws, child_path, child_rel, false);
		else
			quarantine_file(ws, child_rel, "not_a_regular_file", "not a regular file", -1, 0);
		pfree(child_rel);
		pfree(child_path);
	}
	for (i = 0; i < n; i++)
		pfree(names[i]);
	if (names)
		pfree(names);
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
	char	   *resolved;
	char	   *rel;
	struct stat st;
	LogContent	lc;

	safe_path_check_privilege(SAFE_PATH_READ, "read_log_file()");
	rel = open_user_path(path, NULL, &resolved);
	if (stat(resolved, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat \"%s\": %m", rel)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a regular file", rel[0] ? rel : "."),
				 errhint("read_log_file reads one file; ingest_file also walks folders.")));
	lc = read_log_content(resolved, rel, false);
	if (lc.text == NULL)
		raise_problem(rel, &lc);
	PG_RETURN_TEXT_P(lc.text);
}

Datum
calo_recon_ingest_file(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(text_arg(fcinfo, "calo_recon.ingest_file"));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WalkState	ws;
	char	   *resolved;
	char	   *rel;
	struct stat st;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[N_FILE_COUNTS];
	bool		nulls[N_FILE_COUNTS];
	int			i;

	safe_path_check_privilege(SAFE_PATH_READ, "ingest_file()");
	InitMaterializedSRF(fcinfo, 0);

	memset(&ws, 0, sizeof(ws));
	rel = open_user_path(path, &ws.root, &resolved);
	if (stat(resolved, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat \"%s\": %m", rel)));
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
	if (ws.ingest_plan == NULL || ws.quarantine_plan == NULL)
		elog(ERROR, "calo_recon: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	ws.walk_cxt = CurrentMemoryContext;
	ws.file_cxt = AllocSetContextCreate(CurrentMemoryContext, "calo_recon ingest file",
										ALLOCSET_DEFAULT_SIZES);

	if (S_ISDIR(st.st_mode))
		walk_folder(&ws, resolved, rel);
	else
		ingest_one_file(&ws, resolved, rel, true);
	reconcile_users(&ws);

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
