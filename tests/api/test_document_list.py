"""Listing documents: newest first by default, sorted by title or category, filtered by period
(a longer period also finds the shorter ones inside it) and by index status."""

from __future__ import annotations

from typing import Any

import pytest

from indexer.worker import IndexWorker
from services.backends import Backends
from tests.conftest import Api
from tests.samples import text_bytes

DOCUMENTS = "/api/v1/documents"

# title → (category, period), uploaded in this order: the last one is the newest.
MATERIALS: dict[str, tuple[str, str]] = {
    "b-2026年工作总结": ("工作总结", "2026"),
    "c-三季度统计": ("统计报表", "2026-Q3"),
    "a-九月会议纪要": ("会议纪要", "2026年9月"),
    "d-九月十五日走访": ("工作总结", "2026-09-15"),
    "e-十月报表": ("统计报表", "2026-10"),
    "f-去年总结": ("工作总结", "2025-Q3"),
}


@pytest.fixture
def uploaded(api: Api) -> list[str]:
    """East's materials, oldest first; one of west's, which east never sees."""
    titles = []
    for title, (category, period) in MATERIALS.items():
        response = api.upload(
            "east",
            f"{title}.txt",
            text_bytes(f"{title}：乡镇报送材料正文。"),
            "text/plain",
            title=title,
            category=category,
            period=period,
        )
        assert response.status_code == 201, response.text
        titles.append(title)
    west = api.upload("west", "西乡.txt", text_bytes("西乡材料"), "text/plain", period="2026")
    assert west.status_code == 201, west.text
    return titles


def listed(api: Api, user: str = "east", **params: Any) -> list[str]:
    response = api.client.get(DOCUMENTS, params=params, headers=api.headers(user))
    assert response.status_code == 200, response.text
    body = response.json()
    return [document["title"] for document in body["documents"]]


def test_newest_first_by_default_and_by_date(api: Api, uploaded: list[str]) -> None:
    assert listed(api) == uploaded[::-1]
    assert listed(api, sort="date") == uploaded[::-1]


def test_sorted_by_title(api: Api, uploaded: list[str]) -> None:
    assert listed(api, sort="title") == sorted(uploaded)


def test_sorted_by_category_then_newest_first(api: Api, uploaded: list[str]) -> None:
    assert listed(api, sort="category") == [
        "a-九月会议纪要",
        # 工作总结, newest first
        "f-去年总结",
        "d-九月十五日走访",
        "b-2026年工作总结",
        # 统计报表, newest first
        "e-十月报表",
        "c-三季度统计",
    ]


def test_sorting_pages_through_the_whole_list(api: Api, uploaded: list[str]) -> None:
    first = listed(api, sort="title", size=4)
    second = listed(api, sort="title", size=4, page=2)
    assert first + second == sorted(uploaded)


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        # A year finds itself and every quarter, month and day in it.
        (
            "2026",
            {
                "b-2026年工作总结",
                "c-三季度统计",
                "a-九月会议纪要",
                "d-九月十五日走访",
                "e-十月报表",
            },
        ),
        (
            "2026年",
            {
                "b-2026年工作总结",
                "c-三季度统计",
                "a-九月会议纪要",
                "d-九月十五日走访",
                "e-十月报表",
            },
        ),
        # A quarter finds its months and days, not the year around it nor the next month.
        ("2026-Q3", {"c-三季度统计", "a-九月会议纪要", "d-九月十五日走访"}),
        ("2026年第三季度", {"c-三季度统计", "a-九月会议纪要", "d-九月十五日走访"}),
        ("2026-09", {"a-九月会议纪要", "d-九月十五日走访"}),
        ("2026年9月", {"a-九月会议纪要", "d-九月十五日走访"}),
        ("2026-09-15", {"d-九月十五日走访"}),
        ("2026-Q4", {"e-十月报表"}),
        ("2025", {"f-去年总结"}),
        ("2024", set()),
    ],
)
def test_filtered_by_period(api: Api, uploaded: list[str], period: str, expected: set[str]) -> None:
    assert set(listed(api, period=period)) == expected


def test_period_filter_combines_with_category_and_sort(api: Api, uploaded: list[str]) -> None:
    assert listed(api, period="2026", category="工作总结", sort="title") == [
        "b-2026年工作总结",
        "d-九月十五日走访",
    ]


def test_filtered_by_index_status(api: Api, backends: Backends, uploaded: list[str]) -> None:
    assert set(listed(api, status="pending")) == set(uploaded)
    assert listed(api, status="indexed") == []
    IndexWorker(backends, backends.index).drain()
    assert listed(api, status="pending") == []
    assert set(listed(api, status="indexed")) == set(uploaded)
    assert listed(api, status="failed") == []


def test_filters_never_widen_what_the_caller_sees(api: Api, uploaded: list[str]) -> None:
    assert "西乡" not in listed(api, period="2026")
    assert listed(api, "west", period="2026") == ["西乡"]
    # A reader sees the shared ones, in the same order.
    assert listed(api, "poverty", sort="title", period="2026-Q3") == [
        "a-九月会议纪要",
        "c-三季度统计",
        "d-九月十五日走访",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "size"}, "sort"),
        ({"sort": ""}, "sort"),
        ({"status": "done"}, "status"),
        ({"period": "2026年13月"}, "period"),
        ({"period": "明年"}, "period"),  # a word no period field takes
    ],
)
def test_invalid_values_are_refused(
    api: Api, uploaded: list[str], params: dict[str, str], field: str
) -> None:
    response = api.client.get(DOCUMENTS, params=params, headers=api.headers("east"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["field"] == field
