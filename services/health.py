"""Backend health: does each backend answer right now?

Used by ``/readyz`` and by the command line; reports a state per backend instead of raising.
"""

from __future__ import annotations

from sqlalchemy import text

from services.backends import Backends
from services.errors import BackendUnavailable


def check_backends(backends: Backends) -> dict[str, str]:
    """``{"database" | "object_store" | "search_index": "ok" | reason}``."""
    report: dict[str, str] = {}
    try:
        with backends.db.session() as session:
            session.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        report["database"] = f"unavailable: {type(exc).__name__}"
    try:
        backends.blobs.ping()
        report["object_store"] = "ok"
    except BackendUnavailable as exc:
        report["object_store"] = f"unavailable: {exc.message}"
    try:
        backends.index.ping()
        report["search_index"] = "ok"
    except BackendUnavailable as exc:
        report["search_index"] = f"unavailable: {exc.message}"
    return report


def check_antivirus(backends: Backends) -> str:
    """The virus scanner's state: ``ok``, why it cannot scan, or that none is configured.

    Not a readiness condition: without the scanner uploads still succeed and wait to be scanned.
    """
    if backends.scanner is None:
        serving = "served" if backends.settings.serve_unscanned else "not served"
        return f"not configured: files are {serving} unscanned"
    try:
        backends.scanner.ping()
    except BackendUnavailable as exc:
        return f"unavailable: {exc.message}; new files wait to be scanned"
    return "ok"
