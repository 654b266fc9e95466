"""Outages of the real servers during continuous uploads, in the production layout.

Elasticsearch, the S3 server (SeaweedFS) and PostgreSQL are each stopped as processes and
started again on the same port with the same data while two client threads keep uploading to
``materials serve --workers 2``, beside two ``materials worker`` processes. Every upload that got
a 2xx must be in the database with its blob and searchable at the end; every refusal is the JSON
error with ``Retry-After`` and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from sqlalchemy import func, select, update

from indexer.worker import PROBE_SECONDS, IndexWorker
from services.backends import Backends
from services.errors import BackendUnavailable
from services.models import AuditEvent, Document, OutboxEvent, utcnow
from services.search import SearchIndex
from tests.conftest import Api
from tests.faults.stack import (
    REQUEST_TIMEOUT,
    WORD,
    Deployment,
    OutageStack,
    Upload,
    Uploader,
    deployed,
    open_stack,
)

# Seconds after the uploads stop: every document found by search. The workers retry what failed
# on a backend that was down as soon as it answers again, not at the end of the backoff.
SEARCHABLE_WITHIN = 90


@pytest.fixture(scope="module")
def outage_stack() -> Iterator[OutageStack]:
    """One stack for the module (Elasticsearch alone takes 20–30 s to start)."""
    started = open_stack()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def deployment(outage_stack: OutageStack, tmp_path: Path) -> Iterator[Deployment]:
    outage_stack.restore()  # whatever an earlier test left stopped
    with (
        outage_stack.allocate(tmp_path / "data") as settings,
        deployed(settings, tmp_path) as running,
    ):
        yield running


def assert_unavailable(
    status: int | None, body: object, headers: dict[str, str], backend: str
) -> None:
    """The API's answer for a backend that is down: 503, JSON error, Retry-After."""
    assert status == 503, (status, body)
    assert int(headers["retry-after"]) > 0
    assert isinstance(body, dict), body
    error = body["error"]
    assert error["code"] == "backend_unavailable", body
    assert error["message"], body
    assert error["details"] == {"backend": backend}, body


def assert_response_unavailable(response: httpx.Response, backend: str) -> None:
    assert_unavailable(response.status_code, response.json(), dict(response.headers), backend)


def assert_refused(upload: Upload, backend: str) -> None:
    assert upload.error is None, upload.error
    assert_unavailable(upload.status, upload.body, upload.headers, backend)


def assert_stored(deployment: Deployment, uploads: list[Upload]) -> None:
    """Each upload answered 2xx is a document of its township with its bytes in the store."""
    backends = deployment.backends
    with backends.db.session() as session:
        rows = {
            row.id: (row.sha256, row.size)
            for row in session.execute(select(Document.id, Document.sha256, Document.size))
        }
    for upload in uploads:
        assert rows.get(upload.document_id) == (upload.sha256, len(upload.content)), upload
        stored = b"".join(backends.blobs.read_chunks(upload.sha256))
        assert hashlib.sha256(stored).hexdigest() == upload.sha256


def searchable(deployment: Deployment) -> set[str]:
    """The ids search finds for the word every upload holds (empty while search is down)."""
    found: set[str] = set()
    for page in range(1, 100):
        answer = deployment.get("/api/v1/search", "poverty", q=WORD, size=100, page=page)
        if answer.status_code != 200:
            return found
        hits = answer.json()["hits"]
        found.update(hit["document"]["id"] for hit in hits)
        if len(hits) < 100:
            break
    return found


def assert_all_searchable(deployment: Deployment, ids: set[str]) -> float:
    """Wait until search finds every one of ``ids``; how long that took."""
    began = time.monotonic()
    missing = ids - searchable(deployment)
    while missing:
        assert not deployment.alive(), deployment.alive()
        waited = time.monotonic() - began
        assert waited < SEARCHABLE_WITHIN, (
            f"{len(missing)} of {len(ids)} documents not searchable after {waited:.0f} s\n"
            f"{deployment.logs()}"
        )
        time.sleep(1)
        missing = ids - searchable(deployment)
    with deployment.backends.db.session() as session:
        statuses = session.execute(
            select(Document.index_status, func.count()).group_by(Document.index_status)
        ).all()
    assert dict(statuses) == {"indexed": len(ids)}, statuses
    return time.monotonic() - began


def wait_for_answers(uploader: Uploader, since: float, count: int, *, timeout: float) -> None:
    """Return once ``count`` uploads begun after ``since`` have an answer, whatever it is."""
    deadline = time.monotonic() + timeout
    while sum(1 for upload in uploader.snapshot() if upload.started > since) < count:
        assert time.monotonic() < deadline, f"fewer than {count} uploads answered in {timeout} s"
        time.sleep(0.1)


def outcomes(
    deployment: Deployment, uploads: list[Upload], *, stopped: float, restarting: float, name: str
) -> tuple[list[Upload], list[Upload]]:
    """The uploads that succeeded and those refused. At least ten were sent while the backend
    ``name`` was down and each of those was refused with the JSON 503 naming it; nothing else was
    ever refused otherwise; every success is a 201; no process of the deployment died."""
    succeeded = [u for u in uploads if u.succeeded]
    refused = [u for u in uploads if not u.succeeded]
    down = [u for u in uploads if stopped < u.started and u.ended < restarting]
    assert len(down) >= 10
    for upload in down + refused:
        assert_refused(upload, name)
    assert all(upload.status == 201 for upload in succeeded)
    assert deployment.alive() == []
    return succeeded, refused


@pytest.mark.slow
def test_elasticsearch_stopped_during_uploads(
    outage_stack: OutageStack, deployment: Deployment
) -> None:
    with Uploader(deployment) as uploader:
        uploader.wait_for(10, 0, timeout=60)
        stopping = time.monotonic()
        outage_stack.stop_elasticsearch()
        stopped = time.monotonic()
        print(f"Elasticsearch stopped in {stopped - stopping:.0f} s")

        uploader.wait_for(10, stopped, timeout=60)
        assert_response_unavailable(
            deployment.get("/api/v1/search", "poverty", q=WORD), "search index"
        )
        ready = httpx.get(f"{deployment.base_url}/readyz", timeout=REQUEST_TIMEOUT)
        assert ready.status_code == 503
        assert ready.json()["backends"]["search_index"].startswith("unavailable")

        restarting = time.monotonic()
        outage_stack.start_elasticsearch()
        restarted = time.monotonic()
        uploader.wait_for(5, restarted, timeout=60)
    uploads = uploader.snapshot()
    print(
        f"uploads {len(uploads)}, Elasticsearch down {restarted - stopped:.0f} s "
        f"(its start took {restarted - restarting:.0f} s)"
    )

    # Every upload succeeded, before, during and after the outage.
    failed = [(u.status, u.error, u.body) for u in uploads if not u.succeeded]
    assert failed == []
    assert all(upload.status == 201 for upload in uploads)
    during = [u for u in uploads if stopped < u.started and u.ended < restarted]
    assert len(during) >= 10
    assert deployment.alive() == []
    assert_stored(deployment, uploads)
    drained = assert_all_searchable(deployment, {upload.document_id for upload in uploads})
    print(f"every upload searchable {drained:.0f} s after the uploads stopped")
    assert httpx.get(f"{deployment.base_url}/readyz", timeout=REQUEST_TIMEOUT).status_code == 200


@pytest.mark.slow
def test_object_store_stopped_during_uploads(
    outage_stack: OutageStack, deployment: Deployment
) -> None:
    with Uploader(deployment) as uploader:
        uploader.wait_for(10, 0, timeout=60)
        earlier = next(u for u in uploader.snapshot() if u.succeeded)
        download_path = f"/api/v1/documents/{earlier.document_id}/download"
        downloader = earlier.username  # its township's own user may download it

        stopping = time.monotonic()
        outage_stack.stop_s3()
        stopped = time.monotonic()
        wait_for_answers(uploader, stopped, 10, timeout=60)
        assert_response_unavailable(deployment.get(download_path, downloader), "object store")
        ready = httpx.get(f"{deployment.base_url}/readyz", timeout=REQUEST_TIMEOUT)
        assert ready.status_code == 503
        assert ready.json()["backends"]["object_store"].startswith("unavailable")

        restarting = time.monotonic()
        outage_stack.start_s3()
        restarted = time.monotonic()
        uploader.wait_for(10, restarted, timeout=60)
    uploads = uploader.snapshot()

    succeeded, refused = outcomes(
        deployment, uploads, stopped=stopped, restarting=restarting, name="object store"
    )

    # Without any restart of the API or the workers, downloads work again.
    downloaded = deployment.get(download_path, downloader)
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.content == earlier.content
    assert_stored(deployment, succeeded)

    # A refused upload left nothing: no document, no successful upload in the log, no spooled
    # file, and no blob, except where the store died under a put already under way (that
    # orphan, never pointed at, is what the sweeper removes after its grace period).
    backends = deployment.backends
    with backends.db.session() as session:
        documents = set(session.scalars(select(Document.sha256)))
        logged = session.scalar(
            select(func.count()).where(
                AuditEvent.action == "upload", AuditEvent.outcome == "allowed"
            )
        )
    assert documents == {upload.sha256 for upload in succeeded}
    assert logged == len(succeeded)
    spool = deployment.settings.spool_dir
    assert not spool.exists() or list(spool.rglob("*")) == []
    caught_in_stop = {u.sha256 for u in refused if u.started < stopped}
    orphans = {blob.sha256 for blob in backends.blobs.list()} - documents
    assert orphans <= caught_in_stop, orphans

    drained = assert_all_searchable(deployment, {u.document_id for u in succeeded})
    print(
        f"uploads {len(uploads)} ({len(refused)} refused), store down "
        f"{restarted - stopping:.0f} s, every upload searchable {drained:.0f} s after they stopped"
    )


@pytest.mark.slow
def test_postgres_restarted_during_uploads(
    outage_stack: OutageStack, deployment: Deployment
) -> None:
    with Uploader(deployment) as uploader:
        uploader.wait_for(10, 0, timeout=60)
        outage_stack.stop_postgres()
        stopped = time.monotonic()
        wait_for_answers(uploader, stopped, 10, timeout=60)

        restarting = time.monotonic()
        outage_stack.start_postgres()
        restarted = time.monotonic()
        # The API processes and the workers reconnect by themselves.
        uploader.wait_for(20, restarted, timeout=60)
    uploads = uploader.snapshot()

    succeeded, refused = outcomes(
        deployment, uploads, stopped=stopped, restarting=restarting, name="database"
    )

    # No upload that got a 2xx lost its effect.
    assert_stored(deployment, succeeded)
    ids = {upload.document_id for upload in succeeded}
    drained = assert_all_searchable(deployment, ids)
    print(
        f"uploads {len(uploads)} ({len(refused)} refused), PostgreSQL down "
        f"{restarted - stopped:.0f} s, every upload searchable {drained:.0f} s after they stopped"
    )

    # A refused upload sent again, as its Retry-After tells, is taken (or found already there
    # when its commit got through while the answer did not).
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
        for upload in refused:
            again = client.post(
                f"{deployment.base_url}/api/v1/documents",
                headers=deployment.headers(upload.username),
                files={"file": ("重传.txt", upload.content, "text/plain")},
                data={"period": "2026-Q3"},
            )
            assert again.status_code in (200, 201), again.text
            assert again.json()["sha256"] == upload.sha256
            ids.add(again.json()["id"])
    assert_all_searchable(deployment, ids)
    assert httpx.get(f"{deployment.base_url}/readyz", timeout=REQUEST_TIMEOUT).status_code == 200


class _SwitchableIndex:
    """The embedded index, refusing every use while ``down`` as a stopped node would."""

    def __init__(self, index: SearchIndex) -> None:
        self._index = index
        self.down = False

    def __getattr__(self, name: str) -> object:
        if self.down:
            raise BackendUnavailable("search index")
        return getattr(self._index, name)


def test_a_worker_retries_at_once_when_the_index_answers_again(
    api: Api, backends: Backends
) -> None:
    uploaded = api.upload("east", "巡堤.txt", f"{WORD}记录：堤段正常".encode(), "text/plain")
    assert uploaded.status_code == 201, uploaded.text
    index = _SwitchableIndex(backends.index)
    worker = IndexWorker(backends, cast(SearchIndex, index))

    index.down = True
    assert worker.run_once() == 1  # failed: the event waits out its backoff
    with backends.db.session() as session:  # a long outage has made that backoff long
        session.execute(update(OutboxEvent).values(available_at=utcnow() + timedelta(hours=1)))
    worker.wake_waiting()
    assert worker.run_once() == 0  # still down: it keeps waiting

    index.down = False
    time.sleep(PROBE_SECONDS)  # it asks again this often
    worker.wake_waiting()
    assert worker.run_once() == 1
    with backends.db.session() as session:
        assert session.scalar(select(Document.index_status)) == "indexed"
        assert session.scalar(select(func.count()).where(OutboxEvent.done_at.is_(None))) == 0
