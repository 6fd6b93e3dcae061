//! clustered_heap: heap's table AM with directed placement (csrc/table_am.c
//! holds the routine; the decision is `core::placement`).

pub mod placement;
