"""Searching materials, for departments: one box, facets to narrow, newest materials to start.

The page keeps its whole state in the address (q, filters, sort, page), so a search can be
bookmarked, shared and reloaded; each facet is a link to the same search with one filter changed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from api.deps import BackendsDep, ClientIP, PageNumber
from api.schemas import OrgNameOrId
from api.web.render import masked, render
from api.web.routes.documents import PRESENTATION
from api.web.session import SignedIn
from services import searching
from services.errors import MaterialsError
from services.metadata import period_label
from services.search import FacetBucket, SearchSort
from services.searching import FoundDocument, SearchPage

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20


@dataclass(frozen=True)
class SearchState:
    """What the reader asked for, as it appears in the address."""

    q: str = ""
    township: str = ""
    category: str = ""
    period_from: str = ""
    period_to: str = ""
    # The year facet: the period's year, or the upload year of a material without a period.
    year: str = ""
    sort: SearchSort = SearchSort.relevance
    page: int = 1

    @property
    def filtered(self) -> bool:
        return bool(
            self.township or self.category or self.period_from or self.period_to or self.year
        )

    def url(self, *, page: int = 1, sort: SearchSort | None = None, **filters: str | None) -> str:
        """This search with some filters set (a string) or removed (None), on the given page."""
        return self.changed(filters, page=page, sort=sort).address()

    def changed(
        self,
        filters: Mapping[str, str | None],
        *,
        page: int = 1,
        sort: SearchSort | None = None,
    ) -> SearchState:
        return replace(
            self,
            page=page,
            sort=sort or self.sort,
            **{name: value or "" for name, value in filters.items()},
        )

    def address(self) -> str:
        """The page's address for this search."""
        params = [
            (name, value)
            for name, value in (
                ("q", self.q),
                ("township", self.township),
                ("category", self.category),
                ("period_from", self.period_from),
                ("period_to", self.period_to),
                ("year", self.year),
            )
            if value
        ]
        if self.sort != SearchSort.relevance:
            params.append(("sort", self.sort.value))
        if self.page > 1:
            params.append(("page", str(self.page)))
        return "/search" + ("?" + urlencode(params) if params else "")

    def page_url(self, page: int) -> str:
        return self.url(page=page)


@dataclass(frozen=True)
class FacetLink:
    label: str
    count: int
    href: str
    active: bool


@dataclass(frozen=True)
class Facet:
    title: str
    links: list[FacetLink]


@dataclass(frozen=True)
class Chip:
    """A filter in force, shown as "× 城关镇": following the link removes it."""

    label: str
    href: str


def _facets(state: SearchState, found: SearchPage | None) -> list[Facet]:
    buckets = found.facets if found else {}

    def facet(
        title: str,
        name: str,
        chosen: str,
        label: Callable[[str], str],
        filters: Callable[[str], dict[str, str | None]],
    ) -> Facet:
        return Facet(
            title,
            [
                FacetLink(
                    label=label(bucket.key),
                    count=bucket.count,
                    href=state.changed(filters(bucket.key)).address(),
                    active=bucket.key == chosen,
                )
                for bucket in _ordered(name, buckets.get(name, []))
            ],
        )

    return [
        facet("乡镇", "township", state.township, str, lambda key: {"township": key}),
        facet("类别", "category", state.category, str, lambda key: {"category": key}),
        facet(
            "年度",
            "year",
            state.year,
            lambda key: f"{key}年",
            lambda key: {"year": key},
        ),
    ]


def _ordered(name: str, buckets: list[FacetBucket]) -> list[FacetBucket]:
    # Years read best newest first; townships and categories most materials first.
    if name == "year":
        return sorted(buckets, key=lambda bucket: bucket.key, reverse=True)
    return buckets


def _chips(state: SearchState) -> list[Chip]:
    chips = []
    if state.township:
        chips.append(Chip(state.township, state.url(township=None)))
    if state.category:
        chips.append(Chip(state.category, state.url(category=None)))
    if state.year:
        chips.append(Chip(f"{state.year}年", state.url(year=None)))
    if state.period_from:
        label = f"{period_label(state.period_from)}起"
        chips.append(Chip(label, state.url(period_from=None)))
    if state.period_to:
        label = f"至{period_label(state.period_to)}"
        chips.append(Chip(label, state.url(period_to=None)))
    return chips


_MARK = re.compile(r"</?em>")
_SPACES = re.compile(r"\s+")


ELLIPSIS = "…"


@dataclass(frozen=True)
class ShownHit:
    """A hit as its list item shows it: the title with the query's words marked when a snippet
    is the whole title, and the snippets of the text besides it."""

    title_html: str | None  # escaped, only <em> marks (as the snippets are); None: plain title
    snippets: tuple[str, ...]

    @property
    def text_html(self) -> str:
        """The first three snippets as one paragraph: one … between two, where a snippet cut
        from inside the text already ends or starts with its own (never “… …”)."""
        joined = ""
        for snippet in self.snippets[:3]:
            if not joined:
                joined = snippet
            elif joined.endswith(ELLIPSIS) and snippet.startswith(ELLIPSIS):
                joined += snippet.removeprefix(ELLIPSIS)
            elif joined.endswith(ELLIPSIS) or snippet.startswith(ELLIPSIS):
                joined += snippet
            else:
                joined += f" {ELLIPSIS} {snippet}"
        return joined


def shown_hit(hit: FoundDocument) -> ShownHit:
    """The title's own snippet marks the title instead of repeating it under the title."""
    title = html.escape(_SPACES.sub(" ", masked(hit.document.title))).strip()
    for position, snippet in enumerate(hit.highlights):
        if _MARK.sub("", snippet) == title:
            rest = hit.highlights[:position] + hit.highlights[position + 1 :]
            return ShownHit(snippet, rest)
    return ShownHit(None, hit.highlights)


@router.get("/search")
def search_page(
    request: Request,
    web: SignedIn,
    backends: BackendsDep,
    ip: ClientIP,
    # Longer than the service allows, so that it is the service that says what is too long.
    q: Annotated[str, Query(max_length=2000)] = "",
    township: Annotated[OrgNameOrId, Query(max_length=100)] = "",
    category: Annotated[str, Query(max_length=50)] = "",
    period_from: Annotated[str, Query(max_length=20)] = "",
    period_to: Annotated[str, Query(max_length=20)] = "",
    year: Annotated[int | None, Query(ge=1949, le=2100)] = None,
    sort: SearchSort = SearchSort.relevance,
    page: PageNumber = 1,
) -> Response:
    """Search the materials the caller may read; without words, the newest ones."""
    state = SearchState(
        q=q.strip(),
        township=township.strip(),
        category=category.strip(),
        period_from=period_from.strip(),
        period_to=period_to.strip(),
        year=str(year) if year else "",
        sort=sort,
        page=page,
    )
    found: SearchPage | None = None
    error: str | None = None
    status = 200
    try:
        found = searching.search(
            backends,
            principal=web.principal,
            text=state.q,
            category=state.category or None,
            township=state.township or None,
            period_from=state.period_from or None,
            period_to=state.period_to or None,
            page=state.page,
            size=PAGE_SIZE,
            ip=ip,
            sort=state.sort,
            year=year,
        )
    except MaterialsError as exc:
        error, status = exc.message, exc.status
    return render(
        request,
        "search.html",
        principal=web.principal,
        csrf_token=web.csrf_token,
        status_code=status,
        state=state,
        found=found,
        error=error,
        facets=_facets(state, found),
        chips=_chips(state),
        page_size=PAGE_SIZE,
        SearchSort=SearchSort,
        shown_hit=shown_hit,
        **PRESENTATION,
    )
