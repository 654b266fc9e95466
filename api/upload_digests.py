"""The sha256 digests ``materials upload`` looks files up by: computed ahead, remembered locally.

A file's digest is computed by one background thread, in batch order and a file ahead of the
sender, so hashing overlaps the login and the previous file's upload. A digest is also kept in a
small SQLite file in the user's cache folder, keyed by what changes whenever a file's content
does (size, modification and status-change times in nanoseconds, inode and device): running the
same folder again reads none of the files it already hashed, only asks the server about them.

A record is kept only when the file was quiet while it was read (the same status before and
after) and had not changed for ``QUIET_SECONDS`` before the reading began, so a file being
written during the run, or within the file system's timestamp resolution of it, is hashed again
next time. ``--rehash`` ignores the records.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

__all__ = [
    "HASH_CHUNK",
    "QUIET_SECONDS",
    "DigestCache",
    "Digests",
    "default_cache_dir",
    "sha256_of",
]

HASH_CHUNK = 1024 * 1024
# A file changed less than this long before it was read is hashed again on the next run.
QUIET_SECONDS = 2.0
# Records not used for this long are dropped when the cache is opened.
FORGET_AFTER_SECONDS = 180 * 24 * 3600
CACHE_FILE = "digests.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    used REAL NOT NULL
)
"""


def default_cache_dir() -> Path:
    """The user's cache folder for this program (``~/.cache/county-materials`` on Linux,
    ``%LOCALAPPDATA%\\county-materials\\Cache`` on Windows)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("county-materials", appauthor=False))


def sha256_of(path: Path, *, stop: threading.Event | None = None) -> tuple[str, int]:
    """The file's sha256 (hex) and size, read in chunks; ``stop`` set abandons it (OSError)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            if stop is not None and stop.is_set():
                raise OSError("hashing stopped")
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _identity(status: os.stat_result) -> tuple[int, int, int, int, int]:
    """What changes whenever the file's content does."""
    return (status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev)


class DigestCache:
    """Digests of files hashed before, in SQLite under ``directory`` (created 0700, file 0600).

    Used by one thread at a time (the hashing thread). A cache that cannot be opened or written
    (read-only home, a damaged file) only means every file is hashed: it never fails a run.
    """

    def __init__(
        self,
        directory: Path,
        *,
        quiet_seconds: float = QUIET_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directory = directory
        self._quiet_ns = int(quiet_seconds * 1e9)
        self._clock = clock
        self._connection: sqlite3.Connection | None = None
        self._opened = False

    def _open(self) -> sqlite3.Connection | None:
        if self._opened:
            return self._connection
        self._opened = True
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self._directory / CACHE_FILE
            path.touch(mode=0o600, exist_ok=True)
            connection = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
            connection.execute(_SCHEMA)
            connection.execute(
                "DELETE FROM digests WHERE used < ?", (self._clock() - FORGET_AFTER_SECONDS,)
            )
            connection.commit()
        except (OSError, sqlite3.Error):
            return None
        self._connection = connection
        return connection

    def digest(self, path: Path, *, stop: threading.Event | None = None) -> tuple[str, int]:
        """The file's sha256 and size: remembered when the file is unchanged, else read."""
        key = str(path.resolve())
        before = path.stat()
        connection = self._open()
        if connection is not None:
            try:
                row = connection.execute(
                    "SELECT size, mtime_ns, ctime_ns, inode, device, sha256 FROM digests "
                    "WHERE path = ?",
                    (key,),
                ).fetchone()
            except sqlite3.Error:
                row = None
            if row is not None and tuple(row[:5]) == _identity(before):
                self._remember(connection, key, before, str(row[5]))
                return str(row[5]), before.st_size
        began_ns = int(self._clock() * 1e9)
        sha256, size = sha256_of(path, stop=stop)
        after = path.stat()
        quiet = _identity(before) == _identity(after) and size == after.st_size
        settled = max(after.st_mtime_ns, after.st_ctime_ns) <= began_ns - self._quiet_ns
        if connection is not None and quiet and settled:
            self._remember(connection, key, after, sha256)
        return sha256, size

    def _remember(
        self, connection: sqlite3.Connection, key: str, status: os.stat_result, sha256: str
    ) -> None:
        try:
            connection.execute(
                "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, *_identity(status), sha256, self._clock()),
            )
            connection.commit()
        except sqlite3.Error:
            pass  # a cache that cannot be written only costs the next run a hash

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class Digests:
    """The batch's sha256 digests, computed in order by one thread ahead of their use.

    Hashing starts before the login, so the two overlap (on a re-upload they are nearly all the
    time there is); while one file is sent, the next is hashed. At most ``ahead`` files are
    hashed before they are asked for, so a large folder does not fight its own uploads for the
    disk. hashlib releases the GIL while it hashes, so the thread costs the sender nothing.
    """

    def __init__(
        self, files: Sequence[Path], *, cache: DigestCache | None = None, ahead: int = 1
    ) -> None:
        self._files = list(files)
        self._cache = cache
        self._ahead = ahead
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self._pending: dict[int, Future[tuple[str, int]]] = {}
        self._next = 0
        self._fill(0)

    def _digest(self, path: Path) -> tuple[str, int]:
        if self._cache is None:
            return sha256_of(path, stop=self._stop)
        return self._cache.digest(path, stop=self._stop)

    def _fill(self, position: int) -> None:
        while self._next < len(self._files) and self._next <= position + self._ahead:
            path = self._files[self._next]
            self._pending[self._next] = self._pool.submit(self._digest, path)
            self._next += 1

    def of(self, position: int) -> tuple[str, int]:
        """The digest and size of file number ``position`` (raises the OSError reading it)."""
        self._fill(position)
        return self._pending.pop(position).result()

    def __enter__(self) -> Digests:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()  # a batch that stopped early does not wait for a large file's hash
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._cache is not None:
            self._cache.close()
