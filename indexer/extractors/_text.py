"""TXT and CSV: the bytes decoded in the encoding they were written in (Markdown reads them so too).

Chinese Windows writes GB18030/GBK without any marker, and generic detectors call it ISO-8859:
so BOMs first, then strict UTF-8, then strict GB18030, and only then charset-normalizer's guess.
"""

from __future__ import annotations

import codecs

import charset_normalizer

from indexer.extractors import Extracted, ExtractionContext

__all__ = ["PlainTextExtractor", "decode_text", "read_text"]

_BYTES_PER_CHAR = 4  # the most any of these encodings spends on one character
_DETECTION_SAMPLE_BYTES = 64 * 1024


class PlainTextExtractor:
    mime_types = frozenset({"text/plain", "text/csv"})

    def extract(self, context: ExtractionContext) -> Extracted:
        return Extracted(text=read_text(context))


def read_text(context: ExtractionContext) -> str:
    """The file's text, decoded, up to the characters the limits allow."""
    with context.path.open("rb") as file:
        data = file.read(context.limits.max_chars * _BYTES_PER_CHAR)
        complete = not file.read(1)
    return decode_text(data, complete=complete)


def decode_text(data: bytes, *, complete: bool = True) -> str:
    """Decode bytes of unknown encoding; ``complete=False`` lets them end mid-character."""
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data[len(codecs.BOM_UTF8) :], "utf-8", complete=complete, strict=False)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(data, "utf-16", complete=complete, strict=False)
    for encoding in ("utf-8", "gb18030"):
        try:
            return _decode(data, encoding, complete=complete, strict=True)
        except UnicodeDecodeError:
            continue
    guess = charset_normalizer.from_bytes(data[:_DETECTION_SAMPLE_BYTES]).best()
    encoding = guess.encoding if guess is not None else "utf-8"
    return _decode(data, encoding, complete=complete, strict=False)


def _decode(data: bytes, encoding: str, *, complete: bool, strict: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)("strict" if strict else "replace")
    text: str = decoder.decode(data, final=complete)
    return text
