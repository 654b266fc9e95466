"""A document's page: metadata, usage, preview, download, withdraw.

Also how a document's fields read on a page (periods, file types, visibility), which the search
results show the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from api.deps import BackendsDep, ClientIP, CurrentUser
from api.routes.documents import download_response
from api.web.render import flash_redirect, render
from api.web.session import CheckedForm, SignedIn
from services import access, documents, preview, usage
from services.errors import MaterialsError
from services.metadata import period_label
from services.models import Document, Visibility

router = APIRouter(include_in_schema=False)

VISIBILITY_LABELS = {
    Visibility.departments.value: "所有县直部门",
    Visibility.restricted.value: "指定部门",
    Visibility.private.value: "仅本乡镇",
}


def file_label(document: Document) -> str:
    """The short name of a file's type, as its extension says it (PDF, DOCX, PNG)."""
    suffix = PurePosixPath(document.filename).suffix.lstrip(".").upper()
    return suffix or document.content_type


@dataclass(frozen=True)
class PhotoDetails:
    """What a photo's EXIF says, ready to read: when, where, with what camera."""

    captured_at: str | None
    timezone_known: bool
    # False: the photo names no capture time, only when its file was written (camera or editor).
    captured: bool
    latitude: float | None
    longitude: float | None
    camera: str | None


def photo_details(exif: dict[str, Any] | None) -> PhotoDetails | None:
    """The EXIF the indexer kept (indexer/extractors/_image.py), or None when there is none."""
    if not exif:
        return None
    captured_at, timezone_known = None, False
    captured = "captured_at" in exif
    raw_time = exif.get("captured_at" if captured else "recorded_at")
    if isinstance(raw_time, str):
        try:
            moment = datetime.fromisoformat(raw_time)
        except ValueError:
            moment = None
        if moment is not None:
            # The camera's own clock, as it was set: shown as recorded, not converted.
            captured_at = moment.strftime("%Y-%m-%d %H:%M:%S")
            if moment.utcoffset() is not None:
                timezone_known = True
                captured_at += f"（UTC{moment.strftime('%z')[:3]}:{moment.strftime('%z')[3:]}）"
    gps = exif.get("gps")
    latitude = longitude = None
    if isinstance(gps, dict):
        lat, lon = gps.get("lat"), gps.get("lon")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            latitude, longitude = float(lat), float(lon)
    camera = exif.get("camera")
    details = PhotoDetails(
        captured_at=captured_at,
        timezone_known=timezone_known,
        captured=captured,
        latitude=latitude,
        longitude=longitude,
        camera=camera if isinstance(camera, str) and camera else None,
    )
    if details.captured_at is None and details.latitude is None and details.camera is None:
        return None
    return details


def coordinate_label(latitude: float, longitude: float) -> str:
    """Signed decimal degrees as 北纬/南纬 and 东经/西经."""
    north = "北纬" if latitude >= 0 else "南纬"
    east = "东经" if longitude >= 0 else "西经"
    return f"{north} {abs(latitude):.6f}°，{east} {abs(longitude):.6f}°"


def repeated_titles(document: Document, similar: list[Document]) -> set[str]:
    """The titles the list of similar documents shows more than once, or shares with the page's
    own document."""
    seen = Counter([document.title, *(other.title for other in similar)])
    return {title for title, count in seen.items() if count > 1}


PRESENTATION: dict[str, Any] = {
    "period_label": period_label,
    "file_label": file_label,
    "VISIBILITY_LABELS": VISIBILITY_LABELS,
}


@router.get("/documents/{document_id}")
def document_page(
    request: Request, document_id: str, web: SignedIn, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Everything about one document the caller may see, with its preview when allowed."""
    principal = web.principal
    document = documents.view(backends, principal=principal, document_id=document_id, ip=ip)
    # A withdrawn copy is listed only to whom access.can_see shows it (its own township, the
    # auditor), marked 已撤回 on the page.
    similar = documents.similar_documents(backends, principal=principal, document=document)
    same_title = documents.same_title_and_period(backends, principal=principal, document=document)
    may_download = documents.may_download(backends, principal=principal, document=document)
    served = documents.file_served(backends, document)
    downloadable = may_download and served
    used = (
        usage.document_usage(backends, principal=principal, document_id=document.id, ip=ip)
        if access.can_see_usage(principal, document)
        else None
    )
    text = None
    text_failed = False
    if downloadable and preview.can_preview_text(document.content_type):
        # Read here and audited as a preview, as the browser's request for a PDF or image is.
        try:
            text = preview.preview_text(
                backends, principal=principal, document_id=document.id, ip=ip
            )
        except MaterialsError:
            # Already audited (e.g. the file is missing): the page stays, the preview says so.
            text_failed = True
    return render(
        request,
        "document.html",
        principal=principal,
        csrf_token=web.csrf_token,
        document=document,
        similar=similar,
        # Titles shown more than once (a copy withdrawn and uploaded again): those list their
        # upload time to the second, to tell them apart.
        repeated_titles=repeated_titles(document, [other for other, _ in similar]),
        same_title=same_title,
        downloadable=downloadable,
        # Why a reader who may download cannot now: the virus scan holds the file back.
        held_back=documents.not_served_reason(document) if may_download and not served else None,
        previewable=downloadable and preview.can_preview_type(document.content_type),
        text_preview=text,
        text_preview_failed=text_failed,
        text_preview_kb=preview.TEXT_PREVIEW_BYTES // 1024,
        # Own township's actions; the receipt page and the withdraw service check again.
        manageable=access.can_withdraw(principal, document),
        usage=used,
        photo=photo_details(document.exif),
        coordinate_label=coordinate_label,
        **PRESENTATION,
    )


@router.get("/documents/{document_id}/preview", response_model=None)
def document_preview(
    document_id: str, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> StreamingResponse:
    """The bytes of a PDF or an image to show inside the page, never as a page of their own."""
    document, chunks = preview.preview(backends, principal=user, document_id=document_id, ip=ip)
    # Streamed from the blob store also on S3: a presigned URL would bypass these headers.
    return StreamingResponse(
        chunks,
        media_type=document.content_type,
        headers={
            "Content-Disposition": preview.inline_disposition(document.filename),
            "Content-Length": str(document.size),
            # Opened on its own (a PDF in the browser's viewer), the file runs no script of ours.
            "Content-Security-Policy": "sandbox",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/documents/{document_id}/download", response_model=None)
def document_download(
    document_id: str, web: SignedIn, backends: BackendsDep, ip: ClientIP
) -> StreamingResponse | RedirectResponse:
    """The page's download link: the same file as ``GET /api/v1/documents/{id}/download``, but
    a refusal is the Chinese error page a person can read, not the API's JSON error."""
    document, chunks = documents.download(
        backends, principal=web.principal, document_id=document_id, ip=ip
    )
    return download_response(backends, document, chunks)


@router.post("/documents/{document_id}/withdraw")
def withdraw_document(
    request: Request,
    document_id: str,
    web: SignedIn,
    _form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """Withdraw a township's own document; it leaves search, its trail stays."""
    try:
        document = documents.withdraw(
            backends, principal=web.principal, document_id=document_id, ip=ip
        )
    except MaterialsError as exc:
        back = f"/documents/{quote(document_id, safe='')}"
        return flash_redirect(request, backends.settings, back, text=exc.message, kind="error")
    return flash_redirect(
        request,
        backends.settings,
        "/materials",
        text=f"已撤回材料《{document.title}》，各部门不能再检索、查看和下载。它已移到“已撤回”，"
        "仍可打开其页面和报送回执。",
        link=("/materials?view=withdrawn", "查看已撤回的材料"),
    )
