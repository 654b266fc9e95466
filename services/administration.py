"""Administrative use cases over HTTP: organisations, users, categories, download grants.

Only admins change these; every change, and every refused attempt, is an audit event. An admin's
change that could let one person act as an auditor or as a second admin (creating, enabling or
resetting such an account, granting a download) waits for a second person's confirmation.
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
    backends: Backends,
    *,
    actor: Actor,
    username: str,
    password: str,
    org: str,
    role: str,
    requested_by: Principal | None = None,
    display_name: str | None = None,
) -> tuple[User, bool]:
    """Create a user (idempotent) and record it; True when it was created.

    Created at an admin's request (``requested_by``), an auditor or admin account waits for a
    second person's confirmation; from the server console (None) it is active at once.
    """
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
            display_name=display_name,
        )
        details: dict[str, object] = {"user": user.username, "role": user.role, "created": created}
        if created and user.display_name:
            details["display_name"] = user.display_name
        if (
            created
            and requested_by is not None
            and _await_confirmation(session, user, requested_by)
        ):
            details["pending"] = True
        backends.audit.append(
            session,
            actor=actor,
            action=AuditAction.user_create,
            outcome=Outcome.allowed,
            details=details,
        )
    return user, created


def _await_confirmation(session: Session, user: User, requested_by: Principal) -> bool:
    """Hold an admin's change to this account until a second person confirms it, when its role
    needs one (``access.confirmer_role``); True when it now waits."""
    if access.confirmer_role(Role(user.role)) is None:
        return False
    user.pending_since = utcnow()
    user.requested_by = session.get(User, requested_by.user_id)
    user.confirmed_by_id = None
    user.confirmed_at = None
    return True


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
    display_name: str | None = None,
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
        requested_by=principal,
        display_name=display_name,
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
            details: dict[str, object] = {
                "user": user.username,
                "role": user.role,
                "changed": changed,
            }
            if changed and not active:
                # Enabling the account again must not bring its earlier tokens back to life.
                user.credentials_changed_at = utcnow()
                sessions.end_user_sessions(session, user_id=user.id)
                # Nothing waits for a confirmation on a disabled account.
                user.pending_since = None
                user.requested_by = None
            if changed and active and _await_confirmation(session, user, principal):
                details["pending"] = True
            backends.audit.append(
                session,
                actor=actor_of(principal, ip),
                action=action,
                outcome=Outcome.allowed,
                details=details,
            )
            return user
    except MaterialsError as exc:
        _refused(backends, principal=principal, action=action, username=username, error=exc, ip=ip)
        raise


def rename_user(
    backends: Backends, *, principal: Principal, username: str, display_name: str, ip: str | None
) -> User:
    """Set or change an account's display name (姓名; "" takes it away). The username, and what
    the audit log recorded under it, stay as they are."""
    action = AuditAction.user_rename
    _require_admin(backends, principal=principal, action=action, ip=ip)
    try:
        name = orgs.clean_display_name(display_name)
        with backends.db.session() as session:
            user = _user_named(session, username)
            details: dict[str, object] = {
                "user": user.username,
                "old_display_name": user.display_name,
                "display_name": name,
                "changed": user.display_name != name,
            }
            user.display_name = name
            backends.audit.append(
                session,
                actor=actor_of(principal, ip),
                action=action,
                outcome=Outcome.allowed,
                details=details,
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
            if user.id == principal.user_id:
                # A reset is for someone else's forgotten password; one's own is changed with
                # the old one (修改密码), which no second person needs to confirm.
                raise Conflict(
                    "不能重置自己的密码，请在“修改密码”页面用原密码修改", code="cannot_reset_self"
                )
            user.password_hash = password_hash
            user.credentials_changed_at = utcnow()
            # The admin knows this password: it only lets its owner choose one of their own.
            user.must_change_password = True
            sessions.end_user_sessions(session, user_id=user.id)
            details: dict[str, object] = {"user": user.username, "role": user.role}
            # Knowing an auditor's or another admin's password is being them: a second person
            # confirms that the reset was asked for before the account signs in again.
            if _await_confirmation(session, user, principal):
                details["pending"] = True
            backends.audit.append(
                session,
                actor=actor_of(principal, ip),
                action=action,
                outcome=Outcome.allowed,
                details=details,
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
) -> GrantEntry:
    """Let an auditor download one document (optionally until a moment), once a second admin
    has confirmed the grant; until then it gives no download."""
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
            pending_since=utcnow(),
        )
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=AuditAction.grant_create,
            outcome=Outcome.allowed,
            document_id=document_id,
            details={"grantee": username, "grant": grant.id, "pending": True},
        )
        (entry,) = _grant_entries(session, principal=principal, grant_id=grant.id)
    return entry


@dataclass(frozen=True)
class GrantEntry:
    """A download grant as an admin or auditor reads it: who may download what, until when,
    and whether a second admin has confirmed it."""

    id: int
    username: str
    document_id: str
    document_title: str
    granted_by: str
    created_at: datetime
    expires_at: datetime | None
    expired: bool
    pending: bool
    confirmed_by: str | None
    confirmed_at: datetime | None
    # May the reader confirm it now (a waiting grant, and another admin than its granter)?
    may_confirm: bool


def _grant_entries(
    session: Session, *, principal: Principal, grant_id: int | None = None
) -> list[GrantEntry]:
    grantee, granter, confirmer = aliased(User), aliased(User), aliased(User)
    query = (
        select(
            DownloadGrant, grantee.username, granter.username, confirmer.username, Document.title
        )
        .join(grantee, grantee.id == DownloadGrant.user_id)
        .join(granter, granter.id == DownloadGrant.granted_by_id)
        .outerjoin(confirmer, confirmer.id == DownloadGrant.confirmed_by_id)
        .join(Document, Document.id == DownloadGrant.document_id)
        .order_by(DownloadGrant.id.desc())
    )
    if grant_id is not None:
        query = query.where(DownloadGrant.id == grant_id)
    now = utcnow()
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
            pending=grant.pending_since is not None,
            confirmed_by=confirmed_by,
            confirmed_at=grant.confirmed_at,
            may_confirm=grant.pending_since is not None
            and access.grant_confirmation_refusal(principal, grant) is None,
        )
        for grant, username, granted_by, confirmed_by, title in session.execute(query).all()
    ]


def list_grants(backends: Backends, *, principal: Principal, ip: str | None) -> list[GrantEntry]:
    """Every download grant, waiting or confirmed, newest first: for admins and auditors."""
    action = AuditAction.grant_read
    if not access.can_read_grants(principal):
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.denied,
            details={"reason": "not_allowed"},
        )
        raise Forbidden("只有系统管理员和审计人员可以查看下载授权", code="grants_not_allowed")
    with backends.db.session() as session:
        entries = _grant_entries(session, principal=principal)
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.allowed,
            details={"grants": len(entries)},
        )
    return entries


def confirm_grant(
    backends: Backends, *, principal: Principal, grant_id: int, ip: str | None
) -> GrantEntry:
    """A second admin confirms a waiting download grant: from now on it gives the download."""
    action = AuditAction.grant_confirm
    actor = actor_of(principal, ip)
    document_id: str | None = None
    try:
        if not access.can_administer(principal):
            raise Forbidden("下载授权须由另一位系统管理员确认", code="confirm_not_allowed")
        with backends.db.session() as session:
            grant = session.get(DownloadGrant, grant_id)
            if grant is None:
                raise NotFound("下载授权不存在", code="grant_not_found")
            document_id = grant.document_id
            _refuse_confirmation(access.grant_confirmation_refusal(principal, grant))
            if grant.pending_since is None:
                raise Conflict("该下载授权已确认，无需再次确认", code="not_pending")
            grant.pending_since = None
            grant.confirmed_by_id = principal.user_id
            grant.confirmed_at = utcnow()
            session.flush()
            (entry,) = _grant_entries(session, principal=principal, grant_id=grant.id)
            backends.audit.append(
                session,
                actor=actor,
                action=action,
                outcome=Outcome.allowed,
                document_id=document_id,
                details={
                    "grant": grant.id,
                    "grantee": entry.username,
                    "granted_by": entry.granted_by,
                },
            )
            return entry
    except MaterialsError as exc:
        backends.audit.record(
            actor=actor,
            action=action,
            outcome=Outcome.denied,
            document_id=document_id,
            details={"reason": exc.error_code, "grant": grant_id},
        )
        raise


# Why a confirmation is refused, by ``access``'s reason.
_CONFIRMATION_REFUSALS = {
    "not_confirmer": (
        "审计人员账号须由另一位审计人员确认，系统管理员账号和下载授权须由另一位系统管理员确认",
        "confirm_not_allowed",
    ),
    "own_account": ("不能确认自己的账号", "confirm_own_account"),
    "own_request": ("不能确认自己提出的变更，须由另一人确认", "confirm_own_request"),
}


def _refuse_confirmation(reason: str | None) -> None:
    if reason is not None:
        message, code = _CONFIRMATION_REFUSALS[reason]
        raise Forbidden(message, code=code)


@dataclass(frozen=True)
class PendingAccount:
    """An account whose creation, enabling or password reset waits for a second person."""

    user: User
    requested_by: str | None
    pending_since: datetime
    # May the reader confirm it (the right role, neither the requester nor the account)?
    may_confirm: bool


def list_pending_accounts(
    backends: Backends, *, principal: Principal, ip: str | None
) -> list[PendingAccount]:
    """The waiting accounts the caller confirms: auditors see auditor accounts, admins admin
    accounts (an admin sees every account, waiting or not, in the user list)."""
    action = AuditAction.confirmation_read
    roles = access.confirmable_roles(principal)
    if not roles:
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.denied,
            details={"reason": "not_confirmer"},
        )
        raise Forbidden("只有审计人员和系统管理员可以查看待确认的账号", code="confirm_not_allowed")
    with backends.db.session() as session:
        waiting = session.scalars(
            select(User)
            .where(User.pending_since.is_not(None), User.role.in_([role.value for role in roles]))
            .order_by(User.pending_since)
        ).all()
        found = [
            PendingAccount(
                user=user,
                requested_by=user.requested_by.username if user.requested_by else None,
                pending_since=user.pending_since,
                may_confirm=access.account_confirmation_refusal(principal, user) is None,
            )
            for user in waiting
            if user.pending_since is not None
        ]
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.allowed,
            details={"pending": len(found)},
        )
    return found


def confirm_user(
    backends: Backends, *, principal: Principal, username: str, ip: str | None
) -> User:
    """A second person confirms the change waiting on an auditor or admin account (its creation,
    enabling or password reset): an auditor for auditors, another admin for admins. The account
    signs in from now on."""
    action = AuditAction.user_confirm
    try:
        if not access.confirmable_roles(principal):
            raise Forbidden(_CONFIRMATION_REFUSALS["not_confirmer"][0], code="confirm_not_allowed")
        with backends.db.session() as session:
            user = _user_named(session, username)
            _refuse_confirmation(access.account_confirmation_refusal(principal, user))
            if user.pending_since is None:
                raise Conflict("该账号没有待确认的变更", code="not_pending")
            requester = user.requested_by.username if user.requested_by else None
            user.pending_since = None
            user.confirmed_by_id = principal.user_id
            user.confirmed_at = utcnow()
            backends.audit.append(
                session,
                actor=actor_of(principal, ip),
                action=action,
                outcome=Outcome.allowed,
                details={"user": user.username, "role": user.role, "requested_by": requester},
            )
            return user
    except MaterialsError as exc:
        _refused(backends, principal=principal, action=action, username=username, error=exc, ip=ip)
        raise


def list_orgs(backends: Backends, *, kind: str | None) -> list[Org]:
    """Every organisation (names are not secret: uploaders pick departments from them)."""
    org_kind = _enum(OrgKind, "kind", kind) if kind else None
    with backends.db.session() as session:
        return orgs.list_orgs(session, kind=org_kind if isinstance(org_kind, OrgKind) else None)


def list_categories(backends: Backends) -> list[Category]:
    with backends.db.session() as session:
        return orgs.list_categories(session)
