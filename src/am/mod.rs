//! Access methods: `index` is clustered_pk_index (the sparse key → block
//! map), `table` is clustered_heap, `range_scan` is the map side of the
//! ClusteredRangeScan custom scan. Callbacks gather inputs from PostgreSQL
//! and apply decisions made in `core`.

pub mod index;
pub mod range_scan;
pub mod table;
