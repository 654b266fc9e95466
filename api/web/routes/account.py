"""Signing in and out, one's own password, the start page of each role, and the places kept for
planned features."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import AuthenticatorDep, BackendsDep, ClientIP
from api.web.cookies import LOGIN_CSRF_COOKIE, SESSION_COOKIE, clear_cookie, set_cookie
from api.web.render import HOME, flash_redirect, render
from api.web.session import (
    PASSWORD_PAGE,
    CheckedForm,
    SignedIn,
    SignedInAccount,
    current_session,
    safe_next,
)
from services import accounts, orgs, sessions
from services.errors import InvalidField, MaterialsError, NotFound, RateLimited
from services.models import Role
from services.passwords import POLICY_TEXT
from services.sessions import ActiveSession

router = APIRouter(include_in_schema=False)


@router.get("/")
def start_page(request: Request) -> Response:
    """Signed in: the role's own start page; otherwise the login page."""
    active = current_session(request)
    target = HOME[active.principal.role] if active is not None else "/login"
    return RedirectResponse(target, status_code=303)


def _has_users(backends: BackendsDep) -> bool:
    with backends.db.session() as session:
        return orgs.has_users(session)


def _login_page(
    request: Request,
    backends: BackendsDep,
    *,
    next_url: str | None,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        principal=None,
        csrf_token=token,
        next_url=next_url or "",
        error=error,
        username=username,
        first_run=not _has_users(backends),
        status_code=status_code,
    )
    set_cookie(response, request, backends.settings, name=LOGIN_CSRF_COOKIE, value=token)
    return response


@router.get("/login")
def login_form(request: Request, backends: BackendsDep, next: str | None = None) -> Response:
    return _login_page(request, backends, next_url=safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    backends: BackendsDep,
    authenticator: AuthenticatorDep,
    ip: ClientIP,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the password, start a session, go to where the user was heading."""
    next_url = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not sessions.csrf_matches(expected, csrf_token):
        return _login_page(
            request,
            backends,
            next_url=next_url,
            username=username,
            error="页面已过期，请重新输入密码后登录",
            status_code=400,
        )
    if not username or not password:
        return _login_page(
            request,
            backends,
            next_url=next_url,
            username=username,
            error="请输入用户名和密码",
            status_code=422,
        )
    try:
        user = await run_in_threadpool(
            authenticator.check_credentials, username=username, password=password, ip=ip
        )
        started = await run_in_threadpool(sessions.start_session, backends, user_id=user.id, ip=ip)
    except RateLimited as exc:
        # The wait is short at first and grows with each failure (services.login_guard).
        seconds = exc.retry_after
        wait = f"{seconds} 秒" if seconds < 60 else f"{-(-seconds // 60)} 分钟"
        return _login_page(
            request,
            backends,
            next_url=next_url,
            username=username,
            error=f"登录失败次数过多，请 {wait}后再试",
            status_code=429,
        )
    except MaterialsError as exc:
        return _login_page(
            request,
            backends,
            next_url=next_url,
            username=username,
            error=exc.message,
            status_code=exc.status,
        )
    # After an admin's reset the user first chooses a password of their own.
    target = PASSWORD_PAGE if user.must_change_password else next_url or HOME[Role(user.role)]
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, backends.settings, name=SESSION_COOKIE, value=started.token)
    clear_cookie(response, request, backends.settings, name=LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(
    request: Request, web: SignedInAccount, _form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """End the session: its cookie stops working at once, also if it was copied."""
    sessions.log_out(
        backends, token=request.cookies.get(SESSION_COOKIE, ""), principal=web.principal, ip=ip
    )
    response = flash_redirect(request, backends.settings, "/login", text="已安全退出")
    clear_cookie(response, request, backends.settings, name=SESSION_COOKIE)
    return response


def _password_page(
    request: Request, web: ActiveSession, *, error: str | None = None, status_code: int = 200
) -> Response:
    return render(
        request,
        "account_password.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        forced=web.principal.must_change_password,
        policy=POLICY_TEXT,
        error=error,
        status_code=status_code,
    )


@router.get(PASSWORD_PAGE)
def password_form(request: Request, web: SignedInAccount) -> Response:
    """Change one's own password (the only page open after an admin's reset)."""
    return _password_page(request, web)


@router.post(PASSWORD_PAGE)
def change_password(
    request: Request,
    web: SignedInAccount,
    form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """Check the current password, set the new one; every other session and token ends, and this
    browser goes on in a new session."""
    # Passwords are taken as typed: a space is a character like any other.
    old_password, new_password, confirmation = (
        str(form.get(name) or "") for name in ("old_password", "new_password", "confirm_password")
    )
    if new_password != confirmation:
        return _password_page(request, web, error="两次输入的新密码不一致", status_code=422)
    try:
        accounts.change_own_password(
            backends,
            principal=web.principal,
            old_password=old_password,
            new_password=new_password,
            ip=ip,
        )
    except InvalidField as exc:
        return _password_page(request, web, error=exc.message, status_code=422)
    started = sessions.start_session(backends, user_id=web.principal.user_id, ip=ip)
    response = flash_redirect(
        request,
        backends.settings,
        HOME[web.principal.role],
        text="密码已修改。此前在其他设备或程序上的登录已全部失效。",
    )
    set_cookie(response, request, backends.settings, name=SESSION_COOKIE, value=started.token)
    return response


PLANNED = {
    "requests": ("材料需求", "部门先检索、确实缺少的材料只向乡镇要一次，所有部门共用同一份回复。"),
    "notifications": ("通知", "新的材料需求、临近截止和已答复的提醒会在这里显示。"),
    "catalog": ("材料目录", "县减负办维护乡镇应报送的材料目录，并查看各乡镇的报送情况。"),
    "figures": ("减负成效", "根据系统实际记录计算复用次数、免于重复报送的需求和节省的工时。"),
}


@router.get("/planned/{feature}")
def planned_feature(request: Request, feature: str, web: SignedIn) -> Response:
    """A feature of the next release: the menu keeps its place and says what it will do."""
    if feature not in PLANNED:
        raise NotFound("页面不存在", code="not_found")
    title, text = PLANNED[feature]
    return render(
        request,
        "planned.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        title=title,
        text=text,
    )
