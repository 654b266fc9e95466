"""The access log: events appended in their action's own transaction, never changed.

An event is inserted without a sequence number and without any lock shared with other requests;
the sequencer (``services.audit_sequencer``) later numbers committed events and appends them to a
Merkle tree whose signed checkpoints make the log provable (``services.audit_verify``). An
event's leaf bytes are its fields as sorted compact JSON (``leaf_bytes``): anyone can recompute a
leaf from the event object the API shows.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Select, and_, func, insert, or_, select
from sqlalchemy.orm import Session

from services.db import Database
from services.models import COUNTY_TIME, ROLE_NAMES, AuditEvent, utcnow

MAX_ACTOR_LENGTH = 200
_INSERT_EVENT = insert(AuditEvent).returning(AuditEvent.id, AuditEvent.tx)
# Bursts followed at once by one process; beyond, new ones are counted together without an address.
MAX_BURSTS = 1000


class AuditAction(StrEnum):
    login = "login"
    logout = "logout"
    access = "access"  # a request whose token was missing, forged or expired
    upload = "upload"
    view = "view"
    usage_read = "usage_read"  # which departments viewed and downloaded a document
    list = "list"
    download = "download"
    preview = "preview"  # shown inline in the browser: a PDF, an image, or a text file's text
    receipt = "receipt"
    lookup = "lookup"
    search = "search"
    withdraw = "withdraw"
    audit_read = "audit_read"
    audit_export = "audit_export"
    audit_verify = "audit_verify"
    audit_archive = "audit_archive"  # events past retention exported, and maybe pruned
    org_create = "org_create"
    user_create = "user_create"
    user_disable = "user_disable"
    user_enable = "user_enable"
    user_password_reset = "user_password_reset"  # noqa: S105 - an action name, not a secret
    user_rename = "user_rename"  # an admin sets or changes an account's display name (姓名)
    password_change = "password_change"  # noqa: S105 - a user changes their own password
    category_create = "category_create"
    grant_create = "grant_create"
    # Two-person rule: a second person confirms an admin's change to an auditor or admin account,
    # or an admin's download grant; who reads what waits, and who reads the grants.
    user_confirm = "user_confirm"
    grant_confirm = "grant_confirm"
    confirmation_read = "confirmation_read"
    grant_read = "grant_read"
    admin = "admin"  # any other administrative request
    catalog_create = "catalog_create"
    catalog_update = "catalog_update"
    coverage_read = "coverage_read"
    # A request's life: every state change is one event, so the figures can be rebuilt from them.
    request_create = "request_create"  # a draft, with the matches it was shown
    request_accept = "request_accept"  # answered from the repository: the township is not asked
    request_join = "request_join"
    request_send = "request_send"  # sent to the township, or to the coordinator for approval
    request_discard = "request_discard"  # a draft deleted by its department
    request_approve = "request_approve"
    request_refuse = "request_refuse"
    request_answer = "request_answer"
    request_overdue = "request_overdue"  # found past its due date by the due-date job
    request_read = "request_read"
    notify = "notify"  # one in-app notification to one user
    notification_read = "notification_read"
    figures_read = "figures_read"
    # The county dictionary: words segmentation keeps whole (village names, programmes).
    # The virus scanner found malware in a stored file: quarantined, never indexed or served.
    quarantine = "quarantine"
    dictionary_add = "dictionary_add"
    dictionary_remove = "dictionary_remove"
    dictionary_read = "dictionary_read"
    # A signed-in caller's request refused for its parameters (an id out of range, a wrong type).
    invalid_input = "invalid_input"


class Outcome(StrEnum):
    allowed = "allowed"
    denied = "denied"
    error = "error"


# What people call them: on the audit page and in the export for people.
ACTION_NAMES: dict[str, str] = {
    AuditAction.login.value: "登录",
    AuditAction.logout.value: "退出",
    AuditAction.access.value: "身份校验",
    AuditAction.upload.value: "上传",
    AuditAction.view.value: "查看",
    AuditAction.usage_read.value: "查阅使用情况",
    AuditAction.list.value: "列表",
    AuditAction.download.value: "下载",
    AuditAction.preview.value: "预览",
    AuditAction.receipt.value: "回执",
    AuditAction.lookup.value: "查重",
    AuditAction.search.value: "检索",
    AuditAction.withdraw.value: "撤回",
    AuditAction.audit_read.value: "审计查阅",
    AuditAction.audit_export.value: "审计导出",
    AuditAction.audit_verify.value: "审计校验",
    AuditAction.audit_archive.value: "审计归档",
    AuditAction.org_create.value: "创建单位",
    AuditAction.user_create.value: "创建用户",
    AuditAction.user_disable.value: "停用用户",
    AuditAction.user_enable.value: "启用用户",
    AuditAction.user_password_reset.value: "重置密码",
    AuditAction.user_rename.value: "修改姓名",
    AuditAction.password_change.value: "修改本人密码",
    AuditAction.category_create.value: "添加材料类别",
    AuditAction.grant_create.value: "授予下载权限",
    AuditAction.user_confirm.value: "确认账号变更",
    AuditAction.grant_confirm.value: "确认下载授权",
    AuditAction.confirmation_read.value: "查阅待确认账号",
    AuditAction.grant_read.value: "查阅下载授权",
    AuditAction.admin.value: "其他管理操作",
    AuditAction.catalog_create.value: "新增目录材料",
    AuditAction.catalog_update.value: "修改目录材料",
    AuditAction.coverage_read.value: "查阅报送情况",
    AuditAction.request_create.value: "起草材料需求",
    AuditAction.request_accept.value: "采用已有材料",
    AuditAction.request_join.value: "并入同类需求",
    AuditAction.request_send.value: "发出材料需求",
    AuditAction.request_discard.value: "删除需求草稿",
    AuditAction.request_approve.value: "准入材料需求",
    AuditAction.request_refuse.value: "不予准入",
    AuditAction.request_answer.value: "答复材料需求",
    AuditAction.request_overdue.value: "需求逾期",
    AuditAction.request_read.value: "查阅材料需求",
    AuditAction.notify.value: "发送提醒",
    AuditAction.notification_read.value: "阅读提醒",
    AuditAction.figures_read.value: "查阅减负成效",
    AuditAction.quarantine.value: "隔离染毒文件",
    AuditAction.dictionary_add.value: "添加词库词语",
    AuditAction.dictionary_remove.value: "删除词库词语",
    AuditAction.dictionary_read.value: "查阅词库",
    AuditAction.invalid_input.value: "参数无效",
}
# The roles events record: the accounts' roles, and ``system`` for what no person did (a scheduled
# job, a command run on the server).
ACTOR_ROLE_NAMES: dict[str, str] = {**ROLE_NAMES, "system": "系统"}
# Actors that are not accounts, by the prefix of the name recorded: a job, or a command run by
# this operating-system user on the server.
_ACTOR_KINDS = {"system:": "系统任务", "cli:": "服务器命令行"}
_SYSTEM_JOBS = {"due-dates": "到期提醒"}


def actor_label(actor: str) -> str:
    """The actor as people read it: an account's username as it is, a job or a server command
    said in words with the name recorded (``system:due-dates`` → ``系统任务（到期提醒）``)."""
    for prefix, kind in _ACTOR_KINDS.items():
        if actor.startswith(prefix):
            name = actor[len(prefix) :]
            return f"{kind}（{_SYSTEM_JOBS.get(name, name)}）"
    return actor


OUTCOME_NAMES: dict[str, str] = {
    Outcome.allowed.value: "允许",
    Outcome.denied.value: "拒绝",
    Outcome.error.value: "出错",
}


@dataclass(frozen=True)
class Actor:
    """Who made a request, as the log records it: username as typed, org name, role, client IP."""

    username: str
    org: str | None = None
    role: str | None = None
    ip: str | None = None


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    org: str | None = None  # the organisation's name as the event recorded it
    document_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # With a document: also the searches whose results listed it (their ``document_ids``), as
    # the audit page filters; the API filters by the events' ``document_id`` alone (None).
    with_searches: bool | None = None


@dataclass
class EventPage:
    total: int
    events: list[AuditEvent] = field(default_factory=list)


@dataclass
class _Burst:
    """Refusals of one kind (action, actor, address, reason) counted since the first was logged."""

    actor: Actor
    action: AuditAction
    outcome: Outcome
    reason: Any
    started: float  # time.monotonic()
    last_at: datetime
    count: int = 1
    first_at: datetime | None = None  # when the first was logged; None while it is being written

    def summary(self) -> dict[str, Any]:
        details: dict[str, Any] = {} if self.reason is None else {"reason": self.reason}
        assert self.first_at is not None
        details.update(
            count=self.count,
            first_at=event_time(self.first_at),
            last_at=event_time(self.last_at),
        )
        return details


def event_time(at: datetime) -> str:
    """An event's time as its object and its leaf bytes show it: UTC, microseconds."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_fields(event: AuditEvent, seq: int) -> dict[str, Any]:
    """The fields an event's leaf covers, as the event object shows them."""
    return {
        "seq": seq,
        "at": event_time(event.at),
        "actor": event.actor,
        "org": event.org,
        "role": event.role,
        "action": event.action,
        "document_id": event.document_id,
        "outcome": event.outcome,
        "ip": event.ip,
        "details": event.details,
    }


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, non-ASCII unescaped, UTF-8: the leaf bytes of an event object."""
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def leaf_bytes(event: AuditEvent, seq: int) -> bytes:
    return canonical_bytes(event_fields(event, seq))


class AuditLog:
    """Appends events to the access log and reads them."""

    def __init__(self, db: Database, *, burst_seconds: float = 60.0) -> None:
        self._db = db
        self._burst_seconds = burst_seconds
        self._bursts: OrderedDict[tuple[Any, ...], _Burst] = OrderedDict()
        self._bursts_lock = threading.Lock()

    def append(
        self,
        session: Session | Connection,
        *,
        actor: Actor,
        action: AuditAction,
        outcome: Outcome,
        document_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one event inside the caller's transaction (committed or rolled back with it).

        No lock is taken: the event gets its sequence number from the sequencer once committed.
        """
        values = {
            # Microsecond precision survives every supported database unchanged.
            "at": utcnow(),
            "actor": actor.username[:MAX_ACTOR_LENGTH],
            "org": actor.org,
            "role": actor.role,
            "action": action.value,
            "document_id": document_id,
            "outcome": outcome.value,
            "ip": actor.ip,
            "details": _json_safe(details or {}),
        }
        # A plain INSERT on the session's connection, not the ORM's unit of work: every search,
        # view and download appends one, and the flush cost more than the statement. The event
        # returned is not in the session; its id and transaction come back from the INSERT.
        connection = session if isinstance(session, Connection) else session.connection()
        event_id, tx = connection.execute(_INSERT_EVENT, values).one()
        return AuditEvent(id=event_id, tx=tx, **values)

    def record(
        self,
        *,
        actor: Actor,
        action: AuditAction,
        outcome: Outcome,
        document_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one event in a transaction of its own (for denials and reads)."""
        self._write_summaries(self._take_bursts(ended_only=True))
        with self._db.session() as session:
            return self.append(
                session,
                actor=actor,
                action=action,
                outcome=outcome,
                document_id=document_id,
                details=details,
            )

    def record_burst(
        self,
        *,
        actor: Actor,
        action: AuditAction,
        outcome: Outcome,
        details: dict[str, Any],
    ) -> None:
        """Record a refusal that comes in floods (a failed login, a bad token) without an event
        for each: the first of a burst (same action, actor, address and reason) is an
        event at once; the rest within ``burst_seconds`` are only counted, and one event
        ``{"reason", "count", "first_at", "last_at"}`` sums the burst up (count includes the
        first) when it has ended, before the log is read, or when the process stops."""
        reason = details.get("reason")
        key: tuple[Any, ...] = (
            action.value,
            outcome.value,
            actor.username[:MAX_ACTOR_LENGTH],
            actor.org,
            actor.role,
            actor.ip,
            reason,
        )
        now = time.monotonic()
        with self._bursts_lock:
            ended = self._take_ended(now)
            summary_actor = actor
            if key not in self._bursts and len(self._bursts) >= MAX_BURSTS:
                # Bursts from very many addresses at once: the first is still logged as it came,
                # the rest are counted together, so a spread-out flood stays a handful of events.
                summary_actor = Actor(username="")
                key = (action.value, outcome.value, "", None, None, None, reason)
            burst = self._bursts.get(key)
            first = burst is None
            if burst is not None:
                burst.count += 1
                burst.last_at = utcnow()
            else:
                burst = _Burst(summary_actor, action, outcome, reason, now, utcnow())
                self._bursts[key] = burst
        self._write_summaries(ended)
        if not first:
            return
        try:
            event = self.record(actor=actor, action=action, outcome=outcome, details=details)
        except BaseException:
            with self._bursts_lock:
                if self._bursts.get(key) is burst:
                    del self._bursts[key]
            raise
        burst.first_at = event.at

    def flush_bursts(self, *, closing: bool = False) -> None:
        """Write the summary of every burst with refusals not yet logged (before the log is read,
        and, with ``closing``, every burst still open when the process stops)."""
        self._write_summaries(self._take_bursts(ended_only=False, closing=closing))

    def _take_bursts(self, *, ended_only: bool, closing: bool = False) -> list[_Burst]:
        now = time.monotonic()
        with self._bursts_lock:
            if ended_only:
                return self._take_ended(now)
            taken = [
                key
                for key, burst in self._bursts.items()
                if closing or (burst.count > 1 and burst.first_at is not None)
            ]
            bursts = [self._bursts.pop(key) for key in taken]
        return [burst for burst in bursts if burst.count > 1 and burst.first_at is not None]

    def _take_ended(self, now: float) -> list[_Burst]:
        # Called with the lock held; bursts sit in the order they started.
        ended: list[_Burst] = []
        while self._bursts:
            key, burst = next(iter(self._bursts.items()))
            if now - burst.started < self._burst_seconds or burst.first_at is None:
                break
            del self._bursts[key]
            if burst.count > 1:
                ended.append(burst)
        return ended

    def _write_summaries(self, bursts: list[_Burst]) -> None:
        if not bursts:
            return
        with self._db.session() as session:
            for burst in bursts:
                self.append(
                    session,
                    actor=burst.actor,
                    action=burst.action,
                    outcome=burst.outcome,
                    details=burst.summary(),
                )

    def last_id(self) -> int:
        """The newest event's id (0 for an empty log): events after it have larger ids."""
        with self._db.session() as session:
            return session.scalar(select(func.max(AuditEvent.id))) or 0

    def count_recent(
        self,
        session: Session,
        *,
        actor: str,
        action: AuditAction,
        outcome: Outcome,
        since: datetime,
    ) -> int:
        """How many events of this kind an actor caused since a moment."""
        return (
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.actor == actor[:MAX_ACTOR_LENGTH],
                    AuditEvent.action == action.value,
                    AuditEvent.outcome == outcome.value,
                    AuditEvent.at >= since,
                )
            )
            or 0
        )

    def last_at(
        self, session: Session, *, actor: str, action: AuditAction, outcome: Outcome
    ) -> datetime | None:
        """When an actor last caused an event of this kind."""
        return session.scalar(
            select(func.max(AuditEvent.at)).where(
                AuditEvent.actor == actor[:MAX_ACTOR_LENGTH],
                AuditEvent.action == action.value,
                AuditEvent.outcome == outcome.value,
            )
        )

    def page(self, filters: AuditFilter, *, page: int, size: int) -> EventPage:
        """One page of events matching the filters, newest first."""
        self.flush_bursts()
        query = _filtered(select(AuditEvent), filters)
        with self._db.session() as session:
            total = (
                session.scalar(_filtered(select(func.count()).select_from(AuditEvent), filters))
                or 0
            )
            events = list(
                session.scalars(
                    query.order_by(AuditEvent.id.desc()).offset((page - 1) * size).limit(size)
                )
            )
        return EventPage(total=total, events=events)

    def export_csv(
        self,
        filters: AuditFilter,
        *,
        for_people: bool = False,
        rows_of: Callable[[Session, Sequence[AuditEvent]], Iterable[list[Any]]] | None = None,
        headings: Sequence[str] | None = None,
        before: int | None = None,
    ) -> Iterator[bytes]:
        """The matching events as CSV in UTF-8 with a BOM, newest first, for Excel; for people,
        with Chinese headings and names and the county's time instead of codes and UTC (and
        ``rows_of`` saying each chunk of events, such as services.audit_words with its details in
        words, under ``headings`` when it says more columns; it is given the export's session, to
        look up what a chunk names in one query). With ``before``, only events of smaller id: the
        log as it was before that event (the export's own, logged before the rows are read)."""
        self.flush_bursts()
        yield "\ufeff".encode()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(headings or (CSV_HEADINGS if for_people else CSV_COLUMNS))
        row_of = people_csv_row if for_people else csv_row
        query = _filtered(select(AuditEvent), filters)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        with self._db.session() as session:
            events = session.execute(
                query.order_by(AuditEvent.id.desc()).execution_options(yield_per=500)
            ).scalars()
            number = 0
            for chunk in events.partitions():
                for row in rows_of(session, chunk) if rows_of else map(row_of, chunk):
                    writer.writerow([_csv_cell(value) for value in row])
                    if number % 200 == 0:
                        yield buffer.getvalue().encode()
                        buffer.seek(0)
                        buffer.truncate()
                    number += 1
        yield buffer.getvalue().encode()


CSV_COLUMNS = (
    "seq",
    "at",
    "actor",
    "org",
    "role",
    "action",
    "document_id",
    "outcome",
    "ip",
    "details",
    "hash",
)


# The same columns, as an auditor reads them.
CSV_HEADINGS = (
    "序号",
    "时间（北京时间）",
    "人员",
    "单位",
    "角色",
    "操作",
    "材料编号",
    "结果",
    "IP 地址",
    "详情",
    "哈希",
)


def people_csv_row(event: AuditEvent) -> list[Any]:
    """``csv_row`` in words: names instead of codes, the county's time instead of UTC."""
    row = csv_row(event)
    row[1] = event.at.astimezone(COUNTY_TIME).strftime("%Y-%m-%d %H:%M:%S")
    row[2] = actor_label(event.actor)
    row[4] = ACTOR_ROLE_NAMES.get(event.role or "", event.role or "")
    row[5] = ACTION_NAMES.get(event.action, event.action)
    row[7] = OUTCOME_NAMES.get(event.outcome, event.outcome)
    return row


def csv_row(event: AuditEvent) -> list[Any]:
    leaf = event.leaf
    return [
        "" if leaf is None else leaf.seq,
        event_time(event.at),
        event.actor,
        event.org or "",
        event.role or "",
        event.action,
        event.document_id or "",
        event.outcome,
        event.ip or "",
        json.dumps(event.details, ensure_ascii=False, sort_keys=True),
        "" if leaf is None else leaf.leaf_hash.hex(),
    ]


def _csv_cell(value: Any) -> Any:
    # A spreadsheet would run a cell starting with = + - @ as a formula: keep such text as text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _filtered(query: Select[Any], filters: AuditFilter) -> Select[Any]:
    if filters.actor is not None:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.org is not None:
        query = query.where(AuditEvent.org == filters.org)
    if filters.document_id is not None:
        named = AuditEvent.document_id == filters.document_id
        if filters.with_searches:
            # A search records the documents it showed as a JSON list of their ids.
            listed = (
                AuditEvent.details["document_ids"]
                .as_string()
                .contains(json.dumps(filters.document_id), autoescape=True)
            )
            named = or_(named, and_(AuditEvent.action == AuditAction.search.value, listed))
        query = query.where(named)
    if filters.action is not None:
        query = query.where(AuditEvent.action == filters.action)
    if filters.outcome is not None:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at <= filters.until)
    return query


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so the stored value hashes the same when it is read back.
    loaded: dict[str, Any] = json.loads(json.dumps(details, ensure_ascii=False, default=str))
    return loaded
