//! Reading and changing the index's pages under the right locks.
//!
//! Lock order is always metapage, then (at directory depth 1) directory
//! page, then segment page; every reader and writer finds its segment page
//! through [`locate`] (or [`locate_exclusive`] for structural changes).
//! Lookups and plain inserts hold each upper page shared only until the
//! page below is locked; structural changes (page and segment splits,
//! directory page splits, growing the directory a level) hold the metapage
//! exclusively for their whole duration, so nobody ever sees a half-written
//! directory.

use crate::core::counters::{bump, Counter};
use crate::core::directory::{
    check_dir_page, dir_page_lookup_in_place, grow_root, meta_lookup_in_place, plan_room,
    split_dir_page, DirCaps, MetaHit, Room,
};
use crate::core::layout::{
    DirEntry, DirPage, LayoutError, Listing, Meta, SegPage, Segment, BLCKSZ, CONTENT_SIZE,
    META_FLAG_OVERFLOW, PAGE_HEADER_SIZE,
};
use crate::core::ordered::Zone;
use crate::core::page_ranges::{Identity, PageRanges};
use crate::core::pending::{group_by_page, PendingRows};
use crate::core::placement::Listed;
use crate::core::recount::split_counts;
use crate::core::segmap::{
    count_delta, count_targets, covered_at, covered_in_place, find_page, listed_in_place_at,
    pick_split_key, point_candidates, record_delta, Recorded, SegHead,
};
use crate::pg::buffer::{log_delta, Lock, LockedBuffer, XLogRecord};
use crate::pg::error::{codes, guard, PgError, PgResult};
use crate::pg::heap::KeysOf;
use crate::pg::rel;
use crate::pg::sys;

pub const META_BLKNO: u32 = 0;
/// Page kinds, stored in the special area so a foreign page is recognised.
pub const KIND_META: u32 = 0x434D_0001;
pub const KIND_SEG: u32 = 0x434D_0002;
pub const KIND_DIR: u32 = 0x434D_0003;

const SPECIAL_OFFSET: usize = BLCKSZ - 8;

/// Content region of a page image.
pub fn content(page: &[u8]) -> &[u8] {
    &page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + CONTENT_SIZE]
}

fn content_mut(page: &mut [u8]) -> &mut [u8] {
    &mut page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + CONTENT_SIZE]
}

fn page_kind(page: &[u8]) -> u32 {
    u32::from_le_bytes(page[SPECIAL_OFFSET..SPECIAL_OFFSET + 4].try_into().unwrap())
}

/// Initialises a page image (standard header, 8-byte special area with
/// `kind`) and writes `used` bytes of content via `fill`. The image keeps
/// the page's LSN (pd_lsn, its first 8 bytes): the image is copied into the
/// buffer before XLogInsert looks at the buffer's LSN to decide whether the
/// record needs a full-page image, and a zeroed LSN would make every
/// rewrite of an existing page carry one (a new page is logged whole
/// anyway).
fn init_page(page: &mut [u8], kind: u32, fill: impl FnOnce(&mut [u8]) -> usize) -> PgResult<()> {
    let mut lsn = [0u8; 8];
    lsn.copy_from_slice(&page[..8]);
    let p = page.as_mut_ptr() as sys::Page;
    // SAFETY: page is a BLCKSZ image; PageInit writes its header.
    guard(|| unsafe { sys::PageInit(p, BLCKSZ, 8) })?;
    page[..8].copy_from_slice(&lsn);
    page[SPECIAL_OFFSET..SPECIAL_OFFSET + 4].copy_from_slice(&kind.to_le_bytes());
    let used = fill(content_mut(page));
    set_lower(page, used);
    Ok(())
}

/// pd_lower (offset 12) = end of content, so GenericXLog and full-page
/// images skip the unused hole.
fn set_lower(page: &mut [u8], used: usize) {
    let lower = (PAGE_HEADER_SIZE + used) as u16;
    page[12..14].copy_from_slice(&lower.to_le_bytes());
}

pub fn write_meta(page: &mut [u8], meta: &Meta) -> PgResult<()> {
    init_page(page, KIND_META, |c| {
        meta.encode_into(c).expect("directory checked to fit")
    })
}

pub fn write_seg(page: &mut [u8], seg: &SegPage) -> PgResult<()> {
    init_page(page, KIND_SEG, |c| {
        seg.encode_into(c).expect("page checked to fit")
    })
}

pub fn write_dir(page: &mut [u8], dir: &DirPage) -> PgResult<()> {
    init_page(page, KIND_DIR, |c| {
        dir.encode_into(c).expect("directory page checked to fit")
    })
}

/// Capacities of the directory levels: the real ones, or those lowered by
/// the developer GUC `clustered_pg.debug_dir_capacity` (csrc/shim.c) so
/// tests reach depth 1 with a small table. They drive decisions only
/// (when to grow or split); decoding always accepts the real capacities.
pub fn dir_caps() -> DirCaps {
    // SAFETY: a plain int GUC variable of the shim, read in the backend's
    // own thread.
    DirCaps::lowered(unsafe { sys::cpg_debug_dir_capacity })
}

fn corrupt(index: sys::Relation, what: &str, e: LayoutError) -> PgError {
    PgError::new(
        codes::INDEX_CORRUPTED,
        format!("index \"{}\" has a bad {what}: {e}", rel::name(index)),
    )
    .hint("REINDEX the index to rebuild it.")
}

pub fn decode_meta(index: sys::Relation, page: &[u8]) -> PgResult<Meta> {
    if page_kind(page) != KIND_META {
        return Err(PgError::new(
            codes::INDEX_CORRUPTED,
            format!(
                "index \"{}\" is not a clustered_pk_index or its metapage is damaged",
                rel::name(index)
            ),
        )
        .hint("REINDEX the index to rebuild it."));
    }
    Meta::decode(content(page)).map_err(|e| corrupt(index, "metapage", e))
}

fn check_seg_kind(index: sys::Relation, page: &[u8]) -> PgResult<()> {
    if page_kind(page) != KIND_SEG {
        return Err(corrupt(
            index,
            "segment page",
            LayoutError::Corrupt("wrong page kind"),
        ));
    }
    Ok(())
}

pub fn decode_seg(index: sys::Relation, page: &[u8]) -> PgResult<SegPage> {
    check_seg_kind(index, page)?;
    SegPage::decode(content(page)).map_err(|e| corrupt(index, "segment page", e))
}

fn check_dir_kind(index: sys::Relation, page: &[u8]) -> PgResult<()> {
    if page_kind(page) != KIND_DIR {
        return Err(corrupt(
            index,
            "directory page",
            LayoutError::Corrupt("wrong page kind"),
        ));
    }
    Ok(())
}

pub fn decode_dir(index: sys::Relation, page: &[u8]) -> PgResult<DirPage> {
    check_dir_kind(index, page)?;
    DirPage::decode(content(page)).map_err(|e| corrupt(index, "directory page", e))
}

/// The metapage's flags, depth and the root entry owning `key`, read in
/// place (the insert paths run once per tuple; decoding the directory is
/// for the paths that change it).
fn lookup_meta(index: sys::Relation, meta_buf: &LockedBuffer, key: i64) -> PgResult<MetaHit> {
    let page = meta_buf.page();
    if page_kind(page) != KIND_META {
        // decode_meta words the error.
        decode_meta(index, page)?;
    }
    meta_lookup_in_place(content(page), key).map_err(|e| corrupt(index, "metapage", e))
}

/// The segment page owning a key, locked, and the key interval it owns:
/// `[lo, hi)`, `hi` None = unbounded.
pub struct SegLoc {
    pub buf: LockedBuffer,
    pub lo: i64,
    pub hi: Option<i64>,
    /// The metapage said the map overflowed (seen only by callers that
    /// descend an overflowed map).
    pub overflowed: bool,
}

/// What [`locate`] found.
pub enum Located {
    /// The map overflowed: every heap block is a candidate.
    Overflow,
    /// The directory is empty (never written by this code; tolerated by
    /// scans, an error for writers).
    Empty,
    Seg(SegLoc),
}

/// THE lookup of the map: key -> segment page, with lock coupling. The
/// metapage is locked shared and read in place; at depth 1 the directory
/// page it points to is locked shared before the metapage is released and
/// read in place; the segment page is locked with `lock` before the upper
/// page is released. Cost: metapage + segment page at depth 0 (the point
/// lookup bound), one directory page more at depth 1.
pub fn locate(index: sys::Relation, key: i64, lock: Lock) -> PgResult<Located> {
    locate_with(index, key, lock, true)
}

/// [`locate`]; with `honor_overflow` false an overflowed map is descended
/// like any other.
pub fn locate_with(
    index: sys::Relation,
    key: i64,
    lock: Lock,
    honor_overflow: bool,
) -> PgResult<Located> {
    let meta_buf = LockedBuffer::read(index, META_BLKNO, Lock::Share)?;
    let hit = lookup_meta(index, &meta_buf, key)?;
    if honor_overflow && hit.flags & META_FLAG_OVERFLOW != 0 {
        return Ok(Located::Overflow);
    }
    let Some(root) = hit.slot else {
        return Ok(Located::Empty);
    };
    let (upper, leaf) = if hit.levels == 0 {
        (meta_buf, root)
    } else {
        let dir_buf = LockedBuffer::read(index, root.blkno, Lock::Share)?;
        drop(meta_buf);
        check_dir_kind(index, dir_buf.page())?;
        let leaf = dir_page_lookup_in_place(content(dir_buf.page()), key, root.lo, root.hi)
            .map_err(|e| corrupt(index, "directory page", e))?;
        (dir_buf, leaf)
    };
    let buf = read_seg_buf(index, leaf.blkno, lock)?;
    drop(upper);
    Ok(Located::Seg(SegLoc {
        buf,
        lo: leaf.lo,
        hi: leaf.hi,
        overflowed: hit.flags & META_FLAG_OVERFLOW != 0,
    }))
}

/// Where a structural change works: at depth 1 the directory page holding
/// the segment page's entry (exclusively locked, decoded) and its position
/// in the metapage; `pos` is the entry's position in the level that lists
/// segment pages (the metapage at depth 0, that directory page at depth 1).
pub struct DirCtx {
    page: Option<(LockedBuffer, DirPage, usize)>,
    pos: usize,
    /// The metapage as it is on disk: directory changes written before the
    /// segment page's own record must not carry counters (segment ids,
    /// counts) of a split that is not written yet.
    disk: Meta,
}

impl DirCtx {
    /// The entries of the level listing segment pages.
    fn entries<'a>(&'a mut self, meta: &'a mut Meta) -> &'a mut Vec<DirEntry> {
        match &mut self.page {
            Some((_, p, _)) => &mut p.entries,
            None => &mut meta.dir,
        }
    }

    /// After a change of the directory page's entries: its count in the
    /// metapage.
    fn sync_root(&self, meta: &mut Meta) {
        if let Some((_, p, rp)) = &self.page {
            meta.dir[*rp].nsegs = p.entries.len() as u32;
        }
    }
}

/// [`locate`] for structural changes: the metapage exclusive (decoded, and
/// held by the caller for the whole change), then at depth 1 the directory
/// page exclusive, then the segment page exclusive; nothing released.
/// Returns the segment page's exclusive upper bound too.
#[allow(clippy::type_complexity)]
fn locate_exclusive(
    index: sys::Relation,
    key: i64,
) -> PgResult<(
    LockedBuffer,
    Meta,
    DirCtx,
    LockedBuffer,
    SegPage,
    Option<i64>,
)> {
    let (meta_buf, meta) = read_meta(index, Lock::Exclusive)?;
    if meta.dir.is_empty() {
        return Err(corrupt(
            index,
            "metapage",
            LayoutError::Corrupt("empty directory"),
        ));
    }
    let ri = find_page(&meta.dir, key);
    let root_hi = meta.dir.get(ri + 1).map(|d| d.lo);
    let (page, pos, blkno, page_hi) = if meta.dir_levels == 0 {
        (None, ri, meta.dir[ri].blkno, root_hi)
    } else {
        let dir_buf = LockedBuffer::read(index, meta.dir[ri].blkno, Lock::Exclusive)?;
        let dp = decode_dir(index, dir_buf.page())?;
        check_dir_page(&dp, &meta.dir[ri], root_hi)
            .map_err(|e| corrupt(index, "directory page", e))?;
        let li = find_page(&dp.entries, key);
        let hi = dp.entries.get(li + 1).map(|d| d.lo).or(root_hi);
        let blkno = dp.entries[li].blkno;
        (Some((dir_buf, dp, ri)), li, blkno, hi)
    };
    let (seg_buf, seg) = read_seg(index, blkno, Lock::Exclusive)?;
    let disk = meta.clone();
    Ok((
        meta_buf,
        meta,
        DirCtx { page, pos, disk },
        seg_buf,
        seg,
        page_hi,
    ))
}

/// Makes room in the level listing segment pages for one more entry, after
/// `ctx.pos` (metapage exclusive held). Returns false when the directory
/// cannot address another segment page (the caller overflows).
///
/// Crash safety: each change is ONE GenericXLog record that takes the map
/// from one consistent state to another, with at most 3 buffers:
/// - growing from depth 0 to 1: both new directory pages (full images) and
///   the metapage (now depth 1, pointing to them);
/// - splitting a directory page: the new page (full image, the upper
///   entries), the old page (the lower entries) and the metapage (the new
///   page's entry).
///
/// The segment page split that needed the room is a later record (up to 4
/// buffers: new and old segment page, directory page, metapage); a crash in
/// between leaves a directory that lists the same segment pages, only
/// arranged differently. Blocks extended but never logged are zero pages
/// nothing points to.
fn ensure_dir_room(
    index: sys::Relation,
    meta_buf: &LockedBuffer,
    meta: &mut Meta,
    ctx: &mut DirCtx,
) -> PgResult<bool> {
    let (root_pos, page_len) = match &ctx.page {
        Some((_, p, rp)) => (*rp, p.entries.len()),
        None => (0, 0),
    };
    let room = plan_room(
        meta.dir_levels,
        meta.dir.len(),
        root_pos,
        page_len,
        ctx.pos + 1,
        dir_caps(),
    );
    match room {
        Room::Fits => Ok(true),
        Room::Full => Ok(false),
        Room::Grow { at } => {
            let b0 = LockedBuffer::extend(index)?;
            let b1 = LockedBuffer::extend(index)?;
            let (pages, root) = grow_root(&ctx.disk.dir, at, [b0.blkno(), b1.blkno()]);
            let mut img = ctx.disk.clone();
            img.dir = root;
            img.dir_levels = 1;
            let mut x = XLogRecord::start(index)?;
            write_dir(x.register(&b0, true)?, &pages[0])?;
            write_dir(x.register(&b1, true)?, &pages[1])?;
            write_meta(x.register(meta_buf, false)?, &img)?;
            x.finish()?;
            meta.dir = img.dir.clone();
            meta.dir_levels = 1;
            ctx.disk = img;
            let [lower, upper] = pages;
            ctx.page = if ctx.pos < at {
                Some((b0, lower, 0))
            } else {
                ctx.pos -= at;
                Some((b1, upper, 1))
            };
            bump(Counter::split);
            Ok(true)
        }
        Room::SplitPage { at } => {
            let (dir_buf, dir_page, rp) = ctx.page.take().expect("depth 1 has a page");
            let new_buf = LockedBuffer::extend(index)?;
            let mut img = ctx.disk.clone();
            let (lower, upper) = split_dir_page(&dir_page, at, &mut img.dir, rp, new_buf.blkno());
            let mut x = XLogRecord::start(index)?;
            write_dir(x.register(&new_buf, true)?, &upper)?;
            write_dir(x.register(&dir_buf, false)?, &lower)?;
            write_meta(x.register(meta_buf, false)?, &img)?;
            x.finish()?;
            meta.dir = img.dir.clone();
            ctx.disk = img;
            ctx.page = if ctx.pos < at {
                Some((dir_buf, lower, rp))
            } else {
                ctx.pos -= at;
                Some((new_buf, upper, rp + 1))
            };
            bump(Counter::split);
            Ok(true)
        }
    }
}

/// The entries of every segment page in key order, whatever the depth,
/// for the directory pages the keys in `keys` reach (metapage held by the
/// caller, so the directory cannot change while the copies are used).
/// `pos(key)` is then a position in the returned list.
fn leaves_for(
    index: sys::Relation,
    meta: &Meta,
    keys: impl Iterator<Item = i64>,
) -> PgResult<Vec<DirEntry>> {
    if meta.dir_levels == 0 {
        return Ok(meta.dir.clone());
    }
    let mut roots: Vec<usize> = keys.map(|k| find_page(&meta.dir, k)).collect();
    roots.sort_unstable();
    roots.dedup();
    let mut out = Vec::new();
    for ri in roots {
        let b = LockedBuffer::read(index, meta.dir[ri].blkno, Lock::Share)?;
        let dp = decode_dir(index, b.page())?;
        check_dir_page(&dp, &meta.dir[ri], meta.dir.get(ri + 1).map(|d| d.lo))
            .map_err(|e| corrupt(index, "directory page", e))?;
        out.extend(dp.entries);
    }
    Ok(out)
}

pub fn read_meta(index: sys::Relation, lock: Lock) -> PgResult<(LockedBuffer, Meta)> {
    let buf = LockedBuffer::read(index, META_BLKNO, lock)?;
    let meta = decode_meta(index, buf.page())?;
    Ok((buf, meta))
}

/// A segment page, locked, checked to be one (for the in-place paths that
/// read only part of it).
fn read_seg_buf(index: sys::Relation, blkno: u32, lock: Lock) -> PgResult<LockedBuffer> {
    let buf = LockedBuffer::read(index, blkno, lock)?;
    check_seg_kind(index, buf.page())?;
    Ok(buf)
}

fn read_seg(index: sys::Relation, blkno: u32, lock: Lock) -> PgResult<(LockedBuffer, SegPage)> {
    let buf = LockedBuffer::read(index, blkno, lock)?;
    let seg = decode_seg(index, buf.page())?;
    Ok((buf, seg))
}

/// Current time as TimestampTz (statement start: cheap and good enough for
/// `updated_at` / `last_split_at`).
pub fn now() -> i64 {
    // SAFETY: returns a backend-local variable; cannot ereport (called for
    // every inserted row, so without the error boundary's setjmp).
    unsafe { sys::GetCurrentStatementStartTimestamp() }
}

/// Heap blocks that may hold keys in `[lo, hi]`, ascending (a bitmap's
/// pages). Every heap block when the map has overflowed.
pub fn candidates(index: sys::Relation, lo: i64, hi: i64) -> PgResult<Vec<u32>> {
    match walk_range(index, lo, hi)? {
        Walk::Listed { blocks, .. } | Walk::Empty { blocks } => Ok(blocks),
        Walk::Overflow => all_heap_blocks(index),
    }
}

/// What the segment pages covering `[lo, hi]` list.
enum Walk {
    /// Their blocks (ascending, distinct) and how many pages were read.
    Listed {
        blocks: Vec<u32>,
        segment_pages: u32,
    },
    /// The map overflowed: it cannot narrow anything.
    Overflow,
    /// The directory lists no segment page (the blocks of pages read
    /// before it said so).
    Empty { blocks: Vec<u32> },
}

fn walk_range(index: sys::Relation, lo: i64, hi: i64) -> PgResult<Walk> {
    let mut blocks = Vec::new();
    let mut segment_pages = 0u32;
    if lo > hi {
        return Ok(Walk::Listed {
            blocks,
            segment_pages,
        });
    }
    bump(Counter::scan);
    if lo == hi {
        return point_blocks(index, lo);
    }
    let mut key = lo;
    loop {
        // Re-descend from the metapage for every page: between pages a
        // concurrent split may have moved segments, and the directory is
        // the only authority on which page owns `key`.
        let page = match mapped_page_zones(index, key, lo, hi)? {
            Mapped::Zones(z) => z,
            Mapped::Overflow => return Ok(Walk::Overflow),
            Mapped::Empty => {
                blocks.sort_unstable();
                blocks.dedup();
                return Ok(Walk::Empty { blocks });
            }
        };
        segment_pages += 1;
        blocks.extend(page.zones.iter().map(|z| z.blk));
        if page.hi >= hi {
            break;
        }
        key = page.hi + 1;
    }
    blocks.sort_unstable();
    blocks.dedup();
    Ok(Walk::Listed {
        blocks,
        segment_pages,
    })
}

/// [`walk_range`] for one key: the blocks whose zones in the key's segment
/// hold it, read from the segment page in place (a point lookup decoded the
/// whole page, a vector per segment, for one segment's listings).
fn point_blocks(index: sys::Relation, key: i64) -> PgResult<Walk> {
    let loc = match locate(index, key, Lock::Share)? {
        Located::Seg(l) => l,
        Located::Empty => return Ok(Walk::Empty { blocks: Vec::new() }),
        Located::Overflow => return Ok(Walk::Overflow),
    };
    let mut listed = Vec::with_capacity(32);
    listed_in_place_at(content(loc.buf.page()), key, &mut listed)
        .map_err(|e| corrupt(index, "segment page", e))?;
    drop(loc);
    Ok(Walk::Listed {
        blocks: point_candidates(&listed, key),
        segment_pages: 1,
    })
}

/// One directory page's share of an ordered scan: the zones of the page
/// owning `key` that meet `[lo, hi]`, and the key interval the page owns
/// (inclusive). Every tuple with a key in that interval is covered by a
/// listing of this page, so a scan can go interval by interval, reading
/// only the segment pages it reaches (ORDER BY … LIMIT). An overflowed map
/// answers every heap block, unbounded, as one interval.
pub struct PageZones {
    pub zones: Vec<Zone>,
    pub lo: i64,
    pub hi: i64,
}

pub fn page_zones(index: sys::Relation, key: i64, lo: i64, hi: i64) -> PgResult<PageZones> {
    match mapped_page_zones(index, key, lo, hi)? {
        Mapped::Zones(z) => Ok(z),
        Mapped::Empty => Ok(PageZones {
            zones: Vec::new(),
            lo: i64::MIN,
            hi: i64::MAX,
        }),
        Mapped::Overflow => Ok(PageZones {
            zones: all_heap_blocks(index)?
                .into_iter()
                .map(|blk| Zone {
                    blk,
                    zmin: i64::MIN,
                    zmax: i64::MAX,
                })
                .collect(),
            lo: i64::MIN,
            hi: i64::MAX,
        }),
    }
}

/// [`page_zones`] before an overflowed or empty map is given a meaning.
pub enum Mapped {
    Zones(PageZones),
    Overflow,
    Empty,
}

pub fn mapped_page_zones(index: sys::Relation, key: i64, lo: i64, hi: i64) -> PgResult<Mapped> {
    let loc = match locate(index, key, Lock::Share)? {
        Located::Seg(l) => l,
        Located::Empty => return Ok(Mapped::Empty),
        Located::Overflow => return Ok(Mapped::Overflow),
    };
    let page_lo = loc.lo;
    let page_hi = loc.hi.map_or(i64::MAX, |h| h - 1);
    let seg = decode_seg(index, loc.buf.page())?;
    let seg_buf = loc.buf;
    let (qlo, qhi) = (lo.max(page_lo), hi.min(page_hi));
    let zones = seg
        .candidate_listings(qlo, qhi)
        .map(|(_, l)| Zone {
            blk: l.blkno,
            zmin: l.zmin,
            zmax: l.zmax(),
        })
        .collect();
    drop(seg_buf);
    Ok(Mapped::Zones(PageZones {
        zones,
        lo: page_lo,
        hi: page_hi,
    }))
}

/// What the map says about a key range, for the range scan
/// (src/am/range_scan.rs).
pub enum RangeBlocks {
    /// The candidate heap blocks, ascending, and how many segment pages
    /// were read to find them.
    Listed {
        blocks: Vec<u32>,
        segment_pages: u32,
    },
    /// The map cannot narrow the range (overflowed, or a directory that
    /// lists nothing): every block is a candidate.
    Every,
}

/// [`candidates`] for the range scan, which reads "every block" as one
/// run instead of a list and wants to know how many map pages it read.
pub fn range_blocks(index: sys::Relation, lo: i64, hi: i64) -> PgResult<RangeBlocks> {
    Ok(match walk_range(index, lo, hi)? {
        Walk::Listed {
            blocks,
            segment_pages,
        } => RangeBlocks::Listed {
            blocks,
            segment_pages,
        },
        Walk::Overflow | Walk::Empty { .. } => RangeBlocks::Every,
    })
}

/// Whether the map has overflowed (the planner then leaves the index
/// alone).
pub fn overflowed(index: sys::Relation) -> PgResult<bool> {
    let (_buf, meta) = read_meta(index, Lock::Share)?;
    Ok(meta.flags & META_FLAG_OVERFLOW != 0)
}

/// For the planner: whether the map overflowed, and how many heap blocks a
/// point lookup reads on average, sampled on the middle segment page (one
/// page read beyond the metapage): per segment, the summed width of its
/// zones over the key extent they cover (1 when zones tile the extent).
pub fn lookup_blocks_sample(index: sys::Relation) -> PgResult<(bool, f64)> {
    let (meta_buf, meta) = read_meta(index, Lock::Share)?;
    if meta.flags & META_FLAG_OVERFLOW != 0 {
        return Ok((true, 1.0));
    }
    // The middle metapage entry's key: at depth 0 the middle segment page,
    // at depth 1 the first segment page of the middle directory page.
    let Some(mid_key) = meta.dir.get(meta.dir.len() / 2).map(|d| d.lo) else {
        return Ok((false, 1.0));
    };
    drop(meta_buf);
    let Located::Seg(loc) = locate(index, mid_key, Lock::Share)? else {
        return Ok((false, 1.0));
    };
    let page_hi = loc.hi;
    let seg = decode_seg(index, loc.buf.page())?;
    drop(loc);
    let per_segment: Vec<f64> = crate::core::cost::summarize(&seg, page_hi)
        .iter()
        .filter_map(|s| {
            let (a, b) = s.extent?;
            let extent = (b as i128 - a as i128 + 1) as f64;
            Some((s.zone_width_sum / extent).max(1.0))
        })
        .collect();
    if per_segment.is_empty() {
        return Ok((false, 1.0));
    }
    Ok((
        false,
        per_segment.iter().sum::<f64>() / per_segment.len() as f64,
    ))
}

/// Every block of the index's table (the executor holds its lock).
fn all_heap_blocks(index: sys::Relation) -> PgResult<Vec<u32>> {
    let ioid = rel::relid(index);
    // SAFETY: catalog lookup of the index's table.
    let heap_oid = guard(|| unsafe { sys::IndexGetRelation(ioid, false) })?;
    let heap = rel::OpenRel::table(heap_oid, sys::NoLock as i32)?;
    let n = crate::pg::heap::nblocks(heap.rel())?;
    Ok((0..n).collect())
}

/// Marks the map overflowed (metapage exclusive is held by the caller) and
/// warns once; the tuple that did not fit is then covered by "every block".
fn overflow(
    index: sys::Relation,
    meta_buf: &LockedBuffer,
    meta: &mut Meta,
    why: &str,
) -> PgResult<()> {
    meta.flags |= META_FLAG_OVERFLOW;
    let mut x = XLogRecord::start(index)?;
    write_meta(x.register(meta_buf, false)?, meta)?;
    x.finish()?;
    crate::pg::error::warning(
        &format!(
            "clustered_pk_index \"{}\" on table \"{}\": insert overflowed the map ({why}); scans now read the whole table",
            rel::name(index),
            rel::table_name_of_index(index)
        ),
        "The table is not clustered by this key. Use a clustered_heap table, or CLUSTER the table and REINDEX the index.",
    )
}

thread_local! {
    /// Rows this backend's transaction inserted under zones that already
    /// covered them, not yet added to their segments' row counts.
    static PENDING: std::cell::RefCell<PendingRows> =
        std::cell::RefCell::new(PendingRows::default());
    /// Indexes in which this transaction counted a covered row at once
    /// (its first); later ones wait for commit.
    static COUNTED_AT_ONCE: std::cell::RefCell<Vec<sys::Oid>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Rows the current transaction inserted into segment `seg_id` of `index`
/// that the page does not count yet.
pub fn pending_rows(index: sys::Relation, seg_id: i64) -> i64 {
    let oid = rel::relid(index);
    PENDING.with(|p| p.borrow().rows(oid, seg_id))
}

/// Records that a tuple with `key` was placed in heap block `blkno` of
/// `heap` (NULL: not known).
pub fn record(index: sys::Relation, key: i64, blkno: u32, heap: sys::Relation) -> PgResult<()> {
    bump(Counter::insert);
    record_rows(index, key, blkno, 1, heap)
}

/// Records that repack moved a row with `key` into heap block `blkno`: the
/// zone widens as for an insert, the row count stays (the old version is
/// dead once the move commits, and a split on a count that includes it
/// would halve segments for nothing).
pub fn record_moved(index: sys::Relation, key: i64, blkno: u32) -> PgResult<()> {
    record_rows(index, key, blkno, 0, std::ptr::null_mut())
}

/// Records `added` rows with `key` in heap block `blkno` of `heap` (NULL:
/// not known).
fn record_rows(
    index: sys::Relation,
    key: i64,
    blkno: u32,
    added: i64,
    heap: sys::Relation,
) -> PgResult<()> {
    let (now, threshold) = (now(), i64::from(rel::index_options(index).split_threshold));
    match record_fast(index, key, blkno, added, now, threshold)? {
        Fast::Done => return Ok(()),
        // The key's segment is full. On a clustered_heap table it splits
        // as placement splits it, at the median of the keys its blocks
        // hold, with both halves counted from those keys. The split by
        // zones (restructure_and_record) can only estimate each half's
        // rows, and a half it undercounts fills past split_threshold before
        // its count says so. A row reaches this point when heap kept an
        // updated row on its old page, or when others filled the segment
        // between placement and this record.
        Fast::Structural { full: true } if !heap.is_null() && rel::is_clustered_heap(heap)? => {
            let (attno, width) = (rel::index_heap_attno(index), rel::key_width(index)?);
            if split_exact(index, heap, key, attno, width)?
                && record_fast(index, key, blkno, added, now, threshold)? == Fast::Done
            {
                return Ok(());
            }
        }
        Fast::Structural { .. } => {}
    }
    restructure_and_record(index, key, blkno, now, threshold, added)
}

/// What the fast path of recording did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fast {
    /// Recorded (or nothing to record).
    Done,
    /// The structural path must record it (restructure_and_record); `full`:
    /// because the key's segment reached split_threshold (else its page
    /// has no room for a new listing).
    Structural { full: bool },
}

/// Records without changing the map's structure when it can: see
/// [`Fast`].
fn record_fast(
    index: sys::Relation,
    key: i64,
    blkno: u32,
    added: i64,
    now: i64,
    threshold: i64,
) -> PgResult<Fast> {
    // The row placement covered while holding its segment page: only its
    // count is owed, and after the transaction's first counted row that
    // waits for commit. Anything else (the first row, a segment at its
    // threshold, a row heap put elsewhere) takes the ordinary path.
    let oid = rel::relid(index);
    if let Some(p) = PRECOVERED.with(|h| h.take()) {
        if added == 1
            && p.index == oid
            && p.key == key
            && p.blkno == blkno
            && p.rows.saturating_add(pending_rows(index, p.seg_id)) < threshold
            && COUNTED_AT_ONCE.with(|c| c.borrow().contains(&oid))
        {
            PENDING.with(|q| q.borrow_mut().add(oid, p.seg_id, key));
            return Ok(Fast::Done);
        }
    }
    // Fast path: metapage shared, segment page exclusive, the listing
    // updated in place on the WAL image (no decode of the whole page).
    let full;
    {
        let (seg_buf, (seg_id, rows, covered)) = match hinted(index, key, blkno)? {
            Some(found) => found,
            None => {
                let seg_buf = match locate(index, key, Lock::Exclusive)? {
                    Located::Seg(loc) => loc.buf,
                    Located::Overflow => return Ok(Fast::Done),
                    Located::Empty => {
                        return Err(corrupt(
                            index,
                            "metapage",
                            LayoutError::Corrupt("empty directory"),
                        ))
                    }
                };
                let found = covered_in_place(content(seg_buf.page()), key, blkno)
                    .map_err(|e| corrupt(index, "segment page", e))?;
                (seg_buf, found)
            }
        };
        let rows = rows.saturating_add(pending_rows(index, seg_id));
        full = added > 0 && rows >= threshold;
        if !full {
            if covered && added == 0 {
                return Ok(Fast::Done);
            }
            if covered {
                if COUNTED_AT_ONCE.with(|c| c.borrow().contains(&oid)) {
                    // The zone already covers the key, and no other backend
                    // can see the tuple before this transaction commits:
                    // nothing on the page must change. The row count
                    // follows at commit (flush_pending), with one record
                    // per page.
                    PENDING.with(|p| p.borrow_mut().add(oid, seg_id, key));
                    return Ok(Fast::Done);
                }
                // The transaction's first such row in this index is counted
                // at once, on the page already locked: a one-row
                // transaction would otherwise open the index again at
                // commit and descend the map to write the same record.
                COUNTED_AT_ONCE.with(|c| c.borrow_mut().push(oid));
                add_counts(index, &seg_buf, &mut [(key, added)], now)?;
                return Ok(Fast::Done);
            }
            // The change is logged as the fields it touches (the listings it
            // moves, the header, and for a new listing the page's tail),
            // without an image of the page.
            let mut delta = Vec::with_capacity(128);
            let (outcome, _) = record_delta(
                content(seg_buf.page()),
                key,
                blkno,
                now,
                added,
                PAGE_HEADER_SIZE,
                &mut delta,
            )
            .map_err(|e| corrupt(index, "segment page", e))?;
            if outcome != Recorded::NeedsSpace {
                log_delta(index, &seg_buf, &delta)?;
                return Ok(Fast::Done);
            }
        }
    }
    // Structural path: split what is full, then record.
    Ok(Fast::Structural { full })
}

/// Adds `(key, rows)` to the row counts of the segments owning the keys on
/// the exclusively locked segment page, as one generic record of just those
/// fields (`log_delta`): the page is neither copied nor compared, so only
/// the cache lines of the headers changed are touched.
fn add_counts(
    index: sys::Relation,
    seg_buf: &LockedBuffer,
    entries: &mut [(i64, i64)],
    now: i64,
) -> PgResult<()> {
    let page = seg_buf.page();
    let targets =
        count_targets(content(page), entries).map_err(|e| corrupt(index, "segment page", e))?;
    let mut delta = Vec::with_capacity(targets.len() * 24);
    count_delta(content(page), &targets, now, PAGE_HEADER_SIZE, &mut delta);
    log_delta(index, seg_buf, &delta)
}

/// Transaction commit (pre-commit): adds the pending row counts to their
/// segments, one GenericXLog record per segment page. An index dropped
/// meanwhile is skipped; one rebuilt meanwhile (REINDEX, TRUNCATE in the
/// same transaction) may count those rows twice or under another segment:
/// row counts are estimates that VACUUM and rebuilds make exact again.
pub fn flush_pending() -> PgResult<()> {
    COUNTED_AT_ONCE.with(|c| c.borrow_mut().clear());
    let all = PENDING.with(|p| p.borrow_mut().take());
    for (oid, pending) in all {
        // SAFETY: opens by OID with the lock the inserts already hold;
        // NULL if the relation is gone.
        let probe = guard(|| unsafe { sys::try_relation_open(oid, sys::RowExclusiveLock as i32) })?;
        if probe.is_null() {
            continue;
        }
        let ours = rel::relkind(probe) == sys::RELKIND_INDEX
            && rel::relam(probe) == rel::clustered_index_am()?;
        // SAFETY: opened just above; the lock stays to transaction end.
        guard(|| unsafe { sys::relation_close(probe, sys::NoLock as i32) })?;
        if !ours {
            continue;
        }
        let ix = rel::OpenRel::index(oid, sys::RowExclusiveLock as i32)?;
        let index = ix.rel();
        let now = now();
        let (meta_buf, meta) = read_meta(index, Lock::Share)?;
        if meta.flags & META_FLAG_OVERFLOW != 0 || meta.dir.is_empty() {
            continue;
        }
        let leaves = leaves_for(index, &meta, pending.values().map(|e| e.min))?;
        for (i, entries) in group_by_page(&pending, |k| find_page(&leaves, k)) {
            let seg_buf = read_seg_buf(index, leaves[i].blkno, Lock::Exclusive)?;
            let mut entries = entries;
            add_counts(index, &seg_buf, &mut entries, now)?;
        }
        drop(meta_buf);
    }
    Ok(())
}

/// A build replaced the map with counts taken from the heap, which include
/// this transaction's rows: what it still owed the old map must not be
/// added to the new one.
pub fn forget_pending(index: sys::Relation) {
    let oid = rel::relid(index);
    PENDING.with(|p| p.borrow_mut().forget_index(oid));
}

/// Transaction abort: the pending rows never became visible to anyone.
pub fn discard_pending() {
    COUNTED_AT_ONCE.with(|c| c.borrow_mut().clear());
    PENDING.with(|p| p.borrow_mut().clear());
}

/// Metapage exclusive: split the segment owning `key` if it reached the
/// threshold, split its page if it cannot take the listing, then record.
fn restructure_and_record(
    index: sys::Relation,
    key: i64,
    blkno: u32,
    now: i64,
    threshold: i64,
    added: i64,
) -> PgResult<()> {
    let (meta_buf, mut meta, ctx, seg_buf, mut seg, page_hi) = locate_exclusive(index, key)?;
    if meta.flags & META_FLAG_OVERFLOW != 0 {
        return Ok(());
    }

    let si = seg.find_segment(key);
    let pending = pending_rows(index, seg.segs[si].id);
    if added > 0 && seg.segs[si].row_count.saturating_add(pending) >= threshold {
        let hi = seg.segment_hi(si, page_hi);
        if let Some(at) = pick_split_key(&seg.segs[si], hi) {
            seg.split_segment(si, at, meta.next_segment_id, now)
                .map_err(|e| internal(index, &e.to_string()))?;
            meta.next_segment_id += 1;
            meta.nsegments += 1;
            bump(Counter::split);
        }
    }
    write_structural(
        index,
        meta_buf,
        meta,
        ctx,
        seg_buf,
        seg,
        page_hi,
        now,
        Some((key, blkno, added)),
    )
}

/// Writes a segment page changed under the metapage's exclusive lock,
/// splitting it onto a new block when it no longer fits; `record` is
/// applied to whichever half owns the key. Writes the metapage (counters)
/// and, at depth 1, the directory page holding the segment page's entry
/// too: at most 4 buffers in one record (new segment page, old segment
/// page, directory page, metapage). The segment counts of the directory
/// entries are set here from the pages written.
#[allow(clippy::too_many_arguments)]
fn write_structural(
    index: sys::Relation,
    meta_buf: LockedBuffer,
    mut meta: Meta,
    mut ctx: DirCtx,
    seg_buf: LockedBuffer,
    mut seg: SegPage,
    page_hi: Option<i64>,
    now: i64,
    record: Option<(i64, u32, i64)>,
) -> PgResult<()> {
    let fits_after = {
        let mut probe = seg.clone();
        let ok = match record {
            Some((k, b, n)) => !matches!(probe.record_rows(k, b, now, n), Recorded::NeedsSpace),
            None => true,
        };
        ok && probe.fits()
    };
    if fits_after {
        if let Some((k, b, n)) = record {
            seg.record_rows(k, b, now, n);
        }
        let pos = ctx.pos;
        ctx.entries(&mut meta)[pos].nsegs = seg.segs.len() as u32;
        let mut x = XLogRecord::start(index)?;
        write_seg(x.register(&seg_buf, false)?, &seg)?;
        if let Some((dir_buf, dir_page, _)) = &ctx.page {
            write_dir(x.register(dir_buf, false)?, dir_page)?;
        }
        write_meta(x.register(&meta_buf, false)?, &meta)?;
        return x.finish();
    }

    // The page must split: halves by bytes (a lone segment splits by key
    // first), the upper half on a new block, whose entry needs room in the
    // directory (which may grow a level or split a directory page first,
    // each in its own consistent record: ensure_dir_room).
    if !ensure_dir_room(index, &meta_buf, &mut meta, &mut ctx)? {
        drop(seg_buf);
        let caps = dir_caps();
        return overflow(
            index,
            &meta_buf,
            &mut ctx.disk,
            &format!(
                "its segment directory is full: {} x {} segment pages",
                caps.root, caps.page
            ),
        );
    }
    if seg.segs.len() < 2 {
        let hi = seg.segment_hi(0, page_hi);
        let Some(at) = pick_split_key(&seg.segs[0], hi) else {
            drop(seg_buf);
            return overflow(
                index,
                &meta_buf,
                &mut ctx.disk,
                "one key range spans more blocks than a page lists",
            );
        };
        seg.split_segment(0, at, meta.next_segment_id, now)
            .map_err(|e| internal(index, &e.to_string()))?;
        meta.next_segment_id += 1;
        meta.nsegments += 1;
        bump(Counter::split);
    }
    // Appends to the rightmost segment of the last page (ascending loads)
    // move only that segment to the new page, so the pages left behind stay
    // full instead of half full, as btree's rightmost split does.
    let appending = page_hi.is_none()
        && seg.segs.len() >= 2
        && record.is_some_and(|(k, _, _)| k >= seg.segs[seg.segs.len() - 1].lo);
    let (mut lower, mut upper, new_lo) = if appending {
        let last = seg.segs.len() - 1;
        let upper = SegPage {
            segs: seg.segs[last..].to_vec(),
        };
        let new_lo = upper.segs[0].lo;
        (
            SegPage {
                segs: seg.segs[..last].to_vec(),
            },
            upper,
            new_lo,
        )
    } else {
        seg.split_half()
            .ok_or_else(|| internal(index, "page split found a single segment"))?
    };
    if let Some((k, b, n)) = record {
        if k >= new_lo {
            upper.record_rows(k, b, now, n);
        } else {
            lower.record_rows(k, b, now, n);
        }
    }
    if !lower.fits() || !upper.fits() {
        return Err(internal(index, "page halves do not fit after a split"));
    }
    let new_buf = LockedBuffer::extend(index)?;
    let pos = ctx.pos;
    let entries = ctx.entries(&mut meta);
    entries[pos].nsegs = lower.segs.len() as u32;
    entries.insert(
        pos + 1,
        DirEntry {
            lo: new_lo,
            blkno: new_buf.blkno(),
            nsegs: upper.segs.len() as u32,
        },
    );
    ctx.sync_root(&mut meta);
    let mut x = XLogRecord::start(index)?;
    write_seg(x.register(&new_buf, true)?, &upper)?;
    write_seg(x.register(&seg_buf, false)?, &lower)?;
    if let Some((dir_buf, dir_page, _)) = &ctx.page {
        write_dir(x.register(dir_buf, false)?, dir_page)?;
    }
    write_meta(x.register(&meta_buf, false)?, &meta)?;
    x.finish()
}

fn internal(index: sys::Relation, what: &str) -> PgError {
    PgError::new(
        codes::INTERNAL_ERROR,
        format!("clustered_pk_index \"{}\": {what}", rel::name(index)),
    )
}

/// Reads the whole map (directory and every segment page), metapage shared
/// for the whole read, each directory page shared while its segment pages
/// are read. The returned `Meta::dir` is the list of every segment page's
/// entry in key order (`pages[i]` belongs to `dir[i]`), whatever the
/// depth; `dir_levels` tells the depth. It is a read-only view: never
/// write it back as a metapage.
pub fn read_all(index: sys::Relation) -> PgResult<(Meta, Vec<SegPage>)> {
    let (meta_buf, mut meta) = read_meta(index, Lock::Share)?;
    let mut leaves = Vec::with_capacity(meta.dir.len());
    let mut pages = Vec::with_capacity(meta.dir.len());
    if meta.dir_levels == 0 {
        leaves = meta.dir.clone();
        for d in &meta.dir {
            let (b, p) = read_seg(index, d.blkno, Lock::Share)?;
            pages.push(p);
            drop(b);
        }
    } else {
        for (ri, r) in meta.dir.iter().enumerate() {
            crate::pg::error::check_for_interrupts()?;
            let dir_buf = LockedBuffer::read(index, r.blkno, Lock::Share)?;
            let dp = decode_dir(index, dir_buf.page())?;
            check_dir_page(&dp, r, meta.dir.get(ri + 1).map(|d| d.lo))
                .map_err(|e| corrupt(index, "directory page", e))?;
            for d in &dp.entries {
                let (b, p) = read_seg(index, d.blkno, Lock::Share)?;
                pages.push(p);
                drop(b);
            }
            leaves.extend(dp.entries);
            drop(dir_buf);
        }
    }
    drop(meta_buf);
    meta.dir = leaves;
    Ok((meta, pages))
}

/// Shape of the directory: (depth, metapage entries, directory pages,
/// segment pages, overflowed). Reads the metapage and, at depth 1, every
/// directory page (not the segment pages).
pub fn directory_shape(index: sys::Relation) -> PgResult<(u32, usize, usize, usize, bool)> {
    let (meta_buf, meta) = read_meta(index, Lock::Share)?;
    let overflowed = meta.flags & META_FLAG_OVERFLOW != 0;
    let leaves = if meta.dir_levels == 0 {
        meta.dir.len()
    } else {
        leaves_for(index, &meta, meta.dir.iter().map(|d| d.lo))?.len()
    };
    drop(meta_buf);
    let dir_pages = if meta.dir_levels == 0 {
        0
    } else {
        meta.dir.len()
    };
    Ok((
        meta.dir_levels,
        meta.dir.len(),
        dir_pages,
        leaves,
        overflowed,
    ))
}

/// The segment owning `key`: its head and exclusive upper bound, its blocks
/// and zones into `out` (see [`listed_in_place_at`]), and its segment page,
/// share-locked (placement decides under it). The segment page comes
/// from the pages this backend has already found when one of them owns the
/// key (see core::page_ranges), else from a descent of the map.
pub fn segment_listed(
    index: sys::Relation,
    key: i64,
    out: &mut Vec<Listed>,
) -> PgResult<(SegHead, Option<i64>, LockedBuffer)> {
    let identity = page_ranges_identity(index);
    if let Some(blkno) = PAGE_RANGES.with(|p| p.borrow().lookup(identity, key)) {
        let buf = LockedBuffer::read(index, blkno, Lock::Share)?;
        if page_kind(buf.page()) == KIND_SEG {
            let found = listed_in_place_at(content(buf.page()), key, out)
                .map_err(|e| corrupt(index, "segment page", e))?;
            if found.inside {
                remember_location(index, &buf, found.off, found.head.lo, found.hi);
                return Ok((found.head, found.hi, buf));
            }
        }
    }
    // An overflowed map still has its segments; placement keeps using them.
    let Located::Seg(loc) = locate_with(index, key, Lock::Share, false)? else {
        return Err(corrupt(
            index,
            "metapage",
            LayoutError::Corrupt("empty directory"),
        ));
    };
    let found = listed_in_place_at(content(loc.buf.page()), key, out)
        .map_err(|e| corrupt(index, "segment page", e))?;
    let hi = found.hi.or(loc.hi);
    if loc.overflowed {
        forget_location();
    } else {
        remember_location(index, &loc.buf, found.off, found.head.lo, hi);
        let blkno = loc.buf.blkno();
        PAGE_RANGES.with(|p| p.borrow_mut().note(identity, loc.lo, loc.hi, blkno));
    }
    Ok((found.head, hi, loc.buf))
}

thread_local! {
    static PAGE_RANGES: std::cell::RefCell<PageRanges> =
        std::cell::RefCell::new(PageRanges::default());
}

/// The index and its current file: a remembered page belongs to both.
fn page_ranges_identity(index: sys::Relation) -> Identity {
    (rel::relid(index), rel::relfilenode(index))
}

/// Where placement last found a segment: the insert that follows records
/// its row in the same segment, and while that page keeps its LSN (no
/// change since) it can go straight to it, without the metapage and
/// directory descent or a walk of the page.
#[derive(Clone, Copy)]
struct LocationHint {
    index: sys::Oid,
    blkno: u32,
    lsn: u64,
    off: usize,
    /// The keys the segment owned: `lo..hi` (no upper bound: None). The
    /// last segment of a page ends where the next page begins, which the
    /// page itself does not say; that bound comes from the directory and
    /// can only grow while this page is unchanged (a page between them
    /// would come from splitting this one), so keys inside it are the
    /// segment's. Any other key (a COPY's earlier rows, repack's moves, a
    /// nested insert) walks the map.
    lo: i64,
    hi: Option<i64>,
}

thread_local! {
    static HINT: std::cell::Cell<Option<LocationHint>> = const { std::cell::Cell::new(None) };
}

/// The page's LSN (pd_lsn: two native u32 halves at the page start).
fn page_lsn(page: &[u8]) -> u64 {
    let half = |i: usize| u32::from_ne_bytes(page[i..i + 4].try_into().unwrap_or([0; 4]));
    (u64::from(half(0)) << 32) | u64::from(half(4))
}

fn remember_location(
    index: sys::Relation,
    buf: &LockedBuffer,
    off: usize,
    lo: i64,
    hi: Option<i64>,
) {
    // Without WAL, GenericXLog leaves the LSN alone: a change is invisible.
    // SAFETY: index is open; RelationNeedsWAL reads fields and wal_level,
    // and cannot ereport.
    let logged = unsafe { sys::cpg_rel_needs_wal(index) };
    let hint = logged.then(|| LocationHint {
        index: rel::relid(index),
        blkno: buf.blkno(),
        lsn: page_lsn(buf.page()),
        off,
        lo,
        hi,
    });
    HINT.with(|h| h.set(hint));
}

/// Relcache invalidation (REINDEX, TRUNCATE give the index new pages) and
/// transaction end: the hints are dropped.
pub fn forget_location() {
    HINT.with(|h| h.set(None));
    PRECOVERED.with(|h| h.set(None));
}

/// A row whose segment page placement keeps share-locked until heap has
/// inserted it, in a block whose zone in the key's segment already covers
/// the key. No split or VACUUM can change that segment meanwhile (both
/// lock the page exclusively), and one that comes after reads the block,
/// the row included: the map covers the row without being touched, and
/// `aminsert` only has to count it (see record_fast).
#[derive(Clone, Copy)]
struct Precovered {
    index: sys::Oid,
    key: i64,
    blkno: u32,
    seg_id: i64,
    /// The segment's counter when placement read it.
    rows: i64,
}

thread_local! {
    static PRECOVERED: std::cell::Cell<Option<Precovered>> = const { std::cell::Cell::new(None) };
}

/// Placement keeps the segment page of `seg` locked across heap's insert of
/// a row with `key` into `blkno`, whose zone covers the key (see
/// [`Precovered`]); `None` clears what an earlier placement noted.
pub fn note_precovered(index: sys::Relation, row: Option<(i64, u32, &SegHead)>) {
    let p = row.map(|(key, blkno, seg)| Precovered {
        index: rel::relid(index),
        key,
        blkno,
        seg_id: seg.id,
        rows: seg.row_count,
    });
    PRECOVERED.with(|h| h.set(p));
}

/// Relcache invalidation of `relid` (0: of everything): the remembered
/// segment pages of that index are dropped (they would also be refused
/// once its file changes; this returns the memory).
pub fn forget_pages(relid: sys::Oid) {
    PAGE_RANGES.with(|p| {
        let mut p = p.borrow_mut();
        if relid == 0 || relid == p.index() {
            *p = PageRanges::default();
        }
    });
}

/// The segment owning a key: its id, its row count, and whether a given
/// block's zone covers the key.
type Coverage = (i64, i64, bool);

/// The segment page the hint names, locked exclusively, with the
/// [`Coverage`] of `key` and `blkno` on it, when the page is unchanged since
/// placement read it.
fn hinted(
    index: sys::Relation,
    key: i64,
    blkno: u32,
) -> PgResult<Option<(LockedBuffer, Coverage)>> {
    let Some(h) = HINT.with(|h| h.get()) else {
        return Ok(None);
    };
    if h.index != rel::relid(index) || key < h.lo || h.hi.is_some_and(|hi| key >= hi) {
        return Ok(None);
    }
    let buf = LockedBuffer::read(index, h.blkno, Lock::Exclusive)?;
    if page_lsn(buf.page()) != h.lsn {
        return Ok(None);
    }
    check_seg_kind(index, buf.page())?;
    let found = covered_at(content(buf.page()), h.off, key, blkno)
        .map_err(|e| corrupt(index, "segment page", e))?;
    Ok(found.map(|f| (buf, f)))
}

/// Splits the segment owning `key` at the median of the keys its blocks
/// really hold, with exact zones on both sides (blocks holding no key of a
/// side are dropped from it). Reads those heap blocks while holding the
/// segment page exclusively: an insert that reached the heap before the read
/// lands in a zone, one after it records itself after this write. The
/// counter's total is divided in the proportion of the keys read
/// (core::recount), never replaced by them. Returns false when the segment cannot be split (one
/// distinct key).
pub fn split_exact(
    index: sys::Relation,
    heap: sys::Relation,
    key: i64,
    attno: i16,
    width: u32,
) -> PgResult<bool> {
    let now = now();
    let (meta_buf, mut meta, ctx, seg_buf, mut seg, page_hi) = locate_exclusive(index, key)?;
    let si = seg.find_segment(key);
    let lo = seg.segs[si].lo;
    let hi = seg.segment_hi(si, page_hi);
    let in_range = |k: i64| k >= lo && hi.is_none_or(|h| k < h);

    let mut per_block: Vec<(u32, Vec<i64>)> = Vec::new();
    for l in &seg.segs[si].listings {
        let keys: Vec<i64> = crate::pg::heap::block_keys(
            KeysOf::NeverDeletedUnchecked,
            heap,
            l.blkno,
            attno,
            width,
        )?
        .into_iter()
        .filter_map(|t| t.key)
        .filter(|&k| in_range(k))
        .collect();
        per_block.push((l.blkno, keys));
    }
    let mut all: Vec<i64> = per_block
        .iter()
        .flat_map(|(_, k)| k.iter().copied())
        .collect();
    all.sort_unstable();
    let Some(at) = crate::core::placement::median_split(&all, lo) else {
        return Ok(false);
    };
    if hi.is_some_and(|h| at >= h) {
        return Ok(false);
    }
    let zone = |keys: &mut dyn Iterator<Item = i64>, blkno: u32| {
        let (mut a, mut z) = (i64::MAX, i64::MIN);
        let mut any = false;
        for k in keys {
            a = a.min(k);
            z = z.max(k);
            any = true;
        }
        any.then(|| Listing::from_bounds(a, z, blkno))
    };
    let mut lower = Vec::new();
    let mut upper = Vec::new();
    for (b, keys) in &per_block {
        if let Some(l) = zone(&mut keys.iter().copied().filter(|&k| k < at), *b) {
            lower.push(l);
        }
        if let Some(l) = zone(&mut keys.iter().copied().filter(|&k| k >= at), *b) {
            upper.push(l);
        }
    }
    lower.sort_unstable_by_key(|l| (l.zmin, l.blkno));
    upper.sort_unstable_by_key(|l| (l.zmin, l.blkno));
    let below = all.partition_point(|&k| k < at) as i64;
    // This transaction's own rows still pending for the segment are in the
    // blocks just read: the halves count them now, and they are no longer
    // owed (unless some of them moved to another segment meanwhile).
    let oid = rel::relid(index);
    let split_id = seg.segs[si].id;
    let own = PENDING.with(|p| p.borrow_mut().take_segment_within(oid, split_id, lo, hi));
    let recorded = seg.segs[si].row_count.saturating_add(own);
    let (lower_rows, upper_rows) = split_counts(recorded, below, all.len() as i64);
    let s = &mut seg.segs[si];
    let generation = s.split_generation.saturating_add(1);
    s.listings = lower;
    s.row_count = lower_rows;
    s.split_generation = generation;
    s.last_split_at = now;
    s.updated_at = now;
    seg.segs.insert(
        si + 1,
        Segment {
            lo: at,
            id: meta.next_segment_id,
            row_count: upper_rows,
            split_generation: generation,
            last_split_at: now,
            updated_at: now,
            listings: upper,
        },
    );
    meta.next_segment_id += 1;
    meta.nsegments += 1;
    bump(Counter::split);
    write_structural(index, meta_buf, meta, ctx, seg_buf, seg, page_hi, now, None)?;
    Ok(true)
}

/// VACUUM: narrows the zones of the `dirty` heap blocks (those that lost
/// tuples) to the keys they still hold, drops listings of blocks that hold
/// no key of their segment any more, and recounts the rows of every segment
/// that lists a dirty block. Each segment page is changed under its
/// exclusive lock while the heap blocks are read, so an insert either
/// reached the heap before the read (and is counted) or records itself
/// after this write. Returns (listings narrowed, listings removed).
pub fn vacuum_tighten(
    index: sys::Relation,
    heap: sys::Relation,
    dirty: &std::collections::HashSet<u32>,
) -> PgResult<(usize, usize)> {
    let attno = rel::index_heap_attno(index);
    let width = rel::key_width(index)?;
    let now = now();
    // Keys of a heap block are read under the lock of the segment page
    // being tightened and used for that page only: inserts recorded on
    // another page meanwhile may have added keys to the block, so a copy
    // carried over to the next page could narrow a zone past a live tuple.
    let mut keys_cache: std::collections::HashMap<u32, Vec<i64>> = Default::default();
    let keys_of = |b: u32,
                   cache: &mut std::collections::HashMap<u32, Vec<i64>>|
     -> PgResult<Vec<i64>> {
        if let Some(k) = cache.get(&b) {
            return Ok(k.clone());
        }
        let k: Vec<i64> = crate::pg::heap::block_keys(KeysOf::MayBeSeen, heap, b, attno, width)?
            .into_iter()
            .filter_map(|t| t.key)
            .collect();
        cache.insert(b, k.clone());
        Ok(k)
    };
    let (mut narrowed, mut removed) = (0usize, 0usize);
    let mut key = i64::MIN;
    loop {
        crate::pg::error::check_for_interrupts()?;
        let Located::Seg(loc) = locate(index, key, Lock::Exclusive)? else {
            break;
        };
        let page_hi = loc.hi;
        let mut seg = decode_seg(index, loc.buf.page())?;
        let seg_buf = loc.buf;
        keys_cache.clear();
        let mut touched: std::collections::BTreeSet<u32> = Default::default();
        let mut affected = vec![false; seg.segs.len()];
        for (si, s) in seg.segs.iter().enumerate() {
            for l in &s.listings {
                if dirty.contains(&l.blkno) {
                    touched.insert(l.blkno);
                    affected[si] = true;
                }
            }
        }
        if !touched.is_empty() {
            for &b in &touched {
                let keys = keys_of(b, &mut keys_cache)?;
                let st = seg.tighten_block(b, &keys, page_hi);
                narrowed += st.changed;
                removed += st.removed;
            }
            let affected_segments: Vec<usize> =
                (0..seg.segs.len()).filter(|&i| affected[i]).collect();
            for si in affected_segments {
                let lo = seg.segs[si].lo;
                let hi = seg.segment_hi(si, page_hi);
                let mut rows = 0i64;
                for b in seg.segs[si]
                    .listings
                    .iter()
                    .map(|l| l.blkno)
                    .collect::<Vec<_>>()
                {
                    rows += keys_of(b, &mut keys_cache)?
                        .iter()
                        .filter(|&&k| k >= lo && hi.is_none_or(|h| k < h))
                        .count() as i64;
                }
                seg.segs[si].row_count = rows;
                seg.segs[si].updated_at = now;
            }
            let mut x = XLogRecord::start(index)?;
            write_seg(x.register(&seg_buf, false)?, &seg)?;
            x.finish()?;
        }
        drop(seg_buf);
        match page_hi {
            Some(next) => key = next,
            None => break,
        }
    }
    Ok((narrowed, removed))
}
