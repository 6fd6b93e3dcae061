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
