"""Which catalog slot a material fills: an active item the township owes, for a period that
fits the item's cycle (a quarterly item is owed per quarter: 2026-Q3, never 2026-09)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from services.errors import InvalidField, NotFound
from services.metadata import check_period, period_bounds, period_unit
from services.models import CatalogItem, Cycle, Sharing, Visibility

# The span of a period that fits each cycle.
CYCLE_UNITS = {Cycle.monthly: "month", Cycle.quarterly: "quarter", Cycle.yearly: "year"}
# How a period of each cycle is written, as people write it.
CYCLE_EXAMPLES = {
    Cycle.monthly: "2026年9月",
    Cycle.quarterly: "2026年第三季度",
    Cycle.yearly: "2026年",
}


def find_item(session: Session, item_id: int | str) -> CatalogItem:
    """A catalog item by id; NotFound when there is none."""
    found = (
        session.get(CatalogItem, int(item_id))
        if str(item_id).isdigit() and int(item_id) < 2**31
        else None
    )
    if found is None:
        raise NotFound("目录中没有这项材料", code="catalog_item_not_found")
    return found


def owes(item: CatalogItem, township_id: int) -> bool:
    """Does this township owe the item?"""
    return item.all_townships or township_id in {org.id for org in item.townships}


def slot_period(item: CatalogItem, period: str | None, *, field: str = "period") -> str | None:
    """The period as the item's slot names it; InvalidField when it does not fit the cycle."""
    cycle = Cycle(item.cycle)
    if cycle is Cycle.once:
        return check_period(period) if period else None
    example = CYCLE_EXAMPLES[cycle]
    if not period:
        raise InvalidField(field, f"此目录材料须填写期间，如 {example}", code="period_required")
    canonical = check_period(period)
    if period_unit(canonical) != CYCLE_UNITS[cycle]:
        raise InvalidField(
            field,
            f"期间与目录材料的报送周期不符，应填写如 {example}",
            code="period_not_in_cycle",
        )
    return canonical


def item_for_slot(
    session: Session, *, ref: str | int, township_id: int, period: str | None, field: str
) -> CatalogItem:
    """The active catalog item a township fills (or asks about) for a period; InvalidField when
    it is unknown, retired, not owed by that township, or the period does not fit its cycle."""
    try:
        item = find_item(session, ref)
    except NotFound:
        raise InvalidField(field, "目录中没有这项材料", code="unknown_catalog_item") from None
    if not item.active:
        raise InvalidField(field, "这项目录材料已停用", code="catalog_item_inactive")
    if not owes(item, township_id):
        raise InvalidField(field, "该乡镇无需报送这项目录材料", code="catalog_item_not_owed")
    slot_period(item, period)
    return item


def owed(item: CatalogItem, period: str) -> bool:
    """Is the slot of this period owed at all? Periods that ended before the item was owed are
    not (a new item does not make every township late for last year)."""
    return period_bounds(period)[1] >= item.owed_from


def due_date(item: CatalogItem, period: str) -> date:
    """When a slot is due: ``due_days`` after its period ends."""
    return period_bounds(period)[1] + timedelta(days=item.due_days)


def defaults_for(item: CatalogItem, fields: dict[str, str]) -> dict[str, str]:
    """An upload's fields with what the catalog item implies where the clerk left them empty:
    its category, and who may read it by its sharing class (无条件共享: every department;
    有条件共享: the departments that use it; 不予共享: the township only).

    A category given must be the item's (InvalidField otherwise): the catalog classifies what
    it asks for, and search facets and figures count the item's materials under it."""
    filled = dict(fields)
    given = filled.get("category", "").strip()
    if not given:
        filled["category"] = item.category
    elif given != item.category:
        raise InvalidField(
            "category",
            f"目录材料“{item.name}”的类别是“{item.category}”，与填写的“{given}”不一致："
            f"请改为“{item.category}”，或不填",
            code="category_mismatch",
        )
    if not filled.get("visibility", "").strip() and not filled.get("departments", "").strip():
        sharing = Sharing(item.sharing)
        if sharing is Sharing.none:
            filled["visibility"] = Visibility.private.value
        elif sharing is Sharing.conditional and item.departments:
            filled["visibility"] = Visibility.restricted.value
            filled["departments"] = ",".join(str(org.id) for org in item.departments)
    return filled
