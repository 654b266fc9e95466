"""The outbox and the index worker: nothing lost, nothing indexed twice, failures explained.

Crashes are simulated by claiming events and never completing them; leases then run out.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from indexer import indexing, outbox
from indexer.consistency import check_index
from indexer.extractors import Extracted, ExtractionContext, extract
from indexer.indexing import index_document
from indexer.worker import IndexWorker
from services import requests
from services.access import Principal
from services.backends import Backends, open_backends
from services.catalog import county_today
from services.errors import BackendUnavailable
from services.models import (
    COUNTY_TIME,
    Document,
    MaterialRequest,
    Notification,
    NotificationKind,
    OutboxEvent,
    User,
    utcnow,
)
from services.requests import RequestFields
from services.search import IndexedDocument, ReadScope, SearchIndex, SearchQuery, SearchResult
from tests.conftest import EAST, Api, make_settings, seed_county
from tests.samples import docx_bytes, text_bytes


def _upload_reports(api: Api, count: int) -> list[str]:
    ids = []
    for number in range(count):
        body = f"东镇第{number}号工作报告：走访贫困户{number}户，落实帮扶措施。".encode()
        response = api.upload("east", f"报告{number}.txt", body, period="2026-Q3")
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _pending(backends: Backends) -> int:
    return outbox.pending_count(backends.db)


def _find(backends: Backends, text: str) -> SearchResult:
    return backends.index.search(SearchQuery(text=text, scope=ReadScope(everything=True)))


def test_upload_writes_its_outbox_event_in_the_same_transaction(
    api: Api, backends: Backends
) -> None:
    ids = _upload_reports(api, 3)
    with backends.db.session() as session:
        events = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        statuses = set(session.scalars(select(Document.index_status)))
    assert [event.document_id for event in events] == ids
    assert {event.action for event in events} == {"upsert"}
    assert statuses == {"pending"}


def test_worker_indexes_uploads_and_marks_documents(api: Api, backends: Backends) -> None:
    ids = _upload_reports(api, 3)
    handled = IndexWorker(backends, backends.index).drain()
    assert handled == 3
    assert _pending(backends) == 0
    with backends.db.session() as session:
        assert set(session.scalars(select(Document.index_status))) == {"indexed"}
    found = _find(backends, "贫困户")
    assert {hit.document_id for hit in found.hits} == set(ids)


def test_a_crashed_worker_loses_nothing_and_duplicates_nothing(
    api: Api, backends: Backends
) -> None:
    ids = _upload_reports(api, 4)
    # Worker A claims everything, indexes two documents, then dies before completing any event.
    lease = 2.0
    lease_ends = time.monotonic() + lease
    crashed = outbox.claim(backends.db, owner="crashed", lease_seconds=lease, limit=10)
    assert {claim.document_id for claim in crashed} == set(ids)
    survivor = IndexWorker(backends, backends.index, lease_seconds=30)
    # Checked at once, not after the indexing below, which may take longer than the lease on a
    # busy machine (the first document loads the segmenter).
    assert survivor.run_once() == 0, "leased events must not be taken while the lease holds"
    assert time.monotonic() < lease_ends, "the lease ran out before the check: a longer one"
    for claim in crashed[:2]:
        index_document(backends, backends.index, document_id=claim.document_id)

    time.sleep(max(0.0, lease_ends - time.monotonic()) + 0.2)
    assert survivor.drain() == 4

    assert _pending(backends) == 0
    assert backends.index.count() == 4
    assert {hit.document_id for hit in _find(backends, "帮扶").hits} == set(ids)
    # The dead worker's lease is gone: completing now reports the lost lease, changes nothing.
    assert outbox.complete(backends.db, crashed[0], owner="crashed") is False


class _Recording:
    """A real index that records overlapping upserts of one document by different threads."""

    def __init__(self, inner: SearchIndex) -> None:
        self._inner = inner
        self.name = inner.name
        self._active: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.overlaps = 0
        self.upserts: Counter[str] = Counter()

    def upsert(self, documents: Sequence[IndexedDocument]) -> None:
        with self._lock:
            for document in documents:
                self._active[document.id] += 1
                self.upserts[document.id] += 1
                self.overlaps += self._active[document.id] > 1
        time.sleep(0.01)
        try:
            self._inner.upsert(documents)
        finally:
            with self._lock:
                for document in documents:
                    self._active[document.id] -= 1

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


@pytest.mark.slow
def test_concurrent_workers_never_index_one_event_twice(api: Api, backends: Backends) -> None:
    ids = _upload_reports(api, 24)
    recording = _Recording(backends.index)
    workers = [IndexWorker(backends, recording, batch_size=3) for _ in range(4)]  # type: ignore[arg-type]
    threads = [threading.Thread(target=worker.drain) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert _pending(backends) == 0
    assert recording.overlaps == 0
    assert set(recording.upserts) == set(ids)
    assert max(recording.upserts.values()) == 1
    assert backends.index.count() == 24


class _Flaky:
    """A real index that is unavailable for its first ``failures`` upserts."""

    def __init__(self, inner: SearchIndex, failures: int) -> None:
        self._inner = inner
        self.name = inner.name
        self.failures = failures

    def upsert(self, documents: Sequence[IndexedDocument]) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise BackendUnavailable("search index")
        self._inner.upsert(documents)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_an_unavailable_index_is_retried_with_backoff(api: Api, backends: Backends) -> None:
    [document_id] = _upload_reports(api, 1)
    flaky = _Flaky(backends.index, failures=1)
    worker = IndexWorker(backends, flaky)  # type: ignore[arg-type]
    assert worker.run_once() == 1
    with backends.db.session() as session:
        event = session.scalars(select(OutboxEvent)).one()
        assert event.done_at is None
        assert event.attempts == 1
        assert "BackendUnavailable" in (event.last_error or "")
        # Make it due now instead of waiting for the backoff.
        event.available_at = event.created_at
    assert worker.drain() == 1
    with backends.db.session() as session:
        assert session.get_one(Document, document_id).index_status == "indexed"
    assert _pending(backends) == 0


def test_unreadable_file_is_failed_with_a_reason_and_still_found_by_title(
    api: Api, backends: Backends
) -> None:
    broken = docx_bytes()[:-200]  # truncated: the zip's directory is gone
    response = api.upload("east", "损坏的总结.docx", docx_bytes(), title="扶贫总结（损坏）")
    assert response.status_code == 201
    document_id = response.json()["id"]
    # Replace the stored bytes' meaning: index a corrupt file under the same document.
    with backends.db.session() as session:
        document = session.get_one(Document, document_id)
        sha256 = document.sha256
    blob_path = backends.settings.blob_dir / sha256[:2] / sha256[2:4] / sha256
    blob_path.chmod(0o640)
    blob_path.write_bytes(broken)
    IndexWorker(backends, backends.index).drain()
    with backends.db.session() as session:
        document = session.get_one(Document, document_id)
        assert document.index_status == "failed"
        assert document.index_error
    assert [hit.document_id for hit in _find(backends, "扶贫总结").hits] == [document_id]


def test_withdrawal_removes_the_document_from_the_index(api: Api, backends: Backends) -> None:
    [document_id, other] = _upload_reports(api, 2)
    worker = IndexWorker(backends, backends.index)
    worker.drain()
    withdrawn = api.client.delete(f"/api/v1/documents/{document_id}", headers=api.headers("east"))
    assert withdrawn.status_code == 200
    assert _pending(backends) == 1
    worker.drain()
    assert {hit.document_id for hit in _find(backends, "工作报告").hits} == {other}


def test_gbk_text_is_indexed_as_chinese(api: Api, backends: Backends) -> None:
    body = text_bytes("河口乡低保复核工作会议纪要", encoding="gb18030")
    response = api.upload("west", "纪要.txt", body)
    assert response.status_code == 201
    IndexWorker(backends, backends.index).drain()
    assert [hit.document_id for hit in _find(backends, "低保复核").hits] == [response.json()["id"]]


def _overdue_request(backends: Backends, title: str) -> int:
    """A request sent to 东镇 ten days ago, due five days ago; nobody has run the due-date job."""
    with backends.db.session() as session:
        users = {
            user.username: Principal.of(user)
            for user in session.scalars(select(User).where(User.username.in_(["poverty", "coord"])))
        }
    asked_on = county_today() - timedelta(days=10)
    draft = requests.create(
        backends,
        principal=users["poverty"],
        fields=RequestFields(EAST, title, category="工作总结", due=asked_on + timedelta(days=5)),
        ip=None,
        now=datetime.combine(asked_on, clock_time(9), tzinfo=COUNTY_TIME),
    )
    request_id = draft.request.id
    requests.send(
        backends, principal=users["poverty"], request_id=request_id, reason="需要", ip=None
    )
    requests.approve(backends, principal=users["coord"], request_id=request_id, ip=None)
    return request_id


def _overdue_notified(backends: Backends, request_id: int) -> bool:
    with backends.db.session() as session:
        return (
            session.scalar(
                select(Notification.id)
                .join(User, User.id == Notification.user_id)
                .where(
                    User.username == "east",
                    Notification.request_id == request_id,
                    Notification.kind == NotificationKind.request_overdue.value,
                )
            )
            is not None
        )


def _wait_for(condition: Callable[[], bool], *, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_worker_loop_runs_the_due_date_job_without_page_views(tmp_path: Path) -> None:
    backends = open_backends(make_settings(tmp_path / "data", due_check_seconds=0.1))
    stop = threading.Event()
    worker = IndexWorker(backends, backends.index, poll_seconds=0.01)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    try:
        seed_county(backends)
        first = _overdue_request(backends, "东镇逾期材料一")
        assert not _overdue_notified(backends, first)
        thread.start()
        assert _wait_for(lambda: _overdue_notified(backends, first))
        # The job keeps running on its period, not only when the worker starts.
        second = _overdue_request(backends, "东镇逾期材料二")
        assert _wait_for(lambda: _overdue_notified(backends, second))
        with backends.db.session() as session:
            overdue = session.scalars(
                select(MaterialRequest.overdue_at).where(MaterialRequest.id.in_([first, second]))
            ).all()
        assert len(overdue) == 2
        assert all(moment is not None for moment in overdue)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(10)
        backends.close()


# -- leases: short, renewed while the work goes on -------------------------------------------------


class _SlowExtraction:
    """The real extractor, after a pause longer than the worker's lease (an OCR of a big scan)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()
        self.pause: Callable[[], None] = lambda: time.sleep(self.seconds)

    def __call__(self, context: ExtractionContext) -> Extracted:
        self.started.set()
        self.pause()
        return extract(context)


def test_a_slow_extraction_keeps_its_claim_past_the_lease(
    api: Api, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    [document_id] = _upload_reports(api, 1)
    slow = _SlowExtraction(seconds=8.0)
    monkeypatch.setattr(indexing, "extract_text", slow)
    lease = 3.0
    holder = IndexWorker(backends, backends.index, lease_seconds=lease)
    working = threading.Thread(target=holder.run_once)
    working.start()
    assert slow.started.wait(10)
    other = IndexWorker(backends, backends.index, lease_seconds=lease)
    tries = 0
    while working.is_alive():  # leases long: a renewal missed would hand the event over
        assert other.run_once() == 0, "a renewed claim was taken by another worker"
        tries += 1
        time.sleep(0.1)
    working.join(10)
    assert tries >= 40
    assert _pending(backends) == 0
    assert dict(backends.index.indexed_versions()) == {document_id: 1}
    with backends.db.session() as session:
        assert session.get_one(Document, document_id).index_status == "indexed"


def test_a_dead_workers_claim_comes_free_after_one_lease(api: Api, backends: Backends) -> None:
    [document_id] = _upload_reports(api, 1)
    lease = backends.settings.index_lease_seconds
    assert 3 <= lease <= 30, "the default lease is short"
    dead = outbox.claim(backends.db, owner="dead", lease_seconds=1.0, limit=10)
    started = time.monotonic()
    survivor = IndexWorker(backends, backends.index)
    assert survivor.run_once() == 0
    while survivor.run_once() == 0:
        assert time.monotonic() - started < 5, "the dead worker's claim never came free"
        time.sleep(0.05)
    assert time.monotonic() - started >= 0.9
    assert _pending(backends) == 0
    assert dict(backends.index.indexed_versions()) == {document_id: 1}
    # A lease that ran out is lost for good: renewing it or completing it changes nothing.
    assert outbox.renew(backends.db, dead, owner="dead", lease_seconds=60) == set()
    assert outbox.complete(backends.db, dead[0], owner="dead") is False


def test_a_lost_lease_stops_the_work_without_writing(
    api: Api, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    [document_id] = _upload_reports(api, 1)
    slow = _SlowExtraction(seconds=0)

    def taken_over() -> None:
        # Meanwhile the lease ran out (say the database was unreachable) and another worker took
        # the event.
        with backends.db.session() as session:
            session.execute(
                update(OutboxEvent).values(
                    lease_owner="successor", lease_expires_at=utcnow() + timedelta(seconds=60)
                )
            )

    slow.pause = taken_over
    monkeypatch.setattr(indexing, "extract_text", slow)
    assert IndexWorker(backends, backends.index, lease_seconds=5).run_once() == 1
    assert list(backends.index.indexed_versions()) == []
    with backends.db.session() as session:
        event = session.scalars(select(OutboxEvent)).one()
        assert (event.lease_owner, event.done_at, event.attempts) == ("successor", None, 0)
        assert session.get_one(Document, document_id).index_status == "pending"


def test_a_withdrawal_during_a_slow_extraction_is_not_undone(
    api: Api, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    [document_id, other] = _upload_reports(api, 2)
    slow = _SlowExtraction(seconds=0)
    withdrawn: list[int] = []

    def withdraw_once() -> None:  # a clerk withdraws the document while its text is extracted
        if not withdrawn:
            response = api.client.delete(
                f"/api/v1/documents/{document_id}", headers=api.headers("east")
            )
            withdrawn.append(response.status_code)

    slow.pause = withdraw_once
    monkeypatch.setattr(indexing, "extract_text", slow)
    IndexWorker(backends, backends.index, batch_size=1).drain()
    assert withdrawn == [200]
    assert _pending(backends) == 0
    assert dict(backends.index.indexed_versions()) == {other: 1}
    assert {hit.document_id for hit in _find(backends, "工作报告").hits} == {other}


# -- the index against the database ----------------------------------------------------------------


def test_check_index_finds_and_repairs_missing_stale_and_extra_entries(
    api: Api, backends: Backends
) -> None:
    missing, stale, fine = _upload_reports(api, 3)
    worker = IndexWorker(backends, backends.index)
    worker.drain()
    # Not yet indexed: the worker's to write, not a difference.
    uploaded = api.upload("east", "在途.txt", "尚未索引的材料".encode(), period="2026-Q3")
    assert uploaded.status_code == 201, uploaded.text
    in_flight = uploaded.json()["id"]
    report = check_index(backends, repair=False)
    assert report.ok, report.as_dict()
    assert (report.expected, report.held, report.in_flight) == (3, 3, 1)

    backends.index.delete([missing])
    backends.index.upsert([replace(_entry(backends, fine), id="ghost", version=1)])
    with backends.db.session() as session:  # a change whose index event was lost
        session.get_one(Document, stale).index_version = 5
    report = check_index(backends, repair=False)
    assert not report.ok
    assert (report.missing_ids, report.stale_ids, report.extra_ids) == (
        [missing],
        [stale],
        ["ghost"],
    )
    assert report.as_dict()["ok"] is False
    assert report.repaired is False
    assert _pending(backends) == 1

    repaired = check_index(backends, repair=True)
    assert (repaired.queued, repaired.removed, repaired.repaired) == (2, 1, True)
    worker.drain()
    after = check_index(backends, repair=False)
    assert after.ok, after.as_dict()
    held = dict(backends.index.indexed_versions())
    assert set(held) == {missing, stale, fine, in_flight}
    with backends.db.session() as session:
        rows = session.execute(select(Document.id, Document.index_version))
        versions = {row.id: row.index_version for row in rows}
    assert held == versions


def _entry(backends: Backends, document_id: str) -> IndexedDocument:
    with backends.db.session() as session:
        return indexing.to_indexed(session.get_one(Document, document_id), "")


@pytest.mark.parametrize("seconds", [0, 2.5, -1, 601])
def test_a_lease_too_short_or_too_long_is_refused(tmp_path: Path, seconds: float) -> None:
    with pytest.raises(ValidationError, match="index_lease_seconds"):
        make_settings(tmp_path / "data", index_lease_seconds=seconds)
    assert make_settings(tmp_path / "data").index_lease_seconds == 20
