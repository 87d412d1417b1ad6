/*
 * recon_glue.h: the numeric -> exact decimal conversion of the
 * reconciliation, shared with the anomaly features' glue, and the checked
 * column lookup shared with the score writer.
 */
#ifndef CALO_RECON_GLUE_H
#define CALO_RECON_GLUE_H

#include "postgres.h"

#include "utils/rel.h"

#include "balance.h"

/* A numeric Datum as the reconciliation's exact decimal: BAL_OK, BAL_SPECIAL
 * (NaN, +-Infinity) or the reason it is out of range. */
bal_status	recon_decode_numeric(Datum value, bal_dec *out);

/* The attribute number of a column of one of the extension's tables; an
 * internal error if it is missing (the install script defines them). */
AttrNumber	recon_attnum(Relation rel, const char *name);

#endif
