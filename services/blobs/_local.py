"""Blobs as files in a local directory: ``ab/cd/<sha256>``, written atomically and fsynced.

The embedded backend; also what a single-host deployment without S3 uses.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from services.blobs import BlobInfo
from services.errors import BackendUnavailable, NotFound

__all__ = ["LocalBlobStore"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LocalBlobStore:
    name = "local"

    def __init__(self, root: Path) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return self._root / sha256[:2] / sha256[2:4] / sha256

    def put(self, *, sha256: str, source: Path) -> None:
        target = self._path(sha256)
        if target.exists():
            # Refresh its age so the orphan sweeper does not take a blob an upload now relies on.
            os.utime(target)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o440)
            os.replace(tmp_name, target)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            Path(tmp_name).unlink(missing_ok=True)
            raise BackendUnavailable("object store", "文件存储写入失败") from exc

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

    def download_url(
        self, sha256: str, *, filename_header: str, content_type: str, expires_seconds: int
    ) -> str | None:
        return None

    def ping(self) -> None:
        if not os.access(self._root, os.W_OK):
            raise BackendUnavailable("object store", "文件存储目录不可写")
