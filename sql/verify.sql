-- clustered_pg.verify(): the invariant check, and proof that it reports
-- violations (rows inserted while the index was not maintained).
CREATE EXTENSION clustered_pg;
SET search_path = public;
CREATE TABLE vt (id bigint, payload text);
INSERT INTO vt SELECT g, 'x' FROM generate_series(1, 5000) g;
CREATE INDEX vt_ck ON vt USING clustered_pk_index (id);
INSERT INTO vt SELECT g * 7 % 20000, 'y' FROM generate_series(1, 2000) g;
UPDATE vt SET id = id + 100000 WHERE id % 10 = 0;
DELETE FROM vt WHERE id % 13 = 0;
SELECT count(*) AS violations FROM clustered_pg.verify('vt');
SELECT count(*) AS violations_via_index FROM clustered_pg.verify('vt_ck');
VACUUM vt;
SELECT count(*) AS violations_after_vacuum FROM clustered_pg.verify('vt');
-- Aborted inserts leave dead tuples the map never saw: not violations.
BEGIN;
INSERT INTO vt SELECT g, 'aborted' FROM generate_series(900000, 901000) g;
ROLLBACK;
SELECT count(*) AS violations_after_abort FROM clustered_pg.verify('vt');

-- Rows the index never saw: mark it not ready, insert, mark it ready.
UPDATE pg_index SET indisready = false WHERE indexrelid = 'vt_ck'::regclass;
INSERT INTO vt VALUES (777777, 'unmapped'), (888888, 'unmapped');
UPDATE pg_index SET indisready = true WHERE indexrelid = 'vt_ck'::regclass;
SELECT kind, key, detail FROM clustered_pg.verify('vt') ORDER BY key;
REINDEX INDEX vt_ck;
SELECT count(*) AS violations_after_reindex FROM clustered_pg.verify('vt');

-- Bad input: clear errors.
SELECT * FROM clustered_pg.verify(NULL);
SELECT * FROM clustered_pg.verify('pg_class');
CREATE TABLE plain (id int);
CREATE INDEX plain_bt ON plain (id);
SELECT * FROM clustered_pg.verify('plain');
SELECT * FROM clustered_pg.verify('plain_bt');
CREATE SEQUENCE vseq;
SELECT * FROM clustered_pg.verify('vseq');
CREATE VIEW vview AS SELECT 1 AS x;
SELECT * FROM clustered_pg.verify('vview');
SELECT * FROM clustered_pg.verify(0::oid::regclass);
-- Reading the map needs SELECT on the table.
CREATE ROLE cpg_verify_nobody;
SET ROLE cpg_verify_nobody;
SELECT * FROM clustered_pg.verify('vt');
RESET ROLE;
GRANT SELECT ON vt TO cpg_verify_nobody;
SET ROLE cpg_verify_nobody;
SELECT count(*) AS violations_as_reader FROM clustered_pg.verify('vt');
RESET ROLE;
REVOKE SELECT ON vt FROM cpg_verify_nobody;
DROP ROLE cpg_verify_nobody;
DROP TABLE vt, plain;
DROP SEQUENCE vseq;
DROP VIEW vview;
DROP EXTENSION clustered_pg;
