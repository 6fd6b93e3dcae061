#!/usr/bin/env bash
# regress/demo.sh -- the README's first command (`make demo`).
#
# Installs the dependencies (regress/deps.sh), builds and installs
# clustered_pg for PostgreSQL 18, then runs regress/demo.sql in a throwaway
# cluster (regress/with-cluster.sh) and stops it again.  Takes about a
# minute on a warm build.
#   DEMO_PG_MAJOR=15 regress/demo.sh   runs it on PostgreSQL 15 instead.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { echo "demo: $*" >&2; }

log "checking dependencies ..."
regress/deps.sh
PG_CONFIG=$(regress/deps.sh --pg-config "${DEMO_PG_MAJOR:-18}")
log "building clustered_pg for $("$PG_CONFIG" --version) ..."
make -s --no-print-directory PG_CONFIG="$PG_CONFIG" >&2
log "installing ..."
make -s --no-print-directory install PG_CONFIG="$PG_CONFIG" >&2
log "starting a throwaway cluster and running regress/demo.sql ..."
regress/with-cluster.sh "$PG_CONFIG" psql -X -q -v ON_ERROR_STOP=1 -f regress/demo.sql
log "done (the cluster has been removed)"
