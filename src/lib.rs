//! clustered_pg: clustered tables for PostgreSQL.
//!
//! Layering (see DESIGN.md §2): `core` holds pure decisions and layouts and
//! is tested with plain `cargo test`; `pg` is the only module that touches
//! PostgreSQL; `sql` holds SQL-callable functions; `am` the access methods.
//! Everything that links against the server is compiled out of unit-test
//! builds, because a test binary cannot resolve PostgreSQL symbols.

// Entry points and wrappers take the raw pointers PostgreSQL hands them
// (Relation, fcinfo, scan descriptors) and are called from C, where an
// `unsafe` marker means nothing; each dereference carries a SAFETY note.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod core;

#[cfg(not(test))]
pub mod am;
#[cfg(not(test))]
pub mod pg;
#[cfg(not(test))]
pub mod sql;
