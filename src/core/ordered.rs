//! Key-ordered index scans over a map that only knows, per heap block, the
//! zone `[zmin, zmax]` its keys fall in.
//!
//! Blocks are read in zone order; a loaded tuple is final — nothing unread
//! can sort before it — once its key is at most the next unread block's
//! `zmin` (forward). On a clustered table zones barely overlap, so only a
//! block or two is pending at a time and `ORDER BY … LIMIT` reads as few
//! blocks as the limit needs. Backward scans mirror this on `zmax`.
//!
//! Rows with a NULL key are in no zone; a scan without key conditions must
//! still return them (ascending order puts them last), so it ends, or when
//! running backward begins, with a pass over every heap block for them.
//!
//! The cursor serves PostgreSQL's scan protocol on top of the stream:
//! direction changes and mark/restore move within what was already
//! produced, so every entry is kept until the scan ends or restarts.
//!
//! Storage is abstract ([`Store`]): the access method keeps entries in
//! memory owned by the scan's memory context, tests use a `Vec`.

/// One heap tuple in scan order: its key and the TID the executor fetches
/// (the root of its HOT chain). `null` marks a NULL-key row (key is 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub key: i64,
    pub blk: u32,
    pub off: u16,
    pub null: u16,
}
const _: () = assert!(std::mem::size_of::<Entry>() == 16);

/// A candidate heap block and the key range its tuples can have.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    pub blk: u32,
    pub zmin: i64,
    pub zmax: i64,
}

/// Merges the zones of blocks listed more than once (a block can be listed
/// by several segments), clips them to `[lo, hi]` and orders them for a
/// stream in the given direction.
pub fn stream_zones(mut zones: Vec<Zone>, lo: i64, hi: i64, forward: bool) -> Vec<Zone> {
    zones.sort_unstable_by_key(|z| z.blk);
    let mut merged: Vec<Zone> = Vec::with_capacity(zones.len());
    for z in zones {
        match merged.last_mut() {
            Some(m) if m.blk == z.blk => {
                m.zmin = m.zmin.min(z.zmin);
                m.zmax = m.zmax.max(z.zmax);
            }
            _ => merged.push(z),
        }
    }
    for m in &mut merged {
        m.zmin = m.zmin.max(lo);
        m.zmax = m.zmax.min(hi);
    }
    if forward {
        merged.sort_unstable_by_key(|z| (z.zmin, z.blk));
    } else {
        merged.sort_unstable_by_key(|z| (std::cmp::Reverse(z.zmax), std::cmp::Reverse(z.blk)));
    }
    merged
}

/// Growable storage for entries (see module comment).
pub trait Store {
    type Err;
    fn push(&mut self, e: Entry) -> Result<(), Self::Err>;
    fn entries(&mut self) -> &mut [Entry];
    /// Drops the first `n` entries.
    fn drop_front(&mut self, n: usize);
}

impl Store for Vec<Entry> {
    type Err = std::convert::Infallible;
    fn push(&mut self, e: Entry) -> Result<(), Self::Err> {
        Vec::push(self, e);
        Ok(())
    }
    fn entries(&mut self) -> &mut [Entry] {
        self
    }
    fn drop_front(&mut self, n: usize) {
        self.drain(..n);
    }
}

const PHASE_NULLS_FIRST: u8 = 0;
const PHASE_KEYED: u8 = 1;
const PHASE_NULLS_LAST: u8 = 2;

/// The producer: which zones were read, which entries wait. Plain data, so
/// it can live in memory PostgreSQL frees on error.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub forward: bool,
    phase: u8,
    sorted: bool,
    /// Next zone to read.
    next_zone: usize,
    /// First pending entry not yet produced.
    head: usize,
    /// Smallest (forward) or largest (backward) pending key.
    best: i64,
    /// Heap blocks to search for NULL keys (0: none) and how many were.
    null_blocks: u32,
    null_done: u32,
    /// The zones given are the last: no [`Next::NeedZones`] any more.
    zones_final: bool,
}

/// What [`Stream::next`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Entry(Entry),
    /// Every given zone was read and produced: supply the zones of the next
    /// key interval (then [`Stream::new_zones`]) or call
    /// [`Stream::zones_final`].
    NeedZones,
    End,
}

/// Reads one heap block into the pending store: its in-range keyed tuples
/// (`nulls` false) or its NULL-key tuples (`nulls` true).
pub trait Loader<S: Store> {
    fn load(&mut self, blk: u32, nulls: bool, into: &mut S) -> Result<(), S::Err>;
}

impl Stream {
    /// A stream in `forward` or backward key order; `null_blocks` heap
    /// blocks are searched for NULL keys (0 when the scan has key
    /// conditions or the table has no NULL keys).
    pub fn new(forward: bool, null_blocks: u32) -> Stream {
        Stream {
            forward,
            phase: if !forward && null_blocks > 0 {
                PHASE_NULLS_FIRST
            } else {
                PHASE_KEYED
            },
            sorted: true,
            next_zone: 0,
            head: 0,
            best: 0,
            null_blocks,
            null_done: 0,
            zones_final: false,
        }
    }

    /// The caller replaced the zones with the next key interval's. Every
    /// key of that interval must sort after (forward) or before (backward)
    /// every key of the earlier ones: the loader filters to the interval.
    pub fn new_zones(&mut self) {
        self.next_zone = 0;
    }

    /// No zones follow the current ones.
    pub fn zones_final(&mut self) {
        self.zones_final = true;
    }

    fn final_before(&self, zones: &[Zone]) -> bool {
        if self.phase != PHASE_KEYED {
            return true;
        }
        match zones.get(self.next_zone) {
            None => true,
            Some(z) if self.forward => self.best <= z.zmin,
            Some(z) => self.best >= z.zmax,
        }
    }

    fn pop<S: Store>(&mut self, pending: &mut S) -> Entry {
        let forward = self.forward;
        let head = self.head;
        if !self.sorted {
            let rest = &mut pending.entries()[head..];
            if forward {
                rest.sort_unstable();
            } else {
                rest.sort_unstable_by(|a, b| b.cmp(a));
            }
            self.sorted = true;
        }
        let all = pending.entries();
        let e = all[head];
        let n = all.len();
        self.head += 1;
        if self.head == n {
            pending.drop_front(n);
            self.head = 0;
        } else {
            self.best = all[self.head].key;
            // Keep the produced prefix from growing without bound.
            if self.head >= 1024 && self.head * 2 >= n {
                pending.drop_front(self.head);
                self.head = 0;
            }
        }
        e
    }

    fn load<S: Store, L: Loader<S>>(
        &mut self,
        blk: u32,
        nulls: bool,
        pending: &mut S,
        loader: &mut L,
    ) -> Result<(), S::Err> {
        let before = pending.entries().len();
        let had = self.head < before;
        loader.load(blk, nulls, pending)?;
        let forward = self.forward;
        let mut best = if had { Some(self.best) } else { None };
        for e in &pending.entries()[before..] {
            best = Some(match best {
                None => e.key,
                Some(b) if forward => b.min(e.key),
                Some(b) => b.max(e.key),
            });
        }
        if pending.entries().len() > before {
            self.sorted = false;
        }
        if let Some(b) = best {
            self.best = b;
        }
        Ok(())
    }

    fn next_null_block(&mut self) -> Option<u32> {
        if self.null_done >= self.null_blocks {
            return None;
        }
        let i = self.null_done;
        self.null_done += 1;
        Some(if self.forward {
            i
        } else {
            self.null_blocks - 1 - i
        })
    }

    /// The next entry in stream order, a request for more zones, or the end.
    pub fn next<S: Store, L: Loader<S>>(
        &mut self,
        zones: &[Zone],
        pending: &mut S,
        loader: &mut L,
    ) -> Result<Next, S::Err> {
        loop {
            if self.head < pending.entries().len() && self.final_before(zones) {
                return Ok(Next::Entry(self.pop(pending)));
            }
            match self.phase {
                PHASE_KEYED => {
                    if let Some(z) = zones.get(self.next_zone) {
                        self.next_zone += 1;
                        self.load(z.blk, false, pending, loader)?;
                    } else if !self.zones_final {
                        return Ok(Next::NeedZones);
                    } else if self.forward && self.null_blocks > 0 {
                        self.phase = PHASE_NULLS_LAST;
                    } else {
                        return Ok(Next::End);
                    }
                }
                _ => match self.next_null_block() {
                    Some(b) => self.load(b, true, pending, loader)?,
                    None if self.phase == PHASE_NULLS_FIRST => self.phase = PHASE_KEYED,
                    None => return Ok(Next::End),
                },
            }
        }
    }
}

/// What the caller does for one `amgettuple` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Return the entry at this index of the produced sequence.
    Item(usize),
    /// Produce one more entry (then step again), or call
    /// [`Cursor::exhaust`] if the stream has ended.
    Pull,
    /// No tuple in this direction.
    End,
}

/// Position in the produced sequence. `pos` is -1 before the first entry
/// and `len` after the last, as seen in the stream's direction.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub pos: i64,
    pub started: bool,
    /// Direction of the stream (set by the first call).
    pub forward: bool,
    /// No more entries can be produced: `len` is final.
    pub exhausted: bool,
}

impl Cursor {
    /// A cursor over a sequence that is produced lazily.
    pub fn streaming() -> Cursor {
        Cursor {
            pos: -1,
            started: false,
            forward: true,
            exhausted: false,
        }
    }

    /// Fixes the stream direction on the first call.
    pub fn begin(&mut self, forward: bool) {
        if self.started {
            return;
        }
        self.started = true;
        self.forward = forward;
        self.pos = -1;
    }

    pub fn step(&mut self, len: usize, forward: bool) -> Step {
        let len = len as i64;
        if forward == self.forward {
            if self.pos + 1 < len {
                self.pos += 1;
                Step::Item(self.pos as usize)
            } else if !self.exhausted {
                Step::Pull
            } else {
                self.pos = len;
                Step::End
            }
        } else if self.pos >= 1 {
            self.pos = (self.pos - 1).min(len - 1);
            Step::Item(self.pos as usize)
        } else {
            self.pos = -1;
            Step::End
        }
    }

    pub fn exhaust(&mut self) {
        self.exhausted = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap: block → (key or None, offset) tuples.
    struct Heap(Vec<Vec<(Option<i64>, u16)>>, i64, i64, Vec<u32>);

    impl Loader<Vec<Entry>> for Heap {
        fn load(
            &mut self,
            blk: u32,
            nulls: bool,
            into: &mut Vec<Entry>,
        ) -> Result<(), std::convert::Infallible> {
            self.3.push(blk);
            for &(k, off) in &self.0[blk as usize] {
                match (k, nulls) {
                    (Some(k), false) if k >= self.1 && k <= self.2 => into.push(Entry {
                        key: k,
                        blk,
                        off,
                        null: 0,
                    }),
                    (None, true) => into.push(Entry {
                        key: 0,
                        blk,
                        off,
                        null: 1,
                    }),
                    _ => {}
                }
            }
            Ok(())
        }
    }

    fn zones_of(h: &Heap) -> Vec<Zone> {
        h.0.iter()
            .enumerate()
            .filter_map(|(b, ts)| {
                let ks: Vec<i64> = ts.iter().filter_map(|t| t.0).collect();
                Some(Zone {
                    blk: b as u32,
                    zmin: *ks.iter().min()?,
                    zmax: *ks.iter().max()?,
                })
            })
            .collect()
    }

    fn heap(blocks: &[&[Option<i64>]], lo: i64, hi: i64) -> Heap {
        Heap(
            blocks
                .iter()
                .map(|b| {
                    b.iter()
                        .enumerate()
                        .map(|(i, k)| (*k, i as u16 + 1))
                        .collect()
                })
                .collect(),
            lo,
            hi,
            Vec::new(),
        )
    }

    fn run(h: &mut Heap, forward: bool, null_blocks: u32) -> Vec<Entry> {
        let zones = stream_zones(zones_of(h), h.1, h.2, forward);
        let mut s = Stream::new(forward, null_blocks);
        s.zones_final();
        let mut pending = Vec::new();
        let mut out = Vec::new();
        while let Next::Entry(e) = s.next(&zones, &mut pending, h).unwrap() {
            out.push(e);
        }
        out
    }

    fn keys(v: &[Entry]) -> Vec<Option<i64>> {
        v.iter()
            .map(|e| if e.null != 0 { None } else { Some(e.key) })
            .collect()
    }

    #[test]
    fn overlapping_zones_come_out_sorted_both_ways() {
        let blocks: &[&[Option<i64>]] = &[
            &[Some(5), Some(1), Some(9)],
            &[Some(4), Some(2)],
            &[Some(12), Some(10), Some(11)],
            &[Some(3), Some(8), Some(8)],
        ];
        let mut h = heap(blocks, i64::MIN, i64::MAX);
        let fwd = keys(&run(&mut h, true, 0));
        let want: Vec<Option<i64>> = [1, 2, 3, 4, 5, 8, 8, 9, 10, 11, 12]
            .iter()
            .map(|&k| Some(k))
            .collect();
        assert_eq!(fwd, want);
        let bwd = keys(&run(&mut h, false, 0));
        let mut rev = want.clone();
        rev.reverse();
        assert_eq!(bwd, rev);
    }

    #[test]
    fn disjoint_zones_read_only_what_the_first_rows_need() {
        // Ten blocks of ten ascending keys: the first 15 rows need 2 blocks
        // (the third is read to prove nothing unread sorts before row 20).
        let data: Vec<Vec<Option<i64>>> = (0..10)
            .map(|b| (0..10).rev().map(|i| Some(b * 10 + i)).collect())
            .collect();
        let refs: Vec<&[Option<i64>]> = data.iter().map(|v| v.as_slice()).collect();
        let mut h = heap(&refs, i64::MIN, i64::MAX);
        let zones = stream_zones(zones_of(&h), h.1, h.2, true);
        let mut s = Stream::new(true, 0);
        s.zones_final();
        let mut pending = Vec::new();
        for want in 0..15 {
            let Next::Entry(e) = s.next(&zones, &mut pending, &mut h).unwrap() else {
                panic!("stream ended early");
            };
            assert_eq!(e.key, want);
        }
        assert_eq!(h.3, vec![0, 1]);
        assert!(pending.len() <= 10);
    }

    #[test]
    fn range_clips_keys_and_zones() {
        let blocks: &[&[Option<i64>]] = &[&[Some(1), Some(7)], &[Some(3), Some(20)], &[Some(30)]];
        let mut h = heap(blocks, 3, 10);
        // Block 2's zone misses the range: it is not a candidate at all in
        // the AM; here its zone is clipped empty and it yields nothing.
        assert_eq!(keys(&run(&mut h, true, 0)), vec![Some(3), Some(7)]);
    }

    #[test]
    fn nulls_last_forward_first_backward() {
        let blocks: &[&[Option<i64>]] = &[&[Some(2), None], &[None, Some(1)]];
        let mut h = heap(blocks, i64::MIN, i64::MAX);
        assert_eq!(
            keys(&run(&mut h, true, 2)),
            vec![Some(1), Some(2), None, None]
        );
        assert_eq!(
            keys(&run(&mut h, false, 2)),
            vec![None, None, Some(2), Some(1)]
        );
    }

    #[test]
    fn random_heaps_match_a_sort() {
        // A small deterministic generator: no extra crate.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..200 {
            let nb = 1 + rnd(12) as usize;
            let data: Vec<Vec<Option<i64>>> = (0..nb)
                .map(|_| {
                    let base = rnd(100) as i64;
                    (0..rnd(8))
                        .map(|_| {
                            if rnd(10) == 0 {
                                None
                            } else {
                                Some(base + rnd(30) as i64)
                            }
                        })
                        .collect()
                })
                .collect();
            let refs: Vec<&[Option<i64>]> = data.iter().map(|v| v.as_slice()).collect();
            let (lo, hi) = (rnd(60) as i64, 60 + rnd(80) as i64);
            let mut h = heap(&refs, lo, hi);
            let mut want: Vec<i64> = data
                .iter()
                .flatten()
                .filter_map(|k| *k)
                .filter(|k| (lo..=hi).contains(k))
                .collect();
            want.sort_unstable();
            let got: Vec<i64> = run(&mut h, true, 0).iter().map(|e| e.key).collect();
            assert_eq!(got, want);
            want.reverse();
            let got: Vec<i64> = run(&mut h, false, 0).iter().map(|e| e.key).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn key_intervals_are_streamed_one_after_another() {
        // Block 1 holds keys of both intervals [0, 9] and [10, 19]; it is
        // listed in each, and each interval's load keeps only its keys.
        let blocks: &[&[Option<i64>]] = &[
            &[Some(3), Some(1)],
            &[Some(12), Some(2), Some(15)],
            &[Some(11), Some(19)],
        ];
        for forward in [true, false] {
            let mut h = heap(blocks, 0, 19);
            let intervals = if forward {
                [(0, 9), (10, 19)]
            } else {
                [(10, 19), (0, 9)]
            };
            let mut s = Stream::new(forward, 0);
            let mut pending = Vec::new();
            let mut out = Vec::new();
            let mut next_interval = 0;
            let mut zones = Vec::new();
            loop {
                match s.next(&zones, &mut pending, &mut h).unwrap() {
                    Next::Entry(e) => out.push(e.key),
                    Next::End => break,
                    Next::NeedZones => {
                        let (lo, hi) = intervals[next_interval];
                        next_interval += 1;
                        h.1 = lo;
                        h.2 = hi;
                        let listed: Vec<Zone> = zones_of(&h)
                            .into_iter()
                            .filter(|z| z.zmax >= lo && z.zmin <= hi)
                            .collect();
                        zones = stream_zones(listed, lo, hi, forward);
                        s.new_zones();
                        if next_interval == intervals.len() {
                            s.zones_final();
                        }
                    }
                }
            }
            let mut want = vec![1, 2, 3, 11, 12, 15, 19];
            if !forward {
                want.reverse();
            }
            assert_eq!(out, want);
        }
    }

    /// Drives a cursor over a lazily produced 0..n sequence.
    fn drive(c: &mut Cursor, produced: &mut Vec<i64>, n: i64, forward: bool) -> Option<i64> {
        c.begin(forward);
        loop {
            match c.step(produced.len(), forward) {
                Step::Item(i) => return Some(produced[i]),
                Step::End => return None,
                Step::Pull => {
                    let next = produced.len() as i64;
                    if next < n {
                        produced.push(next);
                    } else {
                        c.exhaust();
                    }
                }
            }
        }
    }

    #[test]
    fn cursor_moves_like_a_btree_scan() {
        let mut c = Cursor::streaming();
        let mut p = Vec::new();
        assert_eq!(drive(&mut c, &mut p, 4, true), Some(0));
        assert_eq!(drive(&mut c, &mut p, 4, true), Some(1));
        assert_eq!(drive(&mut c, &mut p, 4, true), Some(2));
        assert_eq!(drive(&mut c, &mut p, 4, false), Some(1));
        let mark = c.pos;
        assert_eq!(drive(&mut c, &mut p, 4, false), Some(0));
        assert_eq!(drive(&mut c, &mut p, 4, false), None);
        assert_eq!(drive(&mut c, &mut p, 4, true), Some(0));
        c.pos = mark; // restore: the next forward step follows the mark
        assert_eq!(drive(&mut c, &mut p, 4, true), Some(2));
        assert_eq!(drive(&mut c, &mut p, 4, true), Some(3));
        assert_eq!(drive(&mut c, &mut p, 4, true), None);
        assert_eq!(drive(&mut c, &mut p, 4, true), None);
        assert_eq!(drive(&mut c, &mut p, 4, false), Some(3));
    }
}
