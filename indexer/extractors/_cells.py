"""How a spreadsheet cell value and a sheet's name read as text, shared by the XLSX and XLS
extractors."""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["cell_text", "sheet_name_line"]

# The names spreadsheet programs give new sheets (Excel, WPS, openpyxl; LibreOffice in Chinese).
_DEFAULT_SHEET_NAME = re.compile(r"(?:sheet|工作表)\s*\d*", re.IGNORECASE)


def sheet_name_line(name: str) -> list[str]:
    """The line a sheet's name adds to the text: none for a default name (Sheet, Sheet1, 工作表1),
    which says nothing of the sheet and would only open each of its snippets."""
    name = name.strip()
    return [] if not name or _DEFAULT_SHEET_NAME.fullmatch(name) else [name]


def cell_text(value: object) -> str:
    """1200.0 reads "1200", a date reads ISO 8601, None and blanks read ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()
