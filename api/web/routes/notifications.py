"""The caller's reminders (提醒): new requests, due dates, answers, refusals; read one or all."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import BackendsDep, ClientIP, PageNumber
from api.schemas import DbId
from api.web.render import flash_redirect, render
from api.web.session import CheckedForm, SignedIn
from services import notifications
from services.errors import MaterialsError

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
KIND_NAMES = notifications.KIND_NAMES


@router.get("/notifications")
def notifications_page(
    request: Request, web: SignedIn, backends: BackendsDep, page: PageNumber = 1
) -> Response:
    """The caller's reminders, newest first, the unread ones marked in words."""
    found = notifications.list_for(
        backends, principal=web.principal, unread_only=False, page=page, size=PAGE_SIZE
    )
    return render(
        request,
        "notifications.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        found=found,
        page=page,
        size=PAGE_SIZE,
        page_url=lambda number: f"/notifications?page={number}",
        KIND_NAMES=KIND_NAMES,
    )


@router.post("/notifications/read")
def mark_all_read(
    request: Request, web: SignedIn, _form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    changed = notifications.mark_read(
        backends, principal=web.principal, notification_id=None, ip=ip
    )
    text = f"已将 {changed} 条提醒标为已读" if changed else "没有未读的提醒"
    return flash_redirect(request, backends.settings, "/notifications", text=text)


@router.post("/notifications/{notification_id}/read")
def mark_read(
    request: Request,
    notification_id: DbId,
    web: SignedIn,
    _form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    try:
        notifications.mark_read(
            backends, principal=web.principal, notification_id=notification_id, ip=ip
        )
    except MaterialsError as exc:
        return flash_redirect(
            request, backends.settings, "/notifications", text=exc.message, kind="error"
        )
    return flash_redirect(request, backends.settings, "/notifications", text="已标为已读")
