/*
 * recent_buffer.c: reading a block through the buffer this backend last
 * found it in.
 *
 * Every inserted row reads the map's metapage, a directory page and a
 * segment page, and the free space of the heap block placement chooses;
 * each ReadBuffer is a lookup in the shared buffer mapping table, which
 * showed as 7% of a row's time. ReadRecentBuffer pins a remembered buffer
 * after checking, under the buffer header lock, that it still holds that
 * block, so a stale entry only costs the ordinary lookup.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

extern Buffer cpg_read_buffer(Relation rel, BlockNumber blkno);

/*
 * A direct-mapped table hits for a block read at random among M blocks
 * about S / (S + M) of the time: at 8,192 slots a 1M-row table's ~18,000
 * heap pages missed two reads in three. 65,536 slots (768 kB of this
 * backend's memory, touched only as used) hit ~80 % there.
 */
#define CPG_RECENT_SLOTS 65536

typedef struct RecentSlot
{
	Oid			relnumber;
	BlockNumber blkno;
	Buffer		buffer;
} RecentSlot;

/* Direct-mapped by (relation file, block); per backend. */
static RecentSlot recent[CPG_RECENT_SLOTS];

#if PG_VERSION_NUM >= 160000
#define CPG_REL_NUMBER(rel) ((rel)->rd_locator.relNumber)
#define CPG_REL_LOCATOR(rel) ((rel)->rd_locator)
#else
#define CPG_REL_NUMBER(rel) ((rel)->rd_node.relNode)
#define CPG_REL_LOCATOR(rel) ((rel)->rd_node)
#endif

/* ReadBuffer(rel, blkno), through the remembered buffer when it still holds the block. */
Buffer
cpg_read_buffer(Relation rel, BlockNumber blkno)
{
	RecentSlot *slot;
	Buffer		buf;

	/* Local buffers: temporary tables are private and small; not worth it. */
	if (RelationUsesLocalBuffers(rel))
		return ReadBuffer(rel, blkno);

	slot = &recent[hash_combine(murmurhash32(CPG_REL_NUMBER(rel)),
								murmurhash32(blkno)) % CPG_RECENT_SLOTS];
	if (slot->buffer != InvalidBuffer &&
		slot->relnumber == CPG_REL_NUMBER(rel) && slot->blkno == blkno &&
		ReadRecentBuffer(CPG_REL_LOCATOR(rel), MAIN_FORKNUM, blkno, slot->buffer))
	{
		/* What ReadBuffer would have counted for the relation. */
		pgstat_count_buffer_read(rel);
		pgstat_count_buffer_hit(rel);
		return slot->buffer;
	}
	buf = ReadBuffer(rel, blkno);
	slot->relnumber = CPG_REL_NUMBER(rel);
	slot->blkno = blkno;
	slot->buffer = buf;
	return buf;
}
