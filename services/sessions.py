"""Browser sessions: a random token in an HttpOnly cookie; its hash and a CSRF token stored.

A session ends at logout, after ``session_idle_seconds`` without a request, after
``token_ttl_seconds`` in all, when its user is disabled, and when the user's password is reset or
changed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from services import access
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.errors import NotAuthenticated
from services.models import User, WebSession, utcnow

# How often a session's last-seen time is written: not on every request.
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class StartedSession:
    token: str  # goes into the cookie; only its hash is stored
    csrf_token: str


@dataclass(frozen=True)
class ActiveSession:
    principal: Principal
    csrf_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(backends: Backends, *, user_id: int, ip: str | None) -> StartedSession:
    """A new session for a user whose credentials were just checked."""
    token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    now = utcnow()
    with backends.db.session() as session:
        # Sessions of this user that ran out are of no use to anyone: drop them here.
        session.execute(
            delete(WebSession).where(WebSession.user_id == user_id, WebSession.expires_at < now)
        )
        session.add(
            WebSession(
                token_hash=_hash(token),
                user_id=user_id,
                csrf_token=csrf_token,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=backends.settings.token_ttl_seconds),
                ip=ip,
            )
        )
    return StartedSession(token=token, csrf_token=csrf_token)


def resolve_session(backends: Backends, *, token: str) -> ActiveSession:
    """The signed-in user and CSRF token of a session cookie; NotAuthenticated when it is not
    (or no longer) a live session."""
    now = utcnow()
    idle = timedelta(seconds=backends.settings.session_idle_seconds)
    with backends.db.session() as session:
        row = session.get(WebSession, _hash(token)) if token else None
        if row is None:
            raise NotAuthenticated("请先登录", code="not_authenticated")
        user = session.get(User, row.user_id)
        changed = user.credentials_changed_at if user is not None else None
        live = (
            user is not None
            and access.may_sign_in(user)
            and row.expires_at > now
            and row.last_seen_at + idle > now
            and (changed is None or row.created_at >= changed)
        )
        if not live:
            session.delete(row)  # committed as the block ends; refused just below
        elif now - row.last_seen_at >= _TOUCH_EVERY:
            row.last_seen_at = now
        found = (
            ActiveSession(principal=Principal.of(user), csrf_token=row.csrf_token)
            if (live and user is not None)
            else None
        )
    if found is None:
        raise NotAuthenticated("登录已过期，请重新登录", code="session_expired")
    return found


def end_session(backends: Backends, *, token: str) -> None:
    """Log out: the session's cookie stops working at once."""
    if not token:
        return
    with backends.db.session() as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))


def log_out(backends: Backends, *, token: str, principal: Principal, ip: str | None) -> None:
    """The user ends this session (退出): its cookie stops working at once; audited."""
    end_session(backends, token=token)
    backends.audit.record(
        actor=Actor(
            username=principal.username, org=principal.org_name, role=principal.role.value, ip=ip
        ),
        action=AuditAction.logout,
        outcome=Outcome.allowed,
    )


def end_user_sessions(session: Session, *, user_id: int) -> None:
    """Every session of a user ends (disabled, password reset or changed), in the caller's unit
    of work."""
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def csrf_matches(expected: str, offered: str | None) -> bool:
    """Is the offered CSRF token the session's? (Compared in constant time.)"""
    return offered is not None and hmac.compare_digest(expected.encode(), offered.encode())
