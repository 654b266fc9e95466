"""In-app notifications: a list per user, each one sent once and written to the audit log.

A notification goes to the people of an organisation (a township's clerks, a department's staff);
its ``key`` (kind and request) makes sending it again a no-op, so a periodic job may run any number
of times and a state change may be retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from services.access import Principal
from services.audit import Actor, AuditAction, AuditLog, Outcome
from services.backends import Backends
from services.documents import actor_of
from services.errors import NotFound
from services.models import Notification, NotificationKind, Role, User, utcnow

# What each kind is called, on the reminders page and in the access log's words.
KIND_NAMES: dict[str, str] = {
    NotificationKind.request_sent.value: "新需求",
    NotificationKind.request_due.value: "即将截止",
    NotificationKind.request_overdue.value: "已逾期",
    NotificationKind.request_answered.value: "已答复",
    NotificationKind.request_refused.value: "未予准入",
    NotificationKind.request_joined.value: "有部门并入",
}

MAX_TEXT = 500

# Who at an organisation is told: township clerks, department staff.
_RECIPIENT_ROLES = (Role.uploader.value, Role.reader.value)


@dataclass(frozen=True)
class NotificationPage:
    total: int
    unread: int
    notifications: list[Notification]


def notify_org(
    session: Session,
    audit: AuditLog,
    *,
    actor: Actor,
    org_id: int,
    kind: NotificationKind,
    text: str,
    request_id: int | None = None,
    document_id: str | None = None,
) -> int:
    """Tell every active clerk of an organisation, once per (user, kind, request); how many
    were newly told. Runs in the caller's transaction, with one audit event per notification."""
    users = session.scalars(
        select(User).where(
            User.org_id == org_id, User.active.is_(True), User.role.in_(_RECIPIENT_ROLES)
        )
    ).all()
    key = f"{kind.value}:{request_id if request_id is not None else document_id}"
    sent = 0
    for user in users:
        already = session.scalar(
            select(Notification.id).where(Notification.user_id == user.id, Notification.key == key)
        )
        if already is not None:
            continue
        notification = Notification(
            user_id=user.id,
            kind=kind.value,
            key=key,
            text=text[:MAX_TEXT],
            request_id=request_id,
            document_id=document_id,
        )
        session.add(notification)
        session.flush()
        audit.append(
            session,
            actor=actor,
            action=AuditAction.notify,
            outcome=Outcome.allowed,
            document_id=document_id,
            details={
                "kind": kind.value,
                "to": user.username,
                "org": user.org.name,
                "request_id": request_id,
                "notification_id": notification.id,
            },
        )
        sent += 1
    return sent


def list_for(
    backends: Backends, *, principal: Principal, unread_only: bool, page: int, size: int
) -> NotificationPage:
    """The caller's notifications, newest first."""
    mine = Notification.user_id == principal.user_id
    unread = Notification.read_at.is_(None)
    query = select(Notification).where(mine)
    if unread_only:
        query = query.where(unread)
    with backends.db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        unread_count = (
            session.scalar(select(func.count()).select_from(Notification).where(mine, unread)) or 0
        )
        notifications = list(
            session.scalars(
                query.order_by(Notification.at.desc(), Notification.id.desc())
                .offset((page - 1) * size)
                .limit(size)
            )
        )
    return NotificationPage(total=total, unread=unread_count, notifications=notifications)


def unread_count(backends: Backends, *, principal: Principal) -> int:
    """How many of the caller's notifications are unread (for the menu's badge)."""
    with backends.db.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == principal.user_id, Notification.read_at.is_(None))
            )
            or 0
        )


def mark_read(
    backends: Backends,
    *,
    principal: Principal,
    notification_id: int | None,
    ip: str | None,
    now: datetime | None = None,
) -> int:
    """Mark one of the caller's notifications read (or all of them, with no id); how many
    changed. Someone else's notification is NotFound."""
    moment = now or utcnow()
    if notification_id is not None and not _owns(backends, principal, notification_id):
        # A refusal is audited like any other, in a transaction of its own.
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=AuditAction.notification_read,
            outcome=Outcome.denied,
            details={"reason": "notification_not_found", "notification_id": notification_id},
        )
        raise NotFound("提醒不存在", code="notification_not_found")
    with backends.db.session() as session:
        query = update(Notification).where(
            Notification.user_id == principal.user_id, Notification.read_at.is_(None)
        )
        if notification_id is not None:
            query = query.where(Notification.id == notification_id)
        result = cast(CursorResult[Any], session.execute(query.values(read_at=moment)))
        changed = result.rowcount
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=AuditAction.notification_read,
            outcome=Outcome.allowed,
            details={"notification_id": notification_id, "changed": changed},
        )
        return int(changed)


def _owns(backends: Backends, principal: Principal, notification_id: int) -> bool:
    with backends.db.session() as session:
        owned = session.scalar(
            select(Notification.id).where(
                Notification.id == notification_id, Notification.user_id == principal.user_id
            )
        )
    return owned is not None


def mark_request_done(session: Session, *, request_id: int, org_id: int) -> None:
    """An answered request's reminders to the organisation that answered it need no more
    attention: mark them read (in the answer's transaction)."""
    recipients = select(User.id).where(User.org_id == org_id)
    session.execute(
        update(Notification)
        .where(
            Notification.request_id == request_id,
            Notification.user_id.in_(recipients),
            Notification.read_at.is_(None),
        )
        .values(read_at=utcnow())
    )
