"""XLSX: sheet names and cell text, streamed with openpyxl in read-only mode.

Sheets past ``max_pages`` and rows past ``max_rows`` are not read (noted ``page_limit``).
"""

from __future__ import annotations

from typing import Any

import openpyxl

from indexer.extractors import Extracted, ExtractionContext, ExtractionLimits
from indexer.extractors._cells import cell_text, sheet_name_line
from indexer.extractors._zip import check_archive

__all__ = ["XlsxExtractor"]

_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class XlsxExtractor:
    mime_types = frozenset({_XLSX})

    def extract(self, context: ExtractionContext) -> Extracted:
        limits = context.limits
        check_archive(context.path, limits)
        with context.path.open("rb") as source:
            # An open file, not the path: openpyxl refuses a path without an .xlsx extension,
            # and the worker's blob file has none.
            return self._read(
                openpyxl.load_workbook(source, read_only=True, data_only=True, keep_links=False),
                limits,
            )

    @staticmethod
    def _read(workbook: Any, limits: ExtractionLimits) -> Extracted:
        lines: list[str] = []
        notes: list[str] = []
        size = 0
        try:
            for index, sheet in enumerate(workbook.worksheets):
                if index >= limits.max_pages:
                    notes.append("page_limit")
                    break
                lines.extend(sheet_name_line(sheet.title))
                # A stated dimension of A1:XFD1048576 would pad every row with empty cells.
                sheet.reset_dimensions()
                for number, row in enumerate(sheet.iter_rows(values_only=True)):
                    if number >= limits.max_rows:
                        notes.append("page_limit")
                        break
                    cells = [text for text in map(cell_text, row) if text]
                    if cells:
                        line = "\t".join(cells)
                        lines.append(line)
                        size += len(line) + 1
                    if size > limits.max_chars:
                        break
                if size > limits.max_chars:
                    notes.append("truncated")
                    break
        finally:
            workbook.close()
        return Extracted(text="\n".join(lines), notes=notes)
