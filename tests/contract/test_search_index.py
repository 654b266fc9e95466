"""The ``SearchIndex`` contract: what every search backend does, run against each implementation.

A backend joins by adding a factory to ``INDEX_FACTORIES``. Documents are searchable as soon as
``upsert`` returns (written into a rebuild: once the rebuild is finished).
"""

from __future__ import annotations

import random
import re
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from indexer.extractors import ExtractionContext
from indexer.extractors._dispatch import extract_here
from services.errors import BackendUnavailable
from services.metadata import period_bounds
from services.search import (
    FACETS,
    IndexedDocument,
    ReadScope,
    SearchIndex,
    SearchQuery,
    SearchResult,
    SearchSort,
    TextAnalyzer,
)
from services.search._elasticsearch import ElasticsearchIndex
from services.search._sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from services.search._sqlite import SqliteSearchIndex
from tests.samples import pdf_with_unicode_text
from tests.servers import ElasticsearchServer

EAST, WEST = 1, 2  # townships
POVERTY, STATS = 10, 11  # departments
TOWNSHIP_NAMES = {EAST: "东镇", WEST: "西乡"}

EVERYTHING = ReadScope(everything=True)
POVERTY_READER = ReadScope(department_id=POVERTY)
EAST_TOWNSHIP = ReadScope(township_id=EAST)

START = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)


# One analyzer for every index of the suite, as ``open_search_index`` builds one per process.
ANALYZER = TextAnalyzer()


def sqlite_index(request: pytest.FixtureRequest, directory: Path) -> SearchIndex:
    return SqliteSearchIndex(directory / "search.sqlite3", analyzer=ANALYZER)


def elasticsearch_index(request: pytest.FixtureRequest, directory: Path) -> SearchIndex:
    server: ElasticsearchServer = request.getfixturevalue("elasticsearch")
    alias = f"test-{uuid.uuid4().hex[:16]}"

    def drop() -> None:
        with Elasticsearch(server.url) as client:
            names = list(client.indices.get(index=f"{alias}-*").body)
            if names:  # deletes by wildcard are refused (action.destructive_requires_name)
                client.indices.delete(index=names)

    request.addfinalizer(drop)
    return ElasticsearchIndex(server.url, analyzer=ANALYZER, alias=alias)


INDEX_FACTORIES: list[Any] = [
    pytest.param(sqlite_index, id="sqlite"),
    pytest.param(elasticsearch_index, id="elasticsearch"),
]


@pytest.fixture(params=INDEX_FACTORIES)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    factory: Callable[[pytest.FixtureRequest, Path], SearchIndex] = request.param
    opened = factory(request, tmp_path)
    yield opened
    opened.close()


_serial = iter(range(1, 1_000_000))


def material(document_id: str, **fields: Any) -> IndexedDocument:
    """A public material of the east township; each one a minute newer than the one before."""
    values: dict[str, Any] = {
        "id": document_id,
        "title": "材料",
        "filename": f"{document_id}.pdf",
        "category": "其他",
        "tags": (),
        "description": "",
        "body": "",
        "township_id": EAST,
        "visibility": "departments",
        "department_ids": (),
        "period": None,
        "period_start": None,
        "period_end": None,
        "created_at": START + timedelta(minutes=next(_serial)),
        "content_type": "application/pdf",
    }
    values.update(fields)
    values.setdefault("township_name", TOWNSHIP_NAMES[values["township_id"]])
    return IndexedDocument(**values)


# Unrelated materials, so that term statistics look like a real index's.
FILLER = [
    material(f"filler-{number}", title=title, body=body)
    for number, (title, body) in enumerate(
        [
            ("道路养护情况", "今年完成农村公路养护一百二十公里，修复桥梁三座。"),
            ("教育经费使用说明", "义务教育阶段学校的公用经费按学生人数拨付。"),
            ("防汛值班安排", "汛期实行二十四小时值班制度，值班人员不得擅离岗位。"),
            ("森林防火通知", "清明节期间加强林区巡查，严禁野外用火。"),
            ("医疗保险参保统计", "城乡居民医疗保险参保率达到百分之九十五。"),
            ("农田水利建设", "新建灌溉渠道八公里，改善灌溉面积三千亩。"),
        ]
    )
]


def search(
    index: SearchIndex, q: str = "", scope: ReadScope = EVERYTHING, **kw: Any
) -> SearchResult:
    return index.search(SearchQuery(text=q, scope=scope, **kw))


def ids(result: SearchResult) -> list[str]:
    return [hit.document_id for hit in result.hits]


def facet(result: SearchResult, name: str) -> dict[str, int]:
    return {bucket.key: bucket.count for bucket in result.facets.get(name, [])}


# -- finding ------------------------------------------------------------------------------------


def test_finds_by_title(index: SearchIndex) -> None:
    index.upsert([*FILLER, material("a", title="扶贫工作总结")])
    assert ids(search(index, "扶贫")) == ["a"]


def test_finds_by_tag(index: SearchIndex) -> None:
    index.upsert([*FILLER, material("a", tags=("工作留痕", "入户走访"))])
    assert ids(search(index, "入户走访")) == ["a"]
    assert ids(search(index, "工作留痕")) == ["a"]


def test_finds_by_body_word(index: SearchIndex) -> None:
    index.upsert([*FILLER, material("a", body="本季度共开展入户走访四十次，完善了帮扶台账。")])
    assert ids(search(index, "帮扶台账")) == ["a"]
    assert ids(search(index, "台账")) == ["a"]


def test_finds_a_word_inside_a_longer_word(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("office", body="县扶贫办召开专题会议。"),
            material("village", body="乡村振兴示范点建设进展顺利。"),
        ]
    )
    assert ids(search(index, "扶贫")) == ["office"]
    # Not a word at all, only characters in sequence: the character-level field finds it.
    assert ids(search(index, "村振")) == ["village"]


def test_finds_by_filename_and_description(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("file", filename="低保户名单.xlsx"),
            material("described", description="附件为危房改造验收照片"),
        ]
    )
    assert ids(search(index, "低保户")) == ["file"]
    assert ids(search(index, "危房改造")) == ["described"]


def test_full_width_text_matches_half_width_queries(index: SearchIndex) -> None:
    index.upsert([*FILLER, material("a", body="截至１９９８年底，ＡＢＣ项目已完成。")])
    assert ids(search(index, "1998")) == ["a"]
    assert ids(search(index, "abc")) == ["a"]
    assert ids(search(index, "１９９８")) == ["a"]


# -- ranking ------------------------------------------------------------------------------------


def test_title_and_tag_matches_rank_above_body_only_matches(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("body", title="会议记录", body="扶贫资金 扶贫项目 扶贫对象 " * 30),
            material("title", title="扶贫工作总结", body="本年度各项工作完成情况。"),
            material("tag", title="年度总结", tags=("扶贫",), body="全年工作回顾。"),
        ]
    )
    hits = ids(search(index, "扶贫"))
    assert set(hits[:2]) == {"title", "tag"}
    assert hits[2] == "body"


def test_the_exact_word_ranks_above_the_same_characters_in_a_longer_word(
    index: SearchIndex,
) -> None:
    index.upsert(
        [
            *FILLER,
            material("chars", title="通知", body="请到扶贫办公室领取表格。"),
            material("word", title="通知", body="请到县扶贫办领取表格。"),
        ]
    )
    result = search(index, "扶贫办")
    assert ids(result) == ["word", "chars"]
    assert result.hits[0].score > result.hits[1].score


def test_two_character_words_match_only_adjacent_characters(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("minutes", title="会议纪要"),
            material("held", body="镇里召开会议部署工作。"),
            material("apart", body="会上审议了预算草案。"),
        ]
    )
    assert sorted(ids(search(index, "会议"))) == ["held", "minutes"]


def test_every_word_of_the_query_must_match(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("both", body="扶贫资金使用情况审计报告"),
            material("one", body="扶贫对象动态调整"),
        ]
    )
    assert ids(search(index, "扶贫 审计")) == ["both"]
    assert ids(search(index, "扶贫审计")) == ["both"]


def test_numbers_and_dates(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("ordinal", title="2020年第三季度扶贫工作报告"),
            material("plain", title="统计报表", body="2020年三季度统计数据"),
            material("wide", body="２０２０年第三季度情况说明"),
            material("quarter", body="2020-Q3 进度"),
            material("other-year", title="2021年第三季度扶贫工作报告"),
            material("other-quarter", title="2020年第二季度扶贫工作报告"),
            material("dated", body="会议于2020-09-15召开。"),
        ]
    )
    expected = {"ordinal", "plain", "wide", "quarter"}
    assert set(ids(search(index, "2020年第三季度"))) == expected
    assert set(ids(search(index, "2020年三季度"))) == expected
    assert set(ids(search(index, "2020年9月"))) == {"dated"}
    assert "other-year" in ids(search(index, "2021"))
    assert "other-year" not in ids(search(index, "2020"))


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '扶贫"',
        "*",
        "扶贫*",
        "(扶贫",
        "扶贫)",
        "AND",
        "扶贫 AND",
        "OR 扶贫",
        "NOT",
        "NEAR(扶贫 资金)",
        "-扶贫",
        "title:扶贫",
        "{title}: 扶贫",
        "^扶贫",
        "扶贫 + 资金",
        "'",
        "\\",
        "\x00",
        "%_",
        "扶贫;DROP TABLE documents",
        "😀扶贫",
        "𰻝",
        "ﬁ",
    ],
)
def test_query_syntax_characters_are_plain_text(index: SearchIndex, q: str) -> None:
    index.upsert([*FILLER, material("a", body="扶贫资金 not and or near title")])
    result = search(index, q)
    assert result.total == len(result.hits)
    if q in ('扶贫"', "扶贫*", "(扶贫", "扶贫)", "-扶贫", "^扶贫", "😀扶贫"):
        assert ids(result) == ["a"]
    assert search(index, "扶贫").total == 1


# -- traditional characters, query syntax, forgiving queries -----------------------------------


def test_traditional_and_simplified_characters_find_each_other(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("simplified", title="扶贫工作总结", body="东风村召开会议，会议纪要如下。"),
            material("traditional", title="扶貧資金使用說明", body="東風村村委會審議了預算。"),
        ]
    )
    assert sorted(ids(search(index, "扶貧"))) == ["simplified", "traditional"]
    assert sorted(ids(search(index, "东风村"))) == ["simplified", "traditional"]
    assert sorted(ids(search(index, "東風村"))) == ["simplified", "traditional"]
    assert ids(search(index, "會議紀要")) == ["simplified"]
    assert ids(search(index, "扶贫资金")) == ["traditional"]
    # Snippets show each document's own characters, marked where the folded text matched.
    hits = {hit.document_id: hit.highlights for hit in search(index, "扶贫").hits}
    assert hits["traditional"] == ("<em>扶貧</em>資金使用說明",)
    assert hits["simplified"] == ("<em>扶贫</em>工作总结",)
    (snippet,) = search(index, "东风村 预算").hits[0].highlights
    assert snippet == "<em>東風村</em>村委會審議了<em>預算</em>。"


def test_radicals_in_a_pdf_text_layer_are_found_as_the_ideographs(
    index: SearchIndex, tmp_path: Path
) -> None:
    # Some CJK fonts' glyphs map to radicals: the page shows 东风村, the text layer says 东⻛村.
    pdf = tmp_path / "minutes.pdf"
    pdf.write_bytes(pdf_with_unicode_text("城关镇党政联席会议纪要。东⻛村监测户回访，⻓期跟踪。"))
    context = ExtractionContext(path=pdf, content_type="application/pdf", filename=pdf.name)
    extracted = extract_here(context).text
    index.upsert(
        [
            *FILLER,
            material("pdf", title="党政联席会议纪要", body=extracted),
            # Text kept before radicals were read as ideographs: found, shown as it was kept.
            material("kept", title="入户走访记录", body="东⻛村走访记录。"),
            material("other", title="会议纪要", body="西风村召开会议。"),
        ]
    )
    assert sorted(ids(search(index, "东风村"))) == ["kept", "pdf"]
    assert sorted(ids(search(index, "东⻛村"))) == ["kept", "pdf"]
    assert ids(search(index, "长期跟踪")) == ["pdf"]
    hits = {hit.document_id: hit.highlights for hit in search(index, "东风村").hits}
    # The document's own full-width comma, as the PDF writes it.
    assert hits["pdf"] == ("城关镇党政联席会议纪要。<em>东风村</em>监测户回访，长期跟踪。",)
    assert hits["kept"] == ("<em>东⻛村</em>走访记录。",)


def test_or_quoted_phrases_and_exclusions(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("poverty", title="扶贫资金使用情况", body="资金使用情况说明。"),
            material("dibao", title="低保对象名单", body="低保户核查结果。"),
            material("apart", title="资金情况", body="扶贫项目的使用说明。"),
        ]
    )
    for q in ("扶贫 OR 低保", "扶贫 or 低保", "扶贫 或 低保", "扶贫 | 低保"):
        assert sorted(ids(search(index, q))) == ["apart", "dibao", "poverty"], q
    assert sorted(ids(search(index, "资金 扶贫 OR 低保"))) == ["apart", "poverty"]
    # Quoted: these characters in this order; unquoted, each word anywhere.
    assert sorted(ids(search(index, "扶贫使用"))) == ["apart", "poverty"]
    assert ids(search(index, '"扶贫资金"')) == ["poverty"]
    assert ids(search(index, "“扶贫资金”")) == ["poverty"]
    assert ids(search(index, "「扶贫资金」")) == ["poverty"]
    assert search(index, '"使用扶贫"').total == 0
    assert search(index, '"扶贫资金"').hits[0].highlights[0] == "<em>扶贫资金</em>使用情况"
    # Excluded: documents holding the word anywhere are left out, in any script.
    assert ids(search(index, "扶贫 -项目")) == ["poverty"]
    assert ids(search(index, "扶贫 -項目")) == ["poverty"]
    assert ids(search(index, '扶贫 -"使用情况"')) == ["apart"]
    assert sorted(ids(search(index, "扶贫 OR 低保 -资金"))) == ["dibao"]
    # Nothing but an exclusion: the minus was a hyphen.
    assert sorted(ids(search(index, "-扶贫"))) == ["apart", "poverty"]


def test_a_query_nothing_matches_falls_back_to_partial_matches(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("two", title="扶贫资金审计", body="审计发现的问题已整改。"),
            material("one", title="扶贫对象", body="动态调整。"),
            material("other", title="防汛物资", body="储备充足。"),
        ]
    )
    strict = search(index, "扶贫 审计")
    assert (ids(strict), strict.relaxed, strict.suggestions) == (["two"], False, ())
    relaxed = search(index, "扶贫 审计 台账")  # nobody holds 台账
    assert relaxed.relaxed
    assert ids(relaxed) == ["two", "one"]  # more of the query's words first
    assert relaxed.total == 2
    assert facet(relaxed, "township") == {"东镇": 2}
    assert relaxed.hits[0].score > relaxed.hits[1].score
    # One word that matches nothing has nothing to fall back on; lone characters are no words.
    for q in ("台账", "不存在的词语"):
        empty = search(index, q)
        assert (empty.total, empty.relaxed) == (0, False)
    # Relaxing never brings back an excluded document.
    assert ids(search(index, "扶贫 台账 -审计")) == ["one"]


def test_zero_hit_queries_get_corrections_from_the_vocabulary(index: SearchIndex) -> None:
    index.upsert(
        [
            *FILLER,
            material("summary", title="扶贫工作总结", body="全年扶贫工作总结如下。"),
            material("secret", title="绝密扶持项目", visibility="private"),
        ]
    )
    typo = search(index, "扶平")  # one character off, and close in sound: fuping / fupin
    assert (typo.total, typo.relaxed) == (0, False)
    assert typo.suggestions[0] == "扶贫"
    sounding = search(index, "扶贫工做总结")  # 工做 sounds like 工作
    assert sounding.relaxed  # 扶贫 and 总结 still match
    assert sounding.suggestions[0] == "扶贫工作总结"
    assert search(index, "扶贫").suggestions == ()  # a query that finds something gets none
    # Corrections come only from what the caller may read: 扶持 is in a private document.
    assert "绝密扶持" in search(index, "绝密扶特").suggestions
    assert search(index, "绝密扶特", scope=POVERTY_READER).suggestions == ()


def test_category_and_township_are_searched_as_text_below_title_and_body(
    index: SearchIndex,
) -> None:
    index.upsert(
        [
            *FILLER,
            material("category", title="入户走访记录", category="工作留痕"),
            material("titled", title="工作留痕材料清单", category="其他"),
            material("township", title="会议记录", body="本次会议研究人事。", township_id=WEST),
            material("mentioned", title="会议记录", body="西乡来人商议合作。"),
        ]
    )
    assert ids(search(index, "工作留痕")) == ["titled", "category"]
    assert ids(search(index, "西乡")) == ["mentioned", "township"]
    assert ids(search(index, "西乡 人事")) == ["township"]
    assert ids(search(index, "工作留痕 走访")) == ["category"]


def dated(document_id: str, period: str, **fields: Any) -> IndexedDocument:
    """A material of a period, stored as uploads store it (2024-Q3, 2024-08, 2024)."""
    start, end = period_bounds(period)
    return material(document_id, period=period, period_start=start, period_end=end, **fields)


def test_the_period_is_searched_as_people_say_it(index: SearchIndex) -> None:
    title = "城关镇扶贫工作总结"
    index.upsert(
        [
            *FILLER,
            dated("q3", "2024-Q3", title=title),
            dated("q2", "2024-Q2", title=title),
            dated("august", "2024-08", title=title),
            dated("last-year", "2023-Q3", title=title),
            material("undated", title=title),
        ]
    )
    this_year = {"q3", "q2", "august"}
    third_quarter = {"q3", "last-year"}
    cases = {
        "2024": this_year,
        "2024年": this_year,
        "城关镇 扶贫 2024": this_year,
        "第三季度": third_quarter,
        "三季度": third_quarter,
        "Q3": third_quarter,
        "2024年第三季度": {"q3"},
        "2024年三季度": {"q3"},
        "2024-Q3": {"q3"},
        "扶贫 2024年第三季度": {"q3"},
        "2024年8月": {"august"},
        "2023": {"last-year"},
    }
    for q, expected in cases.items():
        found = search(index, q)
        assert (set(ids(found)), found.relaxed) == (expected, False), q
    # A year no document is of finds nothing: the upload year is no text.
    assert search(index, "2021").total == 0
    # The period ranks below the title: a title saying 2024 comes first.
    index.upsert([material("titled", title="2024年扶贫工作总结")])
    assert ids(search(index, "2024 扶贫"))[0] == "titled"


def test_a_term_matched_only_by_the_period_leaves_the_snippets_unmarked_there(
    index: SearchIndex,
) -> None:
    index.upsert(
        [*FILLER, dated("q3", "2024-Q3", title="城关镇扶贫工作总结", body="全年走访贫困户。")]
    )
    (hit,) = search(index, "城关镇 扶贫 2024").hits
    joined = "".join(hit.highlights)
    marked = "".join(re.findall(r"<em>(.*?)</em>", joined))
    assert "城关镇" in marked
    assert "扶贫" in marked
    assert "2024" not in joined
    (hit,) = search(index, "2024年第三季度").hits
    assert "<em>" not in "".join(hit.highlights)


# -- listing, empty results, pagination ---------------------------------------------------------


def test_empty_text_lists_by_filters_newest_first(index: SearchIndex) -> None:
    older = material("older", category="总结", created_at=START)
    newer = material("newer", category="总结", created_at=START + timedelta(days=1))
    other = material("other", category="通知", created_at=START + timedelta(days=2))
    index.upsert([older, other, newer])
    for q in ("", "   ", "\n\t"):
        result = search(index, q)
        assert ids(result) == ["other", "newer", "older"]
        assert result.total == 3
        assert all(hit.score == 0 for hit in result.hits)
    assert ids(search(index, "", category="总结")) == ["newer", "older"]


def test_date_sort_orders_the_same_matches_newest_first(index: SearchIndex) -> None:
    def day(number: int) -> datetime:
        return START + timedelta(days=number)

    index.upsert(
        [
            *FILLER,
            material("title", title="扶贫工作总结", category="总结", created_at=day(0)),
            material("tag", tags=("扶贫",), township_id=WEST, created_at=day(1)),
            material("tie", body="扶贫对象动态调整", created_at=day(1)),
            material("body", body="扶贫资金使用情况", category="通知", created_at=day(2)),
            material("unrelated", title="防汛值班安排", created_at=day(3)),
            material("hidden", title="扶贫内部材料", visibility="private", created_at=day(4)),
        ]
    )
    for scope in (EVERYTHING, POVERTY_READER):
        best = search(index, "扶贫", scope=scope)
        newest = search(index, "扶贫", scope=scope, sort=SearchSort.date)
        assert ids(best).index("title") < ids(best).index("body")  # a title match ranks first
        assert (newest.total, newest.facets) == (best.total, best.facets)
        visible = [] if scope == POVERTY_READER else ["hidden"]
        # Equal times are ordered by id, descending: "tie" before "tag".
        assert ids(newest) == [*visible, "body", "tie", "tag", "title"]
        assert {hit.document_id: hit.highlights for hit in newest.hits} == {
            hit.document_id: hit.highlights for hit in best.hits
        }
        assert {hit.document_id: hit.score for hit in newest.hits} == pytest.approx(
            {hit.document_id: hit.score for hit in best.hits}
        )
    pages = [search(index, "扶贫", page=page, size=2, sort=SearchSort.date) for page in (1, 2, 3)]
    assert [hit for page in pages for hit in ids(page)] == ["hidden", "body", "tie", "tag", "title"]
    assert ids(search(index, "", sort=SearchSort.date)) == ids(search(index, ""))


def test_no_match_is_an_empty_result(index: SearchIndex) -> None:
    index.upsert([*FILLER, material("a", title="扶贫")])
    for q in ("不存在的词语", "zzzzqqq", "！？。"):
        result = search(index, q)
        assert result.total == 0
        assert result.hits == []
        assert all(not buckets for buckets in result.facets.values())


def test_pagination_continues_with_the_next_hits(index: SearchIndex) -> None:
    index.upsert([material(f"m{number:02}", body=f"扶贫资金第{number}批") for number in range(25)])
    everything = search(index, "扶贫", size=30)
    pages = [search(index, "扶贫", page=page, size=10) for page in (1, 2, 3)]
    assert [page.total for page in pages] == [25, 25, 25]
    assert [len(page.hits) for page in pages] == [10, 10, 5]
    assert [hit for page in pages for hit in ids(page)] == ids(everything)
    assert search(index, "扶贫", page=4, size=10).hits == []
    listed = [search(index, "", page=page, size=10) for page in (1, 2, 3)]
    assert [hit for page in listed for hit in ids(page)] == ids(search(index, "", size=30))
    assert len({hit for page in listed for hit in ids(page)}) == 25


# -- read scope ---------------------------------------------------------------------------------


@pytest.fixture
def shared_and_private(index: SearchIndex) -> SearchIndex:
    """Four poverty-alleviation materials with every kind of visibility."""
    index.upsert(
        [
            material("public", title="扶贫公开材料", category="总结"),
            material("private", title="扶贫内部材料", category="内部", visibility="private"),
            material(
                "for-poverty",
                title="扶贫专送材料",
                category="专送",
                visibility="restricted",
                department_ids=(POVERTY,),
            ),
            material(
                "for-stats",
                title="扶贫统计材料",
                category="统计",
                township_id=WEST,
                visibility="restricted",
                department_ids=(STATS,),
            ),
            material(
                "west-private",
                title="扶贫西乡材料",
                category="内部",
                township_id=WEST,
                visibility="private",
            ),
        ]
    )
    return index


@pytest.mark.parametrize("q", ["扶贫", "", "材料"])
def test_a_department_sees_only_what_is_shared_with_it(
    shared_and_private: SearchIndex, q: str
) -> None:
    result = search(shared_and_private, q, scope=POVERTY_READER)
    assert sorted(ids(result)) == ["for-poverty", "public"]
    assert result.total == 2
    assert facet(result, "category") == {"总结": 1, "专送": 1}
    assert facet(result, "township") == {"东镇": 2}
    assert sum(facet(result, "year").values()) == 2
    stats = search(shared_and_private, q, scope=ReadScope(department_id=STATS))
    assert sorted(ids(stats)) == ["for-stats", "public"]


def test_hidden_documents_are_not_counted_even_when_only_they_match(
    shared_and_private: SearchIndex,
) -> None:
    result = search(shared_and_private, "内部", scope=POVERTY_READER)
    assert (result.total, result.hits) == (0, [])
    assert all(not buckets for buckets in result.facets.values())


def test_a_township_sees_its_own_private_documents(shared_and_private: SearchIndex) -> None:
    result = search(shared_and_private, "扶贫", scope=EAST_TOWNSHIP)
    assert sorted(ids(result)) == ["for-poverty", "private", "public"]
    assert facet(result, "township") == {"东镇": 3}


def test_everything_scope_sees_all(shared_and_private: SearchIndex) -> None:
    result = search(shared_and_private, "扶贫")
    assert result.total == 5
    assert facet(result, "township") == {"东镇": 3, "西乡": 2}


def test_an_empty_scope_sees_nothing(shared_and_private: SearchIndex) -> None:
    assert search(shared_and_private, "扶贫", scope=ReadScope()).total == 0
    assert search(shared_and_private, "", scope=ReadScope()).total == 0


def test_a_township_and_department_scope_sees_both(shared_and_private: SearchIndex) -> None:
    scope = ReadScope(township_id=WEST, department_id=POVERTY)
    result = search(shared_and_private, "扶贫", scope=scope)
    assert sorted(ids(result)) == ["for-poverty", "for-stats", "public", "west-private"]


# -- filters and facets -------------------------------------------------------------------------


def test_filters_by_category_and_township(index: SearchIndex) -> None:
    index.upsert(
        [
            material("east-summary", title="扶贫总结", category="总结"),
            material("east-notice", title="扶贫通知", category="通知"),
            material("west-summary", title="扶贫总结", category="总结", township_id=WEST),
        ]
    )
    assert sorted(ids(search(index, "扶贫", category="总结"))) == ["east-summary", "west-summary"]
    assert sorted(ids(search(index, "扶贫", township_id=EAST))) == ["east-notice", "east-summary"]
    both = search(index, "", category="总结", township_id=WEST)
    assert (ids(both), both.total) == (["west-summary"], 1)
    assert search(index, "扶贫", category="不存在").total == 0


def test_filters_by_overlapping_period(index: SearchIndex) -> None:
    def period(start: date, end: date) -> dict[str, Any]:
        return {"period": "", "period_start": start, "period_end": end}

    index.upsert(
        [
            material("q3", title="扶贫", **period(date(2020, 7, 1), date(2020, 9, 30))),
            material("year", title="扶贫", **period(date(2020, 1, 1), date(2020, 12, 31))),
            material("next", title="扶贫", **period(date(2021, 1, 1), date(2021, 1, 31))),
            material("none", title="扶贫"),
        ]
    )

    def found(**kw: Any) -> list[str]:
        return sorted(ids(search(index, "扶贫", **kw)))

    september: dict[str, Any] = {"period_from": date(2020, 9, 1), "period_to": date(2020, 9, 30)}
    assert found(**september) == ["q3", "year"]
    assert sorted(ids(search(index, "", **september))) == ["q3", "year"]
    assert found(period_from=date(2020, 12, 31)) == ["next", "year"]
    assert found(period_to=date(2020, 6, 30)) == ["year"]
    assert found(period_from=date(2020, 9, 30), period_to=date(2021, 1, 1)) == [
        "next",
        "q3",
        "year",
    ]
    assert found(period_from=date(2022, 1, 1)) == []


def test_facets_count_every_match_not_only_the_page(index: SearchIndex) -> None:
    index.upsert(
        [
            material("a", title="扶贫", category="总结", period_start=date(2020, 1, 1)),
            material("b", title="扶贫", category="总结", period_start=date(2020, 4, 1)),
            material("c", title="扶贫", category="通知", period_start=date(2019, 1, 1)),
            material("d", title="扶贫", category="总结", township_id=WEST),  # no period
            material("e", title="教育", category="总结", township_id=WEST),
        ]
    )
    created_year = str(START.year)
    for q, total in (("扶贫", 4), ("", 5)):
        result = search(index, q, size=1)
        assert result.total == total
        assert len(result.hits) == 1
        assert set(result.facets) == set(FACETS)
    result = search(index, "扶贫", size=1)
    assert facet(result, "township") == {"东镇": 3, "西乡": 1}
    assert facet(result, "category") == {"总结": 3, "通知": 1}
    assert facet(result, "year") == {"2020": 2, "2019": 1, created_year: 1}
    assert result.facets["township"][0].key == "东镇"  # most frequent first
    listed = search(index, "", size=1)
    assert facet(listed, "category") == {"总结": 4, "通知": 1}


def test_the_year_filter_returns_what_the_year_facet_counted(index: SearchIndex) -> None:
    index.upsert(
        [
            material("a", title="扶贫", period_start=date(2020, 1, 1)),
            material("b", title="扶贫", period_start=date(2020, 4, 1)),
            material("c", title="扶贫", period_start=date(2019, 1, 1)),
            material("d", title="扶贫"),  # no period: filed under its upload year
            material("e", title="教育", period_start=date(2020, 2, 1)),
        ]
    )
    counted = facet(search(index, "扶贫"), "year")
    assert counted == {"2020": 2, "2019": 1, str(START.year): 1}
    for year, count in counted.items():
        chosen = search(index, "扶贫", year=int(year))
        assert chosen.total == count
        assert facet(chosen, "year") == {year: count}
    assert sorted(ids(search(index, "扶贫", year=2020))) == ["a", "b"]
    assert ids(search(index, "扶贫", year=int(START.year))) == ["d"]
    assert sorted(ids(search(index, "", year=2020))) == ["a", "b", "e"]
    assert search(index, "扶贫", year=2018).total == 0


# -- highlights ---------------------------------------------------------------------------------


def test_highlights_are_escaped_text_with_em_marks_only(index: SearchIndex) -> None:
    index.upsert(
        [
            material(
                "a",
                title="A&B 扶贫<简报>",
                body='前言。<script>alert("扶贫")</script> 以及 <b>扶贫</b> & 其他内容。',
            )
        ]
    )
    highlights = search(index, "扶贫").hits[0].highlights
    assert 1 <= len(highlights) <= 3
    joined = "".join(highlights)
    assert "<em>扶贫</em>" in joined
    assert "&lt;script&gt;" in joined
    assert "&amp;" in joined
    for snippet in highlights:
        assert re.sub(r"</?em>", "", snippet).count("<") == 0
        assert ">" not in re.sub(r"</?em>", "", snippet)


def test_highlights_are_short_snippets_around_the_matches(index: SearchIndex) -> None:
    body = "无关内容。" * 100 + "这里写到了扶贫资金。" + "其他段落。" * 100 + "最后又提到扶贫。"
    index.upsert([*FILLER, material("a", title="年度报告", body=body)])
    highlights = search(index, "扶贫").hits[0].highlights
    assert len(highlights) == 2
    for snippet in highlights:
        assert "<em>扶贫</em>" in snippet
        assert len(re.sub(r"</?em>", "", snippet)) <= 70
    assert search(index, "扶贫", highlight=False).hits[0].highlights == ()


def test_highlights_mark_dates_written_differently(index: SearchIndex) -> None:
    index.upsert([*FILLER, material("a", body="2020年三季度统计数据")])
    (snippet,) = search(index, "2020年第三季度").hits[0].highlights
    assert "<em>2020年三季度</em>" in snippet


# -- writing ------------------------------------------------------------------------------------


def test_upsert_replaces_a_document_with_the_same_id(index: SearchIndex) -> None:
    index.upsert([*FILLER, material("a", title="水利设施巡查", category="水利")])
    index.upsert([material("a", title="教育经费说明", category="教育", tags=("校舍",))])
    assert "a" not in ids(search(index, "水利设施"))
    assert ids(search(index, "校舍")) == ["a"]
    assert ids(search(index, "", category="教育")) == ["a"]
    assert search(index, "", category="水利").total == 0
    assert index.count() == len(FILLER) + 1


def test_upsert_replaces_visibility(index: SearchIndex) -> None:
    document = material("a", title="扶贫", visibility="restricted", department_ids=(STATS,))
    index.upsert([document])
    assert search(index, "扶贫", scope=POVERTY_READER).total == 0
    index.upsert([replace(document, department_ids=(POVERTY,))])
    assert search(index, "扶贫", scope=POVERTY_READER).total == 1
    index.upsert([replace(document, visibility="private", department_ids=())])
    assert search(index, "扶贫", scope=POVERTY_READER).total == 0


def test_upsert_of_nothing_is_allowed(index: SearchIndex) -> None:
    index.upsert([])
    assert index.count() == 0


def test_delete_removes_and_ignores_unknown_ids(index: SearchIndex) -> None:
    index.upsert([material("a", title="扶贫"), material("b", title="扶贫")])
    index.delete(["a", "never-indexed"])
    assert ids(search(index, "扶贫")) == ["b"]
    assert ids(search(index, "")) == ["b"]
    assert index.count() == 1
    index.delete([])


# The states of one document as the database had them, oldest first: each an index version.
_STATES = [
    {"title": "水利设施巡查", "category": "水利", "body": "巡查水库大坝"},
    {"title": "教育经费说明", "category": "教育", "body": "校舍维修经费"},
    {"title": "防汛人员安排", "category": "防汛", "body": "汛期巡堤人员名单"},
]
_WORDS = ["大坝", "校舍", "巡堤"]  # found in one state's body each


def _deliveries(*, withdrawn: bool, seed: int) -> list[tuple[str, int]]:
    """Every update of document "a" three times over, in a shuffled order; with the withdrawal
    (version 4) among them when ``withdrawn``."""
    versions = [*range(1, len(_STATES) + 1), *([len(_STATES) + 1] if withdrawn else [])]
    kinds = [("delete" if version > len(_STATES) else "upsert", version) for version in versions]
    deliveries = kinds * 3
    random.Random(seed).shuffle(deliveries)
    return deliveries


def _deliver(index: SearchIndex, deliveries: list[tuple[str, int]]) -> None:
    for kind, version in deliveries:
        if kind == "delete":
            index.delete(["a"], versions={"a": version})
        else:
            index.upsert([material("a", version=version, **_STATES[version - 1])])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_updates_delivered_three_times_out_of_order_leave_the_latest_state(
    index: SearchIndex, seed: int
) -> None:
    index.upsert([*FILLER, material("b", title="扶贫", version=7)])
    _deliver(index, _deliveries(withdrawn=False, seed=seed))
    latest = _STATES[-1]
    assert dict(index.indexed_versions())["a"] == len(_STATES)
    assert ids(search(index, "巡堤")) == ["a"]
    assert ids(search(index, "", category=latest["category"])) == ["a"]
    for word in _WORDS[:-1]:
        assert "a" not in ids(search(index, word)), word
    assert index.count() == len(FILLER) + 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_withdrawal_delivered_among_older_updates_is_never_undone(
    index: SearchIndex, seed: int
) -> None:
    index.upsert([material("b", title="扶贫", version=7)])
    _deliver(index, _deliveries(withdrawn=True, seed=seed))
    assert "a" not in dict(index.indexed_versions())
    for word in _WORDS:
        assert search(index, word).total == 0, word
    assert ids(search(index, "")) == ["b"]
    # A late delivery of an older state is refused; a newer one is written.
    index.upsert([material("a", version=len(_STATES), **_STATES[-1])])
    assert search(index, "巡堤").total == 0
    index.upsert([material("a", version=len(_STATES) + 2, **_STATES[0])])
    assert ids(search(index, "大坝")) == ["a"]


def test_the_same_version_written_again_replaces_the_entry(index: SearchIndex) -> None:
    # A rebuild or a re-extraction writes the same database state again: it must land.
    index.upsert([material("a", version=2, body="旧的分词结果")])
    index.upsert([material("a", version=2, body="新的分词结果扶贫")])
    assert ids(search(index, "扶贫")) == ["a"]


def test_indexed_versions_lists_every_document_held_with_its_version(index: SearchIndex) -> None:
    assert list(index.indexed_versions()) == []
    index.upsert([material("a", version=2), material("b", version=5), material("c", version=1)])
    index.upsert([material("c", version=9)])
    index.delete(["b"], versions={"b": 6})
    assert sorted(index.indexed_versions()) == [("a", 2), ("c", 9)]
    many = [material(f"m{number:04}", version=number) for number in range(1, 1201)]
    index.upsert(many)
    listed = dict(index.indexed_versions())
    assert len(listed) == 1202
    assert listed["m1200"] == 1200


def test_an_unversioned_delete_removes_whatever_version_is_held(index: SearchIndex) -> None:
    index.upsert([material("a", title="扶贫", version=8)])
    index.delete(["a"])
    assert search(index, "扶贫").total == 0
    assert list(index.indexed_versions()) == []


def test_ping_answers(index: SearchIndex) -> None:
    index.ping()


def test_searches_while_another_thread_writes(index: SearchIndex) -> None:
    index.upsert(FILLER)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for batch in range(10):
                index.upsert([material(f"w{batch}-{n}", body="扶贫资金") for n in range(5)])
        except BaseException as exc:
            failures.append(exc)

    def read() -> None:
        try:
            for _ in range(20):
                result = search(index, "扶贫")
                assert result.total == len(result.hits) or len(result.hits) == 20
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert search(index, "扶贫").total == 50


# -- rebuilding -----------------------------------------------------------------------------------


def test_a_rebuild_serves_what_was_written_into_it_and_live_writes_reach_it(
    index: SearchIndex,
) -> None:
    index.upsert([material("old", title="防汛值班"), material("kept", title="扶贫资金")])
    rebuilt = index.begin_rebuild()
    rebuilt.upsert([material("kept", title="扶贫资金")])
    index.upsert([material("during", title="扶贫台账")])  # a live write while rebuilding
    index.delete(["old"])
    index.finish_rebuild(rebuilt)
    assert sorted(ids(search(index, "扶贫"))) == ["during", "kept"]
    assert search(index, "防汛").total == 0
    index.upsert([material("after", title="扶贫")])
    assert sorted(ids(search(index, ""))) == ["after", "during", "kept"]


def test_an_unfinished_rebuild_is_resumed_unless_restarted(index: SearchIndex) -> None:
    index.upsert([material("a", title="扶贫")])
    first = index.begin_rebuild()
    first.upsert([material("a", title="扶贫")])
    resumed = index.begin_rebuild()
    resumed.upsert([material("b", title="扶贫")])
    index.finish_rebuild(resumed)
    assert sorted(ids(search(index, "扶贫"))) == ["a", "b"]


def test_elasticsearch_searches_the_old_index_until_the_rebuild_finishes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    index = elasticsearch_index(request, tmp_path)
    assert isinstance(index, ElasticsearchIndex)
    index.upsert([material("old", title="防汛值班"), material("kept", title="扶贫资金")])
    before = index.physical_index()
    rebuilt = index.begin_rebuild()
    rebuilt.upsert([material("kept", title="扶贫资金")])
    assert search(index, "防汛").total == 1  # searches still see the complete old index
    restarted = index.begin_rebuild(restart=True)  # throws the partial rebuild away
    assert search(restarted, "扶贫").total == 0
    restarted.upsert([material("kept", title="扶贫资金")])
    index.finish_rebuild(restarted)
    assert index.physical_index() != before
    assert search(index, "防汛").total == 0
    assert ids(search(index, "扶贫")) == ["kept"]
    with Elasticsearch(index_url(request)) as client:
        assert not client.indices.exists(index=before)  # the replaced index is dropped
    with pytest.raises(ValueError, match="begin_rebuild"):
        index.finish_rebuild(index)
    index.close()


def test_elasticsearch_builds_without_refreshes_and_serves_everything_after_the_switch(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    index = elasticsearch_index(request, tmp_path)
    assert isinstance(index, ElasticsearchIndex)
    index.upsert([material("old", title="防汛值班")])
    rebuilt = index.begin_rebuild()
    for start in range(0, 600, 200):
        rebuilt.upsert(
            [
                material(f"m{number}", title="扶贫台账", body=f"第{number}户走访记录")
                for number in range(start, start + 200)
            ]
        )
    assert search(rebuilt, "扶贫").total == 0  # bulk writes without refreshes: nothing visible yet
    index.finish_rebuild(rebuilt)
    assert search(index, "扶贫").total == 600
    assert search(index, "走访记录").total == 600
    with Elasticsearch(index_url(request)) as client:
        name = index.physical_index()
        settings = client.indices.get_settings(index=name).body[name]["settings"]["index"]
    assert "refresh_interval" not in settings  # the default again: refreshed every second
    assert settings["auto_expand_replicas"] == "0-1"
    index.upsert([material("live", title="扶贫总结")])  # live writes: searchable on return
    assert search(index, "扶贫").total == 601
    index.close()


def test_elasticsearch_mapping_is_explicit_and_segmentation_survives_the_whitespace_analyzer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    index = elasticsearch_index(request, tmp_path)
    assert isinstance(index, ElasticsearchIndex)
    index.upsert([material("a", title="扶贫")])
    name = index.physical_index()
    sample = "县扶贫办２０２０年第三季度 COVID-19 工作留痕 Q3 𠀀字 café ｶﾀｶﾅ 한국"
    tokens = ANALYZER.word_tokens(sample) + ANALYZER.char_tokens(sample)
    with Elasticsearch(index_url(request)) as client:
        mapping = client.indices.get_mapping(index=name).body[name]["mappings"]
        assert mapping["dynamic"] == "strict"
        analyzed = client.indices.analyze(
            index=name, field="body_words", text=" ".join(tokens)
        ).body["tokens"]
    assert [token["token"] for token in analyzed] == tokens
    index.close()


def test_elasticsearch_down_is_backend_unavailable(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    index = ElasticsearchIndex(
        f"http://127.0.0.1:{port}", analyzer=ANALYZER, alias="nowhere", timeout_seconds=2
    )
    for call in (
        index.ping,
        index.count,
        lambda: index.upsert([material("a")]),
        lambda: index.delete(["a"]),
        lambda: search(index, "扶贫"),
    ):
        with pytest.raises(BackendUnavailable):
            call()
    index.close()


def index_url(request: pytest.FixtureRequest) -> str:
    server: ElasticsearchServer = request.getfixturevalue("elasticsearch")
    return server.url


# -- the shared text analysis and the SQLite backend's own behaviour ----------------------------


def test_tokens_survive_the_fts5_unicode61_tokenizer_unchanged(tmp_path: Path) -> None:
    sample = "县扶贫办２０２０年第三季度 COVID-19 工作留痕 Q3 𠀀字 café ｶﾀｶﾅ 한국"
    tokens = ANALYZER.word_tokens(sample) + ANALYZER.char_tokens(sample)
    assert all(token and not any(char.isspace() for char in token) for token in tokens)
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE VIRTUAL TABLE t USING fts5(x, tokenize = "unicode61 remove_diacritics 0")')
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    conn.execute("INSERT INTO t (x) VALUES (?)", (" ".join(tokens),))
    stored = [row[0] for row in conn.execute("SELECT term FROM v ORDER BY offset")]
    conn.close()
    assert stored == tokens
    assert {"扶贫", "扶贫办", "2020", "2020年", "3季度", "扶", "办"} <= set(tokens)


def test_sqlite_index_lives_in_its_own_file_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "index" / "search.sqlite3"
    first = SqliteSearchIndex(path, analyzer=ANALYZER)
    first.upsert([material("a", title="扶贫")])
    first.close()
    second = SqliteSearchIndex(path, analyzer=ANALYZER)
    assert ids(search(second, "扶贫")) == ["a"]
    second.close()


def test_sqlite_index_of_an_older_schema_is_rebuilt_empty_and_asks_to_be_refilled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "search.sqlite3"
    fresh = SqliteSearchIndex(path, analyzer=ANALYZER)
    assert not fresh.needs_refill()  # a new index has nothing to refill
    fresh.upsert([material("a", title="扶贫")])
    fresh.close()
    with closing(sqlite3.connect(path)) as conn:  # as the version before this one left it
        conn.execute(f"PRAGMA user_version = {SQLITE_SCHEMA_VERSION - 1}")

    upgraded = SqliteSearchIndex(path, analyzer=ANALYZER)
    assert upgraded.count() == 0
    assert upgraded.needs_refill()
    upgraded.close()
    again = SqliteSearchIndex(path, analyzer=ANALYZER)  # remembered until the refill is queued
    assert again.needs_refill()
    again.refill_queued()
    assert not again.needs_refill()
    again.close()
    assert not SqliteSearchIndex(path, analyzer=ANALYZER).needs_refill()


def test_elasticsearch_never_asks_to_be_refilled(index: SearchIndex) -> None:
    if not isinstance(index, ElasticsearchIndex):
        pytest.skip("the embedded index is rebuilt empty by a new schema")
    assert not index.needs_refill()  # an outdated index serves until `materials reindex`


def test_sqlite_index_reports_an_unusable_file_as_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "search.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BackendUnavailable):
        SqliteSearchIndex(path, analyzer=ANALYZER)


def test_sqlite_index_is_unavailable_after_close(tmp_path: Path) -> None:
    opened = SqliteSearchIndex(tmp_path / "search.sqlite3", analyzer=ANALYZER)
    opened.close()
    with pytest.raises(BackendUnavailable):
        opened.ping()
