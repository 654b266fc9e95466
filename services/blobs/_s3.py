"""Blobs as objects in an S3-compatible store (SeaweedFS, MinIO, AWS): ``blobs/ab/cd/<sha256>``.

Uploads stream from the file in multipart parts; every minio/urllib3 error is translated here.
The bucket is created on first use, so a process starts (and reports not ready) while the store
is down.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.datatypes import Object, Part
from minio.error import MinioException, S3Error

from services.blobs import BlobInfo
from services.errors import BackendUnavailable, NotFound

__all__ = ["S3BlobStore"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PREFIX = "blobs/"
# The smallest part S3 allows: what an upload holds in memory is about two parts.
_PART_SIZE = 5 * 1024 * 1024
_MISSING = {"NoSuchKey", "NoSuchObject"}
_BACKEND = "object store"
_CONTENT_TYPE = "application/octet-stream"

_log = logging.getLogger(__name__)


def _unavailable(exc: Exception) -> NoReturn:
    raise BackendUnavailable(_BACKEND) from exc


class S3BlobStore:
    name = "s3"

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str | None,
        secret_key: str | None,
        bucket: str,
        secure: bool = False,
    ) -> None:
        if "://" in endpoint:
            scheme, _, endpoint = endpoint.partition("://")
            secure = scheme == "https"
        # minio's default client retries a refused connection for seconds and waits minutes for
        # a read; a request handler should learn quickly that the store is down.
        http_client = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            retries=urllib3.Retry(
                total=2, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]
            ),
            maxsize=10,
        )
        self._client = Minio(
            endpoint.rstrip("/"),
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            http_client=http_client,
        )
        self._bucket = bucket
        self._bucket_ready = False
        try:
            self._ensure_bucket()
        except BackendUnavailable as exc:
            # Not fatal: every use tries again, and /readyz reports the store until it answers.
            _log.warning(
                "object store %s unavailable at start (%s); bucket %s will be created on first use",
                endpoint,
                exc.__cause__ or exc,
                bucket,
            )

    def _ensure_bucket(self) -> None:
        """Create the bucket unless this process already saw it; BackendUnavailable otherwise."""
        if self._bucket_ready:
            return
        try:
            if not self._client.bucket_exists(self._bucket):
                self._client.make_bucket(self._bucket)
        except S3Error as exc:
            # Another process created it between the check and the make.
            if exc.code != "BucketAlreadyOwnedByYou":
                _unavailable(exc)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        self._bucket_ready = True

    def _key(self, sha256: str) -> str:
        if not _SHA256.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return f"{_PREFIX}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def put(self, *, sha256: str, source: Path) -> None:
        key = self._key(sha256)
        self._ensure_bucket()
        # Content-addressed: a stored key already holds these bytes, so it is never rewritten.
        if self._refresh(key):
            return
        try:
            with source.open("rb") as data:
                self._client.put_object(
                    self._bucket,
                    key,
                    data,
                    length=-1,
                    part_size=_PART_SIZE,
                    content_type=_CONTENT_TYPE,
                )
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)

    def _refresh(self, key: str) -> bool:
        """Renew a stored object's Last-Modified without rewriting its bytes; False when absent.

        The orphan sweeper judges age by Last-Modified, and an upload now relies on this blob. A
        copy onto itself with REPLACEd metadata is the S3 way to touch an object (a copy without
        a change is refused); SeaweedFS and MinIO both move Last-Modified and keep the bytes
        (MinIO rewrites a multipart object as one part, so its ETag changes).
        """
        try:
            self._client.copy_object(
                self._bucket,
                key,
                CopySource(self._bucket, key),
                metadata={
                    "Content-Type": _CONTENT_TYPE,
                    "x-amz-meta-referenced-at": datetime.now(UTC).isoformat(),
                },
                metadata_directive=REPLACE,
            )
        except S3Error as exc:
            if exc.code in _MISSING:
                return False
            _unavailable(exc)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        return True

    def open_writer(self, sha256: str) -> _S3Writer:
        return _S3Writer(self, self._key(sha256))

    def _upload_parts(self, key: str, parts: queue.Queue[bytes | _Last | None]) -> None:
        """Runs on a writer's thread: each full part goes up as soon as it is handed over.

        The upload is completed only when the last piece comes (commit); ``None`` (abort) or any
        failure aborts it, so a blob sent in part never becomes visible. A blob smaller than one
        part is a single PUT when its last piece comes. (The SDK's put_object would read a
        stream, but it holds up to three copies of a part; its multipart steps are used directly.)
        """
        self._ensure_bucket()
        client, bucket = self._client, self._bucket
        upload_id: str | None = None
        done: list[Part] = []
        try:
            while True:
                item = parts.get()
                if item is None:
                    raise _Aborted
                if isinstance(item, _Last) and upload_id is None:
                    client.put_object(
                        bucket, key, io.BytesIO(item.data), len(item.data), _CONTENT_TYPE
                    )
                    return
                data = item.data if isinstance(item, _Last) else item
                if upload_id is None:
                    upload_id = client._create_multipart_upload(
                        bucket, key, {"Content-Type": _CONTENT_TYPE}
                    )
                if data:
                    number = len(done) + 1
                    etag = client._upload_part(bucket, key, data, None, upload_id, number)
                    done.append(Part(number, etag))
                if isinstance(item, _Last):
                    client._complete_multipart_upload(bucket, key, upload_id, done)
                    return
        except BaseException as exc:
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    client._abort_multipart_upload(bucket, key, upload_id)
            if isinstance(exc, (MinioException, urllib3.exceptions.HTTPError)):
                _unavailable(exc)
            raise

    def exists(self, sha256: str) -> bool:
        return self.stat(sha256) is not None

    def stat(self, sha256: str) -> BlobInfo | None:
        found = self._stat_key(self._key(sha256))
        if found is None:
            return None
        return BlobInfo(sha256, found.size or 0, found.last_modified or datetime.now(UTC))

    def _stat_key(self, key: str) -> Object | None:
        self._ensure_bucket()
        try:
            return self._client.stat_object(self._bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            _unavailable(exc)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)

    def read_chunks(self, sha256: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        key = self._key(sha256)
        self._ensure_bucket()
        try:
            response = self._client.get_object(self._bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise NotFound("文件内容不存在", code="blob_missing") from exc
            _unavailable(exc)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        try:
            yield from response.stream(chunk_size)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        finally:
            response.close()
            response.release_conn()

    def delete(self, sha256: str) -> None:
        key = self._key(sha256)
        self._ensure_bucket()
        try:
            self._client.remove_object(self._bucket, key)
        except S3Error as exc:
            if exc.code not in _MISSING:
                _unavailable(exc)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)

    def list(self) -> Iterator[BlobInfo]:
        self._ensure_bucket()
        try:
            for found in self._client.list_objects(self._bucket, prefix=_PREFIX, recursive=True):
                sha256 = (found.object_name or "").rsplit("/", 1)[-1]
                if _SHA256.match(sha256):
                    modified = found.last_modified or datetime.now(UTC)
                    yield BlobInfo(sha256, found.size or 0, modified)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)

    def download_url(
        self, sha256: str, *, filename_header: str, content_type: str, expires_seconds: int
    ) -> str | None:
        try:
            return self._client.presigned_get_object(
                self._bucket,
                self._key(sha256),
                expires=timedelta(seconds=expires_seconds),
                response_headers={
                    "response-content-disposition": filename_header,
                    "response-content-type": content_type,
                },
            )
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)

    def ping(self) -> None:
        self._ensure_bucket()
        try:
            if not self._client.bucket_exists(self._bucket):
                raise BackendUnavailable(_BACKEND, "对象存储桶不存在")
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)


class _Aborted(Exception):
    """The writer was aborted: its uploading thread stops with this."""


@dataclass(frozen=True)
class _Last:
    """The end of a blob's bytes, handed to the uploading thread on commit."""

    data: bytes


class _S3Writer:
    """Parts handed to an uploading thread while the request body still arrives.

    At most three parts are in memory: one filling, one waiting, one on its way. When the key
    already exists the bytes are not sent again: commit renews its age instead.
    """

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._parts: queue.Queue[bytes | _Last | None] = queue.Queue(maxsize=1)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._error: BaseException | None = None
        self._existed: bool | None = None  # decided on the thread, before any byte is sent
        self._started = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="blob-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._existed = self._store._stat_key(self._key) is not None
            self._started.set()
            if not self._existed:
                self._store._upload_parts(self._key, self._parts)
        except _Aborted:
            pass
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()

    def write(self, data: bytes | memoryview) -> None:
        self._started.wait()
        self._raise_failure()
        if self._existed:
            return  # the store holds these bytes already
        self._pending.append(bytes(data))
        self._pending_bytes += len(data)
        while self._pending_bytes >= _PART_SIZE:
            self._hand_over(self._take(_PART_SIZE))

    def commit(self) -> bool:
        self._started.wait()
        self._raise_failure()
        self._finished = True
        if self._existed:
            return self._store._refresh(self._key)
        self._hand_over(_Last(self._take(self._pending_bytes)))
        self._thread.join()
        self._raise_failure()
        return True

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._pending, self._pending_bytes = [], 0
        if self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._parts.get_nowait()  # a part not yet taken need not go up
            with contextlib.suppress(BackendUnavailable):
                self._hand_over(None)
        self._thread.join(timeout=60)

    def _take(self, size: int) -> bytes:
        """The first ``size`` pending bytes, as one object (one copy)."""
        pieces: list[bytes] = []
        taken = 0
        while taken < size:
            piece = self._pending.pop(0)
            if taken + len(piece) > size:  # split: the rest stays pending
                self._pending.insert(0, piece[size - taken :])
                piece = piece[: size - taken]
            pieces.append(piece)
            taken += len(piece)
        self._pending_bytes -= size
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _hand_over(self, item: bytes | _Last | None) -> None:
        """Queue the next part, waiting while the previous one is still being taken."""
        while True:
            try:
                self._parts.put(item, timeout=1.0)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._raise_failure()
                    raise BackendUnavailable(_BACKEND) from None

    def _raise_failure(self) -> None:
        if self._error is not None:
            if isinstance(self._error, BackendUnavailable):
                raise self._error
            raise BackendUnavailable(_BACKEND) from self._error
