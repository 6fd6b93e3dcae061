//! clustered_pk_index: a sparse, exact key → heap-block map in its own
//! GenericXLog-logged pages (DESIGN.md §3). One file per callback group.

pub mod build;
pub mod cost;
pub mod insert;
pub mod map;
pub mod nulls;
pub mod scan;
pub mod vacuum;
