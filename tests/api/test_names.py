"""Names cannot pass for other names: usernames, titles, file names, tags and organisations.

Typed text is stored in Unicode NFC. Direction controls and zero-width characters are refused in
usernames and organisation names and taken out of what an upload describes; usernames are
compared NFKC-and-case-folded, so ``Admin`` or ``ａｄｍｉｎ`` cannot sit beside ``admin``, and
logging in as either finds ``admin``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from services.backends import Backends
from services.models import User
from services.names import BIDI_CONTROLS, ZERO_WIDTH
from tests.conftest import COUNTY, EAST, PASSWORD, Api

INVISIBLE = sorted(BIDI_CONTROLS | ZERO_WIDTH)


def _create(api: Api, username: str, org: str = COUNTY, role: str = "admin") -> Any:
    return api.client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "org": org, "role": role},
        headers=api.headers("admin"),
    )


def _users(backends: Backends) -> int:
    with backends.db.session() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


@pytest.mark.parametrize(
    ("username", "org", "role"),
    [
        pytest.param("Admin", COUNTY, "admin", id="capital"),
        pytest.param("ADMIN", COUNTY, "auditor", id="upper-case-other-role"),
        pytest.param("ａｄｍｉｎ", COUNTY, "admin", id="full-width"),
        pytest.param("Ａｄｍｉｎ", COUNTY, "admin", id="full-width-capital"),
        pytest.param("EAST", EAST, "uploader", id="township-user"),
        pytest.param("ｅａｓｔ２", EAST, "uploader", id="full-width-digit"),
    ],
)
def test_a_look_alike_of_an_existing_username_is_a_conflict(
    api: Api, backends: Backends, username: str, org: str, role: str
) -> None:
    before = _users(backends)

    refused = _create(api, username, org, role)

    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "user_exists"
    assert username in error["message"]
    assert _users(backends) == before


def test_the_same_username_again_is_still_idempotent(api: Api) -> None:
    again = _create(api, "admin")

    assert again.status_code == 200, again.text
    assert again.json()["username"] == "admin"


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_invisible_characters_in_a_username_are_refused(
    api: Api, backends: Backends, char: str
) -> None:
    before = _users(backends)

    refused = _create(api, f"adm{char}in2")

    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["details"]) == ("invalid_username", {"field": "username"})
    assert "不可见字符" in error["message"]
    assert _users(backends) == before


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("\u0430dmin2", id="cyrillic-a-among-latin"),
        pytest.param("adm\u03b9n2", id="greek-iota-among-latin"),
        pytest.param("ad\u00a0min", id="no-break-space"),
        pytest.param("ad\u3000min", id="ideographic-space"),
        pytest.param("ad\u00admin", id="soft-hyphen"),
        pytest.param("ad\u00a8min", id="diaeresis-normalising-to-a-space"),
    ],
)
def test_disguised_usernames_are_refused(api: Api, username: str) -> None:
    refused = _create(api, username)

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid_username"


@pytest.mark.parametrize("typed", ["Admin", "ADMIN", "ａｄｍｉｎ", " admin "])
def test_login_finds_the_account_however_its_name_is_typed(api: Api, typed: str) -> None:
    login = api.client.post("/api/v1/auth/token", data={"username": typed, "password": PASSWORD})

    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "admin"
    wrong = api.client.post("/api/v1/auth/token", data={"username": typed, "password": "x" * 12})
    assert wrong.status_code == 401


def test_usernames_are_stored_composed_and_found_either_way(api: Api) -> None:
    # A coordinator: an auditor an admin creates waits for a second person's confirmation.
    created = _create(api, "Zoe\u0308", role="coordinator")  # e + combining diaeresis

    assert created.status_code == 201, created.text
    assert created.json()["username"] == "Zo\u00eb"
    for typed in ("Zoe\u0308", "Zo\u00eb", "ZO\u00cb"):
        login = api.client.post(
            "/api/v1/auth/token", data={"username": typed, "password": PASSWORD}
        )
        assert login.status_code == 200, (typed, login.text)
    assert _create(api, "zo\u00eb", role="coordinator").status_code == 409


def test_admin_actions_find_the_user_by_a_look_alike_name(api: Api) -> None:
    disabled = api.client.post("/api/v1/users/POVERTY/disable", headers=api.headers("admin"))

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["username"] == "poverty"


def test_invisible_characters_are_taken_out_of_what_an_upload_describes(api: Api) -> None:
    uploaded = api.upload(
        "east",
        "会议\u202e纪要\u200b.txt",
        "河口乡会议纪要".encode(),
        "text/plain",
        title="低保\u2066名单\u2069\ufeff Cafe\u0301",
        category="工作\u200b总结",
        tags="扶\u200d贫,\u202a统计\u202c,\u200b",
        description="第一行\u200e\n第二行\u061c",
    )

    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()
    assert document["filename"] == "会议纪要.txt"
    assert document["title"] == "低保名单 Caf\u00e9"
    assert document["category"] == "工作总结"
    assert document["tags"] == ["扶贫", "统计"]
    assert document["description"] == "第一行\n第二行"
    shown = api.client.get(f"/api/v1/documents/{document['id']}", headers=api.headers("east"))
    assert shown.json()["filename"] == "会议纪要.txt"


def test_a_file_name_of_nothing_but_invisible_characters_is_missing(api: Api) -> None:
    refused = api.upload("east", "\u202e\u200b", b"text", "text/plain")

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "missing_filename"


def test_invisible_characters_in_an_organisation_name_are_refused(api: Api) -> None:
    refused = api.client.post(
        "/api/v1/orgs",
        json={"name": "北\u202e岭乡", "kind": "township"},
        headers=api.headers("admin"),
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invisible_characters"
