"""The county dictionary: words an admin adds, and organisation names, are whole words in search
and highlights; a change reindexes what mentions it in the background; bad input stores nothing.

Who may call which endpoint is in tests/api/test_authorization.py. Run on both stacks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from indexer.worker import IndexWorker
from services import dictionary
from services.audit import Actor
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import AuditEvent, DictionaryWord, Document, OutboxEvent
from tests.conftest import Api, sequence_and_verify, stack_settings
from tests.samples import text_bytes

# A village jieba does not know: alone it cuts 柳树 / 湾 / 村, so 马家湾村's 湾村 matched too.
VILLAGE = "柳树湾村"
MINUTES = "柳树湾村党支部召开会议，研究马家湾村与柳树湾村之间道路硬化的资金安排。"
# 柳树 and 湾村 but not 柳树湾村: found for the village's pieces, not for the village.
PLANTING = "春季补植柳树两千株，沙湾村道路维修完工。"


@pytest.fixture
def settings(request: pytest.FixtureRequest, stack: str, tmp_path: Path) -> Iterator[Settings]:
    # Every search and worker batch reads the words: reindexing events are due at once.
    with stack_settings(request, stack, tmp_path / "data", dictionary_check_seconds=0) as chosen:
        yield chosen


def _index(backends: Backends) -> None:
    IndexWorker(backends, backends.index).drain()


def _upload(api: Api, title: str, body: str, **fields: str) -> str:
    response = api.upload(
        "east", f"{title}.txt", text_bytes(body), "text/plain", title=title, **fields
    )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def _search(api: Api, text: str) -> dict[str, list[str]]:
    """Document id → highlights, for a department reader."""
    response = api.client.get("/api/v1/search", params={"q": text}, headers=api.headers("poverty"))
    assert response.status_code == 200, response.text
    return {hit["document"]["id"]: hit["highlights"] for hit in response.json()["hits"]}


def _add(api: Api, *words: str, user: str = "admin") -> Any:
    return api.client.post(
        "/api/v1/dictionary", json={"words": list(words)}, headers=api.headers(user)
    )


def _remove(api: Api, word: str) -> Any:
    return api.client.delete(f"/api/v1/dictionary/{word}", headers=api.headers("admin"))


def _indexed_at(backends: Backends, document_id: str) -> datetime | None:
    with backends.db.session() as session:
        document = session.get(Document, document_id)
        assert document is not None
        return document.indexed_at


def _stored_words(backends: Backends) -> list[str]:
    with backends.db.session() as session:
        return list(session.scalars(select(DictionaryWord.word).order_by(DictionaryWord.word)))


def test_a_village_added_is_whole_in_search_and_highlights_and_removed_goes_back(
    api: Api, backends: Backends
) -> None:
    minutes = _upload(api, "党支部会议记录", MINUTES)
    planting = _upload(api, "植树造林记录", PLANTING)
    _index(backends)

    before = _search(api, VILLAGE)
    assert set(before) == {minutes, planting}
    assert "马家<em>湾村</em>" in before[minutes][0]

    added = _add(api, VILLAGE)
    assert added.status_code == 201, added.text
    # The minutes mention it in their text only: found through the stored text.
    assert added.json() == {"added": [VILLAGE], "already_present": [], "reindex_queued": 1}
    first_indexed = _indexed_at(backends, minutes)
    planting_indexed = _indexed_at(backends, planting)
    _index(backends)  # the background reindexing: the worker drains the queued event
    assert _indexed_at(backends, minutes) != first_indexed
    assert _indexed_at(backends, planting) == planting_indexed

    found = _search(api, VILLAGE)
    assert set(found) == {minutes}
    [snippet] = found[minutes]
    # Both mentions marked whole, and nothing else: not the 湾村 of 马家湾村.
    assert snippet.count("<em>柳树湾村</em>") == 2
    assert snippet.count("<em>") == 2
    assert "马家湾村" in snippet

    removed = _remove(api, VILLAGE)
    assert removed.status_code == 204, removed.text
    assert removed.content == b""
    _index(backends)
    after = _search(api, VILLAGE)
    assert set(after) == {minutes, planting}
    assert "马家<em>湾村</em>" in after[minutes][0]
    assert _stored_words(backends) == []


def test_a_new_organisation_name_is_a_whole_word_without_any_admin_action(
    api: Api, backends: Backends
) -> None:
    meeting = _upload(api, "与桃花湾乡交流座谈纪要", "两乡交流产业发展经验。")
    other = _upload(api, "桃花节筹备", "桃花节筹备会在沙湾乡召开。")
    _index(backends)
    assert set(_search(api, "桃花湾乡")) == {meeting, other}
    first_indexed = _indexed_at(backends, meeting)

    created = api.client.post(
        "/api/v1/orgs",
        json={"name": "桃花湾乡", "kind": "township"},
        headers=api.headers("admin"),
    )
    assert created.status_code == 201, created.text

    # The process that made the change segments with the name at once ...
    assert "桃花湾乡" in backends.analyzer.words
    # ... and the document naming it is reindexed in the background.
    _index(backends)
    assert _indexed_at(backends, meeting) != first_indexed
    found = _search(api, "桃花湾乡")
    assert set(found) == {meeting}
    assert found[meeting] == ["与<em>桃花湾乡</em>交流座谈纪要"]
    listed = api.client.get("/api/v1/dictionary", headers=api.headers("admin")).json()
    assert "桃花湾乡" in listed["derived"]["orgs"]
    assert listed["words"] == []


def test_the_listing_shows_who_added_what_and_the_names_that_count(
    api: Api, backends: Backends
) -> None:
    assert _add(api, "杨柳村", "龍泉村").status_code == 201  # kept simplified, as searched
    category = api.client.post(
        "/api/v1/categories", json={"name": "项目验收"}, headers=api.headers("admin")
    )
    assert category.status_code == 201, category.text
    item = api.client.post(
        "/api/v1/catalog",
        json={"name": "防汛值班台账", "category": "项目验收", "cycle": "monthly", "due_days": 5},
        headers=api.headers("coord"),
    )
    assert item.status_code == 201, item.text

    for user in ("admin", "coord"):
        response = api.client.get("/api/v1/dictionary", headers=api.headers(user))
        assert response.status_code == 200, response.text
        listed = response.json()
        assert [(w["word"], w["added_by"]) for w in listed["words"]] == [
            ("杨柳村", "admin"),
            ("龙泉村", "admin"),
        ]
        assert all(datetime.fromisoformat(w["added_at"]).tzinfo for w in listed["words"])
        assert listed["derived"] == {
            "orgs": ["东镇", "扶贫办", "测试县", "统计局", "西乡"],
            "catalog_items": ["防汛值班台账"],
            "categories": ["项目验收"],
        }
        assert listed["total"] == 2 + 5 + 1 + 1
    assert {"杨柳村", "龙泉村", "防汛值班台账", "项目验收", "东镇"} <= set(backends.analyzer.words)

    again = _add(api, "杨柳村", "新庄村")
    assert again.status_code == 201
    assert again.json() == {"added": ["新庄村"], "already_present": ["杨柳村"], "reindex_queued": 0}
    unchanged = _add(api, "杨柳村")
    assert unchanged.status_code == 200
    assert unchanged.json() == {"added": [], "already_present": ["杨柳村"], "reindex_queued": 0}


@pytest.mark.parametrize(
    ("words", "code"),
    [
        ([], "no_words"),
        (["杨柳村", "村"], "word_length"),
        (["杨柳村", "二十一个字二十一个字二十一个字二十一个字二"], "word_length"),
        (["杨柳村", "柳树 湾村"], "word_has_space"),
        (["杨柳村", "   "], "word_length"),
        (["杨柳村", "2024"], "word_without_letter"),
        (["杨柳村", "柳树湾村！"], "word_characters"),
        (["杨柳村", "<script>"], "word_characters"),
    ],
)
def test_bad_words_are_refused_and_nothing_is_stored(
    api: Api, backends: Backends, words: list[str], code: str
) -> None:
    response = _add(api, *words)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert "词" in error["message"]
    if words:
        assert error["details"]["word"] == words[-1]
    assert _stored_words(backends) == []
    assert "杨柳村" not in backends.analyzer.words


@pytest.mark.parametrize(
    "body",
    [{"words": "杨柳村"}, {"word": ["杨柳村"]}, {"words": [1, 2]}, {"words": ["杨柳村"] * 501}],
)
def test_malformed_bodies_answer_the_json_error(api: Api, backends: Backends, body: Any) -> None:
    response = api.client.post("/api/v1/dictionary", json=body, headers=api.headers("admin"))

    assert response.status_code == 422, response.text
    assert set(response.json()["error"]) >= {"code", "message"}
    assert _stored_words(backends) == []


def test_removing_an_absent_word_is_404_and_a_name_says_why(api: Api, backends: Backends) -> None:
    absent = _remove(api, "杨柳村")
    assert absent.status_code == 404
    assert absent.json()["error"]["code"] == "word_not_found"
    assert absent.json()["error"]["message"] == "词库中没有“杨柳村”"

    organisation = _remove(api, "东镇")
    assert organisation.status_code == 404
    assert "单位、目录材料或类别的名称" in organisation.json()["error"]["message"]

    with backends.db.session() as session:
        refusals = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "dictionary_remove", AuditEvent.outcome == "denied"
                )
            )
        )
    assert [event.details for event in refusals] == [
        {"reason": "word_not_found", "word": "杨柳村"},
        {"reason": "word_not_found", "word": "东镇"},
    ]


def test_every_change_is_audited(api: Api, backends: Backends) -> None:
    _upload(api, "杨柳村走访记录", "杨柳村入户走访。")
    assert _add(api, "杨柳村", "新庄村").status_code == 201
    assert _add(api, "杨柳村").status_code == 200
    assert _remove(api, "新庄村").status_code == 204

    with backends.db.session() as session:
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.in_(["dictionary_add", "dictionary_remove"]))
                .order_by(AuditEvent.id)
            )
        )
    assert [(e.actor, e.role, e.action, e.outcome, e.details) for e in events] == [
        (
            "admin",
            "admin",
            "dictionary_add",
            "allowed",
            {"words": ["杨柳村", "新庄村"], "already_present": [], "reindex_queued": 1},
        ),
        (
            "admin",
            "admin",
            "dictionary_add",
            "allowed",
            {"words": [], "already_present": ["杨柳村"], "reindex_queued": 0},
        ),
        ("admin", "admin", "dictionary_remove", "allowed", {"word": "新庄村", "reindex_queued": 0}),
    ]
    assert sequence_and_verify(backends).ok


def test_reindexing_is_queued_for_live_documents_that_mention_a_word(
    api: Api, backends: Backends
) -> None:
    in_tags = _upload(api, "走访记录", "入户走访。", tags="杨柳村,走访")
    in_description = _upload(api, "照片", "无文字。", description="杨柳村村委会门前")
    in_filename = api.upload("east", "杨柳村台账.txt", text_bytes("台账"), "text/plain").json()[
        "id"
    ]
    withdrawn = _upload(api, "杨柳村旧材料", "已撤回的材料。")
    unrelated = _upload(api, "杨柳树补植", "补植杨柳树。")
    assert (
        api.client.delete(f"/api/v1/documents/{withdrawn}", headers=api.headers("east")).status_code
        == 200
    )
    _index(backends)

    response = _add(api, "杨柳村")

    assert response.json()["reindex_queued"] == 3
    with backends.db.session() as session:
        queued = set(
            session.scalars(
                select(OutboxEvent.document_id).where(
                    OutboxEvent.done_at.is_(None), OutboxEvent.action == "upsert"
                )
            )
        )
    assert queued == {in_tags, in_description, in_filename}
    assert unrelated not in queued


def test_another_process_picks_up_a_change_within_the_check_interval(
    settings: Settings, backends: Backends, county: dict[str, int]
) -> None:
    # A second process on the same database and index, reading the words every 2 seconds.
    other = open_backends(settings.model_copy(update={"dictionary_check_seconds": 2.0}))
    try:
        dictionary.keep_current(other)
        assert "东镇" in other.analyzer.words  # organisation names, read from the database
        assert VILLAGE not in other.analyzer.words

        dictionary.console_add_words(backends, actor=Actor(username="cli:test"), words=[VILLAGE])
        assert VILLAGE in backends.analyzer.words  # the changing process: at once

        dictionary.keep_current(other)  # read less than 2 seconds ago: not yet
        assert VILLAGE not in other.analyzer.words
        time.sleep(2.1)
        dictionary.keep_current(other)
        assert VILLAGE in other.analyzer.words
        assert other.analyzer.plan(VILLAGE).marked_terms == (VILLAGE,)
    finally:
        other.close()
    with backends.db.session() as session:
        added_by = session.scalar(select(func.count()).where(DictionaryWord.added_by_id.is_(None)))
    assert added_by == 1  # added on the console: by no user
