-- The clustered_locator type: the seed's 16-byte contract, ordering, btree
-- support, and errors for bad input.
CREATE EXTENSION clustered_pg;
SET search_path = clustered_pg, public;

SELECT clustered_pg.version() = extversion AS library_matches_extension
  FROM pg_extension WHERE extname = 'clustered_pg';
SELECT observability() ~ '^clustered_pg=[0-9.]+ api=1 pg=[0-9]+ defaults=\{split_threshold=1024,target_fillfactor=90,auto_repack_interval=3600\} counters=\{costestimate=[0-9]+,' AS observability_shape;
SELECT clustered_pg_observability() ~ 'costestimate=[0-9]+' AS costestimate_tracked;

-- Byte layout: major in bytes 0..7, minor in 8..15, big-endian int64.
SELECT locator_pack(1, 2) AS packed,
       locator_to_hex(locator_pack(1, 2)) AS hex,
       locator_pack(1, 2)::bytea AS raw;
SELECT locator_to_hex(locator_pack(-1, -2)) AS negative_hex;
SELECT locator_pack_int8(42) AS int8_form, locator_major(locator_pack_int8(42)) AS major,
       locator_minor(locator_pack_int8(42)) AS minor;
SELECT locator_major(l), locator_minor(l)
  FROM (VALUES (locator_pack(-9223372036854775808, 9223372036854775807))) v(l);
SELECT '\x0000000000000003000000000000000a'::bytea::clustered_locator AS from_bytea,
       '(7,-8)'::clustered_locator AS from_text,
       '00000000000000070000000000000008'::clustered_locator AS from_hex;
SELECT ('\x' || locator_to_hex(l))::bytea::clustered_locator = l AS hex_round_trip,
       l::bytea::clustered_locator = l AS bytea_round_trip
  FROM (VALUES (locator_pack(123456789, -987654321))) v(l);

-- Ordering: (major, minor) as signed integers, not raw bytes.
CREATE TABLE loc_t (id int, l clustered_locator);
INSERT INTO loc_t
SELECT row_number() OVER (), locator_pack(a, b)
  FROM unnest(ARRAY[-2, -1, 0, 1, 2]) a, unnest(ARRAY[-300, -1, 0, 1, 300]) b;
SELECT string_agg(l::text, ' ' ORDER BY l) FROM loc_t;
SELECT bool_and(((locator_major(x.l), locator_minor(x.l)) < (locator_major(y.l), locator_minor(y.l)))
                = (x.l < y.l)) AS lt_matches_tuple_order,
       bool_and((x.l <= y.l) = (locator_cmp(x.l, y.l) <= 0)) AS le_matches_cmp,
       bool_and((x.l = y.l) = (x.id = y.id)) AS eq_is_identity,
       bool_and((x.l <> y.l) = NOT (x.l = y.l)) AS ne_negates_eq,
       bool_and((x.l >= y.l) = (y.l <= x.l)) AS ge_commutes,
       bool_and((x.l > y.l) = (y.l < x.l)) AS gt_commutes,
       bool_and(locator_cmp(x.l, y.l) = -locator_cmp(y.l, x.l)) AS cmp_antisymmetric
  FROM loc_t x, loc_t y;

-- A btree index on locators, used for ORDER BY and lookups.
CREATE INDEX loc_t_l ON loc_t (l);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT l FROM loc_t ORDER BY l LIMIT 3;
SELECT l FROM loc_t ORDER BY l LIMIT 3;
EXPLAIN (COSTS OFF) SELECT id FROM loc_t WHERE l = locator_pack(0, 0);
SELECT locator_major(l), locator_minor(l) FROM loc_t WHERE l = locator_pack(0, 0);
SELECT count(*) FROM loc_t WHERE l BETWEEN locator_pack(-1, 0) AND locator_pack(1, 0);
RESET enable_seqscan;

-- Advancing.
SELECT locator_advance_major(locator_pack(1, 5)) AS next_major,
       locator_advance_major(locator_pack(1, 5), 10) AS plus_ten,
       locator_next_minor(locator_pack(1, 5)) AS next_minor,
       locator_next_minor(locator_pack(1, 5), -6) AS minus_six;

-- Bad input: clear errors, never wraparound.
SELECT locator_advance_major(locator_pack(9223372036854775807, 0));
SELECT locator_next_minor(locator_pack(0, -9223372036854775808), -1);
SELECT '\x0102'::bytea::clustered_locator;
SELECT '\x000000000000000100000000000000020f'::bytea::clustered_locator;
SELECT 'nonsense'::clustered_locator;
SELECT '(1,2,3)'::clustered_locator;
SELECT '(1,99999999999999999999)'::clustered_locator;
SELECT locator_pack(NULL, 1);
SELECT locator_pack_int8(NULL);
SELECT locator_next_minor(locator_pack(0, 0), NULL);
SELECT locator_advance_major(NULL);
-- Accessors and comparisons are strict: NULL in, NULL out.
SELECT locator_major(NULL) IS NULL AS major_null, locator_to_hex(NULL) IS NULL AS hex_null,
       (locator_pack(1, 1) < NULL) IS NULL AS lt_null;
-- The session still works after all of the above.
SELECT locator_pack(3, 4) = '(3,4)'::clustered_locator AS still_fine;

DROP TABLE loc_t;
DROP EXTENSION clustered_pg;
