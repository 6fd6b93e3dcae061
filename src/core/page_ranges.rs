//! The segment pages a backend's placements found, by the key range the
//! directory gave each, for one index (its OID and file). A key in one of
//! those ranges reads that page directly, without the metapage: a row's
//! descent read and locked the metapage (and a directory page at depth 1)
//! only to learn which segment page to lock next.
//!
//! A remembered range may be stale (the page split since, and keys moved to
//! a new page). That needs no invalidation: the page itself says whether it
//! owns the key (`segmap::FoundSeg::inside`), and when it cannot, the caller
//! descends the map and notes the range it found, which replaces the stale
//! ones. Segment pages are never freed or reused within one relation file,
//! and a new file (TRUNCATE, REINDEX) changes the identity.

/// An index and its current file.
pub type Identity = (u32, u32);

#[derive(Debug, Default)]
pub struct PageRanges {
    identity: Identity,
    /// Disjoint, ordered by `lo`: `(lo, hi, blkno)`, `hi` None = unbounded.
    ranges: Vec<(i64, Option<i64>, u32)>,
}

impl PageRanges {
    /// Ranges kept at most; a map with more segment pages than this starts
    /// over when it fills (about 100 million rows at the default
    /// split_threshold).
    pub const MAX: usize = 8192;

    /// The segment page remembered for `key` of the index `identity`.
    pub fn lookup(&self, identity: Identity, key: i64) -> Option<u32> {
        if identity != self.identity {
            return None;
        }
        let i = self.ranges.partition_point(|r| r.0 <= key).checked_sub(1)?;
        let (_, hi, blkno) = self.ranges[i];
        hi.is_none_or(|h| key < h).then_some(blkno)
    }

    /// Remembers that the directory of `identity` gave keys `lo..hi` to
    /// segment page `blkno`, replacing what overlapped (older views of the
    /// same keys) and everything of another identity.
    pub fn note(&mut self, identity: Identity, lo: i64, hi: Option<i64>, blkno: u32) {
        if identity != self.identity || self.ranges.len() >= Self::MAX {
            self.identity = identity;
            self.ranges.clear();
        }
        // Disjoint and ordered: the ranges ending at or below `lo` come
        // first, those starting at or above `hi` last; what lies between
        // overlaps [lo, hi).
        let start = self
            .ranges
            .partition_point(|r| r.1.is_some_and(|b| b <= lo));
        let end = match hi {
            Some(h) => self.ranges.partition_point(|r| r.0 < h).max(start),
            None => self.ranges.len(),
        };
        self.ranges.splice(start..end, [(lo, hi, blkno)]);
    }

    /// The index whose pages are remembered (0: none).
    pub fn index(&self) -> u32 {
        self.identity.0
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IX: Identity = (16_400, 16_401);

    #[test]
    fn finds_the_page_whose_range_holds_the_key() {
        let mut p = PageRanges::default();
        assert_eq!(p.lookup(IX, 5), None);
        p.note(IX, i64::MIN, Some(100), 1);
        p.note(IX, 200, None, 3);
        assert_eq!(p.lookup(IX, i64::MIN), Some(1));
        assert_eq!(p.lookup(IX, 99), Some(1));
        // 100..200 was never seen.
        assert_eq!(p.lookup(IX, 100), None);
        assert_eq!(p.lookup(IX, 199), None);
        assert_eq!(p.lookup(IX, 200), Some(3));
        assert_eq!(p.lookup(IX, i64::MAX), Some(3));
        p.note(IX, 100, Some(200), 2);
        assert_eq!(p.lookup(IX, 150), Some(2));
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn a_newer_range_replaces_what_it_overlaps() {
        let mut p = PageRanges::default();
        p.note(IX, 0, None, 1);
        // Page 1 split: 500.. moved to page 7; the old view goes.
        p.note(IX, 500, None, 7);
        assert_eq!(p.lookup(IX, 600), Some(7));
        assert_eq!(p.lookup(IX, 10), None);
        p.note(IX, 0, Some(500), 1);
        assert_eq!(p.lookup(IX, 10), Some(1));
        assert_eq!(p.lookup(IX, 499), Some(1));
        assert_eq!(p.len(), 2);
        // A wider range swallows both.
        p.note(IX, -5, None, 9);
        assert_eq!(p.len(), 1);
        assert_eq!(p.lookup(IX, 499), Some(9));
        assert_eq!(p.lookup(IX, -6), None);
    }

    #[test]
    fn another_file_or_index_starts_over() {
        let mut p = PageRanges::default();
        p.note(IX, 0, None, 1);
        let truncated = (IX.0, IX.1 + 1);
        assert_eq!(p.lookup(truncated, 5), None);
        p.note(truncated, 0, None, 2);
        assert_eq!(p.lookup(IX, 5), None);
        assert_eq!(p.lookup(truncated, 5), Some(2));
        assert_eq!(p.index(), IX.0);
    }

    #[test]
    fn stays_bounded() {
        let mut p = PageRanges::default();
        for i in 0..(PageRanges::MAX as i64 + 10) {
            p.note(IX, i * 10, Some(i * 10 + 10), i as u32);
        }
        assert!(p.len() <= PageRanges::MAX);
        assert!(!p.is_empty());
    }
}
