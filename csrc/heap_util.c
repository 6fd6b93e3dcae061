/*
 * heap_util.c: reading heap pages for verify(), VACUUM tightening and
 * placement. Visibility and tuple deforming are macros and inlines that
 * differ between majors, so they stay in C; Rust gets plain values.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "commands/defrem.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "utils/rel.h"

#include "cpg.h"

typedef void (*cpg_heap_key_cb) (void *state, uint16 offnum, Datum key, bool isnull);

extern int	cpg_heap_block_keys(Relation heap, BlockNumber blkno, AttrNumber attno,
								cpg_heap_key_cb cb, void *state);
extern Oid	cpg_am_oid(const char *name);
extern BlockNumber cpg_heap_nblocks(Relation heap);

/*
 * Calls cb for every tuple with storage in the block that is not dead to
 * every transaction (aborted inserts and pruned-away versions are skipped;
 * in-progress and recently dead ones are included, as they may still be
 * seen). Returns the number of such tuples.
 */
int
cpg_heap_block_keys(Relation heap, BlockNumber blkno, AttrNumber attno,
					cpg_heap_key_cb cb, void *state)
{
	TransactionId oldest = GetOldestNonRemovableTransactionId(heap);
	Buffer		buf = ReadBuffer(heap, blkno);
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
		if (HeapTupleSatisfiesVacuum(&tup, oldest, buf) == HEAPTUPLE_DEAD)
			continue;
		key = heap_getattr(&tup, attno, RelationGetDescr(heap), &isnull);
		cb(state, off, key, isnull);
		n++;
	}
	UnlockReleaseBuffer(buf);
	return n;
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
