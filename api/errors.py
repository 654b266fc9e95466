"""One place that turns every failure into the JSON error shape of API.md, or, for a page of
the web interface, into a Chinese error page.

Domain errors keep their status and code; framework errors (unknown route, wrong method, invalid
parameters) and unexpected exceptions are mapped here too, so no stack trace ever leaks. The same
shape is declared here for the OpenAPI document: ``COMMON_ERRORS`` on every API route, and
``error_responses(...)`` for the statuses only some routes answer.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import get_client_ip
from api.headers import apply_security_headers
from api.web.errors import domain_error_page, error_page, is_page_request
from services.access import Principal
from services.audit import Actor, AuditAction, Outcome
from services.errors import BackendUnavailable, MaterialsError, NotAuthenticated, RateLimited

log = logging.getLogger("materials.api")

_HTTP_CODES = {
    400: ("bad_request", "请求格式不正确"),
    401: ("not_authenticated", "未登录或登录已过期"),
    403: ("forbidden", "无权执行此操作"),
    404: ("not_found", "请求的地址不存在"),
    405: ("method_not_allowed", "不支持此请求方法"),
    413: ("payload_too_large", "请求内容过大"),
    415: ("unsupported_type", "不支持的内容类型"),
    422: ("invalid_field", "字段取值无效"),
    429: ("rate_limited", "请求过于频繁"),
}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    """Every error answer of the API: ``{"error": {"code", "message", "details"?}}``."""

    error: ErrorBody


_DESCRIPTIONS = {
    400: "请求格式不正确 / Malformed request",
    401: "未登录或登录已过期 / Not authenticated",
    403: "无权执行此操作 / Not allowed",
    404: "不存在或无权知道其存在 / Not found (or not for the caller to know of)",
    409: "与现有数据冲突 / Conflicts with the current state",
    413: "请求内容过大 / Request body too large",
    415: "不支持的文件类型 / Unsupported file type",
    422: "字段取值无效 / A field or parameter is invalid",
    429: "请求过于频繁 / Rate limited",
    503: "后端服务不可用 / A backend is down",
    507: "服务器存储空间不足 / The server's disk is full",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "稍后重试的秒数 / Seconds to wait before retrying",
        "schema": {"type": "string"},
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` declaring these error statuses with the JSON error shape."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        declared[status] = {"model": ErrorOut, "description": _DESCRIPTIONS[status]}
        if status in (429, 503):
            declared[status]["headers"] = _RETRY_AFTER
    return declared


# What any API route may answer: a malformed request or body, no or a bad token, a role or a
# pending password change refused, a body over the limit, an invalid parameter, a backend down.
COMMON_ERRORS = error_responses(400, 401, 403, 413, 422, 503)


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MaterialsError)
    if is_page_request(request):
        return domain_error_page(request, exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, BackendUnavailable):
        headers["Retry-After"] = "30"
    elif isinstance(exc, NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if exc.status == 413:
        # The rest of the body was not read; the connection cannot be reused.
        headers["Connection"] = "close"
    return error_response(exc.status, exc.error_code, exc.message, exc.details, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", "请求失败"))
    if is_page_request(request):
        return error_page(request, exc.status_code, message)
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    await _audit_refusal(request, exc)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        # A body that is not JSON at all is malformed (400), not a field with a bad value.
        if is_page_request(request):
            return error_page(request, 400, "请求格式不正确")
        return error_response(400, "malformed_json", "请求体不是有效的 JSON")
    problems = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
            "problem": error.get("msg", ""),
        }
        for error in exc.errors()
    ]
    field = problems[0]["field"] if problems else ""
    if is_page_request(request):
        return error_page(request, 422, f"填写的内容有误：{field}")
    return error_response(
        422, "invalid_field", f"字段取值无效：{field}", {"field": field, "errors": problems}
    )


async def _audit_refusal(request: Request, exc: RequestValidationError) -> None:
    """A signed-in caller's request refused for its parameters (an id out of range, a field
    of the wrong type) is in the audit log like any other refusal. Without a caller there is
    nobody to name: such requests are refused (401) before their parameters are looked at."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return
    fields = sorted(
        {".".join(str(part) for part in error.get("loc", ())) for error in exc.errors()}
    )
    await run_in_threadpool(
        request.app.state.backends.audit.record,
        actor=Actor(
            username=principal.username,
            org=principal.org_name,
            role=principal.role.value,
            ip=get_client_ip(request),
        ),
        action=AuditAction.invalid_input,
        outcome=Outcome.denied,
        details={
            "reason": "invalid_field",
            "fields": [field[:100] for field in fields[:10]],
            "method": request.method,
            "path": request.url.path[:200],
        },
    )


# A full disk (the upload spool) is the server's to fix, not a fault in the request; the spool
# code has removed its partial file by the time this answers.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


async def _os_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OSError)
    if exc.errno not in _DISK_FULL:
        return await _unexpected_error(request, exc)
    log.error("disk full: %s", exc)
    message = "服务器存储空间不足，请稍后重试或联系管理员"
    if is_page_request(request):
        return error_page(request, 507, message)
    return error_response(507, "insufficient_storage", message, headers={"Connection": "close"})


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    # This answer passes no middleware: it gets its security headers here.
    https = request.app.state.settings.https
    if is_page_request(request):
        return apply_security_headers(request.scope, error_page(request, 500, ""), https=https)
    return apply_security_headers(
        request.scope,
        error_response(500, "internal_error", "服务器内部错误，请联系管理员"),
        https=https,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MaterialsError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected_error)
