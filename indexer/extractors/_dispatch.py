"""The extractor registry and the in-process run of one extractor with its results made uniform.

Runs inside the child process that ``extract`` starts; every failure leaves as ``ExtractionFailed``.
"""

from __future__ import annotations

import re
import unicodedata
import warnings

from indexer.extractors import (
    Extracted,
    ExtractionContext,
    ExtractionFailed,
    ExtractionLimits,
    Extractor,
)
from indexer.extractors._doc import DocExtractor
from indexer.extractors._docx import DocxExtractor
from indexer.extractors._image import ImageExtractor
from indexer.extractors._markdown import MarkdownExtractor
from indexer.extractors._ofd import OfdExtractor
from indexer.extractors._pdf import PdfExtractor
from indexer.extractors._ppt import PptExtractor
from indexer.extractors._pptx import PptxExtractor
from indexer.extractors._text import PlainTextExtractor
from indexer.extractors._xls import XlsExtractor
from indexer.extractors._xlsx import XlsxExtractor
from services.radicals import fold_radicals

__all__ = ["EXTRACTORS", "extract_here", "extractor_for", "finish"]

EXTRACTORS: tuple[Extractor, ...] = (
    PdfExtractor(),
    DocxExtractor(),
    XlsxExtractor(),
    PptxExtractor(),
    DocExtractor(),
    XlsExtractor(),
    PptExtractor(),
    OfdExtractor(),
    PlainTextExtractor(),
    MarkdownExtractor(),
    ImageExtractor(),
)

CORRUPT_REASON = "文件已损坏或格式异常，无法提取文字"
OUT_OF_MEMORY_REASON = "文件处理所需内存超出限制，已停止"

# C0/C1 controls other than tab and newline: NUL cannot be stored in PostgreSQL text, and the rest
# are layout codes (form feeds between PDF pages, Word field marks) that mean nothing to search.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_REPLACEMENTS = {"\x07": "\t", "\x0b": "\n", "\x0c": "\n"}
_NEWLINES = re.compile(r"\r\n?")
_BLANK_LINES = re.compile(r"\n{3,}")
_NOT_FULL_WIDTH = re.compile(r"[^\uff01-\uff5e]+")  # all but the full-width forms of ASCII


def _nfkc(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKC", match.group())


def extractor_for(content_type: str) -> Extractor | None:
    """The extractor declaring this MIME type (parameters and case ignored), or None."""
    mime = content_type.split(";", 1)[0].strip().lower()
    for extractor in EXTRACTORS:
        if mime in extractor.mime_types:
            return extractor
    return None


def extract_here(context: ExtractionContext) -> Extracted:
    """Run the matching extractor in this process; any unexpected error becomes ``corrupt``."""
    extractor = extractor_for(context.content_type)
    if extractor is None:
        return Extracted(text="", notes=["not_extracted"])
    try:
        # Libraries warn about odd but readable files; that is not the caller's business.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            extracted = extractor.extract(context)
    except ExtractionFailed:
        raise
    except MemoryError as exc:
        raise ExtractionFailed(OUT_OF_MEMORY_REASON, code="too_large") from exc
    # A hostile file may break a parser anywhere, in any way; it must not break the caller.
    except Exception as exc:
        raise ExtractionFailed(CORRUPT_REASON, code="corrupt") from exc
    return finish(extracted, context.limits)


def finish(extracted: Extracted, limits: ExtractionLimits) -> Extracted:
    """NFKC-normalise all but the full-width forms, read radicals as ideographs, tidy control
    characters and blank runs, and cut the text at ``max_chars``.

    NFKC turns Kangxi radicals into ideographs; those of the CJK Radicals Supplement, which PDF
    text layers give for some fonts' glyphs (东⻛村 for 东风村), are folded after it. Full-width
    punctuation, digits and letters (，：（）２０) stay as the document writes them: snippets show
    them, and search reads each as its ASCII form, one character for one.
    """
    text = fold_radicals(_NOT_FULL_WIDTH.sub(_nfkc, extracted.text))
    text = _NEWLINES.sub("\n", text)
    text = _CONTROLS.sub(lambda match: _CONTROL_REPLACEMENTS.get(match.group(), ""), text)
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text).strip()
    notes = list(dict.fromkeys(extracted.notes))
    if len(text) > limits.max_chars:
        text = text[: limits.max_chars]
        if "truncated" not in notes:
            notes.append("truncated")
    return Extracted(text=text, exif=extracted.exif, notes=notes, ocr=extracted.ocr)
