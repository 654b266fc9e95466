"""X-Forwarded-For and X-Forwarded-Proto are believed only from MATERIALS_TRUSTED_PROXIES (none by
default): any other client's claim of an address never reaches the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from api.app import create_app
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import AuditEvent
from tests.conftest import PASSWORD, make_settings, seed_county
from tests.server_process import ServerProcess, environment

SPOOFED = "6.6.6.6"


def _login_ips(backends: Backends) -> list[str | None]:
    with backends.db.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "login").order_by(AuditEvent.id)
        )
        return [event.ip for event in events]


def _log_in(base_url: str, **headers: str) -> None:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token",
        data={"username": "east", "password": PASSWORD},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory holding the sample county, for ``materials serve``."""
    directory = tmp_path / "data"
    backends = open_backends(make_settings(directory))
    seed_county(backends)
    backends.close()
    return directory


@contextmanager
def _serve(data_dir: Path, log: Path, **settings: str) -> Iterator[str]:
    server = ServerProcess(data_dir, log, env=environment(**settings))
    try:
        server.wait_until_up()
        yield server.base_url
    finally:
        server.stop()


def test_materials_serve_records_the_peer_not_a_forwarded_address(
    data_dir: Path, tmp_path: Path
) -> None:
    with _serve(data_dir, tmp_path / "server.log") as base_url:
        _log_in(base_url, **{"X-Forwarded-For": SPOOFED, "X-Real-IP": SPOOFED})

    backends = open_backends(make_settings(data_dir))
    try:
        assert _login_ips(backends) == ["127.0.0.1"]
    finally:
        backends.close()


def test_materials_serve_believes_a_configured_proxy(data_dir: Path, tmp_path: Path) -> None:
    with _serve(data_dir, tmp_path / "server.log", trusted_proxies="127.0.0.1") as base_url:
        _log_in(base_url, **{"X-Forwarded-For": f"10.1.1.1, {SPOOFED}"})
        _log_in(base_url)

    backends = open_backends(make_settings(data_dir))
    try:
        # The proxy's own address when it forwards nothing; what it appended when it does.
        assert _login_ips(backends) == [SPOOFED, "127.0.0.1"]
    finally:
        backends.close()


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Backends]:
    opened = open_backends(make_settings(tmp_path / "data"))
    seed_county(opened)
    yield opened
    opened.close()


def _peer_sees(
    backends: Backends, settings: Settings, peer: str, headers: dict[str, str]
) -> tuple[str | None, bool]:
    """The address audited for a login from ``peer`` and whether its session cookie is Secure."""
    app = create_app(settings, backends=backends)
    with TestClient(app, client=(peer, 40000)) as client:
        login = client.get("/login")
        token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed_in = client.post(
            "/login",
            data={"username": "east", "password": PASSWORD, "csrf_token": token},
            headers=headers,
            follow_redirects=False,
        )
    assert signed_in.status_code == 303, signed_in.text
    return _login_ips(backends)[-1], "secure" in signed_in.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client", "secure"),
    [
        pytest.param("", "127.0.0.1", SPOOFED, "127.0.0.1", False, id="default-trusts-none"),
        pytest.param("10.0.0.5", "10.0.0.6", SPOOFED, "10.0.0.6", False, id="other-peer"),
        pytest.param("10.0.0.5", "10.0.0.5", SPOOFED, SPOOFED, True, id="configured-proxy"),
        pytest.param("10.0.0.0/24", "10.0.0.5", f"1.2.3.4, {SPOOFED}, 10.0.0.9", SPOOFED, True,
                     id="chain-of-proxies"),
        pytest.param("10.0.0.5", "10.0.0.5", "not-an-address", "10.0.0.5", True,
                     id="garbage-forwarded"),
        pytest.param("::1, 10.0.0.5", "::1", "2001:db8::7", "2001:db8::7", True, id="ipv6"),
    ],
)  # fmt: skip
def test_forwarded_headers_count_only_from_a_trusted_peer(
    backends: Backends,
    trusted: str,
    peer: str,
    forwarded_for: str,
    client: str,
    secure: bool,
) -> None:
    settings = backends.settings.model_copy(update={"trusted_proxies": trusted})
    headers = {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}

    assert _peer_sees(backends, settings, peer, headers) == (client, secure)


def test_a_proxy_setting_that_is_no_address_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="nginx"):
        Settings(trusted_proxies="10.0.0.5, nginx")
