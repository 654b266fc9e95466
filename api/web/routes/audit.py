"""The access log for auditors: filters, paging, CSV export, the newest signed checkpoint and
verification of the Merkle tree against every signed checkpoint; the log's public key for anyone
signed in.

Every read of events goes through ``services.audit_access``, so the page is refused and audited
exactly as the API's reads are; the page only turns Beijing dates into the service's moments.
The checkpoint panel is read after that check: the newest checkpoint (which anyone signed in may
fetch from the API) and how many events wait for the sequencer.

Documents are shown by their title and township (their number kept beside it), and the log is
filtered by a document chosen by words from its title or township: words that fit one document
filter by it, words that fit several list them to choose from (only the page does this: the API
and the coded CSV know documents by number).

A search says in words what was typed, how it was read, whether it was widened and which
documents the searcher was shown (the details as recorded folded beside them); a document's log
also holds the searches that showed it, and so does the page's CSV export of it (the API's
``document_id`` filter keeps to the events naming the document).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from api.deps import BackendsDep, ClientIP, PageNumber
from api.routes.audit import csv_response
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
from services.audit_words import DocumentName, SearchWords, recorded_text, search_in_words
from services.backends import Backends
from services.errors import InvalidField
from services.models import AuditEvent, utcnow
from services.sessions import ActiveSession
from services.signed_notes import NoteError, Verifier, verified_checkpoint

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# How many documents words matching several list to choose from (the newest).
DOCUMENT_CHOICES = 20
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
EXPORT_URL = "/audit/export.csv"
PUBLIC_KEY_FILENAME = "audit-public-key.txt"
_OUTCOME_BADGES = {
    Outcome.allowed.value: "badge-ok",
    Outcome.denied.value: "badge-error",
    Outcome.error.value: "badge-warn",
}


@dataclass(frozen=True)
class LogQuery:
    """The filters as typed on the page (empty = any); dates are Beijing calendar days. Words
    for a document are resolved to its number (``DocumentChoice``) before the log is read."""

    actor: str = ""
    org: str = ""
    action: str = ""
    outcome: str = ""
    document_id: str = ""
    document: str = ""  # words from a document's title or township, to find it by
    since: str = ""
    until: str = ""
    # "1": a document's log also lists the searches whose results showed it (every opening of
    # the search page lists materials, so these can be many; the auditor asks for them).
    searches: str = ""

    def params(self) -> dict[str, str]:
        """The filters that are set, for the page's own links."""
        return {name: value for name, value in asdict(self).items() if value}

    def to_filter(self) -> AuditFilter:
        """The service's filter: a start date from its first moment, an end date to its last;
        a document's log, when asked, with the searches whose results listed it."""
        since, until = _day(self.since, "since"), _day(self.until, "until")
        filters = audit_access.make_filter(
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
        if self.document_id and self.searches:
            return replace(filters, with_searches=True)
        return filters


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


@dataclass(frozen=True)
class SearchRow:
    """A search event as the page says it: its words (``SearchWords``), the documents the
    searcher was shown by title and township (None for a number the database has no document
    of), and the details exactly as recorded, folded away for testimony."""

    words: SearchWords
    documents: list[tuple[str, DocumentName | None]]
    recorded: str


@dataclass(frozen=True)
class EventRow:
    """One logged event as the page shows it."""

    event: AuditEvent
    action_label: str
    outcome_label: str
    outcome_badge: str
    document: DocumentName | None  # the document the event names, when the database has it
    details_short: str
    details_full: list[tuple[str, str]] | None  # every detail, when the short text leaves some out
    details_recorded: str  # the codes the words stand in for, as recorded ("" when none)
    search: SearchRow | None = None  # a search, said in words instead of its details


def _is_search(event: AuditEvent) -> bool:
    return event.action == AuditAction.search.value and isinstance(event.details, dict)


def _row(event: AuditEvent, names: dict[str, DocumentName]) -> EventRow:
    pairs = audit_words.detail_pairs(dict(event.details))
    text = "; ".join(f"{name}: {value}" for name, value in pairs)
    folded = len(text) > SHORT_DETAILS
    search = None
    if _is_search(event):
        words = search_in_words(event.details)
        search = SearchRow(
            words=words,
            documents=[(number, names.get(number)) for number in words.document_ids],
            recorded=recorded_text(event.details),
        )
    return EventRow(
        event=event,
        action_label=ACTION_LABELS.get(event.action, event.action),
        outcome_label=OUTCOME_LABELS.get(event.outcome, event.outcome),
        outcome_badge=_OUTCOME_BADGES.get(event.outcome, "badge-muted"),
        document=names.get(event.document_id) if event.document_id else None,
        details_short=text[:SHORT_DETAILS] + "…" if folded else text,
        details_full=pairs if folded else None,
        details_recorded=audit_words.recorded_values(dict(event.details)),
        search=search,
    )


def _named_documents(events: list[AuditEvent]) -> list[str]:
    """The documents a page of events names: each event's own, and those a search showed."""
    numbers = [event.document_id for event in events if event.document_id]
    for event in events:
        if _is_search(event):
            numbers += search_in_words(event.details).document_ids
    return numbers


@dataclass(frozen=True)
class DocumentChoice:
    """The document the log is filtered by, as the page says it: chosen by its number (a row's
    只看此材料, or a number typed) or found by words; or, for words that fit no document or
    several, what they matched, for the auditor to choose from."""

    words: str = ""  # as typed ("" when chosen by number)
    chosen: DocumentName | None = None  # the document filtered by, when the database has it
    matches: list[DocumentName] = field(default_factory=list)  # several fit: the newest
    total: int = 0  # how many documents the words fit

    @property
    def pending(self) -> bool:
        """Words that fit no document or several: the log waits for a choice."""
        return bool(self.words) and self.total != 1


def _document_number(text: str) -> str | None:
    """A document's full number as typed or pasted (any case, with or without hyphens)."""
    try:
        return str(uuid.UUID(text)) if len(text) in (32, 36) else None
    except ValueError:
        return None


def choose_document(
    backends: Backends, web: ActiveSession, ip: str | None, query: LogQuery
) -> tuple[LogQuery, DocumentChoice]:
    """The query with words for a document turned into that document's number when they fit
    exactly one (words replace a document chosen before), and what the page says about it."""
    words = " ".join(query.document.split())
    number = _document_number(words) if words else None
    if number is not None:
        query = replace(query, document_id=number, document="")
    elif words:
        found = audit_access.find_documents(
            backends, principal=web.principal, words=words, limit=DOCUMENT_CHOICES, ip=ip
        )
        if found.total != 1:
            # Nothing is filtered by a document until one is chosen.
            query = replace(query, document_id="", document=words)
            return query, DocumentChoice(words, None, found.documents, found.total)
        query = replace(query, document_id=found.documents[0].id, document="")
        return query, DocumentChoice(words, found.documents[0], [], 1)
    if not query.document_id:
        return replace(query, document=""), DocumentChoice()
    names = audit_access.document_names(
        backends, principal=web.principal, document_ids=[query.document_id], ip=ip
    )
    return query, DocumentChoice(chosen=names.get(query.document_id))


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


SIGNATURE_OK = "有效：已用本系统的日志公钥核对，确为本系统所签"
REPORT_TAMPERING = (
    "请截图保存本页，不要改动任何数据，并立即报告本单位审计（纪检）负责人和系统管理员，"
    "查明日志是何时、被谁改动的。"
)


def signature_words(verifier: Verifier | None, note: str, size: int, root: bytes) -> str:
    """A checkpoint's signature checked with the configured public key (never one read from the
    database), in words."""
    if verifier is None:
        return "未能核对：本服务器没有配置日志公钥，请告知系统管理员"
    try:
        signed = verified_checkpoint(note, verifier)
    except NoteError:
        return "无效：不是本系统的日志密钥所签，这个检查点不可信。" + REPORT_TAMPERING
    if (signed.size, signed.root) != (size, root):
        return "无效：签名的内容与数据库中的检查点记录不符，这个检查点不可信。" + REPORT_TAMPERING
    return SIGNATURE_OK


# What a failed check means, for an auditor without the technical terms (CHECK_NAMES has them).
PLAIN_CHECKS: dict[str, str] = {
    "leaf_missing": "有记录被删除，或记录的序号被改动",
    "event_missing": "有记录被删除",
    "leaf_mismatch": "有记录的内容在签名之后被改动",
    "checkpoint_root": "有记录在签名之后被改动、删除、插入或调换了顺序",
    "checkpoint_signature": "签名检查点本身的签名不对：检查点被伪造或改动",
    "truncated": "日志末尾的记录被删除（日志比已签名的还短）",
    "exported_checkpoint": "另存在文件存储中的签名检查点与日志不符",
    "event_inserted": "有记录被插入到已签名的记录之间",
    "receipt": "回执与日志不符",
    "archive_missing": "已归档清理的记录，其归档文件找不到了",
}


@dataclass(frozen=True)
class VerifyWords:
    """A verification's result as the page says it: one sentence, what it means for the records,
    whom to tell when something is wrong, and the technical terms for the collapsed details."""

    sentence: str
    meaning: str
    action: str | None  # whom to tell
    check: str | None  # the check that failed, in technical terms
    detail: str | None


def verify_words(report: VerifyReport) -> VerifyWords:
    check = CHECK_NAMES.get(report.reason, report.reason) if report.reason else None
    if report.ok and report.checkpoints == 0:
        return VerifyWords(
            f"还不能证明日志未被改动：已重新计算 {report.events} 条记录，"
            "但还没有签名检查点可以对照。",
            "记录要先签名，才能核对；签名通常在记录写入后几秒内完成，请稍后再核对一次。",
            "若一直如此，请告知系统管理员检查索引进程是否在运行。",
            None,
            None,
        )
    if report.ok:
        return VerifyWords(
            f"日志完整，未被改动：已核对 {report.events} 条记录，"
            f"与 {report.checkpoints} 个签名检查点一致。",
            "这说明从第一条记录起，没有任何已签名的记录被修改、删除、插入或调换顺序，"
            "这些记录可以作为依据。",
            None,
            None,
            None,
        )
    if report.reason == "no_key":
        return VerifyWords(
            "无法核对日志：本服务器没有配置日志公钥，签名无从核对。",
            "这不说明日志被改动过，只是现在无法证明它没有被改动。",
            "请告知系统管理员配置日志公钥后再核对。",
            check,
            report.detail,
        )
    first, last = report.first_bad_seq, report.last_bad_seq
    plain = PLAIN_CHECKS.get(report.reason or "", "日志与签名检查点不符")
    # The verification stops at the first problem: what comes after it was not checked.
    earlier = "；此前的记录未发现问题。" if first is not None and first > 1 else "。"
    if first is not None and last is not None and last > first:
        sentence = f"日志未通过核对：序号 {first} 至 {last} 之间有记录被改动过。"
        meaning = (
            f"{plain}。改动落在两个签名检查点之间，只能确定在序号 {first} 至 {last} 之间，"
            f"无法确定是哪一条；序号 {first} 及之后的记录都不能作为依据{earlier}"
        )
    elif first is not None:
        sentence = f"日志未通过核对：从序号 {first} 的记录起，与签名检查点不符。"
        meaning = f"{plain}。序号 {first} 及之后的记录都不能作为依据{earlier}"
    else:
        sentence = f"日志未通过核对：{plain}。"
        meaning = "日志的签名检查点不可信，日志中的记录暂时都不能作为依据。"
    return VerifyWords(sentence, meaning, REPORT_TAMPERING, check, report.detail)


def _log_page(
    request: Request,
    web: ActiveSession,
    backends: Backends,
    ip: str | None,
    query: LogQuery,
    page: int,
    report: VerifyReport | None,
) -> Response:
    query, choice = choose_document(backends, web, ip, query)
    filters = query.to_filter()
    people: dict[str, str] = {}  # the accounts' display names, by recorded username
    if choice.pending:
        # Words that fit no document or several: no events until one is chosen.
        rows: list[EventRow] = []
        total = 0
    else:
        found = audit_access.read_events(
            backends, principal=web.principal, filters=filters, page=page, size=PAGE_SIZE, ip=ip
        )
        names = audit_access.document_names(
            backends,
            principal=web.principal,
            document_ids=_named_documents(found.events),
            ip=ip,
        )
        rows = [_row(event, names) for event in found.events]
        people = audit_access.actor_names(
            backends,
            principal=web.principal,
            actors=[event.actor for event in found.events],
            ip=ip,
        )
        total = found.total
    params = query.params()
    # The other filters, for links that choose a document or leave it out.
    other_params = {
        name: value
        for name, value in params.items()
        if name not in ("document", "document_id", "searches")
    }
    # The chosen document's log with or without the searches that showed it.
    without_searches = {name: value for name, value in params.items() if name != "searches"}
    searches_url = "/audit?" + urlencode(
        without_searches if query.searches else {**without_searches, "searches": "1"}
    )

    def url_for_page(number: int) -> str:
        return "/audit?" + urlencode({**params, "page": number})

    def only_document_url(document_id: str) -> str:
        return "/audit?" + urlencode({**other_params, "document_id": document_id})

    return render(
        request,
        "audit.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        query=query,
        params=params,
        choice=choice,
        rows=rows,
        people=people,
        total=total,
        page=page,
        size=PAGE_SIZE,
        url_for_page=url_for_page,
        only_document_url=only_document_url,
        any_document_url="/audit" + ("?" + urlencode(other_params) if other_params else ""),
        searches_url=searches_url,
        export_url=EXPORT_URL + ("?" + urlencode(params) if params else ""),
        actions=[(action.value, ACTION_LABELS.get(action, action.value)) for action in AuditAction],
        outcomes=list(OUTCOME_LABELS.items()),
        org_names=[org.name for org in administration.list_orgs(backends, kind=None)],
        checkpoint=checkpoint_status(backends),
        report=report,
        words=verify_words(report) if report is not None else None,
        stale_minutes=int(STALE_AFTER.total_seconds() // 60),
        public_key_url=PUBLIC_KEY_URL,
        RELAXED_WORDS=audit_words.RELAXED_WORDS,
    )


def _log_query(
    actor: Annotated[str, Query(max_length=200)] = "",
    org: Annotated[str, Query(max_length=100)] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    outcome: Annotated[str, Query(max_length=10)] = "",
    document_id: Annotated[str, Query(max_length=64)] = "",
    document: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    searches: Annotated[str, Query(max_length=5)] = "",
) -> LogQuery:
    # A filter form sends every field, the unused ones empty: empty means "any".
    return LogQuery(
        actor=actor,
        org=org.strip(),
        action=action,
        outcome=outcome,
        document_id=document_id.strip(),
        document=document.strip(),
        since=since,
        until=until,
        searches="1" if searches in ("1", "on", "true") else "",
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


@router.get(EXPORT_URL)
def export_log(
    web: SignedIn, backends: BackendsDep, ip: ClientIP, query: LogQueryDep
) -> StreamingResponse:
    """The events the page shows with the same filters (a document's log with the searches
    that listed it), as CSV for people: Chinese headings and names, Beijing time, each
    document's title and township, and the details in words."""
    if query.document and not query.document_id:
        query, choice = choose_document(backends, web, ip, query)
        if choice.pending:
            raise InvalidField("document", "请先选定一份材料，再导出它的记录")
    rows = audit_access.export_events(
        backends, principal=web.principal, filters=query.to_filter(), ip=ip, for_people=True
    )
    return csv_response(rows)


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
