//! `clustered_pg.verify(regclass)`: checks the invariant (DESIGN.md §3)
//! against every tuple a transaction may still see, and returns one row per
//! violation: empty when the map is sound.
//!
//! The table is locked in SHARE mode for the check, so no insert can be
//! half-way between the heap and the map while it runs.

use crate::am::index::map;
use crate::core::segmap::{check_tuple, find_page, ViolationKind};
use crate::pg::datum::{from_i32, from_i64, text_datum};
use crate::pg::error::{check_for_interrupts, CpgStatus, PgResult};
use crate::pg::heap::{self, KeysOf};
use crate::pg::rel;
use crate::pg::srf::Rows;
use crate::pg::sys::{self, Datum, FunctionCallInfo};
use crate::sql::sql_entry;

struct Problem {
    kind: &'static str,
    block: Option<u32>,
    offset: Option<u16>,
    key: Option<i64>,
    segment: Option<i64>,
    detail: String,
}

fn check(fcinfo: FunctionCallInfo, oid: sys::Oid) -> PgResult<Vec<Problem>> {
    let _ = fcinfo;
    let (heap_rel, index_rel) = rel::open_clustered(oid, sys::ShareLock as i32)?;
    let (h, ix) = (heap_rel.rel(), index_rel.rel());
    let width = rel::key_width(ix)?;
    let attno = rel::index_heap_attno(ix);
    let (meta, pages) = map::read_all(ix)?;
    let mut problems = Vec::new();
    if meta.flags & crate::core::layout::META_FLAG_OVERFLOW != 0 {
        problems.push(Problem {
            kind: "overflow",
            block: None,
            offset: None,
            key: None,
            segment: None,
            detail: "the map overflowed and covers every block (scans read the whole table); REINDEX after clustering the table".into(),
        });
        return Ok(problems);
    }

    // The directory must partition the key space in order.
    if meta.dir.first().map(|d| d.lo) != Some(i64::MIN) {
        problems.push(Problem {
            kind: "directory",
            block: None,
            offset: None,
            key: None,
            segment: None,
            detail: "the first segment page does not start at the lowest key".into(),
        });
    }
    for (i, (d, p)) in meta.dir.iter().zip(&pages).enumerate() {
        if i > 0 && meta.dir[i - 1].lo >= d.lo {
            problems.push(Problem {
                kind: "directory",
                block: None,
                offset: None,
                key: Some(d.lo),
                segment: None,
                detail: format!("directory entry {i} is out of order"),
            });
        }
        if p.segs.first().map(|s| s.lo) != Some(d.lo) {
            problems.push(Problem {
                kind: "directory",
                block: None,
                offset: None,
                key: Some(d.lo),
                segment: p.segs.first().map(|s| s.id),
                detail: format!(
                    "segment page at index block {} does not start at its directory key",
                    d.blkno
                ),
            });
        }
    }

    for blk in 0..heap::nblocks(h)? {
        check_for_interrupts()?;
        for t in heap::block_keys(KeysOf::MayBeSeen, h, blk, attno, width)? {
            let Some(key) = t.key else { continue };
            if let Err(v) = check_tuple(&meta.dir, &pages, key, blk) {
                let seg = pages
                    .get(find_page(&meta.dir, key))
                    .and_then(|p| p.segs.get(p.find_segment(key)))
                    .map(|s| s.id);
                let detail = match v.kind {
                    ViolationKind::NotListed => {
                        "the segment owning the key does not list this block".to_string()
                    }
                    ViolationKind::OutsideZone { zmin, zmax } => {
                        format!("the block's zone [{zmin}, {zmax}] does not contain the key")
                    }
                };
                problems.push(Problem {
                    kind: "tuple",
                    block: Some(blk),
                    offset: Some(t.offnum),
                    key: Some(key),
                    segment: seg,
                    detail,
                });
            }
        }
    }
    Ok(problems)
}

#[no_mangle]
pub extern "C" fn rs_verify(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let oid = a.required(0, "verify", "relation")? as sys::Oid;
        let problems = check(a.fcinfo(), oid)?;
        let mut rows = Rows::start(a.fcinfo())?;
        for p in problems {
            let vals = [
                text_datum(p.kind)?,
                p.block.map(|b| from_i64(b as i64)).unwrap_or(0),
                p.offset.map(|o| from_i32(o as i32)).unwrap_or(0),
                p.key.map(from_i64).unwrap_or(0),
                p.segment.map(from_i64).unwrap_or(0),
                text_datum(&p.detail)?,
            ];
            let nulls = [
                false,
                p.block.is_none(),
                p.offset.is_none(),
                p.key.is_none(),
                p.segment.is_none(),
                false,
            ];
            rows.push(&vals, &nulls)?;
        }
        Ok(0)
    })
}
