"""Upload type detection: real files built in the test, judged by their bytes.

Every allowed format is accepted under its own name; wrong names, contradicting declared types and
formats outside the allow-list are refused with a stable error code.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

import olefile
import pytest

from services.errors import UnsupportedType
from services.filetypes import DetectedType, detect_file_type, kind_in_words

# --- builders of real files


def _pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(pdf)


def _png() -> bytes:
    """A 1×1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")  # filter byte, one grey pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# A 1×1 grey baseline JPEG: quantisation table, frame, one-code DC and AC tables, one scan.
_JPEG = bytes.fromhex(
    "ffd8"
    "ffdb004300" + "01" * 64 + "ffc0000b080001000101011100"
    "ffc4001400" + "01" + "00" * 15 + "00"
    "ffc4001410" + "01" + "00" * 15 + "00"
    "ffda0008010100003f00"
    "3f"
    "ffd9"
)

# The classic 1×1 transparent GIF.
_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_TIFF = b"II*\x00\x08\x00\x00\x00" + bytes(16)


def _isobmff(major: bytes, *compatible: bytes) -> bytes:
    """The start of an HEIF/AVIF file: the ftyp box, then an empty meta box."""
    brands = b"".join(compatible)
    ftyp = struct.pack(">I", 16 + len(brands)) + b"ftyp" + major + bytes(4) + brands
    return ftyp + struct.pack(">I", 12) + b"meta" + bytes(4)


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            # EPUB wants its first member stored, as filetype looks for it uncompressed.
            compression = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(name, text, compress_type=compression)
    return buffer.getvalue()


def _ooxml(main_part: str, content_type: str) -> bytes:
    """A minimal OOXML package: content types, package relationships, main part."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{main_part}" ContentType="{content_type}"/>'
        "</Types>"
    )
    relationships = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="/' + main_part + '" Type="http://schemas.openxmlformats'
        '.org/officeDocument/2006/relationships/officeDocument"/></Relationships>'
    )
    return _zip(
        {
            "[Content_Types].xml": content_types,
            "_rels/.rels": relationships,
            main_part: '<?xml version="1.0" encoding="UTF-8"?><root/>',
        }
    )


_OOXML = "application/vnd.openxmlformats-officedocument"
_DOCX = _ooxml("word/document.xml", f"{_OOXML}.wordprocessingml.document.main+xml")
_XLSX = _ooxml("xl/workbook.xml", f"{_OOXML}.spreadsheetml.sheet.main+xml")
_PPTX = _ooxml("ppt/presentation.xml", f"{_OOXML}.presentationml.presentation.main+xml")
_DOCM = _ooxml("word/document.xml", "application/vnd.ms-word.document.macroEnabled.main+xml")
_OFD = _zip(
    {
        "OFD.xml": '<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" DocType="OFD">'
        "<ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        "Doc_0/Document.xml": '<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"/>',
    }
)
_PLAIN_ZIP = _zip({"通知/说明.txt": "请各乡镇于周五前报送。"})
_EPUB = _zip({"mimetype": "application/epub+zip", "META-INF/container.xml": "<container/>"})

_FREE_SECTOR, _END_OF_CHAIN, _FAT_SECTOR, _NO_STREAM = (
    0xFFFFFFFF,
    0xFFFFFFFE,
    0xFFFFFFFD,
    0xFFFFFFFF,
)


def _directory_entry(name: str, kind: int, *, child: int, start: int, size: int) -> bytes:
    encoded = name.encode("utf-16-le") + b"\x00\x00" if name else b""
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        encoded,
        len(encoded),
        kind,
        1,  # black node: a one-node red-black tree per storage
        _NO_STREAM,
        _NO_STREAM,
        child,
        bytes(16),
        0,
        0,
        0,
        start,
        size,
    )


def _ole(stream_name: str, size: int = 4096) -> bytes:
    """A version-3 compound file holding one stream; olefile reads these but cannot write them.

    Sector 0 is the FAT, sector 1 the directory, then the stream, at least 4096 bytes long so that
    it lives in ordinary sectors rather than the mini stream.
    """
    data_sectors = -(-size // 512)
    fat = [_FAT_SECTOR, _END_OF_CHAIN, *range(3, 2 + data_sectors), _END_OF_CHAIN]
    fat += [_FREE_SECTOR] * (128 - len(fat))
    header = struct.pack(
        "<8s16s5H6s9I109I",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        bytes(16),
        0x3E,  # minor version
        3,  # major version: 512-byte sectors
        0xFFFE,  # little-endian
        9,  # sector size 2**9
        6,  # mini sector size 2**6
        bytes(6),
        0,  # directory sectors (always 0 in version 3)
        1,  # FAT sectors
        1,  # first directory sector
        0,
        4096,  # mini stream cutoff
        _END_OF_CHAIN,  # no mini FAT
        0,
        _END_OF_CHAIN,  # no DIFAT sectors
        0,
        0,  # the header's DIFAT: the FAT is sector 0
        *[_FREE_SECTOR] * 108,
    )
    unused = _directory_entry("", 0, child=_NO_STREAM, start=0, size=0)
    directory = (
        _directory_entry("Root Entry", 5, child=1, start=_END_OF_CHAIN, size=0)
        + _directory_entry(stream_name, 2, child=_NO_STREAM, start=2, size=size)
        + unused * 2
    )
    stream = (b"county materials " * (size // 17 + 1))[:size].ljust(data_sectors * 512, b"\x00")
    return header + struct.pack("<128I", *fat) + directory + stream


_DOC = _ole("WordDocument")
_XLS = _ole("Workbook")
_XLS_95 = _ole("Book")
_PPT = _ole("PowerPoint Document")

_NOTICE = "县人民政府办公室关于做好汛期安全工作的通知\n各乡镇人民政府：\n请于周五前报送。\n"
_CSV = "乡镇,户数,人口\n城关镇,1203,4388\n"
_ELF = b"\x7fELF\x02\x01\x01" + bytes(57)
_EXE = b"MZ\x90\x00" + bytes(60)


# --- helpers


def _detect(
    tmp_path: Path,
    content: bytes,
    filename: str,
    declared: str | None = None,
    extra_allowed: frozenset[str] = frozenset(),
) -> DetectedType:
    # The stored name never matters: only `filename`, as the client sent it, is checked.
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    return detect_file_type(
        path, filename=filename, declared_type=declared, extra_allowed=extra_allowed
    )


def _refused(
    tmp_path: Path,
    content: bytes,
    filename: str,
    declared: str | None = None,
    extra_allowed: frozenset[str] = frozenset(),
) -> UnsupportedType:
    with pytest.raises(UnsupportedType) as caught:
        _detect(tmp_path, content, filename, declared, extra_allowed)
    assert caught.value.status == 415
    return caught.value


# --- the test helpers build real files


@pytest.mark.parametrize("stream", ["WordDocument", "Workbook", "PowerPoint Document"])
def test_compound_file_helper_writes_files_olefile_reads(tmp_path: Path, stream: str) -> None:
    path = tmp_path / "legacy.bin"
    path.write_bytes(_ole(stream))
    assert olefile.isOleFile(str(path))
    with olefile.OleFileIO(str(path)) as ole:
        assert ole.exists(stream)
        assert ole.get_size(stream) == 4096
        assert ole.openstream(stream).read(17) == b"county materials "


def test_ooxml_helper_writes_a_readable_package() -> None:
    with zipfile.ZipFile(io.BytesIO(_DOCX)) as archive:
        assert archive.testzip() is None
        assert "[Content_Types].xml" in archive.namelist()


# --- accepted

_ACCEPTED = [
    pytest.param(_pdf(), "报告.pdf", "application/pdf", "PDF", id="pdf"),
    pytest.param(_DOCX, "通知.docx", f"{_OOXML}.wordprocessingml.document", "DOCX", id="docx"),
    pytest.param(_XLSX, "统计.xlsx", f"{_OOXML}.spreadsheetml.sheet", "XLSX", id="xlsx"),
    pytest.param(_PPTX, "汇报.pptx", f"{_OOXML}.presentationml.presentation", "PPTX", id="pptx"),
    pytest.param(_DOC, "旧通知.doc", "application/msword", "DOC", id="doc"),
    pytest.param(_XLS, "旧统计.xls", "application/vnd.ms-excel", "XLS", id="xls"),
    pytest.param(_XLS_95, "excel95.xls", "application/vnd.ms-excel", "XLS", id="xls-book-stream"),
    pytest.param(_PPT, "旧汇报.ppt", "application/vnd.ms-powerpoint", "PPT", id="ppt"),
    pytest.param(_DOC, "公文.wps", "application/wps-office.wps", "WPS", id="wps"),
    pytest.param(_XLS, "台账.et", "application/wps-office.et", "ET", id="et"),
    pytest.param(_OFD, "电子公文.ofd", "application/ofd", "OFD", id="ofd"),
    pytest.param(_PLAIN_ZIP, "材料.zip", "application/zip", "ZIP", id="zip"),
    pytest.param(_JPEG, "现场.jpg", "image/jpeg", "JPEG", id="jpeg"),
    pytest.param(_JPEG, "现场.jpeg", "image/jpeg", "JPEG", id="jpeg-long-extension"),
    pytest.param(_png(), "截图.png", "image/png", "PNG", id="png"),
    pytest.param(_isobmff(b"heic", b"mif1", b"heic"), "a.heic", "image/heic", "HEIC", id="heic"),
    pytest.param(
        _isobmff(b"mif1", b"mif1", b"heic"), "b.heic", "image/heic", "HEIC", id="mif1-heic"
    ),
    pytest.param(_isobmff(b"mif1", b"mif1", b"miaf"), "scan.heif", "image/heif", "HEIF", id="heif"),
    pytest.param(_NOTICE.encode(), "通知.txt", "text/plain", "TXT", id="txt-utf8"),
    pytest.param(_NOTICE.encode("gbk"), "通知.txt", "text/plain", "TXT", id="txt-gbk"),
    pytest.param(_NOTICE.encode("gb18030"), "通知.text", "text/plain", "TXT", id="txt-gb18030"),
    pytest.param(_NOTICE.encode("utf-16"), "通知.txt", "text/plain", "TXT", id="txt-utf16-bom"),
    pytest.param(b"2024-06-01 upload ok\n", "server.log", "text/plain", "TXT", id="log"),
    pytest.param(_CSV.encode("utf-8-sig"), "人口.csv", "text/csv", "CSV", id="csv-utf8-bom"),
    pytest.param(_CSV.encode("gbk"), "人口.csv", "text/csv", "CSV", id="csv-gbk"),
    pytest.param("# 标题\n\n- 要点\n".encode(), "说明.md", "text/markdown", "MD", id="md"),
    pytest.param(b"# Title\n", "README.markdown", "text/markdown", "MD", id="markdown"),
]


@pytest.mark.parametrize(("content", "filename", "mime", "label"), _ACCEPTED)
def test_each_allowed_type_is_accepted_under_its_extension(
    tmp_path: Path, content: bytes, filename: str, mime: str, label: str
) -> None:
    detected = _detect(tmp_path, content, filename, "application/octet-stream")
    assert detected == DetectedType(mime=mime, label=label)


@pytest.mark.parametrize(("content", "filename", "mime", "label"), _ACCEPTED)
def test_each_allowed_type_has_a_name_people_know(
    content: bytes, filename: str, mime: str, label: str
) -> None:
    name = kind_in_words(mime)
    assert name is not None
    assert mime not in name


def test_types_in_words() -> None:
    assert kind_in_words("application/pdf") == "PDF 文件"
    assert kind_in_words(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    ) == ("Word 文档")
    assert kind_in_words("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet") == (
        "Excel 表格"
    )
    assert kind_in_words("image/jpeg") == "图片（JPEG）"
    assert kind_in_words("Text/Plain; charset=utf-8") == "文本文件"
    # A format only the operator allowed has no name: callers show it as recorded.
    assert kind_in_words("application/epub+zip") is None


@pytest.mark.parametrize(
    "declared",
    [
        None,
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/x-download",
        "application/force-download",
        "Application/Octet-Stream; name=report.pdf",
    ],
)
def test_generic_declared_types_are_accepted(tmp_path: Path, declared: str | None) -> None:
    assert _detect(tmp_path, _pdf(), "report.pdf", declared).label == "PDF"


@pytest.mark.parametrize(
    ("content", "filename", "declared"),
    [
        (_pdf(), "a.pdf", "application/pdf"),
        (_pdf(), "a.pdf", "Application/PDF; charset=binary"),
        (_CSV.encode(), "a.csv", "application/vnd.ms-excel"),
        (_CSV.encode(), "a.csv", "text/plain"),
        (_NOTICE.encode("gbk"), "a.txt", "text/plain; charset=gbk"),
        (b"# t\n", "a.md", "text/x-markdown"),
        (_DOCX, "a.docx", f"{_OOXML}.wordprocessingml.document"),
        (_DOCX, "a.docx", "application/x-zip-compressed"),
        (_XLSX, "a.xlsx", "application/zip"),
        (_DOC, "a.doc", "application/msword"),
        (_DOC, "a.wps", "application/kswps"),
        (_XLS, "a.et", "application/vnd.ms-excel"),
        (_JPEG, "a.jpg", "image/pjpeg"),
        (_png(), "a.png", "image/x-png"),
        (_PLAIN_ZIP, "a.zip", "application/x-zip-compressed"),
        (_OFD, "a.ofd", "application/zip"),
    ],
)
def test_declared_aliases_clients_send_are_accepted(
    tmp_path: Path, content: bytes, filename: str, declared: str
) -> None:
    _detect(tmp_path, content, filename, declared)


@pytest.mark.parametrize(
    ("filename", "content", "label"),
    [
        ("REPORT.PDF", _pdf(), "PDF"),
        ("Photo.JPG", _JPEG, "JPEG"),
        ("DATA.Csv", _CSV.encode(), "CSV"),
        ("公文.WPS", _DOC, "WPS"),
        ("汇报.PPTX", _PPTX, "PPTX"),
    ],
)
def test_extension_case_does_not_matter(
    tmp_path: Path, filename: str, content: bytes, label: str
) -> None:
    assert _detect(tmp_path, content, filename).label == label


@pytest.mark.parametrize(
    ("filename", "content", "mime"),
    [
        ("report", _pdf(), "application/pdf"),
        ("通知", _DOCX, f"{_OOXML}.wordprocessingml.document"),
        ("README", _NOTICE.encode(), "text/plain"),
        (".profile", _NOTICE.encode("gbk"), "text/plain"),
        ("scan.", _png(), "image/png"),
    ],
)
def test_a_name_without_extension_is_judged_on_bytes(
    tmp_path: Path, filename: str, content: bytes, mime: str
) -> None:
    assert _detect(tmp_path, content, filename).mime == mime


def test_only_the_last_component_of_a_client_path_counts(tmp_path: Path) -> None:
    detected = _detect(tmp_path, _pdf(), "C:\\Users\\张三\\桌面.docs\\报告.PDF")
    assert detected.label == "PDF"


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        # Both cross the 8 KiB sample in the middle of a character.
        ("a" + "汛期通知" * 3000, "gbk"),
        ("汛期通知" * 3000, "utf-8"),
    ],
)
def test_text_longer_than_the_sample_is_still_text(
    tmp_path: Path, content: str, encoding: str
) -> None:
    assert _detect(tmp_path, content.encode(encoding), "long.txt").label == "TXT"


# --- refused: the name or the declared type contradicts the bytes


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        pytest.param(_png(), "report.pdf", id="png-named-pdf"),
        pytest.param(_PLAIN_ZIP, "a.docx", id="plain-zip-named-docx"),
        pytest.param(_XLSX, "a.docx", id="xlsx-named-docx"),
        pytest.param(_DOCX, "a.doc", id="docx-named-doc"),
        pytest.param(_DOC, "a.docx", id="doc-named-docx"),
        pytest.param(_DOCM, "macro.docx", id="macro-enabled-named-docx"),
        pytest.param(_DOC, "a.et", id="word-ole-named-et"),
        pytest.param(_XLS, "a.wps", id="workbook-ole-named-wps"),
        pytest.param(_OFD, "a.zip", id="ofd-named-zip"),
        pytest.param(_isobmff(b"heic", b"mif1", b"heic"), "photo.jpg", id="heic-named-jpg"),
        pytest.param(_NOTICE.encode(), "page.html", id="text-named-html"),
        pytest.param(_CSV.encode(), "data.xls", id="csv-named-xls"),
        pytest.param(_EPUB, "book.epub", id="epub-not-allowed-is-a-zip"),
        pytest.param(_pdf(), "data.csv", id="pdf-named-csv"),
    ],
)
def test_extension_that_contradicts_the_bytes_is_a_mismatch(
    tmp_path: Path, content: bytes, filename: str
) -> None:
    assert _refused(tmp_path, content, filename).error_code == "type_mismatch"


def test_mismatch_message_names_content_and_extension(tmp_path: Path) -> None:
    error = _refused(tmp_path, _png(), "report.PDF")
    assert error.message == "文件内容与扩展名不符：内容为 PNG，扩展名为 .pdf"


@pytest.mark.parametrize(
    ("content", "filename", "declared"),
    [
        (_pdf(), "report.pdf", "image/png"),
        (_DOC, "a.doc", "application/pdf"),
        (_png(), "a.png", "image/jpeg"),
        (_XLSX, "a.xlsx", "application/msword"),
        (_NOTICE.encode(), "a.txt", "text/html"),
        (_PLAIN_ZIP, "a.zip", "application/pdf; charset=binary"),
    ],
)
def test_declared_type_that_contradicts_the_bytes_is_a_mismatch(
    tmp_path: Path, content: bytes, filename: str, declared: str
) -> None:
    assert _refused(tmp_path, content, filename, declared).error_code == "type_mismatch"


def test_declared_mismatch_message_names_content_and_declared_type(tmp_path: Path) -> None:
    error = _refused(tmp_path, _pdf(), "report.pdf", "Image/PNG; q=1")
    assert error.message == "文件内容与声明的类型不符：内容为 PDF，声明为 image/png"


# --- refused: not on the allow-list or unreadable


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        pytest.param(_ELF, "tool", id="elf"),
        pytest.param(_EXE, "setup.exe", id="exe"),
        pytest.param(_EXE, "report.pdf", id="exe-named-pdf"),
        pytest.param(random.Random(7).randbytes(4096), "data.bin", id="random-binary"),
        pytest.param(random.Random(8).randbytes(4096), "data.txt", id="random-binary-named-txt"),
        pytest.param(b"abc\x01\x02\x03def", "a.txt", id="control-characters"),
        pytest.param(_GIF, "a.gif", id="gif-not-allowed"),
        pytest.param(_TIFF, "a.tif", id="tiff-not-allowed"),
        pytest.param(_isobmff(b"avif", b"mif1", b"miaf", b"avif"), "a.avif", id="avif"),
        pytest.param(_isobmff(b"mif1", b"mif1", b"avif"), "a.heif", id="avif-mif1-major"),
        pytest.param(b"", "empty.pdf", id="empty"),
        pytest.param(b"PK\x03\x04" + bytes(200), "a.zip", id="corrupt-zip"),
        pytest.param(b"PK\x03\x04" + bytes(200), "a.docx", id="corrupt-zip-named-docx"),
        pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "a.doc", id="corrupt-ole"),
        pytest.param(_ole("EncryptedPackage"), "locked.docx", id="encrypted-ooxml"),
        pytest.param(_ole("Contents"), "a.doc", id="unknown-ole"),
    ],
)
def test_content_outside_the_allow_list_is_unsupported(
    tmp_path: Path, content: bytes, filename: str
) -> None:
    assert _refused(tmp_path, content, filename).error_code == "unsupported_type"


def test_unsupported_message_names_what_the_bytes_are(tmp_path: Path) -> None:
    assert _refused(tmp_path, _GIF, "a.gif").message == "不支持的文件类型：image/gif"


def test_encrypted_office_file_is_explained(tmp_path: Path) -> None:
    error = _refused(tmp_path, _ole("EncryptedPackage"), "locked.xlsx")
    assert error.message == "文件已加密，请去除密码后再上传"


# --- formats an operator allowed on top


def test_extra_allowed_gif_is_accepted_only_when_allowed(tmp_path: Path) -> None:
    allowed = frozenset({"image/gif"})
    assert _detect(tmp_path, _GIF, "动图.gif", "image/gif", allowed) == DetectedType(
        mime="image/gif", label="GIF"
    )
    assert _refused(tmp_path, _GIF, "动图.gif").error_code == "unsupported_type"


@pytest.mark.parametrize("filename", ["scan.tif", "scan.TIFF", "scan"])
def test_extra_allowed_type_takes_its_usual_extensions(tmp_path: Path, filename: str) -> None:
    detected = _detect(tmp_path, _TIFF, filename, None, frozenset({"image/tiff"}))
    assert detected.mime == "image/tiff"


@pytest.mark.parametrize(("filename", "declared"), [("动图.png", None), ("动图.gif", "image/png")])
def test_extra_allowed_type_is_still_checked_against_name_and_declared_type(
    tmp_path: Path, filename: str, declared: str | None
) -> None:
    error = _refused(tmp_path, _GIF, filename, declared, frozenset({"image/gif"}))
    assert error.error_code == "type_mismatch"


def test_extra_allowed_zip_based_format_wins_over_plain_zip(tmp_path: Path) -> None:
    allowed = frozenset({"application/epub+zip"})
    assert _detect(tmp_path, _EPUB, "book.epub", None, allowed).mime == "application/epub+zip"
    assert _detect(tmp_path, _PLAIN_ZIP, "a.zip", None, allowed).label == "ZIP"


def test_extra_allowed_does_not_change_built_in_detection(tmp_path: Path) -> None:
    allowed = frozenset({"image/avif", "application/msword"})
    avif = _isobmff(b"avif", b"mif1", b"miaf", b"avif")
    assert _detect(tmp_path, avif, "a.avif", None, allowed).mime == "image/avif"
    assert _detect(tmp_path, _DOCX, "a.docx", None, allowed).label == "DOCX"


def test_zip_with_a_huge_central_directory_is_refused_before_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for number in range(50_001):
            archive.writestr(f"{number}.txt", b"")
    with pytest.raises(UnsupportedType) as refused:
        detect_file_type(path, filename="many.zip", declared_type=None)
    assert refused.value.error_code == "unsupported_type"
    assert "条目过多" in refused.value.message
