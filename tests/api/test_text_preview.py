"""Text previews: a TXT or CSV material's text on its page, decoded as the indexer decodes it
(GB18030 from a Chinese Windows too), escaped, cut after the first 200 KB, for exactly those who
may download it, and audited as a preview."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient

from services.backends import Backends
from services.preview import TEXT_PREVIEW_BYTES
from tests.api.test_preview import _events as _previews
from tests.conftest import POVERTY, Api, grant_download, signed_in_browser
from tests.samples import pdf_bytes, text_bytes

MINUTES = "河口乡党委会议纪要\n时间：2026年10月8日\n议题：秋季防汛、低保复核\n"


def _page(client: TestClient, username: str, document_id: str) -> str:
    with signed_in_browser(client, username) as browser:
        response = browser.get(f"/documents/{document_id}")
        assert response.status_code == 200, response.text
        return response.text


def _upload(api: Api, filename: str, content: bytes, content_type: str, **fields: str) -> str:
    uploaded = api.upload("east", filename, content, content_type, **fields)
    assert uploaded.status_code == 201, uploaded.text
    document_id: str = uploaded.json()["id"]
    return document_id


def test_gb18030_text_is_shown_decoded_and_the_view_is_audited_as_a_preview(
    api: Api, backends: Backends, client: TestClient
) -> None:
    # Notepad on a Chinese Windows: GB18030 without any marker, CRLF line ends.
    document_id = _upload(
        api, "党委会议纪要.txt", MINUTES.replace("\n", "\r\n").encode("gb18030"), "text/plain"
    )

    page = _page(client, "poverty", document_id)

    assert 'class="text-preview-body"' in page
    for line in MINUTES.splitlines():
        assert line in page
    assert "文件较长" not in page
    [event] = _previews(backends, document_id=document_id, actor="poverty")
    assert event.outcome == "allowed"
    assert event.role == "reader"
    assert event.org == POVERTY


def test_csv_is_shown_and_markup_in_a_file_stays_text(
    api: Api, backends: Backends, client: TestClient
) -> None:
    table = '村,户数,备注\n东风村,9,"<script>alert(1)</script>"\n红旗村,12,<b>核实</b>\n'
    document_id = _upload(api, "台账.csv", table.encode(), "text/csv")

    page = _page(client, "poverty", document_id)

    assert "东风村,9" in page
    assert "<script>alert(1)</script>" not in page
    assert "<b>核实</b>" not in page
    assert html.escape("<script>alert(1)</script>", quote=False) in page
    assert html.escape("<b>核实</b>", quote=False) in page
    [event] = _previews(backends, document_id=document_id, actor="poverty")
    assert event.outcome == "allowed"


def test_a_long_file_shows_its_start_and_says_the_rest_is_in_the_download(
    api: Api, client: TestClient
) -> None:
    line = "东风村低保复核情况记录，逐户核实收入与家庭成员变化。\n"
    body = line * (TEXT_PREVIEW_BYTES // len(line.encode()) + 50)
    content = ("开头一行：第一页\n" + body + "结尾一行：最后一页\n").encode()
    assert len(content) > TEXT_PREVIEW_BYTES
    document_id = _upload(api, "复核记录.txt", content, "text/plain")

    page = _page(client, "poverty", document_id)

    assert "开头一行：第一页" in page
    assert "结尾一行：最后一页" not in page
    assert "文件较长，这里只显示开头约 200 KB" in page
    assert f'href="/documents/{document_id}/download">下载后查看' in page
    # No character broken in half where the text is cut.
    assert "\ufffd" not in page


def test_a_reader_who_may_not_download_sees_no_text_and_no_preview_is_recorded(
    api: Api, backends: Backends, client: TestClient
) -> None:
    document_id = _upload(api, "纪要.txt", text_bytes(), "text/plain")
    words = text_bytes().decode()

    page = _page(client, "auditor", document_id)

    assert words not in page
    assert "text-preview-body" not in page
    assert "无权预览此材料的内容" in page
    assert _previews(backends, document_id=document_id, actor="auditor") == []

    grant_download(api, backends, username="auditor", document_id=document_id)
    assert words in _page(client, "auditor", document_id)
    [event] = _previews(backends, document_id=document_id, actor="auditor")
    assert event.outcome == "allowed"


def test_a_private_text_is_shown_to_its_township_and_hidden_from_departments(
    api: Api, backends: Backends, client: TestClient
) -> None:
    document_id = _upload(api, "内部.txt", text_bytes(), "text/plain", visibility="private")

    assert text_bytes().decode() in _page(client, "east2", document_id)
    with signed_in_browser(client, "poverty") as browser:
        hidden = browser.get(f"/documents/{document_id}")
    assert hidden.status_code == 404
    assert text_bytes().decode() not in hidden.text
    assert _previews(backends, document_id=document_id, actor="poverty") == []


def test_a_missing_file_leaves_the_page_and_says_to_download(
    api: Api, backends: Backends, client: TestClient
) -> None:
    uploaded = api.upload("east", "纪要.txt", text_bytes(), "text/plain")
    document_id = uploaded.json()["id"]
    backends.blobs.delete(uploaded.json()["sha256"])

    page = _page(client, "poverty", document_id)

    assert "无法预览，请下载后查看" in page
    assert "text-preview-body" not in page
    [event] = _previews(backends, document_id=document_id, actor="poverty")
    assert (event.outcome, event.details["reason"]) == ("error", "blob_missing")


def test_the_inline_preview_address_still_serves_only_pdfs_and_images(
    api: Api, client: TestClient
) -> None:
    """Text is shown in the page itself, decoded; its bytes are never served inline."""
    document_id = _upload(api, "纪要.txt", text_bytes(encoding="gb18030"), "text/plain")
    refused = api.client.get(f"/documents/{document_id}/preview", headers=api.headers("poverty"))
    assert refused.status_code == 415
    assert text_bytes(encoding="gb18030") not in refused.content

    pdf_id = _upload(api, "总结.pdf", pdf_bytes(), "application/pdf")
    page = _page(client, "poverty", pdf_id)
    assert "data-pdf-preview" in page
    assert "data-pdf-zoom-in" in page
    assert "text-preview-body" not in page
