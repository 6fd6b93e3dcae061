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
# A second crash hits clustered_pg.repack() while it is moving rows: after
# recovery the table holds what it held before repack, verify() is clean,
# and VACUUM + repack complete (see "Phase 2" below).
set -euo pipefail
. "$(dirname "$0")/crash-common.sh"
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
restart_after_crash ""

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

# Phase 2: a crash in the middle of clustered_pg.repack(). rk (clustered_heap,
# random insertion order, so repack moves every row, plus a UNIQUE btree
# whose entries repack inserts) is killed while repack is appending blocks;
# recovery must leave the table as it was before repack (its transaction
# never committed), the map sound, and a later VACUUM + repack must work.
echo "crash-recovery: loading rk for a crash during repack" >&2
q >/dev/null <<'SQL'
CREATE TABLE rk (id bigint NOT NULL, payload text) USING clustered_heap;
CREATE INDEX rk_ck ON rk USING clustered_pk_index (id);
CREATE UNIQUE INDEX rk_id_key ON rk (id);
SELECT setseed(0.3);
INSERT INTO rk SELECT g, repeat('r', 80) FROM generate_series(1, 100000) g ORDER BY random();
VACUUM ANALYZE rk;
SQL
before_rk=$(q -c "SELECT count(*) || ' ' || sum(id) || ' ' || sum(length(payload)) FROM rk")
blocks0=$(q -c "SELECT pg_relation_size('rk') / current_setting('block_size')::int")
REPACK_OUT="$PGHOST/repack-crash.out"
psql -X -q -At -d cpg_crash -c "SELECT rows_moved FROM clustered_pg.repack('rk')" >"$REPACK_OUT" 2>&1 &
REPACKER=$!
t0=$SECONDS
# Crash once repack has appended a quarter of the table's blocks (it moves
# rows into fresh blocks at the end), while it is still running.
want=$((blocks0 + blocks0 / 4))
grown=0
for _ in $(seq 1 600); do
    kill -0 "$REPACKER" 2>/dev/null || break
    b=$(q -c "SELECT pg_relation_size('rk') / current_setting('block_size')::int")
    if [ "$b" -ge "$want" ]; then grown=$b; break; fi
    sleep 0.1
done
if [ "$grown" -eq 0 ] || ! kill -0 "$REPACKER" 2>/dev/null; then
    echo "crash-recovery: FAIL: repack was not caught running with $want blocks or more (it had $blocks0;" \
         "output: $(cat "$REPACK_OUT" 2>/dev/null)); make rk bigger" >&2
    wait "$REPACKER" 2>/dev/null || true
    exit 1
fi
echo "crash-recovery: immediate stop during repack ($((SECONDS - t0))s in; rk: $blocks0 blocks before, $grown now) and restart" >&2
pgctl -m immediate stop >/dev/null
if wait "$REPACKER" 2>/dev/null; then
    echo "crash-recovery: FAIL: repack completed although the server was killed under it: $(cat "$REPACK_OUT")" >&2
    exit 1
fi
restart_after_crash " after the crash during repack"
RK_SAME="SELECT count(*) || ' ' || sum(id) || ' ' || sum(length(payload)) = '$before_rk' FROM rk"
RK_SCANS="SET enable_seqscan = off; CREATE TEMP TABLE c AS SELECT
            (SELECT count(*) FROM rk WHERE id BETWEEN 1000 AND 200000) AS clustered,
            (SELECT count(*) FROM rk WHERE id + 0 BETWEEN 1000 AND 200000) AS seq;
          SELECT clustered = seq AND seq = 99001 FROM c"
check "rk after the crash during repack: count, sum(id), sum(length) as before repack ($before_rk)" "$RK_SAME"
check "rk: ids unique" "SELECT count(*) = count(DISTINCT id) FROM rk"
check "verify(rk) clean after the crash during repack" "SELECT count(*) = 0 FROM clustered_pg.verify('rk')"
check "rk: clustered index scan = seq scan" "$RK_SCANS"
check "rk: the btree finds every row" "SET enable_seqscan = off; SET enable_bitmapscan = off;
    SELECT count(*) = 0 FROM rk s WHERE NOT EXISTS (SELECT 1 FROM rk x WHERE x.id = s.id AND x.ctid = s.ctid)"
q -c "VACUUM rk"
check "verify(rk) clean after VACUUM" "SELECT count(*) = 0 FROM clustered_pg.verify('rk')"
t0=$SECONDS
moved=$(q -c "SELECT rows_moved FROM clustered_pg.repack('rk')" 2>&1) || true
echo "crash-recovery: repack after recovery moved $moved rows in $((SECONDS - t0))s" >&2
check "repack after recovery completes and moves rows" "SELECT '$moved' ~ '^[0-9]+\$' AND '$moved'::bigint > 0"
check "verify(rk) clean after that repack" "SELECT count(*) = 0 FROM clustered_pg.verify('rk')"
q -c "VACUUM rk"
check "rk: count, sum, verify after repack + VACUUM" "SELECT ($RK_SAME) AND NOT EXISTS (SELECT 1 FROM clustered_pg.verify('rk'))"
check "rk: clustered index scan = seq scan after repack" "$RK_SCANS"
check "rk: in key order on disk after repack" \
    "SELECT corr(id, (ctid::text::point)[0]) > 0.99 FROM rk"

psql -X -q -d postgres -c 'DROP DATABASE cpg_crash' >/dev/null 2>&1 || true
if [ "$fail" -ne 0 ]; then
    echo "crash-recovery: FAIL" >&2
    exit 1
fi
echo "crash-recovery: PASS" >&2
