"""Orphan blobs: which stored blobs no document refers to, and sweeping the old ones.

A blob without a document row is normal for a moment (an upload in flight or a crash in between);
only orphans older than the grace period are swept. ``services.consistency`` reports on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from services.backends import Backends
from services.blobs import BlobInfo
from services.models import Document, utcnow


@dataclass
class Orphans:
    blobs: int = 0  # blobs listed in the store
    old: list[BlobInfo] = field(default_factory=list)  # past the grace period: to be swept
    young: list[BlobInfo] = field(default_factory=list)  # maybe an upload in flight: kept


def referenced(backends: Backends) -> dict[str, list[str]]:
    """Every document's blob: sha256 → the ids of the documents (withdrawn ones too) using it."""
    with backends.db.session() as session:
        rows = session.execute(select(Document.sha256, Document.id)).all()
    refs: dict[str, list[str]] = {}
    for sha256, document_id in rows:
        refs.setdefault(sha256, []).append(document_id)
    return refs


def _is_referenced(backends: Backends, sha256: str) -> bool:
    with backends.db.session() as session:
        found = session.scalar(select(Document.id).where(Document.sha256 == sha256).limit(1))
    return found is not None


def _cutoff(backends: Backends) -> datetime:
    return utcnow() - timedelta(seconds=backends.settings.orphan_grace_seconds)


def find_orphans(backends: Backends, refs: dict[str, list[str]] | None = None) -> Orphans:
    """The stored blobs no document refers to, split at the grace period."""
    refs = referenced(backends) if refs is None else refs
    cutoff = _cutoff(backends)
    found = Orphans()
    for blob in backends.blobs.list():
        found.blobs += 1
        if blob.sha256 in refs:
            continue
        (found.old if blob.modified_at < cutoff else found.young).append(blob)
    return found


def remove_orphans(backends: Backends, candidates: Iterable[BlobInfo]) -> list[str]:
    """Delete those of the candidates still old orphans; the sha256 of each blob removed.

    Each candidate is checked again just before it goes: an upload of the same bytes renews the
    blob's age before its document row is written, so a blob young again, or referenced by now,
    stays. (Between that check and the delete there is no lock: the window is one request.)
    """
    cutoff = _cutoff(backends)
    removed: list[str] = []
    for blob in candidates:
        now = backends.blobs.stat(blob.sha256)
        if now is None or now.modified_at >= cutoff:
            continue
        if _is_referenced(backends, blob.sha256):
            continue
        backends.blobs.delete(blob.sha256)
        removed.append(blob.sha256)
    return removed


def sweep_orphans(backends: Backends) -> list[str]:
    """Delete blobs no document refers to, older than the grace period; the sha256 removed."""
    return remove_orphans(backends, find_orphans(backends).old)
