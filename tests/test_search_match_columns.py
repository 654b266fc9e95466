"""The embedded index's shortcuts in its FTS5 queries, and the page it cuts from the ranking.

Phrases that cannot match outside their columns go without a column filter, quoted words are not
looked for again beside their phrase, and bm25 runs only for the tiers a page reaches into: each
shortcut must find and order exactly what the plain query would.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from services.search import (
    IndexedDocument,
    ReadScope,
    SearchQuery,
    SearchSort,
    TextAnalyzer,
)
from services.search import _sqlite as sqlite_backend
from services.search._sqlite import (
    CHAR_COLUMNS,
    SqliteSearchIndex,
    match_expression,
)
from services.search.analysis import WORD_FIELDS

ANALYZER = TextAnalyzer()
EVERYTHING = ReadScope(everything=True)
START = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)

# Ideographs jieba cuts alone and as words, traditional forms, and every kind of character that
# could stand between two of them: punctuation (also the katakana middle dot, a character token
# SQLite drops), spaces, what jieba glues (._-+#&%), letters, digits and dates.
ALPHABET = (
    "扶贫局村乡振兴工作总结会议纪要低保户的了和是在镇县办一二三年月日季度第台账统计表扶貧會議紀",
    "，。、・·；：“”（）—-._#&%+　 \n",
    "abcXYZＡｂ0123456789１２",
    ["2020年第三季度", "2021-09-15", "126户", "Q3", "二〇二〇年", "扶贫工作总结", "会议纪要"],
)


def random_text(rng: random.Random, length: int) -> str:
    pieces = []
    for _ in range(length):
        kind = rng.choices(ALPHABET, weights=[12, 4, 2, 1])[0]
        pieces.append(rng.choice(kind))
    return "".join(pieces)


def document(number: int, rng: random.Random | None = None, **fields: object) -> IndexedDocument:
    rng = rng or random.Random(number)
    values: dict[str, object] = {
        "id": f"doc-{number:04}",
        "title": random_text(rng, rng.randint(0, 12)),
        "filename": random_text(rng, rng.randint(0, 8)) + ".docx",
        "category": rng.choice(["工作总结", "会议纪要", "统计报表", "台账"]),
        "tags": tuple(random_text(rng, rng.randint(1, 5)) for _ in range(rng.randint(0, 3))),
        "description": random_text(rng, rng.randint(0, 20)),
        "body": random_text(rng, rng.randint(0, 300)),
        "township_id": rng.randint(1, 3),
        "township_name": rng.choice(["城关镇", "东坝镇", "西河乡"]),
        "visibility": "departments",
        "department_ids": (),
        "period": "2020-Q3",
        "period_start": date(2020, 7, 1),
        "period_end": date(2020, 9, 30),
        # Some documents share an upload time: ties are broken the same way on every page.
        "created_at": START + timedelta(minutes=number // 3),
        "content_type": "application/pdf",
    }
    values.update(fields)
    return IndexedDocument(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def random_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteSearchIndex]:
    index = SqliteSearchIndex(
        tmp_path_factory.mktemp("random") / "search.sqlite3", analyzer=ANALYZER
    )
    index.upsert([document(number) for number in range(400)])
    yield index
    index.close()


def index_file(index: SqliteSearchIndex) -> sqlite3.Connection:
    return sqlite3.connect(index._path)


def ideograph_runs(tokens: list[str]) -> Iterator[list[str]]:
    """Each longest run of consecutive tokens that are one ideograph each."""
    run: list[str] = []
    for token in [*tokens, ""]:
        if sqlite_backend._IDEOGRAPH.fullmatch(token):
            run.append(token)
            continue
        if run:
            yield run
        run = []


def test_ideographs_in_sequence_in_a_word_column_are_so_in_a_character_column(
    random_index: SqliteSearchIndex,
) -> None:
    conn = index_file(random_index)
    checked = 0
    for number in range(400):
        analysed = ANALYZER.analyse(document(number))
        (rowid,) = conn.execute(
            "SELECT rowid FROM documents WHERE id = ?", (f"doc-{number:04}",)
        ).fetchone()
        for field in WORD_FIELDS:
            for run in ideograph_runs(analysed.words[field].split()):
                phrase = f'{CHAR_COLUMNS} : "{" ".join(run)}"'
                found = conn.execute(
                    "SELECT rowid FROM document_terms WHERE document_terms MATCH ? AND rowid = ?",
                    (phrase, rowid),
                ).fetchall()
                assert found, (number, field, run)
                checked += len(run) > 1
    assert checked > 500  # runs of several ideographs, not only single ones


def test_a_phrase_of_pairs_finds_what_the_phrase_of_characters_finds(
    random_index: SqliteSearchIndex,
) -> None:
    conn = index_file(random_index)
    rng = random.Random(5)
    ideographs = [char for char in ALPHABET[0] if sqlite_backend._IDEOGRAPH.fullmatch(char)]
    found_some = 0
    for _ in range(300):
        chars = rng.choices(ideographs, k=rng.randint(2, 3))
        pairs = sqlite_backend._char_phrase(chars)
        assert sqlite_backend.PAIR_MARK in pairs
        matched = [
            conn.execute(
                "SELECT rowid FROM document_terms WHERE document_terms MATCH ? ORDER BY rowid",
                (phrase,),
            ).fetchall()
            for phrase in (pairs, f'{CHAR_COLUMNS} : "{" ".join(chars)}"')
        ]
        assert matched[0] == matched[1], chars
        found_some += bool(matched[0])
    assert found_some > 50


QUERIES = [
    "扶贫",
    "局村",
    "扶贫办 工作总结",
    "会议纪要 OR 台账",
    "乡振兴",
    "的",
    "扶貧 台账",
    "2020年第三季度",
    "abc 扶贫",
    '"扶贫工作总结" -"会议纪要"',
    '"局村" 镇',
    "扶贫工做总结",
    "局 -村",
]


@pytest.mark.parametrize("text", QUERIES)
def test_the_shortcuts_find_rank_and_highlight_as_the_plain_query(
    random_index: SqliteSearchIndex, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = [
        SearchQuery(text=text, scope=EVERYTHING, page=page, size=size, sort=sort)
        for page, size in [(1, 20), (2, 7), (1, 500)]
        for sort in SearchSort
    ]
    shortcuts = [random_index.search(query) for query in queries]
    expression = match_expression(ANALYZER.plan(text))
    # Every phrase with its column filter, every quoted word looked for beside its phrase.
    monkeypatch.setattr(sqlite_backend, "_IDEOGRAPH", re.compile("(?!)"))
    monkeypatch.setattr(sqlite_backend, "CHAR_TOKEN", re.compile(".*", re.DOTALL))
    monkeypatch.setattr(sqlite_backend, "_within", lambda part, whole: False)
    assert match_expression(ANALYZER.plan(text)) != expression
    assert [random_index.search(query) for query in queries] == shortcuts
    assert shortcuts[-1].total > 0 or text == "局 -村"


def test_a_quoted_phrase_is_not_looked_for_again_word_by_word() -> None:
    plan = ANALYZER.plan('"扶贫工作总结" -"会议纪要"')
    # Each phrase as the pairs of its ideographs (one private-use mark before each pair).
    expression = match_expression(plan).replace(sqlite_backend.PAIR_MARK, "+")
    assert expression == '(((("+扶贫 +贫工 +工作 +作总 +总结")))) NOT ((("+会议 +议纪 +纪要")))'


def test_quoted_phrases_found_nowhere_together_answer_each_alone(
    random_index: SqliteSearchIndex,
) -> None:
    # Relaxed, such a query has no word left to rank by: it used to fail as "unavailable".
    result = random_index.search(SearchQuery(text='"扶贫" "量子计算"', scope=EVERYTHING))
    alone = random_index.search(SearchQuery(text='"扶贫"', scope=EVERYTHING))
    assert result.relaxed
    assert result.total == alone.total > 0
    assert len(result.hits) == 20


PAGED = [
    "扶贫",
    "扶贫 工作总结",
    "局",
    "2020年第三季度",
    "扶贫工做总结",
    "会议 OR 台账",
    "镇 -扶贫",
]


@pytest.mark.parametrize("sort", list(SearchSort))
@pytest.mark.parametrize("text", PAGED)
def test_pages_are_slices_of_one_ranking(
    random_index: SqliteSearchIndex, text: str, sort: SearchSort
) -> None:
    whole = random_index.search(SearchQuery(text=text, scope=EVERYTHING, size=1000, sort=sort))
    assert whole.total > 30, text
    ranking = [(hit.document_id, hit.score, hit.highlights) for hit in whole.hits]
    for size in (1, 7, 20):
        pages = []
        for page in range(1, whole.total // size + 3):
            result = random_index.search(
                SearchQuery(text=text, scope=EVERYTHING, page=page, size=size, sort=sort)
            )
            assert (result.total, result.facets, result.relaxed) == (
                whole.total,
                whole.facets,
                whole.relaxed,
            )
            pages.extend((hit.document_id, hit.score, hit.highlights) for hit in result.hits)
        assert pages == ranking, (text, size)
    scores = [score for _, score, _ in ranking]
    if sort == SearchSort.relevance:
        assert scores == sorted(scores, reverse=True)
    assert len({int(score) for score in scores}) > 1 or text in {"局"}  # tiers were cut apart
