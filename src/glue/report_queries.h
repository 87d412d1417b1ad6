/*
 * report_queries.h: the figures the workbook's Summary sheet and the
 * dashboard page both show (one query each, defined here once): per
 * currency, per day, the anomaly score histogram and the breaks by kind, all
 * of the period $1..$2 (timestamptz, NULL: open; days compare at UTC midnight,
 * export_fix_output_settings).
 */
#ifndef REPORT_QUERIES_H
#define REPORT_QUERIES_H

#include "executor/spi.h"

#include "export_glue.h"

/* The break kinds of balance_breaks, in the order reports show them, and their daily_summary columns. */
static const char *const report_break_kinds[] = {"arithmetic", "chain", "conflict", "out_of_range"};
static const char *const report_break_columns[] = {"arithmetic_breaks", "chain_breaks", "conflicts", "out_of_range"};
#define REPORT_BREAK_KINDS 4

/* The anomaly score histogram: this many bins of equal width over [0, 1]. */
#define REPORT_SCORE_BINS 10

/*
 * The period's rows of daily_figures: daily_summary's columns (by day and
 * currency: the workbook's Daily Summary sheet), its exact credits, debits
 * and VAT and the currency's minor unit (REPORT_DAILY_EXTRA_COLUMNS), and
 * after them the figures of the row's currency over the period: currency,
 * transactions, credits, debits, vat, closing wallet liability (its last
 * day's), arithmetic, chain, conflicts, out_of_range, overdrafts,
 * discrepancies, anomalies (REPORT_CURRENCY_COLUMNS), then whether the row
 * is its currency's last day.  Money over the period is the exact sum of
 * the days rounded once (round_money), NULL when a day's is (out of the
 * exact range).  One evaluation of the view serves the sheet, the figures
 * per currency and the charts.
 */
#define REPORT_CURRENCY_COLUMNS 13
#define REPORT_DAILY_EXTRA_COLUMNS 4
#define REPORT_DAILY_VIEW "daily_summary"
#define REPORT_PERIOD_MONEY(col) \
	"calo_recon.round_money(CASE WHEN pg_catalog.count(d." col ") OVER c OPERATOR(pg_catalog.=) pg_catalog.count(*) OVER c " \
	"THEN pg_catalog.sum(d." col ") OVER c END, d.minor_unit), "
#define REPORT_DAILY_QUERY \
	"SELECT d.*, d.currency, pg_catalog.sum(d.transactions) OVER c, " \
	REPORT_PERIOD_MONEY("exact_credits") REPORT_PERIOD_MONEY("exact_debits") REPORT_PERIOD_MONEY("exact_vat") \
	"pg_catalog.last_value(d.wallet_liability) OVER c, " \
	"pg_catalog.sum(d.arithmetic_breaks) OVER c, pg_catalog.sum(d.chain_breaks) OVER c, pg_catalog.sum(d.conflicts) OVER c, " \
	"pg_catalog.sum(d.out_of_range) OVER c, pg_catalog.sum(d.overdrafts) OVER c, pg_catalog.sum(d.discrepancies) OVER c, " \
	"pg_catalog.sum(d.anomalies) OVER c, " \
	"pg_catalog.row_number() OVER (PARTITION BY d.currency ORDER BY d.day DESC) OPERATOR(pg_catalog.=) 1 " \
	"FROM calo_recon.daily_figures d " \
	"WHERE ($1 IS NULL OR d.day OPERATOR(pg_catalog.>=) $1) AND ($2 IS NULL OR d.day OPERATOR(pg_catalog.<) $2) " \
	"WINDOW c AS (PARTITION BY d.currency ORDER BY d.day ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) " \
	"ORDER BY d.day, d.currency COLLATE pg_catalog.\"C\""

#define REPORT_SCORES_QUERY \
	"SELECT pg_catalog.width_bucket(a.score, 0.0::pg_catalog.float8, 1.0::pg_catalog.float8, %d), pg_catalog.count(*) " \
	"FROM calo_recon.anomalies a WHERE a.score IS NOT NULL " \
	"AND ($1 IS NULL OR a.logged_at OPERATOR(pg_catalog.>=) $1) AND ($2 IS NULL OR a.logged_at OPERATOR(pg_catalog.<) $2) " \
	"GROUP BY 1"

#define REPORT_BREAKS_QUERY \
	"SELECT b.break_kind, pg_catalog.count(*), pg_catalog.count(DISTINCT b.user_id) " \
	"FROM calo_recon.balance_breaks b " \
	"WHERE ($1 IS NULL OR b.logged_at OPERATOR(pg_catalog.>=) $1) AND ($2 IS NULL OR b.logged_at OPERATOR(pg_catalog.<) $2) " \
	"GROUP BY b.break_kind"

#define REPORT_AS_OF_QUERY "SELECT a.as_of FROM calo_recon.as_of a"

typedef struct ReportBreakCounts
{
	int64		breaks[REPORT_BREAK_KINDS];
	int64		users[REPORT_BREAK_KINDS];
} ReportBreakCounts;

/* REPORT_DAILY_QUERY's rows, kept until SPI_finish, and where to read them. */
typedef struct ReportDays
{
	SPITupleTable *table;
	uint64		count;
	int			view_columns;	/* daily_summary's columns, first (then REPORT_DAILY_EXTRA_COLUMNS) */
	int			day_col;		/* attribute numbers (from 1) of the view's columns */
	int			currency_col;
	int			liability_col;
	int			break_cols[REPORT_BREAK_KINDS];	/* in report_break_kinds' order */
	int			first_figure;	/* the currency figures: REPORT_CURRENCY_COLUMNS from here */
	int			ncurrencies;
	uint64	   *currency_rows;	/* a row of each currency, by code ("C" order) */
} ReportDays;

extern SPITupleTable *export_period_rows(const ExportPeriod *period, const char *query, uint64 *count);
extern ReportBreakCounts report_break_counts(const ExportPeriod *period);
extern void report_score_bins(const ExportPeriod *period, double *bins);
extern ReportDays report_days(const ExportPeriod *period);
extern List *report_days_currencies(const ReportDays *days);

#endif
