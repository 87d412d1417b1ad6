/*
 * lpnum.h: numbers and timestamps of the log parser (plain C core).  A
 * number keeps its source spelling (no money value ever passes through a
 * double); the limits are logparse.h's LP_MAX_NUMBER_LEN, LP_MAX_EXPONENT
 * and LP_MONEY_LIMIT_POWER.
 */
#ifndef CALO_LPNUM_H
#define CALO_LPNUM_H

#include "logparse.h"

typedef enum lpnum_status
{
	LPNUM_OK,
	LPNUM_BAD,					/* not a finite decimal number */
	LPNUM_TOO_BIG				/* well spelled, beyond LP_MAX_NUMBER_LEN or LP_MAX_EXPONENT */
} lpnum_status;

/*
 * Checks the number token s[0..n) and, when b is not NULL and it is
 * LPNUM_OK, appends its JSON spelling.  strict_json refuses the two
 * normalised JavaScript spellings (leading '+', missing integer part).
 */
lpnum_status lpnum_check(lp_buf *b, const char *s, size_t n, bool strict_json);

/* lpnum_check() == LPNUM_OK, appending the number to b (if not NULL) */
static inline bool
lpnum_put(lp_buf *b, const char *s, size_t n, bool strict_json)
{
	return lpnum_check(b, s, n, strict_json) == LPNUM_OK;
}

/* s[0..n) starts with the shape YYYY-MM-DDTHH:MM:SS.sssZ (any digits) */
static inline bool
lpnum_timestamp_shape(const char *s, size_t n)
{
#define TS_DIGIT(i) ((unsigned) (s[i] - '0') <= 9)
	/* the separators first: they reject most lines that are not timestamps at once */
	if (n < 24 || !TS_DIGIT(0) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[23] != 'Z')
		return false;
	return TS_DIGIT(1) & TS_DIGIT(2) & TS_DIGIT(3) & TS_DIGIT(5) & TS_DIGIT(6) & TS_DIGIT(8) &
		TS_DIGIT(9) & TS_DIGIT(11) & TS_DIGIT(12) & TS_DIGIT(14) & TS_DIGIT(15) & TS_DIGIT(17) &
		TS_DIGIT(18) & TS_DIGIT(20) & TS_DIGIT(21) & TS_DIGIT(22);
#undef TS_DIGIT
}

#endif							/* CALO_LPNUM_H */
