/*
 * test_bottomk.c: the bottom-k training sample (bottomk.c): the forest fitted
 * from any split of the rows into 1, 2, 3 or 7 parts, each fed in any order
 * and merged in any order, is the very same bytes; the sample is uniform; a
 * weighted sample draws copies, not values; the binary form round-trips and
 * its decoder refuses every kind of damage.
 */
#include <stdlib.h>

#include "bottomk.h"
#include "iforest.h"
#include "le_bytes.h"
#include "unit.h"

#define NF 3
#define NR 3000

static double rows[NR * NF];

static void
fill_rows(void)
{
	rng_state	rng;

	rng_seed(&rng, 5);
	for (int i = 0; i < NR; i++)
		for (int j = 0; j < NF; j++)
			rows[i * NF + j] = rng_normal(&rng);
	/* one row in five repeats an earlier one: identical rows must count */
	for (int i = 10; i < NR; i += 5)
		memcpy(rows + i * NF, rows + (size_t) rng_below(&rng, (uint64_t) i) * NF, NF * sizeof(double));
}

static void
sk_new(bk_sample *s, uint64_t room, int64_t seed, uint32_t trees, uint32_t ss, uint32_t ext)
{
	bk_init(s, seed, NF, trees, ss, ext);
	s->room = room;
	s->prio = malloc(room * sizeof(uint64_t));
	s->mult = malloc(room * sizeof(uint64_t));
	s->rows = malloc(room * NF * sizeof(double));
}

static void
sk_free(bk_sample *s)
{
	free(s->prio);
	free(s->mult);
	free(s->rows);
}

static void
sk_compact(bk_sample *s)
{
	void	   *scratch = malloc(bk_scratch_bytes(s));

	bk_compact(s, scratch);
	free(scratch);
}

static void
sk_add(bk_sample *s, const double *row)
{
	if (bk_add(s, row, 1) == BK_NO_ROOM)
	{
		sk_compact(s);
		CHECK(bk_add(s, row, 1) != BK_NO_ROOM);
	}
}

static void
sk_merge(bk_sample *a, const bk_sample *b)
{
	void	   *scratch = malloc(bk_scratch_bytes(a));

	bk_merge(a, b, scratch);
	free(scratch);
}

/* The encoded forest fitted from a sketch (compacting it first). */
static uint8_t *
fit_bytes(bk_sample *s, size_t *len)
{
	ifo_params	p;
	rng_state	rng;
	size_t		need;
	void	   *work;
	ifo_forest *f;
	uint8_t    *buf;

	sk_compact(s);
	bk_build_setup(s, &p, &rng);
	need = ifo_build_workspace(s->count, NF, &p);
	work = malloc(need);
	f = ifo_build(s->rows, s->mult, s->count, s->seen, NF, &p, &rng, work, need);
	CHECK(f != NULL);
	*len = ifo_encoded_size(f);
	buf = malloc(*len);
	ifo_encode(f, buf);
	free(work);
	return buf;
}

static uint8_t *
sketch_bytes(bk_sample *s, size_t *len)
{
	uint8_t    *buf;

	sk_compact(s);
	*len = bk_encoded_size(s);
	buf = malloc(*len);
	bk_encode(s, buf);
	return buf;
}

/*
 * Splits the rows into parts at random, feeds each part in a random order
 * into its own sketch (small room: many compactions), and merges the parts
 * in a random order into a random one of them.
 */
static void
split_fit(int parts, uint64_t shuffle_seed, uint32_t ext, uint8_t **forest, size_t *flen,
		  uint8_t **sketch, size_t *slen)
{
	bk_sample	s[7];
	uint32_t	order[NR];
	int			merge_order[7];
	rng_state	rng;

	rng_seed(&rng, shuffle_seed);
	for (int i = 0; i < NR; i++)
		order[i] = i;
	for (int i = NR - 1; i > 0; i--)
	{
		uint32_t	j = (uint32_t) rng_below(&rng, (uint64_t) i + 1),
					t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (int p = 0; p < parts; p++)
	{
		sk_new(&s[p], 321 + 37 * p, 42, 8, 40, ext);	/* k = 320: many compactions */
		merge_order[p] = p;
	}
	for (int i = 0; i < NR; i++)
		sk_add(&s[rng_below(&rng, (uint64_t) parts)], rows + (size_t) order[i] * NF);
	for (int i = parts - 1; i > 0; i--)
	{
		int			j = (int) rng_below(&rng, (uint64_t) i + 1),
					t = merge_order[i];

		merge_order[i] = merge_order[j];
		merge_order[j] = t;
	}
	for (int p = 1; p < parts; p++)
	{
		/* merging needs room for more than k entries */
		bk_sample  *into = &s[merge_order[0]];

		if (into->room < bk_max_room(into))
		{
			into->room = bk_max_room(into);
			into->prio = realloc(into->prio, into->room * sizeof(uint64_t));
			into->mult = realloc(into->mult, into->room * sizeof(uint64_t));
			into->rows = realloc(into->rows, into->room * NF * sizeof(double));
		}
		sk_merge(into, &s[merge_order[p]]);
	}
	CHECK(s[merge_order[0]].seen == NR);
	*sketch = sketch_bytes(&s[merge_order[0]], slen);
	*forest = fit_bytes(&s[merge_order[0]], flen);
	for (int p = 0; p < parts; p++)
		sk_free(&s[p]);
}

static void
test_any_split_same_forest(void)
{
	static const int parts[] = {1, 2, 3, 7};

	for (uint32_t ext = 0; ext <= 1; ext++)
	{
		uint8_t    *want_forest,
				   *want_sketch;
		size_t		want_flen,
					want_slen;
		int			same_forest = 1,
					same_sketch = 1;
		bk_sample	one;

		/* one node, the rows in their order, room for all: no compaction until the end */
		sk_new(&one, NR, 42, 8, 40, ext);
		for (int i = 0; i < NR; i++)
			sk_add(&one, rows + i * NF);
		want_sketch = sketch_bytes(&one, &want_slen);
		want_forest = fit_bytes(&one, &want_flen);
		CHECK(one.count == 320 && one.seen == NR);
		CHECK(bk_kept_rows(&one) > 320);	/* some kept rows were seen more than once */
		sk_free(&one);

		for (int pi = 0; pi < 4; pi++)
			for (uint64_t order = 1; order <= 5; order++)
			{
				uint8_t    *forest,
						   *sketch;
				size_t		flen,
							slen;

				split_fit(parts[pi], order * 131 + (uint64_t) pi, ext, &forest, &flen, &sketch, &slen);
				if (flen != want_flen || memcmp(forest, want_forest, flen) != 0)
				{
					fprintf(stderr, "forest differs: %d parts, order %llu, ext %u\n", parts[pi],
							(unsigned long long) order, ext);
					same_forest = 0;
				}
				if (slen != want_slen || memcmp(sketch, want_sketch, slen) != 0)
					same_sketch = 0;
				free(forest);
				free(sketch);
			}
		CHECK(same_forest);
		CHECK(same_sketch);
		free(want_forest);
		free(want_sketch);
	}
}

/* chi-square of inclusion counts against the uniform expectation */
static double
chi_square(const double *counts, int n, double expected)
{
	double		x2 = 0.0;

	for (int i = 0; i < n; i++)
		x2 += (counts[i] - expected) * (counts[i] - expected) / expected;
	return x2;
}

static void
test_uniform(void)
{
	enum
	{
		STREAM = 100, CAP = 10, TRIALS = 20000
	};
	static double counts[STREAM];
	double		first30 = 0;

	/* a fresh seed per trial: each row is kept with probability CAP / STREAM */
	for (int t = 0; t < TRIALS; t++)
	{
		bk_sample	s;

		bk_init(&s, t, 1, 1, CAP, 0);
		s.room = STREAM;
		s.prio = malloc(STREAM * sizeof(uint64_t));
		s.mult = malloc(STREAM * sizeof(uint64_t));
		s.rows = malloc(STREAM * sizeof(double));
		for (int i = 0; i < STREAM; i++)
		{
			double		x = i;

			bk_add(&s, &x, 1);
		}
		sk_compact(&s);
		CHECK(s.count == CAP && s.seen == STREAM);
		for (uint64_t k = 0; k < s.count; k++)
			counts[(int) s.rows[k]]++;
		free(s.prio);
		free(s.mult);
		free(s.rows);
	}
	/*
	 * 99 degrees of freedom: the 99.9 % quantile is about 149; a sample
	 * favouring a part of the rows (the first 30 getting 40 % of the places)
	 * would be far beyond it.
	 */
	CHECK(chi_square(counts, STREAM, TRIALS * CAP / (double) STREAM) < 149.0);
	for (int i = 0; i < 30; i++)
		first30 += counts[i];
	CHECK(fabs(first30 / (TRIALS * CAP) - 0.3) < 0.01);
}

/*
 * A row repeated 50 times among 100 rows is half the rows: trees of 2 rows
 * drawn from the copies get two copies of it (and stay a single leaf) with
 * probability 50/100 * 49/99 = 0.2475; drawn by value they never would.
 * 2000 trees: the standard deviation is 0.0097, the bound 4 of them.
 */
static void
test_copies_drawn(void)
{
	bk_sample	s;
	double		x;
	ifo_params	p;
	rng_state	rng;
	size_t		need;
	void	   *work;
	ifo_forest *f;
	int			leaves = 0;

	bk_init(&s, 7, 1, 2000, 2, 0);
	s.room = 200;
	s.prio = malloc(s.room * sizeof(uint64_t));
	s.mult = malloc(s.room * sizeof(uint64_t));
	s.rows = malloc(s.room * sizeof(double));
	for (int i = 0; i < 100; i++)
	{
		x = i < 50 ? 0.0 : i;
		bk_add(&s, &x, 1);
	}
	sk_compact(&s);
	CHECK(s.count == 51 && s.seen == 100 && bk_kept_rows(&s) == 100);
	bk_build_setup(&s, &p, &rng);
	need = ifo_build_workspace(s.count, 1, &p);
	work = malloc(need);
	f = ifo_build(s.rows, s.mult, s.count, s.seen, 1, &p, &rng, work, need);
	CHECK(f != NULL && f->sample_size == 2);
	for (uint32_t t = 0; t < f->n_trees; t++)
		if (f->tree_start[t + 1] - f->tree_start[t] == 1)
			leaves++;
	CHECK(fabs(leaves / 2000.0 - 0.2475) < 0.04);
	free(work);

	/* 3 values seen 100 times: trees of 64 copies, at most 5 nodes each */
	bk_init(&s, 7, 1, 10, 64, 0);
	for (int i = 0; i < 300; i++)
	{
		x = i % 3;
		sk_add(&s, &x);
	}
	sk_compact(&s);
	CHECK(s.count == 3 && bk_kept_rows(&s) == 300);
	bk_build_setup(&s, &p, &rng);
	need = ifo_build_workspace(s.count, 1, &p);
	work = malloc(need);
	f = ifo_build(s.rows, s.mult, s.count, s.seen, 1, &p, &rng, work, need);
	CHECK(f != NULL && f->sample_size == 64 && f->n_nodes <= 10 * 5);
	CHECK(f->nodes[f->tree_start[0]].size == 64);
	free(work);
	free(s.prio);
	free(s.mult);
	free(s.rows);
}

static int
decodes(const uint8_t *buf, size_t len, char *err)
{
	bk_sample	s;
	int			rc;

	memset(&s, 0, sizeof s);
	if (bk_decode_header(buf, len, &s, err, 200) != 0)
		return 0;
	s.room = s.count ? s.count : 1;
	s.prio = malloc(s.room * sizeof(uint64_t));
	s.mult = malloc(s.room * sizeof(uint64_t));
	s.rows = malloc(s.room * NF * sizeof(double));
	rc = bk_decode(buf, len, &s, err, 200) == 0;
	free(s.prio);
	free(s.mult);
	free(s.rows);
	return rc;
}

static void
test_binary_form(void)
{
	bk_sample	s,
				back;
	uint8_t    *buf,
			   *copy,
			   *again;
	size_t		len;
	char		err[200];
	size_t		entry = 8 + NF * 8;

	sk_new(&s, 400, -3, 2, 100, 2);	/* k = 200 of 3000 rows: full */
	for (int i = 0; i < NR; i++)
		sk_add(&s, rows + i * NF);
	buf = sketch_bytes(&s, &len);
	CHECK(len == BK_HEADER_BYTES + 200 * entry);
	CHECK(decodes(buf, len, err));

	/* decode, encode: the same bytes */
	sk_new(&back, 200, 0, 1, 2, 0);
	CHECK(bk_decode(buf, len, &back, err, sizeof err) == 0);
	again = malloc(len);
	bk_encode(&back, again);
	CHECK(memcmp(again, buf, len) == 0);
	CHECK(back.full && back.seen == NR && back.seed == -3 && back.extension_level == 2);
	sk_free(&back);
	free(again);

	copy = malloc(len);
#define DAMAGED(stmt, needle) \
	do { memcpy(copy, buf, len); stmt; CHECK(!decodes(copy, len, err)); \
		 if (strstr(err, needle) == NULL) { fprintf(stderr, "%s:%d: error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, err, needle); unit_failed++; } } while (0)
	DAMAGED(copy[0] = 'X', "magic");
	DAMAGED(le_put_u16(copy + 4, 2), "version");
	DAMAGED(le_put_u16(copy + 6, 1), "flags");
	DAMAGED(le_put_u32(copy + 44, 1), "reserved");
	DAMAGED(le_put_u32(copy + 8, 0), "n_features");
	DAMAGED(le_put_u32(copy + 8, IFO_MAX_FEATURES + 1), "n_features");
	DAMAGED(le_put_u32(copy + 12, 0), "n_trees");
	DAMAGED(le_put_u32(copy + 16, 1), "sample_size");
	DAMAGED(le_put_u32(copy + 16, IFO_MAX_FIT_SAMPLE_SIZE + 1), "sample_size");
	DAMAGED(le_put_u32(copy + 20, NF), "extension_level");
	DAMAGED(le_put_u32(copy + 40, 201), "more than n_trees");
	DAMAGED(le_put_u32(copy + 40, 199), "length");
	DAMAGED(le_put_u64(copy + 32, 150), "more than the 150 rows seen");
	DAMAGED(le_put_u64(copy + 32, 250), "add up to more");
	DAMAGED(le_put_u64(copy + BK_HEADER_BYTES, 0), "count of 0");
	DAMAGED(le_put_f64(copy + BK_HEADER_BYTES + 8, NAN), "not finite");
	DAMAGED(le_put_f64(copy + BK_HEADER_BYTES + 5 * entry + 16, 1e300), "out of order");
	DAMAGED(le_put_u64(copy + 24, 4), "out of order");	/* another seed */
	DAMAGED(memcpy(copy + BK_HEADER_BYTES + entry, copy + BK_HEADER_BYTES, entry), "out of order");
	CHECK(!decodes(buf, 20, err) && strstr(err, "shorter") != NULL);
	CHECK(!decodes(buf, len - 1, err) && strstr(err, "length") != NULL);
	/* with room left, every row seen must be in an entry */
	{
		uint8_t		hdr[BK_HEADER_BYTES];

		memcpy(hdr, buf, BK_HEADER_BYTES);
		le_put_u32(hdr + 40, 0);
		le_put_u64(hdr + 32, 0);
		CHECK(decodes(hdr, BK_HEADER_BYTES, err));	/* the empty sample */
		le_put_u64(hdr + 32, 5);
		CHECK(!decodes(hdr, BK_HEADER_BYTES, err) && strstr(err, "room left") != NULL);
	}
#undef DAMAGED
	free(copy);
	free(buf);
	sk_free(&s);
}

int
main(void)
{
	fill_rows();
	test_any_split_same_forest();
	test_uniform();
	test_copies_drawn();
	test_binary_form();
	return unit_summary("bottomk");
}
