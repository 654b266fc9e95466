"""Rebuilding the index from the database and the blob store: complete, resumable, counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main
from indexer.reindex import reindex
from indexer.worker import IndexWorker
from services.backends import Backends, open_backends
from services.config import Settings
from services.search import ReadScope, SearchQuery
from services.search._elasticsearch import ElasticsearchIndex
from tests.conftest import Api, seed_county, stack_settings


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
