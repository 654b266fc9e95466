"""The catalog's coverage grid: which township filled which slot, from uploads with and without
``catalog_item``; a township that does not owe the item is no row and cannot fill it.

Periods are counted back from the county's today so that every status is certain: a month three
months ago is overdue (due 40 days after it ended), last month is missing, this month is not due.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.audit import AuditFilter
from services.backends import Backends
from services.catalog import county_today
from services.models import OrgKind, Role
from tests.api.ask_once_helpers import (
    CATALOG,
    add_user,
    assert_error,
    create_item,
    row_counts,
    upload,
)
from tests.conftest import EAST, WEST, Api
from tests.samples import text_bytes

NORTH = "北岭乡"


def _month(shift: int) -> str:
    """The month ``shift`` months from the county's current one, as ``2026-09``."""
    today = county_today()
    year, month = divmod(today.year * 12 + today.month - 1 + shift, 12)
    return f"{year}-{month + 1:02d}"


def _coverage(api: Api, user: str, item_id: int, **params: str) -> dict[str, Any]:
    response = api.client.get(
        f"{CATALOG}/{item_id}/coverage", params=params, headers=api.headers(user)
    )
    assert response.status_code == 200, response.text
    grid: dict[str, Any] = response.json()
    return grid


def _cells(grid: dict[str, Any]) -> dict[str, list[tuple[str, str | None]]]:
    return {
        row["township"]["name"]: [(cell["status"], cell["document_id"]) for cell in row["cells"]]
        for row in grid["rows"]
    }


@pytest.fixture
def monthly(api: Api, backends: Backends) -> dict[str, Any]:
    """A monthly item owed by east and a third township (north), due 40 days after each month."""
    add_user(backends, "north", NORTH, OrgKind.township, Role.uploader)
    return create_item(
        api, name="月度安全台账", category="安全台账", cycle="monthly", due_days=40,
        townships=[EAST, NORTH],
    )  # fmt: skip


def test_the_grid_shows_each_status_from_uploads_with_and_without_the_item(
    api: Api, backends: Backends, monthly: dict[str, Any]
) -> None:
    item = str(monthly["id"])
    filled = {
        (user, shift): upload(
            api, user, f"{user}安全台账{shift}", catalog_item=item, period=_month(shift)
        )
        for user, shift in (("east", -3), ("east", -2), ("east", 0), ("north", -2))
    }
    # Same category and period, but not for the item: it fills no slot.
    upload(api, "east", "东镇安全台账上月", category="安全台账", period=_month(-1))
    # A withdrawn submission no longer fills its slot.
    withdrawn = upload(api, "north", "北岭安全台账上月", catalog_item=item, period=_month(-1))
    gone = api.client.delete(f"/api/v1/documents/{withdrawn}", headers=api.headers("north"))
    assert gone.status_code == 200, gone.text

    grid = _coverage(api, "coord", monthly["id"], period_from=_month(-3), period_to=_month(1))

    assert grid["item"]["id"] == monthly["id"]
    assert grid["periods"] == [_month(shift) for shift in range(-3, 2)]
    assert _cells(grid) == {
        EAST: [
            ("submitted", filled[("east", -3)]),
            ("submitted", filled[("east", -2)]),
            ("missing", None),
            ("submitted", filled[("east", 0)]),
            ("not_due", None),
        ],
        NORTH: [
            ("overdue", None),
            ("submitted", filled[("north", -2)]),
            ("missing", None),
            ("not_due", None),
            ("not_due", None),
        ],
    }
    # West owes nothing here: no row, for anyone.
    assert WEST not in _cells(_coverage(api, "poverty", monthly["id"]))


def test_a_township_not_owed_the_item_cannot_fill_it(
    api: Api, backends: Backends, monthly: dict[str, Any]
) -> None:
    counts = row_counts(backends)
    blobs = sorted(blob.sha256 for blob in backends.blobs.list())

    response = api.upload(
        "west", "西乡安全台账.txt", text_bytes("西乡安全台账"), "text/plain",
        catalog_item=str(monthly["id"]), period=_month(-1),
    )  # fmt: skip

    assert_error(response, 422, "catalog_item_not_owed")
    assert row_counts(backends) == counts
    assert sorted(blob.sha256 for blob in backends.blobs.list()) == blobs
    grid = _coverage(api, "coord", monthly["id"], period_from=_month(-1), period_to=_month(-1))
    assert [row["township"]["name"] for row in grid["rows"]] == [EAST, NORTH]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"period": "2026"}, "period_not_in_cycle"),
        ({"period": "2026-Q3"}, "period_not_in_cycle"),
        ({}, "period_required"),
        ({"catalog_item": "987654"}, "unknown_catalog_item"),
        ({"catalog_item": "9" * 30}, "unknown_catalog_item"),
        ({"catalog_item": "abc"}, "unknown_catalog_item"),
        ({"period": _month(-1), "category": "工作总结"}, "category_mismatch"),
    ],
)
def test_an_upload_that_fits_no_slot_is_refused_and_nothing_stored(
    api: Api, backends: Backends, monthly: dict[str, Any], fields: dict[str, str], code: str
) -> None:
    counts = row_counts(backends)

    response = api.upload(
        "east", "台账.txt", text_bytes("东镇台账"), "text/plain",
        **{"catalog_item": str(monthly["id"]), **fields},
    )  # fmt: skip

    assert_error(response, 422, code)
    assert row_counts(backends) == counts


def test_a_retired_item_takes_no_more_uploads(
    api: Api, backends: Backends, monthly: dict[str, Any]
) -> None:
    retired = api.client.patch(
        f"{CATALOG}/{monthly['id']}", json={"active": False}, headers=api.headers("coord")
    )
    assert retired.status_code == 200, retired.text
    counts = row_counts(backends)

    response = api.upload(
        "east", "台账.txt", text_bytes("东镇台账"), "text/plain",
        catalog_item=str(monthly["id"]), period=_month(-1),
    )  # fmt: skip

    assert_error(response, 422, "catalog_item_inactive")
    assert row_counts(backends) == counts
    active = api.client.get(CATALOG, params={"active": "true"}, headers=api.headers("east"))
    assert monthly["id"] not in {entry["id"] for entry in active.json()}


@pytest.mark.parametrize(
    ("user", "rows"),
    [
        ("east", [EAST]),
        ("east2", [EAST]),
        ("west", [WEST]),
        ("north", [NORTH]),
        ("poverty", [EAST, NORTH, WEST]),
        ("coord", [EAST, NORTH, WEST]),
        ("auditor", [EAST, NORTH, WEST]),
    ],
)
def test_a_township_reads_only_its_own_row(
    api: Api, backends: Backends, user: str, rows: list[str]
) -> None:
    add_user(backends, "north", NORTH, OrgKind.township, Role.uploader)
    every = create_item(api, name="年度统计年报", cycle="yearly", due_days=90)

    grid = _coverage(api, user, every["id"])

    assert sorted(row["township"]["name"] for row in grid["rows"]) == sorted(rows)
    # By default, the periods up to the current one.
    assert grid["periods"][-1] == str(county_today().year)


def test_a_once_item_has_one_column(api: Api) -> None:
    once = create_item(api, name="村级组织名册", cycle="once", due_days=30, owed_from=None)
    document = upload(api, "west", "西乡村级组织名册", catalog_item=str(once["id"]))

    grid = _coverage(api, "coord", once["id"])

    assert grid["periods"] == ["once"]
    # Owed from the day the item was added: missing until it is due, overdue afterwards.
    assert _cells(grid) == {EAST: [("missing", None)], WEST: [("submitted", document)]}


def test_periods_before_an_item_was_owed_are_not_owed(api: Api) -> None:
    """A new item does not make every township late for the year before it existed."""
    today = county_today()
    item = create_item(api, name="新增月报", cycle="monthly", due_days=10, owed_from=None)
    assert item["owed_from"] == today.isoformat()

    grid = _coverage(api, "coord", item["id"], period_from=f"{today.year - 1}-01")
    default = _coverage(api, "coord", item["id"])

    statuses = {status for cells in _cells(grid).values() for status, _ in cells}
    assert statuses == {"not_owed", "not_due"}
    # Unasked, the grid starts at the first owed period: the current month.
    assert default["periods"] == [f"{today.year}-{today.month:02d}"]


def test_a_coverage_read_is_logged_with_the_items_name(
    api: Api, backends: Backends, monthly: dict[str, Any]
) -> None:
    _coverage(api, "coord", monthly["id"], period_from=_month(-2), period_to=_month(-1))

    (event,) = backends.audit.page(AuditFilter(action="coverage_read"), page=1, size=5).events
    assert event.actor == "coord"
    assert event.details == {
        "catalog_item": monthly["id"],
        "name": "月度安全台账",
        "periods": [_month(-2), _month(-1)],
    }
