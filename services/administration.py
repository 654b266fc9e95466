"""Administrative use cases over HTTP: organisations, users, categories, download grants.

Only admins change these; every change, and every refused attempt, is an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from services import access, dictionary, orgs, sessions
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.documents import actor_of
from services.errors import Conflict, Forbidden, InvalidField, MaterialsError, NotFound
from services.models import (
    Category,
    Document,
    DownloadGrant,
    Org,
    OrgKind,
    Role,
    User,
    utcnow,
)


def _require_admin(
    backends: Backends, *, principal: Principal, action: AuditAction, ip: str | None
) -> None:
    if not access.can_administer(principal):
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.denied,
            details={"reason": "not_admin"},
        )
        raise Forbidden("只有系统管理员可以执行此操作", code="admin_only")


def ensure_admin(backends: Backends, *, principal: Principal, ip: str | None) -> None:
    """Refuse (and audit) anyone but an admin, before an administration page shows anything."""
    _require_admin(backends, principal=principal, action=AuditAction.admin, ip=ip)


def _enum(kind: type[OrgKind] | type[Role], field: str, value: str) -> OrgKind | Role:
    try:
        return kind(value)
    except ValueError as exc:
        allowed = "、".join(member.value for member in kind)
        raise InvalidField(field, f"{field} 须为 {allowed} 之一") from exc


def add_org(
    backends: Backends, *, actor: Actor, name: str, kind: str, parent: str | None
) -> tuple[Org, bool]:
    """Create an organisation (idempotent) and record it; True when it was created.

    The caller has decided ``actor`` may: an admin over HTTP, or the operator's command line.
    """
    org_kind = _enum(OrgKind, "kind", kind)
    assert isinstance(org_kind, OrgKind)
    with backends.db.session() as session:
        words = dictionary.county_words(session)
        org, created = orgs.create_org(session, name=name, kind=org_kind, parent=parent)
        # A new organisation's name is a word: documents naming it are segmented again.
        dictionary.queue_reindexing(session, settings=backends.settings, before=words)
        backends.audit.append(
            session,
            actor=actor,
            action=AuditAction.org_create,
            outcome=Outcome.allowed,
            details={"org": org.name, "kind": org.kind, "created": created},
        )
    if created:
        dictionary.refresh(backends)
    return org, created


def add_user(
    backends: Backends, *, actor: Actor, username: str, password: str, org: str, role: str
) -> tuple[User, bool]:
    """Create a user (idempotent) and record it; True when it was created."""
    user_role = _enum(Role, "role", role)
    assert isinstance(user_role, Role)
    with backends.db.session() as session:
        user, created = orgs.create_user(
            session,
            passwords=backends.passwords,
            username=username,
            password=password,
            org=org,
            role=user_role,
        )
        backends.audit.append(
            session,
            actor=actor,
            action=AuditAction.user_create,
            outcome=Outcome.allowed,
            details={"user": user.username, "role": user.role, "created": created},
        )
    return user, created


def create_org(
    backends: Backends,
    *,
    principal: Principal,
    name: str,
    kind: str,
    parent: str | None,
    ip: str | None,
) -> tuple[Org, bool]:
    """An admin creates an organisation (idempotent); True when it was created."""
    _require_admin(backends, principal=principal, action=AuditAction.org_create, ip=ip)
    return add_org(backends, actor=actor_of(principal, ip), name=name, kind=kind, parent=parent)


def create_user(
    backends: Backends,
    *,
    principal: Principal,
    username: str,
    password: str,
    org: str,
    role: str,
    ip: str | None,
) -> tuple[User, bool]:
    """An admin creates a user (idempotent); True when it was created."""
    _require_admin(backends, principal=principal, action=AuditAction.user_create, ip=ip)
    return add_user(
        backends,
        actor=actor_of(principal, ip),
        username=username,
        password=password,
        org=org,
        role=role,
    )


def list_users(backends: Backends, *, principal: Principal, ip: str | None) -> list[User]:
    _require_admin(backends, principal=principal, action=AuditAction.admin, ip=ip)
    with backends.db.session() as session:
        return orgs.list_users(session)


def _refused(
    backends: Backends,
    *,
    principal: Principal,
    action: AuditAction,
    username: str,
    error: MaterialsError,
    ip: str | None,
) -> None:
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=action,
        outcome=Outcome.denied,
        details={"reason": error.error_code, "user": username[: orgs.MAX_USERNAME_LENGTH]},
    )


def _user_named(session: Session, username: str) -> User:
    user = orgs.find_user(session, username)
    if user is None:
        raise NotFound(f"用户不存在：{username}", code="user_not_found")
    return user


def set_user_active(
    backends: Backends, *, principal: Principal, username: str, active: bool, ip: str | None
) -> User:
    """Enable or disable an account; a disabled user's tokens stop working at once."""
    action = AuditAction.user_enable if active else AuditAction.user_disable
    _require_admin(backends, principal=principal, action=action, ip=ip)
    try:
        with backends.db.session() as session:
            user = _user_named(session, username)
            if not active and user.id == principal.user_id:
                raise Conflict(
                    "不能停用自己的账号，请由另一位管理员操作", code="cannot_disable_self"
                )
            changed = user.active != active
            user.active = active
            if changed and not active:
                # Enabling the account again must not bring its earlier tokens back to life.
                user.credentials_changed_at = utcnow()
                sessions.end_user_sessions(session, user_id=user.id)
            backends.audit.append(
                session,
                actor=actor_of(principal, ip),
                action=action,
                outcome=Outcome.allowed,
                details={"user": user.username, "role": user.role, "changed": changed},
            )
            return user
    except MaterialsError as exc:
        _refused(backends, principal=principal, action=action, username=username, error=exc, ip=ip)
        raise


def reset_password(
    backends: Backends, *, principal: Principal, username: str, new_password: str, ip: str | None
) -> User:
    """Give a user a new password that they must change at their next login; every token and
    session from before the reset stops working."""
    action = AuditAction.user_password_reset
    _require_admin(backends, principal=principal, action=action, ip=ip)
    try:
        # The same rules as for a new user's password; hashed before the write lock is taken.
        password_hash = backends.passwords.hash(
            new_password, username=username, field="new_password"
        )
        with backends.db.session() as session:
            user = _user_named(session, username)
            user.password_hash = password_hash
            user.credentials_changed_at = utcnow()
            # The admin knows this password: it only lets its owner choose one of their own.
            user.must_change_password = True
            sessions.end_user_sessions(session, user_id=user.id)
            backends.audit.append(
                session,
                actor=actor_of(principal, ip),
                action=action,
                outcome=Outcome.allowed,
                details={"user": user.username, "role": user.role},
            )
            return user
    except MaterialsError as exc:
        _refused(backends, principal=principal, action=action, username=username, error=exc, ip=ip)
        raise


def create_category(
    backends: Backends, *, principal: Principal, name: str, ip: str | None
) -> tuple[Category, bool]:
    """Add a category to the fixed list uploads must use; True when it was created."""
    _require_admin(backends, principal=principal, action=AuditAction.category_create, ip=ip)
    with backends.db.session() as session:
        words = dictionary.county_words(session)
        category, created = orgs.create_category(session, name=name)
        dictionary.queue_reindexing(session, settings=backends.settings, before=words)
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=AuditAction.category_create,
            outcome=Outcome.allowed,
            details={"category": category.name, "created": created},
        )
    if created:
        dictionary.refresh(backends)
    return category, created


def grant_download(
    backends: Backends,
    *,
    principal: Principal,
    username: str,
    document_id: str,
    expires_at: datetime | None,
    ip: str | None,
) -> DownloadGrant:
    """Let an auditor download one document (optionally until a moment)."""
    _require_admin(backends, principal=principal, action=AuditAction.grant_create, ip=ip)
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidField("expires_at", "时间须带时区")
    with backends.db.session() as session:
        grant = orgs.grant_download(
            session,
            username=username,
            document_id=document_id,
            granted_by=principal.user_id,
            expires_at=expires_at,
        )
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=AuditAction.grant_create,
            outcome=Outcome.allowed,
            document_id=document_id,
            details={"grantee": username},
        )
    return grant


@dataclass(frozen=True)
class GrantEntry:
    """A download grant as an admin reads it: who may download what, until when."""

    id: int
    username: str
    document_id: str
    document_title: str
    granted_by: str
    created_at: datetime
    expires_at: datetime | None
    expired: bool


def list_grants(backends: Backends, *, principal: Principal, ip: str | None) -> list[GrantEntry]:
    """Every download grant, newest first, for an admin."""
    _require_admin(backends, principal=principal, action=AuditAction.admin, ip=ip)
    grantee, granter = aliased(User), aliased(User)
    now = utcnow()
    with backends.db.session() as session:
        found = session.execute(
            select(DownloadGrant, grantee.username, granter.username, Document.title)
            .join(grantee, grantee.id == DownloadGrant.user_id)
            .join(granter, granter.id == DownloadGrant.granted_by_id)
            .join(Document, Document.id == DownloadGrant.document_id)
            .order_by(DownloadGrant.id.desc())
        ).all()
        return [
            GrantEntry(
                id=grant.id,
                username=username,
                document_id=grant.document_id,
                document_title=title,
                granted_by=granted_by,
                created_at=grant.created_at,
                expires_at=grant.expires_at,
                expired=grant.expires_at is not None and grant.expires_at <= now,
            )
            for grant, username, granted_by, title in found
        ]


def list_orgs(backends: Backends, *, kind: str | None) -> list[Org]:
    """Every organisation (names are not secret: uploaders pick departments from them)."""
    org_kind = _enum(OrgKind, "kind", kind) if kind else None
    with backends.db.session() as session:
        return orgs.list_orgs(session, kind=org_kind if isinstance(org_kind, OrgKind) else None)


def list_categories(backends: Backends) -> list[Category]:
    with backends.db.session() as session:
        return orgs.list_categories(session)
