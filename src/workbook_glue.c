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

#define FETCH_ROWS 1000
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

/* Writes one view into a new sheet; returns the data rows written. */
static int64
write_sheet(lxw_workbook *workbook, const WorkbookSheet *spec, Portal portal,
			lxw_format *header_format, lxw_format *date_format)
{
	lxw_worksheet *sheet = workbook_add_worksheet(workbook, spec->sheet);
	TupleDesc	desc = portal->tupDesc;
	int			natts = desc->natts;
	Oid		   *out_funcs = palloc(sizeof(Oid) * natts);
	ExportColumnKind *kinds = palloc(sizeof(ExportColumnKind) * natts);
	double	   *widths = palloc(sizeof(double) * natts);
	MemoryContext row_cxt;
	int64		rows = 0;
	int			i;

	if (sheet == NULL)
		ereport(ERROR, (errcode(ERRCODE_IO_ERROR),
						errmsg("could not add worksheet \"%s\"", spec->sheet)));
	for (i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		varlena;

		getTypeOutputInfo(att->atttypid, &out_funcs[i], &varlena);
		kinds[i] = export_column_kind(att->atttypid);
		widths[i] = Max(strlen(NameStr(att->attname)) + 4, kinds[i] == EXPORT_TIME ? 20 : 8);
		check_lxw(worksheet_write_string(sheet, 0, i, NameStr(att->attname), header_format), "header");
	}

	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "calo_recon workbook row",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		uint64		n;
		uint64		r;
		MemoryContext old_cxt;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		n = SPI_processed;
		if (n == 0)
			break;
		if (rows + n >= EXCEL_MAX_ROWS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("view calo_recon.%s has more rows than an Excel sheet holds", spec->view),
					 errhint("Use export_reports() for CSV files without that limit.")));
		old_cxt = MemoryContextSwitchTo(row_cxt);
		for (r = 0; r < n; r++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[r];
			lxw_row_t	row = rows + 1;

			for (i = 0; i < natts; i++)
			{
				bool		isnull;
				Datum		value = SPI_getbinval(tuple, SPI_tuptable->tupdesc, i + 1, &isnull);
				Oid			type_oid = TupleDescAttr(desc, i)->atttypid;
				lxw_datetime when;
				char	   *text;

				if (isnull)
					continue;
				switch (kinds[i])
				{
					case EXPORT_NUMBER:
						text = OidOutputFunctionCall(out_funcs[i], value);
						check_lxw(worksheet_write_number(sheet, row, i, strtod(text, NULL), NULL), "number");
						widths[i] = Max(widths[i], Min(strlen(text) + 2, MAX_COLUMN_WIDTH));
						break;
					case EXPORT_BOOL:
						check_lxw(worksheet_write_boolean(sheet, row, i, DatumGetBool(value), NULL), "boolean");
						break;
					case EXPORT_TIME:
						if (datum_to_excel_time(type_oid, value, &when))
						{
							check_lxw(worksheet_write_datetime(sheet, row, i, &when, date_format), "date");
							break;
						}
						/* infinite or out of Excel's range: keep the text */
						/* FALLTHROUGH */
					case EXPORT_TEXT:
						text = OidOutputFunctionCall(out_funcs[i], value);
						check_lxw(worksheet_write_string(sheet, row, i, excel_string(text), NULL), "text");
						widths[i] = Max(widths[i], Min(pg_mbstrlen(text) + 2, MAX_COLUMN_WIDTH));
						break;
				}
			}
			rows++;
		}
		MemoryContextSwitchTo(old_cxt);
		MemoryContextReset(row_cxt);
		SPI_freetuptable(SPI_tuptable);
	}
	MemoryContextDelete(row_cxt);

	for (i = 0; i < natts; i++)
		check_lxw(worksheet_set_column(sheet, i, i, widths[i], NULL), "column width");
	worksheet_freeze_panes(sheet, 1, 0);
	if (natts > 0)
		check_lxw(worksheet_autofilter(sheet, 0, 0, rows, natts - 1), "autofilter");
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
	char	   *rel_folder_arg;
	char	   *name;
	char	   *folder;
	char	   *rel_folder;
	ExportFile *file = NULL;
	lxw_workbook *volatile workbook = NULL;
	lxw_workbook_options options = {.constant_memory = LXW_TRUE, .tmpdir = NULL, .use_zip64 = LXW_TRUE};
	int64		rows = 0;
	int			fd;
	size_t		name_len;
	int			guc_level;

	export_check_privilege("export_workbook()");
	export_split_file(file_arg, &rel_folder_arg, &name);
	name_len = strlen(name);
	if (name_len < 6 || pg_strcasecmp(name + name_len - 5, ".xlsx") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("workbook file name \"%s\" must end in .xlsx", name)));
	export_lock();
	folder = export_resolve_folder(rel_folder_arg, &rel_folder);
	file = export_begin(folder, rel_folder, name, &fd);
	CloseTransientFile(fd);
	guc_level = export_fix_output_settings();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		lxw_format *header_format;
		lxw_format *date_format;
		lxw_error	status;
		int			i;

		/* libxlsxwriter reopens the temporary file by name and replaces its content */
		options.tmpdir = folder;
		workbook = workbook_new_opt(file->temp_path, &options);
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
		export_digest_file(file);
		export_publish(list_make1(file));
	}
	PG_CATCH();
	{
		/* workbook_close is the only way libxlsxwriter frees a workbook */
		if (workbook != NULL)
			(void) workbook_close(workbook);
		export_discard(list_make1(file));
		PG_RE_THROW();
	}
	PG_END_TRY();
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	PG_RETURN_INT64(rows);
}
