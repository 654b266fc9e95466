#!/usr/bin/env bash
# Back up the production stack into DIR: the database first (PostgreSQL: pg_dump --format=custom
# of one snapshot; embedded SQLite: its online backup), then every blob and audit record of the
# object store, each checked against its sha256, then DIR/manifest.json (written last).
# Usage: backup.sh DIR
# Settings come from the same MATERIALS_* environment the app uses (MATERIALS_DATABASE_URL,
# MATERIALS_S3_*, or MATERIALS_DATA_DIR in embedded mode). Run it again on the same DIR to resume
# or to refresh: blobs already there are not copied again. The audit signing key is NOT copied:
# keep it, and the verifier key (`materials audit public-key`), somewhere else.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MATERIALS_VENV:-$ROOT/.venv}"
MATERIALS="${MATERIALS_COMMAND:-$VENV/bin/materials}"

usage() {
    echo "usage: $0 DIR" >&2
    exit 2
}

[ "$#" -eq 1 ] || usage
case "$1" in -h | --help) usage ;; esac
if [ -n "${MATERIALS_DATABASE_URL:-}" ] && ! command -v pg_dump >/dev/null; then
    echo "backup: pg_dump not found; install it with: apt-get install postgresql-client" >&2
    exit 1
fi
"$MATERIALS" backup "$1"
echo "backup: complete in $1; keep the audit signing key and its verifier key apart from it" >&2
