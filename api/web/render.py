"""Rendering pages: the Jinja2 environment (autoescaped), the navigation per role, flash messages.

Every page is rendered through ``render``, which adds the signed-in user, the CSRF token, the
navigation and a message left by the previous request. The Jinja2 environment is built at the first
page a process renders: one that only answers the API never loads Jinja2.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from api.web.cookies import FLASH_COOKIE, clear_cookie, set_cookie
from services import notifications
from services.access import Principal
from services.audit import ACTOR_ROLE_NAMES, actor_label
from services.config import Settings
from services.errors import MaterialsError
from services.models import COUNTY_TIME, ORG_KIND_NAMES, ROLE_NAMES, Role
from services.personal_data import mask_personal_data

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATE_DIR = WEB_DIR / "templates"

LOCAL_TIME = COUNTY_TIME

ROLE_LABELS = ROLE_NAMES
ORG_KIND_LABELS = ORG_KIND_NAMES


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    # Features of a later release: the place is kept in the menu, the page says so.
    planned: bool = False
    # Shows how many notifications are unread beside the label.
    unread_badge: bool = False
    # Shows how many requests outside the catalog wait for approval beside the label.
    pending_badge: bool = False


_NOTIFICATIONS = NavItem("提醒", "/notifications", unread_badge=True)
_FIGURES = NavItem("减负成效", "/figures")
_CATALOG = NavItem("材料目录", "/catalog")
_COVERAGE = NavItem("报送情况", "/coverage")
NAVIGATION: dict[Role, tuple[NavItem, ...]] = {
    Role.uploader: (
        NavItem("上传材料", "/upload"),
        NavItem("本乡镇材料", "/materials"),
        NavItem("待办需求", "/requests"),
        _NOTIFICATIONS,
        _FIGURES,
    ),
    Role.reader: (
        NavItem("检索材料", "/search"),
        NavItem("材料需求", "/requests"),
        # Read-only: what townships already report, so a department need not ask for it.
        _CATALOG,
        _COVERAGE,
        _NOTIFICATIONS,
        _FIGURES,
    ),
    Role.coordinator: (
        NavItem("审核", "/requests", pending_badge=True),
        _CATALOG,
        _COVERAGE,
        _FIGURES,
    ),
    Role.auditor: (
        NavItem("访问日志", "/audit"),
        # Auditor accounts waiting for an auditor's confirmation, and every download grant.
        NavItem("双人确认", "/confirmations"),
        _FIGURES,
    ),
    Role.admin: (
        NavItem("用户", "/admin/users"),
        NavItem("组织机构", "/admin/orgs"),
        NavItem("材料类别", "/admin/categories"),
        NavItem("词库", "/admin/dictionary"),
        NavItem("下载授权", "/admin/grants"),
        _CATALOG,
        _FIGURES,
    ),
}

HOME: dict[Role, str] = {
    Role.uploader: "/materials",
    Role.reader: "/search",
    Role.coordinator: "/requests",
    Role.auditor: "/audit",
    Role.admin: "/admin/users",
}


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time as Beijing time for people."""
    if value is None:
        return ""
    return value.astimezone(LOCAL_TIME).strftime(fmt)


def file_size(size: int | None) -> str:
    """Bytes as people read them: 980 字节, 12.3 KB, 4.5 MB."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} 字节"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}"
    return f"{size} 字节"


def masked(text: str) -> str:
    """The text with ID, bank card and mobile numbers masked."""
    return mask_personal_data(text)[0]


def hex_base64(value: str) -> str:
    """A hash written in hex, written as checkpoints write it (base64)."""
    return base64.b64encode(bytes.fromhex(value)).decode()


def static_version() -> str:
    """Changes whenever a static file changes, so browsers fetch the new one."""
    newest = max((p.stat().st_mtime_ns for p in STATIC_DIR.rglob("*") if p.is_file()), default=0)
    return format(newest % (1 << 32), "x")


_templates: Jinja2Templates | None = None
_templates_lock = threading.Lock()


def templates() -> Jinja2Templates:
    """The pages' Jinja2 environment (autoescaped, with the filters and globals pages use), built
    once, at the first page."""
    global _templates
    if _templates is not None:
        return _templates
    with _templates_lock:
        if _templates is None:
            from fastapi.templating import Jinja2Templates

            built = Jinja2Templates(directory=TEMPLATE_DIR)
            built.env.autoescape = True
            built.env.filters["local_time"] = local_time
            built.env.filters["file_size"] = file_size
            built.env.filters["hex_base64"] = hex_base64
            # Lists and results show personal data in what a township typed masked, as the API
            # does.
            built.env.filters["masked"] = masked
            built.env.filters["actor_label"] = actor_label
            built.env.globals["ROLE_LABELS"] = ROLE_LABELS
            # Roles as the access log records them: also ``system``, for jobs and commands.
            built.env.globals["ACTOR_ROLE_LABELS"] = ACTOR_ROLE_NAMES
            built.env.globals["ORG_KIND_LABELS"] = ORG_KIND_LABELS
            built.env.globals["STATIC_VERSION"] = static_version()
            _templates = built
        return _templates


@dataclass(frozen=True)
class Flash:
    kind: str  # "ok" | "error"
    text: str
    # A link after the text, to where the outcome can be seen: a path of this site ("" for none).
    link_href: str = ""
    link_text: str = ""


def _local_path(href: str) -> bool:
    """A path on this site (never another host's address, also when the cookie was edited:
    browsers read a backslash as a slash and drop tabs and line breaks)."""
    return (
        href.startswith("/")
        and not href.startswith("//")
        and all(char > " " and char != "\\" for char in href)
    )


def flash_redirect(
    request: Request,
    settings: Settings,
    url: str,
    *,
    text: str,
    kind: str = "ok",
    link: tuple[str, str] | None = None,
) -> RedirectResponse:
    """Redirect (303, after a form post) and show a message on the next page, with ``link``
    (a path of this site and its words) after it."""
    response = RedirectResponse(url, status_code=303)
    data: dict[str, Any] = {"kind": kind, "text": text[:500]}
    if link is not None and _local_path(link[0]):
        data["link"] = [link[0][:500], link[1][:100]]
    value = quote(json.dumps(data, ensure_ascii=False))
    set_cookie(response, request, settings, name=FLASH_COOKIE, value=value, max_age=120)
    return response


def _read_flash(request: Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(unquote(raw))
        kind = "error" if data.get("kind") == "error" else "ok"
        link = data.get("link")
        if (
            isinstance(link, list)
            and len(link) == 2
            and all(isinstance(part, str) and part for part in link)
            and _local_path(link[0])
        ):
            return Flash(kind=kind, text=str(data["text"]), link_href=link[0], link_text=link[1])
        return Flash(kind=kind, text=str(data["text"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _unread(request: Request, principal: Principal) -> int:
    """The menu's badge; a page still renders (without it) when the database cannot answer."""
    try:
        return notifications.unread_count(request.app.state.backends, principal=principal)
    except MaterialsError:
        return 0


def _awaiting_approval(request: Request) -> int:
    """The coordinator's 审核 badge; a page still renders (without it) when the database cannot
    answer."""
    # Here, not at the top: the request routes render their pages through this module.
    from api.web.routes.requests import awaiting_approval

    try:
        return awaiting_approval(request.app.state.backends)
    except MaterialsError:
        return 0


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    csrf_token: str = "",
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A page for the signed-in user (or for nobody, on the login and error pages)."""
    settings: Settings = request.app.state.backends.settings
    flash = _read_flash(request)
    nav = NAVIGATION.get(principal.role, ()) if principal is not None else ()
    unread = (
        _unread(request, principal)
        if principal is not None and any(item.unread_badge for item in nav)
        else 0
    )
    approval_count = (
        _awaiting_approval(request)
        if principal is not None and any(item.pending_badge for item in nav)
        else 0
    )
    response = templates().TemplateResponse(
        request,
        template,
        {
            "user": principal,
            "csrf_token": csrf_token,
            "nav": nav,
            "unread": unread,
            "approval_count": approval_count,
            "current_path": request.url.path,
            "flash": flash,
            **context,
        },
        status_code=status_code,
    )
    if flash is not None:
        clear_cookie(response, request, settings, name=FLASH_COOKIE)
    response.headers["Cache-Control"] = "no-store"
    return response
