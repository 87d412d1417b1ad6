/*
 * attribution.h: how much each feature did to isolate a row in an
 * Isolation Forest (plain C, no PostgreSQL headers).
 *
 * In each tree, every split on the row's path sends it to a child that
 * holds fewer of the tree's training samples than the node: the split is
 * credited log2(size(node) / size(child)) bits to its feature (child sizes
 * below 1 count as 1), in the spirit of DIFFI's and Random Cut Forest's
 * attribution. Along one path these telescope to log2(size(root) /
 * size(leaf)), so the attributions of all features sum to
 *     the mean over the trees of log2(samples of the tree / samples of the
 *     row's leaf),
 * the "bits of isolation": about log2(sample_size) for a row isolated alone
 * in every tree, near 0 for a row that lands with the bulk. A feature's
 * direction is +1 (the row lies above the split thresholds that isolated it,
 * weighted by their bits), -1 (below) or 0 (no bits).
 */
#ifndef CALO_ATTRIBUTION_H
#define CALO_ATTRIBUTION_H

#include "iforest.h"

/*
 * The attribution of x (already through ifo_prepare_input) over the
 * forest's n_features features into bits[] and direction[] (n_features
 * each); returns their sum. An extended split is credited to its node's
 * feature (the largest component of its normal) and its direction is the
 * side of the hyperplane x lies on.
 */
double		attr_row(const ifo_forest *f, const double *x, double *bits, int *direction);

#endif
