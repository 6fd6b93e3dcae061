-- clustered_pk_index: building the map, inserting, and bad definitions.
CREATE EXTENSION clustered_pg;
SET search_path = public;

SELECT amname, amtype FROM pg_am WHERE amname = 'clustered_pk_index';
SELECT opcname, opcintype::regtype, opcdefault FROM pg_opclass
 WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'clustered_pk_index')
 ORDER BY opcname;

-- Build on a populated table loaded in key order.
CREATE TABLE ev (id bigint, ts timestamptz, payload text);
INSERT INTO ev SELECT g, '2026-01-01'::timestamptz + g * interval '1 second', repeat('p', 100)
  FROM generate_series(1, 20000) g;
CREATE INDEX ev_ck ON ev USING clustered_pk_index (id);
-- The map is tiny next to the table.
SELECT pg_relation_size('ev_ck') < pg_relation_size('ev') / 50 AS under_2_percent_of_heap;

-- Inserts after the build: appends, a gap, duplicates, negatives, extremes.
INSERT INTO ev SELECT g, now(), 'late' FROM generate_series(20001, 21000) g;
INSERT INTO ev VALUES (15000, now(), 'dup'), (-5, now(), 'neg'),
  (9223372036854775807, now(), 'max'), (-9223372036854775808, now(), 'min');

-- NULL keys are allowed in the table and are not mapped; no index scan
-- needs them (every index condition is strict), and IS NULL finds them.
INSERT INTO ev VALUES (NULL, now(), 'null key'), (NULL, now(), 'null key 2');
EXPLAIN (COSTS OFF) SELECT count(*) FROM ev WHERE id IS NULL;
SELECT count(*) AS null_keys FROM ev WHERE id IS NULL;
SET enable_seqscan = off;
SELECT count(*) AS null_keys_still_found FROM ev WHERE id IS NULL;
RESET enable_seqscan;

-- Bad definitions: clear errors, nothing created.
CREATE INDEX ev_two ON ev USING clustered_pk_index (id, ts);
CREATE INDEX ev_text ON ev USING clustered_pk_index (payload);
CREATE INDEX ev_ck2 ON ev USING clustered_pk_index (id);
CREATE INDEX ev_bad ON ev USING clustered_pk_index (id) WITH (target_fillfactor = 5);
CREATE INDEX ev_bad ON ev USING clustered_pk_index (id) WITH (split_threshold = 0);
CREATE INDEX ev_bad ON ev USING clustered_pk_index (id) WITH (auto_repack_interval = -1);
CREATE INDEX ev_bad ON ev USING clustered_pk_index (id) WITH (no_such_option = 1);
CREATE VIEW ev_v AS SELECT * FROM ev;
CREATE INDEX ev_v_ck ON ev_v USING clustered_pk_index (id);
CREATE SEQUENCE ev_seq;
CREATE INDEX ev_seq_ck ON ev_seq USING clustered_pk_index (last_value);
SELECT count(*) AS clustered_indexes FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'clustered_pk_index';

-- Options: given at build, changed with ALTER INDEX ... SET / RESET.
CREATE TABLE opt (id int);
CREATE INDEX opt_ck ON opt USING clustered_pk_index (id)
  WITH (split_threshold = 64, target_fillfactor = 85, auto_repack_interval = 60);
SELECT reloptions FROM pg_class WHERE relname = 'opt_ck';
ALTER INDEX opt_ck SET (target_fillfactor = 70);
ALTER INDEX opt_ck SET (target_fillfactor = 101);
ALTER INDEX opt_ck RESET (split_threshold);
SELECT reloptions FROM pg_class WHERE relname = 'opt_ck';
-- Small segments split as rows arrive.
INSERT INTO opt SELECT g FROM generate_series(1, 2000) g;
SET enable_seqscan = off;
SELECT count(*) FROM opt WHERE id BETWEEN 100 AND 1099;
RESET enable_seqscan;

-- Other key types.
CREATE TABLE small (k smallint, v text);
INSERT INTO small SELECT g, 'v' FROM generate_series(-300, 300) g;
CREATE INDEX small_ck ON small USING clustered_pk_index (k);
CREATE TABLE mid (k integer, v text);
INSERT INTO mid SELECT g * 1000, 'v' FROM generate_series(-1000, 1000) g;
CREATE INDEX mid_ck ON mid USING clustered_pk_index (k);

-- An unlogged table gets an init fork, and TRUNCATE resets it.
CREATE UNLOGGED TABLE ul (id bigint);
CREATE INDEX ul_ck ON ul USING clustered_pk_index (id);
INSERT INTO ul SELECT generate_series(1, 1000);
TRUNCATE ul;
INSERT INTO ul SELECT generate_series(1, 10);
SET enable_seqscan = off;
SELECT count(*) FROM ul WHERE id > 5;
RESET enable_seqscan;

-- REINDEX rebuilds; DROP INDEX and re-create.
REINDEX INDEX ev_ck;
DROP INDEX ev_ck;
CREATE INDEX ev_ck ON ev USING clustered_pk_index (id);

-- A table the map cannot describe (one key in more heap blocks than a page
-- lists) gets an overflowed index: a warning, scans read every block, the
-- planner avoids it, writes never fail, verify() says so.
CREATE TABLE same (id int, pad text);
INSERT INTO same SELECT 7, repeat('s', 100) FROM generate_series(1, 40000);
CREATE INDEX same_ck ON same USING clustered_pk_index (id);
INSERT INTO same SELECT 7, 'more' FROM generate_series(1, 100);
SELECT kind FROM clustered_pg.verify('same');
EXPLAIN (COSTS OFF) SELECT count(*) FROM same WHERE id = 7;
SET enable_seqscan = off;
SELECT count(*) FROM same WHERE id = 7;
RESET enable_seqscan;
DROP TABLE same;

-- CLUSTER USING the clustered index reads it in key order; the row with a
-- NULL key is kept (last). More in ordered_scan.
CREATE TABLE cl (id int, v text);
INSERT INTO cl VALUES (2, 'b'), (NULL, 'null'), (1, 'a');
CREATE INDEX cl_ck ON cl USING clustered_pk_index (id);
CLUSTER cl USING cl_ck;
SELECT count(*) FROM cl;
SELECT id, v FROM cl ORDER BY ctid;
DROP TABLE cl;

-- amvalidate: the extension's operator classes are valid; one for another
-- type or with missing strategies is reported.
SELECT opcname, amvalidate(oid) FROM pg_opclass
 WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'clustered_pk_index') ORDER BY 1;
CREATE OPERATOR CLASS bad_text_ops FOR TYPE text USING clustered_pk_index AS
    OPERATOR 1 <(text, text);
SELECT amvalidate(oid) FROM pg_opclass WHERE opcname = 'bad_text_ops';
CREATE TABLE t_text (v text);
CREATE INDEX t_text_ck ON t_text USING clustered_pk_index (v bad_text_ops);
DROP TABLE t_text;
DROP OPERATOR CLASS bad_text_ops USING clustered_pk_index;
DROP OPERATOR FAMILY bad_text_ops USING clustered_pk_index;
