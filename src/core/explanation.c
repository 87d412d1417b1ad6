/*
 * explanation.c: the cause of a flagged transaction in plain words. See explanation.h.
 */
#include "explanation.h"

#include <math.h>
#include <stdio.h>

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

static int
expl_against_usual(const expl_row *row, const char *what, const char *usual_what,
				   char *buf, size_t len)
{
	char		money[64];
	double		magnitude = fabs(row->amount);
	double		usual = row->context[FEAT_CONTEXT_USUAL_AMOUNT];
	const char *sep = row->currency[0] ? " " : "";

	if (!(usual > 0))
	{
		row->format_money(magnitude, row->minor_unit, money, sizeof(money), row->format_arg);
		return snprintf(buf, len, "%s of %s%s%s with fewer than %d earlier %ss of this user to compare",
						what, money, sep, row->currency, FEAT_MIN_HISTORY, usual_what);
	}
	row->format_money(usual, row->minor_unit, money, sizeof(money), row->format_arg);
	return snprintf(buf, len, "%s %.1f× this user's usual %s of %s%s%s", what, magnitude / usual,
					usual_what, money, sep, row->currency);
}

int
expl_sentence(expl_cause cause, const expl_row *row, char *buf, size_t len)
{
	const double *f = row->features;
	const double *c = row->context;
	char		money[64];
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
			row->format_money(fabs(row->amount), row->minor_unit, money, sizeof(money), row->format_arg);
			return snprintf(buf, len, "second %s of %s%s%s %s after an identical one",
							kind, money, sep, row->currency, a);
		case EXPL_OTHER:
		case EXPL_N_CAUSES:
			break;
	}
	row->format_money(row->amount, row->minor_unit, money, sizeof(money), row->format_arg);
	return snprintf(buf, len, "%s of %s%s%s, unlike this user's others", kind, money, sep, row->currency);
}
