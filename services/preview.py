"""Previews: a document's bytes shown inside the page (PDFs and common images) instead of saved.

A preview is a download by another name: the same people may have it, and it is audited apart.
"""

from __future__ import annotations

from collections.abc import Iterator

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

__all__ = ["PREVIEW_TYPES", "can_preview_type", "inline_disposition", "preview"]

# What browsers show safely by themselves (images) or PDF.js draws on a canvas. HEIC is missing on
# purpose: most browsers cannot show it, so such a photo is only offered for download.
PREVIEW_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "image/gif", "image/webp"})


def can_preview_type(content_type: str) -> bool:
    """Can a document of this type be shown in the page?"""
    return content_type in PREVIEW_TYPES


def preview(
    backends: Backends, *, principal: Principal, document_id: str, ip: str | None
) -> tuple[Document, Iterator[bytes]]:
    """A document and its bytes to show in the page, for those who may download it."""
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
    if not can_preview_type(document.content_type):
        refuse(Outcome.denied, "unsupported_type")
        raise UnsupportedType("此类文件不能在页面中预览，请下载后查看", code="preview_unsupported")
    return document, release_bytes(
        backends, actor=actor, document=document, action=AuditAction.preview
    )


def inline_disposition(filename: str) -> str:
    """``inline`` with the same file names as a download's ``attachment`` header."""
    return "inline" + content_disposition(filename).removeprefix("attachment")
