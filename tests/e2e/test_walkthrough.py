"""The README walk-through against a real server: bootstrap, upload, share, withdraw, audit.

Everything runs as a user would: ``materials`` subprocesses and HTTP to ``materials serve``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.blobs import open_blob_store
from services.config import Settings
from tests.server_process import ServerProcess, environment, materials

pytestmark = pytest.mark.slow

PASSWORD = "walk-through-2026"

COUNTY, TOWNSHIP, DEPARTMENT = "演练县", "城关镇", "县乡村振兴局"
FILENAME = "城关镇2026年第三季度脱贫攻坚工作总结.txt"
CONTENT = "城关镇2026年第三季度脱贫攻坚工作总结\n本季度走访贫困户126户。\n".encode()
SHA256 = hashlib.sha256(CONTENT).hexdigest()


def one_json_line(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, (result.stdout, result.stderr)
    payload: dict[str, Any] = json.loads(lines[0])
    return payload


@dataclass(frozen=True)
class Site:
    """Where the walk-through's county lives: a data directory and the stack's backends."""

    settings: Settings
    env: dict[str, str]

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return materials(*args, "--data-dir", str(self.data_dir), env=self.env)


BACKEND_SETTINGS = (
    "database_url",
    "s3_endpoint",
    "s3_access_key",
    "s3_secret_key",
    "s3_bucket",
    "s3_presigned_downloads",
    "elasticsearch_url",
    "elasticsearch_index",
)


@pytest.fixture
def site(settings: Settings) -> Site:
    """The stack's backends for every subprocess; everything else at its default."""
    chosen = {name: getattr(settings, name) for name in BACKEND_SETTINGS}
    return Site(
        settings,
        environment(**{name: str(value) for name, value in chosen.items() if value is not None}),
    )


def bootstrap(site: Site, *args: str) -> dict[str, Any]:
    """Run an admin command twice: both succeed and print the same object."""
    first = site.run("admin", *args)
    assert first.returncode == 0, (first.stdout, first.stderr)
    created = one_json_line(first)
    assert created["created"] is True
    again = site.run("admin", *args)
    assert again.returncode == 0, (again.stdout, again.stderr)
    repeated = one_json_line(again)
    assert repeated["created"] is False
    assert repeated["id"] == created["id"]
    return created


def token(http: httpx.Client, username: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_walk_through(site: Site, tmp_path: Path) -> None:
    # 1. Bootstrap without the web UI; every command is idempotent.
    county = bootstrap(site, "create-org", "--kind", "county", "--name", COUNTY)
    township = bootstrap(
        site, "create-org", "--kind", "township", "--name", TOWNSHIP, "--parent", COUNTY
    )
    department = bootstrap(
        site, "create-org", "--kind", "department", "--name", DEPARTMENT, "--parent", COUNTY
    )
    assert county["kind"] == "county"
    assert township["parent_id"] == department["parent_id"] == county["id"]
    users = {
        "admin": ("admin", COUNTY),
        "chengguan": ("uploader", TOWNSHIP),
        "zhenxing": ("reader", DEPARTMENT),
        "auditor": ("auditor", COUNTY),
    }
    for username, (role, org) in users.items():
        user = bootstrap(
            site,
            "create-user",
            "--username",
            username,
            "--password",
            PASSWORD,
            "--org",
            org,
            "--role",
            role,
        )
        assert (user["username"], user["role"], user["org"]["name"]) == (username, role, org)

    # 2. Serve it.
    server = ServerProcess(site.data_dir, tmp_path / "server.log", env=site.env)
    try:
        server.wait_until_up()
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            walk_through_api(http)
    finally:
        server.stop()
    assert server.process.returncode is not None

    # 3. Offline: the chain verifies, then a tampered event is named.
    verified = site.run("audit", "verify")
    assert verified.returncode == 0, (verified.stdout, verified.stderr)
    report = one_json_line(verified)
    assert report["ok"] is True
    assert report["events"] > 10

    engine = create_engine(site.settings.resolved_database_url)
    with engine.begin() as connection:
        # An insider with the database file: the guard trigger dropped, an event rewritten.
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_events_no_update"))
        changed = connection.execute(
            text(
                "UPDATE audit_events SET actor = 'mallory' "
                "WHERE id = (SELECT event_id FROM audit_leaves WHERE seq = 3)"
            )
        )
        assert changed.rowcount == 1
    engine.dispose()
    broken = site.run("audit", "verify")
    assert broken.returncode != 0
    assert one_json_line(broken)["first_bad_seq"] == 3
    assert "seq 3" in broken.stderr

    # 4. Blobs: intact, then one is missing (the audit check fails: the log was edited above).
    checked = site.run("check", "--json")
    assert checked.returncode != 0, (checked.stdout, checked.stderr)
    report = one_json_line(checked)
    assert report["checks"]["blobs"]["ok"] is True
    assert report["checks"]["audit"]["ids"]["first_bad_seq"] == ["3"]
    blobs = open_blob_store(site.settings)
    assert blobs.exists(SHA256)
    blobs.delete(SHA256)
    missing = site.run("check", "--json")
    assert missing.returncode != 0
    report = one_json_line(missing)
    assert report["ok"] is False
    assert report["checks"]["blobs"]["counts"]["missing"] == 1


def walk_through_api(http: httpx.Client) -> None:
    uploader = token(http, "chengguan")
    reader = token(http, "zhenxing")
    auditor = token(http, "auditor")
    me = http.get("/api/v1/me", headers=uploader).json()
    assert me["org"]["name"] == TOWNSHIP
    assert me["role"] == "uploader"

    # Upload, then the same bytes again: one document.
    files = {"file": (FILENAME, CONTENT, "text/plain")}
    fields = {"category": "工作总结", "period": "2026-Q3", "tags": "脱贫攻坚,扶贫"}
    created = http.post("/api/v1/documents", headers=uploader, files=files, data=fields)
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["filename"] == FILENAME
    assert document["title"] == FILENAME.removesuffix(".txt")
    assert document["sha256"] == SHA256
    assert document["duplicate"] is False
    again = http.post("/api/v1/documents", headers=uploader, files=files, data=fields)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == document["id"]
    document_url = f"/api/v1/documents/{document['id']}"

    found = http.get("/api/v1/documents/lookup", headers=uploader, params={"sha256": SHA256})
    assert found.status_code == 200
    assert found.json()["id"] == document["id"]

    # The server's own index worker makes it searchable by what is written inside, in seconds.
    deadline = time.monotonic() + 20
    while True:
        result = http.get("/api/v1/search", headers=reader, params={"q": "贫困户"}).json()
        if result["total"]:
            break
        assert time.monotonic() < deadline, "not searchable 20 s after upload"
        time.sleep(0.1)
    assert [hit["document"]["id"] for hit in result["hits"]] == [document["id"]]
    assert any("<em>" in highlight for highlight in result["hits"][0]["highlights"])

    # The department reads it, under its Chinese name.
    download = http.get(f"{document_url}/download", headers=reader)
    assert download.status_code == 200, download.text
    assert download.content == CONTENT
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert f"filename*=UTF-8''{quote(FILENAME, safe='')}" in disposition
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"].startswith("text/plain")

    receipt = http.get(f"{document_url}/receipt", headers=uploader)
    assert receipt.status_code == 200
    assert receipt.json()["sha256"] == SHA256
    assert receipt.json()["township"]["name"] == TOWNSHIP
    assert receipt.json()["audit_seq"] > 0

    # Withdrawn: gone for the department, still there for its township and the auditor.
    withdrawn = http.delete(document_url, headers=uploader)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["withdrawn_at"] is not None
    for path in (document_url, f"{document_url}/download"):
        gone = http.get(path, headers=reader)
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "document_not_found"
    assert http.get(document_url, headers=auditor).json()["withdrawn_at"] is not None

    # The auditor sees what happened, and the chain holds.
    events = http.get("/api/v1/audit/events", headers=auditor, params={"size": 500})
    assert events.status_code == 200
    seen = {(e["actor"], e["action"], e["outcome"]) for e in events.json()["events"]}
    assert {
        ("chengguan", "login", "allowed"),
        ("chengguan", "upload", "allowed"),
        ("zhenxing", "download", "allowed"),
        ("chengguan", "withdraw", "allowed"),
        ("zhenxing", "view", "denied"),
        ("auditor", "audit_read", "allowed"),
    } <= seen
    upload_event = next(
        e
        for e in events.json()["events"]
        if e["action"] == "upload" and not e["details"].get("duplicate")
    )
    assert (upload_event["seq"], upload_event["hash"]) == (
        receipt.json()["audit_seq"],
        receipt.json()["audit_hash"],
    )
    verify = http.get("/api/v1/audit/verify", headers=auditor)
    assert verify.status_code == 200
    assert verify.json()["ok"] is True
    sequenced = [e for e in events.json()["events"] if e["seq"] is not None]
    assert verify.json()["events"] >= len(sequenced) > 0
