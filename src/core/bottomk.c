/*
 * bottomk.c: the bottom-k training sample of an isolation forest fit:
 * priorities, admission, compaction (which also merges sketches) and the
 * validated binary form (see bottomk.h).
 */
#include "bottomk.h"

#include <math.h>
#include <string.h>

#include "decode_error.h"
#include "le_bytes.h"

/* keeps the priorities apart from the build's stream of the same seed */
#define BK_PRIORITY_DOMAIN UINT64_C(0x6B6F74746F6D2D6B)

static inline uint64_t
double_bits(double d)
{
	uint64_t	b;

	memcpy(&b, &d, sizeof b);
	return b;
}

uint64_t
bk_priority(int64_t seed, const double *row, uint32_t n_features)
{
	uint64_t	h = rng_mix((uint64_t) seed ^ BK_PRIORITY_DOMAIN);

	for (uint32_t j = 0; j < n_features; j++)
		h = rng_mix(h ^ double_bits(row[j]));
	return h;
}

void
bk_init(bk_sample *s, int64_t seed, uint32_t n_features, uint32_t n_trees,
		uint32_t sample_size, uint32_t extension_level)
{
	s->seed = seed;
	s->n_features = n_features;
	s->n_trees = n_trees;
	s->sample_size = sample_size;
	s->extension_level = extension_level;
	s->capacity = (uint64_t) n_trees * sample_size;
	s->seen = 0;
	s->count = 0;
	s->compacted = 0;
	s->full = 0;
}

uint64_t
bk_max_room(const bk_sample *s)
{
	return s->capacity + s->capacity / 2 + 1;
}

/* Order of (priority, row bits): <0, 0 (the same row), >0. */
static int
entry_cmp(const bk_sample *s, uint64_t pa, const double *ra, uint64_t pb, const double *rb)
{
	if (pa != pb)
		return pa < pb ? -1 : 1;
	for (uint32_t j = 0; j < s->n_features; j++)
	{
		uint64_t	a = double_bits(ra[j]),
					b = double_bits(rb[j]);

		if (a != b)
			return a < b ? -1 : 1;
	}
	return 0;
}

static inline const double *
row_at(const bk_sample *s, uint64_t i)
{
	return s->rows + i * s->n_features;
}

bk_result
bk_add(bk_sample *s, const double *row, uint64_t mult)
{
	uint64_t	p = bk_priority(s->seed, row, s->n_features);

	/* beyond the k-th least entry: never among the k least from now on */
	if (s->full && entry_cmp(s, p, row, s->prio[s->capacity - 1], row_at(s, s->capacity - 1)) > 0)
	{
		s->seen += mult;
		return BK_SKIPPED;
	}
	if (s->count >= s->room)
		return BK_NO_ROOM;
	s->prio[s->count] = p;
	s->mult[s->count] = mult;
	memcpy(s->rows + s->count * s->n_features, row, s->n_features * sizeof(double));
	s->count++;
	s->seen += mult;
	return BK_ADDED;
}

size_t
bk_scratch_bytes(const bk_sample *s)
{
	return (2 * (size_t) (s->room ? s->room : 1)) * sizeof(uint64_t) + s->n_features * sizeof(double);
}

static int
index_cmp(const bk_sample *s, uint64_t a, uint64_t b)
{
	return entry_cmp(s, s->prio[a], row_at(s, a), s->prio[b], row_at(s, b));
}

/* Bottom-up merge sort of the entry indices (ties cannot reorder: equal rows merge). */
static void
sort_indices(const bk_sample *s, uint64_t *idx, uint64_t *tmp, uint64_t n)
{
	for (uint64_t width = 1; width < n; width *= 2)
	{
		for (uint64_t lo = 0; lo < n; lo += 2 * width)
		{
			uint64_t	mid = lo + width < n ? lo + width : n,
						hi = lo + 2 * width < n ? lo + 2 * width : n,
						i = lo,
						j = mid,
						k = lo;

			while (i < mid && j < hi)
				tmp[k++] = index_cmp(s, idx[i], idx[j]) <= 0 ? idx[i++] : idx[j++];
			while (i < mid)
				tmp[k++] = idx[i++];
			while (j < hi)
				tmp[k++] = idx[j++];
		}
		memcpy(idx, tmp, n * sizeof(uint64_t));
	}
}

static void
move_entry(bk_sample *s, uint64_t to, uint64_t from)
{
	s->prio[to] = s->prio[from];
	s->mult[to] = s->mult[from];
	memcpy(s->rows + to * s->n_features, row_at(s, from), s->n_features * sizeof(double));
}

void
bk_compact(bk_sample *s, void *scratch)
{
	uint64_t	n = s->count,
				out = 0;
	uint64_t   *idx = scratch;
	uint64_t   *tmp = idx + (n ? n : 1);
	double	   *row = (double *) (tmp + (n ? n : 1));

	if (n == 0)
		return;
	for (uint64_t i = 0; i < n; i++)
		idx[i] = i;
	sort_indices(s, idx, tmp, n);
	/* put entry idx[i] at place i, cycle by cycle */
	for (uint64_t i = 0; i < n; i++)
	{
		uint64_t	p,
					m,
					j = i;

		if (idx[i] == i)
			continue;
		p = s->prio[i];
		m = s->mult[i];
		memcpy(row, row_at(s, i), s->n_features * sizeof(double));
		while (idx[j] != i)
		{
			uint64_t	next = idx[j];

			move_entry(s, j, next);
			idx[j] = j;
			j = next;
		}
		s->prio[j] = p;
		s->mult[j] = m;
		memcpy(s->rows + j * s->n_features, row, s->n_features * sizeof(double));
		idx[j] = j;
	}
	/* identical rows are neighbours now: one entry with their counts summed */
	for (uint64_t i = 0; i < n; i++)
	{
		if (out > 0 && entry_cmp(s, s->prio[i], row_at(s, i), s->prio[out - 1], row_at(s, out - 1)) == 0)
		{
			s->mult[out - 1] += s->mult[i];
			continue;
		}
		if (out == s->capacity)
			break;
		if (out != i)
			move_entry(s, out, i);
		out++;
	}
	/* an entry cut here never comes back: every later bound is below it */
	s->count = out;
	s->compacted = out;
	if (out == s->capacity)
		s->full = 1;
}

void
bk_merge(bk_sample *a, const bk_sample *b, void *scratch)
{
	for (uint64_t i = 0; i < b->count; i++)
	{
		const double *row = b->rows + i * b->n_features;

		if (bk_add(a, row, b->mult[i]) == BK_NO_ROOM)
		{
			bk_compact(a, scratch);
			(void) bk_add(a, row, b->mult[i]);
		}
	}
	/* the rows b saw and left out count as seen */
	a->seen += b->seen - bk_kept_rows(b);
}

int
bk_same_params(const bk_sample *a, const bk_sample *b)
{
	return a->seed == b->seed && a->n_features == b->n_features && a->n_trees == b->n_trees &&
		a->sample_size == b->sample_size && a->extension_level == b->extension_level;
}

uint64_t
bk_kept_rows(const bk_sample *s)
{
	uint64_t	sum = 0;

	for (uint64_t i = 0; i < s->count; i++)
		sum += s->mult[i];
	return sum;
}

void
bk_build_setup(const bk_sample *s, ifo_params *p, rng_state *rng)
{
	p->n_trees = s->n_trees;
	p->sample_size = s->sample_size;
	p->extension_level = s->extension_level;
	rng_seed(rng, (uint64_t) s->seed);
}

size_t
bk_encoded_size(const bk_sample *s)
{
	return BK_HEADER_BYTES + (size_t) s->count * (sizeof(uint64_t) + s->n_features * sizeof(double));
}

void
bk_encode(const bk_sample *s, uint8_t *buf)
{
	uint8_t    *p = buf + BK_HEADER_BYTES;

	memcpy(buf, BK_MAGIC, 4);
	le_put_u16(buf + 4, BK_VERSION);
	le_put_u16(buf + 6, 0);
	le_put_u32(buf + 8, s->n_features);
	le_put_u32(buf + 12, s->n_trees);
	le_put_u32(buf + 16, s->sample_size);
	le_put_u32(buf + 20, s->extension_level);
	le_put_u64(buf + 24, (uint64_t) s->seed);
	le_put_u64(buf + 32, s->seen);
	le_put_u32(buf + 40, (uint32_t) s->count);
	le_put_u32(buf + 44, 0);
	for (uint64_t i = 0; i < s->count; i++)
	{
		le_put_u64(p, s->mult[i]);
		p += 8;
		for (uint32_t j = 0; j < s->n_features; j++, p += 8)
			le_put_f64(p, row_at(s, i)[j]);
	}
}

int
bk_decode_header(const uint8_t *buf, size_t len, bk_sample *s, char *err, size_t errlen)
{
	uint32_t	nf,
				nt,
				ss,
				ext;
	uint64_t	count;

	if (len < BK_HEADER_BYTES)
		return decode_fail(err, errlen, "sample is %zu bytes, shorter than its %d-byte header", len, BK_HEADER_BYTES);
	if (memcmp(buf, BK_MAGIC, 4) != 0)
		return decode_fail(err, errlen, "bad magic: not a calo_recon isolation forest sample");
	if (le_get_u16(buf + 4) != BK_VERSION)
		return decode_fail(err, errlen, "unsupported sample format version %u (this build reads %d)",
						   le_get_u16(buf + 4), BK_VERSION);
	if (le_get_u16(buf + 6) != 0 || le_get_u32(buf + 44) != 0)
		return decode_fail(err, errlen, "unknown flags or nonzero reserved field");
	nf = le_get_u32(buf + 8);
	nt = le_get_u32(buf + 12);
	ss = le_get_u32(buf + 16);
	ext = le_get_u32(buf + 20);
	if (nf < 1 || nf > IFO_MAX_FEATURES)
		return decode_fail(err, errlen, "n_features %u is outside 1..%d", nf, IFO_MAX_FEATURES);
	if (nt < 1 || nt > IFO_MAX_TREES)
		return decode_fail(err, errlen, "n_trees %u is outside 1..%d", nt, IFO_MAX_TREES);
	if (ss < IFO_MIN_FIT_SAMPLE_SIZE || ss > IFO_MAX_FIT_SAMPLE_SIZE)
		return decode_fail(err, errlen, "sample_size %u is outside %d..%d", ss,
						   IFO_MIN_FIT_SAMPLE_SIZE, IFO_MAX_FIT_SAMPLE_SIZE);
	if (ext > nf - 1)
		return decode_fail(err, errlen, "extension_level %u is outside 0..%u", ext, nf - 1);
	bk_init(s, (int64_t) le_get_u64(buf + 24), nf, nt, ss, ext);
	s->seen = le_get_u64(buf + 32);
	count = le_get_u32(buf + 40);
	if (count > s->capacity)
		return decode_fail(err, errlen, "%llu entries is more than n_trees * sample_size (%llu)",
						   (unsigned long long) count, (unsigned long long) s->capacity);
	if (count > s->seen)
		return decode_fail(err, errlen, "%llu entries is more than the %llu rows seen",
						   (unsigned long long) count, (unsigned long long) s->seen);
	if (len != BK_HEADER_BYTES + count * (sizeof(uint64_t) + nf * sizeof(double)))
		return decode_fail(err, errlen, "length %zu does not match %llu entries of %u features", len,
						   (unsigned long long) count, nf);
	s->count = count;
	return 0;
}

int
bk_decode(const uint8_t *buf, size_t len, bk_sample *s, char *err, size_t errlen)
{
	const uint8_t *p = buf + BK_HEADER_BYTES;
	uint64_t	sum = 0;

	if (bk_decode_header(buf, len, s, err, errlen) != 0)
		return -1;
	for (uint64_t i = 0; i < s->count; i++)
	{
		double	   *row = s->rows + i * s->n_features;
		uint64_t	m = le_get_u64(p);

		p += 8;
		if (m < 1)
			return decode_fail(err, errlen, "entry %llu has a count of 0", (unsigned long long) i + 1);
		if (m > s->seen - sum)
			return decode_fail(err, errlen, "the entries' counts add up to more than the %llu rows seen",
							   (unsigned long long) s->seen);
		sum += m;
		for (uint32_t j = 0; j < s->n_features; j++, p += 8)
		{
			row[j] = le_get_f64(p);
			if (!isfinite(row[j]))
				return decode_fail(err, errlen, "entry %llu: feature %u is not finite",
								   (unsigned long long) i + 1, j + 1);
		}
		s->mult[i] = m;
		s->prio[i] = bk_priority(s->seed, row, s->n_features);
		if (i > 0 && entry_cmp(s, s->prio[i - 1], row - s->n_features, s->prio[i], row) >= 0)
			return decode_fail(err, errlen, "entry %llu is out of order or repeated (not a sample of this seed)",
							   (unsigned long long) i + 1);
	}
	/* rows were left out only when k rows were kept */
	if (sum != s->seen && s->count < s->capacity)
		return decode_fail(err, errlen, "the entries' counts add up to %llu, not the %llu rows seen, with room left",
						   (unsigned long long) sum, (unsigned long long) s->seen);
	s->compacted = s->count;
	s->full = s->count == s->capacity;
	return 0;
}
