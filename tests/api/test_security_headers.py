"""Security headers on every response: JSON, errors, 404s, static files and pages.

CSP with ``frame-ancestors 'none'`` (the pages' policy on HTML and static files, nothing at all
on data), ``X-Frame-Options``, ``Referrer-Policy``, ``nosniff``; ``Cache-Control: no-store`` on
what a token or session asked for, on tokens and on the audit log; HSTS once the public URL is
https. A response's own headers (a download's caching, a preview's sandbox) are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.headers import PAGE_POLICY
from indexer.worker import IndexWorker
from services.backends import Backends, open_backends
from tests.conftest import PASSWORD, Api, make_settings, seed_county
from tests.samples import pdf_bytes

# JSON, CSV and downloads: nothing in them is ever run or shown as a page.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Api]:
    """The embedded app (published as plain http) with the sample county."""
    backends = open_backends(make_settings(tmp_path / "data"))
    seed_county(backends)
    with TestClient(create_app(backends.settings, backends=backends)) as client:
        yield Api(client, {})
    backends.close()


def _assert_framing_and_sniffing(response: Any) -> None:
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "status", "policy"),
    [
        ("GET", "/healthz", 200, DATA_POLICY),
        ("GET", "/api/v1/me", 401, DATA_POLICY),
        ("GET", "/api/v1/nothing-here", 404, DATA_POLICY),
        ("DELETE", "/healthz", 405, DATA_POLICY),
        ("GET", "/api/openapi.json", 200, DATA_POLICY),
        ("GET", "/login", 200, PAGE_POLICY),
        ("GET", "/nothing-here", 404, PAGE_POLICY),
        ("GET", "/static/app.css", 200, PAGE_POLICY),
        ("GET", "/static/vendor/pdfjs/pdf.worker.min.mjs", 200, PAGE_POLICY),
        ("GET", "/static/missing.css", 404, PAGE_POLICY),
    ],
)
def test_every_kind_of_response_carries_the_headers(
    site: Api, method: str, path: str, status: int, policy: str
) -> None:
    response = site.client.request(method, path, follow_redirects=False)

    assert response.status_code == status
    _assert_framing_and_sniffing(response)
    assert response.headers["content-security-policy"] == policy


def test_answers_to_a_token_are_not_stored(site: Api) -> None:
    token = site.client.post(
        "/api/v1/auth/token", data={"username": "auditor", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    me = site.client.get("/api/v1/me", headers=headers)
    events = site.client.get("/api/v1/audit/events", headers=headers)
    export = site.client.get("/api/v1/audit/export.csv", headers=headers)
    refused = site.client.get("/api/v1/users", headers=headers)

    for response in (token, me, events, refused):
        _assert_framing_and_sniffing(response)
        assert response.headers["cache-control"] == "no-store"
    assert token.status_code == 200
    assert export.headers["cache-control"] == "private, no-store"
    _assert_framing_and_sniffing(export)


def test_failed_logins_are_not_stored_either(site: Api) -> None:
    response = site.client.post("/api/v1/auth/token", data={"username": "east", "password": "x"})

    assert response.status_code == 401
    assert response.headers["cache-control"] == "no-store"


def test_public_answers_and_static_files_may_be_cached(site: Api) -> None:
    site.client.cookies.set("materials_session", "whatever")
    try:
        static = site.client.get("/static/app.css")
    finally:
        site.client.cookies.clear()
    health = site.client.get("/healthz")

    assert "cache-control" not in static.headers
    assert "cache-control" not in health.headers


def test_pages_of_a_session_are_not_stored(site: Api) -> None:
    login = site.client.get("/login")
    token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed_in = site.client.post(
        "/login",
        data={"username": "poverty", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    page = site.client.get("/search")
    api = site.client.get("/api/v1/me")  # the same session, asking the API

    assert signed_in.headers["cache-control"] == "no-store"
    for response in (page, api):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        _assert_framing_and_sniffing(response)
    assert page.headers["content-security-policy"] == PAGE_POLICY


def test_a_download_keeps_its_own_headers(site: Api) -> None:
    uploaded = site.upload("east", "报告.pdf", pdf_bytes(), "application/pdf")
    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()
    backends: Backends = site.client.app.state.backends  # type: ignore[attr-defined]
    IndexWorker(backends, backends.index).drain()

    download = site.client.get(
        f"/api/v1/documents/{document['id']}/download", headers=site.headers("east")
    )

    assert download.status_code == 200
    assert download.headers["cache-control"] == "private, no-store"
    assert download.headers["etag"] == f'"{document["sha256"]}"'
    assert download.headers["content-disposition"].startswith("attachment")
    _assert_framing_and_sniffing(download)


def test_hsts_once_the_public_url_is_https(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", public_url="https://materials.example.gov.cn")
    backends = open_backends(settings)
    try:
        with TestClient(create_app(settings, backends=backends)) as client:
            responses = [client.get("/healthz"), client.get("/login"), client.get("/api/v1/me")]
    finally:
        backends.close()

    for response in responses:
        assert response.headers["strict-transport-security"] == "max-age=31536000"
