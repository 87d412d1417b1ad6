/*
 * cluster_alert_hook_glue.c: the insert-time alert check of what a client's
 * statement inserts into calo_recon.transactions on a Citus cluster (README
 * "Scaling out with Citus").
 *
 * On one node the transactions' own trigger checks the new rows.  On a
 * cluster a trigger of a distributed table runs on its shards, where the
 * coordinator's alerts cannot be reached, so a trigger there queues the rows
 * in calo_recon.alert_queue, and nothing on the coordinator fires: Citus
 * plans the statement away from the coordinator's table.  When this library
 * is loaded on the coordinator from the start (shared_preload_libraries),
 * the end of every client statement that inserted into calo_recon.transactions,
 * itself or in a function it called, runs calo_recon.alert_queued() there,
 * inside the statement's transaction: the queued rows get the one node's
 * check (the rules keep their one home in alert_new_transactions()) before
 * the client sees the statement complete.  The ingest checks its own rows and
 * removes their entries, so at its end the queue holds none of them.
 * Without the preload, and for a statement sent to a worker, the rows wait
 * for the next raise_alerts().
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "citus_glue.h"
#include "cluster_alert_hook_glue.h"

static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* statements being run inside another one: not a client's statement */
static int	nesting_level = 0;

/* a statement of the current client statement inserted into transactions */
static bool transactions_inserted = false;

/* calo_recon.transactions, InvalidOid where calo_recon is not installed */
static Oid
transactions_relid(void)
{
	Oid			schema = get_namespace_oid("calo_recon", true);

	return OidIsValid(schema) ? get_relname_relid("transactions", schema) : InvalidOid;
}

/* Whether the plan inserts into calo_recon.transactions (a catalog look-up only for one that inserts) */
static bool
plan_inserts_into_transactions(const PlannedStmt *plan)
{
	Oid			relid = InvalidOid;
	ListCell   *cell;

	/* Citus keeps the statement's own range table for the permission checks */
	foreach(cell, plan->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, cell);
		AclMode		required;

		if (rte->rtekind != RTE_RELATION)
			continue;
#if PG_VERSION_NUM >= 160000
		required = rte->perminfoindex == 0 ? 0
			: list_nth_node(RTEPermissionInfo, plan->permInfos, rte->perminfoindex - 1)->requiredPerms;
#else
		required = rte->requiredPerms;
#endif
		if ((required & ACL_INSERT) == 0)
			continue;
		if (!OidIsValid(relid) && !OidIsValid(relid = transactions_relid()))
			return false;
		if (rte->relid == relid)
			return true;
	}
	return false;
}

/*
 * The queued rows' check, through calo_recon.alert_queued(), one of
 * calo_recon.definer_entry_points: it runs as the extension's owner, as
 * the catalog shows, and a role that may insert transactions needs EXECUTE
 * on it, as on one node it needs the rights of the alert trigger.  Only on
 * the coordinator: a statement sent to a worker leaves its rows queued for
 * the coordinator's next raise_alerts().
 */
static void
check_queued_rows(Oid relid)
{
	if (!calo_citus_is_distributed(relid))
		return;
	nesting_level++;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* a one-time filter: alert_queued() is not called on a worker */
		if (SPI_execute("SELECT calo_recon.alert_queued() WHERE pg_catalog.citus_is_coordinator()",
						false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not run calo_recon.alert_queued()");
		SPI_finish();
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
}

/* At the end of a client statement: the check, when it inserted */
static void
end_of_client_statement(void)
{
	Oid			relid;

	if (!transactions_inserted)
		return;
	transactions_inserted = false;
	/* ROLLBACK, or a statement of a failed transaction block: nothing to check */
	if (!IsTransactionState() || IsAbortedTransactionBlockState())
		return;
	relid = transactions_relid();
	if (!OidIsValid(relid))
		return;
	/* a utility statement (a CALL whose procedure committed) may leave none */
	if (ActiveSnapshotSet())
		check_queued_rows(relid);
	else
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		check_queued_rows(relid);
		PopActiveSnapshot();
	}
}

/* An aborted statement's rows are gone, and so is their queue */
static void
forget_inserts_at_abort(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		transactions_inserted = false;
}

static void
alert_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once)
{
	nesting_level++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
}

static void
alert_executor_finish(QueryDesc *queryDesc)
{
	bool		client_statement = nesting_level == 0;

	nesting_level++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
	if (plan_inserts_into_transactions(queryDesc->plannedstmt))
		transactions_inserted = true;
	if (client_statement)
		end_of_client_statement();
}

static void
alert_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	bool		client_statement = nesting_level == 0 && context == PROCESS_UTILITY_TOPLEVEL;
	Node	   *statement = pstmt->utilityStmt;

	nesting_level++;
	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
	if (IsA(statement, CopyStmt))
	{
		CopyStmt   *copy = (CopyStmt *) statement;
		Oid			relid;

		if (copy->is_from && copy->relation != NULL
			&& (relid = transactions_relid()) != InvalidOid
			&& RangeVarGetRelid(copy->relation, NoLock, true) == relid)
			transactions_inserted = true;
	}
	if (client_statement && !IsA(statement, TransactionStmt))
		end_of_client_statement();
}

void
calo_cluster_alert_hook_install(void)
{
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = alert_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = alert_executor_finish;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = alert_process_utility;
	RegisterXactCallback(forget_inserts_at_abort, NULL);
}
