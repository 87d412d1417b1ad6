/*
 * explanation.c: the cause of a flagged transaction in plain words. See explanation.h.
 */
#include "explanation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"

/* EXPL_MONEY_LEN holds the longest money text a double can give */
_Static_assert(EXPL_MONEY_LEN >= 1 + 309 + 1 + BAL_SCALE_DIGITS + 1, "EXPL_MONEY_LEN too short");

const char *const expl_cause_names[EXPL_N_CAUSES] = {
	"spend", "top-up", "vat", "hour", "repeat", "other"
};

static expl_cause
expl_cause_of(int feature, int direction)
{
	switch ((enum feat_index) feature)
	{
		case FEAT_AMOUNT_VS_USUAL:
		case FEAT_AMOUNT_SCALED:
			return direction < 0 ? EXPL_SPEND : (direction > 0 ? EXPL_TOPUP : EXPL_OTHER);
		case FEAT_VAT_RATE:
		case FEAT_VAT_RATE_VS_USUAL:
			return EXPL_VAT;
		case FEAT_HOURS_FROM_USUAL:
			return EXPL_HOUR;
		case FEAT_LOG_SECONDS_SINCE_PREVIOUS:
		case FEAT_REPEATS_PREVIOUS:
			return EXPL_REPEAT;
		case FEAT_COUNT:
			break;
	}
	return EXPL_OTHER;
}

expl_cause
expl_top_cause(int direction, const double *bits)
{
	double		weight[EXPL_N_CAUSES] = {0};
	int			best = 0;

	for (int j = 0; j < FEAT_COUNT; j++)
		weight[expl_cause_of(j, direction)] += bits[j];
	for (int c = 1; c < EXPL_N_CAUSES; c++)
		if (weight[c] > weight[best])
			best = c;
	return (expl_cause) best;
}

/* "12 s", "25 min", "3.5 h", "4.0 days" */
static void
expl_duration(double seconds, char *buf, size_t len)
{
	if (seconds < 120)
		snprintf(buf, len, "%.0f s", seconds);
	else if (seconds < 7200)
		snprintf(buf, len, "%.0f min", seconds / 60);
	else if (seconds < 172800)
		snprintf(buf, len, "%.1f h", seconds / 3600);
	else
		snprintf(buf, len, "%.1f days", seconds / 86400);
}

/* percent with no decimals from 10 % up, one below */
static void
expl_percent(double rate, char *buf, size_t len)
{
	double		pct = rate * 100;

	snprintf(buf, len, fabs(pct) >= 10 || pct == 0 ? "%.0f %%" : "%.1f %%", pct);
}

/*
 * The money text of value, whole: in the caller's EXPL_MONEY_LEN buffer, or
 * in one allocated when the format needs more (*spill, which the caller
 * frees; NULL when none was needed or the allocation failed, then the
 * text is the buffer's, cut, rather than none at all).
 */
static const char *
expl_money(const expl_row *row, double value, char *money, char **spill)
{
	int			need = row->format_money(value, row->minor_unit, money, EXPL_MONEY_LEN, row->format_arg);

	*spill = NULL;
	if (need >= EXPL_MONEY_LEN)
	{
		*spill = malloc((size_t) need + 1);
		if (*spill == NULL)
			return money;
		row->format_money(value, row->minor_unit, *spill, (size_t) need + 1, row->format_arg);
		return *spill;
	}
	return money;
}

/* "14.2", "999999.9", "1.0e6", "1.0e79" (EXPL_RATIO_COMPACT); "more than 1.8e308" past a double */
void
expl_ratio(double ratio, char *buf, size_t len)
{
	char		text[32];
	char	   *e;
	int			exponent;

	if (isnan(ratio))
	{
		snprintf(buf, len, "an unknown multiple");
		return;
	}
	if (ratio < EXPL_RATIO_COMPACT - 0.05)
	{
		snprintf(buf, len, "%.1f", ratio);
		return;
	}
	if (isinf(ratio))
	{
		snprintf(buf, len, "more than 1.8e308");
		return;
	}
	/* "%.1e" rounds the mantissa (9.96e6 is "1.0e+07"); the exponent without "+" or leading zeros */
	snprintf(text, sizeof(text), "%.1e", ratio);
	e = strchr(text, 'e');
	exponent = e ? atoi(e + 1) : 0;
	if (e)
		*e = '\0';
	snprintf(buf, len, "%se%d", text, exponent);
}

static int
expl_against_usual(const expl_row *row, const char *what, const char *usual_what,
				   char *buf, size_t len)
{
	char		money[EXPL_MONEY_LEN];
	char	   *spill;
	char		ratio[40];
	double		magnitude = fabs(row->amount);
	double		usual = row->context[FEAT_CONTEXT_USUAL_AMOUNT];
	const char *sep = row->currency[0] ? " " : "";
	int			n;

	if (!(usual > 0))
	{
		n = snprintf(buf, len, "%s of %s%s%s with fewer than %d earlier %ss of this user to compare",
					 what, expl_money(row, magnitude, money, &spill), sep, row->currency,
					 FEAT_MIN_HISTORY, usual_what);
		free(spill);
		return n;
	}
	expl_ratio(magnitude / usual, ratio, sizeof(ratio));
	n = snprintf(buf, len, "%s %s× this user's usual %s of %s%s%s", what, ratio,
				 usual_what, expl_money(row, usual, money, &spill), sep, row->currency);
	free(spill);
	return n;
}

int
expl_sentence(expl_cause cause, const expl_row *row, char *buf, size_t len)
{
	const double *f = row->features;
	const double *c = row->context;
	char		money[EXPL_MONEY_LEN];
	char	   *spill;
	int			n;
	char		a[32],
				b[32];
	const char *sep = row->currency[0] ? " " : "";
	const char *kind = row->direction > 0 ? "top-up" : (row->direction < 0 ? "debit" : "transaction");

	switch (cause)
	{
		case EXPL_SPEND:
			return expl_against_usual(row, "amount", "debit", buf, len);
		case EXPL_TOPUP:
			return expl_against_usual(row, "top-up", "top-up", buf, len);
		case EXPL_VAT:
			expl_percent(f[FEAT_VAT_RATE], a, sizeof(a));
			if (isnan(c[FEAT_CONTEXT_USUAL_VAT_RATE]))
				return snprintf(buf, len, "VAT %s of the amount", a);
			expl_percent(c[FEAT_CONTEXT_USUAL_VAT_RATE], b, sizeof(b));
			return snprintf(buf, len, "VAT %s of the amount; this user's usual rate is %s", a, b);
		case EXPL_HOUR:
			if (row->hour < 0)
				return snprintf(buf, len, "%s at an infinite time", kind);
			if (!(c[FEAT_CONTEXT_HOURS_AWAY] > 0))
				return snprintf(buf, len, "%s at %02d:00 UTC", kind, row->hour);
			return snprintf(buf, len, "%s at %02d:00 UTC, %.0f h from any hour this user used before",
							kind, row->hour, c[FEAT_CONTEXT_HOURS_AWAY]);
		case EXPL_REPEAT:
			if (c[FEAT_CONTEXT_SECONDS] < 0)
				return snprintf(buf, len, "first %s of this user", kind);
			expl_duration(c[FEAT_CONTEXT_SECONDS], a, sizeof(a));
			if (f[FEAT_REPEATS_PREVIOUS] == 0)
				return snprintf(buf, len, "%s %s after this user's previous transaction", kind, a);
			n = snprintf(buf, len, "second %s of %s%s%s %s after an identical one",
						 kind, expl_money(row, fabs(row->amount), money, &spill), sep, row->currency, a);
			free(spill);
			return n;
		case EXPL_OTHER:
		case EXPL_N_CAUSES:
			break;
	}
	n = snprintf(buf, len, "%s of %s%s%s, unlike this user's others",
				 kind, expl_money(row, row->amount, money, &spill), sep, row->currency);
	free(spill);
	return n;
}
