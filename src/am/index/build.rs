//! ambuild / ambuildempty: a new map from the rows a table already has.
//!
//! The build collects (key, heap block) for every tuple, sorts them, and
//! lets `core::segmap::build_pages_with` cut segments and exact per-block
//! zones; the pages are then written as full-page GenericXLog images.

use crate::am::index::map::{self, write_dir, write_meta, write_seg};
use crate::core::counters::{bump, Counter};
use crate::core::directory::layout_directory;
use crate::core::layout::{
    DirEntry, KeyType, Meta, SegPage, BLCKSZ, META_FLAG_HAS_NULLS, META_FLAG_OVERFLOW,
};
use crate::core::options::IndexOptions;
use crate::core::seedapi::build_fault;
use crate::core::segmap::{build_pages_with, BuildParams};
use crate::pg::buffer::{LockedBuffer, XLogRecord};
use crate::pg::error::{codes, entry, guard, CpgStatus, PgError, PgResult};
use crate::pg::rel;
use crate::pg::sys;
use crate::sql::info::EXTENSION_VERSION;
use std::ffi::c_void;

struct BuildState {
    width: u32,
    pairs: Vec<(i64, u32)>,
    heap_tuples: f64,
    /// A row with a NULL key was seen (see META_FLAG_HAS_NULLS).
    nulls: bool,
    /// `segment_map_rebuild_from_index(..., p_fail_after_n_rows)` armed its
    /// test hook for this index: report every row to it (core::seedapi::
    /// build_fault). Read once per build so other builds pay one branch.
    fault_hook: bool,
}

/// SQLSTATE of the rebuild's injected failure (the seed's fixture caught
/// it as `CPG01`; `segment_map_rebuild_from_index` turns it into
/// `success = false`).
pub const INJECTED_FAILURE: i32 = codes::sqlstate(b"CPG01");

extern "C" {
    /// csrc/shim.c: raises the error a status describes (ereport, longjmp).
    fn cpg_raise(st: *mut CpgStatus);
}

/// Raises the injected failure from inside the build's heap scan.
///
/// Error boundary: this longjmps (ereport ERROR) out of a Rust frame, which
/// is only sound because nothing on the way owns a destructor. The frames
/// skipped are this function (a stack byte buffer, a CStr borrow, a POD
/// CpgStatus), `build_callback` (a `&mut BuildState` borrow, Copy values),
/// PostgreSQL's heap-scan frames (cleaned up by the (sub)transaction abort,
/// like any error in an index build callback), up to the `cpg_try` that
/// `build()` put around `cpg_index_build_scan`. `build()` gets the error
/// back as a value, drops its `BuildState` (the Vec) normally and returns
/// it; `rs_ambuild`'s C wrapper re-raises it after every Rust frame has
/// returned. The message is formatted into the stack buffer without heap
/// allocation, so no String can leak.
#[inline(never)]
unsafe fn raise_injected_failure(index: sys::Relation, rows: i64) {
    struct Buf {
        b: [u8; 256],
        len: usize,
    }
    impl std::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            // Truncate silently, keeping room for the NUL.
            let n = s.len().min(self.b.len() - 1 - self.len);
            self.b[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }
    const HINT: &[u8] = b"This is the test hook of segment_map_rebuild_from_index(..., p_fail_after_n_rows); the rebuild was rolled back.\0";
    let mut msg = Buf {
        b: [0; 256],
        len: 0,
    };
    let name = std::ffi::CStr::from_ptr((*(*index).rd_rel).relname.data.as_ptr());
    let _ = std::fmt::Write::write_fmt(
        &mut msg,
        format_args!(
            "segment_map_rebuild_from_index: injected failure after {rows} rows of the build scan of index \"{}\"",
            name.to_str().unwrap_or("?")
        ),
    );
    msg.b[msg.len] = 0;
    let mut st = CpgStatus {
        kind: 2,
        sqlstate: INJECTED_FAILURE,
        edata: std::ptr::null_mut(),
        message: msg.b.as_mut_ptr() as *mut std::ffi::c_char,
        detail: std::ptr::null_mut(),
        hint: HINT.as_ptr() as *mut std::ffi::c_char,
    };
    // Does not return: ereport copies message and hint before the longjmp.
    cpg_raise(&mut st);
}

/// Called by the heap scan for every tuple; must not panic (it runs inside
/// a guarded PostgreSQL call), so it only pushes to a Vec — and, when the
/// rebuild's fault hook is armed for this index, counts the row and raises
/// the injected failure once n rows were seen (`raise_injected_failure`
/// explains why that longjmp is sound here).
unsafe extern "C" fn build_callback(
    index: sys::Relation,
    tid: sys::ItemPointer,
    values: *mut sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut c_void,
) {
    let st = &mut *(state as *mut BuildState);
    if st.fault_hook {
        if let Some(rows) = build_fault::on_row(rel::relid(index)) {
            raise_injected_failure(index, rows);
        }
    }
    st.heap_tuples += 1.0;
    if *isnull {
        st.nulls = true;
        return; // NULL keys are not mapped; see README "NULL keys".
    }
    let key = rel::key_from_datum(*values, st.width);
    st.pairs.push((key, block_of(tid)));
}

pub fn block_of(tid: sys::ItemPointer) -> u32 {
    // SAFETY: tid points to a valid ItemPointerData.
    unsafe {
        let b = &(*tid).ip_blkid;
        (u32::from(b.bi_hi) << 16) | u32::from(b.bi_lo)
    }
}

pub fn key_type(width: u32) -> KeyType {
    match width {
        2 => KeyType::Int2,
        4 => KeyType::Int4,
        _ => KeyType::Int8,
    }
}

/// Rejects what the index cannot serve: a second clustered_pk_index on the
/// table, unsupported key types (multi-column is refused by PostgreSQL
/// itself since amcanmulticol is false).
fn check_definition(heap: sys::Relation, index: sys::Relation) -> PgResult<u32> {
    let width = rel::key_width(index)?;
    // SAFETY: rd_indoption has one entry per key column (one here).
    let option = unsafe { *(*index).rd_indoption };
    if option != 0 {
        // INDOPTION_DESC / INDOPTION_NULLS_FIRST: scans already run in
        // both directions, so a second physical order buys nothing.
        return Err(PgError::new(
            codes::FEATURE_NOT_SUPPORTED,
            "clustered_pk_index keys are ascending with NULLS LAST".to_string(),
        )
        .hint("Drop DESC / NULLS FIRST: ORDER BY key DESC scans the index backward."));
    }
    let (h, am, me) = (heap, rel::relam(index), rel::relid(index));
    // SAFETY: heap is open; reads its index list and pg_class.
    let other = guard(|| unsafe { sys::cpg_other_index_with_am(h, am, me) })?;
    if other != 0 {
        // SAFETY: get_rel_name returns a palloc'd name or NULL.
        let oname = guard(|| unsafe { sys::get_rel_name(other) })?;
        let oname = if oname.is_null() {
            "another index".to_string()
        } else {
            format!(
                "\"{}\"",
                unsafe { std::ffi::CStr::from_ptr(oname) }.to_string_lossy()
            )
        };
        return Err(PgError::new(
            codes::INVALID_OBJECT_DEFINITION,
            format!(
                "table \"{}\" already has a clustered_pk_index: {oname}",
                rel::name(heap)
            ),
        )
        .hint("A table has one clustered key; drop the other index first, or use a btree index."));
    }
    Ok(width)
}

/// The metapage of a freshly built map: key type, options at build time,
/// segment counters and the directory.
fn new_meta(width: u32, opts: &IndexOptions, pages: &[SegPage], dir: Vec<DirEntry>) -> Meta {
    let mut meta = Meta::new(key_type(width), EXTENSION_VERSION);
    meta.split_threshold = opts.split_threshold;
    meta.target_fillfactor = opts.target_fillfactor;
    meta.auto_repack_interval = opts.auto_repack_interval;
    meta.nsegments = pages.iter().map(|p| p.segs.len() as i64).sum();
    meta.next_segment_id = meta.nsegments + 1;
    meta.dir = dir;
    meta
}

fn overflow_warning(index: sys::Relation, why: &str) -> PgResult<()> {
    crate::pg::error::warning(
        &format!(
            "clustered_pk_index \"{}\" on table \"{}\": index build cannot map the table ({why}); scans will read the whole table",
            rel::name(index),
            rel::table_name_of_index(index)
        ),
        "The table is not clustered by this key. Use a clustered_heap table, or CLUSTER the table and REINDEX the index.",
    )
}

/// Directory page fill at build: room for later segment page splits.
const DIR_PAGE_FILL: f64 = 0.9;

/// Writes the metapage at block 0, the segment pages after it and, when
/// their entries do not fit the metapage (`meta.dir` holds every segment
/// page's entry on entry), the directory pages after those (depth 1), as
/// full-page images, up to four per WAL record. The metapage goes last:
/// until it is written nothing points to the other pages.
fn write_new_map(index: sys::Relation, mut meta: Meta, pages: &[SegPage]) -> PgResult<()> {
    let meta_buf = LockedBuffer::extend(index)?;
    if meta_buf.blkno() != map::META_BLKNO {
        return Err(PgError::new(
            codes::INTERNAL_ERROR,
            format!("index \"{}\" is not empty at build", rel::name(index)),
        ));
    }
    let mut bufs = Vec::with_capacity(pages.len());
    for (d, _) in meta.dir.iter_mut().zip(pages) {
        let b = LockedBuffer::extend(index)?;
        d.blkno = b.blkno();
        bufs.push(b);
    }
    for (chunk_b, chunk_p) in bufs.chunks(4).zip(pages.chunks(4)) {
        let mut x = XLogRecord::start(index)?;
        for (b, p) in chunk_b.iter().zip(chunk_p) {
            write_seg(x.register(b, true)?, p)?;
        }
        x.finish()?;
        crate::pg::error::check_for_interrupts()?;
    }
    drop(bufs);
    let leaves = std::mem::take(&mut meta.dir);
    let first_dir_blkno = pages.len() as u32 + 1;
    let (levels, mut root, dir_pages) =
        layout_directory(leaves, map::dir_caps(), DIR_PAGE_FILL, first_dir_blkno).ok_or_else(
            || {
                PgError::new(
                    codes::INTERNAL_ERROR,
                    "directory checked to fit".to_string(),
                )
            },
        )?;
    let mut dbufs = Vec::with_capacity(dir_pages.len());
    for r in root.iter_mut().take(dir_pages.len()) {
        let b = LockedBuffer::extend(index)?;
        r.blkno = b.blkno();
        dbufs.push(b);
    }
    for (chunk_b, chunk_p) in dbufs.chunks(4).zip(dir_pages.chunks(4)) {
        let mut x = XLogRecord::start(index)?;
        for (b, p) in chunk_b.iter().zip(chunk_p) {
            write_dir(x.register(b, true)?, p)?;
        }
        x.finish()?;
    }
    drop(dbufs);
    meta.dir = root;
    meta.dir_levels = levels;
    let mut x = XLogRecord::start(index)?;
    write_meta(x.register(&meta_buf, true)?, &meta)?;
    x.finish()
}

fn build(
    heap: sys::Relation,
    index: sys::Relation,
    info: *mut sys::IndexInfo,
) -> PgResult<*mut sys::IndexBuildResult> {
    let width = check_definition(heap, index)?;
    let opts = rel::index_options(index);
    let mut st = BuildState {
        width,
        pairs: Vec::new(),
        heap_tuples: 0.0,
        nulls: false,
        fault_hook: build_fault::watching(rel::relid(index)),
    };
    let sp = &mut st as *mut BuildState as *mut c_void;
    // SAFETY: the callback only touches `st`, which outlives the scan.
    guard(|| unsafe { sys::cpg_index_build_scan(heap, index, info, Some(build_callback), sp) })?;
    st.pairs.sort_unstable();
    let now = map::now();
    let built = build_pages_with(
        st.pairs.iter().copied(),
        &BuildParams {
            split_threshold: opts.split_threshold,
            page_fill: 0.9,
            first_segment_id: 1,
            first_blkno: 1,
            now,
        },
    );
    let caps = map::dir_caps();
    let built = match built {
        // Only the count matters here (blocks are assigned when written).
        Ok((pages, dir)) if layout_directory(dir.clone(), caps, DIR_PAGE_FILL, 1).is_some() => {
            Some((pages, dir))
        }
        Ok((_, dir)) => {
            let why = format!(
                "{} segment pages needed, the directory addresses {}",
                dir.len(),
                caps.max_segment_pages()
            );
            overflow_warning(index, &why)?;
            None
        }
        Err(e) => {
            overflow_warning(index, &e.to_string())?;
            None
        }
    };
    let overflowed = built.is_none();
    let (pages, dir) = match built {
        Some(b) => b,
        None => build_pages_with(
            std::iter::empty(),
            &BuildParams {
                split_threshold: opts.split_threshold,
                now,
                ..BuildParams::default()
            },
        )
        .map_err(|e| PgError::new(codes::INTERNAL_ERROR, e.to_string()))?,
    };
    let mut meta = new_meta(width, &opts, &pages, dir);
    if overflowed {
        meta.flags |= META_FLAG_OVERFLOW;
    }
    if st.nulls {
        meta.flags |= META_FLAG_HAS_NULLS;
    }
    meta.total_rows = st.pairs.len() as i64;
    write_new_map(index, meta, &pages)?;
    map::forget_pending(index);
    bump(Counter::maintenance);
    let n = st.pairs.len() as f64;
    let heap_tuples = st.heap_tuples;
    // SAFETY: palloc0 of the result struct.
    let r = guard(|| unsafe { sys::palloc0(std::mem::size_of::<sys::IndexBuildResult>()) })?
        as *mut sys::IndexBuildResult;
    // SAFETY: r is a fresh IndexBuildResult.
    unsafe {
        (*r).heap_tuples = heap_tuples;
        (*r).index_tuples = n;
    }
    Ok(r)
}

#[no_mangle]
pub extern "C" fn rs_ambuild(
    heap: sys::Relation,
    index: sys::Relation,
    info: *mut sys::IndexInfo,
    st: *mut CpgStatus,
) -> *mut sys::IndexBuildResult {
    entry(st, std::ptr::null_mut(), || build(heap, index, info))
}

/// The init fork of an unlogged index: an empty map.
#[no_mangle]
pub extern "C" fn rs_ambuildempty(index: sys::Relation, st: *mut CpgStatus) {
    entry(st, (), || {
        let width = rel::key_width(index)?;
        let opts = rel::index_options(index);
        let (pages, dir) = build_pages_with(
            std::iter::empty(),
            &BuildParams {
                split_threshold: opts.split_threshold,
                ..BuildParams::default()
            },
        )
        .map_err(|e| PgError::new(codes::INTERNAL_ERROR, e.to_string()))?;
        let meta = new_meta(width, &opts, &pages, dir);
        let mut img = vec![0u8; BLCKSZ];
        write_meta(&mut img, &meta)?;
        let p = img.as_ptr() as *const std::ffi::c_char;
        // SAFETY: img is a full page image.
        guard(|| unsafe { sys::cpg_write_init_fork_page(index, p) })?;
        for sp in &pages {
            let mut img = vec![0u8; BLCKSZ];
            write_seg(&mut img, sp)?;
            let p = img.as_ptr() as *const std::ffi::c_char;
            // SAFETY: as above.
            guard(|| unsafe { sys::cpg_write_init_fork_page(index, p) })?;
        }
        Ok(())
    })
}
