/*
 * index_am.c: the clustered_pk_index routine struct, its reloptions, and C
 * wrappers that call the Rust callbacks (src/am/index/) and raise their
 * errors after the Rust frames have returned. Fields that differ between
 * majors are set here under PG_VERSION_NUM, not in Rust.
 */
#include "postgres.h"

#include "fmgr.h"
#include "access/amapi.h"
#include "access/itup.h"
#include "access/reloptions.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "commands/vacuum.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "access/xloginsert.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "catalog/pg_statistic.h"
#include "access/htup_details.h"
#include "parser/parsetree.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "utils/catcache.h"
#include "utils/regproc.h"
#include "utils/builtins.h"

#include "cpg.h"

extern void cpg_raise(CpgStatus *st);
extern void cpg_index_am_init(void);
extern Buffer cpg_extend_index(Relation index);
extern void cpg_write_init_fork_page(Relation index, const char *image);
extern double cpg_index_build_scan(Relation heap, Relation index, IndexInfo *info,
								   IndexBuildCallback cb, void *state);
extern bytea *cpg_index_options(Datum reloptions, bool validate);

static relopt_kind cpg_relopt_kind;

/* Registers the index options; called once from _PG_init. */
void
cpg_index_am_init(void)
{
	cpg_relopt_kind = add_reloption_kind();
	add_int_reloption(cpg_relopt_kind, "split_threshold",
					  "Rows a segment holds before it splits",
					  SPLIT_THRESHOLD_DEFAULT, SPLIT_THRESHOLD_MIN, SPLIT_THRESHOLD_MAX,
					  ShareUpdateExclusiveLock);
	add_int_reloption(cpg_relopt_kind, "target_fillfactor",
					  "How full (percent) placement fills a heap page",
					  TARGET_FILLFACTOR_DEFAULT, TARGET_FILLFACTOR_MIN, TARGET_FILLFACTOR_MAX,
					  ShareUpdateExclusiveLock);
	add_int_reloption(cpg_relopt_kind, "auto_repack_interval",
					  "Seconds after which a fragmented segment is due for repack (0: never)",
					  AUTO_REPACK_INTERVAL_DEFAULT, AUTO_REPACK_INTERVAL_MIN,
					  AUTO_REPACK_INTERVAL_MAX, ShareUpdateExclusiveLock);
}

bytea *
cpg_index_options(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"split_threshold", RELOPT_TYPE_INT, offsetof(CpgIndexOptions, split_threshold)},
		{"target_fillfactor", RELOPT_TYPE_INT, offsetof(CpgIndexOptions, target_fillfactor)},
		{"auto_repack_interval", RELOPT_TYPE_INT, offsetof(CpgIndexOptions, auto_repack_interval)},
	};

	return (bytea *) build_reloptions(reloptions, validate, cpg_relopt_kind,
									  sizeof(CpgIndexOptions), tab, lengthof(tab));
}

/* A new, zeroed, exclusively locked block at the end of the index. */
Buffer
cpg_extend_index(Relation index)
{
#if PG_VERSION_NUM >= 160000
	return ExtendBufferedRel(BMR_REL(index), MAIN_FORKNUM, NULL, EB_LOCK_FIRST);
#else
	Buffer		buf;

	LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBuffer(index, P_NEW);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	UnlockRelationForExtension(index, ExclusiveLock);
	return buf;
#endif
}

/* Appends one page image to the init fork of an unlogged index, WAL-logged. */
void
cpg_write_init_fork_page(Relation index, const char *image)
{
	Buffer		buf;

#if PG_VERSION_NUM >= 160000
	buf = ExtendBufferedRel(BMR_REL(index), INIT_FORKNUM, NULL,
							EB_LOCK_FIRST | EB_SKIP_EXTENSION_LOCK);
#else
	buf = ReadBufferExtended(index, INIT_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
#endif
	START_CRIT_SECTION();
	memcpy(BufferGetPage(buf), image, BLCKSZ);
	MarkBufferDirty(buf);
	log_newpage_buffer(buf, true);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buf);
}

double
cpg_index_build_scan(Relation heap, Relation index, IndexInfo *info,
					 IndexBuildCallback cb, void *state)
{
	return table_index_build_scan(heap, index, info, true, true, cb, state, NULL);
}

/* C wrappers: call the Rust callback, then raise what it reported. */

static IndexBuildResult *
w_ambuild(Relation heap, Relation index, IndexInfo *info)
{
	CpgStatus	st = {0};
	IndexBuildResult *r = rs_ambuild(heap, index, info, &st);

	cpg_raise(&st);
	return r;
}

static void
w_ambuildempty(Relation index)
{
	CpgStatus	st = {0};

	rs_ambuildempty(index, &st);
	cpg_raise(&st);
}

static bool
w_aminsert(Relation index, Datum *values, bool *isnull, ItemPointer tid,
		   Relation heap, IndexUniqueCheck check, bool unchanged, IndexInfo *info)
{
	CpgStatus	st = {0};
	bool		r = rs_aminsert(index, values, isnull, tid, heap, &st);

	cpg_raise(&st);
	return r;
}

static IndexBulkDeleteResult *
w_ambulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
			   IndexBulkDeleteCallback callback, void *callback_state)
{
	CpgStatus	st = {0};
	IndexBulkDeleteResult *r = rs_ambulkdelete(info, stats, callback, callback_state, &st);

	cpg_raise(&st);
	return r;
}

static IndexBulkDeleteResult *
w_amvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	CpgStatus	st = {0};
	IndexBulkDeleteResult *r = rs_amvacuumcleanup(info, stats, &st);

	cpg_raise(&st);
	return r;
}

static void
w_amcostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				 Cost *startup, Cost *total, Selectivity *selectivity,
				 double *correlation, double *pages)
{
	CpgStatus	st = {0};

	rs_amcostestimate(root, path, loop_count, startup, total, selectivity,
					  correlation, pages, &st);
	cpg_raise(&st);
}

static bytea *
w_amoptions(Datum reloptions, bool validate)
{
	return cpg_index_options(reloptions, validate);
}

static bool
is_integer_type(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID;
}

/*
 * amvalidate: the operator family may hold only search operators of btree
 * strategies 1..5 between integer types and no support functions, and the
 * operator class must have all five strategies for its own type. Problems
 * are reported as INFO, as PostgreSQL's own AMs do.
 */
static bool
w_amvalidate(Oid opclassoid)
{
	HeapTuple	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	Form_pg_opclass classform;
	Oid			family,
				intype;
	CatCList   *oprlist,
			   *proclist;
	bool		ok = true;
	bool		have[6] = {false};
	int			i;

	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	family = classform->opcfamily;
	intype = classform->opcintype;

	if (!is_integer_type(intype))
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("clustered_pk_index operator class %s is for type %s; only smallint, integer and bigint are supported",
						NameStr(classform->opcname), format_type_be(intype))));
		ok = false;
	}

	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(family));
	for (i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop op = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

		if (op->amopstrategy < 1 || op->amopstrategy > 5 ||
			op->amoppurpose != AMOP_SEARCH ||
			!is_integer_type(op->amoplefttype) || !is_integer_type(op->amoprighttype))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("clustered_pk_index operator family of %s holds operator %s with strategy %d, which it cannot use",
							NameStr(classform->opcname), format_operator(op->amopopr),
							op->amopstrategy)));
			ok = false;
			continue;
		}
		if (op->amoplefttype == intype && op->amoprighttype == intype)
			have[op->amopstrategy] = true;
	}
	ReleaseCatCacheList(oprlist);

	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(family));
	if (proclist->n_members > 0)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("clustered_pk_index operator family of %s has support functions; it uses none",
						NameStr(classform->opcname))));
		ok = false;
	}
	ReleaseCatCacheList(proclist);

	for (i = 1; i <= 5; i++)
		if (!have[i])
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("clustered_pk_index operator class %s is missing strategy %d",
							NameStr(classform->opcname), i)));
			ok = false;
		}
	ReleaseSysCache(classtup);
	return ok;
}

static IndexScanDesc
w_ambeginscan(Relation index, int nkeys, int norderbys)
{
	CpgStatus	st = {0};
	IndexScanDesc r = rs_ambeginscan(index, nkeys, norderbys, &st);

	cpg_raise(&st);
	return r;
}

static void
w_amrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
{
	CpgStatus	st = {0};

	rs_amrescan(scan, keys, nkeys, &st);
	cpg_raise(&st);
}

static int64
w_amgetbitmap(IndexScanDesc scan, TIDBitmap *tbm)
{
	CpgStatus	st = {0};
	int64		r = rs_amgetbitmap(scan, tbm, &st);

	cpg_raise(&st);
	return r;
}

static bool
w_amgettuple(IndexScanDesc scan, ScanDirection direction)
{
	CpgStatus	st = {0};
	bool		r = rs_amgettuple(scan, (int) direction, &st);

	cpg_raise(&st);
	return r;
}

static void
w_ammarkpos(IndexScanDesc scan)
{
	CpgStatus	st = {0};

	rs_ammarkpos(scan, &st);
	cpg_raise(&st);
}

static void
w_amrestrpos(IndexScanDesc scan)
{
	CpgStatus	st = {0};

	rs_amrestrpos(scan, &st);
	cpg_raise(&st);
}

#if PG_VERSION_NUM >= 180000
/*
 * Our strategies are btree's (1 <, 2 <=, 3 =, 4 >=, 5 >), so the compare
 * types map one to one. PostgreSQL 18 asks through these to learn that the
 * index's order is btree's (plancat's sortopfamily lookup).
 */
static CompareType
w_amtranslatestrategy(StrategyNumber strategy, Oid opfamily)
{
	return (strategy >= 1 && strategy <= 5) ? (CompareType) strategy : COMPARE_INVALID;
}

static StrategyNumber
w_amtranslatecmptype(CompareType cmptype, Oid opfamily)
{
	return (cmptype >= COMPARE_LT && cmptype <= COMPARE_GT) ? (StrategyNumber) cmptype : InvalidStrategy;
}
#endif

static void
w_amendscan(IndexScanDesc scan)
{
	CpgStatus	st = {0};

	rs_amendscan(scan, &st);
	cpg_raise(&st);
}

PG_FUNCTION_INFO_V1(cpg_clustered_pk_index_handler);
Datum
cpg_clustered_pk_index_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *am = makeNode(IndexAmRoutine);

	am->amstrategies = 5;
	am->amsupport = 0;
	am->amoptsprocnum = 0;
	/*
	 * Ordered scans (scan.rs): key order, both directions, mark/restore.
	 * A scan without conditions is allowed (ORDER BY, merge joins, CLUSTER)
	 * and returns rows with NULL keys last, though they are not mapped.
	 */
	am->amcanorder = true;
	am->amcanorderbyop = false;
	am->amcanbackward = true;
	am->amcanunique = false;
	am->amcanmulticol = false;
	am->amoptionalkey = true;
	am->amsearcharray = false;
	am->amsearchnulls = false;
	am->amstorage = false;
	am->amclusterable = true;
	am->ampredlocks = false;
	am->amcanparallel = false;
	am->amcaninclude = false;
	am->amusemaintenanceworkmem = true;
	am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_CLEANUP;
	am->amkeytype = InvalidOid;
#if PG_VERSION_NUM >= 160000
	am->amsummarizing = false;
#endif
#if PG_VERSION_NUM >= 170000
	am->amcanbuildparallel = false;
	am->aminsertcleanup = NULL;
#endif
#if PG_VERSION_NUM >= 180000
	am->amgettreeheight = NULL;
	am->amcanhash = false;
	am->amconsistentequality = true;
	am->amconsistentordering = true;
	am->amtranslatestrategy = w_amtranslatestrategy;
	am->amtranslatecmptype = w_amtranslatecmptype;
#endif

	am->ambuild = w_ambuild;
	am->ambuildempty = w_ambuildempty;
	am->aminsert = w_aminsert;
	am->ambulkdelete = w_ambulkdelete;
	am->amvacuumcleanup = w_amvacuumcleanup;
	am->amcanreturn = NULL;
	am->amcostestimate = w_amcostestimate;
	am->amoptions = w_amoptions;
	am->amproperty = NULL;
	am->ambuildphasename = NULL;
	am->amvalidate = w_amvalidate;
	am->amadjustmembers = NULL;
	am->ambeginscan = w_ambeginscan;
	am->amrescan = w_amrescan;
	am->amgettuple = w_amgettuple;
	am->amgetbitmap = w_amgetbitmap;
	am->amendscan = w_amendscan;
	am->ammarkpos = w_ammarkpos;
	am->amrestrpos = w_amrestrpos;
	am->amestimateparallelscan = NULL;
	am->aminitparallelscan = NULL;
	am->amparallelrescan = NULL;

	PG_RETURN_POINTER(am);
}

extern Oid	cpg_other_index_with_am(Relation heap, Oid amoid, Oid self);
extern double cpg_index_correlation(PlannerInfo *root, IndexOptInfo *index);
extern bool cpg_path_is_index_only(IndexPath *path);
extern bool cpg_path_key_range(IndexPath *path, bool *equality, int64 *lo, int64 *hi);

/*
 * The path's index conditions, for the cost estimate (cost.rs): whether one
 * is `key = value` (such a scan returns one key, in any order of its
 * tuples, so it needs no ordering read of the heap: scan.rs), and the key
 * range [lo, hi] they allow when every one compares the key with a
 * constant (the return value; false with parameters or anything else), so
 * the planner can ask the map how many heap blocks the scan will read.
 * Index conditions have the key on the left.
 */
bool
cpg_path_key_range(IndexPath *path, bool *equality, int64 *lo, int64 *hi)
{
	ListCell   *lc;
	Oid			opfamily = path->indexinfo->opfamily[0];
	bool		constant = true;

	*equality = false;
	*lo = PG_INT64_MIN;
	*hi = PG_INT64_MAX;
	foreach(lc, path->indexclauses)
	{
		IndexClause *ic = lfirst_node(IndexClause, lc);
		ListCell   *lq;

		foreach(lq, ic->indexquals)
		{
			RestrictInfo *ri = lfirst_node(RestrictInfo, lq);
			OpExpr	   *op;
			Const	   *c;
			int64		v;
			int			strategy;

			if (!IsA(ri->clause, OpExpr))
			{
				constant = false;
				continue;
			}
			op = (OpExpr *) ri->clause;
			strategy = get_op_opfamily_strategy(op->opno, opfamily);
			if (strategy == BTEqualStrategyNumber)
				*equality = true;
			if (list_length(op->args) != 2 || !IsA(lsecond(op->args), Const))
			{
				constant = false;
				continue;
			}
			c = (Const *) lsecond(op->args);
			if (c->constisnull)
			{
				constant = false;
				continue;
			}
			switch (c->consttype)
			{
				case INT2OID:
					v = DatumGetInt16(c->constvalue);
					break;
				case INT4OID:
					v = DatumGetInt32(c->constvalue);
					break;
				case INT8OID:
					v = DatumGetInt64(c->constvalue);
					break;
				default:
					constant = false;
					continue;
			}
			switch (strategy)
			{
				case BTLessStrategyNumber:
					if (v == PG_INT64_MIN)
						constant = false;
					else
						*hi = Min(*hi, v - 1);
					break;
				case BTLessEqualStrategyNumber:
					*hi = Min(*hi, v);
					break;
				case BTEqualStrategyNumber:
					*lo = Max(*lo, v);
					*hi = Min(*hi, v);
					break;
				case BTGreaterEqualStrategyNumber:
					*lo = Max(*lo, v);
					break;
				case BTGreaterStrategyNumber:
					if (v == PG_INT64_MAX)
						constant = false;
					else
						*lo = Max(*lo, v + 1);
					break;
				default:
					constant = false;
			}
		}
	}
	return constant;
}
extern void cpg_set_placeholder_itup(IndexScanDesc scan);

/*
 * The index stores no keys, so it can return no column (amcanreturn is
 * NULL); PostgreSQL still plans an index-only scan when a query needs no
 * column at all (count(*)), and such a scan would read every heap block
 * and sort it for nothing. The cost estimate refuses those paths.
 */
bool
cpg_path_is_index_only(IndexPath *path)
{
	return path->path.pathtype == T_IndexOnlyScan;
}

/*
 * If an index-only scan runs anyway (every other path disabled), it needs
 * an index tuple per row though it reads no column from it: one NULL tuple
 * serves them all.
 */
void
cpg_set_placeholder_itup(IndexScanDesc scan)
{
	Datum		value = (Datum) 0;
	bool		isnull = true;

	if (scan->xs_itupdesc == NULL)
		scan->xs_itupdesc = RelationGetDescr(scan->indexRelation);
	if (scan->xs_itup == NULL)
		scan->xs_itup = index_form_tuple(scan->xs_itupdesc, &value, &isnull);
}

/* Another index of `heap` using access method `amoid`, other than `self`. */
Oid
cpg_other_index_with_am(Relation heap, Oid amoid, Oid self)
{
	List	   *indexes = RelationGetIndexList(heap);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		Oid			idx = lfirst_oid(lc);
		HeapTuple	tup;

		if (idx == self)
			continue;
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(idx));
		if (!HeapTupleIsValid(tup))
			continue;
		if (((Form_pg_class) GETSTRUCT(tup))->relam == amoid)
			found = idx;
		ReleaseSysCache(tup);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	return found;
}

/*
 * Correlation of the indexed column from pg_statistic, as btree's cost
 * estimate reads it (0 when there are no statistics).
 */
double
cpg_index_correlation(PlannerInfo *root, IndexOptInfo *index)
{
	VariableStatData vardata;
	double		correlation = 0.0;
	RangeTblEntry *rte = planner_rt_fetch(index->rel->relid, root);
	AttrNumber	colnum = index->indexkeys[0];

	if (colnum == 0 || rte->rtekind != RTE_RELATION)
		return 0.0;
	memset(&vardata, 0, sizeof(vardata));
	vardata.statsTuple = SearchSysCache3(STATRELATTINH,
										 ObjectIdGetDatum(rte->relid),
										 Int16GetDatum(colnum),
										 BoolGetDatum(rte->inh));
	vardata.freefunc = ReleaseSysCache;
	if (HeapTupleIsValid(vardata.statsTuple))
	{
		AttStatsSlot sslot;

		if (get_attstatsslot(&sslot, vardata.statsTuple, STATISTIC_KIND_CORRELATION,
							 InvalidOid, ATTSTATSSLOT_NUMBERS))
		{
			if (sslot.nnumbers > 0)
				correlation = sslot.numbers[0];
			free_attstatsslot(&sslot);
		}
	}
	ReleaseVariableStats(vardata);
	return correlation;
}
