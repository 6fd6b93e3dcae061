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
