"""The ``Database`` contract: what the system of record does, run on SQLite and on PostgreSQL.

PostgreSQL runs as a real private cluster started once per session (see tests/servers.py); every
test gets a fresh database on it, or a fresh SQLite file.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from indexer.outbox import claim, complete, pending_count
from services import db as db_module
from services.audit import Actor, AuditAction, AuditLog, Outcome
from services.audit_keys import load_verifier
from services.audit_sequencer import AuditSequencer
from services.audit_verify import verify_log
from services.blobs._local import LocalBlobStore
from services.config import Settings
from services.db import Database
from services.errors import BackendUnavailable
from services.models import (
    AuditEvent,
    AuditLeaf,
    Document,
    IndexAction,
    Org,
    OrgKind,
    OutboxEvent,
    Role,
    User,
    Visibility,
    new_document_id,
)

TOWNSHIP = "城关镇"
TITLE = "二〇二四年城关镇扶贫资金使用情况（第１季度）"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def test_migrations_run_to_head(database: Database) -> None:
    head = ScriptDirectory(str(Path(db_module.__file__).with_name("migrations"))).get_current_head()
    database.migrate()  # running again at head changes nothing
    with database.session() as session:
        versions = session.scalars(text("SELECT version_num FROM alembic_version")).all()
        assert versions == [head]
        assert session.scalar(select(Document.id).limit(1)) is None
        assert session.scalar(select(OutboxEvent.id).limit(1)) is None


def test_chinese_text_round_trips(database: Database) -> None:
    with database.session() as session:
        township = add_township(session=session, name=TOWNSHIP)
        session.flush()
        uploader = add_uploader(session=session, township=township, username="张三")
        session.flush()
        document = add_document(session=session, township=township, uploader=uploader, title=TITLE)
        document.tags = ["扶贫", "资金"]
        document.description = "全角数字１９９８年，标点“引号”与emoji 🏯"
        document_id = document.id
    AuditLog(database).record(
        actor=Actor("张三", org=TOWNSHIP, role=Role.uploader.value),
        action=AuditAction.upload,
        outcome=Outcome.allowed,
        document_id=document_id,
        details={"标题": TITLE},
    )
    with database.session() as session:
        stored = session.get(Document, document_id)
        assert stored is not None
        assert stored.title == TITLE
        assert stored.tags == ["扶贫", "资金"]
        assert stored.description == "全角数字１９９８年，标点“引号”与emoji 🏯"
        assert stored.township.name == TOWNSHIP
        assert session.scalar(select(Org.id).where(Org.name == TOWNSHIP)) == township.id
        event = session.scalars(select(AuditEvent)).one()
        assert (event.actor, event.org, event.details) == ("张三", TOWNSHIP, {"标题": TITLE})
    assert sequenced_and_verified(database) == 1


def test_audit_log_stays_gap_free_under_concurrent_threads(database: Database) -> None:
    log = AuditLog(database)

    def append(worker: int) -> None:
        for number in range(25):
            log.record(
                actor=Actor(f"线程{worker}"),
                action=AuditAction.view,
                outcome=Outcome.allowed,
                details={"n": number},
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(append, range(4)))

    assert_chain(database, events=100, actors={f"线程{worker}": 25 for worker in range(4)})


def test_several_processes_can_migrate_an_empty_database_at_once(database_url: str) -> None:
    # Several API replicas and workers starting together each migrate at start-up.
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=migrate_from_process, args=(database_url,)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    database = Database(database_url)
    try:
        head = ScriptDirectory(str(Path(db_module.__file__).with_name("migrations")))
        with database.session() as session:
            versions = session.scalars(text("SELECT version_num FROM alembic_version")).all()
        assert versions == [head.get_current_head()]
    finally:
        database.dispose()


def migrate_from_process(url: str) -> None:
    database = Database(url)
    try:
        database.migrate()
    finally:
        database.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_unreachable_database_is_backend_unavailable(kind: str, tmp_path: Path) -> None:
    if kind == "sqlite":
        (tmp_path / "a-directory").mkdir()
        url = f"sqlite:///{tmp_path / 'a-directory'}"  # a directory cannot be opened
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/materials?connect_timeout=2"
    database = Database(url)
    try:
        with pytest.raises(BackendUnavailable) as raised, database.session() as session:
            session.execute(text("SELECT 1"))
        assert raised.value.status == 503
        assert raised.value.backend == "database"
    finally:
        database.dispose()


def test_audit_log_stays_gap_free_across_processes(database: Database) -> None:
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=append_from_process, args=(database.url, worker, 20))
        for worker in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0, 0]

    assert_chain(database, events=60, actors={f"进程{worker}": 20 for worker in range(3)})


def append_from_process(url: str, worker: int, events: int) -> None:
    """Runs in a spawned process: its own Database on the same URL, appending ``events`` events."""
    database = Database(url)
    try:
        log = AuditLog(database)
        for number in range(events):
            log.record(
                actor=Actor(f"进程{worker}"),
                action=AuditAction.download,
                outcome=Outcome.allowed,
                details={"n": number},
            )
    finally:
        database.dispose()


def sequenced_and_verified(database: Database) -> int:
    """Sequence every event, sign, verify against the signature; the number of events."""
    data_dir = Path(tempfile.mkdtemp(prefix="materials-audit-"))
    settings = Settings(data_dir=data_dir / "data", database_url=database.url)
    blobs = LocalBlobStore(settings.blob_dir)
    AuditSequencer(database, settings, blobs).drain()
    report = verify_log(database, blobs, load_verifier(settings))
    assert report.ok, report.as_dict()
    return report.events


def assert_chain(database: Database, *, events: int, actors: dict[str, int]) -> None:
    assert sequenced_and_verified(database) == events
    with database.session() as session:
        rows = session.execute(
            select(AuditLeaf.seq, AuditEvent.actor).join(
                AuditEvent, AuditEvent.id == AuditLeaf.event_id
            )
        ).all()
    assert sorted(seq for seq, _ in rows) == list(range(1, events + 1))
    assert Counter(actor for _, actor in rows) == actors


def test_outbox_claims_each_event_exactly_once_under_concurrency(database: Database) -> None:
    document_ids = add_documents(database, count=40)
    with database.session() as session:
        for document_id in document_ids:
            session.add(OutboxEvent(document_id=document_id, action=IndexAction.upsert.value))

    claimed: list[int] = []
    lost: list[int] = []
    record = threading.Lock()

    def work(worker: int) -> None:
        owner = f"worker-{worker}"
        while True:
            claims = claim(database, owner=owner, lease_seconds=60, limit=3)
            if not claims:
                return
            with record:
                claimed.extend(c.event_id for c in claims)
            for leased in claims:
                if not complete(database, leased, owner=owner):
                    with record:
                        lost.append(leased.event_id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(4)))

    duplicates = [event_id for event_id, times in Counter(claimed).items() if times > 1]
    assert duplicates == []
    assert lost == []
    assert len(claimed) == 40
    assert pending_count(database) == 0
    with database.session() as session:
        events = session.scalars(select(OutboxEvent)).all()
    assert sorted(claimed) == sorted(event.id for event in events)
    assert all(event.done_at is not None and event.lease_owner is None for event in events)


def test_outbox_never_gives_two_workers_events_of_one_document(database: Database) -> None:
    document_ids = add_documents(database, count=15)
    with database.session() as session:
        for action in (IndexAction.upsert, IndexAction.delete, IndexAction.upsert):
            for document_id in document_ids:
                session.add(OutboxEvent(document_id=document_id, action=action.value))

    held: set[str] = set()
    overlaps: list[str] = []
    record = threading.Lock()

    def work(worker: int) -> None:
        owner = f"worker-{worker}"
        while claims := claim(database, owner=owner, lease_seconds=60, limit=2):
            with record:
                overlaps.extend(c.document_id for c in claims if c.document_id in held)
                held.update(c.document_id for c in claims)
            time.sleep(0.005)
            for leased in claims:
                with record:
                    held.discard(leased.document_id)
                complete(database, leased, owner=owner)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(4)))

    assert overlaps == []
    assert pending_count(database) == 0


def test_outbox_expired_lease_is_claimed_again_and_the_lost_owner_cannot_complete(
    database: Database,
) -> None:
    [document_id] = add_documents(database, count=1)
    with database.session() as session:
        session.add(OutboxEvent(document_id=document_id, action=IndexAction.upsert.value))

    [first] = claim(database, owner="slow", lease_seconds=0.2, limit=5)
    assert claim(database, owner="fast", lease_seconds=60, limit=5) == []  # lease still held
    time.sleep(0.3)
    [second] = claim(database, owner="fast", lease_seconds=60, limit=5)
    assert second.event_id == first.event_id

    assert complete(database, first, owner="slow") is False
    assert pending_count(database) == 1
    assert complete(database, second, owner="fast") is True
    assert pending_count(database) == 0
    assert claim(database, owner="slow", lease_seconds=60, limit=5) == []


def add_documents(database: Database, *, count: int) -> list[str]:
    """A township, an uploader and ``count`` documents with just their required fields."""
    with database.session() as session:
        township = add_township(session=session, name=TOWNSHIP)
        session.flush()
        uploader = add_uploader(session=session, township=township, username="uploader")
        session.flush()
        documents = [
            add_document(
                session=session,
                township=township,
                uploader=uploader,
                title=f"材料{number}",
            )
            for number in range(count)
        ]
        session.flush()
        return [document.id for document in documents]


def add_township(*, session: Session, name: str) -> Org:
    township = Org(name=name, kind=OrgKind.township.value)
    session.add(township)
    return township


def add_uploader(*, session: Session, township: Org, username: str) -> User:
    uploader = User(
        username=username, password_hash="x", role=Role.uploader.value, org_id=township.id
    )
    session.add(uploader)
    return uploader


def add_document(*, session: Session, township: Org, uploader: User, title: str) -> Document:
    content = title.encode()
    document = Document(
        id=new_document_id(),
        title=title,
        filename=f"{title}.txt",
        content_type="text/plain",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        category="其他",
        visibility=Visibility.departments.value,
        township_id=township.id,
        uploaded_by_id=uploader.id,
    )
    session.add(document)
    return document


def _end_server_connections(database: Database) -> None:
    """What a restart of PostgreSQL does to the pooled connections: each is ended by the server."""
    admin = Database(database.url)
    try:
        with admin.engine.connect() as other:
            other.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            other.commit()
    finally:
        admin.dispose()


def test_a_pooled_connection_the_server_ended_is_replaced(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("a pool of server connections: PostgreSQL")
    with database.session() as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    # In steady use a connection is not pinged: the first statement after the server ended it
    # fails as the database being unavailable (503), and the pool is dropped with it.
    _end_server_connections(database)
    with pytest.raises(BackendUnavailable), database.session() as session:
        session.execute(text("SELECT 1"))
    with database.session() as session:
        assert session.execute(text("SELECT 2")).scalar_one() == 2
    # One that lay unused for a while is pinged first and replaced: the caller sees nothing.
    monkeypatch.setattr(db_module, "_PING_AFTER_IDLE_SECONDS", 0.0)
    _end_server_connections(database)
    with database.session() as session:
        assert session.execute(text("SELECT 3")).scalar_one() == 3
