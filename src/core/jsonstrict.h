/*
 * jsonstrict.h: strict JSON inside log messages (metric lines, the data of
 * "Invoke Error" and similar messages, JSON inside a metadata string),
 * validated and re-emitted in canonical form: escapes canonical, numbers as
 * written, invalid UTF-8 as U+FFFD (plain C core).  Refused: \u0000 and lone
 * surrogate escapes (jsonb cannot store them), duplicate member names,
 * nesting beyond LP_MAX_DEPTH, numbers beyond the limits of lpnum.h.
 */
#ifndef CALO_JSONSTRICT_H
#define CALO_JSONSTRICT_H

#include "logparse.h"
#include "lpsyntax.h"

/*
 * Appends the canonical form of the JSON text s[0..n) (one value, whitespace
 * around allowed) to out.  On failure out is left as it was and *err (if not
 * NULL) says why; *oom is set when memory ran out.
 */
bool		jsonstrict_embed(lp_buf *out, const char *s, size_t n, lpsyntax_error *err, bool *oom);

#endif							/* CALO_JSONSTRICT_H */
