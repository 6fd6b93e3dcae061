/*
 * table_am.c: the clustered_heap routine. It is heap's routine with the
 * insert paths wrapped: before heap places a tuple, Rust (src/am/table/)
 * picks the block for its key and we make it heap's target block. Scans,
 * MVCC, WAL, TOAST, VACUUM are heap's own.
 */
#include "postgres.h"

#include "access/heaptoast.h"
#include "access/hio.h"

#include "access/heapam.h"
#include "catalog/index.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "executor/tuptable.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/inval.h"
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "access/genam.h"
#include "access/xact.h"

#include "cpg.h"

extern void cpg_raise(CpgStatus *st);
extern Oid	cpg_clustered_index_of(Relation rel);
extern Datum cpg_slot_key(TupleTableSlot *slot, int16 attno, bool *isnull);
extern Size cpg_heap_page_free(Relation rel, BlockNumber blkno, Buffer *keep,
							   BlockNumber *nblocks);
extern Buffer cpg_read_buffer_existing(Relation rel, BlockNumber blkno, BlockNumber *nblocks);

/* cpg_heap_page_free's answer for a block past the table's end. */
#define CPG_NO_SUCH_BLOCK ((Size) -1)
extern Buffer cpg_read_buffer(Relation rel, BlockNumber blkno);
extern BlockNumber cpg_heap_fresh_block(Relation rel);
extern void cpg_table_am_init(void);

static TableAmRoutine cpg_routine;
static const TableAmRoutine *heap_routine;

/*
 * Which table has which clustered_pk_index, per backend: looked up once,
 * forgotten on any relcache invalidation of the table (creating or dropping
 * an index invalidates it).
 */
#define CPG_INDEX_CACHE 16
static struct
{
	Oid			table;
	Oid			index;
}			index_cache[CPG_INDEX_CACHE];
static int	index_cache_next;

static void
index_cache_invalidate(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < CPG_INDEX_CACHE; i++)
		if (!OidIsValid(relid) || index_cache[i].table == relid)
			index_cache[i].table = InvalidOid;
	/* placement's memory of free space (cannot fail) */
	rs_placement_forget(relid);
}

static Oid lookup_clustered_index(Relation rel);

/* The clustered_pk_index of a table, or InvalidOid. */
Oid
cpg_clustered_index_of(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	int			i;
	Oid			found;

	for (i = 0; i < CPG_INDEX_CACHE; i++)
		if (index_cache[i].table == relid)
			return index_cache[i].index;
	found = lookup_clustered_index(rel);
	index_cache[index_cache_next].table = relid;
	index_cache[index_cache_next].index = found;
	index_cache_next = (index_cache_next + 1) % CPG_INDEX_CACHE;
	return found;
}

/*
 * Row counts the map still owes for inserts under zones that already
 * covered their keys (src/am/index/map.rs): added at pre-commit, dropped on
 * abort.
 */
static void
pending_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			{
				CpgStatus	st = {0};

				rs_flush_pending(&st);
				cpg_raise(&st);
				break;
			}
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			rs_discard_pending();
			rs_placement_xact_end();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			rs_placement_xact_end();
			break;
		default:
			break;
	}
}

void
cpg_table_am_init(void)
{
	CacheRegisterRelcacheCallback(index_cache_invalidate, (Datum) 0);
	RegisterXactCallback(pending_xact_callback, NULL);
}

static Oid
lookup_clustered_index(Relation rel)
{
	Oid			am = get_am_oid("clustered_pk_index", true);
	List	   *indexes;
	ListCell   *lc;
	Oid			found = InvalidOid;

	if (!OidIsValid(am))
		return InvalidOid;
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tup))
			continue;
		if (((Form_pg_class) GETSTRUCT(tup))->relam == am)
			found = lfirst_oid(lc);
		ReleaseSysCache(tup);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	return found;
}

Datum
cpg_slot_key(TupleTableSlot *slot, int16 attno, bool *isnull)
{
	return slot_getattr(slot, attno, isnull);
}

/*
 * Free space of a heap page. With keep, the page stays pinned and *keep is
 * its buffer: placement hands the pin of the block it chooses to
 * heap_insert (see handoff_begin). With nblocks NULL the caller knows the
 * block exists; else *nblocks is what it knows of the table's size
 * (cpg_read_buffer_existing), and a block past the end returns
 * CPG_NO_SUCH_BLOCK (VACUUM may have truncated a block the map still
 * lists).
 */
Size
cpg_heap_page_free(Relation rel, BlockNumber blkno, Buffer *keep, BlockNumber *nblocks)
{
	Buffer		buf;
	Size		free;

	if (keep)
		*keep = InvalidBuffer;
	if (nblocks)
	{
		buf = cpg_read_buffer_existing(rel, blkno, nblocks);
		if (!BufferIsValid(buf))
			return CPG_NO_SUCH_BLOCK;
	}
	else
		buf = cpg_read_buffer(rel, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	free = PageIsNew(BufferGetPage(buf))
		? BLCKSZ - SizeOfPageHeaderData - sizeof(ItemIdData)
		: PageGetHeapFreeSpace(BufferGetPage(buf));
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	if (keep)
		*keep = buf;
	else
		ReleaseBuffer(buf);
	return free;
}

/*
 * An empty page nobody is filling yet, or InvalidBlockNumber. VACUUM records
 * a page that lost all its tuples in the free space map with a whole page
 * free, and the index's VACUUM has dropped it from every segment (it holds
 * no key), so a new segment can own it instead of growing the table: a
 * table whose old rows are deleted (retention) stays its size. The page is
 * checked under its lock, and marked full in the map at once so that
 * concurrent placements pick different pages (VACUUM records the truth
 * again; heap finds room on it by itself anyway).
 */
static BlockNumber
reuse_empty_page(Relation rel)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	int			tries;

	for (tries = 0; tries < 4; tries++)
	{
		BlockNumber blkno = GetPageWithFreeSpace(rel, MaxHeapTupleSize);
		Buffer		buf;
		Page		page;
		bool		empty = true;
		OffsetNumber off,
					maxoff;

		if (blkno == InvalidBlockNumber)
			return InvalidBlockNumber;
		/* Whatever the answer, nobody else should be sent here for now. */
		RecordPageWithFreeSpace(rel, blkno, 0);
		if (blkno >= nblocks)
			continue;
		buf = ReadBuffer(rel, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			maxoff = PageGetMaxOffsetNumber(page);
			for (off = FirstOffsetNumber; off <= maxoff && empty; off = OffsetNumberNext(off))
				empty = !ItemIdIsUsed(PageGetItemId(page, off));
		}
		UnlockReleaseBuffer(buf);
		if (empty)
			return blkno;
	}
	return InvalidBlockNumber;
}

/*
 * A block for a segment that needs a fresh one: an empty page of the table
 * if the free space map knows one, else a zeroed page added at the end
 * (heap initialises it when the first tuple goes there,
 * RelationGetBufferForTuple).
 */
#define FRESH_EXTEND_MAX 16

BlockNumber
cpg_heap_fresh_block(Relation rel)
{
	BlockNumber blkno;

	blkno = reuse_empty_page(rel);
	if (blkno != InvalidBlockNumber)
		return blkno;
#if PG_VERSION_NUM >= 160000
	{
		/*
		 * A random-order load asks for a fresh block at every split; adding
		 * them a few at a time (as heap does under contention) saves a
		 * system call each. The extra pages go to the free space map as
		 * empty, where reuse_empty_page finds them next. Small tables grow
		 * one page at a time, as before.
		 */
		Buffer		bufs[FRESH_EXTEND_MAX];
		uint32		want = Min(FRESH_EXTEND_MAX,
							   Max(1, RelationGetNumberOfBlocks(rel) / 32));
		uint32		got = 0;
		uint32		i;

		blkno = ExtendBufferedRelBy(BMR_REL(rel), MAIN_FORKNUM, NULL, 0,
									want, bufs, &got);
		for (i = 0; i < got; i++)
			ReleaseBuffer(bufs[i]);
		if (got > 1)
		{
			for (i = 1; i < got; i++)
				RecordPageWithFreeSpace(rel, blkno + i,
										BLCKSZ - SizeOfPageHeaderData);
			FreeSpaceMapVacuumRange(rel, blkno + 1, blkno + got);
		}
		return blkno;
	}
#else
	{
		Buffer		buf;

		LockRelationForExtension(rel, ExclusiveLock);
		buf = ReadBuffer(rel, P_NEW);
		UnlockRelationForExtension(rel, ExclusiveLock);
		blkno = BufferGetBlockNumber(buf);
		ReleaseBuffer(buf);
		return blkno;
	}
#endif
}

/*
 * Chooses the block for the tuple and makes it heap's target: finds and
 * opens the clustered_pk_index, reads the key and the tuple's length here
 * (PostgreSQL calls that may ereport, kept out of Rust's frames), and asks
 * Rust for the block in one call. With
 * pinned_out and no bulk-insert state, *pinned_out is the chosen block's
 * buffer, still pinned from placement's look at its free space (the caller
 * releases it), or InvalidBuffer; otherwise that pin is dropped here.
 */
static void
place(Relation rel, TupleTableSlot *slot, BulkInsertState bistate, Buffer *pinned_out,
	  Buffer *held_out)
{
	CpgStatus	st = {0};
	Buffer		pinned = InvalidBuffer;
	Buffer		held = InvalidBuffer;
	Oid			index_oid = cpg_clustered_index_of(rel);
	Relation	index;
	Datum		key;
	bool		isnull;
	bool		may_hold = false;
	uint32		len = 0;
	BlockNumber target;

	if (pinned_out)
		*pinned_out = InvalidBuffer;
	if (held_out)
		*held_out = InvalidBuffer;
	/* no clustered_pk_index: heap's own choice */
	if (!OidIsValid(index_oid))
		return;
	/*
	 * No lock of its own: the caller's lock on the table keeps the index
	 * from being dropped (DROP INDEX waits for it, CONCURRENTLY waits for
	 * its transaction), and the executor has locked the index too. Taking
	 * the lock again was a lock-table lookup per row.
	 */
	index = index_open(index_oid, NoLock);
	key = slot_getattr(slot, index->rd_index->indkey.values[0], &isnull);
	/* materialises the tuple heap is about to store (Rust refuses a NULL key) */
	if (!isnull)
	{
		HeapTuple	tup = ExecFetchSlotHeapTuple(slot, true, NULL);

		len = tup->t_len;

		/*
		 * A map page may stay share-locked across heap's insert only when
		 * nothing in that insert waits for another transaction: heap_insert
		 * toasts (and the toast index's unique check can wait) exactly
		 * when the tuple has external values or passes this threshold.
		 */
		may_hold = held_out != NULL && !HeapTupleHasExternal(tup) &&
			tup->t_len <= TOAST_TUPLE_THRESHOLD;
	}
	/*
	 * Placement sets the target block below, and heap's insert keeps it set;
	 * only a reset of the table's storage manager handle clears it, which
	 * every backend gets when VACUUM truncates the table. Placement then
	 * drops the table size it remembers (heap trusts its target block on
	 * the same grounds).
	 */
	target = rs_place(rel, index, key, isnull, len,
					  RelationGetTargetBlock(rel) == InvalidBlockNumber, may_hold,
					  &pinned, &held, &st);
	index_close(index, NoLock);
	cpg_raise(&st);
	if (target == InvalidBlockNumber)
		return;
	RelationSetTargetBlock(rel, target);
	/* heap prefers the bulk-insert buffer over the target block */
	if (bistate)
		ReleaseBulkInsertStatePin(bistate);
	if (pinned_out && !bistate)
		*pinned_out = pinned;
	else if (BufferIsValid(pinned))
		ReleaseBuffer(pinned);
	if (held_out)
		*held_out = held;
}

/*
 * After heap's insert of a tuple place() covered under a share-locked map
 * page (rs_place's `held`): the page may change again.
 */
static void
release_held(Buffer held)
{
	if (BufferIsValid(held))
		UnlockReleaseBuffer(held);
}

/*
 * The bulk-insert state heap should use: the caller's, or, when placement
 * handed over the pin of the chosen block, a one-tuple state around it
 * (*bi, set up here): heap's RelationGetBufferForTuple then takes that
 * buffer as its target without looking the block up again. No access
 * strategy, so buffers are read as for any insert.
 */
static BulkInsertState
handoff_begin(BulkInsertStateData *bi, Buffer pinned, BulkInsertState bistate)
{
	if (!BufferIsValid(pinned))
		return bistate;
	memset(bi, 0, sizeof(*bi));
	bi->strategy = NULL;
	bi->current_buf = pinned;
#if PG_VERSION_NUM >= 160000
	bi->next_free = InvalidBlockNumber;
	bi->last_free = InvalidBlockNumber;
	bi->already_extended_by = 0;
#endif
	return bi;
}

/*
 * After heap's insert through handoff_begin's state: drops its pin. If the
 * target had filled up meanwhile and heap extended the table for this
 * tuple, the pages it added beyond the one it used were kept for the
 * state, not put in the free space map: put them there, as heap does
 * without a state.
 */
static void
handoff_end(Relation rel, BulkInsertStateData *bi, Buffer pinned)
{
	if (!BufferIsValid(pinned))
		return;
	if (BufferIsValid(bi->current_buf))
		ReleaseBuffer(bi->current_buf);
	bi->current_buf = InvalidBuffer;
#if PG_VERSION_NUM >= 160000
	if (bi->next_free != InvalidBlockNumber)
	{
		BlockNumber b;

		for (b = bi->next_free; b <= bi->last_free; b++)
			RecordPageWithFreeSpace(rel, b, BLCKSZ - SizeOfPageHeaderData);
		FreeSpaceMapVacuumRange(rel, bi->next_free, bi->last_free + 1);
	}
#endif
}

static void
cpg_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid, int options,
				 BulkInsertState bistate)
{
	BulkInsertStateData bi;
	Buffer		pinned;
	Buffer		held;

	place(rel, slot, bistate, &pinned, &held);
	heap_routine->tuple_insert(rel, slot, cid, options,
							   handoff_begin(&bi, pinned, bistate));
	release_held(held);
	handoff_end(rel, &bi, pinned);
}

static void
cpg_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid,
							 int options, BulkInsertState bistate, uint32 token)
{
	BulkInsertStateData bi;
	Buffer		pinned;

	place(rel, slot, bistate, &pinned, NULL);
	heap_routine->tuple_insert_speculative(rel, slot, cid, options,
										   handoff_begin(&bi, pinned, bistate), token);
	handoff_end(rel, &bi, pinned);
}

/*
 * A batch (COPY) goes in key order, one tuple at a time, each to the block
 * its key calls for: neighbours in the batch then fill the same block.
 */
static void
cpg_multi_insert(Relation rel, TupleTableSlot **slots, int nslots, CommandId cid,
				 int options, BulkInsertState bistate)
{
	CpgStatus	st = {0};
	int		   *order = palloc(sizeof(int) * Max(nslots, 1));
	int			i;

	rs_key_order(rel, slots, nslots, order, &st);
	cpg_raise(&st);
	for (i = 0; i < nslots; i++)
	{
		TupleTableSlot *slot = slots[order[i]];
		Buffer		held;

		place(rel, slot, bistate, NULL, &held);
		heap_routine->tuple_insert(rel, slot, cid, options, bistate);
		release_held(held);
	}
	pfree(order);
}

#if PG_VERSION_NUM >= 160000
static TM_Result
cpg_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
				 Snapshot snapshot, Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				 LockTupleMode *lockmode, TU_UpdateIndexes *update_indexes)
#else
static TM_Result
cpg_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
				 Snapshot snapshot, Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				 LockTupleMode *lockmode, bool *update_indexes)
#endif
{
	/* heap keeps the new version on the old page when it fits there */
	place(rel, slot, NULL, NULL, NULL);
	return heap_routine->tuple_update(rel, otid, slot, cid, snapshot, crosscheck, wait,
									  tmfd, lockmode, update_indexes);
}

/*
 * A valid, non-partial btree whose first column is the clustered key: heap's
 * rewrite can sort by it. InvalidOid if there is none.
 */
static Oid
btree_on_clustered_key(Relation rel, Oid clustered_index)
{
	Relation	ck = index_open(clustered_index, AccessShareLock);
	AttrNumber	key = ck->rd_index->indkey.values[0];
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	index_close(ck, AccessShareLock);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);

		if (idx->rd_rel->relam == BTREE_AM_OID &&
			idx->rd_index->indisvalid &&
			idx->rd_index->indkey.values[0] == key &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL))
			found = RelationGetRelid(idx);
		index_close(idx, AccessShareLock);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	return found;
}

/*
 * VACUUM FULL (no index given) rewrites a clustered_heap table in key order:
 * through heap's sorted rewrite when a btree on the key exists (a sequential
 * read and a sort), otherwise through an ordered scan of the clustered index
 * itself (what CLUSTER ... USING it does). The map is rebuilt afterwards
 * with the other indexes. CLUSTER ... USING a btree keeps PostgreSQL's
 * meaning (that index's order).
 */
static void
cpg_relation_copy_for_cluster(Relation OldTable, Relation NewTable, Relation OldIndex,
							  bool use_sort, TransactionId OldestXmin,
							  TransactionId *xid_cutoff, MultiXactId *multi_cutoff,
							  double *num_tuples, double *tups_vacuumed,
							  double *tups_recently_dead)
{
	Oid			ck = cpg_clustered_index_of(OldTable);
	Oid			sort_by = (OldIndex == NULL && OidIsValid(ck))
		? btree_on_clustered_key(OldTable, ck) : InvalidOid;
	Oid			scan_by = (OldIndex == NULL && OidIsValid(ck) && !OidIsValid(sort_by))
		? ck : InvalidOid;

	if (OidIsValid(sort_by) || OidIsValid(scan_by))
	{
		Relation	idx = index_open(OidIsValid(sort_by) ? sort_by : scan_by, AccessShareLock);

		heap_routine->relation_copy_for_cluster(OldTable, NewTable, idx, OidIsValid(sort_by),
												OldestXmin, xid_cutoff, multi_cutoff,
												num_tuples, tups_vacuumed, tups_recently_dead);
		index_close(idx, NoLock);
		return;
	}
	heap_routine->relation_copy_for_cluster(OldTable, NewTable, OldIndex, use_sort, OldestXmin,
											xid_cutoff, multi_cutoff, num_tuples,
											tups_vacuumed, tups_recently_dead);
}

/* TOAST tables of clustered_heap tables are plain heap. */
static Oid
cpg_relation_toast_am(Relation rel)
{
	return HEAP_TABLE_AM_OID;
}

/*
 * heap's index build scans call heap_getnext(), which refuses any routine
 * but heap's own; they read the table exactly as heap stores it, so run
 * them with heap's routine in place, restored also on error.
 */
static double
cpg_index_build_range_scan(Relation table_rel, Relation index_rel, IndexInfo *index_info,
						   bool allow_sync, bool anyvisible, bool progress,
						   BlockNumber start_blockno, BlockNumber numblocks,
						   IndexBuildCallback callback, void *callback_state,
						   TableScanDesc scan)
{
	const TableAmRoutine *saved = table_rel->rd_tableam;
	double		result = 0;

	table_rel->rd_tableam = heap_routine;
	PG_TRY();
	{
		result = heap_routine->index_build_range_scan(table_rel, index_rel, index_info,
													  allow_sync, anyvisible, progress,
													  start_blockno, numblocks, callback,
													  callback_state, scan);
	}
	PG_FINALLY();
	{
		table_rel->rd_tableam = saved;
	}
	PG_END_TRY();
	return result;
}

static void
cpg_index_validate_scan(Relation table_rel, Relation index_rel, IndexInfo *index_info,
						Snapshot snapshot, ValidateIndexState *state)
{
	const TableAmRoutine *saved = table_rel->rd_tableam;

	table_rel->rd_tableam = heap_routine;
	PG_TRY();
	{
		heap_routine->index_validate_scan(table_rel, index_rel, index_info, snapshot, state);
	}
	PG_FINALLY();
	{
		table_rel->rd_tableam = saved;
	}
	PG_END_TRY();
}

PG_FUNCTION_INFO_V1(cpg_clustered_heap_handler);
Datum
cpg_clustered_heap_handler(PG_FUNCTION_ARGS)
{
	if (heap_routine == NULL)
	{
		heap_routine = GetHeapamTableAmRoutine();
		cpg_routine = *heap_routine;
		cpg_routine.tuple_insert = cpg_tuple_insert;
		cpg_routine.tuple_insert_speculative = cpg_tuple_insert_speculative;
		cpg_routine.multi_insert = cpg_multi_insert;
		cpg_routine.tuple_update = cpg_tuple_update;
		cpg_routine.relation_toast_am = cpg_relation_toast_am;
		cpg_routine.relation_copy_for_cluster = cpg_relation_copy_for_cluster;
		cpg_routine.index_build_range_scan = cpg_index_build_range_scan;
		cpg_routine.index_validate_scan = cpg_index_validate_scan;
	}
	PG_RETURN_POINTER(&cpg_routine);
}
