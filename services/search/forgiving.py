"""Forgiving search: the flow every backend runs around its own query translation.

A query nothing matches is run again with any of its words enough (``relaxed``), and gets
corrections from the index's vocabulary that do find something in the caller's scope.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace

from services.search import FACETS, SearchQuery, SearchResult
from services.search.analysis import TextAnalyzer
from services.search.planning import QueryPlan
from services.search.suggestions import VocabularyProbe

__all__ = ["MAX_SUGGESTIONS", "search_forgivingly"]

MAX_SUGGESTIONS = 3

# Runs one plan with the query's scope and filters; ``True`` asks only for the total.
Execute = Callable[[QueryPlan, SearchQuery, bool], SearchResult]
# The vocabulary's words fitting a probe (within the query's scope where the backend can).
Lookup = Callable[[VocabularyProbe, SearchQuery], Collection[str]]


def search_forgivingly(
    analyzer: TextAnalyzer, query: SearchQuery, *, execute: Execute, lookup: Lookup
) -> SearchResult:
    """The query's matches; with none, the relaxed query's and did-you-mean suggestions."""
    plan = analyzer.plan(query.text)
    if plan.empty:  # only punctuation or spaces: nothing can match
        return SearchResult(total=0, facets={name: [] for name in FACETS})
    result = execute(plan, query, False)
    if result.total:
        return result
    suggestions = _suggestions(analyzer, query, execute, lookup)
    if plan.can_relax:
        relaxed = execute(plan.relax(), query, False)
        if relaxed.total:
            result = relaxed
            result.relaxed = True
    result.suggestions = suggestions
    return result


def _suggestions(
    analyzer: TextAnalyzer, query: SearchQuery, execute: Execute, lookup: Lookup
) -> tuple[str, ...]:
    probe = analyzer.vocabulary_probe(query.text)
    if probe is None:
        return ()
    known = lookup(probe, query)
    found: list[tuple[int, str]] = []
    for text in analyzer.corrections(query.text, known):
        corrected = analyzer.plan(text)
        if corrected.empty:
            continue
        total = execute(corrected, replace(query, text=text, highlight=False), True).total
        if total:
            found.append((total, text))
            if len(found) == MAX_SUGGESTIONS:
                break
    return tuple(text for _, text in found)
