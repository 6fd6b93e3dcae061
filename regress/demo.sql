-- regress/demo.sql -- the side-by-side demo run by regress/demo.sh (`make demo`).
--
-- What it shows: a range query over a key costs as many heap pages as the
-- rows of that range are spread over.  A plain heap loaded in random key
-- order spreads them everywhere; CLUSTER fixes that once, and the order
-- decays as soon as new rows arrive.  clustered_pg's table access method
-- (not in this version yet) keeps the order while rows arrive.
--
-- Everything printed here is measured, nothing is made up.  Runs in a
-- throwaway cluster; about 20 seconds.

\set ON_ERROR_STOP on
-- ANALYZE samples 300 x statistics target rows: with 1000 it reads every row
-- of these tables, so correlations and plans are the same on every run.
SET default_statistics_target = 1000;
\pset footer off
\timing off

\echo
\echo '=== clustered_pg demo ==='
\echo
CREATE EXTENSION clustered_pg;
\echo 'Installed extension version:'
SELECT clustered_pg.version();

-- ---------------------------------------------------------------------------
-- Helpers (schema demo): measure one range query on one table.
-- ---------------------------------------------------------------------------
CREATE SCHEMA demo;

-- Runs EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of
--   SELECT * FROM <tbl> WHERE id BETWEEN lo AND hi
-- and returns the plan shape and the shared buffers it touched
-- ("Shared Hit Blocks" + "Shared Read Blocks" of the top plan node, which
-- include its children: index pages + heap pages).
CREATE FUNCTION demo.range_query_cost(tbl regclass, lo bigint, hi bigint,
                                      OUT plan text, OUT shared_buffers bigint)
LANGUAGE plpgsql AS $$
DECLARE
    j json;
    top json;
BEGIN
    EXECUTE format('EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM %s WHERE id BETWEEN %s AND %s',
                   tbl, lo, hi) INTO j;
    top := j -> 0 -> 'Plan';
    plan := top ->> 'Node Type';
    IF top -> 'Plans' IS NOT NULL THEN
        plan := plan || ' + ' || (top -> 'Plans' -> 0 ->> 'Node Type');
    END IF;
    shared_buffers := (top ->> 'Shared Hit Blocks')::bigint + (top ->> 'Shared Read Blocks')::bigint;
END
$$;

-- One row of the comparison for one table.
CREATE TABLE demo.results (
    step                int,
    "table"             text,
    "rows in range"     bigint,
    plan                text,
    "shared buffers"    bigint,
    "heap blocks"       bigint,
    "ideal blocks"      bigint,
    "id correlation"    numeric
);

CREATE FUNCTION demo.measure(step int, label text, tbl regclass, lo bigint, hi bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n_rows bigint;
    n_blocks bigint;
    rows_per_page numeric;
    corr numeric;
    c record;
BEGIN
    EXECUTE format('ANALYZE %s', tbl);
    -- Rows of the range and the distinct heap blocks holding them.
    EXECUTE format('SELECT count(*), count(DISTINCT (ctid::text::point)[0]) FROM %s WHERE id BETWEEN %s AND %s',
                   tbl, lo, hi) INTO n_rows, n_blocks;
    SELECT reltuples::numeric / greatest(relpages, 1) INTO rows_per_page
      FROM pg_class WHERE oid = tbl;
    SELECT s.correlation INTO corr
      FROM pg_stats s JOIN pg_class r ON r.relname = s.tablename
      JOIN pg_namespace n ON n.oid = r.relnamespace AND n.nspname = s.schemaname
     WHERE r.oid = tbl AND s.attname = 'id';
    c := demo.range_query_cost(tbl, lo, hi);
    INSERT INTO demo.results
    VALUES (step, label, n_rows, c.plan, c.shared_buffers, n_blocks,
            ceil(n_rows / rows_per_page), round(corr, 3));
END
$$;

-- The table layout used by every variant: 200k rows of ~130 bytes,
-- about 55 rows per 8 kB page.
--   id bigint, ts timestamptz, payload text (100 characters)

-- Results of the statements below are not interesting: discard them.
\o /dev/null

\echo
\echo '--- Loading 200,000 rows in random key order into heap_btree (plain heap + btree on id) ...'
SELECT setseed(0.42);
CREATE TABLE heap_btree (id bigint, ts timestamptz, payload text);
INSERT INTO heap_btree
SELECT g, timestamptz '2024-01-01' + g * interval '1 second', left(repeat(md5(g::text), 4), 100)
  FROM generate_series(1, 200000) g
 ORDER BY random();
CREATE INDEX heap_btree_id ON heap_btree (id);

\echo '--- Loading the same rows into heap_clustered_once, then CLUSTER it on its btree ...'
SELECT setseed(0.42);
CREATE TABLE heap_clustered_once (id bigint, ts timestamptz, payload text);
INSERT INTO heap_clustered_once
SELECT g, timestamptz '2024-01-01' + g * interval '1 second', left(repeat(md5(g::text), 4), 100)
  FROM generate_series(1, 200000) g
 ORDER BY random();
CREATE INDEX heap_clustered_once_id ON heap_clustered_once (id);
CLUSTER heap_clustered_once USING heap_clustered_once_id;

\echo '--- Loading the same rows into clustered (clustered_heap + clustered_pk_index), no maintenance ...'
SELECT setseed(0.42);
CREATE TABLE clustered (id bigint NOT NULL, ts timestamptz, payload text) USING clustered_heap;
CREATE INDEX clustered_ck ON clustered USING clustered_pk_index (id);
INSERT INTO clustered
SELECT g, timestamptz '2024-01-01' + g * interval '1 second', left(repeat(md5(g::text), 4), 100)
  FROM generate_series(1, 200000) g
 ORDER BY random();

SELECT demo.measure(1, 'heap_btree',          'heap_btree',          100000, 104999);
SELECT demo.measure(1, 'heap_clustered_once', 'heap_clustered_once', 100000, 104999);
SELECT demo.measure(1, 'clustered',           'clustered',           100000, 104999);

\echo '--- Inserting 20,000 more rows with random keys into all three tables (the same rows) ...'
SELECT setseed(0.7);
CREATE TABLE demo.more AS
SELECT (1 + floor(random() * 200000))::bigint AS id FROM generate_series(1, 20000);
INSERT INTO heap_btree
SELECT id, timestamptz '2024-01-01' + id * interval '1 second', left(repeat(md5(id::text), 4), 100) FROM demo.more;
INSERT INTO heap_clustered_once
SELECT id, timestamptz '2024-01-01' + id * interval '1 second', left(repeat(md5(id::text), 4), 100) FROM demo.more;
INSERT INTO clustered
SELECT id, timestamptz '2024-01-01' + id * interval '1 second', left(repeat(md5(id::text), 4), 100) FROM demo.more;

SELECT demo.measure(2, 'heap_btree',          'heap_btree',          100000, 104999);
SELECT demo.measure(2, 'heap_clustered_once', 'heap_clustered_once', 100000, 104999);
SELECT demo.measure(2, 'clustered',           'clustered',           100000, 104999);
\o

\echo
\echo '=== Range query: SELECT * FROM <table> WHERE id BETWEEN 100000 AND 104999 ==='
\echo
\echo '  rows in range   rows the query returns'
\echo '  plan            what the planner chose (measured with EXPLAIN ANALYZE)'
\echo '  shared buffers  8 kB buffer accesses of the query, index + heap (EXPLAIN BUFFERS);'
\echo '                  an index scan that comes back to a page counts it again'
\echo '  heap blocks     distinct heap pages that hold the rows of the range'
\echo '  ideal blocks    pages the rows would need if stored together: ceil(rows / rows-per-page)'
\echo '  id correlation  pg_stats.correlation of id: 1 = physical order follows id, 0 = random'
\echo
\echo 'Step 1: right after loading (heap_clustered_once just went through CLUSTER)'
SELECT "table", "rows in range", plan, "shared buffers", "heap blocks", "ideal blocks", "id correlation"
  FROM demo.results WHERE step = 1 ORDER BY "table";
\echo 'Step 2: after 20,000 more inserts with random keys'
SELECT "table", "rows in range", plan, "shared buffers", "heap blocks", "ideal blocks", "id correlation"
  FROM demo.results WHERE step = 2 ORDER BY "table";

\echo 'Reading it: loaded in random key order, the rows of the range sit on'
\echo 'thousands of pages (heap blocks far above ideal blocks) and the query touches'
\echo 'about as many buffers.  CLUSTER packs them onto the ideal number of pages, but'
\echo 'it is a one-time rewrite under an exclusive lock: rows inserted afterwards land'
\echo 'wherever there is room (here: new pages at the end of the table), so heap'
\echo 'blocks and buffers climb again and the correlation drops with every insert.'
\echo 'clustered (clustered_heap) puts every insert next to its key neighbours, so'
\echo 'the range stays on few pages through both steps, with no maintenance. Its'
\echo 'correlation stays low: the pages hold narrow key ranges, but new pages are'
\echo 'appended in arrival order, not key order (repack, not yet built, fixes that).'
\echo 'clustered_pg.verify(''clustered'') checks the map covers every row:'
SELECT count(*) AS "verify() violations" FROM clustered_pg.verify('clustered');
\echo
