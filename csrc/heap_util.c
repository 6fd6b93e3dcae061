/*
 * heap_util.c: reading heap pages for verify(), VACUUM tightening and
 * placement. Visibility and tuple deforming are macros and inlines that
 * differ between majors, so they stay in C; Rust gets plain values.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/defrem.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/rel.h"

#include "cpg.h"

/* csrc/recent_buffer.c */
extern Buffer cpg_read_buffer(Relation rel, BlockNumber blkno);

typedef void (*cpg_heap_key_cb) (void *state, uint16 offnum, Datum key, bool isnull);

extern int	cpg_heap_block_keys(Relation heap, BlockNumber blkno, AttrNumber attno,
								int which, cpg_heap_key_cb cb, void *state);
extern int	cpg_heap_block_roots(Relation heap, BlockNumber blkno, AttrNumber attno,
								 OffsetNumber *offs, Datum *keys, bool *nulls, Buffer *keep);
extern void cpg_heap_fetch_adopt(IndexScanDesc scan, Buffer buf, bool adopt);
extern Oid	cpg_am_oid(const char *name);
extern BlockNumber cpg_heap_nblocks(Relation heap);

/*
 * Which tuples cpg_heap_block_keys reports (the values of pg::heap::KeysOf).
 *
 * KEYS_MAY_BE_SEEN: every tuple with storage not dead to every transaction
 * (aborted inserts and pruned-away versions are skipped; in-progress and
 * recently dead ones are included, as they may still be seen).
 *
 * KEYS_CURRENT: the same without recently dead tuples, the current version
 * of each row (live, or being inserted or deleted by a transaction still
 * running). What repack may move, and what says where a segment's rows are
 * now: a block left with only old versions no longer counts, even before
 * VACUUM drops it from the map.
 *
 * KEYS_NEVER_DELETED_UNCHECKED: KEYS_MAY_BE_SEEN for placement (a split's
 * median and zones, counting a segment's rows): a tuple nobody ever deleted
 * is reported without a visibility check, so an aborted insert not yet
 * pruned counts too. Its key only widens a zone, which stays correct. What
 * this saves is the check's hint bits: the first rows of a split read since
 * a checkpoint would otherwise each dirty their page, and with data
 * checksums (the default from PostgreSQL 18) WAL-log a full-page image.
 */
typedef enum KeysOf
{
	KEYS_MAY_BE_SEEN = 0,
	KEYS_CURRENT = 1,
	KEYS_NEVER_DELETED_UNCHECKED = 2
} KeysOf;

static int	block_keys(Relation heap, BlockNumber blkno, AttrNumber attno,
					   cpg_heap_key_cb cb, void *state, KeysOf which);

/*
 * GetOldestNonRemovableTransactionId(heap), reused for up to 64 blocks of
 * one command. Computing it scans the proc array under ProcArrayLock, and a
 * segment split reads every block of the segment: that scan was a third of
 * a split's time. The horizon only moves forward, so an older one is merely
 * conservative: a few tuples dead by now still count as recently dead.
 */
static TransactionId
removable_horizon(Relation heap)
{
	static Oid	relid = InvalidOid;
	static LocalTransactionId lxid = InvalidLocalTransactionId;
	static CommandId cid = InvalidCommandId;
	static int	uses = 0;
	static TransactionId oldest = InvalidTransactionId;
#if PG_VERSION_NUM >= 170000
	LocalTransactionId my_lxid = MyProc->vxid.lxid;
#else
	LocalTransactionId my_lxid = MyProc->lxid;
#endif
	CommandId	my_cid = GetCurrentCommandId(false);

	if (relid != RelationGetRelid(heap) || lxid != my_lxid || cid != my_cid || ++uses > 64)
	{
		oldest = GetOldestNonRemovableTransactionId(heap);
		relid = RelationGetRelid(heap);
		lxid = my_lxid;
		cid = my_cid;
		uses = 1;
	}
	return oldest;
}

/*
 * Calls cb for every tuple of the block that `which` (a KeysOf) selects;
 * returns how many.
 */
int
cpg_heap_block_keys(Relation heap, BlockNumber blkno, AttrNumber attno,
					int which, cpg_heap_key_cb cb, void *state)
{
	if (which < KEYS_MAY_BE_SEEN || which > KEYS_NEVER_DELETED_UNCHECKED)
		elog(ERROR, "clustered_pg: unknown key selection %d", which);
	return block_keys(heap, blkno, attno, cb, state, (KeysOf) which);
}

/* No transaction ever deleted or locked the tuple (as far as its header says). */
static inline bool
never_deleted(HeapTupleHeader t)
{
	return (t->t_infomask & HEAP_XMAX_INVALID) ||
		!TransactionIdIsValid(HeapTupleHeaderGetRawXmax(t));
}

static int
block_keys(Relation heap, BlockNumber blkno, AttrNumber attno,
		   cpg_heap_key_cb cb, void *state, KeysOf which)
{
	TransactionId oldest = removable_horizon(heap);
	Buffer		buf = cpg_read_buffer(heap, blkno);
	Page		page;
	OffsetNumber off,
				maxoff;
	int			n = 0;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	maxoff = PageIsNew(page) ? InvalidOffsetNumber : PageGetMaxOffsetNumber(page);
	for (off = FirstOffsetNumber; off <= maxoff; off = OffsetNumberNext(off))
	{
		ItemId		iid = PageGetItemId(page, off);
		HeapTupleData tup;
		bool		isnull;
		Datum		key;

		if (!ItemIdIsNormal(iid))
			continue;
		tup.t_data = (HeapTupleHeader) PageGetItem(page, iid);
		tup.t_len = ItemIdGetLength(iid);
		tup.t_tableOid = RelationGetRelid(heap);
		ItemPointerSet(&tup.t_self, blkno, off);
		if (which != KEYS_NEVER_DELETED_UNCHECKED || !never_deleted(tup.t_data))
		{
			switch (HeapTupleSatisfiesVacuum(&tup, oldest, buf))
			{
				case HEAPTUPLE_DEAD:
					continue;
				case HEAPTUPLE_RECENTLY_DEAD:
					if (which == KEYS_CURRENT)
						continue;
					break;
				default:
					break;
			}
		}
		key = heap_getattr(&tup, attno, RelationGetDescr(heap), &isnull);
		cb(state, off, key, isnull);
		n++;
	}
	UnlockReleaseBuffer(buf);
	return n;
}

/*
 * For ordered index scans: one entry per HOT chain of the block, naming the
 * chain's root line pointer (what the executor's index fetch starts from)
 * and the chain's key. A HOT update never changes an indexed column, so all
 * members agree, except in chains older than the index (CREATE INDEX marks
 * them with indcheckxmin): there the newest member's key is the one any
 * snapshot allowed to use the index can see. Every tuple with storage
 * counts, dead or not: the scan's snapshot decides visibility (CLUSTER
 * scans with SnapshotAny). Chains whose root is gone cannot be reached by
 * any index and are skipped. Datums are by value (int2/4/8 keys).
 *
 * With keep, the block stays pinned (unlocked) in *keep for
 * cpg_heap_fetch_adopt. The block is read through the buffer this backend
 * last found it in (csrc/recent_buffer.c): a point lookup's buffer mapping
 * lookup for it was a tenth of its time.
 */
int
cpg_heap_block_roots(Relation heap, BlockNumber blkno, AttrNumber attno,
					 OffsetNumber *offs, Datum *keys, bool *nulls, Buffer *keep)
{
	Buffer		buf = cpg_read_buffer(heap, blkno);
	OffsetNumber roots[MaxHeapTuplesPerPage];
	int16		slot[MaxHeapTuplesPerPage + 1];
	Page		page;
	OffsetNumber off,
				maxoff;
	int			n = 0;

	memset(slot, -1, sizeof(slot));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	maxoff = PageIsNew(page) ? InvalidOffsetNumber : PageGetMaxOffsetNumber(page);
	if (maxoff != InvalidOffsetNumber)
		heap_get_root_tuples(page, roots);
	for (off = FirstOffsetNumber; off <= maxoff; off = OffsetNumberNext(off))
	{
		ItemId		iid = PageGetItemId(page, off);
		HeapTupleData tup;
		OffsetNumber root;
		int			i;

		if (!ItemIdIsNormal(iid))
			continue;
		root = roots[off - 1];
		if (root == InvalidOffsetNumber || root > MaxHeapTuplesPerPage)
			continue;
		tup.t_data = (HeapTupleHeader) PageGetItem(page, iid);
		if (slot[root] >= 0 && HeapTupleHeaderIsHotUpdated(tup.t_data))
			continue;			/* an older member: keep what we have */
		tup.t_len = ItemIdGetLength(iid);
		tup.t_tableOid = RelationGetRelid(heap);
		ItemPointerSet(&tup.t_self, blkno, off);
		if (slot[root] >= 0)
			i = slot[root];
		else
		{
			i = n++;
			slot[root] = (int16) i;
			offs[i] = root;
		}
		keys[i] = heap_getattr(&tup, attno, RelationGetDescr(heap), &nulls[i]);
	}
	if (keep)
	{
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		*keep = buf;
	}
	else
		UnlockReleaseBuffer(buf);
	return n;
}

/*
 * The executor's index fetch keeps the heap block it is on pinned and
 * reads it again only when a TID leads elsewhere. With adopt, buf (pinned
 * by cpg_heap_block_roots, which found matches in it) becomes that block:
 * fetching the matches then costs no second buffer access, and a point
 * lookup reads its heap block once, as through a btree. The block is
 * pruned first, as heap's fetch prunes a block it moves to (it will not
 * move to this one now); the line pointers read stay valid, as pruning
 * keeps every chain's root. Only a fetch that is heap's own keeps its
 * block there; otherwise, or without adopt, buf is released.
 */
void
cpg_heap_fetch_adopt(IndexScanDesc scan, Buffer buf, bool adopt)
{
	Relation	heap = scan->heapRelation;

	if (adopt && scan->xs_heapfetch != NULL && heap != NULL &&
		heap->rd_tableam->index_fetch_tuple == GetHeapamTableAmRoutine()->index_fetch_tuple)
	{
		IndexFetchHeapData *h = (IndexFetchHeapData *) scan->xs_heapfetch;

		heap_page_prune_opt(heap, buf);
		if (BufferIsValid(h->xs_cbuf))
			ReleaseBuffer(h->xs_cbuf);
		h->xs_cbuf = buf;
		return;
	}
	ReleaseBuffer(buf);
}

Oid
cpg_am_oid(const char *name)
{
	return get_am_oid(name, true);
}

BlockNumber
cpg_heap_nblocks(Relation heap)
{
	return RelationGetNumberOfBlocks(heap);
}
