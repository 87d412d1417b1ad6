/*
 * logfile.c: gzip decoding and content checks of exported log files.
 * See logfile.h.  No PostgreSQL headers: linked into the loader and tests.
 */
#include "logfile.h"
#include "logparse.h"				/* lp_bom_length(): the parser skips the same mark */

#include <string.h>
#include <zlib.h>

/* output is produced in chunks of this size so tick() runs regularly */
#define LF_CHUNK ((size_t) 8 << 20)

bool
lf_is_gzip(const unsigned char *buf, size_t len)
{
	return len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

const char *
lf_status_text(lf_status status)
{
	switch (status)
	{
		case LF_OK:
			return "ok";
		case LF_GZIP_TRUNCATED:
			return "truncated gzip data";
		case LF_GZIP_CORRUPT:
			return "corrupt gzip data";
		case LF_TOO_LARGE:
			return "decompressed text too large";
		case LF_NO_MEMORY:
			return "out of memory";
	}
	return "unknown status";
}

static lf_status
lf_fail(lf_status status, const char *reason, const char **why)
{
	if (why)
		*why = reason;
	return status;
}

lf_status
lf_gunzip(const unsigned char *in, size_t inlen, size_t reserve, size_t cap,
		  const lf_allocator *alloc, unsigned char **out, size_t *outlen,
		  const char **why)
{
	z_stream	zs;
	unsigned char *buf = NULL;
	size_t		size;
	size_t		used = 0;
	lf_status	status = LF_OK;
	const char *reason = NULL;

	*out = NULL;
	*outlen = 0;
	if (!lf_is_gzip(in, inlen))
		return lf_fail(LF_GZIP_CORRUPT, "no gzip header", why);
	if (inlen > (size_t) 0xFFFFFFFFu)
		return lf_fail(LF_TOO_LARGE, "compressed file larger than 4 GiB", why);

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return lf_fail(LF_NO_MEMORY, "zlib could not start", why);
	zs.next_in = (unsigned char *) in;
	zs.avail_in = (unsigned int) inlen;

	/* start near a typical 10:1 ratio, then double */
	size = inlen < cap / 8 ? inlen * 8 : cap;
	if (size < 4096)
		size = cap < 4096 ? cap : 4096;
	buf = alloc->grow(alloc->ctx, NULL, reserve + size);
	if (buf == NULL)
	{
		inflateEnd(&zs);
		return lf_fail(LF_NO_MEMORY, "out of memory", why);
	}

	for (;;)
	{
		size_t		room;
		int			rc;

		if (alloc->tick)
			alloc->tick(alloc->ctx);
		if (used == size)
		{
			size_t		bigger;
			unsigned char *grown;

			if (size >= cap)
			{
				status = LF_TOO_LARGE;
				reason = "decompressed text exceeds the size limit";
				break;
			}
			bigger = size > cap / 2 ? cap : size * 2;
			grown = alloc->grow(alloc->ctx, buf, reserve + bigger);
			if (grown == NULL)
			{
				status = LF_NO_MEMORY;
				reason = "out of memory";
				break;
			}
			buf = grown;
			size = bigger;
		}
		room = size - used;
		if (room > LF_CHUNK)
			room = LF_CHUNK;
		zs.next_out = buf + reserve + used;
		zs.avail_out = (unsigned int) room;
		rc = inflate(&zs, Z_NO_FLUSH);
		used += room - zs.avail_out;

		if (rc == Z_STREAM_END)
		{
			if (zs.avail_in == 0)
				break;
			/* another gzip member may follow; anything else is damage */
			if (!lf_is_gzip(zs.next_in, zs.avail_in))
			{
				status = LF_GZIP_CORRUPT;
				reason = "trailing bytes after the gzip data";
				break;
			}
			if (inflateReset(&zs) != Z_OK)
			{
				status = LF_GZIP_CORRUPT;
				reason = "zlib could not restart";
				break;
			}
			continue;
		}
		if (rc == Z_OK || rc == Z_BUF_ERROR)
		{
			/* no input left and output room unused: the stream was cut */
			if (zs.avail_in == 0 && zs.avail_out > 0)
			{
				status = LF_GZIP_TRUNCATED;
				reason = "the compressed data ends before the end of the gzip stream";
				break;
			}
			continue;
		}
		if (rc == Z_MEM_ERROR)
		{
			status = LF_NO_MEMORY;
			reason = "out of memory";
			break;
		}
		status = LF_GZIP_CORRUPT;
		reason = zs.msg ? zs.msg : "invalid compressed data";
		break;
	}
	inflateEnd(&zs);

	*out = buf;
	*outlen = used;
	if (status != LF_OK)
		return lf_fail(status, reason, why);
	return LF_OK;
}

size_t
lf_utf8_invalid_offset(const unsigned char *buf, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = buf[i];
		size_t		need;
		unsigned int cp;
		unsigned int min;
		size_t		k;

		if (c < 0x80)
		{
			if (c == 0)
				return i;
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
		{
			need = 1;
			cp = c & 0x1F;
			min = 0x80;
		}
		else if (c >= 0xE0 && c <= 0xEF)
		{
			need = 2;
			cp = c & 0x0F;
			min = 0x800;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		}
		else
			return i;
		if (len - i - 1 < need)
			return i;
		for (k = 1; k <= need; k++)
		{
			if ((buf[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (buf[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += need + 1;
	}
	return (size_t) -1;
}

/*
 * Length of the blank lines (nothing but spaces and tabs, ended by LF, CR LF
 * or a lone CR) at the start of buf, which the parser skips as it skips the
 * blank lines between events.  A line of spaces that goes on with other
 * text is not blank: its spaces stay.
 */
static size_t
leading_blank_lines(const unsigned char *buf, size_t len)
{
	size_t		blank = 0;
	size_t		i = 0;

	for (;;)
	{
		while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		if (i >= len || (buf[i] != '\n' && buf[i] != '\r'))
			return blank;
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
			i++;
		blank = ++i;
	}
}

bool
lf_starts_with_timestamp(const unsigned char *buf, size_t len)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:dd";
	size_t		n = sizeof(pattern) - 1;
	size_t		i;
	size_t		skip = lp_bom_length((const char *) buf, len);

	skip += leading_blank_lines(buf + skip, len - skip);
	buf += skip;
	len -= skip;
	if (len < n)
		return false;
	for (i = 0; i < n; i++)
	{
		if (pattern[i] == 'd')
		{
			if (buf[i] < '0' || buf[i] > '9')
				return false;
		}
		else if (buf[i] != (unsigned char) pattern[i])
			return false;
	}
	return true;
}
