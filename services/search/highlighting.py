"""Highlighting: short snippets of a document's own text with the query's terms marked.

Terms are found in normalised text and marked at the corresponding places of the original, so a
snippet shows what the document says; only ``<em>`` is markup, everything else is escaped text.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from services.search.numbers import NUMBER_CHARS, merge_numbers, number_matches, number_scans
from services.search.planning import QueryPlan
from services.search.segmentation import needs_folding, normalize

__all__ = ["MAX_HIGHLIGHT_SOURCE", "highlight"]

MAX_HIGHLIGHT_SOURCE = 200_000  # characters of a body scanned for highlights
_FIRST_REACH = 4096  # characters of a body first searched for marks; four times more each time
_MAX_TERM_MARKS = 1000  # occurrences of the query's terms marked in one text, at most

_WHITESPACE = re.compile(r"\s+")
_TO_ESCAPE = re.compile(r"[&<>\"'\s]")  # what html.escape or the whitespace rule would change
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


@lru_cache(maxsize=256)  # one search highlights every hit with the same terms
def _watched_variants(terms: tuple[str, ...], numbers: frozenset[str]) -> re.Pattern[str] | None:
    """Characters whose normalisation could make a term or a number (``Ｑ``, ``２``, ``A``)."""
    wanted = set("".join(terms))
    if numbers:
        wanted.update(NUMBER_CHARS)
    variants = "".join(_STABLE_VARIANTS.get(char, "") for char in sorted(wanted))
    return re.compile(f"[{re.escape(variants)}]") if variants else None


def _normalize_for_marks(text: str, watched: re.Pattern[str] | None) -> tuple[str, Sequence[int]]:
    """Text in which the marks are found, and each of its positions' original position.

    Normalising every hit's whole body dominated a search's cost, yet most bodies are CJK,
    ASCII and full-width punctuation only: there normalisation maps each character to one, in
    place, and unless a character in ``watched`` or a traditional one occurs, every term and
    number is found at the same places in the text as it is.
    """
    if _STABLE_TEXT.fullmatch(text) is None:
        return _normalize_with_offsets(text)
    identity = range(len(text) + 1)
    if (watched is not None and watched.search(text)) or needs_folding(text):
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
        found.extend((s, e) for _, s, e in merge_numbers(number_matches(normalized, numbers)))
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
        self._number_scans = number_scans(normalized, numbers) if numbers else []

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
        numbers = merge_numbers([item for item in self._numbers if item[1] < reach])
        found = [span for span in self._terms if span[0] < reach]
        found.extend((start, end) for _, start, end in numbers)
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


def _windows(
    text: str, spans: list[tuple[int, int]], *, width: int, limit: int
) -> tuple[list[str], int]:
    """Snippets around the first spans, and where the last one ends."""
    snippets: list[str] = []
    covered = 0
    for span_start, span_end in spans:
        if span_start < covered:
            continue
        # Never back into the previous snippet: two snippets never show the same words.
        start = max(covered, min(span_start - width // 3, len(text) - width))
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
    if _TO_ESCAPE.search(text) is None:  # most pieces of a Chinese text: nothing to change
        return text
    return html.escape(_WHITESPACE.sub(" ", text))
