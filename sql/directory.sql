-- The two-level segment directory (docs/architecture.md "Storage"). The
-- developer setting clustered_pg.debug_dir_capacity lowers how many entries
-- the metapage and a directory page take, so small tables grow the
-- directory from depth 0 (metapage -> segment pages) to depth 1 (metapage
-- -> directory pages -> segment pages) through inserts, directory pages
-- split, and REINDEX builds depth 1 directly.
CREATE EXTENSION clustered_pg;
SET search_path = public;
SET clustered_pg.debug_dir_capacity = 8;

-- Every key 1..n is found by an equality lookup through the index, and
-- nothing else is.
CREATE FUNCTION all_found(t regclass, n int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c bigint; missing int := 0; plan text;
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_bitmapscan = off;
  SET LOCAL clustered_pg.enable_range_scan = off;
  EXECUTE format('EXPLAIN (COSTS OFF) SELECT * FROM %s WHERE id = 1', t) INTO plan;
  FOR k IN 1..n LOOP
    EXECUTE format('SELECT count(*) FROM %s WHERE id = $1', t) INTO c USING k;
    IF c <> 1 THEN missing := missing + 1; END IF;
  END LOOP;
  EXECUTE format('SELECT count(*) FROM %s WHERE id = $1', t) INTO c USING n + 1;
  RETURN format('%s missing of %s, %s extra, plan: %s', missing, n, c, plan);
END $$;

-- Ordered index scans (forward and backward, whole table and a range)
-- return exactly a sort of the table. The reference hides the key behind
-- "id + 0", which no index can serve.
CREATE FUNCTION ordered_same(t regclass, lo int, hi int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a text; b text; ok text := ''; plan text; q text; ref text; line text;
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_bitmapscan = off;
  SET LOCAL enable_sort = off;
  FOREACH q IN ARRAY ARRAY[
      format('SELECT string_agg(id::text, '','') FROM (SELECT id FROM %s ORDER BY id) s', t),
      format('SELECT string_agg(id::text, '','') FROM (SELECT id FROM %s ORDER BY id DESC) s', t),
      format('SELECT string_agg(id::text, '','') FROM (SELECT id FROM %s WHERE id BETWEEN %s AND %s ORDER BY id) s', t, lo, hi),
      format('SELECT string_agg(id::text, '','') FROM (SELECT id FROM %s WHERE id BETWEEN %s AND %s ORDER BY id DESC) s', t, lo, hi)]
  LOOP
    plan := '';
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
      plan := plan || line || ' ';
    END LOOP;
    EXECUTE q INTO a;
    ref := replace(replace(q, 'ORDER BY id', 'ORDER BY id + 0'), 'WHERE id', 'WHERE id + 0');
    EXECUTE ref INTO b;
    ok := ok || CASE WHEN a = b AND a IS NOT NULL THEN 'same' ELSE 'DIFFERENT' END
             || CASE WHEN plan LIKE '%Index Scan%' AND plan NOT LIKE '%Sort%' THEN ''
                     ELSE ' (not an ordered index scan)' END || ' ';
  END LOOP;
  RETURN rtrim(ok);
END $$;

-- Key ranges through the ClusteredRangeScan custom scan (sql/range_scan.sql)
-- return what a sequential scan returns, whatever the directory's depth.
CREATE FUNCTION ranges_same(t regclass, n int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a bigint; b bigint; bad int := 0; plan text; lo int;
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_indexscan = off;
  SET LOCAL enable_bitmapscan = off;
  EXECUTE format('EXPLAIN (COSTS OFF) SELECT * FROM %s WHERE id BETWEEN 1 AND 2', t) INTO plan;
  FOR lo IN SELECT generate_series(1, n, n / 20) LOOP
    EXECUTE format('SELECT count(*) FROM %s WHERE id BETWEEN $1 AND $2', t) INTO a USING lo, lo + n / 7;
    EXECUTE format('SELECT count(*) FROM %s WHERE id + 0 BETWEEN $1 AND $2', t) INTO b USING lo, lo + n / 7;
    IF a <> b THEN bad := bad + 1; END IF;
  END LOOP;
  RETURN format('%s of 20 ranges differ, plan: %s', bad, plan);
END $$;

CREATE FUNCTION shape(t regclass) RETURNS text LANGUAGE sql AS $$
  -- Growing a level makes two directory pages; more means a directory
  -- page split (or a build that needed more).
  SELECT format('levels=%s dir_pages>2=%s segment_pages>8=%s overflowed=%s',
                directory_levels, directory_pages > 2, segment_pages > 8, overflowed)
    FROM clustered_pg.directory_stats(t)
$$;

-- 1. clustered_heap, ascending inserts (appends: rightmost splits).
-- Capacity 8 per level: depth 0 holds 8 segment pages, depth 1 64.
CREATE TABLE ca (id int, payload text) USING clustered_heap;
CREATE INDEX ca_ck ON ca USING clustered_pk_index (id) WITH (split_threshold = 16);
SELECT directory_levels, root_entries, directory_pages, segment_pages,
       segment_pages_addressable, overflowed
  FROM clustered_pg.directory_stats('ca');
-- Wide rows: one segment per heap block on ascending loads.
INSERT INTO ca SELECT g, repeat('a', 1000) FROM generate_series(1, 16000) g;
SELECT shape('ca');
SELECT count(*) AS violations FROM clustered_pg.verify('ca');

-- 2. clustered_heap, random order (a fixed permutation of 1..12000).
CREATE TABLE cr (id int, payload text) USING clustered_heap;
CREATE INDEX cr_ck ON cr USING clustered_pk_index (id) WITH (split_threshold = 16);
INSERT INTO cr SELECT (g * 7919) % 12000 + 1, repeat('r', 40) FROM generate_series(0, 11999) g;
SELECT shape('cr');
SELECT count(*) AS violations FROM clustered_pg.verify('cr');

-- 3. plain heap, ascending.
CREATE TABLE ha (id int, payload text);
CREATE INDEX ha_ck ON ha USING clustered_pk_index (id) WITH (split_threshold = 16);
INSERT INTO ha SELECT g, repeat('h', 1000) FROM generate_series(1, 16000) g;
SELECT shape('ha');
SELECT count(*) AS violations FROM clustered_pg.verify('ha');

-- 4. plain heap, random order: blocks hold keys from everywhere, so each
-- segment lists many blocks and segment pages fill fast.
CREATE TABLE hr (id int, payload text);
CREATE INDEX hr_ck ON hr USING clustered_pk_index (id) WITH (split_threshold = 16);
INSERT INTO hr SELECT (g * 7919) % 6000 + 1, repeat('h', 1000) FROM generate_series(0, 5999) g;
SELECT shape('hr');
SELECT count(*) AS violations FROM clustered_pg.verify('hr');

-- Every row is found through the index; ordered scans equal a sort.
SELECT all_found('ca', 16000);
SELECT all_found('cr', 12000);
SELECT all_found('ha', 16000);
SELECT all_found('hr', 6000);
SELECT ranges_same('ca', 16000);
SELECT ranges_same('cr', 12000);
SELECT ranges_same('ha', 16000);
SELECT ranges_same('hr', 6000);
SELECT ordered_same('ca', 3000, 9000);
SELECT ordered_same('cr', 3000, 9000);
SELECT ordered_same('ha', 3000, 9000);
SELECT ordered_same('hr', 1000, 3000);

-- The segment map SRFs see every segment page at depth 1: the segments
-- tile the key space from the lowest to the highest key without a gap.
SELECT t, count(*) > 8 * 2 AS many_segments,
       bool_and(CASE WHEN prev_to IS NULL THEN minor_from = -9223372036854775808
                     ELSE minor_from = prev_to + 1 END)
         AND max(minor_to) = 9223372036854775807 AS contiguous
  FROM (VALUES ('ca'::regclass), ('cr'), ('ha'), ('hr')) v(t),
       LATERAL (SELECT s.*, lag(minor_to) OVER (ORDER BY minor_from) AS prev_to
                  FROM clustered_pg.segment_map_of(t) s) x
 GROUP BY t ORDER BY t::text;

-- Deletes and VACUUM (zones tighten, segment pages found through the
-- directory pages), then more inserts into the freed key range.
DELETE FROM cr WHERE id % 3 = 0;
VACUUM cr;
INSERT INTO cr SELECT g, 'again' FROM generate_series(1, 12000) g WHERE g % 3 = 0;
SELECT shape('cr');
SELECT count(*) AS violations FROM clustered_pg.verify('cr');
SELECT all_found('cr', 12000);

-- REINDEX builds depth 1 directly (the build lays the directory out over
-- directory pages when the metapage cannot list every segment page).
REINDEX INDEX ca_ck;
REINDEX INDEX cr_ck;
REINDEX INDEX ha_ck;
REINDEX INDEX hr_ck;
SELECT shape('ca'), shape('cr'), shape('ha'), shape('hr');
SELECT count(*) AS violations FROM clustered_pg.verify('ca');
SELECT count(*) AS violations FROM clustered_pg.verify('hr');
SELECT ordered_same('ca', 3000, 9000);
SELECT ordered_same('hr', 1000, 3000);
SELECT all_found('cr', 12000);

-- Inserts after the rebuild split the build's directory pages.
INSERT INTO ca SELECT g, repeat('b', 1000) FROM generate_series(16001, 24000) g;
SELECT shape('ca');
SELECT count(*) AS violations FROM clustered_pg.verify('ca');
SELECT ordered_same('ca', 15000, 17000);

-- At the real capacity the same table fits the metapage: depth 0, as
-- before the second level existed.
RESET clustered_pg.debug_dir_capacity;
REINDEX INDEX ca_ck;
SELECT directory_levels, directory_pages, overflowed FROM clustered_pg.directory_stats('ca');
SELECT count(*) AS violations FROM clustered_pg.verify('ca');
SELECT all_found('ca', 24000);

-- When even the lowered directory is full, the map overflows (the last
-- resort), warns once, and scans still return every row.
SET clustered_pg.debug_dir_capacity = 3;
CREATE TABLE tiny (id int, payload text);
CREATE INDEX tiny_ck ON tiny USING clustered_pk_index (id) WITH (split_threshold = 16);
INSERT INTO tiny SELECT (g * 7919) % 6000 + 1, repeat('t', 1000) FROM generate_series(0, 5999) g;
SELECT directory_levels, segment_pages_addressable, overflowed
  FROM clustered_pg.directory_stats('tiny');
SELECT kind FROM clustered_pg.verify('tiny');
SELECT count(*) FROM tiny WHERE id BETWEEN 100 AND 199;
-- REINDEX cannot fit it either: the build overflows too (its warning
-- counts heap-layout-dependent pages, so it is not shown).
SET client_min_messages = error;
REINDEX INDEX tiny_ck;
RESET client_min_messages;
SELECT directory_levels, overflowed FROM clustered_pg.directory_stats('tiny');
RESET clustered_pg.debug_dir_capacity;

-- Only superusers may change the developer setting.
CREATE ROLE cpg_dir_user;
SET ROLE cpg_dir_user;
SET clustered_pg.debug_dir_capacity = 4;
RESET ROLE;
DROP ROLE cpg_dir_user;

-- Structural changes (segment splits) are logged as the bytes they
-- change: a page image goes with a page's first change after a checkpoint
-- and with a new page, not with every split (a rewritten page kept the
-- LSN that tells XLogInsert which is which). Each map page at most twice,
-- should a checkpoint fall inside the window. (wal_consistency_checking
-- adds an image of every page to every record: nothing to see then.)
CREATE EXTENSION pg_walinspect;
CREATE TABLE walfp (id bigint NOT NULL, pad text) USING clustered_heap;
CREATE INDEX walfp_ck ON walfp USING clustered_pk_index (id) WITH (split_threshold = 16);
SELECT pg_current_wal_insert_lsn() AS wal_from \gset
SELECT setseed(0.3);
INSERT INTO walfp SELECT g, repeat('w', 40) FROM generate_series(1, 4000) g ORDER BY random();
SELECT pg_current_wal_insert_lsn() AS wal_to \gset
SELECT segment_count > 100 AS many_splits
  FROM clustered_pg.segment_map_stats('walfp');
SELECT current_setting('wal_consistency_checking') <> ''
       OR count(*) FILTER (WHERE fpi_length > 0)
          <= 2 * pg_relation_size('walfp_ck') / 8192 AS images_at_most_twice_per_page
  FROM pg_get_wal_records_info(:'wal_from', :'wal_to')
 WHERE resource_manager = 'Generic';
SELECT kind FROM clustered_pg.verify('walfp');
DROP TABLE walfp;
DROP EXTENSION pg_walinspect;

DROP TABLE ca, cr, ha, hr, tiny;
DROP FUNCTION all_found(regclass, int), ordered_same(regclass, int, int), shape(regclass),
  ranges_same(regclass, int);
DROP EXTENSION clustered_pg;
