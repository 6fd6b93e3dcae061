#!/usr/bin/env bash
# regress/bench/lookup_check.sh -- issue B acceptance check, part of `make bench`.
#
# On a plain heap loaded in key order, clustered_pk_index must answer point
# lookups and ranges of 100 / 5,000 keys in at most (ideal heap blocks + 2)
# shared buffers, and be under 2 % of a btree's size on the same column.
# The btree numbers are printed next to it as the yardstick, not checked.
# A third table holds the same rows with BOTH indexes (a btree next to the
# clustered index, as with a PRIMARY KEY): wherever the clustered index
# reads fewer buffers than the btree does, the planner must pick it (the
# ClusteredRangeScan custom scan for ranges), and then stay within ideal + 2.
#
# Usage:
#   regress/bench/lookup_check.sh      own throwaway cluster (regress/with-cluster.sh)
#                                      of $PG_CONFIG (default: pg_config in PATH),
#                                      which must have clustered_pg installed
#   make bench-lookup                  the same through run.sh: private PG copy,
#                                      build + install there, bench server settings
#   make bench                         runs it after the main bench; docs/benchmarks.md
#                                      gets BENCH_OUT/lookup.md as a section
# Knobs: BENCH_LOOKUP_N (rows, default 1000000), BENCH_OUT (default bench-out),
#        BENCH_CK_WITH (options of the clustered_pk_index, as in bench.py).
# Writes BENCH_OUT/lookup.json and BENCH_OUT/lookup.md, prints lookup.md.
# Exit status: 0 every bound holds, 1 a bound fails, 2 usage / setup error.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)

# Outside a cluster, re-run inside a throwaway one: the check drops and
# creates tables and must never touch a server someone else uses.
if [ "${LOOKUP_CHECK_IN_CLUSTER:-0}" != 1 ]; then
    export LOOKUP_CHECK_IN_CLUSTER=1
    exec "$REPO/regress/with-cluster.sh" "${PG_CONFIG:-pg_config}" "$HERE/lookup_check.sh" "$@"
fi

N=${BENCH_LOOKUP_N:-1000000}
case "$N" in ''|*[!0-9]*) echo "lookup_check: BENCH_LOOKUP_N must be a positive integer" >&2; exit 2 ;; esac
# Below ~10k rows a 5,000-key range is half the table: no longer a lookup.
[ "$N" -ge 10000 ] || { echo "lookup_check: BENCH_LOOKUP_N must be >= 10000" >&2; exit 2; }
OUT=${BENCH_OUT:-$REPO/bench-out}
mkdir -p "$OUT"
CKW=""
[ -z "${BENCH_CK_WITH:-}" ] || CKW="WITH (${BENCH_CK_WITH})"
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)

psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "lookup_check: loading $N rows in key order into lk_ck, lk_bt and lk_both ..." >&2
T0=$(date +%s)
# Both tables get the same rows in the same physical order (one INSERT from
# an ascending generate_series), and each index is built after the load, so
# the only difference between them is the index.
psql_ -v N="$N" -v ckw="$CKW" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS clustered_pg;
DROP TABLE IF EXISTS lk_ck, lk_bt, lk_both, lk_result, lk_both_result;
CREATE TABLE lk_ck (id bigint, ts timestamptz, payload text);
CREATE TABLE lk_bt (id bigint, ts timestamptz, payload text);
CREATE TABLE lk_both (id bigint, ts timestamptz, payload text);
-- Same row shape as bench.py (~100-byte payload).
INSERT INTO lk_ck
SELECT i, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second',
       substr(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) || md5((i + 3)::text), 1, 100)
  FROM generate_series(1, :N) AS i;
INSERT INTO lk_bt SELECT * FROM lk_ck ORDER BY ctid;
INSERT INTO lk_both SELECT * FROM lk_ck ORDER BY ctid;
CREATE INDEX lk_ck_id ON lk_ck USING clustered_pk_index (id) :ckw;
CREATE INDEX lk_bt_id ON lk_bt USING btree (id);
CREATE INDEX lk_both_ck ON lk_both USING clustered_pk_index (id) :ckw;
CREATE INDEX lk_both_bt ON lk_both USING btree (id);
VACUUM ANALYZE lk_ck;
VACUUM ANALYZE lk_bt;
VACUUM ANALYZE lk_both;

CREATE OR REPLACE FUNCTION lk_explain(q text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || q INTO j;
    RETURN (j::jsonb) -> 0 -> 'Plan';
END $$;
-- 'Bitmap Heap Scan > Bitmap Index Scan (lk_ck_id)': the plan's first-child
-- chain; a custom scan shows its provider ('Custom Scan ClusteredRangeScan (lk_ck_id)').
CREATE OR REPLACE FUNCTION lk_describe(n jsonb) RETURNS text LANGUAGE plpgsql STRICT AS $$
BEGIN
    RETURN (n ->> 'Node Type') || coalesce(' ' || (n ->> 'Custom Plan Provider'), '')
           || coalesce(' (' || (n ->> 'Index Name') || ')', '')
           || coalesce(' > ' || lk_describe(n -> 'Plans' -> 0), '');
END $$;

-- One throwaway query per table first: the measured queries then see what
-- a warm session sees (relcache and index metapage caches already loaded),
-- the same for both indexes.
SELECT lk_explain('SELECT * FROM lk_ck WHERE id = 1') IS NULL AS warm_ck,
       lk_explain('SELECT * FROM lk_bt WHERE id = 1') IS NULL AS warm_bt,
       lk_explain('SELECT * FROM lk_both WHERE id = 1') IS NULL AS warm_both \gset

-- 7 deterministic positions per shape, from the first key to the last.
-- ideal: distinct heap blocks of the matching rows, found by a seq scan
-- (id + 0 cannot use an index).  Buffers: hit + read of the top plan node.
CREATE TABLE lk_result AS
WITH shapes(ord, shape, w) AS (VALUES (1, 'point', 1), (2, 'range 100', 100), (3, 'range 5,000', 5000)),
pos AS (
    SELECT ord, shape, w, k, 1 + ((:N - w)::bigint * k) / 6 AS lo
      FROM shapes, generate_series(0, 6) AS k),
q AS (
    SELECT *, lo + w - 1 AS hi,
           CASE WHEN w = 1 THEN format('id = %s', lo)
                ELSE format('id BETWEEN %s AND %s', lo, lo + w - 1) END AS pred
      FROM pos),
m AS (
    SELECT q.*,
           (SELECT count(DISTINCT (ctid::text::point)[0]) FROM lk_ck WHERE id + 0 BETWEEN q.lo AND q.hi) AS ideal,
           lk_explain('SELECT * FROM lk_ck WHERE ' || pred) AS ck,
           lk_explain('SELECT * FROM lk_bt WHERE ' || pred) AS bt
      FROM q)
SELECT ord, shape, w, k, lo, hi, pred, ideal, ideal + 2 AS bound,
       lk_describe(ck) AS ck_plan,
       (ck ->> 'Shared Hit Blocks')::int + (ck ->> 'Shared Read Blocks')::int AS ck_buffers,
       (ck ->> 'Actual Rows')::numeric AS ck_rows,
       jsonb_path_exists(ck, '$.** ? (@."Index Name" == "lk_ck_id")') AS ck_uses_index,
       (ck ->> 'Actual Total Time')::numeric AS ck_ms,
       lk_describe(bt) AS bt_plan,
       (bt ->> 'Shared Hit Blocks')::int + (bt ->> 'Shared Read Blocks')::int AS bt_buffers,
       (bt ->> 'Actual Rows')::numeric AS bt_rows,
       (bt ->> 'Actual Total Time')::numeric AS bt_ms
  FROM m;
-- A pass needs the clustered index in the plan, every key returned, and
-- the buffer bound.
ALTER TABLE lk_result ADD COLUMN pass boolean;
UPDATE lk_result SET pass = ck_uses_index AND ck_rows = w AND ck_buffers <= bound;

-- Both indexes on one table: the same queries, plus two unselective ones
-- (half the table: the clustered index still reads half the blocks, in
-- one run; the whole table: a sequential scan must win). The clustered
-- index must be in the plan wherever, alone, it reads fewer buffers than
-- the btree alone (lk_result), and then stay within ideal + 2.
CREATE TABLE lk_both_result AS
WITH q AS (
    SELECT ord, shape, w, k, lo, hi, pred, ideal, bound, ck_buffers AS alone_ck_buffers,
           bt_buffers AS alone_bt_buffers
      FROM lk_result
    UNION ALL
    SELECT 4, 'half', (:N - :N / 2)::int, 0, :N / 2 + 1, :N, format('id > %s', :N / 2), NULL, NULL, NULL, NULL
    UNION ALL
    SELECT 5, 'all', :N, 0, 1, :N, 'id >= 1', NULL, NULL, NULL, NULL),
m AS (SELECT q.*, lk_explain('SELECT * FROM lk_both WHERE ' || pred) AS p FROM q)
SELECT ord, shape, w, k, lo, hi, pred, ideal, bound, alone_ck_buffers, alone_bt_buffers,
       lk_describe(p) AS plan,
       (p ->> 'Shared Hit Blocks')::int + (p ->> 'Shared Read Blocks')::int AS buffers,
       (p ->> 'Actual Rows')::numeric AS rows_,
       jsonb_path_exists(p, '$.** ? (@."Index Name" == "lk_both_ck")') AS uses_ck,
       jsonb_path_exists(p, '$.** ? (@."Custom Plan Provider" == "ClusteredRangeScan")') AS range_scan,
       (p ->> 'Actual Total Time')::numeric AS ms
  FROM m;
ALTER TABLE lk_both_result ADD COLUMN pass boolean;
UPDATE lk_both_result
   SET pass = rows_ = w
              AND (alone_ck_buffers IS NULL OR alone_ck_buffers >= alone_bt_buffers OR uses_ck)
              AND (NOT uses_ck OR bound IS NULL OR buffers <= bound)
              AND (shape <> 'all' OR plan LIKE 'Seq Scan%');
SQL
T1=$(date +%s)

# Everything below is read back from lk_result and the catalogs, so the
# printed table, lookup.md and lookup.json cannot disagree.
psql_ -At -o "$OUT/lookup.json" -v N="$N" -v commit="$COMMIT" -v secs="$((T1 - T0))" <<'SQL'
WITH sz AS (SELECT pg_relation_size('lk_ck_id') AS ck, pg_relation_size('lk_bt_id') AS bt)
SELECT jsonb_pretty(jsonb_build_object(
    'generated_by', 'regress/bench/lookup_check.sh',
    'date', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'git_commit', :'commit',
    'postgres', version(),
    'shared_buffers', current_setting('shared_buffers'),
    'n', :N,
    'seconds', :secs,
    'table', 'plain heap (id bigint, ts timestamptz, payload text), keys 1..N loaded in key order',
    'index_clustered', pg_get_indexdef('lk_ck_id'::regclass),
    'index_btree', pg_get_indexdef('lk_bt_id'::regclass),
    'heap_pages', (SELECT relpages FROM pg_class WHERE oid = 'lk_ck'::regclass),
    'index_bytes', jsonb_build_object('clustered', sz.ck, 'btree', sz.bt),
    'index_ratio', round(sz.ck::numeric / sz.bt, 5),
    'index_pass', sz.ck::numeric / sz.bt < 0.02,
    'queries', (SELECT jsonb_agg(to_jsonb(r) ORDER BY ord, k) FROM lk_result r),
    'queries_failed', (SELECT count(*) FROM lk_result WHERE NOT pass),
    'both_indexes', jsonb_build_object(
        'table', 'lk_both: the same rows with a clustered_pk_index and a btree on id',
        'queries', (SELECT jsonb_agg(to_jsonb(r) ORDER BY ord, k) FROM lk_both_result r),
        'queries_failed', (SELECT count(*) FROM lk_both_result WHERE NOT pass)),
    'pass', sz.ck::numeric / sz.bt < 0.02 AND NOT EXISTS (SELECT FROM lk_result WHERE NOT pass)
            AND NOT EXISTS (SELECT FROM lk_both_result WHERE NOT pass)))
  FROM sz;
SQL

psql_ -At -o "$OUT/lookup.md" -v N="$N" -v commit="$COMMIT" <<'SQL'
WITH sz AS (SELECT pg_relation_size('lk_ck_id') AS ck, pg_relation_size('lk_bt_id') AS bt),
plans AS (
    SELECT string_agg(format('- %s: `lk_ck` %s; `lk_bt` %s', shape, ck_plans, bt_plans), E'\n' ORDER BY ord) AS txt
      FROM (SELECT ord, shape, string_agg(DISTINCT ck_plan, ' / ') AS ck_plans,
                   string_agg(DISTINCT bt_plan, ' / ') AS bt_plans
              FROM lk_result GROUP BY ord, shape) p)
SELECT format($md$## Key-order plain heap: lookups vs ideal (issue B)

`regress/bench/lookup_check.sh`, %s, clustered_pg at commit `%s`, %s,
shared_buffers %s. Two plain heap tables `(id bigint, ts timestamptz, payload text)`,
keys 1..%s loaded in key order (~100-byte payload, %s heap pages each), index
built after the load, `VACUUM ANALYZE`: `lk_ck` with `%s`, `lk_bt` with
`%s`. Seven positions per shape from the first key to the last; plans are
the planner's own (no `enable_*` settings). *ideal* = distinct heap blocks
holding the matching rows (seq scan, `id + 0`); *buffers* = shared hit + read
of the top node of `EXPLAIN (ANALYZE, BUFFERS)`, after one warm-up query per
table. A query passes when its plan uses `lk_ck_id`, it returns every key,
and clustered buffers <= ideal + 2.

| query | ideal | clustered buffers | bound (ideal+2) | pass | clustered plan | btree buffers |
|---|---:|---:|---:|---|---|---:|
%s

Plans:
%s

| index | bytes | ratio to btree | pass (< 2 %%) |
|---|---:|---:|---|
| `lk_ck_id` (clustered_pk_index) | %s | %s %% | %s |
| `lk_bt_id` (btree) | %s | 100 %% | |

**%s**: %s of %s queries within ideal + 2 buffers, clustered index %s %% of the btree.

### Both indexes on one table (btree next to the clustered index)

`lk_both`: the same rows, `%s` and `%s`. The planner's own plans; *alone*
= the buffers of `lk_ck` (clustered index only) and `lk_bt` (btree only)
above. A query passes when it returns every row, uses the clustered index
wherever that index alone reads fewer buffers than the btree alone, stays
within ideal + 2 when it does, and the whole-table query is a sequential scan.

| query | plan | buffers | ideal + 2 | clustered alone | btree alone | pass |
|---|---|---:|---:|---:|---:|---|
%s

**%s**: %s of %s queries; the ClusteredRangeScan custom scan served %s of the %s ranges below the whole table.
$md$,
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), :'commit',
    split_part(version(), ' on ', 1), current_setting('shared_buffers'),
    to_char(:N, 'FM999,999,999,999'), (SELECT relpages FROM pg_class WHERE oid = 'lk_ck'::regclass),
    pg_get_indexdef('lk_ck_id'::regclass), pg_get_indexdef('lk_bt_id'::regclass),
    (SELECT string_agg(format('| %s `%s` | %s | %s | %s | %s | %s | %s |', shape, pred, ideal, ck_buffers, bound,
                              CASE WHEN pass THEN 'pass' ELSE '**FAIL**' END,
                              CASE WHEN ck_plan LIKE 'Bitmap Heap Scan > Bitmap Index Scan (lk_ck_id)%' THEN 'bitmap'
                                   WHEN ck_plan = 'Index Scan (lk_ck_id)' THEN 'index scan'
                                   WHEN ck_plan = 'Custom Scan ClusteredRangeScan (lk_ck_id)' THEN 'range scan'
                                   ELSE ck_plan END,
                              bt_buffers), E'\n' ORDER BY ord, k)
       FROM lk_result),
    plans.txt,
    sz.ck, round(100 * sz.ck::numeric / sz.bt, 2), CASE WHEN sz.ck::numeric / sz.bt < 0.02 THEN 'pass' ELSE '**FAIL**' END,
    sz.bt,
    CASE WHEN sz.ck::numeric / sz.bt < 0.02 AND NOT EXISTS (SELECT FROM lk_result WHERE NOT pass)
         THEN 'PASS' ELSE 'FAIL' END,
    (SELECT count(*) FILTER (WHERE pass) FROM lk_result), (SELECT count(*) FROM lk_result),
    round(100 * sz.ck::numeric / sz.bt, 2),
    pg_get_indexdef('lk_both_ck'::regclass), pg_get_indexdef('lk_both_bt'::regclass),
    (SELECT string_agg(format('| %s `%s` | %s | %s | %s | %s | %s | %s |', shape, pred,
                              CASE WHEN plan = 'Custom Scan ClusteredRangeScan (lk_both_ck)' THEN 'range scan'
                                   WHEN plan = 'Index Scan (lk_both_ck)' THEN 'clustered index scan'
                                   WHEN plan = 'Index Scan (lk_both_bt)' THEN 'btree index scan'
                                   ELSE plan END,
                              buffers, coalesce(bound::text, ''), coalesce(alone_ck_buffers::text, ''),
                              coalesce(alone_bt_buffers::text, ''),
                              CASE WHEN pass THEN 'pass' ELSE '**FAIL**' END), E'\n' ORDER BY ord, k)
       FROM lk_both_result),
    CASE WHEN NOT EXISTS (SELECT FROM lk_both_result WHERE NOT pass) THEN 'PASS' ELSE 'FAIL' END,
    (SELECT count(*) FILTER (WHERE pass) FROM lk_both_result), (SELECT count(*) FROM lk_both_result),
    (SELECT count(*) FILTER (WHERE range_scan AND w > 1 AND shape <> 'all') FROM lk_both_result),
    (SELECT count(*) FILTER (WHERE w > 1 AND shape <> 'all') FROM lk_both_result))
  FROM sz, plans;
SQL

cat "$OUT/lookup.md"
VERDICT=$(psql_ -At -c "SELECT pg_relation_size('lk_ck_id')::numeric / pg_relation_size('lk_bt_id') < 0.02
                               AND NOT EXISTS (SELECT FROM lk_result WHERE NOT pass)
                               AND NOT EXISTS (SELECT FROM lk_both_result WHERE NOT pass)")
if [ "$VERDICT" = t ]; then
    echo "lookup_check: PASS (N=$N, $((T1 - T0)) s; $OUT/lookup.md, lookup.json)" >&2
else
    echo "lookup_check: FAIL (N=$N, $((T1 - T0)) s): see the FAIL rows above; $OUT/lookup.md, lookup.json" >&2
    exit 1
fi
