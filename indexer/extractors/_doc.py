"""DOC and Kingsoft WPS (Word 97–2003 binary in OLE2): text via Debian's ``antiword``.

antiword refuses documents whose text is small enough to live in the OLE mini stream ("text stream
too small", i.e. most one-page notices saved by LibreOffice or Word for Mac); for those, and where
antiword is not installed, the piece table is read here directly.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import olefile

from indexer.extractors import Extracted, ExtractionContext, ExtractionFailed
from indexer.extractors._ole import refuse_if_encrypted

__all__ = ["DocExtractor"]


class DocExtractor:
    mime_types = frozenset({"application/msword", "application/wps-office.wps"})

    def extract(self, context: ExtractionContext) -> Extracted:
        refuse_if_encrypted(context.path)
        text = _antiword_text(context)
        if text is None:
            text = _piece_table_text(context)
        return Extracted(text=text)


def _antiword_text(context: ExtractionContext) -> str | None:
    """antiword's text, or None when it is missing or cannot handle the file."""
    binary = shutil.which("antiword")
    if binary is None:
        return None
    completed = subprocess.run(  # noqa: S603 - a fixed program on a path we own
        # -w 0: no hard line wraps, which would split words; -m: UTF-8 whatever the locale.
        [binary, "-w", "0", "-m", "UTF-8.txt", str(context.path)],
        capture_output=True,
        timeout=context.limits.timeout_seconds,
        env={"PATH": os.defpath, "HOME": os.environ.get("HOME", "/"), "LC_ALL": "C.UTF-8"},
        check=False,
    )
    if completed.returncode != 0:
        return None
    lines = []
    for line in completed.stdout.decode("utf-8", "replace").splitlines():
        line = line.rstrip()
        if len(line) > 1 and line[0] == line[-1] == "|":  # a table row: |cell   |cell   |
            line = "\t".join(cell.strip() for cell in line[1:-1].split("|"))
        if line.strip() and line.strip() != "[pic]":
            lines.append(line)
    return "\n".join(lines)


# The File Information Block of Word 97 and later ([MS-DOC] 2.5).
_WORD_IDENT = 0xA5EC
_FIRST_WORD97_NFIB = 0x00C0
_FLAG_WHICH_TABLE = 0x0200
_CLX_INDEX = 33  # fcClx/lcbClx in FibRgFcLcb97
_FIELD_BEGIN, _FIELD_SEPARATOR, _FIELD_END = "\x13", "\x14", "\x15"


def _piece_table_text(context: ExtractionContext) -> str:
    """The main document text, assembled from the piece table."""
    with olefile.OleFileIO(str(context.path)) as ole:
        word = ole.openstream("WordDocument").read()
        ident, nfib = struct.unpack_from("<HH", word, 0)
        (flags,) = struct.unpack_from("<H", word, 0x0A)
        if ident != _WORD_IDENT:
            raise ValueError("not a Word document")
        if nfib < _FIRST_WORD97_NFIB:
            raise ExtractionFailed("不支持 Word 95 及更早版本的 DOC 文件", code="unsupported")
        table = ole.openstream("1Table" if flags & _FLAG_WHICH_TABLE else "0Table").read()

    (csw,) = struct.unpack_from("<H", word, 0x20)
    long_words = 0x22 + csw * 2 + 2
    (cslw,) = struct.unpack_from("<H", word, long_words - 2)
    (text_length,) = struct.unpack_from("<i", word, long_words + 12)  # ccpText
    pairs = long_words + cslw * 4 + 2
    clx_offset, clx_length = struct.unpack_from("<II", word, pairs + _CLX_INDEX * 8)
    clx = table[clx_offset : clx_offset + clx_length]

    position = 0
    while clx[position] == 0x01:  # Prc: property modifiers, skipped
        (size,) = struct.unpack_from("<H", clx, position + 1)
        position += 3 + size
    if clx[position] != 0x02:
        raise ValueError("no piece table")
    (pieces_length,) = struct.unpack_from("<I", clx, position + 1)
    pieces = clx[position + 5 : position + 5 + pieces_length]
    count = (len(pieces) - 4) // 12
    limit = min(text_length, context.limits.max_chars)

    chunks: list[str] = []
    for index in range(count):
        start, end = struct.unpack_from("<ii", pieces, index * 4)
        if start >= limit:
            break
        length = min(end, limit) - start
        (file_offset,) = struct.unpack_from("<I", pieces, (count + 1) * 4 + index * 8 + 2)
        if file_offset & 0x40000000:  # 8-bit text in Windows-1252
            offset = (file_offset & 0x3FFFFFFF) // 2
            chunks.append(word[offset : offset + length].decode("cp1252", "replace"))
        else:
            chunks.append(
                word[file_offset : file_offset + 2 * length].decode("utf-16-le", "replace")
            )
    return _without_field_codes("".join(chunks)).replace("\r", "\n")


def _without_field_codes(text: str) -> str:
    """Keep what fields display (HYPERLINK targets, PAGE codes… are dropped)."""
    kept: list[str] = []
    fields: list[bool] = []  # per open field: are we in its displayed result yet?
    in_code = 0  # open fields still in their code part
    for char in text:
        if char == _FIELD_BEGIN:
            fields.append(False)
            in_code += 1
        elif char == _FIELD_SEPARATOR and fields and not fields[-1]:
            fields[-1] = True
            in_code -= 1
        elif char == _FIELD_END and fields:
            if not fields.pop():
                in_code -= 1
        elif not in_code:
            kept.append(char)
    return "".join(kept)
