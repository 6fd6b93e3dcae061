#!/usr/bin/env bash
# regress/dump-restore.sh -- pg_dump / pg_restore round trips of clustered tables.
#
# Runs against the server given by the PG* environment (PGHOST, PGPORT, ...).
# If PGHOST is unset it re-executes itself under regress/with-cluster.sh with
# ${PG_CONFIG:-pg_config}, i.e. on a throwaway cluster.
#
# Creates database cpg_dump_src with
#   dr_ch  (id bigint NOT NULL, v int, payload text) USING clustered_heap,
#          a clustered_pk_index WITH (split_threshold, target_fillfactor,
#          auto_repack_interval), a UNIQUE btree on id and a btree on v;
#   dr_ph  (id int, payload text) plain heap with a clustered_pk_index
#          WITH (split_threshold) and a btree primary key,
# loads rows in random order (plus updates, key changes and deletes), then
#   1. pg_dump -Fc | pg_restore into a new database (createdb cpg_dump_fc),
#   2. plain-text pg_dump | psql into another one (cpg_dump_plain),
# and checks each copy against the source: table AM (pg_class.relam ->
# pg_am.amname), index AM and reloptions, pg_get_indexdef, row count,
# sum(id) and a content hash, verify() clean, a forced clustered_pk_index
# scan finds the rows a sequential scan finds, and writes after the restore
# keep verify() clean.  Prints ok/FAIL per check and one PASS/FAIL line;
# exits non-zero on failure.  The databases are dropped at the end
# (DUMP_KEEP_DB=1 keeps them).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd -P)

if [ -z "${PGHOST:-}" ]; then
    exec "$REPO/regress/with-cluster.sh" "${PG_CONFIG:-pg_config}" "$REPO/regress/dump-restore.sh" "$@"
fi

PG_CONFIG=${PG_CONFIG:-pg_config}
BINDIR=$("$PG_CONFIG" --bindir)
for b in psql pg_dump pg_restore createdb dropdb; do
    [ -x "$BINDIR/$b" ] || { echo "dump-restore: $b not found in $BINDIR" >&2; exit 2; }
done
PSQL="$BINDIR/psql"
SRC=cpg_dump_src
DBS=("$SRC" cpg_dump_fc cpg_dump_plain)

log() { echo "dump-restore: $*" >&2; }
q() { local db=$1; shift; "$PSQL" -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpg-dump.XXXXXX")
chmod 755 "$WORK"
cleanup() {
    local rc=$?
    if [ "${DUMP_KEEP_DB:-0}" != 1 ]; then
        for db in "${DBS[@]}"; do
            "$BINDIR/dropdb" --if-exists "$db" >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

for db in "${DBS[@]}"; do "$BINDIR/dropdb" --if-exists "$db" >/dev/null 2>&1; done

log "loading $SRC on $(q postgres -c 'SHOW server_version')"
"$BINDIR/createdb" "$SRC"
q "$SRC" <<'SQL'
CREATE EXTENSION clustered_pg;
CREATE TABLE dr_ch (id bigint NOT NULL, v int, payload text) USING clustered_heap;
CREATE INDEX dr_ch_ck ON dr_ch USING clustered_pk_index (id)
    WITH (split_threshold = 128, target_fillfactor = 80, auto_repack_interval = 600);
CREATE UNIQUE INDEX dr_ch_id_key ON dr_ch (id);
CREATE INDEX dr_ch_v ON dr_ch (v);
CREATE TABLE dr_ph (id int PRIMARY KEY, payload text);
CREATE INDEX dr_ph_ck ON dr_ph USING clustered_pk_index (id) WITH (split_threshold = 64);
SELECT setseed(0.25);
INSERT INTO dr_ch SELECT g * 7, g % 100, repeat(md5(g::text), 3) FROM generate_series(1, 30000) g ORDER BY random();
UPDATE dr_ch SET id = id + 1000000 WHERE id % 11 = 0;
UPDATE dr_ch SET payload = 'upd ' || id WHERE id % 13 = 0;
DELETE FROM dr_ch WHERE id % 17 = 0;
INSERT INTO dr_ph SELECT g, 'p' || g FROM generate_series(1, 5000) g;
DELETE FROM dr_ph WHERE id % 5 = 0;
VACUUM ANALYZE dr_ch;
VACUUM ANALYZE dr_ph;
SQL

NCHECKS=0
NFAILED=0
# check "<description>" DB "<SQL returning exactly 't' when the check passes>"
check() {
    local what=$1 db=$2 sql=$3 out
    NCHECKS=$((NCHECKS + 1))
    if out=$(q "$db" -c "$sql" 2>&1) && [ "$out" = t ]; then
        log "  ok    [$db] $what"
    else
        NFAILED=$((NFAILED + 1))
        log "  FAIL  [$db] $what"
        log "        query: $sql"
        log "        got:   $out"
    fi
}
# same "<description>" DB "<SQL>" -- the SQL's output in DB equals its output in $SRC.
same() {
    local what=$1 db=$2 sql=$3 want got
    NCHECKS=$((NCHECKS + 1))
    want=$(q "$SRC" -c "$sql" 2>&1) || want="ERROR in $SRC: $want"
    got=$(q "$db" -c "$sql" 2>&1) || got="ERROR: $got"
    if [ "$got" = "$want" ] && [ -n "$want" ]; then
        log "  ok    [$db] $what ($(tr '\n' ' ' <<<"$got" | cut -c1-120))"
    else
        NFAILED=$((NFAILED + 1))
        log "  FAIL  [$db] $what"
        log "        query:     $sql"
        log "        in $SRC: $want"
        log "        got:       $got"
    fi
}

# Checks of one copy (also run on the source, as a baseline).
check_db() {
    local db=$1 t
    same "table access methods" "$db" \
        "SELECT string_agg(c.relname || '=' || a.amname, ',' ORDER BY c.relname)
           FROM pg_class c JOIN pg_am a ON a.oid = c.relam
          WHERE c.relname IN ('dr_ch', 'dr_ph') AND c.relkind = 'r'"
    check "dr_ch uses clustered_heap" "$db" \
        "SELECT a.amname = 'clustered_heap' FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = 'dr_ch'::regclass"
    check "dr_ch_ck and dr_ph_ck use clustered_pk_index" "$db" \
        "SELECT count(*) = 2 FROM pg_class c JOIN pg_am a ON a.oid = c.relam
          WHERE c.relname IN ('dr_ch_ck', 'dr_ph_ck') AND a.amname = 'clustered_pk_index'"
    same "index access methods and reloptions" "$db" \
        "SELECT string_agg(c.relname || ' ' || a.amname || ' ' || coalesce(c.reloptions::text, '-'), E'\n' ORDER BY c.relname)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
          WHERE i.indrelid IN ('dr_ch'::regclass, 'dr_ph'::regclass)"
    check "dr_ch_ck reloptions are the ones it was created with" "$db" \
        "SELECT reloptions::text = '{split_threshold=128,target_fillfactor=80,auto_repack_interval=600}' FROM pg_class WHERE oid = 'dr_ch_ck'::regclass"
    same "index definitions" "$db" \
        "SELECT string_agg(pg_get_indexdef(indexrelid), E'\n' ORDER BY indexrelid::regclass::text)
           FROM pg_index WHERE indrelid IN ('dr_ch'::regclass, 'dr_ph'::regclass)"
    same "segment_map options" "$db" \
        "SELECT DISTINCT split_threshold FROM clustered_pg.segment_map_of('dr_ch')"
    for t in dr_ch dr_ph; do
        same "$t count(*), sum(id)" "$db" "SELECT count(*), sum(id) FROM $t"
        same "$t content hash" "$db" \
            "SELECT md5(string_agg(id || ':' || coalesce(payload, ''), ',' ORDER BY id)) FROM $t"
        check "verify($t) returns no rows" "$db" "SELECT count(*) = 0 FROM clustered_pg.verify('$t')"
        # row_count is exact after a build (the restore's CREATE INDEX), not
        # after deletes (they are not subtracted): skip it on the source.
        [ "$db" = "$SRC" ] || check "segment_map_stats($t).total_rows = count(*) (exact after the index build)" "$db" \
            "SELECT (SELECT total_rows FROM clustered_pg.segment_map_stats('$t')) = (SELECT count(*) FROM $t)"
        # Force the clustered_pk_index: drop the btrees in a rolled-back transaction.
        local plan
        plan=$(q "$db" -c "BEGIN; DROP INDEX IF EXISTS dr_ch_id_key, dr_ch_v; ALTER TABLE dr_ph DROP CONSTRAINT dr_ph_pkey;
                           SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
                           SET LOCAL clustered_pg.enable_range_scan = off;
                           EXPLAIN (COSTS OFF) SELECT * FROM $t WHERE id BETWEEN 700 AND 2100; ROLLBACK" 2>&1 || true)
        NCHECKS=$((NCHECKS + 1))
        if grep -q "Index Scan using ${t}_ck" <<<"$plan"; then
            log "  ok    [$db] the forced index scan on $t uses ${t}_ck"
        else
            NFAILED=$((NFAILED + 1))
            log "  FAIL  [$db] the forced index scan on $t does not use ${t}_ck; plan: $(tr '\n' ' ' <<<"$plan")"
        fi
        check "$t: clustered_pk_index scans and the range scan find what a seq scan finds (3 ranges, point lookups)" "$db" \
            "BEGIN; DROP INDEX IF EXISTS dr_ch_id_key, dr_ch_v; ALTER TABLE dr_ph DROP CONSTRAINT dr_ph_pkey;
             CREATE TEMP TABLE c (what text, n bigint, s numeric);
             SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
             SET LOCAL clustered_pg.enable_range_scan = off;
             INSERT INTO c SELECT 'index1', count(*), sum(id) FROM $t WHERE id BETWEEN 700 AND 2100;
             INSERT INTO c SELECT 'index2', count(*), sum(id) FROM $t WHERE id < 5000;
             INSERT INTO c SELECT 'index3', count(*), sum(id) FROM $t WHERE id > 1000000;
             INSERT INTO c SELECT 'points', count(*), NULL FROM $t x WHERE EXISTS (SELECT 1 FROM $t y WHERE y.id = x.id AND y.ctid = x.ctid);
             SET LOCAL enable_indexscan = off; SET LOCAL clustered_pg.enable_range_scan = on;
             INSERT INTO c SELECT 'range1', count(*), sum(id) FROM $t WHERE id BETWEEN 700 AND 2100;
             SET LOCAL clustered_pg.enable_range_scan = off; SET LOCAL enable_seqscan = on;
             INSERT INTO c SELECT 'seq1', count(*), sum(id) FROM $t WHERE id BETWEEN 700 AND 2100;
             INSERT INTO c SELECT 'seq2', count(*), sum(id) FROM $t WHERE id < 5000;
             INSERT INTO c SELECT 'seq3', count(*), sum(id) FROM $t WHERE id > 1000000;
             INSERT INTO c SELECT 'all', count(*), NULL FROM $t;
             SELECT (SELECT n FROM c WHERE what = 'index1') > 0
                AND (SELECT (n, s) FROM c WHERE what = 'index1') = (SELECT (n, s) FROM c WHERE what = 'seq1')
                AND (SELECT (n, s) FROM c WHERE what = 'range1') = (SELECT (n, s) FROM c WHERE what = 'seq1')
                AND (SELECT (n, s) FROM c WHERE what = 'index2') = (SELECT (n, s) FROM c WHERE what = 'seq2')
                AND (SELECT (n, coalesce(s, 0)) FROM c WHERE what = 'index3') = (SELECT (n, coalesce(s, 0)) FROM c WHERE what = 'seq3')
                AND (SELECT n FROM c WHERE what = 'points') = (SELECT n FROM c WHERE what = 'all');
             ROLLBACK"
    done
}

# Writes after the restore: placement and the map keep working.
check_writes() {
    local db=$1
    check "inserts/updates/deletes after the restore keep verify() clean" "$db" \
        "INSERT INTO dr_ch SELECT g * 7 + 3, 1, 'new' FROM generate_series(1, 3000) g;
         UPDATE dr_ch SET id = id + 5000000 WHERE id % 23 = 0;
         DELETE FROM dr_ch WHERE id % 29 = 0;
         INSERT INTO dr_ph SELECT g, 'new' FROM generate_series(5001, 6000) g;
         SELECT (SELECT count(*) FROM clustered_pg.verify('dr_ch')) = 0
            AND (SELECT count(*) FROM clustered_pg.verify('dr_ph')) = 0"
}

log "checks on the source database"
check_db "$SRC"

# 1. custom format: pg_dump -Fc, pg_restore into a new database
log "pg_dump -Fc $SRC | pg_restore -d cpg_dump_fc"
if ! "$BINDIR/pg_dump" -Fc -f "$WORK/src.dump" "$SRC" 2>"$WORK/pg_dump-fc.err"; then
    cat "$WORK/pg_dump-fc.err" >&2
    echo "dump-restore: FAIL (pg_dump -Fc failed)"
    exit 1
fi
"$BINDIR/createdb" cpg_dump_fc
if ! "$BINDIR/pg_restore" --exit-on-error -d cpg_dump_fc "$WORK/src.dump" 2>"$WORK/pg_restore.err"; then
    cat "$WORK/pg_restore.err" >&2
    echo "dump-restore: FAIL (pg_restore failed)"
    exit 1
fi
[ -s "$WORK/pg_restore.err" ] && { log "pg_restore said:"; cat "$WORK/pg_restore.err" >&2; }
check_db cpg_dump_fc
check_writes cpg_dump_fc

# 2. plain text: pg_dump | psql
log "pg_dump $SRC | psql -d cpg_dump_plain"
"$BINDIR/createdb" cpg_dump_plain
if ! "$BINDIR/pg_dump" "$SRC" >"$WORK/src.sql" 2>"$WORK/pg_dump-plain.err"; then
    cat "$WORK/pg_dump-plain.err" >&2
    echo "dump-restore: FAIL (plain pg_dump failed)"
    exit 1
fi
if ! "$PSQL" -X -q -v ON_ERROR_STOP=1 -d cpg_dump_plain -f "$WORK/src.sql" >"$WORK/psql-restore.out" 2>&1; then
    cat "$WORK/psql-restore.out" >&2
    echo "dump-restore: FAIL (psql restore of the plain dump failed)"
    exit 1
fi
check_db cpg_dump_plain
check_writes cpg_dump_plain

if [ "$NFAILED" -eq 0 ]; then
    echo "dump-restore: PASS ($NCHECKS checks: source, pg_dump -Fc/pg_restore, plain pg_dump/psql)"
else
    echo "dump-restore: FAIL ($NFAILED of $NCHECKS checks failed)"
    exit 1
fi
