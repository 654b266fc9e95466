"""The township clerk's pages in the browser: upload with progress, the materials list, receipts.

Tests share one site (module scope) and run in file order: the first uploads east's three files.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    Dialog,
    FilePayload,
    Page,
    Request,
    Route,
    expect,
)

from services import orgs
from services.models import Document
from tests.conftest import make_settings
from tests.samples import docx_bytes, pdf_bytes, png_bytes, text_bytes
from tests.web.conftest import Site, Visitor, open_visitor, screenshot, serve_site, upload_as

THREE = {
    "2026年第三季度工作总结.pdf": pdf_bytes("Third quarter work summary"),
    "低保复核情况.docx": docx_bytes("东镇低保复核情况说明"),
    "防汛现场照片.png": png_bytes(8, 8),
}
TITLES = [name.rsplit(".", 1)[0] for name in THREE]
UPLOADS = "/api/v1/documents"


@pytest.fixture(scope="module")
def three_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("three")
    paths = []
    for name, content in THREE.items():
        path = folder / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


class Answers:
    """The requests a page made, and the bodies of its uploads."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []
        page.on("request", self._request)

    def _request(self, request: Request) -> None:
        self.requests.append((request.method, request.url))
        if request.method == "POST" and request.url.endswith(UPLOADS):
            self.bodies.append(request.post_data_buffer or b"")

    def posts(self) -> list[str]:
        return [url for method, url in self.requests if method == "POST" and UPLOADS in url]


LOOKUP_MISS = (404, "GET", f"{UPLOADS}/lookup")


def upload_page(visitor: Visitor, username: str = "east") -> Page:
    page = visitor.login(username)
    page.get_by_role("link", name="上传材料").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("上传材料")
    page.wait_for_load_state()  # upload.js (deferred) is running
    return page


def wait_until_indexed(site: Site, township: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with site.backends.db.session() as session:
            statuses = [
                d.index_status
                for d in session.query(Document).all()
                if d.township.name == township and d.withdrawn_at is None
            ]
        if statuses and "pending" not in statuses:
            return
        time.sleep(0.1)
    pytest.fail("the index worker did not finish")


# ---- Who may upload ----------------------------------------------------------------------


@pytest.mark.parametrize("username", ["poverty", "auditor", "admin"])
def test_only_township_staff_get_the_upload_and_materials_pages(
    visitor: Visitor, username: str
) -> None:
    page = visitor.login(username)
    for path in ("/upload", "/materials"):
        response = page.goto(visitor.site.url + path)
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text("无权访问")
        expect(page.locator("input[type=file]")).to_have_count(0)
    visitor.problems.allow((403, "GET", "/upload"), (403, "GET", "/materials"))
    visitor.problems.assert_none()


# ---- Uploading -----------------------------------------------------------------------------


def test_uploader_uploads_three_files_at_once_then_a_resent_one_is_not_sent(
    visitor: Visitor, three_files: list[Path]
) -> None:
    page = visitor.login("east")
    # The start page after login is the township's (still empty) list.
    expect(page.get_by_role("heading", level=1)).to_have_text("本乡镇材料")
    expect(page.get_by_text("还没有上传材料")).to_be_visible()
    page.get_by_role("link", name="上传材料").last.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("上传材料")
    page.wait_for_load_state()
    answers = Answers(page)

    page.get_by_label("类别").fill("工作总结")
    page.get_by_label("所属期间").fill("2026年第三季度")
    page.get_by_label("标签").fill("季度、东镇")
    file_input = page.get_by_label("点击选择文件")
    expect(file_input).to_have_attribute("type", "file")
    file_input.set_input_files([str(path) for path in three_files])
    items = page.locator(".upload-item")
    expect(items).to_have_count(3)
    expect(items.locator(".upload-name")).to_have_text(list(THREE))
    expect(items.locator("progress")).to_have_count(3)
    expect(items.locator(".upload-status")).to_have_text(
        ["等待上传：填好材料信息后点击“开始上传”"] * 3
    )

    page.get_by_role("button", name="开始上传").click()
    expect(items.locator(".upload-status")).to_have_text(["上传成功"] * 3, timeout=30_000)
    for bar in items.locator("progress").all():
        assert bar.evaluate("bar => bar.value === bar.max")
    expect(items.get_by_role("link", name="报送回执")).to_have_count(3)
    assert len(answers.posts()) == 3
    # The digest first, so that the server can stream the file into storage; the file last.
    for body in answers.bodies:
        names = re.findall(rb'name="([a-z0-9]+)"', body)
        assert names == [
            b"sha256",
            b"title",
            b"category",
            b"period",
            b"tags",
            b"description",
            b"visibility",
            b"file",
        ]
    screenshot(page, "uploader-upload")

    # Choosing the PDF again: hashed, looked up, never sent.
    answers.requests.clear()
    file_input.set_input_files(str(three_files[0]))
    page.get_by_role("button", name="开始上传").click()
    resent = items.nth(3)
    expect(resent.locator(".upload-status")).to_have_text("已提交过，无需重复上传")
    expect(resent.locator("progress")).to_be_hidden()  # nothing went up: no full bar
    link = resent.get_by_role("link", name="查看已提交的材料")
    first_link = items.nth(0).get_by_role("link", name="查看材料")
    expect(link).to_have_attribute("href", first_link.get_attribute("href") or "")
    assert answers.posts() == []
    assert any("/lookup?sha256=" in url for _, url in answers.requests)

    visitor.problems.allow(LOOKUP_MISS)
    visitor.problems.assert_none()

    with visitor.site.backends.db.session() as session:
        stored = {d.filename: d for d in session.query(Document).all()}
    for path in three_files:
        document = stored[path.name]
        assert document.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert document.category == "工作总结"
        assert document.period == "2026-Q3"
        assert document.tags == ["季度", "东镇"]
        assert document.title == path.stem


def test_materials_list_shows_sorts_and_filters(visitor: Visitor, three_files: list[Path]) -> None:
    site = visitor.site
    for path in three_files:  # already there when the test above ran; a duplicate changes nothing
        upload_as(site, "east", path.name, path.read_bytes(), period="2026-Q3", category="工作总结")
    wait_until_indexed(site, "东镇")
    page = visitor.login("east")
    assert page.url.endswith("/materials")
    table = page.locator("table.materials-table")
    titles = table.locator("tbody tr td:first-child")
    # Newest first: uploaded one after another in the order chosen.
    expect(titles).to_have_text(TITLES[::-1])
    expect(table.locator("th[aria-sort]")).to_have_text(re.compile("上传时间"))
    expect(table.locator("tbody tr").first.locator("td").nth(2)).to_have_text("2026年第三季度")
    screenshot(page, "uploader-materials")

    table.get_by_role("link", name=re.compile("^标题")).click()
    expect(titles).to_have_text(sorted(TITLES))
    expect(table.locator("th[aria-sort=ascending]")).to_have_text(re.compile("标题"))
    assert "sort=title" in page.url

    # Filter by status: what the worker found out, as the badges say.
    with site.backends.db.session() as session:
        statuses = {d.title: d.index_status for d in session.query(Document).all()}
    for status, label in (("indexed", "可检索"), ("failed", "文字提取失败")):
        page.get_by_label("检索状态").select_option(status)
        page.get_by_role("button", name="筛选").click()
        expected = sorted(title for title in TITLES if statuses[title] == status)
        if expected:
            expect(titles).to_have_text(expected)  # still sorted by title
            expect(table.locator(".badge")).to_have_text([label] * len(expected))
        else:
            expect(page.get_by_text("没有符合筛选条件的材料")).to_be_visible()
    page.get_by_label("检索状态").select_option("pending")
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_text("没有符合筛选条件的材料")).to_be_visible()

    # The period filter takes the ways people write it, and says so when it cannot.
    page.get_by_role("link", name="清除筛选").first.click()
    page.get_by_label("期间").fill("2026年")
    page.get_by_role("button", name="筛选").click()
    expect(titles).to_have_count(3)
    page.get_by_label("期间").fill("2026年13月")
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_role("alert")).to_contain_text("期间")
    page.goto(site.url + "/materials?page=9")
    expect(page.get_by_text("这一页没有材料")).to_be_visible()
    visitor.problems.assert_none()


def test_receipt_page_shows_the_digest_and_a_qr_code_and_prints(
    visitor: Visitor, three_files: list[Path]
) -> None:
    pdf = three_files[0]
    created = upload_as(visitor.site, "east", pdf.name, pdf.read_bytes())
    page = visitor.login("east")
    page.goto(f"{visitor.site.url}/documents/{created['id']}/receipt")
    expect(page.get_by_role("heading", level=1)).to_have_text("报送回执")
    receipt = page.locator(".receipt")
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    expect(page.get_by_test_id("receipt-sha256")).to_have_text(digest)
    expect(receipt).to_contain_text("东镇")
    expect(receipt).to_contain_text(pdf.name)
    expect(receipt).to_contain_text("（北京时间）")
    qr = receipt.locator(".receipt-qr svg")
    expect(qr).to_have_count(1)
    expect(qr).to_have_attribute("role", "img")
    assert qr.locator("path").count() >= 1

    page.evaluate("window.print = () => { window.__printed = true; }")
    page.get_by_role("button", name="打印").click()
    assert page.evaluate("window.__printed") is True
    page.emulate_media(media="print")
    expect(page.locator("nav.mainnav")).to_be_hidden()
    expect(page.get_by_role("button", name="打印")).to_be_hidden()
    expect(page.get_by_test_id("receipt-sha256")).to_be_visible()
    page.emulate_media(media="screen")

    # Another township's clerk learns nothing about it.
    page = visitor.login("west")
    response = page.goto(f"{visitor.site.url}/documents/{created['id']}/receipt")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
    visitor.problems.allow((404, "GET", f"/documents/{created['id']}/receipt"))
    visitor.problems.assert_none()


def test_a_pdf_that_is_text_is_refused_as_a_type_mismatch(visitor: Visitor, tmp_path: Path) -> None:
    page = upload_page(visitor)
    fake = write(tmp_path, "伪装的报告.pdf", text_bytes("这其实是一个文本文件，不是 PDF。"))
    page.get_by_label("点击选择文件").set_input_files(str(fake))
    page.get_by_role("button", name="开始上传").click()
    status = page.locator(".upload-item .upload-status")
    expect(status).to_contain_text("文件内容与扩展名不符")
    expect(page.locator(".upload-item")).to_have_attribute("data-state", "error")
    visitor.problems.allow(LOOKUP_MISS, (415, "POST", UPLOADS))
    visitor.problems.assert_none()


def test_a_period_the_server_cannot_read_names_the_field_and_waits_for_a_correction(
    visitor: Visitor, tmp_path: Path
) -> None:
    page = upload_page(visitor)
    page.get_by_label("所属期间").fill("去年秋天")
    page.get_by_label("点击选择文件").set_input_files(
        str(write(tmp_path, "秋季报告.txt", text_bytes("秋季报告 " + os.urandom(8).hex())))
    )
    page.get_by_role("button", name="开始上传").click()
    status = page.locator(".upload-item .upload-status")
    expect(status).to_contain_text("所属期间：期间格式应为")
    expect(status).to_contain_text("请改正后再点击“开始上传”")
    # The file waits: once the period is corrected the same row goes up, with the new value.
    expect(page.locator(".upload-item")).to_have_count(1)
    page.get_by_label("所属期间").fill("2026年")
    page.get_by_role("button", name="开始上传").click()
    expect(status).to_have_text("上传成功")
    with visitor.site.backends.db.session() as session:
        assert session.query(Document).filter_by(filename="秋季报告.txt").one().period == "2026"
    visitor.problems.allow(LOOKUP_MISS, (422, "POST", UPLOADS))
    visitor.problems.assert_none()


def test_restricted_sharing_needs_a_department_and_sends_it(
    visitor: Visitor, tmp_path: Path
) -> None:
    page = upload_page(visitor)
    answers = Answers(page)
    departments = page.get_by_role("group", name="指定部门")
    expect(departments).to_be_hidden()
    page.get_by_label("指定部门", exact=True).check()
    expect(departments).to_be_visible()
    page.get_by_label("点击选择文件").set_input_files(
        str(write(tmp_path, "扶贫台账.txt", text_bytes("扶贫台账 " + os.urandom(8).hex())))
    )
    page.get_by_role("button", name="开始上传").click()
    expect(page.get_by_text("请至少选择一个部门")).to_be_visible()
    assert answers.posts() == []
    departments.get_by_label("扶贫办").check()
    page.get_by_role("button", name="开始上传").click()
    expect(page.locator(".upload-item .upload-status")).to_have_text("上传成功")
    with visitor.site.backends.db.session() as session:
        document = session.query(Document).filter_by(filename="扶贫台账.txt").one()
        assert document.visibility == "restricted"
        assert [org.name for org in document.departments] == ["扶贫办"]
    visitor.problems.allow(LOOKUP_MISS)
    visitor.problems.assert_none()


def test_a_broken_connection_offers_a_retry(visitor: Visitor, tmp_path: Path) -> None:
    page = upload_page(visitor)
    cut = {"done": False}

    def cut_once(route: Route) -> None:
        if route.request.method == "POST" and not cut["done"]:
            cut["done"] = True
            route.abort("aborted")
        else:
            route.fallback()

    page.route(f"{visitor.site.url}{UPLOADS}", cut_once)
    page.get_by_label("点击选择文件").set_input_files(
        str(write(tmp_path, "断线重传.txt", text_bytes("断线重传 " + os.urandom(8).hex())))
    )
    page.get_by_role("button", name="开始上传").click()
    status = page.locator(".upload-item .upload-status")
    expect(status).to_have_text("网络中断，请重试")
    page.get_by_role("button", name="重试").click()
    expect(status).to_have_text("上传成功")
    visitor.problems.allow(LOOKUP_MISS)
    visitor.problems.assert_none()


def test_progress_moves_while_a_large_file_uploads(visitor: Visitor) -> None:
    page = upload_page(visitor)
    line = "入户走访记录，低保复核，防汛值班。\n".encode()
    content = line * (8_000_000 // len(line)) + os.urandom(16).hex().encode()
    # On loopback 8 MB leave in one go; Chromium's network emulation makes the line slow
    # (4 MB/s up), as a township's is.
    devtools = visitor.context.new_cdp_session(page)
    devtools.send("Network.enable")
    devtools.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 4e6},
    )
    page.evaluate(
        """() => {
            window.__seen = [];
            const note = (bar) => window.__seen.push([bar.dataset.phase, bar.value, bar.max]);
            const watched = {subtree: true, attributes: true, attributeFilter: ["value"]};
            new MutationObserver((changes) => changes.forEach((c) => note(c.target)))
                .observe(document.getElementById("upload-list"), watched);
            window.__timer = setInterval(
                () => document.querySelectorAll(".upload-progress").forEach(note), 20);
        }"""
    )
    page.get_by_label("点击选择文件").set_input_files(
        files=FilePayload(name="走访记录.txt", mimeType="text/plain", buffer=content)
    )
    page.get_by_role("button", name="开始上传").click()
    status = page.locator(".upload-item .upload-status")
    expect(status).to_have_text("正在上传…")
    # The page stays usable while the file is on its way, and asks before it is left.
    page.get_by_label("所属期间").fill("2026年9月")
    dialogs: list[str] = []

    def stay(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.get_by_role("link", name="本乡镇材料", exact=True).click(no_wait_after=True)
    expect(status).to_have_text("上传成功", timeout=60_000)
    assert dialogs == ["beforeunload"]
    assert page.url.endswith("/upload")
    seen = page.evaluate("clearInterval(window.__timer), window.__seen")
    during = {value for phase, value, top in seen if phase == "upload" and 0 < value < top}
    assert len(during) >= 3, f"the bar did not move while uploading: {seen}"
    visitor.problems.allow(LOOKUP_MISS)
    visitor.problems.assert_none()


# ---- On a phone ----------------------------------------------------------------------------


def test_upload_page_fits_a_phone_and_its_file_input_works(phone: Visitor, tmp_path: Path) -> None:
    page = upload_page(phone)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_label("点击选择文件").set_input_files(
        str(
            write(
                tmp_path,
                "手机拍摄的会议记录（很长的文件名也要能换行显示）.txt",
                text_bytes("手机上传 " + os.urandom(8).hex()),
            )
        )
    )
    page.get_by_role("button", name="开始上传").click()
    expect(page.locator(".upload-item .upload-status")).to_have_text("上传成功")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(phone.site.url + "/materials")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.problems.allow(LOOKUP_MISS)
    phone.problems.assert_none()


# ---- The size limit ------------------------------------------------------------------------

SMALL_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app with a 1 MB upload limit."""
    settings = make_settings(
        tmp_path_factory.mktemp("small") / "data", max_upload_bytes=SMALL_LIMIT
    )
    with serve_site(settings) as started:
        yield started


@pytest.fixture
def small_visitor(browser: Browser, small_site: Site) -> Iterator[Visitor]:
    opened = open_visitor(browser, small_site, viewport={"width": 1366, "height": 768})
    yield opened
    opened.context.close()


def test_a_file_over_the_limit_is_refused_before_it_is_read(
    small_visitor: Visitor, tmp_path: Path
) -> None:
    page = upload_page(small_visitor)
    answers = Answers(page)
    form = page.locator("#upload-form")
    expect(form).to_have_attribute("data-max-bytes", str(SMALL_LIMIT))
    big = write(tmp_path, "大文件.txt", b"a" * (SMALL_LIMIT + 1))
    page.get_by_label("点击选择文件").set_input_files(str(big))
    expect(page.locator(".upload-item .upload-status")).to_have_text("文件过大，上限 1 MB")
    expect(page.get_by_role("button", name="开始上传")).to_be_disabled()
    assert [url for _, url in answers.requests if "/api/" in url] == []

    # Just under the limit, the form fields around it would tip the request over.
    page.locator(".upload-item").get_by_role("button", name="移除").click()
    expect(page.locator(".upload-item")).to_have_count(0)
    nearly = write(tmp_path, "将满.txt", b"b" * (SMALL_LIMIT - 10))
    page.get_by_label("点击选择文件").set_input_files(str(nearly))
    page.get_by_role("button", name="开始上传").click()
    expect(page.locator(".upload-item .upload-status")).to_have_text("文件过大，上限 1 MB")
    assert [url for _, url in answers.requests if "/api/" in url] == []
    # Well under it, the same page uploads.
    page.locator(".upload-item").get_by_role("button", name="移除").click()
    fits = write(tmp_path, "可以.txt", b"c" * (SMALL_LIMIT // 2))
    page.get_by_label("点击选择文件").set_input_files(str(fits))
    page.get_by_role("button", name="开始上传").click()
    expect(page.locator(".upload-item .upload-status").last).to_have_text("上传成功")
    small_visitor.problems.allow(LOOKUP_MISS)
    small_visitor.problems.assert_none()


def test_a_fixed_category_list_is_offered_as_a_choice(
    small_visitor: Visitor, tmp_path: Path
) -> None:
    with small_visitor.site.backends.db.session() as session:
        for name in ("会议纪要", "统计报表"):
            orgs.create_category(session, name=name)
    page = upload_page(small_visitor)
    category = page.get_by_label("类别")
    expect(category.locator("option")).to_have_text(["请选择类别", "会议纪要", "统计报表"])
    page.get_by_label("点击选择文件").set_input_files(
        str(write(tmp_path, "党委会纪要.txt", text_bytes("党委会纪要 " + os.urandom(8).hex())))
    )
    page.get_by_role("button", name="开始上传").click()
    # The browser asks for the missing choice; nothing is sent.
    assert category.evaluate("select => !select.validity.valid")
    expect(page.locator(".upload-item .upload-status")).to_contain_text("等待上传")
    category.select_option("会议纪要")
    page.get_by_role("button", name="开始上传").click()
    expect(page.locator(".upload-item .upload-status")).to_have_text("上传成功")

    page.get_by_role("link", name="本乡镇材料", exact=True).click()
    page.get_by_label("类别").select_option("统计报表")
    page.get_by_role("button", name="筛选").click()
    expect(page.get_by_text("没有符合筛选条件的材料")).to_be_visible()
    page.get_by_label("类别").select_option("会议纪要")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("table.materials-table tbody tr")).to_have_count(1)
    expect(page.locator("table.materials-table tbody td").first).to_have_text("党委会纪要")
    small_visitor.problems.allow(LOOKUP_MISS)
    small_visitor.problems.assert_none()
