/*
 * export_glue.c: calo_recon.export_reports() and the safe file writing that
 * export_workbook() shares (see export_glue.h for the rules).
 *
 * The CSV is written here from an SPI cursor rather than with COPY TO so that
 * text cells can be neutralized against spreadsheet formula injection while
 * numeric cells stay plain numbers.
 */
#include "postgres.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "parser/parse_coerce.h"
#include "parser/parse_func.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "module_glue.h"
#include "export_glue.h"
#include "formula.h"
#include "locks.h"
#include "report_queries.h"

#define CSV_FLUSH_BYTES 65536
#define FETCH_ROWS 1000

/*
 * The reports of export_reports() (one CSV each) and export_workbook() (one
 * sheet each, after its Summary sheet), in output order; the daily rows in
 * REPORT_DAILY_QUERY's order, as the workbook writes them.  user_summary has
 * no time of its own: user_summary_in() gives its figures over the period.
 */
static const ExportReport report_list[] = {
	{REPORT_DAILY_VIEW, "Daily Summary", "day", NULL, "day, currency COLLATE pg_catalog.\"C\""},
	{"transactions", "All Transactions", "logged_at", NULL, NULL},
	{"overdrafts", "Overdrafts", "logged_at", NULL, NULL},
	{"overdraft_episodes", "Overdraft Episodes", "started_at", NULL, NULL},
	{"anomalies", "Anomalies", "logged_at", NULL, "score DESC NULLS LAST, txn_id"},
	{"discrepancies", "Discrepancies", "logged_at", NULL, NULL},
	{"balance_breaks", "Balance Breaks", "logged_at", NULL, NULL},
	{"precision_drift", "Precision Drift", "logged_at", NULL, NULL},
	{"user_summary", "User Summary", NULL,
		"user_summary_in", NULL},
};

const ExportReport *
export_report_list(int *count)
{
	*count = lengthof(report_list);
	return report_list;
}

/* A period's end must be a UTC midnight (or open, or infinite). */
static void
export_check_utc_midnight(const char *name, bool given, TimestampTz when)
{
	if (!given || TIMESTAMP_NOT_FINITE(when) || when % USECS_PER_DAY == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must be a UTC midnight", name),
			 errdetail("%s is %s UTC; a period is made of whole UTC days.", name, export_time_text(when)),
			 errhint("Pass a UTC midnight, such as '%.10s 00:00+00' (the start of that UTC day).",
					 export_time_text(when))));
}

/*
 * The period (from, to) given as two timestamptz arguments from from_arg on;
 * absent (an old one-argument declaration of 1.0/1.1) or NULL is open.
 */
ExportPeriod
export_period_args(FunctionCallInfo fcinfo, int from_arg)
{
	ExportPeriod period = {false, false, 0, 0};

	if (PG_NARGS() > from_arg && !PG_ARGISNULL(from_arg))
	{
		period.has_from = true;
		period.from = PG_GETARG_TIMESTAMPTZ(from_arg);
	}
	if (PG_NARGS() > from_arg + 1 && !PG_ARGISNULL(from_arg + 1))
	{
		period.has_to = true;
		period.to = PG_GETARG_TIMESTAMPTZ(from_arg + 1);
	}
	if (period.has_from && period.has_to && period.from >= period.to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the period must end after it starts"),
				 errdetail("period_from is %s, period_to is %s.",
						   export_time_text(period.from), export_time_text(period.to)),
				 errhint("The period is [period_from, period_to): period_to is excluded.")));
	/*
	 * Whole UTC days: daily_summary and the Summary keep a day by its UTC
	 * date, every other report a row by its time; a bound inside a day
	 * would make them cover different rows.
	 */
	export_check_utc_midnight("period_from", period.has_from, period.from);
	export_check_utc_midnight("period_to", period.has_to, period.to);
	return period;
}

/*
 * A time as every report writes it: UTC, "YYYY-MM-DD HH:MM:SS[.ffffff]",
 * which spreadsheets read as a date and time (no zone suffix to confuse them).
 */
char *
export_time_text(TimestampTz when)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(when) || timestamp2tm(when, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup(TIMESTAMP_IS_NOBEGIN(when) ? "-infinity" : "infinity");
	if (fsec != 0)
	{
		char	   *text = psprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d", tm.tm_year, tm.tm_mon, tm.tm_mday,
									tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
		char	   *end = text + strlen(text) - 1;

		while (*end == '0')
			*end-- = '\0';
		return text;
	}
	return psprintf("%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec);
}

PG_FUNCTION_INFO_V1(calo_recon_export_reports);

void
export_lock(void)
{
	DirectFunctionCall2(pg_advisory_xact_lock_int4,
						Int32GetDatum(CALO_LOCK_CLASS), Int32GetDatum(CALO_LOCK_EXPORT));
}

/* calo_recon.export_directory, opened under the shared rules of safe_path_glue.h */
SafePathRoot *
export_open_root(void)
{
	return safe_path_open_root("calo_recon.export_directory", calo_recon_export_directory);
}

/*
 * The path of a name inside a folder held open: the kernel resolves
 * /proc/self/fd/N to the folder itself, never again by its name, so this is
 * how fd.c's transient files and libxlsxwriter, which open by name, work
 * relative to a descriptor.  Used with O_NOFOLLOW for the last component.
 */
static char *
path_at(int dir_fd, const char *name)
{
	return psprintf("/proc/self/fd/%d/%s", dir_fd, name);
}

static char *
hex_string(const uint8 *bytes, int n)
{
	static const char hex[] = "0123456789abcdef";
	char	   *out = palloc(2 * n + 1);
	int			i;

	for (i = 0; i < n; i++)
	{
		out[2 * i] = hex[bytes[i] >> 4];
		out[2 * i + 1] = hex[bytes[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}

static char *
digest_hex(const uint8 *digest)
{
	return hex_string(digest, 32);
}

/*
 * Empties a working folder (never recursing) and removes it when the name in
 * the parent still is that folder; never raises, it runs during aborts.
 */
static void
remove_work_folder(int parent_fd, const char *name, int work_fd, dev_t dev, ino_t ino)
{
	int			scan_fd = openat(work_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR		   *dir = scan_fd >= 0 ? fdopendir(scan_fd) : NULL;
	struct dirent *de;
	struct stat st;

	if (dir == NULL)
	{
		if (scan_fd >= 0)
			close(scan_fd);
		return;
	}
	while ((de = readdir(dir)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			(void) unlinkat(work_fd, de->d_name, 0);
	closedir(dir);
	if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		S_ISDIR(st.st_mode) && st.st_dev == dev && st.st_ino == ino)
		(void) unlinkat(parent_fd, name, AT_REMOVEDIR);
}

/* Runs when the folder's memory context goes: at export_close_folder or on abort. */
static void
export_folder_cleanup(void *arg)
{
	ExportFolder *folder = arg;

	if (folder->work_fd >= 0)
	{
		remove_work_folder(folder->fd, folder->work_name, folder->work_fd,
						   folder->work_dev, folder->work_ino);
		close(folder->work_fd);
		folder->work_fd = -1;
	}
	if (folder->fd >= 0)
	{
		close(folder->fd);
		folder->fd = -1;
	}
	ReleaseExternalFD();
	ReleaseExternalFD();
}

/*
 * The pid in the name of a temporary file that calo_recon 1.1 wrote beside
 * the reports (".<name>.<pid>.<n>.tmp", ".calo_recon_manifest.<pid>.tmp"),
 * or 0 for any other name.
 */
static int
legacy_temporary_pid(const char *name)
{
	size_t		len = strlen(name);
	const char *end;
	const char *counter;
	const char *pid;
	int			manifest_pid;
	int			consumed = 0;

	if (name[0] != '.' || len < 6 || strcmp(name + len - 4, ".tmp") != 0)
		return 0;
	if (sscanf(name, EXPORT_MANIFEST_NAME ".%d.tmp%n", &manifest_pid, &consumed) == 1 &&
		consumed == (int) len)
		return manifest_pid;
	end = name + len - 4;
	for (counter = end; counter > name && isdigit((unsigned char) counter[-1]); counter--)
		;
	if (counter == end || counter[-1] != '.')
		return 0;
	for (pid = counter - 1; pid > name && isdigit((unsigned char) pid[-1]); pid--)
		;
	if (pid == counter - 1 || pid[-1] != '.' || pid - 1 == name)
		return 0;
	return atoi(pid);
}

/*
 * The working folder of an export whose backend is gone: named
 * .calo_recon_tmp.<system identifier>.<pid>.<random>, of this cluster, of a
 * pid that is no live backend, owned by the server and private.  Temporary
 * files of calo_recon 1.1 (beside the reports, no system identifier) go when
 * their pid is no live backend and the server owns them.  Exports of
 * one database are serialized (export_lock), but other databases of the
 * cluster may export into the same folder: their pids are live backends.
 */
static void
remove_stale_work_folders(ExportFolder *folder)
{
	int			scan_fd = openat(folder->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR		   *dir = scan_fd >= 0 ? fdopendir(scan_fd) : NULL;
	unsigned long long system_id = (unsigned long long) GetSystemIdentifier();
	struct dirent *de;

	if (dir == NULL)
	{
		if (scan_fd >= 0)
			close(scan_fd);
		return;
	}
	while ((de = readdir(dir)) != NULL)
	{
		unsigned long long id;
		int			pid;
		int			work_fd;
		struct stat st;

		pid = legacy_temporary_pid(de->d_name);
		if (pid > 0)
		{
			if (pid != MyProcPid && BackendPidGetProc(pid) == NULL &&
				fstatat(folder->fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				S_ISREG(st.st_mode) && st.st_uid == geteuid())
				(void) unlinkat(folder->fd, de->d_name, 0);
			continue;
		}
		if (strncmp(de->d_name, EXPORT_WORK_PREFIX, strlen(EXPORT_WORK_PREFIX)) != 0 ||
			sscanf(de->d_name + strlen(EXPORT_WORK_PREFIX), "%llu.%d.", &id, &pid) != 2 ||
			id != system_id || pid == MyProcPid || BackendPidGetProc(pid) != NULL)
			continue;
		work_fd = openat(folder->fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (work_fd < 0)
			continue;
		if (fstat(work_fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO)) == 0)
			remove_work_folder(folder->fd, de->d_name, work_fd, st.st_dev, st.st_ino);
		close(work_fd);
	}
	closedir(dir);
}

/* Creates the private working folder of this export inside the folder. */
static void
create_work_folder(ExportFolder *folder)
{
	MemoryContext old_cxt = MemoryContextSwitchTo(folder->cxt);
	struct stat st;
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		uint8		random_bytes[8];
		int			err;

		if (!pg_strong_random(random_bytes, sizeof(random_bytes)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random name for the export's working folder")));
		folder->work_name = psprintf("%s%llu.%d.%s", EXPORT_WORK_PREFIX,
									 (unsigned long long) GetSystemIdentifier(), MyProcPid,
									 hex_string(random_bytes, sizeof(random_bytes)));
		if (mkdirat(folder->fd, folder->work_name, S_IRWXU) == 0)
			break;
		err = errno;
		if (err != EEXIST || attempt >= 10)
		{
			errno = err;
			ereport(ERROR,
					(safe_path_errcode_for_file_access(err),
					 errmsg("could not create a working folder in \"%s\": %m", folder->rel)));
		}
	}
	folder->work_fd = openat(folder->fd, folder->work_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (folder->work_fd < 0)
	{
		int			err = errno;

		if (err == ELOOP || err == ENOTDIR)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_FILE),
					 errmsg("the working folder \"%s\" in \"%s\" was replaced", folder->work_name, folder->rel)));
		errno = err;
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not open the working folder \"%s\" in \"%s\": %m",
						folder->work_name, folder->rel)));
	}
	/* between mkdirat and openat someone may have put another folder there */
	if (fstat(folder->work_fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
		(st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(folder->work_fd);
		folder->work_fd = -1;
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("the working folder \"%s\" in \"%s\" was replaced", folder->work_name, folder->rel)));
	}
	folder->work_dev = st.st_dev;
	folder->work_ino = st.st_ino;
	folder->work_path = psprintf("/proc/self/fd/%d", folder->work_fd);
	MemoryContextSwitchTo(old_cxt);
}

/*
 * true when a folder held open lies in the export directory: its ".." chain
 * reaches the export directory (same device and inode) before "/".  This is
 * what the descriptor is now, whatever its path was, at any depth.
 */
static bool
folder_inside_root(const ExportFolder *folder, int fd)
{
	int			current = openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	bool		inside = false;

	while (current >= 0)
	{
		struct stat st;
		struct stat parent_st;
		int			parent;

		if (fstat(current, &st) != 0)
			break;
		if (st.st_dev == folder->root_dev && st.st_ino == folder->root_ino)
		{
			inside = true;
			break;
		}
		parent = openat(current, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0 || fstat(parent, &parent_st) != 0 ||
			(parent_st.st_dev == st.st_dev && parent_st.st_ino == st.st_ino))
		{
			if (parent >= 0)
				close(parent);
			break;				/* "/" reached, or no way up */
		}
		close(current);
		current = parent;
	}
	if (current >= 0)
		close(current);
	return inside;
}

/* For a symbolic link to something that is no folder: does it at least stay inside? */
static bool
file_inside_root(const ExportFolder *folder, int fd)
{
	char		link[32];
	char		target[PATH_MAX];
	ssize_t		len;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, target, sizeof(target) - 1);
	if (len < 0 || len >= (ssize_t) sizeof(target) - 1)
		return false;
	target[len] = '\0';
	return safe_path_contains(folder->root, target);
}

/*
 * Opens one folder (name) of the export path inside parent_fd: created when
 * missing; a symbolic link is followed only when it stays inside the export
 * directory, checked on the folder it led to before anything is created in it.
 */
static int
open_subfolder(const ExportFolder *folder, int parent_fd, const char *name, const char *shown)
{
	int			attempt;

	for (attempt = 0; attempt < 10; attempt++)
	{
		int			fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int			err;
		struct stat st;

		if (fd >= 0)
			return fd;
		err = errno;
		if (err == ENOENT)
		{
			if (mkdirat(parent_fd, name, S_IRWXU | S_IRGRP | S_IXGRP) != 0 && errno != EEXIST)
			{
				err = errno;
				errno = err;
				ereport(ERROR,
						(safe_path_errcode_for_file_access(err),
						 errmsg("could not create folder \"%s\": %m", shown)));
			}
			continue;
		}
		if (err != ELOOP && err != ENOTDIR)
		{
			errno = err;
			ereport(ERROR,
					(safe_path_errcode_for_file_access(err),
					 errmsg("could not open folder \"%s\": %m", shown)));
		}
		if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;			/* gone meanwhile: look again */
		if (!S_ISLNK(st.st_mode))
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a folder", shown)));
		/* O_PATH: where the link leads, whatever it is, without opening it */
		fd = openat(parent_fd, name, O_PATH | O_CLOEXEC);
		if (fd < 0)
		{
			err = errno;
			errno = err;
			ereport(ERROR,
					(safe_path_errcode_for_file_access(err),
					 errmsg("could not open \"%s\" in %s: %m", shown, folder->root->setting)));
		}
		if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode))
		{
			bool		inside = file_inside_root(folder, fd);

			close(fd);
			if (!inside)
				safe_path_refuse_outside(folder->root, shown);
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a folder", shown)));
		}
		if (!folder_inside_root(folder, fd))
		{
			close(fd);
			safe_path_refuse_outside(folder->root, shown);
		}
		{
			int			dir_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			err = errno;
			close(fd);
			if (dir_fd < 0)
			{
				errno = err;
				ereport(ERROR,
						(safe_path_errcode_for_file_access(err),
						 errmsg("could not open folder \"%s\": %m", shown)));
			}
			fd = dir_fd;
		}
		return fd;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("folder \"%s\" keeps changing while it is opened", shown)));
	return -1;					/* not reached */
}

/*
 * Opens a regular file in a folder held open, without following a symbolic
 * link and without blocking (a FIFO or device is refused by its type, never
 * waited on).  Returns a transient fd, or -1 when the file does not exist.
 */
static int
open_regular_at(int dir_fd, const char *name, const char *shown)
{
	struct stat st;
	int			fd;
	int			err;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
	{
		err = errno;
		if (err == ENOENT)
			return -1;
		errno = err;
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not stat \"%s\": %m", shown)));
	}
	if (S_ISREG(st.st_mode))
	{
		fd = OpenTransientFile(path_at(dir_fd, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | PG_BINARY);
		if (fd < 0)
		{
			err = errno;
			if (err == ENOENT)
				return -1;
			if (err != ELOOP)
			{
				errno = err;
				ereport(ERROR,
						(safe_path_errcode_for_file_access(err),
						 errmsg("could not open \"%s\": %m", shown)));
			}
		}
		else if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			return fd;
		else
			CloseTransientFile(fd);
	}
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("\"%s\" is not a regular file", shown),
			 errdetail("calo_recon reads and replaces only regular files; a symbolic link, FIFO, socket, device or folder there is refused, never opened.")));
	return -1;					/* not reached */
}

static void
sha256_of_fd(int fd, uint8 *digest, const char *shown)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	char	   *buffer = palloc(CSV_FLUSH_BYTES);
	ssize_t		got;

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
				 errmsg("could not read \"%s\": %m", shown)));
	if (pg_cryptohash_final(ctx, digest, 32) < 0)
		elog(ERROR, "could not finalize SHA-256");
	pg_cryptohash_free(ctx);
	pfree(buffer);
}

static char *
manifest_shown(const ExportFolder *folder)
{
	return folder->rel[0] ? psprintf("%s/%s", folder->rel, EXPORT_MANIFEST_NAME)
		: pstrdup(EXPORT_MANIFEST_NAME);
}

/* Manifest lines are "<sha256 hex>  <name>", as sha256sum prints them. */
static List *
manifest_read(const ExportFolder *folder)
{
	char	   *shown = manifest_shown(folder);
	int			fd = open_regular_at(folder->fd, EXPORT_MANIFEST_NAME, shown);
	StringInfoData text;
	List	   *lines = NIL;
	char	   *line;
	char	   *next;
	ssize_t		got;

	if (fd < 0)
		return NIL;
	initStringInfo(&text);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		enlargeStringInfo(&text, CSV_FLUSH_BYTES);
		got = read(fd, text.data + text.len, CSV_FLUSH_BYTES);
		if (got < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read the export manifest \"%s\": %m", shown)));
		if (got == 0)
			break;
		text.len += got;
		text.data[text.len] = '\0';
	}
	CloseTransientFile(fd);
	for (line = text.data; *line; line = next)
	{
		size_t		len;

		next = strchr(line, '\n');
		len = next ? next - line : strlen(line);
		next = next ? next + 1 : line + len;
		if (len > 66 && line[64] == ' ' && line[65] == ' ' && memchr(line, '\0', len) == NULL)
			lines = lappend(lines, pnstrdup(line, len));
	}
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

/*
 * A file or folder name the caller chose (what: "file", "folder"): a name
 * starting with a dot is the extension's own -- a working folder, the
 * manifest, a temporary file of 1.1 -- which it creates, replaces and
 * removes (remove_stale_work_folders), so a caller may not choose one.
 */
static void
export_check_name(const char *name, const char *what)
{
	if (name[0] == '.')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s name \"%s\" must not start with a dot", what, name),
				 errdetail("Names starting with a dot are reserved for the export's working folders, temporary files and manifest.")));
}

/*
 * Opens the folder named by a path relative to the export directory, creating
 * missing folders one by one, outermost first, each relative to the one
 * before: a symbolic link leading elsewhere is refused before anything is
 * created through it, and the folder is never looked up by name again.
 * A folder name starting with a dot is refused (export_check_name).  Removes
 * the working folders of dead exports, refuses a manifest that is not a
 * regular file, and creates this export's working folder.
 */
ExportFolder *
export_open_folder(const SafePathRoot *root, const char *relative_folder)
{
	char	   *rel = safe_path_normalize(root, relative_folder);
	MemoryContext cxt = AllocSetContextCreate(CurTransactionContext, "calo_recon export folder",
											  ALLOCSET_SMALL_SIZES);
	ExportFolder *folder = MemoryContextAllocZero(cxt, sizeof(ExportFolder));
	MemoryContextCallback *callback = MemoryContextAllocZero(cxt, sizeof(MemoryContextCallback));
	struct stat root_st;
	char	   *p;

	/* every folder of the path, before any is created */
	for (p = rel; *p;)
	{
		char	   *slash = strchr(p, '/');
		char	   *end = slash ? slash : p + strlen(p);

		export_check_name(pnstrdup(p, end - p), "folder");
		p = slash ? slash + 1 : end;
	}
	folder->cxt = cxt;
	folder->fd = -1;
	folder->work_fd = -1;
	folder->rel = MemoryContextStrdup(cxt, rel);
	/* the folder and the working folder: descriptors fd.c does not manage */
	ReserveExternalFD();
	ReserveExternalFD();
	callback->func = export_folder_cleanup;
	callback->arg = folder;
	MemoryContextRegisterResetCallback(cxt, callback);

	folder->root = root;
	folder->fd = open(root->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (folder->fd < 0 || fstat(folder->fd, &root_st) != 0)
	{
		int			err = errno;

		errno = err;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("%s \"%s\" is not an accessible folder", root->setting, root->path),
				 errdetail("%m.")));
	}
	folder->root_dev = root_st.st_dev;
	folder->root_ino = root_st.st_ino;
	for (p = rel; *p;)
	{
		char	   *slash = strchr(p, '/');
		char	   *end = slash ? slash : p + strlen(p);
		char	   *name = pnstrdup(p, end - p);
		char	   *shown = pnstrdup(rel, end - rel);
		int			next = open_subfolder(folder, folder->fd, name, shown);

		close(folder->fd);
		folder->fd = next;
		p = slash ? slash + 1 : end;
	}
	remove_stale_work_folders(folder);
	(void) manifest_read(folder);
	create_work_folder(folder);
	return folder;
}

/*
 * Splits "a/b/report.xlsx" into folder "a/b" and name "report.xlsx", a name
 * that must end in the extension of its kind of file (what: "workbook").
 */
void
export_split_file(const SafePathRoot *root, const char *relative_file,
				  const char *what, const char *extension,
				  char **folder_out, char **name_out)
{
	char	   *rel = safe_path_normalize(root, relative_file);
	char	   *slash = strrchr(rel, '/');
	char	   *name = slash ? slash + 1 : rel;
	size_t		name_len = strlen(name);
	size_t		ext_len = strlen(extension);

	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file name must not be empty")));
	export_check_name(name, "file");
	if (name_len <= ext_len || pg_strcasecmp(name + name_len - ext_len, extension) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s file name \"%s\" must end in %s", what, name, extension)));
	*folder_out = slash ? pnstrdup(rel, slash - rel) : pstrdup("");
	*name_out = name;
}

/* Refuses to replace a file the extension did not write (or that was changed since). */
static void
check_replaceable(const ExportFolder *folder, const char *name, const char *rel_path)
{
	struct stat st;
	uint8		digest[32];
	const char *listed;
	int			fd;

	if (fstatat(folder->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
	{
		int			err = errno;

		if (err == ENOENT)
			return;
		errno = err;
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
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
	fd = open_regular_at(folder->fd, name, rel_path);
	if (fd < 0)
		return;					/* removed meanwhile */
	sha256_of_fd(fd, digest, rel_path);
	CloseTransientFile(fd);
	if (strcmp(listed, digest_hex(digest)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FILE),
				 errmsg("file \"%s\" was changed after calo_recon wrote it", rel_path),
				 errhint("Remove it or export into another folder.")));
}

/*
 * Starts a file of the export: checks that name may be replaced and creates
 * it, empty, in the working folder (O_EXCL|O_NOFOLLOW).  The file stays open
 * in file->fd for writing; export_finish_file closes it.
 */
ExportFile *
export_begin(ExportFolder *folder, const char *name)
{
	MemoryContext old_cxt = MemoryContextSwitchTo(folder->cxt);
	ExportFile *file = palloc0(sizeof(ExportFile));

	file->folder = folder;
	file->name = pstrdup(name);
	file->rel_path = folder->rel[0] ? psprintf("%s/%s", folder->rel, name) : pstrdup(name);
	file->fd = -1;
	folder->files = lappend(folder->files, file);
	MemoryContextSwitchTo(old_cxt);

	check_replaceable(folder, name, file->rel_path);
	file->fd = OpenTransientFilePerm(export_temp_path(file),
									 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | PG_BINARY,
									 S_IRUSR | S_IWUSR | S_IRGRP);
	if (file->fd < 0)
	{
		int			err = errno;

		errno = err;
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not create temporary file for \"%s\": %m", file->rel_path)));
	}
	return file;
}

/* Where the file is being written, for libraries that open files by name. */
char *
export_temp_path(const ExportFile *file)
{
	return path_at(file->folder->work_fd, file->name);
}

/*
 * Who may read an exported file: the server's user only (0600), or also the
 * group of calo_recon.export_group (0640), a superuser setting; the server's
 * user must belong to that group.
 */
static void
export_set_file_access(int fd, const char *rel_path)
{
	const char *group_name = calo_recon_export_group;
	struct group *group;

	if (group_name == NULL || group_name[0] == '\0')
	{
		if (fchmod(fd, S_IRUSR | S_IWUSR) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not set the mode of \"%s\": %m", rel_path)));
		return;
	}
	errno = 0;
	group = getgrnam(group_name);
	if (group == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calo_recon.export_group \"%s\" is not a group of this system", group_name),
				 errhint("Set it to an existing group the server's user belongs to, or to '' for files only the server's user reads.")));
	if (fchown(fd, (uid_t) -1, group->gr_gid) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("could not give \"%s\" to group \"%s\": %m", rel_path, group_name),
				 errhint("The server's user must belong to calo_recon.export_group.")));
	if (fchmod(fd, S_IRUSR | S_IWUSR | S_IRGRP) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set the mode of \"%s\": %m", rel_path)));
}

/* Closes the file if still open, sets who may read it, makes it durable and takes its SHA-256. */
void
export_finish_file(ExportFile *file)
{
	int			fd;

	if (file->fd >= 0)
	{
		int			closing = file->fd;

		file->fd = -1;
		if (CloseTransientFile(closing) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not close \"%s\": %m", file->rel_path)));
	}
	fd = open_regular_at(file->folder->work_fd, file->name, file->rel_path);
	if (fd < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("the temporary file of \"%s\" disappeared", file->rel_path)));
	export_set_file_access(fd, file->rel_path);
	if (pg_fsync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync \"%s\": %m", file->rel_path)));
	sha256_of_fd(fd, file->digest, file->rel_path);
	CloseTransientFile(fd);
}

/* Writes the manifest in the working folder and renames it into the folder. */
static void
manifest_write(ExportFolder *folder, List *lines)
{
	char	   *shown = manifest_shown(folder);
	StringInfoData text;
	ListCell   *lc;
	int			fd;

	initStringInfo(&text);
	foreach(lc, lines)
		appendStringInfo(&text, "%s\n", (char *) lfirst(lc));
	fd = OpenTransientFilePerm(path_at(folder->work_fd, EXPORT_MANIFEST_NAME),
							   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | PG_BINARY,
							   S_IRUSR | S_IWUSR | S_IRGRP);
	if (fd < 0 || write(fd, text.data, text.len) != text.len)
	{
		int			err = errno;

		errno = err;
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not write the export manifest \"%s\": %m", shown)));
	}
	if (pg_fsync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync \"%s\": %m", shown)));
	CloseTransientFile(fd);
	if (renameat(folder->work_fd, EXPORT_MANIFEST_NAME, folder->fd, EXPORT_MANIFEST_NAME) != 0)
	{
		int			err = errno;

		errno = err;
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not write the export manifest \"%s\": %m", shown)));
	}
}

/* Manifest lines sorted by file name, so the file reads the same whatever the export order. */
static int
manifest_line_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((char *) lfirst(a) + 66, (char *) lfirst(b) + 66);
}

/*
 * Renames every finished file of the folder to its name, records them in the
 * manifest, and removes the (then empty) working folder.
 */
void
export_publish(ExportFolder *folder)
{
	List	   *lines = manifest_read(folder);
	ListCell   *lc;

	/* the folder itself may have been moved elsewhere by whoever may write in it */
	if (!folder_inside_root(folder, folder->fd))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("folder \"%s\" was moved out of %s during the export",
						folder->rel[0] ? folder->rel : ".", folder->root->setting),
				 errdetail("Nothing was published.")));
	foreach(lc, folder->files)
	{
		ExportFile *file = lfirst(lc);
		List	   *kept = NIL;
		ListCell   *lc2;

		if (renameat(folder->work_fd, file->name, folder->fd, file->name) != 0)
		{
			int			err = errno;

			errno = err;
			ereport(ERROR,
					(safe_path_errcode_for_file_access(err),
					 errmsg("could not rename the temporary file of \"%s\": %m", file->rel_path)));
		}
		foreach(lc2, lines)
			if (strcmp((char *) lfirst(lc2) + 66, file->name) != 0)
				kept = lappend(kept, lfirst(lc2));
		lines = lappend(kept, psprintf("%s  %s", digest_hex(file->digest), file->name));
	}
	list_sort(lines, manifest_line_cmp);
	manifest_write(folder, lines);
	if (pg_fsync(folder->fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync folder \"%s\": %m", folder->rel[0] ? folder->rel : ".")));
}

/* Closes the folder, removing what is left of the working folder. */
void
export_close_folder(ExportFolder *folder)
{
	MemoryContextDelete(folder->cxt);
}

/*
 * Reports print times and intervals the same way whatever the session's
 * DateStyle and time zone: ISO 8601, in UTC (the days of daily_summary are
 * UTC days, and a period compares with them at UTC midnight). Undo with
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
	(void) set_config_option("timezone", "UTC", PGC_USERSET, PGC_S_SESSION,
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
 * Opens a read-only cursor over a query of calo_recon whose $1 and $2 are
 * the period's ends (timestamptz, NULL when open).  Read-only cursors use the
 * caller's snapshot: every report of one call sees the same data.
 */
Portal
export_open_query(const char *query, const ExportPeriod *period)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[2] = {TimestampTzGetDatum(period->from), TimestampTzGetDatum(period->to)};
	char		nulls[2] = {period->has_from ? ' ' : 'n', period->has_to ? ' ' : 'n'};
	SPIPlanPtr	plan = SPI_prepare(query, 2, argtypes);
	Portal		portal;

	if (plan == NULL)
		elog(ERROR, "could not prepare report query: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, nulls, true);
	SPI_freeplan(plan);
	return portal;
}

/*
 * Opens a cursor over one report's view within the period, ordered by the
 * report's order or else by every column that has a sort order, so reports
 * come out the same for the same data.  Returns NULL when the view is not
 * installed.
 */
Portal
export_open_report(const ExportReport *report, const ExportPeriod *period)
{
	Oid			nsp = get_namespace_oid("calo_recon", false);
	Oid			relid = get_relname_relid(report->view, nsp);
	StringInfoData query;

	if (!OidIsValid(relid))
		return NULL;
	initStringInfo(&query);
	if (report->time_column)
		appendStringInfo(&query,
						 "SELECT * FROM calo_recon.%s WHERE "
						 "($1 IS NULL OR %s OPERATOR(pg_catalog.>=) $1) AND ($2 IS NULL OR %s OPERATOR(pg_catalog.<) $2)",
						 quote_identifier(report->view),
						 quote_identifier(report->time_column), quote_identifier(report->time_column));
	else
	{
		Oid			period_args[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};

		/* a database at 1.0 or 1.1 has the view but not its period function */
		if (!OidIsValid(LookupFuncName(list_make2(makeString("calo_recon"),
												  makeString(unconstify(char *, report->period_source))),
									   2, period_args, true)))
			return NULL;
		appendStringInfo(&query, "SELECT * FROM calo_recon.%s($1, $2)",
						 quote_identifier(report->period_source));
	}
	if (report->order_by)
		appendStringInfo(&query, " ORDER BY %s", report->order_by);
	else
	{
		Relation	rel = relation_open(relid, AccessShareLock);
		TupleDesc	desc = RelationGetDescr(rel);
		bool		first = true;
		int			i;

		for (i = 0; i < desc->natts; i++)
		{
			TypeCacheEntry *tc = lookup_type_cache(TupleDescAttr(desc, i)->atttypid, TYPECACHE_LT_OPR);

			if (TupleDescAttr(desc, i)->attisdropped || !OidIsValid(tc->lt_opr))
				continue;
			appendStringInfo(&query, "%s%d", first ? " ORDER BY " : ", ", i + 1);
			first = false;
		}
		relation_close(rel, AccessShareLock);
	}
	return export_open_query(query.data, period);
}

static void
write_all(int fd, const char *p, size_t left, const char *rel_path)
{
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
}

static void
flush_buffer(int fd, StringInfo buf, const char *rel_path)
{
	write_all(fd, buf->data, buf->len, rel_path);
	resetStringInfo(buf);
}

/* Writes the whole of data into a file of the export. */
void
export_write(ExportFile *file, const char *data, size_t len)
{
	write_all(file->fd, data, len, file->rel_path);
}

/*
 * The text as a CSV report shows it: a leading apostrophe when a spreadsheet
 * could take it for a formula (formula.h).
 */
static const char *
export_neutralized_text(const char *value)
{
	return formula_like(value) ? psprintf("'%s", value) : value;
}

/*
 * Appends one CSV field. NULL is an empty field and an empty string is "",
 * as COPY CSV writes them; text cells are neutralized (export_neutralized_text).
 */
static void
append_csv_field(StringInfo buf, const char *value, bool neutralize)
{
	const char *text = neutralize ? export_neutralized_text(value) : value;
	const char *p;

	if (text[0] != '\0' && strpbrk(text, ",\"\n\r") == NULL)
	{
		appendStringInfoString(buf, text);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (p = text; *p; p++)
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
		if (isnull)
			continue;
		if (csv->columns->kinds[i] == EXPORT_BOOL)
			appendStringInfoString(&csv->buf, DatumGetBool(value) ? "TRUE" : "FALSE");
		else if (csv->columns->kinds[i] == EXPORT_TIME &&
				 getBaseType(TupleDescAttr(desc, i)->atttypid) == TIMESTAMPTZOID)
			appendStringInfoString(&csv->buf, export_time_text(DatumGetTimestampTz(value)));
		else
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
 * The query of the period file: what the export covers and the time its data
 * is as of (calo_recon.as_of), one row.
 */
#define PERIOD_QUERY \
	"SELECT $1 AS period_from, $2 AS period_to, a.as_of, " \
	"pg_catalog.statement_timestamp() AS exported_at FROM calo_recon.as_of a"
#define PERIOD_REPORT "period"

/*
 * calo_recon.export_reports(folder text DEFAULT '',
 *     period_from timestamptz DEFAULT NULL, period_to timestamptz DEFAULT NULL)
 *   RETURNS TABLE (report text, file text, rows bigint)
 *
 * One CSV per report with the rows of the period [from, to), and period.csv
 * saying the period and the as-of time.  All files are written in the
 * working folder first and renamed only when every report is complete: a
 * failed call leaves the folder as it was.
 */
Datum
calo_recon_export_reports(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *folder_arg = PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	ExportPeriod period = export_period_args(fcinfo, 1);
	SafePathRoot *root;
	ExportFolder *folder;
	int			nreports;
	const ExportReport *reports = export_report_list(&nreports);
	const char **names = palloc0(sizeof(char *) * (nreports + 1));
	int64	   *row_counts = palloc0(sizeof(int64) * (nreports + 1));
	int			i;
	int			guc_level;
	ListCell   *lc;

	safe_path_check_privilege(SAFE_PATH_WRITE, "export_reports()");
	InitMaterializedSRF(fcinfo, 0);
	root = export_open_root();
	export_lock();
	folder = export_open_folder(root, folder_arg);
	guc_level = export_fix_output_settings();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (i = 0; i <= nreports; i++)
	{
		bool		is_period = i == nreports;
		Portal		portal;
		ExportFile *file;

		if (is_period)
			portal = get_relname_relid("as_of", get_namespace_oid("calo_recon", false)) != InvalidOid
				? export_open_query(PERIOD_QUERY, &period) : NULL;
		else
			portal = export_open_report(&reports[i], &period);
		if (portal == NULL)
			continue;
		names[i] = is_period ? PERIOD_REPORT : reports[i].view;
		file = export_begin(folder, psprintf("%s.csv", names[i]));
		row_counts[i] = write_view_csv(portal, file->fd, file->rel_path);
		SPI_cursor_close(portal);
		export_finish_file(file);
	}
	export_publish(folder);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);

	lc = list_head(folder->files);
	for (i = 0; i <= nreports && lc != NULL; i++)
	{
		ExportFile *file = lfirst(lc);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (names[i] == NULL)
			continue;
		values[0] = CStringGetTextDatum(names[i]);
		values[1] = CStringGetTextDatum(file->rel_path);
		values[2] = Int64GetDatum(row_counts[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		lc = lnext(folder->files, lc);
	}
	export_close_folder(folder);
	return (Datum) 0;
}
