"""PDF: the text layer, page by page, with pdfminer.six (right on CJK fonts lacking a Unicode map).

A scan has no text layer: that is noted, not a failure; the OCR decision belongs to the caller.
"""

from __future__ import annotations

import io

from pdfminer.converter import TextConverter
from pdfminer.layout import LAParams
from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser

from indexer.extractors import Extracted, ExtractionContext, ExtractionFailed
from indexer.extractors._ole import ENCRYPTED_REASON

__all__ = ["PdfExtractor"]


class PdfExtractor:
    mime_types = frozenset({"application/pdf"})

    def extract(self, context: ExtractionContext) -> Extracted:
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
        if not text.strip():
            return Extracted(text="", notes=["no_text_layer", *notes])
        return Extracted(text=text, notes=notes)
