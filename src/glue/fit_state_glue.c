/*
 * fit_state_glue.c: the fit aggregates' partial states as expanded objects;
 * see fit_state_glue.h.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/memutils.h"

#include "fit_state_glue.h"

ExpandedObjectHeader *
fit_state_object(Datum d, const fit_state_kind *kind)
{
	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)) && DatumGetEOHP(d)->eoh_methods == kind->methods)
		return DatumGetEOHP(d);
	return NULL;
}

ExpandedObjectHeader *
fit_state_of_datum(Datum d, MemoryContext parent, const fit_state_kind *kind)
{
	ExpandedObjectHeader *eoh = fit_state_object(d, kind);
	struct varlena *v;

	if (eoh != NULL)
		return eoh;
	v = PG_DETOAST_DATUM(d);
	return kind->decode(parent, (const uint8 *) VARDATA(v), VARSIZE(v) - VARHDRSZ, ERRCODE_DATA_CORRUPTED);
}

ExpandedObjectHeader *
fit_state_owned(Datum d, MemoryContext aggcontext, const fit_state_kind *kind)
{
	ExpandedObjectHeader *eoh = fit_state_object(d, kind);

	if (eoh == NULL)
		return fit_state_of_datum(d, aggcontext, kind);
	if (DatumIsReadWriteExpandedObject(d, false, -1) && MemoryContextGetParent(eoh->eoh_context) == aggcontext)
		return eoh;
	return kind->copy(aggcontext, eoh);
}

Datum
fit_state_validated_value(const uint8 *buf, size_t len, int sqlstate, const fit_state_kind *kind)
{
	ExpandedObjectHeader *eoh = kind->decode(CurrentMemoryContext, buf, len, sqlstate);
	bytea	   *v = palloc_extended(VARHDRSZ + len, MCXT_ALLOC_HUGE);

	DeleteExpandedObject(EOHPGetRWDatum(eoh));
	SET_VARSIZE(v, VARHDRSZ + len);
	memcpy(VARDATA(v), buf, len);
	return PointerGetDatum(v);
}
