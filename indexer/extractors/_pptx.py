"""PPTX: the text of every slide's shapes (groups and tables included) and its speaker notes.

Slides past ``max_pages`` are not read (noted ``page_limit``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pptx
from pptx.shapes.group import GroupShape

from indexer.extractors import Extracted, ExtractionContext
from indexer.extractors._zip import check_archive

__all__ = ["PptxExtractor"]

_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
_MAX_GROUP_DEPTH = 16


class PptxExtractor:
    mime_types = frozenset({_PPTX})

    def extract(self, context: ExtractionContext) -> Extracted:
        limits = context.limits
        check_archive(context.path, limits)
        presentation = pptx.Presentation(str(context.path))
        lines: list[str] = []
        notes: list[str] = []
        size = 0
        for number, slide in enumerate(presentation.slides):
            if number >= limits.max_pages:
                notes.append("page_limit")
                break
            slide_lines = list(_shape_lines(slide.shapes, depth=0))
            if slide.has_notes_slide:
                notes_frame = slide.notes_slide.notes_text_frame
                if notes_frame is not None and notes_frame.text.strip():
                    slide_lines.append(notes_frame.text)
            lines.extend(slide_lines)
            size += sum(len(line) + 1 for line in slide_lines)
            if size > limits.max_chars:
                notes.append("truncated")
                break
        return Extracted(text="\n".join(lines), notes=notes)


def _shape_lines(shapes: Iterable[Any], *, depth: int) -> Iterator[str]:
    for shape in shapes:
        if isinstance(shape, GroupShape):
            if depth < _MAX_GROUP_DEPTH:
                yield from _shape_lines(shape.shapes, depth=depth + 1)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                cells = [cell.text for cell in row.cells if cell.text.strip()]
                if cells:
                    yield "\t".join(cells)
        elif getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
            yield shape.text_frame.text
