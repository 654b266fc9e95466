#!/usr/bin/env bash
# Start or stop a single-drive MinIO S3 server on 127.0.0.1, for dev and tests.
# Usage: minio.sh start DIR PORT ACCESS SECRET  |  minio.sh stop DIR  |  minio.sh build
# MinIO no longer publishes community binaries: the server is built from source once with
# `go install` through the Go module proxy (about 3 minutes on 2 cores; 2.3 GB of module and build
# caches, removed afterwards) and the 150 MB binary is kept in a machine-wide cache. Data, logs,
# certificates and the pid file of one server live under DIR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_server.sh"
# The newest commit the module proxy serves (release tags are not Go versions, so not resolvable).
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
START_TIMEOUT="${MINIO_START_TIMEOUT:-30}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [ "$(id -u)" -eq 0 ]; then
    CACHE="${MATERIALS_CACHE_DIR:-/var/cache/materials}"
else
    CACHE="${MATERIALS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/materials}"
fi
BIN_DIR="$CACHE/minio-$MINIO_VERSION"
MINIO="$BIN_DIR/minio"

usage() {
    echo "usage: $0 start DIR PORT ACCESS SECRET | $0 stop DIR | $0 build" >&2
    exit 2
}

# Build the server unless the cache already holds it. Private module and build caches keep the
# user's Go caches untouched and are deleted afterwards, also when the build fails.
build() {
    [ -x "$MINIO" ] && return 0
    if [ ! -x "$GO" ]; then
        echo "minio: MinIO is built from source and needs Go 1.24 or newer (https://go.dev/dl);" \
            "no go found on PATH or at $GO" >&2
        exit 1
    fi
    mkdir -p "$CACHE"
    local work
    work="$(mktemp -d "$CACHE/.minio-build.XXXXXX")"
    # Expanded now: $work is local, and gone when the script exits.
    trap "rm -rf -- '$work'" EXIT
    echo "minio: building github.com/minio/minio@$MINIO_VERSION with $GO (once, a few minutes)" >&2
    if ! GOBIN="$work/bin" GOMODCACHE="$work/mod" GOCACHE="$work/cache" GOPATH="$work/gopath" \
        GOFLAGS="-modcacherw -buildvcs=false -trimpath" CGO_ENABLED=0 \
        "$GO" install "github.com/minio/minio@$MINIO_VERSION" >"$work/build.log" 2>&1; then
        echo "minio: go install github.com/minio/minio@$MINIO_VERSION failed; log tail:" >&2
        tail -n 30 "$work/build.log" >&2 || true
        exit 1
    fi
    chmod -R a+rX "$work/bin"
    # Another run may have built it meanwhile; the rename makes a complete binary appear at once.
    mv -T "$work/bin" "$BIN_DIR" 2>/dev/null || true
    rm -rf -- "$work"
    trap - EXIT
    [ -x "$MINIO" ]
}

port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

live() {
    curl -fs -m 2 -o /dev/null "http://127.0.0.1:$1/minio/health/live"
}

start() {
    local dir="$1" port="$2" access="$3" secret="$4"
    # MinIO refuses shorter root credentials, with a message easy to miss in its log.
    if [ "${#access}" -lt 3 ] || [ "${#secret}" -lt 8 ]; then
        echo "minio: ACCESS needs at least 3 characters and SECRET at least 8" >&2
        exit 1
    fi
    # Otherwise the readiness check below would be answered by whoever holds the port.
    if port_taken "$port"; then
        echo "minio: port $port on 127.0.0.1 is already in use" >&2
        exit 1
    fi
    build
    mkdir -p "$dir/data" "$dir/logs" "$dir/certs" "$dir/home"
    dir="$(cd "$dir" && pwd)"
    # Credentials through the environment (not on the command line, which ps shows); the web
    # console, update checks and the default ~/.minio stay off; HOME keeps MinIO out of the user's.
    HOME="$dir/home" MINIO_ROOT_USER="$access" MINIO_ROOT_PASSWORD="$secret" \
        MINIO_BROWSER=off MINIO_UPDATE=off \
        "$MINIO" server --address "127.0.0.1:$port" --certs-dir "$dir/certs" --quiet --anonymous \
        "$dir/data" >"$dir/logs/minio.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/minio.pid"
    if ! wait_ready minio "$pid" "$dir/logs/minio.log" "$START_TIMEOUT" live "$port"; then
        kill "$pid" 2>/dev/null || true
        rm -f "$dir/minio.pid"
        exit 1
    fi
}

stop() {
    stop_pidfile "$1/minio.pid"
}

case "${1:-}" in
    start) [ "$#" -eq 5 ] || usage; start "$2" "$3" "$4" "$5" ;;
    stop) [ "$#" -ge 2 ] || usage; stop "$2" ;;
    build) [ "$#" -eq 1 ] || usage; build ;;
    *) usage ;;
esac
