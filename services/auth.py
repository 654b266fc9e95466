"""Passwords (argon2), signed bearer tokens (JWT, HS256) and login with failure throttling.

Every login attempt is an audit event; the failures counted for throttling are those events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from sqlalchemy import select

from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.config import Settings
from services.errors import NotAuthenticated, RateLimited
from services.models import User, utcnow

_TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name, not a secret
_TOKEN_AUDIENCE = "materials-api"  # noqa: S105 - a claim value, not a secret


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


class Authenticator:
    """Checks passwords, issues tokens and resolves tokens back to users."""

    def __init__(self, *, settings: Settings, backends: Backends) -> None:
        self._settings = settings
        self._db = backends.db
        self._audit = backends.audit
        self._passwords = backends.passwords
        self._key = settings.signing_key()

    def login(self, *, username: str, password: str, ip: str | None) -> IssuedToken:
        """Exchange a username and password for a token; every attempt is audited."""
        return self.issue(self.check_credentials(username=username, password=password, ip=ip))

    def check_credentials(self, *, username: str, password: str, ip: str | None) -> User:
        """The active user with this username and password; every attempt is audited, and
        repeated failures lock the username for a while (RateLimited)."""
        window_start = utcnow() - timedelta(seconds=self._settings.login_window_seconds)
        with self._db.session() as session:
            last_success = self._audit.last_at(
                session, actor=username, action=AuditAction.login, outcome=Outcome.allowed
            )
            since = max(window_start, last_success) if last_success else window_start
            failures = self._audit.count_recent(
                session,
                actor=username,
                action=AuditAction.login,
                outcome=Outcome.denied,
                since=since,
            )
            user = session.scalar(select(User).where(User.username == username))
            actor = Actor(
                username=username,
                org=user.org.name if user else None,
                role=user.role if user else None,
                ip=ip,
            )
            if failures >= self._settings.login_max_failures:
                self._audit.append(
                    session,
                    actor=actor,
                    action=AuditAction.login,
                    outcome=Outcome.denied,
                    details={"reason": "locked"},
                )
                locked = RateLimited(
                    "登录失败次数过多，请稍后再试",
                    retry_after=self._settings.login_window_seconds,
                )
            else:
                locked = None
        if locked is not None:
            raise locked
        ok = self._passwords.matches(user.password_hash if user else None, password)
        if not ok or user is None or not user.active:
            reason = "bad_password" if user else "unknown_user"
            if ok and user is not None and not user.active:
                reason = "inactive"
            self._audit.record(
                actor=actor,
                action=AuditAction.login,
                outcome=Outcome.denied,
                details={"reason": reason},
            )
            if reason == "inactive":
                # Only someone who knows the password learns that the account is disabled.
                raise NotAuthenticated("此账号已停用，请联系系统管理员", code="account_disabled")
            raise NotAuthenticated("用户名或密码错误", code="invalid_credentials")
        self._audit.record(actor=actor, action=AuditAction.login, outcome=Outcome.allowed)
        return user

    def issue(self, user: User) -> IssuedToken:
        """A signed token for a user, valid for the configured lifetime."""
        now = utcnow()
        ttl = self._settings.token_ttl_seconds
        claims: dict[str, Any] = {
            "sub": str(user.id),
            "name": user.username,
            "aud": _TOKEN_AUDIENCE,
            "iat": now,
            "exp": now + timedelta(seconds=ttl),
        }
        return IssuedToken(jwt.encode(claims, self._key, algorithm=_TOKEN_ALGORITHM), ttl)

    def principal(self, token: str) -> Principal:
        """The active user a token names; NotAuthenticated when it is invalid or expired."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_TOKEN_ALGORITHM],
                audience=_TOKEN_AUDIENCE,
                options={"require": ["exp", "iat", "sub", "aud"]},
            )
            user_id = int(claims["sub"])
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated("登录已过期，请重新登录", code="token_expired") from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise NotAuthenticated("令牌无效", code="invalid_token") from exc
        with self._db.session() as session:
            user = session.get(User, user_id)
            if user is None or not user.active:
                raise NotAuthenticated("令牌无效", code="invalid_token")
            changed = user.credentials_changed_at
            # Tokens carry whole seconds: one issued in the second of a reset still counts.
            if changed is not None and int(claims["iat"]) < int(changed.timestamp()):
                raise NotAuthenticated("密码已重置，请重新登录", code="token_revoked")
            return Principal.of(user)
