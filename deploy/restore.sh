#!/usr/bin/env bash
# Restore a backup made by backup.sh onto an EMPTY stack, then prove it: every file of DIR is
# checked against its manifest first; the blobs and audit records go into the object store
# (records under object-lock retention again), then the database; then `materials reindex` (the
# search index is not backed up), `materials check` (every document's blob with its sha256, the
# index, the audit log) and `materials audit verify --public-key KEY` (the log against its signed
# checkpoints, with the verifier key kept apart from the backup rather than read from the stack).
# Usage: restore.sh DIR PUBLIC_KEY_FILE
# Settings come from the MATERIALS_* environment of the new stack: MATERIALS_DATABASE_URL names
# an empty database, connecting as its owner role (pg_restore creates the tables), and
# MATERIALS_S3_BUCKET a new bucket (it is made with object lock) or an empty one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MATERIALS_VENV:-$ROOT/.venv}"
MATERIALS="${MATERIALS_COMMAND:-$VENV/bin/materials}"

usage() {
    echo "usage: $0 DIR PUBLIC_KEY_FILE  (the key: the text of \`materials audit public-key\`)" >&2
    exit 2
}

[ "$#" -eq 2 ] || usage
dir="$1" public_key="$2"
if [ ! -f "$dir/manifest.json" ]; then
    echo "restore: $dir/manifest.json missing: not a complete backup" >&2
    exit 1
fi
if [ ! -f "$public_key" ]; then
    echo "restore: verifier key file $public_key not found" >&2
    exit 1
fi
if [ -n "${MATERIALS_DATABASE_URL:-}" ] && ! command -v pg_restore >/dev/null; then
    echo "restore: pg_restore not found; install it with: apt-get install postgresql-client" >&2
    exit 1
fi
"$MATERIALS" restore "$dir"
# The search index is not in the backup: rebuilt first, so that `check` finds it whole.
echo "restore: rebuilding the search index" >&2
"$MATERIALS" reindex
echo "restore: checking every document's blob, the search index and the audit log" >&2
"$MATERIALS" check
echo "restore: verifying the audit log with $public_key" >&2
"$MATERIALS" audit verify --public-key "$public_key"
echo "restore: complete" >&2
