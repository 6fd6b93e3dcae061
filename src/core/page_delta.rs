//! The delta of a generic WAL record (`RM_GENERIC_ID`): which bytes of a
//! page changed, as fragments that PostgreSQL's `generic_redo` replays.
//!
//! `GenericXLogFinish` finds them by comparing the old page with the new one
//! a byte at a time; on the insert path that comparison of a full map page
//! was an eighth of a row's time. Here the comparison runs over 8-byte
//! words, and `pg::buffer` writes the record itself (see `cpg_generic_log`
//! in `csrc/generic_wal.c`). The format is the one `generic_xlog.c` writes
//! and reads: a sequence of `(offset: u16, length: u16, bytes[length])`.
//!
//! A standard page's "hole" between `pd_lower` and `pd_upper` is not in the
//! delta: the primary zeroes it when it applies the new image and redo
//! zeroes it after applying the fragments. Bytes of the new page's data
//! regions that were hole on the old page are always written, as
//! `GenericXLogFinish` does, since nothing guarantees what replay has there.

use crate::core::layout::BLCKSZ;

/// Bytes of a fragment header: offset and length, two u16 each.
const HEADER: usize = 4;

/// `pd_lower` and `pd_upper` of a page (standard page header offsets 12 and
/// 14), clamped so that a damaged header cannot send the encoder out of the
/// page.
pub fn bounds(page: &[u8]) -> (usize, usize) {
    let lower = u16::from_ne_bytes([page[12], page[13]]) as usize;
    let upper = u16::from_ne_bytes([page[14], page[15]]) as usize;
    let lower = lower.min(BLCKSZ);
    (lower, upper.clamp(lower, BLCKSZ))
}

/// Appends to `out` the fragments that turn page `old` into page `new`
/// outside `new`'s hole.
pub fn encode(old: &[u8], new: &[u8], out: &mut Vec<u8>) {
    assert!(old.len() == BLCKSZ && new.len() == BLCKSZ);
    let (old_lower, old_upper) = bounds(old);
    let (new_lower, new_upper) = bounds(new);
    region(old, new, 0, new_lower, 0, old_lower, out);
    region(old, new, new_upper, BLCKSZ, old_upper, BLCKSZ, out);
}

/// Fragments for `new[start..end]`, where only `old[valid_start..valid_end]`
/// may be compared; the rest of the range is written as it is.
fn region(
    old: &[u8],
    new: &[u8],
    start: usize,
    end: usize,
    valid_start: usize,
    valid_end: usize,
    out: &mut Vec<u8>,
) {
    if start >= end {
        return;
    }
    let cmp_start = valid_start.clamp(start, end);
    let cmp_end = valid_end.clamp(cmp_start, end);
    // Changed byte ranges, in order; merged below when close.
    let mut runs: Vec<(usize, usize)> = Vec::with_capacity(16);
    if start < cmp_start {
        runs.push((start, cmp_start));
    }
    differing(old, new, cmp_start, cmp_end, &mut runs);
    if cmp_end < end {
        runs.push((cmp_end, end));
    }
    let mut i = 0;
    while i < runs.len() {
        let (from, mut to) = runs[i];
        i += 1;
        // A gap no longer than a fragment header costs less to resend
        // than to open a new fragment for.
        while i < runs.len() && runs[i].0 - to <= HEADER {
            to = runs[i].1;
            i += 1;
        }
        fragment(from, &new[from..to], out);
    }
}

/// Appends the ranges of `[from, to)` where `old` and `new` differ, each
/// widened to whole 8-byte words (within the range).
fn differing(old: &[u8], new: &[u8], from: usize, to: usize, runs: &mut Vec<(usize, usize)>) {
    let word = |p: &[u8], at: usize| u64::from_ne_bytes(p[at..at + 8].try_into().unwrap());
    let mut push = |a: usize, b: usize| match runs.last_mut() {
        Some(last) if last.1 == a => last.1 = b,
        _ => runs.push((a, b)),
    };
    let mut at = from;
    // Leading bytes up to a word boundary, then words, then the tail.
    while at < to && !at.is_multiple_of(8) {
        if old[at] != new[at] {
            push(at, at + 1);
        }
        at += 1;
    }
    while at + 8 <= to {
        // Most of a page is unchanged: equal 64-byte blocks are skipped
        // with one comparison the compiler can vectorise.
        if at + BLOCK <= to && same_block(&old[at..at + BLOCK], &new[at..at + BLOCK]) {
            at += BLOCK;
            continue;
        }
        if word(old, at) != word(new, at) {
            push(at, at + 8);
        }
        at += 8;
    }
    while at < to {
        if old[at] != new[at] {
            push(at, at + 1);
        }
        at += 1;
    }
}

/// Bytes compared at once by [`same_block`].
const BLOCK: usize = 64;

fn same_block(a: &[u8], b: &[u8]) -> bool {
    let (a, b): (&[u8; BLOCK], &[u8; BLOCK]) = (a.try_into().unwrap(), b.try_into().unwrap());
    let mut acc = 0u8;
    for i in 0..BLOCK {
        acc |= a[i] ^ b[i];
    }
    acc == 0
}

/// Appends one fragment: `bytes` go to page offset `offset`. For deltas of
/// known fields, built without comparing pages (`pg::buffer::log_delta`).
pub fn fragment(offset: usize, bytes: &[u8], out: &mut Vec<u8>) {
    debug_assert!(offset + bytes.len() <= BLCKSZ);
    out.extend_from_slice(&(offset as u16).to_ne_bytes());
    out.extend_from_slice(&(bytes.len() as u16).to_ne_bytes());
    out.extend_from_slice(bytes);
}

/// What `generic_redo` does with a delta: apply the fragments, then zero
/// the hole. Used by the tests, and as the definition the encoder meets.
pub fn apply(page: &mut [u8], delta: &[u8]) {
    let mut at = 0;
    while at + HEADER <= delta.len() {
        let off = u16::from_ne_bytes([delta[at], delta[at + 1]]) as usize;
        let len = u16::from_ne_bytes([delta[at + 2], delta[at + 3]]) as usize;
        at += HEADER;
        page[off..off + len].copy_from_slice(&delta[at..at + len]);
        at += len;
    }
    let (lower, upper) = bounds(page);
    page[lower..upper].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lower: u16, upper: u16, seed: u64) -> Vec<u8> {
        let mut p = vec![0u8; BLCKSZ];
        let mut x = seed | 1;
        for b in p.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x & 0xff) as u8;
        }
        p[12..14].copy_from_slice(&lower.to_ne_bytes());
        p[14..16].copy_from_slice(&upper.to_ne_bytes());
        let (l, u) = bounds(&p);
        p[l..u].fill(0);
        p
    }

    /// Replays `encode(old, new)` on `old` and checks it gives `new`.
    fn round_trip(old: &[u8], new: &[u8]) -> usize {
        let mut delta = Vec::new();
        encode(old, new, &mut delta);
        let mut replayed = old.to_vec();
        apply(&mut replayed, &delta);
        let mut want = new.to_vec();
        let (l, u) = bounds(&want);
        want[l..u].fill(0);
        assert_eq!(replayed, want);
        delta.len()
    }

    #[test]
    fn an_unchanged_page_has_an_empty_delta() {
        let p = page(400, 8192, 7);
        assert_eq!(round_trip(&p, &p), 0);
    }

    #[test]
    fn one_changed_byte_is_one_small_fragment() {
        let old = page(400, 8192, 7);
        let mut new = old.clone();
        new[301] ^= 0x5a;
        let mut delta = Vec::new();
        encode(&old, &new, &mut delta);
        assert_eq!(delta.len(), HEADER + 8, "one word");
        assert_eq!(u16::from_ne_bytes([delta[0], delta[1]]), 296);
        round_trip(&old, &new);
    }

    #[test]
    fn growing_and_shrinking_content_replays() {
        let old = page(400, 8192, 7);
        // pd_lower moves up: the old hole's bytes are written whole.
        let mut grown = page(1000, 8192, 9);
        grown[..400].copy_from_slice(&old[..400]);
        grown[12..14].copy_from_slice(&1000u16.to_ne_bytes());
        let n = round_trip(&old, &grown);
        assert!(n >= 600, "new bytes must be sent: {n}");
        // pd_lower moves down: the hole is zeroed by replay.
        let mut shrunk = old.clone();
        shrunk[12..14].copy_from_slice(&200u16.to_ne_bytes());
        round_trip(&old, &shrunk);
    }

    #[test]
    fn upper_region_and_odd_bounds_replay() {
        let old = page(301, 7001, 3);
        let mut new = old.clone();
        new[7001] ^= 1;
        new[8191] ^= 1;
        new[300] ^= 1;
        new[14..16].copy_from_slice(&6939u16.to_ne_bytes());
        let (l, u) = bounds(&new);
        assert_eq!((l, u), (301, 6939));
        for b in new[6939..7001].iter_mut() {
            *b = 0xee;
        }
        round_trip(&old, &new);
    }

    #[test]
    fn scattered_random_edits_replay() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for case in 0..300 {
            let lower = 24 + next(BLCKSZ - 24) as u16;
            let upper = if case % 3 == 0 {
                BLCKSZ as u16
            } else {
                lower + next(BLCKSZ - lower as usize + 1) as u16
            };
            let old = page(lower, upper, case as u64 + 1);
            let mut new = old.clone();
            for _ in 0..next(40) {
                let at = 16 + next(BLCKSZ - 16);
                new[at] = new[at].wrapping_add(1 + next(200) as u8);
            }
            if case % 5 == 0 {
                let l = (24 + next(BLCKSZ - 24)) as u16;
                new[12..14].copy_from_slice(&l.to_ne_bytes());
                let u = (l as usize + next(BLCKSZ - l as usize + 1)) as u16;
                new[14..16].copy_from_slice(&u.to_ne_bytes());
            }
            let n = round_trip(&old, &new);
            assert!(n <= 2 * BLCKSZ, "{n}");
        }
    }
}
