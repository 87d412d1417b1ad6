/*
 * bottomk.h: the training sample of an isolation forest fit as a bottom-k
 * sketch (no PostgreSQL headers), the partial state that iforest_fit's
 * aggregate carries between rows, parallel workers and Citus nodes.
 *
 * Every row gets a priority, a 64-bit hash of the seed and the row's bytes;
 * the sketch keeps the k rows of least (priority, bytes) with the number of
 * times each was seen (identical rows are one entry).  The sketch of a set of
 * rows is a function of that multiset and the seed alone: the union of two
 * sketches, cut back to k, is the sketch of the union of their rows, in any
 * order and any split.  A row kept at the end never ranked beyond k on its
 * node, so it was counted there from its first copy: its count is exact.
 * With distinct rows (or no more than k distinct rows), the kept rows are a
 * uniform sample of the rows; identical rows are sampled by value (see the
 * README).
 *
 * Binary form, version 1, little-endian (also the text form, in base64):
 *   0  "CIFS"   4 u16 version   6 u16 flags (0)   8 u32 n_features
 *   12 u32 n_trees   16 u32 sample_size   20 u32 extension_level
 *   24 i64 seed      32 u64 rows seen     40 u32 entries   44 u32 0
 *   48 entries, in increasing (priority, bytes): u64 count, f64 row[n_features]
 * k is n_trees * sample_size.
 */
#ifndef CALO_BOTTOMK_H
#define CALO_BOTTOMK_H

#include <stddef.h>
#include <stdint.h>

#include "iforest.h"
#include "rng.h"

#define BK_MAGIC "CIFS"
#define BK_VERSION 1
#define BK_HEADER_BYTES 48

typedef struct bk_sample
{
	/* the fit's parameters, carried so that every node fits the same forest */
	int64_t		seed;
	uint32_t	n_features;
	uint32_t	n_trees;
	uint32_t	sample_size;
	uint32_t	extension_level;
	uint64_t	capacity;		/* k = n_trees * sample_size */
	uint64_t	seen;			/* rows offered, kept or not */
	uint64_t	count;			/* entries held */
	uint64_t	compacted;		/* entries [0, compacted) are sorted and distinct */
	int			full;			/* entry capacity - 1 is the admission bound */
	uint64_t	room;			/* entries the arrays hold */
	uint64_t   *prio;
	uint64_t   *mult;
	double	   *rows;			/* room * n_features */
} bk_sample;

typedef enum bk_result
{
	BK_SKIPPED,					/* counted, not kept */
	BK_ADDED,					/* counted and kept */
	BK_NO_ROOM					/* not counted: grow the arrays or bk_compact, then offer again */
} bk_result;

/* The sketch's priority of a row of n_features doubles. */
uint64_t	bk_priority(int64_t seed, const double *row, uint32_t n_features);
/* Sets the parameters and empties the sketch (the arrays are the caller's). */
void		bk_init(bk_sample *s, int64_t seed, uint32_t n_features, uint32_t n_trees,
					uint32_t sample_size, uint32_t extension_level);
/* Entries the arrays should hold for an efficient sketch (about 1.5 k). */
uint64_t	bk_max_room(const bk_sample *s);
/* Offers a row seen mult times. */
bk_result	bk_add(bk_sample *s, const double *row, uint64_t mult);
/* Bytes of scratch bk_compact and bk_merge need for arrays of s->room entries. */
size_t		bk_scratch_bytes(const bk_sample *s);
/* Sorts, merges identical rows and cuts back to k entries. */
void		bk_compact(bk_sample *s, void *scratch);
/*
 * Merges b into a (bk_same_params): a becomes the sketch of both sets of
 * rows.  a->room must be more than k (bk_max_room is).
 */
void		bk_merge(bk_sample *a, const bk_sample *b, void *scratch);
/* 1 when a and b sample with the same parameters (so they may merge). */
int			bk_same_params(const bk_sample *a, const bk_sample *b);
/* Sum of the kept entries' counts (the rows the forest draws from). */
uint64_t	bk_kept_rows(const bk_sample *s);

/*
 * The fit from a compacted sketch: the forest's parameters, and its stream,
 * seeded from the seed alone, so that every split of the rows builds the same
 * forest.  Build with ifo_build(rows, mult, count, seen, ...).
 */
void		bk_build_setup(const bk_sample *s, ifo_params *p, rng_state *rng);

/* Binary form of a compacted sketch. */
size_t		bk_encoded_size(const bk_sample *s);
void		bk_encode(const bk_sample *s, uint8_t *buf);
/*
 * Validates the header and length; fills s's parameters, seen and count
 * (arrays untouched).  0 ok, -1 bad (err says why).
 */
int			bk_decode_header(const uint8_t *buf, size_t len, bk_sample *s, char *err, size_t errlen);
/* Validates everything into s (arrays with room for the header's count). */
int			bk_decode(const uint8_t *buf, size_t len, bk_sample *s, char *err, size_t errlen);

#endif
