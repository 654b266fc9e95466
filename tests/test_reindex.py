"""Rebuilding the index from the database and the blob store: complete, resumable, counted."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.cli import main
from indexer.reindex import refill, reindex
from indexer.worker import IndexWorker
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import Document, DocumentText, OutboxEvent, ReindexRun
from services.search import ReadScope, SearchQuery
from services.search._elasticsearch import ElasticsearchIndex
from services.search._sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from tests.conftest import Api, seed_county, stack_settings
from tests.samples import docx_bytes


class Interrupted(Exception):
    pass


def _everything(backends: Backends, text: str) -> set[str]:
    result = backends.index.search(
        SearchQuery(text=text, scope=ReadScope(everything=True), size=100)
    )
    return {hit.document_id for hit in result.hits}


def test_an_interrupted_rebuild_resumes_and_ends_with_every_live_document(
    api: Api, backends: Backends
) -> None:
    ids = []
    for number in range(60):
        response = api.upload("east", f"记录{number}.txt", f"第{number}次入户走访记录".encode())
        ids.append(response.json()["id"])
    withdrawn = ids.pop()
    assert api.client.delete(
        f"/api/v1/documents/{withdrawn}", headers=api.headers("east")
    ).is_success
    # Nothing was indexed yet (no worker ran): the rebuild does it all.
    assert backends.index.count() == 0

    seen = 0

    def stop_after_thirty(advanced: int) -> None:
        nonlocal seen
        seen += advanced
        if seen == 30:
            raise Interrupted

    with pytest.raises(Interrupted):
        reindex(backends, backends.index, on_progress=stop_after_thirty)
    partial = backends.index.count()
    assert 25 <= partial <= 30

    starts: list[tuple[int, int]] = []
    report = reindex(backends, backends.index, on_total=lambda t, d: starts.append((t, d)))
    assert report.resumed is True
    assert starts == [(60, 25)]  # resumed from the last checkpoint, not from zero
    assert (report.indexed, report.failed, report.removed, report.total) == (59, 0, 1, 60)
    assert backends.index.count() == 59
    assert _everything(backends, "入户走访") == set(ids)

    fresh = reindex(backends, backends.index)
    assert fresh.resumed is False
    assert fresh.indexed == 59


def test_reindex_command_prints_the_counts(api: Api, settings: Settings) -> None:
    api.upload("west", "纪要.txt", "河口乡防汛会议纪要".encode())
    result = CliRunner().invoke(main, ["reindex", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    last_line = result.stdout.strip().splitlines()[-1]
    assert '"indexed": 1' in last_line
    assert '"documents": 1' in last_line


def test_on_elasticsearch_searches_use_the_old_index_until_the_rebuild_switches(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with stack_settings(request, "real", tmp_path / "data") as settings:
        backends = open_backends(settings)
        seed_county(backends)
        try:
            with TestClient(create_app(settings, backends=backends)) as client:
                _rebuild_behind_the_alias(Api(client, {}), backends)
        finally:
            backends.close()


def _rebuild_behind_the_alias(api: Api, backends: Backends) -> None:
    index = backends.index
    assert isinstance(index, ElasticsearchIndex)
    ids = [
        api.upload("east", f"记录{number}.txt", f"第{number}次入户走访记录".encode()).json()["id"]
        for number in range(40)
    ]
    IndexWorker(backends, index).drain()
    before = index.physical_index()
    assert _everything(backends, "入户走访") == set(ids)

    seen = 0

    def stop_after_ten(advanced: int) -> None:
        nonlocal seen
        seen += advanced
        if seen == 10:
            raise Interrupted

    with pytest.raises(Interrupted):
        reindex(backends, index, on_progress=stop_after_ten)
    # Mid-rebuild: searches still see the whole old index.
    assert index.physical_index() == before
    assert _everything(backends, "入户走访") == set(ids)

    # Live changes while the rebuild is unfinished reach both indices.
    withdrawn = ids.pop(0)
    deleted = api.client.delete(f"/api/v1/documents/{withdrawn}", headers=api.headers("east"))
    assert deleted.is_success
    added = api.upload("east", "新增.txt", "新增入户走访记录".encode()).json()["id"]
    IndexWorker(backends, index).drain()
    assert _everything(backends, "入户走访") == {*ids, added}

    report = reindex(backends, index)
    assert report.resumed is True
    assert (report.indexed, report.removed, report.total) == (40, 1, 41)
    assert index.physical_index() != before
    assert _everything(backends, "入户走访") == {*ids, added}
    assert index.count() == 40
    with Elasticsearch(backends.settings.elasticsearch_url) as es:
        assert not es.indices.exists(index=before)


# -- the text kept from each file ----------------------------------------------------------------


def _kept(backends: Backends, document_id: str) -> DocumentText | None:
    with backends.db.session() as session:
        return session.get(DocumentText, document_id)


def _blob_path(backends: Backends, document_id: str) -> Path:
    with backends.db.session() as session:
        sha256 = session.get_one(Document, document_id).sha256
    return backends.settings.blob_dir / sha256[:2] / sha256[2:4] / sha256


def _upload_and_index(api: Api, backends: Backends, filename: str, content: bytes) -> str:
    response = api.upload("east", filename, content)
    assert response.status_code == 201, response.text
    IndexWorker(backends, backends.index).drain()
    document_id: str = response.json()["id"]
    return document_id


def test_indexing_keeps_the_masked_text_and_a_rebuild_uses_it_without_the_file(
    api: Api, backends: Backends
) -> None:
    body = "城关镇入户走访记录：帮扶责任人电话13812345678，核实饮水安全情况。"
    document_id = _upload_and_index(api, backends, "走访记录.txt", body.encode())
    kept = _kept(backends, document_id)
    assert kept is not None
    with backends.db.session() as session:
        document = session.get_one(Document, document_id)
    assert kept.sha256 == document.sha256
    assert "饮水安全" in kept.body
    assert "13812345678" not in kept.body  # what the index holds: masked

    _blob_path(backends, document_id).unlink()  # the rebuild cannot fetch the file
    backends.index.delete([document_id])
    assert _everything(backends, "饮水安全") == set()
    report = reindex(backends, backends.index)
    assert (report.indexed, report.failed) == (1, 0)
    assert _everything(backends, "饮水安全") == {document_id}  # a word only the body holds
    with backends.db.session() as session:
        after = session.get_one(Document, document_id)
    assert (after.index_status, after.text_source, after.contains_personal_data) == (
        "indexed",
        "text_layer",
        True,
    )


def test_reindex_extract_reads_every_file_again(
    api: Api, backends: Backends, settings: Settings
) -> None:
    document_id = _upload_and_index(api, backends, "值班.txt", "河口村防汛值班巡查堤坝".encode())
    with backends.db.session() as session:  # as an older extractor might have read it
        session.get_one(DocumentText, document_id).body = "旧版提取的文字"
    reindex(backends, backends.index)
    assert _everything(backends, "旧版提取") == {document_id}  # the kept text, not the file
    assert _everything(backends, "巡查堤坝") == set()

    result = CliRunner().invoke(
        main, ["reindex", "--extract", "--data-dir", str(settings.data_dir)]
    )
    assert result.exit_code == 0, result.output
    assert _everything(backends, "巡查堤坝") == {document_id}
    assert _everything(backends, "旧版提取") == set()
    kept = _kept(backends, document_id)
    assert kept is not None
    assert "巡查堤坝" in kept.body


def test_a_text_kept_from_another_file_is_not_used(api: Api, backends: Backends) -> None:
    document_id = _upload_and_index(api, backends, "台账.txt", "低保户动态调整台账".encode())
    with backends.db.session() as session:
        kept = session.get_one(DocumentText, document_id)
        kept.sha256, kept.body = "0" * 64, "另一个文件的文字"
    reindex(backends, backends.index)
    assert _everything(backends, "另一个文件") == set()
    assert _everything(backends, "动态调整") == {document_id}
    replaced = _kept(backends, document_id)
    assert replaced is not None
    assert "动态调整" in replaced.body
    assert replaced.sha256 == hashlib.sha256("低保户动态调整台账".encode()).hexdigest()


def test_a_failed_extraction_keeps_no_text_and_the_next_try_extracts_again(
    api: Api, backends: Backends
) -> None:
    good = docx_bytes("城关镇秸秆禁烧工作总结")
    document_id = _upload_and_index(api, backends, "总结.docx", good)
    assert _kept(backends, document_id) is not None
    blob = _blob_path(backends, document_id)
    blob.chmod(0o640)
    blob.write_bytes(good[:-200])  # truncated: the zip's directory is gone

    report = reindex(backends, backends.index, extract=True)
    assert (report.indexed, report.failed) == (0, 1)
    assert _kept(backends, document_id) is None
    assert _everything(backends, "秸秆禁烧") == set()

    blob.write_bytes(good)
    report = reindex(backends, backends.index)  # no kept text: extracted without being asked
    assert (report.indexed, report.failed) == (1, 0)
    assert _everything(backends, "秸秆禁烧") == {document_id}
    assert _kept(backends, document_id) is not None


# -- an embedded index rebuilt for a new schema --------------------------------------------------


def _as_an_older_version_left_it(settings: Settings) -> None:
    """Mark ``search.sqlite3`` with an older schema, as the version before this one wrote it."""
    with closing(sqlite3.connect(settings.data_dir / "search.sqlite3")) as conn:
        conn.execute(f"PRAGMA user_version = {SQLITE_SCHEMA_VERSION - 1}")


def _events_per_document(backends: Backends) -> Counter[str]:
    with backends.db.session() as session:
        return Counter(session.scalars(select(OutboxEvent.document_id)))


def test_the_embedded_server_refills_an_index_rebuilt_for_a_new_schema(
    api: Api, backends: Backends, settings: Settings
) -> None:
    ids = [
        _upload_and_index(api, backends, f"走访{n}.txt", f"第{n}次入户走访".encode())
        for n in range(3)
    ]
    withdrawn = ids.pop()
    assert api.client.delete(
        f"/api/v1/documents/{withdrawn}", headers=api.headers("east")
    ).is_success
    IndexWorker(backends, backends.index).drain()
    waiting = api.upload("east", "走访9.txt", "第9次入户走访".encode()).json()["id"]
    assert _everything(backends, "入户走访") == set(ids)
    events_before = _events_per_document(backends)

    _as_an_older_version_left_it(settings)
    embedded = settings.model_copy(update={"embedded_worker": True})
    upgraded = open_backends(embedded)  # as the new version's `materials serve` opens it
    try:
        assert upgraded.index.count() == 0  # rebuilt empty
        assert upgraded.index.needs_refill()
        with TestClient(create_app(embedded, backends=upgraded)):
            deadline = time.monotonic() + 30
            while _everything(upgraded, "入户走访") != {*ids, waiting}:
                assert time.monotonic() < deadline, "the server did not refill its index"
                time.sleep(0.1)
        assert not upgraded.index.needs_refill()
        events = _events_per_document(upgraded)
        # One more event for each live indexed document, none for the one already waiting,
        # none for the withdrawn one.
        assert events - events_before == Counter(ids)
        assert upgraded.index.count() == 3
    finally:
        upgraded.close()

    reopened = open_backends(settings)  # the next start finds nothing to refill
    try:
        assert not reopened.index.needs_refill()
        assert refill(reopened, reopened.index) == 0
        assert reopened.index.count() == 3
    finally:
        reopened.close()


def test_a_full_reindex_leaves_nothing_to_refill_and_a_resumed_one_does(
    api: Api, backends: Backends, settings: Settings
) -> None:
    ids = [
        _upload_and_index(api, backends, f"台账{n}.txt", f"第{n}户低保台账".encode())
        for n in range(2)
    ]
    _as_an_older_version_left_it(settings)
    upgraded = open_backends(settings)
    try:
        assert upgraded.index.needs_refill()
        with upgraded.db.session() as session:  # a run the older version left unfinished
            session.add(ReindexRun(indexed=1, failed=0, removed=0, last_document_id=min(ids)))
        resumed = reindex(upgraded, upgraded.index)
        assert resumed.resumed
        assert upgraded.index.needs_refill()  # it skipped what the old schema held
        assert reindex(upgraded, upgraded.index).resumed is False
        assert not upgraded.index.needs_refill()
        assert _everything(upgraded, "低保台账") == set(ids)
    finally:
        upgraded.close()
