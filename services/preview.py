"""Previews: a document's content shown inside the page instead of saved — PDFs and common images
as their bytes (``preview``), plain-text files as the start of their decoded text
(``preview_text``).

A preview is a download by another name: the same people may have it, and it is audited apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.access import Principal
from services.audit import AuditAction, Outcome
from services.backends import Backends
from services.documents import (
    actor_of,
    content_disposition,
    load_visible,
    may_download,
    release_bytes,
)
from services.errors import Forbidden, UnsupportedType
from services.models import Document

__all__ = [
    "PREVIEW_TYPES",
    "TEXT_PREVIEW_BYTES",
    "TEXT_PREVIEW_TYPES",
    "TextPreview",
    "can_preview_text",
    "can_preview_type",
    "inline_disposition",
    "preview",
    "preview_text",
]

# What browsers show safely by themselves (images) or PDF.js draws on a canvas. HEIC is missing on
# purpose: most browsers cannot show it, so such a photo is only offered for download.
PREVIEW_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "image/gif", "image/webp"})
# Plain text, shown in the document's page as text (escaped), decoded on the server: a file from a
# Chinese Windows is GB18030 without any marker, which a browser shown the bytes would garble.
TEXT_PREVIEW_TYPES = frozenset({"text/plain", "text/csv", "text/markdown"})
# How much of a text file the page shows; the rest is for the download.
TEXT_PREVIEW_BYTES = 200 * 1024


@dataclass(frozen=True)
class TextPreview:
    """The start of a text file, decoded; ``truncated`` when the file goes on."""

    text: str
    truncated: bool


def can_preview_type(content_type: str) -> bool:
    """Can a document of this type be shown in the page by the browser or PDF.js?"""
    return content_type in PREVIEW_TYPES


def can_preview_text(content_type: str) -> bool:
    """Is a document of this type shown in the page as text?"""
    return content_type in TEXT_PREVIEW_TYPES


def _release(
    backends: Backends,
    *,
    principal: Principal,
    document_id: str,
    ip: str | None,
    types: frozenset[str],
) -> tuple[Document, Iterator[bytes]]:
    """The checks every preview passes, each refusal audited as ``preview``; then the bytes."""
    actor = actor_of(principal, ip)
    document = load_visible(
        backends, principal=principal, document_id=document_id, action=AuditAction.preview, ip=ip
    )

    def refuse(outcome: Outcome, reason: str) -> None:
        backends.audit.record(
            actor=actor,
            action=AuditAction.preview,
            outcome=outcome,
            document_id=document.id,
            details={"reason": reason, "content_type": document.content_type},
        )

    if not may_download(backends, principal=principal, document=document):
        refuse(Outcome.denied, "no_download_right")
        raise Forbidden("无权查看此文档的内容", code="download_not_allowed")
    if document.content_type not in types:
        refuse(Outcome.denied, "unsupported_type")
        raise UnsupportedType("此类文件不能在页面中预览，请下载后查看", code="preview_unsupported")
    return document, release_bytes(
        backends, actor=actor, document=document, action=AuditAction.preview
    )


def preview(
    backends: Backends, *, principal: Principal, document_id: str, ip: str | None
) -> tuple[Document, Iterator[bytes]]:
    """A document and its bytes to show in the page, for those who may download it."""
    return _release(
        backends, principal=principal, document_id=document_id, ip=ip, types=PREVIEW_TYPES
    )


def preview_text(
    backends: Backends,
    *,
    principal: Principal,
    document_id: str,
    ip: str | None,
    limit: int = TEXT_PREVIEW_BYTES,
) -> TextPreview:
    """The first ``limit`` bytes of a text file, decoded as the indexer decodes it (BOM, UTF-8,
    GB18030, then a guess), for those who may download it; audited as a preview."""
    # Here, not at the top: the decoder brings charset-normalizer, which the API process
    # otherwise loads only when a text file is shown.
    from indexer.extractors._text import decode_text

    _document, chunks = _release(
        backends, principal=principal, document_id=document_id, ip=ip, types=TEXT_PREVIEW_TYPES
    )
    data = bytearray()
    truncated = False
    try:
        for chunk in chunks:
            data += chunk
            if len(data) > limit:
                truncated = True
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    text = decode_text(bytes(data[:limit]), complete=not truncated)
    return TextPreview(text=text, truncated=truncated)


def inline_disposition(filename: str) -> str:
    """``inline`` with the same file names as a download's ``attachment`` header."""
    return "inline" + content_disposition(filename).removeprefix("attachment")
