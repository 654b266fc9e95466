"""The sample county's "ask once" part: on first start the catalog's coverage grids, the inboxes,
the notifications and the figures all show something, and loading it again changes nothing.

Everything is read through the HTTP API, as the people logging in would see it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from services.backends import Backends, open_backends
from services.catalog import county_today
from services.demo import LOGINS, load_demo
from services.demo.catalog import LEDGER, ended_period
from services.metadata import period_label
from services.models import (
    AuditEvent,
    CatalogItem,
    Document,
    MaterialRequest,
    Notification,
    Org,
    RequestStatus,
    User,
)
from tests.conftest import make_settings, sequence_and_verify

PASSWORDS = {login.username: login.password for login in LOGINS}
TABLES = (Org, User, Document, CatalogItem, MaterialRequest, Notification, AuditEvent)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    backends = open_backends(make_settings(data_dir))
    try:
        load_demo(backends)
    finally:
        backends.close()
    return data_dir


@pytest.fixture(scope="module")
def client(demo_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(demo_dir))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def headers(client: TestClient) -> dict[str, dict[str, str]]:
    found = {}
    for username, password in PASSWORDS.items():
        response = client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, (username, response.text)
        found[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return found


def get(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = client.get(path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def counts(backends: Backends) -> dict[str, int]:
    with backends.db.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in TABLES
        }


def test_the_coordinator_login_is_a_coordinator_of_the_county(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    me = get(client, headers["jianfu"], "/api/v1/me")
    assert (me["role"], me["org"]["name"]) == ("coordinator", "示范县")


def test_every_request_state_exists(demo_dir: Path) -> None:
    backends = open_backends(make_settings(demo_dir))
    try:
        with backends.db.session() as session:
            requests = session.scalars(select(MaterialRequest)).all()
            states = {request.status for request in requests}
            repeated = [r for r in requests if r.repeated]
            refused = [r for r in requests if r.status == RequestStatus.refused.value]
            overdue = [r for r in requests if r.overdue_at is not None]
    finally:
        backends.close()
    assert states == {status.value for status in RequestStatus}
    assert [r.status for r in repeated] == [RequestStatus.answered.value]
    assert refused
    assert all(r.refusal_document_id for r in refused)
    assert [r.status for r in overdue] == [RequestStatus.sent.value]


def test_the_outbox_shows_the_overdue_request(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    outbox = get(client, headers["zhenxing"], "/api/v1/requests", box="outbox")
    late = [request for request in outbox["requests"] if request["overdue"]]
    assert len(late) == 1
    assert late[0]["status"] == "sent"
    assert late[0]["township"]["name"] == "河口乡"


def test_each_catalog_item_has_submitted_and_missing_cells(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    items = get(client, headers["jianfu"], "/api/v1/catalog")
    assert len(items) == 4
    assert [item["name"] for item in items if item["townships"] != "all"] == ["防汛工作季报"]
    for item in items:
        grid = get(client, headers["jianfu"], f"/api/v1/catalog/{item['id']}/coverage")
        statuses = {cell["status"] for row in grid["rows"] for cell in row["cells"]}
        assert "submitted" in statuses, item["name"]
        assert statuses & {"missing", "overdue"}, item["name"]


def test_no_item_is_owed_before_the_first_period_anyone_submitted(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    # The county started with the catalog when the demo's submissions start: earlier periods are
    # 无需报送, so the grids' overdue cells are the few gaps a coordinator would chase.
    for item in get(client, headers["jianfu"], "/api/v1/catalog"):
        grid = get(client, headers["jianfu"], f"/api/v1/catalog/{item['id']}/coverage")
        first = [row["cells"][0]["status"] for row in grid["rows"]]
        assert "submitted" in first, (item["name"], grid["periods"][0], first)
        overdue = [
            cell for row in grid["rows"] for cell in row["cells"] if cell["status"] == "overdue"
        ]
        assert len(overdue) <= 2, (item["name"], overdue)


def test_the_monthly_ledger_is_offered_for_the_month_just_ended(client: TestClient) -> None:
    # 城关镇 has filed the ledger for every month since it was owed but the last one (asked for
    # by 县乡村振兴局): the upload form offers that month, not one from before the item existed.
    last_month = ended_period(LEDGER.cycle, county_today(), 1)
    with TestClient(client.app) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
        assert token is not None
        signed_in = browser.post(
            "/login",
            data={
                "username": "chengguan",
                "password": PASSWORDS["chengguan"],
                "csrf_token": token.group(1),
            },
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        page = browser.get("/upload").text
    ledger = re.search(r'<option value="\d+" data-period="([^"]*)"[^>]*>月度防返贫监测台账', page)
    assert ledger is not None, page
    assert ledger.group(1) == period_label(last_month)


def test_request_names_say_the_period_not_last_month(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    # A request's name becomes what people remember the material by: 上月 is wrong a month later.
    titles = [
        request["title"]
        for username in ("chengguan", "hekou")
        for request in get(client, headers[username], "/api/v1/requests", box="inbox")["requests"]
    ]
    assert titles
    assert not [title for title in titles if re.search("上月|上季度|去年|本月|本季度", title)]


def test_the_township_inboxes_and_notifications_are_not_empty(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    for township in ("chengguan", "hekou"):
        inbox = get(client, headers[township], "/api/v1/requests", box="inbox")
        assert inbox["total"] > 0, township
        assert {request["status"] for request in inbox["requests"]} <= {"sent", "answered"}
    chengguan = get(client, headers["chengguan"], "/api/v1/requests", box="inbox")
    assert any(request["status"] == "sent" for request in chengguan["requests"])
    kinds = {
        username: {
            notification["kind"]
            for notification in get(client, headers[username], "/api/v1/notifications")[
                "notifications"
            ]
        }
        for username in ("chengguan", "hekou", "zhenxing", "tongji")
    }
    assert "request_sent" in kinds["chengguan"]
    assert {"request_sent", "request_due", "request_overdue"} <= kinds["hekou"]
    assert {"request_answered", "request_joined"} <= kinds["zhenxing"]
    assert {"request_answered", "request_refused"} <= kinds["tongji"]
    approval = get(client, headers["jianfu"], "/api/v1/requests", box="approval")
    assert "pending_approval" in {request["status"] for request in approval["requests"]}


@pytest.mark.parametrize("by", ["township", "department", "county"])
def test_the_figures_show_every_kind_of_saving(
    by: str, client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    figures = get(client, headers["jianfu"], "/api/v1/figures", by=by)
    totals = figures["totals"]
    for name in (
        "uploads",
        "reused_documents",
        "reuses",
        "requests",
        "answered_from_repository",
        "joined",
        "answered_by_township",
        "repeated",
        "refused",
        "overdue",
        "hours_saved",
    ):
        assert totals[name] > 0, name


def test_loading_twice_changes_nothing(demo_dir: Path) -> None:
    backends = open_backends(make_settings(demo_dir))
    try:
        before = counts(backends)
        assert load_demo(backends) == list(LOGINS)
        assert counts(backends) == before
        assert sequence_and_verify(backends).ok
    finally:
        backends.close()
