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
#include <sys/stat.h>
#include <unistd.h>
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
#include "textwrap.h"

/*
 * The most sheets a workbook may have.  libxlsxwriter keeps one temporary
 * file open per sheet until the workbook is closed (constant_memory), so
 * each sheet is a descriptor of the backend: a workbook needing more is
 * refused when it would add the next one (54000; nothing is published and
 * every file is closed), never left to run out of descriptors.  Counting
 * the sheets up front would read every report twice.  Nine reports at the default calo_recon.workbook_sheet_rows
 * take 11 sheets.
 */
#define WORKBOOK_MAX_SHEETS 250
#define EXCEL_MAX_STRING 32767
#define EXCEL_MAX_SHEET_NAME 31
/* A text column no wider than this (characters); longer text wraps in it. */
#define MAX_TEXT_WIDTH 40.0
/* what a cell's text leaves of its column's width (the cell's margins) */
#define TEXT_CELL_PADDING 1.5
#define MAX_NUMBER_WIDTH 30.0
/*
 * The smallest print scale a report sheet may have: its 11 pt text prints at
 * 7.7 pt or more.  A sheet wider than a page at this scale prints on pages
 * across, its first column repeated, rather than shrunk past reading.
 */
#define MIN_PRINT_SCALE 70
/*
 * LibreOffice lays the columns out about 6 % wider than Excel's pixel rule
 * (width_pixels): a sheet within 10 % of the page at MIN_PRINT_SCALE prints
 * on pages across rather than one page wide below it.
 */
#define PRINT_WIDTH_MARGIN 1.1
/* A4 landscape, less the margins set below (inches) */
#define PAGE_WIDTH_INCHES (297.0 / 25.4)
#define SIDE_MARGIN_INCHES 0.4
#define TOP_MARGIN_INCHES 0.5
#define SUMMARY_SHEET "Summary"
#define CHART_DATA_SHEET "Chart Data"
#define TIME_FORMAT "yyyy-mm-dd hh:mm:ss \"UTC\""
#define DAY_FORMAT "yyyy-mm-dd"
/* Excel shows a boolean cell as TRUE/FALSE itself; LibreOffice needs the format. */
#define BOOL_FORMAT "\"TRUE\";\"TRUE\";\"FALSE\""
/*
 * Number formats end in "_)", a blank the width of ")": a right-aligned
 * number never touches the left-aligned text of the next column.
 */
#define NUMBER_PAD "_)"
#define COUNT_FORMAT "#,##0" NUMBER_PAD
#define ID_FORMAT "0" NUMBER_PAD
/* exact decimals as they are, never in scientific notation (a drift of 1E-10) */
#define DECIMAL_FORMAT "0.0###########" NUMBER_PAD
#define DECIMAL_PLACES 12
/* a measure in floating point (an anomaly score) */
#define MEASURE_FORMAT "0.0000" NUMBER_PAD
#define MEASURE_PLACES 4
#define SCORE_BIN_FORMAT "0.0" NUMBER_PAD


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
	lxw_format *wrapped_header_format;	/* narrow columns: left, wrapped */
	lxw_format *number_header_format;	/* over numbers: right, wrapped */
	lxw_format *bool_header_format;	/* over booleans: centred, wrapped */
	lxw_format *title_format;
	lxw_format *bold_format;
	lxw_format *time_format;
	lxw_format *day_format;
	lxw_format *text_format;
	lxw_format *wrapped_text_format;	/* text longer than MAX_TEXT_WIDTH */
	lxw_format *bool_format;
	lxw_format *count_format;
	lxw_format *id_format;
	lxw_format *decimal_format;
	lxw_format *measure_format;
	lxw_format *score_bin_format;	/* the histogram's bins: 0.0, 0.1, ... */
	lxw_format *plain_money_format;	/* money of no known currency */
	List	   *money_formats;	/* MoneyFormat */
	List	   *currency_codes; /* calo_recon.currencies, for the decimals */
	List	   *currency_minor; /* int, same order */
	ExportPeriod period;
	int64		sheet_rows;
	int			sheets;			/* added so far: each holds a descriptor (ReserveExternalFD) */
	ReportDays	days;			/* the daily rows: a sheet, the summary, the charts */
} Book;

static void
check_lxw(lxw_error status, const char *what)
{
	if (status != LXW_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not write the workbook (%s): %s", what, lxw_strerror(status))));
}

/*
 * Adds a sheet: its temporary file is a descriptor fd.c does not manage,
 * reserved until the workbook is closed or released (release_sheets).
 */
static lxw_worksheet *
add_sheet(Book *book, const char *name)
{
	lxw_worksheet *sheet;

	if (book->sheets >= WORKBOOK_MAX_SHEETS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the workbook would take more than %d sheets", WORKBOOK_MAX_SHEETS),
				 errdetail("Each report takes a sheet per %lld rows (calo_recon.workbook_sheet_rows), besides the Summary and Chart Data; each sheet holds a file open while the workbook is written.",
						   (long long) book->sheet_rows),
				 errhint("Raise calo_recon.workbook_sheet_rows (at most 1048575), or export a shorter period.")));
	sheet = workbook_add_worksheet(book->workbook, name);
	if (sheet == NULL)
		ereport(ERROR, (errcode(ERRCODE_IO_ERROR), errmsg("could not add worksheet \"%s\"", name)));
	ReserveExternalFD();
	book->sheets++;
	return sheet;
}

static void
release_sheets(Book *book)
{
	for (; book->sheets > 0; book->sheets--)
		ReleaseExternalFD();
}

/*
 * Frees a workbook that will not be written, with the temporary file of
 * each sheet: lxw_workbook_free frees the memory only, and workbook_close,
 * the one call that closes the files, would write the whole workbook out.
 */
static void
discard_workbook(lxw_workbook *workbook)
{
	lxw_worksheet *sheet;

	STAILQ_FOREACH(sheet, workbook->worksheets, list_pointers)
	{
		if (sheet->optimize_tmpfile)
			fclose(sheet->optimize_tmpfile);
		sheet->optimize_tmpfile = NULL;
		sheet->file = NULL;
	}
	lxw_workbook_free(workbook);
}

/* A sheet's temporary file as the descriptor and file it is, to find it again after a failed close. */
typedef struct SheetFile
{
	int			fd;
	dev_t		dev;
	ino_t		ino;
} SheetFile;

/*
 * workbook_close closes a sheet's temporary file when it writes the sheet
 * into the package, and frees the workbook whatever happens: when it fails
 * part way (the package cannot be created, the disk is full), the files of
 * the sheets it did not reach stay open.  Those are found by their
 * descriptor still naming the same (deleted, so never reused) file.
 */
static SheetFile *
sheet_files(lxw_workbook *workbook, int *count)
{
	SheetFile  *files = palloc(sizeof(SheetFile) * Max(workbook->num_worksheets, 1));
	lxw_worksheet *sheet;
	int			n = 0;

	STAILQ_FOREACH(sheet, workbook->worksheets, list_pointers)
	{
		struct stat st;

		if (sheet->optimize_tmpfile && n < workbook->num_worksheets &&
			fstat(fileno(sheet->optimize_tmpfile), &st) == 0)
		{
			files[n].fd = fileno(sheet->optimize_tmpfile);
			files[n].dev = st.st_dev;
			files[n].ino = st.st_ino;
			n++;
		}
	}
	*count = n;
	return files;
}

static void
close_sheet_files(const SheetFile *files, int count)
{
	for (int i = 0; i < count; i++)
	{
		struct stat st;

		if (fstat(files[i].fd, &st) == 0 && st.st_dev == files[i].dev && st.st_ino == files[i].ino)
			close(files[i].fd);
	}
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
	appendStringInfo(&pattern, " \"%s\"" NUMBER_PAD, strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(currency) ? currency : "");
	made = MemoryContextAlloc(TopTransactionContext, sizeof(MoneyFormat));
	made->currency = MemoryContextStrdup(TopTransactionContext, currency);
	made->format = workbook_add_format(book->workbook);
	format_set_num_format(made->format, pattern.data);
	format_set_align(made->format, LXW_ALIGN_VERTICAL_TOP);
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
	CELL_OMIT,					/* json: for programs, the CSV carries it */
	CELL_TEXT,
	CELL_COUNT,					/* integers: counts, with thousands separators */
	CELL_ID,					/* integer identifiers: digits only */
	CELL_DECIMAL,				/* exact decimals: tolerances, thresholds, drift */
	CELL_MEASURE,				/* floating point: scores */
	CELL_MONEY,					/* numeric amount of the row's currency */
	CELL_BOOL,
	CELL_TIME,
	CELL_DAY
} CellKind;

/*
 * Money is every numeric column of a report with a currency column, but the
 * tolerance (half a minor unit, finer than the currency's format) and the
 * exact differences of precision_drift (the drift itself).  A json column
 * (an anomaly's attribution, a transaction's metadata) is a structure for
 * programs: a sheet shows the sentence and the figures, the CSV keeps it.
 */
static CellKind
cell_kind(const ExportReport *report, TupleDesc desc, int i, bool has_currency)
{
	Form_pg_attribute att = TupleDescAttr(desc, i);
	Oid			base = getBaseType(att->atttypid);
	const char *name = NameStr(att->attname);
	size_t		len = strlen(name);

	if (base == JSONOID || base == JSONBOID)
		return CELL_OMIT;
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
	if (base == INT2OID || base == INT4OID || base == INT8OID)
		return strcmp(name, "id") == 0 || (len > 3 && strcmp(name + len - 3, "_id") == 0)
			? CELL_ID : CELL_COUNT;
	if (base == NUMERICOID && has_currency && strcmp(report->view, "precision_drift") != 0 &&
		strcmp(name, "tolerance") != 0)
		return CELL_MONEY;
	return base == FLOAT4OID || base == FLOAT8OID ? CELL_MEASURE : CELL_DECIMAL;
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

/* Characters of the fraction DECIMAL_FORMAT shows ("." and at least one digit). */
static int
fraction_width(double v)
{
	char		text[64];
	char	   *end;

	if (!isfinite(v) || fabs(v) >= 1e15)
		return 2;
	snprintf(text, sizeof(text), "%.*f", DECIMAL_PLACES, fabs(v));
	end = text + strlen(text) - 1;
	while (*end == '0' && end[-1] != '.')
		end--;
	return (int) (end - strchr(text, '.')) + 1;
}

/*
 * A column's heading: its name in words ("wallet_liability" becomes "Wallet
 * liability"), which wraps in a narrow column; the CSV keeps the names.
 */
static char *
column_heading(const char *name)
{
	char	   *heading = pstrdup(name);
	char	   *word;

	for (char *p = heading; *p; p++)
		if (*p == '_')
			*p = ' ';
	for (word = heading; word && *word; word = strchr(word, ' '), word = word ? word + 1 : NULL)
		if (strncmp(word, "id", 2) == 0 && (word[2] == ' ' || word[2] == '\0'))
			word[0] = 'I', word[1] = 'D';
	heading[0] = pg_ascii_toupper((unsigned char) heading[0]);
	return heading;
}

/* The width of a wrapped heading: its longest word, in bold. */
static double
heading_width(const char *heading)
{
	double		longest = 0;
	const char *word = heading;

	while (*word)
	{
		size_t		len = strcspn(word, " ");
		longest = Max(longest, text_draw_width(word, len) * 1.1 + 2);
		word += len;
		word += strspn(word, " ");
	}
	return longest;
}

typedef struct SheetWriter
{
	Book	   *book;
	const ExportReport *report;
	lxw_worksheet *sheet;
	ExportColumns *columns;
	CellKind   *kinds;
	Oid		   *base_types;
	int		   *sheet_cols;		/* each attribute's column, -1 when omitted */
	int			ncols;			/* columns on the sheet */
	int			currency_col;	/* -1 when the report has none */
	double	   *widths;			/* per sheet column */
	int			part;			/* 1 for the first sheet of the report */
	int64		part_rows;		/* data rows on the current sheet */
	List	   *sheet_names;	/* every sheet of the report */
	TupleDesc	desc;
} SheetWriter;

/* Excel's pixels of a column width (a digit is 7 pixels in the default font, plus padding). */
static double
width_pixels(double width)
{
	return floor(width * 7 + 0.5) + 5;
}

static void
set_print_layout(lxw_worksheet *sheet, bool repeat_header)
{
	worksheet_set_landscape(sheet);
	worksheet_set_paper(sheet, 9);	/* A4 */
	worksheet_set_margins(sheet, SIDE_MARGIN_INCHES, SIDE_MARGIN_INCHES, TOP_MARGIN_INCHES, TOP_MARGIN_INCHES);
	worksheet_fit_to_pages(sheet, 1, 0);	/* one page wide, as many tall as needed */
	if (repeat_header)
		check_lxw(worksheet_repeat_rows(sheet, 0, 0), "repeated header row");
}

/*
 * A report sheet prints one page wide when that keeps it at MIN_PRINT_SCALE
 * or larger; a wider one prints at MIN_PRINT_SCALE on pages across (a row's
 * pages one after the other), its first column repeated on each.
 */
static void
set_report_print_layout(lxw_worksheet *sheet, const double *widths, int ncols)
{
	double		page_pixels = (PAGE_WIDTH_INCHES - 2 * SIDE_MARGIN_INCHES) * 96;
	double		sheet_pixels = 0;
	int			i;

	for (i = 0; i < ncols; i++)
		sheet_pixels += width_pixels(widths[i]);
	set_print_layout(sheet, true);
	if (sheet_pixels * PRINT_WIDTH_MARGIN * MIN_PRINT_SCALE / 100 > page_pixels)
	{
		worksheet_fit_to_pages(sheet, 0, 0);
		worksheet_set_print_scale(sheet, MIN_PRINT_SCALE);
		worksheet_print_across(sheet);
		check_lxw(worksheet_repeat_columns(sheet, 0, 0), "repeated first column");
	}
}

static void
finish_part(SheetWriter *w)
{
	int			i;

	for (i = 0; i < w->ncols; i++)
		check_lxw(worksheet_set_column(w->sheet, i, i, w->widths[i], NULL), "column width");
	worksheet_freeze_panes(w->sheet, 1, 0);
	if (w->ncols > 0)
	{
		check_lxw(worksheet_autofilter(w->sheet, 0, 0, w->part_rows, w->ncols - 1), "autofilter");
		/*
		 * The report's columns and nothing else: a long word of the last
		 * column (a file's path) would otherwise run on into the empty
		 * columns after it, and the page would shrink to print it whole.
		 */
		check_lxw(worksheet_print_area(w->sheet, 0, 0, w->part_rows, w->ncols - 1), "print area");
	}
	set_report_print_layout(w->sheet, w->widths, w->ncols);
}

static void
begin_part(SheetWriter *w)
{
	char	   *name = w->part == 1 ? pstrdup(w->report->sheet)
		: psprintf("%s (%d)", w->report->sheet, w->part);
	MemoryContext old;
	int			i;

	Assert(strlen(name) <= EXCEL_MAX_SHEET_NAME);
	w->sheet = add_sheet(w->book, name);
	old = MemoryContextSwitchTo(TopTransactionContext);
	w->sheet_names = lappend(w->sheet_names, pstrdup(name));
	MemoryContextSwitchTo(old);
	w->part_rows = 0;
	for (i = 0; i < w->columns->natts; i++)
	{
		int			col = w->sheet_cols[i];
		char	   *heading;
		lxw_format *format;

		if (col < 0)
			continue;
		heading = column_heading(NameStr(TupleDescAttr(w->desc, i)->attname));
		switch (w->kinds[i])
		{
			case CELL_COUNT:
			case CELL_ID:
			case CELL_DECIMAL:
			case CELL_MEASURE:
			case CELL_MONEY:
				format = w->book->number_header_format;
				break;
			case CELL_BOOL:
				format = w->book->bool_header_format;
				break;
			default:
				format = w->book->wrapped_header_format;
				break;
		}
		w->widths[col] = Max(heading_width(heading),
							 w->kinds[i] == CELL_TIME ? 25 : w->kinds[i] == CELL_DAY ? 11 : 7);
		check_lxw(worksheet_write_string(w->sheet, 0, col, heading, format), "header");
	}
}

static void
write_sheet_row(HeapTuple tuple, TupleDesc desc, int64 row_no, void *arg)
{
	SheetWriter *w = arg;
	Book	   *book = w->book;
	char	   *currency = NULL;
	lxw_row_t	row;
	int			i;
	int			lines;			/* the most lines a wrapped cell of the row takes */

	if (w->part_rows >= book->sheet_rows)
	{
		finish_part(w);
		w->part++;
		begin_part(w);
	}
	row = ++w->part_rows;
	if (w->currency_col >= 0)
		currency = SPI_getvalue(tuple, desc, w->currency_col + 1);
	lines = 1;
	for (i = 0; i < w->columns->natts; i++)
	{
		int			col = w->sheet_cols[i];
		bool		isnull;
		Datum		value;
		lxw_datetime when;
		char	   *text;
		double		number;
		double		width;
		lxw_format *format;
		bool		wraps;

		if (col < 0)
			continue;
		value = SPI_getbinval(tuple, desc, i + 1, &isnull);
		if (isnull)
			continue;
		switch (w->kinds[i])
		{
			case CELL_OMIT:
				break;
			case CELL_COUNT:
			case CELL_ID:
			case CELL_DECIMAL:
			case CELL_MEASURE:
			case CELL_MONEY:
				number = datum_to_double(w->base_types[i], value, w->columns->out_funcs[i]);
				switch (w->kinds[i])
				{
					case CELL_MONEY:
						format = money_format(book, currency);
						width = number_width(number) + 10;	/* decimals, code and pad */
						break;
					case CELL_DECIMAL:
						format = book->decimal_format;
						width = number_width(number) + fraction_width(number) + 1;
						break;
					case CELL_MEASURE:
						format = book->measure_format;
						width = number_width(number) + MEASURE_PLACES + 2;
						break;
					case CELL_ID:
						format = book->id_format;
						width = floor(log10(Max(fabs(number), 1))) + 3;
						break;
					default:
						format = book->count_format;
						width = number_width(number) + 2;
						break;
				}
				check_lxw(worksheet_write_number(w->sheet, row, col, number, format), "number");
				w->widths[col] = Max(w->widths[col], Min(width, MAX_NUMBER_WIDTH));
				break;
			case CELL_BOOL:
				check_lxw(worksheet_write_boolean(w->sheet, row, col, DatumGetBool(value), book->bool_format),
						  "boolean");
				break;
			case CELL_TIME:
			case CELL_DAY:
				if (datum_to_excel_time(TupleDescAttr(desc, i)->atttypid, value, &when))
				{
					check_lxw(worksheet_write_datetime(w->sheet, row, col, &when,
													   w->kinds[i] == CELL_DAY ? book->day_format : book->time_format),
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
				width = text_draw_width(text, strlen(text)) + TEXT_CELL_PADDING;
				/*
				 * Words (an explanation) wrap onto more lines; one long word
				 * (a file's path, an id) keeps one line and prints cut at the
				 * column's edge: wrapped, it would make every row of its sheet
				 * three lines tall.  The cell holds it whole either way.
				 */
				wraps = width > MAX_TEXT_WIDTH && strchr(text, ' ') != NULL;
				check_lxw(worksheet_write_string(w->sheet, row, col, excel_string(text),
												 wraps ? book->wrapped_text_format : book->text_format),
						  "text");
				w->widths[col] = Max(w->widths[col], Min(width, MAX_TEXT_WIDTH));
				/* the column is MAX_TEXT_WIDTH wide once a cell of it wraps */
				if (wraps)
					lines = Max(lines, text_wrap_lines(text, MAX_TEXT_WIDTH - TEXT_CELL_PADDING));
				break;
		}
	}
	/*
	 * A spreadsheet keeps the default height for a row written in order, so
	 * its wrapped lines would print over the next row's: the row is made as
	 * tall as its longest cell's lines.
	 */
	if (lines > 1)
		check_lxw(worksheet_set_row(w->sheet, row, LXW_DEF_ROW_HEIGHT * lines, NULL), "row height");
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
write_report(Book *book, const ExportReport *report, Portal portal, const ReportDays *days, ReportSheets *out)
{
	TupleDesc	desc = days ? days->table->tupdesc : portal->tupDesc;
	int			natts = days ? days->view_columns : desc->natts;
	SheetWriter w;
	int64		rows;
	int			i;

	memset(&w, 0, sizeof(w));
	w.book = book;
	w.report = report;
	w.desc = desc;
	w.columns = export_columns(desc);
	w.columns->natts = natts;
	w.widths = palloc(sizeof(double) * Max(natts, 1));
	w.kinds = palloc(sizeof(CellKind) * Max(natts, 1));
	w.sheet_cols = palloc(sizeof(int) * Max(natts, 1));
	w.base_types = palloc(sizeof(Oid) * Max(natts, 1));
	for (i = 0; i < natts; i++)
		w.base_types[i] = getBaseType(TupleDescAttr(desc, i)->atttypid);
	w.currency_col = -1;
	for (i = 0; i < natts; i++)
		if (strcmp(NameStr(TupleDescAttr(desc, i)->attname), "currency") == 0)
			w.currency_col = i;
	for (i = 0; i < natts; i++)
	{
		w.kinds[i] = cell_kind(report, desc, i, w.currency_col >= 0);
		w.sheet_cols[i] = w.kinds[i] == CELL_OMIT ? -1 : w.ncols++;
	}
	w.part = 1;
	begin_part(&w);
	if (days)
	{
		/* the daily rows the Summary and the charts read too (few: days x currencies) */
		for (rows = 0; rows < (int64) days->count; rows++)
			write_sheet_row(days->table->vals[rows], desc, rows, &w);
	}
	else
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

/* A number of the daily rows; NAN for NULL (money out of the exact range). */
static double
num_at(SPITupleTable *t, uint64 row, int col)
{
	char	   *text = SPI_getvalue(t->vals[row], t->tupdesc, col);

	return text ? strtod(text, NULL) : NAN;
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

/* A heading of the Chart Data sheet, and the width it needs. */
static void
chart_data_heading(Book *book, lxw_worksheet *data, double *widths, int col, const char *heading, lxw_format *format)
{
	check_lxw(worksheet_write_string(data, 0, col, heading, format), "header");
	widths[col] = Max(widths[col], heading_width(heading));
}

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
	double	   *widths;
	int			i;

	/* the currencies first: they are the columns */
	t = book->days.table;
	n = book->days.count;
	codes = report_days_currencies(&book->days);
	ncur = list_length(codes);
	col_breaks = 1 + ncur;
	col_scores = col_breaks + lengthof(report_break_kinds) + 2;
	last_liability = palloc0(sizeof(double) * Max(ncur, 1));

	widths = palloc0(sizeof(double) * (col_scores + 2));
	chart_data_heading(book, data, widths, 0, "Day", book->wrapped_header_format);
	for (i = 0; i < ncur; i++)
		chart_data_heading(book, data, widths, 1 + i, psprintf("Wallet liability %s", (char *) list_nth(codes, i)),
						   book->number_header_format);
	for (i = 0; i < lengthof(report_break_kinds); i++)
		chart_data_heading(book, data, widths, col_breaks + i, column_heading(report_break_kinds[i]),
						   book->number_header_format);
	chart_data_heading(book, data, widths, col_scores - 1, "Day (text)", book->wrapped_header_format);
	chart_data_heading(book, data, widths, col_scores, "Score from", book->number_header_format);
	chart_data_heading(book, data, widths, col_scores + 1, "Anomalies", book->number_header_format);
	widths[0] = widths[col_scores - 1] = Max(widths[0], 11);

	/* the histogram; t stays valid until SPI_finish */
	report_score_bins(&book->period, bins);
	for (r = 0; r < n;)
	{
		char	   *day = SPI_getvalue(t->vals[r], t->tupdesc, book->days.day_col);
		bool		isnull;
		lxw_datetime when;
		double		kinds[lengthof(report_break_kinds)] = {0};
		lxw_row_t	row = 1 + days;

		if (datum_to_excel_time(DATEOID, SPI_getbinval(t->vals[r], t->tupdesc, book->days.day_col, &isnull), &when))
			check_lxw(worksheet_write_datetime(data, row, 0, &when, book->day_format), "date");
		else
			check_lxw(worksheet_write_string(data, row, 0, day, NULL), "text");
		for (; r < n && strcmp(SPI_getvalue(t->vals[r], t->tupdesc, book->days.day_col), day) == 0; r++)
		{
			char	   *code = SPI_getvalue(t->vals[r], t->tupdesc, book->days.currency_col);

			for (i = 0; i < ncur; i++)
				if (strcmp(list_nth(codes, i), code) == 0)
					last_liability[i] = num_at(t, r, book->days.liability_col);
			for (i = 0; i < lengthof(report_break_kinds); i++)
				kinds[i] += num_at(t, r, book->days.break_cols[i]);
		}
		for (i = 0; i < ncur; i++)
		{
			/* NULL (out of the exact range) stays an empty cell: a gap in the line */
			if (isnan(last_liability[i]))
				continue;
			check_lxw(worksheet_write_number(data, row, 1 + i, last_liability[i], money_format(book, list_nth(codes, i))),
					  "number");
			widths[1 + i] = Max(widths[1 + i], number_width(last_liability[i]) + 10);
		}
		for (i = 0; i < lengthof(report_break_kinds); i++)
			check_lxw(worksheet_write_number(data, row, col_breaks + i, kinds[i], book->count_format), "number");
		/* the breaks chart's categories: text, so each day gets an equal, wide bar */
		check_lxw(worksheet_write_string(data, row, col_scores - 1, day, NULL), "text");
		if (days < REPORT_SCORE_BINS)
		{
			check_lxw(worksheet_write_number(data, row, col_scores, (double) days / REPORT_SCORE_BINS, book->score_bin_format),
					  "number");
			check_lxw(worksheet_write_number(data, row, col_scores + 1, bins[days], book->count_format), "number");
		}
		days++;
	}
	/* fewer days than bins: the rest of the histogram below */
	for (i = days; i < REPORT_SCORE_BINS; i++)
	{
		check_lxw(worksheet_write_number(data, 1 + i, col_scores, (double) i / REPORT_SCORE_BINS, book->score_bin_format),
				  "number");
		check_lxw(worksheet_write_number(data, 1 + i, col_scores + 1, bins[i], book->count_format), "number");
	}
	for (i = 0; i < col_scores + 2; i++)
		check_lxw(worksheet_set_column(data, i, i, widths[i], NULL), "column width");
	worksheet_freeze_panes(data, 1, 0);
	set_report_print_layout(data, widths, col_scores + 2);
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
 * The charts stand side by side, placed by pixels from the first column (not
 * by columns, whose widths follow the figures): three of them, with their
 * gaps, print within a page at MIN_PRINT_SCALE.
 */
#define CHART_SCALE 0.85
#define CHART_PIXELS (480 * CHART_SCALE)
#define CHART_GAP_PIXELS 16

/*
 * The three charts of the summary, drawn from Chart Data: wallet liability
 * per currency over time, breaks per day by kind, anomaly scores.
 */
static void
insert_charts(Book *book, lxw_worksheet *summary, lxw_row_t at, int days, List *currencies)
{
	lxw_chart_options placement = {.x_scale = CHART_SCALE, .y_scale = CHART_SCALE};
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
	placement.x_offset = CHART_PIXELS + CHART_GAP_PIXELS;
	check_lxw(worksheet_insert_chart_opt(summary, at, 0, chart, &placement), "chart");

	chart = add_chart(book, LXW_CHART_COLUMN, "Anomaly scores (active model)", "Score from", "Anomalies");
	{
		lxw_chart_series *s = chart_add_series(chart, NULL, NULL);

		chart_series_set_categories(s, CHART_DATA_SHEET, 1, col_scores, REPORT_SCORE_BINS, col_scores);
		chart_series_set_values(s, CHART_DATA_SHEET, 1, col_scores + 1, REPORT_SCORE_BINS, col_scores + 1);
		chart_series_set_name(s, "anomalies");
	}
	chart_axis_set_num_format(chart->x_axis, SCORE_BIN_FORMAT);
	placement.x_offset = 2 * (CHART_PIXELS + CHART_GAP_PIXELS);
	check_lxw(worksheet_insert_chart_opt(summary, at, 0, chart, &placement), "chart");
}

/* Rows a chart (288 px tall at scale 1, rows of 20 px) covers, and a blank one. */
#define CHART_ROWS ((int) ceil(288 * CHART_SCALE / 20) + 1)

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
	double		widths[lengthof(currency_headers)] = {0};
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
	{
		check_lxw(worksheet_write_string(summary, row, i, currency_headers[i],
										 i == 0 ? book->wrapped_header_format : book->number_header_format), "header");
		widths[i] = Max(widths[i], heading_width(currency_headers[i]));
	}
	row++;
	t = book->days.table;
	n = book->days.ncurrencies;
	if (n == 0)
		check_lxw(worksheet_write_string(summary, row++, 0, "no transactions in the period", NULL), "text");
	for (r = 0; r < n; r++, row++)
	{
		uint64		at = book->days.currency_rows[r];
		char	   *code = SPI_getvalue(t->vals[at], t->tupdesc, book->days.first_figure);

		check_lxw(worksheet_write_string(summary, row, 0, code, NULL), "text");
		for (i = 1; i < lengthof(currency_headers); i++)
		{
			bool		money = i >= 2 && i <= 5;
			double		number = num_at(t, at, book->days.first_figure + i);

			/* NULL (out of the exact range) is an empty cell, never 0 */
			if (isnan(number))
				continue;
			check_lxw(worksheet_write_number(summary, row, i, number,
											 money ? money_format(book, code) : book->count_format), "number");
			widths[i] = Max(widths[i], number_width(number) + (money ? 10 : 2));
		}
	}
	row++;

	check_lxw(worksheet_write_string(summary, row++, 0, "Breaks by kind", book->bold_format), "text");
	check_lxw(worksheet_write_string(summary, row, 0, "Kind", book->header_format), "header");
	check_lxw(worksheet_write_string(summary, row, 1, "Breaks", book->number_header_format), "header");
	check_lxw(worksheet_write_string(summary, row, 2, "Users", book->number_header_format), "header");
	row++;
	{
		ReportBreakCounts counts = report_break_counts(&book->period);

		for (i = 0; i < lengthof(report_break_kinds); i++, row++)
		{
			check_lxw(worksheet_write_string(summary, row, 0, report_break_kinds[i], NULL), "text");
			check_lxw(worksheet_write_number(summary, row, 1, (double) counts.breaks[i], book->count_format), "number");
			check_lxw(worksheet_write_number(summary, row, 2, (double) counts.users[i], book->count_format), "number");
		}
	}
	row++;

	/* the labels and times above the table need the first two columns this wide */
	widths[0] = Max(widths[0], 21);
	widths[1] = Max(widths[1], 25);
	for (i = 0; i < lengthof(currency_headers); i++)
		check_lxw(worksheet_set_column(summary, i, i, widths[i], NULL), "column width");
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
	check_lxw(worksheet_write_string(summary, row, 1, "Rows", book->number_header_format), "header");
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
		check_lxw(worksheet_write_number(summary, row, 1, (double) rs->rows, book->count_format), "number");
		check_lxw(worksheet_write_string(summary, row, 3, names.data, NULL), "text");
		row++;
	}
}

/* A format of the workbook with the given number format and alignments. */
static lxw_format *
new_format(Book *book, const char *num_format, uint8_t align, uint8_t valign)
{
	lxw_format *format = workbook_add_format(book->workbook);

	if (num_format)
		format_set_num_format(format, num_format);
	if (align != LXW_ALIGN_NONE)
		format_set_align(format, align);
	format_set_align(format, valign);
	return format;
}

/* A column heading: bold, underlined, wrapped at its words, aligned as its cells. */
static lxw_format *
new_header_format(Book *book, uint8_t align)
{
	lxw_format *format = new_format(book, NULL, align, LXW_ALIGN_VERTICAL_BOTTOM);

	format_set_bold(format);
	format_set_bottom(format, LXW_BORDER_THIN);
	format_set_text_wrap(format);
	return format;
}

/*
 * The formats of the cells.  Data cells align at the top, so a row whose
 * long text wraps onto more lines still reads across.
 */
static void
add_formats(Book *book)
{
	book->header_format = workbook_add_format(book->workbook);
	format_set_bold(book->header_format);
	format_set_bottom(book->header_format, LXW_BORDER_THIN);
	book->wrapped_header_format = new_header_format(book, LXW_ALIGN_LEFT);
	book->number_header_format = new_header_format(book, LXW_ALIGN_RIGHT);
	book->bool_header_format = new_header_format(book, LXW_ALIGN_CENTER);
	book->title_format = workbook_add_format(book->workbook);
	format_set_bold(book->title_format);
	format_set_font_size(book->title_format, 16);
	book->bold_format = workbook_add_format(book->workbook);
	format_set_bold(book->bold_format);
	book->time_format = new_format(book, TIME_FORMAT, LXW_ALIGN_LEFT, LXW_ALIGN_VERTICAL_TOP);
	book->day_format = new_format(book, DAY_FORMAT, LXW_ALIGN_LEFT, LXW_ALIGN_VERTICAL_TOP);
	book->text_format = new_format(book, NULL, LXW_ALIGN_NONE, LXW_ALIGN_VERTICAL_TOP);
	book->wrapped_text_format = new_format(book, NULL, LXW_ALIGN_NONE, LXW_ALIGN_VERTICAL_TOP);
	format_set_text_wrap(book->wrapped_text_format);
	book->bool_format = new_format(book, BOOL_FORMAT, LXW_ALIGN_CENTER, LXW_ALIGN_VERTICAL_TOP);
	book->count_format = new_format(book, COUNT_FORMAT, LXW_ALIGN_NONE, LXW_ALIGN_VERTICAL_TOP);
	book->id_format = new_format(book, ID_FORMAT, LXW_ALIGN_NONE, LXW_ALIGN_VERTICAL_TOP);
	book->decimal_format = new_format(book, DECIMAL_FORMAT, LXW_ALIGN_NONE, LXW_ALIGN_VERTICAL_TOP);
	book->measure_format = new_format(book, MEASURE_FORMAT, LXW_ALIGN_NONE, LXW_ALIGN_VERTICAL_TOP);
	book->score_bin_format = new_format(book, SCORE_BIN_FORMAT, LXW_ALIGN_NONE, LXW_ALIGN_VERTICAL_TOP);
	book->plain_money_format = new_format(book, "#,##0.00" NUMBER_PAD, LXW_ALIGN_NONE, LXW_ALIGN_VERTICAL_TOP);
}

/* the file written when none is named: its one home (the SQL default is NULL) */
#define WORKBOOK_DEFAULT_FILE "balance_reports.xlsx"

/*
 * calo_recon.export_workbook(file text DEFAULT NULL,
 *     period_from timestamptz DEFAULT NULL, period_to timestamptz DEFAULT NULL)
 *   RETURNS bigint
 *
 * Returns the data rows written over the report sheets.
 */
Datum
calo_recon_export_workbook(PG_FUNCTION_ARGS)
{
	const char *file_arg = PG_ARGISNULL(0) ? WORKBOOK_DEFAULT_FILE : text_to_cstring(PG_GETARG_TEXT_PP(0));
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
		SheetFile  *files;
		int			nfiles;
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
		add_formats(&book);
		load_currencies(&book);

		summary = add_sheet(&book, SUMMARY_SHEET);
		book.days = report_days(&book.period);
		chart_row = write_summary(&book, summary);

		for (i = 0; i < nreports; i++)
		{
			bool		daily = strcmp(reports[i].view, REPORT_DAILY_VIEW) == 0;
			Portal		portal = daily ? NULL : export_open_report(&reports[i], &book.period);
			ReportSheets *rs;

			if (portal == NULL && !daily)
				continue;
			rs = palloc0(sizeof(ReportSheets));
			rows += write_report(&book, &reports[i], portal, daily ? &book.days : NULL, rs);
			written = lappend(written, rs);
			if (portal)
				SPI_cursor_close(portal);
		}
		/*
		 * Sheets are in the order they are added: the chart data comes last.
		 * Each sheet's rows are written in order (constant_memory), so the
		 * summary's charts and contents go below what it already holds.
		 */
		chart_data = add_sheet(&book, CHART_DATA_SHEET);
		days = write_chart_data(&book, chart_data, &currencies);
		insert_charts(&book, summary, chart_row, days, currencies);
		write_contents(&book, summary, chart_row + CHART_ROWS, written);
		worksheet_activate(summary);
		files = sheet_files(workbook, &nfiles);
		status = workbook_close(workbook);	/* frees it, whatever the status */
		workbook = NULL;
		if (status != LXW_NO_ERROR)
			close_sheet_files(files, nfiles);
		release_sheets(&book);
		check_lxw(status, "close");
	}
	PG_CATCH();
	{
		/*
		 * The workbook and its sheets' temporary files go now, before the
		 * aborted (sub)transaction removes the working folder they are in
		 * (export_folder_cleanup).
		 */
		if (workbook != NULL)
			discard_workbook(workbook);
		release_sheets(&book);
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
