"""The auditor's signature panel and verification say in plain words what was checked and what
the result means (how many records, against how many signed checkpoints; on failure, from which
record on and whom to tell), the technical terms kept in a collapsed part."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.web.routes.audit import PLAIN_CHECKS, REPORT_TAMPERING, SIGNATURE_OK, verify_words
from services.audit_verify import CHECK_NAMES, VerifyReport
from services.backends import Backends
from tests.conftest import Api, signed_in_browser
from tests.test_audit_chain import make_activity, sequence
from tests.test_consistency import tamper_with_audit_log


@pytest.fixture
def auditor_browser(client: TestClient) -> Iterator[TestClient]:
    """A browser of its own, signed in as the auditor."""
    with signed_in_browser(client, "auditor") as browser:
        yield browser


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _by_testid(page: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(?:p|dd|span|dl|details)>', page, re.S)
    assert found is not None, testid
    return _text(found.group(1))


def _technical(page: str) -> str:
    """The collapsed technical part of the result: closed until opened."""
    found = re.search(r'<details class="verify-technical"[^>]*>(.*?)</details>', page, re.S)
    assert found is not None
    assert " open" not in found.group(0).split(">", 1)[0]
    return _text(found.group(1))


def test_before_any_signature_the_panel_says_records_are_not_protected_yet(
    api: Api, auditor_browser: TestClient
) -> None:
    make_activity(api)
    page = auditor_browser.get("/audit").text
    warning = _by_testid(page, "checkpoint-warning")
    assert warning.startswith("日志还没有签过名（尚无签名检查点）")
    assert "记录被改动将无法发现" in warning
    assert "系统管理员" in warning


def test_an_intact_log_is_said_with_what_was_checked(
    api: Api, auditor_browser: TestClient, backends: Backends
) -> None:
    make_activity(api)
    api.headers("auditor")
    size = sequence(backends)
    page = auditor_browser.get("/audit").text
    assert _by_testid(page, "checkpoint-size") == f"{size} 条"
    assert _by_testid(page, "checkpoint-signature") == SIGNATURE_OK

    page = auditor_browser.get("/audit/verify").text
    sentence = _by_testid(page, "verify-sentence")
    counts = re.fullmatch(
        r"日志完整，未被改动：已核对 (\d+) 条记录，与 (\d+) 个签名检查点一致。", sentence
    )
    assert counts is not None, sentence
    assert int(counts.group(1)) >= size
    assert int(counts.group(2)) >= 1
    assert "没有任何已签名的记录被修改、删除、插入或调换顺序" in _by_testid(page, "verify-meaning")
    assert 'data-testid="verify-action"' not in page
    # The technical terms are there, folded away.
    technical = _technical(page)
    assert f"事件数 {counts.group(1)}" in technical
    assert f"检查点数 {counts.group(2)}" in technical
    assert "默克尔树根哈希" in technical


def test_a_tampered_log_names_the_record_and_whom_to_tell(
    api: Api, auditor_browser: TestClient, backends: Backends
) -> None:
    make_activity(api)
    sequence(backends)
    tampered = tamper_with_audit_log(backends)

    page = auditor_browser.get("/audit/verify").text
    assert _by_testid(page, "verify-sentence") == (
        f"日志未通过核对：从序号 {tampered} 的记录起，与签名检查点不符。"
    )
    meaning = _by_testid(page, "verify-meaning")
    assert meaning.startswith(PLAIN_CHECKS["leaf_mismatch"])
    assert f"序号 {tampered} 及之后的记录都不能作为依据" in meaning
    assert _by_testid(page, "verify-action") == REPORT_TAMPERING
    assert "verify-bad" in page
    technical = _technical(page)
    assert CHECK_NAMES["leaf_mismatch"] in technical
    assert f"首条异常记录 seq {tampered}" in technical


def test_every_outcome_is_said_in_plain_words() -> None:
    between = verify_words(
        VerifyReport(
            ok=False, events=0, head="00", first_bad_seq=5, last_bad_seq=9, reason="checkpoint_root"
        )
    )
    assert between.sentence == "日志未通过核对：序号 5 至 9 之间有记录被改动过。"
    assert "无法确定是哪一条" in between.meaning
    assert between.meaning.endswith("序号 5 及之后的记录都不能作为依据；此前的记录未发现问题。")
    first = verify_words(
        VerifyReport(ok=False, events=0, head="00", first_bad_seq=1, reason="leaf_mismatch")
    )
    assert first.meaning == f"{PLAIN_CHECKS['leaf_mismatch']}。序号 1 及之后的记录都不能作为依据。"
    assert between.check == CHECK_NAMES["checkpoint_root"]
    assert between.action == REPORT_TAMPERING

    nowhere = verify_words(
        VerifyReport(ok=False, events=0, head="00", reason="exported_checkpoint")
    )
    assert nowhere.sentence == f"日志未通过核对：{PLAIN_CHECKS['exported_checkpoint']}。"
    assert nowhere.check == CHECK_NAMES["exported_checkpoint"]

    # No key is no evidence of tampering: it says so, and who can fix it.
    no_key = verify_words(VerifyReport(ok=False, events=0, head="00", reason="no_key"))
    assert no_key.sentence.startswith("无法核对日志")
    assert "不说明日志被改动过" in no_key.meaning
    assert no_key.action is not None
    assert "系统管理员" in no_key.action

    # Nothing signed yet: nothing is claimed.
    unsigned = verify_words(VerifyReport(ok=True, events=4, head="00", checkpoints=0))
    assert unsigned.sentence.startswith("还不能证明日志未被改动")

    # Every check the verification names has plain words.
    assert set(CHECK_NAMES) - {"no_key"} <= set(PLAIN_CHECKS)
