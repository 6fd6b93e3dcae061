-- Ordered index scans: key order forward and backward, NULL keys last,
-- scroll cursors, mark/restore under a merge join with duplicate inner
-- keys, ORDER BY ... LIMIT reading few blocks, CLUSTER USING the index,
-- HOT chains, and no index-only scans.
CREATE EXTENSION clustered_pg;
SELECT setseed(0.42);

-- A plain heap in random key order (zones overlap: the stream must sort
-- across blocks), with duplicates and NULL keys.
CREATE TABLE oh (id bigint, v text);
INSERT INTO oh SELECT g % 3000, 'v' || g FROM generate_series(1, 6000) g ORDER BY random();
INSERT INTO oh VALUES (NULL, 'n1'), (NULL, 'n2');
CREATE INDEX oh_ck ON oh USING clustered_pk_index (id) WITH (split_threshold = 64);
ANALYZE oh;

SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT id FROM oh ORDER BY id;
EXPLAIN (COSTS OFF) SELECT id FROM oh WHERE id > 100 ORDER BY id DESC LIMIT 3;

-- The whole table, both directions, equals a sort (NULLS LAST ascending,
-- NULLS FIRST descending, every row once).
CREATE FUNCTION same_as_sort(q text, ref text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE a text[]; b text[];
BEGIN
  EXECUTE 'SELECT array_agg(x) FROM (' || q || ') s(x)' INTO a;
  SET LOCAL enable_indexscan = off; SET LOCAL enable_sort = on; SET LOCAL enable_seqscan = on;
  EXECUTE 'SELECT array_agg(x) FROM (' || ref || ') s(x)' INTO b;
  RETURN a IS NOT DISTINCT FROM b;
END $$;
SELECT same_as_sort('SELECT id::text FROM oh ORDER BY id', 'SELECT id::text FROM oh ORDER BY id') AS full_forward,
       same_as_sort('SELECT id::text FROM oh ORDER BY id DESC', 'SELECT id::text FROM oh ORDER BY id DESC') AS full_backward,
       same_as_sort('SELECT id::text FROM oh WHERE id BETWEEN 500 AND 900 ORDER BY id',
                    'SELECT id::text FROM oh WHERE id BETWEEN 500 AND 900 ORDER BY id') AS range_forward,
       same_as_sort('SELECT id::text FROM oh WHERE id < 77 ORDER BY id DESC',
                    'SELECT id::text FROM oh WHERE id < 77 ORDER BY id DESC') AS range_backward;
SELECT count(*) AS all_rows, count(id) AS keyed FROM (SELECT id FROM oh ORDER BY id) s;
-- Equality on overlapping zones (several candidate blocks): the scan reads
-- their keys and returns just the matches, each once.
EXPLAIN (COSTS OFF) SELECT v FROM oh WHERE id = 1234;
SELECT bool_and((SELECT count(*) FROM oh WHERE id = k) = (SELECT count(*) FROM oh WHERE id + 0 = k))
       AS every_key_found, count(*) AS keys
  FROM generate_series(-1, 3000, 37) k;
SELECT id FROM oh ORDER BY id DESC LIMIT 4;
SELECT id, count(*) FROM (SELECT id FROM oh ORDER BY id LIMIT 5) s GROUP BY id ORDER BY id;

-- Scroll cursor: direction changes move through what was already read.
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT id FROM oh WHERE id >= 2997 ORDER BY id;
FETCH 3 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH LAST FROM c;
FETCH PRIOR FROM c;
FETCH FIRST FROM c;
FETCH ABSOLUTE 4 FROM c;
FETCH BACKWARD ALL FROM c;
FETCH NEXT FROM c;
COMMIT;

-- Merge join through the index on both sides, the inner side with
-- duplicate keys: the join marks and restores the inner scan.
CREATE TABLE om (id bigint, w int);
INSERT INTO om SELECT g % 50, g FROM generate_series(1, 400) g ORDER BY random();
CREATE INDEX om_ck ON om USING clustered_pk_index (id);
ANALYZE om;
SET enable_hashjoin = off;
SET enable_nestloop = off;
SET enable_material = off;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM om a JOIN oh b ON a.id = b.id WHERE a.id < 40;
CREATE TEMP TABLE mj AS
  SELECT a.id, a.w, b.v FROM om a JOIN oh b ON a.id = b.id WHERE a.id < 40;
RESET enable_hashjoin;
RESET enable_nestloop;
RESET enable_material;
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_sort;
SET enable_mergejoin = off;
SET enable_indexscan = off;
SELECT count(*) AS merge_rows,
       (SELECT count(*) FROM om a JOIN oh b ON a.id = b.id WHERE a.id < 40) AS hash_rows,
       (SELECT count(*) FROM (
          (SELECT a.id, a.w, b.v FROM om a JOIN oh b ON a.id = b.id WHERE a.id < 40
           EXCEPT ALL SELECT * FROM mj)
          UNION ALL
          (SELECT * FROM mj EXCEPT ALL
           SELECT a.id, a.w, b.v FROM om a JOIN oh b ON a.id = b.id WHERE a.id < 40)) d) AS differing
  FROM mj;
RESET enable_mergejoin;
RESET enable_indexscan;

-- ORDER BY ... LIMIT on a table loaded in key order reads a few blocks,
-- not the range: the stream stops as soon as the limit is served.
CREATE TABLE ol (id bigint, payload text);
INSERT INTO ol SELECT g, repeat('p', 100) FROM generate_series(1, 40000) g;
CREATE INDEX ol_ck ON ol USING clustered_pk_index (id);
VACUUM ANALYZE ol;
CREATE FUNCTION buffers(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, FORMAT JSON) ' || q INTO j;
  RETURN (j->0->'Plan'->>'Shared Hit Blocks')::int + (j->0->'Plan'->>'Shared Read Blocks')::int;
END $$;
EXPLAIN (COSTS OFF) SELECT * FROM ol WHERE id > 1000 ORDER BY id LIMIT 10;
SELECT buffers('SELECT * FROM ol WHERE id > 1000 ORDER BY id LIMIT 10') <= 6 AS limit_reads_few_blocks,
       buffers('SELECT * FROM ol ORDER BY id DESC LIMIT 10') <= 6 AS backward_limit_reads_few_blocks;
SELECT array_agg(id) FROM (SELECT id FROM ol WHERE id > 1000 ORDER BY id LIMIT 10) s;
SELECT array_agg(id) FROM (SELECT id FROM ol ORDER BY id DESC LIMIT 3) s;
-- Without ORDER BY, a range goes to the ClusteredRangeScan custom scan
-- (each block read once; sql/range_scan.sql).
EXPLAIN (COSTS OFF) SELECT * FROM ol WHERE id BETWEEN 1000 AND 2000;

-- HOT updates: each row once, with its newest version.
UPDATE ol SET payload = 'hot' WHERE id BETWEEN 20001 AND 20010;
UPDATE ol SET payload = 'hot2' WHERE id BETWEEN 20001 AND 20005;
SET enable_bitmapscan = off;
SET enable_seqscan = off;
SELECT id, payload FROM ol WHERE id BETWEEN 19999 AND 20006 ORDER BY id;
SELECT id, payload FROM ol WHERE id BETWEEN 19999 AND 20006 ORDER BY id DESC;

-- Point lookups, where one block holds the key: the scan reads the block's
-- keys and leaves it pinned for the executor's fetch, which then reads it
-- no second time (3 buffers: metapage, segment page, heap block). A
-- HOT-updated row gives its newest version; duplicates in a scroll cursor
-- go both ways; a nested loop rescans the index for each outer row (each
-- rescan drops the block the last one kept).
SELECT buffers('SELECT * FROM ol WHERE id = 30003') AS point_buffers;
SELECT id, payload FROM ol WHERE id = 20003;
SELECT id, payload FROM ol WHERE id = 20008;
INSERT INTO ol SELECT 20003, 'dup' FROM generate_series(1, 3);
BEGIN;
DECLARE p SCROLL CURSOR FOR SELECT id FROM ol WHERE id = 20003;
FETCH ALL FROM p;
FETCH BACKWARD 2 FROM p;
FETCH ABSOLUTE 4 FROM p;
FETCH NEXT FROM p;
COMMIT;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM generate_series(19990, 20020) g JOIN ol ON ol.id = g;
SELECT count(*) AS joined, count(*) FILTER (WHERE payload LIKE 'hot%') AS newest_versions
  FROM generate_series(19990, 20020) g JOIN ol ON ol.id = g;
RESET enable_hashjoin;
RESET enable_mergejoin;
DELETE FROM ol WHERE payload = 'dup';
RESET enable_bitmapscan;
RESET enable_seqscan;

-- count(*) never becomes an index-only scan (the index stores no column);
-- forced, one still counts correctly.
EXPLAIN (COSTS OFF) SELECT count(*) FROM oh;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM oh;
SELECT count(*) FROM oh;
SET enable_indexscan = off;
SELECT count(*) FROM oh;
RESET enable_indexscan;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- CLUSTER USING the index: key order on disk, NULL keys kept, map sound.
CLUSTER oh USING oh_ck;
ANALYZE oh;
SELECT count(*) AS rows_after_cluster, count(id) AS keyed FROM oh;
SELECT correlation > 0.99 AS clustered FROM pg_stats WHERE tablename = 'oh' AND attname = 'id';
SELECT count(*) AS violations FROM clustered_pg.verify('oh');
-- ... and on a clustered_heap table.
CREATE TABLE oc (id int, v text) USING clustered_heap;
CREATE INDEX oc_ck ON oc USING clustered_pk_index (id);
INSERT INTO oc SELECT g, 'c' FROM generate_series(1, 5000) g ORDER BY random();
CLUSTER oc USING oc_ck;
ANALYZE oc;
SELECT count(*) AS rows_after_cluster FROM oc;
SELECT correlation > 0.99 AS clustered FROM pg_stats WHERE tablename = 'oc' AND attname = 'id';
SELECT count(*) AS violations FROM clustered_pg.verify('oc');
SELECT same_as_sort('SELECT id::text FROM oc WHERE id > 4990 ORDER BY id DESC',
                    'SELECT id::text FROM oc WHERE id > 4990 ORDER BY id DESC') AS after_cluster;

-- Only ascending NULLS LAST keys: scans run backward for DESC.
CREATE INDEX ol_desc ON ol USING clustered_pk_index (id DESC);
CREATE INDEX ol_nf ON ol USING clustered_pk_index (id NULLS FIRST);

DROP TABLE oh, om, ol, oc;
DROP FUNCTION same_as_sort(text, text), buffers(text);
DROP EXTENSION clustered_pg;
