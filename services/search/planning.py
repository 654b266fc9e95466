"""Query planning: what a search text asks for, as groups of words every backend can translate.

A plan is an AND of groups; each group is a word (matched as a phrase of characters, ranked by its
jieba words) or a number expression that its canonical tokens match too.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.search.numbers import number_tokens
from services.search.segmentation import ALNUM_RUN, CHAR_TOKEN, Segmenter, normalize

__all__ = ["MAX_QUERY_CHARS", "QueryGroup", "QueryPlan", "QueryUnit", "plan_query"]

# Function words that a query may contain but a matching document need not.
STOPWORDS = frozenset("的了和与及或之等在是对把被也都就")

MAX_QUERY_CHARS = 200  # longer queries are cut: each word adds a clause to every backend's query
MAX_PHRASE_TOKENS = 32  # longer queries get no whole-query phrase


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


def plan_query(text: str, segmenter: Segmenter) -> QueryPlan:
    """Segment a user's search text (jieba search mode) into groups; no syntax is interpreted."""
    normalized = normalize(text)[:MAX_QUERY_CHARS]
    spans = segmenter.spans(normalized)
    # Search mode yields each word's dictionary sub-words first; the words themselves (the spans
    # no other span contains) are the units. A document holding a word also holds its sub-words.
    words: list[tuple[str, int, int]] = []
    for word, start, end in sorted(spans, key=lambda span: (span[1], -span[2])):
        if not words or start >= words[-1][2]:
            words.append((word, start, end))
    items: list[tuple[int, int, QueryUnit | str]] = []
    for word, start, end in words:
        pieces = tuple(ALNUM_RUN.findall(word))
        if pieces:
            unit = QueryUnit(text=word, words=pieces, chars=tuple(CHAR_TOKEN.findall(word)))
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
        all_chars = tuple(CHAR_TOKEN.findall(normalized))
        if len(all_chars) <= MAX_PHRASE_TOKENS:
            phrase = all_chars
    return QueryPlan(groups=tuple(groups), phrase=phrase)
