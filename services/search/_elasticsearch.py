"""The production search backend: Elasticsearch through the official client.

Words are segmented in Python (the ``TextAnalyzer``) and stored space-separated in fields
analysed by the built-in ``whitespace`` analyzer, so a plain node without plugins serves the same
matching and ranking as the embedded backend: character phrases decide what matches, word phrases
rank, a match in the title or tags ranks first. Highlights are cut in Python from the stored text.

Readers and writers use an alias (``MATERIALS_ELASTICSEARCH_INDEX``). A rebuild creates a new
index behind a second alias, ``<alias>-building``, which every live write also reaches; finishing
it moves the alias in one atomic step and drops the old index, so searches never see a gap. No one
searches the index being built: it is written without refreshes or replicas until it is finished.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from elasticsearch.serializer import OrjsonSerializer

from services.errors import BackendUnavailable
from services.search import (
    FACETS,
    FacetBucket,
    IndexedDocument,
    ReadScope,
    SearchHit,
    SearchIndex,
    SearchQuery,
    SearchResult,
    SearchSort,
    analysis,
)
from services.search.analysis import CHAR_FIELDS, AnalysedDocument, TextAnalyzer
from services.search.forgiving import search_forgivingly
from services.search.planning import QueryPlan, QueryTerm
from services.search.suggestions import VocabularyProbe

__all__ = ["SCHEMA_VERSION", "ElasticsearchIndex", "index_body"]

BACKEND = "search index"
# Bump with the mapping or what the analyzer indexes (5: radicals read as ideographs);
# `materials reindex` then builds an index with it.
SCHEMA_VERSION = 5

# The analyzer's word-level fields (named ``<field>_words`` here) with their weights; its
# character fields only match.
WORD_FIELDS = {f"{name}_words": weight for name, weight in analysis.WORD_FIELDS.items()}
# A match in the title or tags adds HEAD per query group; word relevance is scaled below it, so
# the score orders by title matches first and relevance second, as one float.
HEAD = 100.0
RANK_SCALE = 0.01
FACET_FIELDS = {"township": "township_name", "category": "category", "year": "year"}
MAX_FACET_BUCKETS = 1000
MAX_RESULT_WINDOW = 10_000  # Elasticsearch's default; deeper pages answer no hits
MAX_LOOKUP_WORDS = 500  # vocabulary words one correction look-up brings back
REBUILD_TIMEOUT_SECONDS = 120.0  # for one bulk request of a rebuild (hundreds of documents)

# Settings of an index while it is being built, and what finishing it restores (index_body's).
_BUILDING = {"refresh_interval": "-1", "number_of_replicas": 0, "auto_expand_replicas": "false"}
_SERVING = {"refresh_interval": None, "auto_expand_replicas": "0-1"}

_log = logging.getLogger("materials.search")
_WHITESPACE_TEXT = {"type": "text", "analyzer": "whitespace"}
_STORED_ONLY = {"type": "text", "index": False}
_TOKEN_FIELDS = (
    *WORD_FIELDS,
    *CHAR_FIELDS,
    "head_chars",
    "head_numbers",
    "vocabulary",
    "vocabulary_pinyin",
)


def index_body() -> dict[str, Any]:
    """Settings and the explicit mapping of one physical index (nothing is mapped dynamically)."""
    return {
        "settings": {
            "number_of_shards": 1,
            # One replica as soon as a second node joins; none on a single node.
            "auto_expand_replicas": "0-1",
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {"schema_version": SCHEMA_VERSION},
            # Token fields are indexed, not stored: searches read only the id and the texts a
            # highlight needs, and the tokens are most of a document's bytes.
            "_source": {"excludes": list(_TOKEN_FIELDS)},
            "properties": {
                "id": {"type": "keyword"},
                "township_id": {"type": "long"},
                "township_name": {"type": "keyword"},
                "category": {"type": "keyword"},
                "visibility": {"type": "keyword"},
                "department_ids": {"type": "long"},
                "period_start": {"type": "date", "format": "strict_date"},
                "period_end": {"type": "date", "format": "strict_date"},
                "created_at": {"type": "date", "format": "epoch_millis"},
                "year": {"type": "keyword"},
                "title": _STORED_ONLY,
                "description": _STORED_ONLY,
                "body": _STORED_ONLY,
                **dict.fromkeys(WORD_FIELDS, _WHITESPACE_TEXT),
                **dict.fromkeys(CHAR_FIELDS, _WHITESPACE_TEXT),
                # Title and each tag as separate values: a phrase never runs from one to the next.
                "head_chars": _WHITESPACE_TEXT,
                "head_numbers": _WHITESPACE_TEXT,
                # Words corrections may use, and "<pinyin> <word>" to find them by sound.
                "vocabulary": {"type": "keyword"},
                "vocabulary_pinyin": {"type": "keyword"},
            },
        },
    }


class _CompatibleOrjsonSerializer(OrjsonSerializer):
    mimetype = "application/vnd.elasticsearch+json"


# The client's JSON, requests and answers (a search's hits with their texts), read and written by
# orjson: about twice as fast as the standard library's.
_SERIALIZERS = {
    OrjsonSerializer.mimetype: OrjsonSerializer(),
    _CompatibleOrjsonSerializer.mimetype: _CompatibleOrjsonSerializer(),
}


class ElasticsearchIndex:
    """Search with Elasticsearch; nothing is contacted until the first call needs the server."""

    name = "elasticsearch"

    def __init__(
        self,
        url: str,
        *,
        analyzer: TextAnalyzer,
        alias: str = "materials",
        target: str | None = None,
        timeout_seconds: float = 10.0,
        client: Elasticsearch | None = None,
    ) -> None:
        self._client = client or Elasticsearch(
            url,
            request_timeout=timeout_seconds,
            max_retries=1,
            retry_on_timeout=False,
            serializers=_SERIALIZERS,
        )
        self._owns_client = client is None
        self._analyzer = analyzer
        self._url = url
        self._alias = alias
        self._building = f"{alias}-building"
        # A rebuild's index: written to directly, never through the aliases.
        self._target = target
        self._ready = threading.Event()
        if target is not None:
            self._ready.set()
        self._ready_lock = threading.Lock()

    # -- the SearchIndex protocol ---------------------------------------------------------------

    def upsert(self, documents: Sequence[IndexedDocument]) -> None:
        """Add or replace documents (by id) in one bulk request; searchable when it returns (in
        a rebuild's index: once the rebuild is finished)."""
        if not documents:
            return
        sources = [
            (document.id, _source(document, self._analyzer.analyse(document)))
            for document in documents
        ]
        with self._errors():
            for index in self._write_targets():
                operations: list[dict[str, Any]] = []
                for (document_id, source), document in zip(sources, documents, strict=True):
                    operations.append(
                        {
                            "index": {
                                "_index": index,
                                "_id": document_id,
                                **_versioned(document.version),
                            }
                        }
                    )
                    operations.append(source)
                self._bulk(operations)

    def delete(
        self, document_ids: Sequence[str], *, versions: Mapping[str, int] | None = None
    ) -> None:
        """Remove documents; ids not in the index are ignored. A versioned removal is refused
        by Elasticsearch when it holds a newer version (a conflict, taken as done); its
        tombstone keeps the version for ``index.gc_deletes`` (60 s)."""
        if not document_ids:
            return
        versions = versions or {}
        with self._errors():
            for index in self._write_targets():
                operations: list[dict[str, Any]] = []
                for document_id in document_ids:
                    version = versions.get(document_id)
                    options = {} if version is None else _versioned(version)
                    operations.append({"delete": {"_index": index, "_id": document_id, **options}})
                self._bulk(operations)

    def indexed_versions(self) -> Iterator[tuple[str, int]]:
        """Every document the index serves with its version, by id (a point in time, in pages)."""
        with self._errors():
            self._ensure_ready()
            pit = self._client.open_point_in_time(index=self._read_target(), keep_alive="1m")
            pit_id = pit.body["id"]
            try:
                after: list[Any] | None = None
                while True:
                    page = self._client.search(
                        pit={"id": pit_id, "keep_alive": "1m"},
                        size=1000,
                        sort=[{"_shard_doc": "asc"}],
                        source=False,
                        version=True,
                        search_after=after,
                    ).body
                    hits = page["hits"]["hits"]
                    if not hits:
                        return
                    for hit in hits:
                        yield str(hit["_id"]), int(hit["_version"])
                    after = hits[-1]["sort"]
                    pit_id = page.get("pit_id", pit_id)
            finally:
                self._client.close_point_in_time(id=pit_id)

    def search(self, query: SearchQuery) -> SearchResult:
        """Matching documents within the scope in the query's order, with totals and facets.

        With no match: the relaxed query's matches and corrections (``search_forgivingly``).
        """
        if not query.text.strip():
            return self._execute(None, query)
        return search_forgivingly(
            self._analyzer,
            query,
            execute=lambda plan, q, count_only: self._execute(plan, q, count_only=count_only),
            lookup=self._lookup,
        )

    def _execute(
        self, plan: QueryPlan | None, query: SearchQuery, *, count_only: bool = False
    ) -> SearchResult:
        page, size = max(1, query.page), max(0, query.size)
        start = (page - 1) * size
        if start + size > MAX_RESULT_WINDOW or count_only:
            start, size = 0, 0  # still answers the total (and the facets)
        filters = _filters(query)
        request: dict[str, Any] = {"from": start, "size": size, "track_total_hits": True}
        if not count_only:
            request["aggs"] = {
                name: {
                    "terms": {
                        "field": field,
                        "size": MAX_FACET_BUCKETS,
                        "order": [{"_count": "desc"}, {"_key": "asc"}],
                    }
                }
                for name, field in FACET_FIELDS.items()
            }
        if plan is not None:
            request["query"] = {
                "bool": {
                    "filter": [*filters, match_clause(plan)],
                    "should": [*clause_scores(plan), *head_clauses(plan), *rank_clauses(plan)],
                }
            }
            if query.sort == SearchSort.date:
                request["sort"] = [{"created_at": "desc"}, {"id": "desc"}]
                request["track_scores"] = True  # hits keep their relevance score
            else:
                request["sort"] = [{"_score": "desc"}, {"created_at": "desc"}, {"id": "desc"}]
        else:
            request["query"] = {"bool": {"filter": filters}}
            request["sort"] = [{"created_at": "desc"}, {"id": "desc"}]
        wanted = ["id"] + (["title", "body", "description"] if plan and query.highlight else [])
        with self._errors():
            self._ensure_ready()
            response = self._client.search(
                index=self._read_target(), source_includes=wanted, **request
            ).body
        hits = []
        for hit in response["hits"]["hits"]:
            source = hit["_source"]
            highlights: tuple[str, ...] = ()
            if plan is not None and query.highlight:
                texts = (
                    source.get("title", ""),
                    source.get("body", ""),
                    source.get("description", ""),
                )
                highlights = tuple(self._analyzer.highlight(plan, texts))
            score = _score(hit.get("_score"), plan)
            hits.append(SearchHit(document_id=source["id"], score=score, highlights=highlights))
        aggregations = response.get("aggregations", {})
        return SearchResult(
            total=int(response["hits"]["total"]["value"]),
            hits=hits,
            facets={
                name: [
                    FacetBucket(key=str(bucket["key"]), count=int(bucket["doc_count"]))
                    for bucket in aggregations.get(name, {}).get("buckets", [])
                ]
                for name in FACETS
            },
        )

    def _lookup(self, probe: VocabularyProbe, query: SearchQuery) -> list[str]:
        """Vocabulary words fitting the probe, from documents in the query's scope and filters.

        Patterns hold only ideographs and ``?``, pinyin only ``[a-z]``: nothing in them is
        regular-expression syntax once ``?`` becomes ``.``.
        """
        aggs: dict[str, Any] = {
            "words": {
                "terms": {
                    "field": "vocabulary",
                    "include": "|".join(pattern.replace("?", ".") for pattern in probe.patterns),
                    "size": MAX_LOOKUP_WORDS,
                }
            }
        }
        if probe.pinyins:
            aggs["sounds"] = {
                "terms": {
                    "field": "vocabulary_pinyin",
                    "include": f"({'|'.join(probe.pinyins)}) .*",
                    "size": MAX_LOOKUP_WORDS,
                }
            }
        with self._errors():
            self._ensure_ready()
            response = self._client.search(
                index=self._read_target(),
                size=0,
                query={"bool": {"filter": _filters(query)}},
                aggs=aggs,
            ).body
        found = [bucket["key"] for bucket in response["aggregations"]["words"]["buckets"]]
        if probe.pinyins:
            found += [
                bucket["key"].split(" ", 1)[1]
                for bucket in response["aggregations"]["sounds"]["buckets"]
            ]
        return found

    def count(self) -> int:
        """How many documents the index holds."""
        with self._errors():
            self._ensure_ready()
            return int(self._client.count(index=self._read_target()).body["count"])

    def ping(self) -> None:
        """Raise BackendUnavailable when the cluster does not answer or the index is missing."""
        with self._errors():
            self._client.cluster.health(timeout="2s")
            self._ensure_ready()
            self._client.indices.get(index=self._read_target())

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- rebuilding behind the alias ------------------------------------------------------------

    def begin_rebuild(self, *, restart: bool = False) -> ElasticsearchIndex:
        """An index to rebuild into: the unfinished one unless ``restart``, else a new one.

        Live writes reach it too (through ``<alias>-building``) until ``finish_rebuild``.
        """
        with self._errors():
            self._ensure_ready()
            building = self._indices_of(self._building)
            if building and not restart:
                return self._bound_to(building[0])
            for index in building:
                self._client.indices.delete(index=index)
            current = self._indices_of(self._alias)
            name = _next_index_name(self._alias, [*current, *building])
            body = index_body()
            body["settings"].update(_BUILDING)
            self._client.indices.create(index=name, aliases={self._building: {}}, **body)
            return self._bound_to(name)

    def finish_rebuild(self, rebuilt: SearchIndex) -> None:
        """Give the rebuilt index its serving settings and refresh it, point the alias at it in
        one step, then drop the indices it replaced."""
        if not isinstance(rebuilt, ElasticsearchIndex) or rebuilt._target is None:
            raise ValueError("finish_rebuild needs the index begin_rebuild returned")
        with self._errors():
            self._client.indices.put_settings(index=rebuilt._target, settings={"index": _SERVING})
            self._client.indices.refresh(index=rebuilt._target)
            previous = [name for name in self._indices_of(self._alias) if name != rebuilt._target]
            actions: list[dict[str, Any]] = [
                {"add": {"index": rebuilt._target, "alias": self._alias}},
                {"remove": {"index": rebuilt._target, "alias": self._building}},
            ]
            actions.extend({"remove": {"index": name, "alias": self._alias}} for name in previous)
            self._client.indices.update_aliases(actions=actions)
            for name in previous:
                self._client.indices.delete(index=name)
            _log.info("search alias %s now points at %s", self._alias, rebuilt._target)

    def needs_refill(self) -> bool:
        """Never: an outdated index keeps serving until ``materials reindex`` replaces it."""
        return False

    def refill_queued(self) -> None:
        """Nothing to remember: see ``needs_refill``."""

    def physical_index(self) -> str:
        """The index the alias points at now (created if there is none yet)."""
        with self._errors():
            self._ensure_ready()
            return self._indices_of(self._alias)[0]

    # -- helpers --------------------------------------------------------------------------------

    def _bound_to(self, index: str) -> ElasticsearchIndex:
        return ElasticsearchIndex(
            self._url,
            analyzer=self._analyzer,
            alias=self._alias,
            target=index,
            client=self._client,
        )

    def _read_target(self) -> str:
        return self._target or self._alias

    def _write_targets(self) -> list[str]:
        self._ensure_ready()
        if self._target is not None:
            return [self._target]
        return [self._alias, *self._indices_of(self._building)]

    def _indices_of(self, alias: str) -> list[str]:
        try:
            return sorted(self._client.indices.get_alias(name=alias).body)
        except NotFoundError:
            return []

    def _ensure_ready(self) -> None:
        """Create the first index and its alias when the cluster has neither (once per process)."""
        if self._ready.is_set():
            return
        with self._ready_lock:
            if self._ready.is_set():  # another thread got here first
                return
            if not self._client.indices.exists_alias(name=self._alias):
                name = _next_index_name(self._alias, [])
                try:
                    self._client.indices.create(
                        index=name, aliases={self._alias: {}}, **index_body()
                    )
                except ApiError as exc:  # another process created it first
                    if exc.error != "resource_already_exists_exception":
                        raise
            self._check_schema()
            self._ready.set()

    def _check_schema(self) -> None:
        for name, mapping in self._client.indices.get_mapping(index=self._alias).body.items():
            version = mapping["mappings"].get("_meta", {}).get("schema_version")
            if version == SCHEMA_VERSION:
                continue
            _log.warning(
                "search index %s has schema %s, this version uses %s: run `materials reindex`",
                name,
                version,
                SCHEMA_VERSION,
            )
            # New fields are added to the old index, so that live writes go on until the rebuild
            # (documents written before it lack them: traditional characters, vocabulary).
            try:
                self._client.indices.put_mapping(
                    index=name, properties=index_body()["mappings"]["properties"]
                )
            except ApiError as exc:
                _log.warning("search index %s cannot take the new fields: %s", name, exc)

    def _bulk(self, operations: list[dict[str, Any]]) -> None:
        # Live writes are searchable when they return; a rebuild's refreshes once, at the end, and
        # its large requests may take longer than a live one.
        if self._target is None:
            response = self._client.bulk(operations=operations, refresh=True).body
        else:
            client = self._client.options(request_timeout=REBUILD_TIMEOUT_SECONDS)
            response = client.bulk(operations=operations).body
        if not response.get("errors"):
            return
        for item in response["items"]:
            (action, outcome), *_ = item.items()
            if action == "delete" and outcome.get("status") == 404:
                continue
            if outcome.get("status") == 409:  # external versioning: a newer state is there
                continue
            if "error" in outcome:
                reason = outcome["error"].get("reason", outcome["error"])
                raise BackendUnavailable(BACKEND, f"搜索索引拒绝了写入：{reason}")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (ApiError, TransportError) as exc:
            raise BackendUnavailable(BACKEND) from exc


def match_clause(plan: QueryPlan) -> dict[str, Any]:
    """Every clause must match (any, relaxed), one of its terms enough; no excluded term may."""
    clauses = [
        {
            "bool": {
                "should": [_term_clause(term) for term in clause.terms],
                "minimum_should_match": 1,
            }
        }
        for clause in plan.clauses
    ]
    matched: dict[str, Any] = (
        {"bool": {"should": clauses, "minimum_should_match": 1}}
        if plan.relaxed
        else {"bool": {"filter": clauses}}
    )
    if plan.excluded:
        matched["bool"]["must_not"] = [_term_clause(term) for term in plan.excluded]
    return matched


def _term_clause(term: QueryTerm) -> dict[str, Any]:
    """Each group of the term: its words as phrases of characters, or its numbers; and the
    quoted phrase's characters in order."""
    groups: list[dict[str, Any]] = []
    for group in term.groups:
        units: dict[str, Any] = {
            "bool": {"filter": [_char_phrase(unit.chars) for unit in group.units]}
        }
        if group.numbers:
            numbers = {"bool": {"filter": [_number_anywhere(number) for number in group.numbers]}}
            groups.append({"bool": {"should": [units, numbers], "minimum_should_match": 1}})
        else:
            groups.append(units)
    if term.exact:
        groups.append(_char_phrase(term.exact))
    return {"bool": {"filter": groups}}


def clause_scores(plan: QueryPlan) -> list[dict[str, Any]]:
    """Relaxed: a constant score per clause matched, above every title match (none otherwise)."""
    if not plan.relaxed:
        return []
    return [
        {
            "constant_score": {
                "filter": {
                    "bool": {
                        "should": [_term_clause(term) for term in clause.terms],
                        "minimum_should_match": 1,
                    }
                },
                "boost": _clause_weight(plan),
            }
        }
        for clause in plan.clauses
    ]


def _clause_weight(plan: QueryPlan) -> float:
    return HEAD * (_most_in_head(plan) + 1)


def _most_in_head(plan: QueryPlan) -> int:
    return len(plan.groups) + (1 if plan.phrase else 0)


def head_clauses(plan: QueryPlan) -> list[dict[str, Any]]:
    """One constant score of HEAD per group found in the title or a tag (and for the phrase)."""
    clauses = []
    for group in plan.groups:
        test: dict[str, Any] = {
            "bool": {"filter": [_phrase("head_chars", unit.chars) for unit in group.units]}
        }
        if group.numbers:
            in_numbers = [_phrase("head_numbers", (number,)) for number in group.numbers]
            test = {
                "bool": {
                    "should": [test, {"bool": {"filter": in_numbers}}],
                    "minimum_should_match": 1,
                }
            }
        clauses.append({"constant_score": {"filter": test, "boost": HEAD}})
    if plan.phrase:
        clauses.append(
            {"constant_score": {"filter": _phrase("head_chars", plan.phrase), "boost": HEAD}}
        )
    return clauses


def rank_clauses(plan: QueryPlan) -> list[dict[str, Any]]:
    """BM25 over the word-level fields, weighted like the embedded backend: any word or number."""
    phrases = [unit.words for group in plan.groups for unit in group.units]
    phrases.extend((number,) for number in sorted(plan.numbers))
    return [
        {
            "match_phrase": {
                field: {
                    "query": " ".join(words),
                    "analyzer": "whitespace",
                    "boost": weight * RANK_SCALE,
                }
            }
        }
        for words in dict.fromkeys(phrases)
        for field, weight in WORD_FIELDS.items()
    ]


def _phrase(field: str, tokens: Sequence[str]) -> dict[str, Any]:
    return {"match_phrase": {field: {"query": " ".join(tokens), "analyzer": "whitespace"}}}


def _char_phrase(tokens: Sequence[str]) -> dict[str, Any]:
    return {
        "bool": {
            "should": [_phrase(field, tokens) for field in CHAR_FIELDS],
            "minimum_should_match": 1,
        }
    }


def _number_anywhere(number: str) -> dict[str, Any]:
    return {
        "bool": {
            "should": [{"term": {field: number}} for field in WORD_FIELDS],
            "minimum_should_match": 1,
        }
    }


def _filters(query: SearchQuery) -> list[dict[str, Any]]:
    """The read scope and the query's filters, as non-scoring clauses."""
    filters = [_scope(query.scope)]
    if query.category is not None:
        filters.append({"term": {"category": query.category}})
    if query.township_id is not None:
        filters.append({"term": {"township_id": query.township_id}})
    if query.year is not None:
        filters.append({"term": {"year": str(query.year)}})
    # Overlap of [period_start, period_end] with [period_from, period_to]; no period, no overlap.
    if query.period_to is not None:
        filters.append({"range": {"period_start": {"lte": query.period_to.isoformat()}}})
    if query.period_from is not None:
        filters.append({"range": {"period_end": {"gte": query.period_from.isoformat()}}})
    return filters


def _scope(scope: ReadScope) -> dict[str, Any]:
    if scope.everything:
        return {"match_all": {}}
    allowed: list[dict[str, Any]] = []
    if scope.township_id is not None:
        allowed.append({"term": {"township_id": scope.township_id}})
    if scope.department_id is not None:
        allowed.append({"term": {"visibility": "departments"}})
        allowed.append(
            {
                "bool": {
                    "filter": [
                        {"term": {"visibility": "restricted"}},
                        {"term": {"department_ids": scope.department_id}},
                    ]
                }
            }
        )
    if not allowed:
        return {"match_none": {}}
    return {"bool": {"should": allowed, "minimum_should_match": 1}}


def _score(raw: float | None, plan: QueryPlan | None) -> float:
    """The embedded backend's scale: clauses matched when relaxed (each above every title
    match), title/tag groups matched, plus relevance in [0, 1)."""
    if plan is None or raw is None:
        return 0.0
    most = _most_in_head(plan)
    clauses = 0
    if plan.relaxed:
        clauses = min(len(plan.clauses), math.floor(raw / _clause_weight(plan)))
        raw -= clauses * _clause_weight(plan)
    in_head = min(most, math.floor(raw / HEAD))
    relevance = max(0.0, (raw - in_head * HEAD) / RANK_SCALE)
    return clauses * (most + 1) + in_head + relevance / (1.0 + relevance)


def _source(document: IndexedDocument, analysed: AnalysedDocument) -> dict[str, Any]:
    created_at = document.created_at
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    title, body, description = analysed.texts  # only what highlighting reads
    return {
        "id": document.id,
        "township_id": document.township_id,
        "township_name": document.township_name,
        "category": document.category,
        "visibility": document.visibility,
        "department_ids": sorted(set(document.department_ids)),
        "period_start": _iso(document.period_start or document.period_end),
        "period_end": _iso(document.period_end or document.period_start),
        "created_at": int(created_at.timestamp() * 1000),
        "year": str((document.period_start or created_at).year),
        "title": title,
        "description": description,
        "body": body,
        **{f"{name}_words": tokens for name, tokens in analysed.words.items()},
        **analysed.chars,
        "head_chars": [" ".join(tokens) for tokens in analysed.head],
        "head_numbers": " ".join(analysed.head_numbers),
        "vocabulary": [word for word, _ in analysed.vocabulary],
        "vocabulary_pinyin": [f"{sound} {word}" for word, sound in analysed.vocabulary if sound],
    }


def _versioned(version: int) -> dict[str, Any]:
    # external_gte: the same version is the same database state, written again by a rebuild or
    # a re-extraction, and replaces what is there; only an older one is refused.
    return {"version": version, "version_type": "external_gte"}


def _next_index_name(alias: str, existing: Sequence[str]) -> str:
    numbers = [int(name.rsplit("-", 1)[1]) for name in existing if name.rsplit("-", 1)[1].isdigit()]
    return f"{alias}-v{SCHEMA_VERSION}-{max(numbers, default=0) + 1:06d}"


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
