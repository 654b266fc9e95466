"""Material requests (材料需求) in the browser: a department drafts, sees what the repository
already holds, then accepts, joins or sends; the coordinators approve or refuse; the township
answers with its documents.

Every decision is the service's (services/requests.py); these routes read the form, call it and
say the outcome in words on the next page.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, select
from starlette.datastructures import FormData

from api.deps import BackendsDep, ClientIP, PageNumber
from api.schemas import DbId, OrgNameOrId
from api.web.render import flash_redirect, render
from api.web.routes.documents import PRESENTATION
from api.web.session import CheckedForm, SignedIn
from services import access, administration, catalog, documents, requests
from services.access import Principal
from services.backends import Backends
from services.catalog import county_today
from services.errors import Forbidden, InvalidField, MaterialsError
from services.metadata import PERIOD_EXAMPLES
from services.models import (
    REQUEST_STATUS_NAMES,
    Document,
    MaterialRequest,
    RequestStatus,
    Role,
)
from services.requests import RequestFields

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
# How many of its own documents a township is offered to answer with (the likely ones first).
ANSWER_CHOICES = 50
DEFAULT_DUE_DAYS = 7
BOX_TITLES = {"outbox": "材料需求", "inbox": "待办需求", "approval": "需求审核"}
FIELD_LABELS = {
    "township": "乡镇",
    "title": "需求名称",
    "description": "具体要求",
    "category": "类别",
    "period": "所属期间",
    "due": "截止日期",
    "catalog_item": "目录材料",
    "reason": "理由",
    "document_id": "材料",
    "document_ids": "答复材料",
    "request_id": "需求",
}
REQUEST_PRESENTATION: dict[str, Any] = {
    **PRESENTATION,
    "is_overdue": requests.is_overdue,
}
# A township only sees requests sent to it: to its clerk they wait for an answer or are answered.
TOWNSHIP_STATUS_NAMES = {
    **REQUEST_STATUS_NAMES,
    RequestStatus.sent.value: "待答复",
    RequestStatus.answered.value: "已答复",
}


def awaiting_approval(backends: Backends) -> int:
    """How many requests outside the catalog wait for a coordinator's decision, for the badge
    beside 审核 in the coordinator's menu: one COUNT, the approval queue's undecided ones."""
    with backends.db.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(MaterialRequest)
                .where(
                    MaterialRequest.catalog_item_id.is_(None),
                    MaterialRequest.status == RequestStatus.pending_approval.value,
                )
            )
            or 0
        )


def status_names(principal: Principal) -> dict[str, str]:
    """What a request's status is called for this reader."""
    return TOWNSHIP_STATUS_NAMES if principal.role is Role.uploader else REQUEST_STATUS_NAMES


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _problem(exc: MaterialsError) -> str:
    """An error as a sentence naming the field it is about."""
    label = FIELD_LABELS.get(exc.field) if isinstance(exc, InvalidField) else None
    return f"{label}：{exc.message}" if label else exc.message


def _back(request_id: int | str) -> str:
    return f"/requests/{request_id}"


@router.get("/requests")
def request_list(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    page: PageNumber = 1,
    status: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    """The role's own list: a department's requests, a township's inbox (soonest due first), the
    coordinators' approval queue."""
    box = requests.default_box(web.principal)
    if box is None:
        raise Forbidden("您的角色没有材料需求列表", code="box_not_allowed")
    offered = requests.BOX_STATUSES[box]
    chosen = status if status in offered else ""
    found = requests.list_box(
        backends,
        principal=web.principal,
        box=box,
        status=chosen or None,
        page=page,
        size=PAGE_SIZE,
        ip=ip,
    )

    def page_url(number: int) -> str:
        return f"/requests?page={number}" + (f"&status={chosen}" if chosen else "")

    return render(
        request,
        "requests.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        box=box,
        title=BOX_TITLES[box],
        found=found,
        page=page,
        size=PAGE_SIZE,
        page_url=page_url,
        status=chosen,
        statuses=offered,
        today=county_today(),
        STATUS_NAMES=status_names(web.principal),
        **REQUEST_PRESENTATION,
    )


def _form_page(
    request: Request,
    web: SignedIn,
    backends: Backends,
    *,
    values: dict[str, str],
    error: str | None = None,
    error_field: str | None = None,
    status_code: int = 200,
) -> Response:
    today = county_today()
    return render(
        request,
        "request_new.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        townships=administration.list_orgs(backends, kind="township"),
        categories=[category.name for category in administration.list_categories(backends)],
        catalog_items=catalog.list_items(backends, active_only=True),
        values=values,
        error=error,
        error_field=error_field,
        today=today.isoformat(),
        period_examples=PERIOD_EXAMPLES,
        status_code=status_code,
    )


@router.get("/requests/new")
def new_request_page(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    township: Annotated[OrgNameOrId, Query(max_length=100)] = "",
    catalog_item: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The form a department fills to ask a township for a material."""
    if not access.can_request(web.principal):
        raise Forbidden("只有县直部门工作人员可以向乡镇提出材料需求", code="request_not_allowed")
    due = county_today() + timedelta(days=DEFAULT_DUE_DAYS)
    values = {"township": township, "catalog_item": catalog_item, "due": due.isoformat()}
    return _form_page(request, web, backends, values=values)


@router.post("/requests/new")
def create_request(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Create the draft, then show what already answers it before anything can be sent."""
    names = ("township", "title", "description", "category", "period", "due", "catalog_item")
    values = {name: _text(form, name) for name in names}
    try:
        try:
            due = date.fromisoformat(values["due"]) if values["due"] else None
        except ValueError:
            raise InvalidField("due", "请填写有效的日期", code="invalid_date") from None
        draft = requests.create(
            backends,
            principal=web.principal,
            fields=RequestFields(
                township=values["township"],
                title=values["title"],
                description=values["description"],
                category=values["category"] or None,
                period=values["period"] or None,
                due=due,
                catalog_item=values["catalog_item"] or None,
            ),
            ip=ip,
        )
    except InvalidField as exc:
        return _form_page(
            request,
            web,
            backends,
            values=values,
            error=_problem(exc),
            error_field=exc.field,
            status_code=422,
        )
    return flash_redirect(
        request,
        backends.settings,
        _back(draft.request.id),
        text="需求已保存为草稿。发送之前，请先看看共享库中是否已有这份材料。",
    )


def _answer_choices(
    backends: Backends, *, principal: Principal, asked: MaterialRequest, ip: str | None
) -> tuple[list[Document], list[Document]]:
    """A township's documents to answer with: those that look like the answer, then the rest of
    its newest ones."""
    likely = requests.find_matches(
        backends,
        principal=principal,
        township_id=asked.township_id,
        title=asked.title,
        category=asked.category,
        period=asked.period,
        catalog_item_id=asked.catalog_item_id,
    )
    newest = documents.list_visible(
        backends,
        principal=principal,
        township=None,
        category=None,
        page=1,
        size=ANSWER_CHOICES,
        ip=ip,
    ).documents
    seen = {document.id for document in likely}
    return likely, [document for document in newest if document.id not in seen]


@router.get("/requests/{request_id}")
def request_page(
    request: Request,
    request_id: DbId,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    pick: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """One request: what was asked, where it stands, and what the caller may do with it now."""
    principal = web.principal
    asked = requests.get(backends, principal=principal, request_id=request_id, ip=ip)
    draft = None
    if asked.status == RequestStatus.draft.value and access.can_decide_request(principal, asked):
        draft = requests.reopen_draft(backends, principal=principal, request_id=asked.id, ip=ip)
    likely: list[Document] = []
    others: list[Document] = []
    answerable = (
        access.can_answer_request(principal, asked) and asked.status == RequestStatus.sent.value
    )
    if answerable:
        likely, others = _answer_choices(backends, principal=principal, asked=asked, ip=ip)
    deciding = (
        access.can_keep_catalog(principal) and asked.status == RequestStatus.pending_approval.value
    )
    pointers = (
        requests.documents_that_may_answer(
            backends, principal=principal, request_id=asked.id, ip=ip
        )
        if deciding
        else []
    )
    # The request a joined one was merged into, to name it (its department may see it).
    joined_to = (
        requests.get(backends, principal=principal, request_id=asked.joined_to_id, ip=ip)
        if asked.joined_to_id
        else None
    )
    asking = access.asking_departments(asked)
    answered_with = [
        documents.load(backends, document_id=document_id) for document_id in asked.document_ids
    ]
    refusal_document = (
        documents.load(backends, document_id=asked.refusal_document_id)
        if asked.refusal_document_id
        else None
    )
    return render(
        request,
        "request.html",
        principal=principal,
        csrf_token=web.csrf_token,
        asked=asked,
        draft=draft,
        answerable=answerable,
        likely=likely,
        others=others,
        picked=pick,
        deciding=deciding,
        pointers=pointers,
        answered_with=answered_with,
        refusal_document=refusal_document,
        joined_to=joined_to,
        can_open=lambda document: access.can_see(principal, document),
        asks_in=lambda other: access.asks_in(principal, other),
        answers_all=lambda document: all(
            access.shared_with_department(document, org) for org in asking
        ),
        today=county_today(),
        STATUS_NAMES=status_names(principal),
        **REQUEST_PRESENTATION,
    )


def _decide(
    request: Request, backends: Backends, request_id: int, action: Any, done: Any
) -> Response:
    """Run one decision; say its outcome (or why it was refused) on the next page."""
    try:
        changed = action()
    except MaterialsError as exc:
        return flash_redirect(
            request, backends.settings, _back(request_id), text=_problem(exc), kind="error"
        )
    text, target = done(changed)
    return flash_redirect(request, backends.settings, target, text=text)


@router.post("/requests/{request_id}/accept")
def accept_match(
    request: Request,
    request_id: DbId,
    web: SignedIn,
    form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """采用此材料: the draft is answered from the repository; the township is not asked."""
    return _decide(
        request,
        backends,
        request_id,
        lambda: requests.accept(
            backends,
            principal=web.principal,
            request_id=request_id,
            document_id=_text(form, "document_id"),
            ip=ip,
        ),
        lambda changed: (
            "已采用共享库中的材料，无需再向乡镇索要。",
            _back(changed.id),
        ),
    )


@router.post("/requests/{request_id}/join")
def join_request(
    request: Request,
    request_id: DbId,
    web: SignedIn,
    form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """并入此需求: one answer reaches both departments."""
    return _decide(
        request,
        backends,
        request_id,
        lambda: requests.join(
            backends,
            principal=web.principal,
            request_id=request_id,
            other_id=_text(form, "request_id"),
            ip=ip,
        ),
        lambda changed: (
            "已并入同类需求，乡镇答复后将同时送达本部门。",
            _back(changed.id),
        ),
    )


@router.post("/requests/{request_id}/discard")
def discard_draft(
    request: Request,
    request_id: DbId,
    web: SignedIn,
    _form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """删除草稿: a draft its department no longer needs; nothing was sent to anyone."""
    try:
        requests.discard(backends, principal=web.principal, request_id=request_id, ip=ip)
    except MaterialsError as exc:
        return flash_redirect(
            request, backends.settings, _back(request_id), text=_problem(exc), kind="error"
        )
    return flash_redirect(
        request, backends.settings, "/requests", text="草稿已删除，没有发送给任何人。"
    )


@router.post("/requests/{request_id}/send")
def send_request(
    request: Request,
    request_id: DbId,
    web: SignedIn,
    form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """仍需发送: to the township (a catalog item) or to the coordinators for approval."""

    def done(changed: MaterialRequest) -> tuple[str, str]:
        if changed.status == RequestStatus.sent.value:
            return f"已发送给{changed.township.name}。", _back(changed.id)
        return "已提交减负办审核，准入后将发送给乡镇。", _back(changed.id)

    return _decide(
        request,
        backends,
        request_id,
        lambda: requests.send(
            backends,
            principal=web.principal,
            request_id=request_id,
            reason=_text(form, "reason"),
            ip=ip,
        ),
        done,
    )


@router.post("/requests/{request_id}/approve")
def approve_request(
    request: Request,
    request_id: DbId,
    web: SignedIn,
    _form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """A coordinator lets the request through to the township."""
    return _decide(
        request,
        backends,
        request_id,
        lambda: requests.approve(backends, principal=web.principal, request_id=request_id, ip=ip),
        lambda changed: (
            f"已准入“{changed.title}”，已通知{changed.township.name}。",
            "/requests",
        ),
    )


@router.post("/requests/{request_id}/refuse")
def refuse_request(
    request: Request,
    request_id: DbId,
    web: SignedIn,
    form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """A coordinator refuses the request, with the reason (and a document that answers it)."""
    return _decide(
        request,
        backends,
        request_id,
        lambda: requests.refuse(
            backends,
            principal=web.principal,
            request_id=request_id,
            reason=_text(form, "reason"),
            document_id=_text(form, "document_id") or None,
            ip=ip,
        ),
        lambda changed: (
            f"已退回“{changed.title}”，提出需求的部门已收到理由。",
            "/requests",
        ),
    )


@router.post("/requests/{request_id}/answer")
def answer_request(
    request: Request,
    request_id: DbId,
    web: SignedIn,
    form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """The township answers with the documents it ticked."""
    chosen = [value for value in form.getlist("document_ids") if isinstance(value, str)]
    return _decide(
        request,
        backends,
        request_id,
        lambda: requests.answer(
            backends,
            principal=web.principal,
            request_id=request_id,
            document_ids=chosen,
            ip=ip,
        ),
        lambda changed: (
            f"已答复“{changed.title}”，{'、'.join(changed.department_names)}已收到通知。",
            "/requests",
        ),
    )
