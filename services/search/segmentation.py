"""Normalising and cutting Chinese text into tokens: jieba words and single characters.

A ``Segmenter`` is built from settings (its cache directory and extra words) and passed down; the
jieba dictionaries it loads are shared by every segmenter of the same configuration in a process.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "ALNUM_RUN",
    "CHAR_TOKEN",
    "DOMAIN_WORDS",
    "Segmenter",
    "char_tokens",
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

_log = logging.getLogger(__name__)
_loaded: dict[tuple[Path | None, tuple[str, ...]], Any] = {}
_loading = threading.Lock()


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def char_tokens(text: str) -> list[str]:
    """Each CJK character, each latin run and each digit run of ``text`` (normalised first)."""
    return CHAR_TOKEN.findall(normalize(text))


class Segmenter:
    """jieba in search mode over normalised text, with the county's own words added.

    The dictionary loads on first use; segmenters with the same cache directory and words share it.
    """

    def __init__(self, *, cache_dir: Path | None = None, words: Iterable[str] = DOMAIN_WORDS):
        self._key = (cache_dir, tuple(dict.fromkeys(words)))
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            with _loading:
                if self._key not in _loaded:
                    _loaded[self._key] = _load(*self._key)
                self._tokenizer = _loaded[self._key]
        return self._tokenizer

    def cut(self, normalized: str) -> Iterable[str]:
        """Search-mode words of normalised text: each word's dictionary sub-words, then the word."""
        words: Iterable[str] = self.tokenizer.cut_for_search(normalized)
        return words

    def spans(self, normalized: str) -> list[tuple[str, int, int]]:
        """Search-mode words of normalised text with their spans."""
        return list(self.tokenizer.tokenize(normalized, mode="search"))


def _load(cache_dir: Path | None, words: tuple[str, ...]) -> Any:
    with warnings.catch_warnings():
        # jieba reads its dictionary through pkg_resources, deprecated in newer setuptools.
        warnings.simplefilter("ignore", DeprecationWarning)
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        if cache_dir is not None:
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError:
                _log.warning("jieba cache directory %s is not writable", cache_dir)
                cache_dir = None
        if cache_dir is None:
            # Without a directory jieba would write its cache into /tmp; build the prefix
            # dictionary in memory instead (about as fast as reading the cache back).
            tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(tokenizer.get_dict_file())
            tokenizer.initialized = True
        else:
            tokenizer.tmp_dir = str(cache_dir)
            tokenizer.initialize()
        for word in words:
            tokenizer.add_word(word)
        return tokenizer
