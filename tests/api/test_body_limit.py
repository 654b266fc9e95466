"""Every request body but an upload's is bounded (MATERIALS_MAX_BODY_BYTES, 64 KiB by default):
a larger one is a 413 ``body_too_large`` before it is read, parsed or its sender authenticated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from services.backends import Backends, open_backends
from services.models import AuditEvent
from tests.conftest import PASSWORD, make_settings, seed_county
from tests.live_server import CountingBody, connect, read_response, send_streaming, serving

KiB = 1024
MiB = 1024 * KiB
LIMIT = 64 * KiB
REQUESTS = "/api/v1/requests"


@pytest.fixture
def county_app(tmp_path: Path) -> Iterator[tuple[FastAPI, Backends]]:
    """The embedded app with its default limits, and the sample county."""
    backends = open_backends(make_settings(tmp_path / "data"))
    seed_county(backends)
    yield create_app(backends.settings, backends=backends), backends
    backends.close()


def _audit_events(backends: Backends) -> int:
    with backends.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _answer(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    return status_line, headers, payload


def _big_json() -> bytes:
    return json.dumps({"title": "x" * MiB}).encode()


def test_the_default_limit_is_64_kib(tmp_path: Path) -> None:
    assert make_settings(tmp_path).max_body_bytes == LIMIT


def test_a_1_mib_json_post_without_a_token_is_413_not_401(
    county_app: tuple[FastAPI, Backends],
) -> None:
    app, backends = county_app
    before = _audit_events(backends)
    with TestClient(app) as client:
        response = client.post(
            REQUESTS, content=_big_json(), headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": {"code": "body_too_large", "message": response.json()["error"]["message"]}
    }
    assert response.headers["connection"] == "close"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # Refused before authentication: no "missing token" refusal was even looked at.
    assert _audit_events(backends) == before


def test_the_server_answers_413_without_reading_the_declared_body(
    county_app: tuple[FastAPI, Backends],
) -> None:
    app, _ = county_app
    head = (
        f"POST {REQUESTS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MiB}\r\n\r\n"
    ).encode()
    with serving(app) as port, connect(port) as conn:
        conn.sendall(head + b'{"title": "')  # and nothing more: a server waiting would hang
        raw = read_response(conn, time.monotonic() + 10)

    status_line, headers, payload = _answer(raw)
    assert status_line.startswith("HTTP/1.1 413"), raw[:300]
    assert headers["content-type"].startswith("application/json")
    assert json.loads(payload)["error"]["code"] == "body_too_large"


def test_a_chunked_body_is_stopped_at_the_limit(county_app: tuple[FastAPI, Backends]) -> None:
    app, backends = county_app
    before = _audit_events(backends)
    body = CountingBody(b'{"title": "', chunks=1024, chunk_size=64 * KiB)  # 64 MiB
    head = (
        f"POST {REQUESTS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with serving(app) as port:
        raw = send_streaming(port, head, body, seconds=10)

    status_line, headers, payload = _answer(raw)
    assert status_line.startswith("HTTP/1.1 413"), raw[:300]
    assert headers["connection"] == "close"
    assert json.loads(payload)["error"]["code"] == "body_too_large"
    # 64 KiB read by the app plus what the pinned socket buffers hold: a few MiB at most.
    assert body.pulled <= 64, f"{body.pulled} of 1025 chunks were pulled"
    assert _audit_events(backends) == before


def test_bodies_within_the_limit_are_served(county_app: tuple[FastAPI, Backends]) -> None:
    app, _ = county_app
    with TestClient(app) as client:
        login = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # Chunked (no Content-Length), well under the limit.
        created = client.post(
            "/api/v1/orgs",
            content=iter(['{"name": "新乡", '.encode(), b'"kind": "township"}']),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert created.status_code == 201, created.text
        # Just under the limit: refused for what it says (too many words), not for its size.
        body = json.dumps({"words": ["词语"] * 4000}).encode()
        assert LIMIT - 2 * KiB < len(body) <= LIMIT
        near = client.post(
            "/api/v1/dictionary",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert near.status_code == 422, near.text


def test_an_upload_keeps_its_own_larger_limit(county_app: tuple[FastAPI, Backends]) -> None:
    app, _ = county_app
    with TestClient(app) as client:
        login = client.post("/api/v1/auth/token", data={"username": "east", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        content = ("扶贫工作记录。" * 20_000).encode()  # 420 KiB
        response = client.post(
            "/api/v1/documents",
            files={"file": ("记录.txt", content, "text/plain")},
            headers=headers,
        )

    assert len(content) > LIMIT
    assert response.status_code == 201, response.text


def test_a_page_form_too_large_is_a_413_page(county_app: tuple[FastAPI, Backends]) -> None:
    app, _ = county_app
    with TestClient(app) as client:
        response = client.post(
            "/login", data={"username": "east", "password": "x" * (LIMIT + 1), "csrf_token": "x"}
        )

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_limit_is_a_setting(tmp_path: Path) -> None:
    backends = open_backends(make_settings(tmp_path / "data", max_body_bytes=100))
    try:
        with TestClient(create_app(backends.settings, backends=backends)) as client:
            small = client.post("/api/v1/auth/token", data={"username": "u", "password": "p"})
            large = client.post("/api/v1/auth/token", data={"username": "u", "password": "p" * 100})
    finally:
        backends.close()

    assert small.status_code == 401
    assert large.status_code == 413
    assert large.json()["error"]["code"] == "body_too_large"


def test_a_socket_left_open_after_the_413_is_closed(county_app: tuple[FastAPI, Backends]) -> None:
    app, _ = county_app
    head = (
        f"POST {REQUESTS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MiB}\r\n\r\n"
    ).encode()
    with serving(app) as port, connect(port) as conn:
        conn.sendall(head)
        read_response(conn, time.monotonic() + 10)
        conn.settimeout(5)
        try:
            rest = conn.recv(1024)
        except ConnectionResetError:
            rest = b""  # closed, abruptly
        except TimeoutError:
            rest = b"still open"
    assert rest == b""  # closed by the server, not kept waiting for the body
