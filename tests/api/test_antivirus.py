"""Virus scanning: every file is scanned by ClamAV before it is indexed or served.

A real clamd (Debian's, started by deploy/clamav.sh with the project's test signatures) scans the
uploads; the EICAR test file stands for malware.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.app import create_app
from indexer.worker import IndexWorker
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import AuditEvent, OutboxEvent, utcnow
from tests.conftest import Api, seed_county
from tests.servers import ClamavServer, free_port, start_clamav

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@contextmanager
def app_with(settings: Settings, **overrides: Any) -> Iterator[tuple[Api, Backends]]:
    chosen = settings.model_copy(update=overrides)
    backends = open_backends(chosen)
    seed_county(backends)
    try:
        with TestClient(create_app(chosen, backends=backends)) as client:
            yield Api(client, {}), backends
    finally:
        backends.close()


def drain(backends: Backends) -> None:
    IndexWorker(backends, backends.index).drain()


def make_due(backends: Backends) -> None:
    """Events waiting out their backoff become due now."""
    with backends.db.session() as session:
        session.execute(update(OutboxEvent).values(available_at=utcnow()))


def upload(api: Api, name: str, content: bytes) -> dict[str, Any]:
    response = api.upload("east", name, content, "text/plain", title=name.rsplit(".", 1)[0])
    assert response.status_code == 201, response.text
    document: dict[str, Any] = response.json()
    return document


def document(api: Api, document_id: str) -> dict[str, Any]:
    response = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers("east"))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def download(api: Api, document_id: str, username: str = "poverty") -> Any:
    return api.client.get(
        f"/api/v1/documents/{document_id}/download",
        headers=api.headers(username),
        follow_redirects=False,
    )


def found(api: Api, word: str) -> int:
    response = api.client.get("/api/v1/search", params={"q": word}, headers=api.headers("poverty"))
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def test_an_infected_file_is_quarantined_never_indexed_or_served(
    settings: Settings, clamav: ClamavServer
) -> None:
    with app_with(settings, clamd_address=clamav.address) as (api, backends):
        infected = upload(api, "芦花荡走访台账.txt", EICAR + "\n芦花荡村入户走访记录".encode())
        assert infected["scan_status"] == "pending"
        drain(backends)

        shown = document(api, infected["id"])
        assert shown["scan_status"] == "infected"
        assert "EICAR" in shown["scan_detail"]
        assert shown["index_status"] == "failed"
        refused = download(api, infected["id"])
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "scan_infected"
        own = download(api, infected["id"], "east")
        assert own.status_code == 409  # not even to its uploader
        assert found(api, "芦花荡") == 0
        with backends.db.session() as session:
            quarantined = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "quarantine")
            ).all()
            refusals = session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "download", AuditEvent.outcome == "denied"
                )
            ).all()
        assert [event.document_id for event in quarantined] == [infected["id"]]
        assert "EICAR" in quarantined[0].details["signature"]
        assert {event.details["reason"] for event in refusals} == {"scan_infected"}


def test_a_clean_file_is_served_and_found_only_once_scanned(
    settings: Settings, clamav: ClamavServer
) -> None:
    with app_with(settings, clamd_address=clamav.address) as (api, backends):
        clean = upload(api, "柳河湾走访.txt", "柳河湾村入户走访记录，共走访十二户。".encode())
        waiting = download(api, clean["id"])
        assert waiting.status_code == 409
        assert waiting.json()["error"]["code"] == "scan_pending"

        drain(backends)

        shown = document(api, clean["id"])
        assert (shown["scan_status"], shown["index_status"]) == ("clean", "indexed")
        assert download(api, clean["id"]).status_code in (200, 302)
        assert found(api, "柳河湾") == 1


def test_files_wait_while_the_scanner_is_down_and_are_scanned_when_it_returns(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    with app_with(settings, clamd_address=f"127.0.0.1:{port}", clamd_timeout_seconds=5.0) as (
        api,
        backends,
    ):
        stored = upload(api, "石桥村台账.txt", "石桥村低保户台账".encode())
        drain(backends)
        shown = document(api, stored["id"])
        assert (shown["scan_status"], shown["index_status"]) == ("pending", "pending")
        assert download(api, stored["id"]).json()["error"]["code"] == "scan_pending"
        ready = api.client.get("/readyz").json()
        assert ready["antivirus"].startswith("unavailable")

        server = start_clamav(tmp_path / "clamav", port=port)
        try:
            make_due(backends)
            drain(backends)
        finally:
            server.stop()
        shown = document(api, stored["id"])
        assert (shown["scan_status"], shown["index_status"]) == ("clean", "indexed")
        assert found(api, "石桥村") == 1


def test_a_file_beyond_the_scanners_limits_is_flagged_not_passed(
    settings: Settings, tmp_path: Path
) -> None:
    server = start_clamav(tmp_path / "clamav", CLAMAV_STREAM_MAX="1M")
    try:
        with app_with(settings, clamd_address=server.address, serve_unscanned=False) as (
            api,
            backends,
        ):
            large = upload(api, "大台账.txt", "青松村".encode() + b"0123456789\n" * 150_000)
            drain(backends)
            shown = document(api, large["id"])
            assert shown["scan_status"] == "too_large"
            assert shown["index_status"] == "failed"
            assert download(api, large["id"]).json()["error"]["code"] == "scan_too_large"
            assert found(api, "青松村") == 0
    finally:
        server.stop()


@pytest.mark.parametrize("serve_unscanned", [True, False])
def test_without_a_scanner_files_are_unscanned_and_a_setting_decides(
    settings: Settings, serve_unscanned: bool
) -> None:
    with app_with(settings, serve_unscanned=serve_unscanned) as (api, backends):
        stored = upload(api, "梨园村.txt", "梨园村入户走访".encode())
        assert stored["scan_status"] == "unscanned"
        drain(backends)
        assert api.client.get("/readyz").json()["antivirus"].startswith("not configured")

        answer = download(api, stored["id"])
        if serve_unscanned:
            assert answer.status_code in (200, 302)
            assert found(api, "梨园村") == 1
        else:
            assert answer.status_code == 409
            assert answer.json()["error"]["code"] == "scan_unscanned"
            assert found(api, "梨园村") == 0
