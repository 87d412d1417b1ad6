/*
 * alert_batch_glue.h: the insert-time alert check of what ingest_file stores,
 * run once per batch of files instead of once per file (see
 * alert_batch_glue.c).
 */
#ifndef CALO_ALERT_BATCH_GLUE_H
#define CALO_ALERT_BATCH_GLUE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct AlertBatch
{
	bool		nested;			/* an outer batch is open: it checks the rows */
	int64_t		unchecked_rows; /* stored since the last check */
} AlertBatch;

/*
 * Opens a batch: from now on the alert trigger queues the inserted
 * transactions (calo_recon.alert_queue) instead of checking them.  The
 * caller is connected to SPI and must call alert_batch_end or, on error,
 * alert_batch_abandon.
 */
void		alert_batch_begin(AlertBatch *batch);

/* Counts rows stored; checks the queue when enough wait (bounded memory) */
void		alert_batch_stored(AlertBatch *batch, int64_t rows);

/* Checks what waits and closes the batch */
void		alert_batch_end(AlertBatch *batch);

/* Closes the batch without checking (its transaction is being aborted) */
void		alert_batch_abandon(AlertBatch *batch);

#endif
