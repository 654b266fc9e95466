"""Signing in and out, the start page of each role, and the places kept for planned features."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import AuthenticatorDep, BackendsDep, ClientIP
from api.web.cookies import LOGIN_CSRF_COOKIE, SESSION_COOKIE, clear_cookie, set_cookie
from api.web.render import HOME, flash_redirect, render
from api.web.session import CheckedForm, SignedIn, current_session, safe_next
from services import orgs, sessions
from services.audit import Actor, AuditAction, Outcome
from services.errors import MaterialsError, NotFound, RateLimited
from services.models import Role

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
        started = await run_in_threadpool(sessions.start_session, backends, user=user, ip=ip)
    except RateLimited as exc:
        minutes = max(1, exc.retry_after // 60)
        return _login_page(
            request,
            backends,
            next_url=next_url,
            username=username,
            error=f"登录失败次数过多，请 {minutes} 分钟后再试",
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
    response = RedirectResponse(next_url or HOME[Role(user.role)], status_code=303)
    set_cookie(response, request, backends.settings, name=SESSION_COOKIE, value=started.token)
    clear_cookie(response, request, backends.settings, name=LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(
    request: Request, web: SignedIn, _form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """End the session: its cookie stops working at once, also if it was copied."""
    sessions.end_session(backends, token=request.cookies.get(SESSION_COOKIE, ""))
    principal = web.principal
    backends.audit.record(
        actor=Actor(
            username=principal.username, org=principal.org_name, role=principal.role.value, ip=ip
        ),
        action=AuditAction.logout,
        outcome=Outcome.allowed,
    )
    response = flash_redirect(request, backends.settings, "/login", text="已安全退出")
    clear_cookie(response, request, backends.settings, name=SESSION_COOKIE)
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
