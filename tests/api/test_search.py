"""Search through the API: only readable documents are counted, masked personal data, duplicates.

Documents are indexed by draining the outbox explicitly, as a worker would.
"""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from indexer.worker import IndexWorker
from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import Api
from tests.samples import docx_bytes, pdf_bytes

REPORT = (
    "城关镇2026年第三季度脱贫攻坚工作总结。本季度走访贫困户126户，"
    "落实产业帮扶、就业帮扶等措施，扶贫办督导检查两次。"
)


def _index(backends: Backends) -> None:
    IndexWorker(backends, backends.index).drain()


def _search(api: Api, user: str, **params: Any) -> Any:
    response = api.client.get("/api/v1/search", params=params, headers=api.headers(user))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def shared(api: Api, backends: Backends) -> dict[str, str]:
    """East's documents in every visibility, and one of west's, indexed."""
    ids = {}
    for name, fields in {
        "public": {"visibility": "departments", "category": "工作总结", "period": "2026-Q3"},
        "restricted": {
            "visibility": "restricted",
            "departments": "扶贫办",
            "category": "工作留痕",
            "period": "2026-09",
        },
        "private": {"visibility": "private", "category": "会议纪要", "period": "2026-10"},
    }.items():
        body = f"东镇{name}材料：脱贫攻坚入户走访记录 秘密标题{name}".encode()
        response = api.upload("east", f"{name}.txt", body, title=f"东镇{name}脱贫材料", **fields)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    response = api.upload("west", "west.txt", "西乡脱贫攻坚总结".encode(), category="工作总结")
    ids["west"] = response.json()["id"]
    _index(backends)
    return ids


@pytest.mark.parametrize(
    ("user", "visible"),
    [
        ("poverty", {"public", "restricted", "west"}),
        ("stats", {"public", "west"}),
        ("east", {"public", "restricted", "private"}),
        ("west", {"west"}),
        ("auditor", {"public", "restricted", "private", "west"}),
        ("admin", set()),
    ],
)
def test_only_readable_documents_are_returned_counted_and_faceted(
    api: Api, shared: dict[str, str], user: str, visible: set[str]
) -> None:
    result = _search(api, user, q="脱贫攻坚")
    returned = {hit["document"]["id"] for hit in result["hits"]}
    assert returned == {shared[name] for name in visible}
    assert result["total"] == len(visible)
    assert sum(bucket["count"] for bucket in result["facets"]["township"]) == len(visible)
    assert sum(bucket["count"] for bucket in result["facets"]["category"]) == len(visible)
    hidden = {"public", "restricted", "private", "west"} - visible
    text = str(result)
    for name in hidden:
        assert f"秘密标题{name}" not in text
        assert f"东镇{name}脱贫材料" not in text


def test_filters_and_empty_query_list_by_filters(api: Api, shared: dict[str, str]) -> None:
    by_category = _search(api, "auditor", q="", category="工作总结")
    assert {hit["document"]["id"] for hit in by_category["hits"]} == {
        shared["public"],
        shared["west"],
    }
    by_township = _search(api, "auditor", q="脱贫", township="东镇")
    assert by_township["total"] == 3
    by_period = _search(api, "auditor", q="", period_from="2026-09", period_to="2026-09")
    assert {hit["document"]["id"] for hit in by_period["hits"]} == {
        shared["public"],  # 2026-Q3 overlaps September
        shared["restricted"],
    }


@pytest.mark.parametrize(
    "query", ['"', "脱贫 AND (", "*", "NEAR(", "-扶贫", "title:扶贫", "'; DROP TABLE x; --", "^"]
)
def test_query_syntax_characters_are_text(api: Api, shared: dict[str, str], query: str) -> None:
    result = _search(api, "auditor", q=query)
    assert result["total"] >= 0


def test_no_match_is_an_empty_200(api: Api, shared: dict[str, str]) -> None:
    result = _search(api, "poverty", q="不存在的词语组合")
    assert result["total"] == 0
    assert result["hits"] == []


def test_highlights_mark_matches_and_escape_html(api: Api, backends: Backends) -> None:
    body = "<script>alert(1)</script> 入户走访记录：扶贫办检查。".encode()
    response = api.upload("east", "走访.md", body)
    assert response.status_code == 201
    _index(backends)
    [hit] = _search(api, "poverty", q="入户走访")["hits"]
    joined = " ".join(hit["highlights"])
    assert "<em>" in joined
    assert "<script>" not in joined
    assert "&lt;script&gt;" in joined or "script" not in joined


def test_personal_data_is_flagged_and_masked_in_highlights(api: Api, backends: Backends) -> None:
    body = "低保户张某，身份证号11010519491231002X，电话13812345678，入户核查。".encode()
    response = api.upload("east", "核查.txt", body)
    assert response.status_code == 201
    document_id = response.json()["id"]
    _index(backends)
    [hit] = _search(api, "poverty", q="入户核查")["hits"]
    joined = " ".join(hit["highlights"])
    assert "11010519491231002X" not in joined
    assert "13812345678" not in joined
    document = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers("east"))
    assert document.json()["contains_personal_data"] is True
    original = api.client.get(
        f"/api/v1/documents/{document_id}/download", headers=api.headers("east")
    )
    assert original.content == body


def test_near_duplicates_are_linked_on_both_documents(api: Api, backends: Backends) -> None:
    first = api.upload("east", "总结.docx", docx_bytes(REPORT)).json()["id"]
    second = api.upload("east", "总结（修改）.docx", docx_bytes(REPORT + "特此报告。")).json()["id"]
    unrelated = api.upload("east", "另一份.docx", docx_bytes("河道清淤工程验收报告")).json()["id"]
    _index(backends)
    for document_id, other in ((first, second), (second, first)):
        body = api.client.get(
            f"/api/v1/documents/{document_id}", headers=api.headers("east")
        ).json()
        assert [similar["id"] for similar in body["similar_to"]] == [other]
    body = api.client.get(f"/api/v1/documents/{unrelated}", headers=api.headers("east")).json()
    assert body["similar_to"] == []


def test_searches_are_audited(api: Api, backends: Backends, shared: dict[str, str]) -> None:
    _search(api, "stats", q="脱贫攻坚")
    with backends.db.session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "search").order_by(AuditEvent.id.desc())
        ).first()
    assert event is not None
    assert event.actor == "stats"
    assert event.details["q"] == "脱贫攻坚"
    assert set(event.details["document_ids"]) == {shared["public"], shared["west"]}


def test_results_can_be_sorted_newest_first(api: Api, backends: Backends) -> None:
    # The older one names the query in its title, so relevance puts it first.
    older = api.upload("east", "验收.txt", "验收记录。".encode(), title="河道清淤工程验收")
    newer = api.upload("east", "简报.txt", "本月完成河道清淤两公里。".encode(), title="工作简报")
    older, newer = older.json()["id"], newer.json()["id"]
    _index(backends)
    best = _search(api, "east", q="河道清淤")
    newest = _search(api, "east", q="河道清淤", sort="date")
    assert [hit["document"]["id"] for hit in best["hits"]] == [older, newer]
    assert [hit["document"]["id"] for hit in newest["hits"]] == [newer, older]
    assert (newest["total"], newest["facets"]) == (best["total"], best["facets"])
    with backends.db.session() as session:
        details = [
            event.details
            for event in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "search")
                .order_by(AuditEvent.id.desc())
                .limit(2)
            )
        ]
    assert [detail.get("sort") for detail in details] == ["date", None]  # default not recorded


def test_an_unknown_sort_is_refused(api: Api) -> None:
    response = api.client.get(
        "/api/v1/search", params={"q": "扶贫", "sort": "newest"}, headers=api.headers("east")
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("invalid_field", "query.sort")


def test_the_year_facet_is_also_a_filter(api: Api, backends: Backends) -> None:
    with_period = api.upload("east", "a.txt", "扶贫台账".encode(), period="2020-Q3").json()
    without = api.upload("east", "b.txt", "扶贫总结".encode()).json()
    _index(backends)
    years = {b["key"]: b["count"] for b in _search(api, "poverty", q="扶贫")["facets"]["year"]}
    upload_year = without["created_at"][:4]
    assert years == {"2020": 1, upload_year: 1}
    for year, document in (("2020", with_period), (upload_year, without)):
        chosen = _search(api, "poverty", q="扶贫", year=year)
        assert [hit["document"]["id"] for hit in chosen["hits"]] == [document["id"]]
    refused = api.client.get(
        "/api/v1/search", params={"year": "20x0"}, headers=api.headers("poverty")
    )
    assert refused.status_code == 422


def test_a_word_only_in_a_spreadsheet_cell_is_found(api: Api, backends: Backends) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "监测户名单"
    sheet.append(["户主", "帮扶措施"])
    sheet.append(["张某", "雨露计划职业培训"])
    content = io.BytesIO()
    workbook.save(content)
    created = api.upload("east", "监测户台账.xlsx", content.getvalue()).json()
    _index(backends)
    found = _search(api, "poverty", q="雨露计划")
    assert [hit["document"]["id"] for hit in found["hits"]] == [created["id"]]
    assert _search(api, "poverty", q="监测户名单")["total"] == 1  # the sheet's name
    document = api.client.get(f"/api/v1/documents/{created['id']}", headers=api.headers("east"))
    assert document.json()["index_status"] == "indexed"


def test_pdf_text_layer_is_searchable(api: Api, backends: Backends) -> None:
    response = api.upload("east", "report.pdf", pdf_bytes("Rural revitalisation progress"))
    assert response.status_code == 201
    _index(backends)
    result = _search(api, "poverty", q="revitalisation")
    assert [hit["document"]["id"] for hit in result["hits"]] == [response.json()["id"]]


def test_a_query_nothing_matches_says_relaxed_and_suggests(
    api: Api, backends: Backends, shared: dict[str, str]
) -> None:
    strict = _search(api, "poverty", q="脱贫攻坚 入户走访")
    assert (strict["relaxed"], strict["suggestions"]) == (False, [])
    # Nobody wrote 台账: the documents holding the other words come back, flagged.
    relaxed = _search(api, "poverty", q="脱贫攻坚 台账")
    assert relaxed["relaxed"] is True
    assert relaxed["total"] == 3  # what the poverty office may read, nothing more
    assert {hit["document"]["id"] for hit in relaxed["hits"]} == {
        shared["public"],
        shared["restricted"],
        shared["west"],
    }
    # 脱贫攻坚 mistyped (贫 → 平): what 攻坚 finds, and the correction that finds more.
    typo = _search(api, "poverty", q="脱平攻坚")
    assert typo["relaxed"] is True
    assert typo["suggestions"][0] == "脱贫攻坚"
    assert _search(api, "poverty", q=typo["suggestions"][0])["total"] == 3
    with backends.db.session() as session:
        details = [
            event.details
            for event in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "search")
                .order_by(AuditEvent.id.desc())
                .limit(3)
            )
        ]
    assert [detail.get("relaxed") for detail in details] == [None, True, True]


def test_suggestions_never_name_a_word_only_unreadable_documents_hold(
    api: Api, backends: Backends, shared: dict[str, str]
) -> None:
    response = api.upload(
        "east", "内部.txt", "内部材料。".encode(), title="绝密扶持项目", visibility="private"
    )
    assert response.status_code == 201, response.text
    _index(backends)
    assert _search(api, "east", q="绝密扶特")["suggestions"] == ["绝密扶持"]
    assert _search(api, "poverty", q="绝密扶特")["suggestions"] == []


def test_traditional_characters_category_and_township_are_searched(
    api: Api, backends: Backends, shared: dict[str, str]
) -> None:
    traditional = _search(api, "auditor", q="脫貧攻堅")
    assert traditional["total"] == 4
    # Marked in the snippets of a reader (an auditor gets none: tests/api/test_auditor_snippets.py).
    read = _search(api, "poverty", q="脫貧攻堅")
    assert any("<em>脱贫攻坚</em>" in h for hit in read["hits"] for h in hit["highlights"])
    by_category = _search(api, "auditor", q="工作留痕")  # only the category says so
    assert [hit["document"]["id"] for hit in by_category["hits"]] == [shared["restricted"]]
    by_township = _search(api, "auditor", q="西乡 脱贫攻坚")
    assert by_township["hits"][0]["document"]["id"] == shared["west"]
    either = _search(api, "auditor", q='"西乡脱贫" OR 秘密标题private')
    assert {hit["document"]["id"] for hit in either["hits"]} == {shared["west"], shared["private"]}
    excluded = _search(api, "auditor", q="脱贫攻坚 -西乡 -会议纪要")
    assert {hit["document"]["id"] for hit in excluded["hits"]} == {
        shared["public"],
        shared["restricted"],
    }


def test_a_withdrawn_document_is_not_counted_by_the_next_search(
    api: Api, backends: Backends, shared: dict[str, str]
) -> None:
    """Withdrawal reaches the index before the API answers: no total or facet counts the
    document afterwards, even before the worker has run."""
    before = _search(api, "poverty", q="脱贫攻坚")
    assert shared["public"] in {hit["document"]["id"] for hit in before["hits"]}

    withdrawn = api.client.delete(
        f"/api/v1/documents/{shared['public']}", headers=api.headers("east")
    )

    assert withdrawn.status_code == 200, withdrawn.text
    after = _search(api, "poverty", q="脱贫攻坚")
    assert after["total"] == before["total"] - 1
    assert shared["public"] not in {hit["document"]["id"] for hit in after["hits"]}
    facet_total = sum(bucket["count"] for bucket in after["facets"]["township"])
    assert facet_total == after["total"]


def test_a_hit_lists_the_departments_as_the_document_itself_does(
    api: Api, backends: Backends, shared: dict[str, str]
) -> None:
    both = api.upload(
        "east",
        "both.txt",
        "东镇两部门共享的脱贫攻坚台账".encode(),
        title="东镇两部门脱贫台账",
        visibility="restricted",
        departments="统计局,扶贫办",
    )
    assert both.status_code == 201, both.text
    _index(backends)
    hits = {
        hit["document"]["id"]: hit["document"] for hit in _search(api, "east", q="脱贫")["hits"]
    }
    for name in ("restricted", "public"):
        document_id = shared[name]
        alone = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers("east"))
        assert hits[document_id]["departments"] == alone.json()["departments"]
    assert hits[shared["public"]]["departments"] is None
    assert hits[shared["restricted"]]["departments"] == ["扶贫办"]
    alone = api.client.get(f"/api/v1/documents/{both.json()['id']}", headers=api.headers("east"))
    assert hits[both.json()["id"]]["departments"] == alone.json()["departments"]
    assert sorted(hits[both.json()["id"]]["departments"]) == ["扶贫办", "统计局"]


def test_highlights_show_the_documents_own_punctuation(api: Api, backends: Backends) -> None:
    # Matching reads normalised text (："，（ are :,( to it); a snippet shows what the file says.
    body = "会议通知\n时间：2026年11月20日，各村（社区）报送２０２５年台账。".encode()
    assert api.upload("east", "通知.txt", body).status_code == 201
    _index(backends)
    [hit] = _search(api, "poverty", q="社区")["hits"]
    assert hit["highlights"] == [
        "会议通知 时间：2026年11月20日，各村（<em>社区</em>）报送２０２５年台账。"
    ]
