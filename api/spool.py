"""The upload spool after a crash: files a killed API process left half written.

``api.uploads`` removes its spool file on every way out of a request but one: the process
killed (SIGKILL, OOM, power). Each API process, on start, removes upload spool files nobody
has written for the grace period; a live upload writes its file as the bytes arrive, so a
sibling process starting meanwhile leaves it alone.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

log = logging.getLogger("materials.api")

# The names api.uploads gives its spool files (NamedTemporaryFile prefix and suffix).
_SPOOL_FILES = "upload-*.part"


def sweep_spool(spool_dir: Path, *, older_than_seconds: float) -> int:
    """Remove spool files untouched for ``older_than_seconds``; how many were removed."""
    if not spool_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in spool_dir.glob(_SPOOL_FILES):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    if removed:
        log.warning("removed %d upload spool file(s) left by a stopped process", removed)
    return removed
