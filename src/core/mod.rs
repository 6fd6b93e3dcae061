//! Pure Rust: no PostgreSQL symbol may be referenced from here, so that every
//! decision can be unit-tested without a server.

pub mod cost;
pub mod counters;
pub mod directory;
pub mod fasthash;
pub mod layout;
pub mod locator;
pub mod options;
pub mod ordered;
pub mod page_delta;
pub mod page_ranges;
pub mod pending;
pub mod placement;
pub mod plan;
pub mod range_scan;
pub mod recount;
pub mod repack;
pub mod seedapi;
pub mod segmap;
