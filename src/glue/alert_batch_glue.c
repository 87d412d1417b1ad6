/*
 * alert_batch_glue.c: ingest_file checks the alerts of the transactions it
 * stores once per batch of files, not once per file.
 *
 * Each file is stored by one statement, and the statement-level alert
 * trigger (calo_recon.alert_new_transactions) ran once per file: about 6 ms
 * of fixed work per file (the user look-ups, the walk's set-up, the alert
 * queries), a third of an export's ingest.  While a batch is open, the
 * trigger queues the new rows in calo_recon.alert_queue instead (on a Citus
 * cluster the shards' queue trigger already does, and the ingest leaves them
 * there); closing the batch runs calo_recon.alert_queued(), which checks the
 * queued rows through the same trigger function, so the rules keep their
 * one home.  The check sees every file of the batch at once: a row whose
 * predecessor in chain order arrives in a later file of the same call is
 * compared with that predecessor, not alerted first and resolved later.
 *
 * The batch lives inside one call of ingest_file, within one transaction:
 * no other session sees the queued entries, and an error aborts them with
 * the rows.  alert_queued() reads the queued rows into one array, so a
 * large folder is checked every ALERT_BATCH_ROWS stored rows.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"

#include "alert_batch_glue.h"

/*
 * rows stored before the queue is checked: alert_queued() holds them in one
 * array (a few MB here), and a check costs little fixed work
 */
#define ALERT_BATCH_ROWS 10000

/* a batch is open in this backend: the trigger queues instead of checking */
static bool check_deferred = false;

/*
 * The SQL asked, so rows may wait in the queue.  An extension whose SQL is
 * older than this library (before ALTER EXTENSION UPDATE) never asks, checks
 * per file, and has no alert_queued() to call.
 */
static bool deferral_taken = false;

static void
check_queue(AlertBatch *batch)
{
	batch->unchecked_rows = 0;
	if (!deferral_taken)
		return;
	deferral_taken = false;
	/* the check's own insert (alert_inbox) must run the trigger's rules */
	check_deferred = false;
	if (SPI_execute("SELECT calo_recon.alert_queued()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "calo_recon: could not run calo_recon.alert_queued()");
	check_deferred = true;
}

void
alert_batch_begin(AlertBatch *batch)
{
	batch->nested = check_deferred;
	batch->unchecked_rows = 0;
	if (!batch->nested)
		deferral_taken = false;
	check_deferred = true;
}

void
alert_batch_stored(AlertBatch *batch, int64_t rows)
{
	if (batch->nested)
		return;
	batch->unchecked_rows += rows;
	if (batch->unchecked_rows >= ALERT_BATCH_ROWS)
		check_queue(batch);
}

void
alert_batch_end(AlertBatch *batch)
{
	if (batch->nested)
		return;
	check_queue(batch);
	check_deferred = false;
}

void
alert_batch_abandon(AlertBatch *batch)
{
	check_deferred = batch->nested;
}

PG_FUNCTION_INFO_V1(calo_recon_alert_check_deferred);

/* Whether the alert trigger queues the new rows for the batch's check */
Datum
calo_recon_alert_check_deferred(PG_FUNCTION_ARGS)
{
	if (check_deferred)
		deferral_taken = true;
	PG_RETURN_BOOL(check_deferred);
}
