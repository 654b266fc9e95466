"""Administrative use cases over HTTP: organisations, users, categories, download grants.

Only admins change these; every change, and every refused attempt, is an audit event.
"""

from __future__ import annotations

from datetime import datetime

from services import access, orgs
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.backends import Backends
from services.documents import actor_of
from services.errors import Forbidden, InvalidField
from services.models import Category, DownloadGrant, Org, OrgKind, Role, User


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
        org, created = orgs.create_org(session, name=name, kind=org_kind, parent=parent)
        backends.audit.append(
            session,
            actor=actor,
            action=AuditAction.org_create,
            outcome=Outcome.allowed,
            details={"org": org.name, "kind": org.kind, "created": created},
        )
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


def create_category(
    backends: Backends, *, principal: Principal, name: str, ip: str | None
) -> tuple[Category, bool]:
    """Add a category to the fixed list uploads must use; True when it was created."""
    _require_admin(backends, principal=principal, action=AuditAction.category_create, ip=ip)
    with backends.db.session() as session:
        category, created = orgs.create_category(session, name=name)
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=AuditAction.category_create,
            outcome=Outcome.allowed,
            details={"category": category.name, "created": created},
        )
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


def list_orgs(backends: Backends, *, kind: str | None) -> list[Org]:
    """Every organisation (names are not secret: uploaders pick departments from them)."""
    org_kind = _enum(OrgKind, "kind", kind) if kind else None
    with backends.db.session() as session:
        return orgs.list_orgs(session, kind=org_kind if isinstance(org_kind, OrgKind) else None)


def list_categories(backends: Backends) -> list[Category]:
    with backends.db.session() as session:
        return orgs.list_categories(session)
