"""Administration pages: users, organisations, categories and download grants.

Every change is a posted form calling ``services.administration``, which refuses non-admins and
audits; each page first calls an admin-only read, so a non-admin sees the 403 page and nothing else.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from api.deps import BackendsDep, ClientIP
from api.schemas import MAX_ID
from api.web.render import LOCAL_TIME, ORG_KIND_LABELS, ROLE_LABELS, flash_redirect, render
from api.web.session import CheckedForm, SignedIn
from services import access, administration, dictionary
from services.backends import Backends
from services.errors import Forbidden, InvalidField, MaterialsError
from services.models import Org, OrgKind, Role
from services.passwords import MIN_PASSWORD_LENGTH, POLICY_TEXT
from services.sessions import ActiveSession

router = APIRouter(include_in_schema=False)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _password(form: FormData, name: str) -> str:
    # Passwords are taken as typed: a space is a character like any other.
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _orgs_by_kind(orgs: list[Org]) -> list[tuple[str, str, list[Org]]]:
    """Organisations grouped as people think of them: 县, then 乡镇, then 县直部门."""
    return [
        (kind.value, ORG_KIND_LABELS[kind.value], [org for org in orgs if org.kind == kind.value])
        for kind in (OrgKind.county, OrgKind.township, OrgKind.department)
    ]


# ---------------------------------------------------------------- users


@router.get("/admin/users")
def users_page(request: Request, web: SignedIn, backends: BackendsDep, ip: ClientIP) -> Response:
    """Every account with its role, organisation and state; create, disable, reset a password."""
    return _users_page(request, web, backends, ip)


def _users_page(
    request: Request,
    web: ActiveSession,
    backends: Backends,
    ip: str | None,
    *,
    create_error: str | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    users = administration.list_users(backends, principal=web.principal, ip=ip)
    orgs = administration.list_orgs(backends, kind=None)
    return render(
        request,
        "admin_users.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        status_code=422 if create_error else 200,
        users=users,
        # The waiting accounts this admin may confirm (admins; never their own request).
        confirmable={
            account.id
            for account in users
            if account.pending_since is not None
            and access.account_confirmation_refusal(web.principal, account) is None
        },
        confirmer_of=_confirmer,
        org_groups=_orgs_by_kind(orgs),
        roles=[(role.value, ROLE_LABELS[role.value]) for role in Role],
        min_password_length=MIN_PASSWORD_LENGTH,
        password_policy=POLICY_TEXT,
        create_error=create_error,
        entered=entered or {},
    )


@router.post("/admin/users")
def create_user(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Create an account in an organisation with a role and an initial password."""
    try:
        user, created = administration.create_user(
            backends,
            principal=web.principal,
            username=_field(form, "username"),
            password=_password(form, "password"),
            org=_field(form, "org"),
            role=_field(form, "role"),
            ip=ip,
            display_name=_field(form, "display_name"),
        )
    except MaterialsError as exc:
        if isinstance(exc, Forbidden):
            raise
        # The form comes back as it was typed (but the password), with the reason beside it.
        entered = {name: _field(form, name) for name in ("username", "display_name", "role", "org")}
        return _users_page(request, web, backends, ip, create_error=exc.message, entered=entered)
    role = ROLE_LABELS.get(user.role, user.role)
    named = f"{user.username}（{user.display_name}）" if user.display_name else user.username
    text = (
        f"已创建用户 {named}（{role}，{user.org.name}）"
        if created
        else f"用户 {user.username}（{role}，{user.org.name}）已存在，未作改动"
    )
    if created and user.pending_since is not None:
        text += f"；须由{_confirmer(user.role)}确认后才能登录"
    return flash_redirect(request, backends.settings, "/admin/users", text=text)


def _confirmer(role: str) -> str:
    """Who confirms an admin's change to an account of this role, as people say it."""
    confirmer = access.confirmer_role(Role(role))
    return f"另一位{ROLE_LABELS[confirmer.value]}" if confirmer else "第二人"


@router.post("/admin/users/confirm")
def confirm_user(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Confirm another admin's creating, enabling or resetting an admin account."""
    return confirm_account(request, web, form, backends, ip, back="/admin/users")


def confirm_account(
    request: Request,
    web: ActiveSession,
    form: FormData,
    backends: Backends,
    ip: str | None,
    *,
    back: str,
) -> Response:
    """The confirmation of a waiting account, posted from an admin's or an auditor's page."""
    try:
        user = administration.confirm_user(
            backends, principal=web.principal, username=_field(form, "username"), ip=ip
        )
    except MaterialsError as exc:
        return _back(request, backends, back, exc)
    text = (
        f"已确认用户 {user.username}（{ROLE_LABELS.get(user.role, user.role)}），该账号现在可以登录"
    )
    return flash_redirect(request, backends.settings, back, text=text)


@router.post("/admin/users/disable")
def disable_user(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Disable an account: its sessions and tokens stop working at once."""
    return _set_active(request, web, form, backends, ip, active=False)


@router.post("/admin/users/enable")
def enable_user(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Enable a disabled account again; its user signs in anew."""
    return _set_active(request, web, form, backends, ip, active=True)


def _set_active(
    request: Request,
    web: ActiveSession,
    form: FormData,
    backends: Backends,
    ip: str | None,
    *,
    active: bool,
) -> Response:
    try:
        user = administration.set_user_active(
            backends,
            principal=web.principal,
            username=_field(form, "username"),
            active=active,
            ip=ip,
        )
    except MaterialsError as exc:
        return _back(request, backends, "/admin/users", exc)
    text = (
        f"已启用用户 {user.username}"
        if active
        else f"已停用用户 {user.username}：其登录已立即失效，不能再登录"
    )
    if active and user.pending_since is not None:
        text += f"；须由{_confirmer(user.role)}确认后才能登录"
    return flash_redirect(request, backends.settings, "/admin/users", text=text)


@router.post("/admin/users/name")
def rename_user(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Set or change an account's display name (姓名); the username stays as it is."""
    try:
        user = administration.rename_user(
            backends,
            principal=web.principal,
            username=_field(form, "username"),
            display_name=_field(form, "display_name"),
            ip=ip,
        )
    except MaterialsError as exc:
        return _back(request, backends, "/admin/users", exc)
    text = (
        f"已将用户 {user.username} 的姓名改为“{user.display_name}”"
        if user.display_name
        else f"已清除用户 {user.username} 的姓名"
    )
    return flash_redirect(request, backends.settings, "/admin/users", text=text)


@router.post("/admin/users/password")
def reset_password(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Give a user a new password; their earlier sessions and tokens stop working."""
    try:
        user = administration.reset_password(
            backends,
            principal=web.principal,
            username=_field(form, "username"),
            new_password=_password(form, "new_password"),
            ip=ip,
        )
    except MaterialsError as exc:
        return _back(request, backends, "/admin/users", exc)
    text = (
        f"已重置用户 {user.username} 的密码，请将新密码当面或电话告知本人；"
        "本人下次登录时须先改为自己的新密码"
    )
    if user.pending_since is not None:
        text += f"；须由{_confirmer(user.role)}确认后才能登录"
    return flash_redirect(request, backends.settings, "/admin/users", text=text)


# ---------------------------------------------------------------- organisations


@router.get("/admin/orgs")
def orgs_page(request: Request, web: SignedIn, backends: BackendsDep, ip: ClientIP) -> Response:
    """Organisations grouped by kind, with their number of users; create one."""
    users = administration.list_users(backends, principal=web.principal, ip=ip)
    orgs = administration.list_orgs(backends, kind=None)
    return render(
        request,
        "admin_orgs.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        org_groups=_orgs_by_kind(orgs),
        org_names={org.id: org.name for org in orgs},
        user_counts=Counter(user.org_id for user in users),
        kinds=list(ORG_KIND_LABELS.items()),
    )


@router.post("/admin/orgs")
def create_org(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Create a township, a department or the county."""
    try:
        org, created = administration.create_org(
            backends,
            principal=web.principal,
            name=_field(form, "name"),
            kind=_field(form, "kind"),
            parent=_field(form, "parent") or None,
            ip=ip,
        )
    except MaterialsError as exc:
        return _back(request, backends, "/admin/orgs", exc)
    kind = ORG_KIND_LABELS.get(org.kind, org.kind)
    text = (
        f"已创建单位 {org.name}（{kind}）"
        if created
        else f"单位 {org.name}（{kind}）已存在，未作改动"
    )
    return flash_redirect(request, backends.settings, "/admin/orgs", text=text)


# ---------------------------------------------------------------- categories


@router.get("/admin/categories")
def categories_page(
    request: Request, web: SignedIn, backends: BackendsDep, ip: ClientIP
) -> Response:
    """The fixed list of material categories uploads must use (none: free text); add one."""
    # The category list itself is public to uploaders; this page (with its form) is not.
    administration.ensure_admin(backends, principal=web.principal, ip=ip)
    return render(
        request,
        "admin_categories.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        categories=administration.list_categories(backends),
    )


@router.post("/admin/categories")
def create_category(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Add a category to the list uploads must use."""
    try:
        category, created = administration.create_category(
            backends, principal=web.principal, name=_field(form, "name"), ip=ip
        )
    except MaterialsError as exc:
        return _back(request, backends, "/admin/categories", exc)
    text = f"已添加材料类别 {category.name}" if created else f"材料类别 {category.name} 已存在"
    return flash_redirect(request, backends.settings, "/admin/categories", text=text)


# ---------------------------------------------------------------- county dictionary


@router.get("/admin/dictionary")
def dictionary_page(
    request: Request, web: SignedIn, backends: BackendsDep, ip: ClientIP
) -> Response:
    """The county dictionary: the admins' words with who added them and when, the names that
    count as words, a form to add words (one a line) and a remove button per word."""
    return render(
        request,
        "admin_dictionary.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        found=dictionary.list_words(backends, principal=web.principal, ip=ip),
        may_change=access.can_change_dictionary(web.principal),
        max_length=dictionary.MAX_WORD_LENGTH,
    )


@router.post("/admin/dictionary")
def add_dictionary_words(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Add the words typed one a line: all of them, or none when one is not a word."""
    value = form.get("words")
    lines = value.splitlines() if isinstance(value, str) else []
    words = [line.strip() for line in lines if line.strip()]
    try:
        added = dictionary.add_words(backends, principal=web.principal, words=words, ip=ip)
    except MaterialsError as exc:
        return _back(request, backends, "/admin/dictionary", exc)
    parts = []
    if added.added:
        parts.append(f"已添加 {len(added.added)} 个词：{'、'.join(added.added)}")
    if added.already_present:
        parts.append(f"已在词库中：{'、'.join(added.already_present)}")
    if added.reindex_queued:
        parts.append(f"提到这些词的 {added.reindex_queued} 份材料将在后台重新索引")
    return flash_redirect(request, backends.settings, "/admin/dictionary", text="；".join(parts))


@router.post("/admin/dictionary/remove")
def remove_dictionary_word(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Remove one word from the dictionary."""
    word = _field(form, "word")
    try:
        queued = dictionary.remove_word(backends, principal=web.principal, word=word, ip=ip)
    except MaterialsError as exc:
        return _back(request, backends, "/admin/dictionary", exc)
    text = f"已从词库删除“{word}”" + (
        f"；提到它的 {queued} 份材料将在后台重新索引" if queued else ""
    )
    return flash_redirect(request, backends.settings, "/admin/dictionary", text=text)


# ---------------------------------------------------------------- download grants


@router.get("/admin/grants")
def grants_page(request: Request, web: SignedIn, backends: BackendsDep, ip: ClientIP) -> Response:
    """Which auditor may download which document, until when; grant one more."""
    grants = administration.list_grants(backends, principal=web.principal, ip=ip)
    users = administration.list_users(backends, principal=web.principal, ip=ip)
    return render(
        request,
        "admin_grants.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        grants=grants,
        auditors=[
            user
            for user in users
            if access.may_hold_grant(Role(user.role)) and access.may_sign_in(user)
        ],
        today=datetime.now(LOCAL_TIME).date().isoformat(),
    )


@router.post("/admin/grants")
def grant_download(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Let one auditor download one document, optionally until the end of a day."""
    username, document_id = _field(form, "username"), _field(form, "document_id")
    try:
        until = _expiry_day(_field(form, "expires"))
        administration.grant_download(
            backends,
            principal=web.principal,
            username=username,
            document_id=document_id,
            # The grant holds through the whole of its last day, Beijing time.
            expires_at=datetime.combine(until, time(23, 59, 59), LOCAL_TIME) if until else None,
            ip=ip,
        )
    except MaterialsError as exc:
        return _back(request, backends, "/admin/grants", exc)
    text = (
        f"已授权 {username} 下载材料 {document_id}"
        + (f"，有效期至 {until.isoformat()}" if until else "，长期有效")
        + "；须由另一位系统管理员确认后生效"
    )
    return flash_redirect(request, backends.settings, "/admin/grants", text=text)


@router.post("/admin/grants/confirm")
def confirm_grant(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Confirm another admin's download grant: from now on it gives the download."""
    number = _field(form, "grant_id")
    grant_id = int(number) if number.isdecimal() and len(number) <= 10 else 0
    try:
        if not 1 <= grant_id <= MAX_ID:
            raise InvalidField("grant_id", "授权编号无效")
        grant = administration.confirm_grant(
            backends, principal=web.principal, grant_id=grant_id, ip=ip
        )
    except MaterialsError as exc:
        return _back(request, backends, "/admin/grants", exc)
    text = f"已确认下载授权：{grant.username} 现在可以下载材料 {grant.document_id}"
    return flash_redirect(request, backends.settings, "/admin/grants", text=text)


def _expiry_day(value: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidField("expires", "有效期须为日期，例如 2026-12-31") from None
    if day < datetime.now(LOCAL_TIME).date():
        raise InvalidField("expires", "有效期不能早于今天")
    return day


def _back(request: Request, backends: Backends, url: str, error: MaterialsError) -> Response:
    """Back to the form with the service's reason; nothing was stored.

    A refusal for lack of rights is not a form error: it becomes the 403 page.
    """
    if isinstance(error, Forbidden):
        raise error
    text = error.message
    return flash_redirect(request, backends.settings, url, text=text, kind="error")
