"""Rebuild the search index from the database, resumably: kept texts in bulk, the rest extracted.

Documents are visited in id order, a batch at a time (the rows and their kept texts in one
query). A document whose file's text was kept is segmented again and written with the others of
its batch in one bulk request, on a writer thread while the next batch is segmented; any other is
fetched and extracted. Progress is checkpointed in ``reindex_runs`` after every batch, so an
interrupted rebuild resumes where it stopped instead of starting over. The backend decides where
the rebuild goes (``SearchIndex.begin_rebuild``): Elasticsearch builds a new index while searches
go on using the old one, and switches at the end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, insert, select

from indexer.extractors import ExtractionLimits
from indexer.indexing import IndexOutcome, index_document, index_kept_texts
from services.backends import Backends
from services.models import (
    Document,
    DocumentText,
    IndexAction,
    OutboxEvent,
    ReindexRun,
    utcnow,
)
from services.scanning import may_serve, needs_scan
from services.search import SearchIndex

BATCH_SIZE = 250  # documents read at once, and written in one bulk request when texts were kept
WRITERS = 2  # batches written at once: one is segmented while the search server takes the other
# Extraction is slow to redo: a batch with a document to extract ends after this many documents.
CHECKPOINT_EVERY = 25

WithText = tuple[Document, DocumentText | None]


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
    extract: bool = False,
    limits: ExtractionLimits | None = None,
    on_total: Callable[[int, int], None] = lambda total, done: None,
    on_progress: Callable[[int], None] = lambda advanced: None,
) -> ReindexReport:
    """Index every document again (withdrawn ones are removed); resume an unfinished run.

    Kept texts are used again unless ``extract``: then every file is fetched and extracted.
    """
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
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="reindex") as threads:
        writer = _Writer(backends, target, run, threads=threads, on_progress=on_progress)
        read = run.last_document_id
        while rows := _load(backends, _after(read)):
            read = rows[-1][0].id
            for batch in _batches(rows, extract=extract):
                writer.write(batch, extract=extract, limits=limits)
        writer.settle()
    _catch_up(backends, target, since=run.started_at, extract=extract, limits=limits)
    index.finish_rebuild(target)
    _checkpoint(backends, run.id, writer.last, writer.counts, finished=True)
    counts = writer.counts
    return ReindexReport(
        run.id, resumed, counts["indexed"], counts["failed"], counts["removed"], total
    )


def refill(backends: Backends, index: SearchIndex) -> int:
    """When the index lost its documents to a new schema (``SearchIndex.needs_refill``), queue an
    index event for every live document without one pending; how many were queued.

    The workers then write them back one by one, newest first, without anyone running
    ``reindex``. The events are committed before the index forgets that it needs refilling: a
    process stopped in between queues them again at its next start (a document queued twice is
    only written twice).
    """
    if not index.needs_refill():
        return 0
    with backends.db.session() as session:
        pending = select(OutboxEvent.document_id).where(OutboxEvent.done_at.is_(None))
        document_ids = list(
            session.scalars(
                select(Document.id)
                .where(Document.withdrawn_at.is_(None), Document.id.not_in(pending))
                .order_by(Document.created_at.desc(), Document.id.desc())
            )
        )
        now = utcnow()
        for start in range(0, len(document_ids), BATCH_SIZE * 4):
            session.execute(
                insert(OutboxEvent),
                [
                    {
                        "document_id": document_id,
                        "action": IndexAction.upsert.value,
                        "created_at": now,
                        "available_at": now,
                        "attempts": 0,
                    }
                    for document_id in document_ids[start : start + BATCH_SIZE * 4]
                ],
            )
    index.refill_queued()
    return len(document_ids)


class _Writer:
    """Writes a run's batches, counts them and checkpoints after each one, in id order.

    Batches of kept texts go to writer threads, so that the next one is segmented while the
    search server indexes this one; a batch to extract waits for those, then is written here.
    """

    def __init__(
        self,
        backends: Backends,
        target: SearchIndex,
        run: ReindexRun,
        *,
        threads: ThreadPoolExecutor,
        on_progress: Callable[[int], None],
    ) -> None:
        self._backends, self._target, self._run_id = backends, target, run.id
        self._threads = threads
        self._on_progress = on_progress
        self._writing: deque[tuple[Future[list[IndexOutcome]], str]] = deque()
        self.counts = {"indexed": run.indexed, "failed": run.failed, "removed": run.removed}
        self.last = run.last_document_id

    def write(
        self, batch: Sequence[WithText], *, extract: bool, limits: ExtractionLimits | None
    ) -> None:
        end = batch[-1][0].id
        if any(_needs_extraction(row, extract=extract) for row in batch):
            self.settle()
            # One document at a time: each counts as soon as it is written.
            outcomes = _write(self._backends, self._target, batch, extract=extract, limits=limits)
            self._record(outcomes, end)
            return
        written = self._threads.submit(self._write_kept, batch)
        self._writing.append((written, end))
        self.settle(keep=WRITERS - 1)

    def settle(self, *, keep: int = 0) -> None:
        """Wait for the batches on writer threads (all but ``keep``), oldest first."""
        while len(self._writing) > keep:
            written, end = self._writing.popleft()
            self._record(written.result(), end)

    def _write_kept(self, batch: Sequence[WithText]) -> list[IndexOutcome]:
        return list(_write(self._backends, self._target, batch, extract=False))

    def _record(self, outcomes: Iterable[IndexOutcome], end: str) -> None:
        for outcome in outcomes:
            self.counts[outcome.status] += 1
            self._on_progress(1)
        self.last = end
        _checkpoint(self._backends, self._run_id, end, self.counts, finished=False)


def _after(last: str | None) -> Select[Document, DocumentText]:
    query = _with_texts().order_by(Document.id).limit(BATCH_SIZE)
    return query if last is None else query.where(Document.id > last)


def _with_texts() -> Select[Document, DocumentText]:
    return select(Document, DocumentText).outerjoin(
        DocumentText, DocumentText.document_id == Document.id
    )


def _load(backends: Backends, query: Select[Document, DocumentText]) -> list[WithText]:
    """Documents with their kept texts (``None`` when there is none), in one query."""
    with backends.db.session() as session:
        return [(document, text) for document, text in session.execute(query)]


def _needs_extraction(row: WithText, *, extract: bool) -> bool:
    document, text = row
    if document.withdrawn_at is not None:
        return False
    return extract or text is None or text.sha256 != document.sha256


def _scan_settled(backends: Backends, document: Document) -> bool:
    """Is the file's scan done, and does it let the file be indexed? Otherwise ``index_document``
    scans it or keeps it out of the index."""
    status = document.scan_status
    return not needs_scan(status, scanner=backends.scanner) and may_serve(
        status, serve_unscanned=backends.settings.serve_unscanned
    )


def _batches(rows: list[WithText], *, extract: bool) -> list[list[WithText]]:
    """The rows cut where a checkpoint goes: every CHECKPOINT_EVERY once one needs extracting."""
    batches: list[list[WithText]] = [[]]
    extracting = False
    for row in rows:
        if extracting and len(batches[-1]) >= CHECKPOINT_EVERY:
            batches.append([])
            extracting = False
        batches[-1].append(row)
        extracting = extracting or _needs_extraction(row, extract=extract)
    return batches


def _write(
    backends: Backends,
    target: SearchIndex,
    batch: Sequence[WithText],
    *,
    extract: bool,
    limits: ExtractionLimits | None = None,
) -> Iterator[IndexOutcome]:
    """Remove the withdrawn, write the kept texts in one request, extract the others; each
    outcome as soon as its document is written."""
    removed: dict[str, int] = {}  # withdrawn documents, with their versions
    kept: list[tuple[Document, str]] = []
    extracting: list[str] = []
    for document, text in batch:
        if document.withdrawn_at is not None:
            removed[document.id] = document.index_version
        elif (
            text is None
            or _needs_extraction((document, text), extract=extract)
            or not _scan_settled(backends, document)
        ):
            extracting.append(document.id)
        else:
            kept.append((document, text.body))
    target.delete(list(removed), versions=removed)
    yield from (IndexOutcome(document_id, "removed") for document_id in removed)
    yield from index_kept_texts(backends, target, kept)
    for document_id in extracting:
        yield index_document(
            backends, target, document_id=document_id, limits=limits, extract=extract
        )


def _catch_up(
    backends: Backends,
    target: SearchIndex,
    *,
    since: datetime,
    extract: bool,
    limits: ExtractionLimits | None,
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
    for start in range(0, len(changed), BATCH_SIZE):
        ids = changed[start : start + BATCH_SIZE]
        rows = _load(backends, _with_texts().where(Document.id.in_(ids)))
        target.delete(sorted(set(ids) - {document.id for document, _ in rows}))  # rows deleted
        list(_write(backends, target, rows, extract=extract, limits=limits))


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
