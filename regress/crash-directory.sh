#!/usr/bin/env bash
# regress/crash-directory.sh -- crash the server while the two-level segment
# directory grows and splits, restart it, and check the map.
#
# Runs against the cluster of regress/with-cluster.sh (PGHOST is its
# directory, the data directory is $PGHOST/data); run it with
# wal_consistency_checking = generic so the replay compares every
# GenericXLog page image (directory growth, directory page splits, segment
# page splits at depth 1). clustered_pg.debug_dir_capacity lowers the
# directory's capacity so a small table grows from depth 0 to 1 and splits
# directory pages; the server is stopped with `pg_ctl -m immediate` while
# another transaction is still inserting (and splitting), so recovery
# replays every structural record. Checks: every committed row is there,
# the crashed transaction's rows are not visible, verify() is clean, the
# directory is at depth 1 and not overflowed, index scans return what
# sequential scans return, and inserts keep working after recovery.
set -euo pipefail
. "$(dirname "$0")/crash-common.sh"
# Capacity 10: both tables pass depth 1 and ch splits directory pages, with
# room to spare (at 6, ch's ~45 segment pages could fill the 6 x 6 directory
# on an unlucky interleaving with the crashed transaction, and overflow).
export PGOPTIONS='-c clustered_pg.debug_dir_capacity=10'
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d cpg_crashdir "$@"; }

echo "crash-directory: loading" >&2
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'DROP DATABASE IF EXISTS cpg_crashdir' -c 'CREATE DATABASE cpg_crashdir'
q <<'SQL'
CREATE EXTENSION clustered_pg;
CREATE TABLE ch (id bigint NOT NULL, payload text) USING clustered_heap;
CREATE INDEX ch_ck ON ch USING clustered_pk_index (id) WITH (split_threshold = 16);
CREATE TABLE ph (id bigint, payload text);
CREATE INDEX ph_ck ON ph USING clustered_pk_index (id) WITH (split_threshold = 16);
INSERT INTO ch SELECT (g * 7919) % 8000, repeat('c', 40) FROM generate_series(0, 7999) g;
INSERT INTO ph SELECT (g * 7919) % 1500, repeat('p', 1000) FROM generate_series(0, 1499) g;
SQL
shape() { q -c "SELECT '$1 $2: levels ' || directory_levels || ', directory pages ' || directory_pages || ', segment pages ' || segment_pages || ', overflowed ' || overflowed FROM clustered_pg.directory_stats('$2')" >&2; }
shape before ch
shape before ph
# Still inserting (and splitting segment and directory pages) when the
# server dies: none of its rows may be visible after recovery.
psql -X -q -d cpg_crashdir -c "BEGIN; INSERT INTO ch SELECT (g * 7919) % 8000 + 100000, 'doomed' FROM generate_series(0, 7999) g; INSERT INTO ph SELECT (g * 7919) % 500 + 100000, repeat('d', 1000) FROM generate_series(0, 499) g; SELECT pg_sleep(60); COMMIT;" >/dev/null 2>&1 &
DOOMED=$!
# Committed structural changes after the last checkpoint: replayed.
q -c "INSERT INTO ch SELECT (g * 7919) % 8000 + 8000, repeat('c', 40) FROM generate_series(0, 7999) g"
q -c "INSERT INTO ph SELECT (g * 7919) % 1500 + 1500, repeat('p', 1000) FROM generate_series(0, 1499) g"
sleep 2
expect_ch=$(q -c "SELECT count(*) FROM ch WHERE payload <> 'doomed'")
expect_ph=$(q -c "SELECT count(*) FROM ph WHERE payload NOT LIKE 'd%'")

echo "crash-directory: immediate stop (crash) and restart" >&2
pgctl -m immediate stop >/dev/null
wait "$DOOMED" 2>/dev/null || true
restart_after_crash ""

shape after ch
shape after ph
fail=0
check() {
    local what=$1 sql=$2 got
    got=$(q -c "$sql" 2>&1) || true
    if [ "$got" = t ]; then
        echo "crash-directory: ok   $what" >&2
    else
        echo "crash-directory: FAIL $what (got: $got)" >&2
        fail=1
    fi
}
check "clustered_heap keeps every committed row" "SELECT count(*) = $expect_ch FROM ch"
check "plain heap keeps every committed row" "SELECT count(*) = $expect_ph FROM ph"
check "the crashed transaction left nothing" "SELECT NOT EXISTS (SELECT 1 FROM ch WHERE payload = 'doomed') AND NOT EXISTS (SELECT 1 FROM ph WHERE payload LIKE 'd%')"
for t in ch ph; do
    check "directory of $t at depth 1, not overflowed" "SELECT directory_levels = 1 AND directory_pages >= 2 AND NOT overflowed FROM clustered_pg.directory_stats('$t')"
    check "verify($t) clean" "SELECT count(*) = 0 FROM clustered_pg.verify('$t')"
    check "index scans match sequential scans ($t)" "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT (SELECT count(*) FROM $t WHERE id BETWEEN 1000 AND 12000) = (SELECT count(*) FROM $t WHERE id + 0 BETWEEN 1000 AND 12000)"
    check "every key found by equality ($t)" "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) = 0 FROM $t a WHERE NOT EXISTS (SELECT 1 FROM $t b WHERE b.id = a.id + 0)"
done
check "ch's directory pages split (more than the two of growing to depth 1)" "SELECT directory_pages > 2 FROM clustered_pg.directory_stats('ch')"
check "inserts work after recovery" "INSERT INTO ch SELECT g + 200000, 'after' FROM generate_series(1, 3000) g; SELECT count(*) = 0 FROM clustered_pg.verify('ch')"
psql -X -q -d postgres -c 'DROP DATABASE cpg_crashdir' >/dev/null 2>&1 || true
if [ "$fail" -ne 0 ]; then
    echo "crash-directory: FAIL" >&2
    exit 1
fi
echo "crash-directory: PASS" >&2
