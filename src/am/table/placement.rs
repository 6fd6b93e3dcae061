//! `rs_place`: the heap block a new tuple should go to, from its key and the
//! clustered map. Gathers the inputs (key, tuple size, the owning segment's
//! blocks and their free space), asks `core::placement`, and applies a
//! split or a fresh block when told to. heap then inserts into that block;
//! if a concurrent insert took the last bytes, heap puts the tuple
//! elsewhere and the index records where it really landed.

use crate::am::index::map;
use crate::core::counters::{bump, Counter};
use crate::core::options::IndexOptions;
use crate::core::placement::{
    count_keys_first, fits, free_after, min_free, place_capped, rows_per_page, split_floor,
    Decision, Fill, FreeSpaceMemo, Listed,
};
use crate::core::segmap::SegHead;
use crate::pg::buffer::{LockedBuffer, Pinned};
use crate::pg::error::{codes, entry, guard, CpgStatus, PgError, PgResult};
use crate::pg::heap::KeysOf;
use crate::pg::rel::{self, OpenRel};
use crate::pg::sys;

/// InvalidBlockNumber: no preference (a table without a clustered index).
const NO_BLOCK: u32 = u32::MAX;

thread_local! {
    /// Free space this backend last saw on heap pages (see FreeSpaceMemo).
    static FREE_MEMO: std::cell::RefCell<FreeSpaceMemo> =
        std::cell::RefCell::new(FreeSpaceMemo::default());
    /// The buffer placement reads a segment's blocks into: kept, so a row
    /// does not allocate one.
    static LISTED: std::cell::Cell<Vec<Listed>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Relcache invalidation of `relid` (0: of everything): VACUUM and TRUNCATE
/// of a table reach every backend this way, and may have freed space.
#[no_mangle]
pub extern "C" fn rs_placement_forget(relid: sys::Oid) {
    entry(std::ptr::null_mut(), (), || {
        FREE_MEMO.with(|m| m.borrow_mut().forget(relid));
        map::forget_location();
        map::forget_pages(relid);
        Ok(())
    })
}

/// Transaction end (commit or abort): the location hint is dropped.
#[no_mangle]
pub extern "C" fn rs_placement_xact_end() {
    entry(std::ptr::null_mut(), (), || {
        map::forget_location();
        Ok(())
    })
}

/// The table's size in blocks: remembered in this transaction (a lower
/// bound, see FreeSpaceMemo), or read from the kernel when `at_least` is
/// past it.
fn table_blocks(heap: sys::Relation, at_least: u32) -> PgResult<u32> {
    let relid = rel::relid(heap);
    if let Some(n) = FREE_MEMO.with(|m| m.borrow().size(relid)) {
        if at_least < n {
            return Ok(n);
        }
    }
    let n = crate::pg::heap::nblocks(heap)?;
    FREE_MEMO.with(|m| m.borrow_mut().note_size(relid, n));
    Ok(n)
}

/// The placement decision for `key` in segment `seg`, with the free space
/// of its blocks read from the heap (blocks past the table's end, which
/// VACUUM may have truncated while the map still lists them, have no room).
/// A chosen block comes with the pin placement took to read it.
#[allow(clippy::too_many_arguments)]
fn decide(
    heap: sys::Relation,
    index: sys::Relation,
    seg: &SegHead,
    listed: &[Listed],
    hi: Option<i64>,
    key: i64,
    tuple_len: usize,
    opts: &IndexOptions,
    capacity: i64,
) -> PgResult<(Decision, Option<Pinned>)> {
    let floor = split_floor(
        rows_per_page(tuple_len, opts.target_fillfactor),
        i64::from(opts.split_threshold),
    );
    let mut failed: Option<PgError> = None;
    let relid = rel::relid(heap);
    let ff = opts.target_fillfactor;
    // Rows of this transaction not yet counted on the page (map::record).
    let mut rows = seg
        .row_count
        .saturating_add(map::pending_rows(index, seg.id));
    if count_keys_first(rows, capacity) {
        rows = rows.max(segment_keys(heap, index, seg.lo, listed, hi)?.len() as i64);
    }
    // What this backend already knows, read once: blocks last seen too
    // full are skipped without a buffer lookup. On the stack for the
    // usual segment (placement runs for every row).
    let mut on_stack = [FreeSpaceMemo::NOT_SEEN; 64];
    let mut on_heap = Vec::new();
    let seen: &mut [u16] = if listed.len() <= on_stack.len() {
        &mut on_stack[..listed.len()]
    } else {
        on_heap.resize(listed.len(), FreeSpaceMemo::NOT_SEEN);
        &mut on_heap
    };
    let size = FREE_MEMO.with(|m| {
        let m = m.borrow();
        m.recall_into(relid, listed.iter().map(|l| l.blkno), seen);
        m.size(relid)
    });
    let (gap_min, extend_min) = (
        min_free(tuple_len, Fill::Gap, ff),
        min_free(tuple_len, Fill::Extend, ff),
    );
    let known_full = |i: usize, fill| {
        let least = if fill == Fill::Gap {
            gap_min
        } else {
            extend_min
        };
        // NOT_SEEN is above any threshold: an unknown block is not full.
        usize::from(seen[i]) < least
    };
    // The block placement takes is the last one found with room.
    let mut chosen: Option<Pinned> = None;
    // The table's size as this backend knows it (see FreeSpaceMemo): blocks
    // below it exist (VACUUM may have truncated a block the map still lists).
    let mut nblocks = size.unwrap_or(NO_BLOCK);
    let decision = place_capped(key, listed, rows, floor, capacity, known_full, |b, fill| {
        let mut buf: sys::Buffer = 0;
        let keep = &mut buf as *mut sys::Buffer;
        let known = &mut nblocks as *mut u32;
        // SAFETY: heap is open; reads one page's free space, if the block
        // exists, and leaves the page pinned in buf.
        match guard(|| unsafe { sys::cpg_heap_page_free(heap, b, keep, known) }) {
            Ok(sys::NO_SUCH_BLOCK) => false,
            Ok(free) => {
                // SAFETY: the call above pinned buf for us.
                let pin = unsafe { Pinned::adopt(buf) };
                let room = fits(free, tuple_len, fill, ff);
                // The tuple is about to take its share of what was
                // seen: remembered, later rows of this backend skip
                // the block without a read once it is full.
                let left = if room {
                    free_after(free, tuple_len)
                } else {
                    free
                };
                FREE_MEMO.with(|m| m.borrow_mut().note(relid, b, left));
                if room {
                    chosen = Some(pin);
                }
                room
            }
            Err(e) => {
                failed.get_or_insert(e);
                false
            }
        }
    });
    if nblocks != NO_BLOCK && size != Some(nblocks) {
        FREE_MEMO.with(|m| m.borrow_mut().note_size(relid, nblocks));
    }
    match failed {
        Some(e) => Err(e),
        None => Ok((
            decision,
            chosen.filter(|_| matches!(decision, Decision::Block(_))),
        )),
    }
}

/// Keys of the segment's range (`lo..hi`) its blocks hold, rows of
/// transactions in flight included, in block order.
fn segment_keys(
    heap: sys::Relation,
    index: sys::Relation,
    lo: i64,
    listed: &[Listed],
    hi: Option<i64>,
) -> PgResult<Vec<i64>> {
    let attno = rel::index_heap_attno(index);
    let width = rel::key_width(index)?;
    let mut keys = Vec::new();
    for l in listed {
        for t in
            crate::pg::heap::block_keys(KeysOf::NeverDeletedUnchecked, heap, l.blkno, attno, width)?
        {
            if let Some(k) = t.key.filter(|&k| k >= lo && hi.is_none_or(|h| k < h)) {
                keys.push(k);
            }
        }
    }
    Ok(keys)
}

/// The block for a tuple of `len` bytes with key `datum` (`isnull`) in the
/// table `heap` clustered by `index`, and the pin placement holds on it
/// when it read its free space. The C caller (`place` in
/// csrc/table_am.c) found and opened the index and read the key and the
/// length from the slot: one call across the error boundary per row.
fn choose(
    heap: sys::Relation,
    ix: sys::Relation,
    datum: sys::Datum,
    isnull: bool,
    len: usize,
    storage_reset: bool,
    may_hold: bool,
) -> PgResult<(u32, Option<Pinned>, Option<LockedBuffer>)> {
    map::note_precovered(ix, None);
    if storage_reset {
        FREE_MEMO.with(|m| m.borrow_mut().forget_size(rel::relid(heap)));
    }
    let attno = rel::index_heap_attno(ix);
    let width = rel::key_width(ix)?;
    if isnull {
        return Err(PgError::new(
            codes::NOT_NULL_VIOLATION,
            format!(
                "null value in the clustered key of table \"{}\"",
                rel::name(heap)
            ),
        )
        .hint("A clustered_heap table orders rows by its clustered_pk_index key, which cannot be NULL; declare the column NOT NULL."));
    }
    let key = rel::key_from_datum(datum, width);
    // TOAST keeps stored tuples near 2 kB at most.
    let len = len.min(2032);
    let opts = rel::index_options(ix);
    // A segment holds at most split_threshold rows: at capacity it splits
    // (exactly, at the median of the keys its blocks hold) before taking
    // another. One that cannot split (a single key value) fills as usual.
    let mut capacity = i64::from(opts.split_threshold);
    // The segment's blocks, in a buffer kept from row to row.
    let mut listed = LISTED.with(|l| l.take());
    for _ in 0..4 {
        // Decided under the segment page's share lock (map page before heap
        // pages, the order splits and VACUUM lock in too).
        let (seg, hi, seg_buf) = map::segment_listed(ix, key, &mut listed)?;
        let (decision, pin) = decide(heap, ix, &seg, &listed, hi, key, len, &opts, capacity)?;
        match decision {
            Decision::Block(b) => {
                let covered = listed.iter().any(|l| l.blkno == b && l.covers(key));
                LISTED.with(|l| l.replace(listed));
                if may_hold && covered {
                    map::note_precovered(ix, Some((key, b, &seg)));
                    return Ok((b, pin, Some(seg_buf)));
                }
                return Ok((b, pin, None));
            }
            Decision::Fresh => break,
            Decision::Split => {
                // split_exact locks the metapage, then this page exclusively.
                drop(seg_buf);
                if !map::split_exact(ix, heap, key, attno, width)? {
                    if capacity == i64::MAX {
                        break;
                    }
                    capacity = i64::MAX;
                }
            }
        }
    }
    bump(Counter::split);
    // SAFETY: heap is open; returns an empty page (reused or appended).
    let b = guard(|| unsafe { sys::cpg_heap_fresh_block(heap) })?;
    let relid = rel::relid(heap);
    FREE_MEMO.with(|m| m.borrow_mut().note_size(relid, b.saturating_add(1)));
    Ok((b, None, None))
}

/// The block for a tuple of table `heap` whose clustered_pk_index is
/// `index` (open), with key `key` (`isnull`) and `len` bytes; `*pinned` is
/// its buffer when placement still holds a pin on it (the caller releases
/// it), else InvalidBuffer. `storage_reset`: the table's storage manager
/// handle lost its target block since the last placement (a truncation
/// resets it), so the size this backend remembers may be too large.
///
/// `may_hold`: the caller can keep a map page share-locked across heap's
/// insert of this tuple (a plain insert of a tuple heap will not toast:
/// nothing in it waits for another transaction). When the chosen block's
/// zone already covers the key, `*held` is then the segment page, still
/// share-locked, which the caller releases (`UnlockReleaseBuffer`) right
/// after the insert: see map::note_precovered. Else InvalidBuffer.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn rs_place(
    heap: sys::Relation,
    index: sys::Relation,
    key: sys::Datum,
    isnull: bool,
    len: u32,
    storage_reset: bool,
    may_hold: bool,
    pinned: *mut sys::Buffer,
    held: *mut sys::Buffer,
    st: *mut CpgStatus,
) -> u32 {
    entry(st, NO_BLOCK, || {
        let (b, pin, seg) = choose(
            heap,
            index,
            key,
            isnull,
            len as usize,
            storage_reset,
            may_hold,
        )?;
        // SAFETY: the caller passes valid out pointers.
        unsafe {
            *pinned = pin.map_or(0, Pinned::into_raw);
            *held = seg.map_or(0, LockedBuffer::into_raw);
        }
        Ok(b)
    })
}

/// The order in which a multi-insert batch (COPY) should be placed: by key,
/// so neighbours in a batch go to the same block one after the other. The
/// slots array itself is left alone (COPY maps it to line numbers).
fn key_order(
    heap: sys::Relation,
    slots: *mut *mut sys::TupleTableSlot,
    nslots: i32,
    order: *mut i32,
) -> PgResult<()> {
    let n = nslots.max(0) as usize;
    // SAFETY: order has room for nslots entries (the C caller's array).
    let out = unsafe { std::slice::from_raw_parts_mut(order, n) };
    for (i, o) in out.iter_mut().enumerate() {
        *o = i as i32;
    }
    // SAFETY: heap is the open target relation.
    let index_oid = guard(|| unsafe { sys::cpg_clustered_index_of(heap) })?;
    if index_oid == 0 || n < 2 {
        return Ok(());
    }
    let index = OpenRel::index(index_oid, sys::RowExclusiveLock as i32)?;
    let attno = rel::index_heap_attno(index.rel());
    let width = rel::key_width(index.rel())?;
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: slots has nslots valid entries.
        let slot = unsafe { *slots.add(i) };
        let mut isnull = false;
        let np = &mut isnull as *mut bool;
        // SAFETY: reads the key column of the slot.
        let d = guard(|| unsafe { sys::cpg_slot_key(slot, attno, np) })?;
        // NULL keys sort first; placing them raises the clear error.
        keys.push(if isnull {
            None
        } else {
            Some(rel::key_from_datum(d, width))
        });
    }
    out.sort_by_key(|&i| keys[i as usize]);
    Ok(())
}

#[no_mangle]
pub extern "C" fn rs_key_order(
    heap: sys::Relation,
    slots: *mut *mut sys::TupleTableSlot,
    nslots: i32,
    order: *mut i32,
    st: *mut CpgStatus,
) {
    entry(st, (), || key_order(heap, slots, nslots, order))
}

/// The segment id ("major") placement would give `key` now, without
/// changing anything: the owning segment, or the new upper segment when
/// placement would first split it (same policy and exact median as
/// inserts). Used by `segment_map_allocate_locator`.
pub fn predicted_major(heap: sys::Relation, index: sys::Relation, key: i64) -> PgResult<i64> {
    let attno = rel::index_heap_attno(index);
    let width = rel::key_width(index)?;
    let opts = rel::index_options(index);
    let mut listed = Vec::new();
    // The page lock goes at once: read_meta below locks the metapage,
    // which comes before segment pages in the lock order.
    let (seg, hi, _) = map::segment_listed(index, key, &mut listed)?;
    // Without the tuple, size it like the tuples of the segment's first
    // block: used bytes over tuples there.
    let nblocks = table_blocks(heap, u32::MAX)?;
    let len = match listed.first().filter(|l| l.blkno < nblocks) {
        Some(l) => {
            let b = l.blkno;
            // SAFETY: heap is open and b exists.
            let free = guard(|| unsafe {
                sys::cpg_heap_page_free(heap, b, std::ptr::null_mut(), std::ptr::null_mut())
            })?;
            let n =
                crate::pg::heap::block_keys(KeysOf::NeverDeletedUnchecked, heap, b, attno, width)?
                    .len()
                    .max(1);
            ((8192 - 24usize).saturating_sub(free) / n)
                .saturating_sub(4)
                .max(8)
        }
        None => 64,
    };
    let capacity = i64::from(opts.split_threshold);
    let (decision, _) = decide(heap, index, &seg, &listed, hi, key, len, &opts, capacity)?;
    if decision != Decision::Split {
        return Ok(seg.id);
    }
    let mut keys = segment_keys(heap, index, seg.lo, &listed, hi)?;
    keys.sort_unstable();
    match crate::core::placement::median_split(&keys, seg.lo) {
        Some(at) if key >= at && hi.is_none_or(|h| at < h) => {
            let (_b, meta) = map::read_meta(index, crate::pg::buffer::Lock::Share)?;
            Ok(meta.next_segment_id)
        }
        _ => Ok(seg.id),
    }
}
