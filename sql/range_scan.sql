-- ClusteredRangeScan: the custom scan that reads the heap blocks a
-- clustered_pk_index names for a key range, each once, in block order.
-- With a btree PRIMARY KEY on the same column the planner must take it for
-- selective ranges (it reads fewer pages), a sequential scan for
-- unselective ones; results equal a sequential scan's; buffers stay at the
-- candidate blocks plus the map pages; rescans, parameters, NULL bounds,
-- empty tables and an overflowed map work; the GUC switches it off.
CREATE EXTENSION clustered_pg;
SET search_path = public;

-- Every node of a plan (EXPLAIN ANALYZE, FORMAT JSON), flattened, with the
-- buffers it touched (its own and its children's, as EXPLAIN counts them).
CREATE FUNCTION nodes(q text)
RETURNS TABLE (node text, provider text, index_name text, buffers int,
               candidate_blocks int, block_runs int, actual_rows bigint,
               loops numeric, map text) LANGUAGE plpgsql AS $$
DECLARE j jsonb;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) ' || q
    INTO j;
  RETURN QUERY
  WITH RECURSIVE walk(p) AS (
    SELECT j->0->'Plan'
    UNION ALL
    SELECT c FROM walk, jsonb_array_elements(walk.p->'Plans') c
  )
  SELECT p->>'Node Type', p->>'Custom Plan Provider', p->>'Index Name',
         (p->>'Shared Hit Blocks')::int + (p->>'Shared Read Blocks')::int,
         (p->>'Candidate Blocks')::int, (p->>'Block Runs')::int,
         round((p->>'Actual Rows')::numeric)::bigint, (p->>'Actual Loops')::numeric, p->>'Map'
    FROM walk;
END $$;

-- The range scan node of a query (NULL row when the plan has none).
CREATE FUNCTION range_node(q text)
RETURNS TABLE (buffers int, candidate_blocks int, block_runs int, actual_rows bigint,
               loops numeric, map text) LANGUAGE sql AS $$
  SELECT buffers, candidate_blocks, block_runs, actual_rows, loops, map
    FROM nodes(q) WHERE provider = 'ClusteredRangeScan'
$$;

-- The scan node the planner picks, in one line.
CREATE FUNCTION scan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; out text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    IF line ~ '(Scan|Result)' THEN
      out := out || CASE WHEN out = '' THEN '' ELSE ' / ' END
                 || regexp_replace(line, '^[ ->]*', '');
    END IF;
  END LOOP;
  RETURN out;
END $$;

-- count, sum and a hash of the rows a predicate selects through the range
-- scan (every other path off, so edge cases run through the node whatever
-- the planner would pick), and through a sequential scan (every index path
-- and the custom scan off). Equal means the node lost and invented nothing.
CREATE FUNCTION same_as_seq(t regclass, pred text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE q text := format('SELECT count(*), coalesce(sum(v), 0), coalesce(sum(hashtext(id::text || pad)), 0) FROM %s WHERE %s', t, pred);
        a text; b text; plan text;
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_indexscan = off;
  SET LOCAL enable_bitmapscan = off;
  SET LOCAL enable_indexonlyscan = off;
  plan := scan_of(q);
  EXECUTE q INTO a;
  SET LOCAL enable_seqscan = on;
  SET LOCAL clustered_pg.enable_range_scan = off;
  EXECUTE q INTO b;
  RETURN format('%s: %s, %s', pred, CASE WHEN a = b THEN 'same as seq scan' ELSE 'DIFFERENT: ' || a || ' vs ' || b END, plan);
END $$;

-- Heap blocks that really hold a key range (the ideal a scan could read).
CREATE FUNCTION ideal(t regclass, lo bigint, hi bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(DISTINCT (ctid::text::point)[0]) FROM %s WHERE id + 0 BETWEEN %s AND %s', t, lo, hi)
    INTO n;
  RETURN n;
END $$;

-- 1. A plain heap loaded in key order, and a clustered_heap table loaded in
-- random order; each with a btree PRIMARY KEY and a clustered_pk_index on
-- the same column.
CREATE TABLE rk (id bigint PRIMARY KEY, v int NOT NULL, pad text)
  WITH (autovacuum_enabled = off);
INSERT INTO rk SELECT g, g % 1000, repeat('k', 100) FROM generate_series(1, 60000) g;
CREATE INDEX rk_ck ON rk USING clustered_pk_index (id);
CREATE TABLE rc (id bigint PRIMARY KEY, v int NOT NULL, pad text) USING clustered_heap
  WITH (autovacuum_enabled = off);
CREATE INDEX rc_ck ON rc USING clustered_pk_index (id);
SELECT setseed(0.25);
INSERT INTO rc SELECT g, g % 1000, repeat('c', 100) FROM generate_series(1, 60000) g ORDER BY random();
-- Statistics from every row (300 x the target >= the rows), not a random
-- sample, so the planner's estimates and choices are the same every run.
ALTER TABLE rk ALTER COLUMN id SET STATISTICS 1000;
ALTER TABLE rc ALTER COLUMN id SET STATISTICS 1000;
VACUUM ANALYZE rk;
VACUUM ANALYZE rc;

-- Planner: selective ranges take the custom scan, over the btree.
EXPLAIN (COSTS OFF) SELECT * FROM rk WHERE id BETWEEN 10000 AND 14999;
EXPLAIN (COSTS OFF) SELECT * FROM rk WHERE id >= 20000 AND id < 22000;
EXPLAIN (COSTS OFF) SELECT * FROM rc WHERE id BETWEEN 10000 AND 14999;
EXPLAIN (COSTS OFF) SELECT * FROM rc WHERE id >= 20000 AND id < 22000;
-- Bounds on either side of the operator, and cross-type constants.
EXPLAIN (COSTS OFF) SELECT * FROM rk WHERE 30000 <= id AND 31000 > id;
EXPLAIN (COSTS OFF) SELECT * FROM rk WHERE id BETWEEN 5000::int4 AND 5999::int2;
-- Unselective: the whole table is a sequential scan.
EXPLAIN (COSTS OFF) SELECT * FROM rk WHERE id > 0;
EXPLAIN (COSTS OFF) SELECT * FROM rk WHERE id BETWEEN -100 AND 100000;
EXPLAIN (COSTS OFF) SELECT * FROM rc WHERE id > 0;
-- Point lookups: an index scan (ours or the btree).
SELECT scan_of('SELECT * FROM rk WHERE id = 777') ~ '^Index Scan using (rk_ck|rk_pkey) on rk$'
       AS rk_point_lookup_index_scan,
       scan_of('SELECT * FROM rc WHERE id = 777') ~ '^Index Scan using (rc_ck|rc_pkey) on rc$'
       AS rc_point_lookup_index_scan;

-- Parameters: a generic plan of a prepared statement uses the node too,
-- evaluating the bounds at execution.
SET plan_cache_mode = force_generic_plan;
PREPARE qk(bigint, bigint) AS SELECT count(*), sum(v) FROM rk WHERE id >= $1 AND id < $2;
PREPARE qc(bigint, bigint) AS SELECT count(*), sum(v) FROM rc WHERE id BETWEEN $1 AND $2;
EXPLAIN (COSTS OFF) EXECUTE qk(100, 2000);
EXPLAIN (COSTS OFF) EXECUTE qc(100, 2000);
EXECUTE qk(100, 2000);
EXECUTE qk(59990, 70000);
EXECUTE qc(100, 2000);
EXECUTE qc(-5, 3);
-- A NULL bound selects nothing (the operators are strict).
EXECUTE qk(NULL, 2000);
EXECUTE qc(100, NULL);
SELECT * FROM range_node('EXECUTE qk(NULL, 2000)');
-- Empty and inverted ranges read no block.
SELECT * FROM range_node('EXECUTE qk(500, 500)');
SELECT * FROM range_node('EXECUTE qc(900, 100)');
-- Where zones overlap (a random-order load, no repack), one key's lookup
-- reads several blocks: a generic plan of `id = $1` must not take the node
-- for the single block the key's selectivity suggests (it would read every
-- tuple of every one of them); the index scan reads only their keys. A
-- range still takes the node.
CREATE TABLE rz (id bigint NOT NULL, v int NOT NULL, pad text) USING clustered_heap;
CREATE INDEX rz_ck ON rz USING clustered_pk_index (id);
INSERT INTO rz SELECT g, g % 1000, repeat('z', 100) FROM generate_series(1, 60000) g ORDER BY random();
VACUUM ANALYZE rz;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT candidate_blocks > 1 AS lookup_reads_several_blocks
  FROM range_node('SELECT v FROM rz WHERE id = 30000');
RESET enable_indexscan;
RESET enable_bitmapscan;
PREPARE qz(bigint) AS SELECT v FROM rz WHERE id = $1;
PREPARE qzr(bigint) AS SELECT count(*) FROM rz WHERE id BETWEEN $1 AND $1 + 4999;
EXPLAIN (COSTS OFF) EXECUTE qz(30000);
EXPLAIN (COSTS OFF) EXECUTE qzr(30000);
EXECUTE qz(30000);
EXECUTE qzr(30000);
RESET plan_cache_mode;

-- Results equal a sequential scan's.
SELECT same_as_seq('rk', 'id BETWEEN 10000 AND 14999');
SELECT same_as_seq('rk', 'id >= 20000 AND id < 20500');
SELECT same_as_seq('rk', 'id > 59900');
SELECT same_as_seq('rk', 'id <= 64');
SELECT same_as_seq('rk', 'id BETWEEN 5000 AND 5000');
SELECT same_as_seq('rk', 'id > 100 AND id < 50');
SELECT same_as_seq('rk', 'id BETWEEN 1000 AND 3000 AND v < 500');
SELECT same_as_seq('rc', 'id BETWEEN 10000 AND 14999');
SELECT same_as_seq('rc', 'id >= 20000 AND id < 20500');
SELECT same_as_seq('rc', 'id > 59900');
SELECT same_as_seq('rc', 'id < 65');
SELECT same_as_seq('rc', 'id BETWEEN 1000 AND 3000 AND v < 500');

-- Buffers, the node forced (the planner's choices are shown above).
-- Key-ordered heap: the candidate blocks are the ideal ones, in one run;
-- the scan reads them plus the metapage and a segment page.
SET enable_seqscan = off;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT r.buffers <= ideal('rk', 10000, 14999) + 2 AS rk_5000_within_ideal_plus_2,
       r.candidate_blocks = ideal('rk', 10000, 14999) AS rk_5000_candidates_ideal,
       r.block_runs = 1 AS rk_5000_one_run, r.actual_rows = 5000 AS rk_5000_rows
  FROM range_node('SELECT * FROM rk WHERE id BETWEEN 10000 AND 14999') r;
SELECT r.buffers <= ideal('rk', 20000, 20099) + 2 AS rk_100_within_ideal_plus_2,
       r.candidate_blocks = ideal('rk', 20000, 20099) AS rk_100_candidates_ideal
  FROM range_node('SELECT * FROM rk WHERE id BETWEEN 20000 AND 20099') r;
SELECT r.buffers <= ideal('rk', 59950, 70000) + 2 AS rk_tail_within_ideal_plus_2
  FROM range_node('SELECT * FROM rk WHERE id >= 59950') r;
SELECT r.buffers <= ideal('rk', 1, 30) + 2 AS rk_head_within_ideal_plus_2
  FROM range_node('SELECT * FROM rk WHERE id <= 30') r;
RESET enable_seqscan;
RESET enable_indexscan;
RESET enable_bitmapscan;
SELECT buffers AS rc_range_buffers, candidate_blocks AS rc_candidates
  FROM range_node('SELECT * FROM rc WHERE id BETWEEN 10000 AND 14999') \gset
SELECT buffers AS rk_range_buffers
  FROM range_node('SELECT * FROM rk WHERE id BETWEEN 10000 AND 14999') \gset
-- Against the btree alone (the clustered index dropped in a transaction
-- that rolls back).
BEGIN;
DROP INDEX rk_ck;
DROP INDEX rc_ck;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT scan_of('SELECT * FROM rk WHERE id BETWEEN 10000 AND 14999') AS rk_btree_plan,
       scan_of('SELECT * FROM rc WHERE id BETWEEN 10000 AND 14999') AS rc_btree_plan;
SELECT buffers AS rk_btree_buffers
  FROM nodes('SELECT * FROM rk WHERE id BETWEEN 10000 AND 14999') LIMIT 1 \gset
SELECT buffers AS rc_btree_buffers
  FROM nodes('SELECT * FROM rc WHERE id BETWEEN 10000 AND 14999') LIMIT 1 \gset
ROLLBACK;
SELECT :rk_range_buffers < :rk_btree_buffers AS rk_fewer_buffers_than_btree;
-- clustered_heap after a random-order load: more candidate blocks than
-- the ideal (zones overlap until repack), but the scan reads only them and
-- the map pages (a metapage and a segment page for each of the few
-- segment pages the range crosses), and far fewer buffers than the btree.
SELECT :rc_range_buffers <= :rc_candidates + 6 AS rc_candidates_plus_map_pages,
       :rc_candidates >= ideal('rc', 10000, 14999) AS rc_candidates_cover_ideal,
       :rc_range_buffers * 5 < :rc_btree_buffers AS rc_under_a_fifth_of_btree;

-- Rescans: the custom scan as the inner side of a nested loop, its bounds
-- parameters from the outer side, re-evaluated on every rescan.
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SET enable_indexonlyscan = off;
EXPLAIN (COSTS OFF)
SELECT g, s.* FROM generate_series(1, 5) g,
       LATERAL (SELECT count(*), min(id), max(id), sum(v) FROM rk
                 WHERE id >= g * 1000 AND id < g * 1000 + 250) s;
SELECT g, s.* FROM generate_series(1, 5) g,
       LATERAL (SELECT count(*), min(id), max(id), sum(v) FROM rk
                 WHERE id >= g * 1000 AND id < g * 1000 + 250) s;
SELECT loops, actual_rows FROM range_node(
  'SELECT g, s.* FROM generate_series(1, 5) g,
          LATERAL (SELECT count(*), sum(v) FROM rk WHERE id >= g * 1000 AND id < g * 1000 + 250) s');
SELECT g, s.* FROM generate_series(1, 4) g,
       LATERAL (SELECT count(*), min(id), max(id) FROM rc
                 WHERE id BETWEEN g * 7000 AND g * 7000 + 99) s;
-- A scalar subquery, rescanned per outer row.
SELECT g, (SELECT sum(v) FROM rc WHERE id BETWEEN g * 100 AND g * 100 + 9) AS s
  FROM generate_series(1, 3) g;
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET enable_indexonlyscan;
-- The same through the btree and a sequential scan.
SET clustered_pg.enable_range_scan = off;
SELECT g, s.* FROM generate_series(1, 5) g,
       LATERAL (SELECT count(*), min(id), max(id), sum(v) FROM rk
                 WHERE id >= g * 1000 AND id < g * 1000 + 250) s;
SELECT g, s.* FROM generate_series(1, 4) g,
       LATERAL (SELECT count(*), min(id), max(id) FROM rc
                 WHERE id BETWEEN g * 7000 AND g * 7000 + 99) s;
SELECT g, (SELECT sum(v) FROM rc WHERE id BETWEEN g * 100 AND g * 100 + 9) AS s
  FROM generate_series(1, 3) g;

-- GUC off: the btree takes the ranges again.
EXPLAIN (COSTS OFF) SELECT * FROM rk WHERE id BETWEEN 10000 AND 14999;
RESET clustered_pg.enable_range_scan;

-- Writes through the node: UPDATE and DELETE find their rows with it.
BEGIN;
EXPLAIN (COSTS OFF) UPDATE rk SET v = -1 WHERE id BETWEEN 40000 AND 40999;
UPDATE rk SET v = -1 WHERE id BETWEEN 40000 AND 40999;
DELETE FROM rc WHERE id BETWEEN 40000 AND 40099;
SELECT count(*) FILTER (WHERE v = -1) AS updated FROM rk WHERE id BETWEEN 39000 AND 41999;
SELECT same_as_seq('rk', 'id BETWEEN 39000 AND 41999');
SELECT same_as_seq('rc', 'id BETWEEN 39000 AND 41999');
SELECT count(*) FROM rc WHERE id BETWEEN 40000 AND 40099;
ROLLBACK;

-- 2. An empty table: nothing to read, no error, whatever the plan.
CREATE TABLE re (id bigint PRIMARY KEY, v int, pad text);
CREATE INDEX re_ck ON re USING clustered_pk_index (id);
ANALYZE re;
SELECT count(*) FROM re WHERE id BETWEEN 1 AND 100;
SET enable_seqscan = off;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM re WHERE id BETWEEN 1 AND 100;
PREPARE qe(bigint) AS SELECT count(*) FROM re WHERE id < $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE qe(10);
EXECUTE qe(10);
-- Rows arriving later are found by the same generic plan.
INSERT INTO re SELECT g, g, 'e' FROM generate_series(1, 500) g;
EXECUTE qe(10);
EXECUTE qe(1000);
RESET plan_cache_mode;
RESET enable_seqscan;
RESET enable_indexscan;
RESET enable_bitmapscan;

-- 3. An overflowed map: the planner no longer offers the node, and a plan
-- made before the overflow reads every block and still finds every row.
-- (The developer setting shrinks the directory so a small random-order
-- heap overflows it; see sql/directory.sql.)
SET clustered_pg.debug_dir_capacity = 3;
CREATE TABLE ro (id int, v int, pad text) WITH (autovacuum_enabled = off);
CREATE INDEX ro_ck ON ro USING clustered_pk_index (id) WITH (split_threshold = 16);
INSERT INTO ro SELECT g, g, repeat('o', 1000) FROM generate_series(1, 200) g;
ANALYZE ro;
SET enable_seqscan = off;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SET plan_cache_mode = force_generic_plan;
PREPARE qo(int, int) AS SELECT count(*), sum(v) FROM ro WHERE id BETWEEN $1 AND $2;
EXPLAIN (COSTS OFF) EXECUTE qo(10, 20);
EXECUTE qo(10, 20);
SET client_min_messages = error;
INSERT INTO ro SELECT (g * 7919) % 6000 + 201, 1, repeat('o', 1000) FROM generate_series(0, 5999) g;
RESET client_min_messages;
SELECT overflowed FROM clustered_pg.directory_stats('ro');
EXECUTE qo(10, 20);
EXECUTE qo(3000, 3099);
SELECT map, candidate_blocks FROM range_node('EXECUTE qo(3000, 3099)');
RESET plan_cache_mode;
SELECT scan_of('SELECT count(*) FROM ro WHERE id BETWEEN 3000 AND 3099') AS replanned;
RESET enable_seqscan;
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET clustered_pg.debug_dir_capacity;
SELECT count(*), sum(v) FROM ro WHERE id + 0 BETWEEN 3000 AND 3099;

DROP TABLE rk, rc, re, ro, rz;
DROP FUNCTION nodes(text), range_node(text), scan_of(text), same_as_seq(regclass, text),
  ideal(regclass, bigint, bigint);
DROP EXTENSION clustered_pg;
