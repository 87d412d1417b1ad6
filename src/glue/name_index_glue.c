/*
 * name_index_glue.c: the growth of the name index (name_index_glue.h; the
 * lookups are inline there).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "name_index_glue.h"

void
name_index_init(NameIndex *ix, uint32 expected)
{
	ix->nslots = 1024;
	while (ix->nslots < expected * 2)
		ix->nslots <<= 1;
	ix->slots = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint64) * ix->nslots);
	memset(ix->slots, 0, sizeof(uint64) * ix->nslots);
	ix->cap = 1024;
	ix->names = palloc(sizeof(IndexedName) * ix->cap);
	ix->n = 0;
}

void
name_index_grow(NameIndex *ix)
{
	uint32		nslots = ix->nslots * 2;
	uint64	   *slots = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint64) * nslots);

	memset(slots, 0, sizeof(uint64) * nslots);
	for (uint32 i = 0; i < ix->nslots; i++)
	{
		uint64		e = ix->slots[i];
		uint32		s;

		if (e == 0)
			continue;
		s = (uint32) (e >> 32) & (nslots - 1);
		while (slots[s] != 0)
			s = (s + 1) & (nslots - 1);
		slots[s] = e;
	}
	pfree(ix->slots);
	ix->slots = slots;
	ix->nslots = nslots;
}
