"""``materials audit verify`` and ``materials audit archive`` say what they found in Chinese, in
the words ``materials check`` uses for the log, on stderr; stdout keeps the JSON line scripts read,
with its keys as they were."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.cli import main
from services import consistency
from services.audit_keys import load_verifier
from services.audit_report_words import NO_SIGNING_KEY, NOTHING_TO_ARCHIVE, verify_summary
from services.audit_verify import VerifyReport
from services.backends import open_backends
from services.blobs._local import LocalBlobStore
from services.db import Database
from services.signed_notes import Signer
from tests.contract.test_audit_archive import add_events
from tests.contract.test_audit_log import Log, settings_for

VERIFY_KEYS = {
    "ok",
    "events",
    "head",
    "tree_size",
    "checkpoints",
    "exported_checkpoints",
    "receipts",
    "pending",
    "pruned_events",
    "latest_checkpoint",
    "warnings",
}
FAILED_KEYS = VERIFY_KEYS | {"first_bad_seq", "last_bad_seq", "reason", "detail"}
ARCHIVE_KEYS = {
    "archived",
    "first_seq",
    "last_seq",
    "archive",
    "sha256",
    "pruned",
    "kept_for_receipts",
}
# An English word in what people read (an archive's object name aside).
ENGLISH = re.compile(r"\b(?!seq\b)[A-Za-z]{3,}\b")


def _log(tmp_path: Path, *, old: int = 0, young: int = 0, sequenced: bool = True) -> Log:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    url = f"sqlite:///{data / 'materials.db'}"
    database = Database(url)
    database.migrate()
    settings = settings_for(url, data)
    log = Log(database, settings, LocalBlobStore(settings.blob_dir))
    if old:
        add_events(log, old, days_ago=300)
    if young:
        add_events(log, young, days_ago=1, first=old + 1)
    if sequenced:
        log.sequencer().drain()
    database.dispose()
    return log


def _run(log: Log, *args: str) -> Result:
    env = {"MATERIALS_DATABASE_URL": log.settings.resolved_database_url}
    command = [*args, "--data-dir", str(log.settings.data_dir)]
    return CliRunner().invoke(main, command, env=env, catch_exceptions=False)


def _said(result: Result) -> list[str]:
    return result.stderr.splitlines()


def test_verify_says_the_log_is_whole_in_the_words_of_check(tmp_path: Path) -> None:
    log = _log(tmp_path, young=3)
    result = _run(log, "audit", "verify")
    assert result.exit_code == 0, result.output

    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    assert set(report) == VERIFY_KEYS
    assert (report["ok"], report["events"], report["checkpoints"]) == (True, 3, 3)

    said = _said(result)
    assert said[0] == "审计日志 3 条已验证，与 3 个签名检查点相符"
    assert said[-1] == "结论：审计日志完整"
    assert not ENGLISH.search(result.stderr), said
    # One wording: `materials check` says the log's line exactly so.
    backends = open_backends(log.settings)
    try:
        assert consistency.check_audit(backends).summary == said[0]
    finally:
        backends.close()


def test_verify_names_the_failure_in_chinese(tmp_path: Path) -> None:
    log = _log(tmp_path, young=3)
    genuine = load_verifier(log.settings)
    assert genuine is not None
    other = tmp_path / "other.pub"
    other.write_text(Signer(genuine.name, Ed25519PrivateKey.generate()).verifier.text() + "\n")

    result = _run(log, "audit", "verify", "--public-key", str(other))
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert set(report) == FAILED_KEYS
    assert (report["ok"], report["reason"]) == (False, "checkpoint_signature")

    said = _said(result)
    first = report["first_bad_seq"]
    assert said[0].startswith(f"审计日志在 seq {first}")
    assert said[0].endswith("：检查点签名无效（检查点被伪造或改动）")
    assert said[1] == f"详情：{report['detail']}"
    assert said[-1].startswith("结论：审计日志不可信")
    assert "audit log fails" not in result.stderr


@pytest.mark.parametrize(
    ("first", "last", "said"),
    [
        (None, None, "审计日志不符：回执与日志不符"),
        (4, 4, "审计日志在 seq 4 处不符：回执与日志不符"),
        (4, 9, "审计日志在 seq 4 至 9 之间不符：回执与日志不符"),
    ],
)
def test_a_failure_says_where_as_far_as_it_is_known(
    first: int | None, last: int | None, said: str
) -> None:
    report = VerifyReport(
        ok=False, events=3, head="", first_bad_seq=first, last_bad_seq=last, reason="receipt"
    )
    assert verify_summary(report) == said


def test_archive_says_each_range_in_chinese(tmp_path: Path) -> None:
    log = _log(tmp_path, old=10, young=2)
    result = _run(log, "audit", "archive", "--prune", "--max-events", "6")
    assert result.exit_code == 0, result.output

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [set(line) for line in lines] == [ARCHIVE_KEYS, ARCHIVE_KEYS, {"archived", "message"}]
    assert lines[-1] == {"archived": 0, "message": NOTHING_TO_ARCHIVE}

    said = _said(result)
    assert said == [
        f"已归档 seq 1 至 6，共 6 条事件：{lines[0]['archive']}；已从数据库清理 6 条",
        f"已归档 seq 7 至 10，共 4 条事件：{lines[1]['archive']}；已从数据库清理 4 条",
        NOTHING_TO_ARCHIVE,
    ]


def test_archive_without_a_signing_key_says_why(tmp_path: Path) -> None:
    log = _log(tmp_path, old=3, sequenced=False)
    result = _run(log, "audit", "archive")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert _said(result) == [NO_SIGNING_KEY]
