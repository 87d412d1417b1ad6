/*
 * bulk_write_glue.c: the bulk writer of the extension's own tables
 * (bulk_write_glue.h), as COPY FROM writes a plain table: rows in batches
 * through table_multi_insert and a BulkInsertState, then the index entries
 * of each row, the table's constraints checked per row, its statement
 * triggers fired around the whole write and its transition tables filled
 * row by row.  What COPY would do row by row (row-level insert triggers) or
 * not at all (insert rules) is refused rather than written around; a
 * table whose row-level security applies is left to INSERT statements
 * (bulk_write_fires_all).  On request a row whose unique key is taken is
 * left out, as INSERT ... ON CONFLICT DO NOTHING leaves it.  The tables it
 * writes: transaction_scores, reconciliation_findings and the report totals
 * (or their shards on a Citus worker), log_events and transactions.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "nodes/execnodes.h"
#include "optimizer/optimizer.h"
#include "rewrite/prs2lock.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "bulk_write_glue.h"

/* rows per table_multi_insert: COPY's MAX_BUFFERED_TUPLES */
#define BULK_WRITE_BATCH 1000

struct BulkWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;
	BulkWriteOptions options;
	TransitionCaptureState *transition;	/* NULL without transition tables */
	CommandId	cid;
	MemoryContext cxt;			/* the writer's and its slots' */
	MemoryContext batch_cxt;	/* the batch's values, reset after each batch */
	MemoryContext caller_cxt;	/* between begin_row and end_row */
	/*
	 * The slots' descriptor: a copy of the table's that is not reference
	 * counted.  A slot made on the table's own descriptor pins it in the
	 * resource owner, and a thousand pins of one pointer make each further
	 * pin probe past them all: the unique check of every row whose key is
	 * in the index already (a score replaced) pins it once more.
	 */
	TupleDesc	slot_desc;
	TupleTableSlot *holder_slot;	/* a taken key's row, made when first needed */
	TupleTableSlot *slots[BULK_WRITE_BATCH];	/* made as the first batch needs them */
	int			nslots;
	int64		written;
	/* the columns with a default, filled into every new row as COPY does */
	int			ndefaults;
	AttrNumber *default_atts;
	ExprState **default_exprs;
};

/* A rule that an INSERT into rel would apply */
static bool
bulk_write_has_insert_rule(Relation rel)
{
	if (rel->rd_rules == NULL)
		return false;
	for (int i = 0; i < rel->rd_rules->numLocks; i++)
		if (rel->rd_rules->rules[i]->event == CMD_INSERT)
			return true;
	return false;
}

/*
 * The table's own default expressions (its one home for them, such as
 * now() of a stamp column), planned as COPY plans those of the columns it
 * is not given
 */
static void
bulk_write_prepare_defaults(BulkWriter *w)
{
	TupleDesc	desc = RelationGetDescr(w->rel);

	w->default_atts = palloc(sizeof(AttrNumber) * desc->natts);
	w->default_exprs = palloc(sizeof(ExprState *) * desc->natts);
	for (int a = 0; a < desc->natts; a++)
	{
		Node	   *def;

		if (TupleDescAttr(desc, a)->attisdropped || TupleDescAttr(desc, a)->attgenerated)
			continue;
		def = build_column_default(w->rel, a + 1);
		if (def == NULL)
			continue;
		w->default_atts[w->ndefaults] = (AttrNumber) (a + 1);
		w->default_exprs[w->ndefaults] = ExecInitExpr(expression_planner((Expr *) def), NULL);
		w->ndefaults++;
	}
}

static bool
bulk_write_has_row_trigger(Relation rel)
{
	TriggerDesc *trig = rel->trigdesc;

	return trig != NULL && (trig->trig_insert_before_row || trig->trig_insert_after_row ||
							trig->trig_insert_instead_row);
}

/*
 * Whether row-level security applies to the current user's inserts into
 * rel: the writer would not check the policies' WITH CHECK (COPY FROM
 * refuses such a table).
 */
static bool
bulk_write_has_row_security(Relation rel)
{
	return check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED;
}

bool
bulk_write_fires_all(Oid relid)
{
	/* the writer's lock, kept: no trigger is added before the write */
	Relation	rel = table_open(relid, RowExclusiveLock);
	bool		fires_all = !bulk_write_has_row_trigger(rel) && !bulk_write_has_insert_rule(rel) &&
		!bulk_write_has_row_security(rel);

	table_close(rel, NoLock);
	return fires_all;
}

BulkWriter *
bulk_write_open(Oid relid, const char *what)
{
	return bulk_write_open_with(relid, what, NULL);
}

BulkWriter *
bulk_write_open_with(Oid relid, const char *what, const BulkWriteOptions *options)
{
	BulkWriter *w = palloc0(sizeof(BulkWriter));
	TriggerDesc *trig;
	char	   *name;

	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
	w->rel = table_open(relid, RowExclusiveLock);
	name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(w->rel)),
									  RelationGetRelationName(w->rel));
	trig = w->rel->trigdesc;
	if (options != NULL)
		w->options = *options;
	/*
	 * Statement triggers fire as they do for COPY (the extension's own that
	 * queue users or note that the inputs of the anomalies changed, reading
	 * the new rows from their transition table); row triggers would need
	 * every row handed over one by one.
	 */
	if (bulk_write_has_row_trigger(w->rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s has row-level insert triggers, which the bulk write of %s does not fire", name, what),
				 errhint("Drop the row-level insert triggers on %s, or make them statement-level.",
						 name)));
	if (bulk_write_has_insert_rule(w->rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s has insert rules, which the bulk write of %s does not apply", name, what),
				 errhint("Drop the insert rules on %s.", name)));
	w->cxt = CurrentMemoryContext;
	w->slot_desc = CreateTupleDescCopy(RelationGetDescr(w->rel));
	w->estate = CreateExecutorState();
	w->rri = makeNode(ResultRelInfo);
	/* no range table entry: a failing row's detail is built without one */
	InitResultRelInfo(w->rri, w->rel, 0, NULL, 0);
	/* speculative: the unique keys' operators, which the conflict check needs */
	ExecOpenIndices(w->rri, w->options.skip_conflicts);
	AfterTriggerBeginQuery();
	w->transition = MakeTransitionCaptureState(trig, relid, CMD_INSERT);
	ExecBSInsertTriggers(w->estate, w->rri);
	w->bistate = GetBulkInsertState();
	w->cid = GetCurrentCommandId(true);
	w->batch_cxt = AllocSetContextCreate(w->cxt, "calo_recon bulk write batch", ALLOCSET_DEFAULT_SIZES);
	bulk_write_prepare_defaults(w);
	return w;
}

BulkWriter *
bulk_write_open_table(const char *table, const char *what)
{
	return bulk_write_open(RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(table)),
											RowExclusiveLock, false),
						   what);
}

Relation
bulk_write_relation(const BulkWriter *w)
{
	return w->rel;
}

/*
 * A row left out for the row at holder: as ON CONFLICT DO NOTHING, never
 * for a row that a REPEATABLE READ or SERIALIZABLE snapshot cannot see
 * (40001), since the caller, looking the row up, would find none; a row of
 * this transaction, such as one of this write, is no such case.
 */
static void
bulk_write_check_holder_visible(BulkWriter *w, ItemPointer holder)
{
	TupleTableSlot *slot;
	bool		isnull;

	if (!IsolationUsesXactSnapshot())
		return;
	if (w->holder_slot == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(w->cxt);

		w->holder_slot = MakeSingleTupleTableSlot(w->slot_desc, table_slot_callbacks(w->rel));
		MemoryContextSwitchTo(old);
	}
	slot = w->holder_slot;
	if (!table_tuple_fetch_row_version(w->rel, holder, SnapshotAny, slot))
		elog(ERROR, "failed to fetch the row holding a unique key of %s", RelationGetRelationName(w->rel));
	if (!table_tuple_satisfies_snapshot(w->rel, slot, GetActiveSnapshot()) &&
		!TransactionIdIsCurrentTransactionId(DatumGetTransactionId(slot_getsysattr(slot, MinTransactionIdAttributeNumber,
																				   &isnull))))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update"),
				 errdetail("A unique key of a row for %s is held by a row this transaction's snapshot does not see.",
						   RelationGetRelationName(w->rel))));
	ExecClearTuple(slot);
}

/*
 * Whether a row not yet in the table may be written: its unique keys are
 * free once any transaction holding one has ended (waited for).  Asked
 * before the row goes into the table, as ON CONFLICT asks, so that a row
 * left out leaves nothing behind: a row taken out again would stay a holder
 * of its key, as far as other writers' unique checks know, until this
 * transaction ends, and they would wait for it.
 */
static bool
bulk_write_keys_free(BulkWriter *w, TupleTableSlot *slot)
{
	ItemPointerData holder;

	ResetPerTupleExprContext(w->estate);
	if (ExecCheckIndexConstraints(w->rri, slot, w->estate, &holder, NIL))
		return true;
	bulk_write_check_holder_visible(w, &holder);
	return false;
}

/*
 * The index entries of a row just put in the table.  Its unique keys are
 * checked there (23505), or, when conflicts are left out, a key taken since
 * bulk_write_keys_free looked (a concurrent insert in between) is resolved
 * as ON CONFLICT DO NOTHING resolves it: the row is taken out of the table
 * again, the key's holder is waited for, and the row is written again if
 * the holder went away.  False when the row was left out.
 */
static bool
bulk_write_index_row(BulkWriter *w, TupleTableSlot *slot)
{
	bool		taken = false;

	list_free(ExecInsertIndexTuples(w->rri, slot, w->estate, false,
									w->options.skip_conflicts, &taken, NIL));
	while (taken)
	{
		/*
		 * The delete must see this command's own insert: a later command
		 * id.  The row stays dead to every snapshot, and the unique checks
		 * skip a row its own transaction deleted; other transactions' checks
		 * wait for this one on it (the narrow race of a key taken between
		 * the two checks, which ON CONFLICT closes with a speculative
		 * insert that table_multi_insert has not).
		 */
		CommandCounterIncrement();
		simple_table_tuple_delete(w->rel, &slot->tts_tid, InvalidSnapshot);
		if (!bulk_write_keys_free(w, slot))
			return false;
		table_tuple_insert(w->rel, slot, GetCurrentCommandId(true), 0, NULL);
		taken = false;
		list_free(ExecInsertIndexTuples(w->rri, slot, w->estate, false, true, &taken, NIL));
	}
	return true;
}

/* The batch to the table, then each row's index entries and transition-table copy. */
static void
bulk_write_flush(BulkWriter *w)
{
	MemoryContext old;

	if (w->nslots == 0)
		return;
	old = MemoryContextSwitchTo(w->batch_cxt);
	table_multi_insert(w->rel, w->slots, w->nslots, w->cid, 0, w->bistate);
	for (int i = 0; i < w->nslots; i++)
	{
		TupleTableSlot *slot = w->slots[i];

		ResetPerTupleExprContext(w->estate);
		if (bulk_write_index_row(w, slot))
		{
			if (w->transition != NULL)
				ExecARInsertTriggers(w->estate, w->rri, slot, NIL, w->transition);
			if (w->options.on_stored != NULL)
				w->options.on_stored(slot, w->options.on_stored_arg);
			w->written++;
		}
		ExecClearTuple(slot);
	}
	MemoryContextSwitchTo(old);
	w->nslots = 0;
	MemoryContextReset(w->batch_cxt);
	CHECK_FOR_INTERRUPTS();
}

TupleTableSlot *
bulk_write_begin_row(BulkWriter *w)
{
	TupleTableSlot *slot = w->slots[w->nslots];
	int			natts = RelationGetDescr(w->rel)->natts;

	if (slot == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(w->cxt);

		slot = w->slots[w->nslots] = MakeSingleTupleTableSlot(w->slot_desc, table_slot_callbacks(w->rel));
		MemoryContextSwitchTo(old);
	}
	ExecClearTuple(slot);
	for (int a = 0; a < natts; a++)
		slot->tts_isnull[a] = true;
	w->caller_cxt = MemoryContextSwitchTo(w->batch_cxt);
	for (int d = 0; d < w->ndefaults; d++)
	{
		AttrNumber	att = w->default_atts[d];

		slot->tts_values[att - 1] = ExecEvalExpr(w->default_exprs[d], GetPerTupleExprContext(w->estate),
												 &slot->tts_isnull[att - 1]);
	}
	return slot;
}

void
bulk_write_end_row(BulkWriter *w)
{
	TupleTableSlot *slot = w->slots[w->nslots];

	ExecStoreVirtualTuple(slot);
	if (w->rel->rd_att->constr != NULL)
		ExecConstraints(w->rri, slot, w->estate);
	/* a row left out is never written: the slot is reused */
	if (w->options.skip_conflicts && !bulk_write_keys_free(w, slot))
	{
		ExecClearTuple(slot);
		MemoryContextSwitchTo(w->caller_cxt);
		return;
	}
	MemoryContextSwitchTo(w->caller_cxt);
	if (++w->nslots == BULK_WRITE_BATCH)
		bulk_write_flush(w);
}

int64
bulk_write_close(BulkWriter *w)
{
	int64		written;

	bulk_write_flush(w);
	for (int i = 0; i < BULK_WRITE_BATCH; i++)
		if (w->slots[i] != NULL)
			ExecDropSingleTupleTableSlot(w->slots[i]);
	if (w->holder_slot != NULL)
		ExecDropSingleTupleTableSlot(w->holder_slot);
	FreeBulkInsertState(w->bistate);
	table_finish_bulk_insert(w->rel, 0);
	ExecASInsertTriggers(w->estate, w->rri, w->transition);
	AfterTriggerEndQuery(w->estate);
	ExecCloseResultRelations(w->estate);
	ExecCloseIndices(w->rri);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
	MemoryContextDelete(w->batch_cxt);
	FreeTupleDesc(w->slot_desc);
	written = w->written;
	pfree(w);
	return written;
}
