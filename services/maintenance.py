"""Consistency of documents and blobs: ``check`` that every live blob is intact, ``sweep`` orphans.

A blob without a document row is normal for a moment (an upload in flight or a crash in between);
only orphans older than the grace period are swept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.backends import Backends
from services.blobs import BlobInfo
from services.models import Document, utcnow


@dataclass
class CheckReport:
    documents: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "documents": self.documents,
            "missing": self.missing,
            "corrupt": self.corrupt,
            "old_orphans": self.orphans,
        }


def _referenced(backends: Backends) -> dict[str, list[str]]:
    with backends.db.session() as session:
        rows = session.execute(select(Document.sha256, Document.id)).all()
    refs: dict[str, list[str]] = {}
    for sha256, document_id in rows:
        refs.setdefault(sha256, []).append(document_id)
    return refs


def check_blobs(backends: Backends) -> CheckReport:
    """Re-hash every referenced blob; list missing and corrupt ones, and old orphans."""
    report = CheckReport()
    refs = _referenced(backends)
    report.documents = sum(len(ids) for ids in refs.values())
    for sha256, document_ids in refs.items():
        if backends.blobs.stat(sha256) is None:
            report.missing.extend(document_ids)
            continue
        digest = hashlib.sha256()
        for chunk in backends.blobs.read_chunks(sha256):
            digest.update(chunk)
        if digest.hexdigest() != sha256:
            report.corrupt.extend(document_ids)
    report.orphans = [blob.sha256 for blob in _old_orphans(backends, refs)]
    return report


def _cutoff(backends: Backends) -> datetime:
    return utcnow() - timedelta(seconds=backends.settings.orphan_grace_seconds)


def _old_orphans(backends: Backends, refs: dict[str, list[str]]) -> list[BlobInfo]:
    cutoff = _cutoff(backends)
    return [
        blob
        for blob in backends.blobs.list()
        if blob.sha256 not in refs and blob.modified_at < cutoff
    ]


def sweep_orphans(backends: Backends) -> int:
    """Delete blobs no document refers to, older than the grace period; how many were removed.

    Each candidate is checked again just before it goes: an upload of the same bytes renews the
    blob's age before its document row is written, so a blob young again, or referenced by now,
    stays. (Between that check and the delete there is no lock: the window is one request.)
    """
    cutoff = _cutoff(backends)
    removed = 0
    for blob in _old_orphans(backends, _referenced(backends)):
        now = backends.blobs.stat(blob.sha256)
        if now is None or now.modified_at >= cutoff:
            continue
        if _referenced(backends).get(blob.sha256):
            continue
        backends.blobs.delete(blob.sha256)
        removed += 1
    return removed
