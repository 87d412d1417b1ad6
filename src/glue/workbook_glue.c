/*
 * workbook_glue.c: calo_recon.export_workbook(), the finance workbook written
 * with libxlsxwriter under the same folder, permission and overwrite rules as
 * the CSV reports (export_glue.c).
 *
 * The workbook opens on a Summary sheet (period, as-of time, the figures per
 * currency, breaks by kind, three native charts and the list of sheets),
 * then one sheet per report of export_reports() (export_report_list), then
 * the Chart Data the charts draw from.  Cells are typed: money is a number
 * cell with its currency's format (the views round it with round_money),
 * times are Excel dates in UTC, booleans are TRUE/FALSE.  Every sheet prints
 * landscape, one page wide, with its header row repeated; a report longer
 * than calo_recon.workbook_sheet_rows continues on "<sheet> (2)", ...
 */
#include "postgres.h"

#include <math.h>
#include <xlsxwriter.h>

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "balance.h"
#include "module_glue.h"
#include "export_glue.h"
#include "report_queries.h"

#define EXCEL_MAX_STRING 32767
#define EXCEL_MAX_SHEET_NAME 31
#define MAX_COLUMN_WIDTH 60.0
#define SUMMARY_SHEET "Summary"
#define CHART_DATA_SHEET "Chart Data"
#define TIME_FORMAT "yyyy-mm-dd hh:mm:ss \"UTC\""
#define DAY_FORMAT "yyyy-mm-dd"


PG_FUNCTION_INFO_V1(calo_recon_export_workbook);

/* A number format per currency: its decimals and its code, made once. */
typedef struct MoneyFormat
{
	char	   *currency;
	lxw_format *format;
} MoneyFormat;

typedef struct Book
{
	lxw_workbook *workbook;
	lxw_format *header_format;
	lxw_format *wrapped_header_format;	/* the summary's table, narrow columns */
	lxw_format *title_format;
	lxw_format *bold_format;
	lxw_format *time_format;
	lxw_format *day_format;
	lxw_format *plain_money_format;	/* money of no known currency */
	List	   *money_formats;	/* MoneyFormat */
	List	   *currency_codes; /* calo_recon.currencies, for the decimals */
	List	   *currency_minor; /* int, same order */
	ExportPeriod period;
	int64		sheet_rows;
} Book;

static void
check_lxw(lxw_error status, const char *what)
{
	if (status != LXW_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not write the workbook (%s): %s", what, lxw_strerror(status))));
}

/* Excel cell text is limited to 32767 characters: cut at a character boundary. */
static const char *
excel_string(char *text)
{
	int			len = strlen(text);

	if (len > EXCEL_MAX_STRING)
		text[pg_mbcliplen(text, len, EXCEL_MAX_STRING)] = '\0';
	return text;
}

/* Times are shown in UTC whatever the session's time zone, as in the CSV. */
static bool
datum_to_excel_time(Oid type_oid, Datum value, lxw_datetime *out)
{
	struct pg_tm tm;
	fsec_t		fsec = 0;

	switch (getBaseType(type_oid))
	{
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			if (TIMESTAMP_NOT_FINITE(DatumGetTimestamp(value)) ||
				timestamp2tm(DatumGetTimestamp(value), NULL, &tm, &fsec, NULL, NULL) != 0)
				return false;
			break;
		case DATEOID:
			if (DATE_NOT_FINITE(DatumGetDateADT(value)))
				return false;
			j2date(DatumGetDateADT(value) + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			break;
		default:
			return false;
	}
	/* Excel dates run from 1900 to 9999. */
	if (tm.tm_year < 1900 || tm.tm_year > 9999)
		return false;
	out->year = tm.tm_year;
	out->month = tm.tm_mon;
	out->day = tm.tm_mday;
	out->hour = tm.tm_hour;
	out->min = tm.tm_min;
	out->sec = tm.tm_sec + fsec / 1000000.0;
	return true;
}

static void
load_currencies(Book *book)
{
	uint64		i;

	if (SPI_execute("SELECT c.code, c.minor_unit::pg_catalog.int4 FROM calo_recon.currencies c",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read calo_recon.currencies");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		minor = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);

		book->currency_codes = lappend(book->currency_codes, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		book->currency_minor = lappend_int(book->currency_minor, isnull ? -1 : DatumGetInt32(minor));
	}
}

/*
 * The format of an amount in a currency: its minor unit's decimals
 * (bal_minor_unit, as round_money rounds it) and its code after the number.
 */
static lxw_format *
money_format(Book *book, const char *currency)
{
	ListCell   *lc;
	ListCell   *lm;
	MoneyFormat *made;
	StringInfoData pattern;
	int			minor = -1;
	int			i;

	if (currency == NULL)
		return book->plain_money_format;
	foreach(lc, book->money_formats)
	{
		MoneyFormat *f = lfirst(lc);

		if (strcmp(f->currency, currency) == 0)
			return f->format;
	}
	forboth(lc, book->currency_codes, lm, book->currency_minor)
		if (strcmp(lfirst(lc), currency) == 0)
			minor = lfirst_int(lm);
	minor = bal_minor_unit(minor);
	initStringInfo(&pattern);
	appendStringInfoString(&pattern, "#,##0");
	for (i = 0; i < minor; i++)
		appendStringInfoString(&pattern, i == 0 ? ".0" : "0");
	/* the code is quoted text of the format; an odd code only loses its quotes */
	appendStringInfo(&pattern, " \"%s\"", strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(currency) ? currency : "");
	made = MemoryContextAlloc(TopTransactionContext, sizeof(MoneyFormat));
	made->currency = MemoryContextStrdup(TopTransactionContext, currency);
	made->format = workbook_add_format(book->workbook);
	format_set_num_format(made->format, pattern.data);
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		book->money_formats = lappend(book->money_formats, made);
		MemoryContextSwitchTo(old);
	}
	return made->format;
}

/* How one column of a report is written. */
typedef enum CellKind
{
	CELL_TEXT,
	CELL_NUMBER,				/* counts, scores, tolerances: as they are */
	CELL_MONEY,					/* numeric amount of the row's currency */
	CELL_BOOL,
	CELL_TIME,
	CELL_DAY
} CellKind;

/*
 * Money is every numeric column of a report with a currency column, but the
 * tolerance (half a minor unit, finer than the currency's format) and the
 * exact differences of precision_drift (the drift itself).
 */
static CellKind
cell_kind(const ExportReport *report, TupleDesc desc, int i, bool has_currency)
{
	Form_pg_attribute att = TupleDescAttr(desc, i);
	Oid			base = getBaseType(att->atttypid);

	switch (export_column_kind(att->atttypid))
	{
		case EXPORT_BOOL:
			return CELL_BOOL;
		case EXPORT_TIME:
			return base == DATEOID ? CELL_DAY : CELL_TIME;
		case EXPORT_TEXT:
			return CELL_TEXT;
		case EXPORT_NUMBER:
			break;
	}
	if (base == NUMERICOID && has_currency && strcmp(report->view, "precision_drift") != 0 &&
		strcmp(NameStr(att->attname), "tolerance") != 0)
		return CELL_MONEY;
	return CELL_NUMBER;
}

/*
 * A number cell's value: an IEEE double (enough for display; the CSV keeps
 * the exact decimal text), converted without going through text for the
 * usual types.
 */
static double
datum_to_double(Oid base_type, Datum value, Oid out_func)
{
	switch (base_type)
	{
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, value));
		case INT8OID:
			return (double) DatumGetInt64(value);
		case INT4OID:
			return (double) DatumGetInt32(value);
		case INT2OID:
			return (double) DatumGetInt16(value);
		case FLOAT8OID:
			return DatumGetFloat8(value);
		case FLOAT4OID:
			return (double) DatumGetFloat4(value);
		default:
			return strtod(OidOutputFunctionCall(out_func, value), NULL);
	}
}

/* Characters of the integer part with its sign and thousands separators. */
static int
number_width(double v)
{
	double		magnitude = fabs(v);
	int			digits = magnitude >= 1.0 && isfinite(magnitude) ? (int) floor(log10(magnitude)) + 1 : 1;

	return digits + (digits - 1) / 3 + (v < 0 ? 1 : 0);
}

typedef struct SheetWriter
{
	Book	   *book;
	const ExportReport *report;
	lxw_worksheet *sheet;
	ExportColumns *columns;
	CellKind   *kinds;
	Oid		   *base_types;
	int			currency_col;	/* -1 when the report has none */
	double	   *widths;
	int			part;			/* 1 for the first sheet of the report */
	int64		part_rows;		/* data rows on the current sheet */
	List	   *sheet_names;	/* every sheet of the report */
	TupleDesc	desc;
} SheetWriter;

static void
set_print_layout(lxw_worksheet *sheet, bool repeat_header)
{
	worksheet_set_landscape(sheet);
	worksheet_set_paper(sheet, 9);	/* A4 */
	worksheet_fit_to_pages(sheet, 1, 0);	/* one page wide, as many tall as needed */
	if (repeat_header)
		check_lxw(worksheet_repeat_rows(sheet, 0, 0), "repeated header row");
}

static void
finish_part(SheetWriter *w)
{
	int			i;

	for (i = 0; i < w->desc->natts; i++)
		check_lxw(worksheet_set_column(w->sheet, i, i, w->widths[i], NULL), "column width");
	worksheet_freeze_panes(w->sheet, 1, 0);
	if (w->desc->natts > 0)
		check_lxw(worksheet_autofilter(w->sheet, 0, 0, w->part_rows, w->desc->natts - 1), "autofilter");
	set_print_layout(w->sheet, true);
}

static void
begin_part(SheetWriter *w)
{
	char	   *name = w->part == 1 ? pstrdup(w->report->sheet)
		: psprintf("%s (%d)", w->report->sheet, w->part);
	MemoryContext old;
	int			i;

	Assert(strlen(name) <= EXCEL_MAX_SHEET_NAME);
	w->sheet = workbook_add_worksheet(w->book->workbook, name);
	if (w->sheet == NULL)
		ereport(ERROR, (errcode(ERRCODE_IO_ERROR),
						errmsg("could not add worksheet \"%s\"", name)));
	old = MemoryContextSwitchTo(TopTransactionContext);
	w->sheet_names = lappend(w->sheet_names, pstrdup(name));
	MemoryContextSwitchTo(old);
	w->part_rows = 0;
	for (i = 0; i < w->desc->natts; i++)
	{
		const char *col = NameStr(TupleDescAttr(w->desc, i)->attname);

		w->widths[i] = Max(strlen(col) + 4, w->kinds[i] == CELL_TIME ? 26 : w->kinds[i] == CELL_DAY ? 12 : 8);
		check_lxw(worksheet_write_string(w->sheet, 0, i, col, w->book->header_format), "header");
	}
}

static void
write_sheet_row(HeapTuple tuple, TupleDesc desc, int64 row_no, void *arg)
{
	SheetWriter *w = arg;
	char	   *currency = NULL;
	lxw_row_t	row;
	int			i;

	if (w->part_rows >= w->book->sheet_rows)
	{
		finish_part(w);
		w->part++;
		begin_part(w);
	}
	row = ++w->part_rows;
	if (w->currency_col >= 0)
		currency = SPI_getvalue(tuple, desc, w->currency_col + 1);
	for (i = 0; i < w->columns->natts; i++)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(tuple, desc, i + 1, &isnull);
		lxw_datetime when;
		char	   *text;

		if (isnull)
			continue;
		switch (w->kinds[i])
		{
			case CELL_NUMBER:
			case CELL_MONEY:
				{
					double		number = datum_to_double(w->base_types[i], value, w->columns->out_funcs[i]);

					check_lxw(worksheet_write_number(w->sheet, row, i, number,
													 w->kinds[i] == CELL_MONEY ? money_format(w->book, currency) : NULL),
							  "number");
					w->widths[i] = Max(w->widths[i], Min(number_width(number) + (w->kinds[i] == CELL_MONEY ? 9 : 4),
														 MAX_COLUMN_WIDTH));
				}
				break;
			case CELL_BOOL:
				check_lxw(worksheet_write_boolean(w->sheet, row, i, DatumGetBool(value), NULL), "boolean");
				break;
			case CELL_TIME:
			case CELL_DAY:
				if (datum_to_excel_time(TupleDescAttr(desc, i)->atttypid, value, &when))
				{
					check_lxw(worksheet_write_datetime(w->sheet, row, i, &when,
													   w->kinds[i] == CELL_DAY ? w->book->day_format : w->book->time_format),
							  "date");
					break;
				}
				/* infinite or out of Excel's range: keep the text */
				/* FALLTHROUGH */
			case CELL_TEXT:
				/*
				 * A string cell is never evaluated as a formula, so the text
				 * stays as logged (the CSV's apostrophe is for the CSV only).
				 */
				text = OidOutputFunctionCall(w->columns->out_funcs[i], value);
				check_lxw(worksheet_write_string(w->sheet, row, i, excel_string(text), NULL), "text");
				w->widths[i] = Max(w->widths[i], Min(pg_mbstrlen(text) + 2, MAX_COLUMN_WIDTH));
				break;
		}
	}
}

/* What one report became: its rows and the sheets they are on. */
typedef struct ReportSheets
{
	const ExportReport *report;
	int64		rows;
	List	   *sheet_names;
} ReportSheets;

/* Writes one report into one sheet or more; returns the data rows written. */
static int64
write_report(Book *book, const ExportReport *report, Portal portal, ReportSheets *out)
{
	TupleDesc	desc = portal->tupDesc;
	SheetWriter w;
	int64		rows;
	int			i;

	memset(&w, 0, sizeof(w));
	w.book = book;
	w.report = report;
	w.desc = desc;
	w.columns = export_columns(desc);
	w.widths = palloc(sizeof(double) * Max(desc->natts, 1));
	w.kinds = palloc(sizeof(CellKind) * Max(desc->natts, 1));
	w.base_types = palloc(sizeof(Oid) * Max(desc->natts, 1));
	for (i = 0; i < desc->natts; i++)
		w.base_types[i] = getBaseType(TupleDescAttr(desc, i)->atttypid);
	w.currency_col = -1;
	for (i = 0; i < desc->natts; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), "currency") == 0)
			w.currency_col = i;
	for (i = 0; i < desc->natts; i++)
		w.kinds[i] = cell_kind(report, desc, i, w.currency_col >= 0);
	w.part = 1;
	begin_part(&w);
	rows = export_for_each_row(portal, write_sheet_row, &w);
	finish_part(&w);
	out->report = report;
	out->rows = rows;
	out->sheet_names = w.sheet_names;
	return rows;
}

/* ---------------------------------------------------------------------
 * Summary sheet and the data of its charts
 * --------------------------------------------------------------------- */

static double
num_at(SPITupleTable *t, uint64 row, int col)
{
	char	   *text = SPI_getvalue(t->vals[row], t->tupdesc, col);

	return text ? strtod(text, NULL) : 0.0;
}

static void
write_time_cell(Book *book, lxw_worksheet *sheet, lxw_row_t row, lxw_col_t col,
				bool has, TimestampTz when, const char *otherwise)
{
	lxw_datetime dt;

	if (has && datum_to_excel_time(TIMESTAMPTZOID, TimestampTzGetDatum(when), &dt))
		check_lxw(worksheet_write_datetime(sheet, row, col, &dt, book->time_format), "date");
	else
		check_lxw(worksheet_write_string(sheet, row, col, otherwise, NULL), "text");
}

static const char *const currency_headers[] = {
	"Currency", "Transactions", "Credits", "Debits", "VAT", "Wallet liability (closing)",
	"Arithmetic breaks", "Chain breaks", "Conflicts", "Out of range", "Overdrafts",
	"Discrepancies", "Anomalies",
};

/*
 * Writes the Chart Data sheet (one row per day: the wallet liability per
 * currency, carried over days without activity in that currency, and the
 * breaks per kind over all currencies; beside it the anomaly score
 * histogram) and returns the days written; *currencies gets the currency
 * columns.
 */
static int
write_chart_data(Book *book, lxw_worksheet *data, List **currencies)
{
	SPITupleTable *t;
	uint64		n;
	uint64		r;
	List	   *codes = NIL;
	double	   *last_liability;
	int			ncur;
	int			days = 0;
	int			col_breaks;
	int			col_scores;
	double		bins[REPORT_SCORE_BINS];
	int			i;

	/* the currencies first: they are the columns */
	t = export_period_rows(&book->period, REPORT_DAYS_QUERY, &n);
	codes = report_days_currencies(t, n);
	ncur = list_length(codes);
	col_breaks = 1 + ncur;
	col_scores = col_breaks + lengthof(report_break_kinds) + 2;
	last_liability = palloc0(sizeof(double) * Max(ncur, 1));

	check_lxw(worksheet_write_string(data, 0, 0, "day", book->header_format), "header");
	for (i = 0; i < ncur; i++)
		check_lxw(worksheet_write_string(data, 0, 1 + i, psprintf("wallet liability %s", (char *) list_nth(codes, i)),
										 book->header_format), "header");
	for (i = 0; i < lengthof(report_break_kinds); i++)
		check_lxw(worksheet_write_string(data, 0, col_breaks + i, report_break_kinds[i], book->header_format), "header");
	check_lxw(worksheet_write_string(data, 0, col_scores - 1, "day (text)", book->header_format), "header");
	check_lxw(worksheet_write_string(data, 0, col_scores, "score from", book->header_format), "header");
	check_lxw(worksheet_write_string(data, 0, col_scores + 1, "anomalies", book->header_format), "header");

	/* the histogram; t stays valid until SPI_finish */
	report_score_bins(&book->period, bins);
	for (r = 0; r < n;)
	{
		char	   *day = SPI_getvalue(t->vals[r], t->tupdesc, 1);
		bool		isnull;
		lxw_datetime when;
		double		kinds[lengthof(report_break_kinds)] = {0};
		lxw_row_t	row = 1 + days;

		if (datum_to_excel_time(DATEOID, SPI_getbinval(t->vals[r], t->tupdesc, 1, &isnull), &when))
			check_lxw(worksheet_write_datetime(data, row, 0, &when, book->day_format), "date");
		else
			check_lxw(worksheet_write_string(data, row, 0, day, NULL), "text");
		for (; r < n && strcmp(SPI_getvalue(t->vals[r], t->tupdesc, 1), day) == 0; r++)
		{
			char	   *code = SPI_getvalue(t->vals[r], t->tupdesc, 2);

			for (i = 0; i < ncur; i++)
				if (strcmp(list_nth(codes, i), code) == 0)
					last_liability[i] = num_at(t, r, 3);
			for (i = 0; i < lengthof(report_break_kinds); i++)
				kinds[i] += num_at(t, r, 4 + i);
		}
		for (i = 0; i < ncur; i++)
			check_lxw(worksheet_write_number(data, row, 1 + i, last_liability[i], money_format(book, list_nth(codes, i))),
					  "number");
		for (i = 0; i < lengthof(report_break_kinds); i++)
			check_lxw(worksheet_write_number(data, row, col_breaks + i, kinds[i], NULL), "number");
		/* the breaks chart's categories: text, so each day gets an equal, wide bar */
		check_lxw(worksheet_write_string(data, row, col_scores - 1, day, NULL), "text");
		if (days < REPORT_SCORE_BINS)
		{
			check_lxw(worksheet_write_number(data, row, col_scores, (double) days / REPORT_SCORE_BINS, NULL), "number");
			check_lxw(worksheet_write_number(data, row, col_scores + 1, bins[days], NULL), "number");
		}
		days++;
	}
	/* fewer days than bins: the rest of the histogram below */
	for (i = days; i < REPORT_SCORE_BINS; i++)
	{
		check_lxw(worksheet_write_number(data, 1 + i, col_scores, (double) i / REPORT_SCORE_BINS, NULL), "number");
		check_lxw(worksheet_write_number(data, 1 + i, col_scores + 1, bins[i], NULL), "number");
	}
	check_lxw(worksheet_set_column(data, 0, 0, 12, NULL), "column width");
	check_lxw(worksheet_set_column(data, 1, col_scores + 1, 18, NULL), "column width");
	worksheet_freeze_panes(data, 1, 0);
	set_print_layout(data, true);
	*currencies = codes;
	return days;
}

static lxw_chart *
add_chart(Book *book, uint8_t type, const char *title, const char *x_name, const char *y_name)
{
	lxw_chart  *chart = workbook_add_chart(book->workbook, type);

	if (chart == NULL)
		ereport(ERROR, (errcode(ERRCODE_IO_ERROR), errmsg("could not add chart \"%s\"", title)));
	chart_title_set_name(chart, title);
	chart_axis_set_name(chart->x_axis, x_name);
	chart_axis_set_name(chart->y_axis, y_name);
	chart_legend_set_position(chart, LXW_CHART_LEGEND_BOTTOM);
	return chart;
}

/*
 * The three charts of the summary, drawn from Chart Data: wallet liability
 * per currency over time, breaks per day by kind, anomaly scores.
 */
static void
insert_charts(Book *book, lxw_worksheet *summary, lxw_row_t at, int days, List *currencies)
{
	lxw_chart_options placement = {.x_scale = 1.0, .y_scale = 1.0};
	lxw_chart  *chart;
	int			col_breaks = 1 + list_length(currencies);
	int			col_scores = col_breaks + lengthof(report_break_kinds) + 2;
	lxw_row_t	last = Max(days, 1);
	int			i;

	chart = add_chart(book, LXW_CHART_LINE, "Wallet liability per currency", "Day (UTC)", "Closing liability");
	for (i = 0; i < list_length(currencies); i++)
	{
		lxw_chart_series *s = chart_add_series(chart, NULL, NULL);

		chart_series_set_categories(s, CHART_DATA_SHEET, 1, 0, last, 0);
		chart_series_set_values(s, CHART_DATA_SHEET, 1, 1 + i, last, 1 + i);
		chart_series_set_name(s, list_nth(currencies, i));
	}
	chart_axis_set_num_format(chart->x_axis, DAY_FORMAT);
	check_lxw(worksheet_insert_chart_opt(summary, at, 0, chart, &placement), "chart");

	chart = add_chart(book, LXW_CHART_COLUMN_STACKED, "Breaks per day by kind", "Day (UTC)", "Breaks");
	for (i = 0; i < lengthof(report_break_kinds); i++)
	{
		lxw_chart_series *s = chart_add_series(chart, NULL, NULL);

		chart_series_set_categories(s, CHART_DATA_SHEET, 1, col_scores - 1, last, col_scores - 1);
		chart_series_set_values(s, CHART_DATA_SHEET, 1, col_breaks + i, last, col_breaks + i);
		chart_series_set_name(s, report_break_kinds[i]);
	}
	chart_axis_set_num_format(chart->x_axis, DAY_FORMAT);
	check_lxw(worksheet_insert_chart_opt(summary, at, 4, chart, &placement), "chart");

	chart = add_chart(book, LXW_CHART_COLUMN, "Anomaly scores (active model)", "Score from", "Anomalies");
	{
		lxw_chart_series *s = chart_add_series(chart, NULL, NULL);

		chart_series_set_categories(s, CHART_DATA_SHEET, 1, col_scores, REPORT_SCORE_BINS, col_scores);
		chart_series_set_values(s, CHART_DATA_SHEET, 1, col_scores + 1, REPORT_SCORE_BINS, col_scores + 1);
		chart_series_set_name(s, "anomalies");
	}
	chart_axis_set_num_format(chart->x_axis, "0.0");
	placement.x_offset = 24;	/* clear of the second chart, which is wider than columns 4-7 */
	check_lxw(worksheet_insert_chart_opt(summary, at, 8, chart, &placement), "chart");
}

/* Rows a chart of the default size (480 x 288 px) covers, and a blank one. */
#define CHART_ROWS 16

/*
 * The top of the Summary sheet: title, period, as-of time, figures per
 * currency, breaks by kind.  Returns the next free row (for the charts).
 */
static lxw_row_t
write_summary(Book *book, lxw_worksheet *summary)
{
	SPITupleTable *t;
	uint64		n;
	uint64		r;
	lxw_row_t	row = 0;
	int			i;

	check_lxw(worksheet_write_string(summary, row, 0, "Balance reports: Summary", book->title_format), "text");
	row += 2;
	check_lxw(worksheet_write_string(summary, row, 0, "Period from", book->bold_format), "text");
	write_time_cell(book, summary, row, 1, book->period.has_from, book->period.from, "the first transaction");
	row++;
	check_lxw(worksheet_write_string(summary, row, 0, "Period to (excluded)", book->bold_format), "text");
	write_time_cell(book, summary, row, 1, book->period.has_to, book->period.to, "now");
	row++;
	check_lxw(worksheet_write_string(summary, row, 0, "As of (last refresh)", book->bold_format), "text");
	t = export_period_rows(&book->period, REPORT_AS_OF_QUERY, &n);
	{
		bool		isnull = true;
		Datum		as_of = n > 0 ? SPI_getbinval(t->vals[0], t->tupdesc, 1, &isnull) : (Datum) 0;

		write_time_cell(book, summary, row, 1, !isnull, isnull ? 0 : DatumGetTimestampTz(as_of),
						"no successful refresh yet");
	}
	row++;
	check_lxw(worksheet_write_string(summary, row, 0, "Exported at", book->bold_format), "text");
	write_time_cell(book, summary, row, 1, true, GetCurrentStatementStartTimestamp(), "");
	row += 2;

	check_lxw(worksheet_write_string(summary, row++, 0, "Figures per currency", book->bold_format), "text");
	for (i = 0; i < lengthof(currency_headers); i++)
		check_lxw(worksheet_write_string(summary, row, i, currency_headers[i], book->wrapped_header_format), "header");
	row++;
	t = export_period_rows(&book->period, REPORT_CURRENCY_QUERY, &n);
	if (n == 0)
		check_lxw(worksheet_write_string(summary, row++, 0, "no transactions in the period", NULL), "text");
	for (r = 0; r < n; r++, row++)
	{
		char	   *code = SPI_getvalue(t->vals[r], t->tupdesc, 1);

		check_lxw(worksheet_write_string(summary, row, 0, code, NULL), "text");
		for (i = 1; i < lengthof(currency_headers); i++)
			check_lxw(worksheet_write_number(summary, row, i, num_at(t, r, i + 1),
											 i >= 2 && i <= 5 ? money_format(book, code) : NULL), "number");
	}
	row++;

	check_lxw(worksheet_write_string(summary, row++, 0, "Breaks by kind", book->bold_format), "text");
	check_lxw(worksheet_write_string(summary, row, 0, "Kind", book->header_format), "header");
	check_lxw(worksheet_write_string(summary, row, 1, "Breaks", book->header_format), "header");
	check_lxw(worksheet_write_string(summary, row, 2, "Users", book->header_format), "header");
	row++;
	{
		ReportBreakCounts counts = report_break_counts(&book->period);

		for (i = 0; i < lengthof(report_break_kinds); i++, row++)
		{
			check_lxw(worksheet_write_string(summary, row, 0, report_break_kinds[i], NULL), "text");
			check_lxw(worksheet_write_number(summary, row, 1, (double) counts.breaks[i], NULL), "number");
			check_lxw(worksheet_write_number(summary, row, 2, (double) counts.users[i], NULL), "number");
		}
	}
	row++;

	check_lxw(worksheet_set_column(summary, 0, 0, 22, NULL), "column width");
	check_lxw(worksheet_set_column(summary, 1, 1, 26, NULL), "column width");
	check_lxw(worksheet_set_column(summary, 2, lengthof(currency_headers) - 1, 16, NULL), "column width");
	set_print_layout(summary, false);
	worksheet_fit_to_pages(summary, 1, 1);	/* the summary is one page */
	return row;
}

/* The list of the sheets with their rows, at the foot of the summary. */
static void
write_contents(Book *book, lxw_worksheet *summary, lxw_row_t row, List *reports)
{
	ListCell   *lc;

	check_lxw(worksheet_write_string(summary, row++, 0, "Sheets", book->bold_format), "text");
	check_lxw(worksheet_write_string(summary, row, 0, "Report", book->header_format), "header");
	check_lxw(worksheet_write_string(summary, row, 1, "Rows", book->header_format), "header");
	check_lxw(worksheet_write_string(summary, row, 3, "Sheets", book->header_format), "header");
	row++;
	foreach(lc, reports)
	{
		ReportSheets *rs = lfirst(lc);
		StringInfoData names;
		ListCell   *ln;

		initStringInfo(&names);
		foreach(ln, rs->sheet_names)
			appendStringInfo(&names, "%s%s", names.len ? ", " : "", (char *) lfirst(ln));
		check_lxw(worksheet_write_string(summary, row, 0, rs->report->view, NULL), "text");
		check_lxw(worksheet_write_number(summary, row, 1, (double) rs->rows, NULL), "number");
		check_lxw(worksheet_write_string(summary, row, 3, names.data, NULL), "text");
		row++;
	}
}

/*
 * calo_recon.export_workbook(file text DEFAULT 'balance_reports.xlsx',
 *     period_from timestamptz DEFAULT NULL, period_to timestamptz DEFAULT NULL)
 *   RETURNS bigint
 *
 * Returns the data rows written over the report sheets.
 */
Datum
calo_recon_export_workbook(PG_FUNCTION_ARGS)
{
	const char *file_arg = PG_ARGISNULL(0) ? "balance_reports.xlsx" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Book		book;
	SafePathRoot *root;
	char	   *rel_folder_arg;
	char	   *name;
	ExportFolder *folder;
	ExportFile *file;
	lxw_workbook *volatile workbook = NULL;
	lxw_workbook_options options = {.constant_memory = LXW_TRUE, .tmpdir = NULL, .use_zip64 = LXW_TRUE};
	int64		rows = 0;
	int			guc_level;

	memset(&book, 0, sizeof(book));
	book.period = export_period_args(fcinfo, 1);
	book.sheet_rows = calo_recon_workbook_sheet_rows;
	safe_path_check_privilege(SAFE_PATH_WRITE, "export_workbook()");
	root = export_open_root();
	export_split_file(root, file_arg, "workbook", ".xlsx", &rel_folder_arg, &name);
	export_lock();
	folder = export_open_folder(root, rel_folder_arg);
	file = export_begin(folder, name);
	export_finish_file(file);	/* created empty: libxlsxwriter replaces it by name */
	guc_level = export_fix_output_settings();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		lxw_worksheet *summary;
		lxw_worksheet *chart_data;
		lxw_row_t	chart_row;
		List	   *written = NIL;
		List	   *currencies;
		int			days;
		int			nreports;
		const ExportReport *reports = export_report_list(&nreports);
		lxw_error	status;
		int			i;

		/*
		 * libxlsxwriter opens the workbook and its own temporary files by
		 * name: both are given through the private working folder's
		 * descriptor, where no one else can put or swap a file.
		 */
		options.tmpdir = folder->work_path;
		workbook = workbook_new_opt(export_temp_path(file), &options);
		if (workbook == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("could not create workbook \"%s\"", file->rel_path)));
		book.workbook = workbook;
		book.header_format = workbook_add_format(workbook);
		format_set_bold(book.header_format);
		format_set_bottom(book.header_format, LXW_BORDER_THIN);
		book.wrapped_header_format = workbook_add_format(workbook);
		format_set_bold(book.wrapped_header_format);
		format_set_bottom(book.wrapped_header_format, LXW_BORDER_THIN);
		format_set_text_wrap(book.wrapped_header_format);
		format_set_align(book.wrapped_header_format, LXW_ALIGN_VERTICAL_BOTTOM);
		book.title_format = workbook_add_format(workbook);
		format_set_bold(book.title_format);
		format_set_font_size(book.title_format, 16);
		book.bold_format = workbook_add_format(workbook);
		format_set_bold(book.bold_format);
		book.time_format = workbook_add_format(workbook);
		format_set_num_format(book.time_format, TIME_FORMAT);
		format_set_align(book.time_format, LXW_ALIGN_LEFT);
		book.day_format = workbook_add_format(workbook);
		format_set_num_format(book.day_format, DAY_FORMAT);
		book.plain_money_format = workbook_add_format(workbook);
		format_set_num_format(book.plain_money_format, "#,##0.00");
		load_currencies(&book);

		summary = workbook_add_worksheet(workbook, SUMMARY_SHEET);
		if (summary == NULL)
			ereport(ERROR, (errcode(ERRCODE_IO_ERROR), errmsg("could not add the summary sheet")));
		chart_row = write_summary(&book, summary);

		for (i = 0; i < nreports; i++)
		{
			Portal		portal = export_open_report(&reports[i], &book.period);
			ReportSheets *rs;

			if (portal == NULL)
				continue;
			rs = palloc0(sizeof(ReportSheets));
			rows += write_report(&book, &reports[i], portal, rs);
			written = lappend(written, rs);
			SPI_cursor_close(portal);
		}
		/*
		 * Sheets are in the order they are added: the chart data comes last.
		 * Each sheet's rows are written in order (constant_memory), so the
		 * summary's charts and contents go below what it already holds.
		 */
		chart_data = workbook_add_worksheet(workbook, CHART_DATA_SHEET);
		if (chart_data == NULL)
			ereport(ERROR, (errcode(ERRCODE_IO_ERROR), errmsg("could not add the chart data sheet")));
		days = write_chart_data(&book, chart_data, &currencies);
		insert_charts(&book, summary, chart_row, days, currencies);
		write_contents(&book, summary, chart_row + CHART_ROWS, written);
		worksheet_activate(summary);
		status = workbook_close(workbook);
		workbook = NULL;
		check_lxw(status, "close");
	}
	PG_CATCH();
	{
		/*
		 * workbook_close is the only way libxlsxwriter frees a workbook; the
		 * working folder goes with the aborted (sub)transaction.
		 */
		if (workbook != NULL)
			(void) workbook_close(workbook);
		PG_RE_THROW();
	}
	PG_END_TRY();
	export_finish_file(file);
	export_publish(folder);
	export_close_folder(folder);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	PG_RETURN_INT64(rows);
}
