"""Error pages in Chinese for the web interface: the same failures the API answers as JSON.

Never a stack trace: the page names what went wrong in words and offers a way back.
"""

from __future__ import annotations

from fastapi import Request, Response

from api.web.render import local_time, render
from api.web.session import current_session
from services.documents import DocumentWithdrawn
from services.errors import MaterialsError
from services.sessions import ActiveSession

_NON_PAGE_PREFIXES = ("/api/", "/static/", "/healthz", "/readyz")

_TITLES = {
    400: "请求有误",
    403: "无权访问",
    404: "页面不存在",
    405: "请求方式不正确",
    413: "文件过大",
    415: "文件类型不支持",
    422: "填写的内容有误",
    429: "操作过于频繁",
    503: "服务暂时不可用",
}


def is_page_request(request: Request) -> bool:
    """Is this a browser asking for a page (answered in HTML), not a script calling the API?"""
    return not request.url.path.startswith(_NON_PAGE_PREFIXES)


def error_page(request: Request, status: int, message: str) -> Response:
    """The Chinese error page for a status, with the message a person can act on."""
    title = _TITLES.get(status, "服务器内部错误" if status >= 500 else "请求失败")
    if status == 404:
        message = "您要找的页面或材料不存在，或者您没有查看它的权限。"
    elif status >= 500 and status != 503:
        message = "系统出现了意外错误，已记录在服务器日志中。请稍后再试，或联系管理员。"
    return _page(request, status, title, message)


def domain_error_page(request: Request, error: MaterialsError) -> Response:
    """The page for a refusal of the domain: as ``error_page`` says its status, except that a
    reader who could read a material until its township withdrew it is told so (the API
    answers such a reader the same 404 as for any document it may not see)."""
    if isinstance(error, DocumentWithdrawn):
        when = local_time(error.withdrawn_at)
        message = (
            f"该材料已由报送单位于 {when} 撤回，不能再查看或下载。"
            "如仍需要这份材料，请与报送的乡镇联系。"
        )
        return _page(request, error.status, "该材料已由报送单位撤回", message)
    return error_page(request, error.status, error.message)


def _page(request: Request, status: int, title: str, message: str) -> Response:
    active = _signed_in(request)
    return render(
        request,
        "error.html",
        principal=active.principal if active else None,
        csrf_token=active.csrf_token if active else "",
        status_code=status,
        status=status,
        title=title,
        message=message,
    )


def _signed_in(request: Request) -> ActiveSession | None:
    """The session behind an error page, so the page keeps its header and menu (none when
    the database itself is what failed)."""
    try:
        return current_session(request)
    except MaterialsError:
        return None
