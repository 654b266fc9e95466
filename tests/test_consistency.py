"""``materials check``: blobs, orphans, the outbox and the audit log checked, and what can be,
repaired; on both stacks, through the service and the command line, and in the worker."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text, update

from api.cli import main
from indexer.worker import MAX_ATTEMPTS, IndexWorker
from services import consistency
from services.backends import Backends, open_backends
from services.consistency import BackgroundCheck, Status, check_system
from services.models import Document, IndexStatus, OutboxEvent, utcnow
from tests.conftest import Api, sequence_and_verify, served_county, stack_settings

GRACE = 2  # seconds before a blob without a document is an orphan to sweep


@pytest.fixture(params=["embedded", "real"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Api, Backends]]:
    """The API and its backends on each stack, with a short orphan grace period."""
    with (
        stack_settings(
            request, request.param, tmp_path / "data", orphan_grace_seconds=GRACE
        ) as settings,
        served_county(settings) as served,
    ):
        yield served


def upload(api: Api, name: str, content: bytes) -> dict[str, Any]:
    created = api.upload("east", name, content)
    assert created.status_code == 201, created.text
    document: dict[str, Any] = created.json()
    return document


def put_orphan(backends: Backends, content: bytes) -> str:
    sha256 = hashlib.sha256(content).hexdigest()
    writer = backends.blobs.open_writer(sha256)
    writer.write(content)
    assert writer.commit()
    return sha256


def abandon_upload(backends: Backends, content: bytes) -> str:
    """Bytes a writer received before its process was killed: never committed nor aborted (a
    dropped writer cleans nothing up). More than one S3 part, so a multipart upload exists."""
    sha256 = hashlib.sha256(content).hexdigest()
    writer = backends.blobs.open_writer(sha256)
    writer.write(content)
    del writer
    gc.collect()
    return sha256


def unfinished(backends: Backends) -> list[str]:
    """The names of every unfinished write in the store, young ones too."""
    later = utcnow() + timedelta(minutes=1)
    return [write.name for write in backends.blobs.unfinished_writes(older_than=later)]


def overwrite(backends: Backends, sha256: str, content: bytes) -> None:
    """The bytes under ``sha256`` replaced (a disk or an insider changed them)."""
    backends.blobs.delete(sha256)
    writer = backends.blobs.open_writer(sha256)
    writer.write(content)
    assert writer.commit()


def statuses(report: consistency.ConsistencyReport) -> dict[str, str]:
    return {check.name: check.status.value for check in report.checks}


def by_name(report: consistency.ConsistencyReport, name: str) -> consistency.CheckResult:
    return next(check for check in report.checks if check.name == name)


def tamper_with_audit_log(backends: Backends) -> int:
    """An insider rewrites the first sequenced event, guards switched off; its seq."""
    with backends.db.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            session.execute(text("DROP TRIGGER audit_events_no_update"))
        seq: int = session.execute(text("SELECT min(seq) FROM audit_leaves")).scalar_one()
        changed = session.execute(
            text(
                "UPDATE audit_events SET actor = 'mallory' "
                "WHERE id = (SELECT event_id FROM audit_leaves WHERE seq = :seq) RETURNING id"
            ),
            {"seq": seq},
        ).all()
        assert len(changed) == 1
    return seq


def test_a_clean_system_checks_clean(site: tuple[Api, Backends]) -> None:
    api, backends = site
    upload(api, "纪要.txt", "城关镇党委会议纪要".encode())
    upload(api, "总结.txt", "第三季度工作总结".encode())
    assert sequence_and_verify(backends).ok
    for cheap in (False, True):
        report = check_system(backends, cheap=cheap)
        assert report.ok, report.as_dict()
        expected = {"blobs": "ok", "orphans": "ok", "partial": "ok", "outbox": "ok"}
        assert statuses(report) == (
            expected if cheap else {**expected, "index": "ok", "audit": "ok"}
        )
        assert by_name(report, "blobs").counts == {"documents": 2, "missing": 0, "corrupt": 0}
        assert by_name(report, "outbox").counts["pending"] == 2  # no worker ran: waiting, fine


def test_a_missing_and_a_corrupt_blob_are_named_and_cannot_be_repaired(
    site: tuple[Api, Backends],
) -> None:
    api, backends = site
    gone = upload(api, "缺失.txt", "这份文件会丢失".encode())
    same_size = upload(api, "篡改.txt", "这份文件会被改动".encode())
    shorter = upload(api, "截断.txt", "这份文件会被截断".encode())
    intact = upload(api, "完好.txt", "这份文件完好无损".encode())
    backends.blobs.delete(gone["sha256"])
    overwrite(backends, same_size["sha256"], b"x" * same_size["size"])
    overwrite(backends, shorter["sha256"], b"cut")

    for repair in (False, True):
        report = check_system(backends, repair=repair)
        assert not report.ok
        blobs = by_name(report, "blobs")
        assert blobs.status is Status.failed
        assert blobs.ids["missing"] == [gone["id"]]
        assert sorted(blobs.ids["corrupt"]) == sorted([same_size["id"], shorter["id"]])
        assert blobs.counts == {"documents": 4, "missing": 1, "corrupt": 2}
    assert intact["id"] not in json.dumps(report.as_dict())

    # The cheap check stats, it does not read: the same size with other bytes passes it.
    cheap = by_name(check_system(backends, cheap=True), "blobs")
    assert cheap.ids == {"missing": [gone["id"]], "corrupt": [shorter["id"]]}


def test_a_young_orphan_is_kept_and_an_old_one_removed_by_repair(
    site: tuple[Api, Backends],
) -> None:
    api, backends = site
    kept = upload(api, "纪要.txt", "城关镇党委会议纪要".encode())
    old = put_orphan(backends, b"an upload that never got its document row")
    time.sleep(GRACE + 0.5)
    young = put_orphan(backends, b"an upload in flight")

    found = by_name(check_system(backends), "orphans")
    assert found.status is Status.repairable
    assert found.ids["old"] == [old]
    assert (found.counts["old"], found.counts["young"], found.counts["removed"]) == (1, 1, 0)
    assert backends.blobs.exists(old)  # without --repair nothing is touched

    report = check_system(backends, repair=True)
    assert report.ok, report.as_dict()
    repaired = by_name(report, "orphans")
    assert repaired.status is Status.repaired
    assert repaired.ids["removed"] == [old]
    assert not backends.blobs.exists(old)
    assert backends.blobs.exists(young)
    assert backends.blobs.exists(kept["sha256"])
    assert by_name(check_system(backends, repair=True), "orphans").status is Status.ok


def test_an_old_unfinished_upload_is_discarded_by_repair_and_a_young_one_kept(
    site: tuple[Api, Backends],
) -> None:
    api, site_backends = site
    # A grace of its own, seconds clear of both writes' ages on a busy machine: the old one is
    # 4 s past it, the young one (its part landing, the listing, two whole checks) well inside.
    grace = 8
    backends = open_backends(
        site_backends.settings.model_copy(update={"orphan_grace_seconds": grace})
    )
    try:
        _old_discarded_young_kept(api, backends, grace)
    finally:
        backends.close()


def _old_discarded_young_kept(api: Api, backends: Backends, grace: int) -> None:
    kept = upload(api, "纪要.txt", "城关镇党委会议纪要".encode())
    old = abandon_upload(backends, os.urandom(11 * 1024 * 1024))
    time.sleep(grace + 4)  # S3 parts land a moment after the writer took them
    [old_name] = unfinished(backends)
    young = abandon_upload(backends, os.urandom(6 * 1024 * 1024))
    time.sleep(1)  # its part lands
    assert len(unfinished(backends)) == 2

    found = by_name(check_system(backends, cheap=True), "partial")
    assert found.status is Status.repairable
    assert found.ids["old"] == [old_name]
    assert f"{old[:2]}/{old[2:4]}/" in old_name
    assert (found.counts["old"], found.counts["discarded"]) == (1, 0)
    assert found.counts["bytes"] >= 5 * 1024 * 1024
    assert "--repair 会清除" in found.summary
    assert len(unfinished(backends)) == 2  # without --repair nothing is touched

    report = check_system(backends, repair=True)
    assert report.ok, report.as_dict()
    repaired = by_name(report, "partial")
    assert repaired.status is Status.repaired
    assert repaired.ids["discarded"] == [old_name]
    assert "清除了 1 个" in repaired.summary
    remaining = unfinished(backends)
    assert len(remaining) == 1
    assert f"{young[:2]}/{young[2:4]}/" in remaining[0]  # an upload in progress stays
    assert backends.blobs.exists(kept["sha256"])
    assert by_name(check_system(backends, repair=True), "partial").status is Status.ok


def test_a_stuck_outbox_event_is_found_and_made_due_by_repair(site: tuple[Api, Backends]) -> None:
    api, backends = site
    stuck = upload(api, "卡住.txt", "一个崩溃的 worker 留下的事件".encode())
    held = upload(api, "处理中.txt", "一个活着的 worker 正在处理".encode())
    lapsed = upload(api, "刚过期.txt", "租约刚刚过期，马上会被重新领取".encode())
    now = utcnow()
    leases = {
        stuck["id"]: now - timedelta(hours=1),
        held["id"]: now + timedelta(seconds=60),
        lapsed["id"]: now - timedelta(seconds=5),
    }
    with backends.db.session() as session:
        for document_id, expires in leases.items():
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.document_id == document_id)
                .values(lease_owner="worker-gone", lease_expires_at=expires, available_at=now)
            )
        stuck_event = session.scalar(
            select(OutboxEvent.id).where(OutboxEvent.document_id == stuck["id"])
        )

    found = by_name(check_system(backends), "outbox")
    assert found.status is Status.repairable
    assert found.ids["stuck"] == [str(stuck_event)]
    assert (found.counts["stuck"], found.counts["pending"]) == (1, 3)

    repaired = by_name(check_system(backends, repair=True), "outbox")
    assert repaired.status is Status.repaired
    assert repaired.counts["made_due"] == 1
    with backends.db.session() as session:
        events = {event.document_id: event for event in session.scalars(select(OutboxEvent)).all()}
        assert events[stuck["id"]].lease_owner is None
        assert events[stuck["id"]].available_at <= utcnow()
        assert events[held["id"]].lease_owner == "worker-gone"  # a live lease is left alone
    assert by_name(check_system(backends), "outbox").status is Status.ok

    # Made due, a worker takes it at once and the document gets indexed.
    IndexWorker(backends, backends.index).drain()
    with backends.db.session() as session:
        document = session.get(Document, stuck["id"])
        assert document is not None
        assert document.index_status == IndexStatus.indexed.value


def test_an_event_failing_past_its_attempts_is_reported_not_repaired(
    site: tuple[Api, Backends],
) -> None:
    api, backends = site
    document = upload(api, "总失败.txt", "索引一直失败".encode())
    with backends.db.session() as session:
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.document_id == document["id"])
            .values(attempts=MAX_ATTEMPTS, available_at=utcnow() + timedelta(minutes=10))
        )
    for repair in (False, True):
        outbox = by_name(check_system(backends, repair=repair), "outbox")
        assert outbox.status is Status.failed
        assert outbox.counts["exhausted"] == 1


def test_a_document_missing_from_the_search_index_is_queued_again_by_repair(
    api: Api, backends: Backends
) -> None:
    document = upload(api, "纪要.txt", "城关镇党委会议纪要".encode())
    IndexWorker(backends, backends.index).drain()
    assert by_name(check_system(backends), "index").status is Status.ok
    backends.index.delete([document["id"]])

    found = by_name(check_system(backends), "index")
    assert found.status is Status.repairable
    assert found.ids["missing"] == [document["id"]]
    assert "index" not in statuses(check_system(backends, cheap=True))
    repaired = by_name(check_system(backends, repair=True), "index")
    assert repaired.status is Status.repaired
    assert repaired.counts["queued"] == 1
    IndexWorker(backends, backends.index).drain()
    assert by_name(check_system(backends), "index").status is Status.ok
    assert document["id"] in dict(backends.index.indexed_versions())


def test_a_tampered_audit_log_fails_the_check_and_is_never_repaired(
    site: tuple[Api, Backends],
) -> None:
    api, backends = site
    upload(api, "纪要.txt", "城关镇党委会议纪要".encode())
    assert sequence_and_verify(backends).ok
    seq = tamper_with_audit_log(backends)
    for repair in (False, True):
        report = check_system(backends, repair=repair)
        assert not report.ok
        audit = by_name(report, "audit")
        assert audit.status is Status.failed
        assert audit.ids == {"first_bad_seq": [str(seq)]}
        assert f"seq {seq}" in audit.summary
    assert "audit" not in statuses(check_system(backends, cheap=True))


# The command line, on the embedded stack.


def materials(data_dir: Path, *args: str) -> Result:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("MATERIALS_")},
        "MATERIALS_ORPHAN_GRACE_SECONDS": str(GRACE),
    }
    return CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)], env=env)


def check_json(data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = materials(data_dir, "check", "--json", *args)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.output
    payload: dict[str, Any] = json.loads(lines[0])
    return result.exit_code, payload


def test_the_command_prints_json_and_exits_by_what_it_could_not_repair(
    api: Api, backends: Backends
) -> None:
    data_dir = backends.settings.data_dir
    document = upload(api, "纪要.txt", "城关镇党委会议纪要".encode())
    assert sequence_and_verify(backends).ok

    code, clean = check_json(data_dir)
    assert code == 0
    assert clean["ok"] is True
    assert list(clean["checks"]) == ["blobs", "orphans", "partial", "outbox", "index", "audit"]
    assert all(check["status"] == "ok" for check in clean["checks"].values())

    # An old orphan: not ok until repaired, then ok.
    orphan = put_orphan(backends, b"an upload that never got its document row")
    time.sleep(GRACE + 0.5)
    code, found = check_json(data_dir)
    assert code == 1
    assert found["checks"]["orphans"]["status"] == "repairable"
    assert found["checks"]["orphans"]["ids"]["old"] == [orphan]
    code, repaired = check_json(data_dir, "--repair")
    assert code == 0
    assert repaired["ok"] is True
    assert repaired["checks"]["orphans"]["status"] == "repaired"
    assert not backends.blobs.exists(orphan)

    # An upload killed mid-way: the same.
    abandon_upload(backends, b"the first bytes of an upload whose process was killed")
    time.sleep(GRACE + 1.5)
    code, found = check_json(data_dir)
    assert code == 1
    assert found["checks"]["partial"]["status"] == "repairable"
    assert found["checks"]["partial"]["counts"]["old"] == 1
    code, repaired = check_json(data_dir, "--repair")
    assert code == 0
    assert repaired["checks"]["partial"]["status"] == "repaired"
    assert repaired["checks"]["partial"]["counts"]["discarded"] == 1
    assert unfinished(backends) == []

    # A missing blob cannot be repaired: exit 1 with --repair too.
    backends.blobs.delete(document["sha256"])
    for args in ((), ("--repair",), ("--cheap",)):
        code, broken = check_json(data_dir, *args)
        assert code == 1
        assert broken["checks"]["blobs"]["ids"]["missing"] == [document["id"]]


def test_the_summary_has_one_line_per_check_and_a_verdict(api: Api, backends: Backends) -> None:
    data_dir = backends.settings.data_dir
    upload(api, "纪要.txt", "城关镇党委会议纪要".encode())
    clean = materials(data_dir, "check")
    assert clean.exit_code == 0, clean.output
    lines = clean.stdout.splitlines()
    names = [line.split()[0] for line in lines[:-1]]
    assert names == ["blobs", "orphans", "partial", "outbox", "index", "audit"]
    assert all("正常" in line for line in lines[:-1])
    assert lines[-1] == "结论：一致"

    sequence_and_verify(backends)
    tamper_with_audit_log(backends)
    broken = materials(data_dir, "check", "--repair")
    assert broken.exit_code == 1
    audit_line = next(line for line in broken.stdout.splitlines() if line.startswith("audit"))
    assert "无法修复" in audit_line
    assert broken.stdout.splitlines()[-1] == "结论：不一致，有无法自动修复的问题"


def test_sweep_still_removes_old_orphans(api: Api, backends: Backends) -> None:
    old = put_orphan(backends, b"an upload that never got its document row")
    time.sleep(GRACE + 0.5)
    young = put_orphan(backends, b"an upload in flight")
    swept = materials(backends.settings.data_dir, "sweep")
    assert swept.exit_code == 0, swept.output
    assert json.loads(swept.stdout) == {"removed": 1}
    assert not backends.blobs.exists(old)
    assert backends.blobs.exists(young)


# The worker's periodic part.


def test_the_worker_check_repairs_and_warns_about_what_it_cannot(
    api: Api, backends: Backends, caplog: pytest.LogCaptureFixture
) -> None:
    graced = backends.settings.model_copy(
        update={"orphan_grace_seconds": GRACE, "check_interval_seconds": 3600}
    )
    worker_backends = open_backends(graced)
    try:
        document = upload(api, "纪要.txt", "城关镇党委会议纪要".encode())
        orphan = put_orphan(backends, b"an upload that never got its document row")
        abandon_upload(backends, b"the first bytes of an upload whose process was killed")
        time.sleep(GRACE + 1.5)
        checker = BackgroundCheck(worker_backends)
        checker.start()  # checks at once, then every hour
        deadline = time.monotonic() + 20
        while (backends.blobs.exists(orphan) or unfinished(backends)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        checker.stop()
        assert not backends.blobs.exists(orphan)
        assert unfinished(backends) == []

        backends.blobs.delete(document["sha256"])
        with caplog.at_level(logging.WARNING, logger="materials.check"):
            report = BackgroundCheck(worker_backends).run_once()
        assert report is not None
        assert report.cheap
        assert report.repair
        assert "audit" not in statuses(report)
        warnings = [
            r
            for r in caplog.records
            if r.name == "materials.check" and r.levelno >= logging.WARNING
        ]
        assert len(warnings) == 1
        assert "blobs" in warnings[0].getMessage()
    finally:
        worker_backends.close()


def test_the_worker_check_is_off_at_zero(backends: Backends) -> None:
    off = backends.settings.model_copy(update={"check_interval_seconds": 0})
    checker = BackgroundCheck(replace(backends, settings=off))
    checker.start()
    assert not checker.running
    checker.stop()
