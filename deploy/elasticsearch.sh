#!/usr/bin/env bash
# Start or stop a single-node Elasticsearch on 127.0.0.1, for dev and tests.
# Usage: elasticsearch.sh start DIR PORT  |  elasticsearch.sh stop DIR  |  elasticsearch.sh fetch
# The integration-test distribution is downloaded once from Maven Central into a cache and
# unpacked there; config, data, logs, temp files and the pid file of one node live under DIR.
# Elasticsearch refuses to run as root: as root the node runs as a system user (created once).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_server.sh"
ES_VERSION="${ES_VERSION:-8.19.21}"
MAVEN_REPOSITORY="${MAVEN_REPOSITORY:-https://repo1.maven.org/maven2}"
START_TIMEOUT="${ELASTICSEARCH_START_TIMEOUT:-180}"
ES_USER="${ELASTICSEARCH_SYSTEM_USER:-materials-es}"
ES_HEAP="${ELASTICSEARCH_HEAP:-512m}"
# Readable by the system user the node runs as, so not under root's home.
if [ "$(id -u)" -eq 0 ]; then
    CACHE="${MATERIALS_CACHE_DIR:-/var/cache/materials}"
else
    CACHE="${MATERIALS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/materials}"
fi
HOME_DIR="$CACHE/elasticsearch-$ES_VERSION"

usage() {
    echo "usage: $0 start DIR PORT | $0 stop DIR | $0 fetch" >&2
    exit 2
}

# Download and unpack the distribution unless the cache already holds it; checked by SHA-512.
# A subshell, so that its EXIT trap removes the half-done download however it ends.
fetch() (
    [ -x "$HOME_DIR/bin/elasticsearch" ] && exit 0
    local base="$MAVEN_REPOSITORY/org/elasticsearch/distribution/integ-test-zip/elasticsearch"
    local url="$base/$ES_VERSION/elasticsearch-$ES_VERSION.zip"
    local work
    echo "elasticsearch: downloading $ES_VERSION from Maven Central into $CACHE (once)" >&2
    mkdir -p "$CACHE"
    work="$(mktemp -d "$CACHE/.download.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    if ! curl -fsSL --retry 3 -o "$work/es.zip" "$url" \
        || ! curl -fsSL --retry 3 -o "$work/es.zip.sha512" "$url.sha512"; then
        echo "elasticsearch: could not download $url" >&2
        exit 1
    fi
    local expected actual
    expected="$(cut -d' ' -f1 <"$work/es.zip.sha512")"
    actual="$(sha512sum "$work/es.zip" | cut -d' ' -f1)"
    if [ "$expected" != "$actual" ]; then
        echo "elasticsearch: checksum mismatch for $url" >&2
        exit 1
    fi
    (cd "$work" && unzip -q es.zip)
    chmod -R a+rX "$work/elasticsearch-$ES_VERSION"
    # Another run may have unpacked it meanwhile; the rename makes a complete tree appear at once.
    mv -T "$work/elasticsearch-$ES_VERSION" "$HOME_DIR" 2>/dev/null || true
    [ -x "$HOME_DIR/bin/elasticsearch" ]
)

# Java 17 for 8.x: the JDK that `java` on PATH belongs to, unless ES_JAVA_HOME says otherwise.
java_home() {
    if [ -n "${ES_JAVA_HOME:-}" ]; then
        echo "$ES_JAVA_HOME"
        return
    fi
    local java
    java="$(command -v java || true)"
    if [ -z "$java" ]; then
        echo "elasticsearch: no java on PATH; install OpenJDK 17 or set ES_JAVA_HOME" >&2
        exit 1
    fi
    dirname "$(dirname "$(readlink -f "$java")")"
}

ensure_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id -u "$ES_USER" >/dev/null 2>&1 && return 0
    useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
}

as_es() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$ES_USER" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
'
}

answers() {
    curl -fs -m 2 -o /dev/null "http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s"
}

start() {
    local dir="$1" port="$2"
    if answers "$port"; then
        echo "elasticsearch: port $port on 127.0.0.1 is already answering" >&2
        exit 1
    fi
    fetch
    ensure_user
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    mkdir -p "$dir/config" "$dir/data" "$dir/logs" "$dir/tmp"
    cp -r "$HOME_DIR/config/." "$dir/config/"
    cat >"$dir/config/elasticsearch.yml" <<EOF
cluster.name: materials-test
node.name: materials-test
discovery.type: single-node
network.host: 127.0.0.1
http.port: $port
transport.port: $(free_port)
path.data: $dir/data
path.logs: $dir/logs
xpack.security.enabled: false
# A test node on a busy disk must not turn its indices read-only.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$ES_USER" "$dir"
    fi
    local jdk
    jdk="$(java_home)"
    # The node's working directory must be readable by its user (gc.log is written there).
    (
        cd "$dir/logs"
        as_es env ES_JAVA_HOME="$jdk" ES_PATH_CONF="$dir/config" ES_TMPDIR="$dir/tmp" \
            ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP ${ES_EXTRA_JAVA_OPTS:-}" \
            "$HOME_DIR/bin/elasticsearch" -p "$dir/elasticsearch.pid"
    ) >"$dir/logs/stdout.log" 2>&1 </dev/null &
    local launcher=$!
    if ! wait_ready elasticsearch "$launcher" "$dir/logs/stdout.log" "$START_TIMEOUT" \
        answers "$port"; then
        stop "$dir"
        kill "$launcher" 2>/dev/null || true
        exit 1
    fi
}

stop() {
    stop_pidfile "$1/elasticsearch.pid"
}

case "${1:-}" in
    start) [ "$#" -eq 3 ] || usage; start "$2" "$3" ;;
    stop) [ "$#" -ge 2 ] || usage; stop "$2" ;;
    fetch) fetch ;;
    *) usage ;;
esac
