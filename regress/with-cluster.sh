#!/usr/bin/env bash
# regress/with-cluster.sh -- run a command against a throwaway PostgreSQL cluster.
#
# Usage: regress/with-cluster.sh PG_CONFIG CMD [ARGS...]
#
# Creates a fresh cluster of the PostgreSQL that PG_CONFIG belongs to (in a
# mktemp -d directory, owned by the postgres OS user when run as root), starts
# it listening on a unix socket only, runs CMD with
#   PGHOST=<socket dir> PGPORT=<port> PGUSER=postgres PGDATABASE=postgres
#   PG_CONFIG=<absolute pg_config>
# exported, then ALWAYS stops the server and removes the directory (also on
# failure or Ctrl-C), and exits with CMD's exit status.  Nested invocations
# are safe: each one gets its own directory and port.
#
# Environment knobs:
#   PGCLUSTER_CONF      extra postgresql.conf lines (newline separated),
#                       e.g. 'wal_consistency_checking = generic'
#   PGCLUSTER_PRELOAD   value for shared_preload_libraries
#   PGCLUSTER_FSYNC=on  keep fsync on (default: fsync = off)
#   PGCLUSTER_KEEP_LOG  path; the server log is copied there at the end
# The server log is printed (last 50 lines) to stderr when CMD fails or the
# server does not start.  CMD runs in the caller's working directory.
set -euo pipefail

ORIG_PWD=$(pwd)

log() { echo "with-cluster: $*" >&2; }
die() { echo "with-cluster: ERROR: $*" >&2; exit 2; }

[ $# -ge 2 ] || die "usage: $0 PG_CONFIG CMD [ARGS...]"
PG_CONFIG_ARG=$1
shift

# Absolute pg_config (a bare name is looked up in PATH).
if [[ "$PG_CONFIG_ARG" != */* ]]; then
    PG_CONFIG_ARG=$(command -v "$PG_CONFIG_ARG") || die "pg_config '$1' not found in PATH"
fi
PG_CONFIG=$(cd "$(dirname "$PG_CONFIG_ARG")" && pwd -P)/$(basename "$PG_CONFIG_ARG")
[ -x "$PG_CONFIG" ] || die "not executable: $PG_CONFIG"
BINDIR=$("$PG_CONFIG" --bindir)
PGVER=$("$PG_CONFIG" --version)
for b in initdb pg_ctl postgres; do
    [ -x "$BINDIR/$b" ] || die "$BINDIR/$b not found (is the server package installed?)"
done

# Run server-side commands as the postgres OS user when we are root
# (initdb refuses to run as root).
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user"
    AS_PG=(runuser -u postgres --)
else
    AS_PG=()
fi
# Server environment: no RUST_BACKTRACE (each caught panic would log a
# backtrace), and no PG* variables leaking from an outer cluster.
SERVER_ENV=(env -u RUST_BACKTRACE -u PGDATA -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGOPTIONS)
as_pg() { (cd "$TMPD" && "${AS_PG[@]}" "${SERVER_ENV[@]}" "$@"); }

TMPD=""
PORT=""
PORT_LOCK=""
SERVER_STARTED=0
CMD_RC=""

print_log_tail() {
    if [ -n "$TMPD" ] && [ -f "$TMPD/server.log" ]; then
        echo "---- last 50 lines of the server log ($PGVER, $TMPD/server.log) ----" >&2
        tail -n 50 "$TMPD/server.log" >&2 || true
        echo "---- end of server log ----" >&2
    fi
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [ -n "$CMD_RC" ] && rc=$CMD_RC
    if [ "$SERVER_STARTED" = 1 ]; then
        if ! as_pg "$BINDIR/pg_ctl" -D "$TMPD/data" -m fast -w -t 60 stop >/dev/null 2>&1; then
            if as_pg "$BINDIR/pg_ctl" -D "$TMPD/data" status >/dev/null 2>&1; then
                log "fast shutdown failed; using immediate shutdown"
                as_pg "$BINDIR/pg_ctl" -D "$TMPD/data" -m immediate -w -t 30 stop >/dev/null 2>&1
            fi
        fi
    fi
    if [ "$rc" -ne 0 ]; then
        print_log_tail
    fi
    if [ -n "${PGCLUSTER_KEEP_LOG:-}" ] && [ -n "$TMPD" ] && [ -f "$TMPD/server.log" ]; then
        cp "$TMPD/server.log" "$PGCLUSTER_KEEP_LOG" && log "server log kept in $PGCLUSTER_KEEP_LOG"
    fi
    [ -n "$TMPD" ] && rm -rf "$TMPD"
    [ -n "$PORT_LOCK" ] && rm -f "$PORT_LOCK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- pick a free port --------------------------------------------------------
# A port is free when no unix socket .s.PGSQL.<port> is listening anywhere,
# no TCP listener uses it, and no other with-cluster.sh holds its lock file.
port_in_use() {
    local p=$1
    if command -v ss >/dev/null 2>&1; then
        ss -Hlx 2>/dev/null | grep -q "\.s\.PGSQL\.$p\b" && return 0
        ss -Hltn 2>/dev/null | awk '{print $4}' | grep -q ":$p\$" && return 0
    fi
    [ -e "/tmp/.s.PGSQL.$p" ] || [ -e "/var/run/postgresql/.s.PGSQL.$p" ] && return 0
    return 1
}
pick_port() {
    local p lock pid
    for p in $(seq 54320 54999); do
        lock="/tmp/with-cluster-port-$p.lock"
        if [ -e "$lock" ]; then
            pid=$(cat "$lock" 2>/dev/null || true)
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then continue; fi
            rm -f "$lock"   # stale lock of a dead invocation
        fi
        port_in_use "$p" && continue
        # Atomic reservation (noclobber): another invocation may race us.
        if (set -o noclobber; echo $$ >"$lock") 2>/dev/null; then
            PORT=$p
            PORT_LOCK=$lock
            return 0
        fi
    done
    die "no free port in 54320..54999"
}
pick_port

# --- create the cluster ------------------------------------------------------
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/pgcluster.XXXXXX")
chmod 755 "$TMPD"
[ ${#AS_PG[@]} -gt 0 ] && chown postgres: "$TMPD"

log "initdb $PGVER in $TMPD (port $PORT)"
INITDB_ARGS=(-D "$TMPD/data" -U postgres -A trust -E UTF8 --no-locale)
[ "${PGCLUSTER_FSYNC:-off}" = on ] || INITDB_ARGS+=(--no-sync)
if ! as_pg "$BINDIR/initdb" "${INITDB_ARGS[@]}" >"$TMPD/initdb.log" 2>&1; then
    cat "$TMPD/initdb.log" >&2
    die "initdb failed"
fi

{
    echo ""
    echo "# ---- added by regress/with-cluster.sh ----"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$TMPD'"
    echo "port = $PORT"
    if [ "${PGCLUSTER_FSYNC:-off}" = on ]; then
        echo "fsync = on"
    else
        echo "fsync = off"
    fi
    echo "lc_messages = 'C'"
    if [ -n "${PGCLUSTER_PRELOAD:-}" ]; then
        echo "shared_preload_libraries = '$PGCLUSTER_PRELOAD'"
    fi
    if [ -n "${PGCLUSTER_CONF:-}" ]; then
        printf '%s\n' "$PGCLUSTER_CONF"
    fi
} >>"$TMPD/data/postgresql.conf"

# --- start -------------------------------------------------------------------
touch "$TMPD/server.log"
[ ${#AS_PG[@]} -gt 0 ] && chown postgres: "$TMPD/server.log"
SERVER_STARTED=1
if ! as_pg "$BINDIR/pg_ctl" -D "$TMPD/data" -l "$TMPD/server.log" -w -t 60 start >/dev/null 2>&1; then
    log "server did not start ($PGVER)"
    CMD_RC=2
    exit 2
fi
log "server $PGVER running (PGHOST=$TMPD PGPORT=$PORT)"

# --- run the command ---------------------------------------------------------
export PGHOST="$TMPD" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres PG_CONFIG
# Client programs (psql, pgbench, pg_regress helpers) of the same version first.
export PATH="$BINDIR:$PATH"
cd "$ORIG_PWD"
# CMD runs in the background (stdin kept) so that a TERM/INT sent to this
# script is handled at once: it is forwarded to CMD, then the cluster is
# stopped by the EXIT trap.
CHILD=""
trap '[ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null; exit 143' TERM
trap '[ -n "$CHILD" ] && kill -INT "$CHILD" 2>/dev/null; exit 130' INT
set +e
"$@" <&0 &
CHILD=$!
wait "$CHILD"
CMD_RC=$?
CHILD=""
set -e
if [ "$CMD_RC" -ne 0 ]; then
    log "command failed with exit code $CMD_RC: $*"
fi
exit "$CMD_RC"
