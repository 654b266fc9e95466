"""``materials dictionary add|remove|list``: the county dictionary on the server console.

Commands run in-process through click's runner, with an explicit ``--data-dir``; every change is
audited as the console user, and documents mentioning a changed word are queued for reindexing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from api.cli import main
from services.access import Principal
from services.backends import open_backends
from services.demo.county import upload
from services.models import AuditEvent, DictionaryWord, OutboxEvent, User
from tests.conftest import make_settings, seed_county


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The sample county with one 东镇 document that mentions 柳树湾村 in its text."""
    data_dir = tmp_path / "data"
    backends = open_backends(make_settings(data_dir))
    try:
        seed_county(backends)
        with backends.db.session() as session:
            east = session.scalar(select(User).where(User.username == "east"))
            assert east is not None
            principal = Principal.of(east)
        upload(
            backends,
            principal=principal,
            filename="会议记录.txt",
            fields={"title": "党支部会议记录", "description": "柳树湾村道路硬化"},
            content="柳树湾村党支部会议记录。".encode(),
        )
    finally:
        backends.close()
    return data_dir


def _pending_events(data_dir: Path) -> int:
    backends = open_backends(make_settings(data_dir))
    try:
        with backends.db.session() as session:
            return len(
                list(session.scalars(select(OutboxEvent.id).where(OutboxEvent.done_at.is_(None))))
            )
    finally:
        backends.close()


def test_add_list_remove(data_dir: Path) -> None:
    before = _pending_events(data_dir)  # the upload's own event

    added = run("dictionary", "add", "柳树湾村", "杨柳村", "--data-dir", str(data_dir))
    assert added.exit_code == 0, added.output
    assert lines(added) == [
        {"added": ["柳树湾村", "杨柳村"], "already_present": [], "reindex_queued": 1}
    ]
    assert _pending_events(data_dir) == before + 1

    again = run("dictionary", "add", "杨柳村", "--data-dir", str(data_dir))
    assert lines(again) == [{"added": [], "already_present": ["杨柳村"], "reindex_queued": 0}]

    listed = lines(run("dictionary", "list", "--data-dir", str(data_dir)))
    own = [line for line in listed if line["source"] == "dictionary"]
    assert [(line["word"], line["added_by"]) for line in own] == [
        ("杨柳村", None),  # added at one moment: by word
        ("柳树湾村", None),
    ]
    assert {line["word"] for line in listed if line["source"] == "org"} == {
        "东镇",
        "扶贫办",
        "测试县",
        "统计局",
        "西乡",
    }

    removed = run("dictionary", "remove", "杨柳村", "--data-dir", str(data_dir))
    assert removed.exit_code == 0, removed.output
    assert lines(removed) == [{"removed": "杨柳村", "reindex_queued": 0}]

    backends = open_backends(make_settings(data_dir))
    try:
        with backends.db.session() as session:
            events = list(
                session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.action.in_(["dictionary_add", "dictionary_remove"]))
                    .order_by(AuditEvent.id)
                )
            )
            words = list(session.scalars(select(DictionaryWord.word)))
    finally:
        backends.close()
    assert [(event.action, event.role) for event in events] == [
        ("dictionary_add", "system"),
        ("dictionary_add", "system"),
        ("dictionary_remove", "system"),
    ]
    assert all(event.actor.startswith("cli:") for event in events)
    assert words == ["柳树湾村"]


def test_a_bad_word_is_one_json_error_and_nothing_is_stored(data_dir: Path) -> None:
    refused = run("dictionary", "add", "柳树湾村", "村", "--data-dir", str(data_dir))

    assert refused.exit_code == 1
    [line] = lines(refused)
    assert line["error"]["code"] == "word_length"
    assert "2 到 20 个字" in line["error"]["message"]
    listed = lines(run("dictionary", "list", "--data-dir", str(data_dir)))
    assert [line for line in listed if line["source"] == "dictionary"] == []

    absent = run("dictionary", "remove", "柳树湾村", "--data-dir", str(data_dir))
    assert absent.exit_code == 1
    assert lines(absent)[0]["error"]["code"] == "word_not_found"
