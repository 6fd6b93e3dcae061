#!/usr/bin/env bash
# regress/bench/instructions.sh -- instructions per inserted row, clustered_heap
# against heap + btree, counted by valgrind (cachegrind) instead of timed.
#
# Timings on a shared 2-core machine vary by 10-20 % from run to run, more
# than most single changes to the insert path are worth; instruction counts
# repeat exactly. This counts what one backend executes for BATCHES
# 1000-row INSERT ... SELECT batches of random keys into a table that
# already holds BASE_ROWS rows, for both layouts, minus the same backend's
# start-up and buffer prewarm. MODE=single inserts the same rows one
# statement (one transaction) each: the bench's single-row phase, without
# its client and network. Cache misses are not in the count: use
# `perf` (or the bench) for those.
#
# Usage: regress/bench/instructions.sh [PG_CONFIG]   (default: pg_config in PATH;
#        clustered_pg must be installed there; needs valgrind and contrib's
#        pg_prewarm). Knobs: BASE_ROWS (300000), BATCHES (30), MODE (batch).
# Prints one line per layout and their ratio. A developer tool: `make test`
# does not run it.
set -euo pipefail

PG_CONFIG=${1:-${PG_CONFIG:-pg_config}}
BASE_ROWS=${BASE_ROWS:-300000}
BATCHES=${BATCHES:-30}
MODE=${MODE:-batch}
case "$MODE" in batch|single) ;; *) echo "instructions: MODE must be batch or single" >&2; exit 2 ;; esac
for v in BASE_ROWS BATCHES; do
    case "${!v}" in ''|*[!0-9]*) echo "instructions: $v must be a positive integer" >&2; exit 2 ;; esac
done
command -v valgrind >/dev/null || { echo "instructions: valgrind is not installed" >&2; exit 2; }
BIN=$("$PG_CONFIG" --bindir)

WORK=$(mktemp -d /tmp/cpg-instructions.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    if [ -f "$WORK/data/postmaster.pid" ]; then
        as_pg "$BIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        local cmd
        printf -v cmd '%q ' "$@"
        su postgres -s /bin/bash -c "$cmd"
    else
        "$@"
    fi
}
[ "$(id -u)" != 0 ] || chown postgres "$WORK"

as_pg "$BIN/initdb" -D "$WORK/data" --no-sync -A trust >/dev/null
cat >>"$WORK/data/postgresql.conf" <<EOF
fsync = off
shared_buffers = 512MB
max_wal_size = 8GB
checkpoint_timeout = 1h
listen_addresses = ''
unix_socket_directories = '$WORK'
EOF
as_pg "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
SRC_ROWS=$((BASE_ROWS + BATCHES * 1000))
as_pg "$BIN/psql" -h "$WORK" -qX -d postgres -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION clustered_pg;
CREATE EXTENSION pg_prewarm;
CREATE TABLE src AS
  SELECT i AS seq, k AS id
    FROM (SELECT row_number() OVER (ORDER BY md5('42:' || g)) i, g k
            FROM generate_series(1, $SRC_ROWS) g) s;
CREATE UNIQUE INDEX src_seq ON src (seq);
CREATE TABLE c (id bigint, ts timestamptz, payload text) USING clustered_heap;
CREATE INDEX c_ck ON c USING clustered_pk_index (id);
CREATE TABLE h (id bigint PRIMARY KEY, ts timestamptz, payload text);
INSERT INTO c SELECT id, '2026-01-01', repeat('x', 100) FROM src WHERE seq <= $BASE_ROWS;
INSERT INTO h SELECT id, '2026-01-01', repeat('x', 100) FROM src WHERE seq <= $BASE_ROWS;
VACUUM ANALYZE src;
CHECKPOINT;
SQL
as_pg "$BIN/pg_ctl" -D "$WORK/data" -w stop >/dev/null

# Instructions of a single-user backend running $1 on a fresh copy of the data.
count() {
    local script=$1 copy="$WORK/run"
    rm -rf "$copy"
    cp -a "$WORK/data" "$copy"
    as_pg valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$BIN/postgres" --single -D "$copy" postgres <"$script" >"$WORK/vg.log" 2>&1 ||
        { cat "$WORK/vg.log" >&2; exit 1; }
    sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' "$WORK/vg.log" | tr -d ,
}

declare -A per_row
for t in c h; do
    ix=c_ck
    [ "$t" = h ] && ix=h_pkey
    warm="SELECT pg_prewarm('$t'); SELECT pg_prewarm('$ix'); SELECT pg_prewarm('src'); SELECT pg_prewarm('src_seq');"
    echo "$warm" >"$WORK/warm.sql"
    {
        echo "$warm"
        for ((b = 0; b < BATCHES; b++)); do
            lo=$((BASE_ROWS + b * 1000))
            if [ "$MODE" = batch ]; then
                echo "INSERT INTO $t SELECT id, '2026-01-01', repeat('x', 100) FROM src WHERE seq > $lo AND seq <= $((lo + 1000));"
            else
                for ((i = lo + 1; i <= lo + 1000; i++)); do
                    echo "INSERT INTO $t SELECT id, '2026-01-01', repeat('x', 100) FROM src WHERE seq = $i;"
                done
            fi
        done
    } >"$WORK/load.sql"
    chmod 644 "$WORK"/*.sql
    base=$(count "$WORK/warm.sql")
    all=$(count "$WORK/load.sql")
    per_row[$t]=$(((all - base) / (BATCHES * 1000)))
done
echo "clustered_heap + clustered_pk_index: ${per_row[c]} instructions per row"
echo "heap + btree:                        ${per_row[h]} instructions per row"
awk -v c="${per_row[c]}" -v h="${per_row[h]}" 'BEGIN { printf "ratio: %.3f\n", c / h }'
