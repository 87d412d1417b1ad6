/*
 * recon_glue.h: the numeric <-> exact decimal conversions of the
 * reconciliation, shared with the anomaly features' glue and the report
 * totals; the reading of text columns and the growth of the column arrays,
 * shared with the features' read; the checked column lookup shared with the
 * score writer; the report totals computed now by the reconciliation's scan
 * and walk.
 */
#ifndef CALO_RECON_GLUE_H
#define CALO_RECON_GLUE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "balance.h"
#include "report_totals_glue.h"

/* A numeric Datum as the reconciliation's exact decimal: BAL_OK, BAL_SPECIAL
 * (NaN, +-Infinity) or the reason it is out of range. */
bal_status	recon_decode_numeric(Datum value, bal_dec *out);

/* An exact decimal as a numeric Datum. */
Datum		recon_dec_to_numeric(bal_dec value);

/* The bytes of a text Datum, read in place unless it is toasted. */
static inline const char *
recon_text_bytes(Datum d, int *len)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

	*len = (int) VARSIZE_ANY_EXHDR(v);
	return VARDATA_ANY(v);
}

/* An array of newcap elements of elem bytes with ptr's (NULL: none) first ones, huge allowed. */
static inline void *
recon_grow(void *ptr, Size elem, int64 newcap)
{
	if (ptr == NULL)
		return MemoryContextAllocHuge(CurrentMemoryContext, elem * newcap);
	return repalloc_huge(ptr, elem * newcap);
}

/* The attribute number of a column of one of the extension's tables; an
 * internal error if it is missing (the install script defines them). */
AttrNumber	recon_attnum(Relation rel, const char *name);

/*
 * The report totals of the users (all when all_users) logged in [from, to)
 * (either end open when not has_*), computed now from their transactions by
 * reconcile()'s scan and walk, nothing stored; names, what their rows name.
 * SPI connected; allocated in the current memory context.
 */
ReportTotals *recon_live_totals(bool all_users, Datum user_ids, bool has_from, TimestampTz from,
								bool has_to, TimestampTz to, ReportTotalsNames *names);

#endif
