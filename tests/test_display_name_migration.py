"""Migration 0014 on accounts that exist, on SQLite and on PostgreSQL: every account gets an
empty display name (姓名) and goes on signing in; a name can be given afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from services import db as db_module
from services.db import Database
from services.models import User


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def upgrade_to(database: Database, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(db_module.__file__).with_name("migrations")))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_existing_users_get_an_empty_display_name(database: Database) -> None:
    upgrade_to(database, "0013")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with database.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO orgs (id, name, kind, created_at) VALUES (1, '某县', 'county', :at)"
            ),
            {"at": at},
        )
        for user_id, username in ((1, "admin"), (2, "chengguan")):
            connection.execute(
                sa.text(
                    "INSERT INTO users (id, username, canonical_name, password_hash, role, "
                    "org_id, active, created_at, must_change_password) VALUES (:id, :username, "
                    ":username, 'x', 'admin', 1, :yes, :at, :no)"
                ),
                {"id": user_id, "username": username, "at": at, "yes": True, "no": False},
            )

    upgrade_to(database, "head")

    with database.session() as session:
        users = session.scalars(select(User).order_by(User.id)).all()
        assert [(user.username, user.display_name) for user in users] == [
            ("admin", ""),
            ("chengguan", ""),
        ]
        users[1].display_name = "张明"
    with database.session() as session:
        named = session.scalar(select(User).where(User.username == "chengguan"))
        assert named is not None
        assert named.display_name == "张明"
        # A new account made without a name has the empty one too (the server default).
        session.execute(
            sa.text(
                "INSERT INTO users (id, username, canonical_name, password_hash, role, org_id, "
                "active, created_at, must_change_password) VALUES (3, 'hekou', 'hekou', 'x', "
                "'uploader', 1, :yes, :at, :no)"
            ),
            {"at": at, "yes": True, "no": False},
        )
    with database.session() as session:
        plain = session.scalar(select(User).where(User.username == "hekou"))
        assert plain is not None
        assert plain.display_name == ""
