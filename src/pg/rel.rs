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

/// pg_class.relfilenode: which file holds the relation now (TRUNCATE and
/// REINDEX give it a new one).
pub fn relfilenode(rel: sys::Relation) -> sys::Oid {
    // SAFETY: rd_rel is always set on an open relation.
    unsafe { (*(*rel).rd_rel).relfilenode }
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
    // SAFETY: index is open and has one key column; a field read of its
    // tuple descriptor, which cannot ereport (called once or twice per
    // inserted row, so without the error boundary's setjmp).
    let typ = unsafe { sys::cpg_index_key_type(index) };
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

/// An open relation, closed (keeping its lock until transaction end, as
/// PostgreSQL code does) when dropped.
pub struct OpenRel {
    rel: sys::Relation,
}

impl OpenRel {
    pub fn table(oid: sys::Oid, lockmode: i32) -> PgResult<Self> {
        // SAFETY: opens with the given lock; ereports if missing.
        let rel = guard(|| unsafe { sys::relation_open(oid, lockmode) })?;
        Ok(OpenRel { rel })
    }

    pub fn index(oid: sys::Oid, lockmode: i32) -> PgResult<Self> {
        // SAFETY: as above, for indexes.
        let rel = guard(|| unsafe { sys::index_open(oid, lockmode) })?;
        Ok(OpenRel { rel })
    }

    pub fn rel(&self) -> sys::Relation {
        self.rel
    }
}

impl Drop for OpenRel {
    fn drop(&mut self) {
        let r = self.rel;
        // SAFETY: opened by us; NoLock keeps the lock to transaction end.
        let _ = guard(|| unsafe { sys::relation_close(r, sys::NoLock as i32) });
    }
}

/// The heap column an index's key comes from.
pub fn index_heap_attno(index: sys::Relation) -> i16 {
    // SAFETY: rd_index is set for indexes; one key column.
    unsafe { *(*(*index).rd_index).indkey.values.as_ptr() }
}

/// OID of the clustered_pk_index access method (0 if not installed).
pub fn clustered_index_am() -> PgResult<sys::Oid> {
    let name = c"clustered_pk_index".as_ptr();
    // SAFETY: catalog lookup by name.
    guard(|| unsafe { sys::cpg_am_oid(name) })
}

/// Whether `heap` is a clustered_heap table (its rows placed by the map).
pub fn is_clustered_heap(heap: sys::Relation) -> PgResult<bool> {
    let name = c"clustered_heap".as_ptr();
    // SAFETY: catalog lookup by name.
    let am = guard(|| unsafe { sys::cpg_am_oid(name) })?;
    Ok(am != 0 && relam(heap) == am)
}

/// Name of a relation by OID, for messages ("(unknown)" if gone).
pub fn name_of(oid: sys::Oid) -> String {
    // SAFETY: syscache lookup; returns palloc'd name or NULL.
    match guard(|| unsafe { sys::get_rel_name(oid) }) {
        Ok(p) if !p.is_null() => unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned(),
        _ => "(unknown)".into(),
    }
}

/// Name of the table an index belongs to (for messages).
pub fn table_name_of_index(index: sys::Relation) -> String {
    let ioid = relid(index);
    // SAFETY: catalog lookup; missing_ok, so no error for a vanished index.
    match guard(|| unsafe { sys::IndexGetRelation(ioid, true) }) {
        Ok(t) if t != 0 => name_of(t),
        _ => "(unknown)".into(),
    }
}

/// The table and its clustered_pk_index named by `oid`, which may be
/// either. Checks SELECT privilege on the table; locks the table in
/// `table_lock` and the index in AccessShareLock.
pub fn open_clustered(oid: sys::Oid, table_lock: i32) -> PgResult<(OpenRel, OpenRel)> {
    // SAFETY: syscache lookup.
    let kind = guard(|| unsafe { sys::get_rel_relkind(oid) })? as u8;
    let am = clustered_index_am()?;
    let heap_oid = match kind {
        k if k == sys::RELKIND_INDEX => {
            // SAFETY: catalog lookup.
            guard(|| unsafe { sys::IndexGetRelation(oid, false) })?
        }
        k if k == sys::RELKIND_RELATION || k == sys::RELKIND_MATVIEW => oid,
        0 => {
            return Err(PgError::new(
                codes::UNDEFINED_OBJECT,
                format!("relation with OID {oid} does not exist"),
            ))
        }
        _ => {
            return Err(PgError::new(
                codes::WRONG_OBJECT_TYPE,
                format!(
                    "\"{}\" is not a table or a clustered_pk_index",
                    name_of(oid)
                ),
            )
            .hint("Pass a table that has a clustered_pk_index, or the index itself."))
        }
    };
    // SAFETY: privilege check of the current user.
    let acl = guard(|| unsafe {
        sys::pg_class_aclcheck(heap_oid, sys::GetUserId(), sys::ACL_SELECT as sys::AclMode)
    })?;
    if acl != sys::ACLCHECK_OK {
        return Err(PgError::new(
            codes::INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", name_of(heap_oid)),
        )
        .hint("Reading the clustered map needs SELECT privilege on the table."));
    }
    let heap = OpenRel::table(heap_oid, table_lock)?;
    let index_oid = if kind == sys::RELKIND_INDEX {
        oid
    } else {
        let h = heap.rel();
        // SAFETY: heap is open.
        guard(|| unsafe { sys::cpg_other_index_with_am(h, am, 0) })?
    };
    if index_oid == 0 {
        return Err(PgError::new(
            codes::OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("table \"{}\" has no clustered_pk_index", name_of(heap_oid)),
        )
        .hint("CREATE INDEX ... ON the table USING clustered_pk_index (key)."));
    }
    let index = OpenRel::index(index_oid, sys::AccessShareLock as i32)?;
    if relam(index.rel()) != am {
        return Err(PgError::new(
            codes::WRONG_OBJECT_TYPE,
            format!(
                "index \"{}\" is not a clustered_pk_index",
                name(index.rel())
            ),
        ));
    }
    Ok((heap, index))
}
