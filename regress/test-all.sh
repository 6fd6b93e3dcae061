#!/usr/bin/env bash
# regress/test-all.sh -- the full test matrix; this is what `make test` runs.
#
# For each PostgreSQL major in ${PG_MAJORS:-15 18}:
#   pg_config via regress/deps.sh, then the steps of the STEPS table below,
#   stopping at the first failure of that major but going on with the next.
# Steps that need a server share one throwaway cluster per "cluster group"
# (regress/with-cluster.sh); a different group gets its own cluster, e.g. one
# started with wal_consistency_checking.
#
# Each step prints `== [pgNN] <step> ... ok|FAILED (Ns)`; its output goes to
# log/test-all/pgNN-<step>.log (the tail is printed on failure; VERBOSE=1
# streams it).  The end prints one line per major, then `N passed, N failed`
# (counted in steps), and the exit status is non-zero if anything failed.
#
# To add a layer: add a row to STEPS and a case to step_cmd (optionally to
# step_on_failure; for a new server configuration, a case in cluster_setup).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd -P)

# ---------------------------------------------------------------------------
# The step table: "name  kind  cluster-group"
#   kind: build (not listed in the PASS summary) or test
#   cluster-group: "-" runs on the host; any other word runs inside a
#   throwaway cluster; consecutive steps of one group share the cluster.
STEPS=(
    "clean-objs         build  -"
    "build              build  -"
    "install            build  -"
    "cargo-test         test   -"
    "lint               test   -"
    "installcheck       test   main"
    "concurrency-smoke  test   main"
    "dump-restore       test   main"
    "walcheck-installcheck test walcheck"
    "crash-recovery     test   walcheck"
    "crash-directory    test   walcheck"
    "auto-repack        test   autorepack"
)
# Environment of the cluster of each group (runs in a subshell just before
# regress/with-cluster.sh; see that script for the PGCLUSTER_* knobs).
cluster_setup() {
    case "$1" in
        main) ;;
        # Every GenericXLog record carries a page image that replay compares;
        # crash-recovery then crashes the server so the replay happens.
        walcheck) export PGCLUSTER_CONF=$'wal_consistency_checking = generic\ncheckpoint_timeout = 1h\nmax_wal_size = 8GB' ;;
        # The auto-repack worker needs the library preloaded.
        autorepack) export PGCLUSTER_PRELOAD=clustered_pg
                    export PGCLUSTER_CONF=$'clustered_pg.auto_repack_database = postgres\nclustered_pg.auto_repack_naptime = 1' ;;
        *) ;;
    esac
}

# The command of each step.  Runs in the repo root with PG_CONFIG set (and,
# for cluster steps, PGHOST/PGPORT/PGUSER/PGDATABASE).  `set -e` is NOT in
# effect here: a multi-command case must return non-zero on failure itself.
step_cmd() {
    case "$1" in
        clean-objs)        make clean-objs PG_CONFIG="$PG_CONFIG" ;;
        build)             make PG_CONFIG="$PG_CONFIG" ;;
        install)           make install PG_CONFIG="$PG_CONFIG" ;;
        cargo-test)        make cargo-test PG_CONFIG="$PG_CONFIG" ;;
        lint)              make lint PG_CONFIG="$PG_CONFIG" ;;
        installcheck)      rm -f regression.diffs
                           make installcheck PG_CONFIG="$PG_CONFIG" ;;
        concurrency-smoke) regress/concurrency-smoke.sh ;;
        dump-restore)      regress/dump-restore.sh ;;
        walcheck-installcheck) rm -f regression.diffs
                           make installcheck PG_CONFIG="$PG_CONFIG" ;;
        crash-recovery)    regress/crash-recovery.sh ;;
        crash-directory)   regress/crash-directory.sh ;;
        auto-repack)       regress/auto-repack.sh ;;
        *) echo "test-all.sh: unknown step '$1'" >&2; return 1 ;;
    esac
}
# Extra diagnostics printed (to stderr) after a step failed, below the tail
# of its log.
step_on_failure() {
    case "$1" in
        installcheck|walcheck-installcheck)
            if [ -f regression.diffs ]; then
                echo "---- regression.diffs (at most 200 lines) ----"
                head -n 200 regression.diffs
                echo "---- end of regression.diffs ----"
            fi ;;
    esac
}
# ---------------------------------------------------------------------------

LOGDIR="$REPO/log/test-all"
mkdir -p "$LOGDIR"

say() { echo "$*" >&2; }

# Run one step, log its output, print its status line, record the result in
# $TEST_ALL_RESULTS ("major step ok|FAILED secs").  Returns the step status.
run_step() {
    local major=$1 name=$2 logf="$LOGDIR/pg$1-$2.log" start rc
    start=$SECONDS
    say "== [pg$major] $name ..."
    set +e
    if [ "${VERBOSE:-0}" = 1 ]; then
        ( step_cmd "$name" ) 2>&1 | tee "$logf" >&2
        rc=${PIPESTATUS[0]}
    else
        ( step_cmd "$name" ) >"$logf" 2>&1
        rc=$?
    fi
    set -e
    local secs=$((SECONDS - start))
    if [ "$rc" -eq 0 ]; then
        say "== [pg$major] $name ... ok (${secs}s)"
        echo "$major $name ok $secs" >>"$TEST_ALL_RESULTS"
    else
        if [ "${VERBOSE:-0}" != 1 ]; then
            say "---- last 100 lines of $logf ----"
            tail -n 100 "$logf" >&2 || true
            say "---- end of $logf ----"
        fi
        step_on_failure "$name" >&2 || true
        say "== [pg$major] $name ... FAILED (${secs}s)"
        echo "$major $name FAILED $secs" >>"$TEST_ALL_RESULTS"
    fi
    return "$rc"
}

# Inner mode: run the given steps inside a cluster (called via with-cluster.sh).
if [ "${1:-}" = "--in-cluster" ]; then
    shift
    major=$1
    shift
    for s in "$@"; do
        run_step "$major" "$s" || exit 1
    done
    exit 0
fi

[ $# -eq 0 ] || { say "usage: $0   (env: PG_MAJORS='15 18', VERBOSE=1)"; exit 2; }

RESULTS_DIR=$(mktemp -d)
trap 'rm -rf "$RESULTS_DIR"' EXIT
export TEST_ALL_RESULTS="$RESULTS_DIR/results"
: >"$TEST_ALL_RESULTS"

declare -A FAILED_AT=()
T0=$SECONDS

for major in ${PG_MAJORS:-15 18}; do
    say ""
    say "======== PostgreSQL $major ========"
    start=$SECONDS
    if ! PG_CONFIG=$(regress/deps.sh --pg-config "$major"); then
        say "== [pg$major] deps ... FAILED ($((SECONDS - start))s)"
        echo "$major deps FAILED $((SECONDS - start))" >>"$TEST_ALL_RESULTS"
        FAILED_AT[$major]=deps
        continue
    fi
    export PG_CONFIG
    say "== [pg$major] using $PG_CONFIG ($("$PG_CONFIG" --version))"

    # Walk the table; gather consecutive steps of one cluster group.
    i=0
    n=${#STEPS[@]}
    while [ $i -lt $n ]; do
        read -r name kind group <<<"${STEPS[$i]}"
        if [ "$group" = "-" ]; then
            if ! run_step "$major" "$name"; then
                FAILED_AT[$major]=$name
                break
            fi
            i=$((i + 1))
            continue
        fi
        batch=()
        while [ $i -lt $n ]; do
            read -r name2 kind2 group2 <<<"${STEPS[$i]}"
            [ "$group2" = "$group" ] || break
            batch+=("$name2")
            i=$((i + 1))
        done
        before=$(wc -l <"$TEST_ALL_RESULTS")
        say "== [pg$major] starting a cluster (group '$group') for: ${batch[*]}"
        set +e
        ( cluster_setup "$group"
          exec regress/with-cluster.sh "$PG_CONFIG" \
              "$REPO/regress/test-all.sh" --in-cluster "$major" "${batch[@]}" )
        rc=$?
        set -e
        if [ "$rc" -ne 0 ]; then
            # Which step failed?  The last one recorded by the inner run, or
            # the cluster itself if no step was recorded as failed.
            last=$(tail -n +"$((before + 1))" "$TEST_ALL_RESULTS" | awk '$3=="FAILED"{print $2}' | tail -n 1)
            if [ -z "$last" ]; then
                last="cluster-$group"
                say "== [pg$major] $last ... FAILED (the cluster did not start or stop cleanly)"
                echo "$major $last FAILED 0" >>"$TEST_ALL_RESULTS"
            fi
            FAILED_AT[$major]=$last
            break
        fi
    done
done

# ---- summary ----------------------------------------------------------------
say ""
say "======== summary ($((SECONDS - T0))s) ========"
for major in ${PG_MAJORS:-15 18}; do
    secs=$(awk -v m="$major" '$1==m{s+=$4} END{print s+0}' "$TEST_ALL_RESULTS")
    say "(PostgreSQL $major: ${secs}s in steps)"
    if [ -n "${FAILED_AT[$major]:-}" ]; then
        echo "PostgreSQL $major: FAIL at ${FAILED_AT[$major]}"
        # CI keeps only the end of this output: repeat why here, so the
        # cause survives when the log tail above has scrolled away. First
        # the lines that name a failed check, then the distinct errors
        # (server log lines included, without their timestamps).
        flog="$LOGDIR/pg$major-${FAILED_AT[$major]}.log"
        if [ -f "$flog" ]; then
            { grep -E 'FAIL|not ok|panicked' "$flog" | tail -n 8
              grep -E 'ERROR|PANIC|FATAL|error:' "$flog" \
                  | sed -E 's/^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] //' \
                  | sort | uniq -c | sort -rn | head -n 6
            } | cut -c1-240 | sed "s/^/    why (pg$major ${FAILED_AT[$major]}): /" || true
        fi
    else
        tests=()
        for row in "${STEPS[@]}"; do
            read -r name kind group <<<"$row"
            [ "$kind" = test ] && tests+=("$name")
        done
        joined=$(printf '%s, ' "${tests[@]}")
        echo "PostgreSQL $major: PASS (${joined%, })"
    fi
done
passed=$(awk '$3=="ok"' "$TEST_ALL_RESULTS" | wc -l)
failed=$(awk '$3=="FAILED"' "$TEST_ALL_RESULTS" | wc -l)
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
