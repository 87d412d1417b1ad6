/*
 * report_glue.c: the figures shared by the workbook's Summary sheet and the
 * dashboard page (report_queries.h), read through SPI (connected by the caller).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"

#include "report_queries.h"

StaticAssertDecl(lengthof(report_break_kinds) == REPORT_BREAK_KINDS, "break kinds");
StaticAssertDecl(lengthof(report_break_columns) == REPORT_BREAK_KINDS, "break columns");

/* Runs a query of the period ($1, $2) and keeps every row (small results only). */
SPITupleTable *
export_period_rows(const ExportPeriod *period, const char *query, uint64 *count)
{
	Portal		portal = export_open_query(query, period);

	SPI_cursor_fetch(portal, true, FETCH_ALL);
	*count = SPI_processed;
	SPI_cursor_close(portal);
	return SPI_tuptable;
}

/* Breaks and users per kind of the period, in report_break_kinds' order (0 for none). */
ReportBreakCounts
report_break_counts(const ExportPeriod *period)
{
	ReportBreakCounts counts;
	SPITupleTable *t;
	uint64		n;
	uint64		r;
	int			k;

	memset(&counts, 0, sizeof(counts));
	t = export_period_rows(period, REPORT_BREAKS_QUERY, &n);
	for (r = 0; r < n; r++)
	{
		char	   *kind = SPI_getvalue(t->vals[r], t->tupdesc, 1);

		for (k = 0; k < REPORT_BREAK_KINDS; k++)
			if (kind && strcmp(kind, report_break_kinds[k]) == 0)
			{
				counts.breaks[k] = pg_strtoint64(SPI_getvalue(t->vals[r], t->tupdesc, 2));
				counts.users[k] = pg_strtoint64(SPI_getvalue(t->vals[r], t->tupdesc, 3));
			}
	}
	return counts;
}

/* Anomalies of the period per score bin (REPORT_SCORE_BINS; a score of 1 is in the last). */
void
report_score_bins(const ExportPeriod *period, double *bins)
{
	SPITupleTable *t;
	uint64		n;
	uint64		r;

	memset(bins, 0, sizeof(double) * REPORT_SCORE_BINS);
	t = export_period_rows(period, psprintf(REPORT_SCORES_QUERY, REPORT_SCORE_BINS), &n);
	for (r = 0; r < n; r++)
	{
		int			bucket = pg_strtoint32(SPI_getvalue(t->vals[r], t->tupdesc, 1));

		bins[Min(Max(bucket, 1), REPORT_SCORE_BINS) - 1] += (double) pg_strtoint64(SPI_getvalue(t->vals[r], t->tupdesc, 2));
	}
}

static int
days_column(SPITupleTable *t, const char *name)
{
	int			attno = SPI_fnumber(t->tupdesc, name);

	if (attno <= 0)
		elog(ERROR, "calo_recon.daily_summary has no column \"%s\"", name);
	return attno;
}

static int
compare_currency_rows(const void *a, const void *b, void *arg)
{
	const ReportDays *days = arg;
	uint64		ra = *(const uint64 *) a;
	uint64		rb = *(const uint64 *) b;

	return strcmp(SPI_getvalue(days->table->vals[ra], days->table->tupdesc, days->first_figure),
				  SPI_getvalue(days->table->vals[rb], days->table->tupdesc, days->first_figure));
}

/*
 * The period's daily rows with their currency's figures (REPORT_DAILY_QUERY),
 * and the last row of each currency, in code order: the figures per currency.
 */
ReportDays
report_days(const ExportPeriod *period)
{
	ReportDays	days;
	int			natts;
	int			k;

	memset(&days, 0, sizeof(days));
	days.table = export_period_rows(period, REPORT_DAILY_QUERY, &days.count);
	natts = days.table->tupdesc->natts;
	days.view_columns = natts - REPORT_CURRENCY_COLUMNS - 1 - REPORT_DAILY_EXTRA_COLUMNS;
	days.first_figure = days.view_columns + REPORT_DAILY_EXTRA_COLUMNS + 1;
	days.day_col = days_column(days.table, "day");
	days.currency_col = days_column(days.table, "currency");
	days.liability_col = days_column(days.table, "wallet_liability");
	for (k = 0; k < REPORT_BREAK_KINDS; k++)
		days.break_cols[k] = days_column(days.table, report_break_columns[k]);
	days.currency_rows = palloc(sizeof(uint64) * Max(days.count, 1));
	for (uint64 r = 0; r < days.count; r++)
	{
		bool		isnull;

		if (DatumGetBool(SPI_getbinval(days.table->vals[r], days.table->tupdesc, natts, &isnull)) && !isnull)
			days.currency_rows[days.ncurrencies++] = r;
	}
	qsort_arg(days.currency_rows, days.ncurrencies, sizeof(uint64), compare_currency_rows, &days);
	return days;
}

/*
 * The currencies of the daily rows, each once, in the order they first
 * appear: the series of the liability chart and the Chart Data's columns.
 */
List *
report_days_currencies(const ReportDays *days)
{
	List	   *codes = NIL;

	for (uint64 r = 0; r < days->count; r++)
	{
		char	   *code = SPI_getvalue(days->table->vals[r], days->table->tupdesc, days->currency_col);
		ListCell   *lc;
		bool		seen = false;

		foreach(lc, codes)
			seen |= strcmp(lfirst(lc), code) == 0;
		if (!seen)
			codes = lappend(codes, code);
	}
	return codes;
}
