"""Request dependencies as named ``Annotated`` aliases: backends, client IP, caller, paging.

The caller is named by a bearer token (scripts) or by the web interface's session cookie; a
cookie-authenticated request that changes something must carry the session's CSRF token in the
``X-CSRF-Token`` header.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from api.web.cookies import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE
from services import sessions
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.auth import Authenticator
from services.backends import Backends
from services.errors import Forbidden, NotAuthenticated

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


# The request's own dependencies are async only so that FastAPI calls them in the event loop: a
# plain ``def`` dependency costs every request a hop to the thread pool and back.
async def get_backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


async def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def get_client_ip(request: Request) -> str | None:
    """The client's address: the peer's, or what a trusted proxy forwarded (api/proxies.py)."""
    return request.client.host if request.client else None


BackendsDep = Annotated[Backends, Depends(get_backends)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]


async def _client_ip(request: Request) -> str | None:
    return get_client_ip(request)


ClientIP = Annotated[str | None, Depends(_client_ip)]


async def get_current_user(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
    backends: BackendsDep,
    authenticator: AuthenticatorDep,
    ip: ClientIP,
) -> Principal:
    """The caller named by the bearer token or session cookie; a missing or bad one is refused
    and audited, and so is a cookie-authenticated change without the CSRF token."""
    cookie = request.cookies.get(SESSION_COOKIE)
    try:
        if token:
            principal = await run_in_threadpool(authenticator.principal, token)
        else:
            if not cookie:
                raise NotAuthenticated("请先登录", code="not_authenticated")
            active = await run_in_threadpool(sessions.resolve_session, backends, token=cookie)
            if request.method not in SAFE_METHODS and not sessions.csrf_matches(
                active.csrf_token, request.headers.get(CSRF_HEADER)
            ):
                raise Forbidden("请求缺少有效的 CSRF 令牌，请刷新页面后重试", code="csrf_failed")
            principal = active.principal
    except (NotAuthenticated, Forbidden) as exc:
        # Counted in bursts, not one chained event each: a flood of bad tokens stays cheap.
        await run_in_threadpool(
            backends.audit.record_burst,
            actor=Actor(username="", ip=ip),
            action=AuditAction.access,
            outcome=Outcome.denied,
            details={
                "reason": exc.error_code,
                "method": request.method,
                "path": request.url.path[:200],
            },
        )
        raise
    request.state.principal = principal  # named in the audit event if its parameters are refused
    return principal


# The caller, also one whose password an admin reset and who must choose a new one first: only
# for GET /me, POST /me/password and logout.
AuthenticatedUser = Annotated[Principal, Depends(get_current_user)]
# The bearer token itself, for logout (None when the caller came with the session cookie).
BearerToken = Annotated[str | None, Depends(_bearer)]


async def get_settled_user(
    request: Request, principal: AuthenticatedUser, backends: BackendsDep, ip: ClientIP
) -> Principal:
    """The caller, refused (403, audited) while an admin's reset waits for a password change."""
    if principal.must_change_password:
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
            details={
                "reason": "password_change_required",
                "method": request.method,
                "path": request.url.path[:200],
            },
        )
        raise Forbidden(
            "管理员已重置您的密码，请先通过 POST /api/v1/me/password 设置新密码",
            code="password_change_required",
        )
    return principal


CurrentUser = Annotated[Principal, Depends(get_settled_user)]

MAX_PAGE = 100_000

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="页码，从 1 开始")]
