//! `version()` and `observability()`: what is loaded and what it has done in
//! this session.

use crate::core::counters;
use crate::core::options::IndexOptions;
use crate::pg::datum::text_datum;
use crate::pg::error::CpgStatus;
use crate::pg::sys::{Datum, FunctionCallInfo};
use crate::sql::sql_entry;

pub const EXTENSION_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Bumped when the observability text changes shape.
pub const OBSERVABILITY_API: u32 = 1;

pub fn observability_text() -> String {
    format!(
        "clustered_pg={} api={} pg={} defaults={} counters={}",
        EXTENSION_VERSION,
        OBSERVABILITY_API,
        env!("CPG_PG_MAJOR"),
        IndexOptions::default().describe(),
        counters::describe()
    )
}

#[no_mangle]
pub extern "C" fn rs_version(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |_| text_datum(EXTENSION_VERSION))
}

#[no_mangle]
pub extern "C" fn rs_observability(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |_| text_datum(&observability_text()))
}

/// `directory_stats(regclass)`: the shape of the segment directory of a
/// table's clustered_pk_index (or of the index itself): one row.
#[no_mangle]
pub extern "C" fn rs_directory_stats(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    use crate::pg::datum::{from_bool, from_i32, from_i64};
    use crate::pg::sys;
    sql_entry(fcinfo, st, |a| {
        let oid = a.required(0, "directory_stats", "relation")? as sys::Oid;
        let (_h, ix) = crate::pg::rel::open_clustered(oid, sys::AccessShareLock as i32)?;
        let (levels, root, dir_pages, seg_pages, overflowed) =
            crate::am::index::map::directory_shape(ix.rel())?;
        let caps = crate::am::index::map::dir_caps();
        let mut out = crate::pg::srf::Rows::start(a.fcinfo())?;
        let vals = [
            from_i32(levels as i32),
            from_i32(root as i32),
            from_i64(dir_pages as i64),
            from_i64(seg_pages as i64),
            from_i64(caps.max_segment_pages() as i64),
            from_bool(overflowed),
        ];
        out.push(&vals, &[false; 6])?;
        Ok(0)
    })
}
