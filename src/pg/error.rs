//! The error boundary between PostgreSQL and Rust (DESIGN.md §2).
//!
//! PostgreSQL reports errors with `longjmp`; unwinding Rust frames that way
//! would skip their destructors. So:
//! * every call into PostgreSQL that can `ereport(ERROR)` goes through
//!   [`guard`], which runs it under `PG_TRY` in C and hands the error back as
//!   a [`PgError`] value that Rust propagates with `?`;
//! * every exported entry point runs its body through [`entry`], which also
//!   catches panics; the error is parked in a [`CpgStatus`] and the C wrapper
//!   re-throws it after every Rust frame has returned.

use crate::pg::sys;
use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What an entry point reports back to its C wrapper (csrc/shim.c, which
/// raises it with `cpg_raise`). Filled only on failure.
#[repr(C)]
pub struct CpgStatus {
    /// 0: success; 1: a PostgreSQL error in `edata`; 2: an error raised by
    /// Rust, described by `sqlstate`, `message`, `detail`, `hint`.
    pub kind: i32,
    pub sqlstate: i32,
    pub edata: *mut sys::ErrorData,
    pub message: *mut c_char,
    pub detail: *mut c_char,
    pub hint: *mut c_char,
}

/// An error on its way to the client.
#[derive(Debug)]
pub enum PgError {
    /// Caught from PostgreSQL; re-thrown unchanged (SQLSTATE, message,
    /// detail, hint, context all kept).
    Pg(*mut sys::ErrorData),
    /// Raised by our own code.
    Raised {
        sqlstate: i32,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
}

pub type PgResult<T> = Result<T, PgError>;

impl PgError {
    pub fn new(sqlstate: i32, message: impl Into<String>) -> Self {
        PgError::Raised {
            sqlstate,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn detail(mut self, text: impl Into<String>) -> Self {
        if let PgError::Raised { detail, .. } = &mut self {
            *detail = Some(text.into());
        }
        self
    }

    pub fn hint(mut self, text: impl Into<String>) -> Self {
        if let PgError::Raised { hint, .. } = &mut self {
            *hint = Some(text.into());
        }
        self
    }

    pub fn sqlstate(&self) -> i32 {
        match self {
            // SAFETY: edata was produced by CopyErrorData and is never freed
            // while the PgError is alive.
            PgError::Pg(ed) => unsafe { (**ed).sqlerrcode },
            PgError::Raised { sqlstate, .. } => *sqlstate,
        }
    }

    fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let what = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown panic payload".to_string()
        };
        let location = PANIC_LOCATION.with(|l| l.borrow_mut().take());
        let detail = location.map(|l| format!("Panic at {l}."));
        let mut e = PgError::new(
            crate::pg::error::codes::INTERNAL_ERROR,
            format!("clustered_pg internal error: {what}"),
        )
        .hint("This is a bug in clustered_pg; the statement was aborted and the session is intact. Please report it with the server log.");
        if let Some(d) = detail {
            e = e.detail(d);
        }
        e
    }

    /// Moves the error into `st` as C data, allocated in the current memory
    /// context so it outlives every Rust frame.
    fn store(self, st: &mut CpgStatus) {
        match self {
            PgError::Pg(ed) => {
                st.kind = 1;
                st.edata = ed;
            }
            PgError::Raised {
                sqlstate,
                message,
                detail,
                hint,
            } => {
                let copy = |s: &str| -> PgResult<*mut c_char> {
                    let (p, n) = (s.as_ptr() as *const c_char, s.len());
                    // SAFETY: pnstrdup copies n bytes and NUL-terminates.
                    guard(|| unsafe { sys::pnstrdup(p, n) })
                };
                let all = (|| -> PgResult<_> {
                    Ok((
                        copy(&message)?,
                        detail.as_deref().map(copy).transpose()?,
                        hint.as_deref().map(copy).transpose()?,
                    ))
                })();
                match all {
                    Ok((m, d, h)) => {
                        st.kind = 2;
                        st.sqlstate = sqlstate;
                        st.message = m;
                        st.detail = d.unwrap_or(std::ptr::null_mut());
                        st.hint = h.unwrap_or(std::ptr::null_mut());
                    }
                    // Out of memory while copying: report that instead.
                    Err(PgError::Pg(ed)) => {
                        st.kind = 1;
                        st.edata = ed;
                    }
                    Err(PgError::Raised { .. }) => unreachable!("guard only yields Pg errors"),
                }
            }
        }
    }
}

thread_local! {
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the default panic hook, which would print to the server's
/// stderr (and, with RUST_BACKTRACE set, spend ~100 ms on a backtrace).
/// The location is kept for the error's DETAIL instead.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_LOCATION.with(|cell| *cell.borrow_mut() = loc);
    }));
}

/// Runs one PostgreSQL call under `PG_TRY`.
///
/// The closure must be `Copy`: that forbids captures with destructors at
/// compile time, so a `longjmp` out of it can only skip this trampoline and
/// the closure itself. Keep it to the PostgreSQL call: a panic inside it
/// cannot unwind through C and aborts the backend.
#[inline]
pub fn guard<R, F>(f: F) -> PgResult<R>
where
    F: FnOnce() -> R + Copy,
{
    struct Frame<F, R> {
        f: MaybeUninit<F>,
        out: MaybeUninit<R>,
    }
    unsafe extern "C" fn trampoline<F: FnOnce() -> R + Copy, R>(arg: *mut c_void) {
        // SAFETY: arg is the Frame below, alive for the whole cpg_try call.
        let frame = unsafe { &mut *(arg as *mut Frame<F, R>) };
        let f = unsafe { frame.f.assume_init_read() };
        frame.out.write(f());
    }
    let mut frame = Frame::<F, R> {
        f: MaybeUninit::new(f),
        out: MaybeUninit::uninit(),
    };
    // SAFETY: cpg_try calls trampoline exactly once, or catches its error.
    let ed = unsafe {
        sys::cpg_try(
            trampoline::<F, R>,
            &mut frame as *mut Frame<F, R> as *mut c_void,
        )
    };
    if ed.is_null() {
        // SAFETY: no error means the trampoline ran to completion.
        Ok(unsafe { frame.out.assume_init() })
    } else {
        Err(PgError::Pg(ed))
    }
}

/// The body of every exported entry point: runs `f`, turns a panic or an
/// error into `st` for the C wrapper to raise, and returns `fallback` then.
pub fn entry<R>(st: *mut CpgStatus, fallback: R, f: impl FnOnce() -> PgResult<R>) -> R {
    let outcome = catch_unwind(AssertUnwindSafe(f));
    let err = match outcome {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(payload) => PgError::from_panic(payload),
    };
    // SAFETY: the C wrapper passes a pointer to its own zeroed status.
    if let Some(st) = unsafe { st.as_mut() } {
        err.store(st);
    }
    fallback
}

/// Checks for query cancel / termination between units of long work.
pub fn check_for_interrupts() -> PgResult<()> {
    // SAFETY: plain call; may ereport (cancel), which guard catches.
    guard(|| unsafe { sys::cpg_check_for_interrupts() })
}

/// SQLSTATE codes we raise (the ERRCODE_* macros of utils/errcodes.h are
/// not visible to bindgen).
pub mod codes {
    /// MAKE_SQLSTATE of a five-character code.
    pub const fn sqlstate(code: &[u8; 5]) -> i32 {
        let mut v = 0i32;
        let mut i = 0;
        while i < 5 {
            v += (((code[i] - b'0') & 0x3F) as i32) << (6 * i);
            i += 1;
        }
        v
    }
    pub const INVALID_TEXT_REPRESENTATION: i32 = sqlstate(b"22P02");
    pub const INVALID_BINARY_REPRESENTATION: i32 = sqlstate(b"22P03");
    pub const NUMERIC_VALUE_OUT_OF_RANGE: i32 = sqlstate(b"22003");
    pub const NULL_VALUE_NOT_ALLOWED: i32 = sqlstate(b"22004");
    pub const INVALID_PARAMETER_VALUE: i32 = sqlstate(b"22023");
    pub const STRING_DATA_LENGTH_MISMATCH: i32 = sqlstate(b"22026");
    pub const FEATURE_NOT_SUPPORTED: i32 = sqlstate(b"0A000");
    pub const WRONG_OBJECT_TYPE: i32 = sqlstate(b"42809");
    pub const UNDEFINED_OBJECT: i32 = sqlstate(b"42704");
    pub const DATATYPE_MISMATCH: i32 = sqlstate(b"42804");
    pub const INSUFFICIENT_PRIVILEGE: i32 = sqlstate(b"42501");
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: i32 = sqlstate(b"55000");
    pub const INDEX_CORRUPTED: i32 = sqlstate(b"XX002");
    pub const DATA_CORRUPTED: i32 = sqlstate(b"XX001");
    pub const INTERNAL_ERROR: i32 = sqlstate(b"XX000");
    pub const PROGRAM_LIMIT_EXCEEDED: i32 = sqlstate(b"54000");
    pub const INVALID_OBJECT_DEFINITION: i32 = sqlstate(b"42P17");
    pub const NOT_NULL_VIOLATION: i32 = sqlstate(b"23502");
}

/// Emits a WARNING (message and hint) to the client and the log.
pub fn warning(message: &str, hint: &str) -> PgResult<()> {
    let m = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    let h = std::ffi::CString::new(hint.replace('\0', " ")).unwrap_or_default();
    let (mp, hp) = (m.as_ptr(), h.as_ptr());
    // SAFETY: both strings outlive the call; a WARNING does not longjmp.
    guard(|| unsafe { sys::cpg_warning(mp, hp) })
}
