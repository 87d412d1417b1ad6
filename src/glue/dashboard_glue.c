/*
 * dashboard_glue.c: calo_recon.export_dashboard(), one self-contained HTML
 * page (no script, no network: inline CSS and SVG charts from svgchart.c)
 * under the export rules of export_glue.c: the period and as-of time, the
 * figures per currency and the breaks by kind (report_queries.h, as the
 * workbook's Summary shows them), the same three charts, the top open breaks
 * and the top anomalies with their explanations.  Every figure is the
 * views' text, in an element whose id or data-field names it, so a test can
 * read the rendered page back and compare.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "digitgroup.h"
#include "export_glue.h"
#include "report_queries.h"
#include "svgchart.h"

#define TOP_ROWS 10

PG_FUNCTION_INFO_V1(calo_recon_export_dashboard);

#define TOP_BREAKS_QUERY \
	"SELECT b.txn_id, b.user_id, b.break_kind, b.currency, b.expected, b.actual, b.difference, b.logged_at " \
	"FROM calo_recon.balance_breaks b " \
	"WHERE ($1 IS NULL OR b.logged_at OPERATOR(pg_catalog.>=) $1) AND ($2 IS NULL OR b.logged_at OPERATOR(pg_catalog.<) $2) " \
	"ORDER BY pg_catalog.abs(b.difference) DESC NULLS LAST, b.logged_at DESC, b.txn_id COLLATE pg_catalog.\"C\" LIMIT 10"

#define TOP_ANOMALIES_QUERY \
	"SELECT a.txn_id, a.user_id, a.currency, calo_recon.round_money(a.amount, c.minor_unit), " \
	"pg_catalog.round(a.score::pg_catalog.numeric, 3), a.reason, a.explanation, a.logged_at " \
	"FROM calo_recon.anomalies a LEFT JOIN calo_recon.currencies c ON c.code OPERATOR(pg_catalog.=) a.currency " \
	"WHERE ($1 IS NULL OR a.logged_at OPERATOR(pg_catalog.>=) $1) AND ($2 IS NULL OR a.logged_at OPERATOR(pg_catalog.<) $2) " \
	"ORDER BY a.score DESC NULLS LAST, a.txn_id COLLATE pg_catalog.\"C\" LIMIT 10"

static const char *const currency_fields[] = {
	"currency", "transactions", "credits", "debits", "vat", "wallet_liability",
	"arithmetic_breaks", "chain_breaks", "conflicts", "out_of_range", "overdrafts",
	"discrepancies", "anomalies",
};
static const char *const currency_headers[] = {
	"Currency", "Transactions", "Credits", "Debits", "VAT", "Wallet liability (closing)",
	"Arithmetic breaks", "Chain breaks", "Conflicts", "Out of range", "Overdrafts",
	"Discrepancies", "Anomalies",
};

static void
append_to_stringinfo(void *ctx, const char *text, size_t len)
{
	appendBinaryStringInfo((StringInfo) ctx, text, len);
}

static void
html(StringInfo out, const char *text)
{
	svg_write_escaped(text ? text : "", append_to_stringinfo, out);
}

static void
html_time(StringInfo out, bool has, TimestampTz when, const char *otherwise)
{
	html(out, has ? psprintf("%s UTC", export_time_text(when)) : otherwise);
}

/*
 * A moment the page reports (the last refresh, the export) to the second, as
 * the workbook shows it: its microseconds tell a reader nothing.  A period's
 * bounds keep html_time's exact text, since they say which rows are in.
 */
static void
html_moment(StringInfo out, bool has, TimestampTz when, const char *otherwise)
{
	if (has && !TIMESTAMP_NOT_FINITE(when))
		when -= ((when % USECS_PER_SEC) + USECS_PER_SEC) % USECS_PER_SEC;
	html_time(out, has, when, otherwise);
}

/* A number as the view gives it, its integer digits grouped by thousands. */
static void
html_number(StringInfo out, const char *number_text)
{
	size_t		size = DIGIT_GROUP_SIZE(strlen(number_text));
	char	   *grouped = palloc(size);

	if (digit_group(number_text, grouped, size) == (size_t) -1)
		elog(ERROR, "could not group the digits of \"%s\"", number_text);
	html(out, grouped);
}

/*
 * One table of a query's rows (those of rows[] when given), its columns from
 * first_col (from 1) on, each cell marked with its column's name.
 */
static void
html_table(StringInfo out, const char *id, SPITupleTable *t, const uint64 *rows, uint64 n, int first_col,
		   const char *const *headers, const char *const *fields, int ncols, const char *empty)
{
	uint64		i;
	int			c;

	appendStringInfo(out, "<table id=\"%s\"><thead><tr>", id);
	for (c = 0; c < ncols; c++)
	{
		/* a heading stands over its column's end when the column holds numbers */
		appendStringInfoString(out, export_column_kind(SPI_gettypeid(t->tupdesc, first_col + c)) == EXPORT_NUMBER
							   ? "<th class=\"num\">" : "<th>");
		html(out, headers[c]);
		appendStringInfoString(out, "</th>");
	}
	appendStringInfoString(out, "</tr></thead><tbody>\n");
	if (n == 0)
	{
		appendStringInfo(out, "<tr><td colspan=\"%d\" class=\"empty\">", ncols);
		html(out, empty);
		appendStringInfoString(out, "</td></tr>\n");
	}
	for (i = 0; i < n; i++)
	{
		uint64		r = rows ? rows[i] : i;

		appendStringInfoString(out, "<tr>");
		for (c = 0; c < ncols; c++)
		{
			int			attno = first_col + c;
			Oid			type = SPI_gettypeid(t->tupdesc, attno);
			bool		isnull;
			Datum		value = SPI_getbinval(t->vals[r], t->tupdesc, attno, &isnull);
			bool		number = export_column_kind(type) == EXPORT_NUMBER;

			appendStringInfo(out, "<td data-field=\"%s\"%s>", fields[c], number ? " class=\"num\"" : "");
			if (!isnull && export_column_kind(type) == EXPORT_TIME && type == TIMESTAMPTZOID)
				html(out, export_time_text(DatumGetTimestampTz(value)));
			else if (!isnull && number)
				html_number(out, SPI_getvalue(t->vals[r], t->tupdesc, attno));
			else if (!isnull)
				html(out, SPI_getvalue(t->vals[r], t->tupdesc, attno));
			appendStringInfoString(out, "</td>");
		}
		appendStringInfoString(out, "</tr>\n");
	}
	appendStringInfoString(out, "</tbody></table>\n");
}

/* The three charts, from the same figures as the workbook's Chart Data. */
static void
html_charts(StringInfo out, const ExportPeriod *period, const ReportDays *daily)
{
	SPITupleTable *t;
	uint64		n;
	uint64		r;
	List	   *codes = NIL;
	List	   *days = NIL;
	double	   *liability;
	double	   *breaks;
	double		bins[REPORT_SCORE_BINS];
	const char **bin_labels = palloc(sizeof(char *) * REPORT_SCORE_BINS);
	const char **day_labels;
	const char **code_names;
	int			ncur;
	int			nday;
	int			i;
	svg_chart	chart;

	report_score_bins(period, bins);
	t = daily->table;
	n = daily->count;
	codes = report_days_currencies(daily);
	for (r = 0; r < n; r++)
	{
		char	   *day = SPI_getvalue(t->vals[r], t->tupdesc, daily->day_col);

		if (days == NIL || strcmp(llast(days), day) != 0)
			days = lappend(days, day);
	}
	ncur = list_length(codes);
	nday = list_length(days);
	liability = palloc0(sizeof(double) * Max(ncur * nday, 1));
	breaks = palloc0(sizeof(double) * Max(REPORT_BREAK_KINDS * nday, 1));
	day_labels = palloc(sizeof(char *) * Max(nday, 1));
	code_names = palloc(sizeof(char *) * Max(ncur, 1));
	for (i = 0; i < nday; i++)
		day_labels[i] = list_nth(days, i);
	for (i = 0; i < ncur; i++)
		code_names[i] = list_nth(codes, i);
	{
		int			d = -1;
		const char *current = NULL;

		for (r = 0; r < n; r++)
		{
			char	   *day = SPI_getvalue(t->vals[r], t->tupdesc, daily->day_col);
			char	   *code = SPI_getvalue(t->vals[r], t->tupdesc, daily->currency_col);
			int			k;

			if (current == NULL || strcmp(current, day) != 0)
			{
				d++;
				current = day;
				/* a wallet's liability carries over days without activity */
				if (d > 0)
					for (i = 0; i < ncur; i++)
						liability[i * nday + d] = liability[i * nday + d - 1];
			}
			for (i = 0; i < ncur; i++)
				if (strcmp(code_names[i], code) == 0)
				{
					char	   *text = SPI_getvalue(t->vals[r], t->tupdesc, daily->liability_col);

					/* NULL: out of the exact range, no point drawn as a value */
					liability[i * nday + d] = text ? strtod(text, NULL) : NAN;
				}
			for (k = 0; k < REPORT_BREAK_KINDS; k++)
				breaks[k * nday + d] += strtod(SPI_getvalue(t->vals[r], t->tupdesc, daily->break_cols[k]), NULL);
		}
	}
	for (i = 0; i < REPORT_SCORE_BINS; i++)
		bin_labels[i] = psprintf("%.1f", (double) i / REPORT_SCORE_BINS);

	appendStringInfoString(out, "<div class=\"charts\">\n<figure id=\"chart-liability\">");
	chart = (svg_chart) {SVG_LINES, "Wallet liability per currency", "Closing liability",
		day_labels, nday, code_names, ncur, liability};
	if (svg_write_chart(&chart, append_to_stringinfo, out) != 0)
		elog(ERROR, "could not draw the liability chart");
	appendStringInfoString(out, "</figure>\n<figure id=\"chart-breaks\">");
	chart = (svg_chart) {SVG_STACKED_BARS, "Breaks per day by kind", "Breaks",
		day_labels, nday, report_break_kinds, REPORT_BREAK_KINDS, breaks};
	if (svg_write_chart(&chart, append_to_stringinfo, out) != 0)
		elog(ERROR, "could not draw the breaks chart");
	appendStringInfoString(out, "</figure>\n<figure id=\"chart-scores\">");
	{
		static const char *const anomaly_series[] = {"anomalies"};

		chart = (svg_chart) {SVG_STACKED_BARS, "Anomaly scores (active model)", "Anomalies",
			bin_labels, REPORT_SCORE_BINS, anomaly_series, 1, bins};
	}
	if (svg_write_chart(&chart, append_to_stringinfo, out) != 0)
		elog(ERROR, "could not draw the scores chart");
	appendStringInfoString(out, "</figure>\n</div>\n");
}

static const char page_style[] =
	"body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#222;font-size:13px}"
	"h1{font-size:22px;margin:0 0 8px}h2{font-size:16px;margin:22px 0 6px}"
	"dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:0}dt{font-weight:bold}dd{margin:0}"
	"table{border-collapse:collapse;margin:4px 0}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}"
	"th{border-bottom:2px solid #333;font-size:12px}.num{text-align:right;font-variant-numeric:tabular-nums}"
	".charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #ddd}"
	".chart-title{font-weight:bold;font-size:14px}.tick,.legend,.axis-label{font-size:11px}.empty{color:#777}"
	"footer{margin-top:24px;color:#777;font-size:11px}"
	"@media print{body{margin:0;font-size:10px}figure{break-inside:avoid}svg.chart{width:32%;height:auto}"
	"table{break-inside:auto}tr{break-inside:avoid}@page{size:A4 landscape;margin:12mm}}";

/* the file written when none is named: its one home (the SQL default is NULL) */
#define DASHBOARD_DEFAULT_FILE "dashboard.html"

/*
 * calo_recon.export_dashboard(file text DEFAULT NULL,
 *     period_from timestamptz DEFAULT NULL, period_to timestamptz DEFAULT NULL)
 *   RETURNS text (the file written, relative to the export directory)
 */
Datum
calo_recon_export_dashboard(PG_FUNCTION_ARGS)
{
	const char *file_arg = PG_ARGISNULL(0) ? DASHBOARD_DEFAULT_FILE : text_to_cstring(PG_GETARG_TEXT_PP(0));
	ExportPeriod period = export_period_args(fcinfo, 1);
	SafePathRoot *root;
	char	   *rel_folder_arg;
	char	   *name;
	ExportFolder *folder;
	ExportFile *file;
	StringInfoData out;
	SPITupleTable *t;
	uint64		n;
	ReportDays	days;
	int			guc_level;
	char	   *written;
	int			i;

	safe_path_check_privilege(SAFE_PATH_WRITE, "export_dashboard()");
	root = export_open_root();
	export_split_file(root, file_arg, "dashboard", ".html", &rel_folder_arg, &name);
	export_lock();
	folder = export_open_folder(root, rel_folder_arg);
	file = export_begin(folder, name);
	guc_level = export_fix_output_settings();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	initStringInfo(&out);
	appendStringInfo(&out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
					 "<meta name=\"viewport\" content=\"width=device-width\">"
					 "<title>Balance reports</title><style>%s</style></head><body>\n"
					 "<h1>Balance reports</h1>\n<dl id=\"meta\">", page_style);
	appendStringInfoString(&out, "<dt>Period from</dt><dd id=\"period-from\">");
	html_time(&out, period.has_from, period.from, "the first transaction");
	appendStringInfoString(&out, "</dd><dt>Period to (excluded)</dt><dd id=\"period-to\">");
	html_time(&out, period.has_to, period.to, "now");
	appendStringInfoString(&out, "</dd><dt>As of (last refresh)</dt><dd id=\"as-of\">");
	t = export_period_rows(&period, REPORT_AS_OF_QUERY, &n);
	{
		bool		isnull = true;
		Datum		as_of = n > 0 ? SPI_getbinval(t->vals[0], t->tupdesc, 1, &isnull) : (Datum) 0;

		html_moment(&out, !isnull, isnull ? 0 : DatumGetTimestampTz(as_of), "no successful refresh yet");
	}
	appendStringInfoString(&out, "</dd><dt>Exported at</dt><dd id=\"exported-at\">");
	html_moment(&out, true, GetCurrentStatementStartTimestamp(), "");
	appendStringInfoString(&out, "</dd></dl>\n<h2>Figures per currency</h2>\n");
	days = report_days(&period);
	html_table(&out, "figures", days.table, days.currency_rows, days.ncurrencies, days.first_figure,
			   currency_headers, currency_fields, lengthof(currency_fields),
			   "no transactions in the period");

	appendStringInfoString(&out, "<h2>Breaks by kind</h2>\n<table id=\"breaks\"><thead><tr><th>Kind</th>"
						   "<th class=\"num\">Breaks</th><th class=\"num\">Users</th></tr></thead><tbody>\n");
	{
		ReportBreakCounts counts = report_break_counts(&period);

		for (i = 0; i < REPORT_BREAK_KINDS; i++)
		{
			appendStringInfo(&out, "<tr data-kind=\"%s\"><td>%s</td><td data-field=\"breaks\" class=\"num\">",
							 report_break_kinds[i], report_break_kinds[i]);
			html_number(&out, psprintf(INT64_FORMAT, counts.breaks[i]));
			appendStringInfoString(&out, "</td><td data-field=\"users\" class=\"num\">");
			html_number(&out, psprintf(INT64_FORMAT, counts.users[i]));
			appendStringInfoString(&out, "</td></tr>\n");
		}
	}
	appendStringInfoString(&out, "</tbody></table>\n<h2>Charts</h2>\n");
	html_charts(&out, &period, &days);

	appendStringInfoString(&out, "<h2>Top open breaks (largest difference first)</h2>\n");
	t = export_period_rows(&period, TOP_BREAKS_QUERY, &n);
	{
		static const char *const headers[] = {"Transaction", "User", "Kind", "Currency", "Expected",
		"Actual", "Difference", "Logged at (UTC)"};
		static const char *const fields[] = {"txn_id", "user_id", "break_kind", "currency", "expected",
		"actual", "difference", "logged_at"};

		html_table(&out, "top-breaks", t, NULL, n, 1, headers, fields, lengthof(fields), "no breaks in the period");
	}
	appendStringInfoString(&out, "<h2>Top anomalies (highest score first)</h2>\n");
	t = export_period_rows(&period, TOP_ANOMALIES_QUERY, &n);
	{
		static const char *const headers[] = {"Transaction", "User", "Currency", "Amount", "Score",
		"Reason", "Explanation", "Logged at (UTC)"};
		static const char *const fields[] = {"txn_id", "user_id", "currency", "amount", "score",
		"reason", "explanation", "logged_at"};

		html_table(&out, "top-anomalies", t, NULL, n, 1, headers, fields, lengthof(fields), "no anomalies in the period");
	}
	appendStringInfoString(&out, "<footer>calo_recon: money rounded to each currency's minor unit; "
						   "times in UTC; breaks as of the last reconcile().</footer>\n</body></html>\n");

	export_write(file, out.data, out.len);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	export_finish_file(file);
	export_publish(folder);
	written = pstrdup(file->rel_path);
	export_close_folder(folder);
	PG_RETURN_TEXT_P(cstring_to_text(written));
}
