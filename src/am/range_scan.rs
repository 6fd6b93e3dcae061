//! The map side of the ClusteredRangeScan custom scan. The executor and
//! planner plumbing (paths, plan, slots, quals, the TID range scans) is C
//! (csrc/range_scan.c); C calls these two entry points:
//!
//! - [`rs_range_scan_plan`]: is the index usable (not overflowed), and what
//!   does a range scan cost: with constant bounds the map is asked which
//!   blocks the range meets and how many contiguous runs they form; else
//!   the shape comes from selectivity and correlation, and no range reads
//!   fewer blocks than a point lookup does (`core::range_scan`).
//! - [`rs_range_scan_runs`]: at execution, the runs of candidate blocks of
//!   the evaluated bounds, from the same map lookup amgetbitmap uses.

use crate::am::index::map::{self, RangeBlocks};
use crate::core::range_scan::{
    block_runs, fold_bounds, range_scan_cost, shape_from_selectivity, Bound, RangeCostInputs,
    RangeShape,
};
use crate::pg::error::{entry, guard, CpgStatus, PgResult};
use crate::pg::rel::OpenRel;
use crate::pg::sys;

/// One condition `key <strategy> value` (btree strategy numbers).
#[repr(C)]
pub struct CpgRangeBound {
    pub strategy: i32,
    pub isnull: bool,
    pub value: i64,
}

/// Planner inputs (filled by C) and outputs (filled here).
#[repr(C)]
pub struct CpgRangePlan {
    /// The conditions; only read when `constant` (every value known).
    pub bounds: *const CpgRangeBound,
    pub nbounds: i32,
    pub constant: bool,
    /// Selectivity of the key conditions, and the key column's correlation.
    pub selectivity: f64,
    pub correlation: f64,
    pub heap_pages: f64,
    pub heap_tuples: f64,
    pub rows: f64,
    /// Pages of the index (metapage included).
    pub index_pages: f64,
    pub seq_page_cost: f64,
    pub random_page_cost: f64,
    pub cpu_tuple_cost: f64,
    pub cpu_operator_cost: f64,
    pub qual_startup: f64,
    pub qual_per_tuple: f64,
    pub target_startup: f64,
    pub target_per_tuple: f64,
    /// Outputs.
    pub startup_cost: f64,
    pub total_cost: f64,
    pub blocks: f64,
    pub runs: f64,
}

/// Heap blocks `first..=last`, read by one TID range scan.
#[repr(C)]
pub struct CpgBlockRun {
    pub first: u32,
    pub last: u32,
}

/// What a scan reads: `runs` (palloc'd in the caller's memory context, NULL
/// when there are none), the candidate blocks they hold, whether the map
/// could not narrow the range (`every_block`: one run over the whole table),
/// and the segment pages the lookup read.
#[repr(C)]
pub struct CpgRangeRuns {
    pub runs: *mut CpgBlockRun,
    pub nruns: i32,
    pub blocks: i64,
    pub every_block: bool,
    pub segment_pages: i32,
}

/// MaxBlockNumber (a cast macro bindgen cannot see). heap's TID range scan
/// clamps a run to the blocks the table has.
const MAX_BLOCK_NUMBER: u32 = 0xFFFF_FFFE;

fn bounds_of(bounds: *const CpgRangeBound, n: i32) -> Vec<Bound> {
    if bounds.is_null() || n <= 0 {
        return Vec::new();
    }
    // SAFETY: C passes an array of n bounds.
    let raw = unsafe { std::slice::from_raw_parts(bounds, n as usize) };
    raw.iter()
        .map(|b| Bound {
            strategy: b.strategy,
            value: (!b.isnull).then_some(b.value),
        })
        .collect()
}

fn plan(index_oid: sys::Oid, p: &mut CpgRangePlan) -> PgResult<bool> {
    // The planner holds a lock on every index of the relation it plans.
    let index = OpenRel::index(index_oid, sys::NoLock as i32)?;
    if map::overflowed(index.rel())? {
        return Ok(false);
    }
    let shape = if p.constant {
        match fold_bounds(&bounds_of(p.bounds, p.nbounds)) {
            None => RangeShape {
                blocks: 0.0,
                runs: 0.0,
                segment_pages: 1.0,
            },
            Some((lo, hi)) => match map::range_blocks(index.rel(), lo, hi)? {
                RangeBlocks::Every => return Ok(false),
                RangeBlocks::Listed {
                    blocks,
                    segment_pages,
                } => RangeShape {
                    blocks: blocks.len() as f64,
                    runs: block_runs(&blocks).len() as f64,
                    segment_pages: f64::from(segment_pages.max(1)),
                },
            },
        }
    } else {
        let (_, lookup_blocks) = map::lookup_blocks_sample(index.rel())?;
        shape_from_selectivity(
            p.selectivity,
            p.heap_pages,
            (p.index_pages - 1.0).max(1.0),
            p.correlation,
            lookup_blocks,
        )
    };
    let c = range_scan_cost(&RangeCostInputs {
        shape,
        heap_pages: p.heap_pages,
        heap_tuples: p.heap_tuples,
        rows: p.rows,
        seq_page_cost: p.seq_page_cost,
        random_page_cost: p.random_page_cost,
        cpu_tuple_cost: p.cpu_tuple_cost,
        cpu_operator_cost: p.cpu_operator_cost,
        qual_startup: p.qual_startup,
        qual_per_tuple: p.qual_per_tuple,
        target_startup: p.target_startup,
        target_per_tuple: p.target_per_tuple,
    });
    p.startup_cost = c.startup;
    p.total_cost = c.total;
    p.blocks = shape.blocks;
    p.runs = shape.runs;
    Ok(true)
}

/// Planner: false when the index cannot serve a range scan (its map
/// overflowed, so it would read the whole table); else the costs in `p`.
#[no_mangle]
pub extern "C" fn rs_range_scan_plan(
    index_oid: sys::Oid,
    p: *mut CpgRangePlan,
    st: *mut CpgStatus,
) -> bool {
    entry(st, false, || {
        // SAFETY: C passes its own struct, used by this call only.
        let p = unsafe { &mut *p };
        plan(index_oid, p)
    })
}

fn runs(
    index: sys::Relation,
    bounds: *const CpgRangeBound,
    nbounds: i32,
    out: &mut CpgRangeRuns,
) -> PgResult<()> {
    *out = CpgRangeRuns {
        runs: std::ptr::null_mut(),
        nruns: 0,
        blocks: 0,
        every_block: false,
        segment_pages: 0,
    };
    let Some((lo, hi)) = fold_bounds(&bounds_of(bounds, nbounds)) else {
        return Ok(());
    };
    let runs = match map::range_blocks(index, lo, hi)? {
        RangeBlocks::Every => {
            out.every_block = true;
            out.blocks = -1;
            vec![(0, MAX_BLOCK_NUMBER)]
        }
        RangeBlocks::Listed {
            blocks,
            segment_pages,
        } => {
            out.blocks = blocks.len() as i64;
            out.segment_pages = segment_pages as i32;
            block_runs(&blocks)
        }
    };
    if runs.is_empty() {
        return Ok(());
    }
    let size = runs.len() * std::mem::size_of::<CpgBlockRun>();
    // SAFETY: palloc in the caller's memory context; ereports on OOM.
    let arr = guard(|| unsafe { sys::palloc(size) })? as *mut CpgBlockRun;
    for (i, &(first, last)) in runs.iter().enumerate() {
        // SAFETY: arr has room for runs.len() entries.
        unsafe { arr.add(i).write(CpgBlockRun { first, last }) };
    }
    out.runs = arr;
    out.nruns = runs.len() as i32;
    Ok(())
}

/// Executor: the runs of candidate heap blocks for the evaluated bounds
/// (none when a bound is NULL or the range is empty).
#[no_mangle]
pub extern "C" fn rs_range_scan_runs(
    index: sys::Relation,
    bounds: *const CpgRangeBound,
    nbounds: i32,
    out: *mut CpgRangeRuns,
    st: *mut CpgStatus,
) {
    entry(st, (), || {
        // SAFETY: C passes its own struct, used by this call only.
        let out = unsafe { &mut *out };
        runs(index, bounds, nbounds, out)
    })
}
