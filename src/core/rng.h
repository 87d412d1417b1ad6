/*
 * rng.h: a small seeded PRNG (splitmix64 seeding, xoshiro256** stream) for
 * the model cores.  Deterministic across platforms: same seed, same stream.
 */
#ifndef CALO_RNG_H
#define CALO_RNG_H

#include <stdint.h>

typedef struct rng_state
{
	uint64_t	s[4];
} rng_state;

/* Seeds the stream; any 64-bit seed (0 included) gives a valid state. */
void		rng_seed(rng_state *rng, uint64_t seed);
uint64_t	rng_next(rng_state *rng);
/* Uniform double in [0, 1) with 53 random bits. */
double		rng_uniform(rng_state *rng);
/* Uniform integer in [0, bound), unbiased; bound 0 gives 0. */
uint64_t	rng_below(rng_state *rng, uint64_t bound);
/* Standard normal deviate (Marsaglia polar method, no cached spare). */
double		rng_normal(rng_state *rng);
/* splitmix64 finalizer: mixes a 64-bit value (used to derive sub-seeds). */
uint64_t	rng_mix(uint64_t x);

#endif
