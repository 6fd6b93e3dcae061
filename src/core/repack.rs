//! What `clustered_pg.repack(regclass)` moves, in which order, and where
//! it puts each row: pure decisions, driven by src/sql/repack.rs.
//!
//! A segment needs repack when a key range inside it costs more than one
//! block per key run: its own zones overlap (it is *fragmented*, the seed's
//! notion), or one of its heap blocks is shared with segments that are not
//! consecutive in key order (rows placed before their segments split
//! apart). Rows of such segments are moved in key order
//! into blocks filled one after another, so each segment ends up on a run
//! of its own blocks, shared at most with its neighbours at the ends, and
//! a table repacked from end to end is in key order on disk.

use super::layout::{Listing, Segment};
use super::seedapi::{is_fragmented, zones_overlap};
use std::collections::HashMap;

/// Which segments list each heap block, to tell blocks in key order from
/// scattered ones.
pub struct Owners(HashMap<u32, Vec<usize>>);

impl Owners {
    pub fn of(segs: &[&Segment]) -> Owners {
        let mut owners: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, s) in segs.iter().enumerate() {
            for l in &s.listings {
                let v = owners.entry(l.blkno).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            }
        }
        Owners(owners)
    }

    /// A block is in key order when the segments listing it are
    /// consecutive (it holds one key run: the tail of one, maybe small
    /// segments whole, the head of the next).
    pub fn scattered(&self, blkno: u32) -> bool {
        self.0
            .get(&blkno)
            .is_some_and(|v| v.len() > 1 && v[v.len() - 1] - v[0] + 1 != v.len())
    }
}

/// Whether a segment with these listings needs repack.
pub fn needs_repack(listings: &[Listing], owners: &Owners) -> bool {
    is_fragmented(listings) || listings.iter().any(|l| owners.scattered(l.blkno))
}

/// A block and the keys of one segment it really holds (exact: a map
/// listing stores a zone's width in 32 bits and saturates wider ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveZone {
    pub blkno: u32,
    pub min: i64,
    pub max: i64,
}

/// [`needs_repack`] for where the segment's live rows really are.
pub fn live_needs_repack(zones: &[LiveZone], owners: &Owners) -> bool {
    zones_overlap(zones.iter().map(|z| (z.min, z.max)).collect())
        || zones.iter().any(|z| owners.scattered(z.blkno))
}

/// Indexes (in key order) of the segments whose map listings say they need
/// repack: the candidates, before their blocks are read. `owners` is
/// [`Owners::of`] the same segments (the caller keeps it for the live check).
pub fn segments_to_repack(segs: &[&Segment], owners: &Owners) -> Vec<usize> {
    (0..segs.len())
        .filter(|&i| needs_repack(&segs[i].listings, owners))
        .collect()
}

/// Where a segment's current rows (live or in flight) really are: one listing per block, zoned by
/// the keys it holds. A block left with only dead versions (a repack not
/// yet followed by VACUUM) is not among them, so a segment already moved
/// into order is not moved again.
pub fn live_zones(rows: &[Row]) -> Vec<LiveZone> {
    let mut zones: HashMap<u32, (i64, i64)> = HashMap::new();
    for r in rows {
        let z = zones.entry(r.blkno).or_insert((r.key, r.key));
        z.0 = z.0.min(r.key);
        z.1 = z.1.max(r.key);
    }
    let mut v: Vec<LiveZone> = zones
        .into_iter()
        .map(|(blkno, (min, max))| LiveZone { blkno, min, max })
        .collect();
    v.sort_unstable_by_key(|z| (z.min, z.blkno));
    v
}

/// How many times its ideal number of blocks a segment's current rows may
/// occupy before the background worker moves it. Moving a segment rewrites
/// all of its rows; a few rows updated off their full pages should not
/// rewrite a whole table (the manual repack still moves every segment that
/// needs it).
pub const WORKER_SLACK: f64 = 1.25;

/// Whether the worker should move a segment whose current rows (`rows`)
/// lie in `blocks` blocks, pages holding up to `per_page` rows. A segment
/// in perfect order still starts and ends mid-block (sharing those blocks
/// with its neighbours), so its ideal is one block more than its rows fill.
pub fn worth_moving(blocks: usize, rows: usize, per_page: usize) -> bool {
    let ideal = rows.div_ceil(per_page.max(1)) + 1;
    blocks as f64 > ideal as f64 * WORKER_SLACK
}

/// Whether a segment last changed at `updated_at` (TimestampTz
/// microseconds) has been left alone for more than `interval_secs`: the
/// background worker repacks only such segments, so rows still arriving
/// in a key range are not moved under their writers. 0 = never.
pub fn unchanged_for(updated_at: i64, now: i64, interval_secs: i32) -> bool {
    interval_secs > 0
        && now.saturating_sub(updated_at) > i64::from(interval_secs).saturating_mul(1_000_000)
}

/// Whether segment `i` of `segs` owns `key` (its range ends where the next
/// segment's begins).
pub fn owns(segs: &[&Segment], i: usize, key: i64) -> bool {
    key >= segs[i].lo && segs.get(i + 1).is_none_or(|n| key < n.lo)
}

/// A row to move: its key and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub key: i64,
    pub blkno: u32,
    pub offnum: u16,
}

/// The rows of one segment in the order they move: by key, ties in their
/// current physical order. A row listed twice (a block the segment lists
/// more than once cannot happen, but a caller reading shared blocks might
/// hand it twice) moves once.
pub fn move_order(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// What one attempt to move a row did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Moved; the new version is in this block.
    Moved(u32),
    /// Someone is changing the row, or it is gone: left where it is.
    Skipped,
    /// The target block lacks room for it within the table's fillfactor.
    NoRoom,
}

/// What to do next with the current row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Go on with the next row.
    Done,
    /// Try the same row again (with [`Filler::target`] and
    /// [`Filler::force`]).
    Retry,
}

/// The block being filled. Rows go to it until it is full, then to a fresh
/// block (an empty page or a new one at the end of the table), so the
/// blocks of a repack follow key order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filler {
    current: Option<u32>,
    /// The current block was taken fresh for the row being moved: a row
    /// that does not fit even there is bigger than a page within the
    /// fillfactor, and heap must choose.
    fresh: bool,
    force: bool,
    /// Fresh blocks taken so far.
    pub blocks: u64,
}

impl Filler {
    /// The block to try, or None when a fresh one is needed first
    /// ([`Filler::take_fresh`]).
    pub fn target(&self) -> Option<u32> {
        self.current
    }

    /// Whether the attempt may ignore the fillfactor (heap chooses).
    pub fn force(&self) -> bool {
        self.force
    }

    /// The next rows do not follow the last ones in key order (a segment
    /// that needs no repack lies between): they start a block of their
    /// own, so that no block is shared by segments that are not neighbours.
    pub fn new_run(&mut self) {
        self.current = None;
        self.fresh = false;
        self.force = false;
    }

    pub fn take_fresh(&mut self, blkno: u32) {
        self.current = Some(blkno);
        self.fresh = true;
        self.blocks += 1;
    }

    pub fn after(&mut self, outcome: Outcome) -> Next {
        match outcome {
            Outcome::Moved(b) => {
                // Heap put it elsewhere: another backend filled our block.
                if self.current != Some(b) {
                    self.current = None;
                }
                self.fresh = false;
                self.force = false;
                Next::Done
            }
            Outcome::Skipped => {
                self.force = false;
                Next::Done
            }
            Outcome::NoRoom if self.fresh => {
                self.force = true;
                Next::Retry
            }
            Outcome::NoRoom => {
                self.current = None;
                Next::Retry
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(segs: &[&Segment]) -> Vec<usize> {
        segments_to_repack(segs, &Owners::of(segs))
    }

    fn seg(lo: i64, zones: &[(i64, i64, u32)]) -> Segment {
        Segment {
            lo,
            listings: zones
                .iter()
                .map(|&(a, z, b)| Listing::from_bounds(a, z, b))
                .collect(),
            ..Segment::new(lo, 0, 0)
        }
    }

    #[test]
    fn clean_segments_stay() {
        // Blocks in key order, neighbours sharing their boundary block.
        let a = seg(i64::MIN, &[(1, 10, 0), (11, 20, 1)]);
        let b = seg(21, &[(21, 25, 1), (26, 40, 2)]);
        let c = seg(41, &[(41, 50, 2), (51, 60, 3)]);
        assert!(candidates(&[&a, &b, &c]).is_empty());
        // A small segment whole inside one block with both neighbours.
        let a = seg(i64::MIN, &[(1, 10, 0)]);
        let b = seg(11, &[(11, 12, 0)]);
        let c = seg(13, &[(13, 20, 0), (21, 30, 1)]);
        assert!(candidates(&[&a, &b, &c]).is_empty());
    }

    #[test]
    fn overlap_and_distant_sharing_repack() {
        let a = seg(i64::MIN, &[(1, 10, 0), (11, 20, 1)]);
        // b's zones overlap: fragmented.
        let b = seg(21, &[(21, 35, 2), (30, 40, 3)]);
        let c = seg(41, &[(41, 50, 4)]);
        // d shares block 0 with a, two segments away.
        let d = seg(61, &[(61, 70, 0), (71, 80, 5)]);
        assert_eq!(candidates(&[&a, &b, &c, &d]), vec![0, 1, 3]);
    }

    #[test]
    fn a_segment_already_in_order_is_not_moved_again() {
        // After a repack, before VACUUM: the map still lists the old,
        // overlapping blocks 0 and 1, but the live rows are in 7 and 8.
        let a = seg(i64::MIN, &[(1, 50, 0), (2, 60, 1), (1, 25, 7), (26, 60, 8)]);
        let b = seg(61, &[(61, 90, 8), (61, 99, 9)]);
        let segs = [&a, &b];
        assert_eq!(candidates(&segs), vec![0, 1]);
        let owners = Owners::of(&segs);
        let r = |key, blkno| Row {
            key,
            blkno,
            offnum: 1,
        };
        let live = live_zones(&[r(1, 7), r(25, 7), r(26, 8), r(60, 8)]);
        assert_eq!(live.len(), 2);
        assert!(!live_needs_repack(&live, &owners));
        // A live row still in an old, overlapping block: move.
        let live = live_zones(&[r(1, 7), r(25, 7), r(26, 8), r(30, 0), r(60, 8)]);
        assert!(live_needs_repack(&live, &owners));
    }

    #[test]
    fn keys_far_apart_are_judged_exactly() {
        // Zones wider than 2^32 saturate in a listing (and overlap there);
        // the live check compares the real keys.
        let step = 50_000_000i64;
        let a = seg(
            i64::MIN,
            &[(step, 90 * step, 0), (91 * step, 180 * step, 1)],
        );
        let segs = [&a];
        let owners = Owners::of(&segs);
        assert_eq!(
            candidates(&segs),
            vec![0],
            "the saturated map zones look fragmented"
        );
        let r = |key, blkno| Row {
            key,
            blkno,
            offnum: 1,
        };
        let live = live_zones(&[
            r(step, 0),
            r(90 * step, 0),
            r(91 * step, 1),
            r(180 * step, 1),
        ]);
        assert!(!live_needs_repack(&live, &owners));
    }

    #[test]
    fn ownership_follows_the_next_lower_bound() {
        let a = seg(i64::MIN, &[]);
        let b = seg(10, &[]);
        let segs = [&a, &b];
        assert!(owns(&segs, 0, 9) && !owns(&segs, 0, 10));
        assert!(owns(&segs, 1, 10) && owns(&segs, 1, i64::MAX));
    }

    #[test]
    fn only_quiet_segments_are_due() {
        let now = 10_000_000_000;
        assert!(unchanged_for(now - 61_000_000, now, 60));
        assert!(!unchanged_for(now - 59_000_000, now, 60));
        assert!(!unchanged_for(0, now, 0), "0 = never");
        assert!(unchanged_for(i64::MIN, i64::MAX, i32::MAX), "no overflow");
    }

    #[test]
    fn the_worker_leaves_a_few_strays_alone() {
        // After a random load: 1,000 rows over 200 shared blocks.
        assert!(worth_moving(200, 1000, 55));
        // After churn on full pages: 19 blocks' worth (+1 for the ends)
        // in 22; 26 is too many.
        assert!(!worth_moving(22, 1000, 55));
        assert!(worth_moving(26, 1000, 55));
        // 160 rows of a 62-row page in order span 4 blocks; one more block
        // of updated rows is tolerated, two are not.
        assert!(!worth_moving(5, 160, 62));
        assert!(worth_moving(6, 160, 62));
        // Tiny segments: two blocks (its neighbours' ends) are in order.
        assert!(!worth_moving(2, 30, 55));
        assert!(worth_moving(3, 30, 55));
        assert!(worth_moving(3, 0, 0), "no rows, no division by zero");
    }

    #[test]
    fn rows_move_in_key_order_once() {
        let r = |key, blkno, offnum| Row { key, blkno, offnum };
        let v = move_order(vec![r(5, 9, 1), r(1, 3, 2), r(5, 2, 7), r(1, 3, 2)]);
        assert_eq!(v, vec![r(1, 3, 2), r(5, 2, 7), r(5, 9, 1)]);
    }

    #[test]
    fn filler_fills_one_block_then_takes_the_next() {
        let mut f = Filler::default();
        assert_eq!(f.target(), None);
        f.take_fresh(100);
        assert_eq!(f.after(Outcome::Moved(100)), Next::Done);
        assert_eq!(f.after(Outcome::Moved(100)), Next::Done);
        // Full: the same row again, on a fresh block.
        assert_eq!(f.after(Outcome::NoRoom), Next::Retry);
        assert_eq!(f.target(), None);
        f.take_fresh(101);
        assert!(!f.force());
        assert_eq!(f.after(Outcome::Moved(101)), Next::Done);
        assert_eq!(f.target(), Some(101));
        assert_eq!(f.blocks, 2);
    }

    #[test]
    fn oversized_rows_let_heap_choose() {
        let mut f = Filler::default();
        f.take_fresh(7);
        assert_eq!(f.after(Outcome::NoRoom), Next::Retry);
        assert!(f.force(), "no room on an empty page: heap decides");
        assert_eq!(f.target(), Some(7));
        assert_eq!(f.after(Outcome::Moved(8)), Next::Done);
        assert!(!f.force());
        assert_eq!(
            f.target(),
            None,
            "heap went elsewhere: next row takes a fresh block"
        );
    }

    #[test]
    fn a_gap_between_segments_starts_a_block() {
        let mut f = Filler::default();
        f.take_fresh(3);
        f.after(Outcome::Moved(3));
        f.new_run();
        assert_eq!(f.target(), None);
    }

    #[test]
    fn skipped_rows_keep_the_block() {
        let mut f = Filler::default();
        f.take_fresh(3);
        assert_eq!(f.after(Outcome::Skipped), Next::Done);
        assert_eq!(f.target(), Some(3));
    }
}
