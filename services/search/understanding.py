"""What a clerk means by words whose meaning depends on the day or on the county's own names.

Clerks search the way they talk: 去年的扶贫总结, 上季度 会议纪要, 河口镇 (for 河口乡). Before a
query is planned, a relative period becomes the period it names on the day of the search
(去年 → 2025年, 上季度 → 2026年第3季度), and a township name with the other of 乡 and 镇 becomes
the county's own name when only that one exists. Each change is returned, so that the search page
can say how it read the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from services.period_words import RELATIVE_WORD, MeantPeriod, meant_period

__all__ = ["Reading", "understood_query"]


@dataclass(frozen=True)
class Reading:
    """A word of the query and what it was searched as."""

    typed: str
    meant: str


def _label(meant: MeantPeriod) -> str:
    """How the search reads a relative period: 2025年, 2026年第3季度, 2026年9月."""
    if meant.quarter is not None:
        return f"{meant.year}年第{meant.quarter}季度"
    if meant.month is not None:
        return f"{meant.year}年{meant.month}月"
    return f"{meant.year}年"


_TOWNSHIP_SUFFIXES = {"乡": "镇", "镇": "乡"}


def understood_query(
    text: str, *, today: date, townships: tuple[str, ...]
) -> tuple[str, tuple[Reading, ...]]:
    """The query with relative periods and near-miss township names replaced, and each change."""
    readings: list[Reading] = []

    def relative(match: re.Match[str]) -> str:
        word = match.group()
        period = meant_period(word, today=today)
        if period is None:  # never: RELATIVE_WORD finds only the table's words
            return word
        meant = _label(period)
        readings.append(Reading(word, meant))
        return meant

    text = RELATIVE_WORD.sub(relative, text)
    names = _township_names(townships)
    if names is not None:
        pattern, meant_of = names

        def township(match: re.Match[str]) -> str:
            word = match.group()
            meant = meant_of.get(word)
            if meant is None:
                return word  # the county's own name, also where a near miss is part of it
            readings.append(Reading(word, meant))
            return meant

        text = pattern.sub(township, text)
    return text, tuple(dict.fromkeys(readings))


@lru_cache(maxsize=8)
def _township_names(townships: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]] | None:
    """A pattern finding the townships' names and their near misses (longest first, so that a
    name holding a near miss of another is taken whole), and each near miss's real name."""
    known = set(townships)
    meant_of: dict[str, str] = {}
    for name in known:
        other = _TOWNSHIP_SUFFIXES.get(name[-1:])
        if other is None or len(name) < 3:  # a one-character stem says too little
            continue
        mistaken = name[:-1] + other
        if mistaken not in known:
            meant_of[mistaken] = name
    if not meant_of:
        return None
    words = sorted({*known, *meant_of}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, words))), meant_of
