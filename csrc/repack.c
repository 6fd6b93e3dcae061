/*
 * repack.c: moving one live row of a table to a block chosen by
 * clustered_pg.repack() (src/sql/repack.rs decides which rows, in which
 * order, to which block).
 *
 * A move is heap's own operations, so WAL, TOAST, the visibility map and
 * predicate locks are heap's: the old version is deleted the way a
 * cross-partition UPDATE deletes it (heap_delete with changingPart, whose
 * t_ctid tells a concurrent updater that the row moved: it gets a
 * serialization failure instead of silently losing its change), the same
 * bytes are inserted into the chosen block, and every index but the
 * clustered one (whose map Rust updates without counting a new row) gets
 * an entry for the new TID. heap_update would keep the new version on the
 * old page whenever it fits there, which is exactly what a move must not do.
 *
 * Only rows nobody is changing are moved: a row with a live locker or
 * updater, or inserted by a transaction still in progress, is skipped.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "storage/bufmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "cpg.h"

typedef struct
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	MemoryContext tmp;
	CommandId	cid;
	Size		reserve;		/* fillfactor's free space per page */
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} CpgMoverState;

/* What cpg_mover_move did (src/sql/repack.rs mirrors these values). */
#define CPG_MOVE_MOVED 0
#define CPG_MOVE_SKIPPED 1
#define CPG_MOVE_NO_ROOM 2

/* Rust sees the mover as void * (src/pg/sys.rs). */
extern void *cpg_mover_begin(Relation rel, Oid clustered_index);
extern int32_t cpg_mover_move(void *mover, BlockNumber blkno, uint16_t offnum,
							  BlockNumber target, bool force, BlockNumber *new_blkno);
extern void cpg_mover_end(void *mover);

/*
 * Opens every index of rel for inserts, except the clustered one. The
 * executor state is what logical replication's apply worker builds for
 * the same job: ExecInsertIndexTuples then handles expression, partial,
 * unique and exclusion indexes as an INSERT would.
 */
void *
cpg_mover_begin(Relation rel, Oid clustered_index)
{
	CpgMoverState *m = palloc0(sizeof(CpgMoverState));
	int			i,
				kept = 0;

	PreventCommandIfReadOnly("clustered_pg.repack()");
	PreventCommandIfParallelMode("clustered_pg.repack()");
	PreventCommandDuringRecovery("clustered_pg.repack()");

	/*
	 * Index expressions and predicates run while rows move: run them as the
	 * table's owner in a security-restricted operation, as VACUUM and
	 * REINDEX do, so that a superuser's repack (or the auto-repack worker)
	 * never runs a table owner's functions with its own rights. An error
	 * restores both with the transaction's abort.
	 */
	GetUserIdAndSecContext(&m->save_userid, &m->save_sec_context);
	SetUserIdAndSecContext(rel->rd_rel->relowner,
						   m->save_sec_context | SECURITY_RESTRICTED_OPERATION);
	m->save_nestlevel = NewGUCNestLevel();
#if PG_VERSION_NUM >= 170000
	RestrictSearchPath();
#endif
	m->rel = rel;
	m->estate = CreateExecutorState();
	m->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(m->rri, rel, 1, NULL, 0);
	ExecOpenIndices(m->rri, false);
	for (i = 0; i < m->rri->ri_NumIndices; i++)
	{
		Relation	idx = m->rri->ri_IndexRelationDescs[i];

		if (RelationGetRelid(idx) == clustered_index)
		{
			index_close(idx, RowExclusiveLock);
			continue;
		}
		m->rri->ri_IndexRelationDescs[kept] = idx;
		m->rri->ri_IndexRelationInfo[kept] = m->rri->ri_IndexRelationInfo[i];
		kept++;
	}
	m->rri->ri_NumIndices = kept;
	m->slot = ExecInitExtraTupleSlot(m->estate, RelationGetDescr(rel), &TTSOpsHeapTuple);
	m->tmp = AllocSetContextCreate(CurrentMemoryContext, "clustered_pg repack",
								   ALLOCSET_DEFAULT_SIZES);
	m->cid = GetCurrentCommandId(true);
	m->reserve = RelationGetTargetPageFreeSpace(rel, HEAP_DEFAULT_FILLFACTOR);
	return m;
}

void
cpg_mover_end(void *mover)
{
	CpgMoverState *m = mover;

	ExecDropSingleTupleTableSlot(m->slot);
	ExecCloseIndices(m->rri);
	FreeExecutorState(m->estate);
	MemoryContextDelete(m->tmp);
	AtEOXact_GUC(false, m->save_nestlevel);
	SetUserIdAndSecContext(m->save_userid, m->save_sec_context);
	pfree(m);
}

/*
 * A copy of the row at (blkno, offnum) if it can be moved now: a normal
 * line pointer, inserted by a committed transaction other than ours, and
 * neither deleted, updated nor locked by anyone still running (heap's own
 * test, HeapTupleSatisfiesUpdate). NULL otherwise.
 */
static HeapTuple
movable_copy(CpgMoverState *m, BlockNumber blkno, OffsetNumber offnum)
{
	Buffer		buf = ReadBuffer(m->rel, blkno);
	Page		page;
	ItemId		lp;
	HeapTupleData tup;
	HeapTuple	copy = NULL;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!PageIsNew(page) && offnum >= FirstOffsetNumber &&
		offnum <= PageGetMaxOffsetNumber(page))
	{
		lp = PageGetItemId(page, offnum);
		if (ItemIdIsNormal(lp))
		{
			tup.t_data = (HeapTupleHeader) PageGetItem(page, lp);
			tup.t_len = ItemIdGetLength(lp);
			tup.t_tableOid = RelationGetRelid(m->rel);
			ItemPointerSet(&tup.t_self, blkno, offnum);
			if (!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup.t_data)) &&
				HeapTupleSatisfiesUpdate(&tup, m->cid, buf) == TM_Ok)
				copy = heap_copytuple(&tup);
		}
	}
	UnlockReleaseBuffer(buf);
	return copy;
}

/*
 * Moves the row at (blkno, offnum) into block target. Returns
 * CPG_MOVE_NO_ROOM (nothing done) when target lacks room for it within the
 * table's fillfactor, unless force: then heap picks a block when target is
 * full. *new_blkno is where the new version went (heap may still put it
 * elsewhere if another backend filled target meanwhile).
 */
int32_t
cpg_mover_move(void *mover, BlockNumber blkno, uint16_t offnum, BlockNumber target,
			   bool force, BlockNumber *new_blkno)
{
	CpgMoverState *m = mover;
	MemoryContext old;
	HeapTuple	copy;
	ItemPointerData otid;
	TM_FailureData tmfd;
	TM_Result	r;
	int			result = CPG_MOVE_SKIPPED;

	MemoryContextReset(m->tmp);
	old = MemoryContextSwitchTo(m->tmp);
	ItemPointerSet(&otid, blkno, offnum);
	copy = movable_copy(m, blkno, offnum);
	if (copy == NULL)
		goto done;
	if (!force && cpg_heap_page_free(m->rel, target, NULL, NULL) < MAXALIGN(copy->t_len) + m->reserve)
	{
		result = CPG_MOVE_NO_ROOM;
		goto done;
	}

	if (HeapTupleHasExternal(copy))
	{
		/*
		 * The delete drops the row's TOAST values, which the insert must
		 * copy first (heap_insert re-toasts values it cannot reuse). Lock
		 * the row so that the delete cannot fail after the insert.
		 */
		HeapTupleData lk;
		Buffer		lbuf = InvalidBuffer;

		lk.t_self = otid;
		r = heap_lock_tuple(m->rel, &lk, m->cid, LockTupleExclusive, LockWaitSkip,
							false, &lbuf, &tmfd);
		if (BufferIsValid(lbuf))
			ReleaseBuffer(lbuf);
		if (r != TM_Ok)
			goto done;
		RelationSetTargetBlock(m->rel, target);
		heap_insert(m->rel, copy, m->cid, 0, NULL);
		r = heap_delete(m->rel, &otid, m->cid, InvalidSnapshot, true, &tmfd, true);
		if (r != TM_Ok)
			elog(ERROR, "clustered_pg repack: could not delete a row it had locked (result %d)",
				 (int) r);
	}
	else
	{
		/* Not waiting: a row someone is changing stays where it is. */
		r = heap_delete(m->rel, &otid, m->cid, InvalidSnapshot, false, &tmfd, true);
		if (r != TM_Ok)
			goto done;
		RelationSetTargetBlock(m->rel, target);
		heap_insert(m->rel, copy, m->cid, 0, NULL);
	}

	ExecStoreHeapTuple(copy, m->slot, false);
	m->slot->tts_tableOid = RelationGetRelid(m->rel);
	if (m->rri->ri_NumIndices > 0)
#if PG_VERSION_NUM >= 160000
		(void) ExecInsertIndexTuples(m->rri, m->slot, m->estate, false, false, NULL, NIL, false);
#else
		(void) ExecInsertIndexTuples(m->rri, m->slot, m->estate, false, false, NULL, NIL);
#endif
	ExecClearTuple(m->slot);
	ResetPerTupleExprContext(m->estate);
	*new_blkno = ItemPointerGetBlockNumber(&copy->t_self);
	result = CPG_MOVE_MOVED;

done:
	MemoryContextSwitchTo(old);
	return result;
}
