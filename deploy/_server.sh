# Sourced by the deploy scripts that run a server in the background: wait for it, stop it.

# wait_ready NAME PID LOG TIMEOUT CHECK...: return once CHECK succeeds; when PID exits first or
# TIMEOUT seconds pass, print why with the log's tail and return 1 (the caller cleans up).
wait_ready() {
    local name="$1" pid="$2" log="$3" timeout="$4"
    shift 4
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name: the server exited before it was ready; log tail:" >&2
        elif [ "$SECONDS" -ge "$deadline" ]; then
            echo "$name: the server was not ready within ${timeout}s; log tail:" >&2
        else
            sleep 0.2
            continue
        fi
        tail -n 30 "$log" >&2 || true
        return 1
    done
}

# stop_pidfile FILE: end the process named in FILE (TERM, then KILL after 30 s) and remove FILE.
stop_pidfile() {
    local file="$1" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}
