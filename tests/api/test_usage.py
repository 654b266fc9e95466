"""A material's usage: which departments viewed and downloaded it, recomputed from the audit log.

Counts are per department, never per reader; only allowed views and downloads by readers count.
Who may ask (own township and auditors) is in the table of tests/api/test_authorization.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from services.audit import AuditAction
from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import PASSWORD, POVERTY, Api
from tests.samples import text_bytes

FARMING = "农业局"


def _upload(api: Api, name: str, **sharing: str) -> str:
    created = api.upload("east", f"{name}.txt", text_bytes(f"{name} 材料"), "text/plain", **sharing)
    assert created.status_code == 201, created.text
    document_id: str = created.json()["id"]
    return document_id


def _add_reader(api: Api, username: str, department: str) -> None:
    admin = api.headers("admin")
    org = api.client.post(
        "/api/v1/orgs", json={"name": department, "kind": "department"}, headers=admin
    )
    assert org.status_code in (200, 201), org.text
    user = {"username": username, "password": PASSWORD, "org": department, "role": "reader"}
    created = api.client.post("/api/v1/users", json=user, headers=admin)
    assert created.status_code == 201, created.text


def _use(api: Api, user: str, document_id: str, *, views: int = 0, downloads: int = 0) -> None:
    path = f"/api/v1/documents/{document_id}"
    for _ in range(views):
        assert api.client.get(path, headers=api.headers(user)).status_code == 200
    for _ in range(downloads):
        assert api.client.get(f"{path}/download", headers=api.headers(user)).status_code == 200


def _usage(api: Api, user: str, document_id: str) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/documents/{document_id}/usage", headers=api.headers(user))
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()
    return usage


def _counts(usage: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(row["name"], row["views"], row["downloads"]) for row in usage["departments"]]


def test_usage_counts_views_and_downloads_per_department(api: Api) -> None:
    _add_reader(api, "poverty2", POVERTY)
    _add_reader(api, "farmer", FARMING)
    document = _upload(api, "扶贫总结", visibility="restricted", departments=f"{POVERTY},{FARMING}")
    other = _upload(api, "会议纪要")
    _use(api, "poverty", document, views=2, downloads=1)
    _use(api, "poverty2", document, views=1, downloads=1)
    _use(api, "farmer", document, views=1)
    # Not uses by a department: another document, the township itself, an auditor, a refusal.
    _use(api, "poverty", other, views=1, downloads=1)
    _use(api, "east", document, views=1, downloads=1)
    _use(api, "auditor", document, views=1)
    hidden = api.client.get(f"/api/v1/documents/{document}", headers=api.headers("stats"))
    assert hidden.status_code == 404

    usage = _usage(api, "east", document)

    assert _counts(usage) == [(FARMING, 1, 0), (POVERTY, 3, 2)]
    assert usage["reuse_count"] == 1
    for row in usage["departments"]:
        assert set(row) == {"name", "views", "downloads", "first_at", "last_at"}
        first, last = (
            datetime.fromisoformat(row["first_at"]),
            datetime.fromisoformat(row["last_at"]),
        )
        assert first.tzinfo is not None
        assert first <= last
    # Per department, never per reader.
    for username in ("poverty", "poverty2", "farmer"):
        assert username not in str(usage)
    assert _usage(api, "auditor", document) == usage


def test_reuse_count_is_the_number_of_departments_that_downloaded(api: Api) -> None:
    document = _upload(api, "统计年报")
    _use(api, "poverty", document, downloads=3)
    _use(api, "stats", document, views=2, downloads=1)

    usage = _usage(api, "east2", document)

    assert _counts(usage) == [(POVERTY, 0, 3), ("统计局", 2, 1)]
    assert usage["reuse_count"] == 2


def test_an_unused_document_has_no_usage(api: Api) -> None:
    document = _upload(api, "新材料")

    assert _usage(api, "east", document) == {"departments": [], "reuse_count": 0}


def test_reading_usage_is_audited_and_is_no_use_itself(api: Api, backends: Backends) -> None:
    document = _upload(api, "工作留痕")
    _use(api, "poverty", document, views=1)

    first = _usage(api, "east", document)
    assert _usage(api, "east", document) == first

    with backends.db.session() as session:
        reads = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == AuditAction.usage_read.value,
                    AuditEvent.document_id == document,
                )
            )
        )
    assert [(event.actor, event.outcome) for event in reads] == [("east", "allowed")] * 2
