//! The seed's segment-map SQL surface, served from the clustered_pk_index's
//! own pages (docs/seed-compat.md, "Segment-map API"). Nothing here is stored
//! in SQL tables: `segment_map` rows are the map's segments, and
//! `segment_map_tids` is computed on the fly from the heap blocks the map
//! lists, so it can never drift from the table or duplicate it.
//!
//! Readers need SELECT on the table; writers (`segment_map_touch`,
//! `segment_map_tids_gc`, the rebuild) need to own it.

use crate::am::index::build::INJECTED_FAILURE;
use crate::am::index::map;
use crate::core::counters::{bump, Counter};
use crate::core::locator::Locator;
use crate::core::seedapi::{build_fault, repack_due, segment_rows, stats};
use crate::pg::buffer::{Lock, XLogRecord};
use crate::pg::datum::{fixed_datum, from_bool, from_i32, from_i64, to_i64, Args};
use crate::pg::error::{check_for_interrupts, codes, guard, CpgStatus, PgError, PgResult};
use crate::pg::heap::{self, KeysOf};
use crate::pg::rel::{self, OpenRel};
use crate::pg::srf::Rows;
use crate::pg::sys::{self, Datum, FunctionCallInfo};
use crate::sql::sql_entry;
use std::ffi::{c_char, c_int, c_long, c_void};

extern "C" {
    /// utils/acl.h; same signature in every supported major.
    fn has_privs_of_role(member: sys::Oid, role: sys::Oid) -> bool;
}

pub(crate) fn relation_arg(a: &Args, func: &str) -> PgResult<sys::Oid> {
    Ok(a.required(0, func, "relation")? as sys::Oid)
}

/// Gives the relation errors of `rel::open_clustered` that carry no hint
/// one, so every bad `relation` argument of the seed API says what to pass.
fn with_relation_hint(e: PgError) -> PgError {
    match e {
        PgError::Raised {
            sqlstate,
            hint: None,
            ..
        } if sqlstate == codes::WRONG_OBJECT_TYPE || sqlstate == codes::UNDEFINED_OBJECT => {
            e.hint("Pass a table that has a clustered_pk_index, or the index itself.")
        }
        e => e,
    }
}

fn open_clustered(oid: sys::Oid, table_lock: u32) -> PgResult<(OpenRel, OpenRel)> {
    rel::open_clustered(oid, table_lock as i32).map_err(with_relation_hint)
}

/// Opens the table and its clustered_pk_index for reading (SELECT needed).
fn open_reader(oid: sys::Oid, table_lock: u32) -> PgResult<(OpenRel, OpenRel)> {
    bump(Counter::rowcount_lookups);
    open_clustered(oid, table_lock)
}

/// Opens them for a maintenance call: the current user must own the table.
pub(crate) fn open_writer(
    oid: sys::Oid,
    table_lock: u32,
    func: &str,
) -> PgResult<(OpenRel, OpenRel)> {
    let (h, ix) = open_clustered(oid, table_lock)?;
    let hr = h.rel();
    // SAFETY: rd_rel is set on an open relation.
    let owner = unsafe { (*(*hr).rd_rel).relowner };
    // SAFETY: catalog lookups for the current user.
    let ok = guard(|| unsafe { has_privs_of_role(sys::GetUserId(), owner) })?;
    if !ok {
        return Err(PgError::new(
            codes::INSUFFICIENT_PRIVILEGE,
            format!("{func}: must be owner of table {}", rel::name(hr)),
        )
        .hint("Maintenance of the segment map is reserved to the table's owner."));
    }
    Ok((h, ix))
}

fn ts_datum(v: i64) -> (Datum, bool) {
    if v == 0 {
        (0, true)
    } else {
        (from_i64(v), false)
    }
}

/// `segment_map_of(regclass)`: one row per segment (the seed's
/// `segment_map` columns).
#[no_mangle]
pub extern "C" fn rs_segment_map_of(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let oid = relation_arg(a, "segment_map_of")?;
        let (h, ix) = open_reader(oid, sys::AccessShareLock)?;
        let opts = rel::index_options(ix.rel());
        let (_meta, pages) = map::read_all(ix.rel())?;
        let table = rel::relid(h.rel());
        let mut out = Rows::start(a.fcinfo())?;
        for r in segment_rows(&pages) {
            let (split_at, split_null) = ts_datum(r.last_split_at);
            let (upd, upd_null) = ts_datum(r.updated_at);
            let vals = [
                table as Datum,
                from_i64(r.id),
                from_i64(r.minor_from),
                from_i64(r.minor_to),
                from_i32(opts.split_threshold),
                from_i32(opts.target_fillfactor),
                from_i32(opts.auto_repack_interval),
                from_i64(r.row_count),
                from_i32(r.split_generation.min(i32::MAX as u32) as i32),
                split_at,
                upd,
            ];
            let nulls = [
                false, false, false, false, false, false, false, false, false, split_null, upd_null,
            ];
            out.push(&vals, &nulls)?;
        }
        Ok(0)
    })
}

fn tid_datum(blkno: u32, off: u16) -> PgResult<Datum> {
    // ItemPointerData: bi_hi, bi_lo, ip_posid (native-endian uint16s).
    let mut b = [0u8; 6];
    b[0..2].copy_from_slice(&((blkno >> 16) as u16).to_ne_bytes());
    b[2..4].copy_from_slice(&((blkno & 0xFFFF) as u16).to_ne_bytes());
    b[4..6].copy_from_slice(&off.to_ne_bytes());
    fixed_datum(&b)
}

/// `segment_map_tids_of(regclass)`: every tuple some transaction may still
/// see, found through the map: for each segment, the heap blocks it lists,
/// keeping the tuples whose key the segment owns. Computed, never stored.
#[no_mangle]
pub extern "C" fn rs_segment_map_tids_of(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let oid = relation_arg(a, "segment_map_tids_of")?;
        let (h, ix) = open_reader(oid, sys::AccessShareLock)?;
        let (hr, ir) = (h.rel(), ix.rel());
        let width = rel::key_width(ir)?;
        let attno = rel::index_heap_attno(ir);
        let (_meta, pages) = map::read_all(ir)?;
        let nblocks = heap::nblocks(hr)?;
        let table = rel::relid(hr);
        let segs: Vec<_> = pages.iter().flat_map(|p| &p.segs).collect();
        let rows = segment_rows(&pages);
        let mut out = Rows::start(a.fcinfo())?;
        for (s, r) in segs.iter().zip(&rows) {
            let mut blocks: Vec<u32> = s.listings.iter().map(|l| l.blkno).collect();
            blocks.sort_unstable();
            blocks.dedup();
            let (upd, upd_null) = ts_datum(r.updated_at);
            for blk in blocks {
                check_for_interrupts()?;
                if blk >= nblocks {
                    // A listing past the end of a truncated heap names no tuple.
                    continue;
                }
                let mut tuples = heap::block_keys(KeysOf::MayBeSeen, hr, blk, attno, width)?;
                tuples.sort_unstable_by_key(|t| t.offnum);
                for t in tuples {
                    let Some(key) = t.key else { continue };
                    if key < r.minor_from || key > r.minor_to {
                        continue;
                    }
                    let vals = [
                        table as Datum,
                        from_i64(r.id),
                        from_i64(key),
                        tid_datum(blk, t.offnum)?,
                        upd,
                    ];
                    out.push(&vals, &[false, false, false, false, upd_null])?;
                }
            }
        }
        Ok(0)
    })
}

/// `segment_map_stats(regclass)`: one summary row.
#[no_mangle]
pub extern "C" fn rs_segment_map_stats(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let oid = relation_arg(a, "segment_map_stats")?;
        let (h, ix) = open_reader(oid, sys::AccessShareLock)?;
        let (_meta, pages) = map::read_all(ix.rel())?;
        let s = stats(&pages);
        // Every page of the index (metapage, directory and segment pages);
        // `stats` only sees the segment pages.
        let index_pages = i64::from(crate::pg::heap::nblocks(ix.rel())?);
        let mut out = Rows::start(a.fcinfo())?;
        let vals = [
            rel::relid(h.rel()) as Datum,
            from_i64(s.segment_count),
            from_i64(s.total_rows),
            from_i64(s.min_rows),
            s.avg_rows.to_bits() as Datum,
            from_i64(s.max_rows),
            from_i64(s.listings),
            from_i64(s.fragmented_segments),
            from_i64(index_pages),
            from_i64(s.heap_blocks_listed),
        ];
        out.push(&vals, &[false; 10])?;
        Ok(0)
    })
}

/// `segment_map_count_repack_due(regclass)`: fragmented segments unchanged
/// for longer than the index's `auto_repack_interval` (0 = never due).
#[no_mangle]
pub extern "C" fn rs_segment_map_count_repack_due(
    fcinfo: FunctionCallInfo,
    st: *mut CpgStatus,
) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let oid = relation_arg(a, "segment_map_count_repack_due")?;
        let (_h, ix) = open_reader(oid, sys::AccessShareLock)?;
        let interval = rel::index_options(ix.rel()).auto_repack_interval;
        let (_meta, pages) = map::read_all(ix.rel())?;
        let now = map::now();
        let n = segment_rows(&pages)
            .iter()
            .filter(|r| repack_due(r, now, interval))
            .count();
        Ok(from_i64(n as i64))
    })
}

/// `segment_map_touch(regclass, major_key)`: recounts one segment's rows
/// from the heap blocks it lists (keys within its range, tuples some
/// transaction may still see) and writes the exact count and `updated_at`
/// to its segment page (GenericXLog). The table is locked in SHARE mode, so
/// no insert runs meanwhile. Returns the new row count.
#[no_mangle]
pub extern "C" fn rs_segment_map_touch(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let func = "segment_map_touch";
        let oid = relation_arg(a, func)?;
        let major = to_i64(a.required(1, func, "major_key")?);
        let (h, ix) = open_writer(oid, sys::ShareLock, func)?;
        let (hr, ir) = (h.rel(), ix.rel());
        let width = rel::key_width(ir)?;
        let attno = rel::index_heap_attno(ir);
        let (_meta, pages) = map::read_all(ir)?;
        let rows = segment_rows(&pages);
        let segs: Vec<_> = pages.iter().flat_map(|p| &p.segs).collect();
        let Some(pos) = rows.iter().position(|r| r.id == major) else {
            return Err(PgError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("{func}: index \"{}\" has no segment {major}", rel::name(ir)),
            )
            .hint("Pick a major_key from clustered_pg.segment_map_of(...)."));
        };
        let r = rows[pos];
        let nblocks = heap::nblocks(hr)?;
        let mut blocks: Vec<u32> = segs[pos].listings.iter().map(|l| l.blkno).collect();
        blocks.sort_unstable();
        blocks.dedup();
        let mut count = 0i64;
        for blk in blocks.into_iter().filter(|&b| b < nblocks) {
            check_for_interrupts()?;
            count += heap::block_keys(KeysOf::MayBeSeen, hr, blk, attno, width)?
                .iter()
                .filter_map(|t| t.key)
                .filter(|&k| k >= r.minor_from && k <= r.minor_to)
                .count() as i64;
        }
        // Metapage shared, then the segment page exclusive (map.rs order).
        let now = map::now();
        let map::Located::Seg(loc) = map::locate_with(ir, r.minor_from, Lock::Exclusive, false)?
        else {
            return Err(PgError::new(
                codes::INDEX_CORRUPTED,
                format!("{func}: the index has an empty segment directory"),
            ));
        };
        let seg_buf = loc.buf;
        let mut page = map::decode_seg(ir, seg_buf.page())?;
        let Some(seg) = page.segs.iter_mut().find(|s| s.id == major) else {
            return Err(PgError::new(
                codes::sqlstate(b"40001"),
                format!("{func}: segment {major} moved while it was being counted"),
            )
            .hint("Retry the call."));
        };
        seg.row_count = count;
        seg.updated_at = now;
        let mut x = XLogRecord::start(ir)?;
        map::write_seg(x.register(&seg_buf, false)?, &page)?;
        x.finish()?;
        Ok(from_i64(count))
    })
}

/// `segment_map_tids_gc(regclass)`: the native map stores no TIDs, so
/// there is nothing to collect; kept for compatibility, returns 0 after the
/// same checks as the other maintenance calls.
#[no_mangle]
pub extern "C" fn rs_segment_map_tids_gc(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let oid = relation_arg(a, "segment_map_tids_gc")?;
        let _ = open_writer(oid, sys::AccessShareLock, "segment_map_tids_gc")?;
        Ok(from_i64(0))
    })
}

extern "C" {
    // access/xact.h, executor/spi.h, utils/resowner.h: the same signatures
    // in every supported major (15..18), declared here rather than through
    // the bindgen allowlist because only the rebuild uses them.
    fn BeginInternalSubTransaction(name: *const c_char);
    fn ReleaseCurrentSubTransaction();
    fn RollbackAndReleaseCurrentSubTransaction();
    fn SPI_connect() -> c_int;
    fn SPI_execute(src: *const c_char, read_only: bool, tcount: c_long) -> c_int;
    fn SPI_finish() -> c_int;
    // utils/lsyscache.h
    fn get_func_name(funcid: sys::Oid) -> *mut c_char;
    static mut CurrentResourceOwner: *mut c_void;
}

/// Runs `f` in an internal subtransaction, the way PL handlers do: commits
/// it when `f` succeeds, rolls it back when `f` fails (PostgreSQL errors
/// reach `f` as values through `guard`, with the error state already
/// flushed) or panics, and restores the caller's memory context and
/// resource owner either way. The outer result is an error only when the
/// subtransaction machinery itself failed.
fn in_subtransaction<T>(f: impl FnOnce() -> PgResult<T>) -> PgResult<PgResult<T>> {
    // SAFETY: plain reads of backend globals.
    let (cxt, owner) = unsafe { (sys::CurrentMemoryContext, CurrentResourceOwner) };
    // SAFETY: a NULL name is allowed; may ereport (e.g. in parallel mode).
    guard(|| unsafe { BeginInternalSubTransaction(std::ptr::null()) })?;
    // SAFETY: back to the caller's context (MemoryContextSwitchTo is an
    // inline that only assigns this global).
    unsafe { sys::CurrentMemoryContext = cxt };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let commit = matches!(r, Ok(Ok(_)));
    let end = if commit {
        // SAFETY: our subtransaction is the current one.
        guard(|| unsafe { ReleaseCurrentSubTransaction() })
    } else {
        // SAFETY: as above; also cleans what the failed work left behind
        // (SPI connections, buffer pins, locks taken inside).
        guard(|| unsafe { RollbackAndReleaseCurrentSubTransaction() })
    };
    // SAFETY: restoring what we saved.
    unsafe {
        sys::CurrentMemoryContext = cxt;
        CurrentResourceOwner = owner;
    }
    match r {
        Err(payload) => std::panic::resume_unwind(payload),
        Ok(res) => {
            end?;
            Ok(res)
        }
    }
}

/// Runs one utility statement through SPI.
fn spi_utility(sql: &std::ffi::CStr) -> PgResult<()> {
    let p = sql.as_ptr();
    // SAFETY: p outlives the call. The closure owns nothing: an error
    // anywhere inside leaves SPI connected, which the caller's
    // subtransaction rollback undoes (AtEOSubXact_SPI).
    let (c, e, f) = guard(|| unsafe {
        let c = SPI_connect();
        if c < 0 {
            return (c, 0, 0);
        }
        let e = SPI_execute(p, false, 0);
        (c, e, SPI_finish())
    })?;
    if c < 0 || e < 0 || f < 0 {
        return Err(PgError::new(
            codes::INTERNAL_ERROR,
            format!(
                "SPI failed running {} (connect {c}, execute {e}, finish {f})",
                sql.to_string_lossy()
            ),
        ));
    }
    Ok(())
}

/// `"schema"."name"` of a relation, quoted for SQL text.
fn qualified_name(oid: sys::Oid) -> PgResult<std::ffi::CString> {
    // SAFETY: syscache lookups; both return palloc'd names or NULL.
    let nsp = guard(|| unsafe { sys::get_namespace_name(sys::get_rel_namespace(oid)) })?;
    let rel = guard(|| unsafe { sys::get_rel_name(oid) })?;
    if nsp.is_null() || rel.is_null() {
        return Err(PgError::new(
            codes::UNDEFINED_OBJECT,
            format!("relation with OID {oid} does not exist"),
        ));
    }
    let quote = |p: *const c_char| {
        // SAFETY: NUL-terminated names from the catalog.
        let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy();
        format!("\"{}\"", s.replace('"', "\"\""))
    };
    std::ffi::CString::new(format!("{}.{}", quote(nsp), quote(rel)))
        .map_err(|e| PgError::new(codes::INTERNAL_ERROR, e.to_string()))
}

/// `segment_map_rebuild_from_index(regclass, p_fail_after_n_rows)`: REINDEX
/// of the clustered_pk_index in a subtransaction; one row
/// `(success, rows_seen, segments)`.
///
/// With `p_fail_after_n_rows = n` the build's heap scan fails when it is
/// handed row n + 1 (core::seedapi::build_fault, checked in the build
/// callback): the subtransaction rolls back, so the previous map is left
/// exactly as it was (the new relfilenode is dropped, the old pages never
/// changed), and the call returns `(false, n, segments of the old map)`.
/// A table with at most n rows rebuilds normally. Any other error rolls
/// the subtransaction back too and is raised unchanged. The hook is armed
/// only around the REINDEX and disarmed when the guard drops, on every
/// path out of this function.
///
/// Locks: the table AccessShareLock (owner check), then REINDEX's own
/// ShareLock on the table and AccessExclusiveLock on the index, released
/// by the rollback on failure, kept to the end of the transaction on
/// success.
#[no_mangle]
pub extern "C" fn rs_segment_map_rebuild_from_index(
    fcinfo: FunctionCallInfo,
    st: *mut CpgStatus,
) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let func = "segment_map_rebuild_from_index";
        let oid = relation_arg(a, func)?;
        let fail_after = a.datum(1).map(to_i64);
        if let Some(n) = fail_after.filter(|&n| n < 0) {
            return Err(PgError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("{func}: p_fail_after_n_rows must not be negative, got {n}"),
            )
            .hint("Pass NULL (no fault) or the number of rows after which the build fails."));
        }
        let index = {
            // Closed again before the REINDEX, which refuses an index this
            // backend holds open (CheckTableNotInUse); the lock stays.
            let (_h, ix) = open_writer(oid, sys::AccessShareLock, func)?;
            rel::relid(ix.rel())
        };
        let sql = qualified_name(index)?;
        let stmt = std::ffi::CString::new(format!("REINDEX INDEX {}", sql.to_string_lossy()))
            .map_err(|e| PgError::new(codes::INTERNAL_ERROR, e.to_string()))?;
        let armed = build_fault::arm(index, fail_after);
        let outcome = in_subtransaction(|| spi_utility(&stmt))?;
        let (rows_seen, fired) = (armed.rows_seen(), armed.fired());
        drop(armed);
        let success = match outcome {
            Ok(()) => true,
            Err(e) if fired && e.sqlstate() == INJECTED_FAILURE => false,
            Err(e) => return Err(e),
        };
        // The map now in place: the new one, or the untouched old one.
        let (_h, ix) = open_reader(index, sys::AccessShareLock)?;
        let (_meta, pages) = map::read_all(ix.rel())?;
        let segments = pages.iter().map(|p| p.segs.len() as i64).sum::<i64>();
        let mut out = Rows::start(a.fcinfo())?;
        out.push(
            &[from_bool(success), from_i64(rows_seen), from_i64(segments)],
            &[false; 3],
        )?;
        Ok(0)
    })
}

/// The SQL name of the function being called (None if unknown).
fn called_name(fcinfo: FunctionCallInfo) -> PgResult<Option<String>> {
    // SAFETY: fmgr always sets flinfo for SQL-callable functions.
    let fn_oid = unsafe { (*(*fcinfo).flinfo).fn_oid };
    // SAFETY: syscache lookup; a palloc'd name or NULL.
    let p = guard(|| unsafe { get_func_name(fn_oid) })?;
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: NUL-terminated catalog name.
    Ok(Some(
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned(),
    ))
}

/// `segment_map_allocate_locator[_regclass]` / `segment_map_next_locator`:
/// the locator `(major = id of the segment owning the key, minor = key)`
/// per the current map. Read-only: placement happens in the table AM.
#[no_mangle]
pub extern "C" fn rs_segment_map_locator(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        // One C function serves three SQL names: report the one called.
        let name = called_name(a.fcinfo())?;
        let func = name.as_deref().unwrap_or("segment_map_allocate_locator");
        let oid = relation_arg(a, func)?;
        let key = to_i64(a.required(1, func, "minor")?);
        let (h, ix) = open_reader(oid, sys::AccessShareLock)?;
        // What placement would do with the key now: the owning segment, or
        // the upper half it would split off first (nothing is changed).
        let major = crate::am::table::placement::predicted_major(h.rel(), ix.rel(), key)?;
        fixed_datum(&Locator::new(major, key).to_bytes())
    })
}
