"""The set of backends one process works with, opened in one place from the settings.

``create_app`` and the command line call ``open_backends``; nothing else opens a backend.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from services.audit import AuditLog
from services.blobs import BlobStore, open_blob_store
from services.config import Settings
from services.db import Database
from services.passwords import Passwords
from services.private_files import make_private_dir
from services.scanning import VirusScanner, open_virus_scanner
from services.search import SearchIndex, TextAnalyzer, open_search_index


@dataclass
class WordsCheck:
    """When this process next reads the county's words (``services.dictionary.keep_current``)."""

    due_at: float = 0.0  # time.monotonic(); 0: not read yet
    lock: threading.Lock = field(default_factory=threading.Lock)
    townships: tuple[str, ...] = ()  # the townships' names as last read (a query's 乡 and 镇)


@dataclass(frozen=True)
class Backends:
    settings: Settings
    db: Database
    blobs: BlobStore
    audit: AuditLog
    passwords: Passwords
    index: SearchIndex
    # The index's text analyzer, kept current with the county dictionary by services.dictionary.
    analyzer: TextAnalyzer
    # ClamAV's daemon, or None when none is configured (files are then "unscanned").
    scanner: VirusScanner | None = None
    words_check: WordsCheck = field(default_factory=WordsCheck)

    def close(self) -> None:
        try:
            self.audit.flush_bursts(closing=True)  # counted refusals not yet in the log
        finally:
            self.index.close()
            self.db.dispose()


def open_backends(settings: Settings, *, migrate: bool = True) -> Backends:
    """Open the database (migrated to the newest schema), blob store, search index, audit log."""
    make_private_dir(settings.data_dir)
    db = Database(settings.resolved_database_url)
    if migrate:
        db.migrate()
    analyzer = TextAnalyzer.from_settings(settings)
    return Backends(
        settings=settings,
        db=db,
        blobs=open_blob_store(settings),
        audit=AuditLog(db, burst_seconds=settings.audit_burst_seconds),
        passwords=Passwords.from_settings(settings),
        index=open_search_index(settings, analyzer=analyzer),
        analyzer=analyzer,
        scanner=open_virus_scanner(settings),
    )
