/*
 * Fuzz target of the log-file core: any bytes given as a (gzip) log file
 * decode without memory errors, the UTF-8 check agrees with itself, and a
 * UTF-8 byte order mark in front of a text does not change whether it is a log.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logfile.h"
#include "logparse.h"

static void *
grow(void *ctx, void *old, size_t size)
{
	(void) ctx;
	return realloc(old, size);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lf_allocator alloc = {grow, NULL, NULL};
	unsigned char *out = NULL;
	size_t		outlen = 0;
	const char *why = NULL;
	size_t		bad;

	if (lf_gunzip(data, size, 8, 1 << 20, &alloc, &out, &outlen, &why) == LF_OK)
	{
		bad = lf_utf8_invalid_offset(out + 8, outlen);
		if (bad != (size_t) -1 && bad >= outlen)
			abort();
		/* a BOM in front (in the reserved bytes) changes nothing */
		if (lp_bom_length((const char *) out + 8, outlen) == 0)
		{
			bool		plain = lf_starts_with_timestamp(out + 8, outlen);

			memcpy(out + 5, "\xef\xbb\xbf", 3);
			if (lf_starts_with_timestamp(out + 5, outlen + 3) != plain)
				abort();
		}
	}
	free(out);

	bad = lf_utf8_invalid_offset(data, size);
	/* the valid prefix is itself valid */
	if (bad != (size_t) -1 && lf_utf8_invalid_offset(data, bad) != (size_t) -1)
		abort();
	return 0;
}
