//! A growable array in palloc'd memory, for state that outlives one call
//! into the access method (a scan's entries). Rust's `Vec` would leak its
//! heap memory when an ERROR skips `amendscan`; this memory belongs to the
//! memory context of the first allocation and goes when that context does.

use crate::pg::error::{guard, PgResult};
use crate::pg::sys;

/// Plain data (`Copy`), so it can sit inside a palloc'd struct.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PVec<T: Copy> {
    ptr: *mut T,
    len: usize,
    cap: usize,
}

impl<T: Copy> PVec<T> {
    /// Allocates room for `cap` elements in the current memory context.
    pub fn with_capacity(cap: usize) -> PgResult<PVec<T>> {
        let cap = cap.max(1);
        let bytes = cap * std::mem::size_of::<T>();
        // SAFETY: palloc in the caller's context.
        let ptr = guard(|| unsafe { sys::palloc(bytes) })? as *mut T;
        Ok(PVec { ptr, len: 0, cap })
    }

    fn grow(&mut self) -> PgResult<()> {
        let cap = self.cap * 2;
        let bytes = cap * std::mem::size_of::<T>();
        let p = self.ptr as *mut std::ffi::c_void;
        // SAFETY: ptr came from palloc/repalloc; repalloc keeps its context.
        self.ptr = guard(|| unsafe { sys::repalloc_huge(p, bytes) })? as *mut T;
        self.cap = cap;
        Ok(())
    }

    pub fn push(&mut self, v: T) -> PgResult<()> {
        if self.len == self.cap {
            self.grow()?;
        }
        // SAFETY: len < cap after growing.
        unsafe { self.ptr.add(self.len).write(v) };
        self.len += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first len elements are initialised.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as above, exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Removes the first `n` elements.
    pub fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.as_mut_slice().copy_within(n.., 0);
        self.len -= n;
    }

    /// Frees the memory; the vector is empty and unusable afterwards.
    pub fn free(&mut self) -> PgResult<()> {
        if !self.ptr.is_null() {
            let p = self.ptr as *mut std::ffi::c_void;
            // SAFETY: our palloc'd block, freed once.
            guard(|| unsafe { sys::pfree(p) })?;
        }
        self.ptr = std::ptr::null_mut();
        self.len = 0;
        self.cap = 0;
        Ok(())
    }
}
