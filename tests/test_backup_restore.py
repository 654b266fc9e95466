"""Backup and restore: deploy/backup.sh, a wiped stack, deploy/restore.sh onto an empty one.

On the real stack (PostgreSQL, SeaweedFS with object lock, Elasticsearch) and on the embedded one
(SQLite, a blob directory). After the restore: `materials check` and `materials audit verify`
(with the verifier key kept apart) pass, `reindex` makes the documents findable again, and every
document downloads with its sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import select

from api.app import create_app
from services import backup
from services.audit_keys import load_verifier
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import Document
from tests.conftest import Api, make_settings, seed_county, sequence_and_verify
from tests.real_stack import TEMPLATE, RealStack
from tests.samples import docx_bytes, pdf_bytes, png_bytes, text_bytes

ROOT = Path(__file__).resolve().parents[1]
BACKUP = ROOT / "deploy" / "backup.sh"
RESTORE = ROOT / "deploy" / "restore.sh"
VENV = Path(sys.prefix)

# name → (bytes, content type, a word a search finds it by, or None for a picture)
DOCUMENTS: dict[str, tuple[bytes, str, str | None]] = {
    "summary.pdf": (
        pdf_bytes("Rural revitalisation progress"),
        "application/pdf",
        "revitalisation",
    ),
    "总结.docx": (
        docx_bytes("城关镇脱贫攻坚工作总结"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "脱贫攻坚",
    ),
    "纪要.txt": (text_bytes("河口乡党委会议纪要：秋季防汛、低保复核。"), "text/plain", "防汛"),
    "旧版.txt": (text_bytes("东镇低保台账（旧）", "gb18030"), "text/plain", None),
    "photo.png": (png_bytes(), "image/png", None),
}
WITHDRAWN = "旧版.txt"


@dataclass
class Uploaded:
    ids: dict[str, str]  # file name → document id
    public_key: Path  # the verifier key, kept apart from the backup


def _signing_key(directory: Path) -> Path:
    """An Ed25519 key as an operator makes one (``openssl genpkey -algorithm ed25519``)."""
    directory.mkdir(mode=0o700)
    path = directory / "audit-signing-key.pem"
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    path.chmod(0o600)
    return path


def _env(settings: Settings) -> dict[str, str]:
    """The MATERIALS_* environment a production deployment would set for these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATERIALS_")}
    values: dict[str, Any] = {
        "VENV": VENV,
        "DATA_DIR": settings.data_dir,
        "SECRET_KEY": settings.secret_key,
        "AUDIT_SIGNING_KEY_FILE": settings.audit_signing_key_file,
        "DATABASE_URL": settings.database_url,
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_ACCESS_KEY": settings.s3_access_key,
        "S3_SECRET_KEY": settings.s3_secret_key,
        "S3_BUCKET": settings.s3_bucket,
        "ELASTICSEARCH_URL": settings.elasticsearch_url,
        "ELASTICSEARCH_INDEX": settings.elasticsearch_index,
        "PASSWORD_TIME_COST": settings.password_time_cost,
        "PASSWORD_MEMORY_KIB": settings.password_memory_kib,
        "EMBEDDED_WORKER": "false",
    }
    env.update({f"MATERIALS_{k}": str(v) for k, v in values.items() if v is not None})
    return env


def _run(command: list[str | Path], settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@contextmanager
def _app(settings: Settings, *, seed: bool) -> Iterator[tuple[Api, Backends]]:
    backends = open_backends(settings)
    try:
        if seed:
            seed_county(backends)
        with TestClient(create_app(settings, backends=backends)) as client:
            yield Api(client, {}), backends
    finally:
        backends.close()


def _fill(settings: Settings, key_dir: Path) -> Uploaded:
    """Upload the documents, withdraw one, download another, and sequence the audit log."""
    with _app(settings, seed=True) as (api, backends):
        ids = {}
        for name, (content, content_type, _) in DOCUMENTS.items():
            response = api.upload("east", name, content, content_type, title=name.rsplit(".", 1)[0])
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
        withdrawn = api.client.delete(
            f"/api/v1/documents/{ids[WITHDRAWN]}", headers=api.headers("east")
        )
        assert withdrawn.status_code in (200, 204), withdrawn.text
        read = api.client.get(
            f"/api/v1/documents/{ids['纪要.txt']}/download", headers=api.headers("east2")
        )
        assert read.status_code == 200, read.text
        assert sequence_and_verify(backends).ok
        public_key = key_dir / "audit-public-key.txt"
        verifier = load_verifier(settings)
        assert verifier is not None
        public_key.write_text(verifier.text(), encoding="utf-8")
    return Uploaded(ids, public_key)


def _assert_restored(settings: Settings, uploaded: Uploaded, *, searchable: bool) -> None:
    """The restored stack passes check and audit verify, finds and serves every document."""
    checked = _run([VENV / "bin" / "materials", "check"], settings)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    verified = _run(
        [VENV / "bin" / "materials", "audit", "verify", "--public-key", uploaded.public_key],
        settings,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert _json_lines(verified.stdout)[-1]["ok"] is True
    with _app(settings, seed=False) as (api, backends):
        for name, document_id in uploaded.ids.items():
            response = api.client.get(
                f"/api/v1/documents/{document_id}/download", headers=api.headers("east")
            )
            assert response.status_code == 200, (name, response.text)
            expected = hashlib.sha256(DOCUMENTS[name][0]).hexdigest()
            assert hashlib.sha256(response.content).hexdigest() == expected, name
        if searchable:
            for name, (_, _, word) in DOCUMENTS.items():
                if word is None:
                    continue
                found = api.client.get(
                    "/api/v1/search", params={"q": word}, headers=api.headers("east")
                )
                assert found.status_code == 200, found.text
                hits = [hit["document"]["id"] for hit in found.json()["hits"]]
                assert uploaded.ids[name] in hits, (name, word, hits)
        # The restored log goes on: today's logins and downloads are sequenced after the
        # restored events and signed into the new bucket, and the whole log verifies.
        assert sequence_and_verify(backends).ok


# ---- the real stack


@dataclass
class Stacks:
    real: RealStack
    databases: list[str]
    aliases: list[str]

    def settings(self, data_dir: Path, key: Path, *, empty: bool) -> Settings:
        """Settings of a new database (migrated, or empty for a restore), bucket and index."""
        name = f"test_{uuid.uuid4().hex}"
        template = (
            sql.SQL("") if empty else sql.SQL(" TEMPLATE {}").format(sql.Identifier(TEMPLATE))
        )
        with self.real.postgres.admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)) + template)
        self.databases.append(name)
        alias = f"test-{uuid.uuid4().hex[:16]}"
        self.aliases.append(alias)
        return make_settings(
            data_dir,
            database_url=self.real.postgres.url(name),
            s3_endpoint=f"http://{self.real.s3.endpoint}",
            s3_access_key=self.real.s3.access_key,
            s3_secret_key=self.real.s3.secret_key,
            s3_bucket=f"test-{uuid.uuid4().hex[:20]}",
            s3_presigned_downloads=False,
            elasticsearch_url=self.real.elasticsearch.url,
            elasticsearch_index=alias,
            audit_signing_key_file=key,
        )

    def drop_database(self, settings: Settings) -> None:
        name = (settings.database_url or "").rsplit("/", 1)[-1]
        with self.real.postgres.admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def drop_indices(self, settings: Settings) -> None:
        with Elasticsearch(self.real.elasticsearch.url) as client:
            names = list(client.indices.get(index=f"{settings.elasticsearch_index}-*").body)
            if names:
                client.indices.delete(index=names)


@pytest.fixture
def stacks(real_stack: RealStack) -> Iterator[Stacks]:
    made = Stacks(real_stack, [], [])
    yield made
    with real_stack.postgres.admin() as admin:
        for name in made.databases:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    with Elasticsearch(real_stack.elasticsearch.url) as client:
        for alias in made.aliases:
            names = list(client.indices.get(index=f"{alias}-*").body)
            if names:
                client.indices.delete(index=names)


def _wipe(stacks: Stacks, settings: Settings) -> None:
    """Lose the stack: the database dropped, the blobs deleted, the search index gone. (The
    audit records under COMPLIANCE retention cannot be deleted, which is why a restore goes to a
    new bucket.)"""
    backends = open_backends(settings, migrate=False)
    try:
        for blob in list(backends.blobs.list()):
            backends.blobs.delete(blob.sha256)
        assert not list(backends.blobs.list())
    finally:
        backends.close()
    stacks.drop_database(settings)
    stacks.drop_indices(settings)


def test_backup_wipe_restore_on_the_real_stack(stacks: Stacks, tmp_path: Path) -> None:
    keys = tmp_path / "keys"  # the signing key lives apart from data and backups
    key = _signing_key(keys)
    source = stacks.settings(tmp_path / "source", key, empty=False)
    uploaded = _fill(source, keys)
    backup_dir = tmp_path / "backup"

    backed_up = _run([BACKUP, backup_dir], source)
    assert backed_up.returncode == 0, backed_up.stderr
    report = _json_lines(backed_up.stdout)[-1]
    assert report["database"] == "postgresql"
    assert report["blobs"] == len(DOCUMENTS)
    assert report["records"] >= 1  # the signed checkpoints
    # The signing key is kept apart: no file of the backup holds it.
    pem = key.read_bytes()
    assert not any(pem in path.read_bytes() for path in backup_dir.rglob("*") if path.is_file())

    # Run again: a resumed or refreshed backup copies no blob twice.
    again = _run([BACKUP, backup_dir], source)
    assert again.returncode == 0, again.stderr
    assert _json_lines(again.stdout)[-1]["blobs_copied"] == 0

    _wipe(stacks, source)

    target = stacks.settings(tmp_path / "target", key, empty=True)
    restored = _run([RESTORE, backup_dir, uploaded.public_key], target)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    lines = _json_lines(restored.stdout)
    assert lines[0]["blobs"] == len(DOCUMENTS)
    # SeaweedFS keeps the audit records under object-lock retention again.
    assert lines[0]["records_locked"] == lines[0]["records"] == report["records"]
    reindexed = next(line for line in lines if "indexed" in line)
    assert reindexed["indexed"] == len(DOCUMENTS) - 1  # all but the withdrawn one
    _assert_restored(target, uploaded, searchable=True)

    # Nothing is restored over a stack that is not empty.
    twice = _run([RESTORE, backup_dir, uploaded.public_key], target)
    assert twice.returncode != 0
    assert "不是空的" in twice.stdout + twice.stderr


def test_a_backup_taken_while_uploads_go_on_restores_consistently(
    stacks: Stacks, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    key = _signing_key(keys)
    source = stacks.settings(tmp_path / "source", key, empty=False)
    uploaded = _fill(source, keys)
    stop = threading.Event()
    more: dict[str, str] = {}  # document id → sha256, of the uploads made during the backup
    errors: list[BaseException] = []

    def keep_uploading(api: Api, backends: Backends) -> None:
        number = 0
        try:
            while not stop.is_set():
                number += 1
                name = f"并发{number}.txt"
                content = f"东镇并发上传第{number}份".encode()
                response = api.upload("east", name, content, "text/plain", title=name)
                assert response.status_code == 201, response.text
                more[response.json()["id"]] = hashlib.sha256(content).hexdigest()
                # Checkpoints signed while the backup runs, some after its snapshot: restored
                # beside the shorter log, they would read as a truncated log.
                sequence_and_verify(backends)
        except BaseException as exc:
            errors.append(exc)

    with _app(source, seed=False) as (api, backends):
        uploader = threading.Thread(target=keep_uploading, args=(api, backends))
        uploader.start()
        try:
            while not more and uploader.is_alive():
                threading.Event().wait(0.05)
            before_backup = set(more)
            backed_up = _run([BACKUP, tmp_path / "backup"], source)
        finally:
            stop.set()
            uploader.join(timeout=120)
    assert not errors, errors
    assert backed_up.returncode == 0, backed_up.stderr
    assert before_backup

    _wipe(stacks, source)
    target = stacks.settings(tmp_path / "target", key, empty=True)
    restored = _run([RESTORE, tmp_path / "backup", uploaded.public_key], target)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    _assert_restored(target, uploaded, searchable=False)
    # Every upload the snapshot holds is served with its bytes (the ones committed before the
    # backup began among them); the others came after it and are simply not there.
    with _app(target, seed=False) as (api, backends):
        with backends.db.session() as session:
            restored_ids = set(session.scalars(select(Document.id)))
        assert before_backup <= restored_ids
        for document_id in restored_ids & set(more):
            response = api.client.get(
                f"/api/v1/documents/{document_id}/download", headers=api.headers("east")
            )
            assert response.status_code == 200, response.text
            assert hashlib.sha256(response.content).hexdigest() == more[document_id]


# ---- embedded mode


def test_embedded_backup_restores_and_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    key = _signing_key(keys)
    source = make_settings(tmp_path / "source", audit_signing_key_file=key)
    uploaded = _fill(source, keys)
    backup_dir = tmp_path / "backup"
    backed_up = _run([BACKUP, backup_dir], source)
    assert backed_up.returncode == 0, backed_up.stderr
    assert _json_lines(backed_up.stdout)[-1]["database"] == "sqlite"

    # A damaged backup is refused before anything is written.
    damaged_dir = tmp_path / "damaged"
    subprocess.run(["cp", "-a", str(backup_dir), str(damaged_dir)], check=True)
    sha256 = hashlib.sha256(DOCUMENTS["summary.pdf"][0]).hexdigest()
    blob = damaged_dir / "blobs" / sha256[:2] / sha256[2:4] / sha256
    blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    elsewhere = make_settings(tmp_path / "elsewhere", audit_signing_key_file=key)
    refused = _run([RESTORE, damaged_dir, uploaded.public_key], elsewhere)
    assert refused.returncode != 0
    assert sha256 in refused.stdout
    assert not (elsewhere.data_dir / "materials.sqlite3").exists()
    assert not (elsewhere.data_dir / "blobs").exists() or not any(
        (elsewhere.data_dir / "blobs").rglob("*")
    )

    # The signing key may not be backed up with the database.
    beside = make_settings(tmp_path / "source", audit_signing_key_file=backup_dir / "key.pem")
    assert _run([BACKUP, backup_dir], beside).returncode != 0

    target = make_settings(tmp_path / "target", audit_signing_key_file=key)
    restored = _run([RESTORE, backup_dir, uploaded.public_key], target)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    _assert_restored(target, uploaded, searchable=True)


def test_checkpoints_signed_after_the_snapshot_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint signed between the database copy and the object copy is beyond the copied
    log: restored, it would make the log read as truncated. The backup leaves it out."""
    key = _signing_key(tmp_path / "keys")
    source = make_settings(tmp_path / "source", audit_signing_key_file=key)
    uploaded = _fill(source, tmp_path / "keys")
    dump_sqlite = backup._dump_sqlite

    def dump_then_sign(database: Any, target: Path) -> int:
        tree_size = dump_sqlite(database, target)
        with _app(source, seed=False) as (api, backends):
            api.headers("west")  # a login: an event, sequenced and signed after the snapshot
            assert sequence_and_verify(backends).ok
        return tree_size

    monkeypatch.setattr(backup, "_dump_sqlite", dump_then_sign)
    report = backup.back_up(settings=source, directory=tmp_path / "backup")
    assert report["checkpoints_after_dump_skipped"] == 1

    target = make_settings(tmp_path / "target", audit_signing_key_file=key)
    backup.restore(settings=target, directory=tmp_path / "backup")
    _assert_restored(target, uploaded, searchable=False)
