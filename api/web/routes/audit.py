"""The access log for auditors: filters, paging, CSV export, the newest signed checkpoint and
verification of the Merkle tree against every signed checkpoint; the log's public key for anyone
signed in.

Every read of events goes through ``services.audit_access``, so the page is refused and audited
exactly as the API's reads are; the page only turns Beijing dates into the service's moments.
The checkpoint panel is read after that check: the newest checkpoint (which anyone signed in may
fetch from the API) and how many events wait for the sequencer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response

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
from services.audit_keys import load_verifier
from services.audit_verify import CHECK_NAMES, VerifyReport
from services.backends import Backends
from services.errors import InvalidField
from services.models import AuditEvent, utcnow
from services.sessions import ActiveSession
from services.signed_notes import NoteError, Verifier, verified_checkpoint

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# Details longer than this fold away behind their first characters.
SHORT_DETAILS = 80

# What each logged action is called on the page; an action without a label shows its code.
ACTION_LABELS = ACTION_NAMES
OUTCOME_LABELS = OUTCOME_NAMES
# The sequencer signs within seconds; a checkpoint older than this while events have waited
# longer than WAIT_GRACE (the page's own read always waits a moment) means it has stopped.
STALE_AFTER = timedelta(minutes=5)
WAIT_GRACE = timedelta(minutes=1)
PUBLIC_KEY_URL = "/audit/public-key.txt"
PUBLIC_KEY_FILENAME = "audit-public-key.txt"
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
    details_recorded: str  # the codes the words stand in for, as recorded ("" when none)


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
        details_recorded=audit_words.recorded_values(dict(event.details)),
    )


def age_in_words(age: timedelta) -> str:
    """How long ago, as people say it: 刚刚, 3 秒前, 2 分钟前, 5 小时前, 4 天前."""
    seconds = int(age.total_seconds())
    if seconds < 1:
        return "刚刚"
    for unit, length in (("天", 86_400), ("小时", 3_600), ("分钟", 60)):
        if seconds >= length:
            return f"{seconds // length} {unit}前"
    return f"{seconds} 秒前"


@dataclass(frozen=True)
class CheckpointStatus:
    """The newest signed checkpoint and the events the sequencer has not reached yet."""

    tree_size: int | None  # None: no checkpoint signed yet
    signed_at: datetime | None
    note: str | None
    age: str  # how long ago it was signed, in words ("" without one)
    waiting: int  # events without a sequence number yet
    stale: bool  # events have waited for minutes and the newest checkpoint is old
    signature: str = ""  # the note's signature checked with the log's public key, in words

    @classmethod
    def of(
        cls,
        *,
        tree_size: int | None,
        signed_at: datetime | None,
        note: str | None,
        waiting: int,
        oldest_waiting_at: datetime | None,
        now: datetime,
    ) -> CheckpointStatus:
        stuck = oldest_waiting_at is not None and now - oldest_waiting_at > WAIT_GRACE
        old = signed_at is not None and now - signed_at > STALE_AFTER
        return cls(
            tree_size=tree_size,
            signed_at=signed_at,
            note=note,
            age=age_in_words(now - signed_at) if signed_at is not None else "",
            waiting=waiting,
            stale=waiting > 0 and stuck and old,
        )


def checkpoint_status(backends: Backends) -> CheckpointStatus:
    """The newest checkpoint and the events waiting for the sequencer, as the page says them."""
    state = audit_access.sequencing_state(backends)
    latest = state.latest
    status = CheckpointStatus.of(
        tree_size=latest.tree_size if latest else None,
        signed_at=latest.signed_at if latest else None,
        note=latest.note if latest else None,
        waiting=state.waiting,
        oldest_waiting_at=state.oldest_waiting_at,
        now=utcnow(),
    )
    if latest is None:
        return status
    signature = signature_words(
        load_verifier(backends.settings), latest.note, latest.tree_size, bytes(latest.root_hash)
    )
    return replace(status, signature=signature)


def signature_words(verifier: Verifier | None, note: str, size: int, root: bytes) -> str:
    """A checkpoint's signature checked with the configured public key (never one read from the
    database), in words."""
    if verifier is None:
        return "未核对：本服务器没有配置日志公钥"
    try:
        signed = verified_checkpoint(note, verifier)
    except NoteError:
        return "无效：签名与日志公钥不符"
    if (signed.size, signed.root) != (size, root):
        return "无效：签名的内容与检查点记录不符"
    return "有效（已用日志公钥核对）"


@dataclass(frozen=True)
class VerifyWords:
    """A verification's result as the page says it."""

    sentence: str
    check: str | None  # the check that failed, in words
    detail: str | None


def verify_words(report: VerifyReport) -> VerifyWords:
    if report.ok:
        return VerifyWords("校验通过：日志自第一条起未被修改、删除、插入或重排。", None, None)
    first, last = report.first_bad_seq, report.last_bad_seq
    if first is not None and last is not None and last > first:
        where = f"问题出在第 {first} 至 {last} 条事件之间（两个签名检查点之间，无法确定到某一条）"
    elif first is not None:
        where = f"自第 {first} 条事件起的记录不可信"
    else:
        where = "日志与其签名检查点不符"
    check = CHECK_NAMES.get(report.reason, report.reason) if report.reason else None
    return VerifyWords(f"校验未通过：{where}。", check, report.detail)


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
        checkpoint=checkpoint_status(backends),
        report=report,
        words=verify_words(report) if report is not None else None,
        stale_minutes=int(STALE_AFTER.total_seconds() // 60),
        public_key_url=PUBLIC_KEY_URL,
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
    """Recompute the Merkle tree, hold it against every signed checkpoint and say in words
    whether the log is intact, or where and which check failed."""
    report = audit_access.verify(backends, principal=web.principal, ip=ip)
    return _log_page(request, web, backends, ip, query, 1, report=report)


@router.get(PUBLIC_KEY_URL)
def public_key_file(_web: SignedIn, backends: BackendsDep) -> Response:
    """The log's public (verifier) key as a file to keep beside receipts, for anyone signed in:
    with it a receipt is checked offline (``materials audit verify-receipt``)."""
    return PlainTextResponse(
        audit_access.verifier(backends).text() + "\n",
        headers={
            "Content-Disposition": f'attachment; filename="{PUBLIC_KEY_FILENAME}"',
            "Cache-Control": "no-store",
        },
    )
