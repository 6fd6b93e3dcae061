/*
 * shim.c: the C side of clustered_pg.
 *
 * Everything here is glue that Rust cannot express portably: the module
 * magic, the PG_TRY trampoline (cpg_try), raising an error after every Rust
 * frame has returned (cpg_raise), fmgr wrappers for SQL functions, and
 * wrappers of macros and static inlines whose bodies differ between majors.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/amapi.h"
#include "access/tableam.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
#include "utils/guc.h"

#include "cpg.h"

#if PG_VERSION_NUM >= 180000
PG_MODULE_MAGIC_EXT(.name = "clustered_pg", .version = "0.1.0");
#else
PG_MODULE_MAGIC;
#endif

extern ErrorData *cpg_try(void (*cb) (void *), void *arg);
extern void cpg_raise(CpgStatus *st);
extern void cpg_check_for_interrupts(void);
extern void _PG_init(void);
extern void cpg_index_am_init(void);
extern void cpg_table_am_init(void);
extern void cpg_range_scan_init(void);
extern void cpg_repack_worker_init(void);

/*
 * Run cb(arg) under PG_TRY. On error: back to the caller's memory context,
 * copy the error there, flush the error state, and return the copy. Only
 * this frame and the callback's own (Copy, destructor-free) frames are
 * skipped by the longjmp.
 */
ErrorData *
cpg_try(void (*cb) (void *), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		cb(arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	return edata;
}

/* Raise what a Rust entry point reported; returns only when it reported success. */
void
cpg_raise(CpgStatus *st)
{
	if (st->kind == 1)
		ReThrowError(st->edata);
	if (st->kind == 2)
		ereport(ERROR,
				(errcode(st->sqlstate),
				 errmsg_internal("%s", st->message),
				 st->detail ? errdetail_internal("%s", st->detail) : 0,
				 st->hint ? errhint("%s", st->hint) : 0));
}

void
cpg_check_for_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
}

/*
 * clustered_pg.debug_dir_capacity: a developer setting (superuser only)
 * that lowers how many entries the metapage (n) and a directory page (n + 1)
 * take before the segment directory grows a level or splits a directory page,
 * so tests reach a two-level directory with a small table. 0 (default) =
 * the real capacities. Read by src/am/index/map.rs dir_caps().
 */
extern int cpg_debug_dir_capacity;
int			cpg_debug_dir_capacity = 0;

void
_PG_init(void)
{
	CpgStatus	st = {0};

	DefineCustomIntVariable("clustered_pg.debug_dir_capacity",
							"Developer setting: lowers the capacity of the segment directory's pages (0 = real capacity).",
							"Only for testing the two-level directory with small tables.",
							&cpg_debug_dir_capacity,
							0, 0, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	rs_init(&st);
	cpg_index_am_init();
	cpg_table_am_init();
	cpg_range_scan_init();
	cpg_repack_worker_init();
	cpg_raise(&st);
}

/* An SQL function cpg_<name> backed by the Rust export rs_<name>. */
#define CPG_SQL_FUNCTION(name) \
	PG_FUNCTION_INFO_V1(cpg_##name); \
	Datum \
	cpg_##name(PG_FUNCTION_ARGS) \
	{ \
		CpgStatus	st = {0}; \
		Datum		result = rs_##name(fcinfo, &st); \
		cpg_raise(&st); \
		return result; \
	}

CPG_SQL_FUNCTION(version)
CPG_SQL_FUNCTION(observability)
CPG_SQL_FUNCTION(verify)
CPG_SQL_FUNCTION(repack)
CPG_SQL_FUNCTION(directory_stats)

CPG_SQL_FUNCTION(locator_in)
CPG_SQL_FUNCTION(locator_out)
CPG_SQL_FUNCTION(locator_from_bytea)
CPG_SQL_FUNCTION(locator_to_bytea)
CPG_SQL_FUNCTION(locator_pack)
CPG_SQL_FUNCTION(locator_pack_int8)
CPG_SQL_FUNCTION(locator_major)
CPG_SQL_FUNCTION(locator_minor)
CPG_SQL_FUNCTION(locator_to_hex)
CPG_SQL_FUNCTION(locator_advance_major)
CPG_SQL_FUNCTION(locator_next_minor)
CPG_SQL_FUNCTION(locator_cmp)
CPG_SQL_FUNCTION(locator_lt)
CPG_SQL_FUNCTION(locator_le)
CPG_SQL_FUNCTION(locator_eq)
CPG_SQL_FUNCTION(locator_ne)
CPG_SQL_FUNCTION(locator_ge)
CPG_SQL_FUNCTION(locator_gt)

CPG_SQL_FUNCTION(selftest_int4in)
CPG_SQL_FUNCTION(selftest_panic)
CPG_SQL_FUNCTION(selftest_raise)
CPG_SQL_FUNCTION(selftest_drops)
CPG_SQL_FUNCTION(selftest_echo)

/* Segment map (seed API): src/sql/segment_map.rs */
CPG_SQL_FUNCTION(segment_map_of)
CPG_SQL_FUNCTION(segment_map_tids_of)
CPG_SQL_FUNCTION(segment_map_stats)
CPG_SQL_FUNCTION(segment_map_count_repack_due)
CPG_SQL_FUNCTION(segment_map_touch)
CPG_SQL_FUNCTION(segment_map_tids_gc)
CPG_SQL_FUNCTION(segment_map_rebuild_from_index)
CPG_SQL_FUNCTION(segment_map_locator)

/* Wrappers of macros and static inlines whose bodies differ between majors. */
extern Page cpg_buffer_page(Buffer buf);
extern Oid	cpg_index_key_type(Relation index);
extern bool cpg_rel_needs_wal(Relation rel);

Page
cpg_buffer_page(Buffer buf)
{
	return BufferGetPage(buf);
}

Oid
cpg_index_key_type(Relation index)
{
	return TupleDescAttr(RelationGetDescr(index), 0)->atttypid;
}

/* RelationNeedsWAL(): whether GenericXLog advances the LSN of its pages. */
bool
cpg_rel_needs_wal(Relation rel)
{
	return RelationNeedsWAL(rel);
}

extern void cpg_warning(const char *message, const char *hint);

void
cpg_warning(const char *message, const char *hint)
{
	ereport(WARNING,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg_internal("%s", message),
			 errhint("%s", hint)));
}
