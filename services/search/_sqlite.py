"""The embedded search backend: SQLite FTS5 in its own database file (derived data, rebuildable).

Token strings and query plans come from the ``TextAnalyzer``; this module only writes them into
FTS5 columns and translates plans into MATCH strings. Filters live in a plain table joined by rowid.
"""

from __future__ import annotations

import json
import logging
import operator
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date
from itertools import compress, pairwise, repeat
from pathlib import Path
from typing import Any

from services.errors import BackendUnavailable
from services.private_files import create_private_file, make_private_dir
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
)
from services.search.analysis import CHAR_FIELDS, WORD_FIELDS, AnalysedDocument, TextAnalyzer
from services.search.forgiving import search_forgivingly
from services.search.planning import QueryPlan, QueryTerm
from services.search.segmentation import CHAR_TOKEN
from services.search.suggestions import VocabularyProbe

__all__ = ["SqliteSearchIndex"]

BACKEND = "search index"
# Bump when tokenisation or tables change: the index is then rebuilt empty, and remembers that it
# needs refilling (``needs_refill``) until every live document has been queued for it again.
SCHEMA_VERSION = 5

# Each character field also as pairs of neighbouring ideographs (``_pairs``): FTS5 finds a
# phrase of rarer pair tokens many times faster than the same phrase of single characters.
PAIR_FIELDS = tuple(field.removesuffix("_chars") + "_pairs" for field in CHAR_FIELDS)
# FTS5 columns and their bm25 weights: the analyzer's fields, character fields weighing nothing.
COLUMNS = {**WORD_FIELDS, **dict.fromkeys((*CHAR_FIELDS, *PAIR_FIELDS), 0.0)}
WORD_COLUMNS = "{" + " ".join(WORD_FIELDS) + "}"
CHAR_COLUMNS = "{" + " ".join(CHAR_FIELDS) + "}"
# Pair tokens start with a private-use character, a token character to FTS5 that no other
# column holds (no text token is made of one): a phrase of pairs needs no column filter.
PAIR_MARK = "\ue000"
PAIR_GAP = "\ue001"  # stands where a neighbour is no ideograph: positions stay aligned

# External versioning: the last version written for each id, kept after a deletion (a tombstone)
# so that an older write arriving late is ignored. Created apart from the schema version, so an
# index made before it keeps its documents (at version 0, beaten by any write).
_VERSIONS = """
CREATE TABLE IF NOT EXISTS index_versions (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL
);
"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    township_id INTEGER NOT NULL,
    township_name TEXT NOT NULL,
    category TEXT NOT NULL,
    visibility TEXT NOT NULL,
    period_start TEXT,
    period_end TEXT,
    created_at REAL NOT NULL,
    year INTEGER NOT NULL,
    facet INTEGER NOT NULL REFERENCES facets (id),
    head TEXT NOT NULL,
    head_numbers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_created ON documents (created_at);
CREATE TABLE IF NOT EXISTS facets (
    id INTEGER PRIMARY KEY,
    township_name TEXT NOT NULL,
    category TEXT NOT NULL,
    year INTEGER NOT NULL,
    UNIQUE (township_name, category, year)
);
CREATE TABLE IF NOT EXISTS document_departments (
    department_id INTEGER NOT NULL,
    document INTEGER NOT NULL,
    PRIMARY KEY (department_id, document)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS document_departments_document ON document_departments (document);
CREATE TABLE IF NOT EXISTS document_texts (
    document INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vocabulary (
    term TEXT PRIMARY KEY,
    pinyin TEXT NOT NULL,
    length INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vocabulary_pinyin ON vocabulary (pinyin);
CREATE INDEX IF NOT EXISTS vocabulary_length ON vocabulary (length, term);
CREATE TABLE IF NOT EXISTS index_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS document_terms USING fts5(
    {", ".join(COLUMNS)},
    tokenize = "unicode61 remove_diacritics 0"
);
{_VERSIONS}
"""
_TABLES = (
    "documents",
    "facets",
    "document_departments",
    "document_texts",
    "vocabulary",
    "document_terms",
    "index_versions",
    "index_state",
)
# The ``index_state`` row saying the index was rebuilt empty over an older schema's documents.
_REFILL = "refill"
MAX_KNOWN_WORDS = 500_000  # vocabulary words remembered as written, to skip writing them again
MAX_LOOKUP_WORDS = 500
_log = logging.getLogger("materials.search")
_RANK = f"bm25(document_terms, {', '.join(str(weight) for weight in COLUMNS.values())})"
_IDEOGRAPH = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


class SqliteSearchIndex:
    """Search with SQLite FTS5: jieba words and single characters, bm25 ranking, facets in scope."""

    name = "sqlite"

    def __init__(self, path: Path, *, analyzer: TextAnalyzer) -> None:
        self._path = Path(path)
        self._analyzer = analyzer
        self._pool_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        self._known: set[str] = set()  # vocabulary words this process has written
        self._full_rebuild = False  # begin_rebuild was asked to start over
        try:
            make_private_dir(self._path.parent)
            with self._connection() as conn:
                self._create_schema(conn)
                conn.execute(_VERSIONS)
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(BACKEND) from exc

    # -- the SearchIndex protocol ---------------------------------------------------------------

    def upsert(self, documents: Sequence[IndexedDocument]) -> None:
        """Add or replace documents (by id), as one transaction."""
        # Segmenting is the slow part: do it before taking the write lock.
        rows = [_Row.of(document, self._analyzer.analyse(document)) for document in documents]
        with self._errors(), self._connection() as conn, self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                written = []
                for row, document in zip(rows, documents, strict=True):
                    if _older(conn, document.id, document.version):
                        continue  # a newer state is already there
                    self._write(conn, row)
                    _remember(conn, document.id, document.version, deleted=False)
                    written.append(row)
                self._add_vocabulary(conn, written)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def delete(
        self, document_ids: Sequence[str], *, versions: Mapping[str, int] | None = None
    ) -> None:
        """Remove documents; ids not in the index are ignored. A versioned removal is ignored
        when the index holds a newer version, and remembered (a tombstone) otherwise."""
        versions = versions or {}
        with self._errors(), self._connection() as conn, self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for document_id in document_ids:
                    version = versions.get(document_id)
                    if version is None:
                        conn.execute(
                            "UPDATE index_versions SET deleted = 1 WHERE id = ?", (document_id,)
                        )
                    elif _older(conn, document_id, version):
                        continue
                    else:
                        _remember(conn, document_id, version, deleted=True)
                    found = conn.execute(
                        "SELECT rowid FROM documents WHERE id = ?", (document_id,)
                    ).fetchone()
                    if found is not None:
                        self._remove(conn, found[0])
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def search(self, query: SearchQuery) -> SearchResult:
        """Matching documents within the scope in the query's order, with totals and facets.

        With no match: the relaxed query's matches and corrections (``search_forgivingly``).
        """
        with self._errors(), self._connection() as conn:
            # One read transaction: totals, page and highlights see the same snapshot.
            conn.execute("BEGIN")
            try:
                if not query.text.strip():
                    return self._list(conn, query)
                return search_forgivingly(
                    self._analyzer,
                    query,
                    execute=lambda plan, q, count_only: self._search(conn, plan, q, count_only),
                    lookup=lambda probe, q: self._lookup(conn, probe),
                )
            finally:
                conn.execute("COMMIT")

    def indexed_versions(self) -> Iterator[tuple[str, int]]:
        """Every document the index holds with its version (0: written before versions), by id."""
        with self._errors(), self._connection() as conn:
            rows = conn.execute(
                "SELECT documents.id, coalesce(index_versions.version, 0) FROM documents "
                "LEFT JOIN index_versions ON index_versions.id = documents.id "
                "ORDER BY documents.id"
            ).fetchall()
        for document_id, version in rows:
            yield str(document_id), int(version)

    def count(self) -> int:
        """How many documents the index holds."""
        with self._errors(), self._connection() as conn:
            number: int = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            return number

    def ping(self) -> None:
        """Raise BackendUnavailable when the index cannot be used."""
        with self._errors(), self._connection() as conn:
            conn.execute("SELECT 1 FROM document_terms LIMIT 1").fetchall()

    def close(self) -> None:
        """Close every idle connection; connections in use close when they are handed back."""
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def begin_rebuild(self, *, restart: bool = False) -> SearchIndex:
        """Rebuilt in place: every document is written again over its old entry."""
        # A rebuild from the first document refills an index rebuilt empty; a resumed one may
        # have skipped documents written before the schema changed.
        self._full_rebuild = restart
        return self

    def finish_rebuild(self, rebuilt: SearchIndex) -> None:
        """Nothing to switch: the rebuild wrote into this index. One that began at the first
        document leaves nothing to refill."""
        if self._full_rebuild:
            self.refill_queued()
        self._full_rebuild = False

    def needs_refill(self) -> bool:
        """Was the index rebuilt empty by a new schema, with its documents not yet queued again?"""
        with self._errors(), self._connection() as conn:
            found = conn.execute("SELECT 1 FROM index_state WHERE key = ?", (_REFILL,))
            return found.fetchone() is not None

    def refill_queued(self) -> None:
        """Every live document is queued to be written again (or was): nothing left to refill."""
        with self._errors(), self._connection() as conn, self._write_lock:
            conn.execute("DELETE FROM index_state WHERE key = ?", (_REFILL,))

    # -- searching ------------------------------------------------------------------------------

    def _list(self, conn: sqlite3.Connection, query: SearchQuery) -> SearchResult:
        """No text: every in-scope document that passes the filters, newest first."""
        where, params = _filters(query)
        grouped = conn.execute(
            f"SELECT township_name, category, year, count(*) FROM documents AS d WHERE {where} "  # noqa: S608
            "GROUP BY 1, 2, 3",
            params,
        ).fetchall()
        facets: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
        for township, category, year, number in grouped:
            facets["township"][township] += number
            facets["category"][category] += number
            facets["year"][str(year)] += number
        page, size = _page(query)
        ids = conn.execute(
            f"SELECT id FROM documents AS d WHERE {where} "  # noqa: S608
            "ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            [*params, size, (page - 1) * size],
        ).fetchall()
        return SearchResult(
            total=sum(number for *_, number in grouped),
            hits=[SearchHit(document_id=row[0], score=0.0, highlights=()) for row in ids],
            facets=_buckets(facets),
        )

    def _search(
        self, conn: sqlite3.Connection, plan: QueryPlan, query: SearchQuery, count_only: bool
    ) -> SearchResult:
        where, params = _filters(query)
        # Two FTS passes, each cheaper than one doing both: the matching set (character phrases,
        # no ranking function), then bm25 over word-level phrases, only where it orders the page.
        # Only fixed SQL; values are parameters.
        matching = (
            "FROM (SELECT rowid FROM document_terms WHERE document_terms MATCH ?) AS m "  # noqa: S608
            f"JOIN documents AS d ON d.rowid = m.rowid WHERE {where}"
        )
        if count_only:
            total: int = conn.execute(
                f"SELECT count(*) {matching}", [match_expression(plan), *params]
            ).fetchone()[0]
            return SearchResult(total=total, facets={name: [] for name in FACETS})
        # The matching set as one row: each document's rowid, tier and facet key, each column
        # one string that Python splits in C. Thousands of rows, read one by one, cost more
        # than finding them.
        tier, tier_params = _tier_expression(plan)
        found = conn.execute(
            f"SELECT group_concat(d.rowid), group_concat({tier}), group_concat(d.facet) {matching}",
            [*tier_params, match_expression(plan), *params],
        ).fetchone()
        matches = _Matches(plan, *found)
        if not matches.rowids:
            return SearchResult(total=0, facets={name: [] for name in FACETS})
        page, size = _page(query)
        if query.sort == SearchSort.date:
            chosen = matches.newest(conn, (page - 1) * size, page * size)
        else:
            chosen = matches.most_relevant(conn, (page - 1) * size, page * size)
        documents = _page_documents(conn, [rowid for rowid, _ in chosen], texts=query.highlight)
        hits = []
        for rowid, score in chosen:
            document_id, texts = documents[rowid]
            highlights = tuple(self._analyzer.highlight(plan, texts)) if texts else ()
            hits.append(SearchHit(document_id=document_id, score=score, highlights=highlights))
        return SearchResult(
            total=len(matches.rowids), hits=hits, facets=_buckets(_facets(conn, matches.facets))
        )

    def _lookup(self, conn: sqlite3.Connection, probe: VocabularyProbe) -> list[str]:
        """Vocabulary words fitting the probe's patterns (``?`` one character) or pinyin."""
        found: list[str] = []
        if probe.pinyins:
            marks = ", ".join("?" * len(probe.pinyins))
            found += [
                row[0]
                for row in conn.execute(
                    f"SELECT term FROM vocabulary WHERE pinyin IN ({marks}) LIMIT ?",  # noqa: S608
                    [*probe.pinyins, MAX_LOOKUP_WORDS],
                )
            ]
        by_length: dict[int, list[str]] = {}
        for pattern in probe.patterns:
            by_length.setdefault(len(pattern), []).append(pattern)
        for length, patterns in by_length.items():
            # Patterns hold only ideographs and "?": GLOB reads nothing else in them as syntax.
            tests = " OR ".join("term GLOB ?" for _ in patterns)
            found += [
                row[0]
                for row in conn.execute(
                    f"SELECT term FROM vocabulary WHERE length = ? AND ({tests}) LIMIT ?",  # noqa: S608
                    [length, *patterns, MAX_LOOKUP_WORDS],
                )
            ]
        return found

    # -- writing --------------------------------------------------------------------------------

    def _write(self, conn: sqlite3.Connection, row: _Row) -> None:
        # The facet values' key: a search counts facets by these small integers.
        facet: int = conn.execute(
            """
            INSERT INTO facets (township_name, category, year) VALUES (?, ?, ?)
            ON CONFLICT (township_name, category, year) DO UPDATE SET year = excluded.year
            RETURNING id
            """,
            (row.document["township_name"], row.document["category"], row.document["year"]),
        ).fetchone()[0]
        rowid: int = conn.execute(
            """
            INSERT INTO documents (id, township_id, township_name, category, visibility,
                                   period_start, period_end, created_at, year, facet, head,
                                   head_numbers)
            VALUES (:id, :township_id, :township_name, :category, :visibility,
                    :period_start, :period_end, :created_at, :year, :facet, :head, :head_numbers)
            ON CONFLICT (id) DO UPDATE SET
                township_id = excluded.township_id, township_name = excluded.township_name,
                category = excluded.category, visibility = excluded.visibility,
                period_start = excluded.period_start, period_end = excluded.period_end,
                created_at = excluded.created_at, year = excluded.year, facet = excluded.facet,
                head = excluded.head, head_numbers = excluded.head_numbers
            RETURNING rowid
            """,
            {**row.document, "facet": facet},
        ).fetchone()[0]
        self._remove(conn, rowid, keep_document=True)
        conn.executemany(
            "INSERT INTO document_departments (department_id, document) VALUES (?, ?)",
            [(department_id, rowid) for department_id in row.department_ids],
        )
        conn.execute(
            "INSERT INTO document_texts (document, title, description, body) VALUES (?, ?, ?, ?)",
            (rowid, *row.texts),
        )
        conn.execute(
            f"INSERT INTO document_terms (rowid, {', '.join(COLUMNS)}) "  # noqa: S608
            f"VALUES (?, {', '.join('?' * len(COLUMNS))})",
            (rowid, *row.terms),
        )

    @staticmethod
    def _remove(conn: sqlite3.Connection, rowid: int, *, keep_document: bool = False) -> None:
        conn.execute("DELETE FROM document_terms WHERE rowid = ?", (rowid,))
        conn.execute("DELETE FROM document_texts WHERE document = ?", (rowid,))
        conn.execute("DELETE FROM document_departments WHERE document = ?", (rowid,))
        if not keep_document:
            conn.execute("DELETE FROM documents WHERE rowid = ?", (rowid,))

    def _add_vocabulary(self, conn: sqlite3.Connection, rows: Sequence[_Row]) -> None:
        """Words the index has seen, for corrections; never removed (corrections are checked
        by searching them in the caller's scope, so a word no document holds any more is
        harmless)."""
        new = {word: sound for row in rows for word, sound in row.vocabulary}
        new = {word: sound for word, sound in new.items() if word not in self._known}
        if not new:
            return
        conn.executemany(
            "INSERT OR IGNORE INTO vocabulary (term, pinyin, length) VALUES (?, ?, ?)",
            [(word, sound, len(word)) for word, sound in new.items()],
        )
        if len(self._known) + len(new) > MAX_KNOWN_WORDS:
            self._known.clear()
        self._known.update(new)

    # -- connections ----------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection, used by one thread at a time (WAL: readers never wait)."""
        with self._pool_lock:
            if self._closed:
                raise BackendUnavailable(BACKEND, "搜索索引已关闭")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._pool_lock:
                keep = not self._closed and not conn.in_transaction
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def _connect(self) -> sqlite3.Connection:
        create_private_file(self._path)  # 0600, and so its -wal and -shm files
        conn = sqlite3.connect(
            self._path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # derived data: a lost tail is re-indexed
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked again under the write lock: another process may have just created it.
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                if version:
                    _log.warning("search index schema %s is outdated: rebuilt empty", version)
                    for table in _TABLES:
                        conn.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if version:  # an older schema's documents are gone: they must be written again
                    conn.execute(
                        "INSERT OR REPLACE INTO index_state (key, value) VALUES (?, ?)",
                        (_REFILL, str(version)),
                    )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise BackendUnavailable(BACKEND) from exc


class _Row:
    """One document as the index stores it, segmented ahead of the write."""

    def __init__(
        self,
        document: dict[str, Any],
        department_ids: tuple[int, ...],
        texts: tuple[str, str, str],
        terms: tuple[str, ...],
        vocabulary: tuple[tuple[str, str], ...],
    ) -> None:
        self.document = document
        self.department_ids = department_ids
        self.texts = texts
        self.terms = terms
        self.vocabulary = vocabulary

    @classmethod
    def of(cls, document: IndexedDocument, analysed: AnalysedDocument) -> _Row:
        created_at = document.created_at
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
        year = (document.period_start or created_at).year
        return cls(
            document={
                "id": document.id,
                "township_id": document.township_id,
                "township_name": document.township_name,
                "category": document.category,
                "visibility": document.visibility,
                "period_start": _iso(document.period_start or document.period_end),
                "period_end": _iso(document.period_end or document.period_start),
                "created_at": created_at.timestamp(),
                "year": year,
                "head": analysed.compact_head,
                "head_numbers": "".join(f" {token} " for token in analysed.head_numbers),
            },
            department_ids=tuple(dict.fromkeys(document.department_ids)),
            texts=(analysed.texts[0], analysed.texts[2], analysed.texts[1]),
            terms=_terms(analysed),
            vocabulary=analysed.vocabulary,
        )


def _older(conn: sqlite3.Connection, document_id: str, version: int) -> bool:
    """Does the index hold a newer version of the document (written or deleted)?"""
    found = conn.execute("SELECT version FROM index_versions WHERE id = ?", (document_id,))
    held = found.fetchone()
    return held is not None and held[0] > version


def _remember(conn: sqlite3.Connection, document_id: str, version: int, *, deleted: bool) -> None:
    conn.execute(
        "INSERT INTO index_versions (id, version, deleted) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted",
        (document_id, version, int(deleted)),
    )


def match_expression(plan: QueryPlan) -> str:
    """The FTS5 MATCH string selecting a plan's documents, built only from quoted phrases.

    A unit matches as a phrase of single characters: wherever jieba found the word, its characters
    stand in sequence too, so word-level columns add no match. A group overlapping a date may
    match its canonical tokens instead. Every clause must match (any, relaxed), one of its terms
    enough; no excluded term may. Nothing typed reaches FTS5 as its own syntax.
    """
    clauses = [
        "(" + " OR ".join(_term_expression(term) for term in clause.terms) + ")"
        for clause in plan.clauses
    ]
    positive = (" OR " if plan.relaxed else " AND ").join(clauses)
    if not plan.excluded:
        return positive
    excluded = " OR ".join(_term_expression(term) for term in plan.excluded)
    return f"({positive}) NOT ({excluded})"


def _term_expression(term: QueryTerm) -> str:
    groups = []
    for group in term.groups:
        if term.exact and all(_within(unit.chars, term.exact) for unit in group.units):
            continue  # the quoted phrase holds the group's words: its match is theirs
        units = " AND ".join(_char_phrase(unit.chars) for unit in group.units)
        if group.numbers:
            numbers = " AND ".join(_word_phrase((number,)) for number in group.numbers)
            units = f"({units}) OR ({numbers})"
        groups.append(f"({units})")
    if term.exact:
        groups.append(f"({_char_phrase(term.exact)})")
    return "(" + " AND ".join(groups) + ")"


def _char_phrase(chars: Sequence[str]) -> str:
    """A phrase of character tokens, matching as in the character-level columns.

    Two or more ideographs match as the phrase of their pairs, which stands in a pair column
    exactly where the characters stand in sequence in the character column beside it. A single
    ideograph needs no column filter, which costs FTS5 reading the column of every position: a
    word-level column holds an ideograph alone only where jieba cut a word of one character
    (search mode adds only longer sub-words), and two such words stand side by side only when
    they do in the text, with at most spaces or punctuation between them, which the character
    columns leave out too. So wherever a word-level column holds the phrase, the character column
    of the same text does. ``tests/test_search_match_columns.py`` checks both. Letters and digits
    keep the filter: jieba may cut their runs where character tokens do not.
    """
    if all(_IDEOGRAPH.fullmatch(char) for char in chars):
        if len(chars) > 1:
            return _phrase([PAIR_MARK + first + then for first, then in pairwise(chars)])
        return _phrase(chars)
    return f"{CHAR_COLUMNS} : {_phrase(chars)}"


def _terms(analysed: AnalysedDocument) -> tuple[str, ...]:
    """The FTS5 columns' values of a document, in column order."""
    values = {**analysed.words, **analysed.chars, **_pair_fields(analysed.chars)}
    return tuple(values[column] for column in COLUMNS)


def _pair_fields(chars: Mapping[str, str]) -> dict[str, str]:
    """The pair columns of a document's character fields."""
    return {
        pair_field: _pairs(chars[char_field])
        for char_field, pair_field in zip(CHAR_FIELDS, PAIR_FIELDS, strict=True)
    }


def _pairs(tokens: str) -> str:
    """Each position's token and the next as one pair token where both are ideographs.

    Positions as FTS5 counts them: tokens that are only punctuation to it (the katakana middle
    dot) take none.
    """
    kept = [token for token in tokens.split() if token.isalnum()]
    # One of _IDEOGRAPH's characters, compared in place: documents have thousands of tokens (a
    # set of the 27,000 characters would hold 6 MiB in every process).
    ideographs = [
        token
        if len(token) == 1 and ("\u3400" <= token <= "\u4dbf" or "\u4e00" <= token <= "\u9fff")
        else None
        for token in kept
    ]
    return " ".join(
        PAIR_MARK + first + then if first and then else PAIR_GAP
        for first, then in pairwise(ideographs)
    )


def _within(part: tuple[str, ...], whole: tuple[str, ...]) -> bool:
    """Whether ``part`` stands in ``whole`` as consecutive tokens."""
    return any(whole[at : at + len(part)] == part for at in range(len(whole) - len(part) + 1))


def rank_expression(plan: QueryPlan) -> str:
    """The FTS5 MATCH string whose bm25 ranks a plan's documents: any of its words or numbers.

    Documents that hold a query word rank above those holding only its characters in sequence.
    """
    phrases = [_word_phrase(unit.words) for group in plan.groups for unit in group.units]
    phrases.extend(_word_phrase((number,)) for number in plan.numbers)
    if not phrases:  # a relaxed plan of quoted phrases only: nothing ranks its matches
        return ""
    return " OR ".join(phrases)


def _word_phrase(tokens: Sequence[str]) -> str:
    """A phrase of word-level tokens, found in the word-level columns only.

    A token that is no character token (乡村振兴, 2020年, but not 局, 2020 or q) never stands in a
    character column: such a phrase needs no column filter, which saves FTS5 reading the column
    of each of its positions. Matches and bm25 are the same either way.
    """
    if any(CHAR_TOKEN.fullmatch(token) is None for token in tokens):
        return _phrase(tokens)
    return f"{WORD_COLUMNS} : {_phrase(tokens)}"


def _tier_expression(plan: QueryPlan) -> tuple[str, list[str]]:
    """SQL of a matching document's tier (see ``_Matches``), over ``documents AS d``.

    Each of the query's groups found in the title or tags counts one (every word of it in
    ``d.head``, or each of its numbers in ``d.head_numbers``), and the whole query verbatim one;
    relaxed, each clause matched outweighs every title match. Only fixed SQL; words are
    parameters.
    """
    tests: list[str] = []
    params: list[str] = []
    for group in plan.groups:
        test = " AND ".join("instr(d.head, ?) > 0" for _ in group.units)
        params.extend("".join(unit.chars) for unit in group.units)
        if group.numbers:
            numbers = " AND ".join("instr(d.head_numbers, ?) > 0" for _ in group.numbers)
            test = f"({test}) OR ({numbers})"
            params.extend(f" {number} " for number in group.numbers)
        tests.append(f"({test})")
    if plan.phrase:
        tests.append("(instr(d.head, ?) > 0)")
        params.append("".join(plan.phrase))
    if plan.relaxed:
        weight = len(plan.groups) + (1 if plan.phrase else 0) + 1
        for clause in plan.clauses:
            tests.append(
                f"{weight} * (d.rowid IN (SELECT rowid FROM document_terms "  # noqa: S608
                "WHERE document_terms MATCH ?))"
            )
            params.append(" OR ".join(_term_expression(term) for term in clause.terms))
    return " + ".join(tests) or "0", params


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
        conn.execute("ROLLBACK")


def _phrase(tokens: Sequence[str]) -> str:
    return '"' + " ".join(token.replace('"', '""') for token in tokens) + '"'


class _Matches:
    """The documents a plan matches, in three parallel lists, and the page of them a search shows.

    Relevance puts title and tag matches first, whatever bm25 says: its column weights saturate,
    so a body saying a word often would otherwise outrank a title saying it once. A document's
    tier (``_tier_expression``) counts the query's groups found in its title and tags; bm25
    orders the documents of one tier: the score is the tier plus a fraction below 1, then newer
    first.
    """

    def __init__(
        self, plan: QueryPlan, rowids: str | None, tiers: str | None, facets: str | None
    ) -> None:
        self._plan = plan
        # group_concat: integers joined by commas, in the same row order in every column.
        self.rowids: list[int] = list(map(int, rowids.split(","))) if rowids else []
        self.tiers: list[int] = list(map(int, tiers.split(","))) if tiers else []
        self.facets: Counter[int] = Counter(map(int, facets.split(","))) if facets else Counter()

    def most_relevant(
        self, conn: sqlite3.Connection, first: int, last: int
    ) -> list[tuple[int, float]]:
        """Rowid and score of the documents ``first`` to ``last`` (excluded) by relevance.

        bm25 is computed only for the tiers the page reaches into: a tier wholly before the
        page is only counted, one after it never looked at.
        """
        tiers = self.tiers
        sizes = Counter(tiers)
        skipped, above, wanted = 0, 0, []
        for tier in sorted(sizes, reverse=True):
            if above >= last:
                break
            if above + sizes[tier] <= first:
                skipped += sizes[tier]
            else:
                wanted.append(tier)
            above += sizes[tier]
        if not wanted:
            return []
        expression = rank_expression(self._plan)
        ranked = _RANKED.format(rank=_RANK) if expression else _UNRANKED
        chosen: list[tuple[int, float]] = conn.execute(
            _RELEVANCE_PAGE.format(ranked=ranked),
            (self._by_tier(tiers, wanted), expression, last - first, first - skipped),
        ).fetchall()
        return chosen

    def newest(self, conn: sqlite3.Connection, first: int, last: int) -> list[tuple[int, float]]:
        """Rowid and score of the documents ``first`` to ``last`` (excluded), newest first.

        Ties by id, as the Elasticsearch backend breaks them.
        """
        if last <= first:
            return []
        tiers = self.tiers
        chosen = conn.execute(
            _DATE_PAGE, (self._by_tier(tiers, set(tiers)), last - first, first)
        ).fetchall()
        fractions = _fractions(conn, self._plan, [rowid for rowid, _ in chosen])
        return [(rowid, tier + fractions.get(rowid, 0.0)) for rowid, tier in chosen]

    def _by_tier(self, tiers: list[int], wanted: Collection[int]) -> str:
        """The rowids of the wanted tiers as JSON, ``{"tier": [rowid, …]}``."""
        if len(wanted) == 1 and len(set(tiers)) == 1:
            return json.dumps({tiers[0]: self.rowids})
        return json.dumps(
            {
                tier: list(compress(self.rowids, map(operator.eq, tiers, repeat(tier))))
                for tier in wanted
            }
        )


# The candidates of a page: {"tier": [rowid, …]} as (tier, rowid) rows.
_CANDIDATES = """
    candidates(tier, rowid) AS (
        SELECT CAST(tiers.key AS INTEGER), rowids.value
        FROM json_each(?1) AS tiers, json_each(tiers.value) AS rowids
    )
"""
# bm25 of the candidates, computed once: "+rowid" filters one scan. As a constraint, FTS5 would
# look each rowid up with a fresh cursor, and bm25 would count every phrase's documents again.
_RANKED = """
    ranked(rowid, rank) AS MATERIALIZED (
        SELECT rowid, {rank} FROM document_terms
        WHERE document_terms MATCH ?2 AND +rowid IN (SELECT rowid FROM candidates)
    )
"""
_UNRANKED = "ranked(rowid, rank) AS (SELECT NULL, NULL WHERE 0)"
# A candidate's score: its tier plus bm25 as a fraction below 1 (bm25() is negative, better
# matches more so); then newer first. In SQL, where sorting thousands of candidates is cheap.
_RELEVANCE_PAGE = f"""
    WITH {_CANDIDATES}, {{ranked}}
    SELECT c.rowid, c.tier + coalesce((-r.rank) / (1.0 + (-r.rank)), 0.0) AS score
    FROM candidates AS c
    JOIN documents AS d ON d.rowid = c.rowid
    LEFT JOIN ranked AS r ON r.rowid = c.rowid
    ORDER BY score DESC, d.created_at DESC, c.rowid DESC
    LIMIT ?3 OFFSET ?4
"""  # noqa: S608 - only fixed SQL
_DATE_PAGE = f"""
    WITH {_CANDIDATES}
    SELECT c.rowid, c.tier FROM candidates AS c JOIN documents AS d ON d.rowid = c.rowid
    ORDER BY d.created_at DESC, d.id DESC
    LIMIT ?2 OFFSET ?3
"""  # noqa: S608 - only fixed SQL


def _fractions(conn: sqlite3.Connection, plan: QueryPlan, rowids: list[int]) -> dict[int, float]:
    """bm25 of these documents as a fraction below 1, to add to their tier (as in
    ``_RELEVANCE_PAGE``); none where the rank expression finds nothing."""
    expression = rank_expression(plan)
    if not rowids or not expression:
        return {}
    fractions = {}
    for rowid, rank in conn.execute(
        f"SELECT rowid, {_RANK} FROM document_terms WHERE document_terms MATCH ? "  # noqa: S608
        "AND +rowid IN (SELECT value FROM json_each(?))",
        (expression, json.dumps(rowids)),
    ):
        relevance = -rank
        fractions[rowid] = relevance / (1.0 + relevance)
    return fractions


def _facets(conn: sqlite3.Connection, counts: Counter[int]) -> dict[str, Counter[str]]:
    """Documents per township, category and year, from documents per facet key."""
    facets: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    if not counts:
        return facets
    for key, township, category, year in conn.execute(
        "SELECT id, township_name, category, year FROM facets "
        "WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(counts)),),
    ):
        number = counts[key]
        facets["township"][township] += number
        facets["category"][category] += number
        facets["year"][str(year)] += number
    return facets


def _page_documents(
    conn: sqlite3.Connection, rowids: list[int], *, texts: bool
) -> dict[int, tuple[str, tuple[str, ...]]]:
    """The id of each document of a page and, for highlighting, its title, body, description."""
    if not rowids:
        return {}
    marks = ", ".join("?" * len(rowids))
    if not texts:
        found = conn.execute(
            f"SELECT rowid, id FROM documents WHERE rowid IN ({marks})",  # noqa: S608
            rowids,
        ).fetchall()
        return {rowid: (document_id, ()) for rowid, document_id in found}
    found = conn.execute(
        "SELECT d.rowid, d.id, t.title, t.body, t.description FROM documents AS d "  # noqa: S608
        f"LEFT JOIN document_texts AS t ON t.document = d.rowid WHERE d.rowid IN ({marks})",
        rowids,
    ).fetchall()
    return {row[0]: (row[1], () if row[2] is None else tuple(row[2:])) for row in found}


def _filters(query: SearchQuery) -> tuple[str, list[Any]]:
    """SQL conditions on ``documents AS d`` for the read scope and the query's filters."""
    clauses = [_scope(query.scope)]
    params: list[Any] = []
    if query.scope.township_id is not None and not query.scope.everything:
        params.append(query.scope.township_id)
    if query.scope.department_id is not None and not query.scope.everything:
        params.append(query.scope.department_id)
    if query.category is not None:
        clauses.append("d.category = ?")
        params.append(query.category)
    if query.township_id is not None:
        clauses.append("d.township_id = ?")
        params.append(query.township_id)
    if query.year is not None:
        clauses.append("d.year = ?")
        params.append(query.year)
    # Overlap of [period_start, period_end] with [period_from, period_to]; no period, no overlap.
    if query.period_to is not None:
        clauses.append("d.period_start IS NOT NULL AND d.period_start <= ?")
        params.append(query.period_to.isoformat())
    if query.period_from is not None:
        clauses.append("d.period_end IS NOT NULL AND d.period_end >= ?")
        params.append(query.period_from.isoformat())
    return " AND ".join(f"({clause})" for clause in clauses), params


def _scope(scope: ReadScope) -> str:
    if scope.everything:
        return "1"
    allowed = []
    if scope.township_id is not None:
        allowed.append("d.township_id = ?")
    if scope.department_id is not None:
        allowed.append(
            "d.visibility = 'departments' OR (d.visibility = 'restricted' AND EXISTS ("
            "SELECT 1 FROM document_departments AS dd "
            "WHERE dd.department_id = ? AND dd.document = d.rowid))"
        )
    return " OR ".join(f"({clause})" for clause in allowed) or "0"


def _page(query: SearchQuery) -> tuple[int, int]:
    return max(1, query.page), max(0, query.size)


def _buckets(facets: dict[str, Counter[str]]) -> dict[str, list[FacetBucket]]:
    return {
        name: [
            FacetBucket(key=key, count=number)
            for key, number in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]
        for name, counts in facets.items()
    }


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
