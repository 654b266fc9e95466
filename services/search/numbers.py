"""Numbers and dates as canonical tokens, so 第三季度 / 三季度 / 3季度 / Q3 meet in one token.

Every function here reads text already normalised (``segmentation.normalize``) and returns tokens
with their spans, which highlighting uses to mark a date however it is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache

__all__ = ["NUMBER_CHARS", "NumberScan", "number_matches", "number_scans", "number_tokens"]

# What the number patterns look at besides CJK: digits, latin letters (q, and [a-z0-9] before it)
# and the separators of dates.
NUMBER_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz-./"

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_MULTIPLIERS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMERAL = "".join(_CN_DIGITS) + "".join(_CN_MULTIPLIERS)
_UNIT_NAMES = {"季": "季度", "月份": "月", "年度": "年", "号": "日"}
# Longer spellings first: 季度 before 季, so a match takes the whole unit.
_UNIT_SPELLINGS = (
    "季度", "月份", "年度", "季", "月", "年", "日", "号", "期", "批", "次", "届", "轮", "章", "条",
)  # fmt: skip
_COUNTED_TEXT = rf"第?(\d+|[{_CN_NUMERAL}]+)\s*({{units}})"
_COUNTED = re.compile(_COUNTED_TEXT.format(units="|".join(_UNIT_SPELLINGS)))
_DATE_YEAR = re.compile(r"((?:19|20)\d\d)")
_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d\d)(?:年|[-./])(\d{1,2})(?!\d)(?:(?:月|[-./])(\d{1,2})(?!\d))?"
)
_QUARTER = re.compile(r"(?<![a-z0-9])(?:((?:19|20)\d\d)[-./]?)?q([1-4])(?![0-9])")

Token = tuple[str, int, int]  # canonical token, start, end


def number_tokens(normalized: str) -> list[Token]:
    """Canonical tokens for counted numbers and dates in normalised text, with their spans.

    ``2020年第三季度`` → ``2020年``, ``3季度``; ``2020-09-15`` → ``2020年``, ``9月``, ``15日``.
    """
    return merge_numbers(number_matches(normalized))


def number_matches(normalized: str, wanted: frozenset[str] | None = None) -> list[Token]:
    """Every number token's match, in pattern order; only those in ``wanted`` when given."""
    counted: re.Pattern[str] | None = _COUNTED
    date: re.Pattern[str] | None = _DATE
    quarter = True
    if wanted is not None:
        counted, date, quarter = _patterns_for(wanted)
    found: list[Token] = []
    if counted is not None:
        for match in counted.finditer(normalized):
            found.extend(_counted_tokens(match))
    if date is not None:
        for match in date.finditer(normalized):
            found.extend(_date_tokens(normalized, match))
    # The quarter pattern is slow to scan, and rarely has anything to find.
    if quarter and "q" in normalized:
        for match in _QUARTER.finditer(normalized):
            found.extend(_quarter_tokens(match))
    if wanted is None:
        return found
    return [item for item in found if item[0] in wanted]


_DATE_UNITS = frozenset({"年", "月", "日"})  # the units _date_tokens makes
_QUARTER_UNITS = frozenset({"年", "季度"})  # the units _quarter_tokens makes


@lru_cache(maxsize=64)
def _patterns_for(
    wanted: frozenset[str],
) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None, bool]:
    """The counted and date patterns that highlighting scans for these tokens (None: none can
    make one), and whether the quarter pattern can.

    Highlighting wants a few tokens, and a text names many other numbers (every year of its
    dates): these patterns skip what cannot be wanted. Written in digits, only the wanted values
    are looked for, so that ``2022年`` passes over 2019年 and 2021-06-12 unread; numerals
    (``二〇二二年``) and the units' other spellings are looked for as ``_COUNTED`` does. They find
    the same wanted matches as the full patterns: a match of another value or unit, which the
    full pattern would take first, never overlaps one of these.
    """
    values: dict[str, set[str]] = {}  # unit → the wanted values in digits
    for token in wanted:
        unit = token.lstrip("0123456789")
        if len(unit) == len(token):
            continue  # not a number token: nothing makes it
        values.setdefault(unit, set()).add(str(int(token[: len(token) - len(unit)])))
    counted = None
    spellings = [unit for unit in _UNIT_SPELLINGS if _UNIT_NAMES.get(unit, unit) in values]
    if spellings:
        digits = "|".join(sorted(set().union(*values.values()), key=len, reverse=True))
        counted = re.compile(
            rf"第?((?<!\d)0*(?:{digits})|[{_CN_NUMERAL}]+)\s*({'|'.join(spellings)})"
        )
    date = None
    if not _DATE_UNITS.isdisjoint(values):
        date = _DATE
        if set(values) & _DATE_UNITS == {"年"}:  # years only: the other years pass unread
            years = sorted(year for year in values["年"] if _DATE_YEAR.fullmatch(year))
            date = (
                re.compile(_DATE.pattern.replace(_DATE_YEAR.pattern, f"({'|'.join(years)})", 1))
                if years
                else None
            )
    return counted, date, not _QUARTER_UNITS.isdisjoint(values)


def merge_numbers(found: list[Token]) -> list[Token]:
    """Overlapping spans of one token merged, in order of their start.

    The patterns overlap: "2020年9月" is a date, a counted year and a counted month. Overlapping
    spans of one token merge, so a query groups every word of "2020年9月" together. Only spans of
    one token merge, so filtering by token before merging changes nothing.
    """
    tokens: list[Token] = []
    last: dict[str, int] = {}  # token → its index in tokens
    for token, start, end in sorted(found, key=lambda item: item[1]):
        index = last.get(token)
        if index is not None and start < tokens[index][2]:
            tokens[index] = (token, tokens[index][1], max(end, tokens[index][2]))
        else:
            last[token] = len(tokens)
            tokens.append((token, start, end))
    return tokens


def _counted_tokens(match: re.Match[str]) -> list[Token]:
    unit = _UNIT_NAMES.get(match.group(2), match.group(2))
    return [(f"{_number_value(match.group(1))}{unit}", match.start(), match.end())]


def _date_tokens(normalized: str, match: re.Match[str]) -> list[Token]:
    # Each part keeps its own span (with its 年/月/日), so highlights mark only what matched.
    month, day = int(match.group(2)), match.group(3)
    if not 1 <= month <= 12:
        return []
    found = [
        (f"{match.group(1)}年", *_part_span(normalized, match, 1, "年")),
        (f"{month}月", *_part_span(normalized, match, 2, "月")),
    ]
    if day is not None and 1 <= int(day) <= 31:
        found.append((f"{int(day)}日", *_part_span(normalized, match, 3, "日号")))
    return found


def _quarter_tokens(match: re.Match[str]) -> list[Token]:
    found = []
    if match.group(1):
        found.append((f"{match.group(1)}年", match.start(1), match.end(1)))
    found.append((f"{match.group(2)}季度", match.end(2) - 2, match.end(2)))
    return found


def _part_span(normalized: str, match: re.Match[str], group: int, suffixes: str) -> tuple[int, int]:
    end = match.end(group)
    if end < len(normalized) and normalized[end] in suffixes:
        end += 1
    return match.start(group), end


def _number_value(numeral: str) -> int:
    if numeral.isdecimal():
        return int(numeral)
    if not any(char in _CN_MULTIPLIERS for char in numeral):
        # 二〇二〇 is read digit by digit.
        return int("".join(str(_CN_DIGITS[char]) for char in numeral))
    total, current = 0, 0
    for char in numeral:
        if char in _CN_DIGITS:
            current = _CN_DIGITS[char]
        else:
            total += (current or 1) * _CN_MULTIPLIERS[char]
            current = 0
    return total + current


class NumberScan:
    """One number pattern's matches, taken in order of their start as far as asked."""

    def __init__(
        self,
        matches: Iterator[re.Match[str]],
        tokens: Callable[[re.Match[str]], list[Token]],
        wanted: frozenset[str],
    ) -> None:
        self._matches = matches
        self._tokens = tokens
        self._wanted = wanted
        self._pending = next(matches, None)

    def before(self, reach: int) -> list[Token]:
        found: list[Token] = []
        while self._pending is not None and self._pending.start() < reach:
            found.extend(item for item in self._tokens(self._pending) if item[0] in self._wanted)
            self._pending = next(self._matches, None)
        return found


def number_scans(normalized: str, wanted: frozenset[str]) -> list[NumberScan]:
    """``number_matches`` as lazy scans, one a pattern, in the same order."""
    scans = [
        NumberScan(_COUNTED.finditer(normalized), _counted_tokens, wanted),
        NumberScan(
            _DATE.finditer(normalized), lambda match: _date_tokens(normalized, match), wanted
        ),
    ]
    if "q" in normalized:
        scans.append(NumberScan(_QUARTER.finditer(normalized), _quarter_tokens, wanted))
    return scans
