/*
 * explanation.h: the cause of a flagged transaction in plain words, from
 * its attribution (attribution.h) over the anomaly features
 * (anomaly_features.h). Plain C, no PostgreSQL headers.
 *
 * The features are grouped into the causes a finance team names; a cause's
 * weight is the sum of its features' bits, and the heaviest cause is the
 * one the sentence names:
 *   spend:     amount_vs_usual of a debit
 *   top-up:    amount_vs_usual of a credit
 *   VAT:       vat_rate, vat_rate_vs_usual
 *   hour:      hours_from_usual
 *   repeat:    repeats_previous, log_seconds_since_previous
 *   other:     amount_vs_usual of a row that is neither (a legacy row whose
 *              balance did not move)
 * (ties: the first in this order).
 */
#ifndef CALO_EXPLANATION_H
#define CALO_EXPLANATION_H

#include <stddef.h>

#include "anomaly_features.h"

typedef enum expl_cause
{
	EXPL_SPEND = 0,
	EXPL_TOPUP,
	EXPL_VAT,
	EXPL_HOUR,
	EXPL_REPEAT,
	EXPL_OTHER,
	EXPL_N_CAUSES
} expl_cause;

/* "spend", "top-up", "vat", "hour", "repeat", "other" */
extern const char *const expl_cause_names[EXPL_N_CAUSES];

/*
 * The money of the sentence as text, rounded to the currency's minor unit:
 * writes at most len bytes (NUL included) and returns the length the whole
 * text has, as snprintf does.  A longer text is asked for again with room
 * for it, so no amount is ever cut.
 */
typedef int (*expl_money_format) (double value, int minor_unit, char *buf, size_t len, void *arg);

/*
 * Room for any money text of a finite double, NUL included: a sign, the 309
 * integer digits of DBL_MAX, a point and at most BAL_SCALE_DIGITS (18)
 * decimals.  A format_money writing more is called again with more room.
 */
#define EXPL_MONEY_LEN 330

/*
 * A multiple ("14.2×") is written with one decimal below EXPL_RATIO_COMPACT
 * and as mantissa and power of ten from it on ("1.0e79×"): a person reads
 * no further than millions, and a double's digits beyond 17 are noise.
 */
#define EXPL_RATIO_COMPACT 1e6

typedef struct expl_row
{
	const double *features;		/* FEAT_COUNT, as feat_user gave them */
	const double *context;		/* FEAT_CONTEXT_COUNT, as feat_user gave them */
	double		amount;			/* the row's amount (feat_row.amount) */
	int			direction;		/* feat_direction() */
	int			minor_unit;
	const char *currency;		/* code, "" when unknown */
	int			hour;			/* UTC hour, -1 for an infinite time */
	expl_money_format format_money;
	void	   *format_arg;
} expl_row;

/* A multiple as the sentences write it, before its "×" (EXPL_RATIO_COMPACT). */
void		expl_ratio(double ratio, char *buf, size_t len);

/* The cause whose features carry the most bits (bits: FEAT_COUNT values). */
expl_cause	expl_top_cause(int direction, const double *bits);

/*
 * The sentence naming cause with the row's numbers, e.g. "amount 14.2×
 * this user's usual debit of 5.400 BHD", "VAT 52 % of the amount; this
 * user's usual rate is 15 %", "second debit of 61.50 SAR 12 s after an
 * identical one". Writes at most len bytes (NUL included) and returns the
 * length snprintf would: a caller whose buffer was too short calls again
 * with that length plus one.
 */
int			expl_sentence(expl_cause cause, const expl_row *row, char *buf, size_t len);

#endif
