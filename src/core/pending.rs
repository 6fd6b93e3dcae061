//! Row counts an inserting transaction still owes the segment map.
//!
//! An insert whose key its block's zone already covers changes nothing the
//! map's readers depend on for correctness: only the segment's row count
//! (an estimate that drives splits and statistics) grows. Writing a
//! GenericXLog record over a whole segment page for that one counter was
//! the largest cost of an insert, so the backend keeps such counts here and
//! adds them to the map once per segment page when the transaction commits
//! (and drops them when it aborts: the rows never existed for anyone).
//! Placement and the split checks add the pending counts of a segment to
//! the one they read from the page, so decisions within the transaction
//! see every row it inserted.

use super::fasthash::IdBuild;
use std::collections::{BTreeMap, HashMap};

/// Rows one transaction owes one segment: how many, and the span of their
/// keys (`min` also finds the segment again at flush time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegPending {
    pub min: i64,
    pub max: i64,
    pub rows: i64,
}

/// Pending rows of one index, by segment id (looked up for every inserted
/// row; the order is the flush's business, see [`group_by_page`]).
pub type IndexPending = HashMap<i64, SegPending, IdBuild>;

/// Pending row counts of this backend's transaction, by index OID.
#[derive(Debug, Default)]
pub struct PendingRows {
    by_index: BTreeMap<u32, IndexPending>,
}

impl PendingRows {
    /// Notes one row with `key` in segment `seg_id` of index `index`.
    pub fn add(&mut self, index: u32, seg_id: i64, key: i64) {
        let e = self
            .by_index
            .entry(index)
            .or_default()
            .entry(seg_id)
            .or_insert(SegPending {
                min: key,
                max: key,
                rows: 0,
            });
        e.min = e.min.min(key);
        e.max = e.max.max(key);
        e.rows = e.rows.saturating_add(1);
    }

    /// Rows pending for segment `seg_id` of `index`.
    pub fn rows(&self, index: u32, seg_id: i64) -> i64 {
        self.by_index
            .get(&index)
            .and_then(|m| m.get(&seg_id))
            .map_or(0, |e| e.rows)
    }

    /// A split that divides segment `seg_id`, whose keys are now `lo..hi`
    /// (`hi` exclusive, None: unbounded), takes over what is pending for it
    /// and returns how many rows that is -- but only when every pending key
    /// still lies in that range. Another backend may have split the segment
    /// since these rows were noted, moving some of them to a segment with
    /// another id; those stay pending (and are added at commit by key), so
    /// that no row is counted by two segments.
    pub fn take_segment_within(
        &mut self,
        index: u32,
        seg_id: i64,
        lo: i64,
        hi: Option<i64>,
    ) -> i64 {
        let Some(m) = self.by_index.get_mut(&index) else {
            return 0;
        };
        match m.get(&seg_id) {
            Some(e) if e.min >= lo && hi.is_none_or(|h| e.max < h) => {
                let rows = e.rows;
                m.remove(&seg_id);
                rows
            }
            _ => 0,
        }
    }

    /// Drops everything pending for `index`: a build (REINDEX, TRUNCATE)
    /// counted the table's rows from the heap, this transaction's included.
    pub fn forget_index(&mut self, index: u32) {
        self.by_index.remove(&index);
    }

    pub fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    /// Takes everything pending, leaving nothing.
    pub fn take(&mut self) -> BTreeMap<u32, IndexPending> {
        std::mem::take(&mut self.by_index)
    }

    /// Drops everything (transaction abort).
    pub fn clear(&mut self) {
        self.by_index.clear();
    }
}

/// Groups the pending entries of one index by the segment page that owns
/// their key now: `page_of(key)` gives the page's position in the
/// directory. Returns, per page position, the `(key, rows)` to add.
pub fn group_by_page(
    pending: &IndexPending,
    mut page_of: impl FnMut(i64) -> usize,
) -> BTreeMap<usize, Vec<(i64, i64)>> {
    // One sort by key (a commit flushes hundreds of entries): pages follow
    // key order, so each page's entries come out as one sorted run.
    let mut all: Vec<(i64, i64)> = pending.values().map(|e| (e.min, e.rows)).collect();
    all.sort_unstable();
    let mut out: BTreeMap<usize, Vec<(i64, i64)>> = BTreeMap::new();
    for (key, rows) in all {
        let page = page_of(key);
        match out.last_entry() {
            Some(mut last) if *last.key() == page => last.get_mut().push((key, rows)),
            _ => out.entry(page).or_default().push((key, rows)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accumulate_per_index_and_segment() {
        let mut p = PendingRows::default();
        assert!(p.is_empty());
        p.add(10, 1, 100);
        p.add(10, 1, 150);
        p.add(10, 2, 900);
        p.add(11, 1, 5);
        assert_eq!(p.rows(10, 1), 2);
        assert_eq!(p.rows(10, 2), 1);
        assert_eq!(p.rows(11, 1), 1);
        assert_eq!(p.rows(12, 1), 0);
        assert_eq!(p.take_segment_within(10, 2, 0, None), 1);
        assert_eq!(p.take_segment_within(99, 2, 0, None), 0);
        assert_eq!(p.rows(10, 2), 0);
        let all = p.take();
        assert!(p.is_empty());
        assert_eq!(
            all[&10][&1],
            SegPending {
                min: 100,
                max: 150,
                rows: 2
            }
        );
        assert_eq!(all[&11][&1].rows, 1);
        p.add(10, 1, 1);
        p.add(11, 1, 1);
        p.forget_index(10);
        assert_eq!(p.rows(10, 1), 0);
        assert_eq!(p.rows(11, 1), 1);
        p.clear();
        assert_eq!(p.rows(11, 1), 0);
    }

    #[test]
    fn a_split_takes_only_rows_still_in_its_range() {
        let mut p = PendingRows::default();
        p.add(1, 7, 100);
        p.add(1, 7, 300);
        // Someone else split segment 7 at 200: key 300 now lives in
        // another segment, so nothing is taken.
        assert_eq!(p.take_segment_within(1, 7, 0, Some(200)), 0);
        assert_eq!(p.rows(1, 7), 2);
        // Bounds: lo inclusive, hi exclusive.
        assert_eq!(p.take_segment_within(1, 7, 101, Some(1000)), 0);
        assert_eq!(p.take_segment_within(1, 7, 100, Some(300)), 0);
        assert_eq!(p.take_segment_within(1, 7, 100, Some(301)), 2);
        assert_eq!(p.rows(1, 7), 0);
    }

    #[test]
    fn grouping_follows_the_directory_at_flush_time() {
        let mut p = PendingRows::default();
        p.add(1, 7, 10);
        p.add(1, 8, 500);
        p.add(1, 8, 501);
        p.add(1, 9, 2000);
        let all = p.take();
        let g = group_by_page(&all[&1], |k| if k < 1000 { 0 } else { 1 });
        assert_eq!(g[&0], vec![(10, 1), (500, 2)]);
        assert_eq!(g[&1], vec![(2000, 1)]);
    }
}
