//! Scans: scan keys become one key range; the map turns it into candidate
//! heap blocks. `amgetbitmap` adds them as lossy pages (the Bitmap Heap Scan
//! rechecks); `amgettuple` hands out every line pointer of each candidate
//! block with `xs_recheck`, and heap's index fetch skips unused slots and
//! follows HOT chains, so each visible tuple comes back exactly once.

use crate::am::index::map;
use crate::pg::error::{entry, guard, CpgStatus, PgResult};
use crate::pg::rel;
use crate::pg::sys;

/// Line pointers a heap page can have (MaxHeapTuplesPerPage for 8 KB).
pub const MAX_HEAP_TUPLES_PER_PAGE: u16 = 291;

/// Scan state, palloc'd in the scan's memory context: plain data only, so
/// an error that skips amendscan leaks nothing outside that context.
#[repr(C)]
struct ScanState {
    lo: i64,
    hi: i64,
    /// Candidate blocks (palloc'd array), filled on the first gettuple.
    blocks: *mut u32,
    nblocks: usize,
    ready: bool,
    cur_block: usize,
    next_off: u16,
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
        // SAFETY: palloc0 in the current (scan) context.
        let s = guard(|| unsafe { sys::palloc0(std::mem::size_of::<ScanState>()) })?;
        // SAFETY: scan is fresh.
        unsafe { (*scan).opaque = s };
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
        unsafe {
            if !keys.is_null() && nkeys > 0 && (*scan).numberOfKeys > 0 {
                std::ptr::copy(keys, (*scan).keyData, (*scan).numberOfKeys as usize);
            }
        }
        let (lo, hi) = key_range(scan)?;
        let s = state(scan);
        // SAFETY: s is our palloc'd state.
        unsafe {
            if !(*s).blocks.is_null() {
                let b = (*s).blocks as *mut std::ffi::c_void;
                guard(|| sys::pfree(b))?;
            }
            *s = ScanState {
                lo,
                hi,
                blocks: std::ptr::null_mut(),
                nblocks: 0,
                ready: false,
                cur_block: 0,
                next_off: 1,
            };
        }
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

/// Copies the candidate list into the scan's memory (plain data).
fn load_blocks(scan: sys::IndexScanDesc, s: *mut ScanState) -> PgResult<()> {
    // SAFETY: live state and scan.
    let (lo, hi, index) = unsafe { ((*s).lo, (*s).hi, (*scan).indexRelation) };
    let blocks = map::candidates(index, lo, hi)?;
    let bytes = blocks.len().max(1) * std::mem::size_of::<u32>();
    // SAFETY: palloc in the scan's context.
    let p = guard(|| unsafe { sys::palloc(bytes) })? as *mut u32;
    // SAFETY: p has room for blocks.len() entries.
    unsafe {
        std::ptr::copy_nonoverlapping(blocks.as_ptr(), p, blocks.len());
        (*s).blocks = p;
        (*s).nblocks = blocks.len();
        (*s).ready = true;
        (*s).cur_block = 0;
        (*s).next_off = 1;
    }
    Ok(())
}

#[no_mangle]
pub extern "C" fn rs_amgettuple(
    scan: sys::IndexScanDesc,
    _direction: i32,
    st: *mut CpgStatus,
) -> bool {
    entry(st, false, || {
        let s = state(scan);
        // SAFETY: live state.
        if unsafe { !(*s).ready } {
            load_blocks(scan, s)?;
        }
        // SAFETY: live state; blocks has nblocks entries.
        unsafe {
            while (*s).cur_block < (*s).nblocks {
                if (*s).next_off <= MAX_HEAP_TUPLES_PER_PAGE {
                    let blk = *(*s).blocks.add((*s).cur_block);
                    let tid = &mut (*scan).xs_heaptid;
                    tid.ip_blkid.bi_hi = (blk >> 16) as u16;
                    tid.ip_blkid.bi_lo = (blk & 0xFFFF) as u16;
                    tid.ip_posid = (*s).next_off;
                    (*scan).xs_recheck = true;
                    (*s).next_off += 1;
                    return Ok(true);
                }
                (*s).cur_block += 1;
                (*s).next_off = 1;
            }
        }
        Ok(false)
    })
}

#[no_mangle]
pub extern "C" fn rs_amendscan(scan: sys::IndexScanDesc, st: *mut CpgStatus) {
    entry(st, (), || {
        let s = state(scan);
        // SAFETY: our palloc'd memory, freed once.
        unsafe {
            if !(*s).blocks.is_null() {
                let b = (*s).blocks as *mut std::ffi::c_void;
                guard(|| sys::pfree(b))?;
                (*s).blocks = std::ptr::null_mut();
            }
        }
        Ok(())
    })
}
