"""A township's own pages: upload, its materials, receipts.

Uploading itself is done by the browser (static/upload.js) against the JSON API; these pages
only offer the form (and its look-up of a file already submitted), list what the township holds
and print the receipt of one submission, and give that receipt as a JSON file to keep and check
offline against the log's public key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from markupsafe import Markup

from api.deps import BackendsDep, ClientIP, CurrentUser, PageNumber
from api.errors import error_response
from api.schemas import DocumentOut, ReceiptOut
from api.web.render import render
from api.web.routes.audit import PUBLIC_KEY_FILENAME, PUBLIC_KEY_URL
from api.web.session import SignedIn
from services import access, administration, catalog, documents, requests, slots
from services.access import Principal
from services.documents import Receipt
from services.errors import InvalidField, NotFound
from services.metadata import DEFAULT_CATEGORY, PERIOD_EXAMPLES, period_label
from services.models import CYCLE_NAMES, CatalogItem, Cycle, MaterialRequest, Sharing, Visibility

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
# Offered as suggestions when the county has not fixed a list of categories.
COMMON_CATEGORIES = (
    "工作总结",
    "工作计划",
    "统计报表",
    "会议纪要",
    "通知公告",
    "台账",
    "汇报材料",
    "请示报告",
    DEFAULT_CATEGORY,
)
STATUS_LABELS = {"pending": "处理中", "indexed": "可检索", "failed": "文字提取失败"}
SORT_LABELS = {"date": "上传时间", "title": "标题", "category": "类别"}


def _megabytes(size: int) -> str:
    return f"{round(size / (1024 * 1024), 1):g}"


def _category_choices(backends: BackendsDep) -> list[str]:
    return [category.name for category in administration.list_categories(backends)]


def category_suggestions(backends: BackendsDep, principal: Principal) -> list[str]:
    """What the 类别 box suggests when the county has fixed no list: the catalog's categories,
    then those of the materials the clerk can see, then the common ones not already written
    longer (no 台账 beside 工作台账), so that one kind of material is filed under one name."""
    in_catalog = sorted({item.category for item in catalog.list_items(backends, active_only=True)})
    in_use = documents.categories_in_use(backends, principal=principal)
    suggested: list[str] = []
    for name in [*in_catalog, *in_use]:
        if name not in suggested:
            suggested.append(name)
    for name in COMMON_CATEGORIES:
        if not any(name in known for known in suggested):
            suggested.append(name)
    return suggested


@dataclass(frozen=True)
class OwedItem:
    """A catalog item the township owes, as the upload form offers it."""

    item: CatalogItem
    # The slot a clerk is most likely filing now (the latest ended period not yet submitted,
    # else the running one), or the one the request being answered asks for ("" for a
    # once-only item).
    period: str
    due: str
    late: bool  # that slot is past its due date
    example: str
    asked: bool = False  # the period is the request's
    submitted: bool = False  # that slot is already filled
    # Other ended periods still not submitted, oldest first (not offered for a request).
    behind: tuple[str, ...] = ()


def _owed_items(
    backends: BackendsDep, township_id: int, asked: MaterialRequest | None = None
) -> list[OwedItem]:
    """What the upload form offers; for the item a request asks for, the slot of its period."""
    today = catalog.county_today()
    owed = []
    for item in catalog.items_owed(backends, township_id=township_id):
        asked_period = (
            asked.period
            if asked is not None
            and asked.catalog_item_id == item.id
            and item.cycle != Cycle.once.value
            else None
        )
        behind: tuple[str, ...] = ()
        if asked_period:
            slot: catalog.CoverageCell | None = catalog.slot_of(
                backends, item=item, township_id=township_id, period=asked_period, today=today
            )
            period = asked_period
        else:
            waiting = catalog.open_slots(backends, item=item, township_id=township_id, today=today)
            slot = catalog.pick_next(waiting)
            period = slot.period if slot and slot.period != catalog.ONCE else ""
            behind = tuple(
                cell.period
                for cell in waiting
                if cell is not slot and cell.status in ("overdue", "missing")
            )
        # The offered slot is never one already filled: only an asked-for slot can be.
        owed.append(
            OwedItem(
                item=item,
                period=period,
                due=slot.due.isoformat() if slot and slot.due else "",
                late=slot is not None and slot.status == "overdue",
                example=slots.CYCLE_EXAMPLES.get(Cycle(item.cycle), ""),
                asked=bool(asked_period),
                submitted=slot is not None and slot.status == "submitted",
                behind=behind,
            )
        )
    return owed


def catalog_hint(owed: OwedItem) -> str:
    """What the form says under 目录材料 once the item is chosen: how often it is owed, how its
    period is written, and the slot offered. Answering a request, only the period: the one date
    the clerk works to is the request's, said above the form."""
    cycle = CYCLE_NAMES[owed.item.cycle]
    if not owed.period:
        return f"{cycle}报送，只需报送一次。"
    label = period_label(owed.period)
    head = f"{cycle}报送，期间填写如 {owed.example}；"
    if owed.asked:
        return head + f"本次需求所属期间：{label}" + ("，已报送。" if owed.submitted else "。")
    if owed.late:
        slot = f"待报送：{label}，已逾期（截止 {owed.due}）"
    else:
        slot = f"待报送：{label}，截止 {owed.due}"
    if owed.behind:
        slot += f"。另有 {len(owed.behind)} 期尚未报送：" + "、".join(
            period_label(period) for period in owed.behind
        )
    return head + slot + "。"


@dataclass(frozen=True)
class Readers:
    """Who the form offers to let read the upload: a visibility and, for 指定部门, the ids."""

    visibility: str = Visibility.departments.value
    departments: tuple[int, ...] = ()


def _readers_for(asked: MaterialRequest | None) -> Readers:
    """For a request, readers that include every requesting department: all departments, or
    exactly the requesting ones when its catalog item is not shared with everyone."""
    if asked is None or asked.catalog_item is None:
        return Readers()
    if asked.catalog_item.sharing == Sharing.unconditional.value:
        return Readers()
    return Readers(Visibility.restricted.value, tuple(access.asking_departments(asked)))


def _asked_category(asked: MaterialRequest | None) -> str:
    """The 类别 a request's material is filed under: for a catalog item, the item's own (as for
    any upload filling that item), else the one the request names."""
    if asked is None:
        return ""
    return asked.catalog_item.category if asked.catalog_item is not None else asked.category


@router.get("/upload")
def upload_page(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    for_request: Annotated[str, Query(alias="request", max_length=20)] = "",
) -> Response:
    """The upload form: one or many files, their description, who may read them, and the
    catalog slot they fill; from a request's page, the request to answer afterwards."""
    documents.ensure_can_upload(backends, principal=web.principal, ip=ip)
    max_bytes = backends.settings.max_upload_bytes
    asked = (
        requests.get(backends, principal=web.principal, request_id=for_request, ip=ip)
        if for_request
        else None
    )
    return render(
        request,
        "upload.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        categories=_category_choices(backends),
        category_suggestions=category_suggestions(backends, web.principal),
        default_category=DEFAULT_CATEGORY,
        departments=administration.list_orgs(backends, kind="department"),
        period_examples=PERIOD_EXAMPLES,
        max_upload_bytes=max_bytes,
        max_upload_mb=_megabytes(max_bytes),
        owed_items=_owed_items(backends, web.principal.org_id, asked),
        catalog_hint=catalog_hint,
        asked=asked,
        asking=access.asking_departments(asked) if asked is not None else [],
        asked_category=_asked_category(asked),
        readers=_readers_for(asked),
        CYCLE_NAMES=CYCLE_NAMES,
        period_label=period_label,
    )


@router.get("/upload/lookup")
def upload_lookup(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    sha256: Annotated[str, Query()] = "",
) -> Response:
    """The upload page's check before sending a file: ``{"document": …}``, the caller's
    township's live document with these bytes, or ``{"document": null}``. The same look-up
    (and audit event) as ``GET /api/v1/documents/lookup``, but a new file, the usual case, is a
    200 rather than a 404 that the browser's console would show as a failed request."""
    headers = {"Cache-Control": "no-store"}
    try:
        document = documents.lookup(backends, principal=user, sha256=sha256, ip=ip)
    except NotFound:
        return JSONResponse({"document": None}, headers=headers)
    except InvalidField as exc:
        return error_response(exc.status, exc.error_code, exc.message, exc.details)
    # The caller's own township's document: nothing in it to hide from them.
    found = DocumentOut.of(document, reveal=True).model_dump(mode="json")
    return JSONResponse({"document": found}, headers=headers)


@router.get("/materials")
def materials_page(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    page: PageNumber = 1,
    category: Annotated[str, Query(max_length=50)] = "",
    period: Annotated[str, Query(max_length=50)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    sort: Annotated[str, Query(max_length=20)] = "date",
    shown: Annotated[str, Query(alias="view", max_length=20)] = "",
) -> Response:
    """The township's own materials, newest first, filtered and sorted as asked; with
    ``view=withdrawn`` those it has withdrawn (their pages and receipts stay)."""
    documents.ensure_can_upload(backends, principal=web.principal, ip=ip)
    filters = {"category": category.strip(), "period": period.strip(), "status": status}
    withdrawn = shown == "withdrawn"
    chosen_sort = sort if sort in SORT_LABELS else "date"
    filter_error: str | None = None
    try:
        found = documents.list_visible(
            backends,
            principal=web.principal,
            township=None,
            category=filters["category"] or None,
            period=filters["period"] or None,
            status=filters["status"] or None,
            sort=chosen_sort,
            page=page,
            size=PAGE_SIZE,
            ip=ip,
            withdrawn=withdrawn,
        )
    except InvalidField as exc:
        # A mistyped filter is said next to the form, not on an error page.
        filter_error = exc.message
        found = documents.DocumentPage(total=0, documents=[])

    def url_for(**changes: str | int) -> str:
        params: dict[str, str | int] = {
            "view": "withdrawn" if withdrawn else "",
            **filters,
            "sort": chosen_sort,
            "page": page,
            **changes,
        }
        kept = {
            key: value
            for key, value in params.items()
            if value not in ("", None)
            and not (key == "sort" and value == "date")
            and not (key == "page" and value == 1)
        }
        return "/materials" + ("?" + urlencode(kept) if kept else "")

    def page_url(number: int) -> str:
        return url_for(page=number)

    def sort_url(key: str) -> str:
        return url_for(sort=key, page=1)

    def view_url(view: str) -> str:
        # The other list starts unfiltered on its first page, in the same order.
        return url_for(view=view, category="", period="", status="", page=1)

    return render(
        request,
        "materials.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        found=found,
        page=page,
        size=PAGE_SIZE,
        filters=filters,
        filtered=any(filters.values()),
        filter_error=filter_error,
        sort=chosen_sort,
        sort_url=sort_url,
        page_url=page_url,
        withdrawn=withdrawn,
        view_url=view_url,
        clear_url=url_for(category="", period="", status="", page=1),
        # Also those in use: materials filed before the county fixed its list stay findable.
        categories=sorted(
            {*_category_choices(backends)}
            | {*documents.categories_in_use(backends, principal=web.principal)}
        ),
        common_categories=COMMON_CATEGORIES,
        status_labels=STATUS_LABELS,
        period_label=period_label,
    )


def receipt_qr_text(receipt: Receipt) -> str:
    """What a phone shows when it scans the receipt's code: the values to compare with the
    printed ones, each named as the receipt names it."""
    lines = [
        "县域材料共享库 报送回执",
        f"材料编号：{receipt.document_id}",
        f"SHA-256：{receipt.sha256}",
    ]
    if receipt.audit_seq is not None:
        lines += [f"审计序号：{receipt.audit_seq}", f"审计哈希：{receipt.audit_hash}"]
    else:
        lines.append("审计登记：正在写入审计日志")
    return "\n".join(lines)


def receipt_qr_svg(receipt: Receipt) -> Markup:
    """The receipt's identifying values as a QR code, an inline SVG made here (no script)."""
    import segno  # here, not at the top: only a receipt page needs it (the server's memory)

    code = segno.make(receipt_qr_text(receipt), error="m", micro=False)
    label = "报送回执二维码：包含材料编号、SHA-256 和审计哈希"
    svg: str = code.svg_inline(
        title=label, svgclass="qr", lineclass=None, scale=4, border=4, omitsize=True
    )
    # The code's text is drawn as modules, never as markup; the label is fixed.
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1))  # noqa: S704


def receipt_filename(document_id: str) -> str:
    """The name the receipt's JSON file is saved under (only characters safe in a header and on
    a command line)."""
    return f"receipt-{re.sub(r'[^A-Za-z0-9._-]', '_', document_id)}.json"


def verify_command(document_id: str) -> str:
    """The one command that checks a saved receipt offline."""
    return (
        f"materials audit verify-receipt {receipt_filename(document_id)} "
        f"--public-key {PUBLIC_KEY_FILENAME}"
    )


@router.get("/documents/{document_id}/receipt")
def receipt_page(
    request: Request, document_id: str, web: SignedIn, backends: BackendsDep, ip: ClientIP
) -> Response:
    """The printable receipt (报送回执) of one submitted material."""
    receipt = documents.receipt(backends, principal=web.principal, document_id=document_id, ip=ip)
    # ``receipt`` has checked (and audited) that the caller may see this document.
    document = documents.load(backends, document_id=receipt.document_id)
    sha256_groups = [receipt.sha256[i : i + 8] for i in range(0, len(receipt.sha256), 8)]
    audit_hash = receipt.audit_hash or ""
    audit_groups = [audit_hash[i : i + 8] for i in range(0, len(audit_hash), 8)]
    return render(
        request,
        "receipt.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        receipt=receipt,
        document=document,
        sha256_groups=sha256_groups,
        audit_groups=audit_groups,
        qr_svg=receipt_qr_svg(receipt),
        period_label=period_label,
        receipt_file_url=f"/documents/{receipt.document_id}/receipt.json",
        receipt_filename=receipt_filename(receipt.document_id),
        public_key_url=PUBLIC_KEY_URL,
        public_key_filename=PUBLIC_KEY_FILENAME,
        verify_command=verify_command(receipt.document_id),
        same_title=documents.same_title_and_period(
            backends, principal=web.principal, document=document
        ),
    )


@router.get("/documents/{document_id}/receipt.json")
def receipt_file(document_id: str, web: SignedIn, backends: BackendsDep, ip: ClientIP) -> Response:
    """The receipt as a JSON file to keep: exactly what ``GET /api/v1/documents/{id}/receipt``
    answers (the upload event, the signed checkpoint and the inclusion proof), which
    ``materials audit verify-receipt`` checks with the log's public key alone."""
    receipt = documents.receipt(backends, principal=web.principal, document_id=document_id, ip=ip)
    filename = receipt_filename(receipt.document_id)
    return Response(
        ReceiptOut.of(receipt).model_dump_json(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
