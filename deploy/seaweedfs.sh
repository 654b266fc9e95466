#!/usr/bin/env bash
# Start or stop a single-node SeaweedFS S3 endpoint (`weed mini`) on 127.0.0.1, for dev and tests.
# Usage: seaweedfs.sh start DIR PORT ACCESS SECRET  |  seaweedfs.sh stop DIR
# Data, logs, sockets, the generated credentials file and the pid file all live under DIR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_server.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MATERIALS_VENV:-$ROOT/.venv}"
WEED="${WEED:-$VENV/bin/weed}"
START_TIMEOUT="${SEAWEEDFS_START_TIMEOUT:-30}"

usage() {
    echo "usage: $0 start DIR PORT ACCESS SECRET | $0 stop DIR" >&2
    exit 2
}

# Print N distinct free TCP ports on 127.0.0.1: weed mini opens about ten listeners, and two
# instances (or another project's) must not collide on the defaults.
free_ports() {
    "$VENV/bin/python" - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

port_answers() {
    "$VENV/bin/python" -c '
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()
except OSError:
    sys.exit(1)
' "$1"
}

start() {
    local dir="$1" port="$2" access="$3" secret="$4"
    if [ ! -x "$WEED" ]; then
        echo "seaweedfs: $WEED not found; install it with: $VENV/bin/pip install -e '.[test]'" >&2
        exit 1
    fi
    # Otherwise the readiness check below would be answered by whoever holds the port.
    if port_answers "$port"; then
        echo "seaweedfs: port $port on 127.0.0.1 is already in use" >&2
        exit 1
    fi
    mkdir -p "$dir/data" "$dir/logs"
    dir="$(cd "$dir" && pwd)"
    # Without -s3.config auth is off and any key is accepted, so credentials are always written.
    ACCESS="$access" SECRET="$secret" "$VENV/bin/python" -c '
import json, os, sys
identity = {
    "name": "materials",
    "credentials": [{"accessKey": os.environ["ACCESS"], "secretKey": os.environ["SECRET"]}],
    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
}
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"identities": [identity]}, out)
' "$dir/s3.json"
    chmod 600 "$dir/s3.json"
    local ports
    read -r -a ports <<<"$(free_ports 10)"
    # mini remembers some flags in DATA/mini.options but not all: always pass every flag.
    # Every bucket (a test's) is a collection with volumes of its own, and the number of volumes
    # is free disk space / volume size: small volumes, so that a test run's buckets all fit.
    "$WEED" -logdir="$dir/logs" mini -dir="$dir/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3.port="$port" -s3.port.grpc="${ports[0]}" -s3.config="$dir/s3.json" \
        -master.port="${ports[1]}" -master.port.grpc="${ports[2]}" \
        -volume.port="${ports[3]}" -volume.port.grpc="${ports[4]}" \
        -filer.port="${ports[5]}" -filer.port.grpc="${ports[6]}" \
        -admin.port="${ports[7]}" -admin.port.grpc="${ports[8]}" -debug.port="${ports[9]}" \
        -master.telemetry=false -webdav=false -admin.ui=false \
        -master.volumeSizeLimitMB=64 -volume.max=0 \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.localSocket="$dir/s3.sock" -filer.localSocket="$dir/filer.sock" \
        >"$dir/logs/weed.out" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/weed.pid"
    if ! wait_ready seaweedfs "$pid" "$dir/logs/weed.out" "$START_TIMEOUT" port_answers "$port"
    then
        kill "$pid" 2>/dev/null || true
        rm -f "$dir/weed.pid"
        exit 1
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "seaweedfs: weed exited right after starting; log tail:" >&2
        tail -n 30 "$dir/logs/weed.out" >&2 || true
        rm -f "$dir/weed.pid"
        exit 1
    fi
}

stop() {
    stop_pidfile "$1/weed.pid"
}

case "${1:-}" in
    start) [ "$#" -eq 5 ] || usage; start "$2" "$3" "$4" "$5" ;;
    stop) [ "$#" -ge 2 ] || usage; stop "$2" ;;
    *) usage ;;
esac
