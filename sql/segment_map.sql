-- The seed's segment-map SQL surface, served from the index's own pages.
CREATE EXTENSION clustered_pg;
SET search_path = public;

-- A helper view over one table's map (the seed's segment_map columns).
CREATE TABLE sm (id bigint, payload text);
CREATE INDEX sm_ck ON sm USING clustered_pk_index (id) WITH (split_threshold = 64);
CREATE FUNCTION sm_summary(r regclass, OUT segments bigint, OUT rows_mapped bigint,
                           OUT contiguous boolean, OUT within_threshold boolean)
LANGUAGE sql AS $$
  SELECT count(*), coalesce(sum(row_count), 0),
         bool_and(CASE WHEN prev_to IS NULL THEN minor_from = -9223372036854775808
                       ELSE minor_from = prev_to + 1 END)
           AND max(minor_to) = 9223372036854775807,
         -- A full segment splits before the next row is recorded; the split
         -- divides row_count by estimate (exact counts: touch or REINDEX), so
         -- a segment may show one row more than split_threshold.
         bool_and(row_count <= split_threshold + 1)
    FROM (SELECT s.*, lag(minor_to) OVER (ORDER BY minor_from) AS prev_to
            FROM clustered_pg.segment_map_of(r) s) x
$$;

-- Empty table: one segment owning every key.
SELECT * FROM sm_summary('sm');
SELECT major_key IS NOT NULL AS has_id, minor_from, minor_to, split_threshold,
       target_fillfactor, auto_repack_interval, row_count, split_generation,
       last_split_at IS NULL AS never_split
  FROM clustered_pg.segment_map_of('sm');

-- Locator contract: major = the segment owning the key, minor = the key.
-- Wide rows (~35 per heap block): a segment can only split between blocks,
-- so row_count <= split_threshold holds when a block holds fewer rows than that.
INSERT INTO sm SELECT g, repeat('a', 200) FROM generate_series(1, 10000) g;
SELECT clustered_pg.locator_minor(clustered_pg.segment_map_allocate_locator('sm'::regclass::oid, 4242)) AS minor,
       clustered_pg.locator_major(clustered_pg.segment_map_allocate_locator('sm'::regclass::oid, 4242))
         = (SELECT major_key FROM clustered_pg.segment_map_of('sm') WHERE 4242 BETWEEN minor_from AND minor_to)
         AS major_is_owning_segment;
SELECT count(*) AS keys_checked,
       bool_and(clustered_pg.locator_eq(clustered_pg.segment_map_allocate_locator_regclass('sm', k),
                clustered_pg.segment_map_next_locator('sm_ck', k))) AS regclass_variants_agree,
       bool_and(clustered_pg.locator_major(clustered_pg.segment_map_next_locator('sm', k)) = s.major_key) AS majors_match
  FROM generate_series(-5, 10100, 37) k
  JOIN clustered_pg.segment_map_of('sm') s ON k BETWEEN s.minor_from AND s.minor_to
 -- A full segment splits before it takes the key (its major is then the
 -- new segment's; the saturated-segment case below checks that one).
 WHERE s.row_count < s.split_threshold;
SELECT clustered_pg.locator_eq(clustered_pg.segment_map_next_locator('sm', -9223372036854775808),
       clustered_pg.locator_pack((SELECT major_key FROM clustered_pg.segment_map_of('sm')
                                  ORDER BY minor_from LIMIT 1), -9223372036854775808)) AS lowest_key_first_segment;

-- Allocator growth: 10k, then 50k more appended rows.
SELECT segments > 100 AS grew, rows_mapped, contiguous, within_threshold FROM sm_summary('sm');
CREATE TEMP TABLE growth AS SELECT segments AS after_10k FROM sm_summary('sm');
INSERT INTO sm SELECT g, repeat('b', 200) FROM generate_series(10001, 60000) g;
SELECT s.segments > g.after_10k * 4 AS grew_with_50k, rows_mapped, contiguous, within_threshold
  FROM sm_summary('sm') s, growth g;
SELECT count(*) AS violations FROM clustered_pg.verify('sm');
-- The all-indexes view shows the same rows.
SELECT (SELECT count(*) FROM clustered_pg.segment_map WHERE relation_oid = 'sm'::regclass)
     = (SELECT count(*) FROM clustered_pg.segment_map_of('sm')) AS view_matches;
SELECT count(*) = 0 AS view_rows_identical FROM (
  (SELECT * FROM clustered_pg.segment_map WHERE relation_oid = 'sm'::regclass
   EXCEPT SELECT * FROM clustered_pg.segment_map_of('sm'))
  UNION ALL
  (SELECT * FROM clustered_pg.segment_map_of('sm')
   EXCEPT SELECT * FROM clustered_pg.segment_map WHERE relation_oid = 'sm'::regclass)) d;

-- Statistics.
SELECT relation_oid = 'sm'::regclass AS right_table, segment_count = (SELECT count(*) FROM clustered_pg.segment_map_of('sm')) AS segment_count_ok,
       total_rows, max_rows_per_segment <= 64 + 1 AS max_ok, min_rows_per_segment > 0 AS min_ok,
       avg_rows_per_segment BETWEEN min_rows_per_segment AND max_rows_per_segment AS avg_ok,
       listings >= segment_count AS listings_ok, fragmented_segments,
       index_pages >= 2 AS index_pages_ok,
       heap_blocks_listed = pg_relation_size('sm') / current_setting('block_size')::int AS lists_every_block
  FROM clustered_pg.segment_map_stats('sm');

-- Descending appends (the anti-pattern) and churn.
CREATE TABLE sd (id int, payload text);
CREATE INDEX sd_ck ON sd USING clustered_pk_index (id) WITH (split_threshold = 32);
INSERT INTO sd SELECT g, repeat('d', 300) FROM generate_series(5000, 1, -1) g;
SELECT segments > 5000 / 32 AS split_under_descending, rows_mapped, contiguous, within_threshold
  FROM sm_summary('sd');
DELETE FROM sd WHERE id % 3 = 0;
INSERT INTO sd SELECT g, 'churn' FROM generate_series(1, 5000) g WHERE g % 3 = 0;
DELETE FROM sd WHERE id % 7 = 0;
INSERT INTO sd SELECT g, 'churn2' FROM generate_series(1, 5000) g WHERE g % 7 = 0;
SELECT count(*) AS violations FROM clustered_pg.verify('sd');
SELECT count(*) AS live_rows FROM sd;
-- Deleted rows stay counted until the segments are touched (recounted).
SELECT rows_mapped >= 5000 AS counts_include_churn FROM sm_summary('sd');
VACUUM sd;
SELECT sum(clustered_pg.segment_map_touch('sd', major_key)) AS recounted
  FROM clustered_pg.segment_map_of('sd');
SELECT rows_mapped = (SELECT count(*) FROM sd) AS exact_after_touch, contiguous
  FROM sm_summary('sd');
SELECT bool_and(updated_at IS NOT NULL) AS touched FROM clustered_pg.segment_map_of('sd');
SELECT count(*) AS violations_after_touch FROM clustered_pg.verify('sd');

-- target_fillfactor bounds.
CREATE TABLE sf (id bigint);
CREATE INDEX sf_lo ON sf USING clustered_pk_index (id) WITH (target_fillfactor = 10);
SELECT DISTINCT target_fillfactor FROM clustered_pg.segment_map_of('sf_lo');
DROP INDEX sf_lo;
CREATE INDEX sf_hi ON sf USING clustered_pk_index (id) WITH (target_fillfactor = 100);
SELECT DISTINCT target_fillfactor FROM clustered_pg.segment_map_of('sf');
DROP INDEX sf_hi;
CREATE INDEX sf_bad ON sf USING clustered_pk_index (id) WITH (target_fillfactor = 9);
CREATE INDEX sf_bad ON sf USING clustered_pk_index (id) WITH (target_fillfactor = 101);
CREATE INDEX sf_ck ON sf USING clustered_pk_index (id);
SELECT DISTINCT split_threshold, target_fillfactor, auto_repack_interval
  FROM clustered_pg.segment_map_of('sf');

-- Rebuild with fault injection (the seed's p_fail_after_n_rows): the
-- build's heap scan fails when it is handed row n + 1, so exactly n rows
-- were seen; the REINDEX's subtransaction rolls back and the previous map
-- is left exactly as it was (same rows, updated_at included, same stats,
-- same relfilenode), success = false.
CREATE TEMP TABLE before_map AS SELECT * FROM clustered_pg.segment_map_of('sd');
CREATE TEMP TABLE before_stats AS SELECT * FROM clustered_pg.segment_map_stats('sd');
CREATE TEMP TABLE before_node AS SELECT pg_relation_filenode('sd_ck') AS node;
SELECT success, rows_seen, rows_seen < (SELECT count(*) FROM sd) AS failed_part_way,
       segments = (SELECT count(*) FROM before_map) AS segments_unchanged
  FROM clustered_pg.segment_map_rebuild_from_index('sd', 100);
SELECT count(*) AS rows_differing FROM (
  (SELECT * FROM before_map EXCEPT SELECT * FROM clustered_pg.segment_map_of('sd'))
  UNION ALL
  (SELECT * FROM clustered_pg.segment_map_of('sd') EXCEPT SELECT * FROM before_map)) d;
SELECT (SELECT row(b.*)::text FROM before_stats b)
     = (SELECT row(s.*)::text FROM clustered_pg.segment_map_stats('sd') s) AS stats_identical,
       (SELECT node FROM before_node) = pg_relation_filenode('sd_ck') AS same_relfilenode;
SELECT count(*) AS violations FROM clustered_pg.verify('sd');
-- n = 0 fails on the first row; the index may be named instead of the table.
SELECT success, rows_seen FROM clustered_pg.segment_map_rebuild_from_index('sd_ck', 0);
SELECT count(*) AS rows_differing_after_n0 FROM (
  (SELECT * FROM before_map EXCEPT SELECT * FROM clustered_pg.segment_map_of('sd'))
  UNION ALL
  (SELECT * FROM clustered_pg.segment_map_of('sd') EXCEPT SELECT * FROM before_map)) d;
-- Another error during the REINDEX (here: the index is in use by an open
-- cursor of this session) rolls back too and is raised unchanged; the hook
-- is disarmed on that path as well, so the plain REINDEX that follows is
-- not failed after 10 rows.
BEGIN;
SET LOCAL enable_seqscan = off;
DECLARE c_sd CURSOR FOR SELECT * FROM sd WHERE id = 5;
SELECT * FROM clustered_pg.segment_map_rebuild_from_index('sd', 10);
ROLLBACK;
REINDEX INDEX sd_ck;
SELECT count(*) AS violations FROM clustered_pg.verify('sd');
-- n at least the row count: nothing fails, the rebuild goes through.
SELECT success, rows_seen = (SELECT count(*) FROM sd) AS saw_every_row
  FROM clustered_pg.segment_map_rebuild_from_index('sd', (SELECT count(*) FROM sd));
-- Without the fault the rebuild replaces the map with exact counts.
SELECT success, rows_seen = (SELECT count(*) FROM sd) AS saw_every_row,
       segments = (SELECT count(*) FROM clustered_pg.segment_map_of('sd')) AS segments_ok
  FROM clustered_pg.segment_map_rebuild_from_index('sd', NULL);
SELECT rows_mapped = (SELECT count(*) FROM sd) AS exact, contiguous, within_threshold FROM sm_summary('sd');
SELECT count(*) AS violations FROM clustered_pg.verify('sd');
SELECT * FROM clustered_pg.segment_map_rebuild_from_index('sd', -1);

-- segment_map_tids: computed through the map, one row per live tuple.
SELECT count(*) = (SELECT count(*) FROM sd) AS one_row_per_tuple
  FROM clustered_pg.segment_map_tids_of('sd');
SELECT count(*) = (SELECT count(*) FROM sd) AS tids_match_table
  FROM clustered_pg.segment_map_tids_of('sd') t JOIN sd ON sd.ctid = t.tuple_tid AND sd.id = t.minor_key;
SELECT bool_and(t.minor_key BETWEEN m.minor_from AND m.minor_to) AS keys_in_their_segment
  FROM clustered_pg.segment_map_tids_of('sd') t
  JOIN clustered_pg.segment_map_of('sd') m USING (major_key);
DELETE FROM sd WHERE id % 2 = 0;
VACUUM sd;
SELECT count(*) = (SELECT count(*) FROM sd) AS no_stale_tids_after_vacuum,
       count(*) AS tids
  FROM clustered_pg.segment_map_tids WHERE relation_oid = 'sd'::regclass;
SELECT clustered_pg.segment_map_tids_gc('sd') AS collected;

-- Repack heuristic: fragmented segments idle for longer than the interval.
SELECT clustered_pg.segment_map_count_repack_due('sd') AS due_default_interval;
CREATE TABLE sr (id bigint);
CREATE INDEX sr_ck ON sr USING clustered_pk_index (id) WITH (auto_repack_interval = 1);
INSERT INTO sr SELECT g FROM generate_series(1, 2000) g;
INSERT INTO sr SELECT g FROM generate_series(1, 2000) g;
SELECT fragmented_segments > 0 AS has_fragmented FROM clustered_pg.segment_map_stats('sr');
SELECT clustered_pg.segment_map_count_repack_due('sr') AS due_right_away;
SELECT pg_sleep(1.2);
SELECT clustered_pg.segment_map_count_repack_due('sr')
     = (SELECT fragmented_segments FROM clustered_pg.segment_map_stats('sr')) AS all_fragmented_due;
ALTER INDEX sr_ck SET (auto_repack_interval = 0);
SELECT clustered_pg.segment_map_count_repack_due('sr') AS due_when_disabled;

-- Lifecycle: COPY, REINDEX, and aggregates in DO blocks.
CREATE TABLE sl (i int, t text);
CREATE INDEX sl_ck ON sl USING clustered_pk_index (i) WITH (split_threshold = 16);
COPY sl FROM stdin;
1	one
2	two
3	three
5	five
8	eight
\.
INSERT INTO sl SELECT g, 'g' FROM generate_series(10, 300) g;
REINDEX INDEX sl_ck;
DO $$
DECLARE n bigint; m int; a int[];
BEGIN
  SELECT count(*), max(i), array_agg(i ORDER BY i) INTO n, m, a FROM sl WHERE i < 10;
  IF n <> 5 OR m <> 8 OR a <> ARRAY[1,2,3,5,8] THEN
    RAISE EXCEPTION 'after REINDEX: n=% m=% a=%', n, m, a;
  END IF;
  IF (SELECT sum(row_count) FROM clustered_pg.segment_map_of('sl')) <> (SELECT count(*) FROM sl) THEN
    RAISE EXCEPTION 'segment_map out of step after REINDEX';
  END IF;
END $$;
COPY sl FROM stdin;
4	four
6	six
7	seven
\.
DO $$
DECLARE n bigint; m int; a int[];
BEGIN
  SELECT count(*), max(i), array_agg(i ORDER BY i) INTO n, m, a FROM sl WHERE i < 10;
  IF n <> 8 OR m <> 8 OR a <> ARRAY[1,2,3,4,5,6,7,8] THEN
    RAISE EXCEPTION 'after COPY: n=% m=% a=%', n, m, a;
  END IF;
  IF (SELECT sum(row_count) FROM clustered_pg.segment_map WHERE relation_oid = 'sl'::regclass)
     <> (SELECT count(*) FROM sl) THEN
    RAISE EXCEPTION 'segment_map out of step after COPY';
  END IF;
END $$;
SELECT rows_mapped, contiguous FROM sm_summary('sl');
-- ALTER INDEX ... SET: later inserts use the new options, the map stays
-- aligned with the live rows.
ALTER INDEX sl_ck SET (split_threshold = 32);
INSERT INTO sl SELECT g, 'after set' FROM generate_series(301, 600) g;
SELECT DISTINCT split_threshold FROM clustered_pg.segment_map_of('sl');
SELECT rows_mapped = (SELECT count(*) FROM sl) AS aligned_after_alter_set, contiguous FROM sm_summary('sl');
-- DROP INDEX + insert + recreate: the new map covers every row, old and new.
DROP INDEX sl_ck;
INSERT INTO sl SELECT g, 'no index' FROM generate_series(601, 700) g;
CREATE INDEX sl_ck ON sl USING clustered_pk_index (i) WITH (split_threshold = 16);
SELECT rows_mapped = (SELECT count(*) FROM sl) AS aligned_after_recreate, contiguous, within_threshold
  FROM sm_summary('sl');
SELECT (SELECT count(*) FROM clustered_pg.segment_map_tids_of('sl')) = (SELECT count(*) FROM sl) AS tids_cover_rows;
SELECT count(*) AS violations FROM clustered_pg.verify('sl');

-- CLUSTER (USING a btree) and VACUUM FULL rewrite the table; the map is
-- rebuilt with it: aligned with the live rows, every row listed once, sound.
-- Both a plain heap (sl) and a clustered_heap table (sc).
CREATE TABLE sc (id bigint NOT NULL, p text) USING clustered_heap;
CREATE INDEX sc_ck ON sc USING clustered_pk_index (id) WITH (split_threshold = 32);
SELECT setseed(0.25);
INSERT INTO sc SELECT g, repeat('c', 100) FROM generate_series(1, 3000) g ORDER BY random();
DELETE FROM sc WHERE id % 5 = 0;
DELETE FROM sl WHERE i % 5 = 0;
CREATE INDEX sl_bt ON sl (i);
CREATE INDEX sc_bt ON sc (id);
CREATE FUNCTION sm_consistent(r regclass, live bigint, OUT aligned boolean, OUT tids_once boolean,
                              OUT contiguous boolean, OUT violations bigint)
LANGUAGE sql AS $$
  SELECT s.rows_mapped = live,
         (SELECT count(*) = live AND count(DISTINCT tuple_tid) = live FROM clustered_pg.segment_map_tids_of(r)),
         s.contiguous,
         (SELECT count(*) FROM clustered_pg.verify(r))
    FROM sm_summary(r) s
$$;
CLUSTER sl USING sl_bt;
CLUSTER sc USING sc_bt;
SELECT 'sl' AS t, * FROM sm_consistent('sl', (SELECT count(*) FROM sl))
UNION ALL SELECT 'sc', * FROM sm_consistent('sc', (SELECT count(*) FROM sc));
DELETE FROM sl WHERE i % 7 = 0;
DELETE FROM sc WHERE id % 7 = 0;
VACUUM FULL sl;
VACUUM FULL sc;
SELECT 'sl' AS t, * FROM sm_consistent('sl', (SELECT count(*) FROM sl))
UNION ALL SELECT 'sc', * FROM sm_consistent('sc', (SELECT count(*) FROM sc));
SELECT count(*) AS sl_rows FROM sl;
SELECT count(*) AS sc_rows, min(id), max(id) FROM sc;

-- target_fillfactor floor: at the lowest value (10) placement fills a
-- clustered_heap page to ~10% before it opens the next one for ascending
-- keys, at 100 it fills pages completely.
CREATE TABLE sff10 (id bigint NOT NULL, p text) USING clustered_heap;
CREATE INDEX sff10_ck ON sff10 USING clustered_pk_index (id) WITH (target_fillfactor = 10);
CREATE TABLE sff100 (id bigint NOT NULL, p text) USING clustered_heap;
CREATE INDEX sff100_ck ON sff100 USING clustered_pk_index (id) WITH (target_fillfactor = 100);
INSERT INTO sff10 SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;
INSERT INTO sff100 SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;
SELECT pg_relation_size('sff10') > 5 * pg_relation_size('sff100') AS floor_spreads_rows,
       (SELECT max(n) FROM (SELECT count(*) AS n FROM sff10 GROUP BY (ctid::text::point)[0]) x)
         * (SELECT avg(pg_column_size(t.*)) FROM sff10 t) < 0.15 * current_setting('block_size')::int
         AS pages_about_10_percent_full,
       (SELECT count(*) FROM clustered_pg.verify('sff10')) + (SELECT count(*) FROM clustered_pg.verify('sff100'))
         AS violations;

-- Bad input: clear errors (SQLSTATE, message, hint) and no change.
-- sm_err runs a statement and returns 'ok' or its SQLSTATE, message,
-- detail and hint.
CREATE FUNCTION sm_err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text; hnt text;
BEGIN
  EXECUTE q;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
  RETURN st || ': ' || msg || coalesce(' | DETAIL: ' || nullif(det, ''), '')
            || coalesce(' | HINT: ' || nullif(hnt, ''), '');
END $$;
CREATE TABLE splain (id int);
CREATE INDEX splain_bt ON splain (id);
CREATE SEQUENCE sseq;
CREATE VIEW sview AS SELECT 1 AS id;
-- A fingerprint of every map of the database, to show nothing changed.
CREATE TEMP TABLE maps_before AS
  SELECT md5(string_agg(row(m.*)::text, ',' ORDER BY relation_oid, minor_from)) AS fp
    FROM clustered_pg.segment_map m;
-- Every seed function that takes a relation, with every kind of bad one:
-- NULL, a table without a clustered_pk_index, a plain btree index, a
-- sequence, a view, an OID that names no relation.
\pset format unaligned
\pset fieldsep ' || '
SELECT f.fn, r.what, sm_err(format(f.q, r.rel)) AS result
  FROM (VALUES
    (1, 'segment_map_of', 'SELECT * FROM clustered_pg.segment_map_of(%s)'),
    (2, 'segment_map_tids_of', 'SELECT * FROM clustered_pg.segment_map_tids_of(%s)'),
    (3, 'segment_map_stats', 'SELECT * FROM clustered_pg.segment_map_stats(%s)'),
    (4, 'segment_map_count_repack_due', 'SELECT clustered_pg.segment_map_count_repack_due(%s)'),
    (5, 'segment_map_touch', 'SELECT clustered_pg.segment_map_touch(%s, 1)'),
    (6, 'segment_map_tids_gc', 'SELECT clustered_pg.segment_map_tids_gc(%s)'),
    (7, 'segment_map_rebuild_from_index', 'SELECT * FROM clustered_pg.segment_map_rebuild_from_index(%s, 10)'),
    (8, 'segment_map_allocate_locator', 'SELECT clustered_pg.segment_map_allocate_locator((%s)::oid, 1)'),
    (9, 'segment_map_allocate_locator_regclass', 'SELECT clustered_pg.segment_map_allocate_locator_regclass(%s, 1)'),
    (10, 'segment_map_next_locator', 'SELECT clustered_pg.segment_map_next_locator(%s, 1)')) f(n, fn, q)
 CROSS JOIN (VALUES
    (1, 'NULL', 'NULL::regclass'),
    (2, 'no clustered_pk_index', '''splain''::regclass'),
    (3, 'btree index', '''splain_bt''::regclass'),
    (4, 'sequence', '''sseq''::regclass'),
    (5, 'view', '''sview''::regclass'),
    (6, 'unknown OID', '123456789::oid::regclass')) r(n, what, rel)
 ORDER BY f.n, r.n;
-- Index options: thresholds at or below zero, fillfactor outside 10..100,
-- negative intervals -- on CREATE INDEX and on ALTER INDEX ... SET.
SELECT o AS option, sm_err(format('CREATE INDEX splain_ck ON splain USING clustered_pk_index (id) WITH (%s)', o)) AS on_create,
       sm_err(format('ALTER INDEX sd_ck SET (%s)', o)) AS on_alter
  FROM unnest(ARRAY['split_threshold = 0', 'split_threshold = -1', 'split_threshold = 15',
                    'split_threshold = 1048577', 'target_fillfactor = 0', 'target_fillfactor = 9',
                    'target_fillfactor = 101', 'auto_repack_interval = -1']) o;
\pset format aligned
\pset fieldsep '|'
-- A relation name that does not exist fails in regclass input already.
SELECT * FROM clustered_pg.segment_map_of('no_such_table');
-- NULL or out-of-range values in the other arguments.
SELECT clustered_pg.segment_map_touch('sd', NULL);
SELECT clustered_pg.segment_map_touch('sd', -42);
SELECT clustered_pg.segment_map_allocate_locator('sd'::regclass::oid, NULL);
SELECT clustered_pg.segment_map_allocate_locator_regclass('sd', NULL);
SELECT clustered_pg.segment_map_next_locator('sd', NULL);
SELECT clustered_pg.segment_map_allocate_locator(0, 1);
-- Negative fault threshold (0 is valid: fail on the first row).
SELECT * FROM clustered_pg.segment_map_rebuild_from_index('sd', -5);
-- Nothing changed: no index was created, sd_ck keeps its options, every
-- map is as it was.
SELECT count(*) AS clustered_indexes_on_splain FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'splain'::regclass AND a.amname = 'clustered_pk_index';
SELECT reloptions FROM pg_class WHERE relname = 'sd_ck';
SELECT (SELECT fp FROM maps_before)
     = (SELECT md5(string_agg(row(m.*)::text, ',' ORDER BY relation_oid, minor_from))
          FROM clustered_pg.segment_map m) AS maps_unchanged;

-- Privileges: readers need SELECT, maintenance needs ownership.
CREATE ROLE cpg_sm_reader;
SET ROLE cpg_sm_reader;
SELECT * FROM clustered_pg.segment_map_stats('sd');
SELECT count(*) AS visible_in_view FROM clustered_pg.segment_map WHERE relation_oid = 'sd'::regclass;
RESET ROLE;
GRANT SELECT ON sd TO cpg_sm_reader;
SET ROLE cpg_sm_reader;
SELECT count(*) > 0 AS reader_sees_map FROM clustered_pg.segment_map WHERE relation_oid = 'sd'::regclass;
SELECT clustered_pg.segment_map_touch('sd', (SELECT min(major_key) FROM clustered_pg.segment_map_of('sd')));
SELECT clustered_pg.segment_map_tids_gc('sd');
SELECT * FROM clustered_pg.segment_map_rebuild_from_index('sd');
RESET ROLE;
REVOKE SELECT ON sd FROM cpg_sm_reader;
DROP ROLE cpg_sm_reader;

-- Allocation applies the placement policy. Make every block of a
-- clustered_heap table full (ascending load until a new block opens, then
-- empty that block and let VACUUM drop it from the map): a key inside the
-- range must then split the segment, and allocation says so before the
-- insert: the key gets the segment the split creates.
CREATE TABLE sa (id bigint NOT NULL, payload text) USING clustered_heap;
CREATE INDEX sa_ck ON sa USING clustered_pk_index (id) WITH (target_fillfactor = 100);
INSERT INTO sa SELECT g * 2, repeat('a', 200) FROM generate_series(1, 400) g;
DO $$
DECLARE pages bigint := pg_relation_size('sa') / 8192; k bigint := 1000;
BEGIN
  LOOP
    INSERT INTO sa VALUES (k, repeat('a', 200));
    EXIT WHEN pg_relation_size('sa') / 8192 > pages;
    k := k + 2;
  END LOOP;
  DELETE FROM sa WHERE id = k;
END $$;
VACUUM sa;
SELECT clustered_pg.locator_major(clustered_pg.segment_map_allocate_locator_regclass('sa', 601))
       AS predicted_major \gset
SELECT :predicted_major > (SELECT max(major_key) FROM clustered_pg.segment_map_of('sa'))
       AS predicts_the_split_segment;
INSERT INTO sa VALUES (601, repeat('i', 200));
SELECT major_key = :predicted_major AS key_landed_in_predicted_segment
  FROM clustered_pg.segment_map_of('sa') WHERE 601 BETWEEN minor_from AND minor_to;
SELECT count(*) AS violations FROM clustered_pg.verify('sa');

-- Capacity: a clustered_heap segment never holds more than split_threshold
-- rows (it splits, exactly, before taking another), and the row counts of
-- a random-order load in one session add up exactly.
CREATE TABLE scap (id bigint NOT NULL, payload text) USING clustered_heap;
CREATE INDEX scap_ck ON scap USING clustered_pk_index (id) WITH (split_threshold = 64);
SELECT setseed(0.3);
INSERT INTO scap SELECT g, repeat('c', 60) FROM generate_series(1, 8000) g ORDER BY random();
INSERT INTO scap SELECT g, repeat('c', 60) FROM generate_series(8001, 8400) g;
SELECT rows_mapped = (SELECT count(*) FROM scap) AS counts_exact, contiguous, within_threshold
  FROM sm_summary('scap');
SELECT max(n) <= 64 AS no_segment_over_capacity
  FROM (SELECT count(*) AS n FROM clustered_pg.segment_map_tids_of('scap') GROUP BY major_key) t;
SELECT count(*) AS violations FROM clustered_pg.verify('scap');

DROP TABLE sm, sd, sf, sr, sl, sc, sff10, sff100, splain, sa, scap;
DROP VIEW sview;
DROP SEQUENCE sseq;
DROP FUNCTION sm_consistent(regclass, bigint), sm_summary(regclass), sm_err(text);
DROP EXTENSION clustered_pg;
