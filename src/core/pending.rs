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

use std::collections::BTreeMap;

/// Pending rows of one index: by segment id, a key of that segment (to find
/// it again at flush time) and the number of rows.
pub type IndexPending = BTreeMap<i64, (i64, i64)>;

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
            .or_insert((key, 0));
        e.1 = e.1.saturating_add(1);
    }

    /// Rows pending for segment `seg_id` of `index`.
    pub fn rows(&self, index: u32, seg_id: i64) -> i64 {
        self.by_index
            .get(&index)
            .and_then(|m| m.get(&seg_id))
            .map_or(0, |e| e.1)
    }

    /// Drops what is pending for segment `seg_id` of `index`: a split that
    /// recounted the segment from the heap already counted those rows.
    pub fn forget_segment(&mut self, index: u32, seg_id: i64) {
        if let Some(m) = self.by_index.get_mut(&index) {
            m.remove(&seg_id);
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
    let mut out: BTreeMap<usize, Vec<(i64, i64)>> = BTreeMap::new();
    for &(key, rows) in pending.values() {
        out.entry(page_of(key)).or_default().push((key, rows));
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
        p.forget_segment(10, 2);
        p.forget_segment(99, 2);
        assert_eq!(p.rows(10, 2), 0);
        let all = p.take();
        assert!(p.is_empty());
        assert_eq!(all[&10][&1], (100, 2));
        assert_eq!(all[&11][&1], (5, 1));
        p.add(10, 1, 1);
        p.add(11, 1, 1);
        p.forget_index(10);
        assert_eq!(p.rows(10, 1), 0);
        assert_eq!(p.rows(11, 1), 1);
        p.clear();
        assert_eq!(p.rows(11, 1), 0);
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
