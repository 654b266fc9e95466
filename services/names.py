"""Names people type and read: Unicode NFC, without the invisible characters that make one name
display as another, and the canonical form under which two usernames count as the same.

``adm\\u202eni`` displays as "admin" and ``ａｄｍｉｎ`` or ``Admin`` reads as it: none may sit
beside ``admin``.
"""

from __future__ import annotations

import unicodedata

# Direction controls: embeddings, overrides, isolates, the implicit marks, the Arabic letter mark.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
# Zero-width space, non-joiner, joiner, word joiner and the byte-order mark (zero-width no-break).
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
INVISIBLE = BIDI_CONTROLS | ZERO_WIDTH
_DROP_INVISIBLE = dict.fromkeys(map(ord, INVISIBLE))

# Scripts whose letters look like Latin ones: a username mixing them with Latin is a disguise.
_LOOKALIKE_SCRIPTS = ("CYRILLIC", "GREEK")


def nfc(text: str) -> str:
    """The text in Unicode normal form C (composed), as every name is stored."""
    return unicodedata.normalize("NFC", text)


def without_invisible(text: str) -> str:
    """The text in NFC with every direction control and zero-width character removed."""
    # Normalised after the removal: a removed character may have kept apart two that compose.
    return nfc(text.translate(_DROP_INVISIBLE))


def canonical_username(username: str) -> str:
    """The form under which usernames are compared: NFKC and case-folded, so that full-width,
    upper-case and compatibility look-alikes of a name are the same name."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def username_problem(username: str) -> str | None:
    """Why a (stripped, NFC) username cannot be used, in words; None when it can."""
    for ch in username:
        if ch in INVISIBLE:
            return "用户名不能包含方向控制符或零宽字符等不可见字符"
        # Controls, formats, private use, unassigned, separators (spaces of every width).
        if unicodedata.category(ch)[0] in "CZ" or ch.isspace():
            return "用户名不能包含空白、控制字符或不可见字符"
    folded = canonical_username(username)
    if any(ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in folded):
        # A compatibility character whose normal form holds a space (U+00A8 and the like).
        return "用户名不能包含空白、控制字符或不可见字符"
    scripts = {_script(ch) for ch in folded if ch.isalpha()}
    if "LATIN" in scripts and scripts.intersection(_LOOKALIKE_SCRIPTS):
        return "用户名不能混用拉丁字母与西里尔或希腊字母"
    return None


def display_name_problem(name: str) -> str | None:
    """Why a (stripped, NFC) person's name cannot be shown, in words; None when it can. Spaces
    and the middle dot of names such as 阿依古丽·买买提 are allowed; control, format (direction,
    zero-width), private-use and unassigned characters, and line breaks, are not."""
    for ch in name:
        if ch in INVISIBLE:
            return "姓名不能包含方向控制符或零宽字符等不可见字符"
        category = unicodedata.category(ch)
        if category[0] == "C" or category in ("Zl", "Zp"):
            return "姓名不能包含换行、制表符等控制字符或不可见字符"
    return None


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""
