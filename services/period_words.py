"""Words for a period whose meaning depends on the day: 去年, 上季度, 本月 ….

One table for everywhere people type them: the search box reads 去年的扶贫总结 as 2025年的扶贫总结
(services/search/understanding.py), and a period field takes 去年 as 2025
(services/metadata.py). Each word names a year, a quarter or a month, counted from the day given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = ["RELATIVE_WORD", "RELATIVE_WORDS", "MeantPeriod", "meant_period"]


@dataclass(frozen=True)
class MeantPeriod:
    """The period a word means on one day: a year, or one of its quarters or months."""

    year: int
    quarter: int | None = None
    month: int | None = None


# Word → (unit, how many of them from the running one). Longest spellings first, so that a search
# for 上个季度 is not read as 上个 + 季度.
_WORDS: dict[str, tuple[str, int]] = {
    "上一季度": ("quarter", -1),
    "上个季度": ("quarter", -1),
    "这个季度": ("quarter", 0),
    "上个月": ("month", -1),
    "这个月": ("month", 0),
    "上季度": ("quarter", -1),
    "本季度": ("quarter", 0),
    "上年度": ("year", -1),
    "本年度": ("year", 0),
    "前年": ("year", -2),
    "去年": ("year", -1),
    "今年": ("year", 0),
    "本年": ("year", 0),
    "上月": ("month", -1),
    "本月": ("month", 0),
}
RELATIVE_WORDS: tuple[str, ...] = tuple(_WORDS)
# Finds the words inside longer text (the search box), longest first.
RELATIVE_WORD = re.compile("|".join(map(re.escape, RELATIVE_WORDS)))


def meant_period(word: str, *, today: date) -> MeantPeriod | None:
    """The period ``word`` means on ``today`` (去年 in 2026 → 2025), or None for any other text."""
    known = _WORDS.get(word)
    if known is None:
        return None
    unit, offset = known
    if unit == "year":
        return MeantPeriod(today.year + offset)
    if unit == "quarter":
        index = today.year * 4 + (today.month - 1) // 3 + offset
        return MeantPeriod(index // 4, quarter=index % 4 + 1)
    index = today.year * 12 + today.month - 1 + offset
    return MeantPeriod(index // 12, month=index % 12 + 1)
