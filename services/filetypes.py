"""Decide what an uploaded file is from its bytes, and whether the repository accepts it.

The name's extension and the declared Content-Type must agree with the bytes; the bytes decide.
"""

from __future__ import annotations

import codecs
import mimetypes
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import filetype
import olefile

from services.errors import UnsupportedType

__all__ = [
    "HEAD_BYTES",
    "DetectedType",
    "detect_file_type",
    "detect_type_of_head",
    "kind_in_words",
    "needs_whole_file",
]


@dataclass(frozen=True)
class DetectedType:
    """What the bytes are: the canonical MIME stored with the document and a short name."""

    mime: str
    label: str


@dataclass(frozen=True)
class _Kind:
    """One allowed format: what it is called and which names and declared types fit it."""

    label: str
    mime: str
    extensions: frozenset[str]
    declared: frozenset[str]  # the canonical MIME and the aliases clients send for it


_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# The allow-list. WPS and ET are Kingsoft's OLE2 files, built like DOC and XLS; their MIMEs are
# the names freedesktop shared-mime-info and WPS for Linux register.
# fmt: off
_ALLOWED = (
    # label   canonical MIME                    extensions
    ("PDF",   "application/pdf",                ".pdf"),
    ("DOCX",  _DOCX,                            ".docx"),
    ("XLSX",  _XLSX,                            ".xlsx"),
    ("PPTX",  _PPTX,                            ".pptx"),
    ("DOC",   "application/msword",             ".doc"),
    ("XLS",   "application/vnd.ms-excel",       ".xls"),
    ("PPT",   "application/vnd.ms-powerpoint",  ".ppt .pps"),
    ("WPS",   "application/wps-office.wps",     ".wps"),
    ("ET",    "application/wps-office.et",      ".et"),
    ("OFD",   "application/ofd",                ".ofd"),
    ("ZIP",   "application/zip",                ".zip"),
    ("JPEG",  "image/jpeg",                     ".jpg .jpeg .jpe .jfif"),
    ("PNG",   "image/png",                      ".png"),
    ("HEIC",  "image/heic",                     ".heic .heif .hif"),
    ("HEIF",  "image/heif",                     ".heif .heic .hif"),
    ("TXT",   "text/plain",                     ".txt .text .log"),
    ("CSV",   "text/csv",                       ".csv"),
    ("MD",    "text/markdown",                  ".md .markdown"),
)
# fmt: on

_ZIPS = "application/zip application/x-zip-compressed application/x-zip"
# Browsers and Windows label text by extension, so any member of the family may arrive.
_TEXTS = "text/plain text/csv text/x-csv text/comma-separated-values text/markdown text/x-markdown"
_HEIFS = "image/heic image/heif image/heic-sequence image/heif-sequence"

# Declared types besides the canonical MIME that do not contradict the bytes: what browsers,
# Windows and WPS really send. Legacy and modern Office of one family do not contradict.
_ALSO_DECLARED = {
    "PDF": "application/x-pdf application/acrobat",
    "DOCX": f"application/msword {_ZIPS}",
    "XLSX": f"application/vnd.ms-excel {_ZIPS}",
    "PPTX": f"application/vnd.ms-powerpoint {_ZIPS}",
    "DOC": "application/vnd.ms-word",
    "XLS": "application/msexcel application/x-msexcel application/x-excel application/excel",
    "PPT": "application/mspowerpoint application/powerpoint application/x-mspowerpoint",
    "WPS": "application/kswps application/vnd.ms-works application/msword",
    "ET": "application/kset application/vnd.ms-excel",
    "OFD": f"application/x-ofd {_ZIPS}",
    "ZIP": _ZIPS,
    "JPEG": "image/pjpeg image/jpg",
    "PNG": "image/x-png image/apng",
    "HEIC": _HEIFS,
    "HEIF": _HEIFS,
    "TXT": _TEXTS,
    "CSV": f"application/vnd.ms-excel application/csv {_TEXTS}",
    "MD": _TEXTS,
}

# What people call each kind, for pages that name a stored file's type (the access log).
_KINDS_IN_WORDS = {
    "PDF": "PDF 文件",
    "DOCX": "Word 文档",
    "XLSX": "Excel 表格",
    "PPTX": "PowerPoint 演示文稿",
    "DOC": "Word 文档（97-2003）",
    "XLS": "Excel 表格（97-2003）",
    "PPT": "PowerPoint 演示文稿（97-2003）",
    "WPS": "WPS 文字文档",
    "ET": "WPS 表格",
    "OFD": "OFD 版式文件",
    "ZIP": "ZIP 压缩包",
    "JPEG": "图片（JPEG）",
    "PNG": "图片（PNG）",
    "HEIC": "图片（HEIC）",
    "HEIF": "图片（HEIF）",
    "TXT": "文本文件",
    "CSV": "CSV 表格",
    "MD": "Markdown 文本",
}

_KINDS = {
    label: _Kind(
        label,
        mime,
        frozenset(extensions.split()),
        frozenset({mime, *_ALSO_DECLARED[label].split()}),
    )
    for label, mime, extensions in _ALLOWED
}

_MIME_IN_WORDS = {mime: _KINDS_IN_WORDS[label] for label, mime, _ in _ALLOWED}


def kind_in_words(content_type: str) -> str | None:
    """What people call a stored file's type (``application/pdf`` → ``PDF 文件``); None for a
    type the allow-list does not have (a format the operator added, say)."""
    return _MIME_IN_WORDS.get(content_type.split(";", 1)[0].strip().lower())


# Declared types that say nothing about the content.
_GENERIC_DECLARED = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/x-download",
        "application/force-download",
    }
)

# The same as the `filetype` package reads; enough for every signature and for the text check.
HEAD_BYTES: Final = 8192

_PDF_MAGIC = b"%PDF-"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive

# ISO-BMFF brands: HEVC-coded images are HEIC; the generic image brands alone are HEIF.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# OOXML is recognised by the content type of its main part in [Content_Types].xml; macro-enabled
# files and templates name other main parts and so count as plain zips.
_OOXML_MAIN_PARTS = {
    f"{_DOCX}.main+xml": "DOCX",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": "XLSX",
    f"{_PPTX}.main+xml": "PPTX",
}
_MAX_CONTENT_TYPES_BYTES = 1024 * 1024

# Control characters that real text files carry; any other one means the bytes are not text.
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\b\x1a\x1b")


def detect_file_type(
    path: Path,
    *,
    filename: str,
    declared_type: str | None,
    extra_allowed: frozenset[str] = frozenset(),
) -> DetectedType:
    """Type of the file at `path` from its bytes; UnsupportedType if disallowed or contradicted."""
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
        complete = not file.read(1)
    return _detect(
        head,
        complete=complete,
        path=path,
        filename=filename,
        declared_type=declared_type,
        extra_allowed=extra_allowed,
    )


def needs_whole_file(head: bytes) -> bool:
    """Do these first bytes start a format whose type is read from the whole file (zip, OLE2)?"""
    return head.startswith((*_ZIP_MAGICS, _OLE_MAGIC))


def detect_type_of_head(
    head: bytes,
    *,
    size: int,
    filename: str,
    declared_type: str | None,
    extra_allowed: frozenset[str] = frozenset(),
) -> DetectedType:
    """``detect_file_type`` from the first ``HEAD_BYTES`` of a file of ``size`` bytes, for
    formats the head decides (``needs_whole_file`` is false)."""
    if needs_whole_file(head):
        raise ValueError("zip and OLE2 files are typed from the whole file")
    return _detect(
        head[:HEAD_BYTES],
        complete=size <= HEAD_BYTES,
        path=None,
        filename=filename,
        declared_type=declared_type,
        extra_allowed=extra_allowed,
    )


def _detect(
    head: bytes,
    *,
    complete: bool,
    path: Path | None,
    filename: str,
    declared_type: str | None,
    extra_allowed: frozenset[str],
) -> DetectedType:
    extension = _extension(filename)
    if not head:
        raise UnsupportedType("文件为空，无法识别类型", code="unsupported_type")

    kind = _sniff_binary(path, head, extension)
    # A specific operator-allowed format (EPUB, ODT…) wins over the generic zip and text readings.
    if kind is None or kind.label == "ZIP":
        kind = _extra_kind(head, extra_allowed) or kind
    if kind is None:
        kind = _sniff_text(head, extension, complete=complete)
    if kind is None:
        raise UnsupportedType(_unsupported_message(head), code="unsupported_type")

    if extension and extension not in kind.extensions:
        raise UnsupportedType(
            f"文件内容与扩展名不符：内容为 {kind.label}，扩展名为 {extension}", code="type_mismatch"
        )
    media_type = (declared_type or "").split(";", 1)[0].strip().lower()
    if media_type not in _GENERIC_DECLARED and media_type not in kind.declared:
        raise UnsupportedType(
            f"文件内容与声明的类型不符：内容为 {kind.label}，声明为 {media_type}",
            code="type_mismatch",
        )
    return DetectedType(mime=kind.mime, label=kind.label)


def _extension(filename: str) -> str:
    # Old browsers send the client's full path; only the last component names the file.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem, dot, extension = name.lstrip(".").rpartition(".")
    return f".{extension.lower()}" if dot and stem and extension else ""


def _sniff_binary(path: Path | None, head: bytes, extension: str) -> _Kind | None:
    if head.startswith(_PDF_MAGIC):
        return _KINDS["PDF"]
    if head.startswith(_PNG_MAGIC):
        return _KINDS["PNG"]
    if head.startswith(_JPEG_MAGIC):
        return _KINDS["JPEG"]
    if head.startswith(_ZIP_MAGICS):
        assert path is not None  # needs_whole_file
        return _sniff_zip(path)
    if head.startswith(_OLE_MAGIC):
        assert path is not None
        return _sniff_ole(path, extension)
    return _sniff_heif(head)


# zipfile holds a whole central directory in memory: refuse archives whose directory is huge.
_ZIP_TAIL_BYTES = 66 * 1024  # the end record plus the longest possible archive comment
_MAX_ZIP_ENTRIES = 50_000
_MAX_ZIP_DIRECTORY_BYTES = 32 * 1024 * 1024


def _zip_directory_too_large(path: Path) -> bool:
    """Would reading this zip's central directory cost too much memory? (Read from its end.)"""
    with path.open("rb") as file:
        file.seek(0, 2)
        size = file.tell()
        tail_length = min(size, _ZIP_TAIL_BYTES)
        file.seek(size - tail_length)
        tail = file.read(tail_length)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(tail):
        return False  # zipfile will say what is wrong with it
    entries, directory_size = struct.unpack("<HI", tail[end + 10 : end + 16])
    return bool(entries > _MAX_ZIP_ENTRIES or directory_size > _MAX_ZIP_DIRECTORY_BYTES)


def _sniff_zip(path: Path) -> _Kind:
    """OOXML, OFD or a plain zip; an unreadable zip is unsupported_type, whatever its name."""
    try:
        if _zip_directory_too_large(path):
            raise UnsupportedType("压缩文件包含的条目过多", code="unsupported_type")
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.lower(): info for info in archive.infolist()}
            content_types_info = members.get("[content_types].xml")
            if content_types_info is None:
                return _KINDS["OFD" if "ofd.xml" in members else "ZIP"]
            with archive.open(content_types_info) as member:
                content_types = member.read(_MAX_CONTENT_TYPES_BYTES)
    # Hostile or truncated archives fail in many places inside zipfile and zlib.
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        RuntimeError,  # encrypted member
        NotImplementedError,  # unsupported compression method
        ValueError,
        struct.error,
        zlib.error,
    ) as exc:
        raise UnsupportedType("压缩文件已损坏，无法读取", code="unsupported_type") from exc

    if content_types.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = content_types.decode("utf-16", "replace")
    else:
        text = content_types.decode("utf-8", "replace")
    text = text.lower()
    for main_part, label in _OOXML_MAIN_PARTS.items():
        if main_part in text:
            return _KINDS[label]
    return _KINDS["ZIP"]


def _sniff_ole(path: Path, extension: str) -> _Kind:
    """DOC/XLS/PPT by their main stream; WPS and ET are told from DOC and XLS by the extension."""
    try:
        with path.open("rb") as file, olefile.OleFileIO(file) as ole:
            has_word = bool(ole.exists("WordDocument"))
            has_workbook = bool(ole.exists("Workbook") or ole.exists("Book"))
            has_slides = bool(ole.exists("PowerPoint Document"))
            encrypted = bool(ole.exists("EncryptedPackage"))
    # olefile raises assorted exception types on malformed input.
    except Exception as exc:
        raise UnsupportedType("Office 文件已损坏，无法读取", code="unsupported_type") from exc

    if has_word:
        return _KINDS["WPS" if extension == ".wps" else "DOC"]
    if has_workbook:
        return _KINDS["ET" if extension == ".et" else "XLS"]
    if has_slides:
        return _KINDS["PPT"]
    if encrypted:  # password-protected DOCX/XLSX/PPTX are wrapped in an OLE2 container
        raise UnsupportedType("文件已加密，请去除密码后再上传", code="unsupported_type")
    raise UnsupportedType("不支持的文件类型：无法识别的 Office 复合文档", code="unsupported_type")


def _sniff_heif(head: bytes) -> _Kind | None:
    if head[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(head[:4], "big")
    if not 16 <= box_size <= len(head):
        return None
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, box_size - 3, 4)}
    if major in _HEIC_BRANDS or (major in _HEIF_BRANDS and compatible & _HEIC_BRANDS):
        return _KINDS["HEIC"]
    if major in _HEIF_BRANDS and not compatible & _AVIF_BRANDS:
        return _KINDS["HEIF"]
    return None


def _extra_kind(head: bytes, extra_allowed: frozenset[str]) -> _Kind | None:
    """A format the operator allowed on top of the list, as the `filetype` package names it."""
    guessed = _guess_mime(head)
    if guessed is None or guessed[0] not in {mime.strip().lower() for mime in extra_allowed}:
        return None
    mime, extension = guessed
    # Only the built-in table, so the result does not depend on the host's mime.types.
    extensions = {f".{extension}", *mimetypes.MimeTypes().guess_all_extensions(mime)}
    return _Kind(extension.upper(), mime, frozenset(extensions), frozenset({mime}))


def _guess_mime(head: bytes) -> tuple[str, str] | None:
    guessed = filetype.guess(head)
    if guessed is None:
        return None
    return str(guessed.mime).lower(), str(guessed.extension).lower()


def _sniff_text(head: bytes, extension: str, *, complete: bool) -> _Kind | None:
    """TXT, CSV or MD (chosen by extension) when the sample decodes as UTF-8, UTF-16 or GB18030."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    elif b"\x00" in head:
        return None
    else:
        encodings = ("utf-8-sig", "gb18030")
    if not any(_decodes_as_text(head, encoding, complete=complete) for encoding in encodings):
        return None
    for label in ("CSV", "MD"):
        if extension in _KINDS[label].extensions:
            return _KINDS[label]
    return _KINDS["TXT"]


def _decodes_as_text(sample: bytes, encoding: str, *, complete: bool) -> bool:
    # Incremental decoding lets the sample end in the middle of a multi-byte character.
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        text = decoder.decode(sample, final=complete)
    except UnicodeDecodeError:
        return False
    return not any(char < " " and char not in _TEXT_CONTROLS for char in text)


def _unsupported_message(head: bytes) -> str:
    guessed = _guess_mime(head)
    if guessed is None:
        return "不支持的文件类型：无法识别文件内容"
    return f"不支持的文件类型：{guessed[0]}"
