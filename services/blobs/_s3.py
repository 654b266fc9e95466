"""Blobs as objects in an S3-compatible store (SeaweedFS, MinIO, AWS): ``blobs/ab/cd/<sha256>``.

Uploads stream from the file in multipart parts; every minio/urllib3 error is translated here.
The bucket is created on first use, so a process starts (and reports not ready) while the store
is down.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, NoReturn, cast

import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.datatypes import Object
from minio.error import MinioException, S3Error

from services.blobs import BlobInfo
from services.errors import BackendUnavailable, NotFound

__all__ = ["S3BlobStore"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PREFIX = "blobs/"
# The smallest part S3 allows: what an upload holds in memory is about two parts.
_PART_SIZE = 5 * 1024 * 1024
# Bytes an upload streamed into the store may have waiting for the uploading thread: one part,
# so the SDK mostly reads a whole part at once.
_PIPE_BYTES = _PART_SIZE
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

    def _stream_put(self, key: str, pipe: _Pipe) -> None:
        """Runs on the writer's thread: a multipart upload fed from ``pipe`` as bytes arrive.

        The SDK completes the upload when the pipe reports its end, which happens only on
        commit; on abort the pipe raises and the SDK aborts the multipart upload.
        """
        self._ensure_bucket()
        try:
            self._client.put_object(
                self._bucket,
                key,
                cast(BinaryIO, pipe),
                length=-1,
                part_size=_PART_SIZE,
                content_type=_CONTENT_TYPE,
            )
        except _Aborted:
            raise
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)

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
    """The writer was aborted: the pipe's reader stops the upload with this."""


class _Pipe:
    """Bytes handed from the request to the SDK's reading thread, at most ``limit`` buffered.

    ``read(n)`` answers n bytes at once where it can (the SDK appends what it reads, so many
    short reads would cost it quadratic copying): fewer only when the buffer is full or at the
    end, which comes with ``close``.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._closed = False
        self._aborted = False
        self._changed = threading.Condition()

    def put(self, data: bytes | memoryview, *, reader: threading.Thread) -> None:
        with self._changed:
            while self._buffered >= self._limit and not self._aborted and reader.is_alive():
                self._changed.wait(timeout=1.0)
            self._chunks.append(bytes(data))
            self._buffered += len(data)
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def abort(self) -> None:
        with self._changed:
            self._aborted = True
            self._chunks.clear()
            self._buffered = 0
            self._changed.notify_all()

    def read(self, size: int = -1) -> bytes:
        with self._changed:
            # Enough for the read, or a full buffer (the writer waits for room), or the end.
            enough = self._limit if size < 0 else min(size, self._limit)
            while True:
                if self._aborted:
                    raise _Aborted
                if self._buffered >= enough or self._closed:
                    break
                self._changed.wait()
            wanted = self._buffered if size < 0 else min(size, self._buffered)
            pieces: list[bytes] = []
            taken = 0
            while taken < wanted:
                chunk = self._chunks.popleft()
                if taken + len(chunk) > wanted:  # split: the rest stays for the next read
                    self._chunks.appendleft(chunk[wanted - taken :])
                    chunk = chunk[: wanted - taken]
                pieces.append(chunk)
                taken += len(chunk)
            self._buffered -= wanted
            self._changed.notify_all()
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _S3Writer:
    """A multipart upload on its own thread, fed while the request body still arrives.

    When the key already exists the bytes are not sent again: commit renews its age instead.
    """

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self._key = key
        self._pipe = _Pipe(limit=_PIPE_BYTES)
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
                self._store._stream_put(self._key, self._pipe)
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
        self._pipe.put(data, reader=self._thread)
        self._raise_failure()

    def commit(self) -> bool:
        self._started.wait()
        self._raise_failure()
        self._finished = True
        if self._existed:
            return self._store._refresh(self._key)
        self._pipe.close()
        self._thread.join()
        self._raise_failure()
        return True

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._pipe.abort()
        self._thread.join(timeout=60)

    def _raise_failure(self) -> None:
        if self._error is not None:
            if isinstance(self._error, BackendUnavailable):
                raise self._error
            raise BackendUnavailable(_BACKEND) from self._error
