# Sourced by the deploy scripts: create the project's virtualenv once and install into it.
# Usage: ensure_venv EXTRAS (e.g. "" or "[test]"); ensure_debian_packages NAME...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MATERIALS_VENV:-$ROOT/.venv}"

ensure_venv() {
    local extras="$1"
    local python="${PYTHON:-python3}"
    if [ ! -x "$VENV/bin/python" ]; then
        "$python" -m venv "$VENV"
        # setuptools too: the one a new venv of Python 3.11 starts with has known vulnerabilities.
        "$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT$extras"
}

# Install Debian packages the app uses when they are missing (needs root; otherwise says what to do).
ensure_debian_packages() {
    local missing=()
    local package
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "note: install ${missing[*]} (apt-get install ${missing[*]}); run as root to have it done" >&2
    fi
}
