# regress/crash-common.sh -- sourced by the crash tests (crash-recovery.sh,
# crash-directory.sh): the server's paths under regress/with-cluster.sh,
# pg_ctl as the cluster's owner, and the restart after an immediate stop.
: "${PGHOST:?run under regress/with-cluster.sh}"
DATA="$PGHOST/data"
LOG="$PGHOST/server.log"
BINDIR=$("${PG_CONFIG:-pg_config}" --bindir)
if [ "$(id -u)" -eq 0 ]; then AS_PG=(runuser -u postgres --); else AS_PG=(); fi
pgctl() { "${AS_PG[@]}" env -u PGDATA -u RUST_BACKTRACE "$BINDIR/pg_ctl" -D "$DATA" "$@"; }
CRASH_TEST=$(basename "$0" .sh)
# Starts the server after a crash; fails if it does not come back or if
# replay met an inconsistent page (wal_consistency_checking). $1 names the
# crash in the messages.
restart_after_crash() {
    if ! pgctl -l "$LOG" -w -t 120 start >/dev/null; then
        echo "$CRASH_TEST: FAIL: server did not come back$1" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
    if grep -q "inconsistent page" "$LOG"; then
        echo "$CRASH_TEST: FAIL: WAL consistency check failed during replay$1" >&2
        grep -B2 -A5 "inconsistent page" "$LOG" | head -40 >&2
        exit 1
    fi
}
