"""Find and mask mainland resident ID numbers and mobile numbers in extracted text.

Expects NFKC-normalised text (the extractors produce it), so digits are ASCII.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["mask_personal_data"]

# 18 characters, the last a digit or X, not part of a longer run of digits.
_ID_CARD = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
# 1[3-9] and nine more digits, optionally after +86 / 86, not part of a longer run of digits.
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?(1[3-9][0-9]{9})(?![0-9])")

# GB 11643: weights of the first 17 digits; the sum modulo 11 picks the check character.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
# Province-level codes of GB/T 2260 (plus 71 Taiwan, 81/82 Hong Kong and Macao).
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
)
_EARLIEST_BIRTH_YEAR = 1900


def mask_personal_data(text: str) -> tuple[str, bool]:
    """The text with ID and mobile numbers masked, and whether there were any."""
    found = False

    def mask_id(match: re.Match[str]) -> str:
        nonlocal found
        number = match.group()
        if not _is_id_card(number):
            return number
        found = True
        return number[:3] + "*" * 11 + number[-4:]

    def mask_mobile(match: re.Match[str]) -> str:
        nonlocal found
        found = True
        number = match.group(1)
        start = match.start(1) - match.start()
        return match.group()[:start] + number[:3] + "****" + number[-4:]

    # IDs first: once masked, their digits can no longer be read as a mobile number.
    masked = _MOBILE.sub(mask_mobile, _ID_CARD.sub(mask_id, text))
    return masked, found


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
