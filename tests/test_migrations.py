"""Schema migrations: a first-version database upgrades, its documents queued for indexing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from indexer.worker import IndexWorker
from services.backends import open_backends
from services.db import Database
from services.search import ReadScope, SearchQuery
from tests.conftest import make_settings

CONTENT = "河口乡低保复核工作记录".encode()
SHA256 = hashlib.sha256(CONTENT).hexdigest()


def test_documents_from_before_indexing_are_queued_and_indexed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    db = Database(settings.resolved_database_url)
    config = Config()
    config.set_main_option("script_location", "services/migrations")
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO orgs (id, name, kind, created_at) VALUES "
                "(1, '城关镇', 'township', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO users (id, username, password_hash, role, org_id, "
                "active, created_at) VALUES (1, 'u', 'x', 'uploader', 1, 1, "
                "'2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO documents (id, title, filename, content_type, size, sha256, category, "
                "tags, description, visibility, township_id, uploaded_by_id, created_at, version, "
                "index_status) VALUES ('d1', '旧材料', 'a.txt', 'text/plain', :size, :sha, "
                "'其他', '[]', '', 'departments', 1, 1, '2026-01-01 00:00:00', 1, 'pending')"
            ),
            {"sha": SHA256, "size": len(CONTENT)},
        )
    db.dispose()

    backends = open_backends(settings)  # migrates to the newest schema
    try:
        with backends.db.session() as session:
            queued = session.execute(text("SELECT document_id, action FROM outbox")).all()
        assert [tuple(row) for row in queued] == [("d1", "upsert")]
        blob = tmp_path / "blob"
        blob.write_bytes(CONTENT)
        backends.blobs.put(sha256=SHA256, source=blob)
        IndexWorker(backends, backends.index).drain()
        found = backends.index.search(
            SearchQuery(text="低保复核", scope=ReadScope(everything=True))
        )
        assert [hit.document_id for hit in found.hits] == ["d1"]
    finally:
        backends.close()
