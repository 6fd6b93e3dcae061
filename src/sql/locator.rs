//! SQL surface of the `clustered_locator` type: I/O, casts, constructors,
//! accessors, comparison operators and the btree support function. The codec
//! and the ordering are `core::locator`; this file only converts datums.

use crate::core::locator::{compare_bytes, Locator, LocatorError, LOCATOR_LEN};
use crate::pg::datum::{
    bytea_datum, cstring_arg, cstring_datum, fixed_bytes, fixed_datum, from_bool, from_i32,
    from_i64, text_datum, to_i64, varlena_bytes, Args,
};
use crate::pg::error::{codes, CpgStatus, PgError, PgResult};
use crate::pg::sys::{Datum, FunctionCallInfo};
use crate::sql::sql_entry;

fn locator_error(e: LocatorError) -> PgError {
    match e {
        LocatorError::BadLength(_) => PgError::new(codes::STRING_DATA_LENGTH_MISMATCH, e.to_string())
            .hint("Build locators with locator_pack(major, minor); a bytea must hold exactly 16 bytes: 8 for the major, 8 for the minor, big-endian."),
        LocatorError::BadText(_) => PgError::new(codes::INVALID_TEXT_REPRESENTATION, e.to_string())
            .hint("Write a locator as (major,minor), e.g. '(0,42)', or as 32 hexadecimal digits."),
        LocatorError::Overflow { .. } => PgError::new(codes::NUMERIC_VALUE_OUT_OF_RANGE, e.to_string())
            .hint("Locator parts are bigint; they never wrap around."),
    }
}

/// The locator in argument `n` (the type is fixed-length, so always 16 bytes).
fn locator_arg(a: &Args, n: usize, func: &str) -> PgResult<Locator> {
    let d = a.required(n, func, "locator")?;
    // SAFETY: clustered_locator is a 16-byte by-reference type.
    let bytes = unsafe { fixed_bytes::<LOCATOR_LEN>(d) };
    Locator::from_bytes(&bytes).map_err(locator_error)
}

fn locator_datum(l: Locator) -> PgResult<Datum> {
    fixed_datum(&l.to_bytes())
}

fn bigint_arg(a: &Args, n: usize, func: &str, name: &str) -> PgResult<i64> {
    Ok(to_i64(a.required(n, func, name)?))
}

#[no_mangle]
pub extern "C" fn rs_locator_in(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let d = a.required(0, "clustered_locator_in", "text")?;
        // SAFETY: argument 0 of a type input function is a cstring.
        let text = unsafe { cstring_arg(d) };
        locator_datum(Locator::parse(&text).map_err(locator_error)?)
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_out(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        cstring_datum(&locator_arg(a, 0, "clustered_locator_out")?.to_text())
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_from_bytea(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let bytes = varlena_bytes(a.required(0, "clustered_locator(bytea)", "bytea")?)?;
        locator_datum(Locator::from_bytes(&bytes).map_err(locator_error)?)
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_to_bytea(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        bytea_datum(&locator_arg(a, 0, "bytea(clustered_locator)")?.to_bytes())
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_pack(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let major = bigint_arg(a, 0, "locator_pack", "major")?;
        let minor = bigint_arg(a, 1, "locator_pack", "minor")?;
        locator_datum(Locator::new(major, minor))
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_pack_int8(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let pk = bigint_arg(a, 0, "locator_pack_int8", "pk")?;
        locator_datum(Locator::from_int8(pk))
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_major(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        Ok(from_i64(locator_arg(a, 0, "locator_major")?.major))
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_minor(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        Ok(from_i64(locator_arg(a, 0, "locator_minor")?.minor))
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_to_hex(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        text_datum(&locator_arg(a, 0, "locator_to_hex")?.to_hex())
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_advance_major(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let l = locator_arg(a, 0, "locator_advance_major")?;
        let delta = bigint_arg(a, 1, "locator_advance_major", "delta")?;
        locator_datum(l.advance_major(delta).map_err(locator_error)?)
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_next_minor(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        let l = locator_arg(a, 0, "locator_next_minor")?;
        let delta = bigint_arg(a, 1, "locator_next_minor", "delta")?;
        locator_datum(l.next_minor(delta).map_err(locator_error)?)
    })
}

fn compare(a: &Args, func: &str) -> PgResult<i32> {
    let x = locator_arg(a, 0, func)?.to_bytes();
    let y = locator_arg(a, 1, func)?.to_bytes();
    compare_bytes(&x, &y).map_err(locator_error)
}

#[no_mangle]
pub extern "C" fn rs_locator_cmp(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| Ok(from_i32(compare(a, "locator_cmp")?)))
}

#[no_mangle]
pub extern "C" fn rs_locator_lt(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| Ok(from_bool(compare(a, "locator_lt")? < 0)))
}

#[no_mangle]
pub extern "C" fn rs_locator_le(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        Ok(from_bool(compare(a, "locator_le")? <= 0))
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_eq(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        Ok(from_bool(compare(a, "locator_eq")? == 0))
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_ne(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        Ok(from_bool(compare(a, "locator_ne")? != 0))
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_ge(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| {
        Ok(from_bool(compare(a, "locator_ge")? >= 0))
    })
}

#[no_mangle]
pub extern "C" fn rs_locator_gt(fcinfo: FunctionCallInfo, st: *mut CpgStatus) -> Datum {
    sql_entry(fcinfo, st, |a| Ok(from_bool(compare(a, "locator_gt")? > 0)))
}
