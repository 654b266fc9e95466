"""Find and mask personal data: mainland resident ID numbers, bank card numbers, mobile numbers.

The one rule for text that others may read: the indexer masks every text field it writes to the
search index, the API masks the metadata that lists and search results show.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import fields, replace
from typing import Any

from services.search import IndexedDocument

__all__ = ["mask_indexed", "mask_personal_data"]

# GB 11643: weights of the first 17 digits; the sum modulo 11 picks the check character.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
# Province-level codes of GB/T 2260 (plus 71 Taiwan, 81/82 Hong Kong and Macao).
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
)
_EARLIEST_BIRTH_YEAR = 1900

_DIGITS = "0123456789"
# A mobile number has 11 digits, a bank card 16 to 19, an ID number 17 and a check character.
_FEWEST_DIGITS = 11
# Where a number may begin: a digit that does not continue a run of digits.
_NUMBER_START = re.compile(r"(?<![0-9])[0-9]")
# The spellings of each kind, tried in this order at every number start; ``number`` holds the
# digits that are checked and masked, ``sep`` the one separator a grouped spelling repeats.
# Each must end where the digits end, so a longer run (a document number) is never cut short.
_ID_SHAPES = (
    re.compile(r"(?P<number>[0-9]{17}[0-9Xx])(?![0-9])"),
    re.compile(r"(?P<number>[0-9]{6}(?P<sep>[ -])[0-9]{8}(?P=sep)[0-9]{3}[0-9Xx])(?![0-9])"),
)
_CARD_SHAPES = (
    re.compile(r"(?P<number>[0-9]{4}(?P<sep>[ -])(?:[0-9]{4}(?P=sep)){3}[0-9]{1,3})(?![0-9])"),
    re.compile(
        r"(?P<number>[0-9]{4}(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{4})(?![0-9])"
    ),
    re.compile(r"(?P<number>[0-9]{16,19})(?![0-9])"),
)
# After an optional country code: 86, 0086, "86)" of "(+86)", then a space or hyphen.
_MOBILE_PREFIX = r"(?:(?:00)?86\)?[ -]?)?"
_MOBILE_SHAPES = (
    re.compile(_MOBILE_PREFIX + r"(?P<number>1[3-9][0-9]{9})(?![0-9])"),
    re.compile(
        _MOBILE_PREFIX + r"(?P<number>1[3-9][0-9](?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4})(?![0-9])"
    ),
)
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63"
# IndexedDocument's str fields that are identifiers or codes chosen by the system, not free text.
_NOT_FREE_TEXT = frozenset({"id", "visibility", "period", "content_type"})


def mask_personal_data(text: str) -> tuple[str, bool]:
    """The text with ID, bank card and mobile numbers masked, and whether there were any.

    Masking replaces digits by ``*`` one for one (``110***********002X``, ``6222 **** **** 0123``,
    ``138-****-5678``) and leaves every other character as it was written.
    """
    if len(text) < _FEWEST_DIGITS:
        return text, False  # a category, a tag, a short name
    folded = _fold(text)
    if sum(map(folded.count, _DIGITS)) < _FEWEST_DIGITS:
        return text, False  # most titles and names: too few digits to hold any such number
    stars: list[tuple[int, int, int, int]] = []  # (start, end, digits kept in front, at the end)
    resume = 0
    for start in _NUMBER_START.finditer(folded):
        if start.start() < resume or _after_decimal_point(folded, start.start()):
            continue
        found = _personal_number(folded, start.start())
        if found is not None:
            stars.append(found)
            resume = found[1]
    if not stars:
        return text, False
    characters = list(text)
    for begin, end, front, back in stars:
        positions = [i for i in range(begin, end) if folded[i] in "0123456789Xx"]
        for i in positions[front : len(positions) - back]:
            characters[i] = "*"
    return "".join(characters), True


def mask_indexed(document: IndexedDocument) -> tuple[IndexedDocument, bool]:
    """The document with every free-text field masked, and whether any held personal data."""
    found = False

    def mask(text: str) -> str:
        nonlocal found
        masked, personal = mask_personal_data(text)
        found = found or personal
        return masked

    changes: dict[str, Any] = {}
    for field in fields(document):
        value = getattr(document, field.name)
        if field.name in _NOT_FREE_TEXT:
            continue
        if isinstance(value, str):
            changes[field.name] = mask(value)
        elif isinstance(value, tuple) and all(isinstance(part, str) for part in value):
            changes[field.name] = tuple(mask(part) for part in value)
    return replace(document, **changes), found


def _personal_number(text: str, position: int) -> tuple[int, int, int, int] | None:
    """The span of an ID, card or mobile number starting here, with what its mask keeps."""
    for shapes, valid, front, back in (
        (_ID_SHAPES, _is_id_card, 3, 4),
        (_CARD_SHAPES, _is_bank_card, 4, 4),
        (_MOBILE_SHAPES, None, 3, 4),  # the shape (1[3-9], nine more digits) is the whole rule
    ):
        for shape in shapes:
            match = shape.match(text, position)
            if match is None or _before_decimal_point(text, match.end()):
                continue
            number = match.group("number")
            if valid is None or valid(number.replace(" ", "").replace("-", "")):
                return match.start("number"), match.end("number"), front, back
    return None


def _is_id_card(number: str) -> bool:
    if int(number[:2]) not in _PROVINCES:
        return False
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if birth.year < _EARLIEST_BIRTH_YEAR or birth > dt.date.today():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11] == number[17].upper()


def _is_bank_card(number: str) -> bool:
    """16 to 19 digits of a card network's range (UnionPay 62 and 81, Visa, Mastercard, JCB, the
    old domestic 9xxx cards), with a valid Luhn check digit.

    Serial and document numbers usually start with a year (``2024…``) and so fall outside."""
    if not 16 <= len(number) <= 19:
        return False
    if number[0] not in "345689" and not 2221 <= int(number[:4]) <= 2720:
        return False
    total = 0
    for place, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if place % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _after_decimal_point(text: str, position: int) -> bool:
    """``0.13812345678``: the digits after a decimal point are a fraction, not a number."""
    return position >= 2 and text[position - 1] == "." and text[position - 2].isdigit()


def _before_decimal_point(text: str, end: int) -> bool:
    """``13812345678.50`` is an amount."""
    return text[end : end + 1] == "." and text[end + 1 : end + 2].isdigit()


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table mapping each character to one ASCII character when NFKC (which
    the search index applies) would read it as a digit, X, plus, bracket or space, and dashes to
    ``-``; every other character to itself. One character for one, so positions stay the same."""

    def __missing__(self, code: int) -> str:
        character = chr(code)
        folded = unicodedata.normalize("NFKC", character)
        if character.isascii():
            folded = character
        elif character in _DASHES:
            folded = "-"
        elif folded.isspace():
            folded = " "
        elif len(folded) != 1 or folded not in "0123456789Xx+-()":
            folded = character
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def _fold(text: str) -> str:
    """Full-width and other digits that the index would read as ASCII digits, as ASCII."""
    return text if text.isascii() else text.translate(_FOLD)
