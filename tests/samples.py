"""Real files of each accepted format, built in memory for tests."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from xml.sax.saxutils import escape

_DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)


def pdf_bytes(text: str = "Poverty alleviation summary") -> bytes:
    """A minimal, valid one-page PDF with a text layer."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    return pdf_from_objects([*_one_page(stream), font])


def _one_page(stream: bytes) -> list[bytes]:
    """Objects 1 to 4 of a one-page PDF: catalog, pages, the page (its font F1 is object 5) and
    the page's content stream."""
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]


def pdf_with_unicode_text(text: str) -> bytes:
    """A one-page PDF whose text layer reads ``text`` character for character, whatever they are.

    As a PDF printer writes CJK text: each character is a glyph code of an embedded-style font,
    and the font's ToUnicode map says which character each code stands for (here one byte per
    distinct character, so at most 100 of them).
    """
    chars = list(dict.fromkeys(text))
    if len(chars) > 100:
        raise ValueError("at most 100 distinct characters")
    codes = {char: number for number, char in enumerate(chars, start=1)}
    shown = "".join(f"{codes[char]:02X}" for char in text)
    stream = f"BT /F1 12 Tf 72 720 Td <{shown}> Tj ET".encode()
    pairs = "".join(
        f"<{codes[char]:02X}> <{char.encode('utf-16-be').hex().upper()}>\n" for char in chars
    )
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
        "1 begincodespacerange <01> <FF> endcodespacerange\n"
        f"{len(chars)} beginbfchar\n{pairs}endbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    widths = " ".join(["1000"] * len(chars))
    objects = [
        *_one_page(stream),
        # Not one of the standard 14 fonts: its own widths are read, one em per character.
        f"<< /Type /Font /Subtype /Type1 /BaseFont /NotoSansCJKsc-Regular /FirstChar 1 "
        f"/LastChar {len(chars)} /Widths [{widths}] /FontDescriptor 7 0 R "
        f"/ToUnicode 6 0 R >>".encode(),
        b"<< /Length " + str(len(cmap)).encode() + b" >>\nstream\n" + cmap + b"\nendstream",
        b"<< /Type /FontDescriptor /FontName /NotoSansCJKsc-Regular /Flags 4 "
        b"/FontBBox [0 -120 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 700 "
        b"/StemV 80 >>",
    ]
    return pdf_from_objects(objects)


def pdf_from_objects(objects: list[bytes]) -> bytes:
    """A PDF file of the given objects (numbered from 1, the first being the catalog)."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode())
    out.write(f"startxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def png_bytes(width: int = 4, height: int = 4, colour: bytes = b"\x10\x80\x40") -> bytes:
    """A valid RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + colour * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


_DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
    'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
    'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)
_WORD_NAMESPACE = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_from_paragraphs(paragraphs: str) -> bytes:
    """A Word document (OOXML zip) whose body holds the given ``<w:p>`` elements.

    Entries carry a fixed timestamp, so the same text always gives the same bytes.
    """
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{_WORD_NAMESPACE}"><w:body>{paragraphs}</w:body></w:document>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        for name, content in (
            ("[Content_Types].xml", _DOCX_CONTENT_TYPES),
            ("_rels/.rels", _DOCX_RELS),
            ("word/document.xml", document),
        ):
            entry = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            package.writestr(entry, content)
    return buffer.getvalue()


def docx_bytes(text: str = "城关镇脱贫攻坚工作总结") -> bytes:
    """A minimal Word document with one paragraph."""
    return docx_from_paragraphs(f"<w:p><w:r><w:t>{escape(text)}</w:t></w:r></w:p>")


def text_bytes(
    text: str = "河口乡党委会议纪要：秋季防汛、低保复核。", encoding: str = "utf-8"
) -> bytes:
    """Chinese text in the given encoding (GB18030 files are common in township offices)."""
    return text.encode(encoding)
