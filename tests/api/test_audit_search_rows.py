"""The auditor's access log says each search in plain words: the words as typed (shown without
unfolding anything), how they were read when that differs (按“…”查找), whether the search was
widened (放宽了条件), how many documents it found and which ones the searcher was shown, by title
and township; the details as recorded stay folded beside them. A document's log (只看此材料) also
holds the searches that showed it, and so does the page's export; the API keeps its filter."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.worker import IndexWorker
from services.backends import Backends
from tests.conftest import EAST, WEST, Api, signed_in_browser
from tests.samples import text_bytes

LEDGER = "危房改造台账"
SUMMARY = "扶贫工作总结"


@pytest.fixture
def auditor_browser(client: TestClient) -> Iterator[TestClient]:
    """A browser of its own, signed in as the auditor."""
    with signed_in_browser(client, "auditor") as browser:
        yield browser


@dataclass(frozen=True)
class County:
    ledger: str  # 东镇's ledger
    summary: str  # 西乡's summary


@pytest.fixture
def materials(api: Api, backends: Backends) -> County:
    ids = []
    for username, title, text in (("east", LEDGER, "危房改造资金"), ("west", SUMMARY, "扶贫资金")):
        body = text_bytes(f"{title}：{text}。")
        response = api.upload(username, f"{title}.txt", body, title=title)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    IndexWorker(backends, backends.index).drain()
    return County(*ids)


def _search(api: Api, q: str, **params: Any) -> dict[str, Any]:
    response = api.client.get(
        "/api/v1/search", params={"q": q, **params}, headers=api.headers("poverty")
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _text(fragment: str) -> str:
    """Text as read: lines and list items apart, inline markup dropped."""
    apart = re.sub(r"</?(?:p|li|ul|div|details|summary|pre)\b[^>]*>", " ", fragment)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", apart)).split())


def _searches(page: str) -> list[str]:
    """Each search row's words, and the details as recorded, in order (newest first)."""
    return re.findall(r'data-testid="audit-search">(.*?)</td>', page, re.S)


def _shown(search: str) -> str:
    """What a search row shows without unfolding anything."""
    return _text(re.sub(r"<details.*?</details>", " ", search, flags=re.S))


def _recorded(search: str) -> dict[str, Any]:
    folded = re.search(r"<summary>记录的原始内容</summary>\s*<pre[^>]*>(.*?)</pre>", search, re.S)
    assert folded is not None
    recorded: dict[str, Any] = json.loads(html.unescape(folded.group(1)))
    return recorded


def _api_searches(api: Api) -> list[dict[str, Any]]:
    response = api.client.get(
        "/api/v1/audit/events", params={"action": "search"}, headers=api.headers("auditor")
    )
    assert response.status_code == 200, response.text
    return [event["details"] for event in response.json()["events"]]


def test_a_search_says_what_was_typed_and_which_documents_were_shown(
    materials: County, api: Api, auditor_browser: TestClient
) -> None:
    assert _search(api, "危房 台账")["total"] == 1

    page = auditor_browser.get("/audit", params={"action": "search"})
    assert page.status_code == 200
    (search,) = _searches(page.text)
    shown = _shown(search)
    assert shown.startswith("检索“危房 台账”")
    assert f"找到 1 份材料；这一页显示给检索人的 1 份： {LEDGER}（{EAST}）" in shown
    assert f'href="/documents/{materials.ledger}"' in search
    # Words, not codes: no document number, no raw key.
    for raw in (materials.ledger, "document_ids", "relaxed", "searched_as", "涉及材料"):
        assert raw not in shown
    # The details as recorded, folded away: exactly what the API answers.
    (details,) = _api_searches(api)
    assert _recorded(search) == details
    assert details["document_ids"] == [materials.ledger]


def test_a_widened_search_and_words_read_otherwise_are_said_plainly(
    materials: County, api: Api, auditor_browser: TestClient
) -> None:
    widened = _search(api, "危房 不存在的词语")
    assert widened["relaxed"] is True
    read = _search(api, "去年 台账")
    assert read["readings"], read

    page = auditor_browser.get("/audit", params={"action": "search"})
    newest, oldest = (_shown(search) for search in _searches(page.text))
    (meant_details, widened_details) = _api_searches(api)
    meant = meant_details["searched_as"]
    assert newest.startswith(f"检索“去年 台账”，按“{meant}”查找")
    assert oldest.startswith("检索“危房 不存在的词语”")
    assert "按“" not in oldest  # searched as typed
    assert "放宽了条件" in oldest
    assert ("放宽了条件" in newest) == (meant_details.get("relaxed") is True)
    assert widened_details["relaxed"] is True
    assert f"{LEDGER}（{EAST}）" in oldest

    # The export for people words the same keys; the coded export keeps them as recorded.
    worded = auditor_browser.get("/audit/export.csv", params={"action": "search"})
    assert worded.status_code == 200
    header, *rows = csv.reader(io.StringIO(worded.content.decode("utf-8-sig"), newline=""))
    details = [row[header.index("详情")] for row in rows]
    assert f"查找方式: 按“{meant}”查找" in details[0]
    assert "放宽了条件: 是" in details[1]
    assert not any("relaxed" in text or "searched_as" in text for text in details)
    coded = api.client.get(
        "/api/v1/audit/export.csv", params={"action": "search"}, headers=api.headers("auditor")
    )
    assert '""relaxed"": true' in coded.text
    assert '""searched_as""' in coded.text


def test_a_search_by_filters_alone_names_them(
    materials: County, api: Api, auditor_browser: TestClient
) -> None:
    assert _search(api, "", township=WEST, sort="date")["total"] == 1

    page = auditor_browser.get("/audit", params={"action": "search"})
    (search,) = _searches(page.text)
    shown = _shown(search)
    assert shown.startswith("未输入检索词，只按筛选条件列出")
    assert f"条件：乡镇 {WEST}，排序 按上传时间" in shown
    assert f"{SUMMARY}（{WEST}）" in shown


def test_a_documents_log_holds_the_searches_that_showed_it(
    materials: County, api: Api, auditor_browser: TestClient
) -> None:
    assert _search(api, "资金")["total"] == 2  # both documents
    assert _search(api, "危房 台账", township=WEST)["total"] == 0
    viewed = api.client.get(
        f"/api/v1/documents/{materials.summary}", headers=api.headers("poverty")
    )
    assert viewed.status_code == 200

    # By default a document's log is what named it: its views are not buried under every
    # opening of the search page that listed it.
    direct = auditor_browser.get("/audit", params={"document_id": materials.summary})
    assert direct.status_code == 200
    actions = re.findall(r'<td data-label="操作" class="nowrap">([^<]*)</td>', direct.text)
    assert sorted(actions) == ["上传", "查看"]
    toggle = re.search(r'<a href="([^"]+)" data-testid="searches-toggle">([^<]+)</a>', direct.text)
    assert toggle is not None
    assert toggle.group(2) == "也列出结果中显示过这份材料的检索"

    page = auditor_browser.get(html.unescape(toggle.group(1)))
    assert page.status_code == 200
    actions = re.findall(r'<td data-label="操作" class="nowrap">([^<]*)</td>', page.text)
    assert sorted(actions) == ["上传", "查看", "检索"]
    (search,) = _searches(page.text)
    assert "检索“资金”" in _shown(search)
    assert re.search(r'class="audit-search-chosen">.*?即所筛选的材料', search, re.S)
    assert "只看直接涉及这份材料的记录" in _text(page.text)

    # The page's export holds the same rows.
    export = re.search(r'href="([^"]+)" download>导出 CSV', page.text)
    assert export is not None
    worded = auditor_browser.get(html.unescape(export.group(1)))
    assert worded.status_code == 200
    header, *rows = csv.reader(io.StringIO(worded.content.decode("utf-8-sig"), newline=""))
    assert sorted(row[header.index("操作")] for row in rows) == ["上传", "查看", "检索"]

    # The API's filter keeps to the events naming the document.
    response = api.client.get(
        "/api/v1/audit/events",
        params={"document_id": materials.summary},
        headers=api.headers("auditor"),
    )
    assert sorted(event["action"] for event in response.json()["events"]) == ["upload", "view"]


def test_the_page_export_takes_a_document_by_words_that_fit_it(
    materials: County, auditor_browser: TestClient
) -> None:
    found = auditor_browser.get("/audit/export.csv", params={"document": "危房 台账"})
    assert found.status_code == 200
    header, *rows = csv.reader(io.StringIO(found.content.decode("utf-8-sig"), newline=""))
    assert [row[header.index("材料编号")] for row in rows] == [materials.ledger]

    # Words that fit no document, or several, export nothing: one must be chosen first.
    for words in ("不存在的材料", "资金"):
        refused = auditor_browser.get("/audit/export.csv", params={"document": words})
        assert refused.status_code == 422, refused.text
        assert "请先选定一份材料" in refused.text


def test_only_an_auditor_exports_from_the_page(client: TestClient) -> None:
    with signed_in_browser(client, "poverty", raise_server_exceptions=False) as reader:
        refused = reader.get("/audit/export.csv")
    assert refused.status_code == 403
    assert "只有审计人员可以查看审计日志" in refused.text
