"""OFD (GB/T 33190, the national fixed-layout format): the TextCode of each page, in page order.

Pages are found through OFD.xml → Document.xml; one TextObject becomes one line. Glyph positions
are not used to rebuild lines, and an OFD of scanned images has no text (noted ``no_text_layer``).
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from indexer.extractors import Extracted, ExtractionContext
from indexer.extractors._zip import check_archive

__all__ = ["OfdExtractor"]

_PAGE_CONTENT = re.compile(r"(?:^|/)Pages/Page_(\d+)/Content\.xml$", re.IGNORECASE)


class OfdExtractor:
    mime_types = frozenset({"application/ofd"})

    def extract(self, context: ExtractionContext) -> Extracted:
        limits = context.limits
        check_archive(context.path, limits)
        lines: list[str] = []
        notes: list[str] = []
        size = 0
        with zipfile.ZipFile(context.path) as archive:
            # Stated paths are package-absolute; some writers store members with a leading "/".
            names = {info.filename.lstrip("/"): info.filename for info in archive.infolist()}
            for number, page in enumerate(_page_paths(archive, names)):
                if number >= limits.max_pages:
                    notes.append("page_limit")
                    break
                for line in _page_lines(_parse(archive, names[page])):
                    lines.append(line)
                    size += len(line) + 1
                if size > limits.max_chars:
                    notes.append("truncated")
                    break
        if not lines:
            return Extracted(text="", notes=["no_text_layer", *notes])
        return Extracted(text="\n".join(lines), notes=notes)


def _page_paths(archive: zipfile.ZipFile, names: dict[str, str]) -> list[str]:
    """Content.xml of every page, in the order the documents list them."""
    pages: list[str] = []
    if "OFD.xml" in names:
        for doc_root in _texts(_parse(archive, names["OFD.xml"]), "DocRoot"):
            document_path = _resolve("", doc_root)
            if document_path not in names:
                continue
            document = _parse(archive, names[document_path])
            for page in _elements(document, "Page"):
                location = _resolve(posixpath.dirname(document_path), page.get("BaseLoc", ""))
                if location in names:
                    pages.append(location)
    if pages:
        return pages
    # A package whose index cannot be followed: every page content, by page number.
    numbered = [(_PAGE_CONTENT.search(name), name) for name in names]
    return [name for _, name in sorted((int(m.group(1)), name) for m, name in numbered if m)]


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
