/*
 * fit_state_glue.h: what the fit aggregates' partial states (scaler_state,
 * iforest_sample) do alike as expanded objects: find the object a datum
 * holds, decode a flat value, take ownership of the transition value, and
 * validate bytes that enter as the type's text or binary form.
 *
 * A kind names its expanded-object methods, how a flat value is decoded
 * (validated; ereport with the given SQLSTATE otherwise) and how an object is
 * copied under another memory context.
 */
#ifndef CALO_FIT_STATE_GLUE_H
#define CALO_FIT_STATE_GLUE_H

#include "postgres.h"

#include "utils/expandeddatum.h"

typedef struct fit_state_kind
{
	const ExpandedObjectMethods *methods;
	ExpandedObjectHeader *(*decode) (MemoryContext parent, const uint8 *buf, size_t len, int sqlstate);
	ExpandedObjectHeader *(*copy) (MemoryContext parent, ExpandedObjectHeader *from);
} fit_state_kind;

/* the object d holds when it is one of this kind's, else NULL */
ExpandedObjectHeader *fit_state_object(Datum d, const fit_state_kind *kind);

/* the object d holds, or a new one decoded under parent from its flat value */
ExpandedObjectHeader *fit_state_of_datum(Datum d, MemoryContext parent, const fit_state_kind *kind);

/* the transition value to update in place: ours when the aggregate owns it, a copy otherwise */
ExpandedObjectHeader *fit_state_owned(Datum d, MemoryContext aggcontext, const fit_state_kind *kind);

/* bytes that entered as the type's text or binary form, validated, as a flat value */
Datum		fit_state_validated_value(const uint8 *buf, size_t len, int sqlstate, const fit_state_kind *kind);

#endif							/* CALO_FIT_STATE_GLUE_H */
