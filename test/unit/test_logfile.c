/*
 * Unit tests of the log-file core (src/core/logfile.c): gzip members, truncation,
 * corruption, the size cap, UTF-8 offsets and the leading timestamp.
 */
#include <stdlib.h>
#include <zlib.h>

#include "logfile.h"
#include "unit.h"

static void *
grow(void *ctx, void *old, size_t size)
{
	(void) ctx;
	return realloc(old, size);
}

static const lf_allocator alloc = {grow, NULL, NULL};

/* gzip-compresses src into a fresh buffer */
static unsigned char *
gzip_of(const char *src, size_t len, size_t *outlen)
{
	z_stream	zs;
	size_t		cap = len + 128;
	unsigned char *out = malloc(cap);

	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	zs.next_in = (unsigned char *) src;
	zs.avail_in = (unsigned int) len;
	zs.next_out = out;
	zs.avail_out = (unsigned int) cap;
	deflate(&zs, Z_FINISH);
	*outlen = cap - zs.avail_out;
	deflateEnd(&zs);
	return out;
}

static void
test_gunzip_roundtrip(void)
{
	const char *text = "2024-01-14T21:00:00.002Z INIT_START Runtime Version: nodejs:20.v14\n";
	size_t		zlen;
	unsigned char *z = gzip_of(text, strlen(text), &zlen);
	unsigned char *out;
	size_t		outlen;
	const char *why = NULL;

	CHECK(lf_is_gzip(z, zlen));
	CHECK(!lf_is_gzip((const unsigned char *) text, strlen(text)));
	CHECK(lf_gunzip(z, zlen, 4, 1 << 20, &alloc, &out, &outlen, &why) == LF_OK);
	CHECK(outlen == strlen(text));
	CHECK(memcmp(out + 4, text, outlen) == 0);
	free(out);
	free(z);
}

static void
test_gunzip_two_members(void)
{
	size_t		l1, l2, outlen;
	unsigned char *a = gzip_of("first ", 6, &l1);
	unsigned char *b = gzip_of("second", 6, &l2);
	unsigned char *both = malloc(l1 + l2);
	unsigned char *out;

	memcpy(both, a, l1);
	memcpy(both + l1, b, l2);
	CHECK(lf_gunzip(both, l1 + l2, 0, 1 << 20, &alloc, &out, &outlen, NULL) == LF_OK);
	CHECK(outlen == 12 && memcmp(out, "first second", 12) == 0);
	free(out);

	/* bytes after the last member that are no gzip member are damage */
	memcpy(both + l1, "garbage", 7);
	CHECK(lf_gunzip(both, l1 + 7, 0, 1 << 20, &alloc, &out, &outlen, NULL) == LF_GZIP_CORRUPT);
	free(out);
	free(a);
	free(b);
	free(both);
}

static void
test_gunzip_damage(void)
{
	char		text[20000];
	size_t		zlen, outlen, cut;
	unsigned char *z;
	unsigned char *out;
	const char *why = NULL;
	size_t		i;

	for (i = 0; i < sizeof(text); i++)
		text[i] = "abcdefghij\n"[(i * 7 + i / 13) % 11];
	z = gzip_of(text, sizeof(text), &zlen);

	/* every cut of the stream is detected as truncated or corrupt, never OK */
	for (cut = 0; cut < zlen; cut += 1 + cut / 8)
	{
		lf_status	st = lf_gunzip(z, cut, 0, 1 << 20, &alloc, &out, &outlen, &why);

		CHECK(st == LF_GZIP_TRUNCATED || st == LF_GZIP_CORRUPT);
		free(out);
	}
	CHECK(lf_gunzip(z, zlen / 2, 0, 1 << 20, &alloc, &out, &outlen, &why) == LF_GZIP_TRUNCATED);
	free(out);

	/* a flipped byte in the CRC trailer is corrupt */
	z[zlen - 6] ^= 0xFF;
	CHECK(lf_gunzip(z, zlen, 0, 1 << 20, &alloc, &out, &outlen, &why) == LF_GZIP_CORRUPT);
	CHECK(why != NULL);
	free(out);
	z[zlen - 6] ^= 0xFF;

	/* the cap on the decompressed size */
	CHECK(lf_gunzip(z, zlen, 0, 1000, &alloc, &out, &outlen, &why) == LF_TOO_LARGE);
	free(out);
	CHECK(lf_gunzip(z, zlen, 0, sizeof(text), &alloc, &out, &outlen, &why) == LF_OK);
	free(out);
	free(z);
}

static void
test_utf8(void)
{
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "plain ascii", 11) == (size_t) -1);
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14) == (size_t) -1);
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "caf\xe9 x", 6) == 3);	/* Latin-1 */
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "ab\0cd", 5) == 2);	/* NUL */
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "\xc0\xaf", 2) == 0);	/* overlong */
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "x\xed\xa0\x80", 4) == 1);	/* surrogate */
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "\xf4\x90\x80\x80", 4) == 0);	/* > U+10FFFF */
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "ok\xe2\x82", 4) == 2);	/* cut */
}

static void
test_timestamp(void)
{
	CHECK(lf_starts_with_timestamp((const unsigned char *) "2024-01-14T21:00:00.002Z START", 30));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "2024-01-14 21:00:00", 19));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "2024-01-14T21:00", 16));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "\0\0\0\1Bud1", 8));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "", 0));
	/* D4: a UTF-8 byte order mark before the timestamp is still a log; only at the start, only once */
	CHECK(lf_starts_with_timestamp((const unsigned char *) "\xef\xbb\xbf" "2024-01-14T21:00:00.002Z START", 33));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "\xef\xbb\xbf\xef\xbb\xbf" "2024-01-14T21:00:00.002Z", 30));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "\xef\xbb\xbf", 3));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "\xef\xbb" "2024-01-14T21:00:00.002Z", 26));
	CHECK(lf_utf8_invalid_offset((const unsigned char *) "\xef\xbb\xbf" "2024", 7) == (size_t) -1);
	/*
	 * Blank lines before the first event, which the parser skips (were
	 * not_a_log): LF, CR LF, lone CR, spaces and tabs, after a BOM too
	 */
	CHECK(lf_starts_with_timestamp((const unsigned char *) "\n2024-01-14T21:00:00.002Z START", 31));
	CHECK(lf_starts_with_timestamp((const unsigned char *) " \t\n\n2024-01-14T21:00:00.002Z", 28));
	CHECK(lf_starts_with_timestamp((const unsigned char *) "\r\n\r2024-01-14T21:00:00.002Z", 27));
	CHECK(lf_starts_with_timestamp((const unsigned char *) "\xef\xbb\xbf\r\n2024-01-14T21:00:00.002Z", 29));
	CHECK(lf_starts_with_timestamp((const unsigned char *) "\xef\xbb\xbf \r\n\t\n2024-01-14T21:00:00", 27));
	/* a line of spaces that goes on is no blank line (the parser calls it malformed) */
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "  2024-01-14T21:00:00.002Z", 26));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "\n\t2024-01-14T21:00:00.002Z", 26));
	/* blank lines only, or before something else, or before a BOM */
	CHECK(!lf_starts_with_timestamp((const unsigned char *) " \n\r\n\t", 5));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "\n\nnot a log", 11));
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "\n\xef\xbb\xbf" "2024-01-14T21:00:00.002Z", 28));
	/* the length bounds the look: a timestamp cut by it is none */
	CHECK(!lf_starts_with_timestamp((const unsigned char *) "\n\n2024-01-14T21:00:00", 20));
}

int
main(void)
{
	test_gunzip_roundtrip();
	test_gunzip_two_members();
	test_gunzip_damage();
	test_utf8();
	test_timestamp();
	CHECK_STR(lf_status_text(LF_GZIP_TRUNCATED), "truncated gzip data");
	return unit_summary("logfile");
}
