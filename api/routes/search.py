"""Search: Chinese full-text search over the documents the caller may read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import BackendsDep, ClientIP, CurrentUser, PageNumber
from api.schemas import OrgNameOrId, SearchOut
from services import searching
from services.search import SearchSort

router = APIRouter(prefix="/api/v1", tags=["search"])


@router.get("/search", response_model=SearchOut)
def search_documents(
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    q: Annotated[str, Query(max_length=500)] = "",
    category: Annotated[str | None, Query(max_length=50)] = None,
    township: Annotated[OrgNameOrId | None, Query(max_length=100)] = None,
    period_from: Annotated[str | None, Query(max_length=20)] = None,
    period_to: Annotated[str | None, Query(max_length=20)] = None,
    page: PageNumber = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
    sort: Annotated[SearchSort, Query()] = SearchSort.relevance,
    year: Annotated[int | None, Query(ge=1949, le=2100, description="年份分面的筛选")] = None,
) -> Response:
    """Documents matching `q` and the filters, best (or with `sort=date` newest) first."""
    found = searching.search(
        backends,
        principal=user,
        text=q,
        category=category,
        township=township,
        period_from=period_from,
        period_to=period_to,
        page=page,
        size=size,
        ip=ip,
        sort=sort,
        year=year,
    )
    # Serialised here, once: returned as a model, it would be validated again (in another
    # thread hop) before the same serialisation. ``response_model`` still documents it.
    body = SearchOut.of(found, number=page, size=size).model_dump_json()
    return Response(body, media_type="application/json")
