/*
 * safe_path_glue.c: the shared rules of server-side paths (see safe_path_glue.h):
 * who may touch server files, which folder a setting names, which relative
 * paths a caller may give, and whether a resolved path stays in the folder.
 *
 * What differs between the two sides stays with them: the import walks
 * folders and quarantines links leading out instead of raising; the export
 * creates missing folders and never replaces files it did not write.
 */
#include "postgres.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "catalog/pg_authid.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"

#include "safe_path_glue.h"

/* Like COPY FROM / COPY TO a file: superuser or the privileges of the role. */
void
safe_path_check_privilege(SafePathAccess access, const char *function_name)
{
	bool		reading = access == SAFE_PATH_READ;
	Oid			role = reading ? ROLE_PG_READ_SERVER_FILES : ROLE_PG_WRITE_SERVER_FILES;
	const char *role_name = reading ? "pg_read_server_files" : "pg_write_server_files";

	if (superuser() || has_privs_of_role(GetUserId(), role))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s server files with %s",
					reading ? "read" : "write", function_name),
			 errdetail("Only superusers and roles with privileges of the \"%s\" role may %s files on the server.",
					   role_name, reading ? "read" : "write"),
			 reading
			 ? errhint("A superuser can GRANT pg_read_server_files to this role, or the client can pass the log text to calo_recon.ingest_log().")
			 : errhint("A superuser can GRANT pg_write_server_files to this role, or use \\copy from psql to write reports on the client side.")));
}

/* The folder a setting names, symbolic links resolved; 55000 while it is empty. */
SafePathRoot *
safe_path_open_root(const char *setting, const char *value)
{
	SafePathRoot *root;
	char	   *resolved;
	struct stat st;
	int			problem = 0;

	if (value == NULL || value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s is not set", setting),
				 errhint("A superuser sets %s (postgresql.conf or ALTER SYSTEM) to a folder the server can use; empty disables these functions.",
						 setting)));
	resolved = realpath(value, NULL);
	if (resolved == NULL || stat(resolved, &st) != 0)
		problem = errno;
	else if (!S_ISDIR(st.st_mode))
		problem = ENOTDIR;
	if (problem != 0)
	{
		free(resolved);
		errno = problem;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("%s \"%s\" is not an accessible folder", setting, value),
				 errdetail("%m."),
				 errhint("Create the folder or correct the setting.")));
	}
	root = palloc(sizeof(SafePathRoot));
	root->setting = setting;
	root->path = pstrdup(resolved);
	root->pathlen = strlen(root->path);
	free(resolved);
	/* safe_path_contains() compares prefixes of realpath's absolute form */
	Assert(is_absolute_path(root->path) && root->pathlen > 0);
	return root;
}

/* a control character: ASCII, a single byte in every server encoding */
static inline bool
control_byte(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/*
 * The one rule of the characters of a name (a path, a file name met in a
 * walk, a source name): no control character (below 0x20, or 0x7f), and
 * nothing that is not a valid character of the database encoding, so that
 * it can be stored in a text column and shown.  Returns the byte offset of
 * the first byte that breaks it, or -1; *control says which kind it is.
 */
int
safe_path_bad_byte(const char *name, int len, bool *control)
{
	int			valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), name, len);
	int			i;

	for (i = 0; i < valid; i++)
		if (control_byte((unsigned char) name[i]))
		{
			*control = true;
			return i;
		}
	*control = false;
	return valid < len ? valid : -1;
}

/* 22023 when name (what: "path", "source name") breaks safe_path_bad_byte()'s rule */
void
safe_path_check_name(const char *what, const char *name)
{
	bool		control;
	int			bad = safe_path_bad_byte(name, strlen(name), &control);

	if (bad < 0)
		return;
	if (control)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" contains a control character", what, safe_path_escaped(name)),
				 errdetail("Byte 0x%02x at offset %d; file names with control characters are refused.",
						   (unsigned char) name[bad], bad)));
	/* text arguments are valid already; kept for callers with other bytes */
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s \"%s\" is not valid %s", what, safe_path_escaped(name),
					GetDatabaseEncodingName()),
			 errdetail("Byte 0x%02x at offset %d.", (unsigned char) name[bad], bad)));
}

/*
 * A name in a form valid in the database encoding, for names that break
 * the rule of safe_path_bad_byte(): each byte that is a control character or
 * not part of a valid character becomes \xHH (two lower-case hex digits),
 * and each backslash is doubled, so the form is unambiguous.
 */
char *
safe_path_escaped(const char *name)
{
	StringInfoData out;
	int			len = strlen(name);
	int			pos = 0;
	int			encoding = GetDatabaseEncoding();

	initStringInfo(&out);
	while (pos < len)
	{
		int			valid = pg_encoding_verifymbstr(encoding, name + pos, len - pos);
		int			end = pos + valid;

		for (; pos < end; pos++)
		{
			unsigned char c = (unsigned char) name[pos];

			if (control_byte(c))
				appendStringInfo(&out, "\\x%02x", c);
			else if (c == '\\')
				appendStringInfoString(&out, "\\\\");
			else
				appendStringInfoChar(&out, (char) c);
		}
		if (pos < len)
		{
			appendStringInfo(&out, "\\x%02x", (unsigned char) name[pos]);
			pos++;
		}
	}
	return out.data;
}

/* 22023 when a source name (kept as source_file of what it stored) breaks the path rules */
void
safe_path_check_source_name(const char *name)
{
	int			len = strlen(name);

	safe_path_check_name("source name", name);
	if (len > SAFE_PATH_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source name is %d bytes long, more than the limit of %d bytes",
						len, SAFE_PATH_MAX_BYTES),
				 errdetail("Source names are limited to %d bytes (MAXPGPATH - 1), as paths below calo_recon.import_directory are.",
						   SAFE_PATH_MAX_BYTES)));
}

/*
 * Checks a path a caller gave, relative to the root, and returns it
 * normalized: no "." or empty components, no trailing slash, "" for the
 * folder itself.  Absolute paths, ".." and control characters are refused.
 */
char *
safe_path_normalize(const SafePathRoot *root, const char *path)
{
	StringInfoData rel;
	const char *p;
	const char *start;

	if (is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("absolute path not allowed: \"%s\"", path),
				 errdetail("Paths are relative to %s.", root->setting)));
	safe_path_check_name("path", path);

	initStringInfo(&rel);
	start = path;
	for (p = path;; p++)
	{
		if (*p == '/' || *p == '\0')
		{
			int			len = p - start;

			if (len == 2 && start[0] == '.' && start[1] == '.')
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("path must not contain \"..\": \"%s\"", path),
						 errdetail("Paths must stay inside %s.", root->setting)));
			if (len > 0 && !(len == 1 && start[0] == '.'))
			{
				if (rel.len > 0)
					appendStringInfoChar(&rel, '/');
				appendBinaryStringInfo(&rel, start, len);
			}
			if (*p == '\0')
				break;
			start = p + 1;
		}
	}
	if (rel.len > SAFE_PATH_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("path is %d bytes long, more than the limit of %d bytes",
						rel.len, SAFE_PATH_MAX_BYTES),
				 errdetail("Paths below %s are limited to %d bytes (MAXPGPATH - 1).",
						   root->setting, SAFE_PATH_MAX_BYTES)));
	return rel.data;
}

/* The absolute (not yet resolved) path of a normalized relative path. */
char *
safe_path_join(const SafePathRoot *root, const char *rel)
{
	/* only a path safe_path_normalize() returned may be joined */
	Assert(!is_absolute_path(rel) && strstr(rel, "//") == NULL);
	return rel[0] ? psprintf("%s/%s", root->path, rel) : pstrdup(root->path);
}

/* true when a resolved absolute path is the root or lies below it */
bool
safe_path_contains(const SafePathRoot *root, const char *resolved)
{
	if (strncmp(resolved, root->path, root->pathlen) != 0)
		return false;
	/* "/" as root: everything is below it */
	if (root->pathlen == 1)
		return true;
	return resolved[root->pathlen] == '\0' || resolved[root->pathlen] == '/';
}

/* The part of a resolved path below the root ("" for the root itself). */
const char *
safe_path_relative(const SafePathRoot *root, const char *resolved)
{
	Assert(safe_path_contains(root, resolved));
	if (root->pathlen == 1)
		return resolved + 1;
	return resolved[root->pathlen] == '/' ? resolved + root->pathlen + 1 : "";
}

/*
 * errcode_for_file_access() for every file call of calo_recon: use it in its
 * place in ereport, right after the failed call, with that call's errno as
 * err.  A path over the OS limits (ENAMETOOLONG) or through a loop of
 * symbolic links (ELOOP) gets 22023 and a detail saying which, instead of
 * PostgreSQL's XX000.
 */
int
safe_path_errcode_for_file_access(int err)
{
	switch (err)
	{
		case ENAMETOOLONG:
			errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			return errdetail("The operating system limits a path to %d bytes and a name in it to %d bytes.",
							 PATH_MAX - 1, NAME_MAX);
		case ELOOP:
			errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			return errdetail("A symbolic link in the path leads round in a loop, or the path passes through more symbolic links than the operating system follows.");
		default:
			return errcode_for_file_access();
	}
}

/* 42501 for a path (shown as the caller gave it) that a symbolic link leads out of the root. */
void
safe_path_refuse_outside(const SafePathRoot *root, const char *shown)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("path \"%s\" resolves outside %s", shown, root->setting),
			 errdetail("A symbolic link leads out of the folder."),
			 errhint("Symbolic links are followed only when they stay inside %s.", root->setting)));
}

/*
 * realpath of an existing normalized relative path; 42501 when a symbolic
 * link leads out of the root, the file-access error when it does not exist.
 */
char *
safe_path_resolve(const SafePathRoot *root, const char *rel)
{
	const char *shown = rel[0] ? rel : ".";
	char	   *resolved = realpath(safe_path_join(root, rel), NULL);
	int			err = errno;
	char	   *copy;

	if (resolved == NULL)
		ereport(ERROR,
				(safe_path_errcode_for_file_access(err),
				 errmsg("could not open \"%s\" in %s: %m", shown, root->setting)));
	if (!safe_path_contains(root, resolved))
	{
		free(resolved);
		safe_path_refuse_outside(root, shown);
	}
	copy = pstrdup(resolved);
	free(resolved);
	return copy;
}
