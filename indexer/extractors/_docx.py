"""DOCX: page headers, then body paragraphs and tables in document order, with python-docx.

Table rows become tab-separated lines; a merged cell is read once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from indexer.extractors import Extracted, ExtractionContext
from indexer.extractors._zip import check_archive

__all__ = ["DocxExtractor"]

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_MAX_TABLE_DEPTH = 8  # nested tables deeper than this are skipped (hostile nesting)


class DocxExtractor:
    mime_types = frozenset({_DOCX})

    def extract(self, context: ExtractionContext) -> Extracted:
        check_archive(context.path, context.limits)
        document = docx.Document(str(context.path))
        lines: list[str] = []
        seen_headers: set[str] = set()
        for section in document.sections:
            # Red-letter heads ("××县人民政府文件") often sit in the page header.
            for header in (section.first_page_header, section.header):
                if header.is_linked_to_previous:
                    continue
                for line in _block_lines(header.iter_inner_content(), depth=0):
                    if line not in seen_headers:
                        seen_headers.add(line)
                        lines.append(line)
        size = 0
        notes: list[str] = []
        for line in _block_lines(document.iter_inner_content(), depth=0):
            lines.append(line)
            size += len(line) + 1
            if size > context.limits.max_chars:
                notes.append("truncated")
                break
        return Extracted(text="\n".join(lines), notes=notes)


def _block_lines(blocks: Iterable[Any], *, depth: int) -> Iterator[str]:
    for block in blocks:
        if isinstance(block, Paragraph):
            if block.text.strip():
                yield block.text
        elif isinstance(block, Table) and depth < _MAX_TABLE_DEPTH:
            yield from _table_lines(block, depth=depth + 1)


def _table_lines(table: Table, *, depth: int) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        nested: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # Cells of a horizontal merge are the same element, repeated.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            parts: list[str] = []
            for block in cell.iter_inner_content():
                if isinstance(block, Paragraph):
                    if block.text.strip():
                        parts.append(block.text)
                elif isinstance(block, Table) and depth < _MAX_TABLE_DEPTH:
                    nested.extend(_table_lines(block, depth=depth + 1))
            if parts:
                cells.append(" ".join(parts))
        if cells:
            yield "\t".join(cells)
        yield from nested
