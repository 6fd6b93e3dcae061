#!/usr/bin/env bash
# regress/bench/run.sh -- `make bench`: clustered_pg side by side with plain
# heap + btree, in one throwaway cluster, on the same data.
#
# Steps: regress/deps.sh (installs what is missing), build + install the
# extension for the chosen major, install matplotlib into .deps/py when
# missing (plots are skipped if that fails), then run regress/bench/bench.py
# inside ONE regress/with-cluster.sh cluster, then the issue B lookup check
# (regress/bench/lookup_check.sh, its own cluster of the same install and
# settings), then write the report (BENCH_OUT/results.{json,md}, PNG plots)
# and docs/benchmarks.md.  Exits 1 when the lookup check fails (after the
# report is written).
#
# Knobs (environment):
#   BENCH_N          rows loaded per variant              (default 1000000)
#   BENCH_ORDER      random | ascending key order of load (default random)
#   BENCH_PG         15 | 18                              (default 18)
#   BENCH_PG_CONFIG  explicit pg_config (overrides BENCH_PG; PG_CONFIG from
#                    make is ignored on purpose: it is the Debian default)
#   BENCH_VARIANTS   comma list (default: every variant available)
#                    heap_btree,heap_cluster,heap_ck,clustered,clustered_pk,
#                    clustered_repack
#   BENCH_OUT        output directory                     (default bench-out/)
#   BENCH_SEED       seed of key order and query positions (default 42)
#   BENCH_QUERIES    repetitions per query shape          (default 20)
#   BENCH_TPS_SECONDS  pgbench -T of the point-lookup TPS (default 10)
#   BENCH_SKIP_BUILD=1 use the extension already installed for that major
#   BENCH_CK_WITH    options of every clustered_pk_index, e.g. split_threshold=8192
#   BENCH_PRIVATE_PG=0 install into the shared PostgreSQL install instead of
#                    a private copy in BENCH_OUT/pginstall (relocatable installs)
#   BENCH_DOCS=0     do not copy plots to docs/bench/ nor write docs/benchmarks.md
#   BENCH_LOOKUP_N   rows of the lookup check (default 1000000; 0 skips it)
#   BENCH_AB_N       rows per table of the interleaved heap_btree / clustered
#                    load (default BENCH_N; 0 skips it)
#   BENCH_LOOKUP_ONLY=1  build + lookup check only (`make bench-lookup`)
set -euo pipefail

cd "$(dirname "$0")/../.."
REPO=$(pwd -P)

log() { echo "bench: $*" >&2; }

export BENCH_N=${BENCH_N:-1000000}
export BENCH_ORDER=${BENCH_ORDER:-random}
export BENCH_PG=${BENCH_PG:-18}
export BENCH_OUT=${BENCH_OUT:-bench-out}
export BENCH_SEED=${BENCH_SEED:-42}
export BENCH_QUERIES=${BENCH_QUERIES:-20}
export BENCH_TPS_SECONDS=${BENCH_TPS_SECONDS:-10}
export BENCH_VARIANTS=${BENCH_VARIANTS:-}
export BENCH_DOCS=${BENCH_DOCS:-1}
export BENCH_CK_WITH=${BENCH_CK_WITH:-}
export BENCH_LOOKUP_N=${BENCH_LOOKUP_N:-1000000}
BENCH_LOOKUP_ONLY=${BENCH_LOOKUP_ONLY:-0}

case "$BENCH_ORDER" in random|ascending) ;; *) log "BENCH_ORDER must be random or ascending"; exit 2 ;; esac
case "$BENCH_N" in ''|*[!0-9]*) log "BENCH_N must be a positive integer"; exit 2 ;; esac
[ "$BENCH_N" -ge 1000 ] || { log "BENCH_N must be >= 1000"; exit 2; }
case "$BENCH_LOOKUP_N" in ''|*[!0-9]*) log "BENCH_LOOKUP_N must be a non-negative integer"; exit 2 ;; esac

T0=$(date +%s)
if [ -n "${BENCH_PG_CONFIG:-}" ]; then
    PGC=$BENCH_PG_CONFIG
else
    log "checking dependencies (regress/deps.sh) ..."
    PGC=$(regress/deps.sh --pg-config "$BENCH_PG")
fi
log "PostgreSQL: $("$PGC" --version) ($PGC)"

mkdir -p "$BENCH_OUT"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd -P)
export BENCH_OUT

# Private copy of a relocatable PostgreSQL install (the .deps/pg18 wheel):
# the extension is installed there, so a concurrent `make install` by
# someone else cannot swap clustered_pg.so under a running benchmark.
# Shared system installs (Debian's /usr/lib/postgresql/NN) are used as is.
# BENCH_PRIVATE_PG=0 turns this off.
PGROOT=$(cd "$("$PGC" --bindir)/.." && pwd -P)
if [ "${BENCH_PRIVATE_PG:-1}" = 1 ] && [ -f "$PGROOT/include/server/postgres.h" ] \
   && [ "$("$PGC" --pkglibdir)" = "$PGROOT/lib" ]; then
    # Same depth as the original (binaries may have an $ORIGIN/../../.. rpath,
    # as the wheel's do): PRIV/<parent>/<root>, the parent's siblings linked.
    PARENT=$(dirname "$PGROOT")
    PRIV="$BENCH_OUT/pginstall"
    log "private copy of $PGROOT in $PRIV ..."
    rm -rf "$PRIV"
    mkdir -p "$PRIV/$(basename "$PARENT")"
    cp -a "$PGROOT" "$PRIV/$(basename "$PARENT")/"
    for f in "$(dirname "$PARENT")"/*; do
        [ "$f" = "$PARENT" ] || ln -s "$f" "$PRIV/$(basename "$f")"
    done
    chmod -R a+rX "$PRIV"
    PGC="$PRIV/$(basename "$PARENT")/$(basename "$PGROOT")/bin/pg_config"
    "$PGC" --version >/dev/null
fi

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building clustered_pg ..."
    make -s --no-print-directory PG_CONFIG="$PGC" >&2
    log "installing ..."
    make -s --no-print-directory install PG_CONFIG="$PGC" >&2
fi

# matplotlib into a git-ignored dir (.deps/py); failure is not fatal.
export PYTHONPATH="$REPO/.deps/py${PYTHONPATH:+:$PYTHONPATH}"
if [ "$BENCH_LOOKUP_ONLY" != 1 ] && ! python3 -c 'import matplotlib' >/dev/null 2>&1; then
    log "installing matplotlib into .deps/py ..."
    if ! python3 -m pip install -q --target "$REPO/.deps/py" matplotlib >&2; then
        log "WARNING: matplotlib could not be installed; tables and JSON only, no plots"
    fi
fi

# Server settings for a 2-core / 24 GB machine.  Identical for every
# variant (they all run in this one cluster).  autovacuum is off for the
# whole run: every VACUUM / ANALYZE is explicit and at the same points.
# fsync stays as with-cluster.sh sets it (off) -- the same for every variant.
export PGCLUSTER_CONF="shared_buffers = 2GB
work_mem = 64MB
maintenance_work_mem = 1GB
effective_cache_size = 16GB
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min
autovacuum = off
max_parallel_workers_per_gather = 0
max_connections = 20
jit = off
clustered_pg.auto_repack_database = postgres
clustered_pg.auto_repack_naptime = 2"
# The auto-repack worker runs for the clustered_auto variant only (every
# other variant's index says auto_repack_interval = 0).
export PGCLUSTER_PRELOAD=clustered_pg
export BENCH_PGCLUSTER_CONF="$PGCLUSTER_CONF"

if [ "$BENCH_LOOKUP_ONLY" != 1 ]; then
    log "N=$BENCH_N order=$BENCH_ORDER seed=$BENCH_SEED queries=$BENCH_QUERIES out=$BENCH_OUT"
    regress/with-cluster.sh "$PGC" python3 "$REPO/regress/bench/bench.py" measure
fi

# A lookup.md left by an earlier run must not reach this run's report.
rm -f "$BENCH_OUT/lookup.md" "$BENCH_OUT/lookup.json"
LOOKUP_RC=0
if [ "$BENCH_LOOKUP_N" -gt 0 ]; then
    log "issue B lookup check (N=$BENCH_LOOKUP_N, key order) ..."
    PG_CONFIG="$PGC" regress/bench/lookup_check.sh || LOOKUP_RC=$?
fi

if [ "$BENCH_LOOKUP_ONLY" != 1 ]; then
    log "writing the report ..."
    python3 "$REPO/regress/bench/bench.py" report
fi
T1=$(date +%s)
log "done in $((T1 - T0)) s total; results in $BENCH_OUT/"
if [ "$LOOKUP_RC" -ne 0 ]; then
    log "FAILED: the issue B lookup check (exit $LOOKUP_RC), see $BENCH_OUT/lookup.md"
    exit 1
fi
