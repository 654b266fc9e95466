"""Display names (姓名): given when an account is made (API, 新建用户) or later on 用户, returned
in user objects and ``/me``, and shown beside the username in the header, the list of users and
the access log, whose events keep the username they recorded. A bad name is a 422 JSON error and
nothing is stored."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EAST, PASSWORD, Api, signed_in_browser

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

BAD_NAMES = {
    "too_long": "张" * 41,
    "newline": "张\n明",
    "tab": "张\t明",
    "bell": "张\x07明",
    "direction_override": "张\u202e明",
    "zero_width": "张\u200b明",
    "line_separator": "张\u2028明",
}


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client, {})


def _create(api: Api, username: str, **extra: Any) -> Any:
    return api.client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "org": EAST, "role": "uploader", **extra},
        headers=api.headers("admin"),
    )


def _users(api: Api) -> dict[str, dict[str, Any]]:
    listed = api.client.get("/api/v1/users", headers=api.headers("admin"))
    assert listed.status_code == 200, listed.text
    return {user["username"]: user for user in listed.json()}


def _form(browser: TestClient, url: str, **fields: str) -> Any:
    token = _CSRF.search(browser.get("/admin/users").text)
    assert token is not None
    return browser.post(url, data={"csrf_token": token.group(1), **fields})


def test_a_user_created_with_a_name_has_it_in_the_api_and_me(api: Api) -> None:
    created = _create(api, "zhangming", display_name="  张明  ")
    assert created.status_code == 201, created.text
    assert created.json()["display_name"] == "张明"  # trimmed
    assert _users(api)["zhangming"]["display_name"] == "张明"
    me = api.client.get("/api/v1/me", headers=api.headers("zhangming"))
    assert me.status_code == 200
    assert me.json()["username"] == "zhangming"
    assert me.json()["display_name"] == "张明"

    # Asked again (idempotent), the account is returned as it is.
    again = _create(api, "zhangming", display_name="张明")
    assert again.status_code == 200, again.text
    assert again.json()["display_name"] == "张明"


def test_a_user_created_without_a_name_has_an_empty_one(api: Api) -> None:
    created = _create(api, "wuming")
    assert created.status_code == 201, created.text
    assert created.json()["display_name"] == ""
    assert _create(api, "kongming", display_name=None).json()["display_name"] == ""
    assert _create(api, "kongge", display_name="   ").json()["display_name"] == ""
    assert _users(api)["wuming"]["display_name"] == ""
    assert api.client.get("/api/v1/me", headers=api.headers("east")).json()["display_name"] == ""
    # A name of 40 characters, of a minority name's middle dot and spaces, is fine.
    long_name = _create(api, "changming", display_name="阿依古丽·买买提" + "娜" * 32)
    assert long_name.status_code == 201, long_name.text


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_a_bad_name_is_refused_and_nothing_is_stored(api: Api, name: str) -> None:
    refused = _create(api, "lisi", display_name=name)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_display_name"
    assert error["details"] == {"field": "display_name"}
    assert "姓名" in error["message"]
    assert "lisi" not in _users(api)
    login = api.client.post("/api/v1/auth/token", data={"username": "lisi", "password": PASSWORD})
    assert login.status_code == 401


def test_an_admin_changes_a_name_and_a_bad_one_changes_nothing(api: Api) -> None:
    renamed = api.client.patch(
        "/api/v1/users/east", json={"display_name": "王小东"}, headers=api.headers("admin")
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["username"], renamed.json()["display_name"]) == ("east", "王小东")
    for name in BAD_NAMES.values():
        refused = api.client.patch(
            "/api/v1/users/east", json={"display_name": name}, headers=api.headers("admin")
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_display_name"
    assert _users(api)["east"]["display_name"] == "王小东"
    missing = api.client.patch(
        "/api/v1/users/nobody", json={"display_name": "某人"}, headers=api.headers("admin")
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "user_not_found"
    # Only admins: an uploader cannot rename anyone, itself included.
    own = api.client.patch(
        "/api/v1/users/east", json={"display_name": "冒名"}, headers=api.headers("east")
    )
    assert own.status_code == 403
    cleared = api.client.patch(
        "/api/v1/users/east", json={"display_name": ""}, headers=api.headers("admin")
    )
    assert cleared.json()["display_name"] == ""

    events = api.client.get(
        "/api/v1/audit/events", params={"action": "user_rename"}, headers=api.headers("auditor")
    ).json()["events"]
    outcomes = [(event["actor"], event["outcome"]) for event in events]
    assert outcomes.count(("admin", "allowed")) == 2
    assert ("east", "denied") in outcomes


@pytest.fixture
def admin_browser(client: TestClient) -> Iterator[TestClient]:
    with signed_in_browser(client, "admin") as browser:
        yield browser


def test_the_new_user_form_takes_a_name_and_the_list_shows_it(
    api: Api, admin_browser: TestClient
) -> None:
    fields = {"password": PASSWORD, "role": "uploader", "org": EAST}
    made = _form(admin_browser, "/admin/users", username="zhaoliu", display_name="赵六", **fields)
    assert made.status_code == 200, made.text  # the redirect, followed
    assert "已创建用户 zhaoliu（赵六）" in made.text
    row = re.search(r'<tr data-username="zhaoliu">.*?</tr>', made.text, re.S)
    assert row is not None
    assert '<span class="display-name" data-testid="display-name">赵六</span>' in row.group(0)
    plain = _form(admin_browser, "/admin/users", username="qianqi", display_name="", **fields)
    assert plain.status_code == 200
    assert _users(api)["zhaoliu"]["display_name"] == "赵六"
    assert _users(api)["qianqi"]["display_name"] == ""

    # Too long or with a control character: the form comes back with the reason, nothing stored.
    for name in ("赵" * 41, "赵\x01六"):
        refused = _form(
            admin_browser, "/admin/users", username="sunba", display_name=name, **fields
        )
        assert refused.status_code == 422
        assert "姓名" in re.sub(r"<[^>]+>", "", refused.text.split('id="create-title"')[1])
        assert 'value="sunba"' in refused.text
    assert "sunba" not in _users(api)

    # Changed on the user's row.
    renamed = _form(admin_browser, "/admin/users/name", username="qianqi", display_name="钱七")
    assert "已将用户 qianqi 的姓名改为“钱七”" in renamed.text
    assert _users(api)["qianqi"]["display_name"] == "钱七"
    refused = _form(admin_browser, "/admin/users/name", username="qianqi", display_name="钱\n七")
    assert "姓名不能包含" in html.unescape(refused.text)
    assert _users(api)["qianqi"]["display_name"] == "钱七"


def test_the_header_shows_the_name_beside_the_login(api: Api, client: TestClient) -> None:
    with signed_in_browser(client, "east") as browser:
        page = browser.get("/").text
        assert 'data-testid="current-user">east<' in page
        assert "current-user-name" not in page
    api.client.patch(
        "/api/v1/users/east", json={"display_name": "王小东"}, headers=api.headers("admin")
    )
    with signed_in_browser(client, "east") as browser:
        page = browser.get("/").text
        name = page.index('data-testid="current-user-name">王小东<')
        assert name < page.index('data-testid="current-user">east<')


def test_the_access_log_shows_the_name_and_the_events_keep_the_login(
    api: Api, client: TestClient
) -> None:
    api.client.patch(
        "/api/v1/users/east", json={"display_name": "王小东"}, headers=api.headers("admin")
    )
    api.client.get("/api/v1/documents", headers=api.headers("east"))
    api.client.get("/api/v1/documents", headers=api.headers("west"))  # west has no name

    events = api.client.get(
        "/api/v1/audit/events", params={"actor": "east"}, headers=api.headers("auditor")
    ).json()["events"]
    assert events
    assert {event["actor"] for event in events} == {"east"}
    assert all("王小东" not in str(event) for event in events)

    with signed_in_browser(client, "auditor") as browser:
        page = browser.get("/audit").text
    cells = re.findall(r'<td data-label="人员" class="audit-actor"([^>]*)>(.*?)</td>', page, re.S)
    by_login = {
        re.sub(r"<[^>]+>.*", "", text, flags=re.S).strip(): (attrs, text) for attrs, text in cells
    }
    attrs, text = by_login["east"]
    assert '<span class="audit-actor-name" data-testid="actor-name">王小东</span>' in text
    assert "记录的用户名：east" in attrs
    assert "actor-name" not in by_login["west"][1]
