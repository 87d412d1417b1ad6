/*
 * attribution.c: per-feature isolation bits of a row. See attribution.h.
 */
#include "attribution.h"

#include <math.h>

static double
attr_dot(const double *a, const double *b, uint32_t n)
{
	double		s = 0.0;

	for (uint32_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

double
attr_row(const ifo_forest *f, const double *x, double *bits, int *direction)
{
	uint32_t	nf = f->n_features;
	double		total = 0.0;
	/* signed bits, direction's vote; in bits[] until the end would lose the sign */
	double		lean[IFO_MAX_FEATURES];

	for (uint32_t j = 0; j < nf; j++)
	{
		bits[j] = 0.0;
		lean[j] = 0.0;
	}
	for (uint32_t t = 0; t < f->n_trees; t++)
	{
		uint32_t	i = f->tree_start[t];

		while (f->nodes[i].feature >= 0)
		{
			const ifo_node *n = &f->nodes[i];
			double		side = f->normals
				? attr_dot(f->normals + (size_t) i * nf, x, nf) - n->threshold
				: x[n->feature] - n->threshold;
			uint32_t	child = side <= 0 ? n->left : n->right;
			double		here = n->size > 1 ? (double) n->size : 1.0;
			double		there = f->nodes[child].size > 1 ? (double) f->nodes[child].size : 1.0;
			double		gain = here > there ? log2(here / there) : 0.0;

			bits[n->feature] += gain;
			lean[n->feature] += side <= 0 ? -gain : gain;
			i = child;
		}
	}
	for (uint32_t j = 0; j < nf; j++)
	{
		if (f->n_trees > 0)
			bits[j] /= (double) f->n_trees;
		total += bits[j];
		direction[j] = lean[j] > 0 ? 1 : (lean[j] < 0 ? -1 : 0);
	}
	return total;
}
