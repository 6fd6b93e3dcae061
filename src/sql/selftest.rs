//! Hooks that prove the error boundary from SQL (sql/boundary.sql creates
//! SQL functions for them itself; they are not part of the extension's SQL
//! surface). Each one owns a value with a destructor while it fails, and a
//! counter shows the destructor ran.

use crate::pg::datum::{cstring_datum, from_i64, Args};
use crate::pg::error::{codes, guard, CpgStatus, PgError};
use crate::pg::sys::{self, Datum, FunctionCallInfo};
use crate::sql::sql_entry;
use std::sync::atomic::{AtomicI64, Ordering};

static DROPS: AtomicI64 = AtomicI64::new(0);

/// Counts its own destruction.
struct Witness(#[allow(dead_code)] Vec<u8>);

impl Drop for Witness {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Calls int4in(text) from Rust: a PostgreSQL ERROR inside it (bad input)
/// must come back as a value and reach the client unchanged.
#[no_mangle]
pub extern "C" fn rs_selftest_int4in(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a: &Args| {
        let _witness = Witness(vec![1, 2, 3]);
        let text = a.required(0, "selftest_int4in", "text")?;
        // SAFETY: argument 0 is a cstring; int4in may ereport.
        let out = guard(|| unsafe { sys::DirectFunctionCall1Coll(Some(sys::int4in), 0, text) })?;
        Ok(out)
    })
}

/// Panics while owning a destructor.
#[no_mangle]
pub extern "C" fn rs_selftest_panic(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |_| {
        let _witness = Witness(vec![0; 16]);
        let v: Vec<i32> = Vec::new();
        // An out-of-bounds index is the kind of bug the boundary must contain.
        let idx = v.len() + 3;
        Ok(from_i64(v[idx] as i64))
    })
}

/// Raises an error of our own with a hint.
#[no_mangle]
pub extern "C" fn rs_selftest_raise(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |_| {
        let _witness = Witness(Vec::new());
        Err(
            PgError::new(codes::INVALID_PARAMETER_VALUE, "selftest: raised by Rust")
                .detail("detail text")
                .hint("hint text"),
        )
    })
}

/// How many Witness values were dropped in this backend.
#[no_mangle]
pub extern "C" fn rs_selftest_drops(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |_| Ok(from_i64(DROPS.load(Ordering::Relaxed))))
}

/// Echo through cstring allocation, proving the success path too.
#[no_mangle]
pub extern "C" fn rs_selftest_echo(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let d = a.required(0, "selftest_echo", "text")?;
        // SAFETY: argument 0 is a cstring.
        let s = unsafe { crate::pg::datum::cstring_arg(d) };
        cstring_datum(&s)
    })
}
