//! amcostestimate: selectivity from PostgreSQL's generic estimator, index
//! pages and CPU from `core::plan`, correlation from the key column's
//! statistics (as btree does) for equality scans, so the heap side is
//! costed by how clustered the table really is; ordered range scans are
//! priced as uncorrelated (see `estimate`).

use crate::core::counters::{bump, Counter};
use crate::core::plan::{index_cost, range_selectivity, CostInputs};
use crate::pg::error::{entry, guard, CpgStatus, PgResult};
use crate::pg::sys;

#[allow(clippy::too_many_arguments)]
fn estimate(
    root: *mut sys::PlannerInfo,
    path: *mut sys::IndexPath,
    loop_count: f64,
    startup: *mut sys::Cost,
    total: *mut sys::Cost,
    selectivity: *mut sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) -> PgResult<()> {
    bump(Counter::costestimate);
    let mut g = sys::GenericCosts::default();
    let gp = &mut g as *mut sys::GenericCosts;
    // SAFETY: planner-provided root and path; g is zeroed as required.
    guard(|| unsafe { sys::genericcostestimate(root, path, loop_count, gp) })?;
    // SAFETY: path->indexinfo is set for every index path.
    let info = unsafe { (*path).indexinfo };
    let corr = guard(|| unsafe { sys::cpg_index_correlation(root, info) })?;
    let (mut equality, mut lo, mut hi) = (false, 0i64, 0i64);
    let (ep, lp, hp) = (
        &mut equality as *mut bool,
        &mut lo as *mut i64,
        &mut hi as *mut i64,
    );
    // SAFETY: as above; the outputs outlive the call.
    let constant = guard(|| unsafe { sys::cpg_path_key_range(path, ep, lp, hp) })?;
    // A plain index scan without an equality reads every candidate block
    // itself to put its tuples in key order, then the executor fetches from
    // them again, in key order rather than block order (scan.rs). Only the
    // plain scan uses the correlation we report (the bitmap path reads each
    // block once, in block order): reporting none prices that scan as the
    // scattered reads it is, so the planner keeps it for where its order
    // pays (ORDER BY … LIMIT, merge joins) and takes the bitmap otherwise.
    let corr = if equality { corr } else { 0.0 };
    // SAFETY: as above.
    let index_only = guard(|| unsafe { sys::cpg_path_is_index_only(path) })?;
    // SAFETY: reading planner structs and cost GUCs.
    let (index_pages, heap_tuples, cpu_op, cpu_tup) = unsafe {
        (
            (*info).pages as f64,
            (*(*info).rel).tuples,
            sys::cpu_operator_cost,
            sys::cpu_index_tuple_cost,
        )
    };
    let segment_pages = (index_pages - 1.0).max(1.0);
    // SAFETY: the planner holds a lock on the index.
    let index_oid = unsafe { (*info).indexoid };
    let index = crate::pg::rel::OpenRel::index(index_oid, sys::NoLock as i32)?;
    let (overflowed, lookup_blocks) = crate::am::index::map::lookup_blocks_sample(index.rel())?;
    // A range with constant bounds: ask the map which heap blocks it meets.
    // Both scans of a range read whole candidate blocks (the bitmap is
    // lossy), so their share of the table is the fraction of rows the scan
    // handles; statistics can be far off at the ends of the key range.
    // SAFETY: the path's relation.
    let heap_pages = unsafe { (*(*info).rel).pages } as f64;
    let sel = if !equality && constant && !overflowed && heap_pages >= 1.0 {
        let blocks = crate::am::index::map::candidates(index.rel(), lo, hi)?.len();
        range_selectivity(g.indexSelectivity, blocks as f64, heap_pages)
    } else {
        g.indexSelectivity
    };
    let c = index_cost(&CostInputs {
        selectivity: sel,
        heap_tuples,
        segment_pages,
        // About as many segments as a full page holds; only the log matters.
        segments: segment_pages * 16.0,
        random_page_cost: g.spc_random_page_cost,
        cpu_operator_cost: cpu_op,
        cpu_index_tuple_cost: cpu_tup,
        loop_count,
        lookup_blocks,
    });
    // An overflowed map reads the whole table, and an index-only scan (see
    // cpg_path_is_index_only) reads and sorts it for a count: never worth
    // planning.
    let total_cost = if overflowed || index_only {
        1.0e10
    } else {
        c.total
    };
    // SAFETY: output pointers from the planner.
    unsafe {
        *startup = c.startup;
        *total = total_cost;
        *selectivity = sel;
        *correlation = corr;
        *pages = c.pages;
    }
    Ok(())
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn rs_amcostestimate(
    root: *mut sys::PlannerInfo,
    path: *mut sys::IndexPath,
    loop_count: f64,
    startup: *mut sys::Cost,
    total: *mut sys::Cost,
    selectivity: *mut sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
    st: *mut CpgStatus,
) {
    entry(st, (), || {
        estimate(
            root,
            path,
            loop_count,
            startup,
            total,
            selectivity,
            correlation,
            pages,
        )
    })
}
