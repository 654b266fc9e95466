"""Blobs as files in a local directory: ``ab/cd/<sha256>``, written atomically and fsynced.

The embedded backend; also what a single-host deployment without S3 uses.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from services.blobs import BlobInfo, UnfinishedWrite
from services.errors import BackendUnavailable, NotFound
from services.private_files import make_private_dir

__all__ = ["LocalBlobStore"]

_BACKEND = "object store"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RECORD_NAME = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_.-]+)*$")
# Records live beside the blobs' ab/cd/ directories, where no blob name can be.
_RECORDS = "records"
# How a writer's hidden temporary file is named, beside its target.
_INCOMING = ".incoming-"


class LocalBlobStore:
    name = "local"

    def __init__(self, root: Path) -> None:
        self._root = root
        make_private_dir(self._root)

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return self._root / sha256[:2] / sha256[2:4] / sha256

    def put(self, *, sha256: str, source: Path) -> None:
        writer = self.open_writer(sha256)
        try:
            with source.open("rb") as src:
                while chunk := src.read(1024 * 1024):
                    writer.write(chunk)
            writer.commit()
        finally:
            writer.abort()

    def open_writer(self, sha256: str) -> _LocalWriter:
        return _LocalWriter(self._path(sha256))

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def stat(self, sha256: str) -> BlobInfo | None:
        try:
            st = self._path(sha256).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(sha256, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def read_chunks(self, sha256: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        try:
            handle = self._path(sha256).open("rb")
        except FileNotFoundError as exc:
            raise NotFound("文件内容不存在", code="blob_missing") from exc
        with handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def list(self) -> Iterator[BlobInfo]:
        for path in sorted(self._root.glob("??/??/*")):
            if _SHA256.match(path.name):
                st = path.stat()
                yield BlobInfo(path.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def _incoming(self) -> Iterator[Path]:
        """The writers' temporary files: beside blobs, and beside records."""
        yield from self._root.glob(f"??/??/{_INCOMING}*")
        yield from (self._root / _RECORDS).rglob(f"{_INCOMING}*")

    def _unfinished(self, path: Path, older_than: datetime) -> UnfinishedWrite | None:
        """The temporary file as an unfinished write when its last bytes came before
        ``older_than`` (a writer moves its mtime with every write); None when younger or gone."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        written_at = datetime.fromtimestamp(st.st_mtime, UTC)
        if written_at >= older_than:
            return None
        return UnfinishedWrite(path.relative_to(self._root).as_posix(), st.st_size, written_at)

    def unfinished_writes(self, *, older_than: datetime) -> Sequence[UnfinishedWrite]:
        found = (self._unfinished(path, older_than) for path in sorted(self._incoming()))
        return [write for write in found if write is not None]

    def discard_unfinished(self, *, older_than: datetime) -> Sequence[UnfinishedWrite]:
        discarded: list[UnfinishedWrite] = []
        for write in self.unfinished_writes(older_than=older_than):
            path = self._root / write.name
            if self._unfinished(path, older_than) is None:
                continue  # written to since it was listed: a write in progress stays
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # committed or aborted meanwhile
            except OSError as exc:
                raise BackendUnavailable(_BACKEND, "文件存储写入失败") from exc
            discarded.append(write)
        return discarded

    def download_url(
        self, sha256: str, *, filename_header: str, content_type: str, expires_seconds: int
    ) -> str | None:
        return None

    def _record_path(self, name: str) -> Path:
        if not _RECORD_NAME.match(name) or ".." in name:
            raise ValueError(f"not a record name: {name!r}")
        return self._root / _RECORDS / name

    def put_record(self, name: str, data: bytes, *, retain_days: int) -> bool:
        # A read-only file; a local directory has no retention that its owner cannot undo.
        path = self._record_path(name)
        if path.exists():
            return False
        writer = _LocalWriter(path)
        try:
            writer.write(data)
            writer.commit()
        finally:
            writer.abort()
        return False

    def list_records(self, prefix: str) -> Iterator[str]:
        base = self._root / _RECORDS
        directory = self._record_path(prefix.rstrip("/"))
        if not directory.is_dir():
            return
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(base).as_posix()

    def read_record(self, name: str) -> bytes:
        try:
            return self._record_path(name).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound("记录不存在", code="record_missing") from exc
        except OSError as exc:
            raise BackendUnavailable(_BACKEND, "文件存储读取失败") from exc

    def ping(self) -> None:
        if not os.access(self._root, os.W_OK):
            raise BackendUnavailable(_BACKEND, "文件存储目录不可写")


class _LocalWriter:
    """A hidden temporary file beside the target, renamed into place (fsynced) on commit."""

    def __init__(self, target: Path) -> None:
        self._target = target
        self._file: IO[bytes] | None = None
        self._done = False

    def write(self, data: bytes | memoryview) -> None:
        try:
            if self._file is None:
                make_private_dir(self._target.parent)
                # mkstemp: 0600 whatever the umask.
                self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in commit/abort
                    dir=self._target.parent, prefix=_INCOMING, delete=False
                )
            self._file.write(data)
        except OSError as exc:
            raise BackendUnavailable(_BACKEND, "文件存储写入失败") from exc

    @property
    def skipping(self) -> bool:
        return False  # the bytes are always kept, so commit stores them if the blob went meanwhile

    def commit(self) -> bool:
        try:
            if not self._refreshed():
                if self._file is None:
                    self.write(b"")
                assert self._file is not None
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                os.chmod(self._file.name, 0o400)  # the owner's alone, and never rewritten
                os.replace(self._file.name, self._target)
                _fsync_directory(self._target.parent)
        except OSError as exc:
            raise BackendUnavailable(_BACKEND, "文件存储写入失败") from exc
        finally:
            self.abort()
        return True

    def _refreshed(self) -> bool:
        """Renew a stored blob's age (the orphan sweeper must not take a blob an upload relies
        on); False when there is none."""
        try:
            os.utime(self._target)
        except FileNotFoundError:
            return False
        return True

    def abort(self) -> None:
        if self._file is not None and not self._done:
            self._done = True
            with contextlib.suppress(OSError):
                self._file.close()
            Path(self._file.name).unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
