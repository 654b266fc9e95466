"""Elasticsearch down: uploads still succeed, search answers 503, indexing catches up afterwards."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.app import create_app
from indexer.worker import IndexWorker
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import Document, OutboxEvent, utcnow
from tests.conftest import Api, seed_county
from tests.samples import text_bytes
from tests.servers import ElasticsearchServer


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def alias(elasticsearch: ElasticsearchServer) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:16]}"
    yield name
    with Elasticsearch(elasticsearch.url) as client:
        names = list(client.indices.get(index=f"{name}-*").body)
        if names:
            client.indices.delete(index=names)


@pytest.fixture
def down(settings: Settings, alias: str) -> Iterator[tuple[Api, Backends, Settings]]:
    """The stack's database and store, with an Elasticsearch URL nothing answers on."""
    chosen = settings.model_copy(
        update={
            "elasticsearch_url": f"http://127.0.0.1:{closed_port()}",
            "elasticsearch_index": alias,
            "elasticsearch_timeout_seconds": 2.0,
        }
    )
    backends = open_backends(chosen)
    seed_county(backends)
    try:
        with TestClient(create_app(chosen, backends=backends)) as client:
            yield Api(client, {}), backends, chosen
    finally:
        backends.close()


def test_uploads_succeed_search_answers_503_and_indexing_catches_up(
    down: tuple[Api, Backends, Settings], elasticsearch: ElasticsearchServer
) -> None:
    api, backends, chosen = down
    uploaded = api.upload("east", "走访记录.txt", text_bytes("城关镇入户走访记录：危房改造"))
    assert uploaded.status_code == 201, uploaded.text
    document_id = uploaded.json()["id"]

    searched = api.client.get(
        "/api/v1/search", params={"q": "危房改造"}, headers=api.headers("poverty")
    )
    assert searched.status_code == 503
    assert searched.headers["retry-after"]
    error = searched.json()["error"]
    assert error["code"] == "backend_unavailable"
    assert error["details"]["backend"] == "search index"

    ready = api.client.get("/readyz")
    assert ready.status_code == 503
    report = ready.json()["backends"]
    assert report["database"] == "ok"
    assert report["object_store"] == "ok"
    assert report["search_index"].startswith("unavailable")

    # The document itself is there; the worker keeps its index event for later.
    viewed = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers("poverty"))
    assert viewed.status_code == 200
    assert IndexWorker(backends, backends.index).run_once() == 1
    with backends.db.session() as session:
        event = session.scalars(select(OutboxEvent).where(OutboxEvent.document_id == document_id))
        (pending,) = event.all()
        assert pending.done_at is None
        assert pending.attempts == 1
        assert "search index" in (pending.last_error or "")
        assert session.get_one(Document, document_id).index_status == "pending"
        # Time passes: the retry is due.
        session.execute(update(OutboxEvent).values(available_at=utcnow() - timedelta(seconds=1)))

    # Elasticsearch is back (the same alias on a server that answers).
    back = chosen.model_copy(update={"elasticsearch_url": elasticsearch.url})
    recovered = open_backends(back)
    try:
        assert IndexWorker(recovered, recovered.index).drain() == 1
        with TestClient(create_app(back, backends=recovered)) as client:
            again = Api(client, {})
            found = client.get(
                "/api/v1/search", params={"q": "危房改造"}, headers=again.headers("poverty")
            )
            assert found.status_code == 200, found.text
            assert [hit["document"]["id"] for hit in found.json()["hits"]] == [document_id]
            assert client.get("/readyz").status_code == 200
    finally:
        recovered.close()
