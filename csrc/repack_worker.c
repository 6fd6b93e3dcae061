/*
 * repack_worker.c: the optional background worker that repacks segments
 * due by their index's auto_repack_interval (DESIGN.md, "Repack"). It runs
 * when clustered_pg is in shared_preload_libraries and
 * clustered_pg.auto_repack_database names a database: every
 * clustered_pg.auto_repack_naptime seconds it lists the tables of that
 * database that have a clustered_pk_index and, one transaction per table,
 * lets Rust repack the segments that need it and have been left alone for
 * longer than the interval (src/sql/repack.rs, rs_repack_due_table), at
 * most clustered_pg.auto_repack_max_rows rows per transaction. A
 * table another session holds a conflicting lock on is skipped this round;
 * an error is logged and the worker goes on with the next table.
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "cpg.h"

extern void cpg_raise(CpgStatus *st);
extern void cpg_repack_worker_init(void);
extern PGDLLEXPORT void cpg_repack_worker_main(Datum arg);

static char *auto_repack_database = NULL;
static int	auto_repack_naptime = 60;
static int	auto_repack_max_rows = 100000;

void
cpg_repack_worker_init(void)
{
	BackgroundWorker w;

	/* A PGC_POSTMASTER setting can only be defined while preloading. */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomStringVariable("clustered_pg.auto_repack_database",
							   "Database whose clustered tables the auto-repack worker maintains (empty = no worker).",
							   "Needs clustered_pg in shared_preload_libraries.",
							   &auto_repack_database, "",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("clustered_pg.auto_repack_naptime",
							"Seconds between two rounds of the auto-repack worker.",
							NULL, &auto_repack_naptime, 60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("clustered_pg.auto_repack_max_rows",
							"Rows the auto-repack worker moves in one transaction before it commits.",
							"Bounds how long its transactions hold back VACUUM and conflict with writers.",
							&auto_repack_max_rows, 100000, 1, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	if (auto_repack_database == NULL || auto_repack_database[0] == '\0')
		return;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 10;
	snprintf(w.bgw_library_name, sizeof(w.bgw_library_name), "clustered_pg");
	snprintf(w.bgw_function_name, sizeof(w.bgw_function_name), "cpg_repack_worker_main");
	snprintf(w.bgw_name, sizeof(w.bgw_name), "clustered_pg auto-repack");
	snprintf(w.bgw_type, sizeof(w.bgw_type), "clustered_pg auto-repack");
	RegisterBackgroundWorker(&w);
}

/* Tables with a valid clustered_pk_index, read in a transaction of its own. */
static List *
tables_with_clustered_index(void)
{
	List	   *tables = NIL;
	uint64		i;
	MemoryContext outer = CurrentMemoryContext;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	/* Temporary tables belong to their session: their pages are not ours. */
	if (SPI_execute("SELECT i.indrelid FROM pg_catalog.pg_index i"
					" JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
					" JOIN pg_catalog.pg_am a ON a.oid = c.relam"
					" JOIN pg_catalog.pg_class t ON t.oid = i.indrelid"
					" WHERE a.amname = 'clustered_pk_index' AND i.indisvalid"
					" AND t.relpersistence <> 't'"
					" ORDER BY 1", true, 0) == SPI_OK_SELECT)
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);

		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
				tables = lappend_oid(tables, DatumGetObjectId(d));
		}
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(outer);
	return tables;
}

/*
 * One transaction of work on one table: the rows moved (0 when nothing
 * was due or it failed). Errors are logged, not fatal.
 */
static int64
repack_one(Oid table)
{
	int64		moved = 0;
	MemoryContext outer = CurrentMemoryContext;

	PG_TRY();
	{
		CpgStatus	st = {0};

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "clustered_pg auto-repack");
		moved = rs_repack_due_table(table, auto_repack_max_rows, &st);
		cpg_raise(&st);
		PopActiveSnapshot();
		CommitTransactionCommand();
		/* a worker has no idle loop that would report them */
		pgstat_report_stat(true);
		if (moved > 0)
			ereport(LOG,
					(errmsg("clustered_pg auto-repack: moved " INT64_FORMAT " rows of table with OID %u",
							moved, table)));
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(outer);
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		RESUME_INTERRUPTS();
		moved = 0;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return moved;
}

void
cpg_repack_worker_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(auto_repack_database, NULL, 0);

	for (;;)
	{
		List	   *tables;
		ListCell   *lc;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 auto_repack_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		tables = tables_with_clustered_index();
		/* A table goes on, one bounded transaction after another, until
		 * nothing due is left. */
		foreach(lc, tables)
		{
			CHECK_FOR_INTERRUPTS();
			while (repack_one(lfirst_oid(lc)) >= auto_repack_max_rows)
				CHECK_FOR_INTERRUPTS();
		}
		list_free(tables);
	}
}
