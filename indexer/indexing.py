"""Index one document: fetch its blob, extract, mask personal data, fingerprint, link near-
duplicates, write it to the search index, and record the outcome on the document row.

Idempotent by document id: running it twice leaves the same index entry and the same row.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from indexer.extractors import (
    Extracted,
    ExtractionContext,
    ExtractionFailed,
    ExtractionLimits,
    extract,
)
from indexer.similarity import band_keys, fingerprint, similarity
from services.backends import Backends
from services.metadata import period_bounds
from services.models import (
    Document,
    DocumentSimilarity,
    FingerprintBand,
    IndexStatus,
    TextSource,
    utcnow,
)
from services.personal_data import mask_indexed
from services.search import IndexedDocument, SearchIndex

NEAR_DUPLICATE_THRESHOLD = 0.8

log = logging.getLogger("materials.indexer")


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


def _extract(
    backends: Backends, document: Document, limits: ExtractionLimits
) -> tuple[Extracted | None, str | None]:
    backends.settings.spool_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=backends.settings.spool_dir) as tmp:
        path = _fetch(backends, document, Path(tmp))
        context = ExtractionContext(
            path=path, content_type=document.content_type, filename=document.filename, limits=limits
        )
        try:
            extracted = extract(context)
        except ExtractionFailed as failure:
            log.warning(
                "extracting document %s (%s) failed: %s: %s",
                document.id,
                document.content_type,
                failure.code,
                failure.reason,
            )
            return None, failure.reason
    if "ocr_unavailable" in extracted.notes:
        log.warning(
            "document %s (%s) was not OCRed: Tesseract with chi_sim is not installed",
            document.id,
            document.content_type,
        )
    return extracted, None


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
) -> IndexOutcome:
    """Bring the index entry of one document in line with the database."""
    with backends.db.session() as session:
        document = session.get(Document, document_id)
    if document is None or document.withdrawn_at is not None:
        index.delete([document_id])
        return IndexOutcome(document_id, "removed")

    limits = limits or ExtractionLimits(ocr_max_pages=backends.settings.ocr_max_pages)
    extracted, failure = _extract(backends, document, limits)
    text = extracted.text if extracted else ""
    # The index gets masked text only (body and metadata): no snippet can show what it never held.
    indexed, personal = mask_indexed(to_indexed(document, text))
    marks = fingerprint(text)
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
    status = "failed" if failure else "indexed"
    return IndexOutcome(document_id, status, failure)


def mark_failed(backends: Backends, *, document_id: str, reason: str) -> None:
    """Give up on a document after repeated backend failures, saying why."""
    with backends.db.session() as session:
        row = session.get(Document, document_id)
        if row is not None:
            row.index_status = IndexStatus.failed.value
            row.index_error = reason[:500]
