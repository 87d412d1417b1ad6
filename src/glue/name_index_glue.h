/*
 * name_index_glue.h: byte strings (user_ids, txn_ids) numbered densely in
 * the order first seen, through an open-addressing hash whose slots hold
 * the hash beside the number, so a probe touches one cache line unless it
 * matches.  The reconciliation's users and wanted txn_ids (recon_glue.c),
 * the anomaly features' users (anomaly_features_glue.c) and the txn_ids of
 * a feature book's rows (score_glue.c, borrowed from the book's arena).  The
 * lookups are inline: they run once per row read.  Memory from the current
 * context.
 */
#ifndef CALO_NAME_INDEX_GLUE_H
#define CALO_NAME_INDEX_GLUE_H

#include "postgres.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

typedef struct IndexedName
{
	const char *name;			/* a NUL-terminated copy, or borrowed */
	int			len;
} IndexedName;

typedef struct NameIndex
{
	uint64	   *slots;			/* 0 = empty, else hash << 32 | (number + 1) */
	uint32		nslots;			/* power of two */
	IndexedName *names;			/* by number */
	uint32		n;
	uint32		cap;
} NameIndex;

/* An empty index with room for about expected names before it grows. */
void		name_index_init(NameIndex *ix, uint32 expected);

/* Twice the slots (the hashes kept in them are placed again). */
void		name_index_grow(NameIndex *ix);

/* The hash the index keeps of a name. */
static inline uint32
name_index_hash(const char *name, int len)
{
	return hash_bytes((const unsigned char *) name, len);
}

/* The number of a name whose hash is h, or -1; *slot is where it is or would go. */
static inline int64
name_index_probe(const NameIndex *ix, const char *name, int len, uint32 h, uint32 *slot)
{
	uint32		s = h & (ix->nslots - 1);

	for (;;)
	{
		uint64		e = ix->slots[s];

		if (e == 0)
			break;
		if ((uint32) (e >> 32) == h)
		{
			uint32		idx = (uint32) e - 1;

			if (ix->names[idx].len == len && memcmp(ix->names[idx].name, name, len) == 0)
			{
				*slot = s;
				return idx;
			}
		}
		s = (s + 1) & (ix->nslots - 1);
	}
	*slot = s;
	return -1;
}

static inline uint32
name_index_number(NameIndex *ix, const char *name, int len, uint32 h, bool borrow)
{
	uint32		s;
	int64		found = name_index_probe(ix, name, len, h, &s);

	if (found >= 0)
		return (uint32) found;
	if (ix->n == ix->cap)
	{
		ix->cap *= 2;
		ix->names = repalloc_huge(ix->names, sizeof(IndexedName) * ix->cap);
	}
	ix->names[ix->n].name = borrow ? name : pnstrdup(name, len);
	ix->names[ix->n].len = len;
	ix->slots[s] = ((uint64) h << 32) | (uint64) (ix->n + 1);
	ix->n++;
	if (ix->n * 2 > ix->nslots)
		name_index_grow(ix);
	return ix->n - 1;
}

/* The number of a name whose hash is h, numbered now (with a copy) if it is new. */
static inline uint32
name_index_add(NameIndex *ix, const char *name, int len, uint32 h)
{
	return name_index_number(ix, name, len, h, false);
}

/*
 * The same without a copy: the caller keeps the bytes alive and unchanged
 * as long as the index, and names[].name is not NUL-terminated.
 */
static inline uint32
name_index_add_borrowed(NameIndex *ix, const char *name, int len, uint32 h)
{
	return name_index_number(ix, name, len, h, true);
}

/* The number of a name, or -1 (never numbers one). */
static inline int64
name_index_find(const NameIndex *ix, const char *name, int len)
{
	uint32		s;

	return name_index_probe(ix, name, len, name_index_hash(name, len), &s);
}

#endif
