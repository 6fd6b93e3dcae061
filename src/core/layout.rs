//! On-page layouts of the `clustered_pk_index` access method: the metapage
//! (options, counters, directory of segment pages) and the segment pages
//! (segments and their block listings), with their owned in-memory forms.
//!
//! Everything here works on the *content region* of a PostgreSQL page: the
//! bytes between the 24-byte page header (written by `PageInit`) and the
//! 8-byte special area. The caller locates that region and sets
//! `pd_lower = 24 + used` so GenericXLog skips the unused hole.
//!
//! The `#[repr(C)]` structs document the on-disk format and pin its size at
//! compile time; fields are (de)serialised one by one, little-endian, at the
//! offsets `offset_of!` gives, so nothing ever takes a reference into a
//! possibly unaligned page buffer and no `unsafe` is needed.

use std::fmt;
use std::mem::{offset_of, size_of};

/// PostgreSQL block size this layout is built for.
pub const BLCKSZ: usize = 8192;
/// `SizeOfPageHeaderData`: owned by PostgreSQL, never touched here.
pub const PAGE_HEADER_SIZE: usize = 24;
/// `MAXALIGN(sizeof(special))` reserved at the end of every index page.
pub const SPECIAL_SIZE: usize = 8;
/// Bytes available to this module on every index page.
pub const CONTENT_SIZE: usize = BLCKSZ - PAGE_HEADER_SIZE - SPECIAL_SIZE;

/// "CPKM": metapage.
pub const META_MAGIC: u32 = 0x4350_4B4D;
/// "CPKS": segment page.
pub const SEG_MAGIC: u32 = 0x4350_4B53;
/// "CPKD": directory page (second directory level, see [`DirPage`]).
pub const DIR_MAGIC: u32 = 0x4350_4B44;
/// Deepest directory this build reads and writes: 0 = the metapage lists
/// the segment pages, 1 = the metapage lists directory pages that list the
/// segment pages.
pub const MAX_DIR_LEVELS: u32 = 1;
/// Bumped whenever the byte layout of metapages and directory pages
/// changes; old indexes then need REINDEX.
pub const LAYOUT_VERSION: u32 = 1;
/// Segment pages as first written: segments packed right after the page's
/// header, found by walking every header before the key's. Still read and
/// updated in place; a page is rewritten as [`SEG_LAYOUT_SLOTTED`] the next
/// time it is re-encoded (split, VACUUM, repack), so no REINDEX is needed.
pub const SEG_LAYOUT_PACKED: u32 = 1;
/// Segment pages with a slot array (each segment's offset, `u16`) between
/// the page's header and its segments: a lookup binary-searches the slots
/// instead of walking the headers before its key, which on the insert path
/// was a tenth of a row's time (a page holds up to hundreds of segments).
/// The segments themselves stay packed and in key order, so a sequential
/// walk reads them exactly as in [`SEG_LAYOUT_PACKED`].
pub const SEG_LAYOUT_SLOTTED: u32 = 2;

/// Metapage flag: the map could not record a tuple (directory full, or one
/// key in more blocks than a page lists). Scans then read every heap block
/// and the planner avoids the index until REINDEX builds a complete map.
pub const META_FLAG_OVERFLOW: u32 = 1;

/// Metapage flag: the table may hold rows with a NULL key (plain heap only;
/// they are never mapped). A scan without key conditions, which must return
/// every row in key order, then looks for them in every heap block at the
/// end (NULLS LAST). Set by the build and by the first such insert; cleared
/// only by a rebuild that finds none.
pub const META_FLAG_HAS_NULLS: u32 = 2;

/// Zone span value meaning "from zmin up to `i64::MAX`".
pub const SPAN_SATURATED: u32 = u32::MAX;

/// Why a page could not be decoded. The caller turns this into a PostgreSQL
/// error with a REINDEX hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    BadMagic,
    UnknownVersion { found: u32 },
    Corrupt(&'static str),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::BadMagic => write!(f, "bad magic number"),
            LayoutError::UnknownVersion { found } => write!(
                f,
                "unknown layout version {found} (this build reads metapages and directory pages of version {LAYOUT_VERSION}, segment pages of versions {SEG_LAYOUT_PACKED} and {SEG_LAYOUT_SLOTTED})"
            ),
            LayoutError::Corrupt(what) => write!(f, "corrupt page: {what}"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// The encoded form does not fit in the buffer (or in a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub needed: usize,
    pub available: usize,
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "page content needs {} bytes, only {} available",
            self.needed, self.available
        )
    }
}

impl std::error::Error for Full {}

// ---------------------------------------------------------------------------
// Byte helpers. Bounds are checked by the callers (lengths are validated
// before any field is read), so these may index directly.

pub(crate) fn get_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().expect("2 bytes"))
}
pub(crate) fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
pub(crate) fn get_i32(b: &[u8], off: usize) -> i32 {
    i32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
pub(crate) fn get_i64(b: &[u8], off: usize) -> i64 {
    i64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}
pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_i32(b: &mut [u8], off: usize, v: i32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_i64(b: &mut [u8], off: usize, v: i64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

// ---------------------------------------------------------------------------
// On-disk structs.

/// Key type stored in the metapage; the value is the key's byte width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum KeyType {
    Int2 = 2,
    Int4 = 4,
    Int8 = 8,
}

impl KeyType {
    pub fn from_u32(v: u32) -> Option<KeyType> {
        match v {
            2 => Some(KeyType::Int2),
            4 => Some(KeyType::Int4),
            8 => Some(KeyType::Int8),
            _ => None,
        }
    }
}

/// Fixed part of the metapage, followed by `n_dir` [`DirEntry`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct MetaHeader {
    pub magic: u32,
    pub layout_version: u32,
    pub key_type: u32,
    pub flags: u32,
    pub ext_version: [u8; 16],
    pub split_threshold: i32,
    pub target_fillfactor: i32,
    pub auto_repack_interval: i32,
    pub pad: i32,
    pub nsegments: i64,
    pub next_segment_id: i64,
    pub total_rows: i64,
    pub n_dir: u32,
    /// Depth of the directory: 0 = the `n_dir` entries after the header
    /// point to segment pages, 1 = they point to directory pages
    /// ([`DirPage`]) whose entries point to segment pages. This was the
    /// always-zero padding word `pad2` before the second level existed, so
    /// every index written before reads as depth 0, byte for byte unchanged,
    /// and LAYOUT_VERSION did not need a bump (no REINDEX on upgrade).
    pub dir_levels: u32,
}
const _: () = assert!(size_of::<MetaHeader>() == 80);

impl MetaHeader {
    pub const SIZE: usize = size_of::<MetaHeader>();

    fn read(b: &[u8]) -> MetaHeader {
        let mut ext_version = [0u8; 16];
        let ev = offset_of!(MetaHeader, ext_version);
        ext_version.copy_from_slice(&b[ev..ev + 16]);
        MetaHeader {
            magic: get_u32(b, offset_of!(MetaHeader, magic)),
            layout_version: get_u32(b, offset_of!(MetaHeader, layout_version)),
            key_type: get_u32(b, offset_of!(MetaHeader, key_type)),
            flags: get_u32(b, offset_of!(MetaHeader, flags)),
            ext_version,
            split_threshold: get_i32(b, offset_of!(MetaHeader, split_threshold)),
            target_fillfactor: get_i32(b, offset_of!(MetaHeader, target_fillfactor)),
            auto_repack_interval: get_i32(b, offset_of!(MetaHeader, auto_repack_interval)),
            pad: get_i32(b, offset_of!(MetaHeader, pad)),
            nsegments: get_i64(b, offset_of!(MetaHeader, nsegments)),
            next_segment_id: get_i64(b, offset_of!(MetaHeader, next_segment_id)),
            total_rows: get_i64(b, offset_of!(MetaHeader, total_rows)),
            n_dir: get_u32(b, offset_of!(MetaHeader, n_dir)),
            dir_levels: get_u32(b, offset_of!(MetaHeader, dir_levels)),
        }
    }

    fn write(&self, b: &mut [u8]) {
        put_u32(b, offset_of!(MetaHeader, magic), self.magic);
        put_u32(
            b,
            offset_of!(MetaHeader, layout_version),
            self.layout_version,
        );
        put_u32(b, offset_of!(MetaHeader, key_type), self.key_type);
        put_u32(b, offset_of!(MetaHeader, flags), self.flags);
        let ev = offset_of!(MetaHeader, ext_version);
        b[ev..ev + 16].copy_from_slice(&self.ext_version);
        put_i32(
            b,
            offset_of!(MetaHeader, split_threshold),
            self.split_threshold,
        );
        put_i32(
            b,
            offset_of!(MetaHeader, target_fillfactor),
            self.target_fillfactor,
        );
        put_i32(
            b,
            offset_of!(MetaHeader, auto_repack_interval),
            self.auto_repack_interval,
        );
        put_i32(b, offset_of!(MetaHeader, pad), self.pad);
        put_i64(b, offset_of!(MetaHeader, nsegments), self.nsegments);
        put_i64(
            b,
            offset_of!(MetaHeader, next_segment_id),
            self.next_segment_id,
        );
        put_i64(b, offset_of!(MetaHeader, total_rows), self.total_rows);
        put_u32(b, offset_of!(MetaHeader, n_dir), self.n_dir);
        put_u32(b, offset_of!(MetaHeader, dir_levels), self.dir_levels);
    }
}

/// Directory entry: segment page `blkno` is responsible for keys
/// `[lo, next entry's lo)`; the first entry's `lo` is `i64::MIN`. In the
/// metapage of a depth-1 directory the entry points to a directory page
/// instead, and `nsegs` counts that page's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct DirEntry {
    pub lo: i64,
    pub blkno: u32,
    pub nsegs: u32,
}
const _: () = assert!(size_of::<DirEntry>() == 16);

impl DirEntry {
    pub const SIZE: usize = size_of::<DirEntry>();

    fn read(b: &[u8]) -> DirEntry {
        DirEntry {
            lo: get_i64(b, offset_of!(DirEntry, lo)),
            blkno: get_u32(b, offset_of!(DirEntry, blkno)),
            nsegs: get_u32(b, offset_of!(DirEntry, nsegs)),
        }
    }

    fn write(&self, b: &mut [u8]) {
        put_i64(b, offset_of!(DirEntry, lo), self.lo);
        put_u32(b, offset_of!(DirEntry, blkno), self.blkno);
        put_u32(b, offset_of!(DirEntry, nsegs), self.nsegs);
    }
}

/// Fixed part of a segment page, followed by `nsegs` packed segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct SegPageHeader {
    pub magic: u32,
    pub layout_version: u32,
    pub nsegs: u32,
    /// Bytes of the content region in use, this header included.
    pub used: u32,
}
const _: () = assert!(size_of::<SegPageHeader>() == 16);

impl SegPageHeader {
    pub const SIZE: usize = size_of::<SegPageHeader>();

    pub(crate) fn read(b: &[u8]) -> SegPageHeader {
        SegPageHeader {
            magic: get_u32(b, offset_of!(SegPageHeader, magic)),
            layout_version: get_u32(b, offset_of!(SegPageHeader, layout_version)),
            nsegs: get_u32(b, offset_of!(SegPageHeader, nsegs)),
            used: get_u32(b, offset_of!(SegPageHeader, used)),
        }
    }

    pub(crate) fn write(&self, b: &mut [u8]) {
        put_u32(b, offset_of!(SegPageHeader, magic), self.magic);
        put_u32(
            b,
            offset_of!(SegPageHeader, layout_version),
            self.layout_version,
        );
        put_u32(b, offset_of!(SegPageHeader, nsegs), self.nsegs);
        put_u32(b, offset_of!(SegPageHeader, used), self.used);
    }
}

/// Fixed part of one segment, followed by `nlist` [`Listing`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct SegHeader {
    pub lo: i64,
    pub segment_id: i64,
    pub row_count: i64,
    pub split_generation: u32,
    pub nlist: u32,
    pub last_split_at: i64,
    pub updated_at: i64,
}
const _: () = assert!(size_of::<SegHeader>() == 48);

impl SegHeader {
    pub const SIZE: usize = size_of::<SegHeader>();

    pub(crate) fn read(b: &[u8]) -> SegHeader {
        SegHeader {
            lo: get_i64(b, offset_of!(SegHeader, lo)),
            segment_id: get_i64(b, offset_of!(SegHeader, segment_id)),
            row_count: get_i64(b, offset_of!(SegHeader, row_count)),
            split_generation: get_u32(b, offset_of!(SegHeader, split_generation)),
            nlist: get_u32(b, offset_of!(SegHeader, nlist)),
            last_split_at: get_i64(b, offset_of!(SegHeader, last_split_at)),
            updated_at: get_i64(b, offset_of!(SegHeader, updated_at)),
        }
    }

    pub(crate) fn write(&self, b: &mut [u8]) {
        put_i64(b, offset_of!(SegHeader, lo), self.lo);
        put_i64(b, offset_of!(SegHeader, segment_id), self.segment_id);
        put_i64(b, offset_of!(SegHeader, row_count), self.row_count);
        put_u32(
            b,
            offset_of!(SegHeader, split_generation),
            self.split_generation,
        );
        put_u32(b, offset_of!(SegHeader, nlist), self.nlist);
        put_i64(b, offset_of!(SegHeader, last_split_at), self.last_split_at);
        put_i64(b, offset_of!(SegHeader, updated_at), self.updated_at);
    }
}

/// "Heap block `blkno` may hold keys of this segment in `[zmin, zmax()]`."
///
/// The zone is stored as a start and a 32-bit span so a listing stays 16
/// bytes; a span that does not fit saturates to [`SPAN_SATURATED`], which
/// widens the zone up to `i64::MAX`. Widening is always safe, narrowing never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(C)]
pub struct Listing {
    pub zmin: i64,
    pub blkno: u32,
    pub span: u32,
}
const _: () = assert!(size_of::<Listing>() == 16);

impl Listing {
    pub const SIZE: usize = size_of::<Listing>();

    /// Smallest listing whose zone covers `[zmin, zmax]`.
    pub fn from_bounds(zmin: i64, zmax: i64, blkno: u32) -> Listing {
        debug_assert!(zmin <= zmax);
        let width = zmax as i128 - zmin as i128;
        let span = if width >= SPAN_SATURATED as i128 {
            SPAN_SATURATED
        } else {
            width as u32
        };
        Listing { zmin, blkno, span }
    }

    /// Inclusive upper end of the zone.
    pub fn zmax(&self) -> i64 {
        if self.span == SPAN_SATURATED {
            i64::MAX
        } else {
            // Cannot overflow: a non-saturated span is only ever produced
            // by `from_bounds` from a real upper bound. Saturate anyway so a
            // corrupt page can only over-approximate.
            self.zmin.saturating_add(self.span as i64)
        }
    }

    pub fn contains(&self, key: i64) -> bool {
        key >= self.zmin && key <= self.zmax()
    }

    /// Does the zone meet the inclusive range `[lo, hi]`?
    pub fn intersects(&self, lo: i64, hi: i64) -> bool {
        self.zmin <= hi && self.zmax() >= lo
    }

    /// The zone cut down to `[lo, hi]` (inclusive), or `None` if nothing is
    /// left. Used when a segment splits: keys outside the new range cannot
    /// belong to the new segment, so cutting them off never loses a row.
    pub fn clip(&self, lo: i64, hi: i64) -> Option<Listing> {
        let zmin = self.zmin.max(lo);
        let zmax = self.zmax().min(hi);
        (zmin <= zmax).then(|| Listing::from_bounds(zmin, zmax, self.blkno))
    }

    pub(crate) fn read(b: &[u8]) -> Listing {
        Listing {
            zmin: get_i64(b, offset_of!(Listing, zmin)),
            blkno: get_u32(b, offset_of!(Listing, blkno)),
            span: get_u32(b, offset_of!(Listing, span)),
        }
    }

    pub(crate) fn write(&self, b: &mut [u8]) {
        put_i64(b, offset_of!(Listing, zmin), self.zmin);
        put_u32(b, offset_of!(Listing, blkno), self.blkno);
        put_u32(b, offset_of!(Listing, span), self.span);
    }
}

// ---------------------------------------------------------------------------
// Metapage.

/// Owned form of the metapage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub key_type: KeyType,
    pub flags: u32,
    /// NUL-padded extension version that wrote the index, e.g. "0.1.0".
    pub ext_version: [u8; 16],
    pub split_threshold: i32,
    pub target_fillfactor: i32,
    pub auto_repack_interval: i32,
    pub nsegments: i64,
    pub next_segment_id: i64,
    /// Estimate; exact after build, VACUUM or repack.
    pub total_rows: i64,
    /// The root directory, sorted by `lo`; `dir[0].lo == i64::MIN` when
    /// non-empty. Entries point to segment pages at depth 0 and to
    /// directory pages at depth 1 (`dir_levels`).
    pub dir: Vec<DirEntry>,
    /// Depth of the directory, 0 or 1 (see [`MetaHeader::dir_levels`]).
    pub dir_levels: u32,
}

/// Alias matching the page-kind naming used elsewhere.
pub type MetaPage = Meta;

impl Meta {
    /// Directory entries that fit after the header.
    pub const DIR_CAPACITY: usize = (CONTENT_SIZE - MetaHeader::SIZE) / DirEntry::SIZE;

    pub fn new(key_type: KeyType, ext_version: &str) -> Meta {
        Meta {
            key_type,
            flags: 0,
            ext_version: pack_version(ext_version),
            split_threshold: 0,
            target_fillfactor: 100,
            auto_repack_interval: 0,
            nsegments: 0,
            next_segment_id: 1,
            total_rows: 0,
            dir: Vec::new(),
            dir_levels: 0,
        }
    }

    /// The version text without its NUL padding.
    pub fn ext_version_str(&self) -> String {
        let end = self
            .ext_version
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.ext_version.len());
        String::from_utf8_lossy(&self.ext_version[..end]).into_owned()
    }

    pub fn encoded_len(&self) -> usize {
        MetaHeader::SIZE + self.dir.len() * DirEntry::SIZE
    }

    pub fn fits(&self) -> bool {
        self.dir.len() <= Self::DIR_CAPACITY
    }

    /// Writes the page content into `buf` (normally exactly the content
    /// region), zeroing the rest so identical metas give identical bytes.
    /// Returns the number of bytes in use.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, Full> {
        let needed = self.encoded_len();
        let available = buf.len().min(CONTENT_SIZE);
        if needed > available {
            return Err(Full { needed, available });
        }
        MetaHeader {
            magic: META_MAGIC,
            layout_version: LAYOUT_VERSION,
            key_type: self.key_type as u32,
            flags: self.flags,
            ext_version: self.ext_version,
            split_threshold: self.split_threshold,
            target_fillfactor: self.target_fillfactor,
            auto_repack_interval: self.auto_repack_interval,
            pad: 0,
            nsegments: self.nsegments,
            next_segment_id: self.next_segment_id,
            total_rows: self.total_rows,
            n_dir: self.dir.len() as u32,
            dir_levels: self.dir_levels,
        }
        .write(buf);
        let mut off = MetaHeader::SIZE;
        for d in &self.dir {
            d.write(&mut buf[off..]);
            off += DirEntry::SIZE;
        }
        buf[off..].fill(0);
        Ok(off)
    }

    pub fn decode(buf: &[u8]) -> Result<Meta, LayoutError> {
        check_magic_version(buf, META_MAGIC)?;
        if buf.len() < MetaHeader::SIZE {
            return Err(LayoutError::Corrupt("metapage shorter than its header"));
        }
        let h = MetaHeader::read(buf);
        let key_type =
            KeyType::from_u32(h.key_type).ok_or(LayoutError::Corrupt("unknown key type"))?;
        if h.dir_levels > MAX_DIR_LEVELS {
            return Err(LayoutError::Corrupt(
                "directory deeper than this build reads",
            ));
        }
        let n_dir = h.n_dir as usize;
        if n_dir > Self::DIR_CAPACITY {
            return Err(LayoutError::Corrupt("directory larger than a page"));
        }
        if buf.len() < MetaHeader::SIZE + n_dir * DirEntry::SIZE {
            return Err(LayoutError::Corrupt("metapage directory truncated"));
        }
        let dir: Vec<DirEntry> = (0..n_dir)
            .map(|i| DirEntry::read(&buf[MetaHeader::SIZE + i * DirEntry::SIZE..]))
            .collect();
        if let Some(first) = dir.first() {
            if first.lo != i64::MIN {
                return Err(LayoutError::Corrupt(
                    "first directory entry must start at the lowest key",
                ));
            }
        }
        if dir.windows(2).any(|w| w[0].lo >= w[1].lo) {
            return Err(LayoutError::Corrupt("directory not sorted by key"));
        }
        if dir.iter().any(|d| d.blkno == 0 || d.nsegs == 0) {
            return Err(LayoutError::Corrupt(
                "directory entry points to the metapage or an empty page",
            ));
        }
        Ok(Meta {
            key_type,
            flags: h.flags,
            ext_version: h.ext_version,
            split_threshold: h.split_threshold,
            target_fillfactor: h.target_fillfactor,
            auto_repack_interval: h.auto_repack_interval,
            nsegments: h.nsegments,
            next_segment_id: h.next_segment_id,
            total_rows: h.total_rows,
            dir,
            dir_levels: h.dir_levels,
        })
    }
}

/// NUL-pads (and truncates to 16 bytes) a version text.
pub fn pack_version(v: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = v.len().min(16);
    out[..n].copy_from_slice(&v.as_bytes()[..n]);
    out
}

pub(crate) fn check_magic_version(buf: &[u8], magic: u32) -> Result<(), LayoutError> {
    if buf.len() < 8 {
        return Err(LayoutError::Corrupt(
            "page content shorter than magic and version",
        ));
    }
    if get_u32(buf, 0) != magic {
        return Err(LayoutError::BadMagic);
    }
    let found = get_u32(buf, 4);
    if found != LAYOUT_VERSION {
        return Err(LayoutError::UnknownVersion { found });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Directory pages (second directory level).

/// Fixed part of a directory page, followed by `n_dir` [`DirEntry`]s
/// pointing to segment pages, sorted by `lo`. The page owns the key
/// interval of the metapage entry pointing to it; its first entry's `lo`
/// equals that entry's `lo`, and entry i owns `[lo_i, lo_{i+1})` (the last
/// one up to the next metapage entry's `lo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct DirPageHeader {
    pub magic: u32,
    pub layout_version: u32,
    pub n_dir: u32,
    /// Level of the entries' targets: 0 = segment pages (the only value
    /// written today; room for deeper directories without a new format).
    pub level: u32,
}
const _: () = assert!(size_of::<DirPageHeader>() == 16);

impl DirPageHeader {
    pub const SIZE: usize = size_of::<DirPageHeader>();

    pub(crate) fn read(b: &[u8]) -> DirPageHeader {
        DirPageHeader {
            magic: get_u32(b, offset_of!(DirPageHeader, magic)),
            layout_version: get_u32(b, offset_of!(DirPageHeader, layout_version)),
            n_dir: get_u32(b, offset_of!(DirPageHeader, n_dir)),
            level: get_u32(b, offset_of!(DirPageHeader, level)),
        }
    }

    fn write(&self, b: &mut [u8]) {
        put_u32(b, offset_of!(DirPageHeader, magic), self.magic);
        put_u32(
            b,
            offset_of!(DirPageHeader, layout_version),
            self.layout_version,
        );
        put_u32(b, offset_of!(DirPageHeader, n_dir), self.n_dir);
        put_u32(b, offset_of!(DirPageHeader, level), self.level);
    }
}

/// Owned form of a directory page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirPage {
    /// Sorted by `lo`, never empty on a valid page.
    pub entries: Vec<DirEntry>,
}

impl DirPage {
    /// Entries that fit after the header.
    pub const CAPACITY: usize = (CONTENT_SIZE - DirPageHeader::SIZE) / DirEntry::SIZE;

    pub fn encoded_len(&self) -> usize {
        DirPageHeader::SIZE + self.entries.len() * DirEntry::SIZE
    }

    pub fn fits(&self) -> bool {
        self.entries.len() <= Self::CAPACITY
    }

    /// Writes the page content into `buf`, zeroing the rest; returns the
    /// bytes in use.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, Full> {
        let needed = self.encoded_len();
        let available = buf.len().min(CONTENT_SIZE);
        if needed > available {
            return Err(Full { needed, available });
        }
        DirPageHeader {
            magic: DIR_MAGIC,
            layout_version: LAYOUT_VERSION,
            n_dir: self.entries.len() as u32,
            level: 0,
        }
        .write(buf);
        let mut off = DirPageHeader::SIZE;
        for d in &self.entries {
            d.write(&mut buf[off..]);
            off += DirEntry::SIZE;
        }
        buf[off..].fill(0);
        Ok(off)
    }

    /// Decodes and checks the structure: entries sorted, none pointing to
    /// the metapage or to an empty segment page.
    pub fn decode(buf: &[u8]) -> Result<DirPage, LayoutError> {
        let n = dir_page_header(buf)?;
        let entries: Vec<DirEntry> = (0..n)
            .map(|i| DirEntry::read(&buf[DirPageHeader::SIZE + i * DirEntry::SIZE..]))
            .collect();
        if entries.windows(2).any(|w| w[0].lo >= w[1].lo) {
            return Err(LayoutError::Corrupt("directory page not sorted by key"));
        }
        if entries.iter().any(|d| d.blkno == 0 || d.nsegs == 0) {
            return Err(LayoutError::Corrupt(
                "directory entry points to the metapage or an empty page",
            ));
        }
        Ok(DirPage { entries })
    }
}

/// Checks a directory page's magic, version and header; returns its number
/// of entries (at least one, all within `buf`).
pub(crate) fn dir_page_header(buf: &[u8]) -> Result<usize, LayoutError> {
    check_magic_version(buf, DIR_MAGIC)?;
    if buf.len() < DirPageHeader::SIZE {
        return Err(LayoutError::Corrupt(
            "directory page shorter than its header",
        ));
    }
    let h = DirPageHeader::read(buf);
    if h.level != 0 {
        return Err(LayoutError::Corrupt(
            "directory page level unknown to this build",
        ));
    }
    let n = h.n_dir as usize;
    if n == 0 {
        return Err(LayoutError::Corrupt("directory page without entries"));
    }
    if n > DirPage::CAPACITY || buf.len() < DirPageHeader::SIZE + n * DirEntry::SIZE {
        return Err(LayoutError::Corrupt("directory page entries truncated"));
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// Segment pages.

/// Owned form of one segment: the keys `[lo, next segment's lo)` and the
/// heap blocks that may hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub lo: i64,
    /// The "major" of a locator.
    pub id: i64,
    /// Estimate between VACUUMs / rebuilds.
    pub row_count: i64,
    pub split_generation: u32,
    /// TimestampTz microseconds, 0 = never split.
    pub last_split_at: i64,
    pub updated_at: i64,
    /// Sorted by `(zmin, blkno)`, at most one per `blkno`.
    pub listings: Vec<Listing>,
}

impl Segment {
    pub fn new(lo: i64, id: i64, now: i64) -> Segment {
        Segment {
            lo,
            id,
            row_count: 0,
            split_generation: 0,
            last_split_at: 0,
            updated_at: now,
            listings: Vec::new(),
        }
    }

    pub fn encoded_len(&self) -> usize {
        SegHeader::SIZE + self.listings.len() * Listing::SIZE
    }
}

/// Bytes of a slot array for `nsegs` segments, padded to 8 so the segment
/// headers after it keep the alignment they had in the packed layout.
pub const fn slot_area(nsegs: usize) -> usize {
    (nsegs * 2 + 7) & !7
}

/// What a segment page's header says, checked: how to find its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegPageView {
    /// Bytes of the content region in use (the page header included).
    pub used: usize,
    pub nsegs: usize,
    /// [`SEG_LAYOUT_SLOTTED`]: the slot array holds each segment's offset.
    pub slotted: bool,
}

impl SegPageView {
    /// Offset of the first segment's header.
    pub fn first(&self) -> usize {
        SegPageHeader::SIZE
            + if self.slotted {
                slot_area(self.nsegs)
            } else {
                0
            }
    }

    /// Offset of segment `i`'s header as its slot says (slotted pages only),
    /// checked to leave room for the header within the bytes in use.
    pub fn slot(&self, buf: &[u8], i: usize) -> Result<usize, LayoutError> {
        debug_assert!(self.slotted && i < self.nsegs);
        let off = get_u16(buf, SegPageHeader::SIZE + 2 * i) as usize;
        if off < self.first() || off + SegHeader::SIZE > self.used {
            return Err(LayoutError::Corrupt("segment slot out of range"));
        }
        Ok(off)
    }
}

/// Checks a segment page's magic, version and header.
pub(crate) fn seg_page_header(buf: &[u8]) -> Result<SegPageView, LayoutError> {
    if buf.len() < SegPageHeader::SIZE {
        return Err(LayoutError::Corrupt("segment page shorter than its header"));
    }
    if get_u32(buf, 0) != SEG_MAGIC {
        return Err(LayoutError::BadMagic);
    }
    let h = SegPageHeader::read(buf);
    let slotted = match h.layout_version {
        SEG_LAYOUT_PACKED => false,
        SEG_LAYOUT_SLOTTED => true,
        found => return Err(LayoutError::UnknownVersion { found }),
    };
    let used = h.used as usize;
    if used > CONTENT_SIZE || used > buf.len() || used < SegPageHeader::SIZE {
        return Err(LayoutError::Corrupt("segment page used size out of range"));
    }
    if h.nsegs == 0 {
        return Err(LayoutError::Corrupt("segment page without segments"));
    }
    let view = SegPageView {
        used,
        nsegs: h.nsegs as usize,
        slotted,
    };
    if view.first() > used {
        return Err(LayoutError::Corrupt(
            "segment page slots exceed its used size",
        ));
    }
    Ok(view)
}

/// Owned form of a segment page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegPage {
    /// Sorted by `lo`, never empty on a valid page; the first segment's `lo`
    /// equals the page's directory `lo`.
    pub segs: Vec<Segment>,
}

impl SegPage {
    /// Listings a page can hold when it has a single segment.
    pub const MAX_LISTINGS_ONE_SEGMENT: usize =
        (CONTENT_SIZE - SegPageHeader::SIZE - slot_area(1) - SegHeader::SIZE) / Listing::SIZE;

    /// Bytes a page of `nsegs` segments whose headers and listings take
    /// `body` bytes uses, in the layout this build writes.
    pub const fn encoded_len_of(nsegs: usize, body: usize) -> usize {
        SegPageHeader::SIZE + slot_area(nsegs) + body
    }

    pub fn encoded_len(&self) -> usize {
        SegPage::encoded_len_of(
            self.segs.len(),
            self.segs.iter().map(Segment::encoded_len).sum::<usize>(),
        )
    }

    pub fn fits(&self) -> bool {
        self.encoded_len() <= CONTENT_SIZE
    }

    /// Bytes still free on the page.
    pub fn free_space(&self) -> usize {
        CONTENT_SIZE.saturating_sub(self.encoded_len())
    }

    /// Writes the page content into `buf`, zeroing the rest; returns the
    /// bytes in use. The layout is [`SEG_LAYOUT_SLOTTED`]; a page decoded
    /// from a packed page filled beyond what the slots leave room for (an
    /// earlier build could fill all of it) is written packed again, so
    /// VACUUM and count updates never fail on it. Every decision that adds
    /// to a page ([`SegPage::fits`], the in-place room check) counts the
    /// slots, so such a page is split, and converted, by its next addition.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, Full> {
        let available = buf.len().min(CONTENT_SIZE);
        let body: usize = self.segs.iter().map(Segment::encoded_len).sum();
        let slotted = SegPage::encoded_len_of(self.segs.len(), body);
        let (version, slots) = if slotted <= available {
            (SEG_LAYOUT_SLOTTED, slot_area(self.segs.len()))
        } else if SegPageHeader::SIZE + body <= available {
            (SEG_LAYOUT_PACKED, 0)
        } else {
            return Err(Full {
                needed: slotted,
                available,
            });
        };
        let needed = SegPageHeader::SIZE + slots + body;
        SegPageHeader {
            magic: SEG_MAGIC,
            layout_version: version,
            nsegs: self.segs.len() as u32,
            used: needed as u32,
        }
        .write(buf);
        let mut off = SegPageHeader::SIZE + slots;
        buf[SegPageHeader::SIZE..off].fill(0);
        for (i, s) in self.segs.iter().enumerate() {
            if slots > 0 {
                put_u16(buf, SegPageHeader::SIZE + 2 * i, off as u16);
            }
            SegHeader {
                lo: s.lo,
                segment_id: s.id,
                row_count: s.row_count,
                split_generation: s.split_generation,
                nlist: s.listings.len() as u32,
                last_split_at: s.last_split_at,
                updated_at: s.updated_at,
            }
            .write(&mut buf[off..]);
            off += SegHeader::SIZE;
            for l in &s.listings {
                l.write(&mut buf[off..]);
                off += Listing::SIZE;
            }
        }
        debug_assert_eq!(off, needed);
        buf[off..].fill(0);
        Ok(off)
    }

    /// Writes the page in the [`SEG_LAYOUT_PACKED`] layout earlier builds
    /// wrote (no slots), for tests that old pages still read and update.
    #[cfg(test)]
    pub(crate) fn encode_packed_into(&self, buf: &mut [u8]) -> usize {
        let body: usize = self.segs.iter().map(Segment::encoded_len).sum();
        // A buffer too small for the slots makes encode_into write packed.
        let mut tmp = vec![0u8; SegPageHeader::SIZE + body];
        let used = self.encode_into(&mut tmp).expect("fits packed");
        assert_eq!(get_u32(&tmp, 4), SEG_LAYOUT_PACKED);
        buf[..used].copy_from_slice(&tmp);
        buf[used..].fill(0);
        used
    }

    /// Decodes and checks the structure (sizes, ordering). The per-segment
    /// uniqueness of blocks is left to [`SegPage::validate`] because it is
    /// not needed to read the page safely and costs a sort.
    pub fn decode(buf: &[u8]) -> Result<SegPage, LayoutError> {
        let view = seg_page_header(buf)?;
        let (used, nsegs) = (view.used, view.nsegs);
        let mut segs = Vec::with_capacity(nsegs);
        let mut off = view.first();
        for i in 0..nsegs {
            if off + SegHeader::SIZE > used {
                return Err(LayoutError::Corrupt("segment header truncated"));
            }
            if view.slotted && view.slot(buf, i)? != off {
                return Err(LayoutError::Corrupt(
                    "segment slot does not match its segment",
                ));
            }
            let sh = SegHeader::read(&buf[off..]);
            off += SegHeader::SIZE;
            let n = sh.nlist as usize;
            if n > (used - off) / Listing::SIZE {
                return Err(LayoutError::Corrupt("segment listings truncated"));
            }
            let listings: Vec<Listing> = (0..n)
                .map(|i| Listing::read(&buf[off + i * Listing::SIZE..]))
                .collect();
            off += n * Listing::SIZE;
            if listings
                .windows(2)
                .any(|w| (w[0].zmin, w[0].blkno) >= (w[1].zmin, w[1].blkno))
            {
                return Err(LayoutError::Corrupt("listings not sorted by zone start"));
            }
            if let Some(prev) = segs.last() {
                let prev: &Segment = prev;
                if prev.lo >= sh.lo {
                    return Err(LayoutError::Corrupt("segments not sorted by key"));
                }
            }
            segs.push(Segment {
                lo: sh.lo,
                id: sh.segment_id,
                row_count: sh.row_count,
                split_generation: sh.split_generation,
                last_split_at: sh.last_split_at,
                updated_at: sh.updated_at,
                listings,
            });
        }
        if off != used {
            return Err(LayoutError::Corrupt(
                "segment page used size does not match its segments",
            ));
        }
        Ok(SegPage { segs })
    }

    /// Full structural check, for `verify()` and tests: everything `decode`
    /// checks plus one listing per block per segment and zones that start
    /// inside their segment.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.segs.is_empty() {
            return Err(LayoutError::Corrupt("segment page without segments"));
        }
        if !self.fits() {
            return Err(LayoutError::Corrupt("segment page larger than a page"));
        }
        if self.segs.windows(2).any(|w| w[0].lo >= w[1].lo) {
            return Err(LayoutError::Corrupt("segments not sorted by key"));
        }
        for (i, s) in self.segs.iter().enumerate() {
            if s.listings
                .windows(2)
                .any(|w| (w[0].zmin, w[0].blkno) >= (w[1].zmin, w[1].blkno))
            {
                return Err(LayoutError::Corrupt("listings not sorted by zone start"));
            }
            let mut blocks: Vec<u32> = s.listings.iter().map(|l| l.blkno).collect();
            blocks.sort_unstable();
            if blocks.windows(2).any(|w| w[0] == w[1]) {
                return Err(LayoutError::Corrupt("block listed twice in one segment"));
            }
            let next_lo = self.segs.get(i + 1).map(|n| n.lo);
            for l in &s.listings {
                if l.zmin < s.lo || next_lo.is_some_and(|n| l.zmin >= n) {
                    return Err(LayoutError::Corrupt(
                        "listing zone starts outside its segment",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_page() -> SegPage {
        SegPage {
            segs: vec![
                Segment {
                    lo: i64::MIN,
                    id: 1,
                    row_count: 110,
                    split_generation: 0,
                    last_split_at: 0,
                    updated_at: 700_000_000_000_000,
                    listings: vec![
                        Listing::from_bounds(1, 55, 1),
                        Listing::from_bounds(56, 110, 2),
                    ],
                },
                Segment {
                    lo: 111,
                    id: 2,
                    row_count: 56,
                    split_generation: 1,
                    last_split_at: 700_000_000_000_001,
                    updated_at: 700_000_000_000_002,
                    listings: vec![
                        Listing::from_bounds(111, 165, 3),
                        Listing::from_bounds(200, i64::MAX, 4),
                    ],
                },
            ],
        }
    }

    fn sample_meta() -> Meta {
        let mut m = Meta::new(KeyType::Int8, "0.1.0");
        m.split_threshold = 1024;
        m.target_fillfactor = 85;
        m.auto_repack_interval = 3600;
        m.nsegments = 2;
        m.next_segment_id = 3;
        m.total_rows = 166;
        m.dir = vec![
            DirEntry {
                lo: i64::MIN,
                blkno: 1,
                nsegs: 2,
            },
            DirEntry {
                lo: 1000,
                blkno: 2,
                nsegs: 1,
            },
        ];
        m
    }

    #[test]
    fn sizes_and_capacities() {
        assert_eq!(CONTENT_SIZE, 8160);
        assert_eq!(Meta::DIR_CAPACITY, 505);
        assert_eq!(SegPage::MAX_LISTINGS_ONE_SEGMENT, 505);
        assert_eq!((slot_area(1), slot_area(4), slot_area(5)), (8, 8, 16));
    }

    #[test]
    fn listing_saturation_and_clip() {
        let l = Listing::from_bounds(-5, i64::MAX, 7);
        assert_eq!(l.span, SPAN_SATURATED);
        assert_eq!(l.zmax(), i64::MAX);
        let wide = Listing::from_bounds(0, u32::MAX as i64 + 10, 7);
        assert_eq!(wide.zmax(), i64::MAX, "saturation only widens");
        let c = wide.clip(10, 20).unwrap();
        assert_eq!((c.zmin, c.zmax()), (10, 20));
        assert!(l.clip(i64::MIN, -6).is_none());
        let edge = Listing::from_bounds(i64::MAX - 3, i64::MAX, 1);
        assert_eq!(edge.zmax(), i64::MAX);
        let full = Listing::from_bounds(i64::MIN, i64::MAX, 1);
        assert!(full.contains(0) && full.contains(i64::MIN) && full.contains(i64::MAX));
        let exact = Listing::from_bounds(0, u32::MAX as i64 - 1, 1);
        assert_eq!(exact.zmax(), u32::MAX as i64 - 1);
        assert_ne!(exact.span, SPAN_SATURATED);
    }

    #[test]
    fn seg_page_round_trip_byte_for_byte() {
        let p = sample_page();
        let mut buf = vec![0xAAu8; CONTENT_SIZE];
        let used = p.encode_into(&mut buf).unwrap();
        assert_eq!(used, p.encoded_len());
        assert_eq!(used, 16 + 8 + 2 * 48 + 4 * 16);
        let back = SegPage::decode(&buf).unwrap();
        assert_eq!(back, p);
        back.validate().unwrap();
        let mut buf2 = vec![0x55u8; CONTENT_SIZE];
        back.encode_into(&mut buf2).unwrap();
        assert_eq!(buf, buf2);
        assert!(buf[used..].iter().all(|&b| b == 0));
    }

    #[test]
    fn packed_page_reads_back_and_rewrites_slotted() {
        let p = sample_page();
        let mut old = vec![0xAAu8; CONTENT_SIZE];
        let used = p.encode_packed_into(&mut old);
        assert_eq!(used, 16 + 2 * 48 + 4 * 16);
        assert_eq!(get_u32(&old, 4), SEG_LAYOUT_PACKED);
        let back = SegPage::decode(&old).unwrap();
        assert_eq!(back, p);
        let mut new = vec![0u8; CONTENT_SIZE];
        back.encode_into(&mut new).unwrap();
        assert_eq!(get_u32(&new, 4), SEG_LAYOUT_SLOTTED);
        assert_eq!(SegPage::decode(&new).unwrap(), p);
    }

    #[test]
    fn full_packed_page_stays_packed() {
        // An earlier build could fill a packed page to the last byte; such a
        // page has no room for slots and is written back packed.
        let seg = Segment {
            listings: (0..506u32)
                .map(|b| Listing::from_bounds(i64::from(b), i64::from(b), b))
                .collect(),
            ..Segment::new(i64::MIN, 1, 0)
        };
        let p = SegPage { segs: vec![seg] };
        assert!(!p.fits());
        let mut buf = vec![0u8; CONTENT_SIZE];
        assert_eq!(p.encode_into(&mut buf).unwrap(), CONTENT_SIZE);
        assert_eq!(get_u32(&buf, 4), SEG_LAYOUT_PACKED);
        assert_eq!(SegPage::decode(&buf).unwrap(), p);
        let mut more = p.clone();
        more.segs[0]
            .listings
            .push(Listing::from_bounds(600, 600, 600));
        assert!(more.encode_into(&mut buf).is_err());
    }

    #[test]
    fn meta_round_trip_byte_for_byte() {
        let m = sample_meta();
        let mut buf = vec![0xAAu8; CONTENT_SIZE];
        let used = m.encode_into(&mut buf).unwrap();
        assert_eq!(used, 80 + 2 * 16);
        let back = Meta::decode(&buf).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.ext_version_str(), "0.1.0");
        let mut buf2 = vec![0u8; CONTENT_SIZE];
        back.encode_into(&mut buf2).unwrap();
        assert_eq!(buf, buf2);
    }

    #[test]
    fn meta_full_directory() {
        let mut m = sample_meta();
        m.dir = (0..Meta::DIR_CAPACITY as i64)
            .map(|i| DirEntry {
                lo: if i == 0 { i64::MIN } else { i * 10 },
                blkno: i as u32 + 1,
                nsegs: 1,
            })
            .collect();
        assert!(m.fits());
        let mut buf = vec![0u8; CONTENT_SIZE];
        assert_eq!(m.encode_into(&mut buf).unwrap(), CONTENT_SIZE);
        assert_eq!(Meta::decode(&buf).unwrap(), m);
        m.dir.push(DirEntry {
            lo: i64::MAX,
            blkno: 9999,
            nsegs: 1,
        });
        assert!(!m.fits());
        assert!(m.encode_into(&mut buf).is_err());
    }

    #[test]
    fn bad_magic_and_version_rejected() {
        let mut buf = vec![0u8; CONTENT_SIZE];
        sample_page().encode_into(&mut buf).unwrap();
        assert_eq!(Meta::decode(&buf), Err(LayoutError::BadMagic));
        let mut b2 = buf.clone();
        b2[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(
            SegPage::decode(&b2),
            Err(LayoutError::UnknownVersion { found: 3 })
        );
        let mut b3 = buf.clone();
        b3[0] ^= 1;
        assert_eq!(SegPage::decode(&b3), Err(LayoutError::BadMagic));
        assert_eq!(
            SegPage::decode(&[0u8; CONTENT_SIZE]),
            Err(LayoutError::BadMagic)
        );

        let mut mb = vec![0u8; CONTENT_SIZE];
        sample_meta().encode_into(&mut mb).unwrap();
        assert_eq!(SegPage::decode(&mb), Err(LayoutError::BadMagic));
        mb[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            Meta::decode(&mb),
            Err(LayoutError::UnknownVersion { found: 0 })
        );
    }

    #[test]
    fn truncated_and_corrupt_rejected() {
        let mut buf = vec![0u8; CONTENT_SIZE];
        let used = sample_page().encode_into(&mut buf).unwrap();
        // Truncated buffer.
        assert!(matches!(
            SegPage::decode(&buf[..used - 1]),
            Err(LayoutError::Corrupt(_))
        ));
        assert!(matches!(
            SegPage::decode(&buf[..4]),
            Err(LayoutError::Corrupt(_))
        ));
        // nlist larger than the page says.
        let mut b = buf.clone();
        b[24 + 28..24 + 32].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(SegPage::decode(&b), Err(LayoutError::Corrupt(_))));
        // A slot pointing elsewhere than its segment, or off the page.
        for bad in [24u16, 200, 8000] {
            let mut b = buf.clone();
            b[18..20].copy_from_slice(&bad.to_le_bytes());
            assert!(matches!(SegPage::decode(&b), Err(LayoutError::Corrupt(_))));
        }
        // More segments than the slots can have room for.
        let mut b = buf.clone();
        b[8..12].copy_from_slice(&4000u32.to_le_bytes());
        assert!(matches!(SegPage::decode(&b), Err(LayoutError::Corrupt(_))));
        // Used size lies.
        let mut b = buf.clone();
        b[12..16].copy_from_slice(&(used as u32 + 16).to_le_bytes());
        assert!(matches!(SegPage::decode(&b), Err(LayoutError::Corrupt(_))));
        // Unsorted listings.
        let mut p = sample_page();
        p.segs[0].listings.swap(0, 1);
        p.encode_into(&mut b).unwrap();
        assert!(matches!(SegPage::decode(&b), Err(LayoutError::Corrupt(_))));
        // Duplicate block caught by validate.
        let mut p = sample_page();
        p.segs[1].listings[1].blkno = 3;
        assert!(p.validate().is_err());
        // Metapage with a bad key type or unsorted directory.
        let mut m = sample_meta();
        let mut mb = vec![0u8; CONTENT_SIZE];
        m.encode_into(&mut mb).unwrap();
        mb[8..12].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(Meta::decode(&mb), Err(LayoutError::Corrupt(_))));
        m.dir.swap(0, 1);
        m.encode_into(&mut mb).unwrap();
        assert!(matches!(Meta::decode(&mb), Err(LayoutError::Corrupt(_))));
        // Buffer too small to encode into.
        let mut small = vec![0u8; 40];
        assert!(sample_page().encode_into(&mut small).is_err());
    }

    #[test]
    fn snapshot_small_page() {
        let mut buf = vec![0u8; CONTENT_SIZE];
        sample_page().encode_into(&mut buf).unwrap();
        insta::assert_debug_snapshot!(SegPage::decode(&buf).unwrap());
    }

    #[test]
    fn snapshot_meta() {
        let mut buf = vec![0u8; CONTENT_SIZE];
        sample_meta().encode_into(&mut buf).unwrap();
        insta::assert_debug_snapshot!(Meta::decode(&buf).unwrap());
    }

    /// Pins the byte format itself: any change to field order, widths or
    /// endianness shows up here and must come with a LAYOUT_VERSION bump.
    #[test]
    fn snapshot_page_bytes() {
        fn hex(b: &[u8]) -> String {
            b.chunks(16)
                .enumerate()
                .map(|(i, c)| {
                    let bytes: Vec<String> = c.iter().map(|x| format!("{x:02x}")).collect();
                    format!("{:04x}: {}\n", i * 16, bytes.join(" "))
                })
                .collect()
        }
        let mut buf = vec![0u8; CONTENT_SIZE];
        let used = sample_page().encode_into(&mut buf).unwrap();
        let mut mbuf = vec![0u8; CONTENT_SIZE];
        let mused = sample_meta().encode_into(&mut mbuf).unwrap();
        insta::assert_snapshot!(format!(
            "segment page ({used} bytes)\n{}\nmetapage ({mused} bytes)\n{}",
            hex(&buf[..used]),
            hex(&mbuf[..mused])
        ));
    }
}
