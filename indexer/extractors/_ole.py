"""OLE2 compound files (DOC, XLS, PPT, WPS, ET, encrypted OOXML): is it one, is it encrypted.

msoffcrypto-tool reads each format's own encryption flag (FIB, FILEPASS, CryptSession…).
"""

from __future__ import annotations

from pathlib import Path

import msoffcrypto

from indexer.extractors import ExtractionFailed

__all__ = ["ENCRYPTED_REASON", "is_ole", "refuse_if_encrypted"]

ENCRYPTED_REASON = "文件已加密，无法提取文字"

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def is_ole(path: Path) -> bool:
    """Does the file start like an OLE2 compound file?"""
    with path.open("rb") as file:
        return file.read(len(_OLE_MAGIC)) == _OLE_MAGIC


def refuse_if_encrypted(path: Path) -> None:
    """ExtractionFailed(encrypted) when the file is password-protected."""
    try:
        with path.open("rb") as file:
            encrypted = bool(msoffcrypto.OfficeFile(file).is_encrypted())
    # msoffcrypto does not know every variant (Kingsoft's, damaged ones): the reader decides.
    except Exception:
        return
    if encrypted:
        raise ExtractionFailed(ENCRYPTED_REASON, code="encrypted")
