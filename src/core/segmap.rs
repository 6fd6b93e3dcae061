//! The segment map as a pure in-memory model: lookups, insert recording,
//! segment and page splits, bulk build, VACUUM tightening and verification.
//!
//! `am/` decodes a page with [`crate::core::layout`], calls one of these
//! functions under the right buffer lock, and encodes the page back. Every
//! operation here preserves THE INVARIANT: every heap tuple with key k lives
//! in a block that the segment owning k lists with a zone containing k.
//! Zones only ever get wider, except in [`tighten`], whose caller must
//! supply every key physically present in the block.

use std::collections::HashMap;
use std::fmt;
use std::mem::offset_of;

use super::layout::{
    get_i64, get_u16, get_u32, slot_area, DirEntry, LayoutError, Listing, Meta, SegHeader, SegPage,
    SegPageHeader, SegPageView, Segment, CONTENT_SIZE,
};
use super::placement::Listed;
// The in-place writers (the references the WAL deltas are tested against)
// are test-only.
#[cfg(test)]
use super::layout::{put_u16, put_u32};

/// Index of the directory entry (segment page) responsible for `key`.
/// `dir` must be sorted by `lo` with `dir[0].lo == i64::MIN`.
pub fn find_page(dir: &[DirEntry], key: i64) -> usize {
    dir.partition_point(|d| d.lo <= key).saturating_sub(1)
}

/// Outcome of [`SegPage::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The zone already covered the key; only counters changed.
    Unchanged,
    /// An existing listing's zone grew to cover the key.
    Widened,
    /// The block was not listed for this segment and now is.
    AddedListing,
    /// No room for one more listing: nothing changed. Split the page
    /// (see [`SegMap::split_page`] for the recipe), then retry.
    NeedsSpace,
}

/// Why a segment split was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    NoSuchSegment,
    /// `at_key` must satisfy `lo < at_key < hi` of the segment.
    KeyOutOfRange,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::NoSuchSegment => write!(f, "no such segment"),
            SplitError::KeyOutOfRange => write!(f, "split key outside the segment's key range"),
        }
    }
}

impl std::error::Error for SplitError {}

/// A tuple the map does not account for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub key: i64,
    pub blkno: u32,
    pub segment_id: i64,
    pub kind: ViolationKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// The owning segment has no listing for the block.
    NotListed,
    /// The block is listed but its zone misses the key.
    OutsideZone { zmin: i64, zmax: i64 },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ViolationKind::NotListed => write!(
                f,
                "key {} in block {} but segment {} does not list that block",
                self.key, self.blkno, self.segment_id
            ),
            ViolationKind::OutsideZone { zmin, zmax } => write!(
                f,
                "key {} in block {} outside the zone [{}, {}] segment {} lists",
                self.key, self.blkno, zmin, zmax, self.segment_id
            ),
        }
    }
}

impl std::error::Error for Violation {}

impl SegPage {
    /// The page of an empty index: one segment owning every key.
    pub fn new_root(id: i64, now: i64) -> SegPage {
        SegPage {
            segs: vec![Segment::new(i64::MIN, id, now)],
        }
    }

    /// Index of the segment owning `key` (the last one with `lo <= key`).
    /// Keys below the first segment go to it: the directory only routes keys
    /// `>= segs[0].lo` here.
    pub fn find_segment(&self, key: i64) -> usize {
        self.segs.partition_point(|s| s.lo <= key).saturating_sub(1)
    }

    /// Exclusive upper key bound of segment `idx`, if this page knows it
    /// (the last segment's bound is the next page's `lo`: pass it as
    /// `page_hi`, `None` for the last page).
    pub fn segment_hi(&self, idx: usize, page_hi: Option<i64>) -> Option<i64> {
        match self.segs.get(idx + 1) {
            Some(n) => Some(n.lo),
            None => page_hi,
        }
    }

    /// Listings, in segment order, of the segments meeting `[lo, hi]` whose
    /// zone meets `[lo, hi]`. Blocks may repeat across segments.
    pub fn candidate_listings(
        &self,
        lo: i64,
        hi: i64,
    ) -> impl Iterator<Item = (usize, &Listing)> + '_ {
        let first = self.find_segment(lo);
        let end = if lo > hi {
            first
        } else {
            self.segs.partition_point(|s| s.lo <= hi)
        };
        self.segs[first..end.max(first)]
            .iter()
            .enumerate()
            .flat_map(move |(i, s)| {
                s.listings
                    .iter()
                    // Sorted by zmin: nothing after the first zmin > hi.
                    .take_while(move |l| l.zmin <= hi)
                    .filter(move |l| l.zmax() >= lo)
                    .map(move |l| (first + i, l))
            })
    }

    /// Heap blocks that may hold keys in `[lo, hi]`, ascending, deduplicated
    /// within this page (the caller merges across pages).
    pub fn candidates(&self, lo: i64, hi: i64) -> std::vec::IntoIter<u32> {
        let mut v: Vec<u32> = self
            .candidate_listings(lo, hi)
            .map(|(_, l)| l.blkno)
            .collect();
        v.sort_unstable();
        v.dedup();
        v.into_iter()
    }

    /// Notes that a tuple with `key` is about to be placed in `blkno`.
    /// Must happen before the tuple can be seen.
    pub fn record(&mut self, key: i64, blkno: u32, now: i64) -> Recorded {
        self.record_rows(key, blkno, now, 1)
    }

    /// [`SegPage::record`] adding `rows` to the segment's row count: 0 for
    /// a row that moved (repack), whose old version leaves with VACUUM.
    pub fn record_rows(&mut self, key: i64, blkno: u32, now: i64, rows: i64) -> Recorded {
        if self.segs.is_empty() {
            // Only a corrupt or uninitialised page has no segment; refusing
            // to write is safer than inventing a key range.
            return Recorded::NeedsSpace;
        }
        let room = self.encoded_len() + Listing::SIZE <= CONTENT_SIZE;
        let si = self.find_segment(key);
        let seg = &mut self.segs[si];
        let outcome = match seg.listings.iter().position(|l| l.blkno == blkno) {
            Some(pos) => {
                let l = seg.listings[pos];
                if l.contains(key) {
                    Recorded::Unchanged
                } else {
                    let wider = Listing::from_bounds(l.zmin.min(key), l.zmax().max(key), blkno);
                    seg.listings.remove(pos);
                    insert_sorted(&mut seg.listings, wider);
                    Recorded::Widened
                }
            }
            None if !room => return Recorded::NeedsSpace,
            None => {
                insert_sorted(&mut seg.listings, Listing::from_bounds(key, key, blkno));
                Recorded::AddedListing
            }
        };
        seg.row_count = seg.row_count.saturating_add(rows);
        seg.updated_at = now;
        outcome
    }

    /// Splits segment `seg_idx` = `[lo, hi)` into `[lo, at_key)` (keeps its
    /// id) and `[at_key, hi)` (gets `new_id`). Each listing goes to the
    /// side(s) its zone meets, clipped to that side, so a straddling block is
    /// listed on both sides. The page may no longer fit afterwards: check
    /// [`SegPage::fits`] and [`SegPage::split_half`].
    ///
    /// For the last segment of the page `hi` is the next page's `lo`, which
    /// this page does not know: the caller must ensure `at_key` is below it.
    ///
    /// Row counts are estimated: each listing is assumed to hold an equal
    /// share of the rows, spread uniformly over its zone, so the lower side
    /// gets `row_count * mean(fraction of each zone below at_key)`. VACUUM
    /// and rebuilds restore exact counts.
    pub fn split_segment(
        &mut self,
        seg_idx: usize,
        at_key: i64,
        new_id: i64,
        now: i64,
    ) -> Result<(), SplitError> {
        let next_lo = self.segs.get(seg_idx + 1).map(|s| s.lo);
        let seg = self
            .segs
            .get_mut(seg_idx)
            .ok_or(SplitError::NoSuchSegment)?;
        if at_key <= seg.lo || next_lo.is_some_and(|n| at_key >= n) {
            return Err(SplitError::KeyOutOfRange);
        }
        let upper_hi = next_lo.map_or(i64::MAX, |n| n - 1);

        let frac_lower = if seg.listings.is_empty() {
            0.5
        } else {
            seg.listings
                .iter()
                .map(|l| fraction_below(l, at_key))
                .sum::<f64>()
                / seg.listings.len() as f64
        };
        let lower_rows = ((seg.row_count as f64) * frac_lower).round() as i64;
        let lower_rows = lower_rows.clamp(0, seg.row_count.max(0));

        let mut lower: Vec<Listing> = Vec::with_capacity(seg.listings.len());
        let mut upper: Vec<Listing> = Vec::new();
        for l in &seg.listings {
            if let Some(c) = l.clip(seg.lo, at_key - 1) {
                lower.push(c);
            }
            if let Some(c) = l.clip(at_key, upper_hi) {
                upper.push(c);
            }
        }
        lower.sort_unstable_by_key(|l| (l.zmin, l.blkno));
        upper.sort_unstable_by_key(|l| (l.zmin, l.blkno));

        let generation = seg.split_generation.saturating_add(1);
        let up = Segment {
            lo: at_key,
            id: new_id,
            row_count: seg.row_count - lower_rows,
            split_generation: generation,
            last_split_at: now,
            updated_at: now,
            listings: upper,
        };
        seg.listings = lower;
        seg.row_count = lower_rows;
        seg.split_generation = generation;
        seg.last_split_at = now;
        seg.updated_at = now;
        self.segs.insert(seg_idx + 1, up);
        Ok(())
    }

    /// Splits the page in two halves of about equal encoded size, returning
    /// `(lower, upper, upper's lo)`. `None` if the page has fewer than two
    /// segments: split the segment by key first ([`pick_split_key`]).
    pub fn split_half(&self) -> Option<(SegPage, SegPage, i64)> {
        if self.segs.len() < 2 {
            return None;
        }
        let total: usize = self.segs.iter().map(Segment::encoded_len).sum();
        let mut best = (usize::MAX, 1);
        let mut prefix = 0usize;
        for (m, s) in self.segs.iter().enumerate().take(self.segs.len() - 1) {
            prefix += s.encoded_len();
            let imbalance = (2 * prefix).abs_diff(total);
            if imbalance < best.0 {
                best = (imbalance, m + 1);
            }
        }
        let m = best.1;
        let lower = SegPage {
            segs: self.segs[..m].to_vec(),
        };
        let upper = SegPage {
            segs: self.segs[m..].to_vec(),
        };
        let new_lo = upper.segs[0].lo;
        Some((lower, upper, new_lo))
    }

    /// Checks one heap tuple against the invariant.
    pub fn check(&self, key: i64, blkno: u32) -> Result<(), Violation> {
        let Some(seg) = self.segs.get(self.find_segment(key)) else {
            return Err(Violation {
                key,
                blkno,
                segment_id: 0,
                kind: ViolationKind::NotListed,
            });
        };
        let v = |kind| Violation {
            key,
            blkno,
            segment_id: seg.id,
            kind,
        };
        match seg.listings.iter().find(|l| l.blkno == blkno) {
            None => Err(v(ViolationKind::NotListed)),
            Some(l) if !l.contains(key) => Err(v(ViolationKind::OutsideZone {
                zmin: l.zmin,
                zmax: l.zmax(),
            })),
            Some(_) => Ok(()),
        }
    }

    /// VACUUM tightening of every listing of `blkno` on this page.
    /// `keys_in_block` must hold the key of EVERY tuple physically present in
    /// the block (live, dead-but-not-removed, in-progress), and no insert may
    /// place a tuple in the block between reading those keys and applying
    /// this (hold the heap buffer lock across both), otherwise a tuple could
    /// fall outside its zone. `page_hi` is the next page's `lo`.
    pub fn tighten_block(
        &mut self,
        blkno: u32,
        keys_in_block: &[i64],
        page_hi: Option<i64>,
    ) -> TightenStats {
        let mut stats = TightenStats::default();
        for i in 0..self.segs.len() {
            let lo = self.segs[i].lo;
            let hi = self.segment_hi(i, page_hi);
            let seg = &mut self.segs[i];
            let Some(pos) = seg.listings.iter().position(|l| l.blkno == blkno) else {
                continue;
            };
            let old = seg.listings[pos];
            let mine = keys_in_block
                .iter()
                .copied()
                .filter(|&k| k >= lo && hi.is_none_or(|h| k < h));
            match tighten(&old, mine) {
                None => {
                    seg.listings.remove(pos);
                    stats.removed += 1;
                }
                Some(new) if new != old => {
                    seg.listings.remove(pos);
                    insert_sorted(&mut seg.listings, new);
                    stats.changed += 1;
                }
                Some(_) => {}
            }
        }
        stats
    }
}

/// What [`SegPage::tighten_block`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TightenStats {
    pub changed: usize,
    pub removed: usize,
}

/// Exact `[min, max]` of a block's keys, `None` if it holds none.
pub fn exact_zone(keys: impl IntoIterator<Item = i64>) -> Option<(i64, i64)> {
    keys.into_iter().fold(None, |acc, k| match acc {
        None => Some((k, k)),
        Some((a, b)) => Some((a.min(k), b.max(k))),
    })
}

/// The listing recomputed from the keys the block really holds within the
/// segment's range; `None` means the listing can go. The result is exact,
/// so it may also be wider than `listing` if the map was already wrong:
/// repairing beats preserving a violation.
pub fn tighten(listing: &Listing, keys: impl IntoIterator<Item = i64>) -> Option<Listing> {
    exact_zone(keys).map(|(a, b)| Listing::from_bounds(a, b, listing.blkno))
}

/// A split key for a segment too big for a page, chosen so the two halves'
/// listing counts (straddling listings counted on both sides) are as equal
/// as possible. `hi` is the segment's exclusive upper bound if known.
/// `None` when no key makes both halves smaller — one key value spread over
/// more blocks than a page can list.
pub fn pick_split_key(seg: &Segment, hi: Option<i64>) -> Option<i64> {
    let n = seg.listings.len();
    if n < 2 {
        return None;
    }
    let mut zmins: Vec<i64> = seg.listings.iter().map(|l| l.zmin).collect();
    let mut zmaxs: Vec<i64> = seg.listings.iter().map(Listing::zmax).collect();
    zmins.sort_unstable();
    zmaxs.sort_unstable();
    let candidates = zmins
        .iter()
        .copied()
        .chain(zmaxs.iter().filter_map(|&z| z.checked_add(1)));
    let mut best: Option<(usize, i64)> = None;
    for k in candidates {
        if k <= seg.lo || hi.is_some_and(|h| k >= h) {
            continue;
        }
        let lower = zmins.partition_point(|&z| z < k);
        let upper = n - zmaxs.partition_point(|&z| z < k);
        let worst = lower.max(upper);
        if worst < n && best.is_none_or(|(w, bk)| worst < w || (worst == w && k < bk)) {
            best = Some((worst, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Fraction of the zone's keys below `at`, for the uniform row estimate.
fn fraction_below(l: &Listing, at: i64) -> f64 {
    let zmax = l.zmax();
    if zmax < at {
        1.0
    } else if l.zmin >= at {
        0.0
    } else {
        let width = zmax as i128 - l.zmin as i128 + 1;
        (at as i128 - l.zmin as i128) as f64 / width as f64
    }
}

fn insert_sorted(listings: &mut Vec<Listing>, l: Listing) {
    let pos = listings.partition_point(|x| (x.zmin, x.blkno) < (l.zmin, l.blkno));
    listings.insert(pos, l);
}

// ---------------------------------------------------------------------------
// Bulk build.

/// Knobs of [`build_pages_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildParams {
    /// Maximum rows per segment (a run of equal keys is never cut, so a
    /// longer run makes one bigger segment).
    pub split_threshold: i32,
    /// Fraction of [`CONTENT_SIZE`] filled, leaving room for later listings.
    pub page_fill: f64,
    pub first_segment_id: i64,
    /// Block number given to the first segment page in the directory.
    pub first_blkno: u32,
    pub now: i64,
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            split_threshold: 1024,
            page_fill: 0.9,
            first_segment_id: 1,
            first_blkno: 1,
            now: 0,
        }
    }
}

/// Why a bulk build failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// Input not sorted by key.
    Unsorted { prev: i64, key: i64 },
    /// One key value lives in more blocks than one segment page can list.
    KeyRunTooLong { key: i64, blocks: usize },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Unsorted { prev, key } => {
                write!(f, "build input not sorted: key {key} after {prev}")
            }
            BuildError::KeyRunTooLong { key, blocks } => write!(
                f,
                "key {key} occurs in {blocks} heap blocks, more than one index page can list"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// [`build_pages_with`] with default ids (segments from 1, pages from
/// block 1, timestamps 0).
pub fn build_pages(
    sorted: impl IntoIterator<Item = (i64, u32)>,
    split_threshold: i32,
    page_fill: f64,
) -> Result<(Vec<SegPage>, Vec<DirEntry>), BuildError> {
    build_pages_with(
        sorted,
        &BuildParams {
            split_threshold,
            page_fill,
            ..BuildParams::default()
        },
    )
}

/// Builds the segment pages and directory from `(key, heap block)` pairs in
/// key order, in one pass. Consecutive keys form segments of at most
/// `split_threshold` rows (never cutting a run of equal keys), each with an
/// exact zone per block; pages are filled to `page_fill`.
pub fn build_pages_with(
    sorted: impl IntoIterator<Item = (i64, u32)>,
    p: &BuildParams,
) -> Result<(Vec<SegPage>, Vec<DirEntry>), BuildError> {
    let min_page = SegPage::encoded_len_of(1, SegHeader::SIZE + Listing::SIZE);
    let fill_limit = ((p.page_fill.clamp(0.0, 1.0) * CONTENT_SIZE as f64) as usize)
        .clamp(min_page, CONTENT_SIZE);
    let mut b = Builder {
        threshold: i64::from(p.split_threshold.max(1)),
        fill_limit,
        max_seg_listings: (fill_limit - SegPage::encoded_len_of(1, SegHeader::SIZE))
            / Listing::SIZE,
        now: p.now,
        next_id: p.first_segment_id,
        seg_lo: i64::MIN,
        seg_rows: 0,
        zones: Vec::new(),
        index: HashMap::new(),
        last: None,
        page: SegPage::default(),
        page_body: 0,
        pages: Vec::new(),
        any_segment: false,
    };

    let mut run_key: Option<i64> = None;
    let mut run_rows = 0i64;
    let mut run_blocks: Vec<u32> = Vec::new();
    for (key, blk) in sorted {
        match run_key {
            Some(rk) if rk == key => {
                run_rows += 1;
                if run_blocks.last() != Some(&blk) {
                    run_blocks.push(blk);
                }
                continue;
            }
            Some(rk) if key < rk => return Err(BuildError::Unsorted { prev: rk, key }),
            Some(rk) => b.add_run(rk, run_rows, &mut run_blocks)?,
            None => {}
        }
        run_key = Some(key);
        run_rows = 1;
        run_blocks.clear();
        run_blocks.push(blk);
    }
    if let Some(rk) = run_key {
        b.add_run(rk, run_rows, &mut run_blocks)?;
    }
    Ok(b.finish(p.first_blkno))
}

struct Builder {
    threshold: i64,
    fill_limit: usize,
    max_seg_listings: usize,
    now: i64,
    next_id: i64,
    // Segment being built.
    seg_lo: i64,
    seg_rows: i64,
    /// (zmin, zmax, blkno) in order of first appearance, i.e. by zmin.
    zones: Vec<(i64, i64, u32)>,
    index: HashMap<u32, usize>,
    /// Fast path: blocks mostly repeat from one key to the next.
    last: Option<(u32, usize)>,
    // Page being built.
    page: SegPage,
    /// Bytes of the headers and listings of `page`'s segments.
    page_body: usize,
    pages: Vec<SegPage>,
    any_segment: bool,
}

impl Builder {
    fn add_run(&mut self, key: i64, rows: i64, blocks: &mut Vec<u32>) -> Result<(), BuildError> {
        if blocks.len() > 1 {
            blocks.sort_unstable();
            blocks.dedup();
        }
        if blocks.len() > self.max_seg_listings {
            return Err(BuildError::KeyRunTooLong {
                key,
                blocks: blocks.len(),
            });
        }
        if self.seg_rows > 0 {
            let new_blocks = blocks
                .iter()
                .filter(|b| self.last.map(|(lb, _)| lb) != Some(**b) && !self.index.contains_key(b))
                .count();
            if self.seg_rows + rows > self.threshold
                || self.zones.len() + new_blocks > self.max_seg_listings
            {
                self.close_segment();
            }
        }
        if self.seg_rows == 0 {
            // The very first segment owns everything below the first key.
            self.seg_lo =
                if self.any_segment || !self.pages.is_empty() || !self.page.segs.is_empty() {
                    key
                } else {
                    i64::MIN
                };
        }
        for &blk in blocks.iter() {
            let idx = match self.last {
                Some((lb, li)) if lb == blk => Some(li),
                _ => self.index.get(&blk).copied(),
            };
            let idx = match idx {
                Some(i) => {
                    self.zones[i].1 = key;
                    i
                }
                None => {
                    self.index.insert(blk, self.zones.len());
                    self.zones.push((key, key, blk));
                    self.zones.len() - 1
                }
            };
            self.last = Some((blk, idx));
        }
        self.seg_rows += rows;
        Ok(())
    }

    fn close_segment(&mut self) {
        let mut listings: Vec<Listing> = self
            .zones
            .iter()
            .map(|&(a, b, blk)| Listing::from_bounds(a, b, blk))
            .collect();
        listings.sort_unstable_by_key(|l| (l.zmin, l.blkno));
        let seg = Segment {
            lo: self.seg_lo,
            id: self.next_id,
            row_count: self.seg_rows,
            split_generation: 0,
            last_split_at: 0,
            updated_at: self.now,
            listings,
        };
        self.next_id += 1;
        self.zones.clear();
        self.index.clear();
        self.last = None;
        self.seg_rows = 0;
        self.any_segment = true;
        let len = seg.encoded_len();
        let with_it = SegPage::encoded_len_of(self.page.segs.len() + 1, self.page_body + len);
        if !self.page.segs.is_empty() && with_it > self.fill_limit {
            self.pages.push(std::mem::take(&mut self.page));
            self.page_body = 0;
        }
        self.page_body += len;
        self.page.segs.push(seg);
    }

    fn finish(mut self, first_blkno: u32) -> (Vec<SegPage>, Vec<DirEntry>) {
        if self.seg_rows > 0 || !self.any_segment {
            self.close_segment();
        }
        self.pages.push(std::mem::take(&mut self.page));
        let dir = self
            .pages
            .iter()
            .enumerate()
            .map(|(i, p)| DirEntry {
                lo: if i == 0 { i64::MIN } else { p.segs[0].lo },
                blkno: first_blkno + i as u32,
                nsegs: p.segs.len() as u32,
            })
            .collect();
        (self.pages, dir)
    }
}

// ---------------------------------------------------------------------------
// Whole map.

/// Why a map-level operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// A single key value spans more blocks than a page can list.
    Unsplittable {
        key: i64,
    },
    /// The metapage directory has no room for another segment page.
    DirectoryFull,
    Split(SplitError),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Unsplittable { key } => write!(
                f,
                "segment page holding key {key} is full and cannot be split"
            ),
            MapError::DirectoryFull => write!(f, "segment directory is full"),
            MapError::Split(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MapError {}

/// The whole map in memory: directory and its pages (`pages[i]` is the page
/// of `dir[i]`). Used by tests, `verify()`-style checks and as the reference
/// recipe for what `am/` does page by page. `dir` is the flat list of
/// segment pages (what `read_all` returns at any depth); how that list is
/// stored in one or two levels, and when it grows, is modelled by
/// [`crate::core::directory::Directory`]. `split_page` keeps the one-level
/// limit so the model's tests stay small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegMap {
    pub dir: Vec<DirEntry>,
    pub pages: Vec<SegPage>,
}

impl SegMap {
    /// Map of an empty index: one page at block 1 with one segment.
    pub fn new(first_id: i64, now: i64) -> SegMap {
        SegMap {
            dir: vec![DirEntry {
                lo: i64::MIN,
                blkno: 1,
                nsegs: 1,
            }],
            pages: vec![SegPage::new_root(first_id, now)],
        }
    }

    pub fn from_build((pages, dir): (Vec<SegPage>, Vec<DirEntry>)) -> SegMap {
        SegMap { dir, pages }
    }

    pub fn nsegments(&self) -> usize {
        self.pages.iter().map(|p| p.segs.len()).sum()
    }

    /// Exclusive upper key bound of page `i`.
    pub fn page_hi(&self, i: usize) -> Option<i64> {
        self.dir.get(i + 1).map(|d| d.lo)
    }

    pub fn candidates(&self, lo: i64, hi: i64) -> Vec<u32> {
        if lo > hi {
            return Vec::new();
        }
        let first = find_page(&self.dir, lo);
        let last = find_page(&self.dir, hi);
        let mut v: Vec<u32> = (first..=last)
            .flat_map(|i| self.pages[i].candidates(lo, hi))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn check_tuple(&self, key: i64, blkno: u32) -> Result<(), Violation> {
        check_tuple(&self.dir, &self.pages, key, blkno)
    }

    /// [`SegPage::record`], splitting pages as needed. `next_id` supplies
    /// (and advances) segment ids for segments split by key.
    pub fn record(
        &mut self,
        key: i64,
        blkno: u32,
        now: i64,
        next_id: &mut i64,
    ) -> Result<Recorded, MapError> {
        loop {
            let i = find_page(&self.dir, key);
            match self.pages[i].record(key, blkno, now) {
                Recorded::NeedsSpace => self.split_page(i, next_id, now, key)?,
                r => return Ok(r),
            }
        }
    }

    /// Splits segment `seg_idx` of page `page_idx` at `at_key`, then splits
    /// pages until everything fits again.
    pub fn split_segment(
        &mut self,
        page_idx: usize,
        seg_idx: usize,
        at_key: i64,
        new_id: i64,
        now: i64,
        next_id: &mut i64,
    ) -> Result<(), MapError> {
        if self
            .page_hi(page_idx)
            .is_some_and(|h| seg_idx + 1 == self.pages[page_idx].segs.len() && at_key >= h)
        {
            return Err(MapError::Split(SplitError::KeyOutOfRange));
        }
        self.pages[page_idx]
            .split_segment(seg_idx, at_key, new_id, now)
            .map_err(MapError::Split)?;
        self.dir[page_idx].nsegs += 1;
        let mut i = page_idx;
        let mut end = page_idx + 1;
        while i < end {
            if self.pages[i].fits() {
                i += 1;
            } else {
                self.split_page(i, next_id, now, at_key)?;
                end += 1;
            }
        }
        Ok(())
    }

    /// The recipe for `NeedsSpace`: a page with several segments splits in
    /// two by bytes; a page with one segment first splits that segment at
    /// [`pick_split_key`]. The new page gets the next free block number.
    pub fn split_page(
        &mut self,
        i: usize,
        next_id: &mut i64,
        now: i64,
        key_for_error: i64,
    ) -> Result<(), MapError> {
        if self.dir.len() >= Meta::DIR_CAPACITY {
            return Err(MapError::DirectoryFull);
        }
        if self.pages[i].segs.len() < 2 {
            let hi = self.page_hi(i);
            let k = pick_split_key(&self.pages[i].segs[0], hi)
                .ok_or(MapError::Unsplittable { key: key_for_error })?;
            self.pages[i]
                .split_segment(0, k, *next_id, now)
                .map_err(MapError::Split)?;
            *next_id += 1;
        }
        let (lower, upper, new_lo) = self.pages[i]
            .split_half()
            .expect("page has at least two segments");
        let new_blkno = self.dir.iter().map(|d| d.blkno).max().unwrap_or(0) + 1;
        self.dir[i].nsegs = lower.segs.len() as u32;
        self.dir.insert(
            i + 1,
            DirEntry {
                lo: new_lo,
                blkno: new_blkno,
                nsegs: upper.segs.len() as u32,
            },
        );
        self.pages[i] = lower;
        self.pages.insert(i + 1, upper);
        Ok(())
    }
}

/// Checks one heap tuple against the invariant, given the directory and the
/// decoded pages (`pages[i]` belongs to `dir[i]`).
pub fn check_tuple(
    dir: &[DirEntry],
    pages: &[SegPage],
    key: i64,
    blkno: u32,
) -> Result<(), Violation> {
    match pages.get(find_page(dir, key)) {
        Some(p) => p.check(key, blkno),
        None => Err(Violation {
            key,
            blkno,
            segment_id: 0,
            kind: ViolationKind::NotListed,
        }),
    }
}

// ---------------------------------------------------------------------------
// In-place operations on an encoded segment page. The insert path runs once
// per heap tuple; working on the page bytes avoids decoding, allocating and
// re-encoding a whole page for the common `Unchanged` case, and leaves the
// bytes exactly as `SegPage::record` + `encode_into` would.

fn raw_header(buf: &[u8]) -> Result<SegPageView, LayoutError> {
    super::layout::seg_page_header(buf)
}

/// Reads the segment header at `off`, checking it and its listings lie
/// within `used`.
fn raw_segment(buf: &[u8], off: usize, used: usize) -> Result<SegHeader, LayoutError> {
    if off + SegHeader::SIZE > used {
        return Err(LayoutError::Corrupt("segment header truncated"));
    }
    let h = SegHeader::read(&buf[off..]);
    if h.nlist as usize > (used - off - SegHeader::SIZE) / Listing::SIZE {
        return Err(LayoutError::Corrupt("segment listings truncated"));
    }
    Ok(h)
}

/// `(page view, offset of the owning segment, its index, its header)`.
type RawLoc = (SegPageView, usize, usize, SegHeader);

fn raw_find_segment(buf: &[u8], key: i64) -> Result<RawLoc, LayoutError> {
    let v = raw_header(buf)?;
    let (off, idx) = if v.slotted {
        let idx = slot_search(buf, &v, 0, key)?;
        (v.slot(buf, idx)?, idx)
    } else {
        walk_search(buf, &v, key)?
    };
    let h = raw_segment(buf, off, v.used)?;
    if v.slotted && idx + 1 < v.nsegs {
        // The next slot must point right after this segment's listings:
        // a cheap check that slots and segments agree on every lookup.
        let next = off + SegHeader::SIZE + h.nlist as usize * Listing::SIZE;
        if v.slot(buf, idx + 1)? != next {
            return Err(LayoutError::Corrupt(
                "segment slot does not match its segment",
            ));
        }
    }
    Ok((v, off, idx, h))
}

/// Index of the segment owning `key` among segments `from..` of a slotted
/// page, `from` being known to start at or below `key` (or 0): the last
/// one whose `lo` is at or below `key`, the first one owning everything
/// below the page's second segment.
fn slot_search(buf: &[u8], v: &SegPageView, from: usize, key: i64) -> Result<usize, LayoutError> {
    let lo_at = offset_of!(SegHeader, lo);
    let (mut a, mut b) = (from + 1, v.nsegs);
    while a < b {
        let m = a + (b - a) / 2;
        if get_i64(buf, v.slot(buf, m)? + lo_at) > key {
            b = m;
        } else {
            a = m + 1;
        }
    }
    Ok(a - 1)
}

/// [`slot_search`] for a packed page: reads the two fields it needs per
/// header, in order, up to the first segment starting above `key`.
fn walk_search(buf: &[u8], v: &SegPageView, key: i64) -> Result<(usize, usize), LayoutError> {
    let mut off = v.first();
    let mut found = (off, 0usize);
    let mut prev_lo = i64::MIN;
    for i in 0..v.nsegs {
        let (lo, nlist) = raw_lo_nlist(buf, off, v.used)?;
        if i > 0 {
            if lo <= prev_lo {
                return Err(LayoutError::Corrupt("segments not sorted by key"));
            }
            if lo > key {
                break;
            }
            found = (off, i);
        }
        prev_lo = lo;
        off += SegHeader::SIZE + nlist * Listing::SIZE;
    }
    Ok(found)
}

/// `lo` and the listing count of the segment header at `off`, checked like
/// [`raw_segment`].
fn raw_lo_nlist(buf: &[u8], off: usize, used: usize) -> Result<(i64, usize), LayoutError> {
    if off + SegHeader::SIZE > used {
        return Err(LayoutError::Corrupt("segment header truncated"));
    }
    let nlist = get_u32(buf, off + offset_of!(SegHeader, nlist)) as usize;
    if nlist > (used - off - SegHeader::SIZE) / Listing::SIZE {
        return Err(LayoutError::Corrupt("segment listings truncated"));
    }
    Ok((get_i64(buf, off + offset_of!(SegHeader, lo)), nlist))
}

fn raw_listing_key(buf: &[u8], at: usize) -> (i64, u32) {
    (
        get_i64(buf, at + offset_of!(Listing, zmin)),
        get_u32(buf, at + offset_of!(Listing, blkno)),
    )
}

/// What placement needs of the segment owning a key, besides its blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegHead {
    pub lo: i64,
    pub id: i64,
    pub row_count: i64,
}

/// The heap blocks of a segment's listings (as [`listed_in_place_at`] reads
/// them) whose zones hold `key`, ascending and distinct: a point lookup's
/// candidates, the same as [`SegPage::candidates`]`(key, key)` on the
/// decoded page.
pub fn point_candidates(listed: &[Listed], key: i64) -> Vec<u32> {
    let mut blocks: Vec<u32> = listed
        .iter()
        .filter(|l| l.covers(key))
        .map(|l| l.blkno)
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    blocks
}

/// What [`listed_in_place_at`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundSeg {
    pub head: SegHead,
    /// The exclusive upper bound of the segment's key range on this page
    /// (None for the page's last segment, whose bound the directory holds).
    pub hi: Option<i64>,
    /// The byte offset of its header (a hint for [`covered_at`] while the
    /// page is unchanged).
    pub off: usize,
    /// The key lies between the page's first key and its last segment's:
    /// whatever the directory says, this page owns it (every segment on a
    /// page is that page's, and segments tile the keys), so a page found
    /// without the directory is the right one.
    pub inside: bool,
}

/// The segment owning `key`, read alone from the encoded page (placement
/// needs one segment, not the page). Its blocks and zones go into `out`,
/// cleared first, whose capacity placement reuses from row to row.
pub fn listed_in_place_at(
    buf: &[u8],
    key: i64,
    out: &mut Vec<Listed>,
) -> Result<FoundSeg, LayoutError> {
    let (v, off, idx, h) = raw_find_segment(buf, key)?;
    let lst = off + SegHeader::SIZE;
    let next = lst + h.nlist as usize * Listing::SIZE;
    let region = buf
        .get(lst..next)
        .ok_or(LayoutError::Corrupt("segment listings past the page"))?;
    out.clear();
    // Arrays of the listing's size: one bounds check for the region, none
    // per field (this runs for every listing of the segment of every
    // inserted row).
    let (listings, _) = region.as_chunks::<{ Listing::SIZE }>();
    out.extend(listings.iter().map(|c| {
        let l = Listing::read(c);
        Listed {
            blkno: l.blkno,
            zmin: l.zmin,
            zmax: l.zmax(),
        }
    }));
    let hi = if idx + 1 < v.nsegs {
        Some(raw_segment(buf, next, v.used)?.lo)
    } else {
        None
    };
    let head = SegHead {
        lo: h.lo,
        id: h.segment_id,
        row_count: h.row_count,
    };
    Ok(FoundSeg {
        head,
        hi,
        off,
        inside: h.lo <= key && hi.is_some(),
    })
}

/// [`covered_in_place`] for the segment whose header is at `off`, found by
/// an earlier walk of the same page while it had the same LSN (so the same
/// bytes). Checked anyway: `off` must lie on the page and the segment's
/// range on the page must hold `key`; None when not (the caller walks the
/// page). The last segment's range ends where the next page begins, which
/// the page does not record: the caller checks that bound.
pub fn covered_at(
    buf: &[u8],
    off: usize,
    key: i64,
    blkno: u32,
) -> Result<Option<(i64, i64, bool)>, LayoutError> {
    let v = raw_header(buf)?;
    let used = v.used;
    if off < v.first() || off >= used {
        return Ok(None);
    }
    let h = raw_segment(buf, off, used)?;
    let next = off + SegHeader::SIZE + h.nlist as usize * Listing::SIZE;
    let owns = h.lo <= key && (next >= used || raw_lo_nlist(buf, next, used)?.0 > key);
    if !owns {
        return Ok(None);
    }
    Ok(Some((
        h.segment_id,
        h.row_count,
        listing_covers(buf, off, &h, key, blkno),
    )))
}

/// Row count of the segment owning `key`, read from the encoded page.
pub fn segment_rows_in_place(buf: &[u8], key: i64) -> Result<i64, LayoutError> {
    let (_, _, _, h) = raw_find_segment(buf, key)?;
    Ok(h.row_count)
}

/// The segment owning `key` on the encoded page: its id, its row count and
/// whether a listing of `blkno` already covers `key` (recording the key
/// would change nothing but the row count).
pub fn covered_in_place(buf: &[u8], key: i64, blkno: u32) -> Result<(i64, i64, bool), LayoutError> {
    let (_, off, _, h) = raw_find_segment(buf, key)?;
    Ok((
        h.segment_id,
        h.row_count,
        listing_covers(buf, off, &h, key, blkno),
    ))
}

/// Whether the segment with header `h` at `off` lists `blkno` with a zone
/// holding `key`.
fn listing_covers(buf: &[u8], off: usize, h: &SegHeader, key: i64, blkno: u32) -> bool {
    let lst = off + SegHeader::SIZE;
    // raw_segment checked that the listings lie on the page.
    let Some(region) = buf.get(lst..lst + h.nlist as usize * Listing::SIZE) else {
        return false;
    };
    let (listings, _) = region.as_chunks::<{ Listing::SIZE }>();
    listings
        .iter()
        .any(|c| get_u32(c, offset_of!(Listing, blkno)) == blkno && Listing::read(c).contains(key))
}

/// Adds `rows` to the row count of the segment owning `key` on the encoded
/// page and sets its `updated_at` (pending counts of a transaction).
#[cfg(test)]
pub fn add_rows_in_place(buf: &mut [u8], key: i64, rows: i64, now: i64) -> Result<(), LayoutError> {
    let (_, off, _, mut h) = raw_find_segment(buf, key)?;
    h.row_count = h.row_count.saturating_add(rows);
    h.updated_at = now;
    h.write(&mut buf[off..]);
    Ok(())
}

/// [`add_rows_in_place`] for many `(key, rows)` at once: the entries are
/// sorted by key and each goes to the segment that owns its key (the last
/// one starting at or below it, else the first). A transaction's pending
/// counts reach a page this way at commit.
#[cfg(test)]
pub fn add_rows_sorted_in_place(
    buf: &mut [u8],
    entries: &mut [(i64, i64)],
    now: i64,
) -> Result<(), LayoutError> {
    let used = raw_header(buf)?.used;
    for (off, rows) in count_targets(buf, entries)? {
        let mut h = raw_segment(buf, off, used)?;
        h.row_count = h.row_count.saturating_add(rows);
        h.updated_at = now;
        h.write(&mut buf[off..]);
    }
    Ok(())
}

/// The segments owning the keys of `entries` (sorted here by key): the
/// offset of each one's header on the encoded page and the rows it gets,
/// one per segment, in page order. On a slotted page each is found by
/// binary search among the segments from the previous one on (a
/// transaction touches a few segments of a page holding hundreds); a
/// packed page is walked once.
pub fn count_targets(
    buf: &[u8],
    entries: &mut [(i64, i64)],
) -> Result<Vec<(usize, i64)>, LayoutError> {
    entries.sort_unstable_by_key(|e| e.0);
    let v = raw_header(buf)?;
    let (used, nsegs) = (v.used, v.nsegs);
    let mut out: Vec<(usize, i64)> = Vec::with_capacity(entries.len());
    let mut push = |off: usize, rows: i64| match out.last_mut() {
        Some(last) if last.0 == off => last.1 = last.1.saturating_add(rows),
        _ => out.push((off, rows)),
    };
    if v.slotted {
        let mut idx = 0usize;
        for &(key, rows) in entries.iter() {
            idx = slot_search(buf, &v, idx, key)?;
            let off = v.slot(buf, idx)?;
            raw_segment(buf, off, used)?;
            push(off, rows);
        }
        return Ok(out);
    }
    let mut cur = v.first();
    let (mut cur_lo, mut cur_n) = raw_lo_nlist(buf, cur, used)?;
    let mut idx = 0usize;
    for &(key, rows) in entries.iter() {
        // Advance while the next segment starts at or below the key.
        while idx + 1 < nsegs {
            let next = cur + SegHeader::SIZE + cur_n * Listing::SIZE;
            let (lo, n) = raw_lo_nlist(buf, next, used)?;
            if lo <= cur_lo {
                return Err(LayoutError::Corrupt("segments not sorted by key"));
            }
            if lo > key {
                break;
            }
            (cur, cur_lo, cur_n, idx) = (next, lo, n, idx + 1);
        }
        push(cur, rows);
    }
    Ok(out)
}

/// The delta (generic WAL fragments, at page offsets: the content region
/// starts at `base`) that adds each target's rows to its segment's row
/// count and sets its `updated_at` to `now`: what
/// [`add_rows_sorted_in_place`] changes, without an image of the page. An
/// `updated_at` already at `now` (the statement's start: a row of this
/// statement widened a zone of the segment) is not written again.
pub fn count_delta(buf: &[u8], targets: &[(usize, i64)], now: i64, base: usize, out: &mut Vec<u8>) {
    let (rc, upd) = (
        offset_of!(SegHeader, row_count),
        offset_of!(SegHeader, updated_at),
    );
    for &(off, rows) in targets {
        let count = get_i64(buf, off + rc).saturating_add(rows);
        super::page_delta::fragment(base + off + rc, &count.to_le_bytes(), out);
        if get_i64(buf, off + upd) != now {
            super::page_delta::fragment(base + off + upd, &now.to_le_bytes(), out);
        }
    }
}

/// [`SegPage::record`] on the encoded page content (the whole content
/// region). Returns the outcome and the bytes in use afterwards (for
/// `pd_lower`). On `NeedsSpace` the bytes are untouched.
#[cfg(test)]
pub fn record_in_place(
    buf: &mut [u8],
    key: i64,
    blkno: u32,
    now: i64,
) -> Result<(Recorded, usize), LayoutError> {
    record_rows_in_place(buf, key, blkno, now, 1)
}

/// What recording a key in a block does to an encoded segment page: found
/// once by [`plan_record`], then applied to the page
/// ([`record_rows_in_place`]) or turned into WAL fragments
/// ([`record_delta`]), so both make the same change by construction.
struct RecordPlan {
    view: SegPageView,
    seg_off: usize,
    seg_idx: usize,
    header: SegHeader,
    change: Change,
}

enum Change {
    /// A listing of the block already covers the key.
    Covered,
    /// Listing `from` widens to `listing`, which sorts at index `to`.
    Widen {
        from: usize,
        to: usize,
        listing: Listing,
    },
    /// A new listing at index `at`.
    Add { at: usize, listing: Listing },
    /// No room for a new listing.
    NeedsSpace,
}

impl RecordPlan {
    /// Offset of the segment's listing `i`.
    fn listing_at(&self, i: usize) -> usize {
        self.seg_off + SegHeader::SIZE + i * Listing::SIZE
    }

    fn outcome(&self) -> Recorded {
        match self.change {
            Change::Covered => Recorded::Unchanged,
            Change::Widen { .. } => Recorded::Widened,
            Change::Add { .. } => Recorded::AddedListing,
            Change::NeedsSpace => Recorded::NeedsSpace,
        }
    }

    /// Content bytes in use after the change.
    fn used_after(&self) -> usize {
        match self.change {
            Change::Add { .. } => self.view.used + Listing::SIZE,
            _ => self.view.used,
        }
    }
}

fn plan_record(buf: &[u8], key: i64, blkno: u32) -> Result<RecordPlan, LayoutError> {
    let (view, seg_off, seg_idx, header) = raw_find_segment(buf, key)?;
    let lst = seg_off + SegHeader::SIZE;
    let n = header.nlist as usize;
    let at = |i: usize| lst + i * Listing::SIZE;
    let pos = (0..n).find(|&i| get_u32(buf, at(i) + offset_of!(Listing, blkno)) == blkno);
    let change = match pos {
        Some(i) => {
            let l = Listing::read(&buf[at(i)..]);
            if l.contains(key) {
                Change::Covered
            } else {
                let listing = Listing::from_bounds(l.zmin.min(key), l.zmax().max(key), blkno);
                let new_key = (listing.zmin, listing.blkno);
                let to = (0..n)
                    .filter(|&j| j != i && raw_listing_key(buf, at(j)) < new_key)
                    .count();
                Change::Widen {
                    from: i,
                    to,
                    listing,
                }
            }
        }
        None => {
            // A packed page counts the slots it would take when rewritten,
            // as SegPage::record does: it then splits and converts.
            let slots = if view.slotted {
                0
            } else {
                slot_area(view.nsegs)
            };
            if view.used + slots + Listing::SIZE > CONTENT_SIZE.min(buf.len()) {
                Change::NeedsSpace
            } else {
                let to = (0..n)
                    .take_while(|&j| raw_listing_key(buf, at(j)) < (key, blkno))
                    .count();
                Change::Add {
                    at: to,
                    listing: Listing::from_bounds(key, key, blkno),
                }
            }
        }
    };
    Ok(RecordPlan {
        view,
        seg_off,
        seg_idx,
        header,
        change,
    })
}

/// [`record_in_place`] adding `rows` to the row count
/// ([`SegPage::record_rows`]). The map logs these changes with
/// [`record_delta`]; this form is the reference its deltas are tested
/// against.
#[cfg(test)]
pub fn record_rows_in_place(
    buf: &mut [u8],
    key: i64,
    blkno: u32,
    now: i64,
    rows: i64,
) -> Result<(Recorded, usize), LayoutError> {
    let plan = plan_record(buf, key, blkno)?;
    let at = |i: usize| plan.listing_at(i);
    let mut h = plan.header;
    match plan.change {
        Change::NeedsSpace => return Ok((Recorded::NeedsSpace, plan.view.used)),
        Change::Covered => {}
        Change::Widen { from, to, listing } => {
            if to < from {
                buf.copy_within(at(to)..at(from), at(to + 1));
            } else if to > from {
                buf.copy_within(at(from + 1)..at(to + 1), at(from));
            }
            listing.write(&mut buf[at(to)..]);
        }
        Change::Add { at: q, listing } => {
            let (used, v) = (plan.view.used, plan.view);
            buf.copy_within(at(q)..used, at(q) + Listing::SIZE);
            listing.write(&mut buf[at(q)..]);
            put_u32(
                buf,
                offset_of!(SegPageHeader, used),
                plan.used_after() as u32,
            );
            if v.slotted {
                // The segments after this one moved up by a listing.
                for j in plan.seg_idx + 1..v.nsegs {
                    let at = SegPageHeader::SIZE + 2 * j;
                    put_u16(buf, at, get_u16(buf, at) + Listing::SIZE as u16);
                }
            }
            h.nlist += 1;
        }
    }
    h.row_count = h.row_count.saturating_add(rows);
    h.updated_at = now;
    h.write(&mut buf[plan.seg_off..]);
    Ok((plan.outcome(), plan.used_after()))
}

/// [`record_rows_in_place`] as a delta: the generic WAL fragments (at page
/// offsets, the content region starting at `base`) that make the same
/// change, computed without changing or copying the page, so only the
/// cache lines the change touches are read. Returns the outcome and the
/// content bytes in use afterwards; on `NeedsSpace` nothing is appended.
///
/// - `Unchanged`: the segment header's count and `updated_at`.
/// - `Widened`: the listings between the widened one's old and new place,
///   and the header.
/// - `AddedListing`: the page's tail from the new listing on (shifted by a
///   listing), the header (with `nlist`), the slots of the segments after
///   it, the content's `used` and the page header's `pd_lower`.
pub fn record_delta(
    buf: &[u8],
    key: i64,
    blkno: u32,
    now: i64,
    rows: i64,
    base: usize,
    out: &mut Vec<u8>,
) -> Result<(Recorded, usize), LayoutError> {
    use super::page_delta::fragment;
    let plan = plan_record(buf, key, blkno)?;
    let at = |i: usize| plan.listing_at(i);
    let (v, seg_off) = (plan.view, plan.seg_off);
    match plan.change {
        Change::NeedsSpace => return Ok((Recorded::NeedsSpace, v.used)),
        Change::Covered => count_delta(buf, &[(seg_off, rows)], now, base, out),
        Change::Widen { from, to, listing } => {
            // The listings from the lower of the two places to the higher,
            // as they will be: the others shift by one toward where the
            // widened one was.
            let (a, b) = (from.min(to), from.max(to));
            let mut run = vec![0u8; (b - a + 1) * Listing::SIZE];
            for (k, slot) in (a..=b).enumerate() {
                let dst = &mut run[k * Listing::SIZE..(k + 1) * Listing::SIZE];
                if slot == to {
                    listing.write(dst);
                } else {
                    let src = if to < from { slot - 1 } else { slot + 1 };
                    dst.copy_from_slice(&buf[at(src)..at(src) + Listing::SIZE]);
                }
            }
            fragment(base + at(a), &run, out);
            count_delta(buf, &[(seg_off, rows)], now, base, out);
        }
        Change::Add { at: q, listing } => {
            let new_used = plan.used_after();
            // pd_lower (standard page header, offset 12, native order) and
            // the content's own count of bytes in use.
            fragment(12, &((base + new_used) as u16).to_ne_bytes(), out);
            fragment(
                base + offset_of!(SegPageHeader, used),
                &(new_used as u32).to_le_bytes(),
                out,
            );
            if v.slotted && plan.seg_idx + 1 < v.nsegs {
                let first = SegPageHeader::SIZE + 2 * (plan.seg_idx + 1);
                let moved: Vec<u8> = (plan.seg_idx + 1..v.nsegs)
                    .flat_map(|j| {
                        let at = SegPageHeader::SIZE + 2 * j;
                        (get_u16(buf, at) + Listing::SIZE as u16).to_le_bytes()
                    })
                    .collect();
                fragment(base + first, &moved, out);
            }
            let mut hdr = [0u8; SegHeader::SIZE];
            let mut nh = plan.header;
            nh.row_count = nh.row_count.saturating_add(rows);
            nh.updated_at = now;
            nh.nlist += 1;
            nh.write(&mut hdr);
            // row_count through updated_at: nlist sits between them.
            let from = offset_of!(SegHeader, row_count);
            fragment(base + seg_off + from, &hdr[from..], out);
            let mut tail = Vec::with_capacity(new_used - at(q));
            tail.resize(Listing::SIZE, 0);
            listing.write(&mut tail);
            tail.extend_from_slice(&buf[at(q)..v.used]);
            fragment(base + at(q), &tail, out);
        }
    }
    Ok((plan.outcome(), plan.used_after()))
}

/// [`SegPage::candidates`] on the encoded page content, without decoding:
/// appends the blocks whose zone meets `[lo, hi]` to `out`, possibly with
/// duplicates (sort and dedup once after the last page).
pub fn candidates_in_place(
    buf: &[u8],
    lo: i64,
    hi: i64,
    out: &mut Vec<u32>,
) -> Result<(), LayoutError> {
    if lo > hi {
        return Ok(());
    }
    let (v, mut off, first, _) = raw_find_segment(buf, lo)?;
    let (used, nsegs) = (v.used, v.nsegs);
    for i in first..nsegs {
        let h = raw_segment(buf, off, used)?;
        if i > first && h.lo > hi {
            break;
        }
        let lst = off + SegHeader::SIZE;
        for j in 0..h.nlist as usize {
            let l = Listing::read(&buf[lst + j * Listing::SIZE..]);
            if l.zmin > hi {
                break;
            }
            if l.zmax() >= lo {
                out.push(l.blkno);
            }
        }
        off = lst + h.nlist as usize * Listing::SIZE;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny deterministic PRNG so the property tests need no extra crate.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() % ((hi - lo) as u64 + 1)) as i64
        }
    }

    fn round_trip(p: &SegPage) {
        let mut buf = vec![0u8; CONTENT_SIZE];
        let used = p.encode_into(&mut buf).expect("page fits");
        assert_eq!(used, p.encoded_len());
        assert_eq!(&SegPage::decode(&buf).unwrap(), p);
    }

    #[test]
    fn find_page_binary_search() {
        let dir = [
            DirEntry {
                lo: i64::MIN,
                blkno: 1,
                nsegs: 1,
            },
            DirEntry {
                lo: 100,
                blkno: 2,
                nsegs: 1,
            },
            DirEntry {
                lo: 200,
                blkno: 3,
                nsegs: 1,
            },
        ];
        assert_eq!(find_page(&dir, i64::MIN), 0);
        assert_eq!(find_page(&dir, 99), 0);
        assert_eq!(find_page(&dir, 100), 1);
        assert_eq!(find_page(&dir, 199), 1);
        assert_eq!(find_page(&dir, i64::MAX), 2);
    }

    #[test]
    fn record_widen_add_unchanged() {
        let mut p = SegPage::new_root(1, 0);
        assert_eq!(p.record(10, 5, 1), Recorded::AddedListing);
        assert_eq!(p.record(10, 5, 2), Recorded::Unchanged);
        assert_eq!(p.record(20, 5, 3), Recorded::Widened);
        assert_eq!(p.record(15, 5, 4), Recorded::Unchanged);
        assert_eq!(p.record(5, 5, 5), Recorded::Widened);
        assert_eq!(p.record(7, 6, 6), Recorded::AddedListing);
        let s = &p.segs[0];
        assert_eq!(s.row_count, 6);
        assert_eq!(s.updated_at, 6);
        assert_eq!(
            s.listings,
            vec![
                Listing::from_bounds(5, 20, 5),
                Listing::from_bounds(7, 7, 6)
            ]
        );
        assert_eq!(p.candidates(6, 6).collect::<Vec<_>>(), vec![5]);
        assert_eq!(p.candidates(7, 7).collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(p.candidates(21, 100).count(), 0);
        assert!(p.check(20, 5).is_ok());
        assert_eq!(
            p.check(21, 5).unwrap_err().kind,
            ViolationKind::OutsideZone { zmin: 5, zmax: 20 }
        );
        assert_eq!(p.check(7, 9).unwrap_err().kind, ViolationKind::NotListed);
        p.validate().unwrap();
        round_trip(&p);
    }

    #[test]
    fn record_needs_space_changes_nothing() {
        let mut p = SegPage::new_root(1, 0);
        let mut blk = 0u32;
        while p.record(blk as i64, blk, 1) != Recorded::NeedsSpace {
            blk += 1;
        }
        assert_eq!(blk as usize, SegPage::MAX_LISTINGS_ONE_SEGMENT);
        let before = p.clone();
        assert_eq!(p.record(-1, 100_000, 2), Recorded::NeedsSpace);
        assert_eq!(p, before);
        // Keys in listed blocks still work on a full page.
        assert_eq!(p.record(3, 3, 3), Recorded::Unchanged);
        assert_eq!(p.record(4, 3, 3), Recorded::Widened);
        assert!(p.encoded_len() <= CONTENT_SIZE);
        assert!(p.encoded_len() + Listing::SIZE > CONTENT_SIZE);
        round_trip(&p);
    }

    #[test]
    fn split_segment_clips_and_estimates() {
        let mut p = SegPage::new_root(1, 0);
        for (k, b) in [(0, 1), (9, 1), (10, 2), (19, 2), (5, 3), (15, 3)] {
            p.record(k, b, 1);
        }
        p.split_segment(0, 10, 2, 99).unwrap();
        assert_eq!(p.segs.len(), 2);
        let (a, b) = (&p.segs[0], &p.segs[1]);
        assert_eq!(
            a.listings,
            vec![Listing::from_bounds(0, 9, 1), Listing::from_bounds(5, 9, 3)]
        );
        assert_eq!(
            b.listings,
            vec![
                Listing::from_bounds(10, 19, 2),
                Listing::from_bounds(10, 15, 3)
            ]
        );
        assert_eq!((a.lo, a.id, b.lo, b.id), (i64::MIN, 1, 10, 2));
        assert_eq!(a.row_count + b.row_count, 6);
        assert_eq!(a.row_count, 3, "(1 + 0 + 0.5) / 3 * 6");
        assert_eq!((a.split_generation, b.split_generation), (1, 1));
        assert_eq!((a.last_split_at, b.last_split_at), (99, 99));
        for (k, blk) in [(0, 1), (9, 1), (10, 2), (19, 2), (5, 3), (15, 3)] {
            p.check(k, blk).unwrap();
        }
        assert_eq!(
            p.split_segment(0, i64::MIN, 3, 1),
            Err(SplitError::KeyOutOfRange)
        );
        assert_eq!(p.split_segment(0, 10, 3, 1), Err(SplitError::KeyOutOfRange));
        assert_eq!(p.split_segment(5, 10, 3, 1), Err(SplitError::NoSuchSegment));
        // A saturated zone becomes exact once clipped by a later segment.
        let mut q = SegPage::new_root(1, 0);
        q.record(0, 1, 0);
        q.record(i64::MAX, 1, 0);
        assert_eq!(q.segs[0].listings[0].zmax(), i64::MAX);
        q.split_segment(0, 100, 2, 0).unwrap();
        q.split_segment(1, 200, 3, 0).unwrap();
        assert_eq!(q.segs[1].listings, vec![Listing::from_bounds(100, 199, 1)]);
        q.validate().unwrap();
    }

    #[test]
    fn split_half_keeps_segments_and_lookup() {
        let (pages, _) =
            build_pages((0..20_000i64).map(|k| (k, (k / 50) as u32)), 200, 1.0).unwrap();
        let p = &pages[0];
        assert!(p.segs.len() >= 2);
        let (lo, hi, new_lo) = p.split_half().unwrap();
        assert_eq!(lo.segs.len() + hi.segs.len(), p.segs.len());
        assert_eq!(hi.segs[0].lo, new_lo);
        assert!(
            lo.encoded_len().abs_diff(hi.encoded_len())
                <= 2 * p.segs.iter().map(Segment::encoded_len).max().unwrap()
        );
        let last = p.segs.last().unwrap();
        let last_key = last.listings.iter().map(Listing::zmax).max().unwrap();
        for k in 0..=last_key {
            let blk = (k / 50) as u32;
            let page = if k < new_lo { &lo } else { &hi };
            page.check(k, blk).unwrap();
        }
        assert!(SegPage::new_root(1, 0).split_half().is_none());
    }

    #[test]
    fn pick_split_key_balances() {
        let mut s = Segment::new(i64::MIN, 1, 0);
        s.listings = (0..100u32)
            .map(|b| Listing::from_bounds(b as i64 * 10, b as i64 * 10 + 9, b))
            .collect();
        assert_eq!(pick_split_key(&s, None), Some(500));
        // One key in many blocks cannot be split.
        s.listings = (0..100u32).map(|b| Listing::from_bounds(7, 7, b)).collect();
        assert_eq!(pick_split_key(&s, None), None);
        // Respect the upper bound.
        s.listings = vec![Listing::from_bounds(0, 5, 1), Listing::from_bounds(6, 9, 2)];
        assert_eq!(pick_split_key(&s, Some(6)), None);
        assert_eq!(pick_split_key(&s, Some(7)), Some(6));
    }

    #[test]
    fn tighten_narrows_and_removes() {
        let mut p = SegPage::new_root(1, 0);
        for k in [0, 50, 100, 150] {
            p.record(k, 7, 0);
        }
        p.split_segment(0, 100, 2, 0).unwrap();
        // Rows 0 and 150 deleted and pruned: block 7 holds 50 and 100 only.
        let st = p.tighten_block(7, &[50, 100], None);
        assert_eq!(
            st,
            TightenStats {
                changed: 2,
                removed: 0
            }
        );
        assert_eq!(p.segs[0].listings, vec![Listing::from_bounds(50, 50, 7)]);
        assert_eq!(p.segs[1].listings, vec![Listing::from_bounds(100, 100, 7)]);
        let st = p.tighten_block(7, &[100], None);
        assert_eq!(
            st,
            TightenStats {
                changed: 0,
                removed: 1
            }
        );
        assert!(p.segs[0].listings.is_empty());
        assert_eq!(exact_zone([3, -1, 8]), Some((-1, 8)));
        assert_eq!(exact_zone(std::iter::empty()), None);
        let l = Listing::from_bounds(0, 100, 4);
        assert_eq!(tighten(&l, [10, 20]), Some(Listing::from_bounds(10, 20, 4)));
        assert_eq!(tighten(&l, []), None);
    }

    #[test]
    fn property_invariant_under_random_inserts_and_splits() {
        for seed in [0x9E37_79B9_7F4A_7C15u64, 42, 7_777_777] {
            let mut rng = XorShift(seed);
            let mut map = SegMap::new(1, 0);
            let mut next_id = 2i64;
            let mut seen: Vec<(i64, u32)> = Vec::new();
            for step in 0..30_000i64 {
                let now = step;
                if rng.below(100) == 0 {
                    let pi = rng.below(map.pages.len() as u64) as usize;
                    let si = rng.below(map.pages[pi].segs.len() as u64) as usize;
                    let lo = map.pages[pi].segs[si].lo.max(-1_000_000);
                    let hi = map.pages[pi]
                        .segment_hi(si, map.page_hi(pi))
                        .unwrap_or(1_000_000);
                    if hi - lo >= 2 {
                        let at = rng.range(lo + 1, hi - 1);
                        let id = next_id;
                        next_id += 1;
                        map.split_segment(pi, si, at, id, now, &mut next_id)
                            .unwrap();
                    }
                    continue;
                }
                let key = match rng.below(10) {
                    0 => rng.range(i64::MIN / 2, i64::MAX / 2),
                    1 => [i64::MIN, i64::MAX, 0, -1][rng.below(4) as usize],
                    _ => rng.range(-50_000, 50_000),
                };
                let blk = match rng.below(4) {
                    0 => rng.below(5_000) as u32,
                    _ => ((key.clamp(-50_000, 50_000) + 50_000) / 40) as u32,
                };
                map.record(key, blk, now, &mut next_id).unwrap();
                seen.push((key, blk));
            }
            assert!(map.pages.len() > 1, "test should exercise page splits");
            for (i, p) in map.pages.iter().enumerate() {
                p.validate().unwrap();
                round_trip(p);
                assert_eq!(map.dir[i].lo, if i == 0 { i64::MIN } else { p.segs[0].lo });
                assert_eq!(map.dir[i].nsegs as usize, p.segs.len());
            }
            for &(k, b) in &seen {
                map.check_tuple(k, b).unwrap();
                assert!(map.candidates(k, k).contains(&b), "key {k} block {b}");
            }
            // Range candidates cover every tuple in the range.
            for _ in 0..200 {
                let a = rng.range(-60_000, 60_000);
                let z = a + rng.range(0, 5_000);
                let c = map.candidates(a, z);
                for &(k, b) in seen.iter().filter(|(k, _)| (a..=z).contains(k)) {
                    assert!(
                        c.binary_search(&b).is_ok(),
                        "key {k} block {b} range {a}..={z}"
                    );
                }
            }
            let total: i64 = map
                .pages
                .iter()
                .flat_map(|p| &p.segs)
                .map(|s| s.row_count)
                .sum();
            assert_eq!(total, seen.len() as i64);
        }
    }

    #[test]
    fn unsplittable_run_reported() {
        let mut map = SegMap::new(1, 0);
        let mut next_id = 2;
        let mut err = None;
        for b in 0..1000u32 {
            if let Err(e) = map.record(5, b, 0, &mut next_id) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(MapError::Unsplittable { key: 5 }));
        assert!(matches!(
            build_pages((0..600u32).map(|b| (5i64, b)), 1024, 1.0),
            Err(BuildError::KeyRunTooLong {
                key: 5,
                blocks: 600
            })
        ));
        assert!(matches!(
            build_pages([(2i64, 1u32), (1, 1)], 1024, 1.0),
            Err(BuildError::Unsorted { prev: 2, key: 1 })
        ));
    }

    #[test]
    fn build_empty_and_equal_runs() {
        let (pages, dir) = build_pages(std::iter::empty(), 10, 0.9).unwrap();
        assert_eq!(pages, vec![SegPage::new_root(1, 0)]);
        assert_eq!(
            dir,
            vec![DirEntry {
                lo: i64::MIN,
                blkno: 1,
                nsegs: 1
            }]
        );
        // Runs of 7 equal keys with threshold 10: never cut a run.
        let pairs: Vec<(i64, u32)> = (0..700i64).map(|i| (i / 7, (i / 20) as u32)).collect();
        let (pages, dir) = build_pages(pairs.iter().copied(), 10, 0.9).unwrap();
        let map = SegMap::from_build((pages, dir));
        for s in map.pages.iter().flat_map(|p| &p.segs) {
            assert_eq!(s.row_count, 7, "one run per segment");
        }
        for &(k, b) in &pairs {
            map.check_tuple(k, b).unwrap();
        }
        // A run longer than the threshold becomes one bigger segment.
        let pairs: Vec<(i64, u32)> = [(1i64, 0u32); 30]
            .into_iter()
            .chain([(2, 1), (3, 1)])
            .collect();
        let (pages, _) = build_pages(pairs, 10, 0.9).unwrap();
        let rows: Vec<i64> = pages[0].segs.iter().map(|s| s.row_count).collect();
        assert_eq!(rows, vec![30, 2]);
    }

    #[test]
    fn build_million_ascending() {
        const N: i64 = 1_000_000;
        const PER_BLOCK: i64 = 55;
        let t = std::time::Instant::now();
        let (pages, dir) =
            build_pages((0..N).map(|k| (k, (k / PER_BLOCK) as u32)), 1024, 1.0).unwrap();
        let elapsed = t.elapsed();
        let map = SegMap::from_build((pages, dir));
        let nblocks = ((N + PER_BLOCK - 1) / PER_BLOCK) as usize;
        let mut per_block = vec![0u32; nblocks];
        let mut boundaries_mid_block = 0;
        for s in map.pages.iter().flat_map(|p| &p.segs) {
            assert!(s.row_count <= 1024);
            for l in &s.listings {
                per_block[l.blkno as usize] += 1;
                // Exact zones: a block's keys in this segment.
                let blo = l.blkno as i64 * PER_BLOCK;
                assert_eq!(l.zmin, blo.max(s.lo));
                assert!(l.zmax() < blo + PER_BLOCK);
            }
            if s.lo != i64::MIN && s.lo % PER_BLOCK != 0 {
                boundaries_mid_block += 1;
            }
        }
        assert!(per_block.iter().all(|&c| c == 1 || c == 2));
        let twice = per_block.iter().filter(|&&c| c == 2).count();
        assert_eq!(
            twice, boundaries_mid_block,
            "only segment boundaries list a block twice"
        );
        for (i, p) in map.pages.iter().enumerate() {
            p.validate().unwrap();
            round_trip(p);
            assert_eq!(map.dir[i].blkno, i as u32 + 1);
        }
        for k in (0..N).step_by(7) {
            map.check_tuple(k, (k / PER_BLOCK) as u32).unwrap();
        }
        assert_eq!(map.candidates(1000, 1999).len(), 1999 / 55 - 1000 / 55 + 1);
        let bytes: usize = map.pages.iter().map(SegPage::encoded_len).sum();
        eprintln!(
            "build 1M keys @55/block, threshold 1024, fill 1.0: {} pages, {} segments, {} listings, {} bytes, {:?}",
            map.pages.len(),
            map.nsegments(),
            per_block.iter().map(|&c| c as usize).sum::<usize>(),
            bytes,
            elapsed
        );
        for fill in [0.9, 0.8] {
            let (pages, _) =
                build_pages((0..N).map(|k| (k, (k / PER_BLOCK) as u32)), 1024, fill).unwrap();
            eprintln!("  fill {fill}: {} pages", pages.len());
        }
        // 16-byte listings give >= 18182 * 16 bytes = 36 pages before any
        // header; the segment headers and boundary duplicates add ~20 %.
        assert!(map.pages.len() <= 45, "{} pages", map.pages.len());
        assert!(map.dir.len() <= Meta::DIR_CAPACITY);
    }

    #[test]
    fn meta_lookup_in_place_matches_find_page() {
        use crate::core::directory::{meta_lookup_in_place, MetaHit, Slot};
        let mut meta = Meta::new(crate::core::layout::KeyType::Int8, "0.1.0");
        let mut buf = vec![0u8; CONTENT_SIZE];
        meta.encode_into(&mut buf).unwrap();
        assert_eq!(
            meta_lookup_in_place(&buf, 5).unwrap(),
            MetaHit {
                flags: meta.flags,
                levels: 0,
                slot: None
            }
        );
        meta.flags = 1;
        meta.dir = (0..300i64)
            .map(|i| DirEntry {
                lo: if i == 0 { i64::MIN } else { i * 100 - 7 },
                blkno: i as u32 + 1,
                nsegs: 1,
            })
            .collect();
        meta.encode_into(&mut buf).unwrap();
        for key in [
            i64::MIN,
            -8,
            -7,
            0,
            92,
            93,
            94,
            29_893,
            29_894,
            40_000,
            i64::MAX,
        ] {
            let i = find_page(&meta.dir, key);
            let want = Slot {
                pos: i,
                blkno: meta.dir[i].blkno,
                lo: meta.dir[i].lo,
                hi: meta.dir.get(i + 1).map(|d| d.lo),
            };
            assert_eq!(
                meta_lookup_in_place(&buf, key).unwrap(),
                MetaHit {
                    flags: 1,
                    levels: 0,
                    slot: Some(want)
                },
                "{key}"
            );
        }
        buf[0] ^= 0xFF;
        assert!(meta_lookup_in_place(&buf, 0).is_err());
    }

    #[test]
    fn in_place_matches_owned_model() {
        // Both layouts: pages written by this build (slotted) and by earlier
        // ones (packed), which are updated in place in their own layout.
        let slotted = |p: &SegPage, b: &mut [u8]| p.encode_into(b).unwrap();
        let packed = |p: &SegPage, b: &mut [u8]| p.encode_packed_into(b);
        type Encode = dyn Fn(&SegPage, &mut [u8]) -> usize;
        let layouts: [&Encode; 2] = [&slotted, &packed];
        for (seed, encode) in [1u64, 0xDEAD_BEEF, 99]
            .into_iter()
            .flat_map(|s| layouts.iter().map(move |e| (s, e)))
        {
            let mut rng = XorShift(seed);
            let (pages, _) =
                build_pages((0..3000i64).map(|k| (k * 3, (k / 40) as u32)), 60, 0.5).unwrap();
            let mut page = pages[0].clone();
            assert!(page.segs.len() > 20, "{}", page.segs.len());
            let mut buf = vec![0u8; CONTENT_SIZE];
            encode(&page, &mut buf);
            let top = page.segs.last().unwrap().lo + 2000;
            let mut outcomes = [0usize; 4];
            for step in 0..4000i64 {
                let key = match rng.below(8) {
                    0 => [i64::MIN, i64::MAX, -1][rng.below(3) as usize],
                    _ => rng.range(-500, top),
                };
                let blk = match rng.below(3) {
                    0 => rng.below(2000) as u32,
                    _ => (key.clamp(0, top) / 120) as u32,
                };
                let si = page.find_segment(key);
                let (id, rows, covered) = covered_in_place(&buf, key, blk).unwrap();
                assert_eq!((id, rows), (page.segs[si].id, page.segs[si].row_count));
                let want = page.record(key, blk, step);
                assert_eq!(covered, want == Recorded::Unchanged, "step {step}");
                let (got, used) = record_in_place(&mut buf, key, blk, step).unwrap();
                assert_eq!(got, want, "step {step}");
                if step % 13 == 0 {
                    add_rows_in_place(&mut buf, key, 5, step).unwrap();
                    let s = &mut page.segs[si];
                    s.row_count += 5;
                    s.updated_at = step;
                }
                let mut expect = vec![0u8; CONTENT_SIZE];
                assert_eq!(used, encode(&page, &mut expect));
                outcomes[want as usize] += 1;
                if step % 97 == 0 {
                    assert_eq!(buf, expect, "step {step}");
                    if step % 3 == 0 {
                        let mut entries: Vec<(i64, i64)> =
                            (0..6).map(|_| (rng.range(-500, top), 2)).collect();
                        add_rows_sorted_in_place(&mut buf, &mut entries, step).unwrap();
                        for &(k, r) in &entries {
                            let i = page.find_segment(k);
                            let s = &mut page.segs[i];
                            s.row_count += r;
                            s.updated_at = step;
                        }
                    }
                    let (a, z) = (rng.range(-600, top), rng.range(0, 3000));
                    let mut c = Vec::new();
                    candidates_in_place(&buf, a, a + z, &mut c).unwrap();
                    c.sort_unstable();
                    c.dedup();
                    assert_eq!(c, page.candidates(a, a + z).collect::<Vec<_>>());
                }
            }
            assert_eq!(SegPage::decode(&buf).unwrap(), page);
            assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
        }
    }

    #[test]
    fn in_place_rejects_bad_pages() {
        let mut buf = vec![0u8; CONTENT_SIZE];
        assert_eq!(
            record_in_place(&mut buf, 1, 1, 0),
            Err(LayoutError::BadMagic)
        );
        SegPage::new_root(1, 0).encode_into(&mut buf).unwrap();
        let nlist = 16 + slot_area(1) + 28;
        buf[nlist..nlist + 4].copy_from_slice(&9999u32.to_le_bytes());
        assert!(matches!(
            record_in_place(&mut buf, 1, 1, 0),
            Err(LayoutError::Corrupt(_))
        ));
        let mut out = Vec::new();
        assert!(candidates_in_place(&buf, 0, 10, &mut out).is_err());
    }
}

#[cfg(test)]
mod in_place_segment_tests {
    use super::*;
    use crate::core::layout::{BLCKSZ, PAGE_HEADER_SIZE, SPECIAL_SIZE};
    use crate::core::page_delta;

    /// A whole page holding `p` (pd_lower at the end of the content), in
    /// either layout.
    fn whole_page(p: &SegPage, packed: bool) -> Vec<u8> {
        let mut page = vec![0u8; BLCKSZ];
        let content = &mut page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + CONTENT_SIZE];
        let used = if packed {
            p.encode_packed_into(content)
        } else {
            p.encode_into(content).unwrap()
        };
        let lower = (PAGE_HEADER_SIZE + used) as u16;
        let upper = (BLCKSZ - SPECIAL_SIZE) as u16;
        page[12..14].copy_from_slice(&lower.to_ne_bytes());
        page[14..16].copy_from_slice(&upper.to_ne_bytes());
        page
    }

    #[test]
    fn record_delta_replays_to_the_in_place_record() {
        let pairs: Vec<(i64, u32)> = (0..3000i64).map(|k| (k * 5, (k / 40) as u32)).collect();
        let (pages, _dir) = build_pages(pairs, 64, 0.6).unwrap();
        let mut x = 11u64;
        let mut seen = [0usize; 4];
        for packed in [false, true] {
            let mut page = whole_page(&pages[0], packed);
            let content = PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + CONTENT_SIZE;
            let top = pages[0].segs.last().unwrap().lo + 400;
            for step in 0..4000i64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = (x % (top as u64 + 200)) as i64 - 100;
                let blk = match (x >> 40) % 5 {
                    0 => 5000 + (x >> 20) as u32 % 3000,
                    r => ((key.max(0) / 200) as u32 + r as u32).saturating_sub(2),
                };
                let mut delta = Vec::new();
                let (got, got_used) = record_delta(
                    &page[content.clone()],
                    key,
                    blk,
                    step,
                    1,
                    PAGE_HEADER_SIZE,
                    &mut delta,
                )
                .unwrap();
                let mut want = page.clone();
                let (outcome, used) =
                    record_rows_in_place(&mut want[content.clone()], key, blk, step, 1).unwrap();
                assert_eq!((got, got_used), (outcome, used), "step {step}");
                seen[got as usize] += 1;
                if got == Recorded::NeedsSpace {
                    assert!(delta.is_empty());
                    assert_eq!(want, page);
                    continue;
                }
                let lower = (PAGE_HEADER_SIZE + used) as u16;
                want[12..14].copy_from_slice(&lower.to_ne_bytes());
                page_delta::apply(&mut page, &delta);
                assert_eq!(page, want, "packed {packed} step {step} {got:?}");
            }
        }
        assert!(seen.iter().all(|&n| n > 20), "{seen:?}");
    }

    #[test]
    fn count_delta_replays_to_the_in_place_counts() {
        let pairs: Vec<(i64, u32)> = (0..5000i64).map(|k| (k * 3, (k / 40) as u32)).collect();
        let (pages, _dir) = build_pages(pairs, 64, 0.9).unwrap();
        let mut x = 7u64;
        for packed in [false, true] {
            for round in 0..50i64 {
                let page = whole_page(&pages[round as usize % pages.len()], packed);
                let mut entries: Vec<(i64, i64)> = (0..1 + round % 9)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        ((x % 16_000) as i64 - 500, 1 + (x % 3) as i64)
                    })
                    .collect();
                let mut want = page.clone();
                let content = PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + CONTENT_SIZE;
                add_rows_sorted_in_place(&mut want[content.clone()], &mut entries.clone(), round)
                    .unwrap();
                let targets = count_targets(&page[content.clone()], &mut entries).unwrap();
                assert!(!targets.is_empty() && targets.len() <= entries.len());
                assert!(
                    targets.windows(2).all(|w| w[0].0 < w[1].0),
                    "one per segment"
                );
                let stamped = targets
                    .iter()
                    .filter(|&&(off, _)| {
                        get_i64(
                            &page[content.clone()],
                            off + offset_of!(SegHeader, updated_at),
                        ) == round
                    })
                    .count();
                let mut delta = Vec::new();
                count_delta(
                    &page[content],
                    &targets,
                    round,
                    PAGE_HEADER_SIZE,
                    &mut delta,
                );
                assert_eq!(delta.len(), (targets.len() * 2 - stamped) * (4 + 8));
                let mut replayed = page.clone();
                page_delta::apply(&mut replayed, &delta);
                assert_eq!(replayed, want, "packed {packed} round {round}");
                // Counted again in the same statement: the stamps are
                // already `now`, only the counts change.
                let body = &replayed[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + CONTENT_SIZE];
                let again = count_targets(body, &mut entries).unwrap();
                let mut delta = Vec::new();
                count_delta(body, &again, round, PAGE_HEADER_SIZE, &mut delta);
                assert_eq!(delta.len(), again.len() * (4 + 8));
            }
        }
    }

    #[test]
    fn one_walk_adds_what_a_walk_per_entry_adds() {
        let pairs: Vec<(i64, u32)> = (0..5000i64).map(|k| (k * 3, (k / 40) as u32)).collect();
        let (pages, _dir) = build_pages(pairs, 256, 0.9).unwrap();
        let mut one = vec![0u8; CONTENT_SIZE];
        pages[0].encode_into(&mut one).unwrap();
        let mut each = one.clone();
        // Unsorted, repeated segments, a key below the first segment.
        let mut entries = vec![
            (3000i64, 2i64),
            (0, 1),
            (-50, 4),
            (767, 1),
            (768, 3),
            (3001, 5),
        ];
        for &(k, r) in &entries {
            add_rows_in_place(&mut each, k, r, 77).unwrap();
        }
        add_rows_sorted_in_place(&mut one, &mut entries, 77).unwrap();
        assert_eq!(one, each);
        add_rows_sorted_in_place(&mut one, &mut [], 78).unwrap();
        assert_eq!(one, each);
    }

    #[test]
    fn covered_at_agrees_with_the_walk_and_refuses_other_offsets() {
        let pairs: Vec<(i64, u32)> = (0..5000i64).map(|k| (k * 3, (k / 40) as u32)).collect();
        let (pages, _dir) = build_pages(pairs, 256, 0.9).unwrap();
        let mut buf = vec![0u8; CONTENT_SIZE];
        pages[0].encode_into(&mut buf).unwrap();
        for key in [0i64, 1, 767, 768, 3000] {
            let mut listed = Vec::new();
            let found = listed_in_place_at(&buf, key, &mut listed).unwrap();
            let (seg, off) = (found.head, found.off);
            for blk in [0u32, 1, 7, 99] {
                assert_eq!(
                    covered_at(&buf, off, key, blk).unwrap(),
                    Some(covered_in_place(&buf, key, blk).unwrap()),
                    "key {key} block {blk}"
                );
            }
            assert_eq!(covered_at(&buf, off, key, 0).unwrap().unwrap().0, seg.id);
            // A key of another segment, or an offset that is no header.
            assert_eq!(covered_at(&buf, off, key + 100_000, 0).unwrap(), None);
            assert_eq!(covered_at(&buf, 0, key, 0).unwrap(), None);
            assert_eq!(covered_at(&buf, CONTENT_SIZE, key, 0).unwrap(), None);
        }
    }

    #[test]
    fn point_candidates_match_the_decoded_page_where_zones_overlap() {
        // Keys in order, blocks scattered: every block's zone spans most of
        // its segment, so a key has several candidate blocks.
        let pairs: Vec<(i64, u32)> = (0..3000i64).map(|k| (k, (k * 7919 % 13) as u32)).collect();
        let (pages, _dir) = build_pages(pairs, 256, 0.9).unwrap();
        let page = &pages[0];
        let mut buf = vec![0u8; CONTENT_SIZE];
        page.encode_into(&mut buf).unwrap();
        let mut listed = Vec::new();
        let mut most = 0;
        for key in (-5..3005i64).step_by(7) {
            listed_in_place_at(&buf, key, &mut listed).unwrap();
            let got = point_candidates(&listed, key);
            assert_eq!(
                got,
                page.candidates(key, key).collect::<Vec<u32>>(),
                "key {key}"
            );
            most = most.max(got.len());
        }
        assert!(most > 1, "zones should overlap: at most {most} candidates");
    }

    fn l(blkno: u32, zmin: i64, zmax: i64) -> Listed {
        Listed { blkno, zmin, zmax }
    }

    #[test]
    fn segment_in_place_matches_the_decoded_page() {
        let pairs: Vec<(i64, u32)> = (0..5000i64).map(|k| (k * 3, (k / 40) as u32)).collect();
        let (pages, _dir) = build_pages(pairs, 256, 0.9).unwrap();
        let page = &pages[0];
        let mut buf = vec![0u8; CONTENT_SIZE];
        page.encode_into(&mut buf).unwrap();
        let mut listed = vec![l(0, 1, 2)];
        for key in [0i64, 1, 767, 768, 3000, 14_000] {
            let found = listed_in_place_at(&buf, key, &mut listed).unwrap();
            let (head, hi) = (found.head, found.hi);
            let si = page.find_segment(key);
            let want = &page.segs[si];
            // Inside: at or above the first segment's key, below the last's.
            let last = page.segs.len() - 1;
            assert_eq!(
                found.inside,
                key >= page.segs[0].lo && si < last,
                "key {key}"
            );
            assert_eq!(
                head,
                SegHead {
                    lo: want.lo,
                    id: want.id,
                    row_count: want.row_count
                },
                "key {key}"
            );
            let zones: Vec<Listed> = want
                .listings
                .iter()
                .map(|w| l(w.blkno, w.zmin, w.zmax()))
                .collect();
            assert_eq!(listed, zones, "key {key}");
            assert_eq!(hi, page.segment_hi(si, None), "key {key}");
            assert_eq!(
                point_candidates(&listed, key),
                page.candidates(key, key).collect::<Vec<u32>>(),
                "key {key}"
            );
        }
        // Below a page's first segment the page cannot vouch for the key.
        let pairs: Vec<(i64, u32)> = (0..200_000i64).map(|k| (k * 3, (k / 40) as u32)).collect();
        let (pages, _dir) = build_pages(pairs, 256, 0.9).unwrap();
        assert!(pages.len() >= 2, "{} pages", pages.len());
        let second = &pages[1];
        let mut buf = vec![0u8; CONTENT_SIZE];
        second.encode_into(&mut buf).unwrap();
        let below = second.segs[0].lo - 1;
        assert!(!listed_in_place_at(&buf, below, &mut listed).unwrap().inside);
        let at = second.segs[0].lo;
        assert_eq!(
            listed_in_place_at(&buf, at, &mut listed).unwrap().inside,
            second.segs.len() > 1
        );
    }
}
