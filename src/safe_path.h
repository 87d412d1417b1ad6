/*
 * safe_path.h: the rules every server-side file path of calo_recon follows,
 * for reading under calo_recon.import_directory (fileio_glue.c) and writing
 * under calo_recon.export_directory (export_glue.c, workbook_glue.c).
 *
 *   caller neither superuser nor in pg_read/write_server_files   42501
 *   the setting is empty                                          55000
 *   the setting does not name an accessible folder                58P01
 *   absolute path                                                 42501
 *   a ".." component                                              42501
 *   a control character in the path                               22023
 *   the path resolves (through a symbolic link) outside the folder 42501
 *
 * 42501 for paths that would leave the folder follows PostgreSQL's own
 * pg_read_file ("absolute path not allowed", "path must be in or below ...").
 */
#ifndef SAFE_PATH_H
#define SAFE_PATH_H

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
extern char *safe_path_normalize(const SafePathRoot *root, const char *path);
extern char *safe_path_join(const SafePathRoot *root, const char *rel);
extern bool safe_path_contains(const SafePathRoot *root, const char *resolved);
extern char *safe_path_resolve(const SafePathRoot *root, const char *rel);

#endif
