"""More time for OCR: an extraction that starts recognising scanned pages asks for it.

Reading a file has the per-file time limit; recognising scanned pages takes about 5 s a page and
gets ``ocr_seconds_per_page`` for each page on top. Inside a helper process the request reaches the
parent, which waits that much longer (never more than OCR of ``ocr_max_pages`` pages can take);
elsewhere (an extraction run in-process) there is no one to ask and the time is simply granted.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from multiprocessing.connection import Connection

__all__ = ["MORE_TIME", "ask_for_time", "limit_cpu", "serving"]

MORE_TIME = "more_time"  # the message a helper sends: (MORE_TIME, seconds)

_parent: Connection | None = None


@contextlib.contextmanager
def serving(connection: Connection) -> Iterator[None]:
    """While one task runs in a helper: requests for more time go to ``connection``."""
    global _parent
    _parent = connection
    try:
        yield
    finally:
        _parent = None


def ask_for_time(seconds: float) -> float:
    """Ask for ``seconds`` more; returns them (the parent caps what it grants in total)."""
    if _parent is not None and seconds > 0:
        _parent.send((MORE_TIME, seconds))
        limit_cpu(seconds)
    return seconds


def limit_cpu(seconds: float) -> None:
    """Let this process use at most ``seconds`` more CPU time (SIGXCPU ends it beyond that).

    The caller stops a task that overruns its time; this cap ends one that spins on after its
    caller is gone.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 2
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
