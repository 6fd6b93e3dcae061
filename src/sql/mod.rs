//! SQL-callable functions. Each export is `rs_<name>(fcinfo, status)`; the C
//! shim defines the fmgr symbol `cpg_<name>` that calls it and raises the
//! status afterwards (csrc/shim.c, CPG_SQL_FUNCTION).

pub mod info;
pub mod locator;
pub mod repack;
pub mod segment_map;
pub mod selftest;
pub mod verify;

use crate::pg::datum::Args;
use crate::pg::error::{entry, CpgStatus, PgResult};
use crate::pg::sys;

/// The body of every SQL function: catches panics and errors into `st`.
pub(crate) fn sql_entry(
    fcinfo: sys::FunctionCallInfo,
    st: *mut CpgStatus,
    f: impl FnOnce(&Args) -> PgResult<sys::Datum>,
) -> sys::Datum {
    entry(st, 0, || {
        // SAFETY: PostgreSQL passed this frame to the fmgr wrapper.
        let args = unsafe { Args::new(fcinfo) };
        f(&args)
    })
}

/// Called once from `_PG_init`.
#[no_mangle]
pub extern "C" fn rs_init(st: *mut CpgStatus) {
    entry(st, (), || {
        crate::pg::error::install_panic_hook();
        Ok(())
    })
}
