/*
 * report_glue.c: the figures shared by the workbook's Summary sheet and the
 * dashboard page (report_queries.h), read through SPI (connected by the caller).
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"

#include "report_queries.h"

StaticAssertDecl(lengthof(report_break_kinds) == REPORT_BREAK_KINDS, "break kinds");

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

/*
 * The currencies of REPORT_DAYS_QUERY's rows, each once, in the order they
 * first appear: the series of the liability chart and the Summary's columns.
 */
List *
report_days_currencies(SPITupleTable *days, uint64 count)
{
	List	   *codes = NIL;

	for (uint64 r = 0; r < count; r++)
	{
		char	   *code = SPI_getvalue(days->vals[r], days->tupdesc, 2);
		ListCell   *lc;
		bool		seen = false;

		foreach(lc, codes)
			seen |= strcmp(lfirst(lc), code) == 0;
		if (!seen)
			codes = lappend(codes, code);
	}
	return codes;
}
