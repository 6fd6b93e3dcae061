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
