"""A department clerk in the browser: search, narrow by facets, sort, open a document, see its
preview (PDF.js on a canvas, an image), download it; and what a township and an auditor see there.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Dialog, Page, expect

from tests.conftest import PASSWORD, POVERTY
from tests.samples import docx_bytes, pdf_bytes, pdf_from_objects, png_bytes
from tests.web.conftest import Site, Visitor, bearer, screenshot, upload_as, wait_indexed

PDF_NAME = "东镇2024年低保复核情况.pdf"
PDF_TITLE = "东镇2024年低保复核情况"
PDF = pdf_bytes("Subsistence allowance review: 2024 third quarter")
PNG = png_bytes(64, 48, b"\x20\x90\x30")
DOCX_TITLE = "西乡低保工作总结"
PHOTO_TITLE = "东镇防汛现场照片"


@dataclass(frozen=True)
class Seeded:
    pdf: str
    png: str
    docx: str
    photo: str


def _upload(
    site: Site, username: str, filename: str, content: bytes, content_type: str, **fields: str
) -> str:
    document_id: str = upload_as(site, username, filename, content, content_type, **fields)["id"]
    return document_id


def _photo_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "HUAWEI", "P40 Pro"
    exif.get_ifd(0x8769)[0x9003] = "2024:03:15 10:20:30"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (34.0, 45.0, 30.0)
    gps[3], gps[4] = "E", (113.0, 37.0, 12.5)
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "green").save(out, format="JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(site: Site) -> Seeded:
    """The materials of this module: uploaded by townships through the API, then indexed."""
    pdf = _upload(
        site,
        "east",
        PDF_NAME,
        PDF,
        "application/pdf",
        title=PDF_TITLE,
        category="社会救助",
        period="2024-Q3",
        tags="低保,复核",
        description="全镇低保户年度复核结果",
    )
    png = _upload(
        site, "east", "村部照片.png", PNG, "image/png", title="东镇村部照片", category="照片"
    )
    east_photo = _upload(
        site,
        "east",
        "防汛现场.jpg",
        _photo_with_exif(),
        "image/jpeg",
        title=PHOTO_TITLE,
        category="照片",
        period="2024-03",
    )
    docx = _upload(
        site,
        "west",
        "西乡低保工作总结.docx",
        docx_bytes("西乡低保工作总结：全年按时发放低保金，动态管理。"),
        "application/octet-stream",
        title=DOCX_TITLE,
        category="工作总结",
        period="2023",
    )
    wait_indexed(site, "east", [pdf, png, east_photo])
    wait_indexed(site, "west", [docx])
    return Seeded(pdf=pdf, png=png, docx=docx, photo=east_photo)


def _login_to(visitor: Visitor, username: str, path: str) -> Page:
    """Sign in and go straight to ``path`` (the page a township's login would land on is not
    what these tests are about)."""
    page = visitor.go(f"/login?next={path}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("[data-testid=current-user]")
    return page


def _results(page: Page) -> Any:
    return page.locator(".results .result-title")


def _canvas_is_drawn(page: Page) -> bool:
    drawn: bool = page.locator("[data-pdf-canvas]").evaluate(
        """canvas => {
            if (canvas.width === 0 || canvas.height === 0) return false;
            const context = canvas.getContext("2d");
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 4; i < data.length; i += 4) {
                if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) {
                    return true;
                }
            }
            return false;
        }"""
    )
    return drawn


def test_reader_searches_narrows_sorts_previews_and_downloads(
    visitor: Visitor, seeded: Seeded, tmp_path: Path
) -> None:
    page = visitor.login("poverty")
    # A department clerk starts on the search page, with the newest materials already listed.
    assert page.url.endswith("/search")
    expect(page.get_by_role("heading", name="最新材料")).to_be_visible()
    expect(_results(page).first).to_have_text(DOCX_TITLE)

    page.get_by_label("检索词").fill("低保")
    page.get_by_label("检索词").press("Enter")
    expect(page.locator(".results-summary")).to_contain_text("找到 2 份与“低保”相关的材料")
    expect(page.locator(".snippet em").first).to_have_text("低保")
    facets = page.locator(".facets")
    expect(facets.get_by_role("link", name=re.compile("^东镇"))).to_contain_text("1")
    screenshot(page, "reader-search")

    # A facet narrows the results; its chip takes the filter away again.
    facets.get_by_role("link", name=re.compile("^东镇")).click()
    expect(page.locator(".results-summary")).to_contain_text("找到 1 份")
    expect(_results(page)).to_have_text([PDF_TITLE])
    chip = page.locator(".chip", has_text="东镇")
    expect(chip).to_contain_text("× 东镇")
    chip.click()
    expect(page.locator(".results-summary")).to_contain_text("找到 2 份")
    facets.get_by_role("link", name=re.compile("^2023年")).click()
    expect(_results(page)).to_have_text([DOCX_TITLE])
    page.locator(".chip", has_text="2023年").click()

    # Sorting by time puts the newest upload (the DOCX) first.
    page.get_by_role("link", name="按时间").click()
    assert "sort=date" in page.url
    expect(page.get_by_role("link", name="按时间")).to_have_attribute("aria-current", "true")
    expect(_results(page)).to_have_text([DOCX_TITLE, PDF_TITLE])
    page.get_by_role("link", name="按相关度").click()
    assert "sort=date" not in page.url
    expect(_results(page)).to_have_count(2)

    # The PDF's page: drawn by PDF.js on a canvas.
    _results(page).get_by_role("link", name=PDF_TITLE).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(PDF_TITLE)
    expect(page.locator("[data-pdf-preview]")).to_have_attribute("data-state", "rendered")
    assert _canvas_is_drawn(page)
    expect(page.locator("dl.meta")).to_contain_text("2024年第三季度")
    expect(page.locator("dl.meta")).to_contain_text("社会救助")
    screenshot(page, "reader-document")

    with page.expect_download() as started:
        page.get_by_role("link", name="下载", exact=True).click()
    download = started.value
    assert download.suggested_filename == PDF_NAME
    saved = tmp_path / "saved.pdf"
    download.save_as(saved)
    assert saved.read_bytes() == PDF

    # An image is shown by the browser itself.
    visitor.go(f"/documents/{seeded.png}")
    image = page.get_by_role("img", name="东镇村部照片")
    expect(image).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    assert image.evaluate("img => img.naturalWidth") == 64
    visitor.problems.assert_none()


def _two_page_pdf() -> bytes:
    def page(contents: int) -> bytes:
        return (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
            + str(contents).encode()
            + b" 0 R /Resources << /Font << /F1 7 0 R >> >> >>"
        )

    def stream(text: str) -> bytes:
        body = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
        return b"<< /Length " + str(len(body)).encode() + b" >>\nstream\n" + body + b"\nendstream"

    return pdf_from_objects(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>",
            page(4),
            stream("Page one"),
            page(6),
            stream("Page two"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def test_pdf_preview_turns_pages(visitor: Visitor, site: Site) -> None:
    document_id = _upload(site, "east", "两页.pdf", _two_page_pdf(), "application/pdf")
    page = _login_to(visitor, "poverty", f"/documents/{document_id}")
    preview = page.locator("[data-pdf-preview]")
    expect(preview).to_have_attribute("data-state", "rendered")
    expect(preview.locator("[data-pdf-status]")).to_have_text("第 1 / 2 页")
    expect(preview.get_by_role("button", name="上一页")).to_be_disabled()
    preview.get_by_role("button", name="下一页").click()
    expect(preview).to_have_attribute("data-page", "2")
    expect(preview.locator("[data-pdf-status]")).to_have_text("第 2 / 2 页")
    expect(preview.get_by_role("button", name="下一页")).to_be_disabled()
    assert _canvas_is_drawn(page)
    preview.get_by_role("button", name="上一页").click()
    expect(preview).to_have_attribute("data-page", "1")
    visitor.problems.assert_none()


def test_docx_is_offered_for_download_only(visitor: Visitor, seeded: Seeded) -> None:
    page = visitor.login("stats")
    visitor.go(f"/documents/{seeded.docx}")
    expect(page.get_by_role("heading", level=1)).to_have_text(DOCX_TITLE)
    expect(page.locator(".document-preview")).to_contain_text("不能在页面中预览")
    expect(page.locator("canvas, img[data-preview-image]")).to_have_count(0)
    expect(page.get_by_role("link", name="下载", exact=True)).to_be_visible()
    # Not the reader's township: no receipt, no withdraw, no usage figures.
    expect(page.get_by_role("button", name="撤回")).to_have_count(0)
    expect(page.get_by_role("link", name="回执")).to_have_count(0)
    expect(page.get_by_role("heading", name="使用情况")).to_have_count(0)
    visitor.problems.assert_none()


def test_photo_shows_when_where_and_which_camera(visitor: Visitor, seeded: Seeded) -> None:
    page = visitor.login("poverty")
    visitor.go(f"/documents/{seeded.photo}")
    section = page.locator("section", has=page.get_by_role("heading", name="照片信息"))
    expect(section).to_contain_text("拍摄时间")
    expect(section).to_contain_text("2024-03-15 10:20:30")
    expect(section).to_contain_text("北纬 34.758333°，东经 113.620139°")
    expect(section).to_contain_text("纬度 34.758333，经度 113.620139")
    expect(section).to_contain_text("HUAWEI P40 Pro")
    visitor.problems.assert_none()


def test_no_results_and_too_long_queries_are_said_in_words(
    visitor: Visitor, seeded: Seeded
) -> None:
    page = visitor.login("poverty")
    visitor.go("/search?q=根本不存在的材料名称&township=东镇")
    status = page.locator(".no-results")
    expect(status).to_contain_text("没有找到与“根本不存在的材料名称”相符的材料")
    expect(status).to_contain_text("减少检索词")
    status.get_by_role("link", name="清除全部筛选").click()
    assert "township" not in page.url

    response = page.goto(visitor.site.url + "/search?q=" + "低保" * 101)
    assert response is not None
    assert response.status == 422
    expect(page.get_by_role("alert")).to_contain_text("不能超过 200 个字符")
    expect(page.get_by_label("检索词")).to_be_visible()
    visitor.problems.allow((422, "GET", "/search"))
    visitor.problems.assert_none()


def test_markup_in_titles_and_file_names_is_shown_as_text(visitor: Visitor, site: Site) -> None:
    title = "<script>alert(1)</script>"
    filename = "<img src=x onerror=alert(1)>.pdf"
    document_id = _upload(
        site, "east", filename, pdf_bytes("alert notice"), "application/pdf", title=title
    )
    wait_indexed(site, "east", [document_id])
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page = visitor.login("poverty")
    page.on("dialog", record)
    page.get_by_label("检索词").fill("alert")
    page.get_by_label("检索词").press("Enter")
    expect(_results(page).get_by_role("link", name=title)).to_be_visible()
    expect(page.locator(".result").filter(has_text=title).locator(".snippet em")).not_to_have_count(
        0
    )
    _results(page).get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator("dl.meta")).to_contain_text(filename)
    expect(page.locator("[data-pdf-preview]")).to_have_attribute("data-state", "rendered")
    assert page.locator("script:not([src])").count() == 0
    assert dialogs == []
    visitor.problems.assert_none()


def test_own_township_sees_usage_receipt_and_withdraw(visitor: Visitor, seeded: Seeded) -> None:
    reader = bearer(visitor.site, "poverty")
    base = f"{visitor.site.url}/api/v1/documents/{seeded.pdf}"
    assert httpx.get(base, headers=reader).status_code == 200
    assert httpx.get(f"{base}/download", headers=reader).status_code == 200

    page = _login_to(visitor, "east", f"/documents/{seeded.pdf}")
    expect(page.get_by_role("heading", level=1)).to_have_text(PDF_TITLE)
    usage = page.locator("section", has=page.get_by_role("heading", name="使用情况"))
    row = usage.get_by_role("row").filter(has_text=POVERTY)
    expect(row).to_be_visible()
    expect(row.locator("td[data-label=下载次数]")).not_to_have_text("0")
    expect(page.get_by_role("link", name="回执")).to_have_attribute(
        "href", f"/documents/{seeded.pdf}/receipt"
    )
    form = page.locator(f"form[action='/documents/{seeded.pdf}/withdraw']")
    expect(form).to_have_attribute(
        "data-confirm", "确定撤回这份材料吗？撤回后各部门将无法检索和下载。"
    )
    expect(form.get_by_role("button", name="撤回")).to_be_visible()
    visitor.problems.assert_none()


def test_auditor_sees_usage_but_downloads_nothing_without_a_grant(
    visitor: Visitor, seeded: Seeded
) -> None:
    page = _login_to(visitor, "auditor", f"/documents/{seeded.pdf}")
    expect(page.get_by_role("heading", level=1)).to_have_text(PDF_TITLE)
    expect(page.get_by_role("heading", name="使用情况")).to_be_visible()
    expect(page.get_by_role("link", name="下载", exact=True)).to_have_count(0)
    expect(page.locator("canvas")).to_have_count(0)
    expect(page.locator(".document-head")).to_contain_text("请由管理员授予下载权限")
    expect(page.get_by_role("button", name="撤回")).to_have_count(0)
    visitor.problems.assert_none()


def test_search_and_pdf_preview_fit_a_phone(phone: Visitor, seeded: Seeded) -> None:
    page = phone.login("poverty")
    page.get_by_label("检索词").fill("低保")
    page.get_by_label("检索词").press("Enter")
    expect(_results(page)).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.go(f"/documents/{seeded.pdf}")
    expect(page.locator("[data-pdf-preview]")).to_have_attribute("data-state", "rendered")
    assert _canvas_is_drawn(page)
    box = page.locator("[data-pdf-canvas]").bounding_box()
    assert box is not None
    assert 0 < box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.problems.assert_none()


@pytest.fixture
def web_session(site: Site) -> Iterator[Any]:
    """Signing in over plain HTTP, for the form posts a browser would send."""
    clients: list[httpx.Client] = []

    def sign_in(username: str) -> httpx.Client:
        client = httpx.Client(base_url=site.url)
        clients.append(client)
        login_page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text)
        assert token is not None
        signed_in = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert signed_in.status_code == 303
        return client

    yield sign_in
    for client in clients:
        client.close()


def _csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_withdraw_form_needs_the_token_and_the_own_township(site: Site, web_session: Any) -> None:
    document_id = _upload(site, "east", "待撤回.pdf", pdf_bytes("to withdraw"), "application/pdf")
    action = f"/documents/{document_id}/withdraw"

    reader = web_session("poverty")
    refused = reader.post(action, data={"csrf_token": _csrf_of(reader.get("/search"))})
    assert refused.status_code == 303
    assert refused.headers["location"] == f"/documents/{document_id}"
    assert "只有本乡镇或管理员可以撤回" in reader.get(refused.headers["location"]).text

    township = web_session("east")
    assert township.post(action, data={}).status_code == 403
    page = township.get(f"/documents/{document_id}")
    withdrawn = township.post(action, data={"csrf_token": _csrf_of(page)})
    assert withdrawn.status_code == 303
    assert withdrawn.headers["location"] == "/materials"
    after = township.get(f"/documents/{document_id}")
    assert "此材料已于" in after.text
    assert 'action="' + action not in after.text
    # Gone for the departments.
    assert reader.get(f"/documents/{document_id}").status_code == 404


def test_admin_search_finds_nothing(site: Site, web_session: Any, seeded: Seeded) -> None:
    admin = web_session("admin")
    page = admin.get("/search?q=低保")
    assert page.status_code == 200
    assert "没有找到与“低保”相符的材料" in page.text
