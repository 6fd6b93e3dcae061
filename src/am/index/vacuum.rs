//! ambulkdelete / amvacuumcleanup. The map holds no TIDs, so nothing is
//! deleted from it; instead VACUUM tightens it: the blocks in which VACUUM
//! found dead tuples get their zones narrowed to the keys they still hold
//! (listings of emptied blocks go away) and their segments' row counts are
//! recounted. Blocks without dead tuples are not read.

use crate::am::index::map;
use crate::core::counters::{bump, Counter};
use crate::pg::error::{check_for_interrupts, entry, guard, CpgStatus, PgResult};
use crate::pg::rel::{self, OpenRel};
use crate::pg::sys;
use std::collections::HashSet;

/// Line pointers probed per heap block (MaxHeapTuplesPerPage for 8 kB).
const MAX_OFFSETS: u16 = crate::am::index::scan::MAX_HEAP_TUPLES_PER_PAGE;

fn result_struct(
    stats: *mut sys::IndexBulkDeleteResult,
) -> PgResult<*mut sys::IndexBulkDeleteResult> {
    if !stats.is_null() {
        return Ok(stats);
    }
    // SAFETY: palloc0 of the result struct.
    Ok(
        guard(|| unsafe { sys::palloc0(std::mem::size_of::<sys::IndexBulkDeleteResult>()) })?
            as *mut sys::IndexBulkDeleteResult,
    )
}

/// Fills the statistics VACUUM reports for the index.
fn report(index: sys::Relation, s: *mut sys::IndexBulkDeleteResult) -> PgResult<()> {
    let (_meta, pages) = map::read_all(index)?;
    let rows: i64 = pages
        .iter()
        .flat_map(|p| p.segs.iter().map(|s| s.row_count.max(0)))
        .sum();
    // SAFETY: relation size of the index's main fork.
    let npages =
        guard(|| unsafe { sys::RelationGetNumberOfBlocksInFork(index, sys::MAIN_FORKNUM) })?;
    // SAFETY: s is a live result struct.
    unsafe {
        (*s).num_pages = npages;
        (*s).num_index_tuples = rows as f64;
        (*s).estimated_count = false;
    }
    Ok(())
}

fn bulkdelete(
    info: *mut sys::IndexVacuumInfo,
    stats: *mut sys::IndexBulkDeleteResult,
    callback: sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
) -> PgResult<*mut sys::IndexBulkDeleteResult> {
    bump(Counter::maintenance);
    let s = result_struct(stats)?;
    // SAFETY: VACUUM's info; the index is open.
    let index = unsafe { (*info).index };
    let Some(cb) = callback else {
        report(index, s)?;
        return Ok(s);
    };
    let (_meta, pages) = map::read_all(index)?;
    let mut blocks: Vec<u32> = pages
        .iter()
        .flat_map(|p| {
            p.segs
                .iter()
                .flat_map(|s| s.listings.iter().map(|l| l.blkno))
        })
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    let mut dirty = HashSet::new();
    let mut removed_tuples = 0f64;
    for (n, &b) in blocks.iter().enumerate() {
        if n % 256 == 0 {
            check_for_interrupts()?;
        }
        let mut tid = sys::ItemPointerData::default();
        tid.ip_blkid.bi_hi = (b >> 16) as u16;
        tid.ip_blkid.bi_lo = (b & 0xFFFF) as u16;
        for off in 1..=MAX_OFFSETS {
            tid.ip_posid = off;
            let tp = &mut tid as *mut sys::ItemPointerData;
            // SAFETY: VACUUM's dead-TID lookup; it does not keep the pointer.
            if guard(|| unsafe { cb(tp, callback_state) })? {
                dirty.insert(b);
                removed_tuples += 1.0;
            }
        }
    }
    if !dirty.is_empty() {
        let ioid = rel::relid(index);
        // SAFETY: catalog lookup; VACUUM holds a lock on the table.
        let heap_oid = guard(|| unsafe { sys::IndexGetRelation(ioid, false) })?;
        let heap = OpenRel::table(heap_oid, sys::NoLock as i32)?;
        map::vacuum_tighten(index, heap.rel(), &dirty)?;
    }
    report(index, s)?;
    // SAFETY: live result struct.
    unsafe { (*s).tuples_removed += removed_tuples };
    Ok(s)
}

#[no_mangle]
pub extern "C" fn rs_ambulkdelete(
    info: *mut sys::IndexVacuumInfo,
    stats: *mut sys::IndexBulkDeleteResult,
    callback: sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
    st: *mut CpgStatus,
) -> *mut sys::IndexBulkDeleteResult {
    entry(st, std::ptr::null_mut(), || {
        bulkdelete(info, stats, callback, callback_state)
    })
}

#[no_mangle]
pub extern "C" fn rs_amvacuumcleanup(
    info: *mut sys::IndexVacuumInfo,
    stats: *mut sys::IndexBulkDeleteResult,
    st: *mut CpgStatus,
) -> *mut sys::IndexBulkDeleteResult {
    entry(st, std::ptr::null_mut(), || {
        // SAFETY: VACUUM's info.
        if unsafe { (*info).analyze_only } {
            return Ok(stats);
        }
        let s = result_struct(stats)?;
        // SAFETY: as above.
        report(unsafe { (*info).index }, s)?;
        Ok(s)
    })
}
