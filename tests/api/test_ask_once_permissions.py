"""The "Ask once" authorization matrix: every new endpoint × every role, on requests in each
state, like tests/api/test_authorization.py for documents.

A request the caller may not see answers exactly like one that does not exist (404, byte for
byte); every refusal is in the audit log. A department never sees another department's draft; a
township sees only what was sent to it; coordinators read no document content and no audit log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from services.audit import AuditFilter
from services.backends import Backends, open_backends
from services.catalog import county_today
from tests.api.ask_once_helpers import (
    CATALOG,
    REQUESTS,
    act,
    assert_error,
    box,
    create_item,
    decide,
    denials_since,
    draft,
    drain,
    last_seq,
    notifications,
    upload,
)
from tests.conftest import EAST, WEST, Api, seed_county, stack_settings

USERS = ("east", "east2", "west", "poverty", "stats", "coord", "auditor", "admin")
STEPS = ("accept", "join", "send", "approve", "refuse", "answer")
NOT_FOUND = (404,) * 7

# The requests: all poverty's, to east. draft: never sent; pending: ad hoc, sent, awaiting a
# coordinator; sent: a catalog slot, sent to east.
# fmt: off
REQUEST_MATRIX: list[tuple[str, str, tuple[int, ...]]] = [
    # user       state       get  accept join send approve refuse answer
    ("poverty", "draft",    (200, 200,   200, 200, 403,    403,   404)),
    ("stats",   "draft",    NOT_FOUND),
    ("east",    "draft",    NOT_FOUND),
    ("east2",   "draft",    NOT_FOUND),
    ("west",    "draft",    NOT_FOUND),
    ("coord",   "draft",    NOT_FOUND),
    ("auditor", "draft",    NOT_FOUND),
    ("admin",   "draft",    NOT_FOUND),
    ("poverty", "pending",  (200, 409,   409, 409, 403,    403,   404)),
    ("stats",   "pending",  (200, 403,   403, 403, 403,    403,   404)),
    ("east",    "pending",  NOT_FOUND),
    ("east2",   "pending",  NOT_FOUND),
    ("west",    "pending",  NOT_FOUND),
    ("coord",   "pending",  (200, 403,   403, 403, 200,    200,   404)),
    ("auditor", "pending",  NOT_FOUND),
    ("admin",   "pending",  NOT_FOUND),
    ("poverty", "sent",     (200, 409,   409, 409, 403,    403,   404)),
    ("stats",   "sent",     (200, 403,   403, 403, 403,    403,   404)),
    ("east",    "sent",     (200, 403,   403, 403, 403,    403,   200)),
    ("east2",   "sent",     (200, 403,   403, 403, 403,    403,   200)),
    ("west",    "sent",     NOT_FOUND),
    ("coord",   "sent",     (200, 403,   403, 403, 409,    409,   404)),
    ("auditor", "sent",     NOT_FOUND),
    ("admin",   "sent",     NOT_FOUND),
]

# Endpoints that act on no particular request.
ASK_SYSTEM_MATRIX: list[tuple[str, tuple[int, ...]]] = [
    #            POST      GET /requests?box=       GET      POST     PATCH         GET       GET
    # user       requests  outbox inbox approval    catalog  catalog  catalog/{id}  coverage  notif.
    ("east",    (403,      403,   200,  403,        200,     403,     403,          200,      200)),
    ("east2",   (403,      403,   200,  403,        200,     403,     403,          200,      200)),
    ("west",    (403,      403,   200,  403,        200,     403,     403,          200,      200)),
    ("poverty", (201,      200,   403,  403,        200,     403,     403,          200,      200)),
    ("stats",   (201,      200,   403,  403,        200,     403,     403,          200,      200)),
    ("coord",   (403,      403,   403,  200,        200,     201,     200,          200,      200)),
    ("auditor", (403,      403,   403,  403,        200,     403,     403,          200,      200)),
    ("admin",   (403,      403,   403,  403,        200,     403,     403,          200,      200)),
]
# fmt: on
ASK_SYSTEM_ENDPOINTS = (
    "create_request",
    "outbox",
    "inbox",
    "approval",
    "list_catalog",
    "create_item",
    "update_item",
    "coverage",
    "notifications",
)

# How a refusal reads: endpoint → (error code of a 403, of a 409, the audited action).
REFUSALS: dict[str, tuple[str | None, str | None, str]] = {
    "get": (None, None, "request_read"),
    "accept": ("not_request_owner", "request_not_draft", "request_accept"),
    "join": ("not_request_owner", "request_not_draft", "request_join"),
    "send": ("not_request_owner", "request_not_draft", "request_send"),
    "approve": ("coordinator_only", "request_not_pending", "request_approve"),
    "refuse": ("coordinator_only", "request_not_pending", "request_refuse"),
    "answer": (None, None, "request_answer"),
}
SYSTEM_REFUSALS: dict[str, tuple[str, str]] = {
    "create_request": ("request_not_allowed", "request_create"),
    "outbox": ("box_not_allowed", "request_read"),
    "inbox": ("box_not_allowed", "request_read"),
    "approval": ("box_not_allowed", "request_read"),
    "create_item": ("coordinator_only", "catalog_create"),
    "update_item": ("coordinator_only", "catalog_update"),
}
# What a successful step leaves the request in.
AFTER = {
    "accept": "answered_from_repository",
    "join": "joined",
    "send": "pending_approval",
    "approve": "sent",
    "refuse": "refused",
    "answer": "answered",
}
MISSING_REQUEST = 987_654


@dataclass
class World:
    """The sample county with a catalog item, east's shared document and an open request to
    join; cells add requests of their own, so that they never change each other's."""

    api: Api
    backends: Backends
    item: dict[str, Any]
    quarter: str
    document: str
    target: int

    def request(self, state: str) -> int:
        """A new request of poverty's to east in ``state``."""
        title = f"扶贫台账 {uuid.uuid4().hex[:6]}"
        slot = {"catalog_item": self.item["id"], "period": self.quarter} if state == "sent" else {}
        created = draft(self.api, "poverty", EAST, title, category="扶贫台账", **slot)
        if state != "draft":
            decide(self.api, "poverty", created["id"], "send", {"reason": "需要新材料"})
        request_id: int = created["id"]
        return request_id


def _build_world(api: Api, backends: Backends) -> World:
    item = create_item(api, name="季度扶贫台账", category="扶贫台账")
    today = county_today()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    document = upload(api, "east", "东镇扶贫台账", category="扶贫台账")
    drain(backends)
    # An open request of stats' that poverty's drafts may join.
    target = draft(api, "stats", EAST, "统计台账", category="统计台账")
    decide(api, "stats", target["id"], "send", {"reason": "需要"})
    return World(api, backends, item, quarter, document, target["id"])


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest, stack: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("ask-world") / "data"
    with stack_settings(request, stack, data_dir) as settings:
        backends = open_backends(settings)
        seed_county(backends)
        try:
            with TestClient(create_app(settings, backends=backends)) as client:
                yield _build_world(Api(client, {}), backends)
        finally:
            backends.close()


def _call(world: World, user: str, endpoint: str, request_id: int) -> httpx2.Response:
    if endpoint == "get":
        return world.api.client.get(f"{REQUESTS}/{request_id}", headers=world.api.headers(user))
    bodies: dict[str, Any] = {
        "accept": {"document_id": world.document},
        "join": {"request_id": world.target},
        "send": {"reason": "确需报送"},
        "approve": None,
        "refuse": {"reason": "库中已有"},
        "answer": {"document_ids": [world.document]},
    }
    return act(world.api, user, request_id, endpoint, bodies[endpoint])


REQUEST_CELLS = [
    pytest.param(user, state, endpoint, expected, id=f"{user}-{endpoint}-{state}")
    for user, state, statuses in REQUEST_MATRIX
    for endpoint, expected in zip(("get", *STEPS), statuses, strict=True)
]


@pytest.mark.parametrize(("user", "state", "endpoint", "expected"), REQUEST_CELLS)
def test_request_endpoint(
    world: World, user: str, state: str, endpoint: str, expected: int
) -> None:
    request_id = world.request(state)
    before = last_seq(world.backends)

    response = _call(world, user, endpoint, request_id)

    assert response.status_code == expected, response.text
    if expected == 200:
        body = response.json()
        assert body["id"] == request_id
        if endpoint != "get":
            assert body["status"] == AFTER[endpoint]
        return
    forbidden, conflict, action = REFUSALS[endpoint]
    if expected == 403:
        assert_error(response, 403, str(forbidden))
    elif expected == 409:
        assert_error(response, 409, str(conflict))
    else:
        assert_error(response, 404, "request_not_found")
        # A hidden request answers exactly like one that does not exist.
        assert response.content == _call(world, user, endpoint, MISSING_REQUEST).content
    denials = [
        (actor, event_action, details.get("request_id"))
        for actor, event_action, details in denials_since(world.backends, before)
    ]
    assert (user, action, str(request_id)) in denials, denials
    # Nothing changed: the owner still sees the request in its state.
    owner = world.api.client.get(f"{REQUESTS}/{request_id}", headers=world.api.headers("poverty"))
    assert owner.json()["status"] == {"draft": "draft", "pending": "pending_approval"}.get(
        state, "sent"
    )


def _call_system(world: World, user: str, endpoint: str) -> httpx2.Response:
    client, headers = world.api.client, world.api.headers(user)
    if endpoint == "create_request":
        body = {"township": EAST, "title": "人口台账", "due": str(county_today())}
        return client.post(REQUESTS, json=body, headers=headers)
    if endpoint in ("outbox", "inbox", "approval"):
        return client.get(REQUESTS, params={"box": endpoint}, headers=headers)
    if endpoint == "list_catalog":
        return client.get(CATALOG, headers=headers)
    if endpoint == "create_item":
        body = {"name": f"月报 {uuid.uuid4().hex[:6]}", "category": "月报", "cycle": "monthly"}
        return client.post(CATALOG, json={**body, "due_days": 10}, headers=headers)
    item = world.item["id"]
    if endpoint == "update_item":
        return client.patch(f"{CATALOG}/{item}", json={"due_days": 20}, headers=headers)
    if endpoint == "coverage":
        return client.get(f"{CATALOG}/{item}/coverage", headers=headers)
    assert endpoint == "notifications"
    return client.get("/api/v1/notifications", headers=headers)


SYSTEM_CELLS = [
    pytest.param(user, endpoint, expected, id=f"{user}-{endpoint}")
    for user, statuses in ASK_SYSTEM_MATRIX
    for endpoint, expected in zip(ASK_SYSTEM_ENDPOINTS, statuses, strict=True)
]


@pytest.mark.parametrize(("user", "endpoint", "expected"), SYSTEM_CELLS)
def test_ask_once_system_endpoint(world: World, user: str, endpoint: str, expected: int) -> None:
    before = last_seq(world.backends)

    response = _call_system(world, user, endpoint)

    assert response.status_code == expected, response.text
    if expected == 403:
        code, action = SYSTEM_REFUSALS[endpoint]
        assert_error(response, 403, code)
        denied = [(actor, event) for actor, event, _ in denials_since(world.backends, before)]
        assert (user, action) in denied, denied
    elif endpoint == "coverage":
        townships = {row["township"]["name"] for row in response.json()["rows"]}
        own = {"east": {EAST}, "east2": {EAST}, "west": {WEST}}
        assert townships == own.get(user, {EAST, WEST})


# --- what each side lists -------------------------------------------------------------------


@pytest.fixture
def boxes(api: Api, backends: Backends) -> dict[str, int]:
    """One request in every state that matters for listings, by name."""
    item = create_item(api, name="季度台账")
    today = county_today()
    slot = {"catalog_item": item["id"], "period": f"{today.year}-Q{(today.month - 1) // 3 + 1}"}
    made = {
        "poverty_draft": draft(api, "poverty", EAST, "扶贫草稿")["id"],
        "stats_draft": draft(api, "stats", EAST, "统计草稿")["id"],
        "pending": draft(api, "poverty", EAST, "待审核")["id"],
        "east_sent": draft(api, "poverty", EAST, "东镇台账", **slot)["id"],
        "west_sent": draft(api, "stats", WEST, "西乡台账", **slot)["id"],
        "refused": draft(api, "stats", EAST, "未准入")["id"],
    }
    for name in ("pending", "east_sent", "west_sent", "refused"):
        user = "poverty" if name in ("pending", "east_sent") else "stats"
        decide(api, user, made[name], "send", {"reason": "需要"})
    decide(api, "coord", made["refused"], "refuse", {"reason": "不必要"})
    return made


@pytest.mark.parametrize(
    ("user", "name", "expected"),
    [
        ("poverty", "outbox", {"poverty_draft", "pending", "east_sent"}),
        ("stats", "outbox", {"stats_draft", "west_sent", "refused"}),
        ("east", "inbox", {"east_sent"}),
        ("east2", "inbox", {"east_sent"}),
        ("west", "inbox", {"west_sent"}),
        # Ad-hoc requests only: catalog slots need no approval.
        ("coord", "approval", {"pending", "refused"}),
    ],
)
def test_each_box_lists_only_the_callers_side(
    api: Api, boxes: dict[str, int], user: str, name: str, expected: set[str]
) -> None:
    listed = {request["id"] for request in box(api, user, name)}

    assert listed == {boxes[key] for key in expected}
    # The default box is the role's own.
    default = api.client.get(REQUESTS, params={"size": 100}, headers=api.headers(user))
    assert {request["id"] for request in default.json()["requests"]} == listed


def test_a_box_filtered_by_status(api: Api, boxes: dict[str, int]) -> None:
    drafts = box(api, "poverty", "outbox", status="draft")

    assert [request["id"] for request in drafts] == [boxes["poverty_draft"]]
    assert box(api, "east", "inbox", status="pending_approval") == []


# --- coordinators read no content -----------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["view", "download", "receipt"])
def test_coordinators_read_no_document(api: Api, backends: Backends, endpoint: str) -> None:
    document = upload(api, "east", "东镇扶贫总结", category="工作总结")
    path = f"/api/v1/documents/{document}" + {"view": "", "download": "/download"}.get(
        endpoint, "/receipt"
    )
    before = last_seq(backends)

    response = api.client.get(path, headers=api.headers("coord"))

    assert_error(response, 404, "document_not_found")
    missing = api.client.get(
        path.replace(document, str(uuid.uuid4())), headers=api.headers("coord")
    )
    assert response.content == missing.content
    denied = [(actor, action) for actor, action, _ in denials_since(backends, before)]
    assert ("coord", {"receipt": "receipt"}.get(endpoint, endpoint)) in denied


def test_coordinators_search_finds_no_snippets(api: Api, backends: Backends) -> None:
    upload(api, "east", "东镇脱贫攻坚总结", category="工作总结")
    drain(backends)
    found = api.client.get(
        "/api/v1/search", params={"q": "脱贫攻坚"}, headers=api.headers("poverty")
    )
    assert found.json()["total"] == 1

    response = api.client.get(
        "/api/v1/search", params={"q": "脱贫攻坚"}, headers=api.headers("coord")
    )

    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0
    assert response.json()["hits"] == []
    assert "脱贫" not in str(response.json()["facets"])


@pytest.mark.parametrize("path", ["/events", "/export.csv", "/verify"])
def test_coordinators_read_no_audit_log(api: Api, backends: Backends, path: str) -> None:
    before = last_seq(backends)

    response = api.client.get(f"/api/v1/audit{path}", headers=api.headers("coord"))

    assert_error(response, 403, "audit_not_allowed")
    assert [actor for actor, _, _ in denials_since(backends, before)] == ["coord"]


# --- notifications are their reader's alone ---------------------------------------------------


def test_someone_elses_notification_cannot_be_marked_read(api: Api, backends: Backends) -> None:
    item = create_item(api, name="季度报表")
    today = county_today()
    slot = {"catalog_item": item["id"], "period": f"{today.year}-Q{(today.month - 1) // 3 + 1}"}
    request = draft(api, "poverty", EAST, "东镇报表", **slot)
    decide(api, "poverty", request["id"], "send", {"reason": "尚未报送"})
    (theirs,) = notifications(api, "east")
    before = last_seq(backends)

    response = api.client.post(
        f"/api/v1/notifications/{theirs['id']}/read", headers=api.headers("west")
    )

    assert_error(response, 404, "notification_not_found")
    missing = api.client.post("/api/v1/notifications/999999/read", headers=api.headers("west"))
    assert response.content == missing.content
    assert notifications(api, "east")[0]["read"] is False
    assert notifications(api, "east2")[0]["read"] is False
    denied = [(actor, action) for actor, action, _ in denials_since(backends, before)]
    assert ("west", "notification_read") in denied


@pytest.mark.parametrize("user", ["auditor", "admin"])
def test_roles_without_a_box_are_refused_a_listing(api: Api, backends: Backends, user: str) -> None:
    response = api.client.get("/api/v1/requests", headers=api.headers(user))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "box_not_allowed"
    denied = backends.audit.page(
        AuditFilter(actor=user, action="request_read", outcome="denied"), page=1, size=5
    )
    assert denied.total == 1
