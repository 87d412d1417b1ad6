/*
 * safe_path_glue.h: the rules every server-side file path of calo_recon follows,
 * for reading under calo_recon.import_directory (fileio_glue.c) and writing
 * under calo_recon.export_directory (export_glue.c, workbook_glue.c).
 *
 *   caller neither superuser nor in pg_read/write_server_files   42501
 *   the setting is empty                                          55000
 *   the setting does not name an accessible folder                58P01
 *   absolute path                                                 42501
 *   a ".." component                                              42501
 *   a control character in the path                               22023
 *   (a walk: a name with a control character or bytes that are not valid
 *   in the database encoding is not read, quarantined bad_file_name)
 *   a path over SAFE_PATH_MAX_BYTES, or over the OS limits          22023
 *   the path resolves (through a symbolic link) outside the folder 42501
 *
 * 42501 for paths that would leave the folder follows PostgreSQL's own
 * pg_read_file ("absolute path not allowed", "path must be in or below ...").
 */
#ifndef SAFE_PATH_GLUE_H
#define SAFE_PATH_GLUE_H

/*
 * Longest relative path accepted, PostgreSQL's own limit for file paths.
 * Far below the OS's PATH_MAX, and short enough that the path, kept as the
 * source name of every event, fits the btree indexes on it.
 */
#define SAFE_PATH_MAX_BYTES (MAXPGPATH - 1)

typedef enum SafePathAccess
{
	SAFE_PATH_READ,				/* pg_read_server_files, like COPY FROM a file */
	SAFE_PATH_WRITE				/* pg_write_server_files, like COPY TO a file */
} SafePathAccess;

/* The folder a setting names, resolved once per call. */
typedef struct SafePathRoot
{
	const char *setting;		/* "calo_recon.import_directory", for messages */
	char	   *path;			/* realpath of the setting's value */
	size_t		pathlen;
} SafePathRoot;

extern void safe_path_check_privilege(SafePathAccess access, const char *function_name);
extern SafePathRoot *safe_path_open_root(const char *setting, const char *value);
extern int	safe_path_bad_byte(const char *name, int len, bool *control);
extern void safe_path_check_name(const char *what, const char *name);
extern void safe_path_check_source_name(const char *name);
extern char *safe_path_escaped(const char *name);
extern char *safe_path_normalize(const SafePathRoot *root, const char *path);
extern char *safe_path_join(const SafePathRoot *root, const char *rel);
extern bool safe_path_contains(const SafePathRoot *root, const char *resolved);
extern const char *safe_path_relative(const SafePathRoot *root, const char *resolved);
extern int	safe_path_errcode_for_file_access(int err);
extern void safe_path_refuse_outside(const SafePathRoot *root, const char *shown) pg_attribute_noreturn();
extern char *safe_path_resolve(const SafePathRoot *root, const char *rel);

#endif
