"""The access log for auditors: filters, paging, CSV export and verification of the hash chain.

Every read goes through ``services.audit_access``, so the page is refused and audited exactly as
the API's reads are; the page only turns Beijing dates into the service's moments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import BackendsDep, ClientIP, PageNumber
from api.web.render import LOCAL_TIME, render
from api.web.session import SignedIn
from services import administration, audit_access, audit_words
from services.audit import (
    ACTION_NAMES,
    OUTCOME_NAMES,
    AuditAction,
    AuditFilter,
    Outcome,
)
from services.audit_verify import VerifyReport
from services.backends import Backends
from services.errors import InvalidField
from services.models import AuditEvent
from services.sessions import ActiveSession

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# Details longer than this fold away behind their first characters.
SHORT_DETAILS = 80

# What each logged action is called on the page; an action without a label shows its code.
ACTION_LABELS = ACTION_NAMES
OUTCOME_LABELS = OUTCOME_NAMES
_OUTCOME_BADGES = {
    Outcome.allowed.value: "badge-ok",
    Outcome.denied.value: "badge-error",
    Outcome.error.value: "badge-warn",
}


@dataclass(frozen=True)
class LogQuery:
    """The filters as typed on the page (empty = any); dates are Beijing calendar days."""

    actor: str = ""
    org: str = ""
    action: str = ""
    outcome: str = ""
    document_id: str = ""
    since: str = ""
    until: str = ""

    def params(self) -> dict[str, str]:
        """The filters that are set, for the page's own links."""
        return {name: value for name, value in asdict(self).items() if value}

    def to_filter(self) -> AuditFilter:
        """The service's filter: a start date from its first moment, an end date to its last."""
        since, until = _day(self.since, "since"), _day(self.until, "until")
        return audit_access.make_filter(
            actor=self.actor or None,
            org=self.org or None,
            document_id=self.document_id or None,
            action=self.action or None,
            outcome=_outcome(self.outcome),
            since=datetime.combine(since, time.min, LOCAL_TIME) if since else None,
            until=(
                datetime.combine(until + timedelta(days=1), time.min, LOCAL_TIME)
                - timedelta(microseconds=1)
                if until
                else None
            ),
        )


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidField(field, "日期格式应为 2026-01-31") from None


def _outcome(value: str) -> Outcome | None:
    if not value:
        return None
    try:
        return Outcome(value)
    except ValueError:
        raise InvalidField("outcome", "结果须为 允许、拒绝 或 出错") from None


def _api_params(filters: AuditFilter) -> dict[str, str]:
    """The same filters as the JSON API and the CSV export take them (moments with offset)."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else str(value)
        for name, value in asdict(filters).items()
        if value is not None
    }


@dataclass(frozen=True)
class EventRow:
    """One logged event as the page shows it."""

    event: AuditEvent
    action_label: str
    outcome_label: str
    outcome_badge: str
    document_title: str | None  # the document the event is about, when it names one
    details_short: str
    details_full: list[tuple[str, str]] | None  # every detail, when the short text leaves some out


def _row(event: AuditEvent, titles: dict[str, str]) -> EventRow:
    pairs = audit_words.detail_pairs(dict(event.details))
    text = "; ".join(f"{name}: {value}" for name, value in pairs)
    folded = len(text) > SHORT_DETAILS
    return EventRow(
        event=event,
        action_label=ACTION_LABELS.get(event.action, event.action),
        outcome_label=OUTCOME_LABELS.get(event.outcome, event.outcome),
        outcome_badge=_OUTCOME_BADGES.get(event.outcome, "badge-muted"),
        document_title=titles.get(event.document_id) if event.document_id else None,
        details_short=text[:SHORT_DETAILS] + "…" if folded else text,
        details_full=pairs if folded else None,
    )


def _log_page(
    request: Request,
    web: ActiveSession,
    backends: Backends,
    ip: str | None,
    query: LogQuery,
    page: int,
    report: VerifyReport | None,
) -> Response:
    filters = query.to_filter()
    found = audit_access.read_events(
        backends, principal=web.principal, filters=filters, page=page, size=PAGE_SIZE, ip=ip
    )
    titles = audit_access.document_titles(
        backends,
        principal=web.principal,
        document_ids=[event.document_id for event in found.events if event.document_id],
        ip=ip,
    )
    params = query.params()

    def url_for_page(number: int) -> str:
        return "/audit?" + urlencode({**params, "page": number})

    return render(
        request,
        "audit.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        query=query,
        params=params,
        rows=[_row(event, titles) for event in found.events],
        total=found.total,
        page=page,
        size=PAGE_SIZE,
        url_for_page=url_for_page,
        export_url="/api/v1/audit/export.csv?"
        + urlencode({**_api_params(filters), "labels": "zh"}),
        actions=[(action.value, ACTION_LABELS.get(action, action.value)) for action in AuditAction],
        outcomes=list(OUTCOME_LABELS.items()),
        org_names=[org.name for org in administration.list_orgs(backends, kind=None)],
        report=report,
    )


def _log_query(
    actor: Annotated[str, Query(max_length=200)] = "",
    org: Annotated[str, Query(max_length=100)] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    outcome: Annotated[str, Query(max_length=10)] = "",
    document_id: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
) -> LogQuery:
    # A filter form sends every field, the unused ones empty: empty means "any".
    return LogQuery(
        actor=actor,
        org=org.strip(),
        action=action,
        outcome=outcome,
        document_id=document_id.strip(),
        since=since,
        until=until,
    )


LogQueryDep = Annotated[LogQuery, Depends(_log_query)]


@router.get("/audit")
def audit_log(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    query: LogQueryDep,
    page: PageNumber = 1,
) -> Response:
    """The access log, newest first, filtered and paged; the read itself is logged."""
    return _log_page(request, web, backends, ip, query, page, report=None)


@router.get("/audit/verify")
def verify_log(
    request: Request, web: SignedIn, backends: BackendsDep, ip: ClientIP, query: LogQueryDep
) -> Response:
    """Recompute the hash chain and say in one sentence whether the log is intact."""
    report = audit_access.verify(backends, principal=web.principal, ip=ip)
    return _log_page(request, web, backends, ip, query, 1, report=report)
