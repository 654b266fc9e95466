"""Audit routes, for auditors only: events with filters, CSV export, chain verification."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api.deps import BackendsDep, ClientIP, CurrentUser, PageNumber
from api.schemas import CSV_RESPONSES, AuditEventOut, AuditPageOut, VerifyOut
from services import audit_access
from services.audit import AuditFilter, Outcome

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

MAX_AUDIT_PAGE_SIZE = 500


def _filters(
    actor: Annotated[str | None, Query(max_length=200)] = None,
    org: Annotated[str | None, Query(max_length=100)] = None,
    document_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    outcome: Annotated[Outcome | None, Query()] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> AuditFilter:
    return audit_access.make_filter(
        actor=actor,
        org=org,
        document_id=document_id,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
    )


AuditFilters = Annotated[AuditFilter, Depends(_filters)]


@router.get("/events", response_model=AuditPageOut)
def list_events(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    filters: AuditFilters,
    page: PageNumber = 1,
    size: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE_SIZE)] = 50,
) -> AuditPageOut:
    """Audit events matching the filters, newest first."""
    found = audit_access.read_events(
        backends, principal=user, filters=filters, page=page, size=size, ip=ip
    )
    return AuditPageOut(
        total=found.total,
        page=page,
        size=size,
        events=[AuditEventOut.of(event) for event in found.events],
    )


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSES,
)
def export_events(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    filters: AuditFilters,
    labels: Annotated[
        Literal["codes", "zh"],
        Query(description="codes：原始代码与 UTC 时间；zh：中文表头、中文名称与北京时间"),
    ] = "codes",
) -> StreamingResponse:
    """The matching events as CSV (UTF-8 with BOM, opens in Excel); `labels=zh` for people."""
    rows = audit_access.export_events(
        backends, principal=user, filters=filters, ip=ip, for_people=labels == "zh"
    )
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="audit-events.csv"; '
            "filename*=UTF-8''%E5%AE%A1%E8%AE%A1%E6%97%A5%E5%BF%97.csv",
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/verify", response_model=VerifyOut)
def verify_chain(user: CurrentUser, backends: BackendsDep, ip: ClientIP) -> VerifyOut:
    """Recompute the hash chain; name the first event that was edited, deleted or inserted."""
    return VerifyOut.of(audit_access.verify(backends, principal=user, ip=ip))
