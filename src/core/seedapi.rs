//! Pure helpers behind the seed's segment-map SQL surface
//! (`segment_map`, `segment_map_stats`, `segment_map_count_repack_due`, ...):
//! flattening the map's pages into rows with inclusive key ranges, detecting
//! fragmented segments, and summarising the map.

use super::layout::{Listing, SegPage, Segment};

/// One segment as the seed's `segment_map` row sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRow {
    pub id: i64,
    /// Lowest key the segment owns (`i64::MIN` for the first segment).
    pub minor_from: i64,
    /// Highest key the segment owns (next segment's `lo - 1`; `i64::MAX`
    /// for the last one).
    pub minor_to: i64,
    pub row_count: i64,
    pub split_generation: u32,
    pub last_split_at: i64,
    pub updated_at: i64,
    pub listings: usize,
    pub fragmented: bool,
}

/// A segment is fragmented when two of its listings' zones overlap: a key
/// range then needs more than one heap block per key.
pub fn is_fragmented(listings: &[Listing]) -> bool {
    zones_overlap(listings.iter().map(|l| (l.zmin, l.zmax())).collect())
}

/// Whether two of the inclusive key ranges `(min, max)` overlap.
pub fn zones_overlap(mut v: Vec<(i64, i64)>) -> bool {
    v.sort_unstable();
    let mut reach: Option<i64> = None;
    for (zmin, zmax) in v {
        if reach.is_some_and(|r| zmin <= r) {
            return true;
        }
        reach = Some(reach.map_or(zmax, |r| r.max(zmax)));
    }
    false
}

/// Every segment of the map in key order (pages in directory order).
pub fn segment_rows(pages: &[SegPage]) -> Vec<SegmentRow> {
    let segs: Vec<&Segment> = pages.iter().flat_map(|p| &p.segs).collect();
    segs.iter()
        .enumerate()
        .map(|(i, s)| SegmentRow {
            id: s.id,
            minor_from: s.lo,
            minor_to: segs.get(i + 1).map_or(i64::MAX, |n| n.lo.saturating_sub(1)),
            row_count: s.row_count,
            split_generation: s.split_generation,
            last_split_at: s.last_split_at,
            updated_at: s.updated_at,
            listings: s.listings.len(),
            fragmented: is_fragmented(&s.listings),
        })
        .collect()
}

/// Whether a segment is due for repack: fragmented and unchanged for more
/// than `interval_secs` seconds (timestamps in microseconds, PostgreSQL's
/// TimestampTz). An interval of 0 disables the heuristic.
pub fn repack_due(row: &SegmentRow, now: i64, interval_secs: i32) -> bool {
    if interval_secs <= 0 || !row.fragmented {
        return false;
    }
    let age = now.saturating_sub(row.updated_at);
    age > i64::from(interval_secs).saturating_mul(1_000_000)
}

/// Summary of a map (`segment_map_stats`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub segment_count: i64,
    pub total_rows: i64,
    pub min_rows: i64,
    pub avg_rows: f64,
    pub max_rows: i64,
    pub listings: i64,
    pub fragmented_segments: i64,
    /// Metapage plus segment pages.
    pub index_pages: i64,
    /// Distinct heap blocks named by any listing.
    pub heap_blocks_listed: i64,
}

pub fn stats(pages: &[SegPage]) -> Stats {
    let rows = segment_rows(pages);
    let n = rows.len() as i64;
    let total: i64 = rows.iter().map(|r| r.row_count).sum();
    let mut blocks: Vec<u32> = pages
        .iter()
        .flat_map(|p| &p.segs)
        .flat_map(|s| s.listings.iter().map(|l| l.blkno))
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    Stats {
        segment_count: n,
        total_rows: total,
        min_rows: rows.iter().map(|r| r.row_count).min().unwrap_or(0),
        avg_rows: if n == 0 { 0.0 } else { total as f64 / n as f64 },
        max_rows: rows.iter().map(|r| r.row_count).max().unwrap_or(0),
        listings: rows.iter().map(|r| r.listings as i64).sum(),
        fragmented_segments: rows.iter().filter(|r| r.fragmented).count() as i64,
        index_pages: 1 + pages.len() as i64,
        heap_blocks_listed: blocks.len() as i64,
    }
}

/// The test hook behind `segment_map_rebuild_from_index(..., p_fail_after_n_rows)`:
/// a backend-local "fail after n rows" that the SQL function arms for the
/// one REINDEX it runs, and that the index build's heap-scan callback
/// (`am/index/build.rs`) consults for every row it is handed.
///
/// Pure state, no PostgreSQL symbol: arming returns a guard that disarms on
/// drop, so every way out of the SQL function (success, the injected error,
/// any other error, a panic unwinding) leaves the hook off. The hook only
/// ever fires for the index it was armed for, so no other build in the
/// backend can be affected even while it is armed.
pub mod build_fault {
    use std::cell::Cell;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct State {
        index: u32,
        fail_after: Option<i64>,
        seen: i64,
        fired: bool,
    }

    thread_local! {
        // A backend is single-threaded; const-initialised Copy data needs
        // no TLS destructor.
        static STATE: Cell<Option<State>> = const { Cell::new(None) };
    }

    /// The armed hook; dropping it disarms.
    #[must_use = "the hook is disarmed when this guard is dropped"]
    pub struct Armed(());

    /// Arms the hook for builds of `index`: count the rows their heap scan
    /// hands over and, with `fail_after = Some(n)`, refuse row n + 1 (so
    /// exactly n rows are seen when the build fails). `None` only counts.
    pub fn arm(index: u32, fail_after: Option<i64>) -> Armed {
        STATE.with(|s| {
            s.set(Some(State {
                index,
                fail_after,
                seen: 0,
                fired: false,
            }))
        });
        Armed(())
    }

    impl Armed {
        /// Rows the build scan handed over since arming.
        pub fn rows_seen(&self) -> i64 {
            STATE.with(|s| s.get().map_or(0, |st| st.seen))
        }

        /// Whether the injected failure was raised since arming.
        pub fn fired(&self) -> bool {
            STATE.with(|s| s.get().is_some_and(|st| st.fired))
        }
    }

    impl Drop for Armed {
        fn drop(&mut self) {
            STATE.with(|s| s.set(None));
        }
    }

    /// Whether a build of `index` must report its rows to `on_row`.
    pub fn watching(index: u32) -> bool {
        STATE.with(|s| s.get().is_some_and(|st| st.index == index))
    }

    /// One row handed to the build of `index`. Returns `Some(n)` when the
    /// build must fail now, before taking this row: n rows were seen.
    pub fn on_row(index: u32) -> Option<i64> {
        STATE.with(|s| {
            let mut st = s.get()?;
            if st.index != index {
                return None;
            }
            if st.fail_after.is_some_and(|n| st.seen >= n) {
                st.fired = true;
                s.set(Some(st));
                return Some(st.seen);
            }
            st.seen += 1;
            s.set(Some(st));
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(segs: Vec<Segment>) -> SegPage {
        SegPage { segs }
    }

    fn seg(lo: i64, id: i64, rows: i64, listings: Vec<Listing>) -> Segment {
        let mut s = Segment::new(lo, id, 7);
        s.row_count = rows;
        s.listings = listings;
        s
    }

    #[test]
    fn rows_have_inclusive_ranges_across_pages() {
        let pages = vec![
            page(vec![
                seg(i64::MIN, 1, 10, vec![Listing::from_bounds(0, 9, 0)]),
                seg(10, 3, 5, vec![]),
            ]),
            page(vec![seg(
                100,
                2,
                1,
                vec![Listing::from_bounds(100, 100, 4)],
            )]),
        ];
        let r = segment_rows(&pages);
        let ranges: Vec<(i64, i64, i64)> =
            r.iter().map(|r| (r.id, r.minor_from, r.minor_to)).collect();
        assert_eq!(
            ranges,
            vec![(1, i64::MIN, 9), (3, 10, 99), (2, 100, i64::MAX)]
        );
        let st = stats(&pages);
        assert_eq!(st.segment_count, 3);
        assert_eq!(st.total_rows, 16);
        assert_eq!((st.min_rows, st.max_rows), (1, 10));
        assert!((st.avg_rows - 16.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            (st.listings, st.index_pages, st.heap_blocks_listed),
            (2, 3, 2)
        );
        assert_eq!(st.fragmented_segments, 0);
    }

    #[test]
    fn fragmentation_and_repack_due() {
        let disjoint = [
            Listing::from_bounds(0, 9, 1),
            Listing::from_bounds(10, 19, 2),
        ];
        let overlap = [
            Listing::from_bounds(0, 9, 1),
            Listing::from_bounds(9, 19, 2),
        ];
        let nested = [
            Listing::from_bounds(0, 100, 1),
            Listing::from_bounds(5, 6, 2),
            Listing::from_bounds(50, 60, 3),
        ];
        assert!(!is_fragmented(&disjoint));
        assert!(is_fragmented(&overlap));
        assert!(is_fragmented(&nested));
        assert!(!is_fragmented(&[]));
        let pages = vec![page(vec![seg(i64::MIN, 1, 2, overlap.to_vec())])];
        let row = segment_rows(&pages)[0];
        assert!(row.fragmented);
        // updated_at = 7 us; interval 1 s.
        assert!(!repack_due(&row, 7 + 1_000_000, 1));
        assert!(repack_due(&row, 8 + 1_000_000, 1));
        assert!(!repack_due(&row, i64::MAX, 0), "0 = never due");
        let calm = segment_rows(&[page(vec![seg(i64::MIN, 1, 2, disjoint.to_vec())])])[0];
        assert!(!repack_due(&calm, i64::MAX, 1));
        assert_eq!(stats(&pages).fragmented_segments, 1);
        let empty = stats(&[]);
        assert_eq!((empty.segment_count, empty.avg_rows), (0, 0.0));
    }

    #[test]
    fn build_fault_fires_after_n_rows_and_disarms() {
        use super::build_fault::{arm, on_row, watching};
        assert!(!watching(7));
        assert_eq!(on_row(7), None, "unarmed: never fires");
        {
            let a = arm(7, Some(3));
            assert!(watching(7) && !watching(8));
            assert_eq!(on_row(8), None, "another index is never affected");
            assert_eq!((on_row(7), on_row(7), on_row(7)), (None, None, None));
            assert!(!a.fired());
            assert_eq!(on_row(7), Some(3), "row 4 fails: 3 rows seen");
            assert!(a.fired());
            assert_eq!(a.rows_seen(), 3);
        }
        assert!(!watching(7), "dropping the guard disarms");
        assert_eq!(on_row(7), None);
        let a = arm(7, Some(0));
        assert_eq!(on_row(7), Some(0), "n = 0: the first row fails");
        drop(a);
        let a = arm(7, None);
        for _ in 0..10 {
            assert_eq!(on_row(7), None, "None only counts");
        }
        assert_eq!((a.rows_seen(), a.fired()), (10, false));
        drop(a);
        // A panic unwinding through the owner disarms too.
        let r = std::panic::catch_unwind(|| {
            let _a = arm(9, Some(1));
            panic!("boom");
        });
        assert!(r.is_err());
        assert!(!watching(9));
    }
}
