"""The auditor's access log names documents as people know them: by title and township, with the
number kept beside it; the log is filtered by a document found by words from its title or
township (or by a row's 只看此材料), and the export for people has the title and township
columns. The API and the coded CSV keep knowing documents by number only."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.audit import CSV_COLUMNS
from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import EAST, WEST, Api, signed_in_browser
from tests.samples import text_bytes

TITLE = "2024年第三季度扶贫工作总结"


@pytest.fixture
def auditor_browser(client: TestClient) -> Iterator[TestClient]:
    """A browser of its own, signed in as the auditor."""
    with signed_in_browser(client, "auditor") as browser:
        yield browser


@dataclass(frozen=True)
class County:
    east: str  # 东镇's summary, viewed by 扶贫办
    west: str  # 西乡's summary of the same title, viewed by 统计局
    withdrawn: str  # 东镇's ledger, withdrawn after a view
    unknown: str  # a number no document has, asked for in vain


@pytest.fixture
def county(api: Api) -> County:
    ids = []
    for username, title in (("east", TITLE), ("west", TITLE), ("east", "危房改造台账")):
        response = api.upload(username, f"{title}.txt", text_bytes(f"{title}。"), title=title)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    east, west, withdrawn = ids
    for username, document_id in (("poverty", east), ("stats", west), ("poverty", withdrawn)):
        viewed = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers(username))
        assert viewed.status_code == 200, viewed.text
    gone = api.client.delete(f"/api/v1/documents/{withdrawn}", headers=api.headers("east"))
    assert gone.status_code in (200, 204), gone.text
    unknown = str(uuid.uuid4())
    missing = api.client.get(f"/api/v1/documents/{unknown}", headers=api.headers("poverty"))
    assert missing.status_code == 404
    return County(east, west, withdrawn, unknown)


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _rows(page: str) -> list[dict[str, str]]:
    """Each row of the log as its cells' text by column label, and the raw material cell."""
    rows = []
    for body in re.findall(r"<tr>\s*(<td data-label=.*?)</tr>", page, re.S):
        cells = dict(re.findall(r'<td data-label="([^"]+)"[^>]*>(.*?)</td>', body, re.S))
        row = {label: _text(cell) for label, cell in cells.items()}
        row["材料 html"] = cells.get("材料", "")
        rows.append(row)
    return rows


def _only_links(cell: str) -> list[str]:
    return [
        html.unescape(href)
        for href in re.findall(
            r'<a class="audit-document-only" href="([^"]+)">只看此材料</a>', cell
        )
    ]


def test_the_log_names_documents_by_title_and_township(
    county: County, auditor_browser: TestClient
) -> None:
    page = auditor_browser.get("/audit", params={"action": "view"})
    assert page.status_code == 200
    by_document = {}
    for row in _rows(page.text):
        number = re.search(r'title="材料编号 ([0-9a-f-]{36})"', row["材料 html"])
        by_document[number.group(1) if number else row["材料"]] = row

    east = by_document[county.east]
    assert f"{TITLE} {EAST}" in east["材料"]
    assert county.east[:8] in east["材料"]  # the number stays, its whole in the link's title
    assert f'href="/documents/{county.east}"' in east["材料 html"]
    assert f"{TITLE} {WEST}" in by_document[county.west]["材料"]
    # Withdrawn, the document keeps its title in the log, marked as withdrawn.
    assert "危房改造台账 东镇 已撤回" in by_document[county.withdrawn]["材料"]
    # A number no document has is shown whole.
    unknown = next(row for row in by_document.values() if county.unknown in row["材料"])
    assert "系统中没有这份材料的记录" in unknown["材料"]
    # Every row with a document offers to show that document's log alone, keeping the filters.
    assert _only_links(east["材料 html"]) == [f"/audit?action=view&document_id={county.east}"]


def test_only_this_document_shows_its_events_and_says_which(
    county: County, auditor_browser: TestClient
) -> None:
    page = auditor_browser.get("/audit", params={"document_id": county.east})
    rows = _rows(page.text)
    assert {row["操作"] for row in rows} == {"上传", "查看"}
    assert all(TITLE in row["材料"] and EAST in row["材料"] for row in rows)
    line = re.search(r'data-testid="chosen-document">(.*?)</p>', page.text, re.S)
    assert line is not None
    chosen = _text(line.group(1))
    assert chosen.startswith(f"只看这份材料： {TITLE} （{EAST}）")
    assert county.east in chosen
    # The chosen document rides along in the form, and the export has the same filter.
    assert f'<input type="hidden" name="document_id" value="{county.east}">' in page.text
    assert f"document_id={county.east}" in page.text.split("导出 CSV")[0].rsplit('href="', 1)[1]
    # Its rows do not offer to narrow to it again.
    assert all(not _only_links(row["材料 html"]) for row in rows)


def test_words_from_the_title_and_township_find_the_document(
    county: County, auditor_browser: TestClient, backends: Backends
) -> None:
    # The township's name and the title typed as one phrase, as people say it.
    page = auditor_browser.get("/audit", params={"document": f"{EAST}{TITLE}"})
    rows = _rows(page.text)
    assert rows
    assert {row["人员"] for row in rows} == {"east", "poverty"}
    assert all(EAST in row["材料"] for row in rows)
    assert f'<input type="hidden" name="document_id" value="{county.east}">' in page.text
    # Paging and the verify form carry the document's number, not the words.
    assert f"document_id={county.east}" in page.text
    # Words apart, in any order; a withdrawn document is found too.
    page = auditor_browser.get("/audit", params={"document": "台账 东镇 危房"})
    assert {row["操作"] for row in _rows(page.text)} >= {"上传", "查看", "撤回"}
    # The number, pasted in capitals, or the first characters the page shows.
    for typed in (county.west.upper(), county.west[:8]):
        page = auditor_browser.get("/audit", params={"document": typed})
        assert {row["人员"] for row in _rows(page.text)} == {"west", "stats"}, typed

    # The look-up is in the log: what the auditor typed and how many documents it found.
    with backends.db.session() as session:
        lookups = [
            event.details
            for event in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "audit_read")
            )
            if "q" in event.details
        ]
    assert {"q": f"{EAST}{TITLE}", "found": 1} in lookups


def test_words_fitting_several_documents_ask_which(
    county: County, auditor_browser: TestClient
) -> None:
    page = auditor_browser.get("/audit", params={"document": "扶贫 总结", "action": "view"})
    assert page.status_code == 200
    choice = re.search(r'data-testid="document-choice">(.*?)</section>', page.text, re.S)
    assert choice is not None
    assert "有 2 份材料含有“扶贫 总结”，请选择一份" in _text(choice.group(1))
    links = re.findall(r'<li><a href="([^"]+)">([^<]+)</a>（([^）]+)）', choice.group(1))
    assert [(html.unescape(href), title, township) for href, title, township in links] == [
        (f"/audit?action=view&document_id={county.west}", TITLE, WEST),
        (f"/audit?action=view&document_id={county.east}", TITLE, EAST),
    ]
    # Until one is chosen, no events are listed and nothing is exported; the words stay typed.
    assert _rows(page.text) == []
    assert "日志记录" not in page.text
    assert "导出 CSV" not in page.text
    assert 'name="document" value="扶贫 总结"' in page.text

    chosen = auditor_browser.get(html.unescape(links[0][0]))
    assert [(row["人员"], row["操作"]) for row in _rows(chosen.text)] == [("stats", "查看")]

    page = auditor_browser.get("/audit", params={"document": "不存在的材料"})
    assert "没有标题或乡镇含有“不存在的材料”的材料" in _text(page.text)
    assert _rows(page.text) == []


def _csv(api: Api, **params: str) -> list[list[str]]:
    response = api.client.get(
        "/api/v1/audit/export.csv", params=params, headers=api.headers("auditor")
    )
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def test_the_export_for_people_has_the_title_and_township(county: County, api: Api) -> None:
    header, *rows = _csv(api, labels="zh", action="view")
    assert header[5:9] == ["操作", "材料名称", "材料所属乡镇", "材料编号"]
    assert len(header) == len(CSV_COLUMNS) + 2
    named = {row[8]: (row[6], row[7]) for row in rows}
    assert named[county.east] == (TITLE, EAST)
    assert named[county.west] == (TITLE, WEST)
    assert named[county.withdrawn] == ("危房改造台账", EAST)
    assert named[county.unknown] == ("", "")  # no such document: its number alone
    assert all(len(row) == len(header) for row in rows)
    assert {row[9] for row in rows} == {"允许", "拒绝"}

    # Filtered by document, as the page's export link asks.
    header, *rows = _csv(api, labels="zh", document_id=county.east)
    assert {(row[6], row[7], row[8]) for row in rows} == {(TITLE, EAST, county.east)}

    # The coded CSV and the API are as they were: numbers, no titles.
    coded_header, *coded = _csv(api, action="view")
    assert tuple(coded_header) == CSV_COLUMNS
    assert {row[CSV_COLUMNS.index("document_id")] for row in coded} == set(named)
    assert all(TITLE not in cell for row in coded for cell in row)
    events = api.client.get(
        "/api/v1/audit/events", params={"action": "view"}, headers=api.headers("auditor")
    ).json()["events"]
    assert all("title" not in event for event in events)
