//! aminsert: widen the zone of the block the tuple actually landed in.
//!
//! This runs after the heap insert and before the inserting transaction can
//! commit, so the map covers the tuple before anyone else can see it.

use crate::am::index::build::block_of;
use crate::am::index::{map, nulls};
use crate::pg::error::{entry, CpgStatus, PgResult};
use crate::pg::rel;
use crate::pg::sys;

fn insert(
    index: sys::Relation,
    values: *mut sys::Datum,
    isnull: *mut bool,
    tid: sys::ItemPointer,
    heap: sys::Relation,
) -> PgResult<bool> {
    // SAFETY: one key column, arrays of length 1.
    let (value, null) = unsafe { (*values, *isnull) };
    if null {
        // NULL keys are not mapped (every qual on the key is strict); a
        // full ordered scan finds them through the metapage flag.
        nulls::note_null_key(index)?;
        return Ok(false);
    }
    let width = rel::key_width(index)?;
    map::record(
        index,
        rel::key_from_datum(value, width),
        block_of(tid),
        heap,
    )?;
    Ok(false)
}

#[no_mangle]
pub extern "C" fn rs_aminsert(
    index: sys::Relation,
    values: *mut sys::Datum,
    isnull: *mut bool,
    tid: sys::ItemPointer,
    heap: sys::Relation,
    st: *mut CpgStatus,
) -> bool {
    entry(st, false, || insert(index, values, isnull, tid, heap))
}

/// Pre-commit: adds the row counts this transaction still owes the map.
#[no_mangle]
pub extern "C" fn rs_flush_pending(st: *mut CpgStatus) {
    entry(st, (), map::flush_pending)
}

/// Abort: forgets them.
#[no_mangle]
pub extern "C" fn rs_discard_pending() {
    entry(std::ptr::null_mut(), (), || {
        map::discard_pending();
        Ok(())
    })
}
