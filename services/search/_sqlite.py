"""The embedded search backend: SQLite FTS5 in its own database file (derived data, rebuildable).

Token strings and query plans come from the ``TextAnalyzer``; this module only writes them into
FTS5 columns and translates plans into MATCH strings. Filters live in a plain table joined by rowid.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date
from pathlib import Path
from typing import Any

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
)
from services.search.analysis import CHAR_FIELDS, WORD_FIELDS, AnalysedDocument, TextAnalyzer
from services.search.forgiving import search_forgivingly
from services.search.planning import QueryPlan, QueryTerm
from services.search.suggestions import VocabularyProbe

__all__ = ["SqliteSearchIndex"]

BACKEND = "search index"
SCHEMA_VERSION = 2  # bump when tokenisation or tables change: the index is then rebuilt empty

# FTS5 columns and their bm25 weights: the analyzer's fields, character fields weighing nothing.
COLUMNS = {**WORD_FIELDS, **dict.fromkeys(CHAR_FIELDS, 0.0)}
WORD_COLUMNS = "{" + " ".join(WORD_FIELDS) + "}"
CHAR_COLUMNS = "{" + " ".join(CHAR_FIELDS) + "}"

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
    head TEXT NOT NULL,
    head_numbers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_created ON documents (created_at);
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
CREATE VIRTUAL TABLE IF NOT EXISTS document_terms USING fts5(
    {", ".join(COLUMNS)},
    tokenize = "unicode61 remove_diacritics 0"
);
"""
_TABLES = ("documents", "document_departments", "document_texts", "vocabulary", "document_terms")
MAX_KNOWN_WORDS = 500_000  # vocabulary words remembered as written, to skip writing them again
MAX_LOOKUP_WORDS = 500
_log = logging.getLogger(__name__)
_RANK = f"bm25(document_terms, {', '.join(str(weight) for weight in COLUMNS.values())})"


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
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._connection() as conn:
                self._create_schema(conn)
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
                for row in rows:
                    self._write(conn, row)
                self._add_vocabulary(conn, rows)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def delete(self, document_ids: Sequence[str]) -> None:
        """Remove documents; ids not in the index are ignored."""
        with self._errors(), self._connection() as conn, self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for document_id in document_ids:
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
        return self

    def finish_rebuild(self, rebuilt: SearchIndex) -> None:
        """Nothing to switch: the rebuild wrote into this index."""

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
        in_head, head_params = _head_matches(plan)
        matched, matched_params = _clauses_matched(plan)
        # Two FTS passes, each cheaper than one doing both: the matching set (character phrases,
        # no ranking function), then bm25 over word-level phrases only.
        rows = conn.execute(
            f"""
            SELECT d.rowid, d.id, d.township_name, d.category, d.year, d.created_at,
                   {in_head}, {matched}
            FROM (SELECT rowid FROM document_terms WHERE document_terms MATCH ?) AS m
            JOIN documents AS d ON d.rowid = m.rowid
            WHERE {where}
            """,  # noqa: S608 - only fixed SQL; values are parameters
            [*head_params, *matched_params, match_expression(plan), *params],
        ).fetchall()
        if not rows or count_only:
            return SearchResult(total=len(rows), facets={name: [] for name in FACETS})
        ranks: dict[int, float] = dict(
            conn.execute(
                f"SELECT rowid, {_RANK} FROM document_terms WHERE document_terms MATCH ?",  # noqa: S608
                (rank_expression(plan),),
            ).fetchall()
        )
        facets = {
            "township": Counter(row[2] for row in rows),
            "category": Counter(row[3] for row in rows),
            "year": Counter(str(row[4]) for row in rows),
        }
        # Relaxed, each clause matched outweighs every title match: most + 1 per clause.
        most = len(plan.groups) + (1 if plan.phrase else 0)
        ranked: list[tuple[float, float, int, str]] = []  # score, created_at, rowid, id
        for rowid, document_id, _, _, _, created_at, in_head, clauses in rows:
            relevance = -ranks.get(rowid, 0.0)  # bm25() is negative, better matches more so
            score = clauses * (most + 1) + in_head + relevance / (1.0 + relevance)
            ranked.append((score, created_at, rowid, document_id))
        if query.sort == SearchSort.date:
            # Ties by id, as the Elasticsearch backend breaks them.
            ranked.sort(key=lambda entry: (entry[1], entry[3]), reverse=True)
        else:
            ranked.sort(key=lambda entry: entry[:3], reverse=True)
        page, size = _page(query)
        chosen = ranked[(page - 1) * size : page * size]
        texts = self._texts(conn, [entry[2] for entry in chosen]) if query.highlight else {}
        hits = [
            SearchHit(
                document_id=document_id,
                score=score,
                highlights=(
                    tuple(self._analyzer.highlight(plan, texts[rowid])) if rowid in texts else ()
                ),
            )
            for score, _, rowid, document_id in chosen
        ]
        return SearchResult(total=len(ranked), hits=hits, facets=_buckets(facets))

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

    def _texts(self, conn: sqlite3.Connection, rowids: list[int]) -> dict[int, tuple[str, ...]]:
        if not rowids:
            return {}
        marks = ", ".join("?" * len(rowids))
        rows = conn.execute(
            f"SELECT document, title, body, description FROM document_texts "  # noqa: S608
            f"WHERE document IN ({marks})",
            rowids,
        ).fetchall()
        return {row[0]: tuple(row[1:]) for row in rows}

    # -- writing --------------------------------------------------------------------------------

    def _write(self, conn: sqlite3.Connection, row: _Row) -> None:
        rowid: int = conn.execute(
            """
            INSERT INTO documents (id, township_id, township_name, category, visibility,
                                   period_start, period_end, created_at, year, head, head_numbers)
            VALUES (:id, :township_id, :township_name, :category, :visibility,
                    :period_start, :period_end, :created_at, :year, :head, :head_numbers)
            ON CONFLICT (id) DO UPDATE SET
                township_id = excluded.township_id, township_name = excluded.township_name,
                category = excluded.category, visibility = excluded.visibility,
                period_start = excluded.period_start, period_end = excluded.period_end,
                created_at = excluded.created_at, year = excluded.year, head = excluded.head,
                head_numbers = excluded.head_numbers
            RETURNING rowid
            """,
            row.document,
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
            terms=tuple({**analysed.words, **analysed.chars}[column] for column in COLUMNS),
            vocabulary=analysed.vocabulary,
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
        units = " AND ".join(f"{CHAR_COLUMNS} : {_phrase(unit.chars)}" for unit in group.units)
        if group.numbers:
            numbers = " AND ".join(_phrase((number,)) for number in group.numbers)
            units = f"({units}) OR ({WORD_COLUMNS} : ({numbers}))"
        groups.append(f"({units})")
    if term.exact:
        groups.append(f"({CHAR_COLUMNS} : {_phrase(term.exact)})")
    return "(" + " AND ".join(groups) + ")"


def rank_expression(plan: QueryPlan) -> str:
    """The FTS5 MATCH string whose bm25 ranks a plan's documents: any of its words or numbers.

    Documents that hold a query word rank above those holding only its characters in sequence.
    """
    phrases = [_phrase(unit.words) for group in plan.groups for unit in group.units]
    phrases.extend(_phrase((number,)) for number in plan.numbers)
    return f"{WORD_COLUMNS} : ({' OR '.join(phrases)})"


def _clauses_matched(plan: QueryPlan) -> tuple[str, list[str]]:
    """SQL counting the clauses a relaxed plan's documents match (0 when not relaxed)."""
    if not plan.relaxed:
        return "0", []
    tests = [
        "(d.rowid IN (SELECT rowid FROM document_terms WHERE document_terms MATCH ?))"
        for _ in plan.clauses
    ]
    params = [
        " OR ".join(_term_expression(term) for term in clause.terms) for clause in plan.clauses
    ]
    return " + ".join(tests), params


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
        conn.execute("ROLLBACK")


def _phrase(tokens: Sequence[str]) -> str:
    return '"' + " ".join(token.replace('"', '""') for token in tokens) + '"'


def _head_matches(plan: QueryPlan) -> tuple[str, list[str]]:
    """SQL counting the query's groups found in the title or tags of ``documents AS d``.

    Such matches rank first, whatever bm25 says: its column weights saturate, so a body saying a
    word often would otherwise outrank a title saying it once. ``d.head`` holds title and tags as
    letters and digits only; ``d.head_numbers`` their canonical number tokens between spaces.
    """
    terms: list[str] = []
    params: list[str] = []
    for group in plan.groups:
        test = " AND ".join("instr(d.head, ?) > 0" for _ in group.units)
        params.extend("".join(unit.chars) for unit in group.units)
        if group.numbers:
            numbers = " AND ".join("instr(d.head_numbers, ?) > 0" for _ in group.numbers)
            test = f"({test}) OR ({numbers})"
            params.extend(f" {number} " for number in group.numbers)
        terms.append(f"({test})")
    if plan.phrase:  # the whole query verbatim
        terms.append("(instr(d.head, ?) > 0)")
        params.append("".join(plan.phrase))
    return " + ".join(terms), params


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
