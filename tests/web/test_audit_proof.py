"""The provable audit log in the browser: the auditor's newest signed checkpoint and the
verification in words, the township's receipt while pending and once sequenced, and the receipt
file and public key that check it offline.

No sequencer runs beside the test site: a test numbers and signs what was logged by draining the
module's one itself (another would wait for its lease), so it decides what is pending. Tests share
one site (module scope) and run in file order; the last one tampers with the log.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Page, expect
from sqlalchemy import text

from api.cli import main
from api.web.routes.audit import (
    SIGNATURE_OK,
    STALE_AFTER,
    WAIT_GRACE,
    CheckpointStatus,
    age_in_words,
    signature_words,
    verify_words,
)
from services.audit_keys import load_verifier
from services.audit_sequencer import AuditSequencer
from services.audit_verify import CHECK_NAMES, VerifyReport, verify_receipt
from services.signed_notes import Checkpoint, Signer, Verifier
from tests.conftest import make_settings
from tests.samples import pdf_bytes
from tests.web.conftest import Site, Visitor, bearer, serve_site, upload_as

PENDING = "正在写入审计日志，请稍后刷新"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    # A receipt answers at once instead of waiting for a sequencer that never comes.
    settings = make_settings(
        tmp_path_factory.mktemp("audit-proof") / "data", audit_receipt_wait_seconds=0
    )
    with serve_site(settings) as started:
        yield started


@pytest.fixture(scope="module")
def sequencer(site: Site) -> AuditSequencer:
    """One sequencer for the module: it holds the lease, which another would wait out."""
    return AuditSequencer(site.backends.db, site.backends.settings, site.backends.blobs)


def drain(site: Site, sequencer: AuditSequencer) -> int:
    """Sequence every event logged so far and sign a checkpoint over them; the tree's size."""
    assert sequencer.drain() > 0
    with site.backends.db.engine.connect() as connection:
        size: int = connection.execute(text("SELECT max(tree_size) FROM audit_checkpoints")).one()[
            0
        ]
    return size


def _seq_cells(page: Page) -> list[str]:
    return page.locator("table.audit-events td[data-label='序号']").all_inner_texts()


# ---------------------------------------------------------------- words, without a browser


def test_ages_are_said_in_words() -> None:
    assert age_in_words(timedelta(milliseconds=300)) == "刚刚"
    assert age_in_words(timedelta(seconds=-2)) == "刚刚"
    assert age_in_words(timedelta(seconds=3)) == "3 秒前"
    assert age_in_words(timedelta(seconds=59)) == "59 秒前"
    assert age_in_words(timedelta(minutes=2, seconds=30)) == "2 分钟前"
    assert age_in_words(timedelta(hours=5, minutes=59)) == "5 小时前"
    assert age_in_words(timedelta(days=3, hours=2)) == "3 天前"


def _status(
    *, signed_ago: timedelta, waiting: int, oldest_ago: timedelta | None
) -> CheckpointStatus:
    now = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    return CheckpointStatus.of(
        tree_size=10,
        signed_at=now - signed_ago,
        note="note",
        waiting=waiting,
        oldest_waiting_at=now - oldest_ago if oldest_ago is not None else None,
        now=now,
    )


def test_a_checkpoint_is_stale_only_when_old_while_events_have_waited() -> None:
    old, long_wait = STALE_AFTER + timedelta(seconds=1), WAIT_GRACE + timedelta(seconds=1)
    assert _status(signed_ago=old, waiting=4, oldest_ago=long_wait).stale
    assert _status(signed_ago=old, waiting=4, oldest_ago=long_wait).age == "5 分钟前"
    # A quiet log: the checkpoint is old, but nothing waits, or only the page's own read.
    assert not _status(signed_ago=old, waiting=0, oldest_ago=None).stale
    assert not _status(signed_ago=old, waiting=1, oldest_ago=timedelta(seconds=1)).stale
    # Events that waited long under a fresh checkpoint: the sequencer is working through them.
    assert not _status(signed_ago=timedelta(seconds=2), waiting=4, oldest_ago=long_wait).stale


def test_the_newest_checkpoint_s_signature_is_checked_with_the_configured_key() -> None:
    root = hashlib.sha256(b"root").digest()
    signer = Signer("county.example/audit", Ed25519PrivateKey.generate())
    note = signer.sign(Checkpoint(signer.name, 10, root, ()).text())
    assert signature_words(signer.verifier, note, 10, root) == SIGNATURE_OK
    other = Signer(signer.name, Ed25519PrivateKey.generate()).verifier
    assert signature_words(other, note, 10, root).startswith("无效")
    assert signature_words(signer.verifier, note, 11, root).startswith("无效")
    assert signature_words(None, note, 10, root).startswith("未能核对")


def test_a_failed_verification_is_said_in_words() -> None:
    intact = VerifyReport(ok=True, events=3, head="00", checkpoints=2)
    assert (
        verify_words(intact).sentence
        == "日志完整，未被改动：已核对 3 条记录，与 2 个签名检查点一致。"
    )
    one = VerifyReport(
        ok=False, events=0, head="00", first_bad_seq=7, reason="leaf_mismatch", detail="第 7 号"
    )
    words = verify_words(one)
    assert words.sentence == "日志未通过核对：从序号 7 的记录起，与签名检查点不符。"
    assert words.meaning == (
        "有记录的内容在签名之后被改动。序号 7 及之后的记录都不能作为依据；此前的记录未发现问题。"
    )
    assert words.action is not None
    assert "系统管理员" in words.action
    assert (words.check, words.detail) == (CHECK_NAMES["leaf_mismatch"], "第 7 号")
    between = VerifyReport(
        ok=False, events=0, head="00", first_bad_seq=5, last_bad_seq=9, reason="checkpoint_root"
    )
    assert verify_words(between).sentence == "日志未通过核对：序号 5 至 9 之间有记录被改动过。"
    nowhere = VerifyReport(ok=False, events=0, head="00", reason="exported_checkpoint")
    assert verify_words(nowhere).sentence == (
        "日志未通过核对：另存在文件存储中的签名检查点与日志不符。"
    )
    assert verify_words(nowhere).check == CHECK_NAMES["exported_checkpoint"]


# ---------------------------------------------------------------- the auditor's page


def test_without_a_checkpoint_the_page_warns_and_events_wait(visitor: Visitor) -> None:
    page = visitor.login("auditor")
    checkpoint = page.get_by_test_id("checkpoint")
    expect(checkpoint.get_by_test_id("checkpoint-warning")).to_contain_text("日志还没有签过名")
    expect(checkpoint).to_have_class(re.compile("checkpoint-warn"))
    # Nothing has a number yet: every row says it waits for one.
    assert set(_seq_cells(page)) == {"待排序"}
    visitor.problems.assert_none()


def test_after_a_drain_the_page_shows_the_newest_checkpoint(
    visitor: Visitor, site: Site, sequencer: AuditSequencer
) -> None:
    size = drain(site, sequencer)
    page = visitor.login("auditor")
    checkpoint = page.get_by_test_id("checkpoint")
    expect(checkpoint.get_by_test_id("checkpoint-size")).to_have_text(f"{size} 条")
    expect(checkpoint.get_by_test_id("checkpoint-signature")).to_have_text(SIGNATURE_OK)
    expect(checkpoint.get_by_test_id("checkpoint-age")).to_have_text(
        re.compile(r"^(刚刚|\d+ 秒前)$")
    )
    signed_at = checkpoint.get_by_test_id("checkpoint-signed-at").inner_text()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", signed_at)
    expect(checkpoint).to_contain_text("北京时间")
    expect(checkpoint.get_by_test_id("checkpoint-warning")).to_have_count(0)
    expect(checkpoint).not_to_have_class(re.compile("checkpoint-warn"))
    # The signed note itself, for an auditor to compare with one kept elsewhere.
    checkpoint.get_by_text("技术细节：检查点原文").click()
    expect(checkpoint.locator("pre")).to_contain_text(f"\n{size}\n")
    # This login and read came after the drain; what came before has its number.
    cells = _seq_cells(page)
    assert cells[0] == "待排序"
    assert str(size) in cells
    visitor.problems.assert_none()


# ---------------------------------------------------------------- the township's receipt


def test_receipt_waits_for_the_log_then_downloads_and_verifies_offline(
    visitor: Visitor,
    site: Site,
    sequencer: AuditSequencer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = pdf_bytes("Receipt to keep")
    created = upload_as(site, "east", "乡镇报送回执.pdf", content)
    document_id = created["id"]
    page = visitor.login("east")
    page.goto(f"{site.url}/documents/{document_id}/receipt")
    expect(page.get_by_test_id("receipt-audit-pending")).to_have_text(PENDING)
    expect(page.get_by_test_id("receipt-audit-seq")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("下载回执文件"))).to_have_count(0)
    expect(page.get_by_test_id("receipt-sha256")).to_have_text(hashlib.sha256(content).hexdigest())

    drain(site, sequencer)
    page.reload()
    expect(page.get_by_test_id("receipt-audit-pending")).to_have_count(0)
    seq = int(page.get_by_test_id("receipt-audit-seq").inner_text())
    leaf_hash = page.get_by_test_id("receipt-audit-hash").text_content() or ""
    assert re.fullmatch(r"[0-9a-f]{64}", leaf_hash)
    filename = f"receipt-{document_id}.json"
    command = f"materials audit verify-receipt {filename} --public-key audit-public-key.txt"
    expect(page.get_by_test_id("receipt-verify-command")).to_have_text(command)
    expect(page.locator(".receipt-offline")).to_contain_text("无需连接服务器")
    # Plain words for the clerk; the command only for whoever opens the technical part.
    expect(page.get_by_test_id("receipt-verify-command")).to_be_hidden()
    page.get_by_text("给信息技术人员：如何核验").click()
    expect(page.get_by_test_id("receipt-verify-command")).to_be_visible()

    with page.expect_download() as receipt_download:
        page.get_by_role("link", name=re.compile("下载回执文件")).click()
    assert receipt_download.value.suggested_filename == filename
    receipt_download.value.save_as(tmp_path / filename)
    with page.expect_download() as key_download:
        page.get_by_role("link", name=re.compile("下载日志公钥")).click()
    assert key_download.value.suggested_filename == "audit-public-key.txt"
    key_download.value.save_as(tmp_path / "audit-public-key.txt")

    saved = json.loads((tmp_path / filename).read_text(encoding="utf-8"))
    assert (saved["pending"], saved["audit_seq"], saved["audit_hash"]) == (False, seq, leaf_hash)
    key_text = (tmp_path / "audit-public-key.txt").read_text(encoding="utf-8")
    verifier = Verifier.parse(key_text)
    assert verifier == load_verifier(site.settings)
    check = verify_receipt(saved, verifier)
    assert (check.seq, check.leaf_hash.hex()) == (seq, leaf_hash)
    # Exactly what the API answers (nothing was signed in between, so the same checkpoint).
    api = httpx.get(
        f"{site.url}/api/v1/documents/{document_id}/receipt", headers=bearer(site, "east")
    )
    assert api.json() == saved

    # The command the page shows, run where the two files were saved: no server, no database.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, command.split()[1:], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["seq"] == seq

    # Printed, the receipt keeps its audit entry and leaves out the download section.
    page.emulate_media(media="print")
    expect(page.get_by_test_id("receipt-audit-seq")).to_be_visible()
    expect(page.locator(".receipt-offline")).to_be_hidden()
    page.emulate_media(media="screen")
    visitor.problems.assert_none()


def test_receipt_file_and_public_key_headers_and_access(
    visitor: Visitor, site: Site, sequencer: AuditSequencer
) -> None:
    created = upload_as(site, "east", "另一份材料.pdf", pdf_bytes("Another receipt"))
    drain(site, sequencer)
    path = f"/documents/{created['id']}/receipt.json"
    visitor.login("east")
    own = visitor.context.request.get(site.url + path)
    assert own.status == 200
    assert own.headers["content-type"].startswith("application/json")
    assert own.headers["content-disposition"] == (
        f'attachment; filename="receipt-{created["id"]}.json"'
    )
    assert own.headers["cache-control"] == "no-store"
    assert own.json()["document_id"] == created["id"]

    # Another township learns nothing about it, not even that it exists.
    visitor.context.clear_cookies()
    visitor.login("west")
    other = visitor.context.request.get(site.url + path)
    assert other.status == 404

    # The public key is for anyone signed in, here a department's reader.
    visitor.context.clear_cookies()
    visitor.login("poverty")
    key = visitor.context.request.get(site.url + "/audit/public-key.txt")
    assert key.status == 200
    assert key.headers["content-type"].startswith("text/plain")
    assert key.headers["content-disposition"] == 'attachment; filename="audit-public-key.txt"'
    verifier = load_verifier(site.settings)
    assert verifier is not None
    assert key.text() == verifier.text() + "\n"
    visitor.problems.assert_none()


# ---------------------------------------------------------------- verification (tampers: last)


def test_verify_shows_the_counts_then_the_tampered_event_in_words(
    visitor: Visitor, site: Site, sequencer: AuditSequencer
) -> None:
    drain(site, sequencer)
    page = visitor.login("auditor")
    page.get_by_role("button", name="验证日志完整性").click()
    sentence = page.get_by_test_id("verify-sentence")
    expect(sentence).to_have_text(re.compile(r"^日志完整，未被改动：已核对 \d+ 条记录"))
    # The counts are technical details, folded away until opened.
    counts = page.get_by_test_id("verify-counts")
    expect(counts).to_be_hidden()
    page.get_by_text("技术细节", exact=True).click()
    expect(counts).to_be_visible()
    with site.backends.db.engine.connect() as connection:
        leaves = connection.execute(text("SELECT count(*) FROM audit_leaves")).scalar_one()
        signed = connection.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar_one()
    facts = dict(
        zip(
            counts.locator("dt").all_inner_texts(),
            counts.locator("dd").all_inner_texts(),
            strict=False,
        )
    )
    assert facts["事件数"] == str(leaves)
    assert facts["检查点数"] == str(signed)
    assert facts["对象存储中的检查点数"] == str(signed)

    tampered = leaves // 2
    with site.backends.db.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
        connection.execute(
            text(
                "UPDATE audit_events SET actor = 'x'"
                " WHERE id = (SELECT event_id FROM audit_leaves WHERE seq = :seq)"
            ),
            {"seq": tampered},
        )
    page.get_by_role("button", name="验证日志完整性").click()
    expect(sentence).to_have_text(f"日志未通过核对：从序号 {tampered} 的记录起，与签名检查点不符。")
    expect(page.get_by_test_id("verify-action")).to_contain_text("系统管理员")
    expect(page.locator(".verify-result")).to_have_class(re.compile("verify-bad"))
    expect(page.get_by_test_id("verify-check")).to_have_text(CHECK_NAMES["leaf_mismatch"])
    expect(page.get_by_test_id("verify-detail")).to_have_text(
        f"第 {tampered} 号事件的内容与叶哈希不符"
    )
    expect(page.get_by_test_id("verify-counts")).to_have_count(0)
    visitor.problems.assert_none()
