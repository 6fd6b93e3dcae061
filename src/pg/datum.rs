//! Reading arguments from and building results for fmgr calls.
//!
//! On 64-bit builds every integer type up to int8 is passed by value in a
//! Datum, so these are plain conversions; anything by reference is copied
//! through `guard`ed allocation.

use crate::pg::error::{codes, guard, PgError, PgResult};
use crate::pg::sys;
use std::ffi::{c_char, CStr};

/// The fmgr call frame of an SQL-callable function.
pub struct Args(sys::FunctionCallInfo);

impl Args {
    /// # Safety
    /// `fcinfo` must be the frame PostgreSQL passed to the function.
    pub unsafe fn new(fcinfo: sys::FunctionCallInfo) -> Self {
        Args(fcinfo)
    }

    pub fn fcinfo(&self) -> sys::FunctionCallInfo {
        self.0
    }

    pub fn nargs(&self) -> usize {
        // SAFETY: valid frame (constructor contract).
        unsafe { (*self.0).nargs as usize }
    }

    /// The n-th argument, or None when it is SQL NULL.
    pub fn datum(&self, n: usize) -> Option<sys::Datum> {
        assert!(n < self.nargs(), "argument {n} out of range");
        // SAFETY: n < nargs, the flexible array has nargs entries.
        let a = unsafe { &*(*self.0).args.as_ptr().add(n) };
        if a.isnull {
            None
        } else {
            Some(a.value)
        }
    }

    /// The n-th argument, with a clear error when it is NULL.
    pub fn required(&self, n: usize, func: &str, name: &str) -> PgResult<sys::Datum> {
        self.datum(n).ok_or_else(|| {
            PgError::new(
                codes::NULL_VALUE_NOT_ALLOWED,
                format!("{func}: argument \"{name}\" must not be NULL"),
            )
            .hint(format!("Pass a non-NULL {name}."))
        })
    }

    pub fn set_null(&self) -> sys::Datum {
        // SAFETY: valid frame.
        unsafe { (*self.0).isnull = true };
        0
    }
}

pub fn to_i64(d: sys::Datum) -> i64 {
    d as i64
}
pub fn to_i32(d: sys::Datum) -> i32 {
    d as i32
}
pub fn to_i16(d: sys::Datum) -> i16 {
    d as i16
}
pub fn from_i64(v: i64) -> sys::Datum {
    v as sys::Datum
}
pub fn from_i32(v: i32) -> sys::Datum {
    v as u32 as sys::Datum
}
pub fn from_bool(v: bool) -> sys::Datum {
    v as sys::Datum
}

/// Detoasts a varlena datum and copies its payload bytes.
pub fn varlena_bytes(d: sys::Datum) -> PgResult<Vec<u8>> {
    let p = d as *mut sys::varlena;
    // SAFETY: d is a varlena datum; pg_detoast_datum_packed may allocate.
    let v = guard(|| unsafe { sys::pg_detoast_datum_packed(p) })?;
    // SAFETY: v is a detoasted (possibly short-header) varlena.
    unsafe {
        let (data, len) = varlena_payload(v);
        Ok(std::slice::from_raw_parts(data, len).to_vec())
    }
}

/// Payload pointer and length of a detoasted varlena (1- or 4-byte header).
///
/// # Safety
/// `v` must point to a detoasted varlena.
unsafe fn varlena_payload(v: *const sys::varlena) -> (*const u8, usize) {
    let b = v as *const u8;
    let first = *b;
    if first & 0x01 == 0x01 {
        // 1-byte header (little-endian: low bit set), length includes it.
        let len = ((first >> 1) & 0x7F) as usize;
        (b.add(1), len - 1)
    } else {
        let len = (std::ptr::read_unaligned(b as *const u32) >> 2) as usize;
        (b.add(4), len - 4)
    }
}

/// A palloc'd copy of `bytes` of a fixed-length by-reference type.
pub fn fixed_datum(bytes: &[u8]) -> PgResult<sys::Datum> {
    let n = bytes.len();
    // SAFETY: palloc of n bytes.
    let p = guard(|| unsafe { sys::palloc(n) })? as *mut u8;
    // SAFETY: p has n bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, n) };
    Ok(p as sys::Datum)
}

/// Reads `n` bytes of a fixed-length by-reference datum.
///
/// # Safety
/// `d` must point to at least `n` readable bytes.
pub unsafe fn fixed_bytes<const N: usize>(d: sys::Datum) -> [u8; N] {
    let mut out = [0u8; N];
    std::ptr::copy_nonoverlapping(d as *const u8, out.as_mut_ptr(), N);
    out
}

/// A palloc'd `text` datum.
pub fn text_datum(s: &str) -> PgResult<sys::Datum> {
    let (p, n) = (s.as_ptr() as *const c_char, s.len() as i32);
    // SAFETY: copies n bytes into a new text.
    let t = guard(|| unsafe { sys::cstring_to_text_with_len(p, n) })?;
    Ok(t as sys::Datum)
}

/// A palloc'd `bytea` datum.
pub fn bytea_datum(bytes: &[u8]) -> PgResult<sys::Datum> {
    let total = bytes.len() + 4;
    // SAFETY: palloc of header + payload.
    let p = guard(|| unsafe { sys::palloc(total) })? as *mut u8;
    // SAFETY: p has total bytes; 4-byte varlena header = length << 2.
    unsafe {
        std::ptr::write_unaligned(p as *mut u32, (total as u32) << 2);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(4), bytes.len());
    }
    Ok(p as sys::Datum)
}

/// A NUL-terminated C string argument (cstring type).
///
/// # Safety
/// `d` must be a cstring datum.
pub unsafe fn cstring_arg(d: sys::Datum) -> String {
    CStr::from_ptr(d as *const c_char)
        .to_string_lossy()
        .into_owned()
}

/// A palloc'd NUL-terminated copy of `s` (for cstring results).
pub fn cstring_datum(s: &str) -> PgResult<sys::Datum> {
    let (p, n) = (s.as_ptr() as *const c_char, s.len());
    // SAFETY: pnstrdup copies n bytes and terminates.
    Ok(guard(|| unsafe { sys::pnstrdup(p, n) })? as sys::Datum)
}
