"""Every accepted format, end to end: upload a real file, let the worker index it, find it by a word
only its body holds — on the embedded and on the real stack.

Titles and file names are neutral ("材料", "file"), so a hit can only come from the extracted
text; scans and photos are found through OCR and say ``text_source: "ocr"``.
"""

from __future__ import annotations

import gzip
import io
import logging
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pptx
import pytest

from indexer.extractors import ExtractionLimits
from indexer.extractors._ocr import ocr_unavailable
from indexer.worker import IndexWorker
from services.backends import Backends
from tests.conftest import Api
from tests.samples import docx_bytes
from tests.scans import cjk_font, page_image, photo_of_paper, scanned_pdf

FIXTURES = Path(__file__).parents[1] / "indexer" / "fixtures"

needs_ocr = pytest.mark.skipif(
    ocr_unavailable() is not None or cjk_font() is None,
    reason="OCR needs tesseract-ocr, tesseract-ocr-chi-sim and fonts-noto-cjk",
)

# What a scan or a photo shows: a notice whose words appear nowhere else.
SCANNED_LINES = [
    "关于开展秋季防汛检查的通知",
    "各村民委员会：",
    "请于九月底前完成水库堤防隐患排查，",
    "并将排查台账报送镇应急办。",
]


def _xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "低保名单"
    sheet.append(["村", "户主", "人口"])
    sheet.append(["柳树湾村", "张三", 4])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _pptx() -> bytes:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    assert slide.shapes.title is not None
    slide.shapes.title.text = "工作汇报"
    slide.placeholders[1].text = "茶叶合作社带动农户增收"
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def _ofd() -> bytes:
    namespace = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "OFD.xml",
            f"<ofd:OFD {namespace} Version='1.0' DocType='OFD'><ofd:DocBody>"
            "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        )
        archive.writestr(
            "Doc_0/Document.xml",
            f"<ofd:Document {namespace}><ofd:Pages>"
            "<ofd:Page ID='1' BaseLoc='Pages/Page_0/Content.xml'/></ofd:Pages></ofd:Document>",
        )
        archive.writestr(
            "Doc_0/Pages/Page_0/Content.xml",
            f"<ofd:Page {namespace}><ofd:Content><ofd:Layer ID='2'>"
            "<ofd:TextObject ID='3' Boundary='0 0 100 10' Font='1' Size='5'>"
            "<ofd:TextCode X='0' Y='5'>购买方：城关镇人民政府 价税合计：壹佰元整</ofd:TextCode>"
            "</ofd:TextObject></ofd:Layer></ofd:Content></ofd:Page>",
        )
    return out.getvalue()


def _png_scan() -> bytes:
    out = io.BytesIO()
    page_image(SCANNED_LINES, dpi=200).save(out, "PNG")
    return out.getvalue()


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


GB_TEXT = "河口乡党委会议纪要：秋季防汛、低保复核，会上传达了秸秆禁烧的要求。"

# id → (file name, content, word only the body holds, where the text comes from, marks)
CASES: dict[str, tuple[str, Any, str, str, tuple[Any, ...]]] = {
    "pdf": ("file.pdf", lambda: _fixture("notice.pdf"), "会议室", "text_layer", ()),
    "docx": ("file.docx", lambda: docx_bytes("脱贫攻坚入户走访记录"), "入户走访", "text_layer", ()),
    "xlsx": ("file.xlsx", _xlsx, "柳树湾村", "text_layer", ()),
    "pptx": ("file.pptx", _pptx, "茶叶合作社", "text_layer", ()),
    "doc": ("file.doc", lambda: _fixture("notice.doc"), "春耕备耕", "text_layer", ()),
    "wps": ("file.wps", lambda: _fixture("short_notice.doc"), "会议室", "text_layer", ()),
    "xls": ("file.xls", lambda: _fixture("townships.xls"), "河口乡", "text_layer", ()),
    "et": ("file.et", lambda: _fixture("townships.xls"), "河口乡", "text_layer", ()),
    "ppt": (
        "file.ppt",
        lambda: gzip.decompress(_fixture("slides.ppt.gz")),
        "下一步工作计划",
        "text_layer",
        (),
    ),
    "ofd": ("file.ofd", _ofd, "价税合计", "text_layer", ()),
    "txt-utf8": ("file.txt", lambda: GB_TEXT.encode(), "秸秆禁烧", "text_layer", ()),
    "txt-gbk": ("file.txt", lambda: GB_TEXT.encode("gbk"), "秸秆禁烧", "text_layer", ()),
    "txt-gb18030": ("file.txt", lambda: GB_TEXT.encode("gb18030"), "秸秆禁烧", "text_layer", ()),
    "csv": (
        "file.csv",
        lambda: "村,户数,备注\n东风村,126,危房改造已验收\n".encode("gb18030"),
        "危房改造",
        "text_layer",
        (),
    ),
    "md": ("file.md", lambda: "# 说明\n\n人居环境整治".encode(), "人居环境", "text_layer", ()),
    "scanned-pdf": (
        "file.pdf",
        lambda: scanned_pdf([SCANNED_LINES]),
        "隐患排查",
        "ocr",
        (needs_ocr,),
    ),
    "png-scan": ("file.png", _png_scan, "隐患排查", "ocr", (needs_ocr,)),
    "jpeg-photo": (
        "file.jpg",
        lambda: photo_of_paper(SCANNED_LINES),
        "隐患排查",
        "ocr",
        (needs_ocr,),
    ),
    "heic-photo": (
        "file.heic",
        lambda: photo_of_paper(SCANNED_LINES, image_format="HEIF"),
        "隐患排查",
        "ocr",
        (needs_ocr,),
    ),
}


def _drain(backends: Backends) -> None:
    IndexWorker(backends, backends.index).drain()


def _upload(api: Api, filename: str, content: bytes) -> dict[str, Any]:
    response = api.upload(
        "east", filename, content, title="材料", category="工作留痕", visibility="departments"
    )
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def _found(api: Api, word: str) -> list[str]:
    response = api.client.get("/api/v1/search", params={"q": word}, headers=api.headers("poverty"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert not result.get("relaxed"), result
    return [hit["document"]["id"] for hit in result["hits"]]


@pytest.mark.parametrize(
    ("filename", "content", "word", "source"),
    [
        pytest.param(filename, content, word, source, id=name, marks=marks)
        for name, (filename, content, word, source, marks) in CASES.items()
    ],
)
def test_a_word_only_the_body_holds_finds_the_upload(
    api: Api, backends: Backends, filename: str, content: Any, word: str, source: str
) -> None:
    document = _upload(api, filename, content())
    assert word not in document["title"] + document["filename"]
    assert _found(api, word) == []

    _drain(backends)

    shown = api.client.get(f"/api/v1/documents/{document['id']}", headers=api.headers("poverty"))
    assert shown.status_code == 200, shown.text
    indexed = shown.json()
    assert (indexed["index_status"], indexed["index_error"]) == ("indexed", None)
    assert indexed["text_source"] == source
    assert _found(api, word) == [document["id"]]


@needs_ocr
def test_a_scan_beyond_the_page_cap_is_recognised_in_part_and_says_so(
    api: Api, backends: Backends
) -> None:
    pages = [["第一页：危房改造验收"], ["第二页：饮水安全工程"]]
    document = _upload(api, "file.pdf", scanned_pdf(pages))
    IndexWorker(backends, backends.index).drain()  # the settings' cap: 20 pages, both are read
    assert _found(api, "饮水安全") == [document["id"]]

    second = _upload(api, "file2.pdf", scanned_pdf([["医疗保障"], ["秸秆禁烧"]]))
    IndexWorker(backends, backends.index, limits=ExtractionLimits(ocr_max_pages=1)).drain()
    assert _found(api, "医疗保障") == [second["id"]]
    assert _found(api, "秸秆禁烧") == []
    shown = api.client.get(f"/api/v1/documents/{second['id']}", headers=api.headers("poverty"))
    indexed = shown.json()
    assert indexed["index_status"] == "indexed"
    assert indexed["text_source"] == "ocr"
    assert indexed["index_error"] == "扫描件只识别了前 1 页的文字"


def test_a_failed_extraction_is_logged_with_document_format_and_reason(
    api: Api, backends: Backends, caplog: pytest.LogCaptureFixture
) -> None:
    document = _upload(api, "file.doc", _fixture("encrypted.doc"))
    with caplog.at_level(logging.WARNING, logger="materials.indexer"):
        _drain(backends)
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == "materials.indexer" and record.levelno == logging.WARNING
    ]
    assert warnings == [
        f"extracting document {document['id']} (application/msword) failed: "
        "encrypted: 文件已加密，无法提取文字"
    ]
    shown = api.client.get(f"/api/v1/documents/{document['id']}", headers=api.headers("poverty"))
    assert shown.json()["index_status"] == "failed"
    assert shown.json()["text_source"] == "none"
