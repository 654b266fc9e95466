"""Index one document: fetch its blob, extract, mask personal data, fingerprint, link near-
duplicates, write it to the search index, and record the outcome on the document row.

The masked text is kept (``DocumentText``) with the sha256 of its file: indexing the same file
again segments the kept text instead of fetching and extracting it, unless extraction is asked for.
Idempotent by document id: running it twice leaves the same index entry and the same row. Every
write carries the row's ``index_version`` read with the state it writes, so the index never takes
an older state over a newer one, whatever order the writes arrive in.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from indexer.extractors import (
    Extracted,
    ExtractionContext,
    ExtractionFailed,
    ExtractionLimits,
)
from indexer.extractors import extract as extract_text
from indexer.similarity import band_keys, fingerprint, similarity
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.metadata import period_bounds
from services.models import (
    Document,
    DocumentSimilarity,
    DocumentText,
    FingerprintBand,
    IndexStatus,
    ScanStatus,
    TextSource,
    utcnow,
)
from services.personal_data import mask_indexed
from services.private_files import make_private_dir
from services.scanning import ScanVerdict, may_serve, needs_scan
from services.search import IndexedDocument, SearchIndex

NEAR_DUPLICATE_THRESHOLD = 0.8
SCANNER_ACTOR = Actor(username="system:antivirus", role="system")
# Why a document is kept out of the index, by its scan status (what ``may_serve`` refuses).
_WITHHELD = {
    ScanStatus.pending: "等待病毒扫描",
    ScanStatus.infected: "文件含有病毒，已隔离，不予索引和下载",
    ScanStatus.too_large: "文件超出病毒扫描的大小限制，未经扫描，按设置不予索引和下载",
    ScanStatus.unscanned: "文件未经病毒扫描，按设置不予索引和下载",
}

log = logging.getLogger("materials.indexer")


class LeaseLost(Exception):
    """The worker's lease on the event ran out: another worker may hold the document now."""


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class IndexOutcome:
    document_id: str
    status: str  # indexed | failed | removed
    reason: str | None = None


def _fetch(backends: Backends, document: Document, directory: Path) -> Path:
    path = directory / "blob"
    with path.open("wb") as out:
        for chunk in backends.blobs.read_chunks(document.sha256):
            out.write(chunk)
    return path


@dataclass(frozen=True)
class _FileOutcome:
    """What reading a document's file found: the scan's verdict (when it was scanned) and the
    extracted text (when it was extracted), or why extraction failed."""

    verdict: ScanVerdict | None = None
    extracted: Extracted | None = None
    failure: str | None = None


def _read_file(
    backends: Backends,
    document: Document,
    limits: ExtractionLimits,
    *,
    scan: bool,
    extract: bool,
) -> _FileOutcome:
    """Fetch the file once: scan it (before anything else reads it), then extract its text if it
    may be served. BackendUnavailable when the scanner cannot be asked: the event waits."""
    make_private_dir(backends.settings.spool_dir)  # and mkdtemp's directory is 0700
    with tempfile.TemporaryDirectory(dir=backends.settings.spool_dir) as tmp:
        path = _fetch(backends, document, Path(tmp))
        verdict = None
        if scan and backends.scanner is not None:
            verdict = backends.scanner.scan(path)
            if not may_serve(verdict.status, serve_unscanned=backends.settings.serve_unscanned):
                return _FileOutcome(verdict)
        if not extract:
            return _FileOutcome(verdict)
        context = ExtractionContext(
            path=path, content_type=document.content_type, filename=document.filename, limits=limits
        )
        try:
            extracted = extract_text(context)
        except ExtractionFailed as failure:
            log.warning(
                "extracting document %s (%s) failed: %s: %s",
                document.id,
                document.content_type,
                failure.code,
                failure.reason,
            )
            return _FileOutcome(verdict, failure=failure.reason)
    if "ocr_unavailable" in extracted.notes:
        log.warning(
            "document %s (%s) was not OCRed: Tesseract with chi_sim is not installed",
            document.id,
            document.content_type,
        )
    return _FileOutcome(verdict, extracted)


def _record_scan(backends: Backends, document: Document, verdict: ScanVerdict | None) -> str:
    """Store the scan's verdict (or that the file stays unscanned); the status now in force.

    An infected file is quarantined: recorded for the auditors, never indexed or served.
    """
    status = verdict.status if verdict else ScanStatus.unscanned
    if verdict is None and document.scan_status != ScanStatus.pending:
        return document.scan_status  # nothing new to say
    with backends.db.session() as session:
        row = session.get(Document, document.id)
        if row is None:
            return status
        row.scan_status = status.value
        row.scan_detail = verdict.signature if verdict else None
        row.scanned_at = utcnow() if verdict else None
        if status == ScanStatus.infected:
            log.warning("document %s is infected (%s): quarantined", document.id, row.scan_detail)
            backends.audit.append(
                session,
                actor=SCANNER_ACTOR,
                action=AuditAction.quarantine,
                outcome=Outcome.denied,
                document_id=document.id,
                details={"signature": row.scan_detail, "sha256": document.sha256},
            )
        elif status == ScanStatus.too_large:
            log.warning("document %s is beyond the scanner's limits: not scanned", document.id)
    return status


def _withhold(
    backends: Backends,
    index: SearchIndex,
    document: Document,
    status: str,
    before_write: Callable[[], None] = _nothing,
) -> IndexOutcome:
    """Keep a file the scan does not allow out of the index, and say why on its row."""
    before_write()
    index.delete([document.id], versions={document.id: document.index_version})
    reason = _WITHHELD[ScanStatus(status)]
    with backends.db.session() as session:
        row = session.get(Document, document.id)
        if row is not None:
            row.index_status = IndexStatus.failed.value
            row.index_error = reason
            row.indexed_at = utcnow()
            _keep_text(session, row, None)
    return IndexOutcome(document.id, "failed", reason)


def to_indexed(document: Document, body: str) -> IndexedDocument:
    """The plain value the search index stores for a document."""
    start, end = period_bounds(document.period) if document.period else (None, None)
    return IndexedDocument(
        id=document.id,
        title=document.title,
        filename=document.filename,
        category=document.category,
        tags=tuple(document.tags),
        description=document.description,
        body=body,
        township_id=document.township_id,
        township_name=document.township.name,
        visibility=document.visibility,
        department_ids=tuple(org.id for org in document.departments),
        period=document.period,
        period_start=start,
        period_end=end,
        created_at=document.created_at,
        content_type=document.content_type,
        version=document.index_version,
    )


def with_kept_text(document: Document, body: str) -> IndexedDocument:
    """The index entry of a document whose masked text was kept: only the metadata is masked."""
    masked, _ = mask_indexed(to_indexed(document, ""))
    return replace(masked, body=body)


def _keep_text(session: Session, document: Document, body: str | None) -> None:
    """Store or replace the masked text of the document's file; ``None`` forgets it.

    An upsert: a worker and a rebuild may extract the same new document at the same time.
    """
    if body is None:
        session.execute(delete(DocumentText).where(DocumentText.document_id == document.id))
        return
    values = {"sha256": document.sha256, "body": body, "extracted_at": utcnow()}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(DocumentText).values(document_id=document.id, **values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[DocumentText.document_id],
            set_={name: statement.excluded[name] for name in values},
        )
    )


def _link_near_duplicates(session: Session, document: Document, marks: tuple[int, ...]) -> None:
    session.execute(
        delete(DocumentSimilarity).where(
            (DocumentSimilarity.document_id == document.id)
            | (DocumentSimilarity.similar_id == document.id)
        )
    )
    session.execute(delete(FingerprintBand).where(FingerprintBand.document_id == document.id))
    if not marks:
        return
    keys = band_keys(marks)
    session.add_all(
        FingerprintBand(
            document_id=document.id, band=band, key=key, township_id=document.township_id
        )
        for band, key in keys
    )
    shares_a_band = or_(
        *(and_(FingerprintBand.band == band, FingerprintBand.key == key) for band, key in keys)
    )
    candidates = session.execute(
        select(Document.id, Document.fingerprint).where(
            Document.id.in_(
                select(FingerprintBand.document_id).where(
                    FingerprintBand.township_id == document.township_id, shares_a_band
                )
            ),
            Document.id != document.id,
            Document.withdrawn_at.is_(None),
            Document.fingerprint.is_not(None),
        )
    ).all()
    for other_id, other_marks in candidates:
        score = similarity(marks, tuple(other_marks or ()))
        if score >= NEAR_DUPLICATE_THRESHOLD:
            session.add(
                DocumentSimilarity(document_id=document.id, similar_id=other_id, score=score)
            )
            session.add(
                DocumentSimilarity(document_id=other_id, similar_id=document.id, score=score)
            )


def index_document(
    backends: Backends,
    index: SearchIndex,
    *,
    document_id: str,
    limits: ExtractionLimits | None = None,
    extract: bool = False,
    before_write: Callable[[], None] = _nothing,
) -> IndexOutcome:
    """Bring the index entry of one document in line with the database.

    The text kept from its file is used again unless ``extract`` (new extractors, OCR installed).
    ``before_write`` runs before each write to the index (the worker renews its lease there and
    raises ``LeaseLost`` when it is gone, so nothing is written).
    """
    with backends.db.session() as session:
        document = session.get(Document, document_id)
        kept = session.get(DocumentText, document_id)
    if document is None or document.withdrawn_at is not None:
        return _remove(index, document_id, document, before_write)
    scan = needs_scan(document.scan_status, scanner=backends.scanner)
    reuse = kept is not None and kept.sha256 == document.sha256 and not extract
    limits = limits or ExtractionLimits(ocr_max_pages=backends.settings.ocr_max_pages)
    read = _FileOutcome()
    if scan or not reuse:
        read = _read_file(backends, document, limits, scan=scan, extract=not reuse)
    status = _record_scan(backends, document, read.verdict)
    if not may_serve(status, serve_unscanned=backends.settings.serve_unscanned):
        return _withhold(backends, index, document, status, before_write)
    if reuse and kept is not None:
        return index_kept_texts(backends, index, [(document, kept.body)], before_write)[0]

    extracted, failure = read.extracted, read.failure
    text = extracted.text if extracted else ""
    # The index gets masked text only (body and metadata): no snippet can show what it never held.
    indexed, personal = mask_indexed(to_indexed(document, text))
    marks = fingerprint(text)
    before_write()
    # Extraction may have taken minutes: a document withdrawn meanwhile is removed, not written
    # back (Elasticsearch forgets a deletion's version after index.gc_deletes, 60 s).
    with backends.db.session() as session:
        latest = session.get(Document, document_id)
    if latest is None or latest.withdrawn_at is not None:
        return _remove(index, document_id, latest, _nothing)
    index.upsert([indexed])

    with backends.db.session() as session:
        row = session.get(Document, document_id)
        if row is None:
            return IndexOutcome(document_id, "removed")
        row.index_status = (IndexStatus.failed if failure else IndexStatus.indexed).value
        # An indexed document may still say why part of its text is missing (no OCR installed).
        row.index_error = failure or (extracted.remark(limits) if extracted else None)
        row.text_source = extracted.text_source if extracted else TextSource.none.value
        row.indexed_at = utcnow()
        row.contains_personal_data = personal
        row.exif = extracted.exif if extracted else None
        row.fingerprint = list(marks) if marks else None
        _link_near_duplicates(session, row, marks)
        # A failed extraction keeps no text: the next try extracts again.
        _keep_text(session, row, None if failure else indexed.body)
    status_name = "failed" if failure else "indexed"
    return IndexOutcome(document_id, status_name, failure)


def _remove(
    index: SearchIndex,
    document_id: str,
    document: Document | None,
    before_write: Callable[[], None],
) -> IndexOutcome:
    """Take a withdrawn (or deleted) document out of the index, at its version when it has one."""
    before_write()
    versions = {document_id: document.index_version} if document is not None else None
    index.delete([document_id], versions=versions)
    return IndexOutcome(document_id, "removed")


def index_kept_texts(
    backends: Backends,
    index: SearchIndex,
    documents: list[tuple[Document, str]],
    before_write: Callable[[], None] = _nothing,
) -> list[IndexOutcome]:
    """Write live documents with their kept texts in one bulk request, without extracting.

    Status, text source, fingerprint and EXIF stay what the extraction found.
    """
    if not documents:
        return []
    before_write()
    index.upsert([with_kept_text(document, body) for document, body in documents])
    ids = [document.id for document, _ in documents]
    with backends.db.session() as session:
        session.execute(update(Document).where(Document.id.in_(ids)).values(indexed_at=utcnow()))
    outcomes = []
    for document, _ in documents:
        failed = document.index_status == IndexStatus.failed.value
        reason = document.index_error if failed else None
        outcomes.append(IndexOutcome(document.id, "failed" if failed else "indexed", reason))
    return outcomes


def mark_failed(backends: Backends, *, document_id: str, reason: str) -> None:
    """Give up on a document after repeated backend failures, saying why."""
    with backends.db.session() as session:
        row = session.get(Document, document_id)
        if row is not None:
            row.index_status = IndexStatus.failed.value
            row.index_error = reason[:500]
