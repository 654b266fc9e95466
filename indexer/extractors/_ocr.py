"""OCR with Tesseract (``chi_sim``) for pages without text: scanned PDFs, photos of paper.

Runs inside the extraction helper: Tesseract inherits its memory cap and CPU limit, sits in its
process group (killed with it when the file's time runs out) and stops itself before that deadline.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import shutil
import subprocess
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from PIL import Image

from indexer.extractors import Extracted, ExtractionContext
from indexer.extractors._time import ask_for_time

__all__ = [
    "LANGUAGES",
    "OcrResult",
    "ocr_unavailable",
    "read_scan",
    "recognise_pages",
    "unread_scan",
]

# chi_sim reads Latin letters and digits too; adding eng doubled the time without fewer errors.
LANGUAGES = "chi_sim"
# Words Tesseract is less sure of than this are noise (a photo's texture, a stamp's outline).
# Kept low: on rendered pages, each step up to 40 dropped more real characters than noise.
_MIN_CONFIDENCE = 20.0
# Page segmentation "one uniform block of text": township papers are single-column; the automatic
# layout analysis (3) called a page with one short line empty and made 4× the errors on full pages.
_PAGE_SEGMENTATION = "6"
# Past this many pixels on the longer side a page only costs time: 300 dpi A4 is 3508.
MAX_SIDE_PIXELS = 4000
# Time kept back from the file's limit for the helper to answer before it is killed.
_MARGIN_SECONDS = 2.0


@dataclass
class OcrResult:
    text: str
    pages_read: int = 0
    notes: list[str] = field(default_factory=list)  # ocr_incomplete: the time ran out


@functools.cache
def ocr_unavailable() -> str | None:
    """Why this server cannot OCR (Tesseract or its Chinese data missing), or None when it can."""
    binary = shutil.which("tesseract")
    if binary is None:
        return "tesseract"
    try:
        listed = subprocess.run(  # noqa: S603 - a fixed program found on PATH
            [binary, "--list-langs"], capture_output=True, timeout=30, check=False, env=_env()
        )
    except (OSError, subprocess.SubprocessError):
        return "tesseract"
    languages = set(listed.stdout.decode("utf-8", "replace").split())
    return None if "chi_sim" in languages else "chi_sim"


def unread_scan(context: ExtractionContext, notes: list[str]) -> Extracted | None:
    """What a scan without a text layer gives when it cannot be OCRed (turned off, or Tesseract
    missing); None when it can."""
    if context.limits.ocr_max_pages <= 0:
        return Extracted(text="", notes=["no_text_layer", *notes])
    if ocr_unavailable():
        return Extracted(text="", notes=["no_text_layer", "ocr_unavailable", *notes])
    return None


def read_scan(
    context: ExtractionContext,
    *,
    page_count: int,
    pages: Callable[[int], Iterable[Image.Image]],
    deadline: float,
    notes: list[str],
) -> Extracted:
    """A document without a text layer (a scanned PDF or OFD): its first pages recognised.

    ``pages(n)`` yields the images of the first ``n`` pages. Reading the file took part of the
    per-file time (``deadline``); recognition asks for its own time for each page. Call it when
    ``unread_scan`` found nothing in the way.
    """
    limits = context.limits
    count = min(page_count, limits.max_pages, limits.ocr_max_pages)
    if page_count > limits.ocr_max_pages < limits.max_pages:
        notes.append("ocr_page_limit")
    deadline += ask_for_time(count * limits.ocr_seconds_per_page)
    result = recognise_pages(pages(count), deadline=deadline)
    return Extracted(
        text=result.text, notes=["no_text_layer", *notes, *result.notes], ocr=bool(result.text)
    )


def recognise_pages(pages: Iterable[Image.Image], *, deadline: float) -> OcrResult:
    """The text of each page image, pages separated by a blank line; stops before ``deadline``."""
    texts: list[str] = []
    result = OcrResult(text="")
    for page in pages:
        remaining = deadline - _MARGIN_SECONDS - time.monotonic()
        if remaining <= 0:
            result.notes.append("ocr_incomplete")
            break
        try:
            texts.append(_recognise(page, timeout=remaining))
        except subprocess.TimeoutExpired:
            result.notes.append("ocr_incomplete")
            break
        result.pages_read += 1
    result.text = "\n\n".join(text for text in texts if text)
    return result


def _recognise(page: Image.Image, *, timeout: float) -> str:
    if page.mode in ("RGBA", "LA", "PA") or "transparency" in page.info:
        # Transparent pixels are often black underneath: text on them would vanish.
        backdrop = Image.new("RGBA", page.size, "white")
        page = Image.alpha_composite(backdrop, page.convert("RGBA"))
    image = page.convert("L")
    if max(image.size) > MAX_SIDE_PIXELS:
        image.thumbnail((MAX_SIDE_PIXELS, MAX_SIDE_PIXELS))
    png = io.BytesIO()
    image.save(png, "PNG", compress_level=1)
    binary = shutil.which("tesseract") or "tesseract"
    completed = subprocess.run(  # noqa: S603 - a fixed program on PATH, the page on stdin
        [binary, "stdin", "stdout", "-l", LANGUAGES, "--psm", _PAGE_SEGMENTATION, "tsv"],
        input=png.getvalue(),
        capture_output=True,
        timeout=timeout,
        env=_env(),
        check=False,
    )
    if completed.returncode != 0:  # a page Tesseract cannot read has no text for us
        return ""
    return _lines_of(completed.stdout.decode("utf-8", "replace"))


def _lines_of(tsv: str) -> str:
    """Confident words of Tesseract's TSV, joined per line; no space between Chinese words."""
    lines: dict[tuple[str, str, str, str], list[str]] = {}
    rows = csv.reader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    next(rows, None)  # the header
    for row in rows:
        if len(row) < 12 or row[0] != "5" or not row[11].strip():
            continue
        try:
            confidence = float(row[10])
        except ValueError:
            continue
        if confidence < _MIN_CONFIDENCE:
            continue
        words = lines.setdefault((row[1], row[2], row[3], row[4]), [])
        words.append(row[11].strip())
    return "\n".join(_join(words) for words in lines.values())


def _join(words: list[str]) -> str:
    joined = words[0]
    for word in words[1:]:
        if not (_is_wide(joined[-1]) or _is_wide(word[0])):
            joined += " "
        joined += word
    return joined


def _is_wide(char: str) -> bool:
    """CJK characters and full-width punctuation, written without spaces between them."""
    return unicodedata.east_asian_width(char) in ("W", "F")


def _env() -> dict[str, str]:
    env = {"PATH": os.defpath, "LC_ALL": "C.UTF-8", "OMP_THREAD_LIMIT": "1"}
    # A Tesseract installed outside the system's prefix finds its language data through this.
    if "TESSDATA_PREFIX" in os.environ:
        env["TESSDATA_PREFIX"] = os.environ["TESSDATA_PREFIX"]
    return env
