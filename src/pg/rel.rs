//! Facts about relations: names for messages, kinds, options, key types.

use crate::core::options::IndexOptions;
use crate::pg::error::{codes, guard, PgError, PgResult};
use crate::pg::sys;
use std::ffi::CStr;

/// The parsed reloptions of a clustered_pk_index, as the C shim's
/// `build_reloptions` lays them out (a varlena header, then the values).
#[repr(C)]
pub struct CpgIndexOptions {
    pub vl_len_: i32,
    pub split_threshold: i32,
    pub target_fillfactor: i32,
    pub auto_repack_interval: i32,
}

pub fn relid(rel: sys::Relation) -> sys::Oid {
    // SAFETY: rel is an open relation.
    unsafe { (*rel).rd_id }
}

pub fn relkind(rel: sys::Relation) -> u8 {
    // SAFETY: rd_rel is always set on an open relation.
    unsafe { (*(*rel).rd_rel).relkind as u8 }
}

pub fn relam(rel: sys::Relation) -> sys::Oid {
    // SAFETY: as above.
    unsafe { (*(*rel).rd_rel).relam }
}

/// The relation's name (unqualified), for messages.
pub fn name(rel: sys::Relation) -> String {
    // SAFETY: relname is a NameData inside rd_rel.
    unsafe {
        let n = &(*(*rel).rd_rel).relname;
        CStr::from_ptr(n.data.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The options of a clustered_pk_index (defaults when none were given).
pub fn index_options(index: sys::Relation) -> IndexOptions {
    // SAFETY: rd_options of our index is NULL or what cpg_index_options built.
    unsafe {
        let o = (*index).rd_options as *const CpgIndexOptions;
        if o.is_null() {
            IndexOptions::default()
        } else {
            IndexOptions {
                split_threshold: (*o).split_threshold,
                target_fillfactor: (*o).target_fillfactor,
                auto_repack_interval: (*o).auto_repack_interval,
            }
        }
    }
}

/// Key types the index supports, as (type oid, width in bytes).
pub fn key_width(index: sys::Relation) -> PgResult<u32> {
    // SAFETY: index is open and has one key column.
    let typ = guard(|| unsafe { sys::cpg_index_key_type(index) })?;
    match typ {
        sys::INT2OID => Ok(2),
        sys::INT4OID => Ok(4),
        sys::INT8OID => Ok(8),
        other => {
            // SAFETY: format_type_be returns a palloc'd name.
            let tname = guard(|| unsafe { sys::format_type_be(other) })?;
            let tname = unsafe { CStr::from_ptr(tname) }
                .to_string_lossy()
                .into_owned();
            Err(PgError::new(
                codes::FEATURE_NOT_SUPPORTED,
                format!("clustered_pk_index does not support key type {tname}"),
            )
            .hint("Supported key types are smallint, integer and bigint."))
        }
    }
}

/// Converts a key datum of a type `width` bytes wide to i64.
pub fn key_from_datum(d: sys::Datum, width: u32) -> i64 {
    match width {
        2 => d as i16 as i64,
        4 => d as i32 as i64,
        _ => d as i64,
    }
}

/// Width of a scan key argument type (InvalidOid: same as the column).
pub fn subtype_width(subtype: sys::Oid, column_width: u32) -> u32 {
    match subtype {
        sys::INT2OID => 2,
        sys::INT4OID => 4,
        sys::INT8OID => 8,
        _ => column_width,
    }
}
