"""Fault tests of a full disk: the upload spool, or the embedded blob store's directory, on a
4 MiB tmpfs. An upload bigger than the space left is refused with the JSON error of API.md, leaves
nothing half written behind, and the server goes on serving reads and smaller uploads.

``materials serve`` runs as a real subprocess on the real stack (PostgreSQL, SeaweedFS,
Elasticsearch; the second case keeps its blobs in the local store instead of S3). Mounting needs
root: the tests skip when ``mount`` is refused.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from indexer import outbox
from services.backends import Backends
from services.config import Settings
from services.models import Document
from tests.conftest import PASSWORD, make_settings
from tests.real_stack import RealStack
from tests.server_process import ServerProcess, settings_environment

TIMEOUT = 30.0
TMPFS_BYTES = 4 * 1024 * 1024
WORD = "防汛物资"  # in the earlier document's text


def _mount_tmpfs(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={TMPFS_BYTES},mode=0700",
                "tmpfs",
                str(directory),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")


def _umount(directory: Path) -> None:
    subprocess.run(["umount", str(directory)], capture_output=True, timeout=30, check=True)


def _free(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def _files(directory: Path) -> list[str]:
    """The files under directory, but the blob store's records (audit checkpoints)."""
    return sorted(
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and path.relative_to(directory).parts[0] != "records"
    )


class _Server:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        env = settings_environment(
            settings,
            embedded_worker="true",  # the earlier document is indexed for search
            check_interval_seconds="0",
        )
        self.process = ServerProcess(settings.data_dir, log_path, env=env)
        try:
            self.process.wait_until_up()
            answer = httpx.post(
                f"{self.process.base_url}/api/v1/auth/token",
                data={"username": "east", "password": PASSWORD},
                timeout=TIMEOUT,
            )
            assert answer.status_code == 200, answer.text
        except BaseException:
            self.process.stop()
            raise
        self.client = httpx.Client(
            base_url=f"{self.process.base_url}/api/v1",
            headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
            timeout=TIMEOUT,
        )

    def upload(self, content: bytes, *, sha256: bool = False) -> httpx.Response:
        data = {"period": "2026-Q3"}
        if sha256:
            data["sha256"] = hashlib.sha256(content).hexdigest()
        return self.client.post(
            "/documents", files={"file": ("材料.txt", content, "text/plain")}, data=data
        )

    def close(self) -> None:
        self.client.close()
        self.process.stop()


def _content(size: int, word: str = "巡查") -> bytes:
    line = f"{word}记录 {uuid.uuid4().hex}：各村物资清点完毕。\n".encode()
    return (line * (size // len(line) + 1))[:size]


def _earlier_document(server: _Server, backends: Backends) -> tuple[str, bytes]:
    """A small document stored and indexed before the disk fills."""
    content = _content(4 * 1024, WORD)
    answer = server.upload(content)
    assert answer.status_code == 201, answer.text
    deadline = time.monotonic() + TIMEOUT
    while outbox.pending_count(backends.db):
        assert time.monotonic() < deadline, server.process.log()
        time.sleep(0.1)
    document_id: str = answer.json()["id"]
    return document_id, content


def _refused_for_space(answer: httpx.Response) -> None:
    assert answer.status_code in (507, 503), answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) <= {"code", "message", "details"}
    assert error["code"] in ("insufficient_storage", "backend_unavailable"), error
    assert error["message"]
    assert "Traceback" not in answer.text


def _still_serving(server: _Server, document_id: str, content: bytes) -> None:
    found = server.client.get("/search", params={"q": WORD})
    assert found.status_code == 200, found.text
    assert document_id in [hit["document"]["id"] for hit in found.json()["hits"]], found.json()
    shown = server.client.get(f"/documents/{document_id}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["sha256"] == hashlib.sha256(content).hexdigest()
    downloaded = server.client.get(f"/documents/{document_id}/download")
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.content == content


def _rows(backends: Backends) -> int:
    with backends.db.session() as session:
        return session.scalar(select(func.count()).select_from(Document)) or 0


@pytest.fixture
def real_settings(real_stack: RealStack, tmp_path: Path) -> Iterator[dict[str, object]]:
    with real_stack.allocate() as values:
        yield values


@pytest.fixture
def settings(
    real_settings: dict[str, object], tmp_path: Path, request: pytest.FixtureRequest
) -> Settings:
    values = dict(real_settings)
    if getattr(request, "param", "s3") == "local":
        for name in ("s3_endpoint", "s3_access_key", "s3_secret_key", "s3_bucket"):
            values.pop(name)
    return make_settings(tmp_path / "data", **values)


@pytest.mark.slow
def test_a_full_spool_refuses_the_upload_and_keeps_serving(
    settings: Settings, backends: Backends, county: dict[str, int], tmp_path: Path
) -> None:
    spool = settings.spool_dir
    _mount_tmpfs(spool)
    server: _Server | None = None
    try:
        server = _Server(settings, tmp_path / "serve.log")
        document_id, content = _earlier_document(server, backends)
        rows = _rows(backends)
        free = _free(spool)

        big = _content(2 * TMPFS_BYTES)
        _refused_for_space(server.upload(big))
        assert _files(spool) == [], "a partial spool file remains"
        assert _free(spool) == free
        assert _rows(backends) == rows
        assert backends.blobs.stat(hashlib.sha256(big).hexdigest()) is None

        _still_serving(server, document_id, content)
        # Space enough for a smaller one: it goes through.
        assert server.upload(_content(256 * 1024)).status_code == 201
        assert _files(spool) == []
    finally:
        if server is not None:
            server.close()
        _umount(spool)


@pytest.mark.slow
@pytest.mark.parametrize("settings", ["local"], indirect=True)
@pytest.mark.parametrize("declare_sha256", [False, True], ids=["spooled", "streamed"])
def test_a_full_blob_store_refuses_the_upload_and_keeps_serving(
    settings: Settings,
    backends: Backends,
    county: dict[str, int],
    tmp_path: Path,
    declare_sha256: bool,
) -> None:
    assert settings.s3_endpoint is None  # the embedded local store, under the data directory
    blobs = settings.blob_dir
    _mount_tmpfs(blobs)
    server: _Server | None = None
    try:
        server = _Server(settings, tmp_path / "serve.log")
        document_id, content = _earlier_document(server, backends)
        rows = _rows(backends)
        held = _files(blobs)

        big = _content(2 * TMPFS_BYTES)
        _refused_for_space(server.upload(big, sha256=declare_sha256))
        assert _files(blobs) == held, "a half-written blob remains"
        assert _files(settings.spool_dir) == []
        assert _rows(backends) == rows

        _still_serving(server, document_id, content)
        assert server.upload(_content(256 * 1024), sha256=declare_sha256).status_code == 201
    finally:
        if server is not None:
            server.close()
        _umount(blobs)
