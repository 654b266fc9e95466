"""How a spreadsheet cell value reads as text, shared by the XLSX and XLS extractors."""

from __future__ import annotations

import datetime as dt

__all__ = ["cell_text"]


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
