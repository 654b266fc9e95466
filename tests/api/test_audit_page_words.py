"""The auditor's access log page says a file's type in words people know (PDF 文件, Word 文档),
keeping the recorded MIME type in the cell's title; the API and the coded CSV keep the code."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, signed_in_browser
from tests.samples import docx_bytes, pdf_bytes

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
def auditor_browser(client: TestClient) -> Iterator[TestClient]:
    """A browser of its own, signed in as the auditor."""
    with signed_in_browser(client, "auditor") as browser:
        yield browser


def _detail_cells(page: str) -> list[tuple[str, str]]:
    """Each row's details cell: its title (the recorded codes) and its text."""
    cells = re.findall(r'<td data-label="详情" class="audit-details"([^>]*)>(.*?)</td>', page, re.S)
    return [
        (
            html.unescape(title.group(1))
            if (title := re.search(r'title="([^"]*)"', attrs))
            else "",
            html.unescape(re.sub(r"<[^>]+>", " ", text)),
        )
        for attrs, text in cells
    ]


def test_upload_details_name_the_file_kind_in_words(api: Api, auditor_browser: TestClient) -> None:
    for filename, content in (("台账.pdf", pdf_bytes()), ("总结.docx", docx_bytes())):
        assert api.upload("east", filename, content).status_code == 201

    page = auditor_browser.get("/audit", params={"action": "upload"})
    assert page.status_code == 200
    cells = _detail_cells(page.text)
    assert len(cells) == 2
    (docx_title, docx_text), (pdf_title, pdf_text) = cells  # newest first
    assert "文件类型: Word 文档" in docx_text
    assert "文件类型: PDF 文件" in pdf_text
    assert (docx_title, pdf_title) == (f"记录的文件类型：{DOCX}", "记录的文件类型：application/pdf")
    assert DOCX not in docx_text
    assert "application/pdf" not in pdf_text

    # The API and the coded CSV keep the recorded code; the CSV for people has the words.
    events = api.client.get(
        "/api/v1/audit/events", params={"action": "upload"}, headers=api.headers("auditor")
    ).json()["events"]
    assert sorted(event["details"]["content_type"] for event in events) == sorted(
        ["application/pdf", DOCX]
    )
    coded = api.client.get(
        "/api/v1/audit/export.csv", params={"action": "upload"}, headers=api.headers("auditor")
    )
    rows = list(csv.reader(io.StringIO(coded.text.lstrip("\ufeff"))))[1:]
    assert sorted(json.loads(row[9])["content_type"] for row in rows) == sorted(
        ["application/pdf", DOCX]
    )
    worded = api.client.get(
        "/api/v1/audit/export.csv",
        params={"action": "upload", "labels": "zh"},
        headers=api.headers("auditor"),
    )
    header, *worded_rows = csv.reader(io.StringIO(worded.text.lstrip("\ufeff")))
    details = [row[header.index("详情")] for row in worded_rows]
    kinds = [dict(pair.split(": ", 1) for pair in text.split("; "))["文件类型"] for text in details]
    assert sorted(kinds) == ["PDF 文件", "Word 文档"]
