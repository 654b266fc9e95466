"""去年 and 上月 typed as the 所属期间 of an upload or a request: the absolute period of the
county's date is stored, never the word; a word the system does not know is a clear 422 and
nothing is stored."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from services.backends import Backends
from services.catalog import county_today
from services.config import Settings
from tests.api.ask_once_helpers import assert_error, draft, fetch, post_draft, row_counts
from tests.api.test_bad_input import assert_nothing_stored
from tests.conftest import EAST, Api, signed_in_browser
from tests.samples import text_bytes


def _last_month() -> str:
    today = county_today()
    index = today.year * 12 + today.month - 2
    return f"{index // 12}-{index % 12 + 1:02d}"


def test_an_upload_for_last_year_stores_last_years_period(api: Api) -> None:
    last_year = str(county_today().year - 1)

    uploaded = api.upload("east", "纪要.txt", text_bytes(), "text/plain", period="去年")

    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["period"] == last_year
    shown = api.client.get(
        f"/api/v1/documents/{uploaded.json()['id']}", headers=api.headers("east")
    )
    assert shown.json()["period"] == last_year
    listed = api.client.get(
        "/api/v1/documents", params={"period": "去年"}, headers=api.headers("east")
    )
    assert listed.status_code == 200, listed.text
    assert [item["period"] for item in listed.json()["documents"]] == [last_year]


def test_an_upload_with_an_unknown_word_is_refused_saying_which_words_work(
    api: Api, backends: Backends, settings: Settings
) -> None:
    response = api.upload("east", "纪要.txt", text_bytes(), "text/plain", period="下个季度")

    error = assert_error(response, 422, "invalid_period")
    assert error["details"]["field"] == "period"
    assert "去年" in error["message"]
    assert "上月" in error["message"]
    assert_nothing_stored(backends, settings)


def test_a_request_for_last_month_stores_last_months_period(api: Api) -> None:
    created = draft(api, "poverty", EAST, "低保发放台账", period="上月")

    assert created["period"] == _last_month()
    assert fetch(api, "poverty", created["id"])["period"] == _last_month()


def test_a_request_with_an_unknown_word_is_refused_and_nothing_is_created(
    api: Api, backends: Backends
) -> None:
    counts = row_counts(backends)

    response = post_draft(api, "poverty", township=EAST, title="低保发放台账", period="下月")

    error = assert_error(response, 422, "invalid_period")
    assert "去年" in error["message"]
    assert row_counts(backends) == counts


def test_the_forms_say_the_words_work(client: TestClient) -> None:
    pages: list[Any] = []
    with signed_in_browser(client, "east") as browser:
        pages.append(browser.get("/upload"))
    with signed_in_browser(client, "poverty") as browser:
        pages.append(browser.get("/requests/new"))
    for page in pages:
        assert page.status_code == 200
        assert "也可写 去年、上季度、上月 等" in page.text
