/*
 * bulk_write_glue.h: the one bulk writer of the extension's own tables
 * (bulk_write_glue.c), COPY's multi-insert path: rows are gathered in
 * batches, each batch goes to the table in one table_multi_insert, then
 * each row's index entries are made; never a statement per row.  Used for
 * the scores (score_glue.c), the reconciliation's findings (recon_glue.c),
 * the report totals (report_totals_glue.c), the log events and the new
 * transactions of an ingest (ingest_store_glue.c).
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
 * (42501).  Row-level insert triggers and insert rules are refused
 * (0A000: the bulk write would not fire or apply them); row-level security
 * is not checked: the writers run as the superuser owner, whom it never
 * applies to, but for the ingest's, which ask bulk_write_fires_all.  What
 * names the job in that error ("the bulk write of <what>").
 */
BulkWriter *bulk_write_open(Oid relid, const char *what);

/* Called with each row once it is in the table (its index entries made). */
typedef void (*bulk_write_stored_fn) (TupleTableSlot *slot, void *arg);

typedef struct BulkWriteOptions
{
	/*
	 * INSERT ... ON CONFLICT DO NOTHING on every unique key: a row whose key
	 * another row holds is left out, not an error.  A concurrent
	 * transaction's row under the key is waited for, as ON CONFLICT waits:
	 * the row is left out when that transaction commits, written when it
	 * aborts.  Under REPEATABLE READ or SERIALIZABLE a holder the snapshot
	 * does not see is 40001.  Each key is asked for in bulk_write_end_row,
	 * before the row goes into the table.
	 */
	bool		skip_conflicts;
	bulk_write_stored_fn on_stored; /* or NULL */
	void	   *on_stored_arg;
} BulkWriteOptions;

/*
 * bulk_write_open with options.  Statement triggers with transition tables
 * (REFERENCING NEW TABLE) fire too: each stored row goes into the
 * transition table, as COPY puts it there.
 */
BulkWriter *bulk_write_open_with(Oid relid, const char *what, const BulkWriteOptions *options);

/*
 * Whether bulk_write_open can write table relid: it has no row-level insert
 * trigger, no insert rule and no row-level security for the current user.
 * Where one may be added by hand (a DBA's audit trigger or policy on
 * transactions), the caller writes with INSERT instead.
 */
bool		bulk_write_fires_all(Oid relid);

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
 * the table (its lock is kept) and returns the rows written (those left out
 * as conflicts not counted).
 */
int64		bulk_write_close(BulkWriter *w);

#endif
