/*
 * bulk_write_glue.h: the one bulk writer of the extension's own tables
 * (bulk_write_glue.c), COPY's multi-insert path: rows are gathered in
 * batches, each batch goes to the table in one table_multi_insert, then
 * each row's index entries are made; never a statement per row.  Used for
 * the scores (score_glue.c), the reconciliation's findings (recon_glue.c)
 * and the report totals (report_totals_glue.c).
 *
 *   w = bulk_write_open(relid, "scores");
 *   for each row: slot = bulk_write_begin_row(w); fill slot->tts_values and
 *                 tts_isnull; bulk_write_end_row(w);
 *   n = bulk_write_close(w);
 */
#ifndef CALO_BULK_WRITE_GLUE_H
#define CALO_BULK_WRITE_GLUE_H

#include "postgres.h"

#include "executor/tuptable.h"
#include "utils/rel.h"

typedef struct BulkWriter BulkWriter;

/*
 * Opens table relid (RowExclusiveLock) for appending rows and fires its
 * BEFORE INSERT statement triggers: the current user needs INSERT on it
 * (42501).  Row-level insert triggers, transition tables and insert rules
 * are refused (0A000: the bulk write would not fire or apply them); what
 * names the job in that error ("the bulk write of <what>").
 */
BulkWriter *bulk_write_open(Oid relid, const char *what);

/* The same, of a table named by its qualified name (a shard's, on a worker) */
BulkWriter *bulk_write_open_table(const char *table, const char *what);

/* The open table (its columns, for the caller's checks and attnums). */
Relation	bulk_write_relation(const BulkWriter *w);

/*
 * The next row: a slot of the table with every column NULL but those with
 * a default, which hold it (as COPY fills the columns it is not given).  Until
 * bulk_write_end_row the current memory context is the batch's, so the
 * values the caller makes (text, numeric, jsonb) live as long as the batch.
 */
TupleTableSlot *bulk_write_begin_row(BulkWriter *w);

/*
 * The row filled: its NOT NULL and CHECK constraints are checked now
 * (23502, 23514), the caller's memory context is back, and a full batch is
 * written (unique keys checked there: 23505).
 */
void		bulk_write_end_row(BulkWriter *w);

/*
 * Writes the last batch, fires the AFTER INSERT statement triggers, closes
 * the table (its lock is kept) and returns the rows written.
 */
int64		bulk_write_close(BulkWriter *w);

#endif
