//! Keys of the tuples in a heap block, for verify(), VACUUM tightening and
//! placement.

use crate::pg::error::{guard, PgResult};
use crate::pg::rel::key_from_datum;
use crate::pg::sys;
use std::ffi::c_void;

/// One tuple: line pointer and key (None for NULL).
#[derive(Clone, Copy, Debug)]
pub struct TupleKey {
    pub offnum: u16,
    pub key: Option<i64>,
}

struct Collect {
    width: u32,
    out: Vec<TupleKey>,
}

/// Runs inside a guarded C loop: only pushes, never fails.
unsafe extern "C" fn collect(state: *mut c_void, offnum: u16, key: sys::Datum, isnull: bool) {
    let c = &mut *(state as *mut Collect);
    let key = if isnull {
        None
    } else {
        Some(key_from_datum(key, c.width))
    };
    c.out.push(TupleKey { offnum, key });
}

/// Which tuples of a block [`block_keys`] reports (KeysOf in
/// csrc/heap_util.c, which says more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeysOf {
    /// Every tuple some transaction may still see: verify(), VACUUM's zone
    /// tightening, exact counts.
    MayBeSeen = 0,
    /// The same without recently dead tuples: the current version of each
    /// row (live, or being inserted or deleted), what repack considers.
    Current = 1,
    /// For placement decisions (a split's median and zones, a segment's
    /// row count): tuples never deleted are reported without a visibility
    /// check, aborted inserts not yet pruned included. A key too many only
    /// widens a zone; the check it saves sets hint bits, which with data
    /// checksums WAL-logs a full image of each page first touched after a
    /// checkpoint.
    NeverDeletedUnchecked = 2,
}

/// The tuples of `blkno` that `which` selects, with the value of heap
/// column `attno` (an integer column `width` bytes wide).
pub fn block_keys(
    which: KeysOf,
    heap: sys::Relation,
    blkno: u32,
    attno: i16,
    width: u32,
) -> PgResult<Vec<TupleKey>> {
    // Room for a page of small tuples: growing from empty reallocated
    // five times a block.
    let mut c = Collect {
        width,
        out: Vec::with_capacity(64),
    };
    let cp = &mut c as *mut Collect as *mut c_void;
    // SAFETY: the callback only touches `c`, alive for the call.
    guard(|| unsafe { sys::cpg_heap_block_keys(heap, blkno, attno, which as i32, collect, cp) })?;
    Ok(c.out)
}

pub fn nblocks(heap: sys::Relation) -> PgResult<u32> {
    // SAFETY: heap is open.
    guard(|| unsafe { sys::cpg_heap_nblocks(heap) })
}
