//! Pinned and locked buffers as values that unlock and unpin themselves, and
//! GenericXLog records as values that abort themselves unless finished.

use crate::pg::error::{guard, PgResult};
use crate::pg::sys;

/// Lock strength of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Share,
    Exclusive,
}

impl Lock {
    fn mode(self) -> i32 {
        match self {
            Lock::Share => sys::BUFFER_LOCK_SHARE as i32,
            Lock::Exclusive => sys::BUFFER_LOCK_EXCLUSIVE as i32,
        }
    }
}

/// A pinned, locked buffer; dropped = unlocked and unpinned.
pub struct LockedBuffer {
    buf: sys::Buffer,
}

impl LockedBuffer {
    /// Reads block `blkno` of `rel`'s main fork and locks it.
    pub fn read(rel: sys::Relation, blkno: u32, lock: Lock) -> PgResult<Self> {
        // SAFETY: rel is an open relation; ReadBuffer may ereport.
        let buf = guard(|| unsafe { sys::ReadBuffer(rel, blkno) })?;
        let this = LockedBuffer { buf };
        let mode = lock.mode();
        // SAFETY: we hold a pin on buf.
        guard(|| unsafe { sys::LockBuffer(buf, mode) })?;
        Ok(this)
    }

    /// A new block at the end of `rel`, zeroed and exclusively locked.
    pub fn extend(rel: sys::Relation) -> PgResult<Self> {
        // SAFETY: rel is an open index.
        let buf = guard(|| unsafe { sys::cpg_extend_index(rel) })?;
        Ok(LockedBuffer { buf })
    }

    pub fn buffer(&self) -> sys::Buffer {
        self.buf
    }

    pub fn blkno(&self) -> u32 {
        let b = self.buf;
        // SAFETY: pinned buffer; BufferGetBlockNumber does not ereport for
        // a valid pinned buffer, but guard anyway.
        guard(|| unsafe { sys::BufferGetBlockNumber(b) }).unwrap_or(u32::MAX)
    }

    /// The page, for reading (valid while the lock is held).
    pub fn page(&self) -> &[u8] {
        // SAFETY: the buffer is pinned and locked; the page is BLCKSZ bytes.
        unsafe {
            let p = sys::cpg_buffer_page(self.buf) as *const u8;
            std::slice::from_raw_parts(p, crate::core::layout::BLCKSZ)
        }
    }
}

impl Drop for LockedBuffer {
    fn drop(&mut self) {
        let b = self.buf;
        // SAFETY: we hold the pin and the lock. An error here (none is
        // expected) is dropped: we may already be unwinding from one.
        let _ = guard(|| unsafe { sys::UnlockReleaseBuffer(b) });
    }
}

/// One GenericXLog record in progress: register up to 4 buffers, edit the
/// page images it hands out, then `finish`. Dropped unfinished = aborted,
/// nothing written.
pub struct XLogRecord {
    state: *mut sys::GenericXLogState,
}

impl XLogRecord {
    pub fn start(rel: sys::Relation) -> PgResult<Self> {
        // SAFETY: rel is open; allocates the state.
        let state = guard(|| unsafe { sys::GenericXLogStart(rel) })?;
        Ok(XLogRecord { state })
    }

    /// Registers `buf` (which must stay locked until `finish`) and returns the
    /// page image to edit. `full_image` for new or rewritten pages.
    pub fn register(&mut self, buf: &LockedBuffer, full_image: bool) -> PgResult<&mut [u8]> {
        let (st, b) = (self.state, buf.buffer());
        let flags = if full_image {
            sys::GENERIC_XLOG_FULL_IMAGE as i32
        } else {
            0
        };
        // SAFETY: state is live; buf is locked exclusively by the caller.
        let p = guard(|| unsafe { sys::GenericXLogRegisterBuffer(st, b, flags) })? as *mut u8;
        // SAFETY: the image is BLCKSZ bytes owned by the state.
        Ok(unsafe { std::slice::from_raw_parts_mut(p, crate::core::layout::BLCKSZ) })
    }

    /// Applies the edited images to the buffers and writes the WAL record.
    pub fn finish(mut self) -> PgResult<()> {
        let st = std::mem::replace(&mut self.state, std::ptr::null_mut());
        // SAFETY: state is live and consumed here.
        guard(|| unsafe { sys::GenericXLogFinish(st) })?;
        Ok(())
    }
}

impl Drop for XLogRecord {
    fn drop(&mut self) {
        if !self.state.is_null() {
            let st = self.state;
            // SAFETY: unfinished state; abort frees it.
            let _ = guard(|| unsafe { sys::GenericXLogAbort(st) });
        }
    }
}
