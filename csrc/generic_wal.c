/*
 * generic_wal.c: writes the map's page changes as generic WAL records
 * (RM_GENERIC_ID), with deltas the Rust side computed (core::page_delta).
 *
 * This is GenericXLogFinish's critical section without its byte-by-byte
 * page comparison, which on the insert path cost an eighth of a row's time.
 * The record is the one GenericXLogFinish writes, so core's generic_redo
 * replays it and wal_consistency_checking = generic checks it.
 */
#include "postgres.h"

#include "access/rmgr.h"
#include "access/xloginsert.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "utils/rel.h"

extern void cpg_generic_log(Relation rel, int npages, const Buffer *buffers,
							char *const *images, const bool *full_images,
							char *const *deltas, const int *delta_lens);

/*
 * Copies each image (locked exclusively by the caller) into its buffer,
 * hole zeroed as replay will leave it, and logs the change in one record:
 * the delta, or the whole page where full_images says so. Without WAL the
 * images are copied and the buffers dirtied, as GenericXLogFinish does.
 */
void
cpg_generic_log(Relation rel, int npages, const Buffer *buffers,
				char *const *images, const bool *full_images,
				char *const *deltas, const int *delta_lens)
{
	int			i;

	if (npages < 1 || npages > XLR_NORMAL_MAX_BLOCK_ID)
		elog(ERROR, "clustered_pg: %d pages in one generic WAL record", npages);

	if (RelationNeedsWAL(rel))
	{
		XLogRecPtr	lsn;

		XLogBeginInsert();
		START_CRIT_SECTION();
		for (i = 0; i < npages; i++)
		{
			Page		page = BufferGetPage(buffers[i]);
			PageHeader	hdr = (PageHeader) images[i];

			memcpy(page, images[i], hdr->pd_lower);
			memset(page + hdr->pd_lower, 0, hdr->pd_upper - hdr->pd_lower);
			memcpy(page + hdr->pd_upper, images[i] + hdr->pd_upper,
				   BLCKSZ - hdr->pd_upper);
			MarkBufferDirty(buffers[i]);
			if (full_images[i])
				XLogRegisterBuffer(i, buffers[i], REGBUF_FORCE_IMAGE | REGBUF_STANDARD);
			else
			{
				XLogRegisterBuffer(i, buffers[i], REGBUF_STANDARD);
				XLogRegisterBufData(i, deltas[i], delta_lens[i]);
			}
		}
		lsn = XLogInsert(RM_GENERIC_ID, 0);
		for (i = 0; i < npages; i++)
			PageSetLSN(BufferGetPage(buffers[i]), lsn);
		END_CRIT_SECTION();
	}
	else
	{
		START_CRIT_SECTION();
		for (i = 0; i < npages; i++)
		{
			memcpy(BufferGetPage(buffers[i]), images[i], BLCKSZ);
			MarkBufferDirty(buffers[i]);
		}
		END_CRIT_SECTION();
	}
}

extern void cpg_generic_log_delta(Relation rel, Buffer buffer,
								  const char *delta, int delta_len);

/*
 * The fragment at delta[at]: its page offset and length; returns where the
 * next one starts. Reads only the 4-byte header, which the caller has
 * checked is there.
 */
static inline int
fragment_at(const char *delta, int at, uint16 *off, uint16 *len)
{
	memcpy(off, delta + at, sizeof(*off));
	memcpy(len, delta + at + 2, sizeof(*len));
	return at + 4 + *len;
}

/*
 * Applies a delta (the generic format: offset, length, bytes) straight to
 * a page the caller holds locked exclusively, and logs that delta as the
 * record. For changes whose bytes the caller knows, such as row counts and
 * zone widenings: no image of the page is copied or compared, so only the
 * cache lines edited are touched.
 *
 * Every fragment must lie on the page and outside the hole the delta
 * leaves (pd_lower and pd_upper as the delta sets them, if it does), which
 * redo zeroes after applying the fragments; a fragment may not cover half
 * of either field. That is checked before the critical section, where an
 * error would be a PANIC.
 */
void
cpg_generic_log_delta(Relation rel, Buffer buffer, const char *delta,
					  int delta_len)
{
	Page		page = BufferGetPage(buffer);
	PageHeader	hdr = (PageHeader) page;
	LocationIndex lower = hdr->pd_lower;
	LocationIndex upper = hdr->pd_upper;
	uint16		off,
				len;
	int			at,
				next;

	/* XLogRegisterBufData refuses (inside the critical section) more */
	if (delta_len < 0 || delta_len > PG_UINT16_MAX)
		elog(ERROR, "clustered_pg: WAL delta of %d bytes", delta_len);
	for (at = 0; at < delta_len; at = next)
	{
		int			f;

		if (delta_len - at < 4)
			elog(ERROR, "clustered_pg: truncated WAL delta fragment");
		next = fragment_at(delta, at, &off, &len);
		if (next > delta_len || off + len > BLCKSZ)
			elog(ERROR, "clustered_pg: WAL delta fragment %u+%u off the page", off, len);
		for (f = 0; f < 2; f++)
		{
			int			field = f == 0 ? offsetof(PageHeaderData, pd_lower)
				: offsetof(PageHeaderData, pd_upper);
			int			width = sizeof(LocationIndex);

			if (off + len <= field || off >= field + width)
				continue;
			if (off > field || off + len < field + width)
				elog(ERROR, "clustered_pg: WAL delta fragment %u+%u splits a page header field",
					 off, len);
			memcpy(f == 0 ? &lower : &upper, delta + at + 4 + (field - off), width);
		}
	}
	if (lower < SizeOfPageHeaderData || lower > upper || upper > BLCKSZ)
		elog(ERROR, "clustered_pg: WAL delta leaves pd_lower %u, pd_upper %u", lower, upper);
	for (at = 0; at < delta_len; at = next)
	{
		next = fragment_at(delta, at, &off, &len);
		if (off + len > lower && off < upper)
			elog(ERROR, "clustered_pg: WAL delta fragment %u+%u in the page's hole", off, len);
	}

	if (RelationNeedsWAL(rel))
		XLogBeginInsert();
	START_CRIT_SECTION();
	for (at = 0; at < delta_len; at = next)
	{
		next = fragment_at(delta, at, &off, &len);
		memcpy(page + off, delta + at + 4, len);
	}
	MarkBufferDirty(buffer);
	if (RelationNeedsWAL(rel))
	{
		XLogRecPtr	lsn;

		XLogRegisterBuffer(0, buffer, REGBUF_STANDARD);
		XLogRegisterBufData(0, unconstify(char *, delta), delta_len);
		lsn = XLogInsert(RM_GENERIC_ID, 0);
		PageSetLSN(page, lsn);
	}
	END_CRIT_SECTION();
}
