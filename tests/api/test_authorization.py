"""The authorization matrix: every endpoint × every role × own and other organisation.

Each cell is one user calling one endpoint (on one document); every refusal must be in the audit
log, and a hidden document must answer exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from services import dictionary, orgs
from services.audit import Actor, AuditAction
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import AuditEvent, Role
from tests.conftest import COUNTY, PASSWORD, POVERTY, STATS, USERS, Api, seed_county, stack_settings
from tests.samples import text_bytes

# The sample county's documents: name → (uploading user, sharing fields, withdrawn afterwards).
DOCUMENTS: dict[str, tuple[str, dict[str, str], bool]] = {
    "east_departments": ("east", {"visibility": "departments"}, False),
    "east_restricted": ("east", {"visibility": "restricted", "departments": POVERTY}, False),
    "east_private": ("east", {"visibility": "private"}, False),
    "west_departments": ("west", {"visibility": "departments"}, False),
    "east_withdrawn": ("east", {"visibility": "departments"}, True),
}

# east/east2 upload for 东镇, west for 西乡; poverty reads for 扶贫办, stats for 统计局.
# lookup is by the document's sha256 and only ever finds the caller's own township's live document.
# fmt: off
DOCUMENT_MATRIX: list[tuple[str, str, int, int, int, int, int, int]] = [
    # user      document            view  download  receipt  lookup  withdraw  usage
    ("east",    "east_departments", 200,  200,      200,     200,    200,      200),
    ("east",    "east_restricted",  200,  200,      200,     200,    200,      200),
    ("east",    "east_private",     200,  200,      200,     200,    200,      200),
    ("east",    "west_departments", 404,  404,      404,     404,    404,      404),
    ("east",    "east_withdrawn",   200,  200,      200,     404,    409,      200),
    ("east2",   "east_departments", 200,  200,      200,     200,    200,      200),
    ("east2",   "east_restricted",  200,  200,      200,     200,    200,      200),
    ("east2",   "east_private",     200,  200,      200,     200,    200,      200),
    ("east2",   "west_departments", 404,  404,      404,     404,    404,      404),
    ("east2",   "east_withdrawn",   200,  200,      200,     404,    409,      200),
    ("west",    "east_departments", 404,  404,      404,     404,    404,      404),
    ("west",    "east_restricted",  404,  404,      404,     404,    404,      404),
    ("west",    "east_private",     404,  404,      404,     404,    404,      404),
    ("west",    "west_departments", 200,  200,      200,     200,    200,      200),
    ("west",    "east_withdrawn",   404,  404,      404,     404,    404,      404),
    ("poverty", "east_departments", 200,  200,      200,     404,    403,      404),
    ("poverty", "east_restricted",  200,  200,      200,     404,    403,      404),
    ("poverty", "east_private",     404,  404,      404,     404,    404,      404),
    ("poverty", "west_departments", 200,  200,      200,     404,    403,      404),
    ("poverty", "east_withdrawn",   404,  404,      404,     404,    404,      404),
    ("stats",   "east_departments", 200,  200,      200,     404,    403,      404),
    ("stats",   "east_restricted",  404,  404,      404,     404,    404,      404),
    ("stats",   "east_private",     404,  404,      404,     404,    404,      404),
    ("stats",   "west_departments", 200,  200,      200,     404,    403,      404),
    ("stats",   "east_withdrawn",   404,  404,      404,     404,    404,      404),
    ("auditor", "east_departments", 200,  403,      200,     404,    403,      200),
    ("auditor", "east_restricted",  200,  403,      200,     404,    403,      200),
    ("auditor", "east_private",     200,  403,      200,     404,    403,      200),
    ("auditor", "west_departments", 200,  403,      200,     404,    403,      200),
    ("auditor", "east_withdrawn",   200,  403,      200,     404,    403,      200),
    ("admin",   "east_departments", 404,  404,      404,     404,    200,      404),
    ("admin",   "east_restricted",  404,  404,      404,     404,    200,      404),
    ("admin",   "east_private",     404,  404,      404,     404,    200,      404),
    ("admin",   "west_departments", 404,  404,      404,     404,    200,      404),
    ("admin",   "east_withdrawn",   404,  404,      404,     404,    404,      404),
]
DOCUMENT_ENDPOINTS = ("view", "download", "receipt", "lookup", "withdraw", "usage")

SYSTEM_MATRIX: list[tuple[str, int, int, int, int, int, int, int, int, int, int]] = [
    #            POST       GET /audit/...         POST ...                 GET
    # user       documents  events export verify   orgs users categ grants   users me
    ("east",     201,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("east2",    201,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("west",     201,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("poverty",  403,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("stats",    403,       403,   403,   403,     403, 403,  403,  403,     403,  200),
    ("auditor",  403,       200,   200,   200,     403, 403,  403,  403,     403,  200),
    ("admin",    403,       403,   403,   403,     201, 201,  201,  201,     200,  200),
]
# Accounts, acted on a spare user: POST /users/{username}/disable, /enable, /password.
ACCOUNT_MATRIX: list[tuple[str, int, int, int]] = [
    # user       disable  enable  password
    ("east",     403,     403,    403),
    ("east2",    403,     403,    403),
    ("west",     403,     403,    403),
    ("poverty",  403,     403,    403),
    ("stats",    403,     403,    403),
    ("auditor",  403,     403,    403),
    ("admin",    200,     200,    204),
]
# One's own account: POST /auth/logout (a fresh token of the user), POST /me/password (on a user
# of the same role and organisation made for the cell: a change ends every token of its user).
SELF_MATRIX: list[tuple[str, int, int]] = [
    # user       logout  own password
    ("east",     204,    204),
    ("east2",    204,    204),
    ("west",     204,    204),
    ("poverty",  204,    204),
    ("stats",    204,    204),
    ("auditor",  204,    204),
    ("coord",    204,    204),
    ("admin",    204,    204),
]
# The county dictionary: GET /dictionary, POST /dictionary, DELETE /dictionary/{word}.
DICTIONARY_MATRIX: list[tuple[str, int, int, int]] = [
    # user       read  add  remove
    ("east",     403,  403, 403),
    ("east2",    403,  403, 403),
    ("west",     403,  403, 403),
    ("poverty",  403,  403, 403),
    ("stats",    403,  403, 403),
    ("auditor",  403,  403, 403),
    ("coord",    200,  403, 403),
    ("admin",    200,  201, 204),
]
# fmt: on
DICTIONARY_ENDPOINTS = ("read_dictionary", "add_words", "remove_word")
SYSTEM_ENDPOINTS = (
    "upload",
    "audit_events",
    "audit_export",
    "audit_verify",
    "create_org",
    "create_user",
    "create_category",
    "create_grant",
    "list_users",
    "me",
)
# endpoint → the last part of its path
ACCOUNT_PATHS = {"disable_user": "disable", "enable_user": "enable", "reset_password": "password"}
ACCOUNT_ENDPOINTS = tuple(ACCOUNT_PATHS)
SELF_ENDPOINTS = ("logout", "change_password")

# Live documents listed by GET /documents (a withdrawn one leaves listings, even its township's).
LISTING: dict[str, set[str]] = {
    "east": {"east_departments", "east_restricted", "east_private"},
    "east2": {"east_departments", "east_restricted", "east_private"},
    "west": {"west_departments"},
    "poverty": {"east_departments", "east_restricted", "west_departments"},
    "stats": {"east_departments", "west_departments"},
    "auditor": {"east_departments", "east_restricted", "east_private", "west_departments"},
    "admin": set(),
}

# How a refusal reads: endpoint → (error code of a 403, the audited action).
DOCUMENT_REFUSALS: dict[str, tuple[str | None, AuditAction]] = {
    "view": (None, AuditAction.view),
    "download": ("download_not_allowed", AuditAction.download),
    "receipt": (None, AuditAction.receipt),
    "usage": (None, AuditAction.usage_read),
    "withdraw": ("withdraw_not_allowed", AuditAction.withdraw),
}
SYSTEM_REFUSALS: dict[str, tuple[str, AuditAction]] = {
    "upload": ("upload_not_allowed", AuditAction.upload),
    "audit_events": ("audit_not_allowed", AuditAction.audit_read),
    "audit_export": ("audit_not_allowed", AuditAction.audit_export),
    "audit_verify": ("audit_not_allowed", AuditAction.audit_verify),
    "create_org": ("admin_only", AuditAction.org_create),
    "create_user": ("admin_only", AuditAction.user_create),
    "create_category": ("admin_only", AuditAction.category_create),
    "create_grant": ("admin_only", AuditAction.grant_create),
    "list_users": ("admin_only", AuditAction.admin),
    "disable_user": ("admin_only", AuditAction.user_disable),
    "enable_user": ("admin_only", AuditAction.user_enable),
    "reset_password": ("admin_only", AuditAction.user_password_reset),
    "read_dictionary": ("dictionary_not_allowed", AuditAction.dictionary_read),
    "add_words": ("admin_only", AuditAction.dictionary_add),
    "remove_word": ("admin_only", AuditAction.dictionary_remove),
}

DOCUMENT_CELLS = [
    pytest.param(user, document, endpoint, expected, id=f"{user}-{endpoint}-{document}")
    for user, document, *statuses in DOCUMENT_MATRIX
    for endpoint, expected in zip(DOCUMENT_ENDPOINTS, statuses, strict=True)
]
SYSTEM_CELLS = [
    pytest.param(user, endpoint, expected, id=f"{user}-{endpoint}")
    for matrix, endpoints in (
        (SYSTEM_MATRIX, SYSTEM_ENDPOINTS),
        (ACCOUNT_MATRIX, ACCOUNT_ENDPOINTS),
        (SELF_MATRIX, SELF_ENDPOINTS),
        (DICTIONARY_MATRIX, DICTIONARY_ENDPOINTS),
    )
    for user, *statuses in matrix
    for endpoint, expected in zip(endpoints, statuses, strict=True)
]


@dataclass(frozen=True)
class Uploaded:
    id: str
    sha256: str
    content: bytes


@dataclass
class World:
    """The sample county with its documents, shared by the cells of one module (logins are slow)."""

    api: Api
    backends: Backends
    documents: dict[str, Uploaded] = field(default_factory=dict)

    def upload(self, name: str) -> Uploaded:
        """A new document shaped like ``name`` (same township, sharing, withdrawal)."""
        uploader, sharing, withdrawn = DOCUMENTS[name]
        content = text_bytes(f"{name} 材料 {uuid.uuid4()}")
        response = self.api.upload(uploader, f"{name}.txt", content, "text/plain", **sharing)
        assert response.status_code == 201, response.text
        document = response.json()
        if withdrawn:
            withdrawal = self.api.client.delete(
                f"/api/v1/documents/{document['id']}", headers=self.api.headers(uploader)
            )
            assert withdrawal.status_code == 200, withdrawal.text
        return Uploaded(document["id"], document["sha256"], content)

    def last_seq(self) -> int:
        return self.backends.audit.head()[0]

    def events_since(self, seq: int) -> list[AuditEvent]:
        # Read the table directly: an auditor reading over HTTP would add events of its own.
        with self.backends.db.session() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.seq > seq)))


def _build_world(settings: Settings) -> Iterator[World]:
    """The county of ``tests/conftest.py`` (same organisations and users), DOCUMENTS uploaded."""
    backends = open_backends(settings)
    seed_county(backends)
    try:
        with TestClient(create_app(settings, backends=backends)) as client:
            world = World(Api(client, {}), backends)
            world.documents = {name: world.upload(name) for name in DOCUMENTS}
            yield world
    finally:
        backends.close()


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest, stack: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Cells may add documents, users and grants here, never change the shared DOCUMENTS."""
    with stack_settings(request, stack, tmp_path_factory.mktemp("world") / "data") as settings:
        yield from _build_world(settings)


@pytest.fixture(scope="module")
def pristine_world(
    request: pytest.FixtureRequest, stack: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Holds exactly DOCUMENTS, for listings; nothing is added to it."""
    with stack_settings(request, stack, tmp_path_factory.mktemp("pristine") / "data") as settings:
        yield from _build_world(settings)


def _call_document(world: World, user: str, endpoint: str, target: Uploaded) -> httpx.Response:
    client, headers = world.api.client, world.api.headers(user)
    path = f"/api/v1/documents/{target.id}"
    if endpoint == "view":
        return client.get(path, headers=headers)
    if endpoint == "download":
        return client.get(f"{path}/download", headers=headers)
    if endpoint == "receipt":
        return client.get(f"{path}/receipt", headers=headers)
    if endpoint == "usage":
        return client.get(f"{path}/usage", headers=headers)
    if endpoint == "lookup":
        return client.get(
            "/api/v1/documents/lookup", params={"sha256": target.sha256}, headers=headers
        )
    assert endpoint == "withdraw"
    return client.delete(path, headers=headers)


def _call_system(world: World, user: str, endpoint: str) -> httpx.Response:
    client, headers = world.api.client, world.api.headers(user)
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "create_org": ("/api/v1/orgs", {"name": "北岭乡", "kind": "township"}),
        "create_user": (
            "/api/v1/users",
            {"username": "newreader", "password": PASSWORD, "org": STATS, "role": "reader"},
        ),
        # The default category, so that uploads in later cells stay valid.
        "create_category": ("/api/v1/categories", {"name": "其他"}),
    }
    if endpoint in bodies:
        path, body = bodies[endpoint]
        return client.post(path, json=body, headers=headers)
    if endpoint == "create_grant":
        spare = world.upload("west_departments")
        body = {"username": "auditor", "document_id": spare.id}
        return client.post("/api/v1/grants", json=body, headers=headers)
    if endpoint == "upload":
        content = text_bytes(f"{user} 新材料 {uuid.uuid4()}")
        return world.api.upload(user, "新材料.txt", content, "text/plain")
    if endpoint == "add_words":
        return client.post("/api/v1/dictionary", json={"words": [f"北岭村{user}"]}, headers=headers)
    if endpoint == "remove_word":
        # A word of its own, so that every cell finds one to remove.
        dictionary.console_add_words(
            world.backends, actor=Actor(username="cli:test"), words=[f"南岭村{user}"]
        )
        return client.delete(f"/api/v1/dictionary/南岭村{user}", headers=headers)
    if endpoint in ACCOUNT_PATHS:
        # Acting on a user of its own, so that the users the other cells sign in as stay usable.
        spare = _spare_user(world)
        body = {"new_password": PASSWORD} if endpoint == "reset_password" else None
        return client.post(
            f"/api/v1/users/{spare}/{ACCOUNT_PATHS[endpoint]}", json=body, headers=headers
        )
    if endpoint in SELF_ENDPOINTS:
        response: httpx.Response = _call_self(world, user, endpoint)
        return response
    paths = {
        "audit_events": "/api/v1/audit/events",
        "audit_export": "/api/v1/audit/export.csv",
        "audit_verify": "/api/v1/audit/verify",
        "list_users": "/api/v1/users",
        "me": "/api/v1/me",
        "read_dictionary": "/api/v1/dictionary",
    }
    return client.get(paths[endpoint], headers=headers)


def _call_self(world: World, user: str, endpoint: str) -> Any:
    client, username = world.api.client, user
    if endpoint == "change_password":
        username = f"{user}-self"
        role, org = USERS[user]
        with world.backends.db.session() as session:
            orgs.create_user(
                session,
                passwords=world.backends.passwords,
                username=username,
                password=PASSWORD,
                org=org,
                role=role,
            )
    login = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    if endpoint == "logout":
        return client.post("/api/v1/auth/logout", headers=headers)
    body = {"old_password": PASSWORD, "new_password": f"{PASSWORD}-{user}"}
    return client.post("/api/v1/me/password", json=body, headers=headers)


def _spare_user(world: World) -> str:
    with world.backends.db.session() as session:
        orgs.create_user(
            session,
            passwords=world.backends.passwords,
            username="spare",
            password=PASSWORD,
            org=STATS,
            role=Role.reader,
        )
    return "spare"


def _assert_denial_logged(
    world: World, *, since: int, user: str, action: AuditAction, document_id: str | None = None
) -> None:
    denials = [
        (event.actor, event.action, event.document_id)
        for event in world.events_since(since)
        if event.outcome == "denied"
    ]
    wanted = (user, action.value, document_id)
    assert wanted in denials, f"no denied {action} by {user} on {document_id} in {denials}"


def _error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


@pytest.mark.parametrize(("user", "document", "endpoint", "expected"), DOCUMENT_CELLS)
def test_document_endpoint(
    world: World, user: str, document: str, endpoint: str, expected: int
) -> None:
    # A withdrawal changes its document: it acts on a fresh one of the same shape.
    target = world.upload(document) if endpoint == "withdraw" else world.documents[document]
    before = world.last_seq()

    response = _call_document(world, user, endpoint, target)

    assert response.status_code == expected, response.text
    withdrawn = DOCUMENTS[document][2]
    if expected == 200:
        if endpoint == "download":
            assert response.content == target.content
        elif endpoint == "receipt":
            assert response.json()["document_id"] == target.id
        elif endpoint == "usage":
            assert set(response.json()) == {"departments", "reuse_count"}
        else:
            assert response.json()["id"] == target.id
            assert (response.json()["withdrawn_at"] is not None) == (
                withdrawn or endpoint == "withdraw"
            )
        return

    if endpoint == "lookup":
        # Lookup asks "does my township hold these bytes?": a miss refuses nothing.
        missing = Uploaded(id="", sha256=uuid.uuid4().hex * 2, content=b"")
        assert response.content == _call_document(world, user, endpoint, missing).content
        return

    code, action = DOCUMENT_REFUSALS[endpoint]
    if expected == 403:
        assert _error_code(response) == code
    elif expected == 409:
        assert _error_code(response) == "already_withdrawn"
    else:
        assert _error_code(response) == "document_not_found"
        # Hidden and nonexistent documents must be indistinguishable, byte for byte.
        missing = Uploaded(id=str(uuid.uuid4()), sha256="", content=b"")
        assert response.content == _call_document(world, user, endpoint, missing).content
    _assert_denial_logged(world, since=before, user=user, action=action, document_id=target.id)


@pytest.mark.parametrize(("user", "endpoint", "expected"), SYSTEM_CELLS)
def test_system_endpoint(world: World, user: str, endpoint: str, expected: int) -> None:
    before = world.last_seq()

    response = _call_system(world, user, endpoint)

    assert response.status_code == expected, response.text
    if expected == 403:
        code, action = SYSTEM_REFUSALS[endpoint]
        assert _error_code(response) == code
        _assert_denial_logged(world, since=before, user=user, action=action)
    elif endpoint == "me":
        assert response.json()["username"] == user
        assert response.json()["role"] == USERS[user][0].value


@pytest.mark.parametrize("user", sorted(LISTING))
def test_listing_shows_and_counts_only_visible_documents(pristine_world: World, user: str) -> None:
    expected = {pristine_world.documents[name].id for name in LISTING[user]}
    client, headers = pristine_world.api.client, pristine_world.api.headers(user)

    listed = client.get("/api/v1/documents", params={"size": 200}, headers=headers)
    first = client.get("/api/v1/documents", params={"size": 1}, headers=headers)

    assert listed.status_code == 200, listed.text
    assert {document["id"] for document in listed.json()["documents"]} == expected
    assert listed.json()["total"] == len(expected)
    assert first.json()["total"] == len(expected)
    assert len(first.json()["documents"]) == min(1, len(expected))


def _grant(world: World, username: str, document_id: str, **extra: str) -> None:
    response = world.api.client.post(
        "/api/v1/grants",
        json={"username": username, "document_id": document_id, **extra},
        headers=world.api.headers("admin"),
    )
    assert response.status_code == 201, response.text


def _download(world: World, user: str, document: Uploaded) -> httpx.Response:
    return _call_document(world, user, "download", document)


def test_granted_auditor_downloads_even_a_withdrawn_document(world: World) -> None:
    live, withdrawn = world.upload("east_private"), world.upload("east_withdrawn")
    _grant(world, "auditor", live.id)
    _grant(world, "auditor", withdrawn.id)

    for document in (live, withdrawn):
        response = _download(world, "auditor", document)
        assert response.status_code == 200, response.text
        assert response.content == document.content


def test_grant_for_another_auditor_or_document_does_not_help(world: World) -> None:
    created = world.api.client.post(
        "/api/v1/users",
        json={"username": "auditor2", "password": PASSWORD, "org": COUNTY, "role": "auditor"},
        headers=world.api.headers("admin"),
    )
    assert created.status_code in (200, 201), created.text
    theirs, mine = world.upload("east_departments"), world.upload("west_departments")
    _grant(world, "auditor2", theirs.id)
    _grant(world, "auditor", mine.id)
    before = world.last_seq()

    refused = _download(world, "auditor", theirs)

    assert refused.status_code == 403
    assert _error_code(refused) == "download_not_allowed"
    _assert_denial_logged(
        world, since=before, user="auditor", action=AuditAction.download, document_id=theirs.id
    )
    assert _download(world, "auditor2", theirs).status_code == 200
    assert _download(world, "auditor2", mine).status_code == 403


def test_expired_grant_does_not_work(world: World) -> None:
    document = world.upload("east_restricted")
    _grant(world, "auditor", document.id, expires_at=_an_hour_ago())
    before = world.last_seq()

    refused = _download(world, "auditor", document)

    assert refused.status_code == 403
    assert _error_code(refused) == "download_not_allowed"
    _assert_denial_logged(
        world, since=before, user="auditor", action=AuditAction.download, document_id=document.id
    )


def _an_hour_ago() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()
