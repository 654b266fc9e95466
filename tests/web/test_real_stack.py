"""One path through the web interface on the real stack: PostgreSQL, S3 and Elasticsearch.

As in production, downloads leave the app with a 302 to a presigned object-store URL; the
browser may reach the object store and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import make_settings
from tests.real_stack import RealStack
from tests.samples import pdf_bytes
from tests.web.conftest import Site, open_visitor, serve_site

PDF_NAME = "东镇乡村振兴工作汇报.pdf"
PDF = pdf_bytes("Rural revitalisation report of the east township")
LOOKUP_MISS = (404, "GET", "/api/v1/documents/lookup")


@pytest.fixture(scope="module")
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    real: RealStack = request.getfixturevalue("real_stack")
    with real.allocate() as values:
        values["s3_presigned_downloads"] = True
        settings = make_settings(tmp_path_factory.mktemp("real-web") / "data", **values)
        with serve_site(settings, other_origins=(values["s3_endpoint"],)) as started:
            yield started


def test_upload_search_preview_and_download(browser: Browser, site: Site, tmp_path: Path) -> None:
    source = tmp_path / PDF_NAME
    source.write_bytes(PDF)
    township = open_visitor(browser, site, viewport={"width": 1366, "height": 768})
    page = township.login("east")
    township.go("/upload")
    page.get_by_label("类别").fill("工作汇报")
    page.get_by_label("所属期间").fill("2026年9月")
    page.get_by_label("点击选择文件").set_input_files(str(source))
    page.get_by_role("button", name="开始上传").click()
    expect(page.locator(".upload-item .upload-status")).to_have_text("上传成功")
    township.problems.allow(LOOKUP_MISS)
    township.problems.assert_none()
    township.context.close()

    reader = open_visitor(browser, site, viewport={"width": 1366, "height": 768})
    page = reader.login("poverty")
    page.get_by_label("检索词").fill("revitalisation")
    # Indexing runs beside the upload: search again until the worker has written it.
    result = page.locator(".result-title a", has_text="东镇乡村振兴工作汇报")
    for _ in range(50):
        page.get_by_label("检索词").press("Enter")
        if result.count():
            break
        page.wait_for_timeout(200)
    result.click()
    expect(page.locator("[data-pdf-preview]")).to_have_attribute("data-state", "rendered")
    expect(page.locator("dl.meta")).to_contain_text("2026年9月")
    with page.expect_download() as started:
        page.get_by_role("link", name="下载", exact=True).click()
    download = started.value
    assert download.url.startswith(site.other_origins[0])  # straight from the object store
    assert download.suggested_filename == PDF_NAME
    saved = tmp_path / "saved.pdf"
    download.save_as(saved)
    assert saved.read_bytes() == PDF
    reader.problems.assert_none()
    reader.context.close()
