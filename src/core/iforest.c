/*
 * iforest.c: Isolation Forest core: reservoir, tree building, scoring and
 * the validated binary form (see iforest.h for the layout and the rules).
 */
#include "iforest.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "decode_error.h"
#include "le_bytes.h"

#define ALIGN8(x) (((x) + (size_t) 7) & ~(size_t) 7)
/* extended splits that leave one side empty are redrawn this many times */
#define IFO_EXTENDED_TRIES 32

double
ifo_c(double n)
{
	if (n <= 1.0)
		return 0.0;
	if (n <= 2.0)
		return 1.0;
	return 2.0 * (log(n - 1.0) + IFO_EULER_GAMMA) - 2.0 * (n - 1.0) / n;
}

uint32_t
ifo_max_depth(uint32_t sample_size)
{
	uint32_t	d = 0;

	while (d < 32 && ((uint64_t) 1 << d) < (uint64_t) (sample_size < 2 ? 2 : sample_size))
		d++;
	return d;
}

/* ----------------------------------------------------------------- training */

typedef struct build_ctx
{
	const double *rows;
	uint32_t	nf;
	uint32_t	max_depth;
	uint32_t	extension_level;
	rng_state  *rng;
	ifo_forest *f;
	uint32_t	tree_base;		/* global index of the tree's root */
	uint32_t	next;			/* next free global node index */
	uint32_t   *feat;			/* nf scratch */
	double	   *lo;				/* nf scratch */
	double	   *hi;				/* nf scratch */
	double	   *normal;			/* nf scratch */
} build_ctx;

static uint64_t
nodes_bound(const ifo_params *p, uint32_t ss)
{
	return (uint64_t) p->n_trees * (2 * (uint64_t) ss - 1);
}

size_t
ifo_build_workspace(uint64_t n_rows, uint32_t n_features, const ifo_params *p)
{
	uint32_t	ss = p->sample_size < n_rows ? p->sample_size : (uint32_t) n_rows;
	uint64_t	nodes = nodes_bound(p, ss ? ss : 1);
	size_t		total = 0;

	total += ALIGN8(sizeof(ifo_forest));
	total += ALIGN8(((size_t) p->n_trees + 1) * sizeof(uint32_t));
	total += ALIGN8(nodes * sizeof(ifo_node));
	if (p->extension_level > 0)
		total += ALIGN8(nodes * n_features * sizeof(double));
	total += ALIGN8(n_rows * sizeof(uint32_t));
	total += ALIGN8((n_rows + 1) * sizeof(uint64_t));
	/* a weighted draw takes up to sample_size rows even from fewer entries */
	total += ALIGN8((size_t) p->sample_size * sizeof(uint32_t));
	total += ALIGN8((size_t) n_features * sizeof(uint32_t));
	total += 3 * ALIGN8((size_t) n_features * sizeof(double));
	return total;
}

static inline double
row_value(const build_ctx *c, uint32_t row, uint32_t j)
{
	return c->rows[(size_t) row * c->nf + j];
}

static uint32_t
make_leaf(build_ctx *c, uint32_t size)
{
	uint32_t	id = c->next++;
	ifo_node   *n = &c->f->nodes[id];

	n->feature = -1;
	n->left = n->right = 0;
	n->threshold = 0.0;
	n->size = size;
	n->value = 0.0;
	if (c->f->normals)
		memset(c->f->normals + (size_t) id * c->nf, 0, c->nf * sizeof(double));
	return id;
}

/*
 * lo + u * (hi - lo), scikit-learn's uniform draw, as long as hi - lo is a
 * double; for a range wider than DBL_MAX (features near +-1e308) the same
 * point as a convex combination, which cannot overflow: a fit must never
 * store a threshold its own validator refuses.
 */
static double
uniform_between(double lo, double hi, double u)
{
	double		width = hi - lo;

	if (isfinite(width))
		return lo + u * width;
	return lo * (1.0 - u) + hi * u;
}

/*
 * Chooses a classic split as scikit-learn's random splitter does: features
 * are drawn without replacement until one is not constant in the node; the
 * threshold is uniform in [min, max) of that feature.  Returns 0 when every
 * feature is constant (the node becomes a leaf).
 */
static int
classic_split(build_ctx *c, const uint32_t *idx, uint32_t n, uint32_t *feature, double *threshold)
{
	uint32_t	remaining = c->nf;

	for (uint32_t j = 0; j < c->nf; j++)
		c->feat[j] = j;
	while (remaining > 0)
	{
		uint32_t	pick = (uint32_t) rng_below(c->rng, remaining);
		uint32_t	j = c->feat[pick];
		double		lo = row_value(c, idx[0], j),
					hi = lo;

		for (uint32_t i = 1; i < n; i++)
		{
			double		v = row_value(c, idx[i], j);

			if (v < lo)
				lo = v;
			if (v > hi)
				hi = v;
		}
		if (hi <= lo + IFO_FEATURE_THRESHOLD)
		{
			c->feat[pick] = c->feat[--remaining];
			continue;
		}
		*feature = j;
		*threshold = uniform_between(lo, hi, rng_uniform(c->rng));
		if (*threshold >= hi)
			*threshold = lo;
		return 1;
	}
	return 0;
}

static double
dot(const double *a, const double *b, uint32_t n)
{
	double		s = 0.0;

	for (uint32_t j = 0; j < n; j++)
		s += a[j] * b[j];
	return s;
}

/*
 * Extended split (Hariri et al.): a normal with N(0,1) components of which
 * nf - 1 - extension_level are zeroed, and an intercept point uniform in the
 * node's bounding box; x goes left when normal . x <= normal . p.  A split
 * that leaves a side empty is redrawn; 0 when none separates the node.
 */
static int
extended_split(build_ctx *c, const uint32_t *idx, uint32_t n, double *threshold)
{
	uint32_t	nf = c->nf;
	int			any = 0;

	for (uint32_t j = 0; j < nf; j++)
	{
		c->lo[j] = c->hi[j] = row_value(c, idx[0], j);
		for (uint32_t i = 1; i < n; i++)
		{
			double		v = row_value(c, idx[i], j);

			if (v < c->lo[j])
				c->lo[j] = v;
			if (v > c->hi[j])
				c->hi[j] = v;
		}
		if (c->hi[j] > c->lo[j] + IFO_FEATURE_THRESHOLD)
			any = 1;
	}
	if (!any)
		return 0;
	for (int attempt = 0; attempt < IFO_EXTENDED_TRIES; attempt++)
	{
		uint32_t	zeros = nf - 1 - c->extension_level;
		uint32_t	left = 0;
		double		offset = 0.0;

		for (uint32_t j = 0; j < nf; j++)
		{
			c->normal[j] = rng_normal(c->rng);
			c->feat[j] = j;
		}
		for (uint32_t z = 0; z < zeros; z++)
		{
			uint32_t	pick = z + (uint32_t) rng_below(c->rng, nf - z);
			uint32_t	tmp = c->feat[z];

			c->feat[z] = c->feat[pick];
			c->feat[pick] = tmp;
			c->normal[c->feat[z]] = 0.0;
		}
		for (uint32_t j = 0; j < nf; j++)
			offset += c->normal[j] * uniform_between(c->lo[j], c->hi[j], rng_uniform(c->rng));
		/* features near +-1e308 can overflow normal . p: draw again */
		if (!isfinite(offset))
			continue;
		for (uint32_t i = 0; i < n; i++)
			if (dot(c->normal, c->rows + (size_t) idx[i] * nf, nf) <= offset)
				left++;
		if (left > 0 && left < n)
		{
			*threshold = offset;
			return 1;
		}
	}
	return 0;
}

static uint32_t
build_node(build_ctx *c, uint32_t *idx, uint32_t n, uint32_t depth)
{
	uint32_t	feature = 0,
				id,
				mid = 0;
	double		threshold = 0.0;
	int			ext = c->extension_level > 0;
	ifo_node   *node;

	if (depth >= c->max_depth || n < 2)
		return make_leaf(c, n);
	if (ext ? !extended_split(c, idx, n, &threshold) : !classic_split(c, idx, n, &feature, &threshold))
		return make_leaf(c, n);

	id = c->next++;
	node = &c->f->nodes[id];
	node->threshold = threshold;
	node->size = n;
	node->value = 0.0;
	if (ext)
	{
		double	   *normal = c->f->normals + (size_t) id * c->nf;
		double		best = -1.0;

		memcpy(normal, c->normal, c->nf * sizeof(double));
		for (uint32_t j = 0; j < c->nf; j++)
			if (fabs(normal[j]) > best)
			{
				best = fabs(normal[j]);
				feature = j;
			}
	}
	node->feature = (int32_t) feature;

	/* partition: rows going left first */
	for (uint32_t i = 0; i < n; i++)
	{
		int			go_left = ext
			? dot(c->f->normals + (size_t) id * c->nf, c->rows + (size_t) idx[i] * c->nf, c->nf) <= threshold
			: row_value(c, idx[i], feature) <= threshold;

		if (go_left)
		{
			uint32_t	tmp = idx[mid];

			idx[mid++] = idx[i];
			idx[i] = tmp;
		}
	}
	node->left = build_node(c, idx, mid, depth + 1);
	/* re-fetch: the array does not move, but keep the pointer use obvious */
	c->f->nodes[id].right = build_node(c, idx + mid, n - mid, depth + 1);
	return id;
}

/* Computes each leaf's value (depth + c(size), summed as sklearn does). */
static void
finish_tree_values(ifo_forest *f, uint32_t root, uint32_t depth)
{
	ifo_node   *n = &f->nodes[root];

	if (n->feature < 0)
	{
		n->value = ((double) (depth + 1) + ifo_c((double) n->size)) - 1.0;
		return;
	}
	finish_tree_values(f, n->left, depth + 1);
	finish_tree_values(f, n->right, depth + 1);
}

/* A Fenwick tree over the rows' weights, for draws without replacement. */
static void
fenwick_build(uint64_t *tree, const uint64_t *weights, uint64_t n)
{
	memset(tree, 0, (n + 1) * sizeof(uint64_t));
	for (uint64_t i = 1; i <= n; i++)
	{
		uint64_t	j = i + (i & (0 - i));

		tree[i] += weights[i - 1];
		if (j <= n)
			tree[j] += tree[i];
	}
}

static void
fenwick_add(uint64_t *tree, uint64_t n, uint64_t row, uint64_t delta)
{
	for (uint64_t i = row + 1; i <= n; i += i & (0 - i))
		tree[i] += delta;
}

/* The row holding copy r (0 <= r < total weight) in row order. */
static uint64_t
fenwick_find(const uint64_t *tree, uint64_t n, uint64_t r)
{
	uint64_t	pos = 0,
				step = 1;

	while (step * 2 <= n)
		step *= 2;
	for (; step > 0; step /= 2)
		if (pos + step <= n && tree[pos + step] <= r)
		{
			pos += step;
			r -= tree[pos];
		}
	return pos;
}

ifo_forest *
ifo_build(const double *rows, const uint64_t *weights, uint64_t n_rows, uint64_t n_seen,
		  uint32_t n_features, const ifo_params *p, rng_state *rng,
		  void *work, size_t worklen)
{
	uint64_t	budget = n_rows;
	uint64_t   *fenwick;
	uint32_t	ss = p->sample_size;
	uint64_t	nodes;
	char	   *w = work;
	ifo_forest *f;
	uint32_t   *perm,
			   *idx;
	build_ctx	c;

	if (weights)
	{
		budget = 0;
		for (uint64_t i = 0; i < n_rows; i++)
			budget += weights[i];
	}
	if (n_seen < ss)
		ss = (uint32_t) n_seen;
	if (budget < ss)
		ss = (uint32_t) budget;
	if (ss < 1 || n_features < 1 || p->n_trees < 1 ||
		(p->extension_level > 0 && p->extension_level >= n_features) ||
		worklen < ifo_build_workspace(n_rows, n_features, p))
		return NULL;
	/* leaves hold distinct rows: no more of them than rows, whatever the draw */
	nodes = nodes_bound(p, ss < n_rows ? ss : (uint32_t) n_rows);

	f = (ifo_forest *) w;
	w += ALIGN8(sizeof(ifo_forest));
	f->flags = p->extension_level > 0 ? IFO_FLAG_EXTENDED : 0;
	f->n_features = n_features;
	f->n_trees = p->n_trees;
	f->sample_size = ss;
	f->extension_level = p->extension_level;
	f->tree_start = (uint32_t *) w;
	w += ALIGN8(((size_t) p->n_trees + 1) * sizeof(uint32_t));
	f->nodes = (ifo_node *) w;
	w += ALIGN8(nodes * sizeof(ifo_node));
	f->normals = NULL;
	f->snodes = NULL;
	f->svalues = NULL;
	f->max_depth = 0;
	if (p->extension_level > 0)
	{
		f->normals = (double *) w;
		w += ALIGN8(nodes * n_features * sizeof(double));
	}
	perm = (uint32_t *) w;
	w += ALIGN8(n_rows * sizeof(uint32_t));
	fenwick = (uint64_t *) w;
	w += ALIGN8((n_rows + 1) * sizeof(uint64_t));
	idx = (uint32_t *) w;
	w += ALIGN8((size_t) p->sample_size * sizeof(uint32_t));
	c.feat = (uint32_t *) w;
	w += ALIGN8((size_t) n_features * sizeof(uint32_t));
	c.lo = (double *) w;
	w += ALIGN8((size_t) n_features * sizeof(double));
	c.hi = (double *) w;
	w += ALIGN8((size_t) n_features * sizeof(double));
	c.normal = (double *) w;

	c.rows = rows;
	c.nf = n_features;
	c.max_depth = ifo_max_depth(ss);
	c.extension_level = p->extension_level;
	c.rng = rng;
	c.f = f;
	c.next = 0;

	for (uint64_t i = 0; i < n_rows; i++)
		perm[i] = (uint32_t) i;
	if (weights)
		fenwick_build(fenwick, weights, n_rows);
	for (uint32_t t = 0; t < p->n_trees; t++)
	{
		if (weights)
		{
			/*
			 * ss of the budget's copies without replacement: a row of
			 * weight w may come up to w times
			 */
			for (uint32_t i = 0; i < ss; i++)
			{
				uint64_t	row = fenwick_find(fenwick, n_rows, rng_below(rng, budget - i));

				fenwick_add(fenwick, n_rows, row, (uint64_t) -1);
				idx[i] = (uint32_t) row;
			}
			for (uint32_t i = 0; i < ss; i++)
				fenwick_add(fenwick, n_rows, idx[i], 1);
		}
		else
		{
			/* ss rows without replacement: a partial Fisher-Yates shuffle */
			for (uint32_t i = 0; i < ss; i++)
			{
				uint64_t	j = i + rng_below(rng, n_rows - i);
				uint32_t	tmp = perm[i];

				perm[i] = perm[j];
				perm[j] = tmp;
				idx[i] = perm[i];
			}
		}
		f->tree_start[t] = c.next;
		c.tree_base = c.next;
		build_node(&c, idx, ss, 0);
		finish_tree_values(f, f->tree_start[t], 0);
	}
	f->tree_start[p->n_trees] = c.next;
	f->n_nodes = c.next;
	return f;
}

/* ------------------------------------------------------------------ scoring */

void
ifo_prepare_input(const ifo_forest *f, double *x)
{
	if (f->flags & IFO_FLAG_FLOAT32_INPUT)
		for (uint32_t j = 0; j < f->n_features; j++)
			x[j] = (double) (float) x[j];
}

static inline uint32_t
descend(const ifo_forest *f, uint32_t i, const double *x, uint32_t *depth)
{
	const ifo_node *nodes = f->nodes;
	uint32_t	d = 0;

	if (f->normals)
	{
		while (nodes[i].feature >= 0)
		{
			const ifo_node *n = &nodes[i];

			i = dot(f->normals + (size_t) i * f->n_features, x, f->n_features) <= n->threshold ? n->left : n->right;
			d++;
		}
	}
	else
	{
		while (nodes[i].feature >= 0)
		{
			const ifo_node *n = &nodes[i];

			i = x[n->feature] <= n->threshold ? n->left : n->right;
			d++;
		}
	}
	if (depth)
		*depth = d;
	return i;
}

#define IFO_LOCKSTEP 32

/*
 * Descends IFO_LOCKSTEP trees at a time, one level per step: the loads of
 * different trees are independent, so their cache misses overlap.
 */
static double
path_sum_lockstep(const ifo_forest *f, const double *x, uint32_t first, uint32_t end, double sum)
{
	const ifo_snode *sn = f->snodes;

	for (uint32_t t0 = first; t0 < end; t0 += IFO_LOCKSTEP)
	{
		uint32_t	at[IFO_LOCKSTEP];
		uint32_t	n = end - t0 < IFO_LOCKSTEP ? end - t0 : IFO_LOCKSTEP;

		for (uint32_t k = 0; k < n; k++)
			at[k] = f->tree_start[t0 + k];
		for (uint32_t d = 0; d < f->max_depth; d++)
			for (uint32_t k = 0; k < n; k++)
			{
				const ifo_snode *node = &sn[at[k]];
				/* branch-free: the direction is a coin flip the predictor cannot learn */
				uint32_t	mask = 0u - (uint32_t) !(x[node->feature] <= node->threshold);

				at[k] = ((at[k] + 1) & ~mask) | (node->right & mask);
			}
		for (uint32_t k = 0; k < n; k++)
			sum += f->svalues[at[k]];
	}
	return sum;
}

double
ifo_path_sum_trees(const ifo_forest *f, const double *x, uint32_t first, uint32_t end, double sum)
{
	if (end > f->n_trees)
		end = f->n_trees;
	if (f->snodes)
		return path_sum_lockstep(f, x, first, end, sum);
	for (uint32_t t = first; t < end; t++)
		sum += f->nodes[descend(f, f->tree_start[t], x, NULL)].value;
	return sum;
}

/*
 * Tree-major: one tree at a time over a block of rows, the tree's nodes
 * staying in L1 while IFO_BATCH_ROWS independent descents overlap their
 * loads. Each row's sum still adds the trees in tree order, so it equals
 * ifo_path_sum bit for bit.
 */
#define IFO_BATCH_ROWS 16

static void
path_sums_tree_major(const ifo_forest *f, const double *x, size_t n_rows, double *sums)
{
	const ifo_snode *sn = f->snodes;
	uint32_t	nf = f->n_features;

	for (size_t r0 = 0; r0 < n_rows; r0 += IFO_BATCH_ROWS)
	{
		size_t		n = n_rows - r0 < IFO_BATCH_ROWS ? n_rows - r0 : IFO_BATCH_ROWS;
		const double *xb = x + r0 * nf;
		double		acc[IFO_BATCH_ROWS];

		for (size_t k = 0; k < n; k++)
			acc[k] = 0.0;
		for (uint32_t t = 0; t < f->n_trees; t++)
		{
			uint32_t	at[IFO_BATCH_ROWS];
			uint32_t	root = f->tree_start[t];

			for (size_t k = 0; k < n; k++)
				at[k] = root;
			for (uint32_t d = 0; d < f->max_depth; d++)
				for (size_t k = 0; k < n; k++)
				{
					const ifo_snode *node = &sn[at[k]];
					uint32_t	mask = 0u - (uint32_t) !(xb[k * nf + node->feature] <= node->threshold);

					at[k] = ((at[k] + 1) & ~mask) | (node->right & mask);
				}
			for (size_t k = 0; k < n; k++)
				acc[k] += f->svalues[at[k]];
		}
		for (size_t k = 0; k < n; k++)
			sums[r0 + k] = acc[k];
	}
}

void
ifo_path_sums(const ifo_forest *f, const double *x, size_t n_rows, double *sums)
{
	if (f->snodes)
	{
		path_sums_tree_major(f, x, n_rows, sums);
		return;
	}
	for (size_t r = 0; r < n_rows; r++)
		sums[r] = ifo_path_sum(f, x + r * f->n_features);
}

double
ifo_path_sum(const ifo_forest *f, const double *x)
{
	return ifo_path_sum_trees(f, x, 0, f->n_trees, 0.0);
}

double
ifo_score_of_path_sum(const ifo_forest *f, double path_sum)
{
	double		denominator = (double) f->n_trees * ifo_c((double) f->sample_size);

	/* sklearn: a forest of single-row samples scores 2^-1 everywhere */
	if (denominator == 0.0)
		return 0.5;
	return pow(2.0, -(path_sum / denominator));
}

double
ifo_score(const ifo_forest *f, const double *x)
{
	return ifo_score_of_path_sum(f, ifo_path_sum(f, x));
}

void
ifo_split_ranges(const ifo_forest *f, double *lo, double *hi)
{
	for (uint32_t j = 0; j < f->n_features; j++)
	{
		lo[j] = INFINITY;
		hi[j] = -INFINITY;
	}
	for (uint64_t i = 0; i < f->n_nodes; i++)
	{
		const ifo_node *n = &f->nodes[i];

		if (n->feature < 0)
			continue;
		if (n->threshold < lo[n->feature])
			lo[n->feature] = n->threshold;
		if (n->threshold > hi[n->feature])
			hi[n->feature] = n->threshold;
	}
}

int
ifo_explain_ranged(const ifo_forest *f, const double *x, const double *lo, const double *hi,
				   double *votes)
{
	uint32_t	nf = f->n_features;
	double		best_excess = 0.0;
	int			best = -1;

	/* 1. a feature in which x lies outside every threshold split on it */
	if (f->normals == NULL)
	{
		for (uint32_t j = 0; j < nf; j++)
		{
			double		width,
						excess;

			if (lo[j] > hi[j])
				continue;		/* never split on */
			width = hi[j] - lo[j] > 0.0 ? hi[j] - lo[j] : 1.0;
			excess = (x[j] < lo[j] ? lo[j] - x[j] : x[j] > hi[j] ? x[j] - hi[j] : 0.0) / width;
			if (excess > best_excess)
			{
				best_excess = excess;
				best = (int) j;
			}
		}
		if (best >= 0)
			return best;
	}

	/* 2. otherwise the split just above the leaf, weighted by 1/depth */
	for (uint32_t j = 0; j < nf; j++)
		votes[j] = 0.0;
	for (uint32_t t = 0; t < f->n_trees; t++)
	{
		uint32_t	i = f->tree_start[t],
					parent = i,
					depth = 0;

		while (f->nodes[i].feature >= 0)
		{
			const ifo_node *n = &f->nodes[i];

			parent = i;
			i = f->normals
				? (dot(f->normals + (size_t) i * nf, x, nf) <= n->threshold ? n->left : n->right)
				: (x[n->feature] <= n->threshold ? n->left : n->right);
			depth++;
		}
		if (depth > 0)
			votes[f->nodes[parent].feature] += 1.0 / depth;
	}
	for (uint32_t j = 0; j < nf; j++)
		if (votes[j] > 0.0 && (best < 0 || votes[j] > votes[best]))
			best = (int) j;
	return best;
}

int
ifo_explain(const ifo_forest *f, const double *x, double *scratch)
{
	uint32_t	nf = f->n_features;

	if (f->normals == NULL)
		ifo_split_ranges(f, scratch + nf, scratch + 2 * nf);
	return ifo_explain_ranged(f, x, scratch + nf, scratch + 2 * nf, scratch);
}

/* -------------------------------------------------------------- binary form */

static uint64_t
fnv1a64_more(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
	{
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

uint64_t
ifo_checksum(const uint8_t *buf, size_t len)
{
	uint64_t	h = UINT64_C(0xcbf29ce484222325);

	h = fnv1a64_more(h, buf, 32);
	return fnv1a64_more(h, buf + IFO_HEADER_BYTES, len - IFO_HEADER_BYTES);
}

/* Checked a*b+c on sizes; returns 0 on overflow. */
static int
mul_add(uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
	if (a != 0 && b > (UINT64_MAX - c) / a)
		return 0;
	*out = a * b + c;
	return 1;
}

size_t
ifo_raw_size(uint32_t n_trees, uint64_t n_nodes, uint32_t n_features, int extended)
{
	uint64_t	total = IFO_HEADER_BYTES + 4 * (uint64_t) n_trees;
	uint64_t	per_node = 4 * 4 + 8;

	if (extended && !mul_add(n_features, 8, per_node, &per_node))
		return 0;
	if (!mul_add(n_nodes, per_node, total, &total) || total > (uint64_t) SIZE_MAX)
		return 0;
	return (size_t) total;
}

/* offsets of the node arrays */
typedef struct layout
{
	size_t		counts,
				left,
				right,
				feature,
				size,
				threshold,
				normal;
} layout;

static layout
layout_of(uint32_t n_trees, uint64_t n_nodes)
{
	layout		l;

	l.counts = IFO_HEADER_BYTES;
	l.left = l.counts + 4 * (size_t) n_trees;
	l.right = l.left + 4 * n_nodes;
	l.feature = l.right + 4 * n_nodes;
	l.size = l.feature + 4 * n_nodes;
	l.threshold = l.size + 4 * n_nodes;
	l.normal = l.threshold + 8 * n_nodes;
	return l;
}

void
ifo_write_header(ifo_writer *w, uint8_t *buf, uint32_t flags, uint32_t n_features,
				 uint32_t n_trees, uint32_t sample_size, uint32_t extension_level,
				 const uint32_t *node_counts, uint64_t n_nodes)
{
	w->buf = buf;
	w->n_trees = n_trees;
	w->n_features = n_features;
	w->n_nodes = n_nodes;
	w->extended = (flags & IFO_FLAG_EXTENDED) != 0;
	memcpy(buf, IFO_MAGIC, 4);
	le_put_u16(buf + 4, IFO_VERSION);
	le_put_u16(buf + 6, (uint16_t) flags);
	le_put_u32(buf + 8, n_features);
	le_put_u32(buf + 12, n_trees);
	le_put_u32(buf + 16, sample_size);
	le_put_u32(buf + 20, extension_level);
	le_put_u64(buf + 24, n_nodes);
	le_put_u64(buf + 32, 0);
	for (uint32_t t = 0; node_counts && t < n_trees; t++)
		le_put_u32(buf + IFO_HEADER_BYTES + 4 * (size_t) t, node_counts[t]);
}

void
ifo_write_node(ifo_writer *w, uint64_t g, uint32_t left, uint32_t right,
			   uint32_t feature, uint32_t size, double threshold, const double *normal)
{
	layout		l = layout_of(w->n_trees, w->n_nodes);

	le_put_u32(w->buf + l.left + 4 * g, left);
	le_put_u32(w->buf + l.right + 4 * g, right);
	le_put_u32(w->buf + l.feature + 4 * g, feature);
	le_put_u32(w->buf + l.size + 4 * g, size);
	le_put_f64(w->buf + l.threshold + 8 * g, threshold);
	if (w->extended)
		for (uint32_t j = 0; j < w->n_features; j++)
			le_put_f64(w->buf + l.normal + 8 * (g * w->n_features + j), normal ? normal[j] : 0.0);
}

void
ifo_write_seal(ifo_writer *w, size_t len)
{
	le_put_u64(w->buf + 32, ifo_checksum(w->buf, len));
}

size_t
ifo_encoded_size(const ifo_forest *f)
{
	return ifo_raw_size(f->n_trees, f->n_nodes, f->n_features, f->normals != NULL);
}

void
ifo_encode(const ifo_forest *f, uint8_t *buf)
{
	ifo_writer	w;

	/* the node counts go straight into the header */
	ifo_write_header(&w, buf, f->flags, f->n_features, f->n_trees, f->sample_size,
					 f->extension_level, NULL, f->n_nodes);
	for (uint32_t t = 0; t < f->n_trees; t++)
	{
		uint32_t	base = f->tree_start[t];

		le_put_u32(buf + IFO_HEADER_BYTES + 4 * (size_t) t, f->tree_start[t + 1] - base);
		for (uint32_t i = base; i < f->tree_start[t + 1]; i++)
		{
			const ifo_node *n = &f->nodes[i];
			int			leaf = n->feature < 0;

			ifo_write_node(&w, i, leaf ? 0 : n->left - base, leaf ? 0 : n->right - base,
						   leaf ? 0 : (uint32_t) n->feature, n->size, leaf ? 0.0 : n->threshold,
						   f->normals && !leaf ? f->normals + (size_t) i * f->n_features : NULL);
		}
	}
	ifo_write_seal(&w, ifo_encoded_size(f));
}

/*
 * Renumbers each tree in preorder into f->snodes (see ifo_snode).  stack
 * has room for 2 * n_nodes entries: (node, snode whose right child it is).
 */
static void
build_scoring_layout(ifo_forest *f, uint32_t *stack)
{
	for (uint32_t t = 0; t < f->n_trees; t++)
	{
		uint32_t	next = f->tree_start[t];
		uint64_t	top = 0;

		stack[top++] = f->tree_start[t];
		stack[top++] = UINT32_MAX;
		while (top > 0)
		{
			uint32_t	parent = stack[--top];
			uint32_t	node = stack[--top];
			uint32_t	id = next++;
			const ifo_node *n = &f->nodes[node];
			ifo_snode  *sn = &f->snodes[id];

			if (parent != UINT32_MAX)
				f->snodes[parent].right = id;
			if (n->feature < 0)
			{
				sn->threshold = NAN;	/* x <= NaN is false for every x, -inf too */
				sn->feature = 0;
				sn->right = id;
				f->svalues[id] = n->value;
				continue;
			}
			sn->threshold = n->threshold;
			sn->feature = (uint32_t) n->feature;
			f->svalues[id] = 0.0;
			/* right is pushed first so that the left child is numbered id + 1 */
			stack[top++] = n->right;
			stack[top++] = id;
			stack[top++] = n->left;
			stack[top++] = UINT32_MAX;
		}
	}
}

/* decode-time memory: forest struct, tree starts, nodes, normals or the scoring layout */
static size_t
decode_mem(uint32_t n_trees, uint64_t n_nodes, uint32_t n_features, int extended)
{
	return ALIGN8(sizeof(ifo_forest)) + ALIGN8(((size_t) n_trees + 1) * 4) +
		ALIGN8(n_nodes * sizeof(ifo_node)) +
		(extended ? ALIGN8(n_nodes * n_features * sizeof(double)) :
		 ALIGN8(n_nodes * sizeof(ifo_snode)) + ALIGN8(n_nodes * sizeof(double)) +
		 ALIGN8(n_nodes * 2 * sizeof(uint32_t)));
}

size_t
ifo_decode_plan(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	uint32_t	flags,
				nf,
				nt,
				ss,
				ext;
	uint64_t	n_nodes,
				sum = 0;
	size_t		expect;

	if (len < IFO_HEADER_BYTES)
	{
		decode_fail(err, errlen, "model is %zu bytes, shorter than its %d-byte header", len, IFO_HEADER_BYTES);
		return 0;
	}
	if (memcmp(buf, IFO_MAGIC, 4) != 0)
	{
		decode_fail(err, errlen, "bad magic: not a calo_recon isolation forest");
		return 0;
	}
	if (le_get_u16(buf + 4) != IFO_VERSION)
	{
		decode_fail(err, errlen, "unsupported model format version %u (this build reads %d)", le_get_u16(buf + 4), IFO_VERSION);
		return 0;
	}
	flags = le_get_u16(buf + 6);
	nf = le_get_u32(buf + 8);
	nt = le_get_u32(buf + 12);
	ss = le_get_u32(buf + 16);
	ext = le_get_u32(buf + 20);
	n_nodes = le_get_u64(buf + 24);
	if (flags & ~IFO_KNOWN_FLAGS)
	{
		decode_fail(err, errlen, "unknown flags 0x%x", flags);
		return 0;
	}
	if (nf < 1 || nf > IFO_MAX_FEATURES)
	{
		decode_fail(err, errlen, "n_features %u is outside 1..%d", nf, IFO_MAX_FEATURES);
		return 0;
	}
	if (nt < 1 || nt > IFO_MAX_TREES)
	{
		decode_fail(err, errlen, "n_trees %u is outside 1..%d", nt, IFO_MAX_TREES);
		return 0;
	}
	if (ss < 1 || ss > IFO_MAX_SAMPLE_SIZE)
	{
		decode_fail(err, errlen, "sample_size %u is outside 1..%d", ss, IFO_MAX_SAMPLE_SIZE);
		return 0;
	}
	if ((flags & IFO_FLAG_EXTENDED) ? (ext < 1 || ext >= nf) : ext != 0)
	{
		decode_fail(err, errlen, "extension_level %u does not fit the flags and %u features", ext, nf);
		return 0;
	}
	if (len < IFO_HEADER_BYTES + 4 * (size_t) nt)
	{
		decode_fail(err, errlen, "model is truncated inside its node counts");
		return 0;
	}
	for (uint32_t t = 0; t < nt; t++)
	{
		uint32_t	count = le_get_u32(buf + IFO_HEADER_BYTES + 4 * (size_t) t);

		if (count < 1 || count > 2 * (uint64_t) ss - 1)
		{
			decode_fail(err, errlen, "tree %u has %u nodes, outside 1..%llu for sample_size %u",
					  t + 1, count, (unsigned long long) (2 * (uint64_t) ss - 1), ss);
			return 0;
		}
		sum += count;
	}
	if (sum > IFO_MAX_NODES)
	{
		decode_fail(err, errlen, "model has %llu nodes, more than %d", (unsigned long long) sum, IFO_MAX_NODES);
		return 0;
	}
	if (sum != n_nodes)
	{
		decode_fail(err, errlen, "node counts add up to %llu, header says %llu",
				  (unsigned long long) sum, (unsigned long long) n_nodes);
		return 0;
	}
	expect = ifo_raw_size(nt, n_nodes, nf, (flags & IFO_FLAG_EXTENDED) != 0);
	if (expect == 0 || expect != len)
	{
		decode_fail(err, errlen, "model is %zu bytes, its header describes %zu", len, expect);
		return 0;
	}
	if (le_get_u64(buf + 32) != ifo_checksum(buf, len))
	{
		decode_fail(err, errlen, "checksum mismatch: the model bytes were altered");
		return 0;
	}
	return decode_mem(nt, n_nodes, nf, (flags & IFO_FLAG_EXTENDED) != 0);
}

ifo_forest *
ifo_decode(const uint8_t *buf, size_t len, void *mem, size_t memlen, char *err, size_t errlen)
{
	size_t		need = ifo_decode_plan(buf, len, err, errlen);
	char	   *w = mem;
	ifo_forest *f;
	layout		l;
	uint32_t	nf,
				depth_bound;
	uint64_t	g;
	uint32_t   *stack = NULL;

	if (need == 0)
		return NULL;
	if (memlen < need)
	{
		decode_fail(err, errlen, "decode buffer too small");
		return NULL;
	}
	f = (ifo_forest *) w;
	w += ALIGN8(sizeof(ifo_forest));
	f->flags = le_get_u16(buf + 6);
	f->n_features = nf = le_get_u32(buf + 8);
	f->n_trees = le_get_u32(buf + 12);
	f->sample_size = le_get_u32(buf + 16);
	f->extension_level = le_get_u32(buf + 20);
	f->n_nodes = le_get_u64(buf + 24);
	f->tree_start = (uint32_t *) w;
	w += ALIGN8(((size_t) f->n_trees + 1) * 4);
	f->nodes = (ifo_node *) w;
	w += ALIGN8(f->n_nodes * sizeof(ifo_node));
	f->normals = NULL;
	f->snodes = NULL;
	f->svalues = NULL;
	f->max_depth = 0;
	if (f->flags & IFO_FLAG_EXTENDED)
		f->normals = (double *) w;
	else
	{
		f->snodes = (ifo_snode *) w;
		w += ALIGN8(f->n_nodes * sizeof(ifo_snode));
		f->svalues = (double *) w;
		w += ALIGN8(f->n_nodes * sizeof(double));
		stack = (uint32_t *) w;
	}
	l = layout_of(f->n_trees, f->n_nodes);
	depth_bound = ifo_max_depth(f->sample_size);

	g = 0;
	for (uint32_t t = 0; t < f->n_trees; t++)
	{
		uint32_t	count = le_get_u32(buf + l.counts + 4 * (size_t) t);
		uint64_t	base = g;

		f->tree_start[t] = (uint32_t) base;
		/* value holds the depth while validating; -1 = no parent seen yet */
		for (uint32_t i = 0; i < count; i++)
			f->nodes[base + i].value = -1.0;
		f->nodes[base].value = 0.0;
		for (uint32_t i = 0; i < count; i++, g++)
		{
			ifo_node   *n = &f->nodes[g];
			uint32_t	left = le_get_u32(buf + l.left + 4 * g);
			uint32_t	right = le_get_u32(buf + l.right + 4 * g);
			uint32_t	feature = le_get_u32(buf + l.feature + 4 * g);
			uint32_t	size = le_get_u32(buf + l.size + 4 * g);
			double		threshold = le_get_f64(buf + l.threshold + 8 * g);
			double	   *normal = f->normals ? f->normals + g * nf : NULL;
			int			zero_normal = 1,
						zero_bits = 1;

			if (n->value < 0.0)
			{
				decode_fail(err, errlen, "tree %u node %u is unreachable", t + 1, i);
				return NULL;
			}
			if (n->value > depth_bound)
			{
				decode_fail(err, errlen, "tree %u node %u is at depth %u, deeper than ceil(log2(sample_size %u)) = %u",
							t + 1, i, (uint32_t) n->value, f->sample_size, depth_bound);
				return NULL;
			}
			if (size < 1 || size > f->sample_size)
			{
				decode_fail(err, errlen, "tree %u node %u has n_node_samples %u, outside 1..%u", t + 1, i, size, f->sample_size);
				return NULL;
			}
			if (i == 0 && size != f->sample_size)
			{
				decode_fail(err, errlen, "tree %u root holds %u rows, sample_size is %u", t + 1, size, f->sample_size);
				return NULL;
			}
			if (normal)
				for (uint32_t j = 0; j < nf; j++)
				{
					normal[j] = le_get_f64(buf + l.normal + 8 * (g * nf + j));
					if (!isfinite(normal[j]))
					{
						decode_fail(err, errlen, "tree %u node %u has a non-finite normal component", t + 1, i);
						return NULL;
					}
					if (normal[j] != 0.0)
						zero_normal = 0;
					if (le_get_u64(buf + l.normal + 8 * (g * nf + j)) != 0)
						zero_bits = 0;	/* -0.0 too: a leaf's normal is all zero bits */
				}
			n->size = size;
			if (left == 0 && right == 0)
			{
				uint64_t	bits;

				memcpy(&bits, &threshold, 8);
				if (feature != 0 || bits != 0 || !zero_bits)
				{
					decode_fail(err, errlen, "tree %u leaf %u carries split fields", t + 1, i);
					return NULL;
				}
				n->feature = -1;
				n->left = n->right = 0;
				n->threshold = 0.0;
				if (n->value > f->max_depth)
					f->max_depth = (uint32_t) n->value;
				n->value = ((n->value + 1.0) + ifo_c((double) size)) - 1.0;
				continue;
			}
			if (left <= i || right <= i || left >= count || right >= count || left == right)
			{
				decode_fail(err, errlen, "tree %u node %u has children %u and %u, not distinct nodes after it within %u",
						  t + 1, i, left, right, count);
				return NULL;
			}
			if (feature >= nf)
			{
				decode_fail(err, errlen, "tree %u node %u splits on feature %u of %u", t + 1, i, feature, nf);
				return NULL;
			}
			if (!isfinite(threshold))
			{
				decode_fail(err, errlen, "tree %u node %u has a non-finite threshold", t + 1, i);
				return NULL;
			}
			if (normal && zero_normal)
			{
				decode_fail(err, errlen, "tree %u node %u has a zero normal vector", t + 1, i);
				return NULL;
			}
			if ((uint64_t) le_get_u32(buf + l.size + 4 * (base + left)) +
				le_get_u32(buf + l.size + 4 * (base + right)) != size)
			{
				decode_fail(err, errlen, "tree %u node %u holds %u rows, its children do not add up to it", t + 1, i, size);
				return NULL;
			}
			if (f->nodes[base + left].value >= 0.0 || f->nodes[base + right].value >= 0.0)
			{
				decode_fail(err, errlen, "tree %u node %u: a child already has a parent", t + 1, i);
				return NULL;
			}
			f->nodes[base + left].value = n->value + 1.0;
			f->nodes[base + right].value = n->value + 1.0;
			n->feature = (int32_t) feature;
			n->left = (uint32_t) (base + left);
			n->right = (uint32_t) (base + right);
			n->threshold = threshold;
		}
	}
	f->tree_start[f->n_trees] = (uint32_t) g;
	if (f->snodes)
		build_scoring_layout(f, stack);
	return f;
}
