/* format.c: exact money, randomness, calendar and the text of log lines (calo_recon_gen). */
#include "gen.h"

/* ------------------------------------------------------------------ */
/* Exact money (money_t in gen.h).                                     */

money_t
minor_to_money(int64_t minor_units, int minor)
{
	money_t unit = 1;
	for (int i = 0; i < 12 - minor; i++)
		unit *= 10;
	return (money_t) minor_units * unit;
}

money_t
money_abs(money_t v)
{
	return v < 0 ? -v : v;
}

static char *
put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Shortest exact decimal, like JavaScript prints a number. */
char *
put_money(char *p, money_t v)
{
	if (v < 0)
	{
		*p++ = '-';
		v = -v;
	}
	p = put_u64(p, (uint64_t) (v / PICO));
	uint64_t frac = (uint64_t) (v % PICO);
	if (frac)
	{
		char d[12];
		int len = 12;
		for (int i = 11; i >= 0; i--)
		{
			d[i] = (char) ('0' + frac % 10);
			frac /= 10;
		}
		while (d[len - 1] == '0')
			len--;
		*p++ = '.';
		memcpy(p, d, (size_t) len);
		p += len;
	}
	return p;
}

/* ------------------------------------------------------------------ */
/* Deterministic randomness: splitmix64.                               */

uint64_t rng_state;

uint64_t
rng_next(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

uint64_t
mix64(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* uniform in [0, n).  Never call the PRNG twice in one argument list: the
 * order C evaluates arguments in is unspecified, and output must not depend
 * on the compiler. */
uint64_t
rng_below(uint64_t n)
{
	return n ? rng_next() % n : 0;
}

int64_t
rng_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t) rng_below((uint64_t) (hi - lo + 1));
}

bool
rng_chance(double p)
{
	return (double) (rng_next() >> 11) * (1.0 / 9007199254740992.0) < p;
}

static const char HEX[] = "0123456789abcdef";

char *
put_hex(char *p, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--)
		p[i] = HEX[(v >> (4 * (digits - 1 - i))) & 15];
	return p + digits;
}

/* version-4 style UUID from two 64-bit words */
char *
put_uuid_words(char *p, uint64_t a, uint64_t b)
{
	a = (a & ~0xF000ULL) | 0x4000ULL;
	b = (b & ~(3ULL << 62)) | (2ULL << 62);
	p = put_hex(p, a >> 32, 8);
	*p++ = '-';
	p = put_hex(p, (a >> 16) & 0xFFFF, 4);
	*p++ = '-';
	p = put_hex(p, a & 0xFFFF, 4);
	*p++ = '-';
	p = put_hex(p, b >> 48, 4);
	*p++ = '-';
	return put_hex(p, b & 0xFFFFFFFFFFFFULL, 12);
}

char *
put_uuid(char *p)
{
	uint64_t a = rng_next();
	return put_uuid_words(p, a, rng_next());
}

/* ULID: 48-bit millisecond time + 80 random bits, Crockford base32 */
void
make_ulid(char out[27], int64_t ms)
{
	static const char B32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t r1 = rng_next(), r2 = rng_next() & 0xFFFF;

	for (int i = 9; i >= 0; i--)
	{
		out[i] = B32[ms & 31];
		ms >>= 5;
	}
	/* 80 random bits = 16 chars of 5 bits */
	for (int i = 25; i >= 10; i--)
	{
		out[i] = B32[r1 & 31];
		r1 = (r1 >> 5) | ((r2 & 31) << 59);
		r2 >>= 5;
	}
	out[26] = '\0';
}

/* ------------------------------------------------------------------ */
/* Calendar                                                           */

int64_t
days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yoe + era * 400 + (*m <= 2));
}

static char *
put_2(char *p, int v)
{
	*p++ = (char) ('0' + v / 10);
	*p++ = (char) ('0' + v % 10);
	return p;
}

char *
put_date(char *p, int64_t day)
{
	int y, m, d;
	civil_from_days(day, &y, &m, &d);
	p = put_2(p, y / 100);
	p = put_2(p, y % 100);
	*p++ = '-';
	p = put_2(p, m);
	*p++ = '-';
	return put_2(p, d);
}

/* 2024-01-14T21:00:00.104Z */
char *
put_ts(char *p, int64_t ms)
{
	int64_t day = ms / 86400000, rem = ms % 86400000;
	p = put_date(p, day);
	*p++ = 'T';
	p = put_2(p, (int) (rem / 3600000));
	*p++ = ':';
	p = put_2(p, (int) (rem / 60000 % 60));
	*p++ = ':';
	p = put_2(p, (int) (rem / 1000 % 60));
	*p++ = '.';
	*p++ = (char) ('0' + rem % 1000 / 100);
	p = put_2(p, (int) (rem % 100));
	*p++ = 'Z';
	return p;
}

char *
put_str(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

char *
put_event_ts(char *p, int64_t ms)
{
	p = put_ts(p, ms);
	*p++ = ' ';
	return p;
}

/* "<ts> <ts>\t<request>\t<LEVEL>\t" */
char *
put_app_prefix(char *p, int64_t ms, const char *request, const char *level)
{
	p = put_event_ts(p, ms);
	p = put_ts(p, ms);
	*p++ = '\t';
	p = put_str(p, request);
	*p++ = '\t';
	p = put_str(p, level);
	*p++ = '\t';
	return p;
}
