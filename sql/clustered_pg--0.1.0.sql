-- clustered_pg 0.1.0: extension objects. Every object is created in and
-- referenced through @extschema@, so nothing here depends on search_path.
\echo Use "CREATE EXTENSION clustered_pg" to load this file. \quit

-- Everyone may use the extension's functions; each one checks privileges
-- on the relations it touches.
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-- Identity and observability ------------------------------------------------

CREATE FUNCTION @extschema@.version() RETURNS text
    AS 'MODULE_PATHNAME', 'cpg_version' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.version() IS 'clustered_pg version of the loaded library';

CREATE FUNCTION @extschema@.observability() RETURNS text
    AS 'MODULE_PATHNAME', 'cpg_observability' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.observability() IS
    'versioned text: library version, API level, option defaults and this session''s counters';

CREATE FUNCTION @extschema@.clustered_pg_observability() RETURNS text
    AS 'MODULE_PATHNAME', 'cpg_observability' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.clustered_pg_observability() IS 'seed name of observability()';

CREATE FUNCTION @extschema@.verify(relation regclass)
    RETURNS TABLE (kind text, heap_block bigint, heap_offset integer, key bigint,
                   segment bigint, detail text)
    AS 'MODULE_PATHNAME', 'cpg_verify' LANGUAGE C;
COMMENT ON FUNCTION @extschema@.verify(regclass) IS
    'checks that every tuple is covered by the clustered map; returns the violations (none when sound)';

-- Online repack (src/sql/repack.rs): moves the rows of segments whose blocks
-- overlap, in key order, into blocks filled one after another. Owner only;
-- ShareUpdateExclusiveLock, so DML and queries go on. max_rows bounds the
-- work of one call (one transaction); call again to go on. One row.
CREATE FUNCTION @extschema@.repack(relation regclass, max_rows bigint DEFAULT NULL,
    OUT segments bigint, OUT rows_moved bigint, OUT rows_skipped bigint, OUT blocks bigint)
    RETURNS SETOF record ROWS 1
    AS 'MODULE_PATHNAME', 'cpg_repack' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.repack(regclass, bigint) IS
    'moves the rows of fragmented segments into key order, online (owner only), stopping after the segment in which max_rows rows have moved; VACUUM afterwards frees the old blocks';

-- The clustered_locator type ---------------------------------------------------
-- 16 bytes: major (bytes 0..7) and minor (bytes 8..15), big-endian int64.

CREATE TYPE @extschema@.clustered_locator;

CREATE FUNCTION @extschema@.clustered_locator_in(cstring) RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_locator_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.clustered_locator_out(@extschema@.clustered_locator) RETURNS cstring
    AS 'MODULE_PATHNAME', 'cpg_locator_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.clustered_locator (
    INPUT = @extschema@.clustered_locator_in,
    OUTPUT = @extschema@.clustered_locator_out,
    INTERNALLENGTH = 16,
    ALIGNMENT = char,
    STORAGE = plain
);
COMMENT ON TYPE @extschema@.clustered_locator IS
    'where a key lives: (major = segment, minor = key); 16 bytes, big-endian int64 pair';

CREATE FUNCTION @extschema@.clustered_locator(bytea) RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_locator_from_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.bytea(@extschema@.clustered_locator) RETURNS bytea
    AS 'MODULE_PATHNAME', 'cpg_locator_to_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (bytea AS @extschema@.clustered_locator)
    WITH FUNCTION @extschema@.clustered_locator(bytea);
CREATE CAST (@extschema@.clustered_locator AS bytea)
    WITH FUNCTION @extschema@.bytea(@extschema@.clustered_locator);

-- Constructors reject NULL arguments with a clear error (they are not STRICT);
-- accessors and comparisons are STRICT: NULL in, NULL out.
CREATE FUNCTION @extschema@.locator_pack(major bigint, minor bigint)
    RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_locator_pack' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_pack_int8(pk bigint)
    RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_locator_pack_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_major(locator @extschema@.clustered_locator) RETURNS bigint
    AS 'MODULE_PATHNAME', 'cpg_locator_major' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_minor(locator @extschema@.clustered_locator) RETURNS bigint
    AS 'MODULE_PATHNAME', 'cpg_locator_minor' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_to_hex(locator @extschema@.clustered_locator) RETURNS text
    AS 'MODULE_PATHNAME', 'cpg_locator_to_hex' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_advance_major(locator @extschema@.clustered_locator,
                                                  delta bigint DEFAULT 1)
    RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_locator_advance_major' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_next_minor(locator @extschema@.clustered_locator,
                                               delta bigint DEFAULT 1)
    RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_locator_next_minor' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.locator_cmp(@extschema@.clustered_locator, @extschema@.clustered_locator)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'cpg_locator_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_lt(@extschema@.clustered_locator, @extschema@.clustered_locator)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'cpg_locator_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_le(@extschema@.clustered_locator, @extschema@.clustered_locator)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'cpg_locator_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_eq(@extschema@.clustered_locator, @extschema@.clustered_locator)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'cpg_locator_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_ne(@extschema@.clustered_locator, @extschema@.clustered_locator)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'cpg_locator_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_ge(@extschema@.clustered_locator, @extschema@.clustered_locator)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'cpg_locator_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.locator_gt(@extschema@.clustered_locator, @extschema@.clustered_locator)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'cpg_locator_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.< (
    LEFTARG = @extschema@.clustered_locator, RIGHTARG = @extschema@.clustered_locator,
    FUNCTION = @extschema@.locator_lt,
    COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR @extschema@.<= (
    LEFTARG = @extschema@.clustered_locator, RIGHTARG = @extschema@.clustered_locator,
    FUNCTION = @extschema@.locator_le,
    COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR @extschema@.= (
    LEFTARG = @extschema@.clustered_locator, RIGHTARG = @extschema@.clustered_locator,
    FUNCTION = @extschema@.locator_eq,
    COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, MERGES);
CREATE OPERATOR @extschema@.<> (
    LEFTARG = @extschema@.clustered_locator, RIGHTARG = @extschema@.clustered_locator,
    FUNCTION = @extschema@.locator_ne,
    COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR @extschema@.>= (
    LEFTARG = @extschema@.clustered_locator, RIGHTARG = @extschema@.clustered_locator,
    FUNCTION = @extschema@.locator_ge,
    COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);
CREATE OPERATOR @extschema@.> (
    LEFTARG = @extschema@.clustered_locator, RIGHTARG = @extschema@.clustered_locator,
    FUNCTION = @extschema@.locator_gt,
    COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR CLASS @extschema@.clustered_locator_ops
    DEFAULT FOR TYPE @extschema@.clustered_locator USING btree AS
        OPERATOR 1 @extschema@.<,
        OPERATOR 2 @extschema@.<=,
        OPERATOR 3 @extschema@.=,
        OPERATOR 4 @extschema@.>=,
        OPERATOR 5 @extschema@.>,
        FUNCTION 1 @extschema@.locator_cmp(@extschema@.clustered_locator, @extschema@.clustered_locator);

-- clustered_heap: heap that places rows by their clustered key -------------

CREATE FUNCTION @extschema@.clustered_heap_handler(internal) RETURNS table_am_handler
    AS 'MODULE_PATHNAME', 'cpg_clustered_heap_handler' LANGUAGE C;
CREATE ACCESS METHOD clustered_heap TYPE TABLE HANDLER @extschema@.clustered_heap_handler;
COMMENT ON ACCESS METHOD clustered_heap IS
    'heap whose inserts and updates go next to their key neighbours (needs a clustered_pk_index)';

-- clustered_pk_index: the sparse key -> heap block map ------------------------

CREATE FUNCTION @extschema@.clustered_pk_index_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'cpg_clustered_pk_index_handler' LANGUAGE C;
CREATE ACCESS METHOD clustered_pk_index TYPE INDEX
    HANDLER @extschema@.clustered_pk_index_handler;
COMMENT ON ACCESS METHOD clustered_pk_index IS
    'sparse, exact key-to-heap-block map; one per table, keys smallint/integer/bigint';

-- One family for the integer types so cross-type comparisons (int4 column
-- against an int8 constant, ...) can use the index; strategies are btree's.
CREATE OPERATOR FAMILY @extschema@.clustered_pk_integer_ops USING clustered_pk_index;

CREATE OPERATOR CLASS @extschema@.clustered_pk_int2_ops
    DEFAULT FOR TYPE int2 USING clustered_pk_index FAMILY @extschema@.clustered_pk_integer_ops AS
        OPERATOR 1 pg_catalog.< (int2, int2), OPERATOR 2 pg_catalog.<= (int2, int2),
        OPERATOR 3 pg_catalog.= (int2, int2), OPERATOR 4 pg_catalog.>= (int2, int2),
        OPERATOR 5 pg_catalog.> (int2, int2);
CREATE OPERATOR CLASS @extschema@.clustered_pk_int4_ops
    DEFAULT FOR TYPE int4 USING clustered_pk_index FAMILY @extschema@.clustered_pk_integer_ops AS
        OPERATOR 1 pg_catalog.< (int4, int4), OPERATOR 2 pg_catalog.<= (int4, int4),
        OPERATOR 3 pg_catalog.= (int4, int4), OPERATOR 4 pg_catalog.>= (int4, int4),
        OPERATOR 5 pg_catalog.> (int4, int4);
CREATE OPERATOR CLASS @extschema@.clustered_pk_int8_ops
    DEFAULT FOR TYPE int8 USING clustered_pk_index FAMILY @extschema@.clustered_pk_integer_ops AS
        OPERATOR 1 pg_catalog.< (int8, int8), OPERATOR 2 pg_catalog.<= (int8, int8),
        OPERATOR 3 pg_catalog.= (int8, int8), OPERATOR 4 pg_catalog.>= (int8, int8),
        OPERATOR 5 pg_catalog.> (int8, int8);

ALTER OPERATOR FAMILY @extschema@.clustered_pk_integer_ops USING clustered_pk_index ADD
    OPERATOR 1 pg_catalog.< (int2, int4), OPERATOR 2 pg_catalog.<= (int2, int4),
    OPERATOR 3 pg_catalog.= (int2, int4), OPERATOR 4 pg_catalog.>= (int2, int4),
    OPERATOR 5 pg_catalog.> (int2, int4),
    OPERATOR 1 pg_catalog.< (int2, int8), OPERATOR 2 pg_catalog.<= (int2, int8),
    OPERATOR 3 pg_catalog.= (int2, int8), OPERATOR 4 pg_catalog.>= (int2, int8),
    OPERATOR 5 pg_catalog.> (int2, int8),
    OPERATOR 1 pg_catalog.< (int4, int2), OPERATOR 2 pg_catalog.<= (int4, int2),
    OPERATOR 3 pg_catalog.= (int4, int2), OPERATOR 4 pg_catalog.>= (int4, int2),
    OPERATOR 5 pg_catalog.> (int4, int2),
    OPERATOR 1 pg_catalog.< (int4, int8), OPERATOR 2 pg_catalog.<= (int4, int8),
    OPERATOR 3 pg_catalog.= (int4, int8), OPERATOR 4 pg_catalog.>= (int4, int8),
    OPERATOR 5 pg_catalog.> (int4, int8),
    OPERATOR 1 pg_catalog.< (int8, int2), OPERATOR 2 pg_catalog.<= (int8, int2),
    OPERATOR 3 pg_catalog.= (int8, int2), OPERATOR 4 pg_catalog.>= (int8, int2),
    OPERATOR 5 pg_catalog.> (int8, int2),
    OPERATOR 1 pg_catalog.< (int8, int4), OPERATOR 2 pg_catalog.<= (int8, int4),
    OPERATOR 3 pg_catalog.= (int8, int4), OPERATOR 4 pg_catalog.>= (int8, int4),
    OPERATOR 5 pg_catalog.> (int8, int4);

-- Segment map (seed API) -------------------------------------------------------
-- Served from the clustered_pk_index's own pages (src/sql/segment_map.rs):
-- nothing is stored in SQL tables. Readers need SELECT on the table; the
-- maintenance calls (touch, tids_gc, rebuild) need to own it.

CREATE FUNCTION @extschema@.segment_map_of(relation regclass,
    OUT relation_oid oid, OUT major_key bigint, OUT minor_from bigint, OUT minor_to bigint,
    OUT split_threshold integer, OUT target_fillfactor integer, OUT auto_repack_interval integer,
    OUT row_count bigint, OUT split_generation integer,
    OUT last_split_at timestamptz, OUT updated_at timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cpg_segment_map_of' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.segment_map_of(regclass) IS
    'segments of the clustered_pk_index of a table (or of the index itself): id, inclusive key range, options, row count, split history';

CREATE FUNCTION @extschema@.segment_map_tids_of(relation regclass,
    OUT relation_oid oid, OUT major_key bigint, OUT minor_key bigint, OUT tuple_tid tid,
    OUT updated_at timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'cpg_segment_map_tids_of' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.segment_map_tids_of(regclass) IS
    'key -> tuple listing computed through the map (segment, key, tid of every tuple a transaction may still see); never stored';

-- Every clustered_pk_index of the database whose table the user may read.
CREATE VIEW @extschema@.segment_map AS
    SELECT s.*
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_am am ON am.oid = c.relam AND am.amname = 'clustered_pk_index'
     CROSS JOIN LATERAL @extschema@.segment_map_of(c.oid::regclass) s
     WHERE i.indisvalid AND i.indisready
       AND NOT pg_catalog.pg_is_other_temp_schema(c.relnamespace)
       AND pg_catalog.has_table_privilege(i.indrelid, 'SELECT');
CREATE VIEW @extschema@.segment_map_tids AS
    SELECT s.*
      FROM pg_catalog.pg_index i
      JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_am am ON am.oid = c.relam AND am.amname = 'clustered_pk_index'
     CROSS JOIN LATERAL @extschema@.segment_map_tids_of(c.oid::regclass) s
     WHERE i.indisvalid AND i.indisready
       AND NOT pg_catalog.pg_is_other_temp_schema(c.relnamespace)
       AND pg_catalog.has_table_privilege(i.indrelid, 'SELECT');
GRANT SELECT ON @extschema@.segment_map, @extschema@.segment_map_tids TO PUBLIC;

CREATE FUNCTION @extschema@.segment_map_stats(relation regclass,
    OUT relation_oid oid, OUT segment_count bigint, OUT total_rows bigint,
    OUT min_rows_per_segment bigint, OUT avg_rows_per_segment double precision,
    OUT max_rows_per_segment bigint, OUT listings bigint, OUT fragmented_segments bigint,
    OUT index_pages bigint, OUT heap_blocks_listed bigint)
    RETURNS SETOF record ROWS 1
    AS 'MODULE_PATHNAME', 'cpg_segment_map_stats' LANGUAGE C VOLATILE;

-- Shape of the segment directory (docs/architecture.md "Storage"): depth
-- (0 = the metapage lists the segment pages, 1 = it lists directory pages),
-- metapage entries, directory pages, segment pages, how many segment pages
-- the directory can address with the current settings, overflow flag.
CREATE FUNCTION @extschema@.directory_stats(relation regclass,
    OUT directory_levels integer, OUT root_entries integer,
    OUT directory_pages bigint, OUT segment_pages bigint,
    OUT segment_pages_addressable bigint, OUT overflowed boolean)
    RETURNS SETOF record ROWS 1
    AS 'MODULE_PATHNAME', 'cpg_directory_stats' LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.segment_map_count_repack_due(relation regclass)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'cpg_segment_map_count_repack_due' LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.segment_map_touch(relation regclass, major_key bigint)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'cpg_segment_map_touch' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.segment_map_touch(regclass, bigint) IS
    'recount one segment''s rows from the heap blocks it lists and store the exact count (owner only)';

CREATE FUNCTION @extschema@.segment_map_tids_gc(relation regclass)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'cpg_segment_map_tids_gc' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.segment_map_tids_gc(regclass) IS
    'compatibility no-op: the native map stores no TIDs, so there is nothing to collect; returns 0';

-- Rebuild = REINDEX of the clustered_pk_index, inside a subtransaction.
-- p_fail_after_n_rows (a test hook, the seed's fault injection) makes the
-- build's heap scan fail when it is handed row n + 1: the subtransaction
-- rolls back, the previous map is left exactly as it was, and the call
-- returns success = false, rows_seen = n (src/sql/segment_map.rs). One row.
CREATE FUNCTION @extschema@.segment_map_rebuild_from_index(relation regclass,
    p_fail_after_n_rows bigint DEFAULT NULL,
    OUT success boolean, OUT rows_seen bigint, OUT segments bigint)
    RETURNS SETOF record ROWS 1
    AS 'MODULE_PATHNAME', 'cpg_segment_map_rebuild_from_index' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.segment_map_rebuild_from_index(regclass, bigint) IS
    'REINDEX the clustered_pk_index in a subtransaction (owner only); p_fail_after_n_rows injects a failure after n rows of the build scan and leaves the previous map unchanged';

-- Locators from the map: major = id of the segment owning the key, minor =
-- the key. Read-only: the table AM decides placement.
CREATE FUNCTION @extschema@.segment_map_allocate_locator(p_relation_oid oid, p_minor bigint)
    RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_segment_map_locator' LANGUAGE C VOLATILE;
CREATE FUNCTION @extschema@.segment_map_allocate_locator_regclass(p_relation regclass, p_minor bigint)
    RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_segment_map_locator' LANGUAGE C VOLATILE;
CREATE FUNCTION @extschema@.segment_map_next_locator(p_relation regclass, p_minor bigint)
    RETURNS @extschema@.clustered_locator
    AS 'MODULE_PATHNAME', 'cpg_segment_map_locator' LANGUAGE C VOLATILE;
