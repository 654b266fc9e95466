"""The caller's in-app notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.ask_schemas import NotificationListOut
from api.deps import BackendsDep, ClientIP, CurrentUser, PageNumber
from api.errors import error_responses
from api.schemas import DbId
from services import notifications

router = APIRouter(prefix="/api/v1/notifications", tags=["ask once"])


@router.get("", response_model=NotificationListOut)
def list_notifications(
    user: CurrentUser,
    backends: BackendsDep,
    unread: bool = False,
    page: PageNumber = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> NotificationListOut:
    """The caller's notifications, newest first (`unread=true`: only those not yet read)."""
    found = notifications.list_for(
        backends, principal=user, unread_only=unread, page=page, size=size
    )
    return NotificationListOut.of(found)


@router.post("/read", status_code=204)
def mark_all_read(user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> Response:
    notifications.mark_read(backends, principal=user, notification_id=None, ip=ip)
    return Response(status_code=204)


@router.post("/{notification_id}/read", status_code=204, responses=error_responses(404))
def mark_read(
    notification_id: DbId,
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    notifications.mark_read(backends, principal=user, notification_id=notification_id, ip=ip)
    return Response(status_code=204)
