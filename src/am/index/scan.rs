//! Scans. Scan keys become one key range; the map turns it into candidate
//! heap blocks.
//!
//! `amgetbitmap` adds the candidates as lossy pages (the Bitmap Heap Scan
//! reads each once and rechecks). `amgettuple` returns tuples in key order,
//! as `amcanorder` promises (ORDER BY … LIMIT, merge joins, CLUSTER): it
//! reads candidate blocks in zone order itself and sorts what it finds
//! (core::ordered), returning only the matches. With an equality condition
//! the candidates are the blocks whose zones hold the key, all at once.
//! The last block read that holds a match stays pinned for the executor's
//! fetch (`cpg_heap_fetch_adopt`), so a point lookup reads its heap block
//! once; other blocks are read twice, once here and once by the fetch. The
//! cost estimate tells the planner so (cost.rs), leaving unordered ranges
//! to the bitmap path.
//!
//! All scan state is plain data in the scan's memory context: an ERROR that
//! skips amendscan leaks nothing.

use crate::am::index::{map, nulls};
use crate::core::counters::{bump, Counter};
use crate::core::ordered::{stream_zones, Cursor, Entry, Loader, Next, Step, Store, Stream, Zone};
use crate::pg::error::{entry, guard, CpgStatus, PgError, PgResult};
use crate::pg::pvec::PVec;
use crate::pg::rel;
use crate::pg::sys;

/// Line pointers a heap page can have (MaxHeapTuplesPerPage for 8 KB).
pub const MAX_HEAP_TUPLES_PER_PAGE: u16 = 291;

#[repr(C)]
struct ScanState {
    lo: i64,
    hi: i64,
    /// The scan has no key conditions (it must return NULL keys too).
    keyless: bool,
    /// Prepared by the first amgettuple (which fixes the direction).
    ready: bool,
    /// Zones of the current key interval (one directory page's).
    zones: PVec<Zone>,
    /// The current interval, as the loader filters keys to it.
    zone_lo: i64,
    zone_hi: i64,
    /// Where the next interval starts (its first key in stream direction).
    next_key: i64,
    /// Read but not yet produced (core::ordered::Stream's pending set).
    pending: PVec<Entry>,
    /// Produced so far, in stream order (kept for direction changes and
    /// mark/restore).
    items: PVec<Entry>,
    stream: Stream,
    cursor: Cursor,
    mark: i64,
}

impl Store for PVec<Entry> {
    type Err = PgError;
    fn push(&mut self, e: Entry) -> PgResult<()> {
        PVec::push(self, e)
    }
    fn entries(&mut self) -> &mut [Entry] {
        self.as_mut_slice()
    }
    fn drop_front(&mut self, n: usize) {
        PVec::drop_front(self, n)
    }
}

/// Reads a heap block's HOT chains for the stream.
struct HeapLoader {
    scan: sys::IndexScanDesc,
    heap: sys::Relation,
    attno: i16,
    width: u32,
    lo: i64,
    hi: i64,
}

impl Loader<PVec<Entry>> for HeapLoader {
    fn load(&mut self, blk: u32, want_nulls: bool, into: &mut PVec<Entry>) -> PgResult<()> {
        const N: usize = MAX_HEAP_TUPLES_PER_PAGE as usize;
        let mut offs = [0u16; N];
        let mut keys: [sys::Datum; N] = [0; N];
        let mut isnull = [false; N];
        let (heap, attno) = (self.heap, self.attno);
        let (po, pk, pn) = (offs.as_mut_ptr(), keys.as_mut_ptr(), isnull.as_mut_ptr());
        let mut keep: sys::Buffer = 0;
        let kp = &mut keep as *mut sys::Buffer;
        // SAFETY: the arrays hold MaxHeapTuplesPerPage entries each; keep
        // is a local.
        let n = guard(|| unsafe { sys::cpg_heap_block_roots(heap, blk, attno, po, pk, pn, kp) })?;
        // The matches, compacted to the front of the arrays (keys as i64),
        // before anything here can fail: the pinned block goes to the
        // executor's fetch or back at once.
        let mut m = 0;
        for i in 0..n.max(0) as usize {
            if isnull[i] != want_nulls {
                continue;
            }
            let key = if want_nulls {
                0
            } else {
                let key = rel::key_from_datum(keys[i], self.width);
                if key < self.lo || key > self.hi {
                    continue;
                }
                key
            };
            offs[m] = offs[i];
            keys[m] = key as sys::Datum;
            m += 1;
        }
        let scan = self.scan;
        // SAFETY: live scan; keep is the pinned block.
        guard(|| unsafe { sys::cpg_heap_fetch_adopt(scan, keep, m > 0) })?;
        for i in 0..m {
            into.push(Entry {
                key: keys[i] as i64,
                blk,
                off: offs[i],
                null: u16::from(want_nulls),
            })?;
        }
        Ok(())
    }
}

/// The key range `[lo, hi]` all scan keys allow (lo > hi: nothing).
fn key_range(scan: sys::IndexScanDesc) -> PgResult<(i64, i64)> {
    // SAFETY: scan is live; keyData has numberOfKeys entries.
    let (index, keys) = unsafe {
        let n = (*scan).numberOfKeys as usize;
        let k = (*scan).keyData;
        let keys: &[sys::ScanKeyData] = if n == 0 || k.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(k, n)
        };
        ((*scan).indexRelation, keys)
    };
    let width = rel::key_width(index)?;
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    for k in keys {
        if k.sk_flags & sys::SK_ISNULL as i32 != 0 {
            return Ok((1, 0)); // strict operators never match NULL
        }
        let v = rel::key_from_datum(k.sk_argument, rel::subtype_width(k.sk_subtype, width));
        match k.sk_strategy as u32 {
            sys::BTLessStrategyNumber => match v.checked_sub(1) {
                Some(x) => hi = hi.min(x),
                None => return Ok((1, 0)),
            },
            sys::BTLessEqualStrategyNumber => hi = hi.min(v),
            sys::BTEqualStrategyNumber => {
                lo = lo.max(v);
                hi = hi.min(v);
            }
            sys::BTGreaterEqualStrategyNumber => lo = lo.max(v),
            sys::BTGreaterStrategyNumber => match v.checked_add(1) {
                Some(x) => lo = lo.max(x),
                None => return Ok((1, 0)),
            },
            _ => {}
        }
    }
    Ok((lo, hi))
}

fn state(scan: sys::IndexScanDesc) -> *mut ScanState {
    // SAFETY: opaque was set by ambeginscan.
    unsafe { (*scan).opaque as *mut ScanState }
}

#[no_mangle]
pub extern "C" fn rs_ambeginscan(
    index: sys::Relation,
    nkeys: i32,
    norderbys: i32,
    st: *mut CpgStatus,
) -> sys::IndexScanDesc {
    entry(st, std::ptr::null_mut(), || {
        // SAFETY: standard scan descriptor allocation.
        let scan = guard(|| unsafe { sys::RelationGetIndexScan(index, nkeys, norderbys) })?;
        // Everything below is allocated in the scan's (current) context.
        let s = ScanState {
            lo: 0,
            hi: -1,
            keyless: true,
            ready: false,
            zones: PVec::with_capacity(64)?,
            zone_lo: 0,
            zone_hi: -1,
            next_key: 0,
            pending: PVec::with_capacity(256)?,
            items: PVec::with_capacity(256)?,
            stream: Stream::new(true, 0),
            cursor: Cursor::streaming(),
            mark: -1,
        };
        // SAFETY: palloc in the current (scan) context.
        let p =
            guard(|| unsafe { sys::palloc(std::mem::size_of::<ScanState>()) })? as *mut ScanState;
        // SAFETY: p has room for one ScanState; scan is fresh.
        unsafe {
            p.write(s);
            (*scan).opaque = p as *mut std::ffi::c_void;
        }
        Ok(scan)
    })
}

#[no_mangle]
pub extern "C" fn rs_amrescan(
    scan: sys::IndexScanDesc,
    keys: sys::ScanKey,
    nkeys: i32,
    st: *mut CpgStatus,
) {
    entry(st, (), || {
        // SAFETY: keyData has room for numberOfKeys keys (beginscan).
        let keyless = unsafe {
            if !keys.is_null() && nkeys > 0 && (*scan).numberOfKeys > 0 {
                std::ptr::copy(keys, (*scan).keyData, (*scan).numberOfKeys as usize);
            }
            (*scan).numberOfKeys == 0
        };
        let (lo, hi) = key_range(scan)?;
        // SAFETY: s is our palloc'd state.
        let s = unsafe { &mut *state(scan) };
        s.lo = lo;
        s.hi = hi;
        s.keyless = keyless;
        s.ready = false;
        s.zones.clear();
        s.pending.clear();
        s.items.clear();
        s.mark = -1;
        Ok(())
    })
}

#[no_mangle]
pub extern "C" fn rs_amgetbitmap(
    scan: sys::IndexScanDesc,
    tbm: *mut sys::TIDBitmap,
    st: *mut CpgStatus,
) -> i64 {
    entry(st, 0, || {
        let s = state(scan);
        // SAFETY: live state and scan.
        let (lo, hi, index) = unsafe { ((*s).lo, (*s).hi, (*scan).indexRelation) };
        let blocks = map::candidates(index, lo, hi)?;
        for &b in &blocks {
            // SAFETY: tbm is the executor's bitmap.
            guard(|| unsafe { sys::tbm_add_page(tbm, b) })?;
        }
        Ok(blocks.len() as i64)
    })
}

/// Builds the zone-ordered stream the cursor walks, in `forward` direction.
fn prepare(scan: sys::IndexScanDesc, s: &mut ScanState, forward: bool) -> PgResult<()> {
    // SAFETY: live scan.
    let (index, heap, want_itup) = unsafe {
        (
            (*scan).indexRelation,
            (*scan).heapRelation,
            (*scan).xs_want_itup,
        )
    };
    if want_itup {
        // SAFETY: live scan; the tuple goes in the current context.
        guard(|| unsafe { sys::cpg_set_placeholder_itup(scan) })?;
    }
    // Only a scan without conditions can return NULL keys, and only a table
    // that may hold them needs the pass over every block.
    let null_blocks = if s.keyless && nulls::may_have_nulls(index)? {
        crate::pg::heap::nblocks(heap)?
    } else {
        0
    };
    s.stream = Stream::new(forward, null_blocks);
    s.cursor = Cursor::streaming();
    if s.lo == s.hi {
        // Every match has the one key: the blocks whose zones hold it are
        // the only zones, read from the key's segment at once.
        for blk in map::candidates(index, s.lo, s.hi)? {
            s.zones.push(Zone {
                blk,
                zmin: s.lo,
                zmax: s.hi,
            })?;
        }
        s.zone_lo = s.lo;
        s.zone_hi = s.hi;
        s.stream.new_zones();
        s.stream.zones_final();
    } else {
        bump(Counter::scan);
        s.next_key = if forward { s.lo } else { s.hi };
        if s.lo > s.hi {
            s.stream.zones_final();
        }
    }
    s.ready = true;
    Ok(())
}

/// Loads the zones of the next directory page in stream direction.
fn next_interval(scan: sys::IndexScanDesc, s: &mut ScanState) -> PgResult<()> {
    // SAFETY: live scan.
    let index = unsafe { (*scan).indexRelation };
    let forward = s.stream.forward;
    let (qlo, qhi) = if forward {
        (s.lo.max(s.next_key), s.hi)
    } else {
        (s.lo, s.hi.min(s.next_key))
    };
    let page = map::page_zones(index, s.next_key, qlo, qhi)?;
    // The interval continues exactly where the last one ended: a split
    // between the two may have moved the page boundary below (forward) or
    // above (backward) `next_key`, and keys already produced must not come
    // again.
    if forward {
        s.zone_lo = s.lo.max(page.lo).max(s.next_key);
        s.zone_hi = s.hi.min(page.hi);
    } else {
        s.zone_lo = s.lo.max(page.lo);
        s.zone_hi = s.hi.min(page.hi).min(s.next_key);
    }
    s.zones.clear();
    for z in stream_zones(page.zones, s.zone_lo, s.zone_hi, forward) {
        s.zones.push(z)?;
    }
    s.stream.new_zones();
    let last = if forward {
        page.hi >= s.hi
    } else {
        page.lo <= s.lo
    };
    if last {
        s.stream.zones_final();
    } else {
        s.next_key = if forward { page.hi + 1 } else { page.lo - 1 };
    }
    Ok(())
}

/// Every TID handed out is a tuple whose key this scan read (CLUSTER
/// refuses scans that need a recheck).
fn set_tid(scan: sys::IndexScanDesc, e: Entry) {
    // SAFETY: live scan; xs_heaptid is ours to set.
    unsafe {
        let tid = &mut (*scan).xs_heaptid;
        tid.ip_blkid.bi_hi = (e.blk >> 16) as u16;
        tid.ip_blkid.bi_lo = (e.blk & 0xFFFF) as u16;
        tid.ip_posid = e.off;
        (*scan).xs_recheck = false;
    }
}

fn gettuple(scan: sys::IndexScanDesc, direction: i32) -> PgResult<bool> {
    // SAFETY: our palloc'd state, used by this call only.
    let s = unsafe { &mut *state(scan) };
    let forward = direction >= 0;
    if !s.ready {
        prepare(scan, s, forward)?;
    }
    s.cursor.begin(forward);
    loop {
        match s.cursor.step(s.items.len(), forward) {
            Step::Item(i) => {
                set_tid(scan, s.items.as_slice()[i]);
                return Ok(true);
            }
            Step::End => return Ok(false),
            Step::Pull => {
                // SAFETY: live scan.
                let (index, heap) = unsafe { ((*scan).indexRelation, (*scan).heapRelation) };
                let mut loader = HeapLoader {
                    scan,
                    heap,
                    attno: rel::index_heap_attno(index),
                    width: rel::key_width(index)?,
                    lo: s.zone_lo,
                    hi: s.zone_hi,
                };
                let zones = s.zones.as_slice();
                match s.stream.next(zones, &mut s.pending, &mut loader)? {
                    Next::Entry(e) => s.items.push(e)?,
                    Next::NeedZones => next_interval(scan, s)?,
                    Next::End => s.cursor.exhaust(),
                }
            }
        }
    }
}

#[no_mangle]
pub extern "C" fn rs_amgettuple(
    scan: sys::IndexScanDesc,
    direction: i32,
    st: *mut CpgStatus,
) -> bool {
    entry(st, false, || gettuple(scan, direction))
}

#[no_mangle]
pub extern "C" fn rs_ammarkpos(scan: sys::IndexScanDesc, st: *mut CpgStatus) {
    entry(st, (), || {
        // SAFETY: our state.
        let s = unsafe { &mut *state(scan) };
        s.mark = s.cursor.pos;
        Ok(())
    })
}

#[no_mangle]
pub extern "C" fn rs_amrestrpos(scan: sys::IndexScanDesc, st: *mut CpgStatus) {
    entry(st, (), || {
        // SAFETY: our state.
        let s = unsafe { &mut *state(scan) };
        s.cursor.pos = s.mark;
        Ok(())
    })
}

#[no_mangle]
pub extern "C" fn rs_amendscan(scan: sys::IndexScanDesc, st: *mut CpgStatus) {
    entry(st, (), || {
        // SAFETY: our state; freed once (the scan descriptor goes next).
        let s = unsafe { &mut *state(scan) };
        s.zones.free()?;
        s.pending.free()?;
        s.items.free()?;
        Ok(())
    })
}
