"""The receipt's QR code holds the values to compare, named in words a phone shows as they are."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import segno

from api.web.routes.township import receipt_qr_svg, receipt_qr_text

DOCUMENT_ID = "0f3c6a52-3d0b-4c8e-9a43-6c1b2f7e9d10"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
LEAF = "5b1c0f5e6a7d4c3b2a19081726354453627180910a1b2c3d4e5f60718293a4b5"


def _receipt(seq: int | None) -> Any:
    return SimpleNamespace(
        document_id=DOCUMENT_ID,
        sha256=SHA256,
        audit_seq=seq,
        audit_hash=LEAF if seq is not None else None,
    )


def test_a_sequenced_receipt_names_each_value() -> None:
    assert receipt_qr_text(_receipt(42)).splitlines() == [
        "县域材料共享库 报送回执",
        f"材料编号：{DOCUMENT_ID}",
        f"SHA-256：{SHA256}",
        "审计序号：42",
        f"审计哈希：{LEAF}",
    ]


def test_a_receipt_waiting_for_the_log_says_so() -> None:
    lines = receipt_qr_text(_receipt(None)).splitlines()
    assert lines[-1] == "审计登记：正在写入审计日志"
    assert not any(line.startswith("审计哈希") for line in lines)


def test_the_code_is_utf8_text_any_phone_reads() -> None:
    text = receipt_qr_text(_receipt(42))
    code = segno.make(text, error="m", micro=False)
    assert code.mode == "byte"  # UTF-8 bytes, not Shift_JIS kanji
    svg = str(receipt_qr_svg(_receipt(42)))
    assert svg.startswith('<svg role="img" aria-label="报送回执二维码')
