"""The auditor's access log in the browser: filters, paging, CSV export, and the verification
that names the first tampered record (more on checkpoints and receipts in test_audit_proof.py)."""

from __future__ import annotations

import base64
import csv
import io
import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from api.web.routes.audit import ACTION_LABELS
from services.audit import AuditAction
from services.audit_sequencer import AuditSequencer
from services.audit_verify import CHECK_NAMES
from services.audit_words import details_in_words
from tests.conftest import PASSWORD
from tests.samples import text_bytes
from tests.web.conftest import Site, Visitor, screenshot

VIEWS = 55  # more than one page of 50
ODD_USERNAME = "<b>x</b>\n9999,forged"


def _headers(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def document_id(site: Site) -> str:
    """An uploader's document, viewed many times and downloaded once by a reader (via the API)."""
    with httpx.Client(base_url=site.url) as client:
        upload = client.post(
            "/api/v1/documents",
            headers=_headers(client, "east"),
            files={"file": ("扶贫台账.txt", text_bytes("东镇扶贫台账。"), "text/plain")},
            data={"title": "扶贫台账"},
        )
        assert upload.status_code == 201, upload.text
        uploaded: str = upload.json()["id"]
        reader = _headers(client, "poverty")
        for _ in range(VIEWS):
            assert client.get(f"/api/v1/documents/{uploaded}", headers=reader).status_code == 200
        download = client.get(f"/api/v1/documents/{uploaded}/download", headers=reader)
        assert download.status_code == 200
        # A failed login records the name exactly as typed, markup and line break included.
        refused = client.post(
            "/api/v1/auth/token", data={"username": ODD_USERNAME, "password": "wrong-password"}
        )
        assert refused.status_code == 401
    return uploaded


def test_every_action_has_a_chinese_label() -> None:
    assert [action for action in AuditAction if action.value not in ACTION_LABELS] == []


def _cells(page: Page, label: str) -> list[str]:
    return page.locator(f"table.audit-events td[data-label='{label}']").all_inner_texts()


def test_auditor_filters_by_person_and_action_and_pages(visitor: Visitor, document_id: str) -> None:
    page = visitor.login("auditor")
    assert page.url == visitor.site.url + "/audit"
    expect(page.get_by_role("heading", level=1)).to_have_text("访问日志")

    page.get_by_label("人员（用户名）").fill("poverty")
    page.get_by_role("button", name="筛选").click()
    # The reader's login, every view and the download: newest first, 50 a page.
    expect(page.locator(".pager-status")).to_have_text(f"第 1 / 2 页，共 {VIEWS + 2} 条")
    assert _cells(page, "人员") == ["poverty"] * 50
    assert set(_cells(page, "单位")) == {"扶贫办"}
    assert set(_cells(page, "角色")) == {"部门工作人员"}
    assert _cells(page, "操作")[:2] == ["下载", "查看"]
    assert set(_cells(page, "结果")) == {"允许"}

    page.get_by_role("link", name="下一页").click()
    expect(page.locator(".pager-status")).to_have_text(f"第 2 / 2 页，共 {VIEWS + 2} 条")
    assert "actor=poverty" in page.url
    assert "page=2" in page.url
    assert _cells(page, "操作")[-1] == "登录"
    # A login records no details: the cell is empty, not "{}".
    assert _cells(page, "详情")[-1] == ""
    assert len(_cells(page, "序号")) == VIEWS + 2 - 50

    page.get_by_label("操作").select_option(label="下载")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("table.audit-events tbody tr")).to_have_count(1)
    assert _cells(page, "操作") == ["下载"]
    link = page.locator("table.audit-events td[data-label='材料'] a[href^='/documents/']")
    expect(link).to_have_attribute("href", f"/documents/{document_id}")
    # The material by its title and township; its number stays there for an auditor to quote.
    expect(link).to_have_text("扶贫台账")
    expect(link).to_have_attribute("title", f"材料编号 {document_id}")
    expect(page.locator(".audit-document-township")).to_have_text("东镇")
    expect(page.locator(".audit-document-id")).to_have_text(document_id[:8] + "…")
    assert re.fullmatch(r"SHA-256: [0-9a-f]{64}", _cells(page, "详情")[0])
    expect(page.get_by_label("人员（用户名）")).to_have_value("poverty")

    # Every event about that material: from the row, or by words from its title and township.
    page.get_by_label("操作").select_option(label="全部操作")
    page.get_by_role("button", name="筛选").click()
    page.get_by_role("link", name="只看此材料").first.click()
    chosen = page.get_by_test_id("chosen-document")
    expect(chosen).to_contain_text("只看这份材料：")
    expect(chosen).to_contain_text("扶贫台账（东镇）")
    expect(page.locator(".pager-status")).to_have_text(f"第 1 / 2 页，共 {VIEWS + 1} 条")
    page.get_by_role("link", name="不限材料").click()
    expect(chosen).to_have_count(0)
    page.get_by_label("材料（标题、乡镇或编号）").fill("东镇 扶贫台账")
    page.get_by_role("button", name="筛选").click()
    expect(chosen).to_contain_text("扶贫台账（东镇）")
    assert set(_cells(page, "人员")) == {"poverty"}
    page.get_by_role("link", name="清除筛选").click()

    # By organisation, and a name typed with markup stays text.
    page.goto(visitor.site.url + "/audit?org=" + "东镇" + "&action=upload")
    assert _cells(page, "人员") == ["east"]
    page.get_by_role("link", name="清除筛选").click()
    page.get_by_label("人员（用户名）").fill(ODD_USERNAME.replace("\n", ""))
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_text("没有符合条件的记录。")).to_be_visible()
    page.goto(visitor.site.url + "/audit?action=login&outcome=denied")
    expect(page.locator("td.audit-actor")).to_have_text(ODD_USERNAME)
    assert page.locator("table.audit-events b").count() == 0
    visitor.problems.assert_none()


def test_export_gives_the_filtered_events_as_csv(visitor: Visitor, document_id: str) -> None:
    page = visitor.login("auditor")
    page.get_by_label("人员（用户名）").fill("poverty")
    page.get_by_label("操作").select_option(label="下载")
    page.get_by_role("button", name="筛选").click()
    with page.expect_download() as info:
        page.get_by_role("link", name="导出 CSV").click()
    body = info.value.path().read_bytes()
    assert body.startswith("\ufeff".encode())
    records = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    # Written for the auditor: Chinese headings and names, Beijing time.
    assert records[0][:3] == ["序号", "时间（北京时间）", "人员"]
    assert len(records) == 2
    assert records[1][2] == "poverty"
    # The material by its title and township, then its number.
    assert records[0][6:9] == ["材料名称", "材料所属乡镇", "材料编号"]
    assert records[1][4:10] == ["部门工作人员", "下载", "扶贫台账", "东镇", document_id, "允许"]
    assert re.fullmatch(r"SHA-256: [0-9a-f]{64}", records[1][11])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", records[1][1])
    visitor.problems.assert_none()


def test_admin_cannot_read_the_log(visitor: Visitor) -> None:
    page = visitor.login("admin")
    response = page.goto(visitor.site.url + "/audit")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("无权访问")
    assert page.locator("table.audit-events").count() == 0
    visitor.problems.allow((403, "GET", "/audit"))
    visitor.problems.assert_none()


def test_log_reads_on_a_phone(phone: Visitor, document_id: str) -> None:
    page = phone.login("auditor")
    expect(page.locator("table.audit-events tbody tr").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.problems.assert_none()


def test_verify_says_intact_then_names_the_tampered_record(
    visitor: Visitor, site: Site, document_id: str
) -> None:
    # No sequencer runs beside the test site: number and sign everything logged so far.
    AuditSequencer(site.backends.db, site.backends.settings, site.backends.blobs).drain()
    page = visitor.login("auditor")
    page.get_by_role("button", name="验证日志完整性").click()
    sentence = page.get_by_test_id("verify-sentence")
    expect(sentence).to_have_text(re.compile(r"^日志完整，未被改动：已核对 \d+ 条记录"))
    page.get_by_text("技术细节", exact=True).click()
    head = page.get_by_test_id("verify-head")
    expect(head).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    # The same root as checkpoints write it, to compare with one by eye.
    as_base64 = base64.b64encode(bytes.fromhex(head.inner_text())).decode()
    expect(page.get_by_test_id("verify-head-base64")).to_have_text(as_base64)
    # The verification itself is the newest event of the log shown under the sentence.
    assert _cells(page, "操作")[:2] == ["审计查阅", "审计校验"]
    screenshot(page, "auditor-log")

    page.get_by_label("人员（用户名）").fill("poverty")
    page.get_by_label("操作").select_option(label="下载")
    page.get_by_role("button", name="筛选").click()
    download_seq = int(_cells(page, "序号")[0])
    with site.backends.db.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        connection.execute(
            text(
                "UPDATE audit_events SET details = :details"
                " WHERE id = (SELECT event_id FROM audit_leaves WHERE seq = :seq)"
            ),
            {"details": '{"reason": "nothing to see"}', "seq": download_seq},
        )
    page.get_by_role("button", name="验证日志完整性").click()
    expect(sentence).to_have_text(
        f"日志未通过核对：从序号 {download_seq} 的记录起，与签名检查点不符。"
    )
    expect(page.get_by_test_id("verify-check")).to_have_text(CHECK_NAMES["leaf_mismatch"])
    expect(page.locator(".verify-result")).to_have_class(re.compile("verify-bad"))
    # The filters stay as they were; the row shows what is stored now.
    assert _cells(page, "序号") == [str(download_seq)]
    assert _cells(page, "详情") == ["原因: nothing to see"]
    visitor.problems.assert_none()


def test_details_are_said_in_words() -> None:
    assert details_in_words({"reason": "bad_password"}) == "原因: 密码错误"
    assert details_in_words({"ok": True, "events": 3, "first_bad_seq": None}) == (
        "完整: 是; 记录数: 3; 首条异常记录: 无"
    )
    # Codes of requests, notifications, the catalog and the log's own filters are named.
    assert details_in_words(
        {"reason": "document_not_shared", "request_id": 3, "township": "东镇"}
    ) == ("原因: 材料未向提出需求的部门公开; 需求编号: 3; 乡镇: 东镇")
    assert details_in_words({"kind": "request_sent", "to": "east", "org": "东镇"}) == (
        "类型: 新需求; 发给: east; 单位: 东镇"
    )
    assert details_in_words({"status": "sent", "cycle": "quarterly", "sharing": "conditional"}) == (
        "状态: 已发送乡镇; 报送周期: 每季度; 共享属性: 有条件共享"
    )
    assert details_in_words({"period": "2026-Q3", "matches": []}) == (
        "所属期间: 2026年第三季度; 已有材料: 无"
    )
    assert details_in_words({"filters": {"action": "download", "actor": "poverty"}, "page": 1}) == (
        "筛选条件: 人员=poverty，操作=下载; 页码: 1"
    )
    assert details_in_words({"filters": {}}) == "筛选条件: 无"
    assert details_in_words({"size": 2048, "filename": "台账.pdf"}) == (
        "文件名: 台账.pdf; 大小（字节）: 2048"
    )
    # A file's type in words people know; a type without a name stays as recorded.
    assert details_in_words({"content_type": "application/pdf"}) == "文件类型: PDF 文件"
    assert details_in_words({"content_type": "image/jpeg", "reason": "preview_unsupported"}) == (
        "原因: 该类型不能预览; 文件类型: 图片（JPEG）"
    )
    assert details_in_words({"content_type": "application/epub+zip"}) == (
        "文件类型: application/epub+zip"
    )
    # What has no name yet is shown as recorded; nothing recorded shows nothing.
    assert details_in_words({"reason": "something_new", "extra": [1]}) == (
        "原因: something_new; extra: 1"
    )
    assert details_in_words({}) == ""
