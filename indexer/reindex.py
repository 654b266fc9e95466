"""Rebuild the search index from the database and the blob store, resumably.

Documents are visited in id order; progress is checkpointed in ``reindex_runs`` every few
documents, so an interrupted rebuild resumes where it stopped instead of starting over. The
backend decides where the rebuild goes (``SearchIndex.begin_rebuild``): Elasticsearch builds a
new index while searches go on using the old one, and switches at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from indexer.extractors import ExtractionLimits
from indexer.indexing import index_document
from services.backends import Backends
from services.models import Document, OutboxEvent, ReindexRun, utcnow
from services.search import SearchIndex

CHECKPOINT_EVERY = 25


@dataclass(frozen=True)
class ReindexReport:
    run_id: int
    resumed: bool
    indexed: int
    failed: int
    removed: int
    total: int


def _open_run(backends: Backends, *, restart: bool) -> tuple[ReindexRun, bool]:
    with backends.db.session() as session:
        unfinished = session.scalar(
            select(ReindexRun)
            .where(ReindexRun.finished_at.is_(None))
            .order_by(ReindexRun.id.desc())
        )
        if unfinished is not None and restart:
            unfinished.finished_at = utcnow()
            unfinished = None
        if unfinished is not None:
            return unfinished, True
        run = ReindexRun(indexed=0, failed=0, removed=0)
        session.add(run)
        session.flush()
        return run, False


def reindex(
    backends: Backends,
    index: SearchIndex,
    *,
    restart: bool = False,
    limits: ExtractionLimits | None = None,
    on_total: Callable[[int, int], None] = lambda total, done: None,
    on_progress: Callable[[int], None] = lambda advanced: None,
) -> ReindexReport:
    """Index every document again (withdrawn ones are removed); resume an unfinished run."""
    run, resumed = _open_run(backends, restart=restart)
    target = index.begin_rebuild(restart=not resumed)
    with backends.db.session() as session:
        total = session.scalar(select(func.count()).select_from(Document)) or 0
        done = 0
        if run.last_document_id is not None:
            done = (
                session.scalar(
                    select(func.count())
                    .select_from(Document)
                    .where(Document.id <= run.last_document_id)
                )
                or 0
            )
    on_total(total, done)
    counts = {"indexed": run.indexed, "failed": run.failed, "removed": run.removed}
    last = run.last_document_id
    since_checkpoint = 0
    while True:
        with backends.db.session() as session:
            query = select(Document.id).order_by(Document.id).limit(200)
            if last is not None:
                query = query.where(Document.id > last)
            batch = list(session.scalars(query))
        if not batch:
            break
        for document_id in batch:
            outcome = index_document(backends, target, document_id=document_id, limits=limits)
            counts[outcome.status] += 1
            last = document_id
            since_checkpoint += 1
            on_progress(1)
            if since_checkpoint >= CHECKPOINT_EVERY:
                _checkpoint(backends, run.id, last, counts, finished=False)
                since_checkpoint = 0
    _catch_up(backends, target, since=run.started_at, limits=limits)
    index.finish_rebuild(target)
    _checkpoint(backends, run.id, last, counts, finished=True)
    return ReindexReport(
        run.id, resumed, counts["indexed"], counts["failed"], counts["removed"], total
    )


def _catch_up(
    backends: Backends, target: SearchIndex, *, since: datetime, limits: ExtractionLimits | None
) -> None:
    """Write again every document changed since the run began.

    The workers' own writes reach the rebuild too, but one of them may have landed between this
    run reading a document and writing it, leaving the older state in the new index.
    """
    with backends.db.session() as session:
        changed = list(
            session.scalars(
                select(OutboxEvent.document_id)
                .where(OutboxEvent.created_at >= since)
                .distinct()
                .order_by(OutboxEvent.document_id)
            )
        )
    for document_id in changed:
        index_document(backends, target, document_id=document_id, limits=limits)


def _checkpoint(
    backends: Backends, run_id: int, last: str | None, counts: dict[str, int], *, finished: bool
) -> None:
    with backends.db.session() as session:
        run = session.get_one(ReindexRun, run_id)
        run.last_document_id = last
        run.indexed, run.failed, run.removed = (
            counts["indexed"],
            counts["failed"],
            counts["removed"],
        )
        if finished:
            run.finished_at = utcnow()
