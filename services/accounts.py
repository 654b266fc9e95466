"""A user's own account: changing one's password (also the change an admin's reset demands).

A change ends every earlier token and web session of the user; each change and each refusal is
an audit event.
"""

from __future__ import annotations

from services import sessions
from services.access import Principal, may_sign_in
from services.audit import AuditAction, Outcome
from services.backends import Backends
from services.documents import actor_of
from services.errors import InvalidField, MaterialsError, NotAuthenticated
from services.models import User, utcnow


def change_own_password(
    backends: Backends,
    *,
    principal: Principal,
    old_password: str,
    new_password: str,
    ip: str | None,
) -> None:
    """Replace the caller's password after checking the current one; every earlier token and
    web session of the caller stops working, and a pending forced change is done."""
    action = AuditAction.password_change
    try:
        with backends.db.session() as session:
            user = session.get(User, principal.user_id)
            stored_hash = user.password_hash if user is not None and may_sign_in(user) else None
        # Checked outside the unit of work: hashing is slow and must not hold the write lock.
        if not backends.passwords.matches(stored_hash, old_password):
            if stored_hash is None:
                raise NotAuthenticated("请先登录", code="not_authenticated")
            raise InvalidField("old_password", "原密码不正确", code="wrong_password")
        if new_password == old_password:
            raise InvalidField("new_password", "新密码不能与原密码相同", code="password_unchanged")
        password_hash = backends.passwords.hash(
            new_password, username=principal.username, field="new_password"
        )
        with backends.db.session() as session:
            user = session.get(User, principal.user_id)
            if user is None or user.password_hash != stored_hash:
                # Changed (or reset) by someone else meanwhile: the old password is not current.
                raise InvalidField("old_password", "原密码不正确", code="wrong_password")
            user.password_hash = password_hash
            user.credentials_changed_at = utcnow()
            user.must_change_password = False
            sessions.end_user_sessions(session, user_id=user.id)
            backends.audit.append(
                session, actor=actor_of(principal, ip), action=action, outcome=Outcome.allowed
            )
    except MaterialsError as exc:
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.denied,
            details={"reason": exc.error_code},
        )
        raise
