#!/usr/bin/env bash
# Install what the tests need into ./.venv, then lint, type-check and run the whole test suite.
# Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
ensure_debian_packages antiword postgresql
# OCR of scanned PDFs and photos: Tesseract with its Simplified Chinese data.
ensure_debian_packages tesseract-ocr tesseract-ocr-chi-sim
# Virus scanning: ClamAV's daemon, run by the tests with the project's test signatures.
ensure_debian_packages clamav-daemon
# The web interface tests drive Debian's Chromium (never a downloaded browser), with CJK fonts.
ensure_debian_packages chromium fonts-noto-cjk
ensure_venv "[test]"
# Known vulnerabilities with a fixed release in what was just installed (pip-audit, PyPI's data);
# says so, without failing, when PyPI's vulnerability API cannot be reached.
"$VENV/bin/python" "$ROOT/deploy/audit_dependencies.py"
# MinIO is built from source once (a few minutes) and cached; here rather than inside a fixture,
# so that the wait is announced and a missing Go toolchain stops the run with a clear message.
"$ROOT/deploy/minio.sh" build
# Elasticsearch's distribution is downloaded from Maven Central once and cached the same way.
"$ROOT/deploy/elasticsearch.sh" fetch
cd "$ROOT"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
exec "$VENV/bin/pytest" "$@"
