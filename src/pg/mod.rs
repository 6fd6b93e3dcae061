//! The only place that touches PostgreSQL: bindings, the error boundary,
//! datum conversion and small safe wrappers over server APIs.

pub mod buffer;
pub mod datum;
pub mod error;
pub mod heap;
pub mod pvec;
pub mod rel;
pub mod srf;
pub mod sys;
