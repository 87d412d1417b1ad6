/*
 * logfile.h: reading one exported log file, shared by the server glue
 * (fileio_glue.c) and the client loader (tools/calo_recon_load.c).
 *
 * Plain C, no PostgreSQL headers.  A log file is gzip (recognized by its
 * magic bytes, not its name; several members allowed) or plain text; its
 * text must be UTF-8 without NUL bytes and start with an ISO export timestamp
 * (a UTF-8 byte order mark and blank lines before it are allowed; the parser
 * skips them).
 */
#ifndef CALO_RECON_LOGFILE_H
#define CALO_RECON_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum lf_status
{
	LF_OK = 0,
	LF_GZIP_TRUNCATED,			/* the compressed stream ends early */
	LF_GZIP_CORRUPT,			/* bad header, data, CRC or trailing bytes */
	LF_TOO_LARGE,				/* the decompressed text exceeds the cap */
	LF_NO_MEMORY
} lf_status;

/*
 * Memory for the decompressed text: grow(ctx, old, size) returns a block of
 * size bytes keeping the old contents (old NULL at first), or NULL when out
 * of memory; tick(ctx), if set, is called between chunks (interrupt checks).
 */
typedef struct lf_allocator
{
	void	   *(*grow) (void *ctx, void *old, size_t size);
	void		(*tick) (void *ctx);
	void	   *ctx;
} lf_allocator;

/* true when buf begins with the gzip magic bytes 1f 8b */
extern bool lf_is_gzip(const unsigned char *buf, size_t len);

/*
 * Decompresses the gzip members in in[0..inlen) into a block from alloc,
 * writing the text from offset reserve (room for a caller's header); at most
 * cap text bytes.  On LF_OK *out and *outlen are set; on failure *why (if not
 * NULL) is a static description and *out may hold a partial block.
 */
extern lf_status lf_gunzip(const unsigned char *in, size_t inlen, size_t reserve,
						   size_t cap, const lf_allocator *alloc,
						   unsigned char **out, size_t *outlen, const char **why);

/*
 * Offset of the first byte that is not part of valid UTF-8 (overlong forms,
 * surrogates, code points above U+10FFFF and NUL count as invalid), or
 * (size_t) -1 when all of buf is valid.
 */
extern size_t lf_utf8_invalid_offset(const unsigned char *buf, size_t len);

/*
 * true when buf begins with an export timestamp YYYY-MM-DDTHH:MM:SS, after a
 * UTF-8 byte order mark and blank lines (spaces and tabs only, any line end)
 * if any: what the parser skips before the first event
 */
extern bool lf_starts_with_timestamp(const unsigned char *buf, size_t len);

/* human-readable name of a status */
extern const char *lf_status_text(lf_status status);

#endif
