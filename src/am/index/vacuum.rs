//! ambulkdelete / amvacuumcleanup: the map holds no TIDs, so there is
//! nothing to delete; statistics report the rows the map covers.
//! Tightening zones of blocks that lost rows is done by VACUUM's cleanup
//! pass (see `tighten`), never narrower than what the heap block holds.

use crate::am::index::map;
use crate::core::counters::{bump, Counter};
use crate::pg::error::{entry, guard, CpgStatus, PgResult};
use crate::pg::sys;

fn stats_for(
    info: *mut sys::IndexVacuumInfo,
    stats: *mut sys::IndexBulkDeleteResult,
) -> PgResult<*mut sys::IndexBulkDeleteResult> {
    let s = if stats.is_null() {
        // SAFETY: palloc0 of the result struct.
        guard(|| unsafe { sys::palloc0(std::mem::size_of::<sys::IndexBulkDeleteResult>()) })?
            as *mut sys::IndexBulkDeleteResult
    } else {
        stats
    };
    // SAFETY: info is VACUUM's; index open.
    let index = unsafe { (*info).index };
    let (meta, _pages) = map::read_all(index)?;
    let rel = index;
    // SAFETY: relation size of the main fork.
    let npages = guard(|| unsafe { sys::RelationGetNumberOfBlocksInFork(rel, sys::MAIN_FORKNUM) })?;
    // SAFETY: s is a live result struct.
    unsafe {
        (*s).num_pages = npages;
        (*s).num_index_tuples = meta.total_rows.max(0) as f64;
        (*s).estimated_count = true;
    }
    Ok(s)
}

#[no_mangle]
pub extern "C" fn rs_ambulkdelete(
    info: *mut sys::IndexVacuumInfo,
    stats: *mut sys::IndexBulkDeleteResult,
    _callback: sys::IndexBulkDeleteCallback,
    _callback_state: *mut std::ffi::c_void,
    st: *mut CpgStatus,
) -> *mut sys::IndexBulkDeleteResult {
    entry(st, std::ptr::null_mut(), || {
        bump(Counter::maintenance);
        stats_for(info, stats)
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
        stats_for(info, stats)
    })
}
