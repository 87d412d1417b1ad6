/*
 * export_glue.h: safe server-side file writing shared by the CSV reports
 * (export_glue.c) and the Excel workbook (workbook_glue.c).
 *
 * Every written file lives in a folder under calo_recon.export_directory
 * (path and privilege rules: safe_path_glue.h), opened once and used only through
 * its descriptor: no path is resolved again, so swapping the folder or a file
 * in it for a symbolic link redirects nothing.  Files are written in a private
 * working folder inside it (mode 0700, unpredictable name, created with
 * mkdirat: no one else can plant or swap anything there), renamed into place
 * once complete, and listed with their SHA-256 in the folder's manifest
 * (.calo_recon_manifest, sha256sum format), so that a file of the same name
 * the extension did not write is never replaced.  The working folder of an
 * export whose backend died is removed by the next export into that folder.
 */
#ifndef EXPORT_GLUE_H
#define EXPORT_GLUE_H

#include "nodes/pg_list.h"
#include "access/htup.h"
#include "utils/portal.h"
#include "datatype/timestamp.h"
#include "fmgr.h"

#include "safe_path_glue.h"

#define EXPORT_MANIFEST_NAME ".calo_recon_manifest"
/* working folders: EXPORT_WORK_PREFIX<system identifier>.<backend pid>.<random hex> */
#define EXPORT_WORK_PREFIX ".calo_recon_tmp."

/* An open export folder; freed, and its temporaries removed, with its memory context. */
typedef struct ExportFolder
{
	MemoryContext cxt;			/* lives in the (sub)transaction: aborts clean up */
	const SafePathRoot *root;	/* the export directory */
	dev_t		root_dev;		/* its identity when the folder was opened */
	ino_t		root_ino;
	int			fd;				/* the folder, opened once */
	char	   *rel;			/* path relative to the export directory, for messages */
	int			work_fd;		/* private working folder inside it */
	char	   *work_name;		/* its name in the folder */
	dev_t		work_dev;		/* its identity, to never remove another folder of that name */
	ino_t		work_ino;
	char	   *work_path;		/* "/proc/self/fd/N": the working folder for libraries that open by name */
	List	   *files;			/* ExportFile, in export order */
} ExportFolder;

/* One file being written in the working folder until export_publish renames it. */
typedef struct ExportFile
{
	ExportFolder *folder;
	char	   *name;			/* final name, also its name in the working folder */
	char	   *rel_path;		/* path relative to the export directory, for messages */
	int			fd;				/* open for writing, or -1 */
	uint8		digest[32];		/* SHA-256 of the written content */
} ExportFile;

/* How a column is written: numbers and booleans plain, times as dates, the rest as text. */
typedef enum ExportColumnKind
{
	EXPORT_TEXT,
	EXPORT_NUMBER,
	EXPORT_BOOL,
	EXPORT_TIME
} ExportColumnKind;

/* Output functions and kinds of a cursor's columns. */
typedef struct ExportColumns
{
	int			natts;
	Oid		   *out_funcs;
	ExportColumnKind *kinds;
} ExportColumns;

/*
 * One report: a view of calo_recon written as a CSV file by export_reports()
 * and as a sheet by export_workbook(), in this order (export_report_list).
 */
typedef struct ExportReport
{
	const char *view;
	const char *sheet;			/* workbook sheet name */
	const char *time_column;	/* what the period filters on; NULL: see period_source */
	const char *period_source;	/* calo_recon function (period_from, period_to)
								 * giving the rows of the period, when
								 * time_column is NULL */
	const char *order_by;		/* NULL: every sortable column in order */
} ExportReport;

/* The period of an export: [from, to), either end open when absent. */
typedef struct ExportPeriod
{
	bool		has_from;
	bool		has_to;
	TimestampTz from;
	TimestampTz to;
} ExportPeriod;

typedef void (*ExportRowFn) (HeapTuple tuple, TupleDesc desc, int64 row_no, void *arg);

extern ExportColumnKind export_column_kind(Oid type_oid);
extern ExportColumns *export_columns(TupleDesc desc);
extern int64 export_for_each_row(Portal portal, ExportRowFn row_fn, void *arg);
extern int	export_fix_output_settings(void);
extern const ExportReport *export_report_list(int *count);
extern ExportPeriod export_period_args(FunctionCallInfo fcinfo, int from_arg);
extern Portal export_open_report(const ExportReport *report, const ExportPeriod *period);
extern Portal export_open_query(const char *query, const ExportPeriod *period);
extern char *export_time_text(TimestampTz when);
extern SafePathRoot *export_open_root(void);
extern void export_lock(void);
extern ExportFolder *export_open_folder(const SafePathRoot *root, const char *relative_folder);
extern void export_split_file(const SafePathRoot *root, const char *relative_file,
							  const char *what, const char *extension,
							  char **folder_out, char **name_out);
extern ExportFile *export_begin(ExportFolder *folder, const char *name);
extern char *export_temp_path(const ExportFile *file);
extern void export_write(ExportFile *file, const char *data, size_t len);
extern void export_finish_file(ExportFile *file);
extern void export_publish(ExportFolder *folder);
extern void export_close_folder(ExportFolder *folder);

#endif
