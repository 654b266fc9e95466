"""Migration 0008 on accounts that exist: canonical names filled in, look-alikes kept apart.

Look-alike usernames created before the rule (``Admin`` beside ``admin``) keep working by their
exact names; the older account keeps the shared canonical name.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from api.app import create_app
from services.backends import open_backends
from services.db import Database
from services.models import User
from services.passwords import Passwords
from tests.conftest import PASSWORD, make_settings


def test_existing_users_get_canonical_names_and_look_alikes_stay_apart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    db = Database(settings.resolved_database_url)
    config = Config()
    config.set_main_option("script_location", "services/migrations")
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
    hashed = Passwords(time_cost=1, memory_kib=1024)._hasher.hash(PASSWORD)
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO orgs (id, name, kind, created_at) VALUES "
                "(1, '某县', 'county', '2026-01-01 00:00:00')"
            )
        )
        for user_id, username in ((1, "admin"), (2, "Admin"), (3, "ａｄｍｉｎ"), (4, "Zhang")):
            connection.execute(
                text(
                    "INSERT INTO users (id, username, password_hash, role, org_id, active, "
                    "created_at) VALUES (:id, :username, :hash, 'admin', 1, 1, "
                    "'2026-01-01 00:00:00')"
                ),
                {"id": user_id, "username": username, "hash": hashed},
            )
    db.dispose()

    backends = open_backends(settings)  # migrates to the newest schema
    try:
        with backends.db.session() as session:
            users = session.scalars(select(User).order_by(User.id)).all()
            assert [(u.username, u.canonical_name, u.must_change_password) for u in users] == [
                ("admin", "admin", False),
                ("Admin", "admin #2", False),
                ("ａｄｍｉｎ", "admin #3", False),
                ("Zhang", "zhang", False),
            ]
        with TestClient(create_app(settings, backends=backends)) as client:
            for typed, found in (
                ("admin", "admin"),
                ("Admin", "Admin"),
                ("ａｄｍｉｎ", "ａｄｍｉｎ"),
                ("ADMIN", "admin"),
                ("zhang", "Zhang"),
            ):
                login = client.post(
                    "/api/v1/auth/token", data={"username": typed, "password": PASSWORD}
                )
                assert login.status_code == 200, (typed, login.text)
                token = login.json()["access_token"]
                me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
                assert me.json()["username"] == found
            # No new look-alike beside them.
            created = client.post(
                "/api/v1/users",
                json={"username": "aDmin", "password": PASSWORD, "org": "某县", "role": "admin"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 409, created.text
    finally:
        backends.close()
