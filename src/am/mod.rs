//! Access methods: `index` is clustered_pk_index (the sparse key → block
//! map). Callbacks gather inputs from PostgreSQL and apply decisions made
//! in `core`.

pub mod index;
pub mod table;
