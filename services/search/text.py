"""Chinese text analysis shared by every search backend: normalisation, segmentation, query plans.

Backends store the whitespace-joined token strings made here and build their queries from the same
``QueryPlan``, so SQLite FTS5 and a plain Elasticsearch node (whitespace analyzer) agree on matches.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "QueryGroup",
    "QueryPlan",
    "QueryUnit",
    "char_field",
    "char_tokens",
    "configure",
    "highlight",
    "normalize",
    "number_tokens",
    "parse_query",
    "word_field",
    "word_tokens",
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

# Function words that a query may contain but a matching document need not.
STOPWORDS = frozenset("的了和与及或之等在是对把被也都就")

MAX_QUERY_CHARS = 200  # longer queries are cut: each word adds a clause to every backend's query
MAX_PHRASE_TOKENS = 32  # longer queries get no whole-query phrase
MAX_HIGHLIGHT_SOURCE = 200_000  # characters of a body scanned for highlights
_FIRST_REACH = 4096  # characters of a body first searched for marks; four times more each time
_MAX_TERM_MARKS = 1000  # occurrences of the query's terms marked in one text, at most

_CJK = (
    "\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff"
)
# Each CJK character alone; latin letters and digits as separate runs ("q3" → q, 3).
_CHAR_TOKEN = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W\d_])+|\d+")
# Runs of letters and digits: exactly what SQLite's unicode61 keeps as one token.
_ALNUM_RUN = re.compile(r"[^\W_]+")
_WHITESPACE = re.compile(r"\s+")
# ASCII, CJK punctuation, ideographs and full-width ASCII: NFKC maps each to one character.
_SIMPLE_RUN = re.compile(r"[\x00-\x7f\u3000-\u303f\u4e00-\u9fff\uff01-\uff5e]+|.", re.DOTALL)


def _stable_characters() -> tuple[str, dict[str, str]]:
    # Characters that normalise to one non-combining character wherever they stand: ASCII, CJK
    # punctuation and ideographs (which NFKC leaves alone), full-width forms. Also, for each
    # character that some of them turn into, those that do (Ａ and ａ become a, ２ becomes 2).
    ranges = [(0x00, 0x7F), (0xB7, 0xB7), (0x2010, 0x2027), (0x3000, 0x303F), (0xFF01, 0xFF5E)]
    allowed = ["\u3400-\u4dbf\u4e00-\u9fff"]
    variants: dict[str, str] = {}
    for first, last in ranges:
        for char in map(chr, range(first, last + 1)):
            becomes = unicodedata.normalize("NFKC", char).lower()
            if len(becomes) != 1 or unicodedata.combining(char) or unicodedata.combining(becomes):
                continue
            allowed.append(re.escape(char))
            if becomes != char:
                variants[becomes] = variants.get(becomes, "") + char
    return "".join(allowed), variants


_STABLE_CLASS, _STABLE_VARIANTS = _stable_characters()
_STABLE_TEXT = re.compile(f"[{_STABLE_CLASS}]*")
# What the number patterns look at besides CJK: digits, latin letters (q, and [a-z0-9] before it)
# and the separators of dates.
_NUMBER_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz-./"

# Numbers and dates, so 第三季度 / 三季度 / 3季度 / Q3 and 2020-09 / 2020年9月 meet in one token.
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
_COUNTED = re.compile(
    rf"第?(\d+|[{_CN_NUMERAL}]+)\s*(季度|月份|年度|季|月|年|日|号|期|批|次|届|轮|章|条)"
)
_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d\d)(?:年|[-./])(\d{1,2})(?!\d)(?:(?:月|[-./])(\d{1,2})(?!\d))?"
)
_QUARTER = re.compile(r"(?<![a-z0-9])(?:((?:19|20)\d\d)[-./]?)?q([1-4])(?![0-9])")

_log = logging.getLogger(__name__)


class _Segmenter:
    """One jieba tokenizer per process; its dictionary is loaded once, on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache_dir: Path | None = None
        self._tokenizer: Any = None

    def configure(self, cache_dir: Path) -> None:
        with self._lock:
            self._cache_dir = cache_dir

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = self._load()
        return self._tokenizer

    def _load(self) -> Any:
        with warnings.catch_warnings():
            # jieba reads its dictionary through pkg_resources, deprecated in newer setuptools.
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._build()

    def _build(self) -> Any:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        cache_dir = self._cache_dir
        if cache_dir is not None:
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError:
                _log.warning("jieba cache directory %s is not writable", cache_dir)
                cache_dir = None
        if cache_dir is None:
            # Without a configured directory jieba would write its cache into /tmp; build the
            # prefix dictionary in memory instead (about as fast as reading the cache back).
            tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(tokenizer.get_dict_file())
            tokenizer.initialized = True
        else:
            tokenizer.tmp_dir = str(cache_dir)
            tokenizer.initialize()
        for word in DOMAIN_WORDS:
            tokenizer.add_word(word)
        return tokenizer


_segmenter = _Segmenter()


def configure(*, cache_dir: Path) -> None:
    """Choose the writable directory for jieba's dictionary cache (read when it first loads)."""
    _segmenter.configure(cache_dir)


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def char_tokens(text: str) -> list[str]:
    """Each CJK character, each latin run and each digit run of ``text`` (normalised first)."""
    return _CHAR_TOKEN.findall(normalize(text))


def word_tokens(text: str) -> list[str]:
    """jieba search-mode words (with their dictionary sub-words), then canonical number tokens."""
    normalized = normalize(text)
    tokens: list[str] = []
    for word in _segmenter.tokenizer.cut_for_search(normalized):
        if word.isalnum():  # the usual case, checked fast
            tokens.append(word)
        elif not word.isspace():
            tokens.extend(_ALNUM_RUN.findall(word))
    tokens.extend(token for token, _, _ in number_tokens(normalized))
    return tokens


def word_field(texts: Iterable[str]) -> str:
    """The word-level field value: tokens of every text, joined by single spaces."""
    return " ".join(token for text in texts for token in word_tokens(text))


def char_field(texts: Iterable[str]) -> str:
    """The character-level field value: tokens of every text, joined by single spaces."""
    return " ".join(token for text in texts for token in char_tokens(text))


def number_tokens(normalized: str) -> list[tuple[str, int, int]]:
    """Canonical tokens for counted numbers and dates in normalised text, with their spans.

    ``2020年第三季度`` → ``2020年``, ``3季度``; ``2020-09-15`` → ``2020年``, ``9月``, ``15日``.
    """
    return _merge_numbers(_number_matches(normalized))


def _number_matches(
    normalized: str, wanted: frozenset[str] | None = None
) -> list[tuple[str, int, int]]:
    """Every number token's match, in pattern order; only those in ``wanted`` when given."""
    found: list[tuple[str, int, int]] = []
    for match in _COUNTED.finditer(normalized):
        found.extend(_counted_tokens(match))
    for match in _DATE.finditer(normalized):
        found.extend(_date_tokens(normalized, match))
    if "q" in normalized:  # the quarter pattern is slow to scan, and rarely has anything to find
        for match in _QUARTER.finditer(normalized):
            found.extend(_quarter_tokens(match))
    if wanted is None:
        return found
    return [item for item in found if item[0] in wanted]


def _counted_tokens(match: re.Match[str]) -> list[tuple[str, int, int]]:
    unit = _UNIT_NAMES.get(match.group(2), match.group(2))
    return [(f"{_number_value(match.group(1))}{unit}", match.start(), match.end())]


def _date_tokens(normalized: str, match: re.Match[str]) -> list[tuple[str, int, int]]:
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


def _quarter_tokens(match: re.Match[str]) -> list[tuple[str, int, int]]:
    found = []
    if match.group(1):
        found.append((f"{match.group(1)}年", match.start(1), match.end(1)))
    found.append((f"{match.group(2)}季度", match.end(2) - 2, match.end(2)))
    return found


def _merge_numbers(found: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    # The patterns overlap: "2020年9月" is a date, a counted year and a counted month.
    # Overlapping spans of one token merge, so a query groups every word of "2020年9月" together.
    # Only spans of one token merge, so filtering by token before merging changes nothing.
    tokens: list[tuple[str, int, int]] = []
    last: dict[str, int] = {}  # token → its index in tokens
    for token, start, end in sorted(found, key=lambda item: item[1]):
        index = last.get(token)
        if index is not None and start < tokens[index][2]:
            tokens[index] = (token, tokens[index][1], max(end, tokens[index][2]))
        else:
            last[token] = len(tokens)
            tokens.append((token, start, end))
    return tokens


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


@dataclass(frozen=True)
class QueryUnit:
    """One word of the query: it matches as a word-level or as a character-level phrase."""

    text: str  # normalised, as typed: what highlighting marks
    words: tuple[str, ...]
    chars: tuple[str, ...]


@dataclass(frozen=True)
class QueryGroup:
    """Matches when every unit matches, or when every canonical number token does."""

    units: tuple[QueryUnit, ...]
    numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueryPlan:
    """What a search text asks for: every group must match (an AND of ORs).

    ``phrase`` is the whole query as character tokens; a document containing it verbatim matches
    every group, so backends may add it as an optional clause that only raises the score.
    """

    groups: tuple[QueryGroup, ...]
    phrase: tuple[str, ...] = ()

    @property
    def marked_terms(self) -> tuple[str, ...]:
        """Normalised strings to mark in highlights (single characters of dates are left out)."""
        terms: list[str] = []
        for group in self.groups:
            for unit in group.units:
                if group.numbers and len(unit.text) == 1:
                    continue
                terms.append(unit.text)
        return tuple(dict.fromkeys(terms))

    @property
    def numbers(self) -> frozenset[str]:
        return frozenset(number for group in self.groups for number in group.numbers)


def parse_query(text: str) -> QueryPlan:
    """Segment a user's search text (jieba search mode) into groups; no syntax is interpreted."""
    normalized = normalize(text)[:MAX_QUERY_CHARS]
    spans = list(_segmenter.tokenizer.tokenize(normalized, mode="search"))
    # Search mode yields each word's dictionary sub-words first; the words themselves (the spans
    # no other span contains) are the units. A document holding a word also holds its sub-words.
    words: list[tuple[str, int, int]] = []
    for word, start, end in sorted(spans, key=lambda span: (span[1], -span[2])):
        if not words or start >= words[-1][2]:
            words.append((word, start, end))
    items: list[tuple[int, int, QueryUnit | str]] = []
    for word, start, end in words:
        pieces = tuple(_ALNUM_RUN.findall(word))
        if pieces:
            unit = QueryUnit(text=word, words=pieces, chars=tuple(_CHAR_TOKEN.findall(word)))
            items.append((start, end, unit))
    unit_count = len(items)
    items.extend((start, end, token) for token, start, end in number_tokens(normalized))
    items.sort(key=lambda item: (item[0], item[1]))

    # Units overlapping one number expression form one group: "2020年" is 2020 AND 年, or 2020年.
    clusters: list[tuple[int, list[QueryUnit], list[str]]] = []
    for start, end, item in items:
        if clusters and start < clusters[-1][0]:
            cluster_end, units, numbers = clusters[-1]
            clusters[-1] = (max(cluster_end, end), units, numbers)
        else:
            clusters.append((end, [], []))
        if isinstance(item, QueryUnit):
            clusters[-1][1].append(item)
        else:
            clusters[-1][2].append(item)

    groups = [
        QueryGroup(units=tuple(units), numbers=tuple(dict.fromkeys(numbers)))
        for _, units, numbers in clusters
        if units
    ]
    content = [group for group in groups if group.numbers or group.units[0].text not in STOPWORDS]
    groups = content or groups
    phrase: tuple[str, ...] = ()
    if unit_count > 1:
        all_chars = tuple(_CHAR_TOKEN.findall(normalized))
        if len(all_chars) <= MAX_PHRASE_TOKENS:
            phrase = all_chars
    return QueryPlan(groups=tuple(groups), phrase=phrase)


def highlight(
    plan: QueryPlan, texts: Sequence[str], *, limit: int = 3, width: int = 60
) -> list[str]:
    """Up to ``limit`` snippets of about ``width`` characters around the query's terms.

    Each snippet is HTML-escaped text in which only ``<em>`` … ``</em>`` is markup.
    """
    terms = plan.marked_terms
    numbers = plan.numbers
    watched = _watched_variants(terms, numbers)
    snippets: list[str] = []
    for text in texts:
        if len(snippets) >= limit:
            break
        text = text[:MAX_HIGHLIGHT_SOURCE]
        normalized, offsets = _normalize_for_marks(text, watched)
        wanted = limit - len(snippets)
        if isinstance(offsets, range) and len(text) > _FIRST_REACH:
            # Normalised in place: marks are looked for only as far as the snippets need.
            snippets.extend(_prefix_snippets(text, normalized, terms, numbers, width, wanted))
            continue
        spans = _marks(normalized, offsets, terms, numbers)
        if spans:
            snippets.extend(_windows(text, spans, width=width, limit=wanted)[0])
    return snippets


def _watched_variants(terms: Sequence[str], numbers: frozenset[str]) -> re.Pattern[str] | None:
    """Characters whose normalisation could make a term or a number (``Ｑ``, ``２``, ``A``)."""
    wanted = set("".join(terms))
    if numbers:
        wanted.update(_NUMBER_CHARS)
    variants = "".join(_STABLE_VARIANTS.get(char, "") for char in sorted(wanted))
    return re.compile(f"[{re.escape(variants)}]") if variants else None


def _normalize_for_marks(text: str, watched: re.Pattern[str] | None) -> tuple[str, Sequence[int]]:
    """Text in which the marks are found, and each of its positions' original position.

    Normalising every hit's whole body dominated a search's cost, yet most bodies are CJK,
    ASCII and full-width punctuation only: there normalisation maps each character to one, in
    place, and unless a character in ``watched`` occurs, every term and number is found at the
    same places in the text as it is.
    """
    if _STABLE_TEXT.fullmatch(text) is None:
        return _normalize_with_offsets(text)
    identity = range(len(text) + 1)
    if watched is not None and watched.search(text):
        return normalize(text), identity
    return text, identity


def _marks(
    normalized: str, offsets: Sequence[int], terms: Sequence[str], numbers: frozenset[str]
) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for term in terms:
        position = normalized.find(term)
        while position >= 0 and len(found) < _MAX_TERM_MARKS:
            found.append((position, position + len(term)))
            position = normalized.find(term, position + len(term))
    if numbers:
        found.extend((s, e) for _, s, e in _merge_numbers(_number_matches(normalized, numbers)))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        start, end = offsets[start], offsets[end]
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _normalize_with_offsets(text: str) -> tuple[str, Sequence[int]]:
    """Normalised text and, for each of its positions (and its end), the original position."""
    normalized = normalize(text)
    if len(normalized) == len(text):
        return normalized, range(len(text) + 1)
    # Some character changed length (…… becomes ......): runs of characters that normalise one to
    # one are taken whole, the others one by one.
    pieces: list[str] = []
    offsets: list[int] = []
    for match in _SIMPLE_RUN.finditer(text):
        run = match.group()
        piece = normalize(run)
        if len(piece) == len(run):
            offsets.extend(range(match.start(), match.end()))
            pieces.append(piece)
            continue
        for position, char in enumerate(run, match.start()):
            piece = normalize(char)
            offsets.extend([position] * len(piece))
            pieces.append(piece)
    offsets.append(len(text))
    return "".join(pieces), offsets


def _prefix_snippets(
    text: str,
    normalized: str,
    terms: Sequence[str],
    numbers: frozenset[str],
    width: int,
    limit: int,
) -> list[str]:
    """``_windows`` of ``_marks``, looking for marks in a growing prefix of a long text.

    The snippets of a long body usually lie in its first few thousand characters: they are final
    once every mark they touch ends before the part searched so far.
    """
    scan = _MarkScan(normalized, terms, numbers)
    reach = _FIRST_REACH
    while True:
        whole = reach >= len(normalized)
        spans = scan.spans_before(len(normalized) + 1 if whole else reach)
        snippets, covered = _windows(text, spans, width=width, limit=limit)
        if whole or (
            len(snippets) == limit
            and covered <= reach
            and all(end < reach for start, end in spans if start < covered)
        ):
            return snippets
        reach *= 4


class _MarkScan:
    """The marks ``_marks`` finds in text normalised in place, found from the start on demand."""

    def __init__(self, normalized: str, terms: Sequence[str], numbers: frozenset[str]) -> None:
        self._normalized = normalized
        # _marks keeps the first occurrences of each term in turn: each term's share of them.
        budget = _MAX_TERM_MARKS
        self._finds: list[tuple[str, int, int]] = []  # term, next position, occurrences left
        for term in terms:
            share = min(normalized.count(term), budget)
            budget -= share
            if share:
                self._finds.append((term, normalized.find(term), share))
        self._terms: list[tuple[int, int]] = []
        self._numbers: list[tuple[str, int, int]] = []
        self._number_scans = _number_scans(normalized, numbers) if numbers else []

    def spans_before(self, reach: int) -> list[tuple[int, int]]:
        """Every mark starting before ``reach``, merged as ``_marks`` merges them."""
        finds = []
        for term, position, left in self._finds:
            while left and position < reach:
                self._terms.append((position, position + len(term)))
                position = self._normalized.find(term, position + len(term))
                left -= 1
            finds.append((term, position, left))
        self._finds = finds
        for scan in self._number_scans:
            self._numbers.extend(scan.before(reach))
        numbers = _merge_numbers([item for item in self._numbers if item[1] < reach])
        found = [span for span in self._terms if span[0] < reach]
        found.extend((start, end) for _, start, end in numbers)
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


class _PatternScan:
    """One number pattern's matches, taken in order of their start as far as asked."""

    def __init__(
        self,
        matches: Iterator[re.Match[str]],
        tokens: Callable[[re.Match[str]], list[tuple[str, int, int]]],
        wanted: frozenset[str],
    ) -> None:
        self._matches = matches
        self._tokens = tokens
        self._wanted = wanted
        self._pending = next(matches, None)

    def before(self, reach: int) -> list[tuple[str, int, int]]:
        found: list[tuple[str, int, int]] = []
        while self._pending is not None and self._pending.start() < reach:
            found.extend(item for item in self._tokens(self._pending) if item[0] in self._wanted)
            self._pending = next(self._matches, None)
        return found


def _number_scans(normalized: str, wanted: frozenset[str]) -> list[_PatternScan]:
    """``_number_matches`` as lazy scans, one a pattern, in the same order."""
    scans = [
        _PatternScan(_COUNTED.finditer(normalized), _counted_tokens, wanted),
        _PatternScan(
            _DATE.finditer(normalized), lambda match: _date_tokens(normalized, match), wanted
        ),
    ]
    if "q" in normalized:
        scans.append(_PatternScan(_QUARTER.finditer(normalized), _quarter_tokens, wanted))
    return scans


def _windows(
    text: str, spans: list[tuple[int, int]], *, width: int, limit: int
) -> tuple[list[str], int]:
    """Snippets around the first spans, and where the last one ends."""
    snippets: list[str] = []
    covered = 0
    for span_start, span_end in spans:
        if span_start < covered:
            continue
        start = max(0, min(span_start - width // 3, len(text) - width))
        end = min(len(text), max(start + width, span_end))
        inside = [(max(s, start), min(e, end)) for s, e in spans if s < end and e > start]
        snippets.append(_render(text, start, end, inside))
        covered = end
        if len(snippets) >= limit:
            break
    return snippets, covered


def _render(text: str, start: int, end: int, marks: list[tuple[int, int]]) -> str:
    # Escape each piece separately and add the only markup between pieces: a document's own
    # "<script>" stays text, and a term never matches inside an escape like "&amp;".
    parts = ["…" if start > 0 else ""]
    position = start
    for mark_start, mark_end in marks:
        parts.append(_plain(text[position:mark_start]))
        parts.append(f"<em>{_plain(text[mark_start:mark_end])}</em>")
        position = mark_end
    parts.append(_plain(text[position:end]))
    parts.append("…" if end < len(text) else "")
    return "".join(parts).strip()


def _plain(text: str) -> str:
    return html.escape(_WHITESPACE.sub(" ", text))
