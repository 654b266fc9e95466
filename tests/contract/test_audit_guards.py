"""Who may change the audit log: nobody through the application's database role, and the tables'
owner only to prune events past the retention floor.

On PostgreSQL the production roles come from deploy/postgres-roles.sql (through
``deploy/postgres.sh roles``): ``materials_owner`` runs the migrations, ``materials_app`` is what
the API and the workers connect as. The app role may add to the log and read it, and the sequencer
running as it sequences, signs and exports; the grants deny it every change, and the triggers deny
the owner. On SQLite, where there are no roles, the triggers alone guard the log.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.audit import Actor, AuditAction, AuditLog, Outcome
from services.audit_keys import load_verifier
from services.audit_sequencer import AuditSequencer
from services.audit_verify import verify_log
from services.blobs._local import LocalBlobStore
from services.config import Settings
from services.db import Database
from services.models import AuditEvent, utcnow
from tests.servers import POSTGRES_SCRIPT, PostgresServer

OWNER, APP = "materials_owner", "materials_app"
PASSWORDS = {OWNER: "owner-secret-1", APP: "app-secret-2"}
# The tables nobody may change, each with a column to "update" to itself; audit_checkpoints
# only has its export time filled in.
LOG_TABLES = {"audit_events": "actor", "audit_leaves": "seq", "audit_tree_nodes": "hash"}
PAST_RETENTION = timedelta(days=200)  # older than the 184 days no setting can lower
APPEND_ONLY = "the audit log is append-only"
KEPT = "signed checkpoints are kept"
DENIED = "permission denied"


# ---------------------------------------------------------------- PostgreSQL, production roles


@dataclass(frozen=True)
class RoleDatabase:
    server: PostgresServer
    name: str

    def url(self, role: str) -> str:
        return (
            f"postgresql+psycopg://{role}:{PASSWORDS[role]}@127.0.0.1:{self.server.port}/"
            f"{self.name}"
        )

    def connect(self, role: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.server.port,
            user=role,
            password=PASSWORDS[role],
            dbname=self.name,
            autocommit=True,
        )

    def apply_roles(self) -> None:
        """deploy/postgres-roles.sql, as the operator runs it (through postgres.sh roles)."""
        done = subprocess.run(
            [
                POSTGRES_SCRIPT,
                "roles",
                str(self.server.directory),
                str(self.server.port),
                self.name,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={
                **os.environ,
                "MATERIALS_OWNER_PASSWORD": PASSWORDS[OWNER],
                "MATERIALS_APP_PASSWORD": PASSWORDS[APP],
            },
        )
        assert done.returncode == 0, done.stderr


@pytest.fixture
def role_database(postgres: PostgresServer) -> Iterator[RoleDatabase]:
    database = RoleDatabase(postgres, f"test_{uuid.uuid4().hex}")
    yield database
    with postgres.admin() as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database.name))
        )


def refusal(connection: psycopg.Connection[tuple[object, ...]], statement: str) -> str:
    """The error a statement fails with (it must fail)."""
    try:
        connection.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        return str(exc)
    raise AssertionError(f"{statement!r} was allowed")


def record(database: Database, count: int) -> None:
    log = AuditLog(database)
    for number in range(count):
        log.record(
            actor=Actor("张三", org="城关镇", role="uploader", ip="10.0.0.1"),
            action=AuditAction.view,
            outcome=Outcome.allowed,
            document_id=f"doc-{number}",
            details={"n": number},
        )


def add_old_event(database: Database) -> int:
    """An event older than the retention floor, as if recorded 200 days ago."""
    with database.session() as session:
        event = AuditEvent(
            at=utcnow() - PAST_RETENTION,
            actor="旧事件",
            action=AuditAction.login.value,
            outcome=Outcome.allowed.value,
            details={},
        )
        session.add(event)
        session.flush()
        return event.id


def assert_app_role_adds_and_reads_only(
    roles: RoleDatabase, tmp_path: Path, *, existing: int = 0
) -> None:
    """The API and the sequencer work as the app role (``existing`` events already logged); no
    change to the log does."""
    app = Database(roles.url(APP))
    try:
        app.migrate()  # every process migrates on start: at head, the app role may do that
        record(app, 3)
        settings = Settings(
            data_dir=tmp_path / "data", database_url=roles.url(APP), audit_checkpoint_events=1
        )
        blobs = LocalBlobStore(settings.blob_dir)
        # Leaves, tree nodes and checkpoints inserted, the sequencer's row and exported_at updated.
        assert AuditSequencer(app, settings, blobs).drain() == existing + 3
        report = verify_log(app, blobs, load_verifier(settings))
        assert report.ok, report.as_dict()
        total = existing + 3
        assert (report.events, report.checkpoints, report.exported) == (total, total, total)
        old_event = add_old_event(app)
    finally:
        app.dispose()

    with roles.connect(APP) as connection:
        count = connection.execute("SELECT count(*) FROM audit_events").fetchone()
        assert count == (existing + 4,)
        for table, column in LOG_TABLES.items():
            for statement in (
                f"UPDATE {table} SET {column} = {column}",
                f"DELETE FROM {table}",
                f"TRUNCATE {table}",
            ):
                assert DENIED in refusal(connection, statement), statement
        # Not even an event past the retention floor: pruning is the owner's.
        assert DENIED in refusal(connection, f"DELETE FROM audit_events WHERE id = {old_event}")
        assert DENIED in refusal(connection, "DELETE FROM audit_legacy_chain")
        # Nor may it rewrite the record of what was pruned (test_audit_archive: the triggers).
        for statement in ("UPDATE audit_prunes SET deleted = 0", "TRUNCATE audit_prunes"):
            assert DENIED in refusal(connection, statement), statement
        assert DENIED in refusal(connection, "DELETE FROM audit_checkpoints")
        assert DENIED in refusal(connection, "TRUNCATE audit_checkpoints")
        # Its own trigger could rewrite events as they are inserted.
        refused = refusal(
            connection,
            "CREATE TRIGGER sneaky BEFORE INSERT ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION materials_audit_append_only()",
        )
        assert "must be owner" in refused or DENIED in refused
        # The export time is the one thing the sequencer fills in later.
        updated = connection.execute(
            "UPDATE audit_checkpoints SET exported_at = now() WHERE tree_size = 1"
        )
        assert updated.rowcount == 1
        assert KEPT in refusal(connection, "UPDATE audit_checkpoints SET note = note || 'x'")
        assert DENIED in refusal(connection, "CREATE TABLE sneaky (id integer)")


def assert_owner_is_held_by_the_triggers(roles: RoleDatabase) -> None:
    """The owner has every right on its tables; the triggers refuse all changes but pruning."""
    owner = Database(roles.url(OWNER))
    try:
        old_event = add_old_event(owner)
    finally:
        owner.dispose()
    with roles.connect(OWNER) as connection:
        for table, column in LOG_TABLES.items():
            assert APPEND_ONLY in refusal(connection, f"UPDATE {table} SET {column} = {column}")
            assert APPEND_ONLY in refusal(connection, f"DELETE FROM {table}")
            assert APPEND_ONLY in refusal(connection, f"TRUNCATE {table}")
        assert APPEND_ONLY in refusal(connection, "TRUNCATE audit_legacy_chain")
        assert KEPT in refusal(connection, "DELETE FROM audit_checkpoints")
        assert KEPT in refusal(connection, "TRUNCATE audit_checkpoints")
        assert KEPT in refusal(connection, "UPDATE audit_checkpoints SET note = note || 'x'")
        # Pruning an event past the retention floor is what the owner may do.
        pruned = connection.execute(f"DELETE FROM audit_events WHERE id = {old_event}")
        assert pruned.rowcount == 1


def owners(roles: RoleDatabase) -> set[str]:
    """Who owns the tables and the guard functions of the database."""
    with roles.connect(OWNER) as connection:
        tables = connection.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        functions = connection.execute(
            "SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc "
            "WHERE proname LIKE 'materials_audit_%'"
        ).fetchall()
    return {str(row[0]) for row in tables + functions}


def test_the_app_role_only_adds_to_the_log(role_database: RoleDatabase, tmp_path: Path) -> None:
    role_database.apply_roles()
    role_database.apply_roles()  # running it again changes nothing
    owner = Database(role_database.url(OWNER))
    try:
        owner.migrate()
    finally:
        owner.dispose()
    assert owners(role_database) == {OWNER}
    assert_app_role_adds_and_reads_only(role_database, tmp_path)
    assert_owner_is_held_by_the_triggers(role_database)

    # A table a later migration makes is the app's to use, by the default privileges.
    with role_database.connect(OWNER) as connection:
        connection.execute("CREATE TABLE later_feature (id serial PRIMARY KEY, note text)")
    with role_database.connect(APP) as connection:
        connection.execute("INSERT INTO later_feature (note) VALUES ('a')")
        connection.execute("UPDATE later_feature SET note = 'b'")
        assert connection.execute("DELETE FROM later_feature").rowcount == 1


def test_the_roles_take_over_a_database_the_superuser_migrated(
    role_database: RoleDatabase, postgres: PostgresServer, tmp_path: Path
) -> None:
    """A deployment from before the roles: tables owned by the superuser, the log past 0011."""
    with postgres.admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(role_database.name)))
    superuser = Database(postgres.url(role_database.name))
    try:
        superuser.migrate()
        record(superuser, 1)
    finally:
        superuser.dispose()

    role_database.apply_roles()
    assert owners(role_database) == {OWNER}
    owner = Database(role_database.url(OWNER))
    try:
        owner.migrate()  # at head, as the owner
    finally:
        owner.dispose()
    assert_app_role_adds_and_reads_only(role_database, tmp_path, existing=1)
    assert_owner_is_held_by_the_triggers(role_database)


def test_the_migration_takes_changes_away_from_public(postgres_url: str) -> None:
    """A database whose tables everyone gets every right on (default privileges to PUBLIC):
    the migration still leaves nobody but the owner a right to change the log."""
    superuser = Database(postgres_url)
    try:
        with superuser.engine.begin() as connection:
            connection.execute(text("ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC"))
        superuser.migrate()
        with superuser.engine.connect() as connection:
            for table in (*LOG_TABLES, "audit_legacy_chain", "audit_checkpoints"):
                rights = {
                    right: connection.scalar(
                        text("SELECT has_table_privilege('public', :table, :right)"),
                        {"table": table, "right": right},
                    )
                    for right in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER")
                }
                assert rights == {
                    "SELECT": True,
                    "INSERT": True,
                    "UPDATE": table == "audit_checkpoints",
                    "DELETE": False,
                    "TRUNCATE": False,
                    "TRIGGER": False,
                }, table
    finally:
        superuser.dispose()


# ---------------------------------------------------------------- the triggers alone


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'materials.db'}"
    else:
        url = request.getfixturevalue("postgres_url")  # as the superuser, the tables' owner
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


def refused(database: Database, statement: str, message: str) -> None:
    with pytest.raises(DBAPIError, match=message), database.session() as session:
        session.execute(text(statement))


def test_the_triggers_refuse_changes_but_the_export_time(
    database: Database, tmp_path: Path
) -> None:
    record(database, 3)
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database.url, audit_checkpoint_events=1
    )
    blobs = LocalBlobStore(settings.blob_dir)
    assert AuditSequencer(database, settings, blobs).drain() == 3
    with database.session() as session:
        for table in LOG_TABLES:
            assert session.scalar(text(f"SELECT count(*) FROM {table}")), table

    refused(database, "UPDATE audit_events SET actor = 'someone else'", APPEND_ONLY)
    refused(database, "UPDATE audit_events SET at = at", APPEND_ONLY)
    refused(database, "DELETE FROM audit_events", APPEND_ONLY)
    refused(database, "UPDATE audit_leaves SET event_id = event_id", APPEND_ONLY)
    refused(database, "DELETE FROM audit_leaves WHERE seq = 3", APPEND_ONLY)
    refused(database, "UPDATE audit_tree_nodes SET hash = hash", APPEND_ONLY)
    refused(database, "DELETE FROM audit_tree_nodes", APPEND_ONLY)
    refused(database, "UPDATE audit_checkpoints SET note = note || 'x'", KEPT)
    refused(database, "UPDATE audit_checkpoints SET tree_size = tree_size + 10", KEPT)
    refused(database, "DELETE FROM audit_checkpoints WHERE tree_size = 3", KEPT)

    with database.session() as session:
        updated = session.execute(text("UPDATE audit_checkpoints SET exported_at = NULL"))
        assert updated.rowcount == 3  # type: ignore[attr-defined]
    assert AuditSequencer(database, settings, blobs).export_checkpoints() == 3

    # An event past the retention floor may be pruned; an update of it is still refused.
    old_event = add_old_event(database)
    refused(database, f"UPDATE audit_events SET actor = 'x' WHERE id = {old_event}", APPEND_ONLY)
    with database.session() as session:
        pruned = session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": old_event})
        assert pruned.rowcount == 1  # type: ignore[attr-defined]
    report = verify_log(database, blobs, load_verifier(settings))
    assert report.ok, report.as_dict()
