"""Full-text search: the ``SearchIndex`` protocol, its value types, and the backend factory.

The index is derived data: rebuilt at any time from the database and the blob store. Backends
receive plain values (``IndexedDocument``) and a ``ReadScope`` decided by the access policy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from services.config import Settings
from services.search.analysis import TextAnalyzer

__all__ = [
    "FACETS",
    "FacetBucket",
    "IndexedDocument",
    "ReadScope",
    "SearchHit",
    "SearchIndex",
    "SearchQuery",
    "SearchResult",
    "SearchSort",
    "TextAnalyzer",
    "open_search_index",
]

FACETS = ("township", "category", "year")


@dataclass(frozen=True)
class IndexedDocument:
    """What the index holds of one live document. ``body`` is already masked of personal data."""

    id: str
    title: str
    filename: str
    category: str
    tags: tuple[str, ...]
    description: str
    body: str
    township_id: int
    township_name: str
    visibility: str  # departments | restricted | private
    department_ids: tuple[int, ...]  # for restricted documents
    period: str | None
    period_start: date | None  # first and last day the period covers
    period_end: date | None
    created_at: datetime
    content_type: str
    # The document's ``index_version``: a write older than what the index holds is ignored.
    version: int = 0


@dataclass(frozen=True)
class ReadScope:
    """Which documents a caller may read, as the access policy decided it.

    A document matches when ``everything`` is set, or it belongs to ``township_id``, or
    ``department_id`` is set and the document is shared with every department or with that one.
    """

    everything: bool = False
    township_id: int | None = None
    department_id: int | None = None


class SearchSort(StrEnum):
    """The order of matches; without text, documents are always listed newest first."""

    relevance = "relevance"  # title and tag matches first, then bm25; newer first on ties
    date = "date"  # newest upload first (``created_at`` descending), ties by id


@dataclass(frozen=True)
class SearchQuery:
    text: str
    scope: ReadScope
    category: str | None = None
    township_id: int | None = None
    period_from: date | None = None  # documents whose period overlaps [period_from, period_to]
    period_to: date | None = None
    # The year facet's filter: the period's year, or the upload year when there is no period.
    year: int | None = None
    page: int = 1
    size: int = 20
    highlight: bool = True
    sort: SearchSort = SearchSort.relevance


@dataclass(frozen=True)
class SearchHit:
    document_id: str
    score: float
    highlights: tuple[str, ...]  # HTML-escaped text with <em> marks only


@dataclass(frozen=True)
class FacetBucket:
    key: str
    count: int


@dataclass
class SearchResult:
    total: int
    hits: list[SearchHit] = field(default_factory=list)
    facets: dict[str, list[FacetBucket]] = field(default_factory=dict)
    # Nothing matched every word: these are the best partial matches (any word).
    relaxed: bool = False
    # Nothing matched: corrected queries that do find documents in the caller's scope.
    suggestions: tuple[str, ...] = ()


class SearchIndex(Protocol):
    """A search backend; every query is limited to the given ``ReadScope``."""

    name: str

    def upsert(self, documents: Sequence[IndexedDocument]) -> None:
        """Add or replace documents (by id), as one bulk operation.

        External versioning: a document is written only when its ``version`` is at least the
        one the index holds for that id (a live entry or a deletion); an older one is ignored
        without error, since a newer state is already there.
        """

    def delete(
        self, document_ids: Sequence[str], *, versions: Mapping[str, int] | None = None
    ) -> None:
        """Remove documents; ids not in the index are ignored.

        An id with a version in ``versions`` is removed only when that version is at least the
        one the index holds, and the index remembers the deletion's version; one without is
        removed whatever its version.
        """

    def indexed_versions(self) -> Iterator[tuple[str, int]]:
        """Every document the index holds (a live entry, not a deletion) with its version."""

    def search(self, query: SearchQuery) -> SearchResult:
        """Matching documents within the scope in the query's order, with totals and facets."""

    def count(self) -> int:
        """How many documents the index holds."""

    def ping(self) -> None:
        """Raise BackendUnavailable when the index cannot be used."""

    def close(self) -> None:
        """Release connections."""

    def begin_rebuild(self, *, restart: bool = False) -> SearchIndex:
        """The index a full rebuild writes into: the unfinished one unless ``restart``.

        Searches keep using the current index until ``finish_rebuild``; live writes reach both.
        A backend that rebuilds in place returns itself.
        """

    def finish_rebuild(self, rebuilt: SearchIndex) -> None:
        """Serve searches from ``rebuilt`` from now on (one atomic switch), dropping the old."""

    def needs_refill(self) -> bool:
        """Whether the index lost its documents to a new schema (an embedded index is then
        rebuilt empty) and every live document must be queued for indexing again."""

    def refill_queued(self) -> None:
        """Every live document has been queued again: ``needs_refill`` answers False from now."""


def open_search_index(settings: Settings, *, analyzer: TextAnalyzer | None = None) -> SearchIndex:
    """The index the settings choose: SQLite FTS5 in the data dir unless Elasticsearch is set.

    The text analyzer is handed to the backend: the one given (the process keeps it current with
    the county's words), or one built here from the same settings.
    """
    analyzer = analyzer or TextAnalyzer.from_settings(settings)
    if settings.elasticsearch_url:
        from services.search._elasticsearch import ElasticsearchIndex

        return ElasticsearchIndex(
            settings.elasticsearch_url,
            analyzer=analyzer,
            alias=settings.elasticsearch_index,
            timeout_seconds=settings.elasticsearch_timeout_seconds,
        )
    from services.search._sqlite import SqliteSearchIndex

    return SqliteSearchIndex(settings.data_dir / "search.sqlite3", analyzer=analyzer)
