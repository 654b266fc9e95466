"""Documents: upload once, read, download, receipts, lookup by content, list and withdraw.

Every read and every refusal is written to the audit log; a refused document answers NotFound.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError

from services import access, orgs, slots
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.audit_sequencer import wait_for_sequence
from services.audit_tree import Anchor, anchor
from services.backends import Backends
from services.blobs import BlobWriter
from services.errors import (
    BackendUnavailable,
    Conflict,
    Forbidden,
    InvalidField,
    MaterialsError,
    NotFound,
)
from services.filetypes import DetectedType, detect_file_type, detect_type_of_head
from services.metadata import (
    CATALOG_ITEM_FIELD,
    SHA256_FIELD,
    parse_metadata,
    parse_sha256,
    periods_inside,
)
from services.models import (
    Document,
    DocumentDepartment,
    DocumentSimilarity,
    IndexAction,
    IndexStatus,
    Org,
    OutboxEvent,
    ScanStatus,
    utcnow,
)
from services.scanning import may_serve

log = logging.getLogger("materials.documents")

# Why a file is not served, by its scan status (what ``may_serve`` refuses).
_NOT_SERVED = {
    ScanStatus.pending: "文件正在进行病毒扫描，扫描通过后才能下载，请稍后再试",
    ScanStatus.infected: "文件含有病毒，已被隔离，不能下载",
    ScanStatus.too_large: "文件超出病毒扫描的大小限制，未经扫描，按本系统的设置不能下载",
    ScanStatus.unscanned: "文件未经病毒扫描，按本系统的设置不能下载",
}


@dataclass(frozen=True)
class IncomingFile:
    """An upload that has arrived: where its bytes are, and what the client said about them."""

    # The file spooled to disk; None when it streamed into the blob store (``writer``) and its
    # first bytes (``head``) decide its type.
    path: Path | None
    size: int
    sha256: str
    filename: str
    declared_type: str | None
    # The same bytes already streaming into the blob store, when the client declared their sha256.
    writer: BlobWriter | None = None
    head: bytes = b""


@dataclass(frozen=True)
class UploadResult:
    document: Document
    duplicate: bool
    # The requests for the catalog slot the upload filed, which it answered.
    answered_requests: tuple[int, ...] = ()


@dataclass(frozen=True)
class Receipt:
    document_id: str
    sha256: str
    township: Org
    uploaded_by: str
    received_at: Any
    # The upload event's anchor in the signed log; None while it waits for the sequencer.
    anchor: Anchor | None

    @property
    def audit_seq(self) -> int | None:
        """The upload event's sequence number in the log (None while pending)."""
        return self.anchor.event.seq if self.anchor else None

    @property
    def audit_hash(self) -> str | None:
        """The upload event's leaf hash, hex (None while pending)."""
        leaf = self.anchor.event.leaf if self.anchor else None
        return leaf.leaf_hash.hex() if leaf else None


def actor_of(principal: Principal, ip: str | None) -> Actor:
    return Actor(
        username=principal.username, org=principal.org_name, role=principal.role.value, ip=ip
    )


def _deny(
    backends: Backends, *, actor: Actor, action: AuditAction, document_id: str | None, reason: str
) -> NotFound:
    backends.audit.record(
        actor=actor,
        action=action,
        outcome=Outcome.denied,
        document_id=document_id,
        details={"reason": reason},
    )
    return NotFound("文档不存在", code="document_not_found")


class DocumentWithdrawn(NotFound):
    """The refusal of a withdrawn document to a reader who could read it before: the API
    answers the same 404 as for any document the caller may not see (``document_not_found``);
    a page may say that the township withdrew it, and when."""

    def __init__(self, withdrawn_at: datetime) -> None:
        super().__init__("文档不存在", code="document_not_found")
        self.withdrawn_at = withdrawn_at


def ensure_can_upload(backends: Backends, *, principal: Principal, ip: str | None) -> None:
    """Refuse (and audit) an upload by anyone but township staff, before reading the body."""
    if not access.can_upload(principal):
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=AuditAction.upload,
            outcome=Outcome.denied,
            details={"reason": "not_uploader"},
        )
        raise Forbidden("只有乡镇工作人员可以上传材料", code="upload_not_allowed")


def upload(
    backends: Backends,
    *,
    principal: Principal,
    incoming: IncomingFile,
    fields: dict[str, str],
    ip: str | None,
) -> UploadResult:
    """Store a township's material once; identical bytes already held by it are a duplicate."""
    ensure_can_upload(backends, principal=principal, ip=ip)
    actor = actor_of(principal, ip)
    try:
        with backends.db.session() as session:
            township = session.get(Org, principal.org_id)
            assert township is not None
            catalog_item = None
            if fields.get(CATALOG_ITEM_FIELD, "").strip():
                catalog_item = slots.item_for_slot(
                    session,
                    ref=fields[CATALOG_ITEM_FIELD].strip(),
                    township_id=township.id,
                    period=fields.get("period", "").strip() or None,
                    field=CATALOG_ITEM_FIELD,
                )
                fields = slots.defaults_for(catalog_item, fields)
            metadata = parse_metadata(
                session, fields=fields, filename=incoming.filename, township=township
            )
            catalog_item_id = catalog_item.id if catalog_item is not None else None
        if incoming.size == 0:
            raise InvalidField("file", "文件为空", code="empty_file")
        _check_declared_sha256(fields.get(SHA256_FIELD), incoming.sha256)
        detected = _detect_type(
            incoming,
            filename=metadata.filename,
            extra_allowed=backends.settings.allowed_extra_types,
        )
    except MaterialsError as exc:
        backends.audit.record(
            actor=actor,
            action=AuditAction.upload,
            outcome=Outcome.denied,
            details={"reason": exc.error_code, "filename": incoming.filename},
        )
        raise

    existing = _live_duplicate(backends, township_id=principal.org_id, sha256=incoming.sha256)
    if existing is not None:
        return _record_duplicate(backends, actor=actor, document=existing)

    # The bytes are durable before any row points at them; a crash here leaves an orphan blob
    # that the sweeper removes, never a row without its blob.
    if incoming.writer is None or not incoming.writer.commit():
        if incoming.path is None:
            # Not reached: the reader spools whenever the writer may drop the bytes (skipping).
            raise BackendUnavailable("object store", "文件内容未能存入，请重新上传")
        backends.blobs.put(sha256=incoming.sha256, source=incoming.path)
    try:
        with backends.db.session() as session:
            document = Document(
                title=metadata.title,
                filename=metadata.filename,
                content_type=detected.mime,
                size=incoming.size,
                sha256=incoming.sha256,
                category=metadata.category,
                period=metadata.period,
                tags=metadata.tags,
                description=metadata.description,
                visibility=metadata.visibility.value,
                township_id=principal.org_id,
                uploaded_by_id=principal.user_id,
                catalog_item_id=catalog_item_id,
                scan_status=ScanStatus.pending if backends.scanner else ScanStatus.unscanned,
            )
            session.add(document)
            session.flush()
            for department in metadata.departments:
                session.add(DocumentDepartment(document_id=document.id, org_id=department.id))
            event = backends.audit.append(
                session,
                actor=actor,
                action=AuditAction.upload,
                outcome=Outcome.allowed,
                document_id=document.id,
                details={
                    "sha256": incoming.sha256,
                    "size": incoming.size,
                    "filename": metadata.filename,
                    "content_type": detected.mime,
                    **({"catalog_item": catalog_item_id} if catalog_item_id else {}),
                },
            )
            document.receipt_event_id = event.id
            # The upload happened when the log says it did (the figures count it from there).
            document.created_at = event.at
            # Same transaction: the index cannot miss a committed document.
            session.add(OutboxEvent(document_id=document.id, action=IndexAction.upsert.value))
            session.flush()
            document_id = document.id
    except IntegrityError:
        # The same township sent the same bytes at the same moment: the other upload won.
        existing = _live_duplicate(backends, township_id=principal.org_id, sha256=incoming.sha256)
        if existing is None:
            raise
        return _record_duplicate(backends, actor=actor, document=existing)
    if catalog_item_id is not None:
        # Here, not at the top: the requests module builds on this one.
        from services.requests import answer_with_filed_slot

        answered = answer_with_filed_slot(
            backends, principal=principal, document_id=document_id, ip=ip
        )
        return UploadResult(
            load(backends, document_id=document_id),
            duplicate=False,
            answered_requests=tuple(answered),
        )
    return UploadResult(load(backends, document_id=document_id), duplicate=False)


def _detect_type(
    incoming: IncomingFile, *, filename: str, extra_allowed: frozenset[str]
) -> DetectedType:
    """The upload's type, from the spooled file or, when it was not spooled, from its head."""
    if incoming.path is not None:
        return detect_file_type(
            incoming.path,
            filename=filename,
            declared_type=incoming.declared_type,
            extra_allowed=extra_allowed,
        )
    return detect_type_of_head(
        incoming.head,
        size=incoming.size,
        filename=filename,
        declared_type=incoming.declared_type,
        extra_allowed=extra_allowed,
    )


def _check_declared_sha256(declared: str | None, actual: str) -> None:
    """The optional ``sha256`` field must name the bytes that arrived."""
    if declared is not None and parse_sha256(declared) != actual:
        raise InvalidField(
            SHA256_FIELD, "文件内容与声明的 sha256 不符，可能在传输中损坏", code="sha256_mismatch"
        )


def _live_duplicate(backends: Backends, *, township_id: int, sha256: str) -> Document | None:
    with backends.db.session() as session:
        return session.scalar(
            select(Document).where(
                Document.township_id == township_id,
                Document.sha256 == sha256,
                Document.withdrawn_at.is_(None),
            )
        )


def _record_duplicate(backends: Backends, *, actor: Actor, document: Document) -> UploadResult:
    backends.audit.record(
        actor=actor,
        action=AuditAction.upload,
        outcome=Outcome.allowed,
        document_id=document.id,
        details={"duplicate": True},
    )
    return UploadResult(document, duplicate=True)


def load(backends: Backends, *, document_id: str) -> Document:
    """A document by id, with no permission check (callers check)."""
    with backends.db.session() as session:
        document = session.get(Document, document_id)
        if document is None:
            raise NotFound("文档不存在", code="document_not_found")
        return document


def load_visible(
    backends: Backends,
    *,
    principal: Principal,
    document_id: str,
    action: AuditAction,
    ip: str | None,
    rule: Callable[[Principal, Document], bool] = access.can_see,
) -> Document:
    """A document the access rule lets the caller act on; otherwise the refusal is audited and
    the answer is the same NotFound as for a document that does not exist."""
    actor = actor_of(principal, ip)
    try:
        document = load(backends, document_id=document_id)
    except NotFound:
        raise _deny(
            backends, actor=actor, action=action, document_id=document_id[:64], reason="not_found"
        ) from None
    if not rule(principal, document):
        if rule is access.can_see and access.saw_before_withdrawal(principal, document):
            _deny(backends, actor=actor, action=action, document_id=document.id, reason="withdrawn")
            assert document.withdrawn_at is not None
            raise DocumentWithdrawn(document.withdrawn_at)
        raise _deny(
            backends, actor=actor, action=action, document_id=document_id, reason="not_visible"
        )
    return document


def view(backends: Backends, *, principal: Principal, document_id: str, ip: str | None) -> Document:
    """A document's metadata, for those who may see it."""
    document = load_visible(
        backends, principal=principal, document_id=document_id, action=AuditAction.view, ip=ip
    )
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.view,
        outcome=Outcome.allowed,
        document_id=document.id,
    )
    return document


def similar_documents(
    backends: Backends, *, principal: Principal, document: Document
) -> list[tuple[Document, float]]:
    """The near-duplicates of a document that the caller may see, most similar first."""
    with backends.db.session() as session:
        rows = session.execute(
            select(Document, DocumentSimilarity.score)
            .join(DocumentSimilarity, DocumentSimilarity.similar_id == Document.id)
            .where(DocumentSimilarity.document_id == document.id)
            .order_by(DocumentSimilarity.score.desc())
        ).all()
    return [(other, score) for other, score in rows if access.can_see(principal, other)]


def _title_key(title: str) -> str:
    """A title as a list shows it to the eye: width (NFKC), case and spaces do not count."""
    return "".join(unicodedata.normalize("NFKC", title).casefold().split())


def same_title_and_period(
    backends: Backends, *, principal: Principal, document: Document
) -> list[Document]:
    """The township's other live documents with the same title and the same period (both
    without one counts as the same), that the caller may see, oldest first.

    Lists show such documents as identical lines, whatever their bytes: the pages name them
    so that the township can withdraw a second upload of one material.
    """
    if document.withdrawn_at is not None:
        return []
    same_period = (
        Document.period.is_(None) if document.period is None else Document.period == document.period
    )
    key = _title_key(document.title)
    with backends.db.session() as session:
        # Titles only: a township's documents of one period (or of none) can be many, and every
        # document page and upload asks; the few that match are then loaded whole.
        candidates = session.execute(
            select(Document.id, Document.title).where(
                Document.township_id == document.township_id,
                Document.id != document.id,
                Document.withdrawn_at.is_(None),
                same_period,
            )
        )
        matching = [row.id for row in candidates if _title_key(row.title) == key]
        if not matching:
            return []
        others = session.scalars(
            select(Document)
            .where(Document.id.in_(matching))
            .order_by(Document.created_at, Document.id)
        ).all()
    return [other for other in others if access.can_see(principal, other)]


def download(
    backends: Backends, *, principal: Principal, document_id: str, ip: str | None
) -> tuple[Document, Iterator[bytes]]:
    """A document and its bytes, for those who may download it."""
    actor = actor_of(principal, ip)
    document = load_visible(
        backends, principal=principal, document_id=document_id, action=AuditAction.download, ip=ip
    )
    if not may_download(backends, principal=principal, document=document):
        backends.audit.record(
            actor=actor,
            action=AuditAction.download,
            outcome=Outcome.denied,
            document_id=document.id,
            details={"reason": "no_download_right"},
        )
        raise Forbidden("无权下载此文档", code="download_not_allowed")
    return document, release_bytes(
        backends, actor=actor, document=document, action=AuditAction.download
    )


def release_bytes(
    backends: Backends, *, actor: Actor, document: Document, action: AuditAction
) -> Iterator[bytes]:
    """A permitted read of a document's bytes (download or preview): audited as allowed, or as
    an error when the blob is missing. Callers have checked ``may_download``.

    A file is served only once the virus scan allows it (``scanning.may_serve``).
    """
    if not file_served(backends, document):
        backends.audit.record(
            actor=actor,
            action=action,
            outcome=Outcome.denied,
            document_id=document.id,
            details={"reason": f"scan_{document.scan_status}"},
        )
        raise Conflict(not_served_reason(document), code=f"scan_{document.scan_status}")
    if backends.blobs.stat(document.sha256) is None:
        backends.audit.record(
            actor=actor,
            action=action,
            outcome=Outcome.error,
            document_id=document.id,
            details={"reason": "blob_missing"},
        )
        raise NotFound("文档内容缺失，请联系管理员", code="blob_missing")
    backends.audit.record(
        actor=actor,
        action=action,
        outcome=Outcome.allowed,
        document_id=document.id,
        details={"sha256": document.sha256},
    )
    return backends.blobs.read_chunks(document.sha256)


def file_served(backends: Backends, document: Document) -> bool:
    """Does the virus scan let the file be served (downloads and previews)?"""
    return may_serve(document.scan_status, serve_unscanned=backends.settings.serve_unscanned)


def not_served_reason(document: Document) -> str:
    """Why the file of a document ``file_served`` refuses is not served, for people."""
    return _NOT_SERVED[ScanStatus(document.scan_status)]


def may_download(backends: Backends, *, principal: Principal, document: Document) -> bool:
    """Would ``download`` hand this caller the bytes? Asks the policy, records nothing."""
    if not access.can_see(principal, document):
        return False
    with backends.db.session() as session:
        granted = (
            orgs.granted_document_ids(session, user_id=principal.user_id, now=utcnow())
            if access.downloads_by_grant(principal)
            else set()
        )
    return access.can_download(principal, document, granted_document_ids=granted)


def download_url(backends: Backends, document: Document) -> str | None:
    """A short-lived object-store URL serving the document as an attachment, or None when
    presigned downloads are off or the store cannot make one (the caller streams instead).

    Only after ``download`` has allowed (and audited) the download."""
    settings = backends.settings
    if not settings.s3_presigned_downloads:
        return None
    return backends.blobs.download_url(
        document.sha256,
        filename_header=content_disposition(document.filename),
        content_type=document.content_type,
        expires_seconds=settings.download_url_seconds,
    )


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name as RFC 6266 ``filename*``."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def receipt(
    backends: Backends, *, principal: Principal, document_id: str, ip: str | None
) -> Receipt:
    """Proof of what a township submitted and when, anchored in the signed audit log."""
    document = load_visible(
        backends, principal=principal, document_id=document_id, action=AuditAction.receipt, ip=ip
    )
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.receipt,
        outcome=Outcome.allowed,
        document_id=document.id,
    )
    assert document.receipt_event_id is not None
    wait_for_sequence(
        backends.db,
        document.receipt_event_id,
        timeout=backends.settings.audit_receipt_wait_seconds,
    )
    with backends.db.session() as session:
        found = anchor(session, document.receipt_event_id)
    return Receipt(
        document_id=document.id,
        sha256=document.sha256,
        township=document.township,
        uploaded_by=document.uploaded_by.username,
        received_at=document.created_at,
        anchor=found,
    )


def lookup(backends: Backends, *, principal: Principal, sha256: str, ip: str | None) -> Document:
    """The caller's township's live document with these bytes; NotFound when there is none."""
    digest = parse_sha256(sha256)
    document = _live_duplicate(backends, township_id=principal.org_id, sha256=digest)
    actor = actor_of(principal, ip)
    if document is None or not access.can_see(principal, document):
        backends.audit.record(
            actor=actor,
            action=AuditAction.lookup,
            outcome=Outcome.allowed,
            details={"sha256": digest, "found": False},
        )
        raise NotFound("本乡镇尚未提交相同内容的材料", code="document_not_found")
    backends.audit.record(
        actor=actor,
        action=AuditAction.lookup,
        outcome=Outcome.allowed,
        document_id=document.id,
        details={"sha256": digest, "found": True},
    )
    return document


@dataclass(frozen=True)
class DocumentPage:
    total: int
    documents: list[Document]


# How a listing may be ordered: newest first, or by title or category (then newest first).
LIST_SORTS = ("date", "title", "category")


def _period_clause(period: str) -> ColumnElement[bool]:
    """Documents of this period or of a shorter one inside it (2026 also finds 2026-Q3)."""
    exact, prefixes = periods_inside(period)
    return or_(Document.period.in_(exact), *(Document.period.startswith(p) for p in prefixes))


def list_visible(
    backends: Backends,
    *,
    principal: Principal,
    township: str | None,
    category: str | None,
    page: int,
    size: int,
    ip: str | None,
    period: str | None = None,
    status: str | None = None,
    sort: str = "date",
    withdrawn: bool = False,
) -> DocumentPage:
    """The live documents the caller may see (or, ``withdrawn``, the withdrawn ones), newest
    first (or by title or category), optionally filtered by township, category, period and
    index status."""
    if sort not in LIST_SORTS:
        raise InvalidField("sort", "排序方式须为 date、title 或 category", code="invalid_sort")
    if status and status not in {s.value for s in IndexStatus}:
        raise InvalidField(
            "status", "索引状态须为 pending、indexed 或 failed", code="invalid_status"
        )
    period_clause = _period_clause(period) if period else None
    with backends.db.session() as session:
        live = Document.withdrawn_at.is_not(None) if withdrawn else Document.withdrawn_at.is_(None)
        query = select(Document).where(live, access.visible_clause(principal))
        if township:
            org = orgs.find_org(session, township)
            query = query.where(Document.township_id == (org.id if org else -1))
        if category:
            query = query.where(Document.category == category)
        if period_clause is not None:
            query = query.where(period_clause)
        if status:
            query = query.where(Document.index_status == status)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        newest_first = (Document.created_at.desc(), Document.id)
        order = {
            "date": newest_first,
            "title": (Document.title, *newest_first),
            "category": (Document.category, *newest_first),
        }[sort]
        documents = list(
            session.scalars(query.order_by(*order).offset((page - 1) * size).limit(size))
        )
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.list,
        outcome=Outcome.allowed,
        details={
            "total": total,
            "page": page,
            "document_ids": [d.id for d in documents],
            **({"withdrawn": True} if withdrawn else {}),
        },
    )
    return DocumentPage(total=total, documents=documents)


def categories_in_use(backends: Backends, *, principal: Principal) -> list[str]:
    """The categories of the live documents the caller may see, for filtering by one."""
    with backends.db.session() as session:
        names = session.scalars(
            select(Document.category)
            .where(Document.withdrawn_at.is_(None), access.visible_clause(principal))
            .distinct()
        )
        return sorted(names)


def _leave_index_now(backends: Backends, document_id: str, version: int) -> None:
    """Take a just-withdrawn document out of the search index before answering, so that no
    later search counts it in totals or facets. The outbox event written with the withdrawal
    does the same again (idempotently) if the index cannot be reached now."""
    try:
        backends.index.delete([document_id], versions={document_id: version})
    except Exception as exc:  # the withdrawal has committed; the outbox event repeats this
        log.warning(
            "withdrawn document %s stays in the search index until the worker runs: %s",
            document_id,
            exc,
        )


def withdraw(
    backends: Backends, *, principal: Principal, document_id: str, ip: str | None
) -> Document:
    """Withdraw a document: it leaves listings and search; its bytes and audit trail stay."""
    actor = actor_of(principal, ip)
    with backends.db.session() as session:
        document = session.get(Document, document_id)
        allowed = document is not None and access.can_withdraw(principal, document)
        visible = document is not None and access.can_find_to_withdraw(principal, document)
        found = document if visible else None
        if found is not None and allowed and found.withdrawn_at is None:
            found.withdrawn_at = utcnow()
            found.withdrawn_by_id = principal.user_id
            found.index_version += 1  # the index refuses older writes from now on
            session.add(OutboxEvent(document_id=found.id, action=IndexAction.delete.value))
            backends.audit.append(
                session,
                actor=actor,
                action=AuditAction.withdraw,
                outcome=Outcome.allowed,
                document_id=found.id,
            )
            session.flush()
            withdrawn = found
        else:
            withdrawn = None
    if withdrawn is not None:
        _leave_index_now(backends, withdrawn.id, withdrawn.index_version)
        return withdrawn
    if found is None:
        raise _deny(
            backends,
            actor=actor,
            action=AuditAction.withdraw,
            document_id=document_id[:64],
            reason="not_visible",
        )
    if not allowed:
        backends.audit.record(
            actor=actor,
            action=AuditAction.withdraw,
            outcome=Outcome.denied,
            document_id=found.id,
            details={"reason": "not_owner"},
        )
        raise Forbidden("只有本乡镇或管理员可以撤回此文档", code="withdraw_not_allowed")
    backends.audit.record(
        actor=actor,
        action=AuditAction.withdraw,
        outcome=Outcome.denied,
        document_id=found.id,
        details={"reason": "already_withdrawn"},
    )
    raise Conflict("文档已撤回", code="already_withdrawn")
