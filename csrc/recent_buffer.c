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
 *
 * The memory is one array per relation, indexed by block number (4 bytes
 * a block: 72 kB for a 1M-row table), for up to 8 relations in use,
 * and a small direct-mapped table for blocks past what an array covers
 * (relations over 8 GB). A direct-mapped table alone needed 65,536 slots to
 * hit for most of a 1M-row table's heap pages, and at 768 kB its own slot
 * was a cache miss on most reads: the array keeps neighbouring blocks'
 * entries on one cache line and stays small enough to stay cached. At most
 * 8 arrays of 4 MB and the 96 kB table per backend.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

extern Buffer cpg_read_buffer(Relation rel, BlockNumber blkno);
extern Buffer cpg_read_locked(Relation rel, BlockNumber blkno, int mode);
extern Buffer cpg_read_buffer_existing(Relation rel, BlockNumber blkno, BlockNumber *nblocks);

/* Relations remembered at once; the oldest is forgotten for a new one. */
#define CPG_RECENT_RELS 8

/*
 * Blocks an array covers at most (4 MB of array, an 8 GB relation); blocks
 * beyond go to the direct-mapped table of CPG_RECENT_SLOTS entries.
 */
#define CPG_RECENT_MAX_BLOCKS (1U << 20)
#define CPG_RECENT_SLOTS 8192

#if PG_VERSION_NUM >= 160000
typedef RelFileLocator CpgLocator;

#define CPG_REL_LOCATOR(rel) ((rel)->rd_locator)
#define CPG_SAME_LOCATOR(a, b) RelFileLocatorEquals(a, b)
#define CPG_LOCATOR_NUMBER(loc) ((loc).relNumber)
#else
typedef RelFileNode CpgLocator;

#define CPG_REL_LOCATOR(rel) ((rel)->rd_node)
#define CPG_SAME_LOCATOR(a, b) RelFileNodeEquals(a, b)
#define CPG_LOCATOR_NUMBER(loc) ((loc).relNode)
#endif

typedef struct RecentRel
{
	CpgLocator	locator;
	Buffer	   *buffers;		/* InvalidBuffer where unknown */
	BlockNumber nblocks;		/* entries allocated */
	uint64		used;			/* recent_tick of its last lookup */
} RecentRel;

typedef struct RecentSlot
{
	CpgLocator	locator;
	BlockNumber blkno;
	Buffer		buffer;
} RecentSlot;

/*
 * Lookups a relation must go without before another may take its array.
 * With more relations in use at once than there are arrays (a transaction
 * writing to six clustered tables uses twelve), replacing on every miss
 * would free and rebuild an array per read; the relations beyond the
 * arrays read through ReadBuffer instead until one falls idle.
 */
#define CPG_RECENT_IDLE 4096

/* Per backend; buffers arrays live in malloc'd memory for its lifetime. */
static RecentRel recent[CPG_RECENT_RELS];
static uint64 recent_tick;
static RecentSlot far_blocks[CPG_RECENT_SLOTS];

/*
 * The table's slot for a block past the arrays: remembered only while it
 * names that block (a slot naming another is overwritten).
 */
static Buffer *
far_slot(CpgLocator loc, BlockNumber blkno)
{
	RecentSlot *slot = &far_blocks[hash_combine(murmurhash32(CPG_LOCATOR_NUMBER(loc)),
												 murmurhash32(blkno)) % CPG_RECENT_SLOTS];

	if (!CPG_SAME_LOCATOR(slot->locator, loc) || slot->blkno != blkno)
	{
		slot->locator = loc;
		slot->blkno = blkno;
		slot->buffer = InvalidBuffer;
	}
	return &slot->buffer;
}

/*
 * Where the buffer of rel's block blkno is remembered: its relation's
 * array (grown to cover it, or taken over from an idle relation), the
 * direct-mapped table for a block past what an array covers, or NULL when
 * every array is in use or memory runs out (then nothing is remembered
 * and nothing fails).
 */
static Buffer *
recent_slot(Relation rel, BlockNumber blkno)
{
	CpgLocator	loc = CPG_REL_LOCATOR(rel);
	RecentRel  *r = NULL;
	int			i;

	if (blkno >= CPG_RECENT_MAX_BLOCKS)
		return far_slot(loc, blkno);
	recent_tick++;
	for (i = 0; i < CPG_RECENT_RELS; i++)
		if (recent[i].buffers != NULL && CPG_SAME_LOCATOR(recent[i].locator, loc))
		{
			r = &recent[i];
			break;
		}
	if (r == NULL)
	{
		/* the least recently used array, if it has fallen idle */
		r = &recent[0];
		for (i = 1; i < CPG_RECENT_RELS; i++)
			if (recent[i].used < r->used)
				r = &recent[i];
		if (r->buffers != NULL && recent_tick - r->used < CPG_RECENT_IDLE)
			return NULL;
		free(r->buffers);
		r->buffers = NULL;
		r->nblocks = 0;
		r->locator = loc;
	}
	r->used = recent_tick;
	if (blkno >= r->nblocks)
	{
		BlockNumber want = Max(Max(r->nblocks * 2, 1024), blkno + 1);
		Buffer	   *grown;

		want = Min(want, CPG_RECENT_MAX_BLOCKS);
		grown = realloc(r->buffers, sizeof(Buffer) * want);
		if (grown == NULL)
			return NULL;
		/* InvalidBuffer is 0 */
		memset(grown + r->nblocks, 0, sizeof(Buffer) * (want - r->nblocks));
		r->buffers = grown;
		r->nblocks = want;
	}
	return &r->buffers[blkno];
}

/*
 * ReadBuffer(rel, blkno), through the remembered buffer when it still holds
 * the block. With nblocks (what the caller knows of the relation's size,
 * InvalidBlockNumber: nothing; updated when this asks the kernel), a block
 * that does not exist returns InvalidBuffer.
 *
 * A block the remembered buffer still holds exists: truncation drops a
 * relation's buffers past its new end before it shortens the file, under
 * a lock that conflicts with the caller's. Only a miss past the known size
 * asks the kernel (placement keeps the size until a truncation could have
 * shrunk it, see place() in table_am.c); the check was an lseek per
 * single-row transaction, one more than heap's own insert makes.
 */
static Buffer
read_buffer(Relation rel, BlockNumber blkno, BlockNumber *nblocks)
{
	Buffer	   *slot = NULL;
	Buffer		buf;

	/* Local buffers: temporary tables are private and small; not worth it. */
	if (!RelationUsesLocalBuffers(rel))
	{
		slot = recent_slot(rel, blkno);
		if (slot != NULL && *slot != InvalidBuffer &&
			ReadRecentBuffer(CPG_REL_LOCATOR(rel), MAIN_FORKNUM, blkno, *slot))
		{
			/* What ReadBuffer would have counted for the relation. */
			pgstat_count_buffer_read(rel);
			pgstat_count_buffer_hit(rel);
			return *slot;
		}
	}
	if (nblocks != NULL && (*nblocks == InvalidBlockNumber || blkno >= *nblocks))
	{
		*nblocks = RelationGetNumberOfBlocks(rel);
		if (blkno >= *nblocks)
			return InvalidBuffer;
	}
	buf = ReadBuffer(rel, blkno);
	/* only recent_slot moves the arrays, and ReadBuffer cannot reach it */
	if (slot != NULL)
		*slot = buf;
	return buf;
}

/* ReadBuffer(rel, blkno), through the remembered buffer when it still holds the block. */
Buffer
cpg_read_buffer(Relation rel, BlockNumber blkno)
{
	return read_buffer(rel, blkno, NULL);
}

/* cpg_read_buffer(rel, blkno) when the block exists, else InvalidBuffer (see read_buffer). */
Buffer
cpg_read_buffer_existing(Relation rel, BlockNumber blkno, BlockNumber *nblocks)
{
	return read_buffer(rel, blkno, nblocks);
}

/* cpg_read_buffer(rel, blkno), locked in `mode` (BUFFER_LOCK_SHARE or _EXCLUSIVE). */
Buffer
cpg_read_locked(Relation rel, BlockNumber blkno, int mode)
{
	Buffer		buf = cpg_read_buffer(rel, blkno);

	LockBuffer(buf, mode);
	return buf;
}
