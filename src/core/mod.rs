//! Pure Rust: no PostgreSQL symbol may be referenced from here, so that every
//! decision can be unit-tested without a server.

pub mod counters;
pub mod locator;
pub mod options;
