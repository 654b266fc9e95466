"""Who is signed in on a page, and the CSRF check of every form a page posts.

Pages that need a user depend on ``SignedIn``; without a live session the browser is sent to the
login page and comes back afterwards, and a user whose password an admin reset is sent to the
password page first. Forms depend on ``CheckedForm``, which refuses (and
audits) a post without the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api.deps import BackendsDep, ClientIP
from api.web.cookies import CSRF_FIELD, SESSION_COOKIE, clear_cookie
from services import sessions
from services.audit import Actor, AuditAction, Outcome
from services.errors import Forbidden, NotAuthenticated
from services.sessions import ActiveSession

__all__ = [
    "PASSWORD_PAGE",
    "CheckedForm",
    "LoginRequired",
    "PasswordChangeRequired",
    "SignedIn",
    "SignedInAccount",
    "current_session",
    "install_login_redirect",
    "safe_next",
]


class LoginRequired(Exception):
    """A page was asked for without a live session."""


class PasswordChangeRequired(Exception):
    """A page was asked for by a user who must first replace the password an admin reset."""


PASSWORD_PAGE = "/account/password"  # noqa: S105 - a page address, not a password


def current_session(request: Request) -> ActiveSession | None:
    """The live session the browser's cookie names, or None (no cookie, ended, expired)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return sessions.resolve_session(request.app.state.backends, token=token)
    except NotAuthenticated:
        return None


async def _live_session(request: Request) -> ActiveSession:
    active = await run_in_threadpool(current_session, request)
    if active is None:
        raise LoginRequired
    request.state.principal = active.principal  # for the audit of a refused parameter
    return active


# Signed in, also while an admin's reset waits for a new password: the password page and 退出.
SignedInAccount = Annotated[ActiveSession, Depends(_live_session)]


async def _signed_in(active: SignedInAccount) -> ActiveSession:
    if active.principal.must_change_password:
        raise PasswordChangeRequired
    return active


SignedIn = Annotated[ActiveSession, Depends(_signed_in)]


async def _checked_form(
    request: Request, web: SignedInAccount, backends: BackendsDep, ip: ClientIP
) -> FormData:
    form = await request.form(max_files=0, max_fields=200)
    offered = form.get(CSRF_FIELD)
    if not sessions.csrf_matches(web.csrf_token, offered if isinstance(offered, str) else None):
        principal = web.principal
        await run_in_threadpool(
            backends.audit.record,
            actor=Actor(
                username=principal.username,
                org=principal.org_name,
                role=principal.role.value,
                ip=ip,
            ),
            action=AuditAction.access,
            outcome=Outcome.denied,
            details={"reason": "csrf_failed", "method": "POST", "path": request.url.path[:200]},
        )
        raise Forbidden("页面已过期或请求来源不明，请刷新页面后重试", code="csrf_failed")
    return form


CheckedForm = Annotated[FormData, Depends(_checked_form)]


def safe_next(value: str | None) -> str | None:
    """A path on this site to return to after login; anything else (another site) is dropped."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if value.startswith(("/api/", "/static/", "/login", "/logout")):
        return None
    return value


def install_login_redirect(app: FastAPI) -> None:
    async def to_login(request: Request, _exc: Exception) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        url = "/login"
        if request.method == "GET" and safe_next(target) and target != "/":
            url += "?next=" + quote(target, safe="")
        response = RedirectResponse(url, status_code=303)
        if request.cookies.get(SESSION_COOKIE):
            settings = request.app.state.backends.settings
            clear_cookie(response, request, settings, name=SESSION_COOKIE)
        return response

    async def to_password_page(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse(PASSWORD_PAGE, status_code=303)

    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(PasswordChangeRequired, to_password_page)
