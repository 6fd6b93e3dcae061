-- The error boundary between PostgreSQL and Rust, both directions. The hooks
-- live in the library but are not part of the extension's SQL surface, so
-- the test declares them itself.
CREATE FUNCTION pg_temp.selftest_int4in(cstring) RETURNS int
    AS '$libdir/clustered_pg', 'cpg_selftest_int4in' LANGUAGE C;
CREATE FUNCTION pg_temp.selftest_panic() RETURNS bigint
    AS '$libdir/clustered_pg', 'cpg_selftest_panic' LANGUAGE C;
CREATE FUNCTION pg_temp.selftest_raise() RETURNS bigint
    AS '$libdir/clustered_pg', 'cpg_selftest_raise' LANGUAGE C;
CREATE FUNCTION pg_temp.selftest_drops() RETURNS bigint
    AS '$libdir/clustered_pg', 'cpg_selftest_drops' LANGUAGE C;
CREATE FUNCTION pg_temp.selftest_echo(cstring) RETURNS cstring
    AS '$libdir/clustered_pg', 'cpg_selftest_echo' LANGUAGE C;
\set SHOW_CONTEXT never
-- Runs a statement and reports the error it raised: SQLSTATE, message,
-- detail and hint (line numbers masked, so the output is stable).
CREATE FUNCTION pg_temp.show_error(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text; hin text;
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
  RETURN format('%s | %s | %s | %s', st, msg, regexp_replace(det, ':[0-9]+', ':N'), hin);
END $$;
SELECT pg_backend_pid() AS pid_at_start \gset

-- Success path through the guard.
SELECT pg_temp.selftest_int4in('41') + 1 AS answer;
SELECT pg_temp.selftest_echo('round trip') AS echo;

-- (a) An ERROR raised inside PostgreSQL (int4in, called from Rust) reaches
-- the client with its own SQLSTATE (22P02) and message; destructors of the
-- Rust frames it passed ran; the session keeps working.
SELECT pg_temp.selftest_drops() AS drops_before \gset
SELECT pg_temp.selftest_int4in('not a number');
SELECT pg_temp.show_error($$SELECT pg_temp.selftest_int4in('not a number')$$);
SELECT pg_temp.show_error($$SELECT pg_temp.selftest_int4in('99999999999')$$);
SELECT pg_temp.selftest_drops() - :drops_before AS destructors_ran;
SELECT 1 AS session_alive;

-- The same error caught in PL/pgSQL keeps its SQLSTATE.
DO $$
BEGIN
  PERFORM pg_temp.selftest_int4in('x');
EXCEPTION WHEN invalid_text_representation THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END $$;

-- (b) A Rust panic becomes an ERROR (XX000) with a clear message; the
-- backend survives and the next statement works.
SELECT pg_temp.selftest_drops() AS drops_before \gset
SELECT pg_temp.show_error('SELECT pg_temp.selftest_panic()');
SELECT pg_temp.selftest_drops() - :drops_before AS destructors_ran;
SELECT 2 AS session_alive;
-- Repeatedly, inside one transaction with a savepoint each time.
BEGIN;
DO $$
DECLARE n int := 0;
BEGIN
  FOR i IN 1..200 LOOP
    BEGIN
      PERFORM pg_temp.selftest_panic();
    EXCEPTION WHEN internal_error THEN n := n + 1;
    END;
    BEGIN
      PERFORM pg_temp.selftest_int4in('bad');
    EXCEPTION WHEN invalid_text_representation THEN n := n + 1;
    END;
  END LOOP;
  RAISE NOTICE 'caught % errors', n;
END $$;
COMMIT;
SELECT pg_backend_pid() = :pid_at_start AS same_backend_throughout;

-- An error raised by Rust itself carries code, detail and hint.
SELECT pg_temp.selftest_raise();
SELECT pg_temp.show_error('SELECT pg_temp.selftest_raise()');
SELECT 3 AS session_alive;
