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

/* The money of the sentence as text, rounded to the currency's minor unit. */
typedef void (*expl_money_format) (double value, int minor_unit, char *buf, size_t len, void *arg);

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

/* The cause whose features carry the most bits (bits: FEAT_COUNT values). */
expl_cause	expl_top_cause(int direction, const double *bits);

/*
 * The sentence naming cause with the row's numbers, e.g. "amount 14.2×
 * this user's usual debit of 5.400 BHD", "VAT 52 % of the amount; this
 * user's usual rate is 15 %", "second debit of 61.50 SAR 12 s after an
 * identical one". Writes at most len bytes (NUL included) and returns the
 * length snprintf would.
 */
int			expl_sentence(expl_cause cause, const expl_row *row, char *buf, size_t len);

#endif
