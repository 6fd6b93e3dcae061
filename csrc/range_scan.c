/*
 * range_scan.c: ClusteredRangeScan, a custom scan that reads the heap
 * blocks a clustered_pk_index names for a key range, each once, in block
 * order, as few TID range scans (one per run of consecutive blocks).
 *
 * Why: PostgreSQL prices a bitmap heap scan as if the heap were
 * unclustered, so with a btree on the same key the planner takes the btree
 * for ranges although the map names fewer blocks; the index's ordered scan
 * reads every block twice. This node is priced from the map itself
 * (src/core/range_scan.rs) and competes fairly with both.
 *
 * Planning (set_rel_pathlist_hook): a plain table with a usable
 * clustered_pk_index and at least one condition `key op expr` (op one of
 * the index family's < <= = >= >, expr without Vars, volatile functions or
 * subplans: constants, parameters, stable expressions) gets one
 * unparameterized, unordered CustomPath. Execution: the bound expressions
 * are evaluated at the first fetch after begin or rescan (so parameters of
 * generic plans and of correlated subqueries work), Rust lists the
 * candidate blocks as runs (src/am/range_scan.rs), and every tuple of those
 * blocks goes through the query's full quals (ExecScan).
 *
 * Executor and planner plumbing stays here in C; Rust only reads the map
 * and decides, behind the usual CpgStatus / cpg_raise boundary.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "storage/predicate.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/spccache.h"

#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#else
#include "commands/explain.h"
#endif

#include "cpg.h"

#define CRS_NAME "ClusteredRangeScan"

extern void cpg_raise(CpgStatus *st);
extern void cpg_range_scan_init(void);
extern double cpg_index_correlation(PlannerInfo *root, IndexOptInfo *index);

/* clustered_pg.enable_range_scan */
static bool crs_enabled = true;
static set_rel_pathlist_hook_type prev_set_rel_pathlist = NULL;

typedef struct CrsState
{
	CustomScanState css;
	Oid			indexoid;
	Relation	index;			/* NULL under EXPLAIN without ANALYZE */
	int			nbounds;
	List	   *bound_states;	/* ExprState per bound, custom_exprs order */
	int		   *strategies;
	Oid		   *types;
	CpgRangeBound *bounds;		/* evaluated values */
	bool		prepared;		/* runs computed for the current bounds */
	CpgBlockRun *runs;
	int			nruns;
	int			next_run;
	bool		in_run;			/* scan is positioned inside runs[next_run - 1] */
	TableScanDesc scan;
	/* For EXPLAIN ANALYZE, summed over every (re)scan. */
	int64		total_blocks;
	int64		total_runs;
	int64		total_segment_pages;
	bool		every_block;
} CrsState;

static Plan *crs_plan_path(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
						   List *tlist, List *clauses, List *custom_plans);
static Node *crs_create_state(CustomScan *cscan);
static void crs_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *crs_exec(CustomScanState *node);
static void crs_end(CustomScanState *node);
static void crs_rescan(CustomScanState *node);
static void crs_explain(CustomScanState *node, List *ancestors, ExplainState *es);

static const CustomPathMethods crs_path_methods = {
	.CustomName = CRS_NAME,
	.PlanCustomPath = crs_plan_path,
};

static const CustomScanMethods crs_scan_methods = {
	.CustomName = CRS_NAME,
	.CreateCustomScanState = crs_create_state,
};

static const CustomExecMethods crs_exec_methods = {
	.CustomName = CRS_NAME,
	.BeginCustomScan = crs_begin,
	.ExecCustomScan = crs_exec,
	.EndCustomScan = crs_end,
	.ReScanCustomScan = crs_rescan,
	.ExplainCustomScan = crs_explain,
};

static int64
crs_datum_int64(Datum d, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

/*
 * A bound the node can evaluate once per scan: an integer (the family's
 * operator takes it), no Var (of this rel: outer references are Params by
 * now), nothing volatile, no subplan.
 */
static bool
crs_bound_ok(Node *expr)
{
	Oid			t = exprType(expr);

	if (t != INT2OID && t != INT4OID && t != INT8OID)
		return false;
	return !contain_var_clause(expr) && !contain_volatile_functions(expr) &&
		!contain_subplans(expr);
}

/*
 * The table must be read through heap's TID range scan into heap's slot
 * type (heap and clustered_heap; the slot type is fixed at plan time).
 */
static bool
crs_table_ok(Oid relid)
{
	Relation	r = table_open(relid, NoLock);
	bool		ok = r->rd_tableam->scan_set_tidrange != NULL &&
		r->rd_tableam->scan_getnextslot_tidrange != NULL &&
		table_slot_callbacks(r) == &TTSOpsBufferHeapTuple;

	table_close(r, NoLock);
	return ok;
}

static void
crs_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	Oid			amoid;
	IndexOptInfo *index = NULL;
	ListCell   *lc;
	List	   *exprs = NIL;
	List	   *strategies = NIL;
	List	   *rinfos = NIL;
	bool		constant = true;
	CpgRangeBound *bounds;
	CpgRangePlan plan = {0};
	CpgStatus	st = {0};
	CustomPath *cp;
	int			i;

	if (prev_set_rel_pathlist)
		prev_set_rel_pathlist(root, rel, rti, rte);

	if (!crs_enabled || rel->baserestrictinfo == NIL || rel->indexlist == NIL)
		return;
	if (rel->reloptkind != RELOPT_BASEREL && rel->reloptkind != RELOPT_OTHER_MEMBER_REL)
		return;
	if (rte->rtekind != RTE_RELATION || rte->inh || rte->tablesample != NULL ||
		(rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_MATVIEW))
		return;
	if (IS_DUMMY_REL(rel))
		return;
	amoid = get_am_oid("clustered_pk_index", true);
	if (!OidIsValid(amoid))
		return;
	foreach(lc, rel->indexlist)
	{
		IndexOptInfo *ix = (IndexOptInfo *) lfirst(lc);

		if (ix->relam == amoid && ix->nkeycolumns == 1 && !ix->hypothetical &&
			(ix->indpred == NIL || ix->predOK))
		{
			index = ix;
			break;
		}
	}
	if (index == NULL)
		return;

	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		OpExpr	   *op;
		Node	   *left,
				   *right,
				   *bound;
		Oid			opno;
		int			strategy;

		if (ri->pseudoconstant || !IsA(ri->clause, OpExpr))
			continue;
		op = (OpExpr *) ri->clause;
		if (list_length(op->args) != 2)
			continue;
		left = linitial(op->args);
		right = lsecond(op->args);
		if (match_index_to_operand(left, 0, index) && crs_bound_ok(right))
		{
			opno = op->opno;
			bound = right;
		}
		else if (match_index_to_operand(right, 0, index) && crs_bound_ok(left))
		{
			/* expr op key == key commutator(op) expr */
			opno = get_commutator(op->opno);
			bound = left;
		}
		else
			continue;
		if (!OidIsValid(opno))
			continue;
		strategy = get_op_opfamily_strategy(opno, index->opfamily[0]);
		if (strategy < BTLessStrategyNumber || strategy > BTGreaterStrategyNumber)
			continue;
		exprs = lappend(exprs, bound);
		strategies = lappend_int(strategies, strategy);
		rinfos = lappend(rinfos, ri);
		if (!IsA(bound, Const))
			constant = false;
	}
	if (exprs == NIL || !crs_table_ok(rte->relid))
		return;

	bounds = palloc0(sizeof(CpgRangeBound) * list_length(exprs));
	i = 0;
	foreach(lc, exprs)
	{
		Node	   *e = (Node *) lfirst(lc);

		bounds[i].strategy = list_nth_int(strategies, i);
		if (IsA(e, Const))
		{
			Const	   *c = (Const *) e;

			bounds[i].isnull = c->constisnull;
			bounds[i].value = c->constisnull ? 0 : crs_datum_int64(c->constvalue, c->consttype);
		}
		i++;
	}
	plan.bounds = bounds;
	plan.nbounds = list_length(exprs);
	plan.constant = constant;
	plan.selectivity = clauselist_selectivity(root, rinfos, rel->relid, JOIN_INNER, NULL);
	plan.correlation = cpg_index_correlation(root, index);
	plan.heap_pages = rel->pages;
	plan.heap_tuples = rel->tuples;
	plan.rows = rel->rows;
	plan.index_pages = index->pages;
	get_tablespace_page_costs(rel->reltablespace, &plan.random_page_cost, &plan.seq_page_cost);
	plan.cpu_tuple_cost = cpu_tuple_cost;
	plan.cpu_operator_cost = cpu_operator_cost;
	plan.qual_startup = rel->baserestrictcost.startup;
	plan.qual_per_tuple = rel->baserestrictcost.per_tuple;
	plan.target_startup = rel->reltarget->cost.startup;
	plan.target_per_tuple = rel->reltarget->cost.per_tuple;
	if (!rs_range_scan_plan(index->indexoid, &plan, &st))
	{
		cpg_raise(&st);
		return;					/* overflowed map: the index reads everything */
	}

	cp = makeNode(CustomPath);
	cp->path.pathtype = T_CustomScan;
	cp->path.parent = rel;
	cp->path.pathtarget = rel->reltarget;
	cp->path.param_info = NULL;
	cp->path.parallel_aware = false;
	cp->path.parallel_safe = false;
	cp->path.parallel_workers = 0;
	cp->path.rows = rel->rows;
	cp->path.startup_cost = plan.startup_cost;
	cp->path.total_cost = plan.total_cost;
	cp->path.pathkeys = NIL;
	cp->flags = CUSTOMPATH_SUPPORT_PROJECTION;
	cp->custom_paths = NIL;
	cp->custom_private = list_make3(list_make1_oid(index->indexoid), strategies, exprs);
	cp->methods = &crs_path_methods;
	add_path(rel, &cp->path);
}

/*
 * The plan: every restriction clause stays a qual (the node reads whole
 * blocks), the bound expressions go to custom_exprs (so setrefs and
 * finalize_plan see their Params), custom_private = (index oid list,
 * strategy list) in the same order.
 */
static Plan *
crs_plan_path(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
			  List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = extract_actual_clauses(clauses, false);
	cscan->scan.scanrelid = rel->relid;
	cscan->flags = best_path->flags;
	cscan->custom_plans = NIL;
	cscan->custom_exprs = copyObject(lthird(best_path->custom_private));
	cscan->custom_private = list_make2(linitial(best_path->custom_private),
									   lsecond(best_path->custom_private));
	cscan->custom_scan_tlist = NIL;
	cscan->methods = &crs_scan_methods;
	return &cscan->scan.plan;
}

static Node *
crs_create_state(CustomScan *cscan)
{
	CrsState   *s = (CrsState *) newNode(sizeof(CrsState), T_CustomScanState);

	s->css.methods = &crs_exec_methods;
#if PG_VERSION_NUM >= 160000
	/* heap's slot, which the TID range scan fills (checked at plan time) */
	s->css.slotOps = &TTSOpsBufferHeapTuple;
#endif
	s->indexoid = linitial_oid((List *) linitial(cscan->custom_private));
	return (Node *) s;
}

static void
crs_begin(CustomScanState *node, EState *estate, int eflags)
{
	CrsState   *s = (CrsState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	List	   *strategies = (List *) lsecond(cscan->custom_private);
	ListCell   *lc;
	int			i;

	if (table_slot_callbacks(rel) != &TTSOpsBufferHeapTuple)
		elog(ERROR, "%s: table \"%s\" does not use heap tuples", CRS_NAME,
			 RelationGetRelationName(rel));
#if PG_VERSION_NUM < 160000
	/*
	 * PostgreSQL 15 gives every custom scan a virtual scan slot and builds
	 * the qual and projection for it (a virtual slot is never deformed).
	 * The TID range scan stores heap tuples: use heap's slot and rebuild
	 * both for it.
	 */
	ExecInitScanTupleSlot(estate, &node->ss, RelationGetDescr(rel), table_slot_callbacks(rel));
	ExecAssignScanProjectionInfoWithVarno(&node->ss, cscan->scan.scanrelid);
	node->ss.ps.qual = ExecInitQual(cscan->scan.plan.qual, (PlanState *) node);
#endif

	s->nbounds = list_length(cscan->custom_exprs);
	s->strategies = palloc0(sizeof(int) * Max(s->nbounds, 1));
	s->types = palloc0(sizeof(Oid) * Max(s->nbounds, 1));
	s->bounds = palloc0(sizeof(CpgRangeBound) * Max(s->nbounds, 1));
	i = 0;
	foreach(lc, cscan->custom_exprs)
	{
		s->strategies[i] = list_nth_int(strategies, i);
		s->types[i] = exprType((Node *) lfirst(lc));
		i++;
	}
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	s->index = index_open(s->indexoid, AccessShareLock);

	/*
	 * SERIALIZABLE: a key range is a predicate, and the TID range scans
	 * lock only the tuples they read, so a concurrent insert into the range
	 * would go unseen. Lock the relation, as a sequential scan does
	 * (PredicateLockRelation does nothing under other isolation levels).
	 */
	PredicateLockRelation(rel, estate->es_snapshot);
	s->bound_states = ExecInitExprList(cscan->custom_exprs, (PlanState *) node);
}

/* Evaluates the bounds and asks the map for the runs of candidate blocks. */
static void
crs_prepare(CrsState *s)
{
	ExprContext *econtext = s->css.ss.ps.ps_ExprContext;
	EState	   *estate = s->css.ss.ps.state;
	CpgRangeRuns out = {0};
	CpgStatus	st = {0};
	MemoryContext old;
	ListCell   *lc;
	int			i = 0;

	foreach(lc, s->bound_states)
	{
		bool		isnull;
		Datum		d = ExecEvalExprSwitchContext((ExprState *) lfirst(lc), econtext, &isnull);

		s->bounds[i].strategy = s->strategies[i];
		s->bounds[i].isnull = isnull;
		s->bounds[i].value = isnull ? 0 : crs_datum_int64(d, s->types[i]);
		i++;
	}
	if (s->runs != NULL)
		pfree(s->runs);
	s->runs = NULL;
	s->nruns = 0;
	s->next_run = 0;
	s->in_run = false;

	old = MemoryContextSwitchTo(estate->es_query_cxt);
	rs_range_scan_runs(s->index, s->bounds, s->nbounds, &out, &st);
	MemoryContextSwitchTo(old);
	cpg_raise(&st);

	s->runs = out.runs;
	s->nruns = out.nruns;
	s->total_blocks += Max(out.blocks, 0);
	s->total_runs += out.nruns;
	s->total_segment_pages += out.segment_pages;
	s->every_block |= out.every_block;
	s->prepared = true;
}

/* ExecScan's access method: the next tuple of the candidate blocks. */
static TupleTableSlot *
crs_next(ScanState *ss)
{
	CrsState   *s = (CrsState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;

	if (!s->prepared)
		crs_prepare(s);
	for (;;)
	{
		ItemPointerData mintid,
					maxtid;
		CpgBlockRun *run;

		if (s->in_run)
		{
			if (table_scan_getnextslot_tidrange(s->scan, ForwardScanDirection, slot))
				return slot;
			s->in_run = false;
		}
		if (s->next_run >= s->nruns)
		{
			ExecClearTuple(slot);
			return NULL;
		}
		run = &s->runs[s->next_run++];
		ItemPointerSet(&mintid, run->first, FirstOffsetNumber);
		ItemPointerSet(&maxtid, run->last, MaxOffsetNumber);
		if (s->scan == NULL)
			s->scan = table_beginscan_tidrange(ss->ss_currentRelation,
											   ss->ps.state->es_snapshot,
											   &mintid, &maxtid);
		else
			table_rescan_tidrange(s->scan, &mintid, &maxtid);
		s->in_run = true;
	}
}

/*
 * EvalPlanQual: the test tuple is rechecked against the full quals by
 * ExecScan; the block range adds no condition of its own.
 */
static bool
crs_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
crs_exec(CustomScanState *node)
{
	return ExecScan(&node->ss, crs_next, crs_recheck);
}

static void
crs_end(CustomScanState *node)
{
	CrsState   *s = (CrsState *) node;

	if (s->scan != NULL)
		table_endscan(s->scan);
	s->scan = NULL;
	if (s->index != NULL)
		index_close(s->index, NoLock);
	s->index = NULL;
}

/* Parameters may have changed: evaluate the bounds again at the next fetch. */
static void
crs_rescan(CustomScanState *node)
{
	CrsState   *s = (CrsState *) node;

	s->prepared = false;
	s->in_run = false;
	ExecScanReScan(&node->ss);
}

static void
crs_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	CrsState   *s = (CrsState *) node;
	char	   *name = get_rel_name(s->indexoid);

	ExplainPropertyText("Index Name", name ? name : "?", es);
	if (es->analyze)
	{
		ExplainPropertyInteger("Candidate Blocks", NULL, s->total_blocks, es);
		ExplainPropertyInteger("Block Runs", NULL, s->total_runs, es);
		if (s->every_block)
			ExplainPropertyText("Map", "cannot narrow the range: every block read", es);
	}
}

void
cpg_range_scan_init(void)
{
	DefineCustomBoolVariable("clustered_pg.enable_range_scan",
							 "Lets the planner read key ranges of a clustered_pk_index through the ClusteredRangeScan custom scan.",
							 "The scan reads each candidate heap block of the range once, in block order.",
							 &crs_enabled,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	RegisterCustomScanMethods(&crs_scan_methods);
	prev_set_rel_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = crs_set_rel_pathlist;
}
