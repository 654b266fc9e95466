"""PPT (PowerPoint 97–2003), best effort: the text atoms of the main stream, in stream order.

No layout or slide order is rebuilt; text of master slides and handouts is left out.
"""

from __future__ import annotations

import struct

import olefile

from indexer.extractors import Extracted, ExtractionContext
from indexer.extractors._ole import refuse_if_encrypted

__all__ = ["PptExtractor"]

# Record types of [MS-PPT] 2.13.24.
_SLIDE = 0x03EE
_MAIN_MASTER = 0x03F8
_HANDOUT = 0x0FC9
_TEXT_CHARS = 0x0FA0  # UTF-16LE
_TEXT_BYTES = 0x0FA8  # the low bytes of UTF-16 code units below U+0100
_SKIPPED_CONTAINERS = frozenset({_MAIN_MASTER, _HANDOUT})
_FIELD_PLACEHOLDER = "*"  # what date, footer and slide-number placeholders hold


class PptExtractor:
    mime_types = frozenset({"application/vnd.ms-powerpoint"})

    def extract(self, context: ExtractionContext) -> Extracted:
        limits = context.limits
        refuse_if_encrypted(context.path)
        with olefile.OleFileIO(str(context.path)) as ole:
            stream = ole.openstream("PowerPoint Document").read()
        lines: list[str] = []
        notes: list[str] = []
        size = slides = skipping = 0
        open_containers: list[tuple[int, int]] = []  # (end offset, record type)
        position = 0
        while position + 8 <= len(stream):
            while open_containers and position >= open_containers[-1][0]:
                if open_containers.pop()[1] in _SKIPPED_CONTAINERS:
                    skipping -= 1
            version_instance, record_type, length = struct.unpack_from("<HHI", stream, position)
            if version_instance & 0x000F == 0x000F:  # a container: its children follow
                open_containers.append((position + 8 + length, record_type))
                skipping += record_type in _SKIPPED_CONTAINERS
                slides += record_type == _SLIDE
                if slides > limits.max_pages:
                    notes.append("page_limit")
                    break
                position += 8
                continue
            if record_type in (_TEXT_CHARS, _TEXT_BYTES) and not skipping:
                payload = stream[position + 8 : position + 8 + length]
                encoding = "utf-16-le" if record_type == _TEXT_CHARS else "latin-1"
                text = payload.decode(encoding, "replace").strip()
                if text and text != _FIELD_PLACEHOLDER:
                    lines.append(text)
                    size += len(text) + 1
                    if size > limits.max_chars:
                        notes.append("truncated")
                        break
            position += 8 + length
        return Extracted(text="\n".join(lines), notes=notes)
