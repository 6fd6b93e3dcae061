//! Rows with a NULL key: never mapped, but remembered by one metapage flag
//! so that a scan without key conditions (ORDER BY, merge join, CLUSTER)
//! knows it must look for them. The flag is set once per map, under the
//! metapage's exclusive lock and WAL-logged, before the row can be seen.

use crate::am::index::map::{read_meta, write_meta};
use crate::core::layout::META_FLAG_HAS_NULLS;
use crate::pg::buffer::{Lock, XLogRecord};
use crate::pg::error::PgResult;
use crate::pg::sys;

/// Sets META_FLAG_HAS_NULLS unless it is set already (the common case costs
/// one shared metapage read).
pub fn note_null_key(index: sys::Relation) -> PgResult<()> {
    {
        let (_buf, meta) = read_meta(index, Lock::Share)?;
        if meta.flags & META_FLAG_HAS_NULLS != 0 {
            return Ok(());
        }
    }
    let (buf, mut meta) = read_meta(index, Lock::Exclusive)?;
    if meta.flags & META_FLAG_HAS_NULLS != 0 {
        return Ok(());
    }
    meta.flags |= META_FLAG_HAS_NULLS;
    let mut x = XLogRecord::start(index)?;
    write_meta(x.register(&buf, false)?, &meta)?;
    x.finish()
}

/// Whether the map says NULL-key rows may exist.
pub fn may_have_nulls(index: sys::Relation) -> PgResult<bool> {
    let (_buf, meta) = read_meta(index, Lock::Share)?;
    Ok(meta.flags & META_FLAG_HAS_NULLS != 0)
}
