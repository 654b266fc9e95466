#!/usr/bin/env bash
# Start or stop ClamAV's daemon (Debian's clamav-daemon) on 127.0.0.1, for dev and tests.
# Usage: clamav.sh start DIR PORT [SIGNATURES_DIR]  |  clamav.sh stop DIR
# SIGNATURES_DIR defaults to deploy/clamav: a test database that knows only the EICAR test file
# (no network is needed). Production runs the system's clamd with signatures kept current by
# freshclam (or copied in from a mirror on networks without internet) and points
# MATERIALS_CLAMD_ADDRESS at it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_server.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MATERIALS_VENV:-$ROOT/.venv}"
CLAMD="${CLAMD:-/usr/sbin/clamd}"
START_TIMEOUT="${CLAMAV_START_TIMEOUT:-120}"

usage() {
    echo "usage: $0 start DIR PORT [SIGNATURES_DIR] | $0 stop DIR" >&2
    exit 2
}

answers_ping() {
    "$VENV/bin/python" -c '
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
        s.sendall(b"zPING\0")
        sys.exit(0 if s.recv(16).startswith(b"PONG") else 1)
except OSError:
    sys.exit(1)
' "$1"
}

start() {
    local dir="$1" port="$2" signatures="${3:-$ROOT/deploy/clamav}"
    if [ ! -x "$CLAMD" ]; then
        echo "clamav: $CLAMD not found; install Debian's clamav-daemon" >&2
        exit 1
    fi
    if answers_ping "$port"; then
        echo "clamav: port $port on 127.0.0.1 is already in use" >&2
        exit 1
    fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    signatures="$(cd "$signatures" && pwd)"
    # The limits are clamd's defaults, written out: a file beyond them is reported, not passed.
    cat >"$dir/clamd.conf" <<CONF
Foreground yes
TCPSocket $port
TCPAddr 127.0.0.1
DatabaseDirectory $signatures
TemporaryDirectory $dir
LogFile $dir/clamd.log
LogTime yes
StreamMaxLength ${CLAMAV_STREAM_MAX:-100M}
MaxFileSize ${CLAMAV_STREAM_MAX:-100M}
MaxScanSize 400M
SelfCheck 3600
CONF
    "$CLAMD" -c "$dir/clamd.conf" >"$dir/clamd.out" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/clamd.pid"
    if ! wait_ready clamav "$pid" "$dir/clamd.out" "$START_TIMEOUT" answers_ping "$port"; then
        kill "$pid" 2>/dev/null || true
        rm -f "$dir/clamd.pid"
        exit 1
    fi
}

stop() {
    stop_pidfile "$1/clamd.pid"
}

case "${1:-}" in
    start) [ "$#" -ge 3 ] || usage; start "$2" "$3" "${4:-}" ;;
    stop) [ "$#" -ge 2 ] || usage; stop "$2" ;;
    *) usage ;;
esac
