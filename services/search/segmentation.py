"""Normalising and cutting Chinese text into tokens: jieba words and single characters.

A ``Segmenter`` is built with the county's words and passed down; words are cut by jieba-rs
(``rjieba``: jieba's dictionary and algorithm, the same words as the Python ``jieba``, about 30
times faster), whose dictionaries are shared by every segmenter of the same words in a process.
Traditional characters are folded to simplified ones (OpenCC's character table) when normalising,
one character for one, so documents and queries meet whichever script they were typed in; so are
the CJK radicals PDF text layers give for ideographs (⻛ is 风, ``services.radicals``).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import cache
from typing import Any

from services.radicals import RADICAL, RADICAL_IDEOGRAPHS, fold_radicals

__all__ = [
    "ALNUM_RUN",
    "CHAR_TOKEN",
    "DOMAIN_WORDS",
    "Segmenter",
    "char_tokens",
    "needs_folding",
    "normalize",
]

# Words jieba's general dictionary lacks but county staff search for as one word.
DOMAIN_WORDS = (
    "脱贫攻坚",
    "乡村振兴",
    "工作留痕",
    "精准扶贫",
    "精准脱贫",
    "扶贫办",
    "建档立卡",
    "两不愁三保障",
    "易地扶贫搬迁",
    "驻村工作队",
    "第一书记",
    "村两委",
    "低保户",
    "五保户",
    "贫困户",
    "脱贫户",
    "监测户",
    "防返贫",
    "河长制",
    "网格化",
    "报送回执",
)

CJK = "\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff"
# Each CJK character alone; latin letters and digits as separate runs ("q3" → q, 3).
CHAR_TOKEN = re.compile(rf"[{CJK}]|(?:(?![{CJK}])[^\W\d_])+|\d+")
# Runs of letters and digits: exactly what SQLite's unicode61 keeps as one token.
ALNUM_RUN = re.compile(r"[^\W_]+")

MAX_DICTIONARIES = 4  # word lists whose dictionaries a process keeps loaded
_loaded: dict[tuple[str, ...], Any] = {}
_loading = threading.Lock()


# Where the traditional characters OpenCC knows live (CJK Compatibility forms fold through NFKC).
_FOLD_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0x20000, 0x2A6DF))
_SUPPLEMENTARY = re.compile("[\U00020000-\U0002a6df]")


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII), lower case, simplified characters.

    Radicals of the CJK Radicals Supplement become the ideographs they stand for (NFKC does that
    for the Kangxi Radicals only).
    """
    normalized = unicodedata.normalize("NFKC", text).lower()
    if not needs_folding(normalized):  # the usual case, checked fast
        return normalized
    if RADICAL.search(normalized) is not None:
        # A text with radicals is rarely traditional: replacing the few radicals is much faster
        # than translating every character (their ideographs are then folded like all others).
        normalized = fold_radicals(normalized)
        if not needs_folding(normalized):
            return normalized
    return normalized.translate(_folding()[0])


def needs_folding(text: str) -> bool:
    """Whether ``text`` holds a character ``normalize`` folds: traditional, or a radical."""
    # One character class of the BMP characters is a bitmap, fast to scan; rare characters of
    # the supplementary planes are only looked for as one range.
    return _folding()[1].search(text) is not None or _SUPPLEMENTARY.search(text) is not None


@cache
def _folding() -> tuple[dict[int, str], re.Pattern[str]]:
    """OpenCC's traditional → simplified character table, as ``str.translate`` takes it, and
    each radical → its ideograph (simplified too: ⻑ is 長, and so 长).

    Character by character, not phrase by phrase: folding then never changes a text's length,
    so a highlight found in folded text marks the same place in the document's own characters.
    It is package data, the same for every caller, built on first use.
    """
    import opencc

    converter = opencc.OpenCC("t2s")
    table: dict[int, str] = {}
    for first, last in _FOLD_RANGES:
        chars = [chr(code) for code in range(first, last + 1)]
        converted = converter.convert("\n".join(chars)).split("\n")
        if len(converted) != len(chars):  # never seen; fold nothing rather than misalign
            continue
        for char, simplified in zip(chars, converted, strict=True):
            if len(simplified) == 1 and simplified != char:
                table[ord(char)] = simplified
    for radical, ideograph in RADICAL_IDEOGRAPHS.items():
        table[radical] = table.get(ord(ideograph), ideograph)
    basic = "".join(chr(code) for code in sorted(table) if code <= 0xFFFF)
    return table, re.compile(f"[{basic}]" if basic else "(?!)")


def char_tokens(text: str) -> list[str]:
    """Each CJK character, each latin run and each digit run of ``text`` (normalised first)."""
    return CHAR_TOKEN.findall(normalize(text))


class Segmenter:
    """jieba's search mode (jieba-rs) over normalised text, with the county's own words added.

    The dictionary loads on first use (about 0.1 s); segmenters of the same words share it.
    """

    def __init__(self, *, words: Iterable[str] = DOMAIN_WORDS):
        self.words = tuple(dict.fromkeys(words))
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = _tokenizer(self.words)
        return self._tokenizer

    def load(self) -> None:
        """Load the dictionary now rather than at the first cut."""
        _ = self.tokenizer

    def cut(self, normalized: str) -> list[str]:
        """Search-mode words of normalised text: each word's dictionary sub-words, then the word."""
        words: list[str] = self.tokenizer.cut_for_search(_GLUE.sub(" ", normalized), True)
        return words

    def spans(self, normalized: str) -> list[tuple[str, int, int]]:
        """Search-mode words of normalised text with their spans."""
        spans: list[tuple[str, int, int]] = self.tokenizer.tokenize(
            _GLUE.sub(" ", normalized), "search", True
        )
        return spans


# Punctuation jieba-rs keeps inside a run of letters and digits ("v1.2", "e-mail"); a space in its
# place (same length, so spans stay aligned) leaves the letters and digits as separate words.
_GLUE = re.compile(r"[._\-+#&%]")


def _tokenizer(words: tuple[str, ...]) -> Any:
    with _loading:
        tokenizer = _loaded.get(words)
        if tokenizer is None:
            import rjieba

            tokenizer = rjieba.Jieba()
            for word in words:
                tokenizer.add_word(word, None, None)
            if len(_loaded) >= MAX_DICTIONARIES:  # an old word list no segmenter uses any more
                _loaded.pop(next(iter(_loaded)))
            _loaded[words] = tokenizer
        return tokenizer
