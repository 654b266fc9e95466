"""The township's upload page as a clerk relies on it: a catalog item offers the period most likely
being filed now (never one before the item was owed), with the category it is filed under; opened
to answer a request it speaks of the request's period, shows one due date, takes the title from
the file name and warns about readers only when they would leave out a requesting department;
the 类别 box suggests the names already in use."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.catalog import county_today
from services.metadata import PERIOD_EXAMPLES, period_label
from tests.api.ask_once_helpers import create_item, decide, draft, upload
from tests.conftest import EAST, Api, signed_in_browser


def _quarter(shift: int) -> str:
    """The quarter ``shift`` quarters from the county's current one, as ``2026-Q3``."""
    today = county_today()
    year, quarter = divmod(today.year * 4 + (today.month - 1) // 3 + shift, 4)
    return f"{year}-Q{quarter + 1}"


@pytest.fixture
def east_browser(client: TestClient) -> Iterator[TestClient]:
    """A browser of its own, signed in as the east township's clerk."""
    with signed_in_browser(client, "east") as browser:
        yield browser


def _option(page: str, item_id: int) -> dict[str, str]:
    """The attributes of the catalog item's <option> on the upload page."""
    found = re.search(rf'<option value="{item_id}"([^>]*)>', page)
    assert found is not None, page
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'([\w-]+)="([^"]*)"', found.group(1))
    } | ({"selected": ""} if re.search(r"\sselected\b", found.group(1)) else {})


def _tag(page: str, element_id: str) -> str:
    """The opening tag of the element with this id."""
    found = re.search(rf'<[^>]*\bid="{element_id}"[^>]*>', page)
    assert found is not None, page
    return found.group(0)


def _suggestions(page: str) -> list[str]:
    found = re.search(r'<datalist id="category-suggestions">(.*?)</datalist>', page, re.S)
    assert found is not None, page
    return [
        html.unescape(value) for value in re.findall(r'<option value="([^"]*)"', found.group(1))
    ]


def test_the_form_offers_the_latest_ended_period_and_names_the_older_ones(
    api: Api, east_browser: TestClient
) -> None:
    # Owed since 2020: east has filed nothing; the form looks about a year back.
    item = create_item(api, name="季度统计报表")
    latest, older = _quarter(-1), (_quarter(-3), _quarter(-2))

    option = _option(east_browser.get("/upload").text, item["id"])
    assert option["data-period"] == period_label(latest)
    assert f"待报送：{period_label(latest)}，" in option["data-hint"]
    assert option["data-hint"].endswith(
        "另有 2 期尚未报送：" + "、".join(period_label(period) for period in older) + "。"
    )
    assert option["data-category"] == "统计报表"

    # The latest in, the one left behind is offered next; all in, the running quarter.
    upload(api, "east", "东镇统计报表", catalog_item=str(item["id"]), period=latest)
    option = _option(east_browser.get("/upload").text, item["id"])
    assert option["data-period"] == period_label(older[1])
    assert "已逾期" in option["data-hint"]
    for period in older:
        upload(api, "east", "东镇统计报表", catalog_item=str(item["id"]), period=period)
    option = _option(east_browser.get("/upload").text, item["id"])
    assert option["data-period"] == period_label(_quarter(0))
    assert "已逾期" not in option["data-hint"]
    assert "另有" not in option["data-hint"]


def test_an_item_added_today_owes_nothing_from_before(api: Api, east_browser: TestClient) -> None:
    # No 起始日期 given: owed from the day it is added, so only the running period is owed.
    item = create_item(api, name="新增季报", owed_from=None)
    assert item["owed_from"] == county_today().isoformat()
    option = _option(east_browser.get("/upload").text, item["id"])
    assert option["data-period"] == period_label(_quarter(0))
    assert "已逾期" not in option["data-hint"]
    assert "另有" not in option["data-hint"]


def test_answering_a_request_names_its_period_one_due_date_and_no_relative_title(
    api: Api, east_browser: TestClient
) -> None:
    item = create_item(api, name="季度统计报表")
    asked_for, oldest = _quarter(-1), _quarter(-3)
    request = draft(
        api, "poverty", EAST, "东镇上季度统计报表", catalog_item=item["id"], period=asked_for
    )
    decide(api, "poverty", request["id"], "send", {"reason": "尚未报送"})

    answering = east_browser.get("/upload", params={"request": request["id"]})
    assert answering.status_code == 200
    page = answering.text
    option = _option(page, item["id"])
    assert "selected" in option
    assert f"本次需求所属期间：{period_label(asked_for)}。" in option["data-hint"]
    assert period_label(oldest) not in option["data-hint"]
    assert "待报送" not in option["data-hint"]
    assert option["data-period"] == period_label(asked_for)
    # One due date on the page (besides how a period may be written), said to be the request's.
    dates = set(re.findall(r"\d{4}-\d{2}-\d{2}", html.unescape(page)))
    assert dates - set(re.findall(r"\d{4}-\d{2}-\d{2}", PERIOD_EXAMPLES)) == {request["due"]}
    assert f"答复截止 {request['due']}" in page
    # The title is left to the file's name: never the request's relative "上季度".
    assert 'value="东镇上季度统计报表"' not in page
    assert "value=" not in _tag(page, "title")
    assert _tag(page, "period").endswith(f'value="{period_label(asked_for)}">')


def test_the_hint_says_when_the_requested_period_is_already_in(
    api: Api, east_browser: TestClient
) -> None:
    item = create_item(api, name="季度统计报表")
    asked_for = _quarter(-2)
    upload(api, "east", "东镇统计报表", catalog_item=str(item["id"]), period=asked_for)
    request = draft(api, "poverty", EAST, "东镇统计报表", catalog_item=item["id"], period=asked_for)
    decide(api, "poverty", request["id"], "send", {"reason": "需要原件"})

    answering = east_browser.get("/upload", params={"request": request["id"]})
    option = _option(answering.text, item["id"])
    assert option["data-hint"].endswith(f"本次需求所属期间：{period_label(asked_for)}，已报送。")


def test_the_readers_warning_waits_until_a_requester_is_left_out(
    api: Api, east_browser: TestClient
) -> None:
    # Shared only with 统计局, asked for by 扶贫办: the form ticks 扶贫办 and needs no warning.
    item = create_item(api, name="统计季报", sharing="conditional", departments=["统计局"])
    request = draft(
        api, "poverty", EAST, "东镇统计季报", catalog_item=item["id"], period=_quarter(-1)
    )
    decide(api, "poverty", request["id"], "send", {"reason": "尚未报送"})
    poverty_id = api.client.get("/api/v1/me", headers=api.headers("poverty")).json()["org"]["id"]

    page = east_browser.get("/upload", params={"request": request["id"]}).text
    assert f'data-asking="{poverty_id}"' in _tag(page, "upload-form")
    warning = _tag(page, "visibility-warning")
    assert re.search(r"\shidden\b", warning), warning
    assert re.search(rf'value="{poverty_id}" checked', page)
    assert re.search(r'value="restricted" checked', page)

    # A plain upload has no request and so no warning at all.
    assert 'id="visibility-warning"' not in east_browser.get("/upload").text


def test_category_suggestions_are_the_names_in_use(api: Api, east_browser: TestClient) -> None:
    create_item(api, name="防返贫监测台账", category="工作台账", cycle="monthly")
    upload(api, "east", "东镇入户走访照片", category="工作留痕")

    suggested = _suggestions(east_browser.get("/upload").text)
    assert suggested[:2] == ["工作台账", "工作留痕"]
    # 台账 would split 工作台账's materials in two under the search's 类别 filter.
    assert "台账" not in suggested
    assert {"工作总结", "会议纪要"} <= set(suggested)
    assert len(suggested) == len(set(suggested))
