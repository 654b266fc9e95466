"""Fault tests of uploads on the real stack: ``materials serve`` killed with SIGKILL at each step
of an upload loses nothing a client was told is stored, and leaves nothing half done.

The API runs as a real subprocess against PostgreSQL, SeaweedFS and Elasticsearch. It is stopped
at each step without any hook in the application: (a) half the body sent on a raw socket, killed
once the server has read it; (b) the blob stored while a lock the test holds on ``documents``
keeps the row from being written; (c) the row committed while a lock the test takes at that very
moment keeps the server from reading it back, so that no response has been sent. Afterwards the
same file sent again by ``materials upload`` ends in exactly one document, and ``materials check``
finds the system consistent.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select

from indexer import outbox
from services.backends import Backends
from services.config import Settings
from services.models import Document
from tests.conftest import PASSWORD, make_settings
from tests.multipart import Multipart
from tests.real_stack import RealStack
from tests.server_process import ServerProcess, materials, settings_environment

STEP_TIMEOUT = 30.0  # every wait of these tests ends within this
BOUNDARY = b"kill-test-boundary-7d1c"


@pytest.fixture
def settings(real_stack: RealStack, tmp_path: Path) -> Iterator[Settings]:
    """The real stack, for the conftest's backends and county."""
    with real_stack.allocate() as values:
        yield make_settings(tmp_path / "data", **values)


def _env(settings: Settings) -> dict[str, str]:
    # The API process indexes what it stores, so that the final check sees a full index.
    return settings_environment(settings, embedded_worker="true", check_interval_seconds="0")


class _Api:
    """One ``materials serve`` process at a time, started again after each kill."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.env = _env(settings)
        self._logs = logs
        self._count = 0
        self.server = self._start()
        self.token = self._token()

    def _start(self) -> ServerProcess:
        self._count += 1
        server = ServerProcess(
            self.settings.data_dir, self._logs / f"serve-{self._count}.log", env=self.env
        )
        try:
            server.wait_until_up()
        except BaseException:
            server.stop()
            raise
        return server

    def _token(self) -> str:
        answer = httpx.post(
            f"{self.server.base_url}/api/v1/auth/token",
            data={"username": "east", "password": PASSWORD},
            timeout=STEP_TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def kill(self) -> None:
        """SIGKILL the API process (``--workers 1``: the server is this very process)."""
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(timeout=10)
        self.server.stop()

    def restart(self) -> None:
        self.server = self._start()

    def stop(self) -> None:
        self.server.stop()

    def upload_request(self, body: bytes) -> bytes:
        """The head of a POST carrying ``body`` (Content-Length: all of it)."""
        return (
            f"POST /api/v1/documents HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.server.port}\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY.decode()}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()


def _content(size: int) -> bytes:
    """Plain text of about ``size`` bytes that no other upload holds."""
    line = f"巡堤检查记录 {uuid.uuid4().hex}：堤段正常，无渗漏。\n".encode()
    return (line * (size // len(line) + 1))[:size].rsplit(b"\n", 1)[0] + b"\n"


def _body(content: bytes, *, declare_sha256: bool) -> bytes:
    form = Multipart(BOUNDARY)
    fields = [form.text_field("period", "2026-Q3")]
    if declare_sha256:
        fields.append(form.text_field("sha256", hashlib.sha256(content).hexdigest()))
    return form.form(*fields, form.file_part(content, filename=b'filename="kill.txt"'))


def _server_unread(port: int) -> int | None:
    """Bytes the kernel holds for the server on its one accepted connection, not yet read."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", "sport", "=", f":{port}"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.split()
    return int(out[0]) if out else None


def _until(condition: Callable[[], object], what: str, server: ServerProcess) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while not condition():
        assert server.process.poll() is None, f"the server died early:\n{server.log()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{server.log()}"
        time.sleep(0.02)


def _documents(backends: Backends, sha256: str) -> list[Document]:
    with backends.db.session() as session:
        return list(
            session.scalars(
                select(Document).where(Document.sha256 == sha256, Document.withdrawn_at.is_(None))
            )
        )


def _blob(backends: Backends, sha256: str) -> bytes | None:
    if backends.blobs.stat(sha256) is None:
        return None
    return b"".join(backends.blobs.read_chunks(sha256))


def _conninfo(settings: Settings) -> str:
    """The test database's URL as psycopg takes it."""
    assert settings.database_url is not None
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://")


def _waiting_for(conn: psycopg.Connection[tuple[object, ...]], table: str, mode: str) -> bool:
    """Whether some session waits for a ``mode`` lock on ``table``."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = %s AND relation = %s::regclass",
        (mode, table),
    ).fetchone()
    return bool(row and row[0])


def _post(api: _Api, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{api.server.base_url}/api/v1/documents",
        content=body,
        headers={
            "Authorization": f"Bearer {api.token}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY.decode()}",
        },
        timeout=STEP_TIMEOUT,
    )


def _no_answer(future: Future[httpx.Response]) -> None:
    """The killed request got no response at all (so no 2xx the client could rely on)."""
    try:
        answer = future.result(timeout=STEP_TIMEOUT)
    except httpx.TransportError:
        return
    pytest.fail(f"the killed upload got an answer: {answer.status_code} {answer.text}")


def _retry_with_client(api: _Api, content: bytes, tmp_path: Path) -> dict[str, object]:
    """The same file sent again by ``materials upload`` (it looks the sha256 up first)."""
    path = tmp_path / f"retry-{uuid.uuid4().hex[:8]}.txt"
    path.write_bytes(content)
    done = materials(
        "upload",
        "--server",
        api.server.base_url,
        "--token",
        api.token,
        "--period",
        "2026-Q3",
        "--json",
        "--quiet",
        str(path),
        env=api.env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return line


def _check(api: _Api) -> dict[str, Any]:
    """``materials check --json``: every check ok (it exits 0 only then)."""
    done = materials("check", "--json", "--data-dir", str(api.settings.data_dir), env=api.env)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["ok"] is True, report
    return report


def _consistent(api: _Api, backends: Backends) -> dict[str, Any]:
    """Once the restarted server has indexed everything, ``materials check`` finds no fault and
    no orphan blob: what a killed upload left, the retry took up."""
    deadline = time.monotonic() + STEP_TIMEOUT * 2
    while outbox.pending_count(backends.db):
        assert time.monotonic() < deadline, f"outbox not drained:\n{api.server.log()}"
        time.sleep(0.2)
    report = _check(api)
    assert report["checks"]["orphans"]["counts"]["young"] == 0, report["checks"]["orphans"]
    assert report["checks"]["orphans"]["counts"]["old"] == 0, report["checks"]["orphans"]
    return report


@pytest.fixture
def api(settings: Settings, county: dict[str, int], tmp_path: Path) -> Iterator[_Api]:
    running = _Api(settings, tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.slow
@pytest.mark.parametrize("declare_sha256", [False, True], ids=["spooled", "streamed"])
def test_killed_with_half_the_body_received(
    api: _Api, backends: Backends, tmp_path: Path, declare_sha256: bool
) -> None:
    # Over one part of the streaming blob writer (5 MiB): with the sha256 declared, half the
    # body has already gone on to the store as a multipart upload when the server dies.
    content = _content(12 * 1024 * 1024)
    sha256 = hashlib.sha256(content).hexdigest()
    body = _body(content, declare_sha256=declare_sha256)
    with socket.create_connection(("127.0.0.1", api.server.port), timeout=STEP_TIMEOUT) as sock:
        sock.sendall(api.upload_request(body) + body[: len(body) // 2])
        # The server has read all that was sent (nothing left in its receive queue) …
        _until(lambda: _server_unread(api.server.port) == 0, "the half body read", api.server)
        time.sleep(0.5)  # … and handled it (spooled, hashed, sent on to the store)
        api.kill()
        sock.settimeout(5)
        assert sock.recv(65536) == b"", "the killed server answered"

    assert _documents(backends, sha256) == []
    assert backends.blobs.stat(sha256) is None, "a half-written blob is visible"
    spool = api.settings.spool_dir
    left = sorted(spool.glob("upload-*.part"))
    if not declare_sha256:
        assert len(left) == 1, left  # (with the sha256 declared, the body may skip the spool)
    # The killed process could not remove its half-written spool file: the next process to
    # start removes it once nobody has written it for the grace period …
    aged = time.time() - api.settings.orphan_grace_seconds - 60
    for path in left:
        os.utime(path, (aged, aged))
    # … and leaves alone a file a live upload of a sibling process is writing.
    spool.mkdir(exist_ok=True)  # (absent when nothing was spooled)
    live = spool / "upload-live.part"
    live.write_bytes(b"arriving")

    api.restart()
    assert sorted(spool.glob("upload-*.part")) == [live]
    live.unlink()
    line = _retry_with_client(api, content, tmp_path)
    assert line["status"] == "stored", line
    [document] = _documents(backends, sha256)
    assert document.id == line["id"]
    assert _blob(backends, sha256) == content
    _consistent(api, backends)


@pytest.mark.slow
def test_killed_with_the_blob_stored_and_no_row(
    api: _Api, backends: Backends, settings: Settings, tmp_path: Path
) -> None:
    content = _content(256 * 1024)
    sha256 = hashlib.sha256(content).hexdigest()
    database_url = _conninfo(settings)
    with (
        psycopg.connect(database_url) as holder,
        psycopg.connect(database_url, autocommit=True) as watcher,
        ThreadPoolExecutor(1) as client,
    ):
        # Reads of documents go on; the upload's INSERT waits, after its blob is stored.
        holder.execute("LOCK TABLE documents IN SHARE MODE")
        future = client.submit(_post, api, _body(content, declare_sha256=False))
        _until(lambda: backends.blobs.stat(sha256) is not None, "the blob stored", api.server)
        _until(
            lambda: _waiting_for(watcher, "documents", "RowExclusiveLock"),
            "the INSERT waiting",
            api.server,
        )
        api.kill()
        holder.rollback()
        _no_answer(future)

    assert _documents(backends, sha256) == [], "a row was committed without its answer"
    # The blob stays as an orphan, younger than the grace period: the check counts it and
    # leaves it (an upload may be about to point at it); the sweeper removes it past the grace.
    assert _blob(backends, sha256) == content
    orphans = _check(api)["checks"]["orphans"]
    assert orphans["counts"]["young"] == 1, orphans

    api.restart()
    line = _retry_with_client(api, content, tmp_path)
    assert line["status"] == "stored", line
    [document] = _documents(backends, sha256)
    assert document.id == line["id"]
    assert _blob(backends, sha256) == content
    _consistent(api, backends)


@pytest.mark.slow
def test_killed_with_the_row_committed_and_no_answer_sent(
    api: _Api, backends: Backends, settings: Settings, tmp_path: Path
) -> None:
    content = _content(256 * 1024)
    sha256 = hashlib.sha256(content).hexdigest()
    database_url = _conninfo(settings)
    with (
        psycopg.connect(database_url) as audit_holder,
        psycopg.connect(database_url) as documents_holder,
        psycopg.connect(database_url, autocommit=True) as watcher,
        ThreadPoolExecutor(2) as pool,
    ):
        # 1. The upload's transaction waits on its audit event, its row inserted, not committed.
        audit_holder.execute("LOCK TABLE audit_events IN SHARE MODE")
        future = pool.submit(_post, api, _body(content, declare_sha256=False))
        _until(
            lambda: _waiting_for(watcher, "audit_events", "RowExclusiveLock"),
            "the upload's transaction waiting",
            api.server,
        )
        # 2. Ask for documents whole: granted the moment the upload commits, and from then on
        # the server cannot read the row back to answer.
        locked = pool.submit(
            documents_holder.execute, "LOCK TABLE documents IN ACCESS EXCLUSIVE MODE"
        )
        _until(
            lambda: _waiting_for(watcher, "documents", "AccessExclusiveLock"),
            "the exclusive lock queued",
            api.server,
        )
        audit_holder.rollback()
        locked.result(timeout=STEP_TIMEOUT)
        row = documents_holder.execute(
            "SELECT count(*) FROM documents WHERE sha256 = %s", (sha256,)
        ).fetchone()
        assert row == (1,), "the upload did not commit"
        assert not future.done(), "the client had its answer before the kill"
        api.kill()
        documents_holder.rollback()
        _no_answer(future)

    [committed] = _documents(backends, sha256)
    assert _blob(backends, sha256) == content

    api.restart()
    line = _retry_with_client(api, content, tmp_path)
    assert line["status"] == "duplicate", line
    assert line["id"] == committed.id
    assert [document.id for document in _documents(backends, sha256)] == [committed.id]
    _consistent(api, backends)


@pytest.mark.slow
def test_every_answered_upload_survives_the_kill(api: _Api, backends: Backends) -> None:
    """Uploads answered 2xx before a SIGKILL are all there afterwards, bytes intact."""
    stored: dict[str, bytes] = {}
    for _ in range(5):
        content = _content(64 * 1024)
        answer = _post(api, _body(content, declare_sha256=False))
        assert answer.status_code == 201, answer.text
        stored[answer.json()["id"]] = content
    api.kill()
    api.restart()
    with httpx.Client(timeout=STEP_TIMEOUT) as client:
        for document_id, content in stored.items():
            answer = client.get(
                f"{api.server.base_url}/api/v1/documents/{document_id}/download",
                headers={"Authorization": f"Bearer {api.token}"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.content == content
