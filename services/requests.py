"""Material requests (材料需求): ask a township once, and only after the repository was searched.

A department's draft first shows the township's matching documents it may read and the open
requests to the same township for the same category and period. Its creator then accepts a match
(answered from the repository: the township is never told), joins an open request (one answer
reaches every department that asked), or sends it with a reason. A request for a material outside
the catalog waits for a coordinator's approval. The township answers by linking documents;
answering only with documents older than the request marks it ``repeated``.

Every state change is one audit event carrying the township, the department and the request, so
the burden figures can be rebuilt from the log alone; every refusal is audited too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select
from sqlalchemy.orm import Session

from services import access, dictionary, names, notifications, orgs, slots
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.catalog import county_today
from services.documents import actor_of
from services.errors import (
    BackendUnavailable,
    Conflict,
    Forbidden,
    InvalidField,
    MaterialsError,
    NotFound,
)
from services.metadata import DEFAULT_CATEGORY, check_period, period_bounds, period_label
from services.models import (
    AuditEvent,
    Document,
    MaterialRequest,
    NotificationKind,
    OrgKind,
    RequestDepartment,
    RequestDocument,
    RequestStatus,
    utcnow,
)
from services.notifications import notify_org
from services.search import SearchQuery

MAX_TITLE = 200
MAX_DESCRIPTION = 2000
MAX_REASON = 1000
MAX_MATCHES = 10
MAX_ANSWER_DOCUMENTS = 50
# A township is reminded this many days before a request is due.
DUE_SOON_DAYS = 2
# Open means the township may still be asked to answer it.
OPEN_STATUSES = (RequestStatus.pending_approval.value, RequestStatus.sent.value)
# Which requests a box lists, for whom (the policy: ``access.can_list_box``).
BOXES = access.REQUEST_BOXES
# What waits for each box's owner, listed first (soonest due first): a department's unsent and
# unanswered requests, a township's unanswered ones, the coordinators' undecided ones.
_WAITING = {
    "outbox": (RequestStatus.draft.value, *OPEN_STATUSES),
    "inbox": (RequestStatus.sent.value,),
    "approval": (RequestStatus.pending_approval.value,),
}
# The statuses a box can hold (what its status filter offers).
BOX_STATUSES: dict[str, tuple[str, ...]] = {
    "outbox": tuple(status.value for status in RequestStatus),
    "inbox": access.TOWNSHIP_STATUSES,
    "approval": (
        RequestStatus.pending_approval.value,
        RequestStatus.sent.value,
        RequestStatus.refused.value,
        RequestStatus.answered.value,
    ),
}
# Who starts the due-date job, as the audit log names it.
DUE_JOB_ACTOR = Actor(username="system:due-dates", role="system")


@dataclass(frozen=True)
class RequestFields:
    township: str
    title: str
    description: str = ""
    category: str | None = None
    period: str | None = None
    due: date | None = None
    catalog_item: str | None = None


@dataclass(frozen=True)
class Draft:
    """A new request, with what the repository already holds and who already asked."""

    request: MaterialRequest
    matches: list[Document]
    open_requests: list[MaterialRequest]


@dataclass(frozen=True)
class RequestPage:
    total: int
    requests: list[MaterialRequest]


def is_overdue(request: MaterialRequest, *, today: date | None = None) -> bool:
    """A sent request past its due date (Beijing dates), or found so by the due-date job."""
    if request.status != RequestStatus.sent.value:
        return False
    return request.overdue_at is not None or (today or county_today()) > request.due


def _facts(request: MaterialRequest, **extra: Any) -> dict[str, Any]:
    """What every request event records: enough to rebuild the figures from the log alone."""
    return {
        "request_id": request.id,
        "township": request.township.name,
        "department": request.department.name,
        "catalog_item": request.catalog_item_id,
        **extra,
    }


def _record_denial(
    backends: Backends,
    *,
    principal: Principal,
    ip: str | None,
    action: AuditAction,
    reason: str,
    request_id: int | str | None = None,
) -> None:
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=action,
        outcome=Outcome.denied,
        details={"reason": reason, "request_id": request_id},
    )


def _not_found() -> NotFound:
    return NotFound("材料需求不存在", code="request_not_found")


def _load(session: Session, request_id: int | str) -> MaterialRequest | None:
    if not str(request_id).isdigit() or int(request_id) >= 2**31:
        return None
    return session.get(MaterialRequest, int(request_id))


def _visible(session: Session, principal: Principal, request_id: int | str) -> MaterialRequest:
    request = _load(session, request_id)
    if request is None or not access.can_see_request(principal, request):
        raise _not_found()
    return request


def _text(field: str, value: str | None, *, limit: int, required: bool = False) -> str:
    # NFC, without direction controls and zero-width characters (services.names).
    text = names.without_invisible(value or "").strip()
    if required and not text:
        raise InvalidField(field, "此项不能为空", code="missing_field")
    if len(text) > limit:
        raise InvalidField(field, f"不能超过 {limit} 个字符", code="too_long")
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in text):
        raise InvalidField(field, "不能包含控制字符", code="invalid_characters")
    return text


def create(
    backends: Backends,
    *,
    principal: Principal,
    fields: RequestFields,
    ip: str | None,
    now: datetime | None = None,
) -> Draft:
    """A department's draft request to one township, with its matches and open requests."""
    if not access.can_request(principal):
        _record_denial(
            backends,
            principal=principal,
            ip=ip,
            action=AuditAction.request_create,
            reason="not_reader",
        )
        raise Forbidden("只有县直部门工作人员可以向乡镇提出材料需求", code="request_not_allowed")
    try:
        with backends.db.session() as session:
            township = orgs.find_org(session, fields.township.strip())
            if township is None or township.kind != OrgKind.township.value:
                raise InvalidField(
                    "township", f"乡镇不存在：{fields.township}", code="unknown_township"
                )
            title = _text("title", fields.title, limit=MAX_TITLE, required=True)
            description = _text("description", fields.description, limit=MAX_DESCRIPTION)
            period = (
                check_period(fields.period, today=county_today(now))
                if fields.period and fields.period.strip()
                else None
            )
            item = None
            if fields.catalog_item is not None and str(fields.catalog_item).strip():
                item = slots.item_for_slot(
                    session,
                    ref=str(fields.catalog_item).strip(),
                    township_id=township.id,
                    period=period,
                    field="catalog_item",
                )
            category = _text(
                "category",
                fields.category or (item.category if item else DEFAULT_CATEGORY),
                limit=50,
                required=True,
            )
            today = county_today(now)
            due = fields.due
            if due is None:
                raise InvalidField("due", "请填写截止日期", code="missing_field")
            if due < today:
                raise InvalidField("due", "截止日期不能早于今天", code="due_in_past")
            township_id = township.id
    except MaterialsError as exc:
        _record_denial(
            backends,
            principal=principal,
            ip=ip,
            action=AuditAction.request_create,
            reason=exc.error_code,
        )
        raise
    matches = find_matches(
        backends,
        principal=principal,
        township_id=township_id,
        title=title,
        category=category,
        period=period,
        catalog_item_id=item.id if item else None,
    )
    with backends.db.session() as session:
        open_requests = _open_requests(
            session, township_id=township_id, category=category, period=period
        )
        request = MaterialRequest(
            title=title,
            description=description,
            category=category,
            period=period,
            due=due,
            township_id=township_id,
            catalog_item_id=item.id if item else None,
            department_id=principal.org_id,
            created_by_id=principal.user_id,
            status=RequestStatus.draft.value,
            matches_shown=len(matches),
        )
        session.add(request)
        session.flush()
        session.refresh(request)
        event = backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=AuditAction.request_create,
            outcome=Outcome.allowed,
            details=_facts(
                request,
                title=title,
                period=period,
                due=due.isoformat(),
                matches=[document.id for document in matches],
                open_requests=[other.id for other in open_requests],
            ),
        )
        request.created_at = event.at
        session.flush()
    return Draft(request=request, matches=matches, open_requests=open_requests)


def _overlaps(period: str | None, other: str | None) -> bool:
    """Do two periods share a day? Two requests without a period count as the same need."""
    if not period or not other:
        return not period and not other
    start, end = period_bounds(period)
    other_start, other_end = period_bounds(other)
    return start <= other_end and other_start <= end


def _inside(period: str | None, outer: str | None) -> bool:
    """Does a document's period lie within the period a request asks for?"""
    if not period or not outer:
        return False
    start, end = period_bounds(period)
    outer_start, outer_end = period_bounds(outer)
    return outer_start <= start and end <= outer_end


def _open_requests(
    session: Session, *, township_id: int, category: str, period: str | None
) -> list[MaterialRequest]:
    candidates = session.scalars(
        select(MaterialRequest)
        .where(
            MaterialRequest.township_id == township_id,
            MaterialRequest.category == category,
            MaterialRequest.status.in_(OPEN_STATUSES),
        )
        .order_by(MaterialRequest.created_at.desc())
    ).all()
    return [request for request in candidates if _overlaps(period, request.period)]


def find_matches(
    backends: Backends,
    *,
    principal: Principal,
    township_id: int,
    title: str,
    category: str,
    period: str | None,
    catalog_item_id: int | None,
) -> list[Document]:
    """The township's live documents the caller may read that could answer the request, best
    first: the catalog slot itself, then what the search index finds for the title, then the
    same category in an overlapping period."""
    ranked: list[str] = []
    with backends.db.session() as session:
        visible = and_(
            Document.township_id == township_id,
            Document.withdrawn_at.is_(None),
            access.visible_clause(principal),
        )
        if catalog_item_id is not None:
            slot = select(Document.id).where(visible, Document.catalog_item_id == catalog_item_id)
            if period:
                slot = slot.where(Document.period == period)
            ranked.extend(session.scalars(slot.order_by(Document.created_at.desc())))
        same_category = session.execute(
            select(Document.id, Document.period)
            .where(visible, Document.category == category)
            .order_by(Document.created_at.desc())
            .limit(200)
        ).all()
    try:
        dictionary.keep_current(backends)
        result = backends.index.search(
            SearchQuery(
                text=title,
                scope=access.read_scope(principal),
                township_id=township_id,
                period_from=period_bounds(period)[0] if period else None,
                period_to=period_bounds(period)[1] if period else None,
                size=MAX_MATCHES,
                highlight=False,
            )
        )
        # A relaxed search (no document held every word) is no evidence of an answer.
        if not result.relaxed:
            ranked.extend(hit.document_id for hit in result.hits)
    except BackendUnavailable:
        pass  # the search index is down: the catalog slot and the category still match
    # Same category alone is weak evidence: only for a document of (a part of) the asked period,
    # or an undated one when the request names no period either.
    ranked.extend(
        document_id
        for document_id, document_period in same_category
        if _inside(document_period, period) or not (period or document_period)
    )
    ordered = list(dict.fromkeys(ranked))
    with backends.db.session() as session:
        rows = {
            document.id: document
            for document in session.scalars(select(Document).where(Document.id.in_(ordered)))
        }
    return [
        rows[document_id]
        for document_id in ordered
        if document_id in rows
        and rows[document_id].withdrawn_at is None
        and access.can_see(principal, rows[document_id])
    ][:MAX_MATCHES]


def documents_that_may_answer(
    backends: Backends, *, principal: Principal, request_id: int | str, ip: str | None
) -> list[Document]:
    """For a coordinator deciding on a request: the township's live documents of the same
    category and an overlapping period that every requesting department may read, newest first
    (their titles only: a coordinator reads no content). A refusal may point to one of them."""
    request = get(backends, principal=principal, request_id=request_id, ip=ip)
    if not access.can_keep_catalog(principal):
        return []
    asking = access.asking_departments(request)
    with backends.db.session() as session:
        candidates = session.scalars(
            select(Document)
            .where(
                Document.township_id == request.township_id,
                Document.withdrawn_at.is_(None),
                Document.category == request.category,
            )
            .order_by(Document.created_at.desc())
            .limit(200)
        ).all()
    return [
        document
        for document in candidates
        if (_inside(document.period, request.period) or not request.period)
        and all(access.shared_with_department(document, org) for org in asking)
    ][:MAX_MATCHES]


def get(
    backends: Backends, *, principal: Principal, request_id: int | str, ip: str | None
) -> MaterialRequest:
    """One request, for those who may see it; otherwise NotFound (audited)."""
    try:
        with backends.db.session() as session:
            return _visible(session, principal, request_id)
    except NotFound:
        _record_denial(
            backends,
            principal=principal,
            ip=ip,
            action=AuditAction.request_read,
            reason="not_visible",
            request_id=str(request_id)[:20],
        )
        raise


@dataclass(frozen=True)
class _Step:
    """One state change of one request, inside its transaction."""

    backends: Backends
    principal: Principal
    ip: str | None
    action: AuditAction
    session: Session
    request: MaterialRequest

    @property
    def actor(self) -> Actor:
        return actor_of(self.principal, self.ip)

    def record(self, *, document_id: str | None = None, **extra: Any) -> AuditEvent:
        """The change's audit event, with the request's facts and ``extra`` details."""
        return self.backends.audit.append(
            self.session,
            actor=self.actor,
            action=self.action,
            outcome=Outcome.allowed,
            document_id=document_id,
            details=_facts(self.request, **extra),
        )

    def notify(
        self,
        org_id: int,
        kind: NotificationKind,
        text: str,
        *,
        request: MaterialRequest | None = None,
        document_id: str | None = None,
    ) -> None:
        notify_org(
            self.session,
            self.backends.audit,
            actor=self.actor,
            org_id=org_id,
            kind=kind,
            text=text,
            request_id=(request or self.request).id,
            document_id=document_id,
        )

    def tell_township(self) -> None:
        """The township is told of a request sent to it."""
        request = self.request
        period = f"（{period_label(request.period)}）" if request.period else ""
        self.notify(
            request.township_id,
            NotificationKind.request_sent,
            f"{request.department.name}请报送：{request.title}{period}，"
            f"截止 {request.due.isoformat()}",
        )

    def tell_departments(
        self, kind: NotificationKind, text: str, *, document_id: str | None = None
    ) -> None:
        """Every department asking (its creator and those that joined) is told."""
        for org_id in access.asking_departments(self.request):
            self.notify(org_id, kind, text, document_id=document_id)


def _run(
    backends: Backends,
    principal: Principal,
    ip: str | None,
    action: AuditAction,
    request_id: int | str,
    change: Callable[[_Step], None],
) -> MaterialRequest:
    """Run one state change in a transaction; a refusal is audited in its own, then raised."""
    try:
        with backends.db.session() as session:
            request = _visible(session, principal, request_id)
            change(_Step(backends, principal, ip, action, session, request))
            session.flush()
            return request
    except MaterialsError as exc:
        _record_denial(
            backends,
            principal=principal,
            ip=ip,
            action=action,
            reason=exc.error_code,
            request_id=str(request_id)[:20],
        )
        raise


def _require_draft_of(principal: Principal, request: MaterialRequest) -> None:
    if not access.can_decide_request(principal, request):
        raise Forbidden("只有提出需求的部门可以处理此需求", code="not_request_owner")
    if request.status != RequestStatus.draft.value:
        raise Conflict("此需求已处理，不再是草稿", code="request_not_draft")


def accept(
    backends: Backends,
    *,
    principal: Principal,
    request_id: int | str,
    document_id: str,
    ip: str | None,
) -> MaterialRequest:
    """The draft is answered by a document already in the repository; the township is not asked."""

    def change(step: _Step) -> None:
        session, request = step.session, step.request
        _require_draft_of(principal, request)
        document = session.get(Document, document_id[:64])
        if (
            document is None
            or document.withdrawn_at is not None
            or not access.can_see(principal, document)
        ):
            raise NotFound("文档不存在", code="document_not_found")
        if document.township_id != request.township_id:
            raise InvalidField(
                "document_id", "所选材料不是该乡镇的材料", code="document_other_township"
            )
        event = step.record(document_id=document.id, document_ids=[document.id])
        request.status = RequestStatus.answered_from_repository.value
        request.decided_at = request.answered_at = event.at
        request.answer_documents = [RequestDocument(document_id=document.id, position=0)]

    return _run(backends, principal, ip, AuditAction.request_accept, request_id, change)


def join(
    backends: Backends,
    *,
    principal: Principal,
    request_id: int | str,
    other_id: int | str,
    ip: str | None,
) -> MaterialRequest:
    """The draft joins an open request to the same township: one answer reaches both."""

    def change(step: _Step) -> None:
        session, request = step.session, step.request
        _require_draft_of(principal, request)
        other = _load(session, other_id)
        if other is None or not access.can_see_request(principal, other) or other is request:
            raise NotFound("要并入的需求不存在", code="request_not_found")
        if other.township_id != request.township_id:
            raise InvalidField(
                "request_id", "只能并入向同一乡镇提出的需求", code="join_other_township"
            )
        if other.status not in OPEN_STATUSES:
            raise Conflict("要并入的需求已结束，不能再并入", code="request_not_open")
        asking = set(access.asking_departments(other))
        if principal.org_id in asking:
            raise Conflict("本部门已在这项需求之中，无需再次并入", code="already_requesting")
        event = step.record(joined_to=other.id)
        other.joined_departments.append(
            RequestDepartment(org_id=principal.org_id, via_request_id=request.id)
        )
        request.status = RequestStatus.joined.value
        request.joined_to_id = other.id
        request.decided_at = event.at
        session.flush()
        for org_id in sorted(asking - {principal.org_id}):
            step.notify(
                org_id,
                NotificationKind.request_joined,
                f"{principal.org_name}也需要“{other.title}”，已并入您向"
                f"{other.township.name}提出的需求，答复将同时送达",
                request=other,
            )

    return _run(backends, principal, ip, AuditAction.request_join, request_id, change)


def send(
    backends: Backends,
    *,
    principal: Principal,
    request_id: int | str,
    reason: str,
    ip: str | None,
) -> MaterialRequest:
    """Send the draft: to the township for a catalog item, else to a coordinator for approval.
    When the draft showed matches, the reason they do not answer it is required."""

    def change(step: _Step) -> None:
        request = step.request
        _require_draft_of(principal, request)
        why = _text("reason", reason, limit=MAX_REASON, required=request.matches_shown > 0)
        approved = request.catalog_item_id is not None
        status = RequestStatus.sent if approved else RequestStatus.pending_approval
        event = step.record(status=status.value, due=request.due.isoformat(), reason=why)
        request.status = status.value
        request.reason = why
        request.decided_at = event.at
        if approved:
            request.sent_at = event.at
            step.tell_township()

    return _run(backends, principal, ip, AuditAction.request_send, request_id, change)


def _require_pending(principal: Principal, request: MaterialRequest) -> None:
    if not access.can_keep_catalog(principal):
        raise Forbidden("只有减负办工作人员可以审核材料需求", code="coordinator_only")
    if request.status != RequestStatus.pending_approval.value:
        raise Conflict("此需求不在待审核状态", code="request_not_pending")


def approve(
    backends: Backends, *, principal: Principal, request_id: int | str, ip: str | None
) -> MaterialRequest:
    """A coordinator lets an ad-hoc request through to the township (准入)."""

    def change(step: _Step) -> None:
        request = step.request
        _require_pending(principal, request)
        event = step.record()
        request.status = RequestStatus.sent.value
        request.sent_at = event.at
        step.tell_township()

    return _run(backends, principal, ip, AuditAction.request_approve, request_id, change)


def refuse(
    backends: Backends,
    *,
    principal: Principal,
    request_id: int | str,
    reason: str,
    document_id: str | None,
    ip: str | None,
) -> MaterialRequest:
    """A coordinator refuses an ad-hoc request, with the reason and perhaps the document that
    already answers it; every requesting department is told."""

    def change(step: _Step) -> None:
        session, request = step.session, step.request
        _require_pending(principal, request)
        why = _text("reason", reason, limit=MAX_REASON, required=True)
        pointer = None
        if document_id:
            document = session.get(Document, document_id[:64])
            if (
                document is None
                or document.withdrawn_at is not None
                or document.township_id != request.township_id
            ):
                raise InvalidField("document_id", "该乡镇没有这份材料", code="unknown_document")
            pointer = document.id
        event = step.record(
            document_id=pointer, reason=why, document_ids=[pointer] if pointer else []
        )
        request.status = RequestStatus.refused.value
        request.refusal_reason = why
        request.refusal_document_id = pointer
        request.refused_at = event.at
        session.flush()
        step.tell_departments(
            NotificationKind.request_refused,
            f"减负办未准入需求“{request.title}”：{why}",
            document_id=pointer,
        )

    return _run(backends, principal, ip, AuditAction.request_refuse, request_id, change)


def answer(
    backends: Backends,
    *,
    principal: Principal,
    request_id: int | str,
    document_ids: list[str],
    ip: str | None,
) -> MaterialRequest:
    """The township answers a request sent to it with its own documents; every requesting
    department is told at once. Only documents older than the request: ``repeated``."""

    def change(step: _Step) -> None:
        session, request = step.session, step.request
        if not access.can_answer_request(principal, request):
            raise _not_found()
        if request.status == RequestStatus.answered.value:
            raise Conflict("此需求已答复", code="already_answered")
        if request.status != RequestStatus.sent.value:
            raise Conflict("此需求不能答复", code="request_not_open")
        ids = list(dict.fromkeys(d.strip() for d in document_ids if d and d.strip()))
        if not ids:
            raise InvalidField("document_ids", "请选择至少一份材料", code="missing_field")
        if len(ids) > MAX_ANSWER_DOCUMENTS:
            raise InvalidField(
                "document_ids", f"最多 {MAX_ANSWER_DOCUMENTS} 份材料", code="too_many"
            )
        documents = []
        asking = access.asking_departments(request)
        for document_id in ids:
            document = session.get(Document, document_id[:64])
            if (
                document is None
                or document.withdrawn_at is not None
                or document.township_id != request.township_id
            ):
                raise NotFound("文档不存在", code="document_not_found")
            if not all(access.shared_with_department(document, org) for org in asking):
                # A document's readers cannot be changed once it is filed: say how to widen them.
                raise InvalidField(
                    "document_ids",
                    f"“{document.title}”的公开范围不含提出需求的{'、'.join(request.department_names)}，"
                    "不能用于答复。请先撤回这份材料，再以“所有县直部门”（或指定部门中勾选"
                    "这些部门）为公开范围重新上传，然后用新上传的材料答复",
                    code="document_not_shared",
                )
            documents.append(document)
        repeated = all(document.created_at < request.created_at for document in documents)
        event = step.record(
            document_ids=ids, repeated=repeated, departments=request.department_names
        )
        request.status = RequestStatus.answered.value
        request.repeated = repeated
        notifications.mark_request_done(session, request_id=request.id, org_id=request.township_id)
        request.answered_at = event.at
        request.answer_documents = [
            RequestDocument(document_id=document_id, position=position)
            for position, document_id in enumerate(ids)
        ]
        session.flush()
        step.tell_departments(
            NotificationKind.request_answered,
            f"{request.township.name}已答复“{request.title}”（{len(ids)} 份材料）",
            document_id=ids[0],
        )

    return _run(backends, principal, ip, AuditAction.request_answer, request_id, change)


def answer_with_filed_slot(
    backends: Backends, *, principal: Principal, document_id: str, ip: str | None
) -> list[int]:
    """The open requests a township's new document fills, answered with it: those sent to the
    township for the catalog item and period the document was filed under. The clerk who files
    the slot has answered them; asking again would be the repeated request the system ends. A
    request whose asking departments the document's readers leave out stays open for the clerk.
    The ids of the requests answered."""
    with backends.db.session() as session:
        document = session.get(Document, document_id)
        if document is None or document.catalog_item_id is None:
            return []
        open_requests = session.scalars(
            select(MaterialRequest).where(
                MaterialRequest.township_id == document.township_id,
                MaterialRequest.catalog_item_id == document.catalog_item_id,
                MaterialRequest.status == RequestStatus.sent.value,
                MaterialRequest.period.is_(None)
                if document.period is None
                else MaterialRequest.period == document.period,
            )
        ).all()
        answerable = [
            request.id
            for request in open_requests
            if access.can_answer_request(principal, request)
            and all(
                access.shared_with_department(document, org)
                for org in access.asking_departments(request)
            )
        ]
    answered = []
    for request_id in answerable:
        try:
            answer(
                backends,
                principal=principal,
                request_id=request_id,
                document_ids=[document_id],
                ip=ip,
            )
        except Conflict:
            continue  # answered in the meantime
        answered.append(request_id)
    return answered


def discard(
    backends: Backends, *, principal: Principal, request_id: int | str, ip: str | None
) -> None:
    """Delete a draft its department no longer needs (nothing was sent; the log keeps it)."""

    def change(step: _Step) -> None:
        _require_draft_of(principal, step.request)
        step.record()
        step.session.delete(step.request)

    _run(backends, principal, ip, AuditAction.request_discard, request_id, change)


def _box_clause(principal: Principal, box: str) -> ColumnElement[bool]:
    if box == "outbox":
        joined = select(RequestDepartment.request_id).where(
            RequestDepartment.org_id == principal.org_id
        )
        return or_(
            MaterialRequest.department_id == principal.org_id, MaterialRequest.id.in_(joined)
        )
    if box == "inbox":
        return and_(
            MaterialRequest.township_id == principal.org_id,
            MaterialRequest.status.in_(BOX_STATUSES[box]),
        )
    if box == "approval":
        return and_(
            MaterialRequest.catalog_item_id.is_(None),
            MaterialRequest.status.in_(BOX_STATUSES[box]),
        )
    return false()


def default_box(principal: Principal) -> str | None:
    """The box a role works from: departments their outbox, townships their inbox, coordinators
    the approval queue; None for roles without one."""
    return access.own_box(principal)


def list_box(
    backends: Backends,
    *,
    principal: Principal,
    box: str | None,
    status: str | None,
    page: int,
    size: int,
    ip: str | None,
) -> RequestPage:
    """One page of the caller's side of the requests: open ones first (soonest due), then the
    rest newest first."""
    if box is not None and box not in BOXES:
        raise InvalidField("box", "box 须为 outbox、inbox 或 approval", code="invalid_box")
    chosen = box or default_box(principal)
    if chosen is None or not access.can_list_box(principal, chosen):
        _record_denial(
            backends,
            principal=principal,
            ip=ip,
            action=AuditAction.request_read,
            reason="wrong_box",
        )
        raise Forbidden("您的角色没有这个需求列表", code="box_not_allowed")
    if status is not None and status not in {s.value for s in RequestStatus}:
        raise InvalidField("status", "未知的需求状态", code="invalid_status")
    query = select(MaterialRequest).where(_box_clause(principal, chosen))
    if status:
        query = query.where(MaterialRequest.status == status)
    waiting = MaterialRequest.status.in_(_WAITING[chosen])
    open_first = case((waiting, 0), else_=1)
    with backends.db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        found = list(
            session.scalars(
                query.order_by(
                    open_first,
                    case((waiting, MaterialRequest.due)),
                    MaterialRequest.created_at.desc(),
                    MaterialRequest.id.desc(),
                )
                .offset((page - 1) * size)
                .limit(size)
            )
        )
    return RequestPage(total=total, requests=found)


def run_due_dates(backends: Backends, *, now: datetime | None = None) -> int:
    """The periodic job: remind townships of sent requests due within two days, and mark and
    report those past due. Each reminder is sent once however often this runs; how many
    notifications it sent."""
    moment = now or utcnow()
    today = county_today(moment)
    sent = 0
    with backends.db.session() as session:
        requests = session.scalars(
            select(MaterialRequest).where(
                MaterialRequest.status == RequestStatus.sent.value,
                MaterialRequest.due <= today + timedelta(days=DUE_SOON_DAYS),
            )
        ).all()
        for request in requests:
            if today > request.due:
                if request.overdue_at is None:
                    event = backends.audit.append(
                        session,
                        actor=DUE_JOB_ACTOR,
                        action=AuditAction.request_overdue,
                        outcome=Outcome.allowed,
                        details=_facts(request, due=request.due.isoformat()),
                    )
                    request.overdue_at = event.at
                sent += notify_org(
                    session,
                    backends.audit,
                    actor=DUE_JOB_ACTOR,
                    org_id=request.township_id,
                    kind=NotificationKind.request_overdue,
                    text=f"“{request.title}”已超过截止日期 {request.due.isoformat()}，"
                    f"{request.department.name}仍在等待",
                    request_id=request.id,
                )
            else:
                days = (request.due - today).days
                when = "今天" if days == 0 else f"{days} 天后"
                sent += notify_org(
                    session,
                    backends.audit,
                    actor=DUE_JOB_ACTOR,
                    org_id=request.township_id,
                    kind=NotificationKind.request_due,
                    text=f"“{request.title}”{when}（{request.due.isoformat()}）截止",
                    request_id=request.id,
                )
    return sent


def reopen_draft(
    backends: Backends, *, principal: Principal, request_id: int | str, ip: str | None
) -> Draft:
    """A draft of the caller's department shown again (on a page after it was created), with
    its matches and the open requests it could join found afresh."""
    request = get(backends, principal=principal, request_id=request_id, ip=ip)
    if not access.can_decide_request(principal, request):
        raise Forbidden("只有提出需求的部门可以处理此需求", code="not_request_owner")
    if request.status != RequestStatus.draft.value:
        raise Conflict("此需求已处理，不再是草稿", code="request_not_draft")
    matches = find_matches(
        backends,
        principal=principal,
        township_id=request.township_id,
        title=request.title,
        category=request.category,
        period=request.period,
        catalog_item_id=request.catalog_item_id,
    )
    with backends.db.session() as session:
        open_requests = _open_requests(
            session,
            township_id=request.township_id,
            category=request.category,
            period=request.period,
        )
        # Sending needs a reason when the page the clerk sees shows matches.
        stored = session.get(MaterialRequest, request.id)
        if stored is not None and stored.matches_shown != len(matches):
            stored.matches_shown = request.matches_shown = len(matches)
    return Draft(request=request, matches=matches, open_requests=open_requests)
