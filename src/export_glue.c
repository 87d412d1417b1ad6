/*
 * export_glue.c: calo_recon.export_reports() and the safe file writing that
 * export_workbook() shares (see export_glue.h for the rules).
 *
 * The CSV is written here from an SPI cursor rather than with COPY TO so that
 * text cells can be neutralized against spreadsheet formula injection while
 * numeric cells stay plain numbers.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "parser/parse_coerce.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "calo_recon.h"
#include "export_glue.h"
#include "locks.h"


#define CSV_FLUSH_BYTES 65536
#define FETCH_ROWS 1000

/* Views written by export_reports(), in output order. */
static const char *const report_views[] = {
	"transactions", "overdrafts", "overdraft_episodes", "anomalies",
	"discrepancies", "balance_breaks", "precision_drift", "user_summary",
};

PG_FUNCTION_INFO_V1(calo_recon_export_reports);

void
export_lock(void)
{
	DirectFunctionCall2(pg_advisory_xact_lock_int4,
						Int32GetDatum(CALO_LOCK_CLASS), Int32GetDatum(CALO_LOCK_EXPORT));
}

/* calo_recon.export_directory, opened under the shared rules of safe_path.h */
SafePathRoot *
export_open_root(void)
{
	return safe_path_open_root("calo_recon.export_directory", calo_recon_export_directory);
}

/*
 * One folder of the export path (prefix: "a", then "a/b"): created when
 * missing, then resolved, so it must stay inside the export directory and be
 * a folder.  Returns its resolved absolute path.
 */
static char *
prepare_folder(const SafePathRoot *root, const char *prefix)
{
	char	   *path = safe_path_join(root, prefix);
	char	   *resolved;
	struct stat st;

	if (lstat(path, &st) != 0)
	{
		if (errno != ENOENT)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat \"%s\": %m", prefix)));
		if (mkdir(path, S_IRWXU | S_IRGRP | S_IXGRP) != 0 && errno != EEXIST)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create folder \"%s\": %m", prefix)));
	}
	resolved = safe_path_resolve(root, prefix);
	if (stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a folder", prefix)));
	return resolved;
}

/*
 * Returns the absolute, symlink-free folder for a path relative to the export
 * directory, creating missing folders one by one, outermost first, so a
 * symlink pointing elsewhere is refused before anything is created through it.
 */
char *
export_resolve_folder(const SafePathRoot *root, const char *relative_folder, char **rel_out)
{
	char	   *rel = safe_path_normalize(root, relative_folder);
	char	   *current = root->path;
	const char *p;

	for (p = rel; *p; p++)
		if (*p == '/')
			current = prepare_folder(root, pnstrdup(rel, p - rel));
	if (rel[0] != '\0')
		current = prepare_folder(root, rel);
	if (rel_out)
		*rel_out = rel;
	return current;
}

/* Splits "a/b/report.xlsx" into folder "a/b" and name "report.xlsx". */
void
export_split_file(const SafePathRoot *root, const char *relative_file,
				  char **folder_out, char **name_out)
{
	char	   *rel = safe_path_normalize(root, relative_file);
	char	   *slash = strrchr(rel, '/');
	char	   *name = slash ? slash + 1 : rel;

	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file name must not be empty")));
	if (name[0] == '.')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file name \"%s\" must not start with a dot", name),
				 errdetail("Names starting with a dot are reserved for temporary files and the manifest.")));
	*folder_out = slash ? pnstrdup(rel, slash - rel) : pstrdup("");
	*name_out = name;
}

static void
sha256_of_file(const char *path, uint8 *digest)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	char	   *buffer = palloc(CSV_FLUSH_BYTES);
	int			fd;
	ssize_t		got;

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open \"%s\": %m", path)));
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize SHA-256");
	while ((got = read(fd, buffer, CSV_FLUSH_BYTES)) > 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (pg_cryptohash_update(ctx, (uint8 *) buffer, got) < 0)
			elog(ERROR, "could not update SHA-256");
	}
	if (got < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read \"%s\": %m", path)));
	if (pg_cryptohash_final(ctx, digest, 32) < 0)
		elog(ERROR, "could not finalize SHA-256");
	pg_cryptohash_free(ctx);
	CloseTransientFile(fd);
	pfree(buffer);
}

static char *
digest_hex(const uint8 *digest)
{
	static const char hex[] = "0123456789abcdef";
	char	   *out = palloc(65);
	int			i;

	for (i = 0; i < 32; i++)
	{
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[64] = '\0';
	return out;
}

/* Manifest lines are "<sha256 hex>  <name>", as sha256sum prints them. */
static List *
manifest_read(const char *folder)
{
	char	   *path = psprintf("%s/%s", folder, EXPORT_MANIFEST_NAME);
	List	   *lines = NIL;
	FILE	   *file;
	char		line[MAXPGPATH + 80];

	file = AllocateFile(path, "r");
	if (file == NULL)
	{
		if (errno == ENOENT)
			return NIL;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the export manifest \"%s\": %m", path)));
	}
	while (fgets(line, sizeof(line), file) != NULL)
	{
		size_t		len = strlen(line);

		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 66 && line[64] == ' ' && line[65] == ' ')
			lines = lappend(lines, pstrdup(line));
	}
	FreeFile(file);
	return lines;
}

static const char *
manifest_digest_of(List *lines, const char *name)
{
	ListCell   *lc;

	foreach(lc, lines)
	{
		char	   *line = lfirst(lc);

		if (strcmp(line + 66, name) == 0)
			return pnstrdup(line, 64);
	}
	return NULL;
}

/* Refuses to replace a file the extension did not write (or that was changed since). */
static void
check_replaceable(const char *folder, const char *name, const char *rel_path)
{
	char	   *path = psprintf("%s/%s", folder, name);
	struct stat st;
	uint8		digest[32];
	const char *listed;

	if (lstat(path, &st) != 0)
	{
		if (errno == ENOENT)
			return;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat \"%s\": %m", rel_path)));
	}
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("\"%s\" exists and is not a regular file", rel_path),
				 errdetail("calo_recon never replaces symbolic links, folders or devices.")));
	listed = manifest_digest_of(manifest_read(folder), name);
	if (listed == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("file \"%s\" exists and was not written by calo_recon", rel_path),
				 errhint("Remove it or export into another folder.")));
	sha256_of_file(path, digest);
	if (strcmp(listed, digest_hex(digest)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("file \"%s\" was changed after calo_recon wrote it", rel_path),
				 errhint("Remove it or export into another folder.")));
}

ExportFile *
export_begin(const char *folder, const char *rel_folder, const char *name, int *fd_out)
{
	static uint32 counter = 0;
	ExportFile *file = palloc0(sizeof(ExportFile));
	int			fd;

	file->folder = pstrdup(folder);
	file->name = pstrdup(name);
	file->rel_path = rel_folder[0] ? psprintf("%s/%s", rel_folder, name) : pstrdup(name);
	check_replaceable(folder, name, file->rel_path);

	file->temp_path = psprintf("%s/.%s.%d.%u.tmp", folder, name, MyProcPid, ++counter);
	fd = OpenTransientFilePerm(file->temp_path,
							   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | PG_BINARY,
							   S_IRUSR | S_IWUSR | S_IRGRP);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create temporary file for \"%s\": %m", file->rel_path)));
	*fd_out = fd;
	return file;
}

void
export_digest_file(ExportFile *file)
{
	sha256_of_file(file->temp_path, file->digest);
}

static void
manifest_write(const char *folder, List *lines)
{
	char	   *path = psprintf("%s/%s", folder, EXPORT_MANIFEST_NAME);
	char	   *temp = psprintf("%s.%d.tmp", path, MyProcPid);
	StringInfoData text;
	ListCell   *lc;
	int			fd;

	initStringInfo(&text);
	foreach(lc, lines)
		appendStringInfo(&text, "%s\n", (char *) lfirst(lc));
	fd = OpenTransientFilePerm(temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | PG_BINARY,
							   S_IRUSR | S_IWUSR | S_IRGRP);
	if (fd < 0 || write(fd, text.data, text.len) != text.len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write the export manifest \"%s\": %m", temp)));
	CloseTransientFile(fd);
	durable_rename(temp, path, ERROR);
}

/* Manifest lines sorted by file name, so the file reads the same whatever the export order. */
static int
manifest_line_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((char *) lfirst(a) + 66, (char *) lfirst(b) + 66);
}

/* Renames every finished temporary file to its name, then records it in the manifest. */
void
export_publish(List *files)
{
	ListCell   *lc;

	foreach(lc, files)
	{
		ExportFile *file = lfirst(lc);

		durable_rename(file->temp_path, psprintf("%s/%s", file->folder, file->name), ERROR);
		file->temp_path = NULL;
	}
	foreach(lc, files)
	{
		ExportFile *file = lfirst(lc);
		List	   *lines = manifest_read(file->folder);
		List	   *kept = NIL;
		ListCell   *lc2;

		foreach(lc2, lines)
			if (strcmp((char *) lfirst(lc2) + 66, file->name) != 0)
				kept = lappend(kept, lfirst(lc2));
		kept = lappend(kept, psprintf("%s  %s", digest_hex(file->digest), file->name));
		list_sort(kept, manifest_line_cmp);
		manifest_write(file->folder, kept);
	}
}

/* Removes the temporary files of an export that failed; never raises. */
void
export_discard(List *files)
{
	ListCell   *lc;

	foreach(lc, files)
	{
		ExportFile *file = lfirst(lc);

		if (file->temp_path)
			(void) unlink(file->temp_path);
	}
}

/*
 * Reports print times and intervals the same way whatever the session's
 * DateStyle: ISO 8601, in the session's time zone. Undo with
 * AtEOXact_GUC(true, level).
 */
int
export_fix_output_settings(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "iso_8601", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

ExportColumnKind
export_column_kind(Oid type_oid)
{
	Oid			base = getBaseType(type_oid);

	switch (base)
	{
		case BOOLOID:
			return EXPORT_BOOL;
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
		case DATEOID:
			return EXPORT_TIME;
		default:
			break;
	}
	return TypeCategory(base) == TYPCATEGORY_NUMERIC ? EXPORT_NUMBER : EXPORT_TEXT;
}

/*
 * Opens a read-only cursor over calo_recon.<view>, ordered by every column
 * that has a sort order, so reports come out the same for the same data.
 * Read-only cursors use the caller's snapshot: every report of one call sees
 * the same data. Returns NULL when the view is not installed.
 */
Portal
export_open_view(const char *view)
{
	Oid			nsp = get_namespace_oid("calo_recon", false);
	Oid			relid = get_relname_relid(view, nsp);
	char	   *base_query;
	Portal		probe;
	TupleDesc	desc;
	StringInfoData query;
	int			i;
	bool		first = true;

	if (!OidIsValid(relid))
		return NULL;
	base_query = psprintf("SELECT * FROM calo_recon.%s", quote_identifier(view));
	probe = SPI_cursor_open_with_args(NULL, base_query, 0, NULL, NULL, NULL, true, 0);
	desc = CreateTupleDescCopy(probe->tupDesc);
	SPI_cursor_close(probe);

	initStringInfo(&query);
	appendStringInfoString(&query, base_query);
	for (i = 0; i < desc->natts; i++)
	{
		TypeCacheEntry *tc = lookup_type_cache(TupleDescAttr(desc, i)->atttypid, TYPECACHE_LT_OPR);

		if (!OidIsValid(tc->lt_opr))
			continue;
		appendStringInfo(&query, "%s%d", first ? " ORDER BY " : ", ", i + 1);
		first = false;
	}
	return SPI_cursor_open_with_args(NULL, query.data, 0, NULL, NULL, NULL, true, 0);
}

static void
flush_buffer(int fd, StringInfo buf, const char *rel_path)
{
	const char *p = buf->data;
	int			left = buf->len;

	while (left > 0)
	{
		ssize_t		done = write(fd, p, left);

		if (done < 0)
		{
			if (errno == EINTR)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write \"%s\": %m", rel_path)));
		}
		p += done;
		left -= done;
	}
	resetStringInfo(buf);
}

/*
 * Appends one CSV field. NULL is an empty field and an empty string is "",
 * as COPY CSV writes them; text that a spreadsheet would take for a formula
 * gets a leading apostrophe.
 */
static void
append_csv_field(StringInfo buf, const char *value, bool neutralize)
{
	bool		formula = neutralize && strchr("=+-@\t\r", value[0]) != NULL && value[0] != '\0';
	bool		quote = value[0] == '\0' || strpbrk(value, ",\"\n\r") != NULL;
	const char *p;

	if (!quote)
	{
		if (formula)
			appendStringInfoChar(buf, '\'');
		appendStringInfoString(buf, value);
		return;
	}
	appendStringInfoChar(buf, '"');
	if (formula)
		appendStringInfoChar(buf, '\'');
	for (p = value; *p; p++)
	{
		if (*p == '"')
			appendStringInfoChar(buf, '"');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '"');
}

/*
 * How to print each column of a cursor: output function and kind
 * (numbers plain, text neutralized, times as dates in the workbook).
 */
ExportColumns *
export_columns(TupleDesc desc)
{
	ExportColumns *columns = palloc(sizeof(ExportColumns));
	int			i;

	columns->natts = desc->natts;
	columns->out_funcs = palloc(sizeof(Oid) * desc->natts);
	columns->kinds = palloc(sizeof(ExportColumnKind) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Oid			type_oid = TupleDescAttr(desc, i)->atttypid;
		bool		varlena;

		getTypeOutputInfo(type_oid, &columns->out_funcs[i], &varlena);
		columns->kinds[i] = export_column_kind(type_oid);
	}
	return columns;
}

/*
 * Calls row_fn for every row of the cursor, fetched a batch at a time; what
 * row_fn allocates is freed after each batch. Returns the rows seen.
 */
int64
export_for_each_row(Portal portal, ExportRowFn row_fn, void *arg)
{
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "calo_recon export batch",
													ALLOCSET_DEFAULT_SIZES);
	int64		rows = 0;

	for (;;)
	{
		MemoryContext old_cxt;
		uint64		r;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		old_cxt = MemoryContextSwitchTo(batch_cxt);
		for (r = 0; r < SPI_processed; r++)
			row_fn(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, rows++, arg);
		MemoryContextSwitchTo(old_cxt);
		MemoryContextReset(batch_cxt);
		SPI_freetuptable(SPI_tuptable);
	}
	MemoryContextDelete(batch_cxt);
	return rows;
}

typedef struct CsvWriter
{
	ExportColumns *columns;
	StringInfoData buf;
	int			fd;
	const char *rel_path;
} CsvWriter;

static void
write_csv_row(HeapTuple tuple, TupleDesc desc, int64 row_no, void *arg)
{
	CsvWriter  *csv = arg;
	int			i;

	for (i = 0; i < csv->columns->natts; i++)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(tuple, desc, i + 1, &isnull);

		if (i > 0)
			appendStringInfoChar(&csv->buf, ',');
		if (!isnull)
			append_csv_field(&csv->buf, OidOutputFunctionCall(csv->columns->out_funcs[i], value),
							 csv->columns->kinds[i] == EXPORT_TEXT);
	}
	appendStringInfoChar(&csv->buf, '\n');
	if (csv->buf.len >= CSV_FLUSH_BYTES)
		flush_buffer(csv->fd, &csv->buf, csv->rel_path);
}

/* Writes one view as CSV with a header into fd; returns the data rows written. */
static int64
write_view_csv(Portal portal, int fd, const char *rel_path)
{
	CsvWriter	csv;
	int64		rows;
	int			i;

	csv.columns = export_columns(portal->tupDesc);
	csv.fd = fd;
	csv.rel_path = rel_path;
	initStringInfo(&csv.buf);
	for (i = 0; i < csv.columns->natts; i++)
	{
		if (i > 0)
			appendStringInfoChar(&csv.buf, ',');
		append_csv_field(&csv.buf, NameStr(TupleDescAttr(portal->tupDesc, i)->attname), false);
	}
	appendStringInfoChar(&csv.buf, '\n');
	rows = export_for_each_row(portal, write_csv_row, &csv);
	flush_buffer(fd, &csv.buf, rel_path);
	return rows;
}

/*
 * calo_recon.export_reports(folder text DEFAULT '')
 *   RETURNS TABLE (report text, file text, rows bigint)
 *
 * All files are written to temporary names first and renamed only when every
 * report is complete: a failed call leaves the folder as it was.
 */
Datum
calo_recon_export_reports(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *folder_arg = PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	SafePathRoot *root;
	List	   *files = NIL;
	int64	   *row_counts;
	char	   *folder;
	char	   *rel_folder;
	int			nviews = lengthof(report_views);
	int			i;
	int			guc_level;

	safe_path_check_privilege(SAFE_PATH_WRITE, "export_reports()");
	InitMaterializedSRF(fcinfo, 0);
	root = export_open_root();
	export_lock();
	folder = export_resolve_folder(root, folder_arg, &rel_folder);
	row_counts = palloc0(sizeof(int64) * nviews);
	guc_level = export_fix_output_settings();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		for (i = 0; i < nviews; i++)
		{
			Portal		portal = export_open_view(report_views[i]);
			ExportFile *file;
			int			fd;

			if (portal == NULL)
				continue;
			file = export_begin(folder, rel_folder, psprintf("%s.csv", report_views[i]), &fd);
			files = lappend(files, file);
			row_counts[i] = write_view_csv(portal, fd, file->rel_path);
			SPI_cursor_close(portal);
			if (CloseTransientFile(fd) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not close \"%s\": %m", file->rel_path)));
			export_digest_file(file);
		}
		export_publish(files);
	}
	PG_CATCH();
	{
		export_discard(files);
		PG_RE_THROW();
	}
	PG_END_TRY();
	SPI_finish();
	AtEOXact_GUC(true, guc_level);

	{
		ListCell   *lc = list_head(files);

		for (i = 0; i < nviews && lc != NULL; i++)
		{
			ExportFile *file = lfirst(lc);
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			if (strcmp(file->name, psprintf("%s.csv", report_views[i])) != 0)
				continue;
			values[0] = CStringGetTextDatum(report_views[i]);
			values[1] = CStringGetTextDatum(file->rel_path);
			values[2] = Int64GetDatum(row_counts[i]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			lc = lnext(files, lc);
		}
	}
	return (Datum) 0;
}
