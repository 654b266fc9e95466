"""XLS and Kingsoft ET (the same BIFF8 workbook inside OLE2): sheet names and cells, via xlrd.

Encryption is read from the workbook's FILEPASS record before xlrd parses anything else.
"""

from __future__ import annotations

import io

import xlrd

from indexer.extractors import Extracted, ExtractionContext, ExtractionFailed
from indexer.extractors._cells import cell_text, sheet_name_line
from indexer.extractors._ole import ENCRYPTED_REASON, refuse_if_encrypted

__all__ = ["XlsExtractor"]


class XlsExtractor:
    mime_types = frozenset({"application/vnd.ms-excel", "application/wps-office.et"})

    def extract(self, context: ExtractionContext) -> Extracted:
        limits = context.limits
        refuse_if_encrypted(context.path)
        try:
            # xlrd prints its complaints to stdout unless given somewhere else to write them.
            book = xlrd.open_workbook(
                str(context.path), on_demand=True, logfile=io.StringIO(), verbosity=0
            )
        except xlrd.XLRDError as exc:
            if "encrypted" in str(exc).lower():
                raise ExtractionFailed(ENCRYPTED_REASON, code="encrypted") from exc
            raise
        lines: list[str] = []
        notes: list[str] = []
        size = 0
        try:
            for index in range(book.nsheets):
                if index >= limits.max_pages:
                    notes.append("page_limit")
                    break
                sheet = book.sheet_by_index(index)
                lines.extend(sheet_name_line(sheet.name))
                if sheet.nrows > limits.max_rows:
                    notes.append("page_limit")
                for number in range(min(sheet.nrows, limits.max_rows)):
                    cells = [_value(book, cell) for cell in sheet.row(number)]
                    line = "\t".join(text for text in cells if text)
                    if line:
                        lines.append(line)
                        size += len(line) + 1
                    if size > limits.max_chars:
                        break
                book.unload_sheet(index)
                if size > limits.max_chars:
                    notes.append("truncated")
                    break
        finally:
            book.release_resources()
        return Extracted(text="\n".join(lines), notes=notes)


def _value(book: xlrd.Book, cell: xlrd.sheet.Cell) -> str:
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return cell_text(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return cell_text(cell.value)
    if cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_EMPTY):
        return ""
    return cell_text(cell.value)
