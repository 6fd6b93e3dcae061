//! Pure decisions of the ClusteredRangeScan custom scan (csrc/range_scan.c,
//! src/am/range_scan.rs): folding the key conditions into one closed key
//! range, grouping candidate heap blocks into contiguous runs (each run is
//! read by one TID range scan), and the cost the planner compares with
//! a btree's index scan and a sequential scan.
//!
//! Why a custom scan at all: PostgreSQL prices a bitmap heap scan as if the
//! heap were unclustered, so a btree on the same key (with correlation
//! credit) always wins ranges, although on a clustered table the map names
//! fewer blocks. This node reads exactly the candidate blocks, once, and is
//! priced from what the map says about them.

/// btree strategy numbers (our operator classes use the same five).
pub const LT: i32 = 1;
pub const LE: i32 = 2;
pub const EQ: i32 = 3;
pub const GE: i32 = 4;
pub const GT: i32 = 5;

/// One condition `key <strategy> value`; `None` is a NULL value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    pub strategy: i32,
    pub value: Option<i64>,
}

/// The closed key range every condition allows; `None` when no key can
/// match (a NULL value: our operators are strict; an empty interval; `<`
/// the smallest key). Unknown strategies constrain nothing (the executor
/// still applies every original qual).
pub fn fold_bounds(bounds: &[Bound]) -> Option<(i64, i64)> {
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    for b in bounds {
        let v = b.value?;
        match b.strategy {
            LT => hi = hi.min(v.checked_sub(1)?),
            LE => hi = hi.min(v),
            EQ => {
                lo = lo.max(v);
                hi = hi.min(v);
            }
            GE => lo = lo.max(v),
            GT => lo = lo.max(v.checked_add(1)?),
            _ => {}
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// Maximal runs `[first, last]` of consecutive block numbers in a sorted,
/// deduplicated list.
pub fn block_runs(blocks: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &b in blocks {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(b) => *last = b,
            _ => runs.push((b, b)),
        }
    }
    runs
}

/// What the scan will read: heap blocks, how many contiguous runs they
/// form, and segment pages of the map it consults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeShape {
    pub blocks: f64,
    pub runs: f64,
    pub segment_pages: f64,
}

/// The shape when the bounds are not known at plan time (parameters,
/// stable expressions): `selectivity` of the key conditions times the
/// table, and runs from the key column's correlation as btree's estimate
/// uses it: perfectly correlated (key-ordered) blocks form one run,
/// uncorrelated ones are each their own. No key range reads fewer blocks
/// than one key does: `lookup_blocks`, the blocks whose zones hold a key
/// (map::lookup_blocks_sample; more than one where zones overlap, as after
/// a random-order load). Those are scattered, each its own run. Without
/// that floor a generic plan of `key = $1` took this scan over the index
/// scan on such a table, and read every tuple of every one of them.
pub fn shape_from_selectivity(
    selectivity: f64,
    heap_pages: f64,
    segment_pages: f64,
    correlation: f64,
    lookup_blocks: f64,
) -> RangeShape {
    let sel = selectivity.clamp(0.0, 1.0);
    let heap_pages = heap_pages.max(0.0);
    if heap_pages < 1.0 {
        return RangeShape {
            blocks: 0.0,
            runs: 0.0,
            segment_pages: (sel * segment_pages.max(1.0)).ceil().max(1.0),
        };
    }
    let by_sel = (sel * heap_pages).ceil().clamp(1.0, heap_pages);
    let c2 = (correlation * correlation).clamp(0.0, 1.0);
    let runs_by_sel = 1.0 + (by_sel - 1.0) * (1.0 - c2);
    let lookup = lookup_blocks.max(1.0).min(heap_pages);
    let blocks = by_sel.max(lookup);
    let runs = runs_by_sel.max(lookup);
    let segment_pages = (sel * segment_pages.max(1.0)).ceil().max(1.0);
    RangeShape {
        blocks,
        runs,
        segment_pages,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeCostInputs {
    pub shape: RangeShape,
    pub heap_pages: f64,
    pub heap_tuples: f64,
    /// Rows the scan returns (after every qual).
    pub rows: f64,
    pub seq_page_cost: f64,
    pub random_page_cost: f64,
    pub cpu_tuple_cost: f64,
    pub cpu_operator_cost: f64,
    /// Cost of the quals the node evaluates on every tuple it reads.
    pub qual_startup: f64,
    pub qual_per_tuple: f64,
    /// Cost of the target list, per returned row.
    pub target_startup: f64,
    pub target_per_tuple: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeCost {
    pub startup: f64,
    pub total: f64,
}

/// Cost of the range scan.
///
/// - Startup: the segment pages of the map, at `random_page_cost` each
///   (like btree leaf pages; the metapage and directory pages stay hot and
///   are charged as CPU, like btree's upper levels), plus the quals' and
///   target list's startup.
/// - Run: the first block of every run is a random read and the others
///   sequential ones (each run is one forward TID range scan), then every
///   tuple of the candidate blocks passes the quals (the scan reads whole
///   blocks), and the returned rows the target list.
///
/// A range covering the whole table reads every block in one run: it costs
/// a sequential scan plus `random_page_cost - seq_page_cost` plus the map,
/// so the planner keeps the sequential scan for unselective predicates.
pub fn range_scan_cost(i: &RangeCostInputs) -> RangeCost {
    let s = i.shape;
    let blocks = s.blocks.max(0.0);
    let runs = s.runs.clamp(blocks.min(1.0), blocks);
    let map_cpu = (s.segment_pages.max(1.0) * 2.0 * 50.0 + blocks) * i.cpu_operator_cost.max(0.0);
    let startup =
        s.segment_pages.max(0.0) * i.random_page_cost + map_cpu + i.qual_startup + i.target_startup;
    let io = runs * i.random_page_cost + (blocks - runs) * i.seq_page_cost;
    let tuples = if i.heap_pages >= 1.0 {
        i.heap_tuples * (blocks / i.heap_pages).min(1.0)
    } else {
        i.heap_tuples
    };
    let cpu = tuples.max(0.0) * (i.cpu_tuple_cost + i.qual_per_tuple)
        + i.rows.max(0.0) * i.target_per_tuple;
    RangeCost {
        startup,
        total: startup + io + cpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(strategy: i32, v: i64) -> Bound {
        Bound {
            strategy,
            value: Some(v),
        }
    }

    #[test]
    fn bounds_fold_into_a_closed_range() {
        assert_eq!(fold_bounds(&[]), Some((i64::MIN, i64::MAX)));
        assert_eq!(fold_bounds(&[b(GE, 10), b(LE, 20)]), Some((10, 20)));
        assert_eq!(fold_bounds(&[b(GT, 10), b(LT, 20)]), Some((11, 19)));
        assert_eq!(fold_bounds(&[b(EQ, 7), b(GE, 0)]), Some((7, 7)));
        assert_eq!(fold_bounds(&[b(GE, 5), b(GE, 8), b(LE, 9)]), Some((8, 9)));
        // Contradictions, NULLs and the ends of the key space.
        assert_eq!(fold_bounds(&[b(GT, 10), b(LT, 5)]), None);
        assert_eq!(fold_bounds(&[b(EQ, 1), b(EQ, 2)]), None);
        assert_eq!(
            fold_bounds(&[Bound {
                strategy: GE,
                value: None
            }]),
            None
        );
        assert_eq!(fold_bounds(&[b(LT, i64::MIN)]), None);
        assert_eq!(fold_bounds(&[b(GT, i64::MAX)]), None);
        assert_eq!(fold_bounds(&[b(GE, i64::MAX)]), Some((i64::MAX, i64::MAX)));
        // An unknown strategy constrains nothing.
        assert_eq!(fold_bounds(&[b(9, 3), b(LE, 4)]), Some((i64::MIN, 4)));
    }

    #[test]
    fn runs_of_consecutive_blocks() {
        assert_eq!(block_runs(&[]), vec![]);
        assert_eq!(block_runs(&[5]), vec![(5, 5)]);
        assert_eq!(
            block_runs(&[1, 2, 3, 7, 9, 10, u32::MAX - 1, u32::MAX]),
            vec![(1, 3), (7, 7), (9, 10), (u32::MAX - 1, u32::MAX)]
        );
    }

    fn inputs(shape: RangeShape) -> RangeCostInputs {
        RangeCostInputs {
            shape,
            heap_pages: 1000.0,
            heap_tuples: 100_000.0,
            rows: 100_000.0 * shape.blocks / 1000.0,
            seq_page_cost: 1.0,
            random_page_cost: 4.0,
            cpu_tuple_cost: 0.01,
            cpu_operator_cost: 0.0025,
            qual_startup: 0.0,
            qual_per_tuple: 0.005,
            target_startup: 0.0,
            target_per_tuple: 0.0,
        }
    }

    fn seq_scan_cost(i: &RangeCostInputs) -> f64 {
        i.heap_pages * i.seq_page_cost + i.heap_tuples * (i.cpu_tuple_cost + i.qual_per_tuple)
    }

    #[test]
    fn whole_table_costs_more_than_a_seq_scan() {
        for (seq, random) in [(1.0, 4.0), (1.0, 1.0), (0.1, 0.1), (1.0, 1.1)] {
            let i = RangeCostInputs {
                seq_page_cost: seq,
                random_page_cost: random,
                ..inputs(RangeShape {
                    blocks: 1000.0,
                    runs: 1.0,
                    segment_pages: 3.0,
                })
            };
            let c = range_scan_cost(&i);
            assert!(c.total > seq_scan_cost(&i), "{seq}/{random}: {c:?}");
        }
        // Scattered over the whole table: every block a random read.
        let i = inputs(RangeShape {
            blocks: 1000.0,
            runs: 1000.0,
            segment_pages: 3.0,
        });
        assert!(range_scan_cost(&i).total > seq_scan_cost(&i) + 1000.0 * (4.0 - 1.0));
    }

    #[test]
    fn contiguous_blocks_are_cheaper_than_scattered_ones() {
        let shape = RangeShape {
            blocks: 30.0,
            runs: 1.0,
            segment_pages: 1.0,
        };
        let one_run = range_scan_cost(&inputs(shape));
        let scattered = range_scan_cost(&inputs(RangeShape {
            runs: 30.0,
            ..shape
        }));
        // 29 blocks that are random instead of sequential reads.
        assert!((scattered.total - one_run.total - 29.0 * 3.0).abs() < 1e-9);
        // A short contiguous range is far below a sequential scan.
        assert!(one_run.total < 0.1 * seq_scan_cost(&inputs(shape)));
        assert!(one_run.startup < one_run.total);
    }

    #[test]
    fn no_candidate_blocks_costs_the_map_only() {
        let c = range_scan_cost(&inputs(RangeShape {
            blocks: 0.0,
            runs: 0.0,
            segment_pages: 1.0,
        }));
        assert!(c.total - c.startup < 1e-9, "{c:?}");
        assert!(c.total < 5.0);
    }

    #[test]
    fn shape_without_constants() {
        // Key-ordered: one run.
        let s = shape_from_selectivity(0.005, 1000.0, 20.0, 1.0, 1.0);
        assert_eq!((s.blocks, s.runs, s.segment_pages), (5.0, 1.0, 1.0));
        // Uncorrelated: every block its own run.
        let s = shape_from_selectivity(0.005, 1000.0, 20.0, 0.0, 1.0);
        assert_eq!((s.blocks, s.runs), (5.0, 5.0));
        let s = shape_from_selectivity(0.005, 1000.0, 20.0, -1.0, 1.0);
        assert_eq!(s.runs, 1.0);
        // Clamped: at least one block of a non-empty table, never more
        // than it has; an empty one reads none.
        assert_eq!(
            shape_from_selectivity(0.0, 1000.0, 20.0, 1.0, 1.0).blocks,
            1.0
        );
        assert_eq!(
            shape_from_selectivity(3.0, 1000.0, 20.0, 1.0, 1.0).blocks,
            1000.0
        );
        let empty = shape_from_selectivity(0.5, 0.0, 0.0, 1.0, 11.0);
        assert_eq!(
            (empty.blocks, empty.runs, empty.segment_pages),
            (0.0, 0.0, 1.0)
        );
    }

    #[test]
    fn overlapping_zones_floor_the_shape() {
        // One key on a table whose zones overlap (a point lookup reads 11
        // blocks): 11 scattered blocks, not the one its selectivity says.
        let s = shape_from_selectivity(1e-6, 20_000.0, 50.0, 0.0, 11.0);
        assert_eq!((s.blocks, s.runs), (11.0, 11.0));
        // Even a key-ordered correlation cannot join them into one run.
        let s = shape_from_selectivity(1e-6, 20_000.0, 50.0, 1.0, 11.0);
        assert_eq!((s.blocks, s.runs), (11.0, 11.0));
        // A range wider than the floor keeps its own shape.
        let s = shape_from_selectivity(0.01, 20_000.0, 50.0, 1.0, 11.0);
        assert_eq!((s.blocks, s.runs), (200.0, 11.0));
        // Never more than the table.
        let s = shape_from_selectivity(1e-6, 4.0, 1.0, 0.0, 11.0);
        assert_eq!((s.blocks, s.runs), (4.0, 4.0));
        // The floor makes a point lookup cost what reading its blocks costs.
        let inputs = |shape| RangeCostInputs {
            shape,
            heap_pages: 20_000.0,
            heap_tuples: 1_000_000.0,
            rows: 1.0,
            seq_page_cost: 1.0,
            random_page_cost: 4.0,
            cpu_tuple_cost: 0.01,
            cpu_operator_cost: 0.0025,
            qual_startup: 0.0,
            qual_per_tuple: 0.0025,
            target_startup: 0.0,
            target_per_tuple: 0.0,
        };
        let one = range_scan_cost(&inputs(shape_from_selectivity(
            1e-6, 20_000.0, 50.0, 0.0, 1.0,
        )));
        let eleven = range_scan_cost(&inputs(shape_from_selectivity(
            1e-6, 20_000.0, 50.0, 0.0, 11.0,
        )));
        assert!(eleven.total > one.total + 10.0 * 3.0, "{one:?} {eleven:?}");
    }
}
