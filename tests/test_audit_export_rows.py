"""The auditor's CSV export holds the log as it was before the export: its own event, logged
before a row is read and not numbered yet, is never a half-empty first row of the file."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select

from services.audit import CSV_COLUMNS
from services.audit_words import WORDED_CSV_HEADINGS
from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import Api
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
