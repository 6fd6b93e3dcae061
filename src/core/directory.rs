//! The directory of segment pages, one or two levels deep, as pure
//! functions: in-place lookups on encoded pages, the decisions of a
//! structural change (room for a new entry, growing from depth 0 to 1,
//! splitting a directory page), the build's layout, and an owned model
//! ([`Directory`]) that tests drive the same way `am/index/map.rs` drives
//! the pages.
//!
//! Depth 0: the metapage's entries point to segment pages (the only layout
//! before the second level existed). Depth 1: they point to directory pages
//! ([`DirPage`]), whose entries point to segment pages. A lookup reads the
//! metapage, at depth 1 one directory page, then the segment page: O(depth)
//! index pages, never a walk over the map. The directory grows a level
//! only when the metapage cannot take another entry, as a btree root split
//! does.

use std::collections::BTreeMap;
use std::mem::offset_of;

use super::layout::{
    check_magic_version, dir_page_header, get_i64, get_u32, DirEntry, DirPage, DirPageHeader,
    LayoutError, Meta, MetaHeader, META_MAGIC,
};
use super::segmap::find_page;

/// How many entries each directory level may hold. The real capacities
/// are what a page holds; tests (and the developer GUC
/// `clustered_pg.debug_dir_capacity`) lower them to reach depth 1 with a
/// small table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirCaps {
    /// Entries of the metapage.
    pub root: usize,
    /// Entries of a directory page.
    pub page: usize,
}

impl DirCaps {
    pub const REAL: DirCaps = DirCaps {
        root: Meta::DIR_CAPACITY,
        page: DirPage::CAPACITY,
    };

    /// Capacities lowered to `n` entries in the metapage and `n + 1` in a
    /// directory page (0 = the real ones), keeping the real shape (the
    /// metapage holds fewer entries than a directory page) so tests walk
    /// the same paths as a real directory. Clamped to at least 3 so that a
    /// split always leaves two non-empty halves and a new level has room
    /// to grow.
    pub fn lowered(n: i32) -> DirCaps {
        if n <= 0 {
            return DirCaps::REAL;
        }
        let n = n.max(3) as usize;
        DirCaps {
            root: n.min(Meta::DIR_CAPACITY),
            page: (n + 1).min(DirPage::CAPACITY),
        }
    }

    /// Segment pages a directory of these capacities can address.
    pub fn max_segment_pages(&self) -> usize {
        self.root * self.page
    }
}

// ---------------------------------------------------------------------------
// In-place lookups on encoded pages.

/// Where a key's entry is in one directory level: its position, its target
/// block, and the interval it owns, `[lo, hi)` (`hi` None = up to the end
/// of the enclosing interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub pos: usize,
    pub blkno: u32,
    pub lo: i64,
    pub hi: Option<i64>,
}

/// Binary search (`partition_point(lo <= key) - 1`, as [`find_page`]) over
/// `n` encoded entries starting at `base`; checks what it reads.
fn entries_lookup(buf: &[u8], base: usize, n: usize, key: i64) -> Result<Slot, LayoutError> {
    let at = |i: usize| base + i * DirEntry::SIZE;
    let lo = |i: usize| get_i64(buf, at(i) + offset_of!(DirEntry, lo));
    let (mut a, mut b) = (0usize, n);
    while a < b {
        let m = a + (b - a) / 2;
        if lo(m) <= key {
            a = m + 1;
        } else {
            b = m;
        }
    }
    let i = a.saturating_sub(1);
    let blkno = get_u32(buf, at(i) + offset_of!(DirEntry, blkno));
    if blkno == 0 {
        return Err(LayoutError::Corrupt(
            "directory entry points to the metapage or an empty page",
        ));
    }
    let hi = (i + 1 < n).then(|| lo(i + 1));
    if hi.is_some_and(|h| h <= lo(i)) {
        return Err(LayoutError::Corrupt("directory not sorted by key"));
    }
    Ok(Slot {
        pos: i,
        blkno,
        lo: lo(i),
        hi,
    })
}

/// What the metapage says about `key`, read in place: flags, directory
/// depth, and the root entry owning `key` (None for an empty directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaHit {
    pub flags: u32,
    pub levels: u32,
    pub slot: Option<Slot>,
}

pub fn meta_lookup_in_place(buf: &[u8], key: i64) -> Result<MetaHit, LayoutError> {
    check_magic_version(buf, META_MAGIC)?;
    if buf.len() < MetaHeader::SIZE {
        return Err(LayoutError::Corrupt("metapage shorter than its header"));
    }
    let flags = get_u32(buf, offset_of!(MetaHeader, flags));
    let levels = get_u32(buf, offset_of!(MetaHeader, dir_levels));
    if levels > super::layout::MAX_DIR_LEVELS {
        return Err(LayoutError::Corrupt(
            "directory deeper than this build reads",
        ));
    }
    let n = get_u32(buf, offset_of!(MetaHeader, n_dir)) as usize;
    if n > Meta::DIR_CAPACITY || buf.len() < MetaHeader::SIZE + n * DirEntry::SIZE {
        return Err(LayoutError::Corrupt("metapage directory truncated"));
    }
    let slot = if n == 0 {
        None
    } else {
        Some(entries_lookup(buf, MetaHeader::SIZE, n, key)?)
    };
    Ok(MetaHit {
        flags,
        levels,
        slot,
    })
}

/// The entry of an encoded directory page owning `key`, with the interval
/// of the page's parent entry `[parent_lo, parent_hi)` applied: the last
/// entry owns up to `parent_hi`, and the first must start at `parent_lo`.
pub fn dir_page_lookup_in_place(
    buf: &[u8],
    key: i64,
    parent_lo: i64,
    parent_hi: Option<i64>,
) -> Result<Slot, LayoutError> {
    let n = dir_page_header(buf)?;
    let first = get_i64(buf, DirPageHeader::SIZE + offset_of!(DirEntry, lo));
    if first != parent_lo {
        return Err(LayoutError::Corrupt(
            "directory page does not start at its metapage entry's key",
        ));
    }
    let mut s = entries_lookup(buf, DirPageHeader::SIZE, n, key)?;
    if s.hi.is_none() {
        s.hi = parent_hi;
    } else if parent_hi.is_some_and(|p| s.hi.is_some_and(|h| h >= p)) {
        return Err(LayoutError::Corrupt(
            "directory page reaches past its metapage entry's interval",
        ));
    }
    Ok(s)
}

/// Checks a decoded directory page against the metapage entry pointing to
/// it (`parent`) and the next entry's key (`parent_hi`).
pub fn check_dir_page(
    page: &DirPage,
    parent: &DirEntry,
    parent_hi: Option<i64>,
) -> Result<(), LayoutError> {
    if page.entries.first().map(|e| e.lo) != Some(parent.lo) {
        return Err(LayoutError::Corrupt(
            "directory page does not start at its metapage entry's key",
        ));
    }
    if parent_hi.is_some_and(|h| page.entries.iter().any(|e| e.lo >= h)) {
        return Err(LayoutError::Corrupt(
            "directory page reaches past its metapage entry's interval",
        ));
    }
    if parent.nsegs as usize != page.entries.len() {
        return Err(LayoutError::Corrupt(
            "metapage entry's count differs from its directory page",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Structural decisions.

/// What must happen before the directory level listing segment pages can
/// take one more entry (a segment page split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// The level has room.
    Fits,
    /// Depth 0 with a full metapage: move its entries to two new directory
    /// pages, split at `at`, and point the metapage to them (depth 1).
    Grow { at: usize },
    /// Depth 1 with a full directory page: split it at `at`, the upper
    /// part on a new page, and add the new page to the metapage.
    SplitPage { at: usize },
    /// Both levels are full: the directory cannot address another page.
    Full,
}

/// Where a full level of `n` entries splits, the new entry going in at
/// `insert_at`. An append past the last entry of the rightmost page
/// (ascending loads) moves only the last entry, so the pages left behind
/// stay full, as btree's rightmost split does; anything else splits in
/// halves.
pub fn split_point(n: usize, insert_at: usize, rightmost: bool) -> usize {
    debug_assert!(n >= 2);
    if rightmost && insert_at >= n {
        n - 1
    } else {
        n / 2
    }
}

/// The decision for a new entry at position `insert_at` of the level
/// listing segment pages: the metapage at depth 0 (`root_len` entries), or
/// the directory page at root position `root_pos` holding `page_len`
/// entries at depth 1.
pub fn plan_room(
    levels: u32,
    root_len: usize,
    root_pos: usize,
    page_len: usize,
    insert_at: usize,
    caps: DirCaps,
) -> Room {
    if levels == 0 {
        // Both new pages must leave room for the entry about to go in
        // (lowered capacities may make a directory page smaller than the
        // metapage).
        let most = caps.page.saturating_sub(1);
        if root_len < caps.root {
            Room::Fits
        } else if root_len >= 2 && root_len <= 2 * most {
            // The metapage holds fewer entries than a directory page, so
            // the lower bound is often 0: it must not wrap.
            Room::Grow {
                at: split_point(root_len, insert_at, true)
                    .clamp(root_len.saturating_sub(most), most),
            }
        } else {
            Room::Full
        }
    } else if page_len < caps.page {
        Room::Fits
    } else if root_len < caps.root && page_len >= 2 {
        Room::SplitPage {
            at: split_point(page_len, insert_at, root_pos + 1 == root_len),
        }
    } else {
        Room::Full
    }
}

/// Growing from depth 0 to 1: the metapage's entries `root` split at `at`
/// into two directory pages at blocks `blknos`; returns the pages and the
/// new metapage directory (two entries).
pub fn grow_root(root: &[DirEntry], at: usize, blknos: [u32; 2]) -> ([DirPage; 2], Vec<DirEntry>) {
    let lower = DirPage {
        entries: root[..at].to_vec(),
    };
    let upper = DirPage {
        entries: root[at..].to_vec(),
    };
    let new_root = vec![
        DirEntry {
            lo: lower.entries[0].lo,
            blkno: blknos[0],
            nsegs: lower.entries.len() as u32,
        },
        DirEntry {
            lo: upper.entries[0].lo,
            blkno: blknos[1],
            nsegs: upper.entries.len() as u32,
        },
    ];
    ([lower, upper], new_root)
}

/// Splits a directory page at `at`: the lower part stays, the upper part
/// goes to a new page at `new_blkno`; the metapage gets `root[root_pos]`'s
/// count updated and the new page's entry inserted after it.
pub fn split_dir_page(
    page: &DirPage,
    at: usize,
    root: &mut Vec<DirEntry>,
    root_pos: usize,
    new_blkno: u32,
) -> (DirPage, DirPage) {
    let lower = DirPage {
        entries: page.entries[..at].to_vec(),
    };
    let upper = DirPage {
        entries: page.entries[at..].to_vec(),
    };
    root[root_pos].nsegs = lower.entries.len() as u32;
    root.insert(
        root_pos + 1,
        DirEntry {
            lo: upper.entries[0].lo,
            blkno: new_blkno,
            nsegs: upper.entries.len() as u32,
        },
    );
    (lower, upper)
}

/// The build's directory: the segment pages' entries (`leaves`, in key
/// order, first at `i64::MIN`) in the metapage when they fit, else in
/// directory pages filled to `fill` (leaving room for later splits, more
/// if the metapage would not hold them otherwise) at blocks from
/// `first_dir_blkno` on. None when even full pages do not fit.
pub fn layout_directory(
    leaves: Vec<DirEntry>,
    caps: DirCaps,
    fill: f64,
    first_dir_blkno: u32,
) -> Option<(u32, Vec<DirEntry>, Vec<DirPage>)> {
    let n = leaves.len();
    if n <= caps.root {
        return Some((0, leaves, Vec::new()));
    }
    let per_filled = ((caps.page as f64 * fill.clamp(0.0, 1.0)) as usize).max(1);
    let npages = if n.div_ceil(per_filled) <= caps.root {
        n.div_ceil(per_filled)
    } else if n.div_ceil(caps.page) <= caps.root {
        n.div_ceil(caps.page)
    } else {
        return None;
    };
    // Even shares: npages pages of `per` or `per - 1` entries.
    let per = n.div_ceil(npages);
    let pages: Vec<DirPage> = leaves
        .chunks(per)
        .map(|c| DirPage {
            entries: c.to_vec(),
        })
        .collect();
    let root = pages
        .iter()
        .enumerate()
        .map(|(j, p)| DirEntry {
            lo: p.entries[0].lo,
            blkno: first_dir_blkno + j as u32,
            nsegs: p.entries.len() as u32,
        })
        .collect();
    Some((1, root, pages))
}

// ---------------------------------------------------------------------------
// Owned model.

/// Where a lookup ended: the segment page's slot (its position in its
/// directory page at depth 1, in the metapage at depth 0) and, at depth 1,
/// the metapage slot of the directory page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub root: Slot,
    pub leaf: Slot,
}

/// The directory in memory: the metapage's entries and, at depth 1, the
/// directory pages by block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directory {
    pub levels: u32,
    pub root: Vec<DirEntry>,
    pub pages: BTreeMap<u32, DirPage>,
}

fn slot_of(entries: &[DirEntry], key: i64, hi: Option<i64>) -> Slot {
    let i = find_page(entries, key);
    Slot {
        pos: i,
        blkno: entries[i].blkno,
        lo: entries[i].lo,
        hi: entries.get(i + 1).map(|e| e.lo).or(hi),
    }
}

/// The directory cannot address another segment page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryFull;

impl Directory {
    /// The directory of a flat list of segment pages (depth 0).
    pub fn flat(leaves: Vec<DirEntry>) -> Directory {
        Directory {
            levels: 0,
            root: leaves,
            pages: BTreeMap::new(),
        }
    }

    /// The segment page owning `key`, as `am/` finds it: metapage, then at
    /// depth 1 the directory page.
    pub fn lookup(&self, key: i64) -> Option<Found> {
        if self.root.is_empty() {
            return None;
        }
        let root = slot_of(&self.root, key, None);
        if self.levels == 0 {
            return Some(Found { root, leaf: root });
        }
        let page = &self.pages[&root.blkno];
        Some(Found {
            root,
            leaf: slot_of(&page.entries, key, root.hi),
        })
    }

    /// Every segment page's entry, in key order (what `read_all` returns).
    pub fn leaves(&self) -> Vec<DirEntry> {
        if self.levels == 0 {
            return self.root.clone();
        }
        self.root
            .iter()
            .flat_map(|r| self.pages[&r.blkno].entries.iter().copied())
            .collect()
    }

    /// Inserts the entry of a new segment page (the upper half of the page
    /// owning `new.lo`), growing or splitting the directory first as
    /// `am/index/map.rs` does. `alloc` hands out fresh blocks.
    pub fn insert(
        &mut self,
        new: DirEntry,
        caps: DirCaps,
        alloc: &mut impl FnMut() -> u32,
    ) -> Result<Room, DirectoryFull> {
        let f = self.lookup(new.lo).expect("directory not empty");
        let page_len = if self.levels == 0 {
            0
        } else {
            self.pages[&f.root.blkno].entries.len()
        };
        let room = plan_room(
            self.levels,
            self.root.len(),
            f.root.pos,
            page_len,
            f.leaf.pos + 1,
            caps,
        );
        match room {
            Room::Fits => {}
            Room::Full => return Err(DirectoryFull),
            Room::Grow { at } => {
                let blknos = [alloc(), alloc()];
                let (pages, root) = grow_root(&self.root, at, blknos);
                let [a, b] = pages;
                self.pages.insert(blknos[0], a);
                self.pages.insert(blknos[1], b);
                self.root = root;
                self.levels = 1;
            }
            Room::SplitPage { at } => {
                let nb = alloc();
                let (lower, upper) = split_dir_page(
                    &self.pages[&f.root.blkno],
                    at,
                    &mut self.root,
                    f.root.pos,
                    nb,
                );
                self.pages.insert(f.root.blkno, lower);
                self.pages.insert(nb, upper);
            }
        }
        // Now the level has room: insert after the entry owning new.lo.
        let f = self.lookup(new.lo).expect("directory not empty");
        if self.levels == 0 {
            self.root.insert(f.leaf.pos + 1, new);
        } else {
            let p = self.pages.get_mut(&f.root.blkno).expect("page");
            p.entries.insert(f.leaf.pos + 1, new);
            self.root[f.root.pos].nsegs = p.entries.len() as u32;
        }
        Ok(room)
    }

    /// Structural check: every level sorted, pages within their parent's
    /// interval, counts right, capacities respected.
    pub fn check(&self, caps: DirCaps) -> Result<(), LayoutError> {
        if self.root.len() > caps.root {
            return Err(LayoutError::Corrupt("metapage over capacity"));
        }
        if self.root.first().map(|e| e.lo) != Some(i64::MIN) {
            return Err(LayoutError::Corrupt(
                "first entry must start at the lowest key",
            ));
        }
        if self.root.windows(2).any(|w| w[0].lo >= w[1].lo) {
            return Err(LayoutError::Corrupt("directory not sorted by key"));
        }
        if self.levels == 1 {
            for (i, r) in self.root.iter().enumerate() {
                let p = self
                    .pages
                    .get(&r.blkno)
                    .ok_or(LayoutError::Corrupt("missing directory page"))?;
                if p.entries.len() > caps.page {
                    return Err(LayoutError::Corrupt("directory page over capacity"));
                }
                if p.entries.windows(2).any(|w| w[0].lo >= w[1].lo) {
                    return Err(LayoutError::Corrupt("directory page not sorted by key"));
                }
                check_dir_page(p, r, self.root.get(i + 1).map(|e| e.lo))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::layout::{DirPageHeader, CONTENT_SIZE, DIR_MAGIC, LAYOUT_VERSION};

    fn entry(lo: i64, blkno: u32) -> DirEntry {
        DirEntry {
            lo,
            blkno,
            nsegs: 1,
        }
    }

    fn sample_dir_page() -> DirPage {
        DirPage {
            entries: vec![entry(-50, 3), entry(10, 9), entry(4_000_000_000, 4)],
        }
    }

    #[test]
    fn dir_page_capacity_and_header() {
        assert_eq!(DirPageHeader::SIZE, 16);
        assert_eq!(DirPage::CAPACITY, 509);
        assert_eq!(DirCaps::REAL.max_segment_pages(), 505 * 509);
        assert_eq!(DirCaps::lowered(0), DirCaps::REAL);
        assert_eq!(DirCaps::lowered(1), DirCaps { root: 3, page: 4 });
        assert_eq!(DirCaps::lowered(100_000), DirCaps::REAL);
    }

    /// A page written by the code reads back identically, and its bytes
    /// are stable (magic, version, count, level 0, entries little-endian).
    #[test]
    fn dir_page_round_trip_byte_for_byte() {
        let p = sample_dir_page();
        let mut buf = vec![0xAAu8; CONTENT_SIZE];
        let used = p.encode_into(&mut buf).unwrap();
        assert_eq!(used, 16 + 3 * 16);
        assert!(buf[used..].iter().all(|&b| b == 0));
        assert_eq!(&buf[0..4], &DIR_MAGIC.to_le_bytes());
        assert_eq!(&buf[4..8], &LAYOUT_VERSION.to_le_bytes());
        assert_eq!(&buf[8..12], &3u32.to_le_bytes());
        assert_eq!(&buf[12..16], &0u32.to_le_bytes());
        let back = DirPage::decode(&buf).unwrap();
        assert_eq!(back, p);
        let mut buf2 = vec![0x55u8; CONTENT_SIZE];
        back.encode_into(&mut buf2).unwrap();
        assert_eq!(buf, buf2);
        // A full page round-trips too; one more entry does not encode.
        let full = DirPage {
            entries: (0..DirPage::CAPACITY as i64)
                .map(|i| entry(i * 7, i as u32 + 1))
                .collect(),
        };
        assert_eq!(full.encode_into(&mut buf).unwrap(), CONTENT_SIZE);
        assert_eq!(DirPage::decode(&buf).unwrap(), full);
        let mut over = full.clone();
        over.entries.push(entry(i64::MAX, 1));
        assert!(!over.fits());
        assert!(over.encode_into(&mut buf).is_err());
    }

    #[test]
    fn dir_page_rejects_bad_pages() {
        let mut buf = vec![0u8; CONTENT_SIZE];
        sample_dir_page().encode_into(&mut buf).unwrap();
        let mut b = buf.clone();
        b[0] ^= 1;
        assert_eq!(DirPage::decode(&b), Err(LayoutError::BadMagic));
        let mut b = buf.clone();
        b[4..8].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            DirPage::decode(&b),
            Err(LayoutError::UnknownVersion { found: 7 })
        );
        let mut b = buf.clone();
        b[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(DirPage::decode(&b), Err(LayoutError::Corrupt(_))));
        let mut b = buf.clone();
        b[8..12].copy_from_slice(&10_000u32.to_le_bytes());
        assert!(matches!(DirPage::decode(&b), Err(LayoutError::Corrupt(_))));
        let mut b = buf.clone();
        b[12..16].copy_from_slice(&1u32.to_le_bytes());
        assert!(matches!(DirPage::decode(&b), Err(LayoutError::Corrupt(_))));
        let mut p = sample_dir_page();
        p.entries.swap(0, 1);
        p.encode_into(&mut b).unwrap();
        assert!(matches!(DirPage::decode(&b), Err(LayoutError::Corrupt(_))));
        // A metapage is not a directory page and vice versa.
        let mut mb = vec![0u8; CONTENT_SIZE];
        Meta::new(crate::core::layout::KeyType::Int4, "0.1.0")
            .encode_into(&mut mb)
            .unwrap();
        assert_eq!(DirPage::decode(&mb), Err(LayoutError::BadMagic));
        assert_eq!(Meta::decode(&buf), Err(LayoutError::BadMagic));
        // In place: a page that does not start at its parent's key.
        assert!(dir_page_lookup_in_place(&buf, 0, -51, None).is_err());
        assert!(dir_page_lookup_in_place(&buf, 100, -50, Some(20)).is_err());
        assert!(dir_page_lookup_in_place(&buf, 0, -50, Some(5_000_000_000)).is_ok());
    }

    /// An index written before the second level (pad2 = 0) reads as depth
    /// 0; a depth this build does not know is refused.
    #[test]
    fn meta_depth_field() {
        let mut m = Meta::new(crate::core::layout::KeyType::Int8, "0.1.0");
        m.dir = vec![entry(i64::MIN, 1)];
        let mut buf = vec![0u8; CONTENT_SIZE];
        m.encode_into(&mut buf).unwrap();
        let off = offset_of!(MetaHeader, dir_levels);
        assert_eq!(off, 76, "dir_levels is the old pad2 word");
        assert_eq!(&buf[off..off + 4], &[0, 0, 0, 0]);
        assert_eq!(Meta::decode(&buf).unwrap().dir_levels, 0);
        m.dir_levels = 1;
        m.encode_into(&mut buf).unwrap();
        assert_eq!(Meta::decode(&buf).unwrap().dir_levels, 1);
        assert_eq!(meta_lookup_in_place(&buf, 5).unwrap().levels, 1);
        buf[off] = 2;
        assert!(matches!(Meta::decode(&buf), Err(LayoutError::Corrupt(_))));
        assert!(meta_lookup_in_place(&buf, 5).is_err());
    }

    fn leaves(n: usize) -> Vec<DirEntry> {
        (0..n)
            .map(|i| DirEntry {
                lo: if i == 0 { i64::MIN } else { i as i64 * 100 },
                blkno: i as u32 + 1,
                nsegs: 1,
            })
            .collect()
    }

    /// The in-place lookups of both levels, on encoded pages, agree with
    /// the model for every key near a boundary.
    fn assert_in_place_matches(d: &Directory) {
        let mut meta = Meta::new(crate::core::layout::KeyType::Int8, "0.1.0");
        meta.dir = d.root.clone();
        meta.dir_levels = d.levels;
        let mut mbuf = vec![0u8; CONTENT_SIZE];
        meta.encode_into(&mut mbuf).unwrap();
        let flat = d.leaves();
        let mut keys = vec![i64::MIN, i64::MAX, -1, 0];
        for e in &flat {
            keys.extend([e.lo.saturating_sub(1), e.lo, e.lo.saturating_add(1)]);
        }
        for key in keys {
            let want = d.lookup(key).unwrap();
            let hit = meta_lookup_in_place(&mbuf, key).unwrap();
            assert_eq!(hit.levels, d.levels);
            let root = hit.slot.unwrap();
            assert_eq!(root, want.root, "root slot of {key}");
            let leaf = if d.levels == 0 {
                root
            } else {
                let mut pbuf = vec![0u8; CONTENT_SIZE];
                d.pages[&root.blkno].encode_into(&mut pbuf).unwrap();
                dir_page_lookup_in_place(&pbuf, key, root.lo, root.hi).unwrap()
            };
            assert_eq!(leaf, want.leaf, "leaf slot of {key}");
            // Against the flat list: same page, same interval.
            let i = find_page(&flat, key);
            assert_eq!(leaf.blkno, flat[i].blkno);
            assert_eq!(leaf.lo, flat[i].lo);
            assert_eq!(leaf.hi, flat.get(i + 1).map(|e| e.lo));
        }
    }

    #[test]
    fn lookup_depth_0_and_1() {
        let d0 = Directory::flat(leaves(7));
        d0.check(DirCaps::REAL).unwrap();
        assert_in_place_matches(&d0);
        let f = d0.lookup(250).unwrap();
        assert_eq!((f.leaf.blkno, f.leaf.lo, f.leaf.hi), (3, 200, Some(300)));

        let (levels, root, pages) =
            layout_directory(leaves(20), DirCaps { root: 4, page: 8 }, 0.75, 100).unwrap();
        assert_eq!(levels, 1);
        let d1 = Directory {
            levels,
            root: root.clone(),
            pages: root.iter().map(|r| r.blkno).zip(pages).collect(),
        };
        d1.check(DirCaps { root: 4, page: 8 }).unwrap();
        assert_eq!(d1.leaves(), leaves(20));
        assert_in_place_matches(&d1);
        // The last entry of a directory page owns up to the next page.
        let first_page = &d1.pages[&root[0].blkno];
        let last = *first_page.entries.last().unwrap();
        let f = d1.lookup(last.lo + 50).unwrap();
        assert_eq!(f.leaf.blkno, last.blkno);
        assert_eq!(f.leaf.hi, Some(root[1].lo));
        assert_eq!(f.root.pos, 0);
    }

    #[test]
    fn build_layout_depths_and_limits() {
        let caps = DirCaps { root: 4, page: 5 };
        assert_eq!(layout_directory(leaves(4), caps, 0.9, 9).unwrap().0, 0);
        let (l, root, pages) = layout_directory(leaves(5), caps, 0.9, 9).unwrap();
        assert_eq!((l, root.len()), (1, 2));
        assert_eq!(root[0].blkno, 9);
        assert_eq!(root[1].blkno, 10);
        assert!(pages.iter().all(|p| p.entries.len() <= 4), "filled to 90%");
        // Beyond 90% fill but within full pages: full pages.
        let (_, root, pages) = layout_directory(leaves(20), caps, 0.9, 9).unwrap();
        assert_eq!(root.len(), 4);
        assert!(pages.iter().all(|p| p.entries.len() == 5));
        assert!(layout_directory(leaves(21), caps, 0.9, 9).is_none());
        // Real capacities: ~500 x ~500 segment pages.
        let (l, root, _) = layout_directory(leaves(100_000), DirCaps::REAL, 0.9, 1).unwrap();
        assert_eq!(l, 1);
        assert!(root.len() <= Meta::DIR_CAPACITY);
    }

    /// Inserting entries one by one in random order grows the directory
    /// from depth 0 to 1, splits directory pages, and keeps every key's
    /// lookup equal to the flat list's.
    #[test]
    fn growth_and_page_split_random_and_ascending() {
        let caps = DirCaps { root: 6, page: 4 };
        for order in ["ascending", "random"] {
            let mut d = Directory::flat(vec![entry(i64::MIN, 1)]);
            let mut next_blk = 2u32;
            let mut alloc = || {
                next_blk += 1;
                next_blk
            };
            let mut keys: Vec<i64> = (1..14).map(|i| i * 1000).collect();
            if order == "random" {
                let mut s = 0x9E37_79B9_u64;
                for i in (1..keys.len()).rev() {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    keys.swap(i, (s % (i as u64 + 1)) as usize);
                }
            }
            let mut seen = vec![];
            for (n, &k) in keys.iter().enumerate() {
                let blk = 1000 + n as u32;
                let room = d.insert(entry(k, blk), caps, &mut alloc).unwrap();
                seen.push(room);
                d.check(caps).unwrap();
                assert_in_place_matches(&d);
                let f = d.lookup(k).unwrap();
                assert_eq!((f.leaf.blkno, f.leaf.lo), (blk, k));
            }
            assert_eq!(d.levels, 1, "{order}");
            assert_eq!(d.leaves().len(), 14);
            assert_eq!(
                seen.iter()
                    .filter(|r| matches!(r, Room::Grow { .. }))
                    .count(),
                1,
                "{order}: grows exactly once"
            );
            assert!(
                seen.iter().any(|r| matches!(r, Room::SplitPage { .. })),
                "{order}: a directory page split"
            );
            // The directory is bounded: 6 x 4 pages, then Full (the caller
            // overflows), never a corrupt directory.
            let mut k = 1_000_000;
            let err = loop {
                k += 1;
                match d.insert(entry(k, 5000), caps, &mut alloc) {
                    Ok(_) => d.check(caps).unwrap(),
                    Err(e) => break e,
                }
            };
            assert_eq!(err, DirectoryFull);
            assert!(d.leaves().len() <= caps.max_segment_pages());
            d.check(caps).unwrap();
        }
    }

    #[test]
    fn real_capacities_grow_past_a_full_metapage() {
        // The metapage (505 entries) is smaller than a directory page
        // (509): growing from a full metapage must split it, not panic.
        let caps = DirCaps::REAL;
        assert!(caps.root < caps.page);
        let full = caps.root;
        assert_eq!(
            plan_room(0, full, 0, 0, full, caps),
            Room::Grow { at: full - 1 }
        );
        assert_eq!(
            plan_room(0, full, 0, 0, 7, caps),
            Room::Grow { at: full / 2 }
        );
        for ascending in [true, false] {
            let mut d = Directory::flat(vec![entry(i64::MIN, 1)]);
            let mut next_blk = 1u32;
            let mut alloc = || {
                next_blk += 1;
                next_blk
            };
            let mut x = 12345u64;
            for k in 1..3000i64 {
                let key = if ascending {
                    k
                } else {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 1) as i64
                };
                d.insert(entry(key, 10_000 + k as u32), caps, &mut alloc)
                    .unwrap();
            }
            d.check(caps).unwrap();
            assert_eq!(d.leaves().len(), 3000);
        }
    }

    #[test]
    fn ascending_appends_keep_pages_full() {
        let caps = DirCaps { root: 10, page: 10 };
        let mut d = Directory::flat(vec![entry(i64::MIN, 1)]);
        let mut next_blk = 1u32;
        let mut alloc = || {
            next_blk += 1;
            next_blk
        };
        for k in 1..60 {
            d.insert(entry(k, 10_000 + k as u32), caps, &mut alloc)
                .unwrap();
        }
        // Every directory page but the last is full (60 entries in 6 pages
        // + 1 metapage entry's worth), not half full.
        let lens: Vec<usize> = d
            .root
            .iter()
            .map(|r| d.pages[&r.blkno].entries.len())
            .collect();
        assert!(lens[..lens.len() - 1].iter().all(|&l| l >= 9), "{lens:?}");
        assert_eq!(plan_room(0, 3, 0, 0, 1, caps), Room::Fits);
        assert_eq!(plan_room(0, 10, 9, 0, 10, caps), Room::Grow { at: 9 });
        assert_eq!(plan_room(0, 10, 3, 0, 4, caps), Room::Grow { at: 5 });
        assert_eq!(plan_room(1, 4, 1, 10, 3, caps), Room::SplitPage { at: 5 });
        assert_eq!(plan_room(1, 4, 3, 10, 10, caps), Room::SplitPage { at: 9 });
        assert_eq!(plan_room(1, 10, 3, 10, 10, caps), Room::Full);
    }
}
