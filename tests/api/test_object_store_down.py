"""The object store is down: the API still starts, reports not ready, and uploads answer 503.

An upload that cannot store its bytes leaves nothing behind: no document, no outbox event, no
successful upload in the audit log, no spooled file. The store is a real SeaweedFS, stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import AuditEvent, Document, OutboxEvent
from tests.conftest import Api, make_settings, seed_county
from tests.contract.test_blob_store import restart_seaweedfs
from tests.servers import S3Server, free_port, start_seaweedfs

REPORT = "会议纪要：第三季度入户走访安排".encode()


def s3_settings(data_dir: Path, server: S3Server, bucket: str) -> Settings:
    return make_settings(
        data_dir,
        s3_endpoint=f"http://{server.endpoint}",
        s3_access_key=server.access_key,
        s3_secret_key=server.secret_key,
        s3_bucket=bucket,
    )


@contextmanager
def running_app(settings: Settings) -> Iterator[tuple[Api, Backends]]:
    """The sample county, then the app on these settings and its backends; as in production,
    the app opens the blob store itself, and that must not need the store to answer."""
    seeded = open_backends(settings)
    try:
        seed_county(seeded)
    finally:
        seeded.close()
    app = create_app(settings)
    with TestClient(app) as client:
        yield Api(client, {}), app.state.backends


def stored(backends: Backends) -> dict[str, int]:
    """How many documents, outbox events and successful uploads the database holds."""
    with backends.db.session() as session:
        uploads = select(func.count()).where(
            AuditEvent.action == "upload", AuditEvent.outcome == "allowed"
        )
        return {
            "documents": session.scalar(select(func.count()).select_from(Document)) or 0,
            "outbox": session.scalar(select(func.count()).select_from(OutboxEvent)) or 0,
            "uploads": session.scalar(uploads) or 0,
        }


def spooled_files(settings: Settings) -> list[Path]:
    return sorted(settings.spool_dir.rglob("*")) if settings.spool_dir.exists() else []


def assert_store_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert response.json() == {
        "error": {
            "code": "backend_unavailable",
            "message": "object store 暂不可用，请稍后重试",
            "details": {"backend": "object store"},
        }
    }


def assert_not_ready(api: Api) -> None:
    ready = api.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["ready"] is False
    assert body["backends"]["object_store"].startswith("unavailable")
    assert body["backends"]["database"] == "ok"
    assert body["error"]["code"] == "backend_unavailable"
    assert "object_store" in body["error"]["message"]


def test_the_api_starts_with_the_store_down_and_refuses_uploads(
    tmp_path: Path, bucket: str
) -> None:
    nobody = S3Server(f"127.0.0.1:{free_port()}", "materials-test", "secret-key", tmp_path)
    settings = s3_settings(tmp_path / "data", nobody, bucket)

    with running_app(settings) as (api, backends):
        assert_not_ready(api)

        response = api.upload("east", "纪要.txt", REPORT, "text/plain")

        assert_store_unavailable(response)
        assert stored(backends) == {"documents": 0, "outbox": 0, "uploads": 0}
        assert spooled_files(settings) == []


def test_the_api_becomes_ready_when_the_store_comes_up(tmp_path: Path, bucket: str) -> None:
    server = start_seaweedfs(tmp_path / "seaweedfs")
    server.stop()
    settings = s3_settings(tmp_path / "data", server, bucket)

    with running_app(settings) as (api, backends):
        assert_not_ready(api)
        assert_store_unavailable(api.upload("east", "纪要.txt", REPORT, "text/plain"))

        restart_seaweedfs(server)
        try:
            ready = api.client.get("/readyz")
            assert ready.status_code == 200, ready.text
            created = api.upload("east", "纪要.txt", REPORT, "text/plain")
            assert created.status_code == 201, created.text
            assert stored(backends) == {"documents": 1, "outbox": 1, "uploads": 1}
        finally:
            server.stop()


def test_a_store_that_goes_down_after_start_refuses_uploads(tmp_path: Path, bucket: str) -> None:
    server = start_seaweedfs(tmp_path / "seaweedfs")
    settings = s3_settings(tmp_path / "data", server, bucket)
    try:
        with running_app(settings) as (api, backends):
            before = api.upload("east", "纪要.txt", REPORT, "text/plain")
            assert before.status_code == 201, before.text
            assert api.client.get("/readyz").status_code == 200

            server.stop()
            response = api.upload("east", "总结.txt", "第三季度工作总结".encode(), "text/plain")

            assert_store_unavailable(response)
            assert stored(backends) == {"documents": 1, "outbox": 1, "uploads": 1}
            assert spooled_files(settings) == []
            assert_not_ready(api)
    finally:
        server.stop()
