"""Organisations (county → townships and departments), users, categories and download grants.

Creation is idempotent: asking again for what exists returns it; asking for something that
contradicts what exists is a conflict.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from services import access, names
from services.access import ROLE_ORG_KIND
from services.errors import Conflict, InvalidField, NotFound
from services.models import (
    ORG_KIND_NAMES,
    ROLE_NAMES,
    Category,
    Document,
    DownloadGrant,
    Org,
    OrgKind,
    Role,
    User,
)
from services.passwords import Passwords

MAX_NAME_LENGTH = 100
MAX_CATEGORY_LENGTH = 50
MAX_USERNAME_LENGTH = 64
MAX_CANONICAL_LENGTH = 200
MAX_DISPLAY_NAME_LENGTH = 40


def clean_name(value: str, *, field: str, limit: int) -> str:
    """A name as typed, in NFC; refused when empty, too long or holding invisible characters."""
    name = names.nfc(value.strip())
    if not name:
        raise InvalidField(field, "名称不能为空")
    if len(name) > limit:
        raise InvalidField(field, f"名称不能超过 {limit} 个字符")
    if any(ord(ch) < 32 for ch in name):
        raise InvalidField(field, "名称不能包含控制字符")
    if any(ch in names.INVISIBLE for ch in name):
        raise InvalidField(
            field, "名称不能包含方向控制符或零宽字符等不可见字符", code="invisible_characters"
        )
    return name


def clean_username(value: str) -> str:
    """A new username in NFC; 422 when it is empty, too long, or could pass for another name."""
    username = names.nfc(value.strip())
    if not username or len(username) > MAX_USERNAME_LENGTH:
        raise InvalidField("username", f"用户名须为 1 到 {MAX_USERNAME_LENGTH} 个字符")
    problem = names.username_problem(username)
    if problem is not None:
        raise InvalidField("username", problem, code="invalid_username")
    if len(names.canonical_username(username)) > MAX_CANONICAL_LENGTH:
        raise InvalidField("username", "用户名过长", code="invalid_username")
    return username


def clean_display_name(value: str | None) -> str:
    """A person's name (姓名) as typed, trimmed and in NFC; "" when none is given. 422
    ``invalid_display_name`` when it is too long or holds control or invisible characters (a
    name that displays as another, or breaks the line it is shown on)."""
    name = names.nfc((value or "").strip())
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidField(
            "display_name",
            f"姓名不能超过 {MAX_DISPLAY_NAME_LENGTH} 个字符",
            code="invalid_display_name",
        )
    problem = names.display_name_problem(name)
    if problem is not None:
        raise InvalidField("display_name", problem, code="invalid_display_name")
    return name


def find_user(session: Session, username: str) -> User | None:
    """The user a typed name means: its exact username, else the one it reads as (Admin,
    ａｄｍｉｎ → admin)."""
    typed = names.nfc(username.strip())
    if not typed or len(typed) > MAX_USERNAME_LENGTH:
        return None
    exact = session.scalar(select(User).where(User.username == typed))
    if exact is not None:
        return exact
    canonical = names.canonical_username(typed)
    return session.scalar(select(User).where(User.canonical_name == canonical))


def find_org(session: Session, ref: str | int) -> Org | None:
    """An organisation by id (an int or a string of digits) or by exact name."""
    number = ref if isinstance(ref, int) else int(ref) if ref.isdecimal() else None
    # An id beyond the database's integer range names no organisation (and must not reach it).
    if number is not None and 0 < number < 2**31:
        org = session.get(Org, number)
        if org is not None:
            return org
    return session.scalar(select(Org).where(Org.name == names.nfc(str(ref).strip())))


def create_org(
    session: Session, *, name: str, kind: OrgKind, parent: str | None = None
) -> tuple[Org, bool]:
    """Create an organisation, or return the identical existing one; True when created."""
    name = clean_name(name, field="name", limit=MAX_NAME_LENGTH)
    parent_org = None
    if parent:
        parent_org = find_org(session, parent)
        if parent_org is None:
            raise InvalidField("parent", f"上级单位不存在：{parent}", code="unknown_org")
    existing = session.scalar(select(Org).where(Org.name == name))
    if existing is not None:
        same_parent = parent_org is None or existing.parent_id == parent_org.id
        if existing.kind != kind.value or not same_parent:
            raise Conflict(f"单位“{name}”已存在且类型或上级不同", code="org_exists")
        return existing, False
    if kind is not OrgKind.county and parent_org is None:
        parent_org = session.scalar(select(Org).where(Org.kind == OrgKind.county.value))
    org = Org(name=name, kind=kind.value, parent_id=parent_org.id if parent_org else None)
    session.add(org)
    session.flush()
    return org, True


def list_orgs(session: Session, *, kind: OrgKind | None = None) -> list[Org]:
    query = select(Org).order_by(Org.kind, Org.name)
    if kind is not None:
        query = query.where(Org.kind == kind.value)
    return list(session.scalars(query))


def create_user(
    session: Session,
    *,
    passwords: Passwords,
    username: str,
    password: str,
    org: str,
    role: Role,
    display_name: str | None = None,
) -> tuple[User, bool]:
    """Create a user in an organisation, or return the identical existing one; True when created.

    An existing user keeps its password and its display name: running the same command twice
    changes nothing.
    """
    username = clean_username(username)
    display_name = clean_display_name(display_name)
    org_row = find_org(session, org)
    if org_row is None:
        raise InvalidField("org", f"单位不存在：{org}", code="unknown_org")
    expected_kind = ROLE_ORG_KIND[role]
    if org_row.kind != expected_kind.value:
        raise InvalidField(
            "role",
            f"{ROLE_NAMES[role.value]}只能属于{ORG_KIND_NAMES[expected_kind.value]}，"
            f"而“{org_row.name}”是{ORG_KIND_NAMES.get(org_row.kind, org_row.kind)}",
            code="role_org_mismatch",
        )
    canonical = names.canonical_username(username)
    existing = session.scalar(select(User).where(User.username == username)) or session.scalar(
        select(User).where(User.canonical_name == canonical)
    )
    if existing is not None:
        if existing.username != username:
            raise Conflict(
                f"用户名“{username}”与已有用户“{existing.username}”视为同名（不区分大小写和全角半角）",
                code="user_exists",
            )
        if existing.org_id != org_row.id or existing.role != role.value:
            raise Conflict(f"用户“{username}”已存在且单位或角色不同", code="user_exists")
        return existing, False
    user = User(
        username=username,
        canonical_name=canonical,
        display_name=display_name,
        password_hash=passwords.hash(password, username=username),
        role=role.value,
        org=org_row,
        # Nobody asked for it yet (administration holds an admin's request for a confirmation).
        requested_by=None,
    )
    session.add(user)
    session.flush()
    return user, True


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def has_users(session: Session) -> bool:
    """Is there any user yet? (Before the first one, the app says how to create it.)"""
    return session.scalar(select(User.id).limit(1)) is not None


def create_category(session: Session, *, name: str) -> tuple[Category, bool]:
    """Add a category to the admin-defined list; True when created."""
    name = clean_name(name, field="name", limit=MAX_CATEGORY_LENGTH)
    existing = session.scalar(select(Category).where(Category.name == name))
    if existing is not None:
        return existing, False
    category = Category(name=name)
    session.add(category)
    session.flush()
    return category, True


def list_categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.name)))


def has_category_list(session: Session) -> bool:
    return (session.scalar(select(func.count()).select_from(Category)) or 0) > 0


def grant_download(
    session: Session,
    *,
    username: str,
    document_id: str,
    granted_by: int,
    expires_at: datetime | None = None,
    pending_since: datetime | None = None,
) -> DownloadGrant:
    """Let one auditor download one document; from ``pending_since`` on, only once a second
    admin has confirmed it."""
    auditor = find_user(session, username)
    if auditor is None or not access.may_hold_grant(Role(auditor.role)):
        raise InvalidField("username", "只能向审计人员授予下载权限", code="not_auditor")
    if session.get(Document, document_id) is None:
        raise NotFound("文档不存在", code="document_not_found")
    grant = DownloadGrant(
        user_id=auditor.id,
        document_id=document_id,
        granted_by_id=granted_by,
        expires_at=expires_at,
        pending_since=pending_since,
    )
    session.add(grant)
    session.flush()
    return grant


def granted_document_ids(session: Session | Connection, *, user_id: int, now: datetime) -> set[str]:
    """The documents an auditor currently may download: confirmed grants that have not expired."""
    rows = session.scalars(
        select(DownloadGrant.document_id).where(
            DownloadGrant.user_id == user_id,
            DownloadGrant.pending_since.is_(None),
            (DownloadGrant.expires_at.is_(None)) | (DownloadGrant.expires_at > now),
        )
    )
    return set(rows)
