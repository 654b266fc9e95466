"""Text extraction: one extractor per format behind one interface, bounded against hostile files.

``extract(context)`` picks the extractor declaring the document's MIME type and runs it under the
context's limits in a separate process, killed when it takes longer than ``timeout_seconds`` (plus
``ocr_seconds_per_page`` for each scanned page it starts to recognise); a file that cannot be read
raises ``ExtractionFailed`` with a reason for people.

Notes an ``Extracted`` may carry: ``no_text_layer`` (PDF/OFD without text, e.g. a scan),
``truncated`` (text cut at ``max_chars``), ``page_limit`` (pages, slides, sheets or rows beyond the
limits were not read), ``not_extracted`` (no extractor for the type, or an image format this server
cannot open), ``ocr_unavailable`` (a scan or photo, but Tesseract or its Chinese data is missing),
``ocr_page_limit`` (scanned pages beyond ``ocr_max_pages`` were not recognised), ``ocr_incomplete``
(the time ran out before every scanned page was recognised). ``ExtractionFailed.code`` is one of
encrypted | corrupt | too_large | timeout | unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "Extracted",
    "ExtractionContext",
    "ExtractionFailed",
    "ExtractionLimits",
    "Extractor",
    "extract",
]


@dataclass(frozen=True)
class ExtractionLimits:
    max_chars: int = 1_000_000  # text kept per document; the rest is cut (noted)
    max_pages: int = 2_000  # PDF pages / slides / sheets read
    max_uncompressed_bytes: int = 256 * 1024 * 1024  # zip-based formats: total of all members
    max_compression_ratio: int = 100  # zip-based formats: uncompressed / compressed
    timeout_seconds: float = 60.0  # per file
    max_rows: int = 100_000  # spreadsheet rows read per sheet
    max_memory_bytes: int = 2 * 1024 * 1024 * 1024  # address space of the extracting process
    ocr_max_pages: int = 20  # scanned PDF pages recognised with Tesseract; 0 turns OCR off
    ocr_seconds_per_page: float = 10.0  # time OCR may add per page (about 5 s a page measured)


@dataclass(frozen=True)
class ExtractionContext:
    path: Path
    content_type: str
    filename: str
    limits: ExtractionLimits = ExtractionLimits()


@dataclass
class Extracted:
    text: str
    exif: dict[str, Any] | None = None  # images: captured_at or recorded_at, gps {lat, lon}, camera
    notes: list[str] = field(default_factory=list)  # e.g. "no_text_layer", "truncated"
    ocr: bool = False  # the text was recognised in page images, not read from the file

    @property
    def text_source(self) -> str:
        """Where the text came from: ``text_layer`` (the file's own text), ``ocr`` or ``none``."""
        if not self.text.strip():
            return "none"
        return "ocr" if self.ocr else "text_layer"

    def remark(self, limits: ExtractionLimits) -> str | None:
        """What a person should know about text that was not read, in Chinese; None if nothing."""
        if "ocr_unavailable" in self.notes:
            return _OCR_UNAVAILABLE_REMARK
        if "ocr_incomplete" in self.notes:
            return (
                f"扫描页较多，文字识别超过时限（每页 {limits.ocr_seconds_per_page:g} 秒），"
                "只识别了部分页面"
            )
        if "ocr_page_limit" in self.notes:
            return f"扫描件只识别了前 {limits.ocr_max_pages} 页的文字"
        return None


_OCR_UNAVAILABLE_REMARK = (
    "扫描件或图片中的文字未能识别：服务器未安装文字识别组件（tesseract-ocr、tesseract-ocr-chi-sim），"
    "仍可按标题、标签和说明检索"
)


class ExtractionFailed(Exception):
    """The file cannot be read: encrypted, corrupt, too large when unpacked, or too slow."""

    def __init__(self, reason: str, *, code: str) -> None:
        super().__init__(reason)
        self.reason = reason  # Simplified Chinese, shown to people
        self.code = code  # machine code: encrypted | corrupt | too_large | timeout | unsupported


class Extractor(Protocol):
    mime_types: frozenset[str]

    def extract(self, context: ExtractionContext) -> Extracted: ...


def extract(context: ExtractionContext) -> Extracted:
    """Extract text (and image metadata) from a file; ExtractionFailed when it cannot be read."""
    # Imported here: the extractor modules import the types above from this package.
    from indexer.extractors._dispatch import extractor_for
    from indexer.extractors._sandbox import extract_in_child_process

    if extractor_for(context.content_type) is None:
        return Extracted(text="", notes=["not_extracted"])
    return extract_in_child_process(context)
