"""Text extraction from every accepted format, on real files with Chinese text, and on hostile ones.

Files are built here with the libraries the project depends on; what they cannot write (legacy
Office, PDFs with a text layer or encryption) comes from small LibreOffice-made fixtures.
"""

from __future__ import annotations

import gzip
import io
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pptx
import pytest
from msoffcrypto.format.ooxml import OOXMLFile
from PIL import Image
from pptx.util import Inches

from indexer.extractors import (
    Extracted,
    ExtractionContext,
    ExtractionFailed,
    ExtractionLimits,
    extract,
)
from indexer.extractors._doc import _piece_table_text
from tests.samples import pdf_with_unicode_text

FIXTURES = Path(__file__).parent / "fixtures"

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOC, WPS = "application/msword", "application/wps-office.wps"
XLS, ET = "application/vnd.ms-excel", "application/wps-office.et"
PPT = "application/vnd.ms-powerpoint"
OFD = "application/ofd"

needs_antiword = pytest.mark.skipif(
    shutil.which("antiword") is None, reason="antiword is not installed (apt-get install antiword)"
)


def run(path: Path, content_type: str, **limits: Any) -> Extracted:
    context = ExtractionContext(
        path=path, content_type=content_type, filename=path.name, limits=ExtractionLimits(**limits)
    )
    return extract(context)


def failure(path: Path, content_type: str, **limits: Any) -> ExtractionFailed:
    with pytest.raises(ExtractionFailed) as caught:
        run(path, content_type, **limits)
    return caught.value


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_text_layer_in_chinese() -> None:
    extracted = run(FIXTURES / "notice.pdf", PDF)
    assert "城关镇人民政府关于召开防汛工作会议的通知" in extracted.text
    # Full-width digits and punctuation stay as the document writes them (search folds them).
    assert "会议时间：２０２４年６月３日上午９时，" in extracted.text
    assert extracted.notes == []


def test_radicals_in_a_pdf_text_layer_are_read_as_the_ideographs_they_stand_for(
    tmp_path: Path,
) -> None:
    # Some CJK fonts' glyphs map to CJK Radicals Supplement code points: the page shows 东风村,
    # the text layer says 东⻛村 (U+2EDB). Kangxi radicals (⾼, U+2FBC) NFKC folds anyway.
    pdf = tmp_path / "minutes.pdf"
    pdf.write_bytes(pdf_with_unicode_text("东⻛村监测户回访。⻓期跟踪⻔前⻋辆⻢匹⾼⻛险。⺀"))
    extracted = run(pdf, PDF)
    assert extracted.text == "东风村监测户回访。长期跟踪门前车辆马匹高风险。⺀"
    assert extracted.text_source == "text_layer"


def test_scanned_pdf_without_text_layer_is_noted_not_failed(tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    Image.new("RGB", (200, 280), "white").save(scan, "PDF", resolution=72)
    extracted = run(scan, PDF)
    assert extracted.text == ""
    assert extracted.notes == ["no_text_layer"]


def test_encrypted_pdf() -> None:
    failed = failure(FIXTURES / "encrypted.pdf", PDF)
    assert failed.code == "encrypted"
    assert failed.reason == "文件已加密，无法提取文字"


def test_pdf_pages_beyond_the_limit_are_not_read(tmp_path: Path) -> None:
    scans = tmp_path / "three-pages.pdf"
    pages = [Image.new("RGB", (50, 50), "white") for _ in range(3)]
    pages[0].save(scans, "PDF", save_all=True, append_images=pages[1:])
    assert run(scans, PDF, max_pages=2).notes == ["no_text_layer", "page_limit"]


# --- DOCX, XLSX, PPTX ---------------------------------------------------------------------------


def test_docx_paragraphs_tables_and_header(tmp_path: Path) -> None:
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "某某县人民政府文件"
    document.add_paragraph("关于印发《２０２４年乡村振兴工作要点》的通知")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "乡镇", "完成情况"
    table.cell(1, 0).text, table.cell(1, 1).text = "城关镇", "已完成"
    document.add_paragraph("特此通知。")
    path = tmp_path / "notice.docx"
    document.save(str(path))

    text = run(path, DOCX).text
    assert text.splitlines() == [
        "某某县人民政府文件",
        "关于印发《２０２４年乡村振兴工作要点》的通知",
        "乡镇\t完成情况",
        "城关镇\t已完成",
        "特此通知。",
    ]


def test_xlsx_default_sheet_names_are_left_out(tmp_path: Path) -> None:
    # "Sheet", "Sheet1", "工作表1": names no one gave, which would only open every snippet.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["序号", "村（社区）"])
    workbook.create_sheet("Sheet2")["A1"] = "东风村"
    workbook.create_sheet("工作表3")["A1"] = "柳树湾村"
    workbook.create_sheet("2024年台账")["A1"] = "河口村"
    path = tmp_path / "villages.xlsx"
    workbook.save(path)

    assert run(path, XLSX).text.splitlines() == [
        "序号\t村（社区）",
        "东风村",
        "柳树湾村",
        "2024年台账",
        "河口村",
    ]


def test_xlsx_sheet_names_and_cells(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "人口统计"
    sheet.append(["乡镇", "户数", "人均收入"])
    sheet.append(["城关镇", 1200, 15234.5])
    second = workbook.create_sheet("备注")
    second["B3"] = "数据截至６月底"
    path = tmp_path / "people.xlsx"
    workbook.save(path)

    text = run(path, XLSX).text
    assert text.splitlines() == [
        "人口统计",
        "乡镇\t户数\t人均收入",
        "城关镇\t1200\t15234.5",
        "备注",
        "数据截至６月底",
    ]
    assert run(path, XLSX, max_pages=1).notes == ["page_limit"]
    capped = run(path, XLSX, max_rows=1)
    assert capped.text.splitlines() == ["人口统计", "乡镇\t户数\t人均收入", "备注"]
    assert capped.notes == ["page_limit"]


def test_pptx_slide_text_tables_and_notes(tmp_path: Path) -> None:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    assert slide.shapes.title is not None
    slide.shapes.title.text = "乡村振兴工作汇报"
    slide.placeholders[1].text = "一、基本情况"
    slide.notes_slide.notes_text_frame.text = "汇报时间约十分钟"
    second = presentation.slides.add_slide(presentation.slide_layouts[6])
    shape = second.shapes.add_table(1, 2, Inches(1), Inches(1), Inches(4), Inches(1))
    shape.table.cell(0, 0).text, shape.table.cell(0, 1).text = "指标", "完成率"
    path = tmp_path / "report.pptx"
    presentation.save(str(path))

    text = run(path, PPTX).text
    assert text.splitlines() == [
        "乡村振兴工作汇报",
        "一、基本情况",
        "汇报时间约十分钟",
        "指标\t完成率",
    ]


# --- Legacy Office: DOC, WPS, XLS, ET, PPT -------------------------------------------------------


@needs_antiword
@pytest.mark.parametrize("content_type", [DOC, WPS])
def test_doc_in_chinese_through_antiword(content_type: str) -> None:
    text = run(FIXTURES / "notice.doc", content_type).text
    lines = text.splitlines()
    assert lines[0] == "关于做好２０２４年春季农业生产工作的通知"
    assert (
        "第12条：各乡镇人民政府要切实加强组织领导，落实春耕备耕各项措施，确保粮食安全和重要农产品稳定供给。"
        in lines
    )
    assert lines[-2:] == ["乡镇\t播种面积", "城关镇\t１２００亩"]


def test_short_doc_that_antiword_refuses_is_read_from_the_piece_table() -> None:
    text = run(FIXTURES / "short_notice.doc", DOC).text
    assert text.splitlines() == [
        "城关镇人民政府关于召开防汛工作会议的通知",
        "会议时间：２０２４年６月３日上午９时，地点：镇政府三楼会议室。",
        "联系人\t王主任",
    ]


def test_piece_table_reader_agrees_with_antiword_on_the_words() -> None:
    context = ExtractionContext(FIXTURES / "notice.doc", DOC, "notice.doc")
    text = _piece_table_text(context)
    assert "关于做好２０２４年春季农业生产工作的通知" in text
    assert "城关镇\x07１２００亩" in text


@pytest.mark.parametrize(
    ("fixture", "content_type"),
    [("encrypted.doc", DOC), ("encrypted.doc", WPS), ("encrypted.xls", XLS), ("encrypted.xls", ET)],
)
def test_encrypted_legacy_office(fixture: str, content_type: str) -> None:
    failed = failure(FIXTURES / fixture, content_type)
    assert (failed.code, failed.reason) == ("encrypted", "文件已加密，无法提取文字")


@pytest.mark.parametrize("content_type", [XLS, ET])
def test_xls_in_chinese(content_type: str) -> None:
    text = run(FIXTURES / "townships.xls", content_type).text
    assert text.splitlines() == [  # its one sheet's name, "sheet", is a default name: left out
        "乡镇\t户数\t人口",
        "城关镇\t1200\t4800",
        "河口乡\t860\t3100",
    ]


def test_ppt_best_effort(tmp_path: Path) -> None:
    path = tmp_path / "slides.ppt"
    path.write_bytes(gzip.decompress((FIXTURES / "slides.ppt.gz").read_bytes()))
    assert run(path, PPT).text.splitlines() == [
        "乡村振兴工作汇报",
        "一、基本情况",
        "下一步工作计划",
    ]


# --- OFD -----------------------------------------------------------------------------------------

_OFD_NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'


def _ofd(path: Path, pages: list[list[str]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "OFD.xml",
            f'<ofd:OFD {_OFD_NS} Version="1.0" DocType="OFD"><ofd:DocBody>'
            "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        )
        listed = "".join(
            f'<ofd:Page ID="{n}" BaseLoc="Pages/Page_{n}/Content.xml"/>' for n in range(len(pages))
        )
        archive.writestr(
            "Doc_0/Document.xml",
            f"<ofd:Document {_OFD_NS}><ofd:Pages>{listed}</ofd:Pages></ofd:Document>",
        )
        for number, lines in enumerate(pages):
            objects = "".join(
                f'<ofd:TextObject ID="{i}" Boundary="0 {i * 10} 100 10" Font="1" Size="5">'
                f'<ofd:TextCode X="0" Y="5">{line}</ofd:TextCode></ofd:TextObject>'
                for i, line in enumerate(lines)
            )
            archive.writestr(
                f"Doc_0/Pages/Page_{number}/Content.xml",
                f"<ofd:Page {_OFD_NS}><ofd:Content><ofd:Layer ID='9'>{objects}"
                "</ofd:Layer></ofd:Content></ofd:Page>",
            )
    return path


def test_ofd_text_of_its_pages(tmp_path: Path) -> None:
    path = _ofd(
        tmp_path / "invoice.ofd",
        [["电子发票（普通发票）", "购买方：城关镇人民政府"], ["价税合计：壹佰元整"]],
    )
    assert run(path, OFD).text.splitlines() == [
        "电子发票（普通发票）",
        "购买方：城关镇人民政府",
        "价税合计：壹佰元整",
    ]


def test_ofd_of_images_only_has_no_text_layer(tmp_path: Path) -> None:
    assert run(_ofd(tmp_path / "scan.ofd", [[]]), OFD).notes == ["no_text_layer"]


# --- Plain text ----------------------------------------------------------------------------------

NOTICE = "各乡镇：请于２０２４年６月底前报送《防汛值班表》，联系电话见附件。"


@pytest.mark.parametrize(
    "encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig", "utf-16"], ids=lambda name: name
)
@pytest.mark.parametrize("content_type", ["text/plain", "text/csv", "text/markdown"])
def test_text_in_its_encoding(tmp_path: Path, encoding: str, content_type: str) -> None:
    path = tmp_path / "notice.txt"
    path.write_bytes(NOTICE.encode(encoding))
    assert run(path, content_type).text == NOTICE


def test_markdown_is_indexed_as_the_text_a_reader_sees(tmp_path: Path) -> None:
    path = tmp_path / "说明.md"
    source = (
        "# 柳湾镇防汛工作总结\n\n"
        "## 一、工作开展情况\n\n"
        "全镇**落实**巡查人员 56 人，详见[值班表](http://intranet/duty.xlsx)。\n\n"
        "- 排查隐患 12 处\n"
        "- 转移群众 `30` 人\n\n"
        "| 村 | 户数 |\n| --- | --- |\n| 柳树湾村 | 12 |\n"
    )
    path.write_bytes(source.encode("gb18030"))
    assert run(path, "text/markdown").text == (
        "柳湾镇防汛工作总结\n"
        "一、工作开展情况\n"
        "全镇落实巡查人员 56 人，详见值班表。\n"
        "排查隐患 12 处\n"
        "转移群众 30 人\n"
        "村\t户数\n"
        "柳树湾村\t12"
    )


def test_long_text_is_cut_and_noted(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(("一二三四五六七八九十" * 100).encode("gbk"))
    extracted = run(path, "text/plain", max_chars=15)
    assert extracted.text == "一二三四五六七八九十一二三四五"
    assert extracted.notes == ["truncated"]


# --- Images --------------------------------------------------------------------------------------


def _photo(path: Path, *, north: bool = True, east: bool = True) -> Path:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "HUAWEI", "P40 Pro"
    exif.get_ifd(0x8769)[0x9003] = "2024:03:15 10:20:30"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = ("N" if north else "S"), (34.0, 45.0, 30.0)
    gps[3], gps[4] = ("E" if east else "W"), (113.0, 37.0, 12.5)
    Image.new("RGB", (16, 16), "green").save(path, exif=exif)
    return path


def test_jpeg_exif_time_place_and_camera(tmp_path: Path) -> None:
    extracted = run(_photo(tmp_path / "site.jpg"), "image/jpeg")
    assert extracted.text == ""
    assert extracted.exif == {
        "captured_at": "2024-03-15T10:20:30",
        "gps": {"lat": pytest.approx(34.7583333), "lon": pytest.approx(113.6201389)},
        "camera": "HUAWEI P40 Pro",
    }


def _timed_photo(path: Path, times: dict[int, str], *, ifd0_time: str | None = None) -> Path:
    exif = Image.Exif()
    if ifd0_time is not None:
        exif[0x0132] = ifd0_time
    for tag, value in times.items():
        exif.get_ifd(0x8769)[tag] = value
    Image.new("RGB", (16, 16), "green").save(path, exif=exif)
    return path


def test_the_digitized_time_stands_in_for_a_missing_original_time(tmp_path: Path) -> None:
    path = _timed_photo(tmp_path / "a.jpg", {0x9004: "2024:03:15 10:20:30", 0x9012: "+08:00"})
    assert run(path, "image/jpeg").exif == {"captured_at": "2024-03-15T10:20:30+08:00"}


def test_a_photo_with_only_the_file_time_says_so(tmp_path: Path) -> None:
    # Many phones' edited copies and scanning apps write only IFD0 DateTime: when the file was
    # written, kept apart from the capture time.
    path = _timed_photo(tmp_path / "b.jpg", {}, ifd0_time="2024:05:01 08:00:00")
    assert run(path, "image/jpeg").exif == {"recorded_at": "2024-05-01T08:00:00"}
    both = _timed_photo(
        tmp_path / "c.jpg", {0x9003: "2024:03:15 10:20:30"}, ifd0_time="2024:05:01 08:00:00"
    )
    assert run(both, "image/jpeg").exif == {"captured_at": "2024-03-15T10:20:30"}


def test_southern_and_western_coordinates_are_negative(tmp_path: Path) -> None:
    exif = run(_photo(tmp_path / "x.jpg", north=False, east=False), "image/jpeg").exif
    assert exif is not None
    assert exif["gps"] == {"lat": pytest.approx(-34.7583333), "lon": pytest.approx(-113.6201389)}


def test_png_without_exif_has_no_metadata(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    Image.new("RGB", (16, 16), "blue").save(path)
    assert run(path, "image/png") == Extracted(text="", exif={})


def test_heic_that_cannot_be_decoded_is_noted_not_failed(tmp_path: Path) -> None:
    path = tmp_path / "photo.heic"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    extracted = run(path, "image/heic")
    assert (extracted.text, extracted.notes, extracted.exif) == ("", ["not_extracted"], None)


# --- Hostile and broken files ------------------------------------------------------------------


@pytest.mark.slow
def test_zip_bomb_disguised_as_docx_is_refused_without_inflating(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w") as member:
            zeros = bytes(1024 * 1024)
            for _ in range(300):
                member.write(zeros)
    assert bomb.stat().st_size < 1024 * 1024

    started = time.monotonic()
    failed = failure(bomb, DOCX)
    assert failed.code == "too_large"
    assert time.monotonic() - started < 5


def test_one_bomb_member_among_honest_ones_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    workbook = openpyxl.Workbook()
    workbook.save(path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/filler.bin", bytes(4 * 1024 * 1024))
    assert failure(path, XLSX).code == "too_large"


def test_archive_larger_than_the_limit_when_unpacked(tmp_path: Path) -> None:
    path = tmp_path / "plain.docx"
    document = docx.Document()
    document.add_paragraph("正文")
    document.save(str(path))
    assert failure(path, DOCX, max_uncompressed_bytes=10_000).code == "too_large"


@pytest.mark.parametrize("content_type", [DOCX, XLSX, PPTX])
def test_encrypted_ooxml(tmp_path: Path, content_type: str) -> None:
    plain = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("机密材料")
    document.save(plain)
    plain.seek(0)
    path = tmp_path / "secret.docx"
    with path.open("wb") as encrypted:
        OOXMLFile(plain).encrypt("secret", encrypted)

    failed = failure(path, content_type)
    assert (failed.code, failed.reason) == ("encrypted", "文件已加密，无法提取文字")


@pytest.mark.parametrize(
    "content_type",
    [PDF, DOCX, XLSX, PPTX, DOC, XLS, PPT, WPS, ET, OFD, "image/jpeg", "image/png"],
)
def test_garbage_is_corrupt_with_a_reason_in_chinese(tmp_path: Path, content_type: str) -> None:
    path = tmp_path / "garbage"
    path.write_bytes(b"\x00\x13garbage, not a document\xff" * 40)
    failed = failure(path, content_type)
    assert failed.code == "corrupt"
    assert "无法" in failed.reason


@pytest.mark.parametrize("content_type", [PDF, DOCX])
def test_truncated_file_is_corrupt(tmp_path: Path, content_type: str) -> None:
    source = FIXTURES / "notice.pdf"
    if content_type == DOCX:
        source = tmp_path / "whole.docx"
        docx.Document().save(str(source))
    path = tmp_path / "truncated"
    path.write_bytes(source.read_bytes()[:700])
    assert failure(path, content_type).code == "corrupt"


def _slow_pdf(path: Path, operations: int) -> Path:
    """A valid one-page PDF whose content stream draws text a great many times."""
    stream = b"BT /F1 12 Tf 72 720 Td " + b"(x) Tj " * operations + b"ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    body, offsets = b"%PDF-1.4\n", []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + content + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(body)
    return path


def test_a_file_that_takes_too_long_is_stopped(tmp_path: Path) -> None:
    assert run(_slow_pdf(tmp_path / "quick.pdf", 3), PDF).text == "xxx"
    slow = _slow_pdf(tmp_path / "slow.pdf", 300_000)

    started = time.monotonic()
    failed = failure(slow, PDF, timeout_seconds=0.5)
    assert failed.code == "timeout"
    assert failed.reason == "文件处理超时（超过 0.5 秒），已停止"
    assert time.monotonic() - started < 3
    # The helper that was killed is replaced for the next file.
    assert run(FIXTURES / "notice.pdf", PDF).text.startswith("城关镇人民政府")


def test_a_file_that_needs_too_much_memory_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes("乡镇材料".encode("gbk") * 200_000)
    # Below what the helper process already maps: the file's 1.6 MB cannot be read.
    failed = failure(path, "text/plain", max_memory_bytes=64 * 1024 * 1024)
    assert (failed.code, failed.reason) == ("too_large", "文件处理所需内存超出限制，已停止")
    # That helper is retired; the next one reads the file with the default limits.
    assert len(run(path, "text/plain").text) == 800_000


def test_unknown_type_is_not_extracted(tmp_path: Path) -> None:
    path = tmp_path / "materials.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "附件")
    assert run(path, "application/zip") == Extracted(text="", notes=["not_extracted"])
