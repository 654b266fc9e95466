#!/usr/bin/env bash
# Start or stop a private PostgreSQL cluster from Debian's packages on 127.0.0.1, for dev and tests.
# Usage: postgres.sh start DIR PORT  |  postgres.sh stop DIR  |  postgres.sh roles DIR PORT [DB]
# The cluster runs as the `postgres` system user; data, socket and log all live under DIR, and a
# database named `materials` is created on first start. Trust authentication: never expose it.
# `roles` applies deploy/postgres-roles.sql to the running cluster (the production roles
# materials_owner and materials_app, and database DB, default `materials`, owned by the first),
# with the passwords from MATERIALS_OWNER_PASSWORD and MATERIALS_APP_PASSWORD.
set -euo pipefail
START_TIMEOUT="${POSTGRES_START_TIMEOUT:-30}"
PG_USER="${POSTGRES_SYSTEM_USER:-postgres}"
ROLES_SQL="$(cd "$(dirname "$0")" && pwd)/postgres-roles.sql"

usage() {
    echo "usage: $0 start DIR PORT | $0 stop DIR | $0 roles DIR PORT [DB]" >&2
    exit 2
}

# The newest Debian server binaries (initdb and pg_ctl are not on PATH there).
pg_bin() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
        echo "postgres: no server found under /usr/lib/postgresql/*/bin;" \
            "install it with: apt-get install postgresql" >&2
        exit 1
    fi
    echo "$bin"
}

as_pg() {
    if [ "$(id -un)" = "$PG_USER" ]; then
        "$@"
    else
        runuser -u "$PG_USER" -- "$@"
    fi
}

log_tail() {
    tail -n 30 "$1/postgres.log" >&2 2>/dev/null || true
}

start() {
    local dir="$1" port="$2" bin
    bin="$(pg_bin)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    mkdir -p "$dir/data"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PG_USER" "$dir" "$dir/data"
    fi
    chmod 700 "$dir/data"
    # initdb and postgres refuse to start from a working directory their user cannot read.
    cd "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        if ! as_pg "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth=trust >"$dir/initdb.log" 2>&1; then
            echo "postgres: initdb failed; log tail:" >&2
            tail -n 30 "$dir/initdb.log" >&2 || true
            exit 1
        fi
    fi
    # pg_ctl -w waits for readiness itself; -t bounds that wait.
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t "$START_TIMEOUT" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null; then
        echo "postgres: server on 127.0.0.1:$port failed to start or was not ready within" \
            "${START_TIMEOUT}s; log tail:" >&2
        log_tail "$dir"
        as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        exit 1
    fi
    if ! as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -tAq \
        -c "SELECT 1 FROM pg_database WHERE datname = 'materials'" | grep -q 1; then
        as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -q \
            -v ON_ERROR_STOP=1 -c "CREATE DATABASE materials" >/dev/null
    fi
}

stop() {
    local dir="$1" bin
    [ -f "$dir/data/postmaster.pid" ] || return 0
    bin="$(pg_bin)"
    cd "$dir"
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
}

roles() {
    local dir="$1" port="$2" db="$3" bin
    : "${MATERIALS_OWNER_PASSWORD:?set MATERIALS_OWNER_PASSWORD (the password of materials_owner)}"
    : "${MATERIALS_APP_PASSWORD:?set MATERIALS_APP_PASSWORD (the password of materials_app)}"
    bin="$(pg_bin)"
    dir="$(cd "$dir" && pwd)"
    cd "$dir"
    # The script comes on stdin: the postgres system user need not be able to read this checkout.
    as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 \
        -v db="$db" -v owner_password="$MATERIALS_OWNER_PASSWORD" \
        -v app_password="$MATERIALS_APP_PASSWORD" <"$ROLES_SQL"
}

case "${1:-}" in
    start) [ "$#" -eq 3 ] || usage; start "$2" "$3" ;;
    stop) [ "$#" -ge 2 ] || usage; stop "$2" ;;
    roles) [ "$#" -eq 3 ] || [ "$#" -eq 4 ] || usage; roles "$2" "$3" "${4:-materials}" ;;
    *) usage ;;
esac
