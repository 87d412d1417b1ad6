/*
 * locks.h: the locks calo_recon takes, their keys (defined here only), and
 * the one order in which a transaction takes them (README "Locks"):
 *
 *   1. the writer lock, advisory (CALO_LOCK_CLASS, CALO_LOCK_WRITER), until
 *      the end of the transaction: ingest_log, ingest_file, reconcile,
 *      refresh, raise_alerts and purge; serializes ingests and
 *      reconciliations.
 *   2. the chain locks, advisory (CALO_CHAIN_LOCK_CLASS, stripe of the user
 *      id), until the end of the transaction, stripes in ascending order: an
 *      insert into calo_recon.transactions with calo_recon.alerts on, so that
 *      the chain alert of a user's row sees the user's previous row.
 *   3. calo_recon.reconciliation_findings in SHARE ROW EXCLUSIVE mode:
 *      reconcile(), after the writer lock.
 *   4. the rows of calo_recon.alert_marks, FOR UPDATE: raise_alerts() (and
 *      so refresh()), after the writer lock.
 *
 * The export lock (CALO_LOCK_CLASS, CALO_LOCK_EXPORT) serializes exports and
 * is never held together with the others by calo_recon code.
 *
 * A transaction that holds chain locks (it inserted transactions) and then
 * asks for the writer lock would take them in the wrong order: it gets the
 * writer lock only when it is free at once, else 55P03 naming the holder.
 */
#ifndef CALO_LOCKS_H
#define CALO_LOCKS_H

#define CALO_LOCK_CLASS			1667329135	/* 'calo' in ASCII */
#define CALO_LOCK_WRITER		1
#define CALO_LOCK_EXPORT		2
#define CALO_CHAIN_LOCK_CLASS	1667329129	/* 'cali' in ASCII */
/* users share CALO_CHAIN_LOCK_STRIPES locks: a bulk insert takes at most that many */
#define CALO_CHAIN_LOCK_STRIPES	256

/* Takes the writer lock (waits unless the rule above forbids it). */
extern void calo_lock_writer(void);

#endif
