//! `clustered_pg.repack(regclass, max_rows)` and the auto-repack worker's
//! per-table call (`rs_repack_due_table`, csrc/repack_worker.c): online
//! repack of the segments that need it (core::repack says which), under
//! ShareUpdateExclusiveLock (the lock
//! VACUUM takes: inserts, updates, deletes and queries go on; a second
//! repack, VACUUM and DDL wait). Rows move one at a time, in key order,
//! into blocks filled one after another (csrc/repack.c does each move with
//! heap's own operations); the map learns each new block without counting
//! a new row. The old versions stay in their blocks, which the map keeps
//! listing, until VACUUM removes them and tightens the zones.
//!
//! One call is one transaction: a concurrent UPDATE or DELETE of a row it
//! moved, whose snapshot still sees the old version, fails with a
//! serialization error (as when a row moves to another partition), and
//! rows that are locked or being changed when repack reaches them stay
//! where they are (`rows_skipped`).

use crate::am::index::map;
use crate::core::layout::Segment;
use crate::core::repack::{
    live_needs_repack, live_zones, move_order, owns, segments_to_repack, unchanged_for,
    worth_moving, Filler, Next, Outcome, Owners, Row,
};
use crate::pg::datum::{from_i64, to_i64};
use crate::pg::error::{check_for_interrupts, codes, guard, CpgStatus, PgError, PgResult};
use crate::pg::heap::{self, KeysOf};
use crate::pg::rel;
use crate::pg::srf::Rows;
use crate::pg::sys::{self, Datum, FunctionCallInfo};
use crate::sql::segment_map::{open_writer, relation_arg};
use crate::sql::sql_entry;

/// Values of csrc/repack.c's CPG_MOVE_*.
const MOVED: i32 = 0;
const NO_ROOM: i32 = 2;

/// The executor state of csrc/repack.c. Ended explicitly on success only:
/// after an error the transaction's abort releases what it holds.
struct Mover(*mut std::ffi::c_void);

impl Mover {
    fn begin(heap: sys::Relation, index: sys::Oid) -> PgResult<Mover> {
        // SAFETY: heap is open and locked; ereports are caught.
        Ok(Mover(guard(|| unsafe {
            sys::cpg_mover_begin(heap, index)
        })?))
    }

    fn attempt(&self, row: Row, target: u32, force: bool) -> PgResult<Outcome> {
        let m = self.0;
        let mut new_blkno: u32 = 0;
        let out = &mut new_blkno as *mut u32;
        // SAFETY: m is alive until end(); out points to a local.
        let r =
            guard(|| unsafe { sys::cpg_mover_move(m, row.blkno, row.offnum, target, force, out) })?;
        Ok(match r {
            MOVED => Outcome::Moved(new_blkno),
            NO_ROOM => Outcome::NoRoom,
            _ => Outcome::Skipped,
        })
    }

    fn end(self) -> PgResult<()> {
        let m = self.0;
        // SAFETY: begun above, ended once.
        guard(|| unsafe { sys::cpg_mover_end(m) })
    }
}

#[derive(Default)]
struct Tally {
    segments: i64,
    moved: i64,
    skipped: i64,
}

/// The current rows of segment `i` (live, or being inserted or deleted)
/// that are in its listed blocks, in move order, and the most current rows
/// (of any segment) one of those blocks holds: what a page takes.
fn segment_rows(
    heap: sys::Relation,
    index: sys::Relation,
    segs: &[&Segment],
    i: usize,
) -> PgResult<(Vec<Row>, usize)> {
    let attno = rel::index_heap_attno(index);
    let width = rel::key_width(index)?;
    let mut blocks: Vec<u32> = segs[i].listings.iter().map(|l| l.blkno).collect();
    blocks.sort_unstable();
    blocks.dedup();
    let mut rows = Vec::new();
    let mut per_page = 0;
    for blkno in blocks {
        let tuples = heap::block_keys(KeysOf::Current, heap, blkno, attno, width)?;
        per_page = per_page.max(tuples.len());
        for t in tuples {
            if let Some(key) = t.key.filter(|&k| owns(segs, i, k)) {
                rows.push(Row {
                    key,
                    blkno,
                    offnum: t.offnum,
                });
            }
        }
    }
    Ok((move_order(rows), per_page))
}

fn move_row(
    heap: sys::Relation,
    index: sys::Relation,
    mover: &Mover,
    filler: &mut Filler,
    row: Row,
    tally: &mut Tally,
) -> PgResult<()> {
    loop {
        let target = match filler.target() {
            Some(b) => b,
            None => {
                // SAFETY: heap is open; extends or reuses an empty page.
                let b = guard(|| unsafe { sys::cpg_heap_fresh_block(heap) })?;
                filler.take_fresh(b);
                b
            }
        };
        let outcome = mover.attempt(row, target, filler.force())?;
        match outcome {
            Outcome::Moved(b) => {
                map::record_moved(index, row.key, b)?;
                tally.moved += 1;
            }
            Outcome::Skipped => tally.skipped += 1,
            Outcome::NoRoom => {}
        }
        if filler.after(outcome) == Next::Done {
            return Ok(());
        }
    }
}

fn check_table(heap: sys::Relation) -> PgResult<()> {
    if rel::relkind(heap) != sys::RELKIND_RELATION
        || (rel::relam(heap) != sys::HEAP_TABLE_AM_OID && !rel::is_clustered_heap(heap)?)
    {
        return Err(PgError::new(
            codes::WRONG_OBJECT_TYPE,
            format!(
                "repack: \"{}\" is not a heap or clustered_heap table",
                rel::name(heap)
            ),
        )
        .hint("repack moves rows of tables stored by heap or clustered_heap."));
    }
    Ok(())
}

/// Which segments a repack moves.
#[derive(Clone, Copy)]
enum Scope {
    /// Every segment that needs it (the SQL function).
    All,
    /// Only those unchanged for longer than the index's
    /// `auto_repack_interval` (the background worker), and only when their
    /// rows occupy more than `WORKER_SLACK` times the blocks they need:
    /// segments still receiving rows, or with a few rows updated off their
    /// pages, are left alone.
    Due { now: i64 },
}

/// Repacks the table; the caller has checked the owner. Stops after the
/// segment during which `max_rows` rows have moved (a later call goes on
/// from there: segments already in order are not moved again).
fn repack(
    heap: sys::Relation,
    index: sys::Relation,
    scope: Scope,
    max_rows: i64,
) -> PgResult<(Tally, u64)> {
    check_table(heap)?;
    if map::overflowed(index)? {
        return Err(PgError::new(
            codes::OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("repack: the map of \"{}\" has overflowed", rel::name(index)),
        )
        .hint("REINDEX the clustered_pk_index (or raise split_threshold) first."));
    }
    let (_meta, pages) = map::read_all(index)?;
    let segs: Vec<&Segment> = pages.iter().flat_map(|p| &p.segs).collect();
    let owners = Owners::of(&segs);
    let mut due = segments_to_repack(&segs, &owners);
    if let Scope::Due { now } = scope {
        let interval = rel::index_options(index).auto_repack_interval;
        due.retain(|&i| unchanged_for(segs[i].updated_at, now, interval));
    }
    // Begun even when nothing is due: it refuses read-only transactions.
    let mover = Mover::begin(heap, rel::relid(index))?;
    let mut tally = Tally::default();
    let mut filler = Filler::default();
    let mut last: Option<usize> = None;
    for i in due {
        if tally.moved >= max_rows {
            break;
        }
        let (rows, per_page) = segment_rows(heap, index, &segs, i)?;
        let zones = live_zones(&rows);
        if !live_needs_repack(&zones, &owners) {
            continue;
        }
        if matches!(scope, Scope::Due { .. }) && !worth_moving(zones.len(), rows.len(), per_page) {
            continue;
        }
        if last.is_some_and(|l| l + 1 != i) {
            filler.new_run();
        }
        last = Some(i);
        tally.segments += 1;
        for row in rows {
            check_for_interrupts()?;
            move_row(heap, index, &mover, &mut filler, row, &mut tally)?;
        }
    }
    mover.end()?;
    Ok((tally, filler.blocks))
}

/// `repack(relation regclass, max_rows bigint DEFAULT NULL)`: one row
/// `(segments, rows_moved, rows_skipped, blocks)`.
#[no_mangle]
pub extern "C" fn rs_repack(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let func = "repack";
        let oid = relation_arg(a, func)?;
        let max_rows = a.datum(1).map(to_i64);
        if let Some(n) = max_rows.filter(|&n| n <= 0) {
            return Err(PgError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("repack: max_rows must be positive, got {n}"),
            )
            .hint("Pass NULL (no limit) or the number of rows after which to stop."));
        }
        let (h, ix) = open_writer(oid, sys::ShareUpdateExclusiveLock, func)?;
        let limit = max_rows.unwrap_or(i64::MAX);
        let (tally, blocks) = repack(h.rel(), ix.rel(), Scope::All, limit)?;
        let mut out = Rows::start(a.fcinfo())?;
        out.push(
            &[
                from_i64(tally.segments),
                from_i64(tally.moved),
                from_i64(tally.skipped),
                from_i64(blocks as i64),
            ],
            &[false; 4],
        )?;
        Ok(0)
    })
}

/// The background worker's repack of one table (csrc/repack_worker.c):
/// only segments due by `auto_repack_interval`, nothing if the index's
/// interval is 0, stopping after the segment during which `max_rows` rows
/// have moved (the worker commits and calls again). Runs as the worker's
/// superuser, inside the worker's transaction; a table that is busy (a
/// repack, VACUUM or DDL holds a conflicting lock) is skipped this round.
/// Returns the rows moved.
#[no_mangle]
pub extern "C" fn rs_repack_due_table(table: sys::Oid, max_rows: i64, st: *mut CpgStatus) -> i64 {
    crate::pg::error::entry(st, 0, || {
        // SAFETY: conditional lock; false when another holder conflicts.
        let got = guard(|| unsafe {
            sys::ConditionalLockRelationOid(table, sys::ShareUpdateExclusiveLock as i32)
        })?;
        if !got {
            return Ok(0);
        }
        let (h, ix) = rel::open_clustered(table, sys::ShareUpdateExclusiveLock as i32)?;
        if rel::index_options(ix.rel()).auto_repack_interval <= 0 {
            return Ok(0);
        }
        let (tally, _) = repack(h.rel(), ix.rel(), Scope::Due { now: map::now() }, max_rows)?;
        Ok(tally.moved)
    })
}
