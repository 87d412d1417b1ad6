/*
 * lock_glue.c: the locks of locks.h, taken in their one order.
 *
 *   calo_recon.lock_writer()               waits for the writer lock
 *   calo_recon.try_lock_writer()           takes it when free, else false
 *   calo_recon.writer_lock_holder()        who holds it: process, state, statement
 *   calo_recon.lock_user_chains(text[])    the chain locks of these users
 *   calo_recon.chain_snapshot_behind(text[]) whether this transaction's
 *                                          snapshot misses committed rows of them
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "citus_glue.h"
#include "locks.h"

/*
 * The chain locks and the writer/export locks live in two advisory classes, so
 * no chain stripe can ever be the writer lock; a stripe is passed as int4.
 */
StaticAssertDecl(CALO_LOCK_CLASS != CALO_CHAIN_LOCK_CLASS,
				 "chain locks need a class of their own");
StaticAssertDecl(CALO_CHAIN_LOCK_STRIPES > 0 && CALO_CHAIN_LOCK_STRIPES <= PG_INT32_MAX,
				 "a chain lock stripe must fit an int4 key");

PG_FUNCTION_INFO_V1(calo_recon_lock_writer);
PG_FUNCTION_INFO_V1(calo_recon_try_lock_writer);
PG_FUNCTION_INFO_V1(calo_recon_writer_lock_holder);
PG_FUNCTION_INFO_V1(calo_recon_lock_user_chains);
PG_FUNCTION_INFO_V1(calo_recon_chain_snapshot_behind);

/* the local transaction that last took chain locks in this backend */
static LocalTransactionId chain_locks_taken_in = InvalidLocalTransactionId;

/* the tag of pg_advisory_xact_lock(int4, int4) */
static void
advisory_tag(LOCKTAG *tag, int32 class_key, int32 object_key)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) class_key, (uint32) object_key, 2);
}

/*
 * Who else holds the writer lock, as "process N (state): statement", or NULL
 * when nobody does any more. The statement is what pg_stat_activity would
 * show the session's login role (<insufficient privilege> for another role's
 * session without pg_read_all_stats): session_user, since refresh_finish()
 * runs this as the extension owner, to whom pg_stat_activity shows all.
 */
static char *
writer_lock_holder(void)
{
	Oid			argtypes[3] = {OIDOID, OIDOID, OIDOID};
	Datum		args[3] = {ObjectIdGetDatum(MyDatabaseId),
		ObjectIdGetDatum((Oid) CALO_LOCK_CLASS), ObjectIdGetDatum((Oid) CALO_LOCK_WRITER)};
	char	   *holder = NULL;
	MemoryContext caller = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "calo_recon: SPI_connect failed");
	if (SPI_execute_with_args(
			"SELECT pg_catalog.format('process %s (%s): %s', l.pid, "
			"         COALESCE(a.state, 'state unknown'), "
			"         CASE WHEN a.usesysid IS NULL "
			"                   OR pg_catalog.pg_has_role(session_user, a.usesysid, 'MEMBER') "
			"                   OR pg_catalog.pg_has_role(session_user, 'pg_read_all_stats', 'MEMBER') "
			"              THEN pg_catalog.left(pg_catalog.regexp_replace(COALESCE(a.query, ''), "
			"                                                             '\\s+', ' ', 'g'), 300) "
			"              ELSE '<insufficient privilege>' END) "
			"FROM pg_catalog.pg_locks l "
			"LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid OPERATOR(pg_catalog.=) l.pid "
			"WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'::pg_catalog.text AND l.granted "
			"  AND l.database OPERATOR(pg_catalog.=) $1 AND l.classid OPERATOR(pg_catalog.=) $2 "
			"  AND l.objid OPERATOR(pg_catalog.=) $3 "
			"  AND l.objsubid OPERATOR(pg_catalog.=) 2::pg_catalog.int2 "
			"  AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() "
			"LIMIT 1",
			3, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "calo_recon: could not read pg_locks");
	if (SPI_processed == 1)
	{
		char	   *text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		holder = text ? MemoryContextStrdup(caller, text) : NULL;
	}
	SPI_finish();
	return holder;
}

static bool
acquire(int32 class_key, int32 object_key, bool wait)
{
	LOCKTAG		tag;

	advisory_tag(&tag, class_key, object_key);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

void
calo_lock_writer(void)
{
	LOCKTAG		tag;
	char	   *holder;

	advisory_tag(&tag, CALO_LOCK_CLASS, CALO_LOCK_WRITER);
	if (chain_locks_taken_in != MyProc->lxid || LockHeldByMe(&tag, ExclusiveLock))
	{
		(void) acquire(CALO_LOCK_CLASS, CALO_LOCK_WRITER, true);
		return;
	}
	/* chain locks first, writer second: waiting could close a cycle with an ingest */
	if (acquire(CALO_LOCK_CLASS, CALO_LOCK_WRITER, false))
		return;
	holder = writer_lock_holder();
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("the calo_recon writer lock is busy, and this transaction may not wait for it"),
			 errdetail("It is held by %s. This transaction inserted transactions before, and waiting would risk a deadlock with an ingest of the same users.",
					   holder ? holder : "a session that has just released it"),
			 errhint("Commit the inserted transactions first, or call ingest_log, ingest_file, reconcile or refresh before inserting in the same transaction.")));
}

Datum
calo_recon_lock_writer(PG_FUNCTION_ARGS)
{
	calo_lock_writer();
	PG_RETURN_VOID();
}

Datum
calo_recon_try_lock_writer(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(acquire(CALO_LOCK_CLASS, CALO_LOCK_WRITER, false));
}

Datum
calo_recon_writer_lock_holder(PG_FUNCTION_ARGS)
{
	char	   *holder = writer_lock_holder();

	if (holder == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(holder));
}

static int
stripe_cmp(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? -1 : x > y;
}

/*
 * calo_recon.lock_user_chains(user_ids text[]): the chain locks of the
 * users, each stripe once, in ascending order (no cycle between two inserts);
 * true when one of them had to be waited for.
 */
Datum
calo_recon_lock_user_chains(PG_FUNCTION_ARGS)
{
	ArrayType  *users;
	Datum	   *names;
	bool	   *nulls;
	int			n;
	int			i;
	uint32	   *stripes;
	int			nstripes = 0;
	bool		waited = false;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	users = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(users, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
	stripes = palloc(sizeof(uint32) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		text	   *name;

		if (nulls[i])
			continue;
		name = DatumGetTextPP(names[i]);
		stripes[nstripes++] = hash_bytes((const unsigned char *) VARDATA_ANY(name),
										 VARSIZE_ANY_EXHDR(name)) % CALO_CHAIN_LOCK_STRIPES;
	}
	qsort(stripes, nstripes, sizeof(uint32), stripe_cmp);
	for (i = 0; i < nstripes; i++)
	{
		if (i > 0 && stripes[i] == stripes[i - 1])
			continue;
		/* the one lock order: each stripe once, ascending */
		Assert(i == 0 || stripes[i] > stripes[i - 1]);
		Assert(stripes[i] < CALO_CHAIN_LOCK_STRIPES);
		CHECK_FOR_INTERRUPTS();
		if (!acquire(CALO_CHAIN_LOCK_CLASS, (int32) stripes[i], false))
		{
			waited = true;
			(void) acquire(CALO_CHAIN_LOCK_CLASS, (int32) stripes[i], true);
		}
	}
	if (nstripes > 0)
		chain_locks_taken_in = MyProc->lxid;
	pfree(stripes);
	PG_RETURN_BOOL(waited);
}

/*
 * calo_recon.chain_snapshot_behind(user_ids text[]): under REPEATABLE READ or
 * SERIALIZABLE, whether the transaction's snapshot reads the stored rows of
 * these users differently from a snapshot taken now: a row committed since
 * it was taken (or deleted or updated since) that the chain check would
 * miss, although the chain locks did not have to wait for it (README
 * "Real-time alerts"; test/specs/alert_chain.spec).  Called once the chain
 * locks are held, so no insert of these users can commit in between.  The
 * rows' tids under both snapshots, the transaction's own rows included in
 * both.  false under READ COMMITTED (each statement reads a new snapshot)
 * and on a Citus cluster (its shards are read with their nodes' snapshots).
 */
Datum
calo_recon_chain_snapshot_behind(PG_FUNCTION_ARGS)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1];
	SPIPlanPtr	plan;
	char	   *seen[2] = {NULL, NULL};
	Snapshot	snapshots[2];
	Oid			relid;
	int			i;
	bool		behind;

	if (PG_ARGISNULL(0) || !IsolationUsesXactSnapshot())
		PG_RETURN_BOOL(false);
	relid = get_relname_relid("transactions", get_namespace_oid("calo_recon", false));
	if (!OidIsValid(relid) || calo_citus_is_distributed(relid))
		PG_RETURN_BOOL(false);
	args[0] = PG_GETARG_DATUM(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "calo_recon: SPI_connect failed");
	plan = SPI_prepare("SELECT pg_catalog.array_agg(t.ctid ORDER BY t.ctid)::pg_catalog.text "
					   "FROM calo_recon.transactions t "
					   "WHERE t.user_id OPERATOR(pg_catalog.=) ANY ($1)",
					   1, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	/* the transaction's snapshot, and one taken now (copied: it is reused) */
	snapshots[0] = GetTransactionSnapshot();
	snapshots[1] = RegisterSnapshot(GetLatestSnapshot());
	for (i = 0; i < 2; i++)
	{
		/* not read_only: SPI gives both the current command id, so both see this transaction's rows */
		if (SPI_execute_snapshot(plan, args, NULL, snapshots[i], InvalidSnapshot,
								 false, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "calo_recon: could not read the chains of calo_recon.transactions");
		seen[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	}
	UnregisterSnapshot(snapshots[1]);
	behind = (seen[0] == NULL) != (seen[1] == NULL)
		|| (seen[0] != NULL && strcmp(seen[0], seen[1]) != 0);
	SPI_finish();
	PG_RETURN_BOOL(behind);
}
