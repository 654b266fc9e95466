"""The auditor's CSV export holds the log as it was before the export: its own event, logged
before a row is read and not numbered yet, is never a half-empty first row of the file. The export
for people names every document by title and township, those a search showed too."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

from sqlalchemy import event, select

from indexer.worker import IndexWorker
from services.audit import CSV_COLUMNS, Actor, AuditAction, Outcome
from services.audit_words import WORDED_CSV_HEADINGS
from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import EAST, WEST, Api
from tests.samples import text_bytes
from tests.test_audit_chain import make_activity, sequence

COLUMN = {name: index for index, name in enumerate(CSV_COLUMNS)}


def _export(api: Api, **params: str) -> list[list[str]]:
    response = api.client.get(
        "/api/v1/audit/export.csv", headers=api.headers("auditor"), params=params
    )
    assert response.status_code == 200, response.text
    header, *data = csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline=""))
    # For people, the document's title and township come before its number.
    assert tuple(header) == (WORDED_CSV_HEADINGS if params.get("labels") else CSV_COLUMNS)
    return data


def _activity_numbered(api: Api, backends: Backends) -> None:
    """Uploads and views, the auditor signed in, and all of it numbered by the sequencer."""
    make_activity(api)
    api.headers("auditor")
    sequence(backends)


def _events(backends: Backends) -> list[AuditEvent]:
    with backends.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _exports(backends: Backends) -> list[AuditEvent]:
    return [event for event in _events(backends) if event.action == "audit_export"]


def test_the_export_holds_the_log_as_it_was_before_it(api: Api, backends: Backends) -> None:
    _activity_numbered(api, backends)
    before = _events(backends)

    data = _export(api)

    # Every row is a numbered event with its hash, the same events in the same order.
    assert [int(record[COLUMN["seq"]]) for record in data] == [
        event.leaf.seq for event in reversed(before) if event.leaf is not None
    ]
    assert len(data) == len(before)
    assert all(record[COLUMN["seq"]] and record[COLUMN["hash"]] for record in data)
    assert "audit_export" not in [record[COLUMN["action"]] for record in data]

    # The export itself is still logged, once, by the auditor, with the filters it used.
    after = _events(backends)
    assert [event.id for event in after[: len(before)]] == [event.id for event in before]
    (own,) = after[len(before) :]
    assert (own.action, own.outcome, own.actor) == ("audit_export", "allowed", "auditor")
    assert own.details == {"filters": {}}


def test_the_next_export_shows_the_one_before_it(api: Api, backends: Backends) -> None:
    make_activity(api)
    _export(api, labels="zh")
    sequence(backends)

    data = _export(api)
    actions = [record[COLUMN["action"]] for record in data]
    assert actions.count("audit_export") == 1
    first = data[0]
    assert first[COLUMN["action"]] == "audit_export"
    assert first[COLUMN["seq"]]
    assert first[COLUMN["hash"]]
    assert len(_exports(backends)) == 2


def test_a_filtered_export_in_words_leaves_out_its_own_event(api: Api, backends: Backends) -> None:
    _activity_numbered(api, backends)
    data = _export(api, actor="auditor", labels="zh")
    assert data, "the auditor's sign-in"
    assert "审计导出" not in [record[COLUMN["action"]] for record in data]
    assert all(record[COLUMN["seq"]] for record in data)
    data = _export(api, action="audit_export")
    assert len(data) == 1  # the one before, not this one
    assert len(_exports(backends)) == 2


def test_refusals_counted_before_the_export_are_in_it(api: Api, backends: Backends) -> None:
    def failed_login() -> Any:
        response = api.client.post(
            "/api/v1/auth/token", data={"username": "nobody", "password": "wrong-password"}
        )
        assert response.status_code == 401

    for _ in range(3):
        failed_login()

    data = _export(api, actor="nobody")
    # The first refusal as it came, then the burst summed up (written before the export).
    assert len(data) == 2
    details = [record[COLUMN["details"]] for record in data]
    assert any('"count": 3' in cell for cell in details), details


def _upload(api: Api, username: str, title: str) -> str:
    response = api.upload(username, f"{title}.txt", text_bytes(f"{title}：扶贫资金。"), title=title)
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def _details(rows: list[list[str]], heading: str) -> list[str]:
    return [row[WORDED_CSV_HEADINGS.index(heading)] for row in rows]


def test_the_export_for_people_names_the_documents_a_search_showed(
    api: Api, backends: Backends
) -> None:
    ledger = _upload(api, "east", "危房改造台账")
    summary = _upload(api, "west", "扶贫工作总结")
    IndexWorker(backends, backends.index).drain()
    found = api.client.get(
        "/api/v1/search", params={"q": "扶贫资金"}, headers=api.headers("poverty")
    )
    assert found.status_code == 200, found.text
    assert found.json()["total"] == 2

    worded = _export(api, action="search", labels="zh")
    (details,) = _details(worded, "详情")
    # Each by its title and township, not by number.
    for named in ("《危房改造台账》（东镇）", "《扶贫工作总结》（西乡）"):
        assert named in details, details
    assert details.count("涉及材料: ") == 1
    assert ledger not in details
    assert summary not in details
    # The coded export keeps the numbers exactly as recorded.
    (coded,) = _export(api, action="search")
    recorded = json.loads(coded[COLUMN["details"]])
    assert sorted(recorded["document_ids"]) == sorted([ledger, summary])
    assert "危房改造台账" not in coded[COLUMN["details"]]

    # Withdrawn since: still named, and said to be withdrawn.
    withdrawn = api.client.delete(f"/api/v1/documents/{ledger}", headers=api.headers("east"))
    assert withdrawn.status_code in (200, 204), withdrawn.text
    (details,) = _details(_export(api, action="search", labels="zh"), "详情")
    assert f"《危房改造台账》（{EAST}，已撤回）" in details
    assert f"《扶贫工作总结》（{WEST}）" in details


def test_a_number_without_a_document_stays_a_number(api: Api, backends: Backends) -> None:
    kept = _upload(api, "east", "城关镇11月台账")
    gone = str(uuid.uuid4())
    backends.audit.record(
        actor=Actor("chengguan", EAST, "uploader"),
        action=AuditAction.request_accept,
        outcome=Outcome.allowed,
        details={"document_ids": [gone, kept]},
    )
    (details,) = _details(_export(api, action="request_accept", labels="zh"), "详情")
    assert details == f"涉及材料: {gone}、《城关镇11月台账》（{EAST}）"


def test_the_export_for_people_looks_documents_up_once_for_many_rows(
    api: Api, backends: Backends
) -> None:
    for number in range(3):
        _upload(api, "east", f"台账{number}")
    IndexWorker(backends, backends.index).drain()
    for _ in range(4):
        searched = api.client.get(
            "/api/v1/search", params={"q": "台账"}, headers=api.headers("poverty")
        )
        assert searched.status_code == 200, searched.text
    api.headers("auditor")

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM documents" in statement:
            statements.append(statement)

    event.listen(backends.db.engine, "before_cursor_execute", count)
    try:
        data = _export(api, labels="zh")
    finally:
        event.remove(backends.db.engine, "before_cursor_execute", count)
    assert len(data) > 4 + 3  # the uploads, the searches, the sign-ins
    assert len(statements) == 1, statements  # every row's documents at once, not row by row
    for details in _details(data, "详情"):
        assert "涉及材料: " not in details or "《台账0》（东镇）" in details
