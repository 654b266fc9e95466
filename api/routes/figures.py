"""Burden-reduction figures (减负成效), as JSON and as CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.ask_schemas import FiguresOut
from api.deps import BackendsDep, ClientIP, CurrentUser
from api.schemas import CSV_RESPONSES
from services import figures
from services.catalog import county_today
from services.documents import content_disposition

router = APIRouter(prefix="/api/v1", tags=["ask once"])

PeriodFrom = Annotated[str | None, Query(max_length=20, description="起始期间，如 2026-01")]
PeriodTo = Annotated[str | None, Query(max_length=20, description="截止期间，如 2026-06")]
By = Annotated[str | None, Query(max_length=20, description="township、department 或 county")]


@router.get("/figures", response_model=FiguresOut)
def get_figures(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    period_from: PeriodFrom = None,
    period_to: PeriodTo = None,
    by: By = None,
) -> FiguresOut:
    """The figures per township, department or county over the periods."""
    table = figures.figures(
        backends, principal=user, period_from=period_from, period_to=period_to, by=by, ip=ip
    )
    return FiguresOut.of(table, period_from=period_from, period_to=period_to)


@router.get(
    "/figures.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSES,
)
def get_figures_csv(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    period_from: PeriodFrom = None,
    period_to: PeriodTo = None,
    by: By = None,
    labels: Annotated[str | None, Query(pattern="^zh$", description="zh：中文表头")] = None,
) -> StreamingResponse:
    """The same table as CSV (UTF-8 with BOM, for Excel), the county's totals last."""
    table = figures.figures(
        backends, principal=user, period_from=period_from, period_to=period_to, by=by, ip=ip
    )
    name = figures.csv_filename(table.by, period_from, period_to, county_today())
    return StreamingResponse(
        figures.to_csv(table, for_people=labels == "zh"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": content_disposition(name)},
    )
