"""The ``BlobStore`` contract: what every blob backend does, run against each implementation.

The S3 cases run against a real SeaweedFS and a real MinIO, each started once per session
(see tests/servers.py).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import httpx
import pytest
import urllib3
from minio.error import S3Error

from services.blobs import BlobStore, open_blob_store
from services.blobs._local import LocalBlobStore
from services.blobs._s3 import S3BlobStore
from services.errors import BackendUnavailable, NotFound
from tests.conftest import make_settings
from tests.servers import SCRIPT, SCRIPT_ENV, S3Server, free_port, start_seaweedfs


@pytest.fixture(params=["local", "seaweedfs", "minio"])
def store(request: pytest.FixtureRequest, tmp_path: Path, bucket: str) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    server: S3Server = request.getfixturevalue(request.param)
    return s3_store(server, bucket)


def s3_store(server: S3Server, bucket: str, *, secret_key: str | None = None) -> S3BlobStore:
    return S3BlobStore(
        endpoint=server.endpoint,
        access_key=server.access_key,
        secret_key=secret_key or server.secret_key,
        bucket=bucket,
    )


@pytest.fixture
def files(tmp_path: Path) -> FileMaker:
    return FileMaker(tmp_path / "sources")


class FileMaker:
    """Writes source files and names them by their sha256, as uploads do."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        directory.mkdir()
        self._serial = 0

    def write(self, content: bytes) -> tuple[str, Path]:
        self._serial += 1
        path = self._directory / f"upload-{self._serial}"
        path.write_bytes(content)
        return hashlib.sha256(content).hexdigest(), path


def restart_seaweedfs(server: S3Server) -> None:
    """Start a stopped SeaweedFS again on its port, with its data and credentials."""
    port = server.endpoint.rpartition(":")[2]
    subprocess.run(
        [SCRIPT, "start", str(server.directory), port, server.access_key, server.secret_key],
        check=True,
        capture_output=True,
        timeout=60,
        env=SCRIPT_ENV,
    )


def read_all(store: BlobStore, sha256: str) -> bytes:
    return b"".join(store.read_chunks(sha256))


def test_put_then_read_back_identical_bytes(store: BlobStore, files: FileMaker) -> None:
    content = "县政府工作报告 2024".encode() * 1000
    sha256, source = files.write(content)
    assert not store.exists(sha256)

    store.put(sha256=sha256, source=source)

    assert store.exists(sha256)
    info = store.stat(sha256)
    assert info is not None
    assert (info.sha256, info.size) == (sha256, len(content))
    assert info.modified_at.tzinfo is not None
    assert read_all(store, sha256) == content
    chunks = list(store.read_chunks(sha256, chunk_size=4096))
    assert max(len(chunk) for chunk in chunks) <= 4096
    assert b"".join(chunks) == content


def test_large_blob_round_trips_through_multipart(store: BlobStore, files: FileMaker) -> None:
    content = os.urandom(25 * 1024 * 1024 + 123)
    sha256, source = files.write(content)

    store.put(sha256=sha256, source=source)

    info = store.stat(sha256)
    assert info is not None
    assert info.size == len(content)
    digest = hashlib.sha256()
    for chunk in store.read_chunks(sha256):
        digest.update(chunk)
    assert digest.hexdigest() == sha256


def test_put_twice_is_a_no_op_and_never_overwrites(store: BlobStore, files: FileMaker) -> None:
    sha256, source = files.write(b"original bytes")
    store.put(sha256=sha256, source=source)
    _, impostor = files.write(b"different bytes claiming the same digest")

    store.put(sha256=sha256, source=source)
    store.put(sha256=sha256, source=impostor)

    assert read_all(store, sha256) == b"original bytes"
    assert [info.sha256 for info in store.list()] == [sha256]


def test_putting_stored_bytes_again_makes_them_young(store: BlobStore, files: FileMaker) -> None:
    # The sweeper deletes unreferenced blobs whose list() modified_at is before a cutoff; an
    # orphan that a new upload of the same bytes now relies on must not look old any more.
    content = b"an orphan a township uploads again"
    sha256, source = files.write(content)
    store.put(sha256=sha256, source=source)
    time.sleep(2.2)
    # A second of slack: S3 dates are whole seconds, file times follow a coarse clock.
    cutoff = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    assert listed_ages(store)[sha256] < cutoff

    store.put(sha256=sha256, source=source)

    assert listed_ages(store)[sha256] >= cutoff
    info = store.stat(sha256)
    assert info is not None
    assert info.modified_at >= cutoff
    assert (info.size, read_all(store, sha256)) == (len(content), content)


def listed_ages(store: BlobStore) -> dict[str, datetime]:
    return {info.sha256: info.modified_at for info in store.list()}


def test_a_writer_stores_bytes_as_they_arrive_visible_only_once_committed(
    store: BlobStore,
) -> None:
    content = os.urandom(12 * 1024 * 1024 + 777)  # several S3 parts, the last one short
    sha256 = hashlib.sha256(content).hexdigest()
    writer = store.open_writer(sha256)
    view = memoryview(content)
    for start in range(0, len(content), 700_001):  # pieces that never line up with parts
        writer.write(view[start : start + 700_001])
    assert store.stat(sha256) is None
    assert list(store.list()) == []

    assert writer.commit() is True
    writer.abort()  # harmless after commit

    info = store.stat(sha256)
    assert info is not None
    assert info.size == len(content)
    assert hashlib.sha256(read_all(store, sha256)).hexdigest() == sha256


def test_a_writer_takes_pieces_that_fill_a_part_exactly(store: BlobStore) -> None:
    # Pieces of exactly 1 MiB fill a 5 MiB part to the byte: the store must not wait for more
    # than its buffer may hold.
    content = os.urandom(7 * 1024 * 1024)
    sha256 = hashlib.sha256(content).hexdigest()
    writer = store.open_writer(sha256)
    for start in range(0, len(content), 1024 * 1024):
        writer.write(content[start : start + 1024 * 1024])
    assert writer.commit() is True
    assert hashlib.sha256(read_all(store, sha256)).hexdigest() == sha256


def test_a_small_blob_through_a_writer(store: BlobStore) -> None:
    content = "城关镇入户走访记录".encode()
    sha256 = hashlib.sha256(content).hexdigest()
    writer = store.open_writer(sha256)
    writer.write(content)
    assert writer.commit() is True
    assert read_all(store, sha256) == content


def test_an_aborted_writer_leaves_nothing(store: BlobStore) -> None:
    content = os.urandom(6 * 1024 * 1024)
    sha256 = hashlib.sha256(content).hexdigest()
    writer = store.open_writer(sha256)
    writer.write(content)
    writer.abort()
    writer.abort()
    assert store.stat(sha256) is None
    assert list(store.list()) == []
    fresh = store.open_writer(sha256)  # the same key can be written afterwards
    fresh.write(content)
    assert fresh.commit() is True
    assert store.exists(sha256)


def test_a_writer_for_stored_bytes_keeps_them_and_makes_them_young(
    store: BlobStore, files: FileMaker
) -> None:
    sha256, source = files.write(b"original bytes")
    store.put(sha256=sha256, source=source)
    time.sleep(2.2)
    cutoff = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)

    writer = store.open_writer(sha256)
    writer.write(b"different bytes claiming the same digest")
    assert writer.commit() is True

    assert read_all(store, sha256) == b"original bytes"
    assert listed_ages(store)[sha256] >= cutoff
    assert [info.sha256 for info in store.list()] == [sha256]


def test_a_writer_reusing_its_part_buffers_keeps_every_part_intact(store: BlobStore) -> None:
    # Many more parts than buffers: a buffer refilled while its part is still on its way would
    # store the wrong bytes under the digest.
    content = os.urandom(23 * 1024 * 1024 + 12_345)
    sha256 = hashlib.sha256(content).hexdigest()
    writer = store.open_writer(sha256)
    view = memoryview(content)
    for start in range(0, len(content), 65_536):
        writer.write(view[start : start + 65_536])
    assert writer.skipping is False
    assert writer.commit() is True
    assert hashlib.sha256(read_all(store, sha256)).hexdigest() == sha256


def test_a_writer_whose_stored_blob_vanishes_says_so_or_stores_the_bytes(
    store: BlobStore, files: FileMaker
) -> None:
    # The caller relies on this: commit answers False only when the writer said it was skipping
    # the bytes, and then nothing half-written is visible.
    content = b"stored, then swept while the same bytes arrive again"
    sha256, source = files.write(content)
    store.put(sha256=sha256, source=source)
    writer = store.open_writer(sha256)
    writer.write(content)
    skipping = writer.skipping
    store.delete(sha256)

    committed = writer.commit()
    writer.abort()

    if skipping:
        assert committed is False
        assert store.stat(sha256) is None
    else:
        assert committed is True
        assert read_all(store, sha256) == content


def test_list_shows_every_stored_blob(store: BlobStore, files: FileMaker) -> None:
    assert list(store.list()) == []
    stored = {}
    for content in (b"first", b"second blob", b"\x00" * 300):
        sha256, source = files.write(content)
        store.put(sha256=sha256, source=source)
        stored[sha256] = len(content)

    assert {info.sha256: info.size for info in store.list()} == stored


def test_delete_removes_a_blob_and_is_a_no_op_when_absent(
    store: BlobStore, files: FileMaker
) -> None:
    sha256, source = files.write(b"orphan")
    kept, kept_source = files.write(b"kept")
    store.put(sha256=sha256, source=source)
    store.put(sha256=kept, source=kept_source)

    store.delete(sha256)
    store.delete(sha256)

    assert not store.exists(sha256)
    assert store.stat(sha256) is None
    assert [info.sha256 for info in store.list()] == [kept]


def test_missing_blob_has_no_stat_and_reading_it_is_not_found(store: BlobStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()

    assert not store.exists(missing)
    assert store.stat(missing) is None
    with pytest.raises(NotFound):
        read_all(store, missing)


def test_a_key_that_is_not_a_sha256_is_refused(store: BlobStore) -> None:
    with pytest.raises(ValueError, match="sha256"):
        store.stat("../../etc/passwd")


def test_ping_passes_on_a_working_store(store: BlobStore) -> None:
    store.ping()


def test_download_url_serves_the_bytes_under_the_chinese_name(
    store: BlobStore, files: FileMaker
) -> None:
    content = "县政府工作报告".encode() * 100
    sha256, source = files.write(content)
    store.put(sha256=sha256, source=source)
    header = "attachment; filename=\"___.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A%E4%B9%A6.pdf"

    url = store.download_url(
        sha256, filename_header=header, content_type="application/pdf", expires_seconds=60
    )

    if isinstance(store, LocalBlobStore):
        assert url is None
        return
    assert url is not None
    fetched = httpx.get(url, timeout=30)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == content
    assert fetched.headers["content-disposition"] == header
    assert fetched.headers["content-type"] == "application/pdf"


# S3 only: how a broken object store shows itself.


def test_settings_with_an_s3_endpoint_open_the_s3_store(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path / "data",
        s3_endpoint=f"http://{s3_server.endpoint}",
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_bucket=bucket,
    )

    store = open_blob_store(settings)

    assert isinstance(store, S3BlobStore)
    store.ping()


def test_wrong_credentials_are_backend_unavailable(
    s3_server: S3Server, bucket: str, files: FileMaker
) -> None:
    # Opening does not fail (a process starts and reports not ready); every use does.
    store = s3_store(s3_server, bucket, secret_key="not-the-secret")
    sha256, source = files.write(b"refused")

    with pytest.raises(BackendUnavailable) as raised:
        store.ping()
    assert raised.value.backend == "object store"
    with pytest.raises(BackendUnavailable):
        store.put(sha256=sha256, source=source)


def test_a_closed_port_is_backend_unavailable(bucket: str, files: FileMaker) -> None:
    server = S3Server(f"127.0.0.1:{free_port()}", "materials-test", "secret", Path("unused"))
    store = s3_store(server, bucket)
    sha256, source = files.write(b"nowhere to go")

    with pytest.raises(BackendUnavailable):
        store.ping()
    with pytest.raises(BackendUnavailable):
        store.put(sha256=sha256, source=source)
    with pytest.raises(BackendUnavailable):
        list(store.list())
    writer = store.open_writer(sha256)
    with pytest.raises(BackendUnavailable):
        writer.write(b"nowhere to go")
    writer.abort()


def test_a_store_down_at_start_creates_its_bucket_once_it_answers(
    tmp_path: Path, bucket: str, files: FileMaker
) -> None:
    server = start_seaweedfs(tmp_path / "late")
    server.stop()
    store = s3_store(server, bucket)
    with pytest.raises(BackendUnavailable):
        store.ping()

    restart_seaweedfs(server)
    try:
        store.ping()
        sha256, source = files.write(b"stored once the store came up")
        store.put(sha256=sha256, source=source)
        assert read_all(store, sha256) == b"stored once the store came up"
    finally:
        server.stop()


def test_a_stopped_server_is_backend_unavailable(
    tmp_path: Path, bucket: str, files: FileMaker
) -> None:
    server = start_seaweedfs(tmp_path / "short-lived")
    try:
        store = s3_store(server, bucket)
        sha256, source = files.write(b"stored before the outage")
        store.put(sha256=sha256, source=source)
    finally:
        server.stop()

    with pytest.raises(BackendUnavailable):
        store.ping()
    with pytest.raises(BackendUnavailable):
        store.stat(sha256)
    with pytest.raises(BackendUnavailable):
        read_all(store, sha256)
    with pytest.raises(BackendUnavailable):
        store.put(sha256=sha256, source=source)
    with pytest.raises(BackendUnavailable):
        list(store.list())


# ---------------------------------------------------------------- records (signed checkpoints)


def test_records_are_written_once_listed_and_read_back(store: BlobStore) -> None:
    name = "audit/checkpoints/00000000000000000003-ab12"
    store.put_record(name, "materials.county/audit\n3\n签名\n".encode(), retain_days=1)
    store.put_record("audit/checkpoints/00000000000000000007-cd34", b"second", retain_days=1)
    # Written once: a second put of the same name keeps the first bytes.
    store.put_record(name, b"rewritten", retain_days=1)
    assert list(store.list_records("audit/checkpoints")) == [
        name,
        "audit/checkpoints/00000000000000000007-cd34",
    ]
    assert store.read_record(name).decode() == "materials.county/audit\n3\n签名\n"
    with pytest.raises(NotFound):
        store.read_record("audit/checkpoints/none")
    # Records are not blobs: the orphan sweeper never sees them.
    assert list(store.list()) == []
    for bad in ("../escape", "audit/../../x", "Audit/Upper", ""):
        with pytest.raises(ValueError, match="not a record name"):
            store.put_record(bad, b"x", retain_days=1)


@pytest.mark.parametrize("kind", ["seaweedfs", "minio"])
def test_s3_records_are_kept_under_object_lock(
    request: pytest.FixtureRequest, kind: str, bucket: str
) -> None:
    server: S3Server = request.getfixturevalue(kind)
    store = s3_store(server, bucket)
    assert store.put_record("audit/checkpoints/1-aa", b"note", retain_days=1) is True
    client = store._client
    client.remove_object(bucket, "records/audit/checkpoints/1-aa")  # only hides it
    versions = [
        found
        for found in client.list_objects(
            bucket, prefix="records/", recursive=True, include_version=True
        )
        if not found.is_delete_marker
    ]
    assert len(versions) == 1
    with pytest.raises(S3Error):
        client.remove_object(
            bucket, "records/audit/checkpoints/1-aa", version_id=versions[0].version_id
        )


# Unfinished writes: what an upload killed mid-way (kill -9) leaves in the store.


@pytest.fixture(params=["local", "seaweedfs"])
def listing_store(request: pytest.FixtureRequest, tmp_path: Path, bucket: str) -> BlobStore:
    """The stores that list unfinished writes (MinIO lists multipart uploads by exact key only,
    see below)."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    server: S3Server = request.getfixturevalue(request.param)
    return s3_store(server, bucket)


def abandoned_write(store: BlobStore, content: bytes) -> str:
    """A writer that received ``content`` and was neither committed nor aborted, as a killed
    process leaves it: a writer dropped cleans nothing up (no finalizer; the temporary file is
    not deleted on close), so dropping it is the kill. Its sha256."""
    sha256 = hashlib.sha256(content).hexdigest()
    writer = store.open_writer(sha256)
    writer.write(content)
    del writer
    gc.collect()
    return sha256


def whole_seconds_ago(seconds: int) -> datetime:
    # S3 dates are whole seconds, file times follow a coarse clock.
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds)


def test_an_unfinished_write_is_kept_while_young_and_discarded_once_old(
    listing_store: BlobStore, files: FileMaker
) -> None:
    store = listing_store
    before = whole_seconds_ago(1)
    content = os.urandom(11 * 1024 * 1024)  # two whole S3 parts: a multipart upload exists
    sha256 = abandoned_write(store, content)
    kept, source = files.write(b"a finished blob beside it")
    store.put(sha256=kept, source=source)
    finished = store.open_writer(hashlib.sha256(b"finished").hexdigest())
    finished.write(b"finished")
    assert finished.commit() is True
    aborted = store.open_writer(hashlib.sha256(content[:6_000_000]).hexdigest())
    aborted.write(content[:6_000_000])
    aborted.abort()
    assert store.stat(sha256) is None  # never visible as a blob

    # Within the grace period it may be an upload in progress: neither listed nor touched.
    assert list(store.unfinished_writes(older_than=before)) == []
    assert list(store.discard_unfinished(older_than=before)) == []

    time.sleep(4)  # S3 parts land a moment after the writer took them; then a second more
    cutoff = whole_seconds_ago(1)
    [old] = store.unfinished_writes(older_than=cutoff)
    assert f"{sha256[:2]}/{sha256[2:4]}/" in old.name  # where it was going
    assert 0 < old.size <= len(content)
    assert old.written_at < cutoff
    assert store.unfinished_writes(older_than=cutoff) == [old]  # listing changes nothing

    assert list(store.discard_unfinished(older_than=cutoff)) == [old]

    assert list(store.unfinished_writes(older_than=whole_seconds_ago(-60))) == []
    assert list(store.discard_unfinished(older_than=whole_seconds_ago(-60))) == []
    assert sorted(info.sha256 for info in store.list()) == sorted(
        [kept, hashlib.sha256(b"finished").hexdigest()]
    )
    assert read_all(store, kept) == b"a finished blob beside it"
    again = store.open_writer(sha256)  # the same key can be written afterwards
    again.write(content)
    assert again.commit() is True
    assert hashlib.sha256(read_all(store, sha256)).hexdigest() == sha256


def test_a_write_still_receiving_bytes_is_never_discarded(listing_store: BlobStore) -> None:
    # Begun before the cutoff, but bytes arrived after it: an upload in progress.
    store = listing_store
    content = os.urandom(13 * 1024 * 1024)
    sha256 = hashlib.sha256(content).hexdigest()
    writer = store.open_writer(sha256)
    writer.write(content[: 6 * 1024 * 1024])
    time.sleep(2.2)
    cutoff = whole_seconds_ago(1)
    writer.write(content[6 * 1024 * 1024 :])  # fills and sends the next S3 part
    time.sleep(2.5)  # the part lands

    assert list(store.unfinished_writes(older_than=cutoff)) == []
    assert list(store.discard_unfinished(older_than=cutoff)) == []

    assert writer.commit() is True
    assert hashlib.sha256(read_all(store, sha256)).hexdigest() == sha256
    assert list(store.unfinished_writes(older_than=whole_seconds_ago(-60))) == []


def test_minio_lists_no_unfinished_uploads_under_a_prefix(minio: S3Server, bucket: str) -> None:
    # MinIO lists multipart uploads only under an exact object name, so the store finds none
    # there (MinIO discards stale uploads itself, after a day by default); the check still runs.
    store = s3_store(minio, bucket)
    sha256 = abandoned_write(store, os.urandom(6 * 1024 * 1024))
    found = store._client._list_multipart_uploads(bucket, prefix=store._key(sha256)).uploads
    assert len(found) == 1  # the upload is there

    assert list(store.unfinished_writes(older_than=whole_seconds_ago(-60))) == []
    assert list(store.discard_unfinished(older_than=whole_seconds_ago(-60))) == []


def test_a_store_refusing_to_list_uploads_finds_none_and_warns(
    seaweedfs: S3Server,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An S3 server without ListMultipartUploads: the check goes on, and the log says why.
    store = s3_store(seaweedfs, bucket)
    abandoned_write(store, os.urandom(6 * 1024 * 1024))

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        response = urllib3.HTTPResponse(status=501)
        raise S3Error(response, "NotImplemented", "not implemented", bucket, "req", "host")

    monkeypatch.setattr(store._client, "_list_multipart_uploads", refuse)
    with caplog.at_level(logging.WARNING, logger="materials.blobs"):
        assert list(store.unfinished_writes(older_than=whole_seconds_ago(-60))) == []
        assert list(store.discard_unfinished(older_than=whole_seconds_ago(-60))) == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "materials.blobs"]
    assert len(warnings) == 2
    assert "NotImplemented" in warnings[0]
