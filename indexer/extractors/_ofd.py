"""OFD (GB/T 33190, the national fixed-layout format): the TextCode of each page, in page order.

Pages are found through OFD.xml → Document.xml; one TextObject becomes one line. Glyph positions
are not used to rebuild lines. An OFD of scanned pages has no text (noted ``no_text_layer``): the
largest image of each page (an ImageObject whose MultiMedia resource is a JPEG, PNG, TIFF or BMP
file in the package) is read by OCR, as a scanned PDF's pages are.
"""

from __future__ import annotations

import io
import posixpath
import re
import time
import zipfile
from collections.abc import Iterator
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from PIL import Image, UnidentifiedImageError

from indexer.extractors import Extracted, ExtractionContext
from indexer.extractors._ocr import MAX_SIDE_PIXELS, read_scan, unread_scan
from indexer.extractors._zip import check_archive

__all__ = ["OfdExtractor"]

_PAGE_CONTENT = re.compile(r"(?:^|/)Pages/Page_(\d+)/Content\.xml$", re.IGNORECASE)


class OfdExtractor:
    mime_types = frozenset({"application/ofd"})

    def extract(self, context: ExtractionContext) -> Extracted:
        deadline = time.monotonic() + context.limits.timeout_seconds
        limits = context.limits
        check_archive(context.path, limits)
        lines: list[str] = []
        notes: list[str] = []
        size = 0
        with zipfile.ZipFile(context.path) as archive:
            # Stated paths are package-absolute; some writers store members with a leading "/".
            names = {info.filename.lstrip("/"): info.filename for info in archive.infolist()}
            pages = _page_paths(archive, names)
            for number, (_, page) in enumerate(pages):
                if number >= limits.max_pages:
                    notes.append("page_limit")
                    break
                for line in _page_lines(_parse(archive, names[page])):
                    lines.append(line)
                    size += len(line) + 1
                if size > limits.max_chars:
                    notes.append("truncated")
                    break
            if lines:
                return Extracted(text="\n".join(lines), notes=notes)
            unread = unread_scan(context, notes)
            if unread is not None:
                return unread
            scans = _page_images(archive, names, pages)
            return read_scan(
                context,
                page_count=len(scans),
                pages=lambda count: _opened(archive, scans[:count]),
                deadline=deadline,
                notes=notes,
            )


def _page_paths(archive: zipfile.ZipFile, names: dict[str, str]) -> list[tuple[str, str]]:
    """(Document.xml, Content.xml) of every page, in the order the documents list them."""
    pages: list[tuple[str, str]] = []
    if "OFD.xml" in names:
        for doc_root in _texts(_parse(archive, names["OFD.xml"]), "DocRoot"):
            document_path = _resolve("", doc_root)
            if document_path not in names:
                continue
            document = _parse(archive, names[document_path])
            for page in _elements(document, "Page"):
                location = _resolve(posixpath.dirname(document_path), page.get("BaseLoc", ""))
                if location in names:
                    pages.append((document_path, location))
    if pages:
        return pages
    # A package whose index cannot be followed: every page content, by page number.
    numbered = [(_PAGE_CONTENT.search(name), name) for name in names]
    found = sorted((int(m.group(1)), name) for m, name in numbered if m)
    return [(_document_of(name), name) for _, name in found]


def _document_of(page: str) -> str:
    """The Document.xml a page found without the index belongs to (Doc_0/Pages/Page_0/…)."""
    head = page.split("/Pages/", 1)[0] if "/Pages/" in page else ""
    return posixpath.join(head, "Document.xml")


# Image files Pillow opens; OFD scanners write JPEG, sometimes PNG, TIFF or BMP.
_IMAGE_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "BMP"})


def _page_images(
    archive: zipfile.ZipFile, names: dict[str, str], pages: list[tuple[str, str]]
) -> list[str]:
    """The package member of each page's largest image, for pages that have one."""
    media: dict[str, dict[str, str]] = {}  # Document.xml → resource ID → image member
    images: list[str] = []
    for document_path, page in pages:
        if document_path not in media:
            media[document_path] = _media_files(archive, names, document_path)
        files = media[document_path]
        candidates = [
            files[resource]
            for element in _elements(_parse(archive, names[page]), "ImageObject")
            if (resource := element.get("ResourceID", "").strip()) in files
        ]
        if candidates:
            images.append(max(candidates, key=lambda name: archive.getinfo(name).file_size))
    return images


def _media_files(
    archive: zipfile.ZipFile, names: dict[str, str], document_path: str
) -> dict[str, str]:
    """Resource ID → package member of every image a document's resource files declare."""
    base = posixpath.dirname(document_path)
    files: dict[str, str] = {}
    if document_path not in names:
        return files
    document = _parse(archive, names[document_path])
    for kind in ("PublicRes", "DocumentRes"):
        for location in _texts(document, kind):
            res_path = _resolve(base, location)
            if res_path not in names:
                continue
            res = _parse(archive, names[res_path])
            res_base = _resolve(posixpath.dirname(res_path), res.get("BaseLoc", ""))
            for item in _elements(res, "MultiMedia"):
                if item.get("Type", "").lower() != "image":
                    continue
                for media_file in _texts(item, "MediaFile"):
                    member = _resolve(res_base, media_file)
                    if member in names and item.get("ID"):
                        files[item.get("ID", "").strip()] = names[member]
    return files


def _opened(archive: zipfile.ZipFile, members: list[str]) -> Iterator[Image.Image]:
    """Each page image, decoded at no more than OCR needs; unreadable ones are skipped."""
    for member in members:
        try:
            image = Image.open(io.BytesIO(archive.read(member)))
            if image.format not in _IMAGE_FORMATS:
                continue
            image.draft("L", (MAX_SIDE_PIXELS, MAX_SIDE_PIXELS))
            image.thumbnail((MAX_SIDE_PIXELS, MAX_SIDE_PIXELS))
            yield image
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
            continue


def _page_lines(page: Element) -> list[str]:
    lines = []
    for text_object in _elements(page, "TextObject"):
        text = "".join(code.text or "" for code in _elements(text_object, "TextCode"))
        if text.strip():
            lines.append(text)
    return lines


def _parse(archive: zipfile.ZipFile, name: str) -> Element:
    # Sizes were bounded by check_archive; defusedxml refuses entity expansion and DTD tricks.
    root: Element = ElementTree.fromstring(archive.read(name))
    return root


def _resolve(base: str, location: str) -> str:
    location = location.strip()
    if location.startswith("/"):
        return posixpath.normpath(location).lstrip("/")
    return posixpath.normpath(posixpath.join(base, location))


def _elements(root: Element, local_name: str) -> list[Element]:
    return [element for element in root.iter() if element.tag.rpartition("}")[2] == local_name]


def _texts(root: Element, local_name: str) -> list[str]:
    return [element.text.strip() for element in _elements(root, local_name) if element.text]
