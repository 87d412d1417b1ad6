/*
 * forest_cache_glue.c: the backend's decoded forests, for the scoring path.
 *
 * Every statement that scores (the alert trigger of a one-row INSERT,
 * score_transactions(), refresh(), a worker's score_placement()) reads the
 * active models, and decoding a forest of 4,096-row samples costs more than
 * the rest of a one-row insert (about 8 ms of 10).  A forest decoded once is
 * kept for the backend's life and served again for the same stored bytes.
 *
 * Keyed by the bytes themselves, not by a model id or a row version: a
 * model retrained, edited, restored or rolled back can never be served a
 * stale forest, whatever happened to its row.  Comparing a megabyte costs
 * microseconds; decoding it, milliseconds.
 *
 * A caller may hold a served forest until its transaction ends, so an entry
 * used in the current transaction is never evicted; when every entry is,
 * the forest is decoded into the caller's memory context, uncached.
 */
#include "postgres.h"

#include "fmgr.h"
#include "storage/proc.h"
#include "utils/memutils.h"

#include "iforest.h"
#include "model_glue.h"

/* More than the currency scopes a database usually scores with at once. */
#define FOREST_CACHE_ENTRIES 8

typedef struct CachedForest
{
	MemoryContext context;		/* holds bytes and forest; NULL: an empty slot */
	uint8	   *bytes;			/* the stored form */
	Size		len;
	ifo_forest *forest;
	LocalTransactionId used_in; /* the last transaction served it */
	uint64		last_use;		/* forest_cache_clock then */
} CachedForest;

static CachedForest forest_cache[FOREST_CACHE_ENTRIES];
static uint64 forest_cache_clock;

/* The slot to fill: an empty one, else the least recently used one no
 * caller of this transaction holds; -1 when there is none. */
static int
forest_cache_victim(void)
{
	int			victim = -1;

	for (int i = 0; i < FOREST_CACHE_ENTRIES; i++)
	{
		CachedForest *e = &forest_cache[i];

		if (e->context == NULL)
			return i;
		if (e->used_in == MyProc->lxid)
			continue;
		if (victim < 0 || e->last_use < forest_cache[victim].last_use)
			victim = i;
	}
	return victim;
}

ifo_forest *
mglue_forest_decode(Datum stored)
{
	bytea	   *v = (bytea *) PG_DETOAST_DATUM(stored);
	const uint8 *buf = (const uint8 *) VARDATA(v);
	Size		len = VARSIZE(v) - VARHDRSZ;
	CachedForest *e;
	MemoryContext context;
	MemoryContext old;
	ifo_forest *forest;
	uint8	   *bytes;
	int			slot;

	for (int i = 0; i < FOREST_CACHE_ENTRIES; i++)
	{
		e = &forest_cache[i];
		if (e->context != NULL && e->len == len && memcmp(e->bytes, buf, len) == 0)
		{
			e->used_in = MyProc->lxid;
			e->last_use = ++forest_cache_clock;
			if ((Pointer) v != DatumGetPointer(stored))
				pfree(v);
			return e->forest;
		}
	}

	slot = forest_cache_victim();
	if (slot < 0)
		return mglue_forest_decode_bytes(buf, len);

	e = &forest_cache[slot];
	if (e->context != NULL)
	{
		MemoryContextDelete(e->context);
		e->context = NULL;
	}
	/* decoded before the slot is filled: an invalid model leaves it empty */
	context = AllocSetContextCreate(TopMemoryContext, "calo_recon decoded forest",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(context);
	PG_TRY();
	{
		forest = mglue_forest_decode_bytes(buf, len);
		bytes = MemoryContextAllocHuge(context, len);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(context);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	memcpy(bytes, buf, len);
	e->context = context;
	e->bytes = bytes;
	e->len = len;
	e->forest = forest;
	e->used_in = MyProc->lxid;
	e->last_use = ++forest_cache_clock;
	if ((Pointer) v != DatumGetPointer(stored))
		pfree(v);
	return forest;
}
