/*
 * iforest.h: Isolation Forest core (no PostgreSQL headers): tree building
 * (classic Liu/Ting/Zhou 2008 with scikit-learn's split rules, and Hariri et
 * al. 2018's Extended Isolation Forest) from a training sample (a bottom-k
 * sketch, bottomk.h), scoring, and the versioned, validated binary form.
 *
 * Binary form, version 1, all fields little-endian:
 *   0  "CIFR"            4  u16 version (1)      6  u16 flags
 *   8  u32 n_features   12  u32 n_trees         16  u32 sample_size
 *   20 u32 extension_level                      24  u64 total nodes N
 *   32 u64 FNV-1a 64 checksum of bytes [0, 32) and [40, end)
 *   40 u32 node_count[n_trees]
 *      u32 left[N] u32 right[N] u32 feature[N] u32 n_node_samples[N]
 *      f64 threshold[N]
 *      f64 normal[N * n_features]          (only with IFO_FLAG_EXTENDED)
 * Nodes of each tree are numbered from 0 (the root) within the tree; a leaf
 * has left = right = 0, feature 0, threshold 0 (and a zero normal); an inner
 * node has children with larger numbers; no node is deeper than
 * ifo_max_depth(sample_size).  A classic node sends x left when
 * x[feature] <= threshold, an extended node when normal . x <= threshold.
 * flags: IFO_FLAG_FLOAT32_INPUT (features are rounded to float32 before the
 * descent, as scikit-learn does), IFO_FLAG_EXTENDED (extension_level > 0).
 */
#ifndef CALO_IFOREST_H
#define CALO_IFOREST_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define IFO_MAGIC "CIFR"
#define IFO_VERSION 1
#define IFO_HEADER_BYTES 40
#define IFO_FLAG_FLOAT32_INPUT 0x1
#define IFO_FLAG_EXTENDED 0x2
#define IFO_KNOWN_FLAGS (IFO_FLAG_FLOAT32_INPUT | IFO_FLAG_EXTENDED)
#define IFO_MAX_FEATURES 1000
#define IFO_MAX_TREES 10000
#define IFO_MAX_SAMPLE_SIZE 1000000
/* the sample_size a fit may ask for (a model read elsewhere may hold more) */
#define IFO_MIN_FIT_SAMPLE_SIZE 2
#define IFO_MAX_FIT_SAMPLE_SIZE 100000
#define IFO_MAX_NODES (1 << 24)
/* scikit-learn's FEATURE_THRESHOLD: a feature whose range in a node is at
 * most this is constant there and is not split on */
#define IFO_FEATURE_THRESHOLD 1e-7
/* np.euler_gamma */
#define IFO_EULER_GAMMA 0.577215664901532860606512090082402431

/* One node of a decoded or built forest; children are global node indices. */
typedef struct ifo_node
{
	double		threshold;
	double		value;			/* leaf: depth + c(size), as sklearn sums it */
	int32_t		feature;		/* -1 for a leaf */
	uint32_t	left;
	uint32_t	right;
	uint32_t	size;			/* training rows that reached the node */
} ifo_node;

/*
 * Scoring layout of a classic forest, built by the decoder: nodes of each
 * tree in preorder (so the left child of node i is i + 1), 16 bytes each.
 * A leaf sends every x to itself (threshold NaN, right = itself),
 * so all trees descend in lockstep for max_depth steps without branches.
 */
typedef struct ifo_snode
{
	double		threshold;
	uint32_t	feature;
	uint32_t	right;
} ifo_snode;

typedef struct ifo_forest
{
	uint32_t	flags;
	uint32_t	n_features;
	uint32_t	n_trees;
	uint32_t	sample_size;
	uint32_t	extension_level;
	uint64_t	n_nodes;
	uint32_t   *tree_start;		/* n_trees + 1 entries */
	ifo_node   *nodes;
	double	   *normals;		/* n_nodes * n_features, or NULL */
	ifo_snode  *snodes;			/* scoring layout (decoded classic forests), or NULL */
	double	   *svalues;		/* leaf values in the scoring layout */
	uint32_t	max_depth;		/* deepest leaf, with snodes */
} ifo_forest;

typedef struct ifo_params
{
	uint32_t	n_trees;
	uint32_t	sample_size;
	uint32_t	extension_level;
} ifo_params;

/* c(n): average path length of an unsuccessful BST search among n points. */
double		ifo_c(double n);
/*
 * The depth limit of every tree, ceil(log2(max(sample_size, 2))): the limit
 * training builds to, the one scikit-learn's IsolationForest gives its trees
 * (max_depth), and the one the decoder holds every model to.  It keeps a
 * row's descent short (at most 20 levels) and its score at least 2^-3: the
 * exponent (depth + c(leaf size)) / c(sample_size) stays below 3.
 */
uint32_t	ifo_max_depth(uint32_t sample_size);

/* ---- training ---- */
size_t		ifo_build_workspace(uint64_t n_rows, uint32_t n_features, const ifo_params *p);
/*
 * Builds the forest in work (>= ifo_build_workspace bytes, 8-aligned).  Each
 * tree draws min(sample_size, n_seen, budget) rows without replacement: of
 * the n_rows rows, or, with weights, of the budget of sum(weights) copies in
 * which row i comes weights[i] times (a bottom-k sample's counts).
 */
ifo_forest *ifo_build(const double *rows, const uint64_t *weights, uint64_t n_rows, uint64_t n_seen,
					  uint32_t n_features, const ifo_params *p, rng_state *rng,
					  void *work, size_t worklen);

/* ---- scoring ---- */
/* Rounds x to float32 in place when the forest was trained that way. */
void		ifo_prepare_input(const ifo_forest *f, double *x);
double		ifo_path_sum(const ifo_forest *f, const double *x);
/*
 * Adds the path lengths of trees [first, end) to sum, in tree order, so that
 * a caller may score a row in slices (between interrupt checks) and get the
 * very sum ifo_path_sum gives.
 */
double		ifo_path_sum_trees(const ifo_forest *f, const double *x, uint32_t first, uint32_t end,
							   double sum);
/*
 * ifo_path_sum of n_rows rows (row-major, n_features each, already through
 * ifo_prepare_input) into sums, bit for bit, but tree-major over blocks of
 * rows: each tree's nodes are read once per block, not once per row.
 */
void		ifo_path_sums(const ifo_forest *f, const double *x, size_t n_rows, double *sums);
double		ifo_score_of_path_sum(const ifo_forest *f, double path_sum);
double		ifo_score(const ifo_forest *f, const double *x);
/*
 * 0-based feature that explains x's isolation (-1 when no tree splits):
 *  1. classic forests: if x lies outside the range of the thresholds the
 *     forest splits feature j on, for some j, the j with the largest excess
 *     beyond that range in units of its width (x is beyond every split the
 *     forest made on j: it is isolated there at once);
 *  2. otherwise (and for extended forests): in each tree the split just
 *     above x's leaf votes for its feature (for an extended split, the
 *     feature with the largest |normal| component) with weight 1/depth of
 *     the leaf; the feature with the largest total wins (ties: lowest).
 * scratch holds 3 * n_features doubles.
 */
int			ifo_explain(const ifo_forest *f, const double *x, double *scratch);
/*
 * The same in two steps, so that a caller explaining many rows scans the
 * nodes once, not per row: the range [lo, hi] of the thresholds a classic
 * forest splits each feature on (lo > hi when never), then ifo_explain with
 * those ranges (unused for extended forests) and votes of n_features doubles.
 */
void		ifo_split_ranges(const ifo_forest *f, double *lo, double *hi);
int			ifo_explain_ranged(const ifo_forest *f, const double *x, const double *lo,
							   const double *hi, double *votes);

/* ---- binary form ---- */
/* FNV-1a 64 over the whole value except the checksum field (len >= 40). */
uint64_t	ifo_checksum(const uint8_t *buf, size_t len);
size_t		ifo_encoded_size(const ifo_forest *f);
void		ifo_encode(const ifo_forest *f, uint8_t *buf);

/* Raw writer used by importers: header, then nodes, then seal (checksum). */
typedef struct ifo_writer
{
	uint8_t    *buf;
	uint32_t	n_trees;
	uint32_t	n_features;
	uint64_t	n_nodes;
	int			extended;
} ifo_writer;
/* Bytes for a forest with these counts, 0 when it cannot be represented. */
size_t		ifo_raw_size(uint32_t n_trees, uint64_t n_nodes, uint32_t n_features, int extended);
void		ifo_write_header(ifo_writer *w, uint8_t *buf, uint32_t flags, uint32_t n_features,
							 uint32_t n_trees, uint32_t sample_size, uint32_t extension_level,
							 const uint32_t *node_counts, uint64_t n_nodes);
void		ifo_write_node(ifo_writer *w, uint64_t global_index, uint32_t left, uint32_t right,
						   uint32_t feature, uint32_t size, double threshold, const double *normal);
void		ifo_write_seal(ifo_writer *w, size_t len);

/*
 * Validates the header and lengths and returns the bytes ifo_decode needs,
 * or 0 with err set.
 */
size_t		ifo_decode_plan(const uint8_t *buf, size_t len, char *err, size_t errlen);
/* Validates everything and lays the forest out in mem; NULL with err set. */
ifo_forest *ifo_decode(const uint8_t *buf, size_t len, void *mem, size_t memlen,
					   char *err, size_t errlen);

#endif
