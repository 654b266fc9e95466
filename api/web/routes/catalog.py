"""The material catalog (材料目录) in the browser: the list, the coordinators' editor, and the
coverage grid (报送情况) of one item: which township has filled which period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.datastructures import FormData

from api.deps import BackendsDep, ClientIP
from api.schemas import DbId
from api.web.render import flash_redirect, render
from api.web.session import CheckedForm, SignedIn
from services import access, administration, catalog
from services.backends import Backends
from services.catalog import ItemFields
from services.errors import Forbidden, InvalidField, MaterialsError
from services.metadata import period_label
from services.models import CYCLE_NAMES, SHARING_NAMES, CatalogItem

router = APIRouter(include_in_schema=False)

FIELD_LABELS = {
    "name": "材料名称",
    "category": "类别",
    "cycle": "报送周期",
    "due_days": "报送期限",
    "townships": "报送乡镇",
    "departments": "使用部门",
    "sharing": "共享属性",
    "description": "说明",
    "period_from": "开始期间",
    "period_to": "结束期间",
    "owed_from": "起始日期",
}
# A coverage cell in words, with a mark that is not a colour: ✓ ! ✗ …
COVERAGE_LABELS = {
    "submitted": ("已报送", "✓"),
    "not_due": ("未到期", "…"),
    "missing": ("待报送", "!"),
    "overdue": ("逾期未报", "✗"),
    "not_owed": ("无需报送", "–"),
}


def _problem(exc: MaterialsError) -> str:
    label = FIELD_LABELS.get(exc.field) if isinstance(exc, InvalidField) else None
    return f"{label}：{exc.message}" if label else exc.message


@router.get("/catalog")
def catalog_page(request: Request, web: SignedIn, backends: BackendsDep) -> Response:
    """Every catalog item, in use and retired; coordinators may add and change them."""
    return render(
        request,
        "catalog.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        items=catalog.list_items(backends),
        editable=access.can_keep_catalog(web.principal),
        CYCLE_NAMES=CYCLE_NAMES,
        SHARING_NAMES=SHARING_NAMES,
    )


@dataclass
class ItemForm:
    """The editor's fields as typed (strings), so a mistake shows the form as it was."""

    name: str = ""
    category: str = ""
    cycle: str = "quarterly"
    due_days: str = "15"
    owed_from: str = ""
    all_townships: bool = True
    townships: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    sharing: str = "unconditional"
    description: str = ""

    @classmethod
    def of(cls, item: CatalogItem) -> ItemForm:
        return cls(
            name=item.name,
            category=item.category,
            cycle=item.cycle,
            due_days=str(item.due_days),
            owed_from=item.owed_from.isoformat(),
            all_townships=item.all_townships,
            townships=[org.name for org in item.townships],
            departments=[org.name for org in item.departments],
            sharing=item.sharing,
            description=item.description,
        )

    @classmethod
    def posted(cls, form: FormData) -> ItemForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        return cls(
            name=text("name"),
            category=text("category"),
            cycle=text("cycle"),
            due_days=text("due_days"),
            owed_from=text("owed_from"),
            all_townships=text("township_scope") != "selected",
            townships=[v for v in form.getlist("townships") if isinstance(v, str)],
            departments=[v for v in form.getlist("departments") if isinstance(v, str)],
            sharing=text("sharing"),
            description=text("description"),
        )

    def fields(self) -> ItemFields:
        """What the catalog service takes; InvalidField for what it cannot be."""
        if not self.due_days.isdigit():
            raise InvalidField("due_days", "请填写天数（整数）", code="invalid_due_days")
        if not self.all_townships and not self.townships:
            raise InvalidField("townships", "请至少选择一个乡镇", code="invalid_townships")
        try:
            owed_from = date.fromisoformat(self.owed_from) if self.owed_from else None
        except ValueError:
            raise InvalidField("owed_from", "请填写有效的日期", code="invalid_date") from None
        return ItemFields(
            name=self.name,
            category=self.category,
            cycle=self.cycle,
            due_days=int(self.due_days),
            owed_from=owed_from,
            townships="all" if self.all_townships else self.townships,
            departments=self.departments,
            sharing=self.sharing,
            description=self.description,
        )


def _editor(
    request: Request,
    web: SignedIn,
    backends: Backends,
    *,
    item: CatalogItem | None,
    values: ItemForm,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    if not access.can_keep_catalog(web.principal):
        raise Forbidden("只有减负办工作人员可以维护材料目录", code="coordinator_only")
    return render(
        request,
        "catalog_item.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        item=item,
        values=values,
        error=error,
        categories=[category.name for category in administration.list_categories(backends)],
        townships=administration.list_orgs(backends, kind="township"),
        departments=administration.list_orgs(backends, kind="department"),
        CYCLE_NAMES=CYCLE_NAMES,
        SHARING_NAMES=SHARING_NAMES,
        status_code=status_code,
    )


@router.get("/catalog/new")
def new_item_page(request: Request, web: SignedIn, backends: BackendsDep) -> Response:
    values = ItemForm(owed_from=catalog.county_today().isoformat())
    return _editor(request, web, backends, item=None, values=values)


@router.post("/catalog/new")
def create_item(
    request: Request, web: SignedIn, form: CheckedForm, backends: BackendsDep, ip: ClientIP
) -> Response:
    """Add an item; on a mistake the form comes back with what was typed."""
    values = ItemForm.posted(form)
    try:
        item = catalog.create_item(backends, principal=web.principal, fields=values.fields(), ip=ip)
    except InvalidField as exc:
        return _editor(
            request, web, backends, item=None, values=values, error=_problem(exc), status_code=422
        )
    return flash_redirect(
        request, backends.settings, "/catalog", text=f"已将“{item.name}”加入材料目录"
    )


@router.get("/catalog/{item_id}/edit")
def edit_item_page(
    request: Request, item_id: DbId, web: SignedIn, backends: BackendsDep
) -> Response:
    item = catalog.get_item(backends, item_id=item_id)
    return _editor(request, web, backends, item=item, values=ItemForm.of(item))


@router.post("/catalog/{item_id}/edit")
def update_item(
    request: Request,
    item_id: DbId,
    web: SignedIn,
    form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    values = ItemForm.posted(form)
    try:
        item = catalog.update_item(
            backends, principal=web.principal, item_id=item_id, fields=values.fields(), ip=ip
        )
    except InvalidField as exc:
        current = catalog.get_item(backends, item_id=item_id)
        return _editor(
            request,
            web,
            backends,
            item=current,
            values=values,
            error=_problem(exc),
            status_code=422,
        )
    return flash_redirect(request, backends.settings, "/catalog", text=f"已保存“{item.name}”")


@router.post("/catalog/{item_id}/active")
def set_active(
    request: Request,
    item_id: DbId,
    web: SignedIn,
    form: CheckedForm,
    backends: BackendsDep,
    ip: ClientIP,
) -> Response:
    """Retire an item (townships no longer owe it) or bring it back."""
    active = form.get("active") == "true"
    try:
        item = catalog.update_item(
            backends,
            principal=web.principal,
            item_id=item_id,
            fields=ItemFields(active=active),
            ip=ip,
        )
    except MaterialsError as exc:
        return flash_redirect(
            request, backends.settings, "/catalog", text=_problem(exc), kind="error"
        )
    text = f"已恢复“{item.name}”" if active else f"已停用“{item.name}”，乡镇不再需要报送"
    return flash_redirect(request, backends.settings, "/catalog", text=text)


@router.get("/coverage")
def coverage_page(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    item: Annotated[str, Query(max_length=20)] = "",
    period_from: Annotated[str, Query(max_length=20)] = "",
    period_to: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """报送情况: for one catalog item, which township has submitted which period."""
    items = catalog.list_items(backends)
    # An item named in the address that does not exist is the 404 page, not another item.
    chosen = (
        catalog.get_item(backends, item_id=item)
        if item
        else next((i for i in items if i.active), items[0] if items else None)
    )
    grid = None
    error = None
    if chosen is not None:
        try:
            grid = catalog.coverage(
                backends,
                principal=web.principal,
                item_id=chosen.id,
                period_from=period_from or None,
                period_to=period_to or None,
                ip=ip,
            )
        except InvalidField as exc:
            error = _problem(exc)
            grid = catalog.coverage(
                backends,
                principal=web.principal,
                item_id=chosen.id,
                period_from=None,
                period_to=None,
                ip=ip,
            )
    counts = dict.fromkeys(COVERAGE_LABELS, 0)
    for row in grid.rows if grid else []:
        for cell in row.cells:
            counts[cell.status] += 1
    return render(
        request,
        "coverage.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        items=items,
        chosen=chosen,
        grid=grid,
        counts=counts,
        error=error,
        period_from=period_from,
        period_to=period_to,
        LABELS=COVERAGE_LABELS,
        CYCLE_NAMES=CYCLE_NAMES,
        column_label=lambda period: "一次性" if period == catalog.ONCE else period_label(period),
    )
