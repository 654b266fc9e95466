"""Archiving and pruning the audit log on SQLite and on PostgreSQL.

Events past the retention period are exported with the proof that they are the log's, checked
offline with nothing but the public key, and deleted; the log still verifies, every leaf still
held against the signed roots, and an event deleted outside a recorded prune is still named.
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from api.cli import main
from services.audit import Actor, AuditAction, Outcome
from services.audit_archive import (
    ARCHIVE_PREFIX,
    Archive,
    ArchiveError,
    ArchiveResult,
    archive_events,
    archive_lines,
    verify_archive,
)
from services.audit_keys import load_verifier
from services.blobs._local import LocalBlobStore
from services.db import Database
from services.models import AuditEvent, AuditPrune, Document, Org, User, utcnow
from services.signed_notes import Signer, Verifier
from tests.contract.test_audit_log import (
    Log,
    assert_fails_at,
    disable_guards,
    event_id_at,
    settings_for,
)

OLD, YOUNG = 30, 5
UPLOAD = 7  # the old event a document's receipt points to
CLI = Actor("cli:tests", role="system")


def add_events(log: Log, count: int, *, days_ago: int, first: int = 1) -> list[int]:
    """Events as the log holds them, ``days_ago`` old; their ids."""
    at = utcnow() - timedelta(days=days_ago)
    with log.database.session() as session:
        events = [
            AuditEvent(
                at=at + timedelta(seconds=number),
                actor="张三",
                org="城关镇",
                role="uploader",
                action=AuditAction.view.value,
                document_id=f"doc-{number}",
                outcome=Outcome.allowed.value,
                ip="10.0.0.1",
                details={"n": number, "标题": "扶贫资金"},
            )
            for number in range(first, first + count)
        ]
        session.add_all(events)
        session.flush()
        return [event.id for event in events]


def point_receipt_at(log: Log, event_id: int) -> None:
    """A document whose receipt is the given event (as an upload's receipt is its event)."""
    with log.database.session() as session:
        town = Org(name="城关镇", kind="township")
        session.add(town)
        session.flush()
        clerk = User(username="east", password_hash="x", role="uploader", org_id=town.id)
        session.add(clerk)
        session.flush()
        session.add(
            Document(
                title="扶贫资金汇总",
                filename="汇总.txt",
                content_type="text/plain",
                size=3,
                sha256="ab" * 32,
                category="报表",
                visibility="county",
                township_id=town.id,
                uploaded_by_id=clerk.id,
                receipt_event_id=event_id,
            )
        )


@pytest.fixture
def aged(log: Log) -> Log:
    """OLD events from 200 days ago, then YOUNG from today, all sequenced and signed."""
    ids = add_events(log, OLD, days_ago=200)
    point_receipt_at(log, ids[UPLOAD - 1])
    add_events(log, YOUNG, days_ago=0, first=OLD + 1)
    assert log.sequencer().drain() == OLD + YOUNG
    return log


def archive(log: Log, *, prune: bool = True, max_events: int = 12) -> ArchiveResult:
    verifier = load_verifier(log.settings)
    assert verifier is not None
    return archive_events(
        log.database,
        log.blobs,
        log.settings,
        verifier,
        actor=CLI,
        prune=prune,
        max_events=max_events,
    )


def events_left(log: Log) -> int:
    with log.database.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def offline(data: bytes, log: Log) -> None:
    verifier = load_verifier(log.settings)
    assert verifier is not None
    verify_archive(archive_lines(data), Verifier.parse(verifier.text()))


def test_pruning_archives_old_events_and_the_log_still_verifies(aged: Log) -> None:
    before = events_left(aged)
    results = [archive(aged) for _ in range(4)]
    archives = [result.archive for result in results if result.archive is not None]
    assert [(a.first_seq, a.last_seq) for a in archives] == [(1, 12), (13, 24), (25, 30)]
    assert results[-1].archive is None  # nothing younger than the retention period goes
    assert sum(r.deleted for r in results) == OLD - 1
    assert sum(r.kept for r in results) == 1  # the receipt's upload event stays
    # Each run adds its own audit_archive event; the receipt's event and the young ones stay.
    assert events_left(aged) == before - (OLD - 1) + len(archives)
    report = aged.verify()
    assert report.ok, report.as_dict()
    assert (report.pruned, report.events) == (OLD - 1, OLD + YOUNG)
    assert report.pending == len(archives)  # the archive runs' own events wait their turn
    for item in archives:
        offline(item.data, aged)
        assert aged.blobs.read_record(item.name) == item.data
    upload_event = event_id_at(aged, UPLOAD)
    with aged.database.session() as session:
        prunes = session.scalars(select(AuditPrune).order_by(AuditPrune.last_seq)).all()
        kept = session.get(AuditEvent, upload_event)
    assert [(p.first_seq, p.last_seq, p.archive_name) for p in prunes] == [
        (a.first_seq, a.last_seq, a.name) for a in archives
    ]
    assert kept is not None


def test_an_archive_without_prune_deletes_nothing(aged: Log) -> None:
    before = events_left(aged)
    result = archive(aged, prune=False, max_events=100)
    assert result.archive is not None
    assert (result.archive.first_seq, result.archive.last_seq) == (1, OLD)
    assert result.deleted == 0
    assert events_left(aged) == before + 1
    again = archive(aged, prune=False, max_events=100)
    assert again.archive is not None
    assert again.archive.name == result.archive.name
    assert aged.verify().ok


def test_nothing_younger_than_retention_is_archived(log: Log) -> None:
    add_events(log, 10, days_ago=183)
    log.sequencer().drain()
    assert archive(log).archive is None
    assert events_left(log) == 10


def test_the_prune_records_are_kept(aged: Log) -> None:
    archive(aged)
    for statement in ("UPDATE audit_prunes SET last_seq = 99", "DELETE FROM audit_prunes"):
        with pytest.raises(Exception, match=r"append-only|kept"):
            aged.sql(statement)


def test_a_deleted_event_outside_the_pruned_range_is_still_named(aged: Log) -> None:
    archive(aged)  # 1..12
    disable_guards(aged)
    aged.sql("DELETE FROM audit_events WHERE id = :id", id=event_id_at(aged, 15))
    assert_fails_at(aged, 15, "event_missing")


def test_a_pruned_leaf_is_still_held_against_the_signed_roots(aged: Log) -> None:
    archive(aged)
    disable_guards(aged)
    aged.sql("UPDATE audit_leaves SET leaf_hash = :forged WHERE seq = 3", forged=b"\0" * 32)
    report = aged.verify()
    assert (report.ok, report.reason) == (False, "checkpoint_root"), report.as_dict()


def test_a_missing_archive_is_named(aged: Log) -> None:
    result = archive(aged)
    assert result.archive is not None
    path = aged.settings.blob_dir / "records" / result.archive.name
    assert path.is_file()
    path.unlink()
    report = assert_fails_at(aged, 1, "archive_missing")
    assert report.last_bad_seq == 12


# ---------------------------------------------------------------- the archive alone, offline


def rewritten(item: Archive, change: str) -> bytes:
    lines = gzip.decompress(item.data).splitlines(keepends=True)
    header = json.loads(lines[0])
    if change == "event":
        event = json.loads(lines[3])
        event["actor"] = "李四"
        lines[3] = json.dumps(event, ensure_ascii=False).encode() + b"\n"
    elif change == "dropped":
        del lines[3]
    elif change == "reordered":
        lines[3], lines[4] = lines[4], lines[3]
    elif change == "truncated":
        del lines[-1]
    elif change == "edge":
        header["prior_edge"] = header["prior_edge"][::-1]
    elif change == "proof":
        header["consistency_proof"] = header["consistency_proof"][1:]
    elif change == "foreign key":
        body = header["checkpoint"].split("\n\n")[0] + "\n"
        header["checkpoint"] = Signer(body.split("\n")[0], Ed25519PrivateKey.generate()).sign(body)
    if change in ("edge", "proof", "foreign key"):
        lines[0] = json.dumps(header).encode() + b"\n"
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as zipped:
        zipped.writelines(lines)
    return out.getvalue()


@pytest.mark.parametrize(
    "change", ["event", "dropped", "reordered", "truncated", "edge", "proof", "foreign key"]
)
def test_a_forged_archive_fails_offline(aged: Log, change: str) -> None:
    archive(aged)
    second = archive(aged).archive  # 13..24: has a prior edge to forge
    assert second is not None
    offline(second.data, aged)
    with pytest.raises(ArchiveError):
        offline(rewritten(second, change), aged)


def test_the_commands_archive_prune_and_verify_offline(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'materials.db'}"
    data.mkdir(mode=0o700)
    database = Database(url)
    database.migrate()
    settings = settings_for(url, data)
    log = Log(database, settings, LocalBlobStore(settings.blob_dir))
    add_events(log, 20, days_ago=300)
    add_events(log, 3, days_ago=1, first=21)
    log.sequencer().drain()
    database.dispose()
    runner = CliRunner()
    env = {"MATERIALS_DATABASE_URL": url, "MATERIALS_AUDIT_CHECKPOINT_EVENTS": "1"}
    out = tmp_path / "archives"
    command = ["audit", "archive", "--data-dir", str(data), "--prune", "--out", str(out)]
    result = runner.invoke(main, [*command, "--max-events", "8"], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x.get("first_seq"), x.get("last_seq"), x.get("pruned")) for x in lines] == [
        (1, 8, 8),
        (9, 16, 8),
        (17, 20, 4),
        (None, None, None),
    ]
    key = tmp_path / "log.pub"
    public = runner.invoke(main, ["audit", "public-key", "--data-dir", str(data)], env=env)
    key.write_text(public.stdout)
    files = sorted(out.iterdir())
    assert len(files) == 3
    offline_check = ["audit", "verify-archive", str(files[1]), "--public-key", str(key)]
    checked = runner.invoke(main, offline_check)
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["first_seq"] == 9
    files[1].write_bytes(files[1].read_bytes()[:-20])
    broken = runner.invoke(main, offline_check)
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["ok"] is False
    verified = runner.invoke(main, ["audit", "verify", "--data-dir", str(data)], env=env)
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["pruned_events"] == 20
    assert len(list(LocalBlobStore(settings.blob_dir).list_records(ARCHIVE_PREFIX))) == 3
