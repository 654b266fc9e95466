"""Passwords (argon2), signed bearer tokens (JWT, HS256) and login with failure throttling.

Attempts are counted by ``services.login_guard`` before the password is checked; failed ones are
audited in bursts (the first at once, the rest as one event with a count), successes each.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import bindparam, delete, select

from services import access, orgs
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.config import Settings
from services.errors import NotAuthenticated, RateLimited
from services.login_guard import LoginGuard, Refused, account_key
from services.models import ROLE_NAMES, Org, RevokedToken, Role, User, utcnow

_TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name, not a secret
_TOKEN_AUDIENCE = "materials-api"  # noqa: S105 - a claim value, not a secret


# The account a token names and whether the token was revoked: one query, plain columns, built
# once (this runs before every request made with a token).
_TOKEN_HOLDER = (
    select(
        *access.PRINCIPAL_COLUMNS,
        select(RevokedToken.jti)
        .where(RevokedToken.jti == bindparam("jti"))
        .exists()
        .label("revoked"),
    )
    .join(Org, Org.id == User.org_id)
    .where(User.id == bindparam("user_id"))
)


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
        self._guard = LoginGuard(settings=settings, db=backends.db)
        self._key = settings.signing_key()

    def login(self, *, username: str, password: str, ip: str | None) -> IssuedToken:
        """Exchange a username and password for a token; every attempt is audited."""
        return self.issue(self.check_credentials(username=username, password=password, ip=ip))

    def check_credentials(self, *, username: str, password: str, ip: str | None) -> User:
        """The active user with this username and password. Each attempt is counted before the
        password is checked (against its address once the password proved wrong); while its
        account or address is held back after failures it is refused unchecked (RateLimited).
        Failures are audited in bursts, successes each."""
        with self._db.session() as session:
            # Admin, ａｄｍｉｎ and admin are one account.
            user = orgs.find_user(session, username)
            actor = Actor(
                username=username,
                org=user.org.name if user else None,
                role=user.role if user else None,
                ip=ip,
            )
        attempt = self._guard.admit(
            account=account_key(user_id=user.id if user else None, username=username), address=ip
        )
        if isinstance(attempt, Refused):
            self._audit.record_burst(
                actor=actor,
                action=AuditAction.login,
                outcome=Outcome.denied,
                details={"reason": attempt.reason},
            )
            raise RateLimited(
                "登录失败次数过多，请稍后再试", retry_after=max(1, math.ceil(attempt.retry_after))
            )
        ok = self._passwords.matches(user.password_hash if user else None, password)
        if not ok or user is None or not access.may_sign_in(user):
            self._guard.failed(attempt)
            reason = "bad_password" if user else "unknown_user"
            if ok and user is not None:
                # Disabled, or an admin's change to it waits for a second person.
                reason = "inactive" if not user.active else "pending"
            self._audit.record_burst(
                actor=actor,
                action=AuditAction.login,
                outcome=Outcome.denied,
                details={"reason": reason},
            )
            if reason == "inactive":
                # Only someone who knows the password learns that the account is disabled.
                raise NotAuthenticated("此账号已停用，请联系系统管理员", code="account_disabled")
            if reason == "pending" and user is not None:
                raise NotAuthenticated(_pending_message(user), code="account_pending")
            raise NotAuthenticated("用户名或密码错误", code="invalid_credentials")
        self._guard.succeeded(attempt)
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
            # An id, so that logout can revoke this one token.
            "jti": uuid.uuid4().hex,
            # The credentials it was issued under: a reset, a change or disabling ends it.
            "crd": _credentials_stamp(user),
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
                options={"require": ["exp", "iat", "sub", "aud", "jti"]},
            )
            user_id = int(claims["sub"])
            token_id = str(claims["jti"])
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated("登录已过期，请重新登录", code="token_expired") from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise NotAuthenticated("令牌无效", code="invalid_token") from exc
        with self._db.transaction() as connection:
            found = connection.execute(_TOKEN_HOLDER, {"user_id": user_id, "jti": token_id})
            row = found.one_or_none()
        if row is None or not access.may_sign_in(row):
            raise NotAuthenticated("令牌无效", code="invalid_token")
        if claims.get("crd") != _stamp(row.credentials_changed_at):
            raise NotAuthenticated("密码已更改，请重新登录", code="token_revoked")
        if row.revoked:
            raise NotAuthenticated("已退出登录，请重新登录", code="token_revoked")
        return access.principal_of(row)

    def revoke(self, token: str, *, ip: str | None) -> None:
        """Log out: this token stops working at once (its record is kept until it expires)."""
        principal = self.principal(token)
        claims = jwt.decode(
            token, self._key, algorithms=[_TOKEN_ALGORITHM], audience=_TOKEN_AUDIENCE
        )
        now = utcnow()
        with self._db.session() as session:
            # Revocations of tokens that expired anyway are of no use to anyone: drop them here.
            session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
            session.add(
                RevokedToken(
                    jti=str(claims["jti"]),
                    user_id=principal.user_id,
                    revoked_at=now,
                    expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
                )
            )
            self._audit.append(
                session,
                actor=Actor(
                    username=principal.username,
                    org=principal.org_name,
                    role=principal.role.value,
                    ip=ip,
                ),
                action=AuditAction.logout,
                outcome=Outcome.allowed,
            )


def _credentials_stamp(user: User) -> int:
    """When the user's credentials last changed, in microseconds (0: never)."""
    return _stamp(user.credentials_changed_at)


def _stamp(changed: datetime | None) -> int:
    return 0 if changed is None else round(changed.timestamp() * 1_000_000)


def _pending_message(user: User) -> str:
    """Why an account waiting for a second person's confirmation cannot sign in yet."""
    confirmer = access.confirmer_role(Role(user.role))
    who = f"另一位{ROLE_NAMES[confirmer.value]}" if confirmer else "第二人"
    return f"此账号正等待{who}确认，确认后才能登录"
