/*
 * test_iforest.c: Isolation Forest core: c(n), tree building (determinism,
 * depth limit, extended level 0 == classic),
 * scoring of a hand-built forest, explain, and the decoder's rejection of
 * every kind of corruption.
 */
#include <stdlib.h>

#include "iforest.h"
#include "le_bytes.h"
#include "unit.h"

#define NF 3
#define NR 600

static double rows[NR * NF];

static void
fill_rows(void)
{
	rng_state	rng;

	rng_seed(&rng, 11);
	for (int i = 0; i < NR * NF; i++)
		rows[i] = rng_normal(&rng);
	/* row 0 is far out in feature 2 (0-based) only */
	rows[0 * NF + 0] = 0.0;
	rows[0 * NF + 1] = 0.0;
	rows[0 * NF + 2] = 40.0;
}

static ifo_forest *
build(uint32_t trees, uint32_t ss, uint32_t ext, uint64_t seed, void **mem)
{
	ifo_params	p = {trees, ss, ext};
	size_t		need = ifo_build_workspace(NR, NF, &p);
	rng_state	rng;

	*mem = malloc(need);
	rng_seed(&rng, seed);
	return ifo_build(rows, NULL, NR, NR, NF, &p, &rng, *mem, need);
}

static uint8_t *
encode(const ifo_forest *f, size_t *len)
{
	uint8_t    *buf;

	*len = ifo_encoded_size(f);
	buf = malloc(*len);
	ifo_encode(f, buf);
	return buf;
}

static ifo_forest *
decode(const uint8_t *buf, size_t len, void **mem, char *err)
{
	size_t		need = ifo_decode_plan(buf, len, err, 200);

	*mem = NULL;
	if (need == 0)
		return NULL;
	*mem = malloc(need);
	return ifo_decode(buf, len, *mem, need, err, 200);
}

static void
test_c(void)
{
	CHECK(ifo_c(0) == 0.0);
	CHECK(ifo_c(1) == 0.0);
	CHECK(ifo_c(2) == 1.0);
	CHECK_CLOSE(ifo_c(3), 1.207392357589623, 1e-15);
	CHECK_CLOSE(ifo_c(256), 10.244770920119917, 1e-15);
	CHECK(ifo_max_depth(256) == 8);
	CHECK(ifo_max_depth(257) == 9);
	CHECK(ifo_max_depth(2) == 1);
	CHECK(ifo_max_depth(1) == 1);
}

static uint32_t
max_leaf_depth(const ifo_forest *f, uint32_t i, uint32_t d)
{
	uint32_t	a,
				b;

	if (f->nodes[i].feature < 0)
		return d;
	a = max_leaf_depth(f, f->nodes[i].left, d + 1);
	b = max_leaf_depth(f, f->nodes[i].right, d + 1);
	return a > b ? a : b;
}

static void
test_build_and_score(void)
{
	void	   *m1,
			   *m2,
			   *m3,
			   *m4,
			   *md;
	ifo_forest *a = build(50, 64, 0, 42, &m1);
	ifo_forest *b = build(50, 64, 0, 42, &m2);
	ifo_forest *c = build(50, 64, 0, 43, &m3);
	size_t		la,
				lb,
				lc;
	uint8_t    *ea,
			   *eb,
			   *ec;
	double		inlier[NF] = {0.1, -0.2, 0.0},
				far_first[NF] = {-30.0, 0.1, 0.2},
				votes[3 * NF];
	char		err[200];
	uint32_t	deepest = 0;

	CHECK(a && b && c);
	ea = encode(a, &la);
	eb = encode(b, &lb);
	ec = encode(c, &lc);
	CHECK(la == lb && memcmp(ea, eb, la) == 0);	/* same seed: same bytes */
	CHECK(la != lc || memcmp(ea, ec, la) != 0);	/* other seed: other forest */

	for (uint32_t t = 0; t < a->n_trees; t++)
	{
		uint32_t	d = max_leaf_depth(a, a->tree_start[t], 0);

		if (d > deepest)
			deepest = d;
		CHECK(a->nodes[a->tree_start[t]].size == 64);
	}
	CHECK(deepest == 6);		/* ceil(log2(64)), reached with 64 rows */
	CHECK(a->sample_size == 64);

	{
		double		s_out = ifo_score(a, rows);
		double		s_in = ifo_score(a, inlier);

		CHECK(s_out > 0.5 && s_out <= 1.0);
		CHECK(s_out > s_in + 0.1);
		CHECK(s_in < 0.5 && s_in > 0.0);
		CHECK(ifo_explain(a, rows, votes) == 2);
		CHECK(ifo_explain(a, far_first, votes) == 0);
		CHECK(ifo_explain(a, inlier, votes) >= 0);
	}

	/* decode(encode(x)) scores the same and encodes to the same bytes */
	{
		ifo_forest *d = decode(ea, la, &md, err);
		size_t		ld;
		uint8_t    *ed;

		CHECK(d != NULL);
		if (d)
		{
			ed = encode(d, &ld);
			CHECK(ld == la && memcmp(ed, ea, la) == 0);
			CHECK(ifo_score(d, rows) == ifo_score(a, rows));
			CHECK(ifo_score(d, inlier) == ifo_score(a, inlier));
			/* the decoded lockstep layout descends exactly like the tree walk */
			CHECK(d->snodes != NULL && a->snodes == NULL && d->max_depth == 6);
			{
				int			same = 1;

				for (int r = 0; r < NR; r++)
					same &= ifo_path_sum(d, rows + r * NF) == ifo_path_sum(a, rows + r * NF);
				CHECK(same);
			}
			{
				double		extreme[NF] = {-INFINITY, INFINITY, NAN};

				CHECK(ifo_path_sum(d, extreme) == ifo_path_sum(a, extreme));
			}
			free(ed);
		}
		free(md);
	}

	/* extension level 0 is the classic forest */
	{
		ifo_forest *e = build(50, 64, 0, 42, &m4);
		size_t		le;
		uint8_t    *ee = encode(e, &le);

		CHECK(e->normals == NULL && !(e->flags & IFO_FLAG_EXTENDED));
		CHECK(le == la && memcmp(ee, ea, la) == 0);
		free(ee);
		free(m4);
	}
	free(ea);
	free(eb);
	free(ec);
	free(m1);
	free(m2);
	free(m3);
}

static void
test_extended(void)
{
	void	   *m,
			   *md;
	ifo_forest *e = build(60, 128, 2, 5, &m);
	size_t		len;
	uint8_t    *buf;
	double		inlier[NF] = {0.1, -0.2, 0.0};
	char		err[200];
	ifo_forest *d;

	CHECK(e != NULL && e->normals != NULL && (e->flags & IFO_FLAG_EXTENDED));
	buf = encode(e, &len);
	d = decode(buf, len, &md, err);
	CHECK(d != NULL);
	if (d)
	{
		CHECK(d->extension_level == 2);
		CHECK(ifo_score(d, rows) == ifo_score(e, rows));
		CHECK(ifo_score(d, rows) > ifo_score(d, inlier));
		CHECK(ifo_score(d, rows) > 0.5);
	}
	free(buf);
	free(md);
	free(m);
	/* level 1 of 3 features: exactly one component of each normal is zero */
	e = build(5, 32, 1, 9, &m);
	for (uint64_t i = 0; i < e->n_nodes; i++)
		if (e->nodes[i].feature >= 0)
		{
			int			zeros = 0;

			for (int j = 0; j < NF; j++)
				zeros += e->normals[i * NF + j] == 0.0;
			CHECK(zeros == 1);
		}
	free(m);
}

/* a hand-built tree: root x0 <= 0.5 ? leaf(1) : (x1 <= 2 ? leaf(2) : leaf(1)) */
static uint8_t *
tiny_forest(size_t *len)
{
	uint32_t	counts[1] = {5};
	ifo_writer	w;
	uint8_t    *buf;

	*len = ifo_raw_size(1, 5, 2, 0);
	buf = calloc(1, *len);
	ifo_write_header(&w, buf, 0, 2, 1, 4, 0, counts, 5);
	ifo_write_node(&w, 0, 1, 2, 0, 4, 0.5, NULL);
	ifo_write_node(&w, 1, 0, 0, 0, 1, 0.0, NULL);
	ifo_write_node(&w, 2, 3, 4, 1, 3, 2.0, NULL);
	ifo_write_node(&w, 3, 0, 0, 0, 2, 0.0, NULL);
	ifo_write_node(&w, 4, 0, 0, 0, 1, 0.0, NULL);
	ifo_write_seal(&w, *len);
	return buf;
}

static void
test_hand_built(void)
{
	size_t		len;
	uint8_t    *buf = tiny_forest(&len);
	void	   *mem;
	char		err[200] = "";
	ifo_forest *f = decode(buf, len, &mem, err);
	double		x1[2] = {0.0, 0.0},
				x2[2] = {1.0, 3.0},
				x3[2] = {1.0, 1.0},
				x4[2] = {1.0, 2.0},
				votes[6];
	double		c4 = ifo_c(4);

	CHECK(f != NULL);
	if (!f)
	{
		fprintf(stderr, "decode: %s\n", err);
		return;
	}
	CHECK(ifo_path_sum(f, x1) == 1.0);
	CHECK(ifo_path_sum(f, x2) == 2.0);
	CHECK(ifo_path_sum(f, x3) == 3.0);	/* depth 2 + c(2) */
	CHECK(ifo_path_sum(f, x4) == 3.0);	/* ties go left */
	CHECK_CLOSE(ifo_score(f, x1), pow(2.0, -1.0 / c4), 1e-15);
	CHECK_CLOSE(ifo_score(f, x3), pow(2.0, -3.0 / c4), 1e-15);
	/* outside the split ranges: x1 is 0.5 widths beyond feature 0's, 2 beyond feature 1's */
	CHECK(ifo_explain(f, x1, votes) == 1);
	CHECK(ifo_explain(f, x2, votes) == 1);
	{
		/* inside both ranges: the split above the leaf (root, feature 0) decides */
		double		inside[2] = {0.5, 2.0};

		CHECK(ifo_explain(f, inside, votes) == 0);
	}
	/* float32 input: 0.50000001 rounds to 0.5 and goes left */
	{
		double		x[2] = {0.50000001, 0.0};

		CHECK(ifo_path_sum(f, x) == 3.0);
		f->flags |= IFO_FLAG_FLOAT32_INPUT;
		ifo_prepare_input(f, x);
		CHECK(ifo_path_sum(f, x) == 1.0);
	}
	free(mem);
	free(buf);
}

/*
 * One tree of sample_size ss: a chain of `depth` splits on feature 0
 * (x <= 0 goes deeper), each peeling off a one-row leaf, ending in a leaf of
 * ss - depth rows (the tree the hostile test forged, at 1,000,000 rows).
 */
static uint8_t *
chain_forest(uint32_t ss, uint32_t depth, size_t *len)
{
	uint32_t	n = 2 * depth + 1;
	ifo_writer	w;
	uint8_t    *buf;

	*len = ifo_raw_size(1, n, 1, 0);
	buf = calloc(1, *len);
	ifo_write_header(&w, buf, 0, 1, 1, ss, 0, &n, n);
	for (uint32_t i = 0; i < n; i++)
	{
		if (i % 2 == 0 && i < 2 * depth)
			ifo_write_node(&w, i, i + 2, i + 1, 0, ss - i / 2, 0.0, NULL);
		else
			ifo_write_node(&w, i, 0, 0, 0, i % 2 ? 1 : ss - depth, 0.0, NULL);
	}
	ifo_write_seal(&w, *len);
	return buf;
}

static void
test_depth_bound(void)
{
	size_t		len;
	uint8_t    *buf;
	void	   *mem;
	char		err[200] = "";
	ifo_forest *f;
	double		zero[1] = {0.0};

	/* at the bound (16 rows: depth 4) a chain is a model */
	buf = chain_forest(16, 4, &len);
	f = decode(buf, len, &mem, err);
	CHECK(f != NULL);
	if (f)
		CHECK_CLOSE(ifo_score(f, zero), pow(2.0, -(4.0 + ifo_c(12)) / ifo_c(16)), 1e-15);
	free(mem);
	free(buf);
	/* one level deeper is refused */
	buf = chain_forest(16, 5, &len);
	f = decode(buf, len, &mem, err);
	CHECK(f == NULL && strstr(err, "depth 5, deeper than") != NULL);
	free(mem);
	free(buf);
	/* a 65,535-deep chain scored exactly 0 (2^-3076 underflows): refused */
	buf = chain_forest(65536, 65535, &len);
	f = decode(buf, len, &mem, err);
	CHECK(f == NULL);
	if (f)
		fprintf(stderr, "65535-deep chain decoded, scores %g\n", ifo_score(f, zero));
	free(mem);
	free(buf);
	/* the hostile test's model: sample_size 1,000,000, one 999,999-deep chain */
	buf = chain_forest(IFO_MAX_SAMPLE_SIZE, IFO_MAX_SAMPLE_SIZE - 1, &len);
	f = decode(buf, len, &mem, err);
	CHECK(f == NULL && strstr(err, "node 41 is at depth 21, deeper than ceil(log2(sample_size 1000000)) = 20") != NULL);
	free(mem);
	free(buf);
	/* the deepest legal chain of the largest sample scores well inside (0, 1] */
	buf = chain_forest(IFO_MAX_SAMPLE_SIZE, ifo_max_depth(IFO_MAX_SAMPLE_SIZE), &len);
	f = decode(buf, len, &mem, err);
	CHECK(f != NULL && ifo_max_depth(IFO_MAX_SAMPLE_SIZE) == 20);
	if (f)
		CHECK(ifo_score(f, zero) > 0.125 && ifo_score(f, zero) <= 1.0);
	free(mem);
	free(buf);
	/*
	 * Whatever the sample size, the longest legal path, depth bound plus
	 * c(sample_size), keeps the exponent below 3: no legal model scores 0.
	 */
	{
		double		worst = 0.0;

		for (uint32_t ss = 2; ss <= IFO_MAX_SAMPLE_SIZE; ss++)
		{
			double		e = (ifo_max_depth(ss) + ifo_c(ss)) / ifo_c(ss);

			if (e > worst)
				worst = e;
		}
		CHECK(worst < 3.0);
	}
}

/*
 * The README states the bound users' imported models are held to; the unit
 * tests run from test/unit, two levels below it.
 */
static void
test_depth_bound_documented(void)
{
	FILE	   *fp = fopen("../../README.md", "r");
	static char text[1 << 20];
	size_t		n = 0;

	CHECK(fp != NULL);
	if (fp == NULL)
		return;
	n = fread(text, 1, sizeof text - 1, fp);
	text[n] = '\0';
	fclose(fp);
	CHECK(strstr(text, "**Depth bound.** No tree of any model is deeper than ceil(log2(max(sample_size,") != NULL);
	CHECK(strstr(text, "`ceil(log2(max(max_samples_, 2)))`") != NULL);
	CHECK(strstr(text, "a node deeper than ceil(log2(sample_size))") != NULL);
}

/*
 * Scoring a row in slices of trees gives the very score of one pass, and
 * explaining with ranges computed once the very feature of ifo_explain.
 */
static void
test_path_sum_in_slices(void)
{
	void	   *m,
			   *md;
	ifo_forest *a = build(100, 64, 0, 42, &m);
	size_t		la;
	uint8_t    *ea = encode(a, &la);
	char		err[200];
	ifo_forest *d = decode(ea, la, &md, err);
	int			same = 1;

	CHECK(d != NULL);
	for (int r = 0; d && r < NR; r += 7)
	{
		double		sum = 0.0;

		for (uint32_t t = 0; t < d->n_trees; t += 33)
			sum = ifo_path_sum_trees(d, rows + r * NF, t, t + 33, sum);
		same &= ifo_score_of_path_sum(d, sum) == ifo_score(d, rows + r * NF);
		sum = 0.0;
		for (uint32_t t = 0; t < a->n_trees; t += 10)
			sum = ifo_path_sum_trees(a, rows + r * NF, t, t + 10, sum);
		same &= sum == ifo_path_sum(a, rows + r * NF);
	}
	CHECK(same);
	/* tree-major over blocks of rows: the same sums, decoded layout or not */
	{
		double		sums[NR];

		same = 1;
		ifo_path_sums(d, rows, NR - 3, sums);	/* a partial last block */
		for (int r = 0; d && r < NR - 3; r++)
			same &= sums[r] == ifo_path_sum(d, rows + r * NF);
		ifo_path_sums(a, rows, 5, sums);
		for (int r = 0; r < 5; r++)
			same &= sums[r] == ifo_path_sum(a, rows + r * NF);
		CHECK(same);
	}
	/* explaining with split ranges computed once matches explaining row by row */
	{
		double		lo[NF],
					hi[NF],
					votes[3 * NF],
					votes2[NF];

		same = 1;
		ifo_split_ranges(d, lo, hi);
		for (int r = 0; d && r < NR; r++)
			same &= ifo_explain_ranged(d, rows + r * NF, lo, hi, votes2) == ifo_explain(d, rows + r * NF, votes);
		CHECK(same);
	}
	free(md);
	free(ea);
	free(m);
}

/*
 * Features near +-1e308: the range of a node is wider than DBL_MAX.  Every
 * fitted forest, classic or extended, must still pass its own validator.
 */
static void
test_extreme_rows_fit(void)
{
	enum
	{
		ER = 64
	};
	static double ext_rows[ER * NF];
	rng_state	rng;
	int			all_valid = 1;

	rng_seed(&rng, 5);
	for (int i = 0; i < ER * NF; i++)
		ext_rows[i] = (rng_uniform(&rng) * 2.0 - 1.0) * 1.7e308;
	for (uint32_t ext = 0; ext < NF; ext++)
	{
		ifo_params	p = {20, 32, ext};
		size_t		need = ifo_build_workspace(ER, NF, &p),
					len;
		void	   *mem = malloc(need),
				   *md;
		ifo_forest *f;
		uint8_t    *buf;
		char		err[200] = "";

		rng_seed(&rng, 100 + ext);
		f = ifo_build(ext_rows, NULL, ER, ER, NF, &p, &rng, mem, need);
		CHECK(f != NULL);
		if (f == NULL)
		{
			free(mem);
			continue;
		}
		buf = encode(f, &len);
		if (decode(buf, len, &md, err) == NULL)
		{
			fprintf(stderr, "extension level %u: %s\n", ext, err);
			all_valid = 0;
		}
		free(md);
		free(buf);
		free(mem);
	}
	CHECK(all_valid);
}

typedef struct edit
{
	size_t		off;
	int			width;
	uint64_t	value;
} edit;

/* Applies edits to the tiny forest, reseals if asked, expects rejection. */
static void
expect_reject_edits(const edit *edits, int n, const char *why, int reseal)
{
	size_t		len;
	uint8_t    *buf = tiny_forest(&len);
	void	   *mem;
	char		err[200] = "";
	ifo_forest *f;
	ifo_writer	w = {buf, 1, 2, 5, 0};

	for (int i = 0; i < n; i++)
	{
		if (edits[i].width == 2)
			le_put_u16(buf + edits[i].off, (uint16_t) edits[i].value);
		else if (edits[i].width == 4)
			le_put_u32(buf + edits[i].off, (uint32_t) edits[i].value);
		else
			le_put_u64(buf + edits[i].off, edits[i].value);
	}
	if (reseal)
		ifo_write_seal(&w, len);
	f = decode(buf, len, &mem, err);
	CHECK(f == NULL);
	if (f == NULL && strstr(err, why) == NULL)
	{
		fprintf(stderr, "expected \"%s\" in \"%s\"\n", why, err);
		CHECK(0);
	}
	free(mem);
	free(buf);
}

static void
expect_reject(size_t off, int width, uint64_t value, const char *why, int reseal)
{
	edit		e = {off, width, value};

	expect_reject_edits(&e, 1, why, reseal);
}

static void
test_decoder_rejects(void)
{
	size_t		len;
	uint8_t    *buf = tiny_forest(&len);
	char		err[200];
	void	   *mem;
	/* node arrays of the tiny forest: 1 tree, 5 nodes */
	size_t		left = 44,
				right = left + 20,
				feature = right + 20,
				size = feature + 20,
				threshold = size + 20;
	double		nan = NAN;
	uint64_t	nanbits;

	memcpy(&nanbits, &nan, 8);
	for (size_t cut = 0; cut < len; cut++)
	{
		CHECK(decode(buf, cut, &mem, err) == NULL);
		free(mem);
	}
	for (size_t i = 0; i < len; i++)
	{
		/* any single bit flip is caught (checksum or header checks) */
		buf[i] ^= 0x10;
		CHECK(decode(buf, len, &mem, err) == NULL);
		free(mem);
		buf[i] ^= 0x10;
	}
	free(buf);
	expect_reject(0, 4, 0x46494358, "magic", 0);
	expect_reject(4, 2, 2, "version", 0);
	expect_reject(6, 2, 0x80, "flags", 0);
	expect_reject(6, 2, IFO_FLAG_EXTENDED, "extension_level", 0);
	expect_reject(8, 4, 0, "n_features", 0);
	expect_reject(12, 4, 0, "n_trees", 0);
	expect_reject(12, 4, 0xffffffff, "n_trees", 0);
	expect_reject(16, 4, 0, "sample_size", 0);
	expect_reject(20, 4, 1, "extension_level", 0);
	expect_reject(24, 8, 6, "add up", 0);
	expect_reject(40, 4, 8, "nodes", 0);	/* 8 > 2*4-1 */
	expect_reject(40, 4, 6, "add up", 0);
	expect_reject(32, 8, 12345, "checksum", 0);
	expect_reject(left + 0, 4, 9, "children", 1);		/* out of range */
	expect_reject(left + 8, 4, 1, "children", 1);		/* points backwards: cycle */
	expect_reject(left + 8, 4, 2, "children", 1);		/* points at itself */
	expect_reject(right + 0, 4, 1, "children", 1);		/* same child twice */
	expect_reject(feature + 0, 4, 2, "feature", 1);
	expect_reject(threshold + 0, 8, nanbits, "threshold", 1);
	expect_reject(threshold + 8, 8, 1, "leaf", 1);		/* leaf with a threshold */
	expect_reject(feature + 4, 4, 1, "leaf", 1);
	expect_reject(size + 12, 4, 1, "add up", 1);
	expect_reject(size + 0, 4, 3, "root", 1);
	expect_reject(left + 0, 4, 0, "children", 1);		/* half a leaf */
	{
		/* nodes 1 and 2 both claim 3 and 4 as children (sample_size 6) */
		edit		e[] = {{16, 4, 6}, {size + 0, 4, 6}, {left + 4, 4, 3}, {right + 4, 4, 4},
		{size + 4, 4, 3}, {threshold + 8, 8, 0x3ff0000000000000}};

		expect_reject_edits(e, 6, "parent", 1);
	}
	{
		/* a leaf of no rows: node 1 empty, node 2 holds all 4, leaf 3 holds 3 */
		edit		e[] = {{size + 4, 4, 0}, {size + 8, 4, 4}, {size + 12, 4, 3}};

		expect_reject_edits(e, 3, "n_node_samples", 1);
	}
	{
		/* root -> 1, 3; node 2 becomes a leaf nobody points at */
		edit		e[] = {{right + 0, 4, 3}, {left + 8, 4, 0}, {right + 8, 4, 0},
		{feature + 8, 4, 0}, {threshold + 16, 8, 0}, {size + 8, 4, 1}, {size + 12, 4, 3}};

		expect_reject_edits(e, 7, "unreachable", 1);
	}
}

int
main(void)
{
	fill_rows();
	test_c();
	test_build_and_score();
	test_extended();
	test_hand_built();
	test_depth_bound();
	test_depth_bound_documented();
	test_extreme_rows_fit();
	test_path_sum_in_slices();
	test_decoder_rejects();
	return unit_summary("iforest");
}
