#!/usr/bin/env bash
# Install the app into ./.venv and run it embedded: SQLite, local blob directory, one process.
# Extra arguments go to `materials serve` (e.g. --demo, --port 8080, --data-dir /srv/materials).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
# Legacy Word and WPS text; OCR of scanned PDFs and photos (Tesseract, Simplified Chinese).
ensure_debian_packages antiword tesseract-ocr tesseract-ocr-chi-sim
ensure_venv ""
cd "$ROOT"
exec "$VENV/bin/materials" serve "$@"
