"""What the township clerk and the coordinator rely on around the upload page: the page's own
look-up of a file answers a new file as found-nothing (never an error the browser shows), a
withdrawal's message says where the material went, and the coordinator's menu counts the
requests waiting for approval."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.web.cookies import FLASH_COOKIE
from services.audit import AuditFilter
from services.backends import Backends
from tests.api.ask_once_helpers import decide, draft, upload
from tests.conftest import EAST, WEST, Api, signed_in_browser
from tests.samples import text_bytes

LOOKUP = "/upload/lookup"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_BADGE = re.compile(r'data-testid="approval-count">(\d+)<span class="visually-hidden">条待审核')


@pytest.fixture
def east_browser(client: TestClient) -> Iterator[TestClient]:
    with signed_in_browser(client, "east") as browser:
        yield browser


@pytest.fixture
def coord_browser(client: TestClient) -> Iterator[TestClient]:
    with signed_in_browser(client, "coord") as browser:
        yield browser


def _lookups(backends: Backends) -> list[dict[str, object]]:
    found = backends.audit.page(AuditFilter(action="lookup"), page=1, size=100)
    return [event.details for event in found.events]


# ---- The upload page's look-up ------------------------------------------------------------------


def test_a_new_file_is_found_nothing_with_a_200_and_audited(
    east_browser: TestClient, backends: Backends
) -> None:
    digest = hashlib.sha256(b"never uploaded").hexdigest()
    response = east_browser.get(LOOKUP, params={"sha256": digest})
    assert response.status_code == 200, response.text
    assert response.json() == {"document": None}
    assert response.headers["cache-control"] == "no-store"
    assert {"sha256": digest, "found": False} in _lookups(backends)


def test_a_file_already_submitted_is_found_as_the_api_finds_it(
    api: Api, east_browser: TestClient, backends: Backends
) -> None:
    content = text_bytes("东镇会议纪要 查重")
    stored = api.upload("east", "会议纪要.txt", content, "text/plain")
    assert stored.status_code == 201, stored.text
    digest = hashlib.sha256(content).hexdigest()

    response = east_browser.get(LOOKUP, params={"sha256": digest.upper()})
    assert response.status_code == 200, response.text
    found = response.json()["document"]
    by_api = api.client.get(
        "/api/v1/documents/lookup", params={"sha256": digest}, headers=api.headers("east")
    )
    assert found == by_api.json()
    assert found["id"] == stored.json()["id"]
    assert {"sha256": digest, "found": True} in _lookups(backends)


def test_another_townships_file_is_not_found(api: Api, client: TestClient) -> None:
    content = text_bytes("西乡的材料")
    assert api.upload("west", "西乡.txt", content, "text/plain").status_code == 201
    with signed_in_browser(client, "east") as east:
        response = east.get(LOOKUP, params={"sha256": hashlib.sha256(content).hexdigest()})
    assert response.json() == {"document": None}


@pytest.mark.parametrize("sha256", ["", "abc", "g" * 64, "0" * 65, "0" * 5000])
def test_a_bad_sha256_is_a_json_error_and_stores_nothing(
    east_browser: TestClient, backends: Backends, sha256: str
) -> None:
    before = len(_lookups(backends))
    response = east_browser.get(LOOKUP, params={"sha256": sha256})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_sha256"
    assert response.json()["error"]["details"] == {"field": "sha256"}
    assert len(_lookups(backends)) == before


def test_without_a_session_the_look_up_is_refused(client: TestClient) -> None:
    with TestClient(client.app) as stranger:
        response = stranger.get(LOOKUP, params={"sha256": "0" * 64}, follow_redirects=False)
    assert response.status_code == 401


def test_the_upload_page_looks_up_through_the_page_route() -> None:
    script = (Path(__file__).parents[2] / "api/web/static/upload.js").read_text(encoding="utf-8")
    assert "fetch(`/upload/lookup?sha256=" in script
    assert "/api/v1/documents/lookup" not in script


# ---- Withdrawing ---------------------------------------------------------------------------------


def test_the_withdrawal_message_links_to_the_withdrawn_list(
    api: Api, east_browser: TestClient
) -> None:
    document_id = upload(api, "east", "要撤回的总结")
    page = east_browser.get(f"/documents/{document_id}").text
    token = _CSRF_META.search(page)
    assert token is not None
    withdrawn = east_browser.post(
        f"/documents/{document_id}/withdraw",
        data={"csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    assert withdrawn.headers["location"] == "/materials"

    materials = east_browser.get("/materials").text
    flash = re.search(r'<div class="flash flash-ok" role="status">(.*?)</div>', materials, re.S)
    assert flash is not None, materials
    assert "已撤回材料《要撤回的总结》" in flash.group(1)
    assert '<a href="/materials?view=withdrawn">查看已撤回的材料</a>' in flash.group(1)
    # Shown once.
    assert "查看已撤回的材料" not in east_browser.get("/materials").text
    listed = east_browser.get("/materials?view=withdrawn").text
    assert f'href="/documents/{document_id}"' in listed


def test_a_flash_cookie_never_links_to_another_site(east_browser: TestClient) -> None:
    hrefs = ("https://evil.example/", "//evil.example/", "/\\evil.example", "/\t/evil.example")
    for href in (*hrefs, "javascript:x"):
        flash = {"kind": "ok", "text": "好", "link": [href, "点此"]}
        east_browser.cookies.set(FLASH_COOKIE, quote(json.dumps(flash, ensure_ascii=False)))
        page = east_browser.get("/materials").text
        assert '<div class="flash flash-ok" role="status">好</div>' in page, href
        east_browser.cookies.delete(FLASH_COOKIE)


# ---- The coordinator's count ---------------------------------------------------------------------


def test_the_coordinator_menu_counts_requests_waiting_for_approval(
    api: Api, coord_browser: TestClient, east_browser: TestClient
) -> None:
    # Nothing waits: no badge.
    assert _BADGE.search(coord_browser.get("/requests").text) is None

    first = draft(api, "poverty", EAST, "东镇低保名册")
    decide(api, "poverty", first["id"], "send", {"reason": "需要最新名册"})
    second = draft(api, "stats", WEST, "西乡人口统计")
    decide(api, "stats", second["id"], "send", {"reason": "年度统计"})
    draft(api, "poverty", WEST, "仍是草稿")  # a draft waits for nobody

    for path in ("/requests", "/catalog", "/figures"):
        badge = _BADGE.search(coord_browser.get(path).text)
        assert badge is not None, path
        assert badge.group(1) == "2"

    decide(api, "coord", first["id"], "approve")
    badge = _BADGE.search(coord_browser.get("/requests").text)
    assert badge is not None
    assert badge.group(1) == "1"
    decide(api, "coord", second["id"], "refuse", {"reason": "已有年报"})
    assert _BADGE.search(coord_browser.get("/requests").text) is None

    # Only the coordinator's menu carries it.
    draft_id = draft(api, "poverty", EAST, "又一份")["id"]
    decide(api, "poverty", draft_id, "send", {"reason": "需要"})
    assert _BADGE.search(east_browser.get("/materials").text) is None
    assert _BADGE.search(coord_browser.get("/requests").text) is not None
