"""Migration 0010 on accounts and grants that exist: all of them count as confirmed.

Accounts and download grants from before the two-person rule keep working as they did: nobody
is locked out, and a granted auditor still downloads.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from api.app import create_app
from services import orgs
from services.backends import open_backends
from services.db import Database
from services.models import DownloadGrant, User, utcnow
from services.passwords import Passwords
from tests.conftest import PASSWORD, make_settings


def test_existing_accounts_and_grants_are_confirmed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    db = Database(settings.resolved_database_url)
    config = Config()
    config.set_main_option("script_location", "services/migrations")
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
    hashed = Passwords(time_cost=1, memory_kib=1024)._hasher.hash(PASSWORD)
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO orgs (id, name, kind, created_at) VALUES "
                "(1, '某县', 'county', '2026-01-01 00:00:00'), "
                "(2, '某镇', 'township', '2026-01-01 00:00:00')"
            )
        )
        for user_id, username, role, org_id in (
            (1, "admin", "admin", 1),
            (2, "auditor", "auditor", 1),
            (3, "zhen", "uploader", 2),
        ):
            connection.execute(
                text(
                    "INSERT INTO users (id, username, canonical_name, password_hash, role, org_id, "
                    "active, created_at, must_change_password) VALUES (:id, :username, "
                    ":username, :hash, :role, :org, 1, '2026-01-01 00:00:00', 0)"
                ),
                {"id": user_id, "username": username, "hash": hashed, "role": role, "org": org_id},
            )
        connection.execute(
            text(
                "INSERT INTO documents (id, title, filename, content_type, size, sha256, category, "
                "tags, description, visibility, township_id, uploaded_by_id, created_at, version, "
                "index_status) VALUES ('d1', '旧材料', 'a.txt', 'text/plain', 1, :sha, "
                "'其他', '[]', '', 'private', 2, 3, '2026-01-01 00:00:00', 1, 'indexed')"
            ),
            {"sha": "0" * 64},
        )
        connection.execute(
            text(
                "INSERT INTO download_grants (id, user_id, document_id, granted_by_id, "
                "created_at) VALUES (1, 2, 'd1', 1, '2026-01-01 00:00:00')"
            )
        )
    db.dispose()

    backends = open_backends(settings)  # migrates to the newest schema
    try:
        with backends.db.session() as session:
            users = session.scalars(select(User).order_by(User.id)).all()
            assert [(u.username, u.pending_since, u.requested_by_id) for u in users] == [
                ("admin", None, None),
                ("auditor", None, None),
                ("zhen", None, None),
            ]
            grant = session.get(DownloadGrant, 1)
            assert grant is not None
            assert (grant.pending_since, grant.confirmed_by_id) == (None, None)
            assert orgs.granted_document_ids(session, user_id=2, now=utcnow()) == {"d1"}
        with TestClient(create_app(settings, backends=backends)) as client:
            for username in ("admin", "auditor", "zhen"):
                login = client.post(
                    "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
                )
                assert login.status_code == 200, (username, login.text)
    finally:
        backends.close()
