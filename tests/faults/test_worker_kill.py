"""Fault tests of the index worker on the real stack: a worker killed with SIGKILL in the middle
of a batch loses nothing and doubles nothing once another worker runs.

``materials worker`` runs as a real subprocess against PostgreSQL, S3 and Elasticsearch; the
events the killed process held come free when their short lease runs out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from indexer import outbox
from indexer.consistency import check_index
from services.backends import Backends
from services.config import Settings
from services.models import Document, OutboxEvent
from services.search import ReadScope, SearchQuery
from tests.conftest import Api, make_settings
from tests.real_stack import RealStack
from tests.server_process import WorkerProcess, settings_environment

UPLOADS = 100
WORD = "巡堤检查"  # in every upload's text
RECOVERY_SECONDS = 60  # after the restart, every document indexed within this


@pytest.fixture
def settings(real_stack: RealStack, tmp_path: Path) -> Iterator[Settings]:
    """The real stack, for the conftest's backends, county and API client."""
    with real_stack.allocate() as values:
        yield make_settings(tmp_path / "data", **values)


def _worker(settings: Settings, log_path: Path) -> WorkerProcess:
    """``materials worker`` on the test's database, bucket and index."""
    env = settings_environment(
        settings,
        embedded_worker="false",
        check_interval_seconds="0",  # the periodic consistency check stays out of the way
    )
    return WorkerProcess(settings.data_dir, log_path, env)


def _progress(backends: Backends) -> tuple[int, list[int]]:
    """Events done, and the ids of those claimed now and not done."""
    with backends.db.session() as session:
        done = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at.is_not(None))
        )
        held = session.scalars(
            select(OutboxEvent.id).where(
                OutboxEvent.done_at.is_(None), OutboxEvent.lease_owner.is_not(None)
            )
        ).all()
    return done or 0, list(held)


def _versions(backends: Backends) -> dict[str, int]:
    with backends.db.session() as session:
        rows = session.execute(
            select(Document.id, Document.index_version).where(Document.withdrawn_at.is_(None))
        )
        return {row.id: row.index_version for row in rows}


def _indexed(backends: Backends) -> list[tuple[str, int]]:
    return list(backends.index.indexed_versions())


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(
    api: Api, backends: Backends, settings: Settings, tmp_path: Path
) -> None:
    for number in range(UPLOADS):
        body = f"第{number}号{WORD}记录：堤段{number}号，巡查人员{number % 7}名。".encode()
        response = api.upload("east", f"巡堤{number}.txt", body, period="2026-Q3")
        assert response.status_code == 201, response.text
    expected = _versions(backends)
    assert len(expected) == UPLOADS

    first = _worker(settings, tmp_path / "worker-1.log")
    second: WorkerProcess | None = None
    try:
        # Kill it when it has finished some events and holds others it has not finished.
        deadline = time.monotonic() + 90
        while True:
            done, held = _progress(backends)
            if done >= 5 and held:
                first.kill()
                break
            assert first.process.poll() is None, first.log()
            assert done < UPLOADS, "the worker finished before it could be killed mid-batch"
            assert time.monotonic() < deadline, f"the worker never got going:\n{first.log()}"
            time.sleep(0.01)
        done_at_kill, held_at_kill = _progress(backends)
        assert held_at_kill, "the killed worker held no unfinished event"
        assert done_at_kill < UPLOADS

        restarted = time.monotonic()
        second = _worker(settings, tmp_path / "worker-2.log")
        while outbox.pending_count(backends.db) or len(_indexed(backends)) < UPLOADS:
            assert second.process.poll() is None, second.log()
            assert time.monotonic() - restarted < RECOVERY_SECONDS, (
                f"not recovered within {RECOVERY_SECONDS} s: "
                f"{outbox.pending_count(backends.db)} events pending, "
                f"{len(_indexed(backends))} documents indexed\n{second.log()}"
            )
            time.sleep(0.2)
        recovered = time.monotonic() - restarted
    finally:
        first.stop()
        if second is not None:
            second.stop()

    assert recovered < RECOVERY_SECONDS
    indexed = _indexed(backends)
    # Exactly once: every document, each id once, at the version the database holds.
    assert len(indexed) == len({document_id for document_id, _ in indexed}) == UPLOADS
    assert dict(indexed) == expected
    found = backends.index.search(
        SearchQuery(text=WORD, scope=ReadScope(everything=True), size=UPLOADS, highlight=False)
    )
    assert found.total == UPLOADS
    assert sorted(hit.document_id for hit in found.hits) == sorted(expected)
    with backends.db.session() as session:
        statuses = set(session.scalars(select(Document.index_status)))
        undone = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.done_at.is_(None))
        )
        leftover = session.scalars(
            select(OutboxEvent.lease_owner).where(OutboxEvent.id.in_(held_at_kill))
        ).all()
    assert statuses == {"indexed"}
    assert undone == 0
    assert set(leftover) == {None}, "the killed worker's claims were completed by the new one"
    report = check_index(backends, repair=False)
    assert report.ok, report.as_dict()
