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
from indexer.extractors._ocr import MAX_SIDE_PIXELS, read_scan, unread_scan
from indexer.extractors._ole import ENCRYPTED_REASON

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
        unread = unread_scan(context, notes)
        if unread is not None:
            return unread
        scan = pypdfium2.PdfDocument(str(context.path))
        try:
            return read_scan(
                context,
                page_count=len(scan),
                pages=lambda count: _rendered(scan, count),
                deadline=deadline,
                notes=notes,
            )
        finally:
            scan.close()


# Body text of 10.5–14 pt read best at 150–200 dpi; 300 dpi was slower and, at 14 pt, worse.
_DPI = 200
_POINTS_PER_INCH = 72


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
