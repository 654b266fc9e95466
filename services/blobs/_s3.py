"""Blobs as objects in an S3-compatible store (SeaweedFS, MinIO, AWS): ``blobs/ab/cd/<sha256>``.

Uploads stream from the file in multipart parts; every minio/urllib3 error is translated here.
The bucket is created on first use, so a process starts (and reports not ready) while the store
is down.
"""

from __future__ import annotations

import contextlib
import io
import logging
import mmap
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, REPLACE, CopySource
from minio.datatypes import Object, Part, Upload
from minio.error import MinioException, S3Error
from minio.retention import Retention
from urllib3 import BaseHTTPResponse

from services.blobs import BlobInfo, UnfinishedWrite
from services.errors import BackendUnavailable, NotFound

__all__ = ["S3BlobStore"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PREFIX = "blobs/"
_RECORDS = "records/"
_RECORD_NAME = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_.-]+)*$")
# The smallest part S3 allows: what an upload holds in memory is about three parts.
_PART_SIZE = 5 * 1024 * 1024
# Parts of one streamed upload on their way at once: two, sent while the next fills. Medians of
# 200 MB through the API on a 2-core machine shared with the client and the S3 server, in runs
# of paired rounds: MinIO 1.84 s with one, 1.18 with two, 1.39 with three, 1.22 with four;
# SeaweedFS (which spends about 2.4 s of CPU on 200 MB itself) 3.1 s with one, 3.0 with two, 4.0
# with three. Each part holds a buffer while it is on its way.
_PARTS_IN_FLIGHT = 2
_MISSING = {"NoSuchKey", "NoSuchObject"}
_BACKEND = "object store"
_CONTENT_TYPE = "application/octet-stream"
# Unfinished multipart uploads one listing returns, and listings one discard makes at most.
_UPLOADS_LISTED = 1000
_DISCARD_ROUNDS = 20

_log = logging.getLogger("materials.blobs")


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
        # Whether puts under object-lock retention work here (None: not tried yet).
        self._retention: bool | None = None
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
                self._make_bucket()
        except S3Error as exc:
            # Another process created it between the check and the make.
            if exc.code != "BucketAlreadyOwnedByYou":
                _unavailable(exc)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        self._bucket_ready = True

    def _make_bucket(self) -> None:
        # With object lock where the server has it, so that signed audit checkpoints can be kept
        # under retention; a server without it refuses the option and gets a plain bucket.
        try:
            self._client.make_bucket(self._bucket, object_lock=True)
        except S3Error as exc:
            if exc.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
            _log.warning("object store refused object lock (%s); bucket made without it", exc.code)
            self._client.make_bucket(self._bucket)

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

    def _get(self, key: str, *, missing: NotFound) -> BaseHTTPResponse:
        """The object's response (close and release it); ``missing`` when there is none."""
        self._ensure_bucket()
        try:
            return self._client.get_object(self._bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise missing from exc
            _unavailable(exc)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)

    def read_chunks(self, sha256: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        response = self._get(
            self._key(sha256), missing=NotFound("文件内容不存在", code="blob_missing")
        )
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

    def _uploads(self) -> tuple[Sequence[Upload], bool]:
        """The first unfinished multipart uploads under the blobs' prefix, and whether there are
        more. No further page is asked for: minio's result drops NextUploadIdMarker, and
        SeaweedFS lists uploads out of key order, so markers cannot page through them. A store
        that cannot list them answers none, with a warning."""
        self._ensure_bucket()
        try:
            found = self._client._list_multipart_uploads(
                self._bucket, prefix=_PREFIX, max_uploads=_UPLOADS_LISTED
            )
        except S3Error as exc:
            _log.warning(
                "object store cannot list unfinished uploads (%s: %s); none are discarded",
                exc.code,
                exc.message,
            )
            return [], False
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        return list(found.uploads), found.is_truncated

    def _unfinished(self, upload: Upload, older_than: datetime) -> UnfinishedWrite | None:
        """The upload as an unfinished write when its last part (or its start, before any part)
        came before ``older_than``; None when younger or gone."""
        key, upload_id = upload.object_name, upload.upload_id
        started = upload.initiated_time
        if upload_id is None or started is None or started >= older_than:
            return None
        try:
            parts = self._client._list_parts(self._bucket, key, upload_id).parts
        except S3Error as exc:
            if exc.code == "NoSuchUpload":
                return None  # completed or aborted since it was listed
            _unavailable(exc)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        written_at = max([started, *(part.last_modified for part in parts if part.last_modified)])
        if written_at >= older_than:
            return None
        size = sum(part.size or 0 for part in parts)
        return UnfinishedWrite(f"{key} ({upload_id})", size, written_at)

    def unfinished_writes(self, *, older_than: datetime) -> Sequence[UnfinishedWrite]:
        uploads, _ = self._uploads()
        found = (self._unfinished(upload, older_than) for upload in uploads)
        return [write for write in found if write is not None]

    def discard_unfinished(self, *, older_than: datetime) -> Sequence[UnfinishedWrite]:
        # Listed again after each round of aborts, to reach uploads past the first listing, while
        # a round still discards some and the listing had more (bounded all the same).
        discarded: list[UnfinishedWrite] = []
        for _ in range(_DISCARD_ROUNDS):
            uploads, more = self._uploads()
            this_round = 0
            for upload in uploads:
                # Checked again now, by its parts: an upload that received bytes since stays.
                write = self._unfinished(upload, older_than)
                if write is None:
                    continue
                assert upload.upload_id is not None
                try:
                    self._client._abort_multipart_upload(
                        self._bucket, upload.object_name, upload.upload_id
                    )
                except S3Error as exc:
                    if exc.code == "NoSuchUpload":
                        continue
                    _unavailable(exc)
                except (MinioException, urllib3.exceptions.HTTPError) as exc:
                    _unavailable(exc)
                discarded.append(write)
                this_round += 1
            if not more or not this_round:
                break
        return discarded

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

    def _record_key(self, name: str) -> str:
        if not _RECORD_NAME.match(name) or ".." in name:
            raise ValueError(f"not a record name: {name!r}")
        return _RECORDS + name

    def put_record(self, name: str, data: bytes, *, retain_days: int) -> bool:
        key = self._record_key(name)
        self._ensure_bucket()
        if self._stat_key(key) is not None:
            return False
        if self._retention is not False:
            until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=retain_days)
            try:
                self._put_small(key, data, retention=Retention(COMPLIANCE, until))
                self._retention = True
                return True
            except S3Error as exc:
                if exc.code not in ("InvalidRequest", "NotImplemented", "InvalidBucketState"):
                    _unavailable(exc)
                _log.warning(
                    "object store keeps audit checkpoints without retention (%s: %s)",
                    exc.code,
                    exc.message,
                )
                self._retention = False
            except (MinioException, urllib3.exceptions.HTTPError) as exc:
                _unavailable(exc)
        try:
            self._put_small(key, data)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        return False

    def _put_small(self, key: str, data: bytes, *, retention: Retention | None = None) -> None:
        self._client.put_object(
            self._bucket,
            key,
            io.BytesIO(data),
            length=len(data),
            content_type="text/plain; charset=utf-8",
            retention=retention,
        )

    def list_records(self, prefix: str) -> Iterator[str]:
        self._ensure_bucket()
        try:
            for found in self._client.list_objects(
                self._bucket, prefix=self._record_key(prefix.rstrip("/")) + "/", recursive=True
            ):
                if found.object_name:
                    yield found.object_name[len(_RECORDS) :]
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)

    def read_record(self, name: str) -> bytes:
        response = self._get(
            self._record_key(name), missing=NotFound("记录不存在", code="record_missing")
        )
        try:
            return response.read()
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)
        finally:
            response.close()
            response.release_conn()

    def ping(self) -> None:
        self._ensure_bucket()
        try:
            if not self._client.bucket_exists(self._bucket):
                raise BackendUnavailable(_BACKEND, "对象存储桶不存在")
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            _unavailable(exc)


class _S3Writer:
    """A multipart upload fed while the request body still arrives, two parts on their way.

    Parts go up on a small thread pool as soon as they are full; the upload is completed only on
    commit, and aborted on abort or failure, so a blob sent in part never becomes visible. A blob
    smaller than a part is one PUT on commit. When the key already exists the bytes are not sent
    again (``skipping``): commit renews its age instead. What one upload holds: three part-sized
    buffers (the one filling and the two on their way), reused from part to part. They are anonymous
    maps, given back to the system when the upload ends: 5 MiB blocks from malloc stayed in the
    worker threads' arenas and the idle process grew by 15 MiB after uploads.
    """

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self._store = store
        self._client = store._client
        self._bucket = store._bucket
        self._key = key
        self._existed: bool | None = None  # checked on the first write, off the event loop
        self._buffer: mmap.mmap | None = None  # the part filling
        self._filled = 0
        self._spare: list[mmap.mmap] = []  # buffers of parts already sent
        self._upload_id: str | None = None
        self._parts: list[Future[Part]] = []
        self._in_flight: list[tuple[Future[Part], mmap.mmap]] = []
        self._pool: ThreadPoolExecutor | None = None

    @property
    def skipping(self) -> bool:
        return bool(self._existed)

    def write(self, data: bytes | memoryview) -> None:
        if self._existed is None:
            self._existed = self._store._stat_key(self._key) is not None
        if self._existed:
            return  # the store holds these bytes already
        view = memoryview(data)
        while view.nbytes:
            if self._buffer is None:
                self._buffer = self._spare.pop() if self._spare else mmap.mmap(-1, _PART_SIZE)
            taken = min(view.nbytes, _PART_SIZE - self._filled)
            self._buffer[self._filled : self._filled + taken] = view[:taken]
            self._filled += taken
            view = view[taken:]
            if self._filled == _PART_SIZE:
                self._send()

    def commit(self) -> bool:
        if self._existed is None:
            self._existed = self._store._stat_key(self._key) is not None
        if self._existed:
            return self._store._refresh(self._key)
        with self._failures():
            if self._upload_id is None:
                last = memoryview(self._buffer or b"")[: self._filled]
                self._client.put_object(
                    self._bucket, self._key, io.BytesIO(last), last.nbytes, _CONTENT_TYPE
                )
                self._release()
                return True
            if self._filled:
                self._send()
            parts = [future.result() for future in self._parts]
            self._client._complete_multipart_upload(self._bucket, self._key, self._upload_id, parts)
            self._upload_id = None
        self._release()
        return True

    def abort(self) -> None:
        for future in self._parts:
            future.cancel()
        self._release()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            with contextlib.suppress(MinioException, urllib3.exceptions.HTTPError):
                self._client._abort_multipart_upload(self._bucket, self._key, upload_id)

    def _send(self) -> None:
        """Start uploading the filled buffer as the next part, first waiting while the one before
        is still on its way."""
        with self._failures():
            if self._upload_id is None:
                self._upload_id = self._client._create_multipart_upload(
                    self._bucket, self._key, {"Content-Type": _CONTENT_TYPE}
                )
                self._pool = ThreadPoolExecutor(_PARTS_IN_FLIGHT, thread_name_prefix="blob-part")
            while len(self._in_flight) >= _PARTS_IN_FLIGHT or (
                self._in_flight and self._in_flight[0][0].done()
            ):
                future, buffer = self._in_flight.pop(0)
                future.result()  # a failed part fails the upload now
                self._spare.append(buffer)
            assert self._pool is not None
            assert self._buffer is not None
            buffer, part = self._buffer, memoryview(self._buffer)[: self._filled]
            self._buffer, self._filled = None, 0
            future = self._pool.submit(self._upload_part, part, len(self._parts) + 1)
            self._parts.append(future)
            self._in_flight.append((future, buffer))

    def _upload_part(self, data: memoryview, number: int) -> Part:
        assert self._upload_id is not None
        # minio and urllib3 take any bytes-like body: the part is sent from the buffer itself.
        etag = self._client._upload_part(
            self._bucket,
            self._key,
            data,  # type: ignore[arg-type]
            None,
            self._upload_id,
            number,
        )
        return Part(number, etag)

    def _release(self) -> None:
        """Stop the part threads and let go of the buffers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._buffer, self._filled = None, 0
        self._spare, self._in_flight = [], []

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Any failure aborts the multipart upload and is BackendUnavailable."""
        try:
            yield
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            self.abort()
            _unavailable(exc)
