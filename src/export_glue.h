/*
 * export_glue.h: safe server-side file writing shared by the CSV reports
 * (export_glue.c) and the Excel workbook (workbook_glue.c).
 *
 * Every written file lives in a folder under calo_recon.export_directory
 * (path and privilege rules: safe_path.h),
 * is written to a temporary name and renamed, and is listed with its SHA-256
 * in the folder's manifest (.calo_recon_manifest, sha256sum format), so that
 * a file of the same name the extension did not write is never replaced.
 */
#ifndef EXPORT_GLUE_H
#define EXPORT_GLUE_H

#include "nodes/pg_list.h"
#include "access/htup.h"
#include "utils/portal.h"

#include "safe_path.h"

#define EXPORT_MANIFEST_NAME ".calo_recon_manifest"

/* One file being written: the temporary name until export_publish renames it. */
typedef struct ExportFile
{
	char	   *folder;			/* resolved absolute folder (under the export dir) */
	char	   *rel_path;		/* path relative to the export directory */
	char	   *name;			/* final file name inside folder */
	char	   *temp_path;		/* absolute temporary path */
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

typedef void (*ExportRowFn) (HeapTuple tuple, TupleDesc desc, int64 row_no, void *arg);

extern ExportColumnKind export_column_kind(Oid type_oid);
extern ExportColumns *export_columns(TupleDesc desc);
extern int64 export_for_each_row(Portal portal, ExportRowFn row_fn, void *arg);
extern int	export_fix_output_settings(void);
extern Portal export_open_view(const char *view);
extern SafePathRoot *export_open_root(void);
extern void export_lock(void);
extern char *export_resolve_folder(const SafePathRoot *root, const char *relative_folder, char **rel_out);
extern void export_split_file(const SafePathRoot *root, const char *relative_file,
							  char **folder_out, char **name_out);
extern ExportFile *export_begin(const char *folder, const char *rel_folder, const char *name, int *fd_out);
extern void export_digest_file(ExportFile *file);
extern void export_publish(List *files);
extern void export_discard(List *files);

#endif
