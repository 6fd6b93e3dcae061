#!/usr/bin/env bash
# regress/crash-recovery.sh -- crash the server in the middle of clustered
# writes, restart it, and check that nothing committed was lost.
#
# Runs against the cluster of regress/with-cluster.sh (PGHOST is its
# directory, the data directory is $PGHOST/data). Loads a clustered_heap
# table and a plain heap with a clustered_pk_index in committed
# transactions while another transaction is still writing, stops the server
# with `pg_ctl -m immediate` (no checkpoint: recovery replays everything),
# restarts it, and checks: every committed row is there, the aborted ones
# are not, verify() is clean, and index scans return what sequential scans
# return. Run with wal_consistency_checking = generic (make test does), the
# replay also compares every GenericXLog page image: a mismatch stops the
# server, which this script reports.
set -euo pipefail
: "${PGHOST:?run under regress/with-cluster.sh}"
DATA="$PGHOST/data"
LOG="$PGHOST/server.log"
BINDIR=$("${PG_CONFIG:-pg_config}" --bindir)
if [ "$(id -u)" -eq 0 ]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi
pgctl() { "${AS_PG[@]}" env -u PGDATA -u RUST_BACKTRACE "$BINDIR/pg_ctl" -D "$DATA" "$@"; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d cpg_crash "$@"; }

echo "crash-recovery: loading" >&2
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'DROP DATABASE IF EXISTS cpg_crash' -c 'CREATE DATABASE cpg_crash'
q <<'SQL'
CREATE EXTENSION clustered_pg;
CREATE TABLE ch (id bigint NOT NULL, payload text) USING clustered_heap;
CREATE INDEX ch_ck ON ch USING clustered_pk_index (id);
CREATE TABLE ph (id bigint, payload text);
CREATE INDEX ph_ck ON ph USING clustered_pk_index (id);
SELECT setseed(0.7);
CREATE TABLE keys AS SELECT g AS id, random() AS r FROM generate_series(1, 40000) g;
INSERT INTO ch SELECT id, repeat('c', 80) FROM keys WHERE id <= 20000 ORDER BY r;
INSERT INTO ph SELECT id, repeat('p', 80) FROM keys WHERE id <= 20000 ORDER BY id;
UPDATE ch SET id = id + 100000 WHERE id % 17 = 0;
DELETE FROM ch WHERE id % 19 = 0;
SQL
# A transaction still writing when the server dies: none of it may survive.
psql -X -q -d cpg_crash -c "BEGIN; INSERT INTO ch SELECT id + 500000, 'doomed' FROM keys; INSERT INTO ph SELECT id + 500000, 'doomed' FROM keys; SELECT pg_sleep(60); COMMIT;" >/dev/null 2>&1 &
DOOMED=$!
q -c "INSERT INTO ch SELECT id, repeat('c', 80) FROM keys WHERE id > 20000 ORDER BY r"
q -c "INSERT INTO ph SELECT id, repeat('p', 80) FROM keys WHERE id > 20000 ORDER BY id"
sleep 2
expect_ch=$(q -c "SELECT count(*) FROM ch WHERE payload <> 'doomed'")
expect_ph=$(q -c "SELECT count(*) FROM ph WHERE payload <> 'doomed'")

echo "crash-recovery: immediate stop (crash) and restart" >&2
pgctl -m immediate stop >/dev/null
wait "$DOOMED" 2>/dev/null || true
if ! pgctl -l "$LOG" -w -t 120 start >/dev/null; then
    echo "crash-recovery: FAIL: server did not come back" >&2
    tail -n 30 "$LOG" >&2
    exit 1
fi
if grep -q "inconsistent page" "$LOG"; then
    echo "crash-recovery: FAIL: WAL consistency check failed during replay" >&2
    grep -B2 -A5 "inconsistent page" "$LOG" | head -40 >&2
    exit 1
fi

fail=0
check() {
    local what=$1 sql=$2 got
    got=$(q -c "$sql" 2>&1) || true
    if [ "$got" = t ]; then
        echo "crash-recovery: ok   $what" >&2
    else
        echo "crash-recovery: FAIL $what (got: $got)" >&2
        fail=1
    fi
}
check "clustered_heap keeps every committed row" "SELECT count(*) = $expect_ch FROM ch"
check "plain heap keeps every committed row" "SELECT count(*) = $expect_ph FROM ph"
check "the crashed transaction left nothing" "SELECT NOT EXISTS (SELECT 1 FROM ch WHERE payload = 'doomed') AND NOT EXISTS (SELECT 1 FROM ph WHERE payload = 'doomed')"
check "verify(ch) clean" "SELECT count(*) = 0 FROM clustered_pg.verify('ch')"
check "verify(ph) clean" "SELECT count(*) = 0 FROM clustered_pg.verify('ph')"
check "index scans match sequential scans (ch)" "SET enable_seqscan = off; SELECT (SELECT count(*) FROM ch WHERE id BETWEEN 1000 AND 30000) = (SELECT count(*) FROM ch WHERE id + 0 BETWEEN 1000 AND 30000)"
check "index scans match sequential scans (ph)" "SET enable_seqscan = off; SELECT (SELECT count(*) FROM ph WHERE id BETWEEN 1000 AND 30000) = (SELECT count(*) FROM ph WHERE id + 0 BETWEEN 1000 AND 30000)"
check "inserts work after recovery" "INSERT INTO ch VALUES (999999, 'after'); SELECT count(*) = 0 FROM clustered_pg.verify('ch')"
psql -X -q -d postgres -c 'DROP DATABASE cpg_crash' >/dev/null 2>&1 || true
if [ "$fail" -ne 0 ]; then
    echo "crash-recovery: FAIL" >&2
    exit 1
fi
echo "crash-recovery: PASS" >&2
