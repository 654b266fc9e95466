"""Is the search index what the database says it should be? Every live indexed document in it at
its current ``index_version``, nothing else; with repair, the differences are queued or removed.

Documents with an outbox event not yet done are in flight: the worker is about to write them, so
they are neither missing nor stale. Those found wrong are read again before they are counted, so
a change that lands while the check runs is not reported.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from services.backends import Backends
from services.models import Document, IndexAction, IndexStatus, OutboxEvent
from services.scanning import may_serve

MAX_LISTED = 20  # ids listed per kind of difference; the counts are complete


@dataclass
class IndexCheck:
    """What ``check_index`` found, and what it did about it when asked to repair."""

    expected: int  # live indexed documents: each must be in the index at its version
    held: int  # documents the index holds
    in_flight: int  # documents with an outbox event not yet done, left to the worker
    missing: int = 0
    stale: int = 0  # in the index at another version than the database's
    extra: int = 0  # in the index, but withdrawn, deleted, kept out by the scan, or unknown
    missing_ids: list[str] = field(default_factory=list)
    stale_ids: list[str] = field(default_factory=list)
    extra_ids: list[str] = field(default_factory=list)
    repaired: bool = False
    queued: int = 0  # outbox events queued for missing and stale documents
    removed: int = 0  # entries deleted from the index

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.extra)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class _Expectation:
    must: dict[str, int]  # id → version: live and indexed
    may: set[str]  # live, not yet indexed or failed with the file allowed: either way is fine
    in_flight: set[str]


def _expectation(
    backends: Backends, session: Session, ids: Collection[str] | None = None
) -> _Expectation:
    documents = select(
        Document.id, Document.index_version, Document.index_status, Document.scan_status
    ).where(Document.withdrawn_at.is_(None))
    flying = select(OutboxEvent.document_id).where(OutboxEvent.done_at.is_(None)).distinct()
    if ids is not None:
        documents = documents.where(Document.id.in_(ids))
        flying = flying.where(OutboxEvent.document_id.in_(ids))
    must: dict[str, int] = {}
    may: set[str] = set()
    serve_unscanned = backends.settings.serve_unscanned
    for document_id, version, status, scan in session.execute(documents):
        if status == IndexStatus.indexed.value:
            must[document_id] = version
        elif may_serve(scan, serve_unscanned=serve_unscanned):
            may.add(document_id)
    return _Expectation(must, may, set(session.scalars(flying)))


def _differences(
    expectation: _Expectation, held: dict[str, int]
) -> tuple[list[str], list[str], list[str]]:
    settled = {
        document_id: version
        for document_id, version in expectation.must.items()
        if document_id not in expectation.in_flight
    }
    missing = sorted(document_id for document_id in settled if document_id not in held)
    stale = sorted(
        document_id
        for document_id, version in settled.items()
        if document_id in held and held[document_id] != version
    )
    extra = sorted(
        document_id
        for document_id in held
        if document_id not in expectation.must
        and document_id not in expectation.may
        and document_id not in expectation.in_flight
    )
    return missing, stale, extra


def check_index(backends: Backends, *, repair: bool) -> IndexCheck:
    """Compare the search index with the database; with ``repair``, queue outbox events for the
    missing and stale documents and delete what should not be in the index."""
    with backends.db.session() as session:
        expectation = _expectation(backends, session)
    held = dict(backends.index.indexed_versions())
    missing, stale, extra = _differences(expectation, held)
    suspects = [*missing, *stale, *extra]
    if suspects:
        # Read again what looked wrong: a worker or a withdrawal may have moved on meanwhile.
        with backends.db.session() as session:
            again = _expectation(backends, session, suspects)
        now_held = dict(backends.index.indexed_versions())
        held_suspects = {key: now_held[key] for key in suspects if key in now_held}
        missing, stale, extra = _differences(again, held_suspects)
    report = IndexCheck(
        expected=len(expectation.must),
        held=len(held),
        in_flight=len(expectation.in_flight),
        missing=len(missing),
        stale=len(stale),
        extra=len(extra),
        missing_ids=missing[:MAX_LISTED],
        stale_ids=stale[:MAX_LISTED],
        extra_ids=extra[:MAX_LISTED],
    )
    if repair and not report.ok:
        report.queued = _queue(backends, [*missing, *stale], held)
        if extra:
            backends.index.delete(extra)
        report.removed = len(extra)
        report.repaired = True
    return report


def _queue(backends: Backends, document_ids: list[str], held: dict[str, int]) -> int:
    """Queue an index event for each document, with a version above what the index holds (an
    entry written before versions may hold a higher one), so that the worker's write wins."""
    if not document_ids:
        return 0
    with backends.db.session() as session:
        for document_id in document_ids:
            session.execute(
                update(Document)
                .where(Document.id == document_id)
                .values(
                    index_version=_greatest(Document.index_version, held.get(document_id, 0)) + 1
                )
            )
            session.add(OutboxEvent(document_id=document_id, action=IndexAction.upsert.value))
    return len(document_ids)


def _greatest(column: Any, value: int) -> Any:
    return case((column >= value, column), else_=value)


__all__ = ["MAX_LISTED", "IndexCheck", "check_index"]
