//! Pinned and locked buffers as values that unlock and unpin themselves, and
//! generic WAL records as values that write nothing unless finished.

use crate::core::layout::BLCKSZ;
use crate::core::page_delta;
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

/// A pinned (not locked) buffer; dropped = unpinned.
pub struct Pinned {
    buf: sys::Buffer,
}

impl Pinned {
    /// Takes over a pin the caller holds on `buf`.
    ///
    /// # Safety
    /// The pin must be this backend's and not released elsewhere.
    pub unsafe fn adopt(buf: sys::Buffer) -> Self {
        Pinned { buf }
    }

    /// Gives the pin back to C, which must release it.
    pub fn into_raw(self) -> sys::Buffer {
        let b = self.buf;
        std::mem::forget(self);
        b
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let b = self.buf;
        // SAFETY: we hold the pin (see adopt).
        let _ = guard(|| unsafe { sys::ReleaseBuffer(b) });
    }
}

/// A pinned, locked buffer; dropped = unlocked and unpinned.
pub struct LockedBuffer {
    buf: sys::Buffer,
    lock: Lock,
    blkno: u32,
}

impl LockedBuffer {
    /// Reads block `blkno` of `rel`'s main fork and locks it.
    pub fn read(rel: sys::Relation, blkno: u32, lock: Lock) -> PgResult<Self> {
        let mode = lock.mode();
        // SAFETY: rel is an open relation; ReadBuffer and LockBuffer may
        // ereport, in which case C holds the pin (if any) and the
        // resource owner releases it.
        let buf = guard(|| unsafe { sys::cpg_read_locked(rel, blkno, mode) })?;
        Ok(LockedBuffer { buf, lock, blkno })
    }

    /// A new block at the end of `rel`, zeroed and exclusively locked.
    pub fn extend(rel: sys::Relation) -> PgResult<Self> {
        // SAFETY: rel is an open index.
        let buf = guard(|| unsafe { sys::cpg_extend_index(rel) })?;
        // SAFETY: pinned buffer; BufferGetBlockNumber does not ereport for
        // a valid pinned buffer, but guard anyway.
        let blkno = guard(|| unsafe { sys::BufferGetBlockNumber(buf) }).unwrap_or(u32::MAX);
        Ok(LockedBuffer {
            buf,
            lock: Lock::Exclusive,
            blkno,
        })
    }

    pub fn buffer(&self) -> sys::Buffer {
        self.buf
    }

    /// Gives the pin and the lock to C, which must release both
    /// (`UnlockReleaseBuffer`; an error's abort releases them too).
    pub fn into_raw(self) -> sys::Buffer {
        let b = self.buf;
        std::mem::forget(self);
        b
    }

    pub fn blkno(&self) -> u32 {
        self.blkno
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

/// One generic WAL record in progress: register up to 4 buffers, edit the
/// page images it hands out, then `finish`. Dropped unfinished = nothing
/// written. The record is the one `GenericXLogFinish` writes, but its delta
/// comes from `core::page_delta` (see there for why).
pub struct XLogRecord {
    rel: sys::Relation,
    pages: Vec<Registered>,
}

struct Registered {
    buf: sys::Buffer,
    image: Box<[u8]>,
    full_image: bool,
}

/// Most pages a generic record takes (MAX_GENERIC_XLOG_PAGES).
const MAX_PAGES: usize = 4;

thread_local! {
    /// Page images of finished records, reused: the insert path writes a
    /// record for most rows.
    static SPARE_IMAGES: std::cell::RefCell<Vec<Box<[u8]>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl XLogRecord {
    pub fn start(rel: sys::Relation) -> PgResult<Self> {
        Ok(XLogRecord {
            rel,
            pages: Vec::with_capacity(MAX_PAGES),
        })
    }

    /// Registers `buf` (which must stay locked exclusively until `finish`)
    /// and returns the page image to edit, a copy of the page. `full_image`
    /// for new or rewritten pages. Registering a buffer again returns the
    /// same image.
    pub fn register(&mut self, buf: &LockedBuffer, full_image: bool) -> PgResult<&mut [u8]> {
        let b = buf.buffer();
        let at = match self.pages.iter().position(|p| p.buf == b) {
            Some(at) => at,
            None => {
                if self.pages.len() == MAX_PAGES {
                    return Err(crate::pg::error::PgError::new(
                        crate::pg::error::codes::INTERNAL_ERROR,
                        "clustered_pg: more than 4 pages in one WAL record",
                    ));
                }
                let mut image = SPARE_IMAGES
                    .with(|s| s.borrow_mut().pop())
                    .unwrap_or_else(|| vec![0u8; BLCKSZ].into_boxed_slice());
                image.copy_from_slice(buf.page());
                self.pages.push(Registered {
                    buf: b,
                    image,
                    full_image,
                });
                self.pages.len() - 1
            }
        };
        Ok(&mut self.pages[at].image)
    }

    /// Applies the edited images to the buffers and writes the WAL record.
    pub fn finish(mut self) -> PgResult<()> {
        if self.pages.is_empty() {
            return Ok(());
        }
        let mut deltas: Vec<Vec<u8>> = Vec::with_capacity(self.pages.len());
        for p in &self.pages {
            let lower = u16::from_ne_bytes([p.image[12], p.image[13]]) as usize;
            let upper = u16::from_ne_bytes([p.image[14], p.image[15]]) as usize;
            // The C side copies around the hole these bound.
            if !(PAGE_HEADER <= lower && lower <= upper && upper <= BLCKSZ) {
                return Err(crate::pg::error::PgError::new(
                    crate::pg::error::codes::INTERNAL_ERROR,
                    format!("clustered_pg: page image with pd_lower {lower}, pd_upper {upper}"),
                ));
            }
            let mut delta = Vec::new();
            if !p.full_image {
                delta.reserve(512);
                // SAFETY: the buffer is pinned and locked by the caller.
                let page = unsafe {
                    std::slice::from_raw_parts(sys::cpg_buffer_page(p.buf) as *const u8, BLCKSZ)
                };
                page_delta::encode(page, &p.image, &mut delta);
            }
            deltas.push(delta);
        }
        let buffers: Vec<sys::Buffer> = self.pages.iter().map(|p| p.buf).collect();
        let images: Vec<*mut std::ffi::c_char> = self
            .pages
            .iter_mut()
            .map(|p| p.image.as_mut_ptr() as *mut std::ffi::c_char)
            .collect();
        let full: Vec<bool> = self.pages.iter().map(|p| p.full_image).collect();
        let delta_ptrs: Vec<*mut std::ffi::c_char> = deltas
            .iter_mut()
            .map(|d| d.as_mut_ptr() as *mut std::ffi::c_char)
            .collect();
        let lens: Vec<std::ffi::c_int> =
            deltas.iter().map(|d| d.len() as std::ffi::c_int).collect();
        let (rel, n) = (self.rel, self.pages.len() as std::ffi::c_int);
        // SAFETY: every buffer is pinned and exclusively locked by the
        // caller; images, deltas and their lengths outlive the call.
        guard(|| unsafe {
            sys::cpg_generic_log(
                rel,
                n,
                buffers.as_ptr(),
                images.as_ptr(),
                full.as_ptr(),
                delta_ptrs.as_ptr(),
                lens.as_ptr(),
            )
        })?;
        Ok(())
    }
}

/// Changes `buf` (locked exclusively) by `delta`, fragments in the generic
/// WAL format (`core::page_delta`), and logs that delta as one generic
/// record. For a few known fields of a page: unlike [`XLogRecord`] it
/// copies and compares no page image. The C side refuses, before changing
/// anything, a fragment off the page or in its hole.
pub fn log_delta(rel: sys::Relation, buf: &LockedBuffer, delta: &[u8]) -> PgResult<()> {
    if delta.is_empty() {
        return Ok(());
    }
    if buf.lock != Lock::Exclusive {
        return Err(crate::pg::error::PgError::new(
            crate::pg::error::codes::INTERNAL_ERROR,
            "clustered_pg: page change logged without an exclusive lock",
        ));
    }
    let (b, len) = (buf.buffer(), delta.len() as std::ffi::c_int);
    // SAFETY: the buffer is pinned and exclusively locked (LockedBuffer
    // taken with Lock::Exclusive by the caller); the delta outlives the call.
    guard(|| unsafe {
        sys::cpg_generic_log_delta(rel, b, delta.as_ptr() as *const std::ffi::c_char, len)
    })
}

/// Size of a standard page header (SizeOfPageHeaderData).
const PAGE_HEADER: usize = 24;

impl Drop for XLogRecord {
    fn drop(&mut self) {
        let pages = std::mem::take(&mut self.pages);
        SPARE_IMAGES.with(|s| {
            let mut s = s.borrow_mut();
            for p in pages {
                if s.len() < MAX_PAGES {
                    s.push(p.image);
                }
            }
        });
    }
}
