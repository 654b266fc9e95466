"""Content-addressed blob storage: the ``BlobStore`` protocol and the factory choosing a backend.

A blob's key is its sha256; identical bytes are stored once. Implementations are private modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from services.config import Settings

__all__ = ["BlobInfo", "BlobStore", "BlobWriter", "UnfinishedWrite", "open_blob_store"]


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    modified_at: datetime


@dataclass(frozen=True)
class UnfinishedWrite:
    """A write begun and neither committed nor aborted: its process was killed mid-upload. Never
    visible as a blob, but its bytes hold space until discarded."""

    name: str  # where it is in the store: a temporary file's path, or a key and its upload id
    size: int  # bytes it holds
    written_at: datetime  # when its last bytes arrived


class BlobWriter(Protocol):
    """Bytes on their way into the store while they still arrive; invisible until committed."""

    def write(self, data: bytes | memoryview) -> None:
        """Add the next bytes; may wait while the store catches up. BackendUnavailable when the
        store failed."""

    @property
    def skipping(self) -> bool:
        """True once the writer found the blob already stored and stopped keeping the bytes:
        ``commit`` may then answer False, so the caller keeps its own copy of the file."""

    def commit(self) -> bool:
        """Make the blob visible under its sha256, which the caller has checked the bytes against.

        False only after ``skipping``: an identical blob existed when writing began but has gone
        since, and the bytes were not kept. The caller then puts the file itself.
        """

    def abort(self) -> None:
        """Drop what was written; nothing stays behind. Harmless after commit or abort."""


class BlobStore(Protocol):
    """Where document bytes live, keyed by their sha256."""

    name: str

    def put(self, *, sha256: str, source: Path) -> None:
        """Store the file at ``source`` under its sha256, durably; a no-op when already stored."""

    def open_writer(self, sha256: str) -> BlobWriter:
        """Store bytes under ``sha256`` as they arrive (an upload streamed on into the store)."""

    def exists(self, sha256: str) -> bool:
        """Is a blob stored under this sha256?"""

    def stat(self, sha256: str) -> BlobInfo | None:
        """Size and modification time of a blob, or None when absent."""

    def read_chunks(self, sha256: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The blob's bytes, in chunks; NotFound when absent."""

    def delete(self, sha256: str) -> None:
        """Remove a blob (orphans only); a no-op when absent."""

    def list(self) -> Iterator[BlobInfo]:
        """Every stored blob."""

    def unfinished_writes(self, *, older_than: datetime) -> Sequence[UnfinishedWrite]:
        """The unfinished writes whose last bytes arrived before ``older_than`` (a write still
        receiving bytes is younger). S3: of the first 1000 unfinished uploads the store lists."""

    def discard_unfinished(self, *, older_than: datetime) -> Sequence[UnfinishedWrite]:
        """Discard the unfinished writes whose last bytes arrived before ``older_than``, each
        checked again just before it goes, so that one receiving bytes now stays; those
        discarded."""

    def ping(self) -> None:
        """Raise BackendUnavailable when the store cannot be used."""

    def put_record(self, name: str, data: bytes, *, retain_days: int) -> bool:
        """Keep a small record that must outlive tampering with the database (a signed audit
        checkpoint) under ``name`` (``a/b/c``), written once: under object-lock retention for
        ``retain_days`` where the store supports it. True when the store locked it."""

    def list_records(self, prefix: str) -> Iterator[str]:
        """The names of the records under ``prefix``."""

    def read_record(self, name: str) -> bytes:
        """A record's bytes; NotFound when absent."""

    def download_url(
        self, sha256: str, *, filename_header: str, content_type: str, expires_seconds: int
    ) -> str | None:
        """A short-lived URL that serves the blob with these response headers, or None when the
        store cannot make one."""


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings choose: a local directory unless an S3 endpoint is set."""
    if settings.s3_endpoint:
        from services.blobs._s3 import S3BlobStore

        return S3BlobStore(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
        )
    from services.blobs._local import LocalBlobStore

    return LocalBlobStore(settings.blob_dir)
