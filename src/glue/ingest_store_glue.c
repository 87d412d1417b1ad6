/*
 * ingest_store_glue.c: the ingest's two big writes, through COPY's
 * multi-insert path (bulk_write_glue.h) rather than INSERT statements:
 *
 * calo_recon.parse_and_store_log(log, source_file): parse_log(log), each
 * event also written to calo_recon.log_events under source_file.
 *
 * calo_recon.store_new_transactions(rows): the rows into
 * calo_recon.transactions as INSERT ... ON CONFLICT DO NOTHING would store
 * them, returning those stored.  The table's statement triggers read them
 * from the transition table, as after an INSERT.  On a Citus cluster, where
 * the table is distributed and its rows live in shards, it is that INSERT,
 * which Citus routes to the shards.
 *
 * A table given a row-level insert trigger, an insert rule or row-level
 * security by hand (which the bulk writer would not fire, apply or check) is
 * written with INSERT statements, which do: the rows are stored either way.
 *
 * What is stored, and which rows are new, is ingest_log_unreconciled's
 * (sql/install/30_ingest.sql); these functions only write.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "bulk_write_glue.h"
#include "citus_glue.h"
#include "parse_glue.h"

PG_FUNCTION_INFO_V1(calo_recon_parse_and_store_log);
PG_FUNCTION_INFO_V1(calo_recon_store_new_transactions);

static Oid
extension_table(const char *name)
{
	Oid			schema = get_namespace_oid("calo_recon", false);
	Oid			relid = get_relname_relid(name, schema);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"calo_recon.%s\" does not exist", name)));
	return relid;
}

/* The events being parsed and stored */
typedef struct EventStore
{
	ReturnSetInfo *rsinfo;
	BulkWriter *writer;			/* or NULL: each event by insert_event */
	SPIPlanPtr	insert_event;
	Datum		source_file;
	AttrNumber	source_att;
	/* the log_events column of each parse_log column */
	AttrNumber	event_att[PARSE_LOG_COLUMNS];
	/* their types' byval and length, for the copies the batch keeps */
	bool		byval[PARSE_LOG_COLUMNS];
	int16		typlen[PARSE_LOG_COLUMNS];
} EventStore;

static AttrNumber
log_events_column(Relation rel, const char *name, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
		{
			if (att->atttypid != type)
				break;
			return att->attnum;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("calo_recon.log_events has no column %s of type %s", name, format_type_be(type)),
			 errhint("The extension's tables were changed by hand: ALTER EXTENSION calo_recon UPDATE, or reinstall it.")));
	return InvalidAttrNumber;	/* not reached */
}

/*
 * An INSERT of one event, for a log_events that the bulk writer cannot
 * write: source_file, then the columns parse_and_store_log is declared with
 */
static SPIPlanPtr
prepare_insert_event(TupleDesc columns)
{
	Oid			types[PARSE_LOG_COLUMNS + 1];
	StringInfoData insert;
	SPIPlanPtr	plan;

	initStringInfo(&insert);
	appendStringInfoString(&insert, "INSERT INTO calo_recon.log_events (source_file");
	types[0] = TEXTOID;
	for (int c = 0; c < PARSE_LOG_COLUMNS; c++)
	{
		appendStringInfo(&insert, ", %s", quote_identifier(NameStr(TupleDescAttr(columns, c)->attname)));
		types[c + 1] = TupleDescAttr(columns, c)->atttypid;
	}
	appendStringInfoString(&insert, ") VALUES ($1");
	for (int c = 0; c < PARSE_LOG_COLUMNS; c++)
		appendStringInfo(&insert, ", $%d", c + 2);
	appendStringInfoChar(&insert, ')');
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(insert.data, PARSE_LOG_COLUMNS + 1, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	return plan;
}

static void
insert_event(EventStore *store, const Datum *values, const bool *nulls)
{
	Datum		args[PARSE_LOG_COLUMNS + 1];
	char		args_null[PARSE_LOG_COLUMNS + 1];

	args[0] = store->source_file;
	args_null[0] = ' ';
	for (int c = 0; c < PARSE_LOG_COLUMNS; c++)
	{
		args[c + 1] = values[c];
		args_null[c + 1] = nulls[c] ? 'n' : ' ';
	}
	if (SPI_execute_plan(store->insert_event, args, args_null, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "the insert of a log event failed");
}

static void
store_event(const Datum *values, const bool *nulls, void *arg)
{
	EventStore *store = arg;
	TupleTableSlot *slot;

	tuplestore_putvalues(store->rsinfo->setResult, store->rsinfo->setDesc, (Datum *) values, (bool *) nulls);
	if (store->writer == NULL)
	{
		insert_event(store, values, nulls);
		return;
	}
	/* the batch keeps the row until it is written: copies in its context */
	slot = bulk_write_begin_row(store->writer);
	slot->tts_values[store->source_att - 1] = store->source_file;
	slot->tts_isnull[store->source_att - 1] = false;
	for (int c = 0; c < PARSE_LOG_COLUMNS; c++)
	{
		int			a = store->event_att[c] - 1;

		slot->tts_isnull[a] = nulls[c];
		slot->tts_values[a] = nulls[c] ? (Datum) 0 :
			datumCopy(values[c], store->byval[c], store->typlen[c]);
	}
	bulk_write_end_row(store->writer);
}

/*
 * The bulk writer of log_events, each column of an event found by the name
 * it has in parse_and_store_log's declaration (columns)
 */
static void
open_event_writer(EventStore *store, Oid relid, TupleDesc columns)
{
	Relation	rel;

	store->writer = bulk_write_open(relid, "log events");
	rel = bulk_write_relation(store->writer);
	store->source_att = log_events_column(rel, "source_file", TEXTOID);
	for (int c = 0; c < PARSE_LOG_COLUMNS; c++)
	{
		Form_pg_attribute column = TupleDescAttr(columns, c);

		store->event_att[c] = log_events_column(rel, NameStr(column->attname), column->atttypid);
		get_typlenbyval(column->atttypid, &store->typlen[c], &store->byval[c]);
	}
}

/*
 * calo_recon.parse_and_store_log(log text, source_file text) RETURNS TABLE
 * (the columns of parse_log)
 */
Datum
calo_recon_parse_and_store_log(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = extension_table("log_events");
	EventStore	store = {0};

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != PARSE_LOG_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("calo_recon.parse_and_store_log must be declared with %d result columns", PARSE_LOG_COLUMNS)));
	store.rsinfo = rsinfo;
	store.source_file = PointerGetDatum(PG_GETARG_TEXT_P_COPY(1));
	if (bulk_write_fires_all(relid))
		open_event_writer(&store, relid, rsinfo->setDesc);
	else
		store.insert_event = prepare_insert_event(rsinfo->setDesc);
	parse_log_events(PG_GETARG_TEXT_PP(0), "calo_recon.parse_and_store_log", store_event, &store);
	if (store.writer != NULL)
		bulk_write_close(store.writer);
	else
		SPI_finish();
	return (Datum) 0;
}

static void
put_stored_row(TupleTableSlot *slot, void *arg)
{
	tuplestore_puttupleslot(((ReturnSetInfo *) arg)->setResult, slot);
}

/*
 * The INSERT itself: on a distributed table, which Citus routes to the
 * shards, or on a table with row-level insert triggers, rules or row-level
 * security
 */
static void
store_new_transactions_by_insert(Oid relid, ArrayType *rows, ReturnSetInfo *rsinfo)
{
	Oid			argtypes[1] = {get_array_type(get_rel_type_id(relid))};
	Datum		args[1] = {PointerGetDatum(rows)};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("INSERT INTO calo_recon.transactions "
							  "SELECT r.* FROM pg_catalog.unnest($1) AS r "
							  "ON CONFLICT DO NOTHING RETURNING *",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "the insert of new transactions failed");
	for (uint64 i = 0; i < SPI_processed; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
	SPI_finish();
}

/*
 * calo_recon.store_new_transactions(rows calo_recon.transactions[]) RETURNS
 * SETOF calo_recon.transactions
 */
Datum
calo_recon_store_new_transactions(PG_FUNCTION_ARGS)
{
	ArrayType  *rows = PG_GETARG_ARRAYTYPE_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = extension_table("transactions");
	BulkWriteOptions options = {.skip_conflicts = true, .on_stored = put_stored_row, .on_stored_arg = rsinfo};
	BulkWriter *w;
	TupleDesc	desc;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;
	int16		elem_len;
	bool		elem_byval;
	char		elem_align;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (ARR_ELEMTYPE(rows) != get_rel_type_id(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("calo_recon.store_new_transactions takes an array of calo_recon.transactions rows")));
	/* refused alike on both paths (the INSERT would make it a row of NULLs) */
	if (array_contains_nulls(rows))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("calo_recon.store_new_transactions was given a NULL row")));
	if (calo_citus_is_distributed(relid) || !bulk_write_fires_all(relid))
	{
		store_new_transactions_by_insert(relid, rows, rsinfo);
		return (Datum) 0;
	}
	get_typlenbyvalalign(ARR_ELEMTYPE(rows), &elem_len, &elem_byval, &elem_align);
	deconstruct_array(rows, ARR_ELEMTYPE(rows), elem_len, elem_byval, elem_align, &elems, &elem_nulls, &n);
	w = bulk_write_open_with(relid, "new transactions", &options);
	desc = RelationGetDescr(bulk_write_relation(w));
	for (int i = 0; i < n; i++)
	{
		HeapTupleHeader row;
		HeapTupleData tuple;
		TupleTableSlot *slot;

		row = DatumGetHeapTupleHeader(elems[i]);
		tuple.t_len = HeapTupleHeaderGetDatumLength(row);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = row;
		if (HeapTupleHeaderGetNatts(row) > desc->natts)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("a row given to calo_recon.store_new_transactions has %d columns, the table %d",
							HeapTupleHeaderGetNatts(row), desc->natts)));
		/* the values point into the array, which outlives the write */
		slot = bulk_write_begin_row(w);
		heap_deform_tuple(&tuple, desc, slot->tts_values, slot->tts_isnull);
		bulk_write_end_row(w);
	}
	bulk_write_close(w);
	return (Datum) 0;
}
