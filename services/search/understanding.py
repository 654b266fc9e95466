"""What a clerk means by words whose meaning depends on the day or on the county's own names.

Clerks search the way they talk: 去年的扶贫总结, 上季度 会议纪要, 河口镇 (for 河口乡). Before a
query is planned, a relative period becomes the period it names on the day of the search
(去年 → 2025年, 上季度 → 2026年第3季度), and a township name with the other of 乡 and 镇 becomes
the county's own name when only that one exists. Each change is returned, so that the search page
can say how it read the query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

__all__ = ["Reading", "understood_query"]


@dataclass(frozen=True)
class Reading:
    """A word of the query and what it was searched as."""

    typed: str
    meant: str


def _year(offset: int) -> Callable[[date], str]:
    return lambda today: f"{today.year + offset}年"


def _quarter(offset: int) -> Callable[[date], str]:
    def label(today: date) -> str:
        index = today.year * 4 + (today.month - 1) // 3 + offset
        return f"{index // 4}年第{index % 4 + 1}季度"

    return label


def _month(offset: int) -> Callable[[date], str]:
    def label(today: date) -> str:
        index = today.year * 12 + today.month - 1 + offset
        return f"{index // 12}年{index % 12 + 1}月"

    return label


# Longest spellings first, so that 上个季度 is not read as 上个 + 季度.
_RELATIVE: dict[str, Callable[[date], str]] = {
    "上一季度": _quarter(-1),
    "上个季度": _quarter(-1),
    "这个季度": _quarter(0),
    "上个月": _month(-1),
    "这个月": _month(0),
    "上季度": _quarter(-1),
    "本季度": _quarter(0),
    "上年度": _year(-1),
    "本年度": _year(0),
    "前年": _year(-2),
    "去年": _year(-1),
    "今年": _year(0),
    "本年": _year(0),
    "上月": _month(-1),
    "本月": _month(0),
}
_RELATIVE_WORD = re.compile("|".join(map(re.escape, _RELATIVE)))
_TOWNSHIP_SUFFIXES = {"乡": "镇", "镇": "乡"}


def understood_query(
    text: str, *, today: date, townships: tuple[str, ...]
) -> tuple[str, tuple[Reading, ...]]:
    """The query with relative periods and near-miss township names replaced, and each change."""
    readings: list[Reading] = []

    def period(match: re.Match[str]) -> str:
        meant = _RELATIVE[match.group()](today)
        readings.append(Reading(match.group(), meant))
        return meant

    text = _RELATIVE_WORD.sub(period, text)
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
