"""Material requests (材料需求): a draft that searches first, then accept, join, send, approve,
refuse and answer, and each side's list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.ask_schemas import (
    AcceptIn,
    AnswerIn,
    DraftOut,
    JoinIn,
    RefuseIn,
    RequestIn,
    RequestListOut,
    RequestOut,
    SendIn,
)
from api.deps import BackendsDep, ClientIP, CurrentUser, PageNumber
from api.errors import error_responses
from api.schemas import DbId
from services import requests
from services.requests import RequestFields

router = APIRouter(prefix="/api/v1/requests", tags=["ask once"])

# A request (or a document or request named in the body) that is not there or not the caller's to
# see; a request no longer in the state the step needs.
MISSING_OR_DONE = error_responses(404, 409)


@router.post("", response_model=DraftOut, status_code=201)
def create_request(
    body: RequestIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> DraftOut:
    """A department's draft request to a township, with the township's documents that may
    already answer it (`matches`) and the open requests it could join (`open_requests`)."""
    draft = requests.create(
        backends,
        principal=user,
        fields=RequestFields(
            township=str(body.township),
            title=body.title,
            description=body.description,
            category=body.category,
            period=body.period,
            due=body.due,
            catalog_item=None if body.catalog_item is None else str(body.catalog_item),
        ),
        ip=ip,
    )
    return DraftOut.of_draft(draft)


@router.get("", response_model=RequestListOut)
def list_requests(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    box: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=30)] = None,
    page: PageNumber = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RequestListOut:
    """The caller's side: a department's `outbox`, a township's `inbox`, the coordinators'
    `approval` queue (by default the caller's own)."""
    found = requests.list_box(
        backends, principal=user, box=box, status=status, page=page, size=size, ip=ip
    )
    return RequestListOut(
        total=found.total,
        page=page,
        size=size,
        requests=[RequestOut.of(request) for request in found.requests],
    )


@router.get("/{request_id}", response_model=RequestOut, responses=error_responses(404))
def get_request(
    request_id: DbId, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> RequestOut:
    return RequestOut.of(requests.get(backends, principal=user, request_id=request_id, ip=ip))


@router.delete("/{request_id}", status_code=204, responses=MISSING_OR_DONE)
def discard_draft(
    request_id: DbId, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Delete a draft the department no longer needs (only drafts; the log keeps it)."""
    requests.discard(backends, principal=user, request_id=request_id, ip=ip)
    return Response(status_code=204)


@router.post("/{request_id}/accept", response_model=RequestOut, responses=MISSING_OR_DONE)
def accept_match(
    request_id: DbId, body: AcceptIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> RequestOut:
    """The draft is answered by a document already shared: the township is never asked."""
    request = requests.accept(
        backends, principal=user, request_id=request_id, document_id=body.document_id, ip=ip
    )
    return RequestOut.of(request)


@router.post("/{request_id}/join", response_model=RequestOut, responses=MISSING_OR_DONE)
def join_request(
    request_id: DbId, body: JoinIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> RequestOut:
    """The draft joins an open request to the same township; one answer reaches both."""
    request = requests.join(
        backends, principal=user, request_id=request_id, other_id=str(body.request_id), ip=ip
    )
    return RequestOut.of(request)


@router.post("/{request_id}/send", response_model=RequestOut, responses=MISSING_OR_DONE)
def send_request(
    request_id: DbId, body: SendIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> RequestOut:
    """Send the draft (a reason is required when matches were shown): to the township for a
    catalog item, else to the coordinators for approval."""
    request = requests.send(
        backends, principal=user, request_id=request_id, reason=body.reason, ip=ip
    )
    return RequestOut.of(request)


@router.post("/{request_id}/approve", response_model=RequestOut, responses=MISSING_OR_DONE)
def approve_request(
    request_id: DbId, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> RequestOut:
    """A coordinator lets an ad-hoc request through to the township."""
    return RequestOut.of(requests.approve(backends, principal=user, request_id=request_id, ip=ip))


@router.post("/{request_id}/refuse", response_model=RequestOut, responses=MISSING_OR_DONE)
def refuse_request(
    request_id: DbId, body: RefuseIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> RequestOut:
    """A coordinator refuses an ad-hoc request, with a reason and perhaps the document that
    already answers it."""
    request = requests.refuse(
        backends,
        principal=user,
        request_id=request_id,
        reason=body.reason,
        document_id=body.document_id,
        ip=ip,
    )
    return RequestOut.of(request)


@router.post("/{request_id}/answer", response_model=RequestOut, responses=MISSING_OR_DONE)
def answer_request(
    request_id: DbId, body: AnswerIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> RequestOut:
    """The township answers with its documents; every requesting department is told."""
    request = requests.answer(
        backends, principal=user, request_id=request_id, document_ids=body.document_ids, ip=ip
    )
    return RequestOut.of(request)
