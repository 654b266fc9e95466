"""The upload page opened to answer a request: the catalog hint speaks of the request's period,
not of the oldest period the township still owes for the item."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.catalog import county_today
from services.metadata import period_label
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


def test_the_hint_names_the_period_the_request_asks_for(api: Api, east_browser: TestClient) -> None:
    # Owed since 2020: the oldest quarter the form offers east is three back, long past due.
    item = create_item(api, name="季度统计报表")
    asked_for, oldest = _quarter(-1), _quarter(-3)
    request = draft(
        api, "poverty", EAST, "东镇上季度统计报表", catalog_item=item["id"], period=asked_for
    )
    decide(api, "poverty", request["id"], "send", {"reason": "尚未报送"})

    plain = east_browser.get("/upload")
    assert plain.status_code == 200
    option = _option(plain.text, item["id"])
    assert f"待报送：{period_label(oldest)}，已逾期" in option["data-hint"]
    assert option["data-period"] == period_label(oldest)

    answering = east_browser.get("/upload", params={"request": request["id"]})
    assert answering.status_code == 200
    option = _option(answering.text, item["id"])
    assert "selected" in option
    assert f"本次需求所属期间：{period_label(asked_for)}，" in option["data-hint"]
    assert period_label(oldest) not in option["data-hint"]
    assert "待报送" not in option["data-hint"]
    assert option["data-period"] == period_label(asked_for)


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
