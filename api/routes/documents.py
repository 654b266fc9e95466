"""Document routes: upload, list, lookup, metadata, download, receipt, withdraw."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import BackendsDep, ClientIP, CurrentUser, PageNumber
from api.schemas import DocumentListOut, DocumentOut, ReceiptOut
from api.uploads import read_upload
from services import documents
from services.documents import IncomingFile, content_disposition

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])


@router.post("", response_model=DocumentOut, status_code=201)
async def upload_document(
    request: Request, response: Response, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> DocumentOut:
    """Upload a material once (multipart: file, title, category, period, tags, visibility …)."""
    await run_in_threadpool(documents.ensure_can_upload, backends, principal=user, ip=ip)
    spooled = await read_upload(
        request,
        max_bytes=backends.settings.max_upload_bytes,
        spool_dir=backends.settings.spool_dir,
        open_writer=backends.blobs.open_writer,
    )
    try:
        incoming = IncomingFile(
            path=spooled.path,
            size=spooled.size,
            sha256=spooled.sha256,
            filename=spooled.filename,
            declared_type=spooled.declared_type,
            writer=spooled.writer,
        )
        result = await run_in_threadpool(
            documents.upload,
            backends,
            principal=user,
            incoming=incoming,
            fields=spooled.fields,
            ip=ip,
        )
    finally:
        spooled.cleanup()
    if result.duplicate:
        response.status_code = 200
    return DocumentOut.of(result.document, duplicate=result.duplicate)


@router.get("", response_model=DocumentListOut)
def list_documents(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    page: PageNumber = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 20,
    township: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=50)] = None,
) -> DocumentListOut:
    """The live documents the caller may see, newest first."""
    found = documents.list_visible(
        backends,
        principal=user,
        township=township,
        category=category,
        page=page,
        size=size,
        ip=ip,
    )
    return DocumentListOut(
        total=found.total,
        page=page,
        size=size,
        documents=[DocumentOut.of(d) for d in found.documents],
    )


@router.get("/lookup", response_model=DocumentOut)
def lookup_document(
    sha256: Annotated[str, Query(min_length=1, max_length=128)],
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
) -> DocumentOut:
    """The caller's township's live document with these bytes, or 404."""
    return DocumentOut.of(documents.lookup(backends, principal=user, sha256=sha256, ip=ip))


@router.get("/{document_id}", response_model=DocumentOut)
def get_document(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> DocumentOut:
    document = documents.view(backends, principal=user, document_id=document_id, ip=ip)
    similar = documents.similar_documents(backends, principal=user, document=document)
    return DocumentOut.of(document, similar=similar)


@router.get("/{document_id}/download", response_model=None)
def download_document(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> StreamingResponse | RedirectResponse:
    """The document's bytes as an attachment, under its original (Chinese) file name, or a 302
    to a short-lived presigned object-store URL that serves the same."""
    document, chunks = documents.download(backends, principal=user, document_id=document_id, ip=ip)
    url = documents.download_url(backends, document)
    if url is not None:
        return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    return StreamingResponse(
        chunks,
        media_type=document.content_type,
        headers={
            "Content-Disposition": content_disposition(document.filename),
            "Content-Length": str(document.size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "ETag": f'"{document.sha256}"',
        },
    )


@router.get("/{document_id}/receipt", response_model=ReceiptOut)
def get_receipt(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> ReceiptOut:
    """Proof of what was submitted and when: sha256, township, time, audit seq and hash."""
    return ReceiptOut.of(
        documents.receipt(backends, principal=user, document_id=document_id, ip=ip)
    )


@router.delete("/{document_id}", response_model=DocumentOut)
def withdraw_document(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> DocumentOut:
    """Withdraw: the document leaves listings and search; bytes and audit trail stay."""
    return DocumentOut.of(
        documents.withdraw(backends, principal=user, document_id=document_id, ip=ip)
    )
