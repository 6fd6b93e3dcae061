//! Build script: finds PostgreSQL through `PG_CONFIG`, emits `cfg(pgNN)`,
//! generates Rust bindings for the server headers (bindgen) and the C header
//! of our own exports (cbindgen) that the shim includes.
//!
//! Pure modules (`src/core`) do not depend on any of this at run time, but the
//! crate always builds the bindings so that one build serves both the
//! extension and `cargo test`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SUPPORTED: &[u32] = &[15, 16, 17, 18];

fn pg_config(pg_config: &str, arg: &str) -> String {
    let out = Command::new(pg_config)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "clustered_pg: cannot run `{pg_config} {arg}`: {e}\n\
             Set PG_CONFIG to the pg_config of the PostgreSQL to build against \
             (e.g. PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config), or run regress/deps.sh."
            )
        });
    if !out.status.success() {
        panic!("clustered_pg: `{pg_config} {arg}` failed");
    }
    String::from_utf8(out.stdout)
        .expect("pg_config output is UTF-8")
        .trim()
        .to_string()
}

fn version_num(include_server: &Path) -> u32 {
    let header = include_server.join("pg_config.h");
    let text = std::fs::read_to_string(&header)
        .unwrap_or_else(|e| panic!("clustered_pg: cannot read {}: {e}", header.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("#define PG_VERSION_NUM "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("clustered_pg: no PG_VERSION_NUM in {}", header.display()))
}

/// Functions, types and constants of PostgreSQL the Rust side may call or
/// name. Allowlisting keeps the generated file small and fast to compile;
/// dependent types are pulled in automatically.
const FUNCTIONS: &[&str] = &[
    "ConditionalLockRelationOid",
    "IndexGetRelation",
    "InitMaterializedSRF",
    "pg_class_aclcheck",
    "GetUserId",
    "palloc",
    "palloc0",
    "pfree",
    "pstrdup",
    "pnstrdup",
    "repalloc",
    "repalloc_huge",
    "MemoryContextAllocHuge",
    "MemoryContextSwitchTo",
    "AllocSetContextCreateInternal",
    "MemoryContextDelete",
    "MemoryContextReset",
    "errstart",
    "errfinish",
    "errcode",
    "errmsg",
    "errmsg_internal",
    "errdetail",
    "errhint",
    "CopyErrorData",
    "FlushErrorState",
    "FreeErrorData",
    "ReThrowError",
    "DirectFunctionCall1Coll",
    "DirectFunctionCall2Coll",
    "int4in",
    "int8in",
    "textout",
    "cstring_to_text",
    "pg_detoast_datum_packed",
    "pg_detoast_datum",
    "cstring_to_text_with_len",
    "text_to_cstring",
    "get_fn_expr_argtype",
    "get_typlen",
    "get_rel_name",
    "get_rel_relkind",
    "get_namespace_name",
    "get_rel_namespace",
    "format_type_be",
    "ReadBuffer",
    "ReadBufferExtended",
    "ReleaseBuffer",
    "UnlockReleaseBuffer",
    "LockBuffer",
    "MarkBufferDirty",
    "BufferGetBlockNumber",
    "BufferGetPage",
    "ExtendBufferedRel",
    "RelationGetNumberOfBlocksInFork",
    "PageInit",
    "GenericXLogStart",
    "GenericXLogRegisterBuffer",
    "GenericXLogFinish",
    "GenericXLogAbort",
    "log_newpage_range",
    "LockRelationForExtension",
    "UnlockRelationForExtension",
    "GetFreeIndexPage",
    "RecordFreeIndexPage",
    "IndexFreeSpaceMapVacuum",
    "relation_open",
    "relation_close",
    "table_open",
    "table_close",
    "index_open",
    "index_close",
    "try_relation_open",
    "RelationGetIndexList",
    "list_free",
    "build_reloptions",
    "add_int_reloption",
    "add_reloption_kind",
    "table_index_build_scan",
    "table_beginscan_catalog",
    "table_slot_create",
    "ExecDropSingleTupleTableSlot",
    "slot_getsomeattrs_int",
    "heap_getnext",
    "GetHeapamTableAmRoutine",
    "heapam_tableam_handler",
    "tbm_add_page",
    "tbm_add_tuples",
    "genericcostestimate",
    "get_tablespace_page_costs",
    "clauselist_selectivity",
    "pgstat_progress_update_param",
    "pgstat_progress_update_multi_param",
    "GetCurrentTimestamp",
    "GetCurrentStatementStartTimestamp",
    "timestamptz_to_str",
    "pg_class_aclcheck",
    "GetUserId",
    "object_ownercheck",
    "pg_class_ownercheck",
    "aclcheck_error",
    "RelationIsVisible",
    "GetTransactionSnapshot",
    "GetActiveSnapshot",
    "RegisterSnapshot",
    "UnregisterSnapshot",
    "CommandCounterIncrement",
    "CHECK_FOR_INTERRUPTS",
    "ProcessInterrupts",
    "SPI_connect",
    "SPI_finish",
    "SPI_execute",
    "init_MultiFuncCall",
    "per_MultiFuncCall",
    "end_MultiFuncCall",
    "get_call_result_type",
    "BlessTupleDesc",
    "heap_form_tuple",
    "HeapTupleHeaderGetDatum",
    "CreateTemplateTupleDesc",
    "TupleDescInitEntry",
    "InitMaterializedSRF",
    "tuplestore_putvalues",
    "elog_start",
    "elog_finish",
    "index_getprocinfo",
    "FunctionCall2Coll",
    "RelationGetIndexScan",
    "IndexScanEnd",
    "heap_fetch",
    "heap_hot_search_buffer",
    "HeapTupleSatisfiesVisibility",
    "table_relation_size",
    "visibilitymap_get_status",
    "RelationGetIndexExpressions",
    "vacuum_delay_point",
    "IndexBuildHeapScan",
    "RelationGetNumberOfBlocksInFork",
];
const TYPES: &[&str] = &[
    "FunctionCallInfo",
    "FunctionCallInfoBaseData",
    "Datum",
    "NullableDatum",
    "Oid",
    "ErrorData",
    "MemoryContext",
    "Relation",
    "RelationData",
    "Buffer",
    "Page",
    "BlockNumber",
    "OffsetNumber",
    "ItemPointerData",
    "IndexAmRoutine",
    "TableAmRoutine",
    "IndexBuildResult",
    "IndexInfo",
    "IndexScanDesc",
    "IndexScanDescData",
    "ScanKey",
    "ScanKeyData",
    "TIDBitmap",
    "IndexVacuumInfo",
    "IndexBulkDeleteResult",
    "IndexBulkDeleteCallback",
    "PlannerInfo",
    "IndexPath",
    "Cost",
    "Selectivity",
    "GenericCostEstimate",
    "GenericXLogState",
    "PageHeaderData",
    "HeapTupleData",
    "HeapTupleHeaderData",
    "TupleTableSlot",
    "TupleDesc",
    "bytea",
    "text",
    "varlena",
    "relopt_kind",
    "relopt_parse_elt",
    "relopt_type",
    "ScanDirection",
    "IndexUniqueCheck",
    "ReturnSetInfo",
    "FuncCallContext",
    "AttInMetadata",
    "TimestampTz",
    "AclResult",
    "AclMode",
    "ForkNumber",
    "ReadBufferMode",
    "BufferAccessStrategy",
    "ItemIdData",
    "BulkInsertState",
    "BulkInsertStateData",
    "CommandId",
    "TM_FailureData",
    "TM_Result",
    "LockTupleMode",
    "TU_UpdateIndexes",
    "VacuumParams",
    "Snapshot",
    "SnapshotData",
    "pg_atomic_uint64",
    "StrategyNumber",
    "RegProcedure",
    "HeapScanDesc",
    "TableScanDesc",
    "ParallelTableScanDesc",
    "SampleScanState",
    "ValidateIndexState",
    "amvalidate_function",
    "IndexOrderByDistance",
    "ExprContext",
    "EState",
    "ProgressCommandType",
    "GenericCosts",
    "IndexOptInfo",
    "IndexBuildCallback",
    "ItemPointer",
];
const VARS: &[&str] = &[
    "NoLock",
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
    "PG_VERSION_NUM",
    "BLCKSZ",
    "InvalidOid",
    "InvalidBlockNumber",
    "P_NEW",
    "BUFFER_LOCK_.*",
    "GENERIC_XLOG_FULL_IMAGE",
    "INT2OID",
    "INT4OID",
    "INT8OID",
    "BYTEAOID",
    "TEXTOID",
    "RELKIND_.*",
    "HEAP_TABLE_AM_OID",
    "ACL_SELECT",
    "ACL_.*",
    "NAMEDATALEN",
    "MaxHeapTuplesPerPage",
    "MaxBlockNumber",
    "SizeOfPageHeaderData",
    "ERROR",
    "WARNING",
    "NOTICE",
    "LOG",
    "DEBUG1",
    "DEBUG2",
    "FirstOffsetNumber",
    "BTLessStrategyNumber",
    "BTLessEqualStrategyNumber",
    "BTEqualStrategyNumber",
    "BTGreaterEqualStrategyNumber",
    "BTGreaterStrategyNumber",
    "BTMaxStrategyNumber",
    "SK_ISNULL",
    "SK_SEARCHNULL",
    "SK_SEARCHNOTNULL",
    "SK_ROW_HEADER",
    "SK_SEARCHARRAY",
    "RELOPT_KIND_.*",
    "PROGRESS_.*",
    "MAIN_FORKNUM",
    "INDEX_MAX_KEYS",
    "CurrentMemoryContext",
    "TopMemoryContext",
    "CacheMemoryContext",
    "ErrorContext",
    "PG_DETOAST_.*",
    "VARHDRSZ",
    "HEAP_INSERT_.*",
    "TABLE_INSERT_.*",
    "EB_.*",
    "cpu_operator_cost",
    "cpu_index_tuple_cost",
    "random_page_cost",
    "seq_page_cost",
    "cpu_tuple_cost",
];

fn main() {
    println!("cargo:rerun-if-env-changed=PG_CONFIG");
    println!("cargo:rerun-if-env-changed=CPG_GENERATED_DIR");
    println!("cargo:rerun-if-changed=csrc/pg_bindings.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo::rustc-check-cfg=cfg(pg15, pg16, pg17, pg18)");

    let pg_config_bin = env::var("PG_CONFIG").unwrap_or_else(|_| "pg_config".into());
    let include_server = PathBuf::from(pg_config(&pg_config_bin, "--includedir-server"));
    let num = version_num(&include_server);
    let major = num / 10000;
    if !SUPPORTED.contains(&major) {
        panic!(
            "clustered_pg: PostgreSQL {major} (PG_VERSION_NUM {num}, from {pg_config_bin}) is not \
             supported; supported majors: 15, 16, 17, 18. Point PG_CONFIG at a supported server."
        );
    }
    println!("cargo::rustc-cfg=pg{major}");
    println!("cargo::rustc-env=CPG_PG_MAJOR={major}");

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let mut b = bindgen::Builder::default()
        .header("csrc/pg_bindings.h")
        .clang_arg(format!("-I{}", include_server.display()))
        .clang_arg("-Wno-ignored-attributes")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .size_t_is_usize(true);
    for f in FUNCTIONS {
        b = b.allowlist_function(f);
    }
    for t in TYPES {
        b = b.allowlist_type(t);
    }
    for v in VARS {
        b = b.allowlist_var(v);
    }
    b.generate()
        .expect("clustered_pg: bindgen failed on csrc/pg_bindings.h")
        .write_to_file(out.join("pg_bindings.rs"))
        .expect("write bindings");

    let crate_dir = env::var("CARGO_MANIFEST_DIR").unwrap();
    let header_dir = env::var("CPG_GENERATED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| out.clone());
    std::fs::create_dir_all(&header_dir).expect("create generated header dir");
    let config = cbindgen::Config {
        language: cbindgen::Language::C,
        header: Some(
            "/* Generated by cbindgen from the Rust sources of clustered_pg: do not edit. */"
                .into(),
        ),
        include_guard: Some("CLUSTERED_PG_RS_H".into()),
        no_includes: true,
        cpp_compat: false,
        style: cbindgen::Style::Type,
        export: cbindgen::ExportConfig {
            // Read by the C shim's build_reloptions, never passed to Rust.
            include: vec!["CpgIndexOptions".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("clustered_pg: cbindgen failed")
        .write_to_file(header_dir.join("clustered_pg_rs.h"));
}
