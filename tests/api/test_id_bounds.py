"""Ids out of range (99999999999999999999999, 0, negatives) in a path, query, form or JSON body
are a 422 with the security headers, audited like any other refusal; never a 500.

Also: an unexpected exception's 500 carries the security headers too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from services.backends import Backends
from services.config import Settings
from services.models import AuditEvent
from tests.conftest import COUNTY, Api, signed_in_browser
from tests.samples import text_bytes

HUGE = "99999999999999999999999"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# (method, path, user, JSON body): every integer id the API takes, out of range.
API_CASES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("GET", f"/api/v1/search?township={HUGE}", "poverty", None),
    ("GET", "/api/v1/search?township=-1", "poverty", None),
    ("GET", "/api/v1/search?township=0", "poverty", None),
    ("GET", f"/api/v1/documents?township={HUGE}", "east", None),
    ("GET", f"/api/v1/search?page={HUGE}", "poverty", None),
    ("GET", f"/api/v1/catalog/{HUGE}", "coord", None),
    ("PATCH", "/api/v1/catalog/0", "coord", {"due_days": 3}),
    ("GET", "/api/v1/catalog/-5/coverage", "coord", None),
    ("GET", f"/api/v1/requests/{HUGE}", "poverty", None),
    ("POST", f"/api/v1/requests/{HUGE}/send", "poverty", {"reason": "x"}),
    ("DELETE", "/api/v1/requests/-1", "poverty", None),
    ("POST", f"/api/v1/notifications/{HUGE}/read", "poverty", None),
    ("POST", "/api/v1/orgs", "admin", {"name": "新乡", "kind": "township", "parent": HUGE}),
    ("POST", "/api/v1/orgs", "admin", {"name": "新乡", "kind": "township", "parent": "-3"}),
    (
        "POST",
        "/api/v1/users",
        "admin",
        {"username": "newcomer", "password": "Long-enough-pw-42", "org": HUGE, "role": "reader"},
    ),
]
# (method, path, user, form fields besides the CSRF token): the same on the web interface.
PAGE_CASES: list[tuple[str, str, str, dict[str, str] | None]] = [
    ("POST", f"/notifications/{HUGE}/read", "poverty", {}),
    ("GET", f"/catalog/{HUGE}/edit", "coord", None),
    ("POST", "/catalog/0/active", "coord", {"active": "false"}),
    ("GET", f"/requests/{HUGE}", "poverty", None),
    ("POST", f"/requests/{HUGE}/send", "poverty", {"reason": "x"}),
    ("GET", f"/search?township={HUGE}", "poverty", None),
    ("GET", f"/requests/new?township={HUGE}", "poverty", None),
]


def _invalid_input_events(backends: Backends, user: str) -> list[AuditEvent]:
    with backends.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "invalid_input", AuditEvent.actor == user
                )
            )
        )


def _assert_security_headers(response: Any) -> None:
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("method", "path", "user", "body"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in API_CASES],
)
def test_an_api_id_out_of_range_is_a_422_audited(
    api: Api,
    backends: Backends,
    method: str,
    path: str,
    user: str,
    body: dict[str, Any] | None,
) -> None:
    response = api.client.request(method, path, json=body, headers=api.headers(user))

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_field"
    _assert_security_headers(response)
    [event] = _invalid_input_events(backends, user)
    assert event.outcome == "denied"
    assert event.details["path"] == path.partition("?")[0]
    assert event.details["method"] == method


@pytest.fixture
def sign_in(client: TestClient) -> Iterator[Callable[[str], tuple[TestClient, str]]]:
    """A browser of its own for a user, signed in: its client and the session's CSRF token."""
    with ExitStack() as browsers:

        def signed_in(username: str) -> tuple[TestClient, str]:
            browser = browsers.enter_context(
                signed_in_browser(client, username, raise_server_exceptions=False)
            )
            session = CSRF.search(browser.get("/notifications").text)
            assert session is not None
            return browser, session.group(1)

        yield signed_in


@pytest.mark.parametrize(
    ("method", "path", "user", "form"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in PAGE_CASES],
)
def test_a_page_id_out_of_range_is_a_422_page_audited(
    backends: Backends,
    sign_in: Callable[[str], tuple[TestClient, str]],
    method: str,
    path: str,
    user: str,
    form: dict[str, str] | None,
) -> None:
    browser, csrf_token = sign_in(user)
    data = None if form is None else {**form, "csrf_token": csrf_token}

    response = browser.request(method, path, data=data, follow_redirects=False)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    _assert_security_headers(response)
    [event] = _invalid_input_events(backends, user)
    assert event.details["path"] == path.partition("?")[0]


def test_upload_fields_naming_ids_out_of_range_are_refused_and_audited(
    api: Api, backends: Backends
) -> None:
    for fields in (
        {"visibility": "restricted", "departments": HUGE},
        {"visibility": "restricted", "departments": "-1"},
        {"catalog_item": HUGE},
    ):
        response = api.upload("east", "纪要.txt", text_bytes(), "text/plain", **fields)

        assert response.status_code == 422, response.text
        _assert_security_headers(response)
    with backends.db.session() as session:
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "upload", AuditEvent.actor == "east")
        ).all()
    assert [event.outcome for event in refused] == ["denied"] * 3


def test_a_name_made_of_digits_within_range_is_still_looked_up(
    api: Api, backends: Backends, county: dict[str, int]
) -> None:
    by_id = api.client.get(
        "/api/v1/search", params={"township": county["东镇"]}, headers=api.headers("poverty")
    )
    created = api.client.post(
        "/api/v1/orgs",
        json={"name": "新乡", "kind": "township", "parent": str(county[COUNTY])},
        headers=api.headers("admin"),
    )

    assert by_id.status_code == 200, by_id.text
    assert created.status_code == 201, created.text
    assert created.json()["parent_id"] == county[COUNTY]
    assert _invalid_input_events(backends, "poverty") == []


def test_an_unexpected_error_carries_the_security_headers(
    settings: Settings, backends: Backends, county: dict[str, int]
) -> None:
    app = create_app(
        settings.model_copy(update={"public_url": "https://c.example"}), backends=backends
    )

    def broken() -> None:
        raise RuntimeError("internals")

    app.add_api_route("/api/v1/broken", broken, include_in_schema=False)
    app.add_api_route("/broken", broken, include_in_schema=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        api_error = client.get("/api/v1/broken", headers={"Authorization": "Bearer x"})
        page_error = client.get("/broken")

    assert api_error.status_code == 500
    assert api_error.json()["error"]["code"] == "internal_error"
    _assert_security_headers(api_error)
    assert (
        api_error.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert api_error.headers["cache-control"] == "no-store"
    assert page_error.status_code == 500
    _assert_security_headers(page_error)
    assert "default-src 'self'" in page_error.headers["content-security-policy"]
    for response in (api_error, page_error):
        assert response.headers["strict-transport-security"] == "max-age=31536000"
