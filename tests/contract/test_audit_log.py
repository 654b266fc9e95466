"""The provable audit log on SQLite and on PostgreSQL: tampering is found, sequencing is exact.

Each attack is made the way an insider with write access to the database would make it: the
guard triggers switched off, rows changed with SQL, and — in the strongest form — every leaf and
tree node recomputed with the project's own hashing so that the database is self-consistent.
Only the signing key, kept outside the database, is out of reach; verification must then name
the first event that differs from what was signed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import lazyload

from services import merkle
from services.audit import Actor, AuditAction, AuditLog, Outcome, leaf_bytes
from services.audit_keys import load_verifier
from services.audit_sequencer import AuditSequencer, lease_owner
from services.audit_verify import VerifyReport, verify_log
from services.blobs import BlobStore
from services.blobs._local import LocalBlobStore
from services.config import Settings
from services.db import Database
from services.models import AuditCheckpoint, AuditEvent, AuditLeaf, AuditTreeNode

EVENTS = 12
_SQLITE_TRIGGERS = (
    "audit_events_no_delete",
    "audit_events_no_update",
    "audit_leaves_no_delete",
    "audit_leaves_no_update",
    "audit_tree_nodes_no_delete",
    "audit_tree_nodes_no_update",
    "audit_checkpoints_no_delete",
    "audit_checkpoints_kept",
)
_GUARDED = ("audit_events", "audit_leaves", "audit_tree_nodes", "audit_checkpoints")


@dataclass
class Log:
    database: Database
    settings: Settings
    blobs: BlobStore

    def sequencer(self, **kwargs: Any) -> AuditSequencer:
        return AuditSequencer(self.database, self.settings, self.blobs, **kwargs)

    def verify(self) -> VerifyReport:
        return verify_log(self.database, self.blobs, load_verifier(self.settings))

    def append(self, count: int, *, actor: str = "张三") -> None:
        log = AuditLog(self.database)
        for number in range(count):
            log.record(
                actor=Actor(actor, org="城关镇", role="uploader", ip="10.0.0.1"),
                action=AuditAction.view,
                outcome=Outcome.allowed,
                document_id=f"doc-{number}",
                details={"n": number, "标题": "扶贫资金"},
            )

    def sql(self, statement: str, **params: Any) -> None:
        with self.database.session() as session:
            session.execute(text(statement), params)


def settings_for(url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": url,
        "audit_checkpoint_events": 1,
        "audit_sequencer_lease_seconds": 2.0,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def signed(log: Log) -> Log:
    """A log of EVENTS events, each one signed by a checkpoint of its own."""
    log.append(EVENTS)
    assert log.sequencer().drain() == EVENTS
    return log


# ---------------------------------------------------------------- the attacker's tools


def disable_guards(log: Log) -> None:
    with log.database.session() as session:
        if log.database.dialect == "postgresql":
            for table in _GUARDED:
                session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            for trigger in _SQLITE_TRIGGERS:
                session.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))


def recompute_tree(log: Log) -> None:
    """Rebuild leaves and nodes from the events as they now are, in id order, with the
    project's own hashing: the database agrees with itself again."""
    with log.database.session() as session:
        session.execute(text("DELETE FROM audit_leaves"))
        session.execute(text("DELETE FROM audit_tree_nodes"))
        events = session.scalars(
            select(AuditEvent).options(lazyload(AuditEvent.leaf)).order_by(AuditEvent.id)
        ).all()
        frontier = merkle.Frontier()
        for seq, event in enumerate(events, start=1):
            made = frontier.append(merkle.leaf_hash(leaf_bytes(event, seq)))
            for (level, index), digest in made:
                if level == 0:
                    session.execute(
                        insert(AuditLeaf).values(seq=seq, event_id=event.id, leaf_hash=digest)
                    )
                else:
                    session.execute(
                        insert(AuditTreeNode).values(level=level, idx=index, hash=digest)
                    )


def event_id_at(log: Log, seq: int) -> int:
    with log.database.session() as session:
        found = session.scalar(select(AuditLeaf.event_id).where(AuditLeaf.seq == seq))
    assert found is not None
    return found


def assert_fails_at(log: Log, seq: int, reason: str) -> VerifyReport:
    report = log.verify()
    assert not report.ok, report.as_dict()
    assert (report.first_bad_seq, report.reason) == (seq, reason), report.as_dict()
    return report


# ---------------------------------------------------------------- an honest log


def test_an_honest_log_verifies(signed: Log) -> None:
    report = signed.verify()
    assert report.ok, report.as_dict()
    assert (report.events, report.checkpoints, report.exported) == (EVENTS, EVENTS, EVENTS)
    assert report.latest_checkpoint == EVENTS
    with signed.database.session() as session:
        seqs = session.scalars(select(AuditLeaf.seq).order_by(AuditLeaf.seq)).all()
    assert seqs == list(range(1, EVENTS + 1))


def test_the_guards_refuse_changes_to_the_log(signed: Log) -> None:
    for statement in (
        "UPDATE audit_events SET actor = 'x'",
        "DELETE FROM audit_events",
        "UPDATE audit_leaves SET seq = seq + 100",
        "DELETE FROM audit_tree_nodes",
        "UPDATE audit_checkpoints SET note = 'x'",
        "DELETE FROM audit_checkpoints",
    ):
        with pytest.raises(Exception, match=r"append-only|kept"):
            signed.sql(statement)
    assert signed.verify().ok


# ---------------------------------------------------------------- six attacks, each named


@pytest.mark.parametrize("recomputed", [False, True], ids=["as-is", "recomputed"])
def test_an_edited_event_is_named(signed: Log, recomputed: bool) -> None:
    disable_guards(signed)
    signed.sql("UPDATE audit_events SET actor = '李四' WHERE id = :id", id=event_id_at(signed, 5))
    if recomputed:
        recompute_tree(signed)
        assert_fails_at(signed, 5, "checkpoint_root")
    else:
        assert_fails_at(signed, 5, "leaf_mismatch")


@pytest.mark.parametrize("recomputed", [False, True], ids=["as-is", "recomputed"])
def test_a_deleted_event_is_named(signed: Log, recomputed: bool) -> None:
    disable_guards(signed)
    signed.sql("DELETE FROM audit_events WHERE id = :id", id=event_id_at(signed, 7))
    if recomputed:
        recompute_tree(signed)  # the later events move up one place
        assert_fails_at(signed, 7, "checkpoint_root")
    else:
        assert_fails_at(signed, 7, "event_missing")


def test_an_inserted_event_is_named(signed: Log) -> None:
    # A forged event put in before seq 4, every later event moved down one place, the whole tree
    # recomputed: the database agrees with itself, the signed roots do not.
    disable_guards(signed)
    at = event_id_at(signed, 4)
    with signed.database.session() as session:
        ids = session.scalars(
            select(AuditEvent.id).where(AuditEvent.id >= at).order_by(AuditEvent.id.desc())
        ).all()
        for event_id in ids:
            session.execute(
                text("UPDATE audit_events SET id = id + 1 WHERE id = :id"), {"id": event_id}
            )
        session.execute(
            text(
                "INSERT INTO audit_events (id, tx, at, actor, org, role, action, outcome, details) "
                "SELECT :id, tx, at, 'shadow-auditor', org, 'admin', 'user_create', 'allowed', "
                "details FROM audit_events WHERE id = :next"
            ),
            {"id": at, "next": at + 1},
        )
    recompute_tree(signed)
    assert_fails_at(signed, 4, "checkpoint_root")


def test_an_event_slipped_in_behind_the_sequencer_is_named(signed: Log) -> None:
    # Not recomputed: the row simply sits among sequenced ones without a leaf.
    with signed.database.session() as session:
        session.execute(
            text(
                "INSERT INTO audit_events (id, tx, at, actor, org, role, action, outcome, details) "
                "SELECT 0, 0, at, 'ghost', org, role, action, outcome, details "
                "FROM audit_events WHERE id = :id"
            ),
            {"id": event_id_at(signed, 1)},
        )
    assert_fails_at(signed, 1, "event_inserted")


@pytest.mark.parametrize("recomputed", [False, True], ids=["as-is", "recomputed"])
def test_reordered_events_are_named(signed: Log, recomputed: bool) -> None:
    disable_guards(signed)
    first, second = event_id_at(signed, 8), event_id_at(signed, 9)
    with signed.database.session() as session:
        session.execute(text("UPDATE audit_events SET id = -1 WHERE id = :id"), {"id": first})
        session.execute(
            text("UPDATE audit_events SET id = :to WHERE id = :id"), {"to": first, "id": second}
        )
        session.execute(text("UPDATE audit_events SET id = :to WHERE id = -1"), {"to": second})
    if recomputed:
        recompute_tree(signed)
        assert_fails_at(signed, 8, "checkpoint_root")
    else:
        assert_fails_at(signed, 8, "leaf_mismatch")


def test_a_truncated_tail_is_named_by_the_exported_checkpoints(signed: Log) -> None:
    # Everything from seq 10 on removed, checkpoints included: the database agrees with itself.
    disable_guards(signed)
    with signed.database.session() as session:
        session.execute(
            text("DELETE FROM audit_events WHERE id >= :id"), {"id": event_id_at(signed, 10)}
        )
        session.execute(text("DELETE FROM audit_checkpoints WHERE tree_size >= 10"))
    recompute_tree(signed)
    report = assert_fails_at(signed, 10, "truncated")
    assert "导出检查点" in (report.detail or "")


def test_a_truncated_tail_is_named_by_the_database_checkpoints(signed: Log) -> None:
    disable_guards(signed)
    signed.sql("DELETE FROM audit_events WHERE id >= :id", id=event_id_at(signed, 11))
    recompute_tree(signed)
    assert_fails_at(signed, 11, "truncated")


def test_an_emptied_log_is_named(signed: Log) -> None:
    disable_guards(signed)
    for table in ("audit_events", "audit_leaves", "audit_tree_nodes", "audit_checkpoints"):
        signed.sql(f"DELETE FROM {table}")
    report = assert_fails_at(signed, 1, "truncated")
    assert report.events == 0


def test_a_forged_tree_with_forged_checkpoints_is_named(signed: Log, tmp_path: Path) -> None:
    # The strongest attacker: edits an event, recomputes the tree, replaces every checkpoint in
    # the database by ones signed with a key of their own. Without the log's key they fail.
    disable_guards(signed)
    signed.sql("UPDATE audit_events SET actor = '李四' WHERE id = :id", id=event_id_at(signed, 3))
    recompute_tree(signed)
    signed.sql("DELETE FROM audit_checkpoints")
    forger = settings_for(
        signed.settings.resolved_database_url,
        tmp_path / "forger",
        audit_signing_key_file=None,
    )
    with signed.database.session() as session:
        session.execute(text("UPDATE audit_sequencer SET owner = NULL, lease_expires_at = NULL"))
    AuditSequencer(signed.database, forger, LocalBlobStore(tmp_path / "elsewhere")).run_once(
        sign_now=True
    )
    report = signed.verify()
    assert not report.ok
    assert report.reason == "checkpoint_signature", report.as_dict()


def test_a_forged_tree_without_checkpoints_is_named_by_the_exports(signed: Log) -> None:
    disable_guards(signed)
    signed.sql("UPDATE audit_events SET actor = '李四' WHERE id = :id", id=event_id_at(signed, 6))
    recompute_tree(signed)
    signed.sql("DELETE FROM audit_checkpoints")
    assert_fails_at(signed, 6, "exported_checkpoint")


def test_sparse_checkpoints_name_the_range_the_change_lies_in(log: Log) -> None:
    sparse = Log(
        log.database,
        log.settings.model_copy(update={"audit_checkpoint_events": 5}),
        log.blobs,
    )
    sparse.append(15)
    sparse.sequencer().drain()
    disable_guards(sparse)
    sparse.sql("UPDATE audit_events SET actor = '李四' WHERE id = :id", id=event_id_at(sparse, 7))
    recompute_tree(sparse)
    report = sparse.verify()
    assert not report.ok
    assert (report.first_bad_seq, report.last_bad_seq, report.reason) == (
        6,
        10,
        "checkpoint_root",
    )


def test_verify_without_the_key_refuses_to_vouch(signed: Log) -> None:
    report = verify_log(signed.database, signed.blobs, None)
    assert not report.ok
    assert report.reason == "no_key"


# ---------------------------------------------------------------- sequencing


def test_two_sequencers_started_at_once_only_one_sequences(log: Log) -> None:
    log.append(30)
    first, second = log.sequencer(owner="first"), log.sequencer(owner="second")
    results: dict[str, list[int]] = {"first": [], "second": []}
    barrier = threading.Barrier(2)

    def run(sequencer: AuditSequencer) -> None:
        barrier.wait()
        for _ in range(5):
            result = sequencer.run_once()
            results[sequencer.owner].append(result.sequenced if result.leader else -1)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, (first, second)))
    leaders = [owner for owner, rounds in results.items() if any(n >= 0 for n in rounds)]
    assert len(leaders) == 1, results
    assert sum(results[leaders[0]]) == 30
    assert lease_owner(log.database)[0] == leaders[0]
    assert log.verify().ok


def test_a_second_sequencer_takes_over_when_the_lease_runs_out(log: Log) -> None:
    log.append(3)
    log.sequencer(owner="gone").run_once()
    log.append(3)
    assert not log.sequencer(owner="next").run_once().leader
    time.sleep(log.settings.audit_sequencer_lease_seconds + 0.2)
    assert log.sequencer(owner="next").drain() == 3
    assert log.verify().ok


def sequence_in_process(url: str, data_dir: str, batch: int, started: str) -> None:
    """Runs in a spawned process: a sequencer working through one large batch."""
    database = Database(url)
    settings = settings_for(url, Path(data_dir), audit_sequencer_batch=batch)
    sequencer = AuditSequencer(
        database, settings, LocalBlobStore(settings.blob_dir), owner="doomed"
    )
    sequencer.signer  # noqa: B018 - the key is read before the batch starts
    Path(started).touch()
    sequencer.drain()


def test_a_sequencer_killed_mid_batch_loses_and_doubles_nothing(log: Log) -> None:
    events = 20_000  # one batch of a few seconds, one transaction
    with log.database.session() as session:
        rows = [
            {
                "at": datetime.now(UTC),
                "actor": f"u{number}",
                "action": "view",
                "outcome": "allowed",
                "details": {"n": number},
            }
            for number in range(events)
        ]
        session.execute(insert(AuditEvent), rows)
    spawn = multiprocessing.get_context("spawn")
    log.sequencer().signer  # noqa: B018 - the key exists before the child reads it
    started = log.settings.data_dir / "started"
    process = spawn.Process(
        target=sequence_in_process,
        args=(log.settings.resolved_database_url, str(log.settings.data_dir), events, str(started)),
    )
    process.start()
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    with log.database.session() as session:
        done_before = session.scalar(select(func.count()).select_from(AuditLeaf)) or 0
    assert done_before == 0, "the batch finished before the kill: make it larger"
    time.sleep(log.settings.audit_sequencer_lease_seconds + 0.2)
    assert log.sequencer(owner="heir").drain() == events - done_before
    with log.database.session() as session:
        leaves = session.execute(select(AuditLeaf.seq, AuditLeaf.event_id)).all()
    assert sorted(seq for seq, _ in leaves) == list(range(1, events + 1))
    assert len({event_id for _, event_id in leaves}) == events
    assert log.verify().ok


def append_in_process(url: str, worker: int, events: int, hold: float) -> None:
    """Runs in a spawned process, like an API process: appends events in transactions that stay
    open a while, so that some commit after later ones."""
    database = Database(url)
    log = AuditLog(database)
    try:
        for number in range(events):
            with database.session() as session:
                log.append(
                    session,
                    actor=Actor(f"进程{worker}"),
                    action=AuditAction.download,
                    outcome=Outcome.allowed,
                    details={"n": number},
                )
                time.sleep(hold * ((number * 7 + worker) % 5) / 4)
    finally:
        database.dispose()


def test_appends_from_several_processes_while_the_sequencer_runs(log: Log) -> None:
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(
            target=append_in_process,
            args=(log.settings.resolved_database_url, worker, 40, 0.02),
        )
        for worker in range(3)
    ]
    stop = threading.Event()
    sequencer = log.sequencer()
    runner = threading.Thread(target=sequencer.run, args=(stop,), kwargs={"poll_seconds": 0.01})
    runner.start()
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    stop.set()
    runner.join(30)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    sequencer.drain()
    with log.database.session() as session:
        rows = session.execute(
            select(AuditLeaf.seq, AuditEvent.actor).join(
                AuditEvent, AuditEvent.id == AuditLeaf.event_id
            )
        ).all()
        unsequenced = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .outerjoin(AuditLeaf, AuditLeaf.event_id == AuditEvent.id)
            .where(AuditLeaf.seq.is_(None))
        )
    assert unsequenced == 0
    assert sorted(seq for seq, _ in rows) == list(range(1, 121))
    assert Counter(actor for _, actor in rows) == {f"进程{worker}": 40 for worker in range(3)}
    report = log.verify()
    assert report.ok, report.as_dict()
    assert report.events == 120


def test_a_checkpoint_is_signed_within_the_configured_time(log: Log) -> None:
    timely = Log(
        log.database,
        log.settings.model_copy(
            update={"audit_checkpoint_events": 1000, "audit_checkpoint_seconds": 0.5}
        ),
        log.blobs,
    )
    stop = threading.Event()
    runner = threading.Thread(target=timely.sequencer().run, args=(stop,))
    runner.start()
    try:
        timely.append(3)
        appended = time.monotonic()
        while time.monotonic() - appended < 10:
            with timely.database.session() as session:
                signed = session.scalar(select(func.max(AuditCheckpoint.tree_size)))
            if signed == 3:
                break
            time.sleep(0.05)
        assert signed == 3
        assert time.monotonic() - appended <= 2.0
    finally:
        stop.set()
        runner.join(10)
