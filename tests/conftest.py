"""Shared fixtures: an app on embedded backends in a temporary directory, and a sample county.

The app is built with ``create_app(settings)``; nothing is configured through the environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from services import orgs
from services.audit_keys import load_verifier
from services.audit_sequencer import AuditSequencer
from services.audit_verify import VerifyReport, verify_log
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import OrgKind, Role

if TYPE_CHECKING:  # imported by pytest_plugins below, so that pytest rewrites its asserts
    from tests.real_stack import RealStack

# Session fixtures starting the real servers (postgres, seaweedfs, elasticsearch, real_stack).
pytest_plugins = ("tests.servers", "tests.real_stack")

TESTS = Path(__file__).parent
# These suites run twice: on the embedded stack and on the real one (PostgreSQL, S3, Elasticsearch).
BOTH_STACKS = ("api", "e2e", "search_quality")

PASSWORD = "correct-horse-42"

COUNTY = "测试县"
EAST, WEST = "东镇", "西乡"
POVERTY, STATS = "扶贫办", "统计局"

# username → (role, organisation)
USERS: dict[str, tuple[Role, str]] = {
    "admin": (Role.admin, COUNTY),
    "auditor": (Role.auditor, COUNTY),
    "east": (Role.uploader, EAST),
    "east2": (Role.uploader, EAST),
    "west": (Role.uploader, WEST),
    "poverty": (Role.reader, POVERTY),
    "stats": (Role.reader, STATS),
    "coord": (Role.coordinator, COUNTY),
}


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "secret_key": "test-signing-key-" + "x" * 32,
        # Cheap password hashes: the tests create and sign in many users.
        "password_time_cost": 1,
        "password_memory_kib": 1024,
        # Tests drain the outbox and sequence the audit log themselves, when they choose; a
        # receipt answers `pending` at once instead of waiting for a sequencer.
        "embedded_worker": False,
        "audit_receipt_wait_seconds": 0,
        **overrides,
    }
    return Settings(**values)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stack" in metafunc.fixturenames:
        suite = metafunc.definition.path.relative_to(TESTS).parts[0]
        stacks = ["embedded", "real"] if suite in BOTH_STACKS else ["embedded"]
        metafunc.parametrize("stack", stacks, indirect=True, scope="module")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: a SQLite file, a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'materials.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> str:
    """``embedded`` (SQLite, a blob directory, FTS5) or ``real`` (PostgreSQL, S3, Elasticsearch)."""
    name: str = request.param
    return name


@contextmanager
def stack_settings(
    request: pytest.FixtureRequest, stack: str, data_dir: Path, **overrides: Any
) -> Iterator[Settings]:
    """Settings on the given stack; on the real one with their own database, bucket and index."""
    if stack == "embedded":
        yield make_settings(data_dir, **overrides)
        return
    real: RealStack = request.getfixturevalue("real_stack")
    with real.allocate() as values:
        yield make_settings(data_dir, **values, **overrides)


@pytest.fixture
def settings(request: pytest.FixtureRequest, stack: str, tmp_path: Path) -> Iterator[Settings]:
    with stack_settings(request, stack, tmp_path / "data") as chosen:
        yield chosen


@pytest.fixture
def backends(settings: Settings) -> Iterator[Backends]:
    opened = open_backends(settings)
    yield opened
    opened.close()


def seed_county(backends: Backends) -> dict[str, int]:
    """Create the sample county's organisations and USERS; their ids by name."""
    ids: dict[str, int] = {}
    with backends.db.session() as session:
        org, _ = orgs.create_org(session, name=COUNTY, kind=OrgKind.county)
        ids[COUNTY] = org.id
        for name in (EAST, WEST):
            ids[name] = orgs.create_org(session, name=name, kind=OrgKind.township)[0].id
        for name in (POVERTY, STATS):
            ids[name] = orgs.create_org(session, name=name, kind=OrgKind.department)[0].id
        for username, (role, org_name) in USERS.items():
            orgs.create_user(
                session,
                passwords=backends.passwords,
                username=username,
                password=PASSWORD,
                org=org_name,
                role=role,
            )
    return ids


@contextmanager
def served_county(settings: Settings) -> Iterator[tuple[Api, Backends]]:
    """The sample county on its own backends, and a client of an app serving them."""
    backends = open_backends(settings)
    try:
        seed_county(backends)
        with TestClient(create_app(settings, backends=backends)) as client:
            yield Api(client, {}), backends
    finally:
        backends.close()


@pytest.fixture
def county(backends: Backends) -> dict[str, int]:
    """The sample county's organisations, by name → id."""
    return seed_county(backends)


@pytest.fixture
def client(settings: Settings, backends: Backends, county: dict[str, int]) -> Iterator[TestClient]:
    app = create_app(settings, backends=backends)
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class Api:
    """A small client for tests: logs in once per user and uploads files."""

    client: TestClient
    _tokens: dict[str, str]

    def headers(self, username: str) -> dict[str, str]:
        if username not in self._tokens:
            response = self.client.post(
                "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self._tokens[username] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    def upload(
        self,
        username: str,
        filename: str,
        content: bytes,
        content_type: str = "application/octet-stream",
        **fields: str,
    ) -> Any:
        return self.client.post(
            "/api/v1/documents",
            headers=self.headers(username),
            files={"file": (filename, content, content_type)},
            data=fields,
        )


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client, {})


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def signed_in_browser(
    client: TestClient, username: str, *, raise_server_exceptions: bool = True
) -> Iterator[TestClient]:
    """A browser of its own (its cookies apart from ``client``'s), signed in to the web pages."""
    with TestClient(client.app, raise_server_exceptions=raise_server_exceptions) as browser:
        token = _CSRF_FIELD.search(browser.get("/login").text)
        assert token is not None
        signed_in = browser.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        yield browser


def grant_download(api: Api, backends: Backends, *, username: str, document_id: str) -> None:
    """A download grant as the two-person rule makes it: admin grants it, and a second admin
    (made on the server console) confirms it."""
    granted = api.client.post(
        "/api/v1/grants",
        json={"username": username, "document_id": document_id},
        headers=api.headers("admin"),
    )
    assert granted.status_code == 201, granted.text
    with backends.db.session() as session:
        orgs.create_user(
            session,
            passwords=backends.passwords,
            username="admin2",
            password=PASSWORD,
            org=COUNTY,
            role=Role.admin,
        )
    confirmed = api.client.post(
        f"/api/v1/grants/{granted.json()['id']}/confirm", headers=api.headers("admin2")
    )
    assert confirmed.status_code == 200, confirmed.text


def sequence_and_verify(backends: Backends) -> VerifyReport:
    """What a running sequencer does (number, grow the tree, sign), then a full verification."""
    AuditSequencer(backends.db, backends.settings, backends.blobs).drain()
    return verify_log(backends.db, backends.blobs, load_verifier(backends.settings))
