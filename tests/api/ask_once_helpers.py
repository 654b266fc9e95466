"""Shared steps of the "Ask once" suites: catalog items, requests and their decisions, the
notifications people see, the audit log as the auditor reads it, and the lifecycle scenario.

The scenario (``run_lifecycle``) is the county's story across three departments and two
townships; the lifecycle suite checks each step of it and the figures suite counts it by hand.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx2
from sqlalchemy import func, select

from indexer.worker import IndexWorker
from services import orgs, requests
from services.backends import Backends
from services.catalog import county_today
from services.models import (
    COUNTY_TIME,
    AuditEvent,
    CatalogItem,
    Document,
    MaterialRequest,
    Notification,
    OrgKind,
    RequestDepartment,
    RequestDocument,
    Role,
)
from tests.conftest import EAST, PASSWORD, WEST, Api
from tests.samples import text_bytes

FARMING = "农业局"  # the third department, added by the tests that need it
REQUESTS = "/api/v1/requests"
CATALOG = "/api/v1/catalog"


# --- the county beyond tests/conftest.py -----------------------------------------------------


def add_user(backends: Backends, username: str, org: str, kind: OrgKind, role: Role) -> None:
    """An organisation (created when new) and one user of it."""
    with backends.db.session() as session:
        orgs.create_org(session, name=org, kind=kind)
        orgs.create_user(
            session,
            passwords=backends.passwords,
            username=username,
            password=PASSWORD,
            org=org,
            role=role,
        )


def add_reader(backends: Backends, username: str, department: str) -> None:
    add_user(backends, username, department, OrgKind.department, Role.reader)


# --- what every refusal looks like -----------------------------------------------------------


def assert_error(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    """The JSON error shape of API.md, with this status and machine code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def row_counts(backends: Backends) -> dict[str, int]:
    """How many rows the feature's tables hold: a refused call must leave them all unchanged."""
    tables = (
        MaterialRequest,
        RequestDepartment,
        RequestDocument,
        Notification,
        Document,
        CatalogItem,
    )
    with backends.db.session() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in tables
        }


def request_state(backends: Backends, request_id: int) -> dict[str, Any]:
    """A request's stored state, for checking that a refused call changed nothing."""
    with backends.db.session() as session:
        request = session.get(MaterialRequest, request_id)
        assert request is not None
        return {
            "status": request.status,
            "repeated": request.repeated,
            "joined_to": request.joined_to_id,
            "departments": request.department_names,
            "documents": request.document_ids,
            "reason": request.reason,
            "refusal_reason": request.refusal_reason,
            "decided_at": request.decided_at,
            "sent_at": request.sent_at,
            "answered_at": request.answered_at,
            "refused_at": request.refused_at,
            "overdue_at": request.overdue_at,
        }


# --- documents -------------------------------------------------------------------------------


def upload(api: Api, user: str, title: str, **fields: str) -> str:
    """A new document (unique bytes) uploaded by ``user``; its id."""
    content = text_bytes(f"{title}\n{uuid.uuid4()}")
    response = api.upload(user, f"{title}.txt", content, "text/plain", title=title, **fields)
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def drain(backends: Backends) -> None:
    """Index what was uploaded, as the worker would."""
    IndexWorker(backends, backends.index).drain()


def download(api: Api, user: str, document_id: str) -> None:
    response = api.client.get(
        f"/api/v1/documents/{document_id}/download", headers=api.headers(user)
    )
    assert response.status_code == 200, response.text


# --- the catalog -----------------------------------------------------------------------------


def create_item(api: Api, **fields: Any) -> dict[str, Any]:
    """A catalog item created by the coordinator (quarterly, due 15 days after, owed since 2020,
    by default)."""
    body = {
        "category": "统计报表",
        "cycle": "quarterly",
        "due_days": 15,
        "owed_from": "2020-01-01",
        **fields,
    }
    response = api.client.post(CATALOG, json=body, headers=api.headers("coord"))
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


# --- requests --------------------------------------------------------------------------------


def in_days(days: int) -> str:
    """A due date ``days`` after the county's today, as the API takes it."""
    return (county_today() + timedelta(days=days)).isoformat()


def post_draft(api: Api, user: str, **fields: Any) -> httpx2.Response:
    body = {"category": "其他", "due": in_days(10), **fields}
    return api.client.post(REQUESTS, json=body, headers=api.headers(user))


def draft(api: Api, user: str, township: str, title: str, **fields: Any) -> dict[str, Any]:
    """A new draft request; the draft as the API returns it (with matches and open requests)."""
    response = post_draft(api, user, township=township, title=title, **fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["status"] == "draft"
    return created


def act(api: Api, user: str, request_id: int | str, step: str, body: Any = None) -> httpx2.Response:
    """POST /requests/{id}/{step} (accept, join, send, approve, refuse, answer)."""
    return api.client.post(f"{REQUESTS}/{request_id}/{step}", json=body, headers=api.headers(user))


def decide(api: Api, user: str, request_id: int, step: str, body: Any = None) -> dict[str, Any]:
    """A step that must succeed; the request afterwards."""
    response = act(api, user, request_id, step, body)
    assert response.status_code == 200, response.text
    request: dict[str, Any] = response.json()
    assert request["id"] == request_id
    return request


def fetch(api: Api, user: str, request_id: int) -> dict[str, Any]:
    response = api.client.get(f"{REQUESTS}/{request_id}", headers=api.headers(user))
    assert response.status_code == 200, response.text
    request: dict[str, Any] = response.json()
    return request


def box(api: Api, user: str, name: str, **params: Any) -> list[dict[str, Any]]:
    """Every request of one box, as ``user`` lists it."""
    response = api.client.get(
        REQUESTS, params={"box": name, "size": 100, **params}, headers=api.headers(user)
    )
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["requests"]
    assert response.json()["total"] == len(listed)
    return listed


# --- notifications ---------------------------------------------------------------------------


def notifications(api: Api, user: str) -> list[dict[str, Any]]:
    response = api.client.get(
        "/api/v1/notifications", params={"size": 100}, headers=api.headers(user)
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["notifications"]
    assert response.json()["total"] == len(found)
    return found


def told(api: Api, user: str) -> list[tuple[str, int | None]]:
    """What a user was told, as sorted (kind, request) pairs; repeats would show twice."""
    return sorted((n["kind"], n["request_id"]) for n in notifications(api, user))


# --- the audit log, as the auditor reads it --------------------------------------------------


def audit_events(api: Api, **filters: str) -> list[dict[str, Any]]:
    """Every audit event matching the filters, oldest first, read over HTTP by the auditor."""
    events: list[dict[str, Any]] = []
    page = 1
    while True:
        response = api.client.get(
            "/api/v1/audit/events",
            params={"size": 500, "page": page, **filters},
            headers=api.headers("auditor"),
        )
        assert response.status_code == 200, response.text
        batch: list[dict[str, Any]] = response.json()["events"]
        events.extend(batch)
        if len(batch) < 500:
            break
        page += 1
    return sorted(events, key=lambda event: str(event["at"]))


def last_seq(backends: Backends) -> int:
    return backends.audit.last_id()


def denials_since(backends: Backends, seq: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(actor, action, details) of every denied event after ``seq``, read from the table (an
    auditor reading over HTTP would add events of its own)."""
    with backends.db.session() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > seq, AuditEvent.outcome == "denied")
        )
        return [(event.actor, event.action, dict(event.details)) for event in rows]


# --- the lifecycle scenario ------------------------------------------------------------------


@dataclass
class Lifecycle:
    """What ``run_lifecycle`` did: documents and requests by name, and what it saw on the way."""

    item: dict[str, Any]
    documents: dict[str, str] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    due: date = date.min
    due_job: list[tuple[str, int]] = field(default_factory=list)


def beijing_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=COUNTY_TIME)


def run_lifecycle(api: Api, backends: Backends) -> Lifecycle:
    """Three departments (扶贫办 poverty, 统计局 stats, 农业局 farmer) ask two townships (东镇 east,
    西乡 west) for materials; every way a request can end happens once:

    - R1 avoided: stats asks east for a catalog slot east already filled and accepts the match;
    - R2 approved ad hoc, answered with a new upload, for two departments: poverty asks east,
      a coordinator approves, farmer's draft R3 joins R2, east answers with a new document;
    - R4 refused: stats asks west for minutes west already shared; refused with a pointer;
    - R5 repeated: poverty asks west for a summary west already had; west answers with it;
    - R6 overdue: farmer asks west for a catalog slot; the due-date job runs on a clock the
      test sets, two and three days before the due date and a day after it, each twice;
    - R7 stays a draft (stats to west) and counts nowhere.
    Readers download: stats U1 twice, poverty U1 and U4, farmer U4, stats U3; east downloads U1
    (a township is no reuser); east sends U2's bytes again (a duplicate, no new upload).
    """
    add_reader(backends, "farmer", FARMING)
    item = create_item(api, name="乡镇季度统计报表", departments=["统计局"])
    run = Lifecycle(item=item)
    today = county_today()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    docs = run.documents
    docs["U1"] = upload(
        api, "east", "东镇季度统计报表", catalog_item=str(item["id"]), period=quarter
    )
    u2_title = "东镇扶贫工作总结"
    u2_bytes = text_bytes(f"{u2_title} 全年工作")
    first = api.upload(
        "east", "u2.txt", u2_bytes, "text/plain", title=u2_title, category="工作总结"
    )
    assert first.status_code == 201, first.text
    docs["U2"] = first.json()["id"]
    again = api.upload("east2", "u2-again.txt", u2_bytes, "text/plain", category="工作总结")
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    docs["U3"] = upload(api, "west", "西乡党委会议纪要", category="会议纪要")
    docs["U5"] = upload(api, "west", "西乡年度工作总结", category="工作总结")
    drain(backends)

    def step(name: str, user: str, step_name: str, body: Any = None) -> None:
        run.decisions[f"{name}:{step_name}"] = decide(
            api, user, run.requests[name], step_name, body
        )

    def new_draft(name: str, user: str, township: str, title: str, **fields: Any) -> None:
        run.drafts[name] = draft(api, user, township, title, **fields)
        run.requests[name] = run.drafts[name]["id"]

    # R1: the slot is already filled; stats takes it from the repository.
    new_draft(
        "R1", "stats", EAST, "季度统计报表", catalog_item=item["id"], period=quarter, category=None
    )
    step("R1", "stats", "accept", {"document_id": docs["U1"]})

    # R2: ad hoc, so a coordinator approves it before east hears of it.
    new_draft("R2", "poverty", EAST, "产业帮扶台账", category="帮扶台账", period=str(today.year))
    step("R2", "poverty", "send", {"reason": "库中没有产业帮扶台账"})
    step("R2", "coord", "approve")
    # R3: farmer needs the same; it joins R2 instead of asking east again.
    new_draft("R3", "farmer", EAST, "帮扶台账（农业）", category="帮扶台账", period=str(today.year))
    step("R3", "farmer", "join", {"request_id": run.requests["R2"]})
    docs["U4"] = upload(api, "east", "东镇产业帮扶台账", category="帮扶台账")
    step("R2", "east", "answer", {"document_ids": [docs["U4"]]})

    # R4: west's minutes are already shared; the coordinator refuses and points at them.
    new_draft("R4", "stats", WEST, "会议纪要汇总", category="会议纪要")
    step("R4", "stats", "send", {"reason": "需要汇总版"})
    step("R4", "coord", "refuse", {"reason": "西乡已共享会议纪要", "document_id": docs["U3"]})

    # R5: asked although west already had it; west answers with the older document.
    new_draft("R5", "poverty", WEST, "西乡工作总结", category="工作总结")
    step("R5", "poverty", "send", {"reason": "需要最新版本"})
    step("R5", "coord", "approve")
    step("R5", "west", "answer", {"document_ids": [docs["U5"]]})

    # R6: a catalog slot goes straight to west, which lets it pass its due date.
    due = today + timedelta(days=5)
    run.due = due
    new_draft(
        "R6",
        "farmer",
        WEST,
        "西乡季度统计报表",
        catalog_item=item["id"],
        period=quarter,
        category=None,
        due=due.isoformat(),
    )
    step("R6", "farmer", "send", {"reason": "西乡尚未报送"})

    # R7: a draft nobody sends.
    new_draft("R7", "stats", WEST, "西乡人口台账", category="人口台账")

    for user, document in (
        ("stats", "U1"),
        ("stats", "U1"),
        ("poverty", "U1"),
        ("poverty", "U4"),
        ("farmer", "U4"),
        ("stats", "U3"),
        ("east", "U1"),
    ):
        download(api, user, docs[document])

    for label, day in (
        ("3 days before", due - timedelta(days=3)),
        ("2 days before", due - timedelta(days=2)),
        ("2 days before, again", due - timedelta(days=2)),
        ("on the due date", due),
        ("a day after", due + timedelta(days=1)),
        ("a day after, again", due + timedelta(days=1)),
    ):
        run.due_job.append((label, requests.run_due_dates(backends, now=beijing_noon(day))))
    return run
