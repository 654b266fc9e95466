"""Query planning: what a search text asks for, in a form every backend translates directly.

A clerk's query is words separated by spaces (each must match), ``A OR B`` (also ``A 或 B`` and
``A | B``: either), ``"exact phrase"`` (also “…” and 「…」: the characters in this order) and
``-word`` (documents holding it are left out). Each word is segmented into groups: a jieba word
(matched as a phrase of characters, ranked by its words) or a number expression that its
canonical tokens match too. Nothing else typed is syntax.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from functools import cached_property

from services.search.numbers import number_tokens
from services.search.segmentation import ALNUM_RUN, CHAR_TOKEN, Segmenter, normalize

__all__ = [
    "MAX_QUERY_CHARS",
    "QueryClause",
    "QueryGroup",
    "QueryPlan",
    "QueryTerm",
    "QueryUnit",
    "plan_query",
]

# Function words that a query may contain but a matching document need not.
STOPWORDS = frozenset("的了和与及或之等在是对把被也都就")

MAX_QUERY_CHARS = 200  # longer queries are cut: each word adds a clause to every backend's query
MAX_PHRASE_TOKENS = 32  # longer queries get no whole-query phrase

# What a clerk types between two alternatives.
OR_WORDS = frozenset({"or", "|", "或", "或者"})
# One piece of the query: an optional minus, then a quoted phrase or a run of non-spaces.
_PIECE = re.compile(
    r'(?P<minus>-)?(?:"(?P<ascii>[^"]*)"?|“(?P<curly>[^”]*)”?|「(?P<corner>[^」]*)」?|(?P<word>\S+))'
)


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
class QueryTerm:
    """One thing typed between spaces: every group must match, and ``exact`` (a quoted phrase's
    characters, in order) when it is set."""

    groups: tuple[QueryGroup, ...]
    exact: tuple[str, ...] = ()
    text: str = ""  # normalised, as typed


@dataclass(frozen=True)
class QueryClause:
    """Alternatives: matches when any of its terms does (one term unless ``OR`` was typed)."""

    terms: tuple[QueryTerm, ...]


@dataclass(frozen=True)
class QueryPlan:
    """What a search text asks for: every clause must match, no excluded term may.

    ``relaxed``: any clause is enough (the fallback of a query nothing matched, see ``relax``);
    documents matching more clauses rank first. ``phrase`` is the whole query as character tokens; a
    document containing it verbatim matches every clause, so backends may add it as an optional
    clause that only raises the score.
    """

    clauses: tuple[QueryClause, ...]
    excluded: tuple[QueryTerm, ...] = ()
    phrase: tuple[str, ...] = ()
    relaxed: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to look for (only punctuation or spaces): nothing can match."""
        return not self.clauses

    @property
    def can_relax(self) -> bool:
        return not self.relaxed and len(self.relax().clauses) > 1

    def relax(self) -> QueryPlan:
        """The same query where any one of its words is enough: each group, and each quoted
        phrase (whole), becomes a clause of its own; documents matching more of them rank first.

        A lone character (不, 工: what jieba leaves of words it does not know) is no word to
        fall back on: it would match nearly every document.
        """
        if self.relaxed:
            return self
        clauses: list[QueryClause] = []
        for clause in self.clauses:
            for term in clause.terms:
                if term.exact:  # a quoted phrase stays whole
                    clauses.append(QueryClause((QueryTerm((), term.exact, term.text),)))
                    continue
                clauses.extend(
                    QueryClause((QueryTerm((group,)),))
                    for group in term.groups
                    if group.numbers
                    or any(len(unit.chars) > 1 or unit.chars[0].isascii() for unit in group.units)
                )
        return replace(self, clauses=tuple(dict.fromkeys(clauses)), relaxed=True)

    @property
    def groups(self) -> tuple[QueryGroup, ...]:
        """Every group the query looks for (excluded terms left out), in order."""
        return tuple(
            group for clause in self.clauses for term in clause.terms for group in term.groups
        )

    @cached_property  # highlighting asks once for every hit
    def marked_terms(self) -> tuple[str, ...]:
        """Normalised strings to mark in highlights.

        Single characters of dates are left out, and so is a character that jieba left alone
        in a longer word (员 of 网格员): it is marked only as part of the word typed, not in
        every 党员 and 人员 of a text.
        """
        terms: list[str] = []
        for clause in self.clauses:
            for term in clause.terms:
                if term.exact:
                    terms.append(term.text)
                for group in term.groups:
                    for unit in group.units:
                        if group.numbers and len(unit.text) == 1:
                            continue
                        if len(term.groups) > 1 and _lone_character(unit):
                            terms.append(term.text)
                            continue
                        terms.append(unit.text)
        return tuple(dict.fromkeys(term for term in terms if term))

    @cached_property
    def numbers(self) -> frozenset[str]:
        return frozenset(number for group in self.groups for number in group.numbers)


def plan_query(text: str, segmenter: Segmenter) -> QueryPlan:
    """Parse a search text's syntax and segment each of its words into groups."""
    pieces = _pieces(unicodedata.normalize("NFKC", text)[:MAX_QUERY_CHARS])
    positive = [piece for piece in pieces if not piece.excluded]
    if not any(not piece.joiner for piece in positive):
        # Only exclusions (or only joiners): the minus was a hyphen, not an instruction.
        positive = [_Piece(piece.text, quoted=piece.quoted) for piece in pieces]
    clauses: list[list[QueryTerm]] = []
    join_next = False
    plain = True  # no syntax at all: the whole query may also score as one phrase
    for piece in positive:
        if piece.joiner:
            join_next = bool(clauses)
            plain = False
            continue
        term = _term(piece, segmenter)
        if term is None:
            continue
        plain = plain and not piece.quoted
        if join_next:
            clauses[-1].append(term)
        else:
            clauses.append([term])
        join_next = False
    # A term that is only function words ("的") is dropped when the query says something else.
    content = [
        [term for term in terms if not _only_stopwords(term)]
        for terms in clauses
        if any(not _only_stopwords(term) for term in terms)
    ]
    clauses = content or clauses
    excluded = []
    if len(positive) != len(pieces):
        for piece in pieces:
            if piece.excluded:
                term = _term(_Piece(piece.text, quoted=True), segmenter)
                if term is not None:
                    excluded.append(term)
        plain = False
    phrase: tuple[str, ...] = ()
    if (
        plain
        and sum(len(group.units) for terms in clauses for t in terms for group in t.groups) > 1
    ):
        all_chars = tuple(CHAR_TOKEN.findall(normalize(" ".join(p.text for p in positive))))
        if len(all_chars) <= MAX_PHRASE_TOKENS:
            phrase = all_chars
    return QueryPlan(
        clauses=tuple(QueryClause(tuple(terms)) for terms in clauses),
        excluded=tuple(excluded),
        phrase=phrase,
    )


@dataclass(frozen=True)
class _Piece:
    text: str
    quoted: bool = False
    excluded: bool = False

    @property
    def joiner(self) -> bool:
        return not self.quoted and self.text.lower() in OR_WORDS


def _pieces(text: str) -> list[_Piece]:
    pieces = []
    for match in _PIECE.finditer(text):
        word = match.group("word")
        if word is not None:
            pieces.append(_Piece(word, excluded=bool(match.group("minus"))))
            continue
        quoted = next(group for group in match.groups()[1:] if group is not None)
        pieces.append(_Piece(quoted, quoted=True, excluded=bool(match.group("minus"))))
    return pieces


def _only_stopwords(term: QueryTerm) -> bool:
    return not term.exact and all(
        not group.numbers and all(unit.text in STOPWORDS for unit in group.units)
        for group in term.groups
    )


def _term(piece: _Piece, segmenter: Segmenter) -> QueryTerm | None:
    normalized = normalize(piece.text)
    groups = _groups(normalized, segmenter)
    if not groups:
        return None
    exact: tuple[str, ...] = ()
    if piece.quoted:
        exact = tuple(CHAR_TOKEN.findall(normalized))
    return QueryTerm(groups=groups, exact=exact, text=normalized.strip())


def _groups(normalized: str, segmenter: Segmenter) -> tuple[QueryGroup, ...]:
    """jieba's words of the text and the number expressions they overlap, as groups."""
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
    items.extend((start, end, token) for token, start, end in number_tokens(normalized))
    items.sort(key=lambda item: (item[0], item[1]))

    # Units overlapping one number expression form one group: "2020年" is 2020 AND 年, or 2020年.
    clusters: list[tuple[int, int, list[QueryUnit], list[str]]] = []
    for start, end, item in items:
        if clusters and start < clusters[-1][1]:
            cluster_start, cluster_end, units, numbers = clusters[-1]
            clusters[-1] = (cluster_start, max(cluster_end, end), units, numbers)
        else:
            clusters.append((start, end, [], []))
        if isinstance(item, QueryUnit):
            clusters[-1][2].append(item)
        else:
            clusters[-1][3].append(item)

    groups: list[QueryGroup] = []
    run_end = -1  # where the last group ends, when it is a run of lone characters
    for start, end, units, numbers in clusters:
        if not units:
            continue
        if not numbers and len(units) == 1 and _lone_character(units[0]):
            if start == run_end:
                # Characters jieba left alone, typed together (工做, 扶平: often a typo or a
                # name it does not know) match together, as one phrase.
                groups[-1] = QueryGroup(units=(_joined(groups[-1].units[0], units[0]),))
            else:
                groups.append(QueryGroup(units=(units[0],)))
            run_end = end
            continue
        groups.append(QueryGroup(units=tuple(units), numbers=tuple(dict.fromkeys(numbers))))
        run_end = -1
    content = [group for group in groups if group.numbers or group.units[0].text not in STOPWORDS]
    return tuple(content or groups)


def _lone_character(unit: QueryUnit) -> bool:
    return len(unit.chars) == 1 and not unit.text.isascii() and unit.text not in STOPWORDS


def _joined(first: QueryUnit, second: QueryUnit) -> QueryUnit:
    return QueryUnit(
        text=first.text + second.text,
        words=first.words + second.words,
        chars=first.chars + second.chars,
    )
