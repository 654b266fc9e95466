"""The access log through the API: verification names tampering, events show their leaves,
receipts carry their proofs, concurrent writers leave a gapless log, and the auditor's export is
an Excel-safe CSV whose cells can neither forge a record nor run as a formula.

The attacks themselves, on both databases, are in tests/contract/test_audit_log.py.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text

from services.audit import (
    ACTOR_ROLE_NAMES,
    CSV_COLUMNS,
    CSV_HEADINGS,
    Actor,
    AuditAction,
    Outcome,
    actor_label,
    event_time,
)
from services.audit_archive import LEAF_FIELDS
from services.audit_keys import load_verifier
from services.audit_sequencer import AuditSequencer
from services.audit_verify import VerifyReport, verify_log, verify_receipt
from services.audit_words import WORDED_CSV_HEADINGS, details_in_words
from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import Api
from tests.samples import text_bytes

CHINA = timezone(timedelta(hours=8))
NEWLINE_USERNAME = "x\n9999,forged"
FORMULA_USERNAME = "=cmd|' /C calc'!A0"


# ---------------------------------------------------------------- helpers


def make_activity(api: Api) -> list[str]:
    """Logins, uploads and views through the API; the uploaded document ids."""
    document_ids = []
    for number, username in enumerate(("east", "west", "east2")):
        response = api.upload(
            username, f"材料{number}.txt", text_bytes(f"第{number}份材料：扶贫工作总结。")
        )
        assert response.status_code == 201, response.text
        document_ids.append(response.json()["id"])
    for username, document_id in (
        ("poverty", document_ids[0]),
        ("poverty", document_ids[1]),
        ("stats", document_ids[1]),
    ):
        response = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers(username))
        assert response.status_code == 200, response.text
    return document_ids


def rows(backends: Backends) -> list[AuditEvent]:
    with backends.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def sequence(backends: Backends) -> int:
    """What the sequencer thread does in a running app: number, grow the tree, sign."""
    return AuditSequencer(backends.db, backends.settings, backends.blobs).drain()


def verify(backends: Backends) -> VerifyReport:
    return verify_log(backends.db, backends.blobs, load_verifier(backends.settings))


def verify_via_api(api: Api) -> dict[str, Any]:
    response = api.client.get("/api/v1/audit/verify", headers=api.headers("auditor"))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def assert_gapless(backends: Backends) -> list[AuditEvent]:
    """Every event has exactly one leaf, numbered 1..n, and the log verifies."""
    sequence(backends)
    events = rows(backends)
    assert sorted(event.seq or 0 for event in events) == list(range(1, len(events) + 1))
    report = verify(backends)
    assert (report.ok, report.events) == (True, len(events)), report.as_dict()
    return events


# ---------------------------------------------------------------- the log through the API


def test_the_log_verifies_through_the_api_and_names_an_edited_event(
    api: Api, backends: Backends
) -> None:
    make_activity(api)
    api.headers("auditor")  # the auditor's login, before the log is sequenced and signed
    events = assert_gapless(backends)
    via_api = verify_via_api(api)
    assert via_api["ok"] is True, via_api
    assert via_api["events"] == len(events)
    assert via_api["checkpoints"] >= 1
    assert via_api["latest_checkpoint"] == len(events)

    # An insider edits an upload event in the database, guards switched off.
    upload = next(event for event in events if event.action == "upload")
    with backends.db.session() as session:
        session.execute(text("DROP TRIGGER audit_events_no_update"))
        session.execute(
            text("UPDATE audit_events SET actor = 'west' WHERE id = :id"), {"id": upload.id}
        )
    via_api = verify_via_api(api)
    assert via_api["ok"] is False
    assert (via_api["first_bad_seq"], via_api["reason"]) == (upload.seq, "leaf_mismatch")
    assert via_api["detail"]


def test_events_show_their_place_in_the_tree_once_sequenced(api: Api, backends: Backends) -> None:
    make_activity(api)
    pending = api.client.get("/api/v1/audit/events", headers=api.headers("auditor")).json()
    assert all(event["seq"] is None for event in pending["events"])
    assert all(event["leaf_hash"] is None for event in pending["events"])
    sequence(backends)
    listed = api.client.get("/api/v1/audit/events", headers=api.headers("auditor")).json()
    sequenced = [event for event in listed["events"] if event["seq"] is not None]
    assert sequenced, listed
    for event in sequenced:
        assert event["leaf_index"] == event["seq"] - 1
        fields = {key: event[key] for key in (*LEAF_FIELDS, "details")}
        leaf_bytes = json.dumps(
            fields, sort_keys=True, ensure_ascii=False, separators=(",", ":")
        ).encode()
        digest = hashlib.sha256(b"\x00" + leaf_bytes).digest()
        assert event["leaf_hash"] == base64.b64encode(digest).decode()
        assert event["hash"] == digest.hex()


def test_auditor_verify_is_itself_audited_and_admin_is_refused(
    api: Api, backends: Backends
) -> None:
    make_activity(api)
    refused = api.client.get("/api/v1/audit/verify", headers=api.headers("admin"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "audit_not_allowed"
    verify_via_api(api)
    events = rows(backends)
    assert [(e.actor, e.action, e.outcome) for e in events[-4:]] == [
        ("admin", "login", "allowed"),
        ("admin", "audit_verify", "denied"),
        ("auditor", "login", "allowed"),
        ("auditor", "audit_verify", "allowed"),
    ]


# ---------------------------------------------------------------- receipts


def test_receipt_points_at_the_upload_event(api: Api, backends: Backends) -> None:
    document = api.upload("east", "收据测试.txt", text_bytes("收据测试")).json()
    api.upload("west", "别的.txt", text_bytes("别的材料"))
    url = f"/api/v1/documents/{document['id']}/receipt"
    pending = api.client.get(url, headers=api.headers("east")).json()
    assert pending["pending"] is True
    assert (pending["audit_seq"], pending["audit_hash"], pending["event"]) == (None, None, None)

    sequence(backends)
    receipt = api.client.get(url, headers=api.headers("east"))
    assert receipt.status_code == 200, receipt.text
    body = receipt.json()
    upload_events = [
        e
        for e in rows(backends)
        if e.action == "upload" and e.document_id == document["id"] and e.outcome == "allowed"
    ]
    assert len(upload_events) == 1
    (event,) = upload_events
    assert event.leaf is not None
    assert body["pending"] is False
    assert (body["audit_seq"], body["audit_hash"]) == (event.seq, event.leaf.leaf_hash.hex())
    assert body["event"]["seq"] == event.seq
    assert body["inclusion_proof"]["leaf_index"] == event.seq - 1
    assert body["sha256"] == document["sha256"] == event.details["sha256"]
    assert body["uploaded_by"] == "east"
    assert body["township"]["name"] == "东镇"
    verifier = load_verifier(backends.settings)
    assert verifier is not None
    assert verify_receipt(body, verifier).seq == event.seq

    # A duplicate upload does not move the receipt.
    again = api.upload("east", "收据测试.txt", text_bytes("收据测试"))
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    receipt_again = api.client.get(url, headers=api.headers("east")).json()
    assert (receipt_again["audit_seq"], receipt_again["audit_hash"]) == (
        body["audit_seq"],
        body["audit_hash"],
    )


# ---------------------------------------------------------------- concurrency


@pytest.mark.slow
def test_concurrent_uploads_and_reads_keep_the_log_gapless(api: Api, backends: Backends) -> None:
    uploaders = ("east", "east2", "west")
    for username in (*uploaders, "poverty", "stats"):
        api.headers(username)  # log in before the threads start
    seed = api.upload("west", "种子.txt", text_bytes("种子材料")).json()
    start = threading.Barrier(26)

    def upload(number: int) -> tuple[int, dict[str, Any]]:
        username = uploaders[number % len(uploaders)]
        start.wait(timeout=30)
        response = api.upload(username, f"并发{number}.txt", text_bytes(f"并发上传第{number}份"))
        return response.status_code, response.json()

    def read(number: int) -> int:
        username = ("poverty", "stats")[number % 2]
        start.wait(timeout=30)
        if number % 3 == 0:
            response = api.client.get("/api/v1/documents", headers=api.headers(username))
        else:
            response = api.client.get(
                f"/api/v1/documents/{seed['id']}", headers=api.headers(username)
            )
        return response.status_code

    with ThreadPoolExecutor(max_workers=26) as pool:
        uploads = [pool.submit(upload, number) for number in range(20)]
        reads = [pool.submit(read, number) for number in range(6)]
        results = [future.result(timeout=120) for future in uploads]
        read_statuses = [future.result(timeout=120) for future in reads]

    assert [status for status, _ in results] == [201] * 20, results
    assert read_statuses == [200] * 6
    events = assert_gapless(backends)

    by_id = {e.document_id: e for e in events if e.action == "upload" and e.outcome == "allowed"}
    assert len({body["id"] for _, body in results}) == 20
    for _, body in results:
        receipt = api.client.get(
            f"/api/v1/documents/{body['id']}/receipt",
            headers=api.headers(body["uploaded_by"]),
        ).json()
        assert receipt["audit_seq"] == by_id[body["id"]].seq


@pytest.mark.slow
def test_concurrent_identical_uploads_store_one_document(api: Api, backends: Backends) -> None:
    api.headers("east")
    api.headers("east2")
    start = threading.Barrier(10)
    content = text_bytes("同一份材料，同时上传十次。")

    def upload(number: int) -> tuple[int, dict[str, Any]]:
        start.wait(timeout=30)
        response = api.upload(("east", "east2")[number % 2], "同一份.txt", content)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = [f.result(timeout=120) for f in [pool.submit(upload, n) for n in range(10)]]

    assert sorted(status for status, _ in results) == [200] * 9 + [201]
    assert len({body["id"] for _, body in results}) == 1
    assert sum(body["duplicate"] for _, body in results) == 9
    assert_gapless(backends)


# ---------------------------------------------------------------- reading and exporting


def _failed_login(api: Api, username: str) -> None:
    response = api.client.post(
        "/api/v1/auth/token", data={"username": username, "password": "wrong-password"}
    )
    assert response.status_code == 401


def _export(api: Api, **params: str) -> tuple[bytes, list[list[str]]]:
    response = api.client.get(
        "/api/v1/audit/export.csv", headers=api.headers("auditor"), params=params
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    body = response.content
    records = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    return body, records


def test_export_is_excel_safe_utf8_csv(api: Api, backends: Backends) -> None:
    make_activity(api)
    _failed_login(api, NEWLINE_USERNAME)
    _failed_login(api, FORMULA_USERNAME)

    body, records = _export(api)
    assert body.startswith(b"\xef\xbb\xbf")
    header, *data = records
    assert tuple(header) == CSV_COLUMNS
    # Every event before the export is one record; the export's own event is logged (before
    # the rows are read) but is not a row of the file.
    *events, own = rows(backends)
    assert own.action == "audit_export"
    assert len(data) == len(events)
    assert all(len(record) == len(CSV_COLUMNS) for record in data)
    assert [record[1] for record in data] == [event_time(e.at) for e in reversed(events)]
    assert "9999" not in [record[0] for record in data]

    column = {name: index for index, name in enumerate(CSV_COLUMNS)}
    actors = [record[column["actor"]] for record in data]
    assert NEWLINE_USERNAME in actors
    assert "'" + FORMULA_USERNAME in actors
    assert FORMULA_USERNAME not in actors
    for record in data:
        for cell in record:
            assert cell[:1] not in ("=", "+", "-", "@"), record

    # Chinese stays Chinese: org names and file names in the details.
    assert "东镇" in [record[column["org"]] for record in data]
    assert any("材料0.txt" in record[column["details"]] for record in data)


def test_export_for_people_says_names_and_beijing_time(api: Api, backends: Backends) -> None:
    make_activity(api)
    _, coded = _export(api, action="upload", outcome="allowed")
    _, worded = _export(api, action="upload", outcome="allowed", labels="zh")
    # The same columns, and the document's title and township before its number.
    assert tuple(worded[0]) == WORDED_CSV_HEADINGS
    assert [name for name in worded[0] if name not in ("材料名称", "材料所属乡镇")] == list(
        CSV_HEADINGS
    )
    assert len(worded) == len(coded) == 4
    townships = {"east": "东镇", "west": "西乡", "east2": "东镇"}
    for code_row, word_row in zip(coded[1:], worded[1:], strict=True):
        at = datetime.fromisoformat(code_row[1]).astimezone(timezone(timedelta(hours=8)))
        assert word_row[1] == at.strftime("%Y-%m-%d %H:%M:%S")
        details = json.loads(code_row[9])
        title = details["filename"].removesuffix(".txt")
        assert word_row[4:10] == [
            "乡镇工作人员",
            "上传",
            title,
            townships[code_row[2]],
            code_row[6],
            "允许",
        ]
        # What identifies the event stays as it is: sequence number and hash; details in words.
        assert (word_row[0], word_row[12]) == (code_row[0], code_row[10])
        assert word_row[11] == details_in_words(details)
        assert word_row[11].startswith(f"文件名: {details['filename']}")
        # The file's type in words, where the coded row keeps the recorded MIME type.
        assert details["content_type"] == "text/plain"
        assert "文件类型: 文本文件" in word_row[11]
    refused = api.client.get(
        "/api/v1/audit/export.csv", headers=api.headers("auditor"), params={"labels": "fr"}
    )
    assert refused.status_code == 422


def test_export_takes_the_same_filters(api: Api) -> None:
    make_activity(api)
    _failed_login(api, NEWLINE_USERNAME)
    _, records = _export(api, actor=NEWLINE_USERNAME)
    assert len(records) == 2
    assert records[1][2] == NEWLINE_USERNAME
    _, records = _export(api, action="upload", outcome="allowed")
    assert len(records) == 4
    assert {record[5] for record in records[1:]} == {"upload"}


def test_admin_and_reader_cannot_read_or_export(api: Api) -> None:
    for username in ("admin", "poverty", "east"):
        for path in ("/api/v1/audit/events", "/api/v1/audit/export.csv"):
            response = api.client.get(path, headers=api.headers(username))
            assert response.status_code == 403, (username, path)
            assert response.json()["error"]["code"] == "audit_not_allowed"


def _events(api: Api, **params: Any) -> dict[str, Any]:
    response = api.client.get("/api/v1/audit/events", headers=api.headers("auditor"), params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_event_filters(api: Api, backends: Backends) -> None:
    document_ids = make_activity(api)
    _failed_login(api, NEWLINE_USERNAME)
    _failed_login(api, "west")
    download = api.client.get(
        f"/api/v1/documents/{document_ids[0]}/download", headers=api.headers("stats")
    )
    assert download.status_code == 200

    west = _events(api, actor="west")
    assert west["total"] == 3
    assert [(e["action"], e["outcome"]) for e in west["events"]] == [
        ("login", "denied"),
        ("upload", "allowed"),
        ("login", "allowed"),
    ]
    assert west["events"][1]["org"] == "西乡"

    odd = _events(api, actor=NEWLINE_USERNAME)
    assert odd["total"] == 1
    assert odd["events"][0]["details"] == {"reason": "unknown_user"}

    denied_logins = _events(api, action="login", outcome="denied")
    assert denied_logins["total"] == 2
    assert {e["actor"] for e in denied_logins["events"]} == {NEWLINE_USERNAME, "west"}

    about_document = _events(api, document_id=document_ids[0])
    assert [e["action"] for e in about_document["events"]] == ["download", "view", "upload"]
    assert {e["document_id"] for e in about_document["events"]} == {document_ids[0]}

    invalid = api.client.get(
        "/api/v1/audit/events", headers=api.headers("auditor"), params={"outcome": "maybe"}
    )
    assert invalid.status_code == 422


def test_org_filter_reads_and_exports_one_organisation(api: Api, backends: Backends) -> None:
    make_activity(api)
    _failed_login(api, "west")

    east = _events(api, org="东镇", size=500)
    assert east["total"] == 4
    assert {e["org"] for e in east["events"]} == {"东镇"}
    assert {e["actor"] for e in east["events"]} == {"east", "east2"}
    assert {e["action"] for e in east["events"]} == {"login", "upload"}

    # Combined with the other filters; the name must match exactly.
    uploads = _events(api, org="东镇", action="upload")
    assert [e["actor"] for e in uploads["events"]] == ["east2", "east"]
    assert _events(api, org="东")["total"] == 0
    # A known user's failed login counts for their organisation too.
    west = _events(api, org="西乡")["events"]
    assert [(e["action"], e["outcome"]) for e in west] == [
        ("login", "denied"),
        ("upload", "allowed"),
        ("login", "allowed"),
    ]

    _, records = _export(api, org="西乡")
    column = {name: index for index, name in enumerate(CSV_COLUMNS)}
    assert len(records) == 1 + 3
    assert {record[column["org"]] for record in records[1:]} == {"西乡"}

    # The auditor's reads record the organisation they filtered by.
    reads = [e for e in rows(backends) if e.action in ("audit_read", "audit_export")]
    assert reads[-1].details["filters"] == {"org": "西乡"}
    assert reads[0].details["filters"] == {"org": "东镇"}

    too_long = api.client.get(
        "/api/v1/audit/events", headers=api.headers("auditor"), params={"org": "镇" * 101}
    )
    assert too_long.status_code == 422


def test_time_filters_take_offsets(api: Api, backends: Backends) -> None:
    make_activity(api)
    events = rows(backends)
    middle = events[len(events) // 2]
    later = events[len(events) // 2 + 2]
    # The same instants, written in China Standard Time.
    since = middle.at.astimezone(CHINA).isoformat()
    until = later.at.astimezone(CHINA).isoformat()
    assert since.endswith("+08:00")

    moments = [event_time(e.at) for e in events]
    at = len(events) // 2
    window = _events(api, since=since, until=until)
    assert [e["at"] for e in window["events"]] == moments[at + 2 : at - 1 : -1]
    assert window["total"] == 3

    before = _events(api, until=middle.at.astimezone(CHINA).isoformat(), size=500)
    assert [e["at"] for e in before["events"]] == moments[at::-1]

    # A UTC "Z" works too, and the boundary is inclusive.
    exactly = _events(
        api,
        since=middle.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        until=middle.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    )
    assert [e["at"] for e in exactly["events"]] == [event_time(middle.at)]

    future = datetime.now(CHINA) + timedelta(days=1)
    assert _events(api, since=future.isoformat())["total"] == 0

    for params in (
        {"since": "2026-01-01T00:00:00"},  # no offset: ambiguous
        {"since": until, "until": since},  # reversed
        {"since": "yesterday"},
    ):
        response = api.client.get(
            "/api/v1/audit/events", headers=api.headers("auditor"), params=params
        )
        assert response.status_code == 422, (params, response.text)
        assert "error" in response.json()


def test_pagination_is_newest_first_and_capped(api: Api, backends: Backends) -> None:
    make_activity(api)
    first = _events(api, size=5)
    total_now = len(rows(backends))
    # The read is logged before the page is taken, so it is on the page itself.
    assert first["total"] == total_now
    assert first["size"] == 5
    assert first["events"][0]["action"] == "audit_read"
    newest_first = [event_time(e.at) for e in reversed(rows(backends))]
    assert [e["at"] for e in first["events"]] == newest_first[:5]

    second = _events(api, size=5, page=2)
    # One more audit_read was appended in between, so page 2 starts one later than before.
    newest_first = [event_time(e.at) for e in reversed(rows(backends))]
    assert [e["at"] for e in second["events"]] == newest_first[5:10]

    sequence(backends)
    all_events = _events(api, size=500)
    assert all_events["total"] == len(all_events["events"]) == len(rows(backends))
    # All but the read itself were sequenced before it: numbered newest first down to 1.
    seqs = [e["seq"] for e in all_events["events"][1:]]
    assert seqs == list(range(all_events["total"] - 1, 0, -1))
    stored = {e.seq: e.leaf.leaf_hash.hex() for e in rows(backends) if e.leaf}
    assert all(stored[e["seq"]] == e["hash"] for e in all_events["events"][1:])

    for size in (0, 501):
        response = api.client.get(
            "/api/v1/audit/events", headers=api.headers("auditor"), params={"size": size}
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_field"

    beyond = _events(api, page=1000)
    assert beyond["events"] == []
    assert beyond["total"] > 0


@pytest.mark.slow
def test_page_size_is_capped_at_500(api: Api, backends: Backends) -> None:
    # Denied reads by an unauthenticated caller no longer fill the log (a burst of them is one
    # event with a count, see test_login_protection.py): the log is filled directly.
    with backends.db.session() as session:
        for number in range(520):
            backends.audit.append(
                session,
                actor=Actor(username=f"reader{number}"),
                action=AuditAction.search,
                outcome=Outcome.allowed,
            )
    page = _events(api, size=500)
    assert page["total"] == len(rows(backends))
    assert page["total"] > 500
    assert len(page["events"]) == 500


def test_jobs_commands_and_empty_values_are_said_in_words() -> None:
    assert actor_label("system:due-dates") == "系统任务（到期提醒）"
    assert actor_label("cli:demo") == "服务器命令行（demo）"
    assert actor_label("east") == "east"  # an account's username stays as it is
    assert ACTOR_ROLE_NAMES["system"] == "系统"
    assert ACTOR_ROLE_NAMES["uploader"] == "乡镇工作人员"
    assert details_in_words({"reason": "", "role": "system"}) == "原因: 无; 角色: 系统"
