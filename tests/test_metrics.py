"""GET /metrics: not public unless a token is set, then the request latency by route template, the
uploads, and the work queues counted from the database; summed over `serve --workers N`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from services.audit_sequencer import AuditSequencer
from services.backends import Backends
from services.models import Document, IndexStatus
from tests.conftest import Api, make_settings, served_county
from tests.server_process import ServerProcess, environment

TOKEN = "metrics-token-0123456789"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Api, Backends]]:
    """The API with a metrics token, and its backends."""
    with served_county(make_settings(tmp_path / "data", metrics_token=TOKEN)) as opened:
        yield opened


@pytest.fixture
def watched_database(tmp_path: Path, database_url: str) -> Iterator[tuple[Api, Backends]]:
    """The same on each kind of database (SQLite, PostgreSQL)."""
    settings = make_settings(tmp_path / "data", metrics_token=TOKEN, database_url=database_url)
    with served_county(settings) as opened:
        yield opened


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) → value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, frozenset(labels.items()))]


def scrape(api: Api) -> str:
    response = api.client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_metrics_are_not_found_without_a_token_setting(client: TestClient) -> None:
    for headers in ({}, SCRAPE):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", TOKEN, f"Basic {TOKEN}"]
)
def test_metrics_refuse_a_missing_or_wrong_token(
    watched: tuple[Api, Backends], authorization: str | None
) -> None:
    api, _ = watched
    headers = {"Authorization": authorization} if authorization else {}
    response = api.client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "materials_" not in response.text


def test_request_latency_is_counted_by_route_template(watched: tuple[Api, Backends]) -> None:
    api, _ = watched
    uploaded = api.upload("east", "plan.txt", "乡镇计划".encode(), "text/plain")
    assert uploaded.status_code == 201, uploaded.text
    document_id = uploaded.json()["id"]
    for _ in range(3):
        shown = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers("east"))
        assert shown.status_code == 200
    assert api.client.get("/no/such/page-12345").status_code == 404

    text = scrape(api)
    route = "/api/v1/documents/{document_id}"
    count = "materials_http_request_duration_seconds_count"
    assert value(text, count, route=route, method="GET", status="2xx") == 3
    assert value(text, count, route="/api/v1/documents", method="POST", status="2xx") == 1
    assert value(text, count, route="unmatched", method="GET", status="4xx") == 1
    # One series per route, never per path asked for.
    assert document_id not in text
    assert "page-12345" not in text


def test_uploads_and_their_bytes_are_counted(watched: tuple[Api, Backends]) -> None:
    api, _ = watched
    content = "统计报表 2026".encode()
    assert api.upload("east", "report.txt", content, "text/plain").status_code == 201
    assert api.upload("east", "again.txt", content, "text/plain").status_code == 200
    refused = api.upload("east", "empty.txt", b"", "text/plain")
    assert refused.status_code >= 400

    text = scrape(api)
    assert value(text, "materials_uploads_total", result="stored") == 1
    assert value(text, "materials_uploads_total", result="duplicate") == 1
    assert value(text, "materials_upload_bytes_total") == 2 * len(content)


def test_work_queues_are_read_from_the_database(
    watched_database: tuple[Api, Backends],
) -> None:
    api, backends = watched_database
    before = scrape(api)
    assert value(before, "materials_database_up") == 1
    assert value(before, "materials_outbox_pending_events") == 0
    assert value(before, "materials_outbox_oldest_pending_age_seconds") == 0
    assert value(before, "materials_documents_index_failed") == 0

    first = api.upload("east", "a.txt", b"first material", "text/plain").json()["id"]
    api.upload("west", "b.txt", b"second material", "text/plain")
    with backends.db.session() as session:
        session.execute(
            update(Document)
            .where(Document.id == first)
            .values(index_status=IndexStatus.failed.value)
        )

    after = scrape(api)
    # No worker runs here: both uploads wait in the outbox.
    assert value(after, "materials_outbox_pending_events") == 2
    assert value(after, "materials_outbox_oldest_pending_age_seconds") >= 0
    assert value(after, "materials_documents_index_failed") == 1
    # Logins and uploads are audited; nothing has numbered them yet.
    assert value(after, "materials_audit_unsequenced_events") > 0

    # Another process's sequencer does the work: the next scrape sees it.
    AuditSequencer(backends.db, backends.settings, backends.blobs).drain()
    drained = scrape(api)
    assert value(drained, "materials_audit_unsequenced_events") == 0


@pytest.mark.slow
def test_serve_with_several_workers_sums_every_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stale = data_dir / "metrics" / "counter_999999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over from the last run")
    server = ServerProcess(
        data_dir,
        tmp_path / "serve.log",
        env=environment(metrics_token=TOKEN, embedded_worker="false"),
        workers=2,
    )
    try:
        server.wait_until_up()
        # A new connection each time, so that both processes answer some of them.
        for _ in range(20):
            assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
        text = httpx.get(f"{server.base_url}/metrics", headers=SCRAPE, timeout=10).text
    finally:
        server.stop()
    assert not stale.exists()
    # Both processes keep their counters in the shared directory.
    assert len(list((data_dir / "metrics").glob("counter_*.db"))) == 2
    count = "materials_http_request_duration_seconds_count"
    # wait_until_up's own requests are counted as well.
    assert value(text, count, route="/healthz", method="GET", status="2xx") >= 20
    assert value(text, "materials_outbox_pending_events") == 0
