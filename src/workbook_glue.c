/*
 * workbook_glue.c: calo_recon.export_workbook(), the finance workbook written
 * with libxlsxwriter under the same folder, permission and overwrite rules as
 * the CSV reports (export_glue.c).
 *
 * Cells are typed: numeric columns become number cells (IEEE doubles, enough
 * for display; the CSV reports keep the exact decimal text), timestamps become
 * Excel dates in the session time zone, booleans become booleans.
 */
#include "postgres.h"

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
#include "utils/timestamp.h"

#include "calo_recon.h"
#include "export_glue.h"

#define EXCEL_MAX_ROWS 1048576
#define EXCEL_MAX_STRING 32767
#define MAX_COLUMN_WIDTH 60.0

typedef struct WorkbookSheet
{
	const char *sheet;
	const char *view;
} WorkbookSheet;

static const WorkbookSheet workbook_sheets[] = {
	{"All Transactions", "transactions"},
	{"Overdrafts", "overdrafts"},
	{"Anomalies", "anomalies"},
	{"Discrepancies", "discrepancies"},
	{"Balance Breaks", "balance_breaks"},
	{"User Summary", "user_summary"},
};

PG_FUNCTION_INFO_V1(calo_recon_export_workbook);

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

static bool
datum_to_excel_time(Oid type_oid, Datum value, lxw_datetime *out)
{
	struct pg_tm tm;
	fsec_t		fsec = 0;
	int			tz;

	switch (getBaseType(type_oid))
	{
		case TIMESTAMPTZOID:
			if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(value)) ||
				timestamp2tm(DatumGetTimestampTz(value), &tz, &tm, &fsec, NULL, NULL) != 0)
				return false;
			break;
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

typedef struct SheetWriter
{
	const WorkbookSheet *spec;
	lxw_worksheet *sheet;
	ExportColumns *columns;
	double	   *widths;
	lxw_format *date_format;
} SheetWriter;

static void
write_sheet_row(HeapTuple tuple, TupleDesc desc, int64 row_no, void *arg)
{
	SheetWriter *w = arg;
	lxw_row_t	row = row_no + 1;
	int			i;

	if (row >= EXCEL_MAX_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("view calo_recon.%s has more rows than an Excel sheet holds", w->spec->view),
				 errhint("Use export_reports() for CSV files without that limit.")));
	for (i = 0; i < w->columns->natts; i++)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(tuple, desc, i + 1, &isnull);
		lxw_datetime when;
		char	   *text;

		if (isnull)
			continue;
		switch (w->columns->kinds[i])
		{
			case EXPORT_NUMBER:
				text = OidOutputFunctionCall(w->columns->out_funcs[i], value);
				check_lxw(worksheet_write_number(w->sheet, row, i, strtod(text, NULL), NULL), "number");
				w->widths[i] = Max(w->widths[i], Min(strlen(text) + 2, MAX_COLUMN_WIDTH));
				break;
			case EXPORT_BOOL:
				check_lxw(worksheet_write_boolean(w->sheet, row, i, DatumGetBool(value), NULL), "boolean");
				break;
			case EXPORT_TIME:
				if (datum_to_excel_time(TupleDescAttr(desc, i)->atttypid, value, &when))
				{
					check_lxw(worksheet_write_datetime(w->sheet, row, i, &when, w->date_format), "date");
					break;
				}
				/* infinite or out of Excel's range: keep the text */
				/* FALLTHROUGH */
			case EXPORT_TEXT:
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

/* Writes one view into a new sheet; returns the data rows written. */
static int64
write_sheet(lxw_workbook *workbook, const WorkbookSheet *spec, Portal portal,
			lxw_format *header_format, lxw_format *date_format)
{
	TupleDesc	desc = portal->tupDesc;
	SheetWriter w;
	int64		rows;
	int			i;

	w.spec = spec;
	w.sheet = workbook_add_worksheet(workbook, spec->sheet);
	w.columns = export_columns(desc);
	w.widths = palloc(sizeof(double) * desc->natts);
	w.date_format = date_format;
	if (w.sheet == NULL)
		ereport(ERROR, (errcode(ERRCODE_IO_ERROR),
						errmsg("could not add worksheet \"%s\"", spec->sheet)));
	for (i = 0; i < desc->natts; i++)
	{
		const char *name = NameStr(TupleDescAttr(desc, i)->attname);

		w.widths[i] = Max(strlen(name) + 4, w.columns->kinds[i] == EXPORT_TIME ? 20 : 8);
		check_lxw(worksheet_write_string(w.sheet, 0, i, name, header_format), "header");
	}
	rows = export_for_each_row(portal, write_sheet_row, &w);

	for (i = 0; i < desc->natts; i++)
		check_lxw(worksheet_set_column(w.sheet, i, i, w.widths[i], NULL), "column width");
	worksheet_freeze_panes(w.sheet, 1, 0);
	if (desc->natts > 0)
		check_lxw(worksheet_autofilter(w.sheet, 0, 0, rows, desc->natts - 1), "autofilter");
	return rows;
}

/*
 * calo_recon.export_workbook(file text DEFAULT 'balance_reports.xlsx') RETURNS bigint
 *
 * Returns the data rows written over all sheets.
 */
Datum
calo_recon_export_workbook(PG_FUNCTION_ARGS)
{
	const char *file_arg = PG_ARGISNULL(0) ? "balance_reports.xlsx" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	SafePathRoot *root;
	char	   *rel_folder_arg;
	char	   *name;
	ExportFolder *folder;
	ExportFile *file;
	lxw_workbook *volatile workbook = NULL;
	lxw_workbook_options options = {.constant_memory = LXW_TRUE, .tmpdir = NULL, .use_zip64 = LXW_TRUE};
	int64		rows = 0;
	size_t		name_len;
	int			guc_level;

	safe_path_check_privilege(SAFE_PATH_WRITE, "export_workbook()");
	root = export_open_root();
	export_split_file(root, file_arg, &rel_folder_arg, &name);
	name_len = strlen(name);
	if (name_len < 6 || pg_strcasecmp(name + name_len - 5, ".xlsx") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("workbook file name \"%s\" must end in .xlsx", name)));
	export_lock();
	folder = export_open_folder(root, rel_folder_arg);
	file = export_begin(folder, name);
	export_finish_file(file);	/* created empty: libxlsxwriter replaces it by name */
	guc_level = export_fix_output_settings();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		lxw_format *header_format;
		lxw_format *date_format;
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
		header_format = workbook_add_format(workbook);
		format_set_bold(header_format);
		format_set_bottom(header_format, LXW_BORDER_THIN);
		date_format = workbook_add_format(workbook);
		format_set_num_format(date_format, "yyyy-mm-dd hh:mm:ss");

		for (i = 0; i < lengthof(workbook_sheets); i++)
		{
			Portal		portal = export_open_view(workbook_sheets[i].view);

			if (portal == NULL)
				continue;
			rows += write_sheet(workbook, &workbook_sheets[i], portal, header_format, date_format);
			SPI_cursor_close(portal);
		}
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
