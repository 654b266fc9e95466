"""The material catalog (材料目录): what townships owe, how often, by when, and who uses it.

Coordinators keep it; everyone signed in reads it. An upload naming a catalog item fills that
item's slot for its township and period; the coverage grid shows which slots are filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import access, dictionary, names, orgs, slots
from services.access import Principal
from services.audit import AuditAction, Outcome
from services.backends import Backends
from services.documents import actor_of
from services.errors import Forbidden, InvalidField
from services.metadata import (
    period_bounds,
    period_containing,
    periods_from_to,
)
from services.models import (
    COUNTY_TIME,
    CatalogItem,
    Cycle,
    Document,
    Org,
    OrgKind,
    Sharing,
    utcnow,
)

MAX_NAME = 100
MAX_DUE_DAYS = 366
# The most columns a coverage grid shows (five years of months).
MAX_COVERAGE_PERIODS = 60
# The period a ``once`` item is owed for: one column, whatever the document's own period.
ONCE = "once"


@dataclass(frozen=True)
class ItemFields:
    """A catalog item as a coordinator describes it; ``None`` leaves a field unchanged."""

    name: str | None = None
    category: str | None = None
    cycle: str | None = None
    due_days: int | None = None
    owed_from: date | None = None
    townships: str | list[str] | None = None  # "all" or names (or ids)
    departments: list[str] | None = None
    sharing: str | None = None
    description: str | None = None
    active: bool | None = None


def county_today(now: datetime | None = None) -> date:
    """Today's date in the county (due dates are Beijing dates)."""
    return (now or utcnow()).astimezone(COUNTY_TIME).date()


def _require_coordinator(
    backends: Backends, *, principal: Principal, action: AuditAction, ip: str | None
) -> None:
    if not access.can_keep_catalog(principal):
        backends.audit.record(
            actor=actor_of(principal, ip),
            action=action,
            outcome=Outcome.denied,
            details={"reason": "not_coordinator"},
        )
        raise Forbidden("只有减负办工作人员可以维护材料目录", code="coordinator_only")


def list_items(backends: Backends, *, active_only: bool = False) -> list[CatalogItem]:
    """Every catalog item (or only the active ones), by name."""
    with backends.db.session() as session:
        query = select(CatalogItem).order_by(CatalogItem.name)
        if active_only:
            query = query.where(CatalogItem.active.is_(True))
        return list(session.scalars(query))


def get_item(backends: Backends, *, item_id: int | str) -> CatalogItem:
    """One catalog item by id (as typed in an address, too); NotFound when there is none."""
    with backends.db.session() as session:
        return slots.find_item(session, item_id)


def create_item(
    backends: Backends, *, principal: Principal, fields: ItemFields, ip: str | None
) -> CatalogItem:
    """Add a recurring material to the catalog (coordinators only)."""
    _require_coordinator(backends, principal=principal, action=AuditAction.catalog_create, ip=ip)
    missing = [
        name
        for name, value in (
            ("name", fields.name),
            ("category", fields.category),
            ("cycle", fields.cycle),
            ("due_days", fields.due_days),
        )
        if value is None
    ]
    if missing:
        raise InvalidField(missing[0], f"缺少字段：{missing[0]}", code="missing_field")
    with backends.db.session() as session:
        words = dictionary.county_words(session)
        item = CatalogItem(
            active=True, all_townships=True, description="", owed_from=county_today()
        )
        _apply(session, item, fields, creating=True)
        session.add(item)
        session.flush()
        # The item's name is a word: documents naming it are segmented again.
        dictionary.queue_reindexing(session, settings=backends.settings, before=words)
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=AuditAction.catalog_create,
            outcome=Outcome.allowed,
            details={"catalog_item": item.id, **describe(item)},
        )
    dictionary.refresh(backends)
    return item


def update_item(
    backends: Backends, *, principal: Principal, item_id: int, fields: ItemFields, ip: str | None
) -> CatalogItem:
    """Change a catalog item (coordinators only); retiring one is ``active: false``."""
    _require_coordinator(backends, principal=principal, action=AuditAction.catalog_update, ip=ip)
    with backends.db.session() as session:
        item = slots.find_item(session, item_id)
        renamed = fields.name is not None and fields.name.strip() != item.name
        words = dictionary.county_words(session) if renamed else ()
        _apply(session, item, fields, creating=False)
        item.updated_at = utcnow()
        session.flush()
        if renamed:  # documents naming the old or the new name are segmented again
            dictionary.queue_reindexing(session, settings=backends.settings, before=words)
        backends.audit.append(
            session,
            actor=actor_of(principal, ip),
            action=AuditAction.catalog_update,
            outcome=Outcome.allowed,
            details={"catalog_item": item.id, **describe(item)},
        )
    if renamed:
        dictionary.refresh(backends)
    return item


def describe(item: CatalogItem) -> dict[str, Any]:
    """A catalog item as plain values (the API's shape, and what the audit log records)."""
    return {
        "name": item.name,
        "category": item.category,
        "cycle": item.cycle,
        "due_days": item.due_days,
        "owed_from": item.owed_from.isoformat(),
        "townships": "all" if item.all_townships else [org.name for org in item.townships],
        "departments": [org.name for org in item.departments],
        "sharing": item.sharing,
        "description": item.description,
        "active": item.active,
    }


def _apply(session: Session, item: CatalogItem, fields: ItemFields, *, creating: bool) -> None:
    if fields.name is not None:
        name = orgs.clean_name(fields.name, field="name", limit=MAX_NAME)
        clash = session.scalar(select(CatalogItem).where(CatalogItem.name == name))
        if clash is not None and clash is not item:
            raise InvalidField("name", "目录中已有同名材料", code="duplicate_name")
        item.name = name
    if fields.category is not None:
        item.category = orgs.clean_name(
            fields.category, field="category", limit=orgs.MAX_CATEGORY_LENGTH
        )
        defined = {category.name for category in orgs.list_categories(session)}
        if defined and item.category not in defined:
            raise InvalidField(
                "category",
                f"类别须为以下之一：{'、'.join(sorted(defined))}",
                code="unknown_category",
            )
    if fields.cycle is not None:
        if not creating and fields.cycle != item.cycle and _has_submissions(session, item):
            raise InvalidField("cycle", "已有乡镇按此周期报送，不能修改周期", code="cycle_in_use")
        item.cycle = _choice(Cycle, "cycle", fields.cycle).value
    if fields.due_days is not None:
        if not 0 <= fields.due_days <= MAX_DUE_DAYS:
            raise InvalidField(
                "due_days", f"报送期限须为 0 到 {MAX_DUE_DAYS} 天", code="invalid_due_days"
            )
        item.due_days = fields.due_days
    if fields.owed_from is not None:
        if not date(1949, 1, 1) <= fields.owed_from <= date(2100, 12, 31):
            raise InvalidField("owed_from", "起始日期超出范围", code="invalid_owed_from")
        item.owed_from = fields.owed_from
    if fields.townships is not None:
        if fields.townships == "all":
            item.all_townships, item.townships = True, []
        elif isinstance(fields.townships, list) and fields.townships:
            item.all_townships = False
            item.townships = _orgs(session, fields.townships, OrgKind.township, "townships")
        else:
            raise InvalidField(
                "townships", "townships 须为 all 或乡镇名称列表", code="invalid_townships"
            )
    if fields.departments is not None:
        item.departments = _orgs(session, fields.departments, OrgKind.department, "departments")
    if fields.sharing is not None or creating:
        item.sharing = _choice(
            Sharing, "sharing", fields.sharing or Sharing.unconditional.value
        ).value
    if item.sharing == Sharing.conditional.value and not item.departments:
        raise InvalidField(
            "departments",
            "有条件共享的材料须指定使用部门，否则任何部门都看不到",
            code="departments_required",
        )
    if fields.description is not None:
        if len(fields.description) > 2000:
            raise InvalidField("description", "说明不能超过 2000 个字符", code="too_long")
        item.description = names.without_invisible(fields.description).strip()
    if fields.active is not None:
        item.active = fields.active


def _choice(kind: type[Cycle] | type[Sharing], field: str, value: str) -> Cycle | Sharing:
    try:
        return kind(value)
    except ValueError as exc:
        allowed = "、".join(member.value for member in kind)
        raise InvalidField(field, f"{field} 须为 {allowed} 之一", code=f"invalid_{field}") from exc


def _orgs(session: Session, refs: list[str], kind: OrgKind, field: str) -> list[Org]:
    found: dict[int, Org] = {}
    for ref in refs:
        org = orgs.find_org(session, ref)
        if org is None or org.kind != kind.value:
            noun = "乡镇" if kind is OrgKind.township else "部门"
            raise InvalidField(field, f"{noun}不存在：{ref}", code=f"unknown_{kind.value}")
        found[org.id] = org
    return sorted(found.values(), key=lambda org: org.name)


def _has_submissions(session: Session, item: CatalogItem) -> bool:
    return (
        session.scalar(select(Document.id).where(Document.catalog_item_id == item.id).limit(1))
        is not None
    )


@dataclass(frozen=True)
class CoverageCell:
    period: str
    status: str  # submitted | missing | overdue | not_due | not_owed (before the item was owed)
    document_id: str | None
    due: date | None


@dataclass(frozen=True)
class CoverageRow:
    township: Org
    cells: list[CoverageCell]


@dataclass(frozen=True)
class Coverage:
    item: CatalogItem
    periods: list[str]
    rows: list[CoverageRow]


def coverage_periods(
    item: CatalogItem, *, period_from: str | None, period_to: str | None, today: date
) -> list[str]:
    """The grid's columns: the item's periods from ``period_from`` to ``period_to`` (by default
    up to the current period, from the first owed one but at most about a year back)."""
    cycle = Cycle(item.cycle)
    if cycle is Cycle.once:
        return [ONCE]
    unit = slots.CYCLE_UNITS[cycle]
    last = (
        period_containing(period_bounds(period_to)[1], unit)
        if period_to
        else period_containing(today, unit)
    )
    if period_from:
        first = period_containing(period_bounds(period_from)[0], unit)
    else:
        back = {"month": 330, "quarter": 270, "year": 365 * 2}[unit]
        start = max(period_bounds(last)[0] - timedelta(days=back), item.owed_from)
        first = period_containing(min(start, period_bounds(last)[0]), unit)
    if period_bounds(first)[0] > period_bounds(last)[0]:
        raise InvalidField("period_from", "开始期间不能晚于结束期间", code="invalid_period")
    return periods_from_to(first, last, limit=MAX_COVERAGE_PERIODS)


def coverage(
    backends: Backends,
    *,
    principal: Principal,
    item_id: int,
    period_from: str | None,
    period_to: str | None,
    ip: str | None,
    now: datetime | None = None,
) -> Coverage:
    """Per township owing the item and per period: submitted, missing, overdue or not yet due."""
    today = county_today(now)
    with backends.db.session() as session:
        item = slots.find_item(session, item_id)
        periods = coverage_periods(item, period_from=period_from, period_to=period_to, today=today)
        townships = (
            orgs.list_orgs(session, kind=OrgKind.township)
            if item.all_townships
            else list(item.townships)
        )
        townships = [t for t in townships if access.can_see_coverage_row(principal, t.id)]
        filled: dict[tuple[int, str], str] = {}
        rows = session.execute(
            select(Document.township_id, Document.period, Document.id)
            .where(Document.catalog_item_id == item.id, Document.withdrawn_at.is_(None))
            .order_by(Document.created_at)
        ).all()
        for township_id, period, document_id in rows:
            slot = ONCE if item.cycle == Cycle.once.value else (period or "")
            filled.setdefault((township_id, slot), document_id)
    grid = [
        CoverageRow(
            township=township,
            cells=[_cell(item, township.id, period, filled, today) for period in periods],
        )
        for township in sorted(townships, key=lambda org: org.name)
    ]
    backends.audit.record(
        actor=actor_of(principal, ip),
        action=AuditAction.coverage_read,
        outcome=Outcome.allowed,
        # The item's name beside its number: the auditor reads which item, not only its id.
        details={"catalog_item": item.id, "name": item.name, "periods": [periods[0], periods[-1]]},
    )
    return Coverage(item=item, periods=periods, rows=grid)


def _cell(
    item: CatalogItem,
    township_id: int,
    period: str,
    filled: dict[tuple[int, str], str],
    today: date,
) -> CoverageCell:
    document_id = filled.get((township_id, period))
    if period == ONCE:
        due = item.owed_from + timedelta(days=item.due_days)
        ended, owed = True, True
    else:
        due = slots.due_date(item, period)
        ended = period_bounds(period)[1] < today
        owed = slots.owed(item, period)
    if document_id is not None:
        status = "submitted"
    elif not owed:
        status = "not_owed"
    elif today > due:
        status = "overdue"
    elif ended:
        status = "missing"
    else:
        status = "not_due"
    return CoverageCell(period=period, status=status, document_id=document_id, due=due)


def items_owed(backends: Backends, *, township_id: int) -> list[CatalogItem]:
    """The active catalog items a township owes, by name (what its upload form offers)."""
    with backends.db.session() as session:
        items = session.scalars(
            select(CatalogItem).where(CatalogItem.active.is_(True)).order_by(CatalogItem.name)
        )
        return [item for item in items if slots.owes(item, township_id)]


def open_slots(
    backends: Backends, *, item: CatalogItem, township_id: int, today: date
) -> list[CoverageCell]:
    """A township's owed slots of the item not yet submitted, oldest first: the ended ones
    (overdue, or waiting for their due date) within about a year back, then the running one.
    Periods that ended before the item's 起始日期 are not owed, so never among them."""
    periods = coverage_periods(item, period_from=None, period_to=None, today=today)
    cells = _slots(backends, item=item, township_id=township_id, periods=periods, today=today)
    return [cell for cell in cells if cell.status in ("overdue", "missing", "not_due")]


def pick_next(waiting: list[CoverageCell]) -> CoverageCell | None:
    """Of the open slots, the one a clerk is most likely filing now: the latest period that has
    ended (the report just due, or the latest one left behind), else the running period. None
    when nothing is open (a ``once`` item already submitted)."""
    ended = [cell for cell in waiting if cell.status in ("overdue", "missing")]
    if ended:
        return ended[-1]
    return waiting[-1] if waiting else None


def slot_of(
    backends: Backends, *, item: CatalogItem, township_id: int, period: str, today: date
) -> CoverageCell:
    """One period's slot of a township (the one a request asks for): its due date and status."""
    [cell] = _slots(backends, item=item, township_id=township_id, periods=[period], today=today)
    return cell


def _slots(
    backends: Backends, *, item: CatalogItem, township_id: int, periods: list[str], today: date
) -> list[CoverageCell]:
    with backends.db.session() as session:
        submitted = {
            ONCE if item.cycle == Cycle.once.value else (period or ""): document_id
            for period, document_id in session.execute(
                select(Document.period, Document.id).where(
                    Document.catalog_item_id == item.id,
                    Document.township_id == township_id,
                    Document.withdrawn_at.is_(None),
                )
            )
        }
    filled = {(township_id, period): document_id for period, document_id in submitted.items()}
    return [_cell(item, township_id, period, filled, today) for period in periods]
