"""Migration 0011 on a hash-chained log that exists, on SQLite and on PostgreSQL.

The chained events become the Merkle tree's first leaves in their order, under their old sequence
numbers; the first checkpoint is signed at exactly the old chain's length and carries its head, so
the signed log vouches for what the chain held. Receipts keep naming their upload event, and events
appended afterwards continue the numbering.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import select
from sqlalchemy.engine import Connection

from services import db as db_module
from services import merkle
from services.audit import Actor, AuditAction, AuditLog, Outcome
from services.audit_keys import load_verifier
from services.audit_sequencer import AuditSequencer
from services.audit_verify import verify_log
from services.blobs._local import LocalBlobStore
from services.config import Settings
from services.db import Database
from services.models import AuditCheckpoint, AuditLeaf, AuditLegacyChain, Document

GENESIS = "0" * 64
SHA = "ab" * 32
UPLOAD_SEQ = 3


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def upgrade_to(database: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(db_module.__file__).with_name("migrations")))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def old_canonical(event: dict[str, Any]) -> bytes:
    """What the chained log (before 0011) hashed of an event after ``prev_hash\\n``."""
    content = {
        "seq": event["seq"],
        "at": event["at"].astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": event["actor"],
        "org": event["org"],
        "role": event["role"],
        "action": event["action"],
        "document_id": event["document_id"],
        "outcome": event["outcome"],
        "ip": event["ip"],
        "details": event["details"],
    }
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def old_chain_hash(prev_hash: str, event: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + old_canonical(event)).hexdigest()


def old_events() -> list[dict[str, Any]]:
    start = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {"actor": "admin", "org": "某县", "role": "admin", "action": "login", "details": {}},
        {"actor": "zhen", "org": "某镇", "role": "uploader", "action": "login", "details": {}},
        {
            "actor": "zhen",
            "org": "某镇",
            "role": "uploader",
            "action": "upload",
            "document_id": "d1",
            "details": {"sha256": SHA, "title": "二〇二六年扶贫资金", "size": 7},
        },
        {
            "actor": "nobody",
            "action": "login",
            "outcome": "denied",
            "details": {"reason": "bad_password", "count": 3, "嵌套": {"列表": [1, "二"]}},
        },
        {"actor": "admin", "org": "某县", "role": "admin", "action": "audit_verify", "details": {}},
    ]
    chain, prev = [], GENESIS
    for seq, row in enumerate(rows, start=1):
        event = {
            "seq": seq,
            "at": start + timedelta(minutes=seq, microseconds=seq * 7),
            "org": None,
            "role": None,
            "document_id": None,
            "outcome": "allowed",
            "ip": None if seq == 4 else f"10.0.0.{seq}",
            **row,
        }
        event["prev_hash"] = prev
        event["hash"] = prev = old_chain_hash(prev, event)
        chain.append(event)
    return chain


def insert_old_county(connection: Connection, events: list[dict[str, Any]]) -> None:
    """Two organisations, an uploader, the chained events and a document whose receipt names its
    upload event, written as the code before 0011 wrote them."""
    metadata = sa.MetaData()
    table = {
        name: sa.Table(name, metadata, autoload_with=connection)
        for name in ("orgs", "users", "documents", "audit_events")
    }
    created = datetime(2026, 1, 1, tzinfo=UTC)
    connection.execute(
        table["orgs"].insert(),
        [
            {"id": 1, "name": "某县", "kind": "county", "created_at": created},
            {"id": 2, "name": "某镇", "kind": "township", "parent_id": 1, "created_at": created},
        ],
    )
    connection.execute(
        table["users"].insert(),
        {
            "id": 1,
            "username": "zhen",
            "canonical_name": "zhen",
            "password_hash": "x",
            "role": "uploader",
            "org_id": 2,
            "active": True,
            "must_change_password": False,
            "created_at": created,
        },
    )
    connection.execute(table["audit_events"].insert(), events)
    upload = events[UPLOAD_SEQ - 1]
    connection.execute(
        table["documents"].insert(),
        {
            "id": "d1",
            "title": "二〇二六年扶贫资金",
            "filename": "a.txt",
            "content_type": "text/plain",
            "size": 7,
            "sha256": SHA,
            "category": "其他",
            "tags": [],
            "description": "",
            "visibility": "private",
            "township_id": 2,
            "uploaded_by_id": 1,
            "created_at": upload["at"],
            "version": 1,
            "index_status": "indexed",
            "receipt_seq": upload["seq"],
            "receipt_hash": upload["hash"],
        },
    )


def test_the_chained_log_becomes_the_first_leaves(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    events = old_events()
    upgrade_to(database, "0010")
    with database.engine.begin() as connection:
        insert_old_county(connection, events)

    database.migrate()
    count, head = len(events), events[-1]["hash"]
    with database.session() as session:
        legacy = session.scalars(select(AuditLegacyChain)).one()
        assert (legacy.head_seq, legacy.head_hash) == (count, head)
        document = session.get(Document, "d1")
        assert document is not None
        assert document.receipt_event_id == UPLOAD_SEQ

    # A checkpoint per event once the legacy one is signed, and batches shorter than the chain:
    # nothing may be signed before the old chain's head.
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        audit_checkpoint_events=1,
        audit_sequencer_batch=2,
    )
    blobs = LocalBlobStore(settings.blob_dir)
    sequencer = AuditSequencer(database, settings, blobs)
    assert sequencer.drain() == count

    with database.session() as session:
        leaves = session.execute(
            select(AuditLeaf.seq, AuditLeaf.event_id, AuditLeaf.leaf_hash).order_by(AuditLeaf.seq)
        ).all()
        assert [(seq, event_id) for seq, event_id, _ in leaves] == [
            (seq, seq) for seq in range(1, count + 1)
        ]
        # Each leaf covers exactly the bytes the old chain hashed for that event.
        for (_, _, leaf), event in zip(leaves, events, strict=True):
            assert bytes(leaf) == merkle.leaf_hash(old_canonical(event))
        checkpoints = session.scalars(select(AuditCheckpoint)).all()
        assert [c.tree_size for c in checkpoints] == [count]
        assert f"legacy-chain {count} {head}" in checkpoints[0].note.splitlines()

    report = verify_log(database, blobs, load_verifier(settings))
    assert report.ok, report.as_dict()
    assert (report.events, report.checkpoints) == (count, 1)

    # New events continue the numbering (PostgreSQL: the id sequence continues after the chain).
    log = AuditLog(database)
    appended = [
        log.record(
            actor=Actor("zhen", org="某镇", role="uploader", ip="10.0.0.9"),
            action=AuditAction.view,
            outcome=Outcome.allowed,
            document_id="d1",
            details={"n": number},
        ).id
        for number in range(2)
    ]
    assert appended == [count + 1, count + 2]
    assert sequencer.drain() == 2
    with database.session() as session:
        new_leaves = session.execute(
            select(AuditLeaf.seq, AuditLeaf.event_id).where(AuditLeaf.seq > count)
        ).all()
        assert sorted(new_leaves) == [(count + 1, count + 1), (count + 2, count + 2)]
        sizes = session.scalars(select(AuditCheckpoint.tree_size).order_by("tree_size")).all()
        assert sizes == [count, count + 1, count + 2]
        later = session.scalars(
            select(AuditCheckpoint.note).where(AuditCheckpoint.tree_size > count)
        ).all()
        assert not any("legacy-chain" in note for note in later)
    report = verify_log(database, blobs, load_verifier(settings))
    assert report.ok, report.as_dict()
    assert report.events == count + 2


def test_an_empty_log_migrates_without_a_legacy_chain(database: Database, tmp_path: Path) -> None:
    upgrade_to(database, "0010")
    database.migrate()
    with database.session() as session:
        assert session.scalars(select(AuditLegacyChain)).first() is None
    settings = Settings(data_dir=tmp_path / "data", database_url=database.url)
    blobs = LocalBlobStore(settings.blob_dir)
    event = AuditLog(database).record(
        actor=Actor("admin"), action=AuditAction.login, outcome=Outcome.allowed
    )
    assert event.id == 1
    assert AuditSequencer(database, settings, blobs).drain() == 1
    with database.session() as session:
        note = session.scalars(select(AuditCheckpoint.note)).one()
        assert "legacy-chain" not in note
    assert verify_log(database, blobs, load_verifier(settings)).ok
