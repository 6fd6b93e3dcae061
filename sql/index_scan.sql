-- clustered_pk_index scans: every predicate shape returns exactly what a
-- sequential scan returns; buffers stay near the ideal; the planner picks
-- the index when it reads fewer pages.
SET search_path = public;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
-- These checks are about the access method's own scans; the
-- ClusteredRangeScan custom scan (sql/range_scan.sql) would take the ranges.
SET clustered_pg.enable_range_scan = off;

-- Same rows as a sequential scan. The comparison query hides the key
-- behind "id + 0", which no index can serve.
CREATE FUNCTION check_same(pred text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE via_index bigint; via_seq bigint; diff bigint; plan text;
        seq_pred text := replace(pred, 'id', '(id + 0)');
BEGIN
  EXECUTE 'EXPLAIN (COSTS OFF) SELECT id FROM ev WHERE ' || pred INTO plan;
  EXECUTE 'SELECT count(*) FROM ev WHERE ' || pred INTO via_index;
  EXECUTE 'SELECT count(*) FROM ev WHERE ' || seq_pred INTO via_seq;
  EXECUTE format('SELECT count(*) FROM ((SELECT id, payload FROM ev WHERE %s EXCEPT ALL
                  SELECT id, payload FROM ev WHERE %s)) d', seq_pred, pred) INTO diff;
  RETURN format('%s: %s rows, seq scan %s, %s missing, plan: %s', pred, via_index, via_seq,
                diff, plan);
END $$;

SELECT check_same('id = 15000');
SELECT check_same('id = 424242');
SELECT check_same('id < 10');
SELECT check_same('id <= 10');
SELECT check_same('id > 20990');
SELECT check_same('id >= 20990');
SELECT check_same('id BETWEEN 5000 AND 5099');
SELECT check_same('id BETWEEN 5000 AND 9999');
SELECT check_same('id > 100 AND id < 50');
SELECT check_same('id = -5');
SELECT check_same('id = 9223372036854775807');
SELECT check_same('id >= 9223372036854775807');
SELECT check_same('id < -9223372036854775807');
SELECT check_same('id = 15000::int4');
SELECT check_same('id = 15000::int2');
SELECT check_same('id < 300::int2');

-- Bitmap scans (lossy pages, rechecked) and IN lists.
SET enable_indexscan = off;
SET enable_bitmapscan = on;
EXPLAIN (COSTS OFF) SELECT count(*) FROM ev WHERE id BETWEEN 5000 AND 9999;
SELECT count(*) FROM ev WHERE id BETWEEN 5000 AND 9999;
EXPLAIN (COSTS OFF) SELECT count(*) FROM ev WHERE id IN (1, 500, 15000, 20999, 424242);
SELECT count(*) FROM ev WHERE id IN (1, 500, 15000, 20999, 424242);
RESET enable_indexscan;

-- Other key types, with cross-type constants.
SELECT count(*) FROM small WHERE k BETWEEN -10 AND 10;
SELECT count(*) FROM small WHERE k = 300::int8;
SELECT count(*) FROM mid WHERE k >= 999000;
SELECT count(*) FROM mid WHERE k = -1000000::int8;
SELECT count(*) FROM mid WHERE k < 5000000000::int8;

-- Buffers: a point lookup reads 1 heap block + at most 2 index pages; a
-- range of w keys reads about w / rows-per-page heap blocks + 2.
CREATE FUNCTION buffers(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, FORMAT JSON) ' || q INTO j;
  RETURN (j->0->'Plan'->>'Shared Hit Blocks')::int + (j->0->'Plan'->>'Shared Read Blocks')::int;
END $$;
RESET enable_seqscan;
RESET enable_bitmapscan;
-- On a table loaded in key order. The ideal is the number of distinct heap
-- blocks holding the range.
CREATE TABLE evb (id bigint, ts timestamptz, payload text);
INSERT INTO evb SELECT g, now(), repeat('b', 100) FROM generate_series(1, 30000) g;
CREATE INDEX evb_ck ON evb USING clustered_pk_index (id);
INSERT INTO evb SELECT g, now(), repeat('b', 100) FROM generate_series(30001, 40000) g;
CREATE FUNCTION ideal(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(DISTINCT (ctid::text::point)[0]) FROM evb WHERE id + 0 BETWEEN lo AND hi $$;
VACUUM ANALYZE evb;
SELECT buffers('SELECT * FROM evb WHERE id = 12345') AS point_buffers,
       ideal(12345, 12345) + 2 AS bound;
SELECT buffers('SELECT * FROM evb WHERE id = 35555') AS point_buffers_after_inserts,
       ideal(35555, 35555) + 2 AS bound;
SELECT buffers('SELECT * FROM evb WHERE id BETWEEN 1000 AND 1099') <= ideal(1000, 1099) + 2
       AS range100_within_ideal_plus_2;
SELECT buffers('SELECT * FROM evb WHERE id BETWEEN 5000 AND 9999') <= ideal(5000, 9999) + 2
       AS range5000_within_ideal_plus_2;
SELECT buffers('SELECT * FROM evb WHERE id BETWEEN 31000 AND 35999') <= ideal(31000, 35999) + 2
       AS range5000_after_inserts_within_ideal_plus_2;

-- Planner: with a btree on the same column, point lookups use the
-- clustered index (it reads fewer pages); a short range may take the
-- btree (about as many pages, fewer tuples to filter), a long one the
-- ClusteredRangeScan custom scan (it reads fewer pages: PostgreSQL prices
-- the bitmap path as if the heap were unclustered, docs/architecture.md);
-- unselective ones scan the table.
RESET clustered_pg.enable_range_scan;
CREATE INDEX ev_bt ON ev (id);
ANALYZE ev;
EXPLAIN (COSTS OFF) SELECT * FROM ev WHERE id = 12345;
EXPLAIN (COSTS OFF) SELECT * FROM ev WHERE id BETWEEN 1000 AND 1099;
EXPLAIN (COSTS OFF) SELECT * FROM ev WHERE id BETWEEN 1000 AND 5999;
EXPLAIN (COSTS OFF) SELECT * FROM ev WHERE id > 100;
DROP INDEX ev_bt;
-- Without the btree: count(*) and SELECT * scan the table, with
-- enable_seqscan on; with it off, a selective lookup still uses the index.
EXPLAIN (COSTS OFF) SELECT count(*) FROM ev;
EXPLAIN (COSTS OFF) SELECT * FROM ev;
EXPLAIN (COSTS OFF) SELECT * FROM ev WHERE id = 12345;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM ev WHERE id = 12345;
RESET enable_seqscan;

-- Observability counters moved: planner estimates, inserts, scans, splits,
-- maintenance (the build) and row-count lookups (segment_map_stats).
SELECT count(*) > 0 AS stats_read FROM clustered_pg.segment_map_stats('evb');
SELECT clustered_pg.observability() ~ 'costestimate=[1-9][0-9]*,' AS costestimate_counted,
       clustered_pg.observability() ~ 'rowcount_lookups=[1-9]' AS rowcount_lookups_counted,
       clustered_pg.observability() ~ 'insert=[1-9]' AS inserts_counted,
       clustered_pg.observability() ~ 'scan=[1-9]' AS scans_counted,
       clustered_pg.observability() ~ 'split=[1-9]' AS splits_counted,
       clustered_pg.observability() ~ 'maintenance=[1-9]' AS maintenance_counted;

DROP TABLE ev, evb, opt, small, mid, ul CASCADE;
DROP SEQUENCE ev_seq;
DROP FUNCTION check_same(text), buffers(text), ideal(bigint, bigint);
DROP EXTENSION clustered_pg;
