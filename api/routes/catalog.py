"""The material catalog (材料目录) and its coverage grid; coordinators change the catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.ask_schemas import CatalogItemIn, CatalogItemOut, CatalogItemPatch, CoverageOut
from api.deps import BackendsDep, ClientIP, CurrentUser
from api.errors import error_responses
from api.schemas import DbId
from services import catalog
from services.catalog import ItemFields

router = APIRouter(prefix="/api/v1/catalog", tags=["ask once"])


@router.get("", response_model=list[CatalogItemOut])
def list_catalog(
    _user: CurrentUser, backends: BackendsDep, active: bool | None = None
) -> list[CatalogItemOut]:
    """Every catalog item (with `active=true`, only those still owed), by name."""
    return [
        CatalogItemOut.of(item) for item in catalog.list_items(backends, active_only=bool(active))
    ]


@router.post("", response_model=CatalogItemOut, status_code=201)
def create_catalog_item(
    body: CatalogItemIn, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> CatalogItemOut:
    """Add a recurring material townships owe (coordinators only)."""
    item = catalog.create_item(
        backends, principal=user, fields=ItemFields(**body.model_dump()), ip=ip
    )
    return CatalogItemOut.of(item)


@router.get("/{item_id}", response_model=CatalogItemOut, responses=error_responses(404))
def get_catalog_item(item_id: DbId, _user: CurrentUser, backends: BackendsDep) -> CatalogItemOut:
    return CatalogItemOut.of(catalog.get_item(backends, item_id=item_id))


@router.patch("/{item_id}", response_model=CatalogItemOut, responses=error_responses(404))
def update_catalog_item(
    item_id: DbId, body: CatalogItemPatch, user: CurrentUser, backends: BackendsDep, ip: ClientIP
) -> CatalogItemOut:
    """Change a catalog item (coordinators only); `active: false` retires it."""
    item = catalog.update_item(
        backends,
        principal=user,
        item_id=item_id,
        fields=ItemFields(**body.model_dump(exclude_unset=True)),
        ip=ip,
    )
    return CatalogItemOut.of(item)


@router.get("/{item_id}/coverage", response_model=CoverageOut, responses=error_responses(404))
def item_coverage(
    item_id: DbId,
    user: CurrentUser,
    backends: BackendsDep,
    ip: ClientIP,
    period_from: Annotated[str | None, Query(max_length=20)] = None,
    period_to: Annotated[str | None, Query(max_length=20)] = None,
) -> CoverageOut:
    """Per township owing the item and per period: submitted, missing, overdue or not yet due."""
    grid = catalog.coverage(
        backends,
        principal=user,
        item_id=item_id,
        period_from=period_from,
        period_to=period_to,
        ip=ip,
    )
    return CoverageOut.of(grid)
