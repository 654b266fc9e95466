"""Bounds for zip-based formats (DOCX, XLSX, PPTX, OFD), checked before any library opens them.

The central directory states every member's sizes; zipfile never inflates a member past its stated
size, so refusing on the stated sizes stops zip bombs without inflating anything.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

from indexer.extractors import ExtractionFailed, ExtractionLimits
from indexer.extractors._ole import is_ole, refuse_if_encrypted

__all__ = ["check_archive"]

_MAX_MEMBERS = 50_000
# Small members compress far better than the ratio limit when they are mostly markup or blanks;
# the ratio only says "bomb" once there is something big to inflate.
_RATIO_FLOOR_BYTES = 1024 * 1024

TOO_LARGE_REASON = "文件解压后过大（疑似压缩炸弹），已拒绝处理"
CORRUPT_ARCHIVE_REASON = "文件已损坏（不是有效的压缩包），无法提取文字"


def check_archive(path: Path, limits: ExtractionLimits) -> None:
    """Refuse an encrypted, unreadable or over-large archive; return quietly when it is fine."""
    if is_ole(path):
        # Password-protected OOXML is an OLE2 container around the encrypted zip.
        refuse_if_encrypted(path)
        raise ExtractionFailed(CORRUPT_ARCHIVE_REASON, code="corrupt")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, zlib.error) as exc:
        raise ExtractionFailed(CORRUPT_ARCHIVE_REASON, code="corrupt") from exc
    if len(members) > _MAX_MEMBERS:
        raise ExtractionFailed("压缩包内文件数量过多，已拒绝处理", code="too_large")
    total = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    if total > limits.max_uncompressed_bytes:
        raise ExtractionFailed(TOO_LARGE_REASON, code="too_large")
    # Per member as well: stored filler must not dilute one bomb among honest members.
    if _too_compressed(total, packed, limits) or any(
        _too_compressed(member.file_size, member.compress_size, limits) for member in members
    ):
        raise ExtractionFailed(TOO_LARGE_REASON, code="too_large")


def _too_compressed(size: int, packed: int, limits: ExtractionLimits) -> bool:
    return size > _RATIO_FLOOR_BYTES and size > max(packed, 1) * limits.max_compression_ratio
