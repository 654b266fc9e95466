"""Document routes: upload, list, lookup, metadata, download, receipt, usage, withdraw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import BackendsDep, ClientIP, CurrentUser, PageNumber
from api.errors import error_responses
from api.schemas import DocumentListOut, DocumentOut, OrgNameOrId, ReceiptOut, UsageOut
from api.uploads import read_upload
from services import documents, usage
from services.backends import Backends
from services.documents import IncomingFile, content_disposition
from services.metadata import (
    CATALOG_ITEM_FIELD,
    DEFAULT_CATEGORY,
    MAX_CATEGORY,
    MAX_DESCRIPTION,
    MAX_TAG,
    MAX_TAGS,
    MAX_TITLE,
    SHA256_FIELD,
)
from services.models import Document, Visibility

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])

# The upload body is read as a stream (api/uploads.py), so FastAPI cannot see its fields: they are
# declared here for the OpenAPI document and the file field of Swagger UI. The rules are in
# services/metadata.py (KNOWN_FIELDS); tests/api/test_openapi.py keeps the two lists equal.
UPLOAD_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            # OpenAPI 3.0's way and 3.1's: Swagger UI shows a file field for either.
            "format": "binary",
            "contentMediaType": "application/octet-stream",
            "description": "材料文件（必填） / The material's file (required)",
        },
        "title": {
            "type": "string",
            "maxLength": MAX_TITLE,
            "description": "标题，默认为去掉扩展名的文件名 / Title; default: the file name "
            "without its extension",
        },
        "category": {
            "type": "string",
            "maxLength": MAX_CATEGORY,
            "default": DEFAULT_CATEGORY,
            "description": f"类别，默认“{DEFAULT_CATEGORY}”；管理员定义了类别列表时须为其一 / "
            "Category; must be one of the admin-defined list when there is one",
        },
        "period": {
            "type": "string",
            "examples": ["2026-Q3"],
            "description": "期间：2026、2026-Q3、2026-09 或 2026-09-15，也可写作 2026年、"
            "2026年第三季度、2026年9月、2026年9月15日、2026/9/15，保存为标准写法 / "
            "Period: a year, quarter, month or day, stored as 2026, 2026-Q3, 2026-09 or "
            "2026-09-15; the Chinese forms above are accepted too",
        },
        "tags": {
            "type": "string",
            "description": f"标签，以逗号或顿号分隔，最多 {MAX_TAGS} 个，每个不超过 {MAX_TAG} 字 / "
            f"Tags, comma separated (at most {MAX_TAGS}, {MAX_TAG} characters each)",
        },
        "description": {
            "type": "string",
            "maxLength": MAX_DESCRIPTION,
            "description": "说明 / Description",
        },
        "visibility": {
            "type": "string",
            "enum": [visibility.value for visibility in Visibility],
            "default": Visibility.departments.value,
            "description": "可见范围：departments 所有部门（默认）、restricted 指定部门、"
            "private 仅本乡镇 / Who may read it: every department (default), the departments "
            "named in `departments`, or the own township only",
        },
        "departments": {
            "type": "string",
            "description": "visibility=restricted 时可读的部门名称或编号，逗号分隔 / With "
            "visibility=restricted: the departments that may read it, names or ids, comma "
            "separated",
        },
        CATALOG_ITEM_FIELD: {
            "type": "string",
            "description": "可选：材料目录中的编号；材料即填报该目录项本乡镇该期间的报送，"
            "期间须符合报送周期（如季度材料填 2026-Q3） / Optional: a catalog item's id; "
            "the document fills that item's slot for the township and period, which must "
            "fit the item's cycle",
        },
        SHA256_FIELD: {
            "type": "string",
            "description": "可选：文件的 SHA-256（64 位十六进制），与收到的内容不符时拒收 / "
            "Optional: the file's SHA-256 (64 hex digits); the upload is refused when the "
            "bytes that arrive do not match",
        },
    },
}


@router.post(
    "",
    response_model=DocumentOut,
    status_code=201,
    responses={
        200: {
            "model": DocumentOut,
            "description": "本乡镇已有相同内容的材料（duplicate: true） / The township "
            "already holds these bytes (duplicate: true)",
        },
        **error_responses(415),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": UPLOAD_FORM}},
        }
    },
)
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
            head=spooled.head,
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
    request.app.state.metrics.upload_accepted(size=spooled.size, duplicate=result.duplicate)
    same_title: list[Document] = []
    if result.duplicate:
        response.status_code = 200
    else:
        # Different bytes under a title and period the township already used: say so, so that
        # a second upload of one material can be withdrawn.
        same_title = await run_in_threadpool(
            documents.same_title_and_period, backends, principal=user, document=result.document
        )
    # The uploader typed the metadata and holds the file: nothing to hide from them.
    return DocumentOut.of(
        result.document,
        duplicate=result.duplicate,
        same_title=same_title,
        answered_requests=result.answered_requests,
        reveal=True,
    )


@router.get("", response_model=DocumentListOut)
def list_documents(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    page: PageNumber = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 20,
    township: Annotated[OrgNameOrId | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=50)] = None,
    period: Annotated[
        str | None,
        Query(
            max_length=50,
            description="期间，如 2026、2026-Q3、2026年9月；也包括其中更短的期间",
        ),
    ] = None,
    status: Annotated[
        str | None, Query(max_length=20, description="索引状态：pending、indexed 或 failed")
    ] = None,
    sort: Annotated[
        str, Query(max_length=20, description="排序：date（最新在前）、title 或 category")
    ] = "date",
) -> DocumentListOut:
    """The live documents the caller may see, newest first (or by title or category)."""
    found = documents.list_visible(
        backends,
        principal=user,
        township=township,
        category=category,
        page=page,
        size=size,
        ip=ip,
        period=period,
        status=status,
        sort=sort,
    )
    return DocumentListOut(
        total=found.total,
        page=page,
        size=size,
        documents=[DocumentOut.of(d) for d in found.documents],
    )


@router.get("/lookup", response_model=DocumentOut, responses=error_responses(404))
def lookup_document(
    sha256: Annotated[str, Query(min_length=1, max_length=128)],
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
) -> DocumentOut:
    """The caller's township's live document with these bytes, or 404."""
    document = documents.lookup(backends, principal=user, sha256=sha256, ip=ip)
    return DocumentOut.of(document, reveal=True)  # the caller's own township's document


@router.get("/{document_id}", response_model=DocumentOut, responses=error_responses(404))
def get_document(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> DocumentOut:
    document = documents.view(backends, principal=user, document_id=document_id, ip=ip)
    similar = documents.similar_documents(backends, principal=user, document=document)
    same_title = documents.same_title_and_period(backends, principal=user, document=document)
    # Metadata as typed only for those who may download the file, which holds the same data.
    reveal = documents.may_download(backends, principal=user, document=document)
    return DocumentOut.of(document, similar=similar, same_title=same_title, reveal=reveal)


@router.get(
    "/{document_id}/download",
    response_model=None,
    # The file's own type; StreamingResponse declares none, so the 200 below is the only one.
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "文件内容（附件） / The file's bytes, as an attachment",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        302: {
            "description": "短时有效的对象存储下载地址 / A short-lived presigned object-store URL"
        },
        # 409: the virus scan has not passed it (pending, infected, too large to scan).
        **error_responses(404, 409),
    },
)
def download_document(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> StreamingResponse | RedirectResponse:
    """The document's bytes as an attachment, under its original (Chinese) file name, or a 302
    to a short-lived presigned object-store URL that serves the same."""
    document, chunks = documents.download(backends, principal=user, document_id=document_id, ip=ip)
    return download_response(backends, document, chunks)


def download_response(
    backends: Backends, document: Document, chunks: Iterator[bytes]
) -> StreamingResponse | RedirectResponse:
    """A download ``documents.download`` allowed: the bytes as an attachment, or a 302 to a
    presigned URL. The web interface's download link answers the same way."""
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


@router.get("/{document_id}/receipt", response_model=ReceiptOut, responses=error_responses(404))
def get_receipt(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> ReceiptOut:
    """Proof of what was submitted and when: sha256, township, time, audit seq and hash."""
    return ReceiptOut.of(
        documents.receipt(backends, principal=user, document_id=document_id, ip=ip)
    )


@router.get("/{document_id}/usage", response_model=UsageOut, responses=error_responses(404))
def get_usage(document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> UsageOut:
    """Which departments viewed and downloaded this material, counted per department."""
    return UsageOut.of(
        usage.document_usage(backends, principal=user, document_id=document_id, ip=ip)
    )


@router.delete("/{document_id}", response_model=DocumentOut, responses=error_responses(404, 409))
def withdraw_document(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> DocumentOut:
    """Withdraw: the document leaves listings and search; bytes and audit trail stay."""
    return DocumentOut.of(
        documents.withdraw(backends, principal=user, document_id=document_id, ip=ip)
    )
