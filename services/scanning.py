"""Virus scanning of stored files with ClamAV's daemon (clamd), and the rule of what may be served.

A file is scanned once, by the index worker, before it is indexed; until it is found clean it is
neither indexed nor served. Without a configured clamd, files are ``unscanned`` and the setting
``serve_unscanned`` decides whether they are served and indexed (the embedded default).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clamdpy import ClamdNetworkSocket, ClamdUnixSocket
from clamdpy.exceptions import BufferTooLongError, ClamdException

from services.errors import BackendUnavailable
from services.models import ScanStatus

if TYPE_CHECKING:
    from services.config import Settings

__all__ = [
    "ScanVerdict",
    "VirusScanner",
    "may_serve",
    "needs_scan",
    "open_virus_scanner",
]

BACKEND = "antivirus"
CHUNK_BYTES = 1024 * 1024  # per INSTREAM chunk; clamd's StreamMaxLength bounds the whole


@dataclass(frozen=True)
class ScanVerdict:
    status: ScanStatus
    signature: str | None = None  # what ClamAV found, for an infected file


def needs_scan(status: str, *, scanner: VirusScanner | None) -> bool:
    """Must the file be scanned before it is indexed (again)? Files stored while no scanner was
    configured are scanned once one is."""
    return scanner is not None and status in (ScanStatus.pending, ScanStatus.unscanned)


def may_serve(status: str, *, serve_unscanned: bool) -> bool:
    """May a file with this scan status be indexed and downloaded?"""
    if status == ScanStatus.clean:
        return True
    if status in (ScanStatus.unscanned, ScanStatus.too_large):
        return serve_unscanned
    return False


class VirusScanner:
    """A clamd reached over TCP (``host:port``) or a Unix socket (a path)."""

    def __init__(self, address: str, *, timeout_seconds: float) -> None:
        self.address = address
        host, _, port = address.rpartition(":")
        self._client: ClamdNetworkSocket | ClamdUnixSocket
        if host and port.isdigit():
            self._client = _NetworkClamd(
                host=host, port=int(port), timeout=timeout_seconds, max_chunk_size=CHUNK_BYTES
            )
        else:
            self._client = _UnixClamd(
                path=address, timeout=timeout_seconds, max_chunk_size=CHUNK_BYTES
            )

    def scan(self, path: Path) -> ScanVerdict:
        """The verdict on a file; BackendUnavailable when clamd cannot be asked."""
        try:
            with path.open("rb") as stream:
                result = self._client.instream(stream)
        except BufferTooLongError:
            return ScanVerdict(ScanStatus.too_large)
        except (ClamdException, OSError) as exc:
            raise BackendUnavailable(BACKEND, "病毒扫描服务不可用") from exc
        if isinstance(result, str):  # only with raw=True
            raise BackendUnavailable(BACKEND, "病毒扫描服务答复无法识别")
        if result.status == "OK":
            return ScanVerdict(ScanStatus.clean)
        if result.status == "FOUND":
            return ScanVerdict(ScanStatus.infected, result.reason)
        # Files beyond the scan limits (MaxFileSize, MaxScanSize …) when clamd is set to say so.
        if result.reason and "limit" in result.reason.lower():
            return ScanVerdict(ScanStatus.too_large)
        raise BackendUnavailable(BACKEND, f"病毒扫描失败：{result.reason or result.status}")

    def ping(self) -> None:
        """Raise BackendUnavailable when clamd does not answer."""
        try:
            self._client.ping()
        except (ClamdException, OSError) as exc:
            raise BackendUnavailable(BACKEND, "病毒扫描服务不可用") from exc


# clamdpy's clients leave the socket open when connecting fails: these close it.


class _NetworkClamd(ClamdNetworkSocket):
    def _acquire_socket(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=self.timeout)


class _UnixClamd(ClamdUnixSocket):
    def _acquire_socket(self) -> socket.socket:
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            unix.settimeout(self.timeout)
            unix.connect(str(self.socket_path))
        except OSError:
            unix.close()
            raise
        return unix


def open_virus_scanner(settings: Settings) -> VirusScanner | None:
    """The configured clamd, or None (files are then ``unscanned``)."""
    if not settings.clamd_address:
        return None
    return VirusScanner(settings.clamd_address, timeout_seconds=settings.clamd_timeout_seconds)
