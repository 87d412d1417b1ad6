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

/* The break kinds of balance_breaks, in the order reports show them. */
static const char *const report_break_kinds[] = {"arithmetic", "chain", "conflict", "out_of_range"};
#define REPORT_BREAK_KINDS 4

/* The anomaly score histogram: this many bins of equal width over [0, 1]. */
#define REPORT_SCORE_BINS 10

/* Columns: currency, transactions, credits, debits, vat, closing wallet
 * liability, arithmetic, chain, conflicts, out_of_range, overdrafts,
 * discrepancies, anomalies. */
#define REPORT_CURRENCY_QUERY \
	"SELECT d.currency, pg_catalog.sum(d.transactions), pg_catalog.sum(d.credits), " \
	"pg_catalog.sum(d.debits), pg_catalog.sum(d.vat), " \
	"(pg_catalog.array_agg(d.wallet_liability ORDER BY d.day DESC))[1], " \
	"pg_catalog.sum(d.arithmetic_breaks), pg_catalog.sum(d.chain_breaks), pg_catalog.sum(d.conflicts), " \
	"pg_catalog.sum(d.out_of_range), pg_catalog.sum(d.overdrafts), pg_catalog.sum(d.discrepancies), " \
	"pg_catalog.sum(d.anomalies) " \
	"FROM calo_recon.daily_summary d " \
	"WHERE ($1 IS NULL OR d.day OPERATOR(pg_catalog.>=) $1) AND ($2 IS NULL OR d.day OPERATOR(pg_catalog.<) $2) " \
	"GROUP BY d.currency ORDER BY d.currency COLLATE pg_catalog.\"C\""

#define REPORT_DAYS_QUERY \
	"SELECT d.day, d.currency, d.wallet_liability, d.arithmetic_breaks, d.chain_breaks, " \
	"d.conflicts, d.out_of_range FROM calo_recon.daily_summary d " \
	"WHERE ($1 IS NULL OR d.day OPERATOR(pg_catalog.>=) $1) AND ($2 IS NULL OR d.day OPERATOR(pg_catalog.<) $2) " \
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

extern SPITupleTable *export_period_rows(const ExportPeriod *period, const char *query, uint64 *count);
extern ReportBreakCounts report_break_counts(const ExportPeriod *period);
extern void report_score_bins(const ExportPeriod *period, double *bins);
extern List *report_days_currencies(SPITupleTable *days, uint64 count);

#endif
