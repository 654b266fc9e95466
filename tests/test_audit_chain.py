"""The access log is a hash chain: any edit, deletion or insertion is named by seq on verify.

Also: concurrent writers keep the chain gapless, receipts point into it, and the auditor's export
is an Excel-safe CSV whose cells can neither forge a record nor run as a formula.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from services.audit import (
    CSV_COLUMNS,
    CSV_HEADINGS,
    GENESIS_HASH,
    Actor,
    AuditAction,
    Outcome,
    chain_hash,
)
from services.audit_words import details_in_words
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
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def execute(backends: Backends, sql: str, **params: Any) -> None:
    with backends.db.engine.begin() as connection:
        connection.execute(text(sql), params)


def verify_via_api(api: Api) -> dict[str, Any]:
    response = api.client.get("/api/v1/audit/verify", headers=api.headers("auditor"))
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def assert_broken_at(backends: Backends, api: Api, seq: int, reason: str) -> None:
    report = backends.audit.verify()
    assert (report.ok, report.first_bad_seq, report.reason) == (False, seq, reason)
    # The auditor's own login and read are appended after the damage; it is still named.
    via_api = verify_via_api(api)
    assert via_api["ok"] is False
    assert via_api["first_bad_seq"] == seq
    assert via_api["reason"] == reason


def forged_copy(event: AuditEvent, **changes: Any) -> AuditEvent:
    """A detached event with the same fields as ``event`` but its hash, except ``changes``."""
    fields = {
        column.key: getattr(event, column.key)
        for column in inspect(AuditEvent).column_attrs
        if column.key != "hash"
    }
    return AuditEvent(**{**fields, **changes})


@pytest.fixture
def chain(api: Api, backends: Backends) -> list[AuditEvent]:
    """An untampered chain of at least ten events."""
    make_activity(api)
    events = rows(backends)
    assert len(events) >= 10
    return events


# ---------------------------------------------------------------- an intact chain


def test_untampered_chain_verifies_with_count_and_head(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    report = backends.audit.verify()
    assert report.ok is True
    assert report.events == len(chain)
    assert report.head == chain[-1].hash
    assert [event.seq for event in chain] == list(range(1, len(chain) + 1))
    assert chain[0].prev_hash == GENESIS_HASH
    for previous, event in itertools.pairwise(chain):
        assert event.prev_hash == previous.hash
        assert event.hash == chain_hash(previous.hash, event)

    via_api = verify_via_api(api)
    # The auditor's login happened before the verification, the verification event after it.
    everything = rows(backends)
    assert via_api["ok"] is True
    assert via_api["events"] == len(everything) - 1
    assert via_api["head"] == everything[-2].hash
    assert everything[-1].action == "audit_verify"
    assert backends.audit.verify().events == len(everything)


def test_empty_log_verifies_at_genesis(backends: Backends) -> None:
    report = backends.audit.verify()
    assert (report.ok, report.events, report.head) == (True, 0, GENESIS_HASH)


# ---------------------------------------------------------------- tampering


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "mallory"),
        ("details", '{"reason": "nothing to see"}'),
        ("outcome", "denied"),
        ("role", "admin"),
        ("document_id", "00000000-0000-0000-0000-000000000000"),
        ("at", "2020-01-01 00:00:00.000000"),
    ],
)
def test_edited_event_is_named(
    chain: list[AuditEvent], backends: Backends, api: Api, column: str, value: Any
) -> None:
    assert getattr(chain[4], column) != value
    execute(backends, f"UPDATE audit_events SET {column} = :value WHERE seq = 5", value=value)
    assert_broken_at(backends, api, 5, "content_changed")


def test_edited_hash_is_named(chain: list[AuditEvent], backends: Backends, api: Api) -> None:
    execute(backends, "UPDATE audit_events SET hash = :h WHERE seq = 5", h="f" * 64)
    assert_broken_at(backends, api, 5, "content_changed")


def test_deleted_event_is_named(chain: list[AuditEvent], backends: Backends, api: Api) -> None:
    execute(backends, "DELETE FROM audit_events WHERE seq = 4")
    assert_broken_at(backends, api, 4, "missing")


def test_deleted_first_event_is_named(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    execute(backends, "DELETE FROM audit_events WHERE seq = 1")
    assert_broken_at(backends, api, 1, "missing")


def test_deleted_last_event_goes_unnoticed_by_the_chain_alone(
    chain: list[AuditEvent], backends: Backends
) -> None:
    """Truncating the tail leaves a valid, shorter chain: only a recorded head reveals it."""
    execute(backends, "DELETE FROM audit_events WHERE seq = :seq", seq=chain[-1].seq)
    report = backends.audit.verify()
    assert report.ok is True
    assert report.events == len(chain) - 1
    assert report.head == chain[-2].hash != chain[-1].hash


def _insert(backends: Backends, event: AuditEvent, hash_: str) -> None:
    execute(
        backends,
        "INSERT INTO audit_events (seq, at, actor, org, role, action, document_id, outcome, ip,"
        " details, prev_hash, hash) VALUES (:seq, :at, :actor, :org, :role, :action,"
        " :document_id, :outcome, :ip, :details, :prev_hash, :hash)",
        seq=event.seq,
        at=event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        actor=event.actor,
        org=event.org,
        role=event.role,
        action=event.action,
        document_id=event.document_id,
        outcome=event.outcome,
        ip=event.ip,
        details="{}",
        prev_hash=event.prev_hash,
        hash=hash_,
    )


def test_forged_last_event_with_a_plausible_hash_is_named(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    last = chain[-1]
    forged = forged_copy(
        last, seq=last.seq + 1, actor="mallory", action="download", details={}, prev_hash=last.hash
    )
    plausible = hashlib.sha256(b"looks like a hash").hexdigest()
    _insert(backends, forged, plausible)
    assert_broken_at(backends, api, last.seq + 1, "content_changed")


def test_forged_last_event_with_a_broken_link_is_named(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    last = chain[-1]
    forged = forged_copy(last, seq=last.seq + 1, details={}, prev_hash=chain[-2].hash)
    _insert(backends, forged, chain_hash(chain[-2].hash, forged))
    assert_broken_at(backends, api, last.seq + 1, "broken_link")


def test_forged_event_before_the_first_is_named(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    forged = forged_copy(chain[0], seq=0, actor="mallory", details={}, prev_hash=GENESIS_HASH)
    _insert(backends, forged, chain_hash(GENESIS_HASH, forged))
    # The inserted event is named, not the intact seq 1 after it.
    assert_broken_at(backends, api, 0, "out_of_order")


def _make_room_at(backends: Backends, seq: int) -> None:
    # Two steps, because SQLite checks the primary key row by row during an UPDATE.
    execute(backends, "UPDATE audit_events SET seq = -seq WHERE seq >= :seq", seq=seq)
    execute(backends, "UPDATE audit_events SET seq = 1 - seq WHERE seq < 0")


def test_event_inserted_in_the_middle_with_a_garbage_hash_is_named(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    _make_room_at(backends, 4)
    forged = forged_copy(chain[3], actor="mallory", details={}, prev_hash=chain[2].hash)
    _insert(backends, forged, "a" * 64)
    assert_broken_at(backends, api, 4, "content_changed")


def test_correctly_hashed_insertion_in_the_middle_breaks_the_next_link(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    """A forger who hashes the inserted event right still cannot re-link the one after it."""
    _make_room_at(backends, 4)
    forged = forged_copy(chain[3], actor="mallory", details={}, prev_hash=chain[2].hash)
    _insert(backends, forged, chain_hash(chain[2].hash, forged))
    # seq 4 fits its predecessor; the original 4th event, now seq 5, still links to seq 3.
    assert_broken_at(backends, api, 5, "broken_link")


def test_edit_with_recomputed_own_hash_breaks_the_next_link(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    original = chain[4]
    forged = forged_copy(original, actor="mallory")
    new_hash = chain_hash(original.prev_hash, forged)
    assert new_hash != original.hash
    execute(
        backends,
        "UPDATE audit_events SET actor = 'mallory', hash = :h WHERE seq = 5",
        h=new_hash,
    )
    # Seq 5 is internally consistent now, so verification names seq 6, whose link points at
    # the old hash.
    assert_broken_at(backends, api, 6, "broken_link")


def test_renumbering_to_hide_a_deletion_is_named(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
    execute(backends, "DELETE FROM audit_events WHERE seq = 4")
    execute(backends, "UPDATE audit_events SET seq = -seq WHERE seq > 4")
    execute(backends, "UPDATE audit_events SET seq = -seq - 1 WHERE seq < 0")
    # The event now numbered 4 links to the deleted one.
    assert_broken_at(backends, api, 4, "broken_link")


def test_auditor_verify_is_itself_audited_and_admin_is_refused(
    chain: list[AuditEvent], backends: Backends, api: Api
) -> None:
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
    receipt = api.client.get(
        f"/api/v1/documents/{document['id']}/receipt", headers=api.headers("east")
    )
    assert receipt.status_code == 200, receipt.text
    body = receipt.json()
    upload_events = [
        e
        for e in rows(backends)
        if e.action == "upload" and e.document_id == document["id"] and e.outcome == "allowed"
    ]
    assert len(upload_events) == 1
    (event,) = upload_events
    assert (body["audit_seq"], body["audit_hash"]) == (event.seq, event.hash)
    assert body["sha256"] == document["sha256"] == event.details["sha256"]
    assert body["uploaded_by"] == "east"
    assert body["township"]["name"] == "东镇"
    assert backends.audit.verify().ok

    # A duplicate upload does not move the receipt.
    again = api.upload("east", "收据测试.txt", text_bytes("收据测试"))
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    receipt_again = api.client.get(
        f"/api/v1/documents/{document['id']}/receipt", headers=api.headers("east")
    ).json()
    assert (receipt_again["audit_seq"], receipt_again["audit_hash"]) == (event.seq, event.hash)


# ---------------------------------------------------------------- concurrency


@pytest.mark.slow
def test_concurrent_uploads_and_reads_keep_the_chain_gapless(api: Api, backends: Backends) -> None:
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
    events = rows(backends)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    report = backends.audit.verify()
    assert (report.ok, report.events, report.head) == (True, len(events), events[-1].hash)

    by_id = {e.document_id: e for e in events if e.action == "upload" and e.outcome == "allowed"}
    assert len({body["id"] for _, body in results}) == 20
    for _, body in results:
        receipt = api.client.get(
            f"/api/v1/documents/{body['id']}/receipt",
            headers=api.headers(body["uploaded_by"]),
        ).json()
        event = by_id[body["id"]]
        assert (receipt["audit_seq"], receipt["audit_hash"]) == (event.seq, event.hash)


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
    events = rows(backends)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert backends.audit.verify().ok


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
    events = rows(backends)
    # Every event is one record (the export itself is logged before the rows are read).
    assert len(data) == len(events)
    assert all(len(record) == len(CSV_COLUMNS) for record in data)
    assert [int(record[0]) for record in data] == [e.seq for e in reversed(events)]
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
    assert tuple(worded[0]) == CSV_HEADINGS
    assert len(worded) == len(coded) == 4
    for code_row, word_row in zip(coded[1:], worded[1:], strict=True):
        at = datetime.fromisoformat(code_row[1]).astimezone(timezone(timedelta(hours=8)))
        assert word_row[1] == at.strftime("%Y-%m-%d %H:%M:%S")
        assert word_row[4:8] == ["乡镇工作人员", "上传", code_row[6], "允许"]
        # What identifies the event stays as it is: sequence number and hash; details in words.
        assert (word_row[0], word_row[10]) == (code_row[0], code_row[10])
        details = json.loads(code_row[9])
        assert word_row[9] == details_in_words(details)
        assert word_row[9].startswith(f"文件名: {details['filename']}")
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

    window = _events(api, since=since, until=until)
    assert [e["seq"] for e in window["events"]] == [later.seq, later.seq - 1, middle.seq]
    assert window["total"] == 3

    before = _events(api, until=middle.at.astimezone(CHINA).isoformat(), size=500)
    assert [e["seq"] for e in before["events"]] == list(range(middle.seq, 0, -1))

    # A UTC "Z" works too, and the boundary is inclusive.
    exactly = _events(
        api,
        since=middle.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        until=middle.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    )
    assert [e["seq"] for e in exactly["events"]] == [middle.seq]

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
    seqs = [e["seq"] for e in first["events"]]
    assert seqs == sorted(seqs, reverse=True) == list(range(total_now, total_now - 5, -1))

    second = _events(api, size=5, page=2)
    # One more audit_read was appended in between, so page 2 starts one later than before.
    assert [e["seq"] for e in second["events"]] == list(
        range(total_now + 1 - 5, total_now + 1 - 10, -1)
    )

    all_events = _events(api, size=500)
    assert all_events["total"] == len(all_events["events"]) == len(rows(backends))
    assert [e["seq"] for e in all_events["events"]] == list(range(all_events["total"], 0, -1))
    stored = {e.seq: e.hash for e in rows(backends)}
    assert all(stored[e["seq"]] == e["hash"] for e in all_events["events"])

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
