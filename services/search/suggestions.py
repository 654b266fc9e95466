"""Did-you-mean: corrections of a query nothing matched, drawn from the index's own vocabulary.

A word of the query that the index does not know is replaced by a known word of the same length
that sounds the same (same pinyin, tones aside: 工做 → 工作) or differs in one character (扶平 →
扶贫). The backend only answers which known words fit the probe's patterns and pinyin; whether
a correction finds anything the caller may read is checked by searching it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "MAX_WORD",
    "MIN_WORD",
    "VocabularyProbe",
    "corrections",
    "is_vocabulary_word",
    "pinyin",
    "probe",
]

MIN_WORD, MAX_WORD = 2, 4  # the lengths of words kept in the vocabulary and tried as corrections
MAX_PATTERNS = 60  # per query: each is one wildcard look-up in the vocabulary
MAX_CORRECTIONS = 8  # corrected queries tried (each is one search) before giving up

_WORD = re.compile(rf"[\u4e00-\u9fff]{{{MIN_WORD},{MAX_WORD}}}")
_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


@dataclass(frozen=True)
class VocabularyProbe:
    """What to look up in the vocabulary: words matching a pattern, or sounding like one.

    A pattern is a word with exactly one character unknown, written ``?`` (``扶?``, ``?平``);
    every other character of patterns and words is a CJK ideograph, pinyin is ``[a-z]+``.
    """

    patterns: tuple[str, ...]
    pinyins: tuple[str, ...]


def is_vocabulary_word(token: str) -> bool:
    """Whether a document's word token joins the vocabulary: 2 to 4 ideographs."""
    return _WORD.fullmatch(token) is not None


@lru_cache(maxsize=200_000)
def pinyin(word: str) -> str:
    """The word's pinyin without tones or spaces (扶贫 → fupin), as pypinyin reads the phrase."""
    from pypinyin import Style, lazy_pinyin

    syllables: Iterable[str] = lazy_pinyin(word, style=Style.NORMAL, errors="ignore")
    return "".join(syllable for syllable in syllables if syllable.isascii() and syllable.isalpha())


def _stretches(normalized: str) -> list[tuple[int, int]]:
    """Spans of the normalised query that could be a mistyped word, longest first."""
    spans = []
    for run in _RUN.finditer(normalized):
        for length in range(MAX_WORD, MIN_WORD - 1, -1):
            for start in range(run.start(), run.end() - length + 1):
                spans.append((start, start + length))
    return spans


def probe(normalized: str) -> VocabularyProbe | None:
    """The look-ups that can correct ``normalized`` (a normalised query), if any."""
    patterns: list[str] = []
    pinyins: list[str] = []
    for start, end in _stretches(normalized):
        stretch = normalized[start:end]
        for position in range(len(stretch)):
            patterns.append(stretch[:position] + "?" + stretch[position + 1 :])
        sound = pinyin(stretch)
        if sound:
            pinyins.append(sound)
        if len(patterns) >= MAX_PATTERNS:
            break
    if not patterns:
        return None
    return VocabularyProbe(tuple(dict.fromkeys(patterns)), tuple(dict.fromkeys(pinyins)))


def corrections(normalized: str, known: Iterable[str]) -> list[str]:
    """Corrected queries, most plausible first: one unknown stretch replaced by a known word."""
    words = set(known)
    by_length: dict[int, list[str]] = {}
    for word in words:
        by_length.setdefault(len(word), []).append(word)
    ranked: list[tuple[tuple[int, int, int], str]] = []
    spans = _stretches(normalized)
    known_spans = [(start, end) for start, end in spans if normalized[start:end] in words]
    for start, end in spans:
        stretch = normalized[start:end]
        if stretch in words or _breaks_a_word(start, end, known_spans):
            continue
        sound = pinyin(stretch)
        for word in by_length.get(len(stretch), ()):
            differing = sum(a != b for a, b in zip(word, stretch, strict=True))
            same_sound = bool(sound) and pinyin(word) == sound
            if not same_sound and differing != 1:
                continue
            # Sounding the same first, then sounding close (扶平 fuping → 扶贫 fupin), then
            # the longer correction.
            cost = (0 if same_sound else 1, _distance(sound, pinyin(word)), -len(word))
            ranked.append((cost, normalized[:start] + word + normalized[end:]))
    ranked.sort()
    return list(dict.fromkeys(text for _, text in ranked))[:MAX_CORRECTIONS]


def _breaks_a_word(start: int, end: int, known_spans: list[tuple[int, int]]) -> bool:
    """Whether replacing ``[start, end)`` would cut into a known word of the query.

    扶贫工做总结: 做总 is no word, but replacing it (做法) would break 总结; only 工做 is a
    candidate. A known word wholly inside the stretch may be replaced with it.
    """
    return any(
        known_start < end and start < known_end and not (start <= known_start and known_end <= end)
        for known_start, known_end in known_spans
    )


def _distance(first: str, second: str) -> int:
    """Levenshtein distance (pinyin strings are short)."""
    previous = list(range(len(second) + 1))
    for row, a in enumerate(first, 1):
        current = [row]
        for column, b in enumerate(second, 1):
            current.append(
                min(previous[column] + 1, current[-1] + 1, previous[column - 1] + (a != b))
            )
        previous = current
    return previous[-1]
