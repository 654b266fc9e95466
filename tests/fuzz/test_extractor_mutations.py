"""Property: every extractor, given a damaged copy of a valid file of its format (bits flipped,
bytes inserted, deleted or overwritten, the end cut off), returns text or fails cleanly.

Cleanly means ``ExtractionFailed`` with one of the documented codes and a reason for people,
which the index worker turns into a document ``failed``; a parser that crashes or hangs on the
file takes only its helper process with it.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pptx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from indexer.extractors import Extracted, ExtractionContext, ExtractionFailed, ExtractionLimits
from indexer.extractors import extract as extract_text
from indexer.extractors._dispatch import EXTRACTORS, extractor_for
from tests.samples import docx_bytes, pdf_bytes, png_bytes, text_bytes

pytestmark = pytest.mark.fuzz

FIXTURES = Path(__file__).parents[1] / "indexer" / "fixtures"
FAILURE_CODES = {"encrypted", "corrupt", "too_large", "timeout", "unsupported"}
# A damaged file may send a parser into a loop: it is stopped, and the test goes on. A PDF whose
# text layer the damage removed is rendered and recognised (pdfium, Tesseract): one page of it.
LIMITS = ExtractionLimits(timeout_seconds=10, ocr_max_pages=1)


def _xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "人口统计"
    sheet.append(["乡镇", "户数", "人均收入"])
    sheet.append(["城关镇", 1200, 15234.5])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _pptx() -> bytes:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    assert slide.shapes.title is not None
    slide.shapes.title.text = "乡村振兴工作汇报"
    slide.notes_slide.notes_text_frame.text = "汇报时间约十分钟"
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def _ofd() -> bytes:
    namespace = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "OFD.xml",
            f'<ofd:OFD {namespace} Version="1.0" DocType="OFD"><ofd:DocBody>'
            "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        )
        archive.writestr(
            "Doc_0/Document.xml",
            f"<ofd:Document {namespace}><ofd:Pages>"
            '<ofd:Page ID="0" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>',
        )
        archive.writestr(
            "Doc_0/Pages/Page_0/Content.xml",
            f"<ofd:Page {namespace}><ofd:Content><ofd:Layer ID='9'>"
            '<ofd:TextObject ID="1" Boundary="0 0 100 10" Font="1" Size="5">'
            '<ofd:TextCode X="0" Y="5">价税合计：壹佰元整</ofd:TextCode></ofd:TextObject>'
            "</ofd:Layer></ofd:Content></ofd:Page>",
        )
    return buffer.getvalue()


def _jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "HUAWEI", "P40 Pro"
    exif.get_ifd(0x8769)[0x9003] = "2024:03:15 10:20:30"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (34.0, 45.0, 30.0), "E", (113.0, 37.0, 12.5)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "green").save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


# One valid file per extractor: (MIME type, how to make it). A small one, so that damage lands
# in the structure more often than in the middle of some text.
SAMPLES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "pdf": ("application/pdf", pdf_bytes),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx_bytes),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _xlsx),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", _pptx),
    "doc": ("application/msword", lambda: (FIXTURES / "short_notice.doc").read_bytes()),
    "xls": ("application/vnd.ms-excel", lambda: (FIXTURES / "townships.xls").read_bytes()),
    "ppt": (
        "application/vnd.ms-powerpoint",
        lambda: gzip.decompress((FIXTURES / "slides.ppt.gz").read_bytes()),
    ),
    "ofd": ("application/ofd", _ofd),
    "txt": ("text/plain", lambda: text_bytes(encoding="gb18030")),
    "md": (
        "text/markdown",
        lambda: "# 防汛工作总结\n\n| 乡镇 | 人数 |\n|--|--|\n| 东镇 | 3 |\n".encode(),
    ),
    "jpeg": ("image/jpeg", _jpeg),
    "png": ("image/png", png_bytes),
}


def test_every_extractor_has_a_sample() -> None:
    covered = {type(extractor_for(mime)) for mime, _ in SAMPLES.values()}
    assert covered == {type(extractor) for extractor in EXTRACTORS}


# Small, local damage is likelier than wholesale loss: it keeps a file parseable for longer.
_DAMAGE = st.sampled_from(
    ["flip", "flip", "overwrite", "overwrite", "insert", "delete", "truncate"]
)


def _damage(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(_DAMAGE)
        if kind == "flip" and data:
            data[where] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[where:where] = draw(
                st.one_of(st.binary(min_size=1, max_size=64), st.just(b"\xff" * 4096))
            )
        elif kind == "delete":
            del data[where : where + draw(st.integers(1, 256))]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=32))
            data[where : where + len(chunk)] = chunk
        else:
            del data[where:]
    return bytes(data)


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    """The file with a few bytes flipped, inserted, deleted or overwritten, or its end cut off.
    A zip-based file (OOXML, OFD) is as often damaged inside one of its members, then zipped
    again: damage to the compressed bytes alone stops at the zip's checksums."""
    if not zipfile.is_zipfile(io.BytesIO(original)) or draw(st.booleans()):
        return _damage(draw, original)
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    target = draw(st.integers(0, len(members) - 1))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (info, content) in enumerate(members):
            archive.writestr(info, _damage(draw, content) if index == target else content)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_a_damaged_file_is_read_or_refused_cleanly(
    kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    content_type, make = SAMPLES[kind]
    original = make()
    folder = tmp_path_factory.mktemp(kind)
    path = folder / f"sample.{kind}"
    path.write_bytes(original)
    assert isinstance(_extract(path, content_type), Extracted), "the undamaged sample must read"

    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(damaged(original))
    def read_or_refuse(content: bytes) -> None:
        path.write_bytes(content)
        try:
            extracted: Extracted | ExtractionFailed = _extract(path, content_type)
        except ExtractionFailed as failure:
            extracted = failure
        if isinstance(extracted, ExtractionFailed):
            event(f"failed: {extracted.code}")
            assert extracted.code in FAILURE_CODES, extracted.code
            assert extracted.reason.strip(), extracted
        else:
            event("read")
            assert isinstance(extracted.text, str)
            assert "\x00" not in extracted.text

    read_or_refuse()


def _extract(path: Path, content_type: str) -> Extracted:
    return extract_text(
        ExtractionContext(path=path, content_type=content_type, filename=path.name, limits=LIMITS)
    )
