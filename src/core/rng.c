/*
 * rng.c: splitmix64 + xoshiro256** (Blackman & Vigna), public-domain algorithms.
 */
#include "rng.h"

#include <math.h>

uint64_t
rng_mix(uint64_t x)
{
	x += UINT64_C(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

void
rng_seed(rng_state *rng, uint64_t seed)
{
	uint64_t	x = seed;

	for (int i = 0; i < 4; i++)
	{
		x += UINT64_C(0x9E3779B97F4A7C15);
		rng->s[i] = rng_mix(x);
	}
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
rng_next(rng_state *rng)
{
	uint64_t   *s = rng->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
rng_uniform(rng_state *rng)
{
	return (double) (rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t
rng_below(rng_state *rng, uint64_t bound)
{
	/* Lemire's multiply-and-reject: a division only on the rare rejection path */
	unsigned __int128 m;
	uint64_t	low;

	if (bound == 0)
		return 0;
	m = (unsigned __int128) rng_next(rng) * bound;
	low = (uint64_t) m;
	if (low < bound)
	{
		uint64_t	threshold = (0 - bound) % bound;

		while (low < threshold)
		{
			m = (unsigned __int128) rng_next(rng) * bound;
			low = (uint64_t) m;
		}
	}
	return (uint64_t) (m >> 64);
}

double
rng_normal(rng_state *rng)
{
	double		u,
				v,
				s;

	do
	{
		u = 2.0 * rng_uniform(rng) - 1.0;
		v = 2.0 * rng_uniform(rng) - 1.0;
		s = u * u + v * v;
	} while (s >= 1.0 || s == 0.0);
	return u * sqrt(-2.0 * log(s) / s);
}
