"""The file formats township offices upload, built in memory: DOCX, PDF, TXT, Markdown, CSV, XLSX,
PPTX slides and scanned pages (an image-only PDF that only OCR can read).

Chinese PDFs use the standard STSong-Light CID font (no embedding), as Office's "save as PDF" does.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from xml.sax.saxutils import escape

import openpyxl
import pptx
from pptx.util import Pt

from tests.samples import docx_from_paragraphs, pdf_from_objects
from tests.scans import scanned_pdf

__all__ = ["CONTENT_TYPES", "EXTENSIONS", "render_rows", "render_text"]

EXTENSIONS = {
    "docx": ".docx",
    "pdf": ".pdf",
    "txt": ".txt",
    "txt-gb18030": ".txt",
    "md": ".md",
    "csv": ".csv",
    "csv-gb18030": ".csv",
    "xlsx": ".xlsx",
    "pptx": ".pptx",
    "scan": ".pdf",
    "png": ".png",
}
CONTENT_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "txt-gb18030": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "csv-gb18030": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "scan": "application/pdf",
    "png": "image/png",
}

# A fixed timestamp inside every zip and workbook, so the same corpus is the same bytes.
_STAMP = (2024, 1, 1, 0, 0, 0)
_HEADINGS = tuple("一二三四五六七八九十")


def render_text(fmt: str, lines: Sequence[str]) -> bytes:
    """A prose document (first line the title) in one of the text formats."""
    if fmt == "docx":
        return _docx(lines)
    if fmt == "pdf":
        return _pdf(lines)
    if fmt == "txt":
        return "\n".join(lines).encode("utf-8")
    if fmt == "txt-gb18030":
        # Notepad on a Chinese Windows: GB18030 without a marker, CRLF line ends.
        return "\r\n".join(lines).encode("gb18030")
    if fmt == "md":
        return _markdown(lines).encode("utf-8")
    if fmt == "pptx":
        return _pptx(lines)
    if fmt == "scan":
        return _scan(lines)
    raise ValueError(f"not a prose format: {fmt}")


def render_rows(fmt: str, rows: Sequence[Sequence[str]]) -> bytes:
    """A statistical table (title row, filing row, header, data, notes) as CSV or XLSX."""
    if fmt in ("csv", "csv-gb18030"):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        # Excel writes a BOM for UTF-8; "CSV" saved by WPS on Chinese Windows is GB18030.
        return buffer.getvalue().encode("utf-8-sig" if fmt == "csv" else "gb18030")
    if fmt == "xlsx":
        return _xlsx(rows)
    raise ValueError(f"not a table format: {fmt}")


def _docx(lines: Sequence[str]) -> bytes:
    """One paragraph per line; the title centred and bold, as in a red-letter document."""
    paragraphs = []
    for number, line in enumerate(lines):
        if number == 0:
            props = '<w:pPr><w:jc w:val="center"/></w:pPr>'
            run = '<w:rPr><w:b/><w:sz w:val="36"/></w:rPr>'
        else:
            props, run = "", ""
        paragraphs.append(f"<w:p>{props}<w:r>{run}<w:t>{escape(line)}</w:t></w:r></w:p>")
    return docx_from_paragraphs("".join(paragraphs))


_PDF_CHARS_PER_LINE = 36  # A4 at 14 pt, 50 pt margins
_PDF_LINES_PER_PAGE = 44


def _paged(lines: Sequence[str], *, width: int, height: int) -> list[list[str]]:
    """Lines wrapped at ``width`` characters (words may break across lines), ``height`` a page."""
    wrapped = [
        line[start : start + width]
        for line in lines
        for start in range(0, max(len(line), 1), width)
    ]
    return [wrapped[start : start + height] for start in range(0, len(wrapped), height)]


def _pdf(lines: Sequence[str]) -> bytes:
    """A text-layer PDF: lines wrapped at the page width."""
    pages = _paged(lines, width=_PDF_CHARS_PER_LINE, height=_PDF_LINES_PER_PAGE)
    font = 3 + 2 * len(pages)  # objects: catalog, pages, (page, contents) per page, fonts
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{3 + 2 * n} 0 R".encode() for n in range(len(pages)))
        + f"] /Count {len(pages)} >>".encode(),
    ]
    for number, page in enumerate(pages):
        shown = "\n".join(f"<{line.encode('utf-16-be').hex().upper()}> Tj T*" for line in page)
        stream = f"BT /F1 14 Tf 18 TL 50 790 Td\n{shown}\nET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {4 + 2 * number} "
            f"0 R /Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    objects += [
        f"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
        f"/DescendantFonts [{font + 1} 0 R] >>".encode(),
        f"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo "
        f"<< /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor {font + 2} 0 R "
        f">>".encode(),
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 "
        b"880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
    ]
    return pdf_from_objects(objects)


def _markdown(lines: Sequence[str]) -> str:
    parts = [f"# {lines[0]}"]
    for line in lines[1:]:
        is_heading = line[:1] in _HEADINGS and line[1:2] == "、" and len(line) <= 20
        parts.append(f"## {line}" if is_heading else line)
    return "\n\n".join(parts) + "\n"


_LINES_PER_SLIDE = 5


def _pptx(lines: Sequence[str]) -> bytes:
    """A title slide, then the text five lines a slide, as a report is shown at a meeting."""
    deck = pptx.Presentation()
    title_slide = deck.slides.add_slide(deck.slide_layouts[0])
    title_slide.shapes.title.text = lines[0]
    for start in range(1, len(lines), _LINES_PER_SLIDE):
        slide = deck.slides.add_slide(deck.slide_layouts[6])  # blank
        box = slide.shapes.add_textbox(Pt(40), Pt(40), Pt(640), Pt(460)).text_frame
        box.word_wrap = True
        for number, line in enumerate(lines[start : start + _LINES_PER_SLIDE]):
            paragraph = box.paragraphs[0] if number == 0 else box.add_paragraph()
            paragraph.text = line
            paragraph.font.size = Pt(20)
    stamp = dt.datetime(*_STAMP)
    deck.core_properties.created = stamp
    deck.core_properties.modified = stamp
    deck.core_properties.last_printed = stamp
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


_SCAN_CHARS_PER_LINE = 30  # A4 at 14 pt inside one-inch margins
_SCAN_LINES_PER_PAGE = 26


def _scan(lines: Sequence[str]) -> bytes:
    """The printed, signed paper run through the office scanner: pages of pixels, no text."""
    return scanned_pdf(_paged(lines, width=_SCAN_CHARS_PER_LINE, height=_SCAN_LINES_PER_PAGE))


def _xlsx(rows: Sequence[Sequence[str]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "统计表"
    width = max(len(row) for row in rows)
    for row in rows:
        # Numbers go in as numbers, as a clerk types them.
        sheet.append([int(cell) if cell.isdecimal() else cell for cell in row])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    stamp = dt.datetime(*_STAMP)
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
