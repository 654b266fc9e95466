"""PDF: the text layer, page by page, with pdfminer.six (right on CJK fonts lacking a Unicode map).

A scan has no text layer (noted ``no_text_layer``): its first ``ocr_max_pages`` pages are rendered
at 200 dpi with pypdfium2 and recognised with Tesseract. A PDF with a text layer is never OCRed.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pypdfium2
from pdfminer.converter import TextConverter
from pdfminer.layout import LAParams
from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from PIL import Image

from indexer.extractors import Extracted, ExtractionContext, ExtractionFailed
from indexer.extractors._ocr import MAX_SIDE_PIXELS, ocr_unavailable, recognise_pages
from indexer.extractors._ole import ENCRYPTED_REASON
from indexer.extractors._time import ask_for_time

__all__ = ["PdfExtractor"]


class PdfExtractor:
    mime_types = frozenset({"application/pdf"})

    def extract(self, context: ExtractionContext) -> Extracted:
        deadline = time.monotonic() + context.limits.timeout_seconds
        limits = context.limits
        notes: list[str] = []
        output = io.StringIO()
        with context.path.open("rb") as file:
            try:
                # An owner password alone (the empty user password opens it) does not stop us.
                document = PDFDocument(PDFParser(file), password="")
            except (PDFPasswordIncorrect, PDFEncryptionError) as exc:
                raise ExtractionFailed(ENCRYPTED_REASON, code="encrypted") from exc
            resources = PDFResourceManager(caching=True)
            device = TextConverter(resources, output, laparams=LAParams())
            interpreter = PDFPageInterpreter(resources, device)
            for number, page in enumerate(PDFPage.create_pages(document)):
                if number >= limits.max_pages:
                    notes.append("page_limit")
                    break
                interpreter.process_page(page)
                if output.tell() > limits.max_chars:
                    notes.append("truncated")
                    break
            device.close()
        text = output.getvalue()
        if text.strip():
            return Extracted(text=text, notes=notes)
        if limits.ocr_max_pages <= 0:
            return Extracted(text="", notes=["no_text_layer", *notes])
        if ocr_unavailable():
            return Extracted(text="", notes=["no_text_layer", "ocr_unavailable", *notes])
        return _ocr(context, deadline, notes)


# Body text of 10.5–14 pt read best at 150–200 dpi; 300 dpi was slower and, at 14 pt, worse.
_DPI = 200
_POINTS_PER_INCH = 72


def _ocr(context: ExtractionContext, deadline: float, notes: list[str]) -> Extracted:
    document = pypdfium2.PdfDocument(str(context.path))
    try:
        pages = min(len(document), context.limits.max_pages, context.limits.ocr_max_pages)
        if len(document) > context.limits.ocr_max_pages < context.limits.max_pages:
            notes.append("ocr_page_limit")
        # Reading the file took part of the per-file time; OCR has its own for each page.
        deadline += ask_for_time(pages * context.limits.ocr_seconds_per_page)
        result = recognise_pages(_rendered(document, pages), deadline=deadline)
    finally:
        document.close()
    return Extracted(
        text=result.text, notes=["no_text_layer", *notes, *result.notes], ocr=bool(result.text)
    )


def _rendered(document: pypdfium2.PdfDocument, pages: int) -> Iterator[Image.Image]:
    for index in range(pages):
        page = document[index]
        try:
            width, height = page.get_size()
            # A hostile MediaBox of several metres must not become a gigapixel bitmap.
            scale = min(_DPI / _POINTS_PER_INCH, MAX_SIDE_PIXELS / max(width, height, 1.0))
            bitmap = page.render(scale=scale, grayscale=True)
            yield bitmap.to_pil()
        finally:
            page.close()
