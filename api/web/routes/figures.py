"""Burden-reduction figures (减负成效) as a page: the table, a chart per township (or department)
and per month drawn here as SVG, and the same table as a CSV download."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from api.deps import BackendsDep, ClientIP
from api.web.charts import Bar, bar_chart
from api.web.render import render
from api.web.session import SignedIn
from services import access, figures
from services.access import Principal
from services.backends import Backends
from services.errors import InvalidField
from services.metadata import period_label

router = APIRouter(include_in_schema=False)

GROUPING_NAMES = figures.GROUPING_NAMES
# The figures the table shows, in its order (the key column first).
TABLE_COLUMNS = figures.COLUMNS


def _figures(
    backends: Backends,
    principal: Principal,
    grouping: str | None,
    start: str | None,
    end: str | None,
    ip: str | None,
) -> tuple[figures.FigureTable, list[tuple[str, figures.FigureRow]]]:
    table = figures.figures(
        backends, principal=principal, by=grouping, period_from=start, period_to=end, ip=ip
    )
    months = figures.by_month(
        backends, principal=principal, period_from=start, period_to=end, ip=ip
    )
    return table, months


@router.get("/figures")
def figures_page(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    by: Annotated[str, Query(max_length=20)] = "",
    period_from: Annotated[str, Query(max_length=20)] = "",
    period_to: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The figures over the chosen periods; a township or department sees its own line."""
    principal = web.principal
    everything = access.can_read_all_figures(principal)
    grouping = by if everything and by in GROUPING_NAMES else None
    start, end = period_from or None, period_to or None
    error = None
    try:
        table, months = _figures(backends, principal, grouping, start, end, ip)
    except InvalidField as exc:
        error, start, end = exc.message, None, None
        table, months = _figures(backends, principal, grouping, start, end, ip)
    csv_query = {
        key: value
        for key, value in {
            "by": table.by,
            "period_from": start,
            "period_to": end,
            "labels": "zh",
        }.items()
        if value is not None
    }
    noun = figures.COLUMN_NAMES["hours_saved"]
    rows_chart = bar_chart(
        chart_id="chart-rows",
        title=f"{noun}，{GROUPING_NAMES[table.by]}",
        unit="小时",
        bars=[Bar(row.key, row.hours_saved) for row in table.rows],
    )
    month_chart = bar_chart(
        chart_id="chart-months",
        title=f"{noun}，按月（{'全县' if everything else principal.org_name}）",
        unit="小时",
        bars=[Bar(period_label(month), row.hours_saved) for month, row in months],
    )
    requests_chart = bar_chart(
        chart_id="chart-requests",
        title="免于乡镇重复报送的需求（库内直接获取与并入同类需求），按月",
        unit="项",
        bars=[
            Bar(
                period_label(month),
                row.counts["answered_from_repository"] + row.counts["joined"],
            )
            for month, row in months
        ],
    )
    return render(
        request,
        "figures.html",
        principal=principal,
        csrf_token=web.csrf_token,
        table=table,
        everything=everything,
        columns=TABLE_COLUMNS,
        column_names=figures.COLUMN_NAMES,
        grouping_names=GROUPING_NAMES,
        period_from=period_from,
        period_to=period_to,
        error=error,
        csv_url="/api/v1/figures.csv?" + urlencode(csv_query),
        rows_chart=rows_chart,
        month_chart=month_chart,
        requests_chart=requests_chart,
        months=months,
        hours_per_request=backends.settings.hours_per_request,
        hours_per_reuse=backends.settings.hours_per_reuse,
        number=lambda value: f"{value:g}",
    )
