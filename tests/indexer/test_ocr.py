"""Extraction from content alone (the worker's file is named ``blob``) and OCR of scans and photos.

Scans and photos are rendered here from known Chinese text (``tests/scans.py``); OCR needs Debian's
``tesseract-ocr`` and ``tesseract-ocr-chi-sim``, the rendering ``fonts-noto-cjk``.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pptx
import pytest
from PIL import Image

from indexer.extractors import Extracted, ExtractionContext, ExtractionLimits, _image, _ocr, extract
from indexer.extractors._dispatch import extract_here
from indexer.extractors._ocr import _lines_of, ocr_unavailable
from indexer.indexing import index_document
from services.backends import Backends
from tests.conftest import Api
from tests.samples import docx_bytes
from tests.scans import cjk_font, page_image, photo_of_paper, scanned_pdf

FIXTURES = Path(__file__).parent / "fixtures"

needs_ocr = pytest.mark.skipif(
    ocr_unavailable() is not None or cjk_font() is None,
    reason="OCR needs tesseract-ocr, tesseract-ocr-chi-sim and fonts-noto-cjk",
)

LINES = ["城关镇防汛检查通知", "请各村排查水库堤防隐患。"]


def run(content: bytes, content_type: str, tmp_path: Path, **limits: Any) -> Extracted:
    """Extract as the worker does: from a file named ``blob``, without an extension."""
    path = tmp_path / "blob"
    path.write_bytes(content)
    context = ExtractionContext(
        path=path, content_type=content_type, filename="blob", limits=ExtractionLimits(**limits)
    )
    return extract(context)


def _xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["柳树湾村", 126])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("入户走访记录")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _pptx() -> bytes:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    assert slide.shapes.title is not None
    slide.shapes.title.text = "茶叶合作社"
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def _fixture(name: str) -> Callable[[], bytes]:
    return lambda: (FIXTURES / name).read_bytes()


_OOXML = "application/vnd.openxmlformats-officedocument"


@pytest.mark.parametrize(
    ("content_type", "content", "expected"),
    [
        pytest.param("application/pdf", _fixture("notice.pdf"), "三楼会议室", id="pdf"),
        pytest.param(f"{_OOXML}.wordprocessingml.document", _docx, "入户走访", id="docx"),
        pytest.param(f"{_OOXML}.wordprocessingml.document", lambda: docx_bytes(), "脱贫", id="min"),
        pytest.param(f"{_OOXML}.spreadsheetml.sheet", _xlsx, "柳树湾村\t126", id="xlsx"),
        pytest.param(f"{_OOXML}.presentationml.presentation", _pptx, "茶叶合作社", id="pptx"),
        pytest.param("application/msword", _fixture("notice.doc"), "春耕备耕", id="doc"),
        pytest.param(
            "application/wps-office.wps", _fixture("short_notice.doc"), "王主任", id="wps"
        ),
        pytest.param("application/vnd.ms-excel", _fixture("townships.xls"), "河口乡", id="xls"),
        pytest.param("application/wps-office.et", _fixture("townships.xls"), "河口乡", id="et"),
        pytest.param(
            "application/vnd.ms-powerpoint",
            lambda: gzip.decompress((FIXTURES / "slides.ppt.gz").read_bytes()),
            "基本情况",
            id="ppt",
        ),
        pytest.param("text/plain", lambda: "秸秆禁烧".encode("gbk"), "秸秆禁烧", id="gbk"),
        pytest.param("text/csv", lambda: "村,户\n东风村,9".encode("gb18030"), "东风村,9", id="csv"),
    ],
)
def test_every_extractor_reads_a_file_named_blob(
    tmp_path: Path, content_type: str, content: Callable[[], bytes], expected: str
) -> None:
    extracted = run(content(), content_type, tmp_path)
    assert expected in extracted.text
    assert extracted.text_source == "text_layer"


# --- OCR ------------------------------------------------------------------------------------------


@needs_ocr
def test_a_scanned_pdf_is_recognised(tmp_path: Path) -> None:
    extracted = run(scanned_pdf([LINES, ["第二页：饮水安全工程"]]), "application/pdf", tmp_path)
    assert extracted.text_source == "ocr"
    assert extracted.notes == ["no_text_layer"]
    # Word for word would hold only for one Tesseract version: the words searched for are there.
    assert extracted.text.splitlines()[0] == "城关镇防汛检查通知"
    assert "水库" in extracted.text
    assert "第二页:饮水安全工程" in extracted.text  # Tesseract reads the full-width colon so


@needs_ocr
def test_recognising_scanned_pages_gets_time_of_its_own(tmp_path: Path) -> None:
    # Three pages take longer than the per-file limit (about 5 s a page): each page adds its own.
    pages = [["第一页：危房改造"], ["第二页：医疗保障"], ["第三页：饮水安全"]]
    extracted = run(scanned_pdf(pages), "application/pdf", tmp_path, timeout_seconds=1.0)
    assert extracted.notes == ["no_text_layer"]
    lines = [line for line in extracted.text.splitlines() if line]
    assert lines == ["第一页:危房改造", "第二页:医疗保障", "第三页:饮水安全"]


@needs_ocr
def test_recognition_stops_when_its_time_runs_out(tmp_path: Path) -> None:
    pages = [["第一页：危房改造"], ["第二页：医疗保障"], ["第三页：饮水安全"]]
    limits = {"timeout_seconds": 1.0, "ocr_seconds_per_page": 0.5}
    extracted = run(scanned_pdf(pages), "application/pdf", tmp_path, **limits)
    assert "ocr_incomplete" in extracted.notes
    assert extracted.remark(ExtractionLimits(**limits)) == (
        "扫描页较多，文字识别超过时限（每页 0.5 秒），只识别了部分页面"
    )


def _ofd_of_scans(pages: list[list[str]]) -> bytes:
    """An OFD as scanner software writes it: each page one JPEG image, no text objects."""
    ns = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "OFD.xml",
            f"<ofd:OFD {ns} Version='1.0' DocType='OFD'><ofd:DocBody>"
            "<ofd:DocRoot>/Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        )
        listed = "".join(
            f"<ofd:Page ID='{n}' BaseLoc='Pages/Page_{n}/Content.xml'/>" for n in range(len(pages))
        )
        archive.writestr(
            "Doc_0/Document.xml",
            f"<ofd:Document {ns}><ofd:CommonData><ofd:MaxUnitID>99</ofd:MaxUnitID>"
            "<ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes></ofd:CommonData>"
            f"<ofd:Pages>{listed}</ofd:Pages></ofd:Document>",
        )
        media = "".join(
            f"<ofd:MultiMedia ID='{50 + n}' Type='Image' Format='JPEG'>"
            f"<ofd:MediaFile>Image_{n}.jpg</ofd:MediaFile></ofd:MultiMedia>"
            for n in range(len(pages))
        )
        archive.writestr(
            "Doc_0/DocumentRes.xml",
            f"<ofd:Res {ns} BaseLoc='Res'><ofd:MultiMedias>{media}</ofd:MultiMedias></ofd:Res>",
        )
        for number, lines in enumerate(pages):
            picture = io.BytesIO()
            page_image(lines, dpi=200).save(picture, "JPEG", quality=90)
            archive.writestr(f"Doc_0/Res/Image_{number}.jpg", picture.getvalue())
            archive.writestr(
                f"Doc_0/Pages/Page_{number}/Content.xml",
                f"<ofd:Page {ns}><ofd:Content><ofd:Layer ID='9'>"
                f"<ofd:ImageObject ID='{10 + number}' ResourceID='{50 + number}' "
                "Boundary='0 0 210 297' CTM='210 0 0 297 0 0'/>"
                "</ofd:Layer></ofd:Content></ofd:Page>",
            )
    return out.getvalue()


@needs_ocr
def test_an_ofd_of_scanned_pages_is_recognised(tmp_path: Path) -> None:
    ofd = _ofd_of_scans([LINES, ["第二页：饮水安全工程"]])
    extracted = run(ofd, "application/ofd", tmp_path)
    assert (extracted.text_source, extracted.notes) == ("ocr", ["no_text_layer"])
    assert extracted.text.splitlines()[0] == "城关镇防汛检查通知"
    assert "第二页:饮水安全工程" in extracted.text

    capped = run(ofd, "application/ofd", tmp_path, ocr_max_pages=1)
    assert capped.notes == ["no_text_layer", "ocr_page_limit"]
    assert "饮水" not in capped.text


def test_a_pdf_with_a_text_layer_is_not_ocred(tmp_path: Path) -> None:
    extracted = run((FIXTURES / "notice.pdf").read_bytes(), "application/pdf", tmp_path)
    assert (extracted.ocr, extracted.text_source, extracted.notes) == (False, "text_layer", [])


@needs_ocr
def test_scanned_pages_beyond_the_ocr_cap_are_not_recognised(tmp_path: Path) -> None:
    pdf = scanned_pdf([["第一页：危房改造"], ["第二页：医疗保障"]])
    extracted = run(pdf, "application/pdf", tmp_path, ocr_max_pages=1)
    assert extracted.text == "第一页:危房改造"
    assert extracted.notes == ["no_text_layer", "ocr_page_limit"]
    assert extracted.remark(ExtractionLimits(ocr_max_pages=1)) == "扫描件只识别了前 1 页的文字"


def test_ocr_turned_off_leaves_scans_and_photos_without_text(tmp_path: Path) -> None:
    pdf = run(scanned_pdf([LINES]), "application/pdf", tmp_path, ocr_max_pages=0)
    assert (pdf.text, pdf.notes, pdf.text_source) == ("", ["no_text_layer"], "none")
    photo = run(photo_of_paper(LINES), "image/jpeg", tmp_path, ocr_max_pages=0)
    assert (photo.text, photo.notes, photo.text_source) == ("", [], "none")


@needs_ocr
@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "HEIF"])
def test_a_photo_of_paper_is_recognised(tmp_path: Path, image_format: str) -> None:
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "HEIF": "image/heic"}[image_format]
    extracted = run(photo_of_paper(LINES, image_format=image_format), content_type, tmp_path)
    assert extracted.text_source == "ocr"
    # A photo is not a scan: most of its characters are read, an odd one may be misread.
    read = "".join(extracted.text.split())
    expected = "".join(LINES).replace("。", "")
    assert "防汛检查" in read
    assert SequenceMatcher(None, read, expected).ratio() >= 0.85, read


@needs_ocr
def test_a_photo_is_turned_upright_by_its_exif_orientation_before_ocr(tmp_path: Path) -> None:
    sideways = page_image(LINES, dpi=150).rotate(90, expand=True)  # camera held sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = io.BytesIO()
    sideways.save(out, "JPEG", exif=exif)
    extracted = run(out.getvalue(), "image/jpeg", tmp_path)
    assert extracted.text.splitlines()[0] == "城关镇防汛检查通知"


@needs_ocr
def test_a_photo_without_text_has_none(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((800, 600)).save(out, "JPEG")
    extracted = run(out.getvalue(), "image/jpeg", tmp_path)
    assert (extracted.text, extracted.text_source) == ("", "none")


def test_words_are_joined_without_spaces_between_chinese_and_unsure_ones_dropped() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tl\tt\tw\th\tconf\ttext"
    words = [
        ("1", "城关", 96.0),
        ("1", "镇", 91.0),
        ("1", "GDP", 90.0),
        ("1", "增长", 88.0),
        ("1", "ABC", 85.0),
        ("1", "def", 80.0),
        ("1", "噪", 5.0),
        ("2", "第二行", 93.0),
    ]
    rows = [
        f"5\t1\t1\t1\t{line}\t{number}\t0\t0\t1\t1\t{confidence}\t{text}"
        for number, (line, text, confidence) in enumerate(words)
    ]
    assert _lines_of("\n".join([header, *rows])) == "城关镇GDP增长ABC def\n第二行"


# --- Tesseract missing ----------------------------------------------------------------------------


def test_without_tesseract_a_scan_is_noted_and_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process, not the helper: there the real Tesseract would be found.
    monkeypatch.setattr(_ocr, "ocr_unavailable", lambda: "tesseract")
    monkeypatch.setattr(_image, "ocr_unavailable", lambda: "tesseract")
    for content, content_type, notes in [
        (scanned_pdf([["无"]]), "application/pdf", ["no_text_layer", "ocr_unavailable"]),
        (photo_of_paper(["无"]), "image/jpeg", ["ocr_unavailable"]),
    ]:
        path = tmp_path / "blob"
        path.write_bytes(content)
        extracted = extract_here(ExtractionContext(path, content_type, "blob"))
        assert (extracted.text, extracted.notes) == ("", notes)
        remark = extracted.remark(ExtractionLimits())
        assert remark is not None
        assert "tesseract-ocr、tesseract-ocr-chi-sim" in remark


def test_without_tesseract_the_document_is_indexed_by_metadata_and_says_why(
    api: Api, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = api.upload("east", "scan.pdf", scanned_pdf([["无"]]), title="扫描件")
    assert response.status_code == 201, response.text
    document_id = response.json()["id"]
    unavailable = Extracted(text="", notes=["no_text_layer", "ocr_unavailable"])
    monkeypatch.setattr("indexer.indexing.extract_text", lambda context: unavailable)

    outcome = index_document(backends, backends.index, document_id=document_id)

    assert (outcome.status, outcome.reason) == ("indexed", None)
    shown = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers("east"))
    assert shown.status_code == 200, shown.text
    document = shown.json()
    assert (document["index_status"], document["text_source"]) == ("indexed", "none")
    assert document["index_error"] == unavailable.remark(ExtractionLimits())
    # Still found by what the uploader typed.
    found = api.client.get("/api/v1/search", params={"q": "扫描件"}, headers=api.headers("east"))
    assert [hit["document"]["id"] for hit in found.json()["hits"]] == [document_id]
