"""Searching documents: the caller's read scope, filters, and an audit event for every search.

The index returns ids within the scope the access policy decides; rows are then loaded from the
database (the truth) and checked once more, so a stale index entry can never show a hidden document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services import access, catalog, dictionary, orgs
from services.access import Principal
from services.audit import AuditAction, Outcome
from services.backends import Backends
from services.document_rows import ListedDocument, listed_documents
from services.documents import actor_of
from services.errors import InvalidField
from services.metadata import period_bounds
from services.models import utcnow
from services.search import FacetBucket, SearchQuery, SearchSort
from services.search.understanding import Reading, understood_query

MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class FoundDocument:
    document: ListedDocument
    score: float
    highlights: tuple[str, ...]


@dataclass(frozen=True)
class SearchPage:
    total: int
    hits: list[FoundDocument]
    facets: dict[str, list[FacetBucket]]
    relaxed: bool = False  # nothing matched every word: the best partial matches instead
    suggestions: tuple[str, ...] = ()  # nothing matched: corrected queries that find something
    readings: tuple[Reading, ...] = ()  # words searched as what they mean (去年 as 2025年)


def search(
    backends: Backends,
    *,
    principal: Principal,
    text: str,
    category: str | None,
    township: str | None,
    period_from: str | None,
    period_to: str | None,
    page: int,
    size: int,
    ip: str | None,
    sort: SearchSort = SearchSort.relevance,
    year: int | None = None,
) -> SearchPage:
    """Documents matching the text and filters that the caller may read, best or newest first."""
    text = text.strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidField("q", f"检索词不能超过 {MAX_QUERY_LENGTH} 个字符", code="too_long")
    start = period_bounds(period_from)[0] if period_from else None
    end = period_bounds(period_to)[1] if period_to else None
    if start and end and start > end:
        raise InvalidField("period_from", "开始期间不能晚于结束期间")
    township_id = None
    if township:
        with backends.db.session() as session:
            org = orgs.find_org(session, township)
        township_id = org.id if org else -1
    dictionary.keep_current(backends)  # the county's words, for the query's segmentation
    meant, readings = understood_query(
        text, today=catalog.county_today(), townships=backends.words_check.townships
    )
    result = backends.index.search(
        SearchQuery(
            text=meant,
            scope=access.read_scope(principal),
            category=category or None,
            township_id=township_id,
            period_from=start,
            period_to=end,
            year=year,
            page=page,
            size=size,
            sort=sort,
        )
    )
    # One transaction loads the rows and appends the audit event (one connection checkout, one
    # commit); the event takes no lock shared with other requests.
    with backends.db.transaction() as connection:
        rows = listed_documents(connection, [hit.document_id for hit in result.hits])
        granted = (
            orgs.granted_document_ids(connection, user_id=principal.user_id, now=utcnow())
            if access.downloads_by_grant(principal)
            else set()
        )
        hits = []
        for hit in result.hits:
            document = rows.get(hit.document_id)
            if document is None or document.withdrawn_at is not None:
                continue
            if not access.can_see(principal, document):
                continue
            # Snippets quote the body: none for a caller who may not read it (an auditor).
            readable = access.can_read_content(principal, document, granted_document_ids=granted)
            hits.append(FoundDocument(document, hit.score, hit.highlights if readable else ()))
        details: dict[str, Any] = {
            "q": text,
            "filters": {
                key: value
                for key, value in (
                    ("category", category),
                    ("township", township),
                    ("period_from", period_from),
                    ("period_to", period_to),
                    ("year", year),
                )
                if value
            },
            "page": page,
            "total": result.total,
            "document_ids": [found.document.id for found in hits],
        }
        if sort != SearchSort.relevance:  # like the filters, only what the caller chose
            details["sort"] = str(sort)
        if result.relaxed:
            details["relaxed"] = True
        if readings:
            details["searched_as"] = meant
        backends.audit.append(
            connection,
            actor=actor_of(principal, ip),
            action=AuditAction.search,
            outcome=Outcome.allowed,
            details=details,
        )
    return SearchPage(
        total=result.total,
        hits=hits,
        facets=result.facets,
        relaxed=result.relaxed,
        suggestions=result.suggestions,
        readings=readings,
    )
