//! Candidate-block estimates for the planner (`amcostestimate`) of
//! `clustered_pk_index`: how many heap blocks a scan for an equality, a
//! range, or a range with an unbounded side will have to read.
//!
//! The model works from per-segment summaries ([`SegSummary`]) that `am/`
//! builds from the segment pages the condition touches, so estimating costs
//! a few page reads, not a scan of the map. Within a segment, keys and zones
//! are assumed spread uniformly over the segment's occupied key extent; the
//! expected number of zones a window of `w` keys meets is then
//! `sum(zone widths + w - 1) / extent`. That single formula gives ~1 block for
//! a point lookup in a well-clustered segment (zones tile the extent) and
//! every block of a fragmented one (each zone spans the extent), which is
//! exactly the difference the planner has to see.

use super::layout::{Listing, SegPage, Segment};

/// What the cost model needs from one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegSummary {
    /// Lowest and highest key any listing covers, clipped to the segment's
    /// range; `None` when the segment lists no block.
    pub extent: Option<(i64, i64)>,
    pub row_count: f64,
    pub nlistings: f64,
    /// Sum over listings of the zone width in keys (clipped to `extent`).
    pub zone_width_sum: f64,
}

impl SegSummary {
    /// `hi` is the segment's exclusive upper bound if known
    /// ([`SegPage::segment_hi`]); it keeps a saturated zone from stretching
    /// the extent to `i64::MAX`.
    pub fn of(seg: &Segment, hi: Option<i64>) -> SegSummary {
        let cap = hi.map_or(i64::MAX, |h| h.saturating_sub(1));
        let lo = seg.listings.iter().map(|l| l.zmin).min();
        let top = seg.listings.iter().map(Listing::zmax).max();
        let extent = match (lo, top) {
            (Some(a), Some(b)) => Some((a.max(seg.lo), b.min(cap).max(a.max(seg.lo)))),
            _ => None,
        };
        let zone_width_sum = match extent {
            Some((a, b)) => seg
                .listings
                .iter()
                .map(|l| {
                    let z0 = l.zmin.max(a);
                    let z1 = l.zmax().min(b);
                    if z1 < z0 {
                        0.0
                    } else {
                        (z1 as i128 - z0 as i128 + 1) as f64
                    }
                })
                .sum(),
            None => 0.0,
        };
        SegSummary {
            extent,
            row_count: seg.row_count.max(0) as f64,
            nlistings: seg.listings.len() as f64,
            zone_width_sum,
        }
    }
}

/// Summaries of the segments of one page. `page_hi` is the next page's `lo`.
pub fn summarize(page: &SegPage, page_hi: Option<i64>) -> Vec<SegSummary> {
    (0..page.segs.len())
        .map(|i| SegSummary::of(&page.segs[i], page.segment_hi(i, page_hi)))
        .collect()
}

/// The index condition, bounds inclusive; `None` is an unbounded side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBound {
    Eq(i64),
    Range { lo: Option<i64>, hi: Option<i64> },
}

impl KeyBound {
    /// The closed interval `[lo, hi]`; `lo > hi` means an empty condition.
    pub fn closed(&self) -> (i64, i64) {
        match *self {
            KeyBound::Eq(k) => (k, k),
            KeyBound::Range { lo, hi } => (lo.unwrap_or(i64::MIN), hi.unwrap_or(i64::MAX)),
        }
    }
}

/// Expected work of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// Heap blocks read (blocks listed by two neighbouring segments count
    /// twice: a small, safe over-estimate).
    pub heap_blocks: f64,
    /// Rows in the key range (before recheck of other quals).
    pub rows: f64,
    /// Segments the range meets.
    pub segments: usize,
}

impl Estimate {
    /// Extrapolates an estimate made on a sample of the touched pages to
    /// all of them (`factor` = touched pages / sampled pages).
    pub fn scaled(self, factor: f64) -> Estimate {
        Estimate {
            heap_blocks: self.heap_blocks * factor,
            rows: self.rows * factor,
            segments: (self.segments as f64 * factor).round() as usize,
        }
    }

    /// A scan never reads more blocks than the heap has.
    pub fn capped(self, heap_pages: f64) -> Estimate {
        Estimate {
            heap_blocks: self.heap_blocks.min(heap_pages.max(0.0)),
            ..self
        }
    }
}

/// Expected candidate blocks and rows for `bound` over the given segments
/// (normally those of the pages the bound touches; others contribute 0).
pub fn estimate(segs: &[SegSummary], bound: KeyBound) -> Estimate {
    let (lo, hi) = bound.closed();
    let mut est = Estimate::default();
    if lo > hi {
        return est;
    }
    for s in segs {
        let Some((a, b)) = s.extent else { continue };
        let (qa, qb) = (lo.max(a), hi.min(b));
        if qa > qb {
            continue;
        }
        est.segments += 1;
        let extent = (b as i128 - a as i128 + 1) as f64;
        let window = (qb as i128 - qa as i128 + 1) as f64;
        est.rows += s.row_count * (window / extent);
        let expected = (s.zone_width_sum + s.nlistings * (window - 1.0)) / extent;
        // The window is inside the extent, so at least one zone should meet
        // it unless it falls in a gap; the planner prefers the pessimistic 1.
        est.heap_blocks += expected.clamp(s.nlistings.min(1.0), s.nlistings);
    }
    est
}

/// Exact number of distinct candidate blocks of one page for `bound`, for
/// when the page is at hand anyway (point lookups touch one page).
pub fn exact_candidates(page: &SegPage, bound: KeyBound) -> usize {
    let (lo, hi) = bound.closed();
    if lo > hi {
        return 0;
    }
    page.candidates(lo, hi).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::segmap::{build_pages, SegMap};

    fn map_summaries(map: &SegMap) -> Vec<SegSummary> {
        (0..map.pages.len())
            .flat_map(|i| summarize(&map.pages[i], map.page_hi(i)))
            .collect()
    }

    fn clustered() -> SegMap {
        // 100k keys, 55 per block, in key order: the ideal layout.
        SegMap::from_build(
            build_pages((0..100_000i64).map(|k| (k, (k / 55) as u32)), 1024, 0.9).unwrap(),
        )
    }

    #[test]
    fn clustered_equality_is_about_one_block() {
        let map = clustered();
        let s = map_summaries(&map);
        for k in [0, 777, 50_000, 99_999] {
            let e = estimate(&s, KeyBound::Eq(k));
            assert!((1.0..=1.1).contains(&e.heap_blocks), "{e:?}");
            assert_eq!(e.segments, 1);
            assert!(e.rows > 0.5 && e.rows < 1.5, "{e:?}");
        }
        assert_eq!(estimate(&s, KeyBound::Eq(-5)).heap_blocks, 0.0);
        assert_eq!(estimate(&s, KeyBound::Eq(100_000)).heap_blocks, 0.0);
    }

    #[test]
    fn clustered_range_tracks_exact_count() {
        let map = clustered();
        let s = map_summaries(&map);
        for (lo, hi) in [
            (1000, 1999),
            (0, 99_999),
            (12_345, 12_400),
            (50_000, 80_000),
        ] {
            let e = estimate(
                &s,
                KeyBound::Range {
                    lo: Some(lo),
                    hi: Some(hi),
                },
            );
            let exact = map.candidates(lo, hi).len() as f64;
            assert!(
                e.heap_blocks >= exact * 0.9 && e.heap_blocks <= exact * 1.3 + 2.0,
                "{lo}..{hi}: estimate {e:?} exact {exact}"
            );
            let rows = (hi - lo + 1) as f64;
            assert!((e.rows - rows).abs() <= rows * 0.01 + 1.0, "{e:?}");
        }
    }

    #[test]
    fn unbounded_sides() {
        let map = clustered();
        let s = map_summaries(&map);
        let below = estimate(
            &s,
            KeyBound::Range {
                lo: None,
                hi: Some(5_499),
            },
        );
        assert!((100.0..=115.0).contains(&below.heap_blocks), "{below:?}");
        let above = estimate(
            &s,
            KeyBound::Range {
                lo: Some(94_500),
                hi: None,
            },
        );
        assert!((100.0..=115.0).contains(&above.heap_blocks), "{above:?}");
        let all = estimate(&s, KeyBound::Range { lo: None, hi: None });
        let blocks = 100_000f64 / 55.0;
        assert!(all.heap_blocks >= blocks && all.heap_blocks < blocks * 1.1);
        assert!((all.rows - 100_000.0).abs() < 1.0);
        let empty = estimate(
            &s,
            KeyBound::Range {
                lo: Some(10),
                hi: Some(9),
            },
        );
        assert_eq!(empty, Estimate::default());
    }

    #[test]
    fn fragmented_segment_reads_every_block() {
        // Each block holds keys from the whole segment range.
        let mut seg = Segment::new(i64::MIN, 1, 0);
        seg.row_count = 2000;
        seg.listings = (0..40u32)
            .map(|b| Listing::from_bounds(b as i64, 1000 + b as i64, b))
            .collect();
        let s = [SegSummary::of(&seg, None)];
        let e = estimate(&s, KeyBound::Eq(500));
        assert!(e.heap_blocks > 38.0 && e.heap_blocks <= 40.0, "{e:?}");
        let page = SegPage { segs: vec![seg] };
        assert_eq!(exact_candidates(&page, KeyBound::Eq(500)), 40);
        assert_eq!(exact_candidates(&page, KeyBound::Eq(2000)), 0);
    }

    #[test]
    fn saturated_zone_bounded_by_segment() {
        let mut seg = Segment::new(0, 1, 0);
        seg.row_count = 10;
        seg.listings = vec![Listing::from_bounds(0, i64::MAX, 1)];
        let s = SegSummary::of(&seg, Some(100));
        assert_eq!(s.extent, Some((0, 99)));
        assert_eq!(s.zone_width_sum, 100.0);
        let e = estimate(&[s], KeyBound::Eq(50));
        assert_eq!(e.heap_blocks, 1.0);
        assert!((e.rows - 0.1).abs() < 1e-9);
        let none = SegSummary::of(&Segment::new(0, 2, 0), None);
        assert_eq!(none.extent, None);
        assert_eq!(estimate(&[none], KeyBound::Eq(0)), Estimate::default());
    }

    #[test]
    fn scaled_and_capped() {
        let e = Estimate {
            heap_blocks: 10.0,
            rows: 100.0,
            segments: 2,
        };
        let s = e.scaled(3.0);
        assert_eq!((s.heap_blocks, s.rows, s.segments), (30.0, 300.0, 6));
        assert_eq!(s.capped(12.0).heap_blocks, 12.0);
    }
}
