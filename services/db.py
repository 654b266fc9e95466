"""Engine and session factory, and schema migrations (Alembic) run at start-up.

SQLite runs in WAL mode with every transaction taken as ``BEGIN IMMEDIATE`` so writers queue
instead of failing; on PostgreSQL, short transaction-level advisory locks let one process at a time
migrate or claim outbox events.

Alembic (with Mako and Pygments, about 10 MiB of a process's memory) is imported only when the
schema is not already at the newest migration: a process that finds it current, as the API and the
workers do once ``materials migrate`` ran, never loads it.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, InvalidatePoolError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.errors import BackendUnavailable
from services.private_files import create_private_file

BACKEND = "database"
_MIGRATIONS = Path(__file__).with_name("migrations")
# Advisory lock keys: any constants shared by every process of one deployment.
_OUTBOX_LOCK_KEY = 0x6D6174_6F757462
_MIGRATE_LOCK_KEY = 0x6D6174_6D696772
# A pooled connection unused for this long is pinged before use (_ping_when_idle).
_PING_AFTER_IDLE_SECONDS = 5.0


class Database:
    """The system of record: one engine, one session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back otherwise.

        A database that cannot be reached (or stays locked) is ``BackendUnavailable``.
        """
        with _unavailable(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction on a plain connection, committed or rolled back as ``session`` is.

        For statements of plain columns on the paths every request takes (the login check, a
        search's rows and its audit event): the ORM session around them cost more CPU than the
        statements themselves.
        """
        with _unavailable(), self.engine.begin() as connection:
            yield connection

    def migrate(self) -> None:
        """Bring the schema to the newest migration; safe while other processes do the same."""
        if self._at_head():
            return  # what Alembic's upgrade would find, without loading Alembic
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with _unavailable(), self.engine.begin() as connection:
            if self.dialect == "postgresql":
                # DDL is transactional here: whoever waited finds the schema already upgraded.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK_KEY}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None before the first migration)."""
        from alembic.runtime.migration import MigrationContext

        with _unavailable(), self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def _at_head(self) -> bool:
        """Is the schema already at the one newest migration? False whenever in doubt (no version
        table yet, several heads, a file this reading does not understand): Alembic decides."""
        head = _head_revision()
        if head is None:
            return False
        with _unavailable(), self.engine.connect() as connection:
            # As Alembic asks (its default version table): is it there, and what does it hold?
            if not inspect(connection).has_table("alembic_version"):
                return False
            rows = connection.execute(text("SELECT version_num FROM alembic_version"))
            return [str(row[0]) for row in rows] == [head]

    def lock_outbox_claims(self, session: Session) -> None:
        """Let one worker at a time decide which outbox events it takes (claims are short)."""
        self._lock(session, _OUTBOX_LOCK_KEY)

    def _lock(self, session: Session, key: int) -> None:
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        # SQLite: the transaction already began IMMEDIATE and holds the database's write lock.

    def dispose(self) -> None:
        self.engine.dispose()


@cache
def _head_revision() -> str | None:
    """The one migration no other revises, read from the migration files as Alembic reads their
    ``revision`` and ``down_revision``; None when that is not one plain answer."""
    revisions: dict[str, str | None] = {}
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        if path.name.startswith("__"):
            continue
        values = _assigned_literals(
            path, ("revision", "down_revision", "branch_labels", "depends_on")
        )
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            return None  # a merge or a form not read here
        if revision in revisions or "down_revision" not in values:
            return None
        if values.get("branch_labels") is not None or values.get("depends_on") is not None:
            return None  # branches and dependencies: Alembic's own reading
        revisions[revision] = down
    heads = set(revisions) - {down for down in revisions.values() if down is not None}
    return heads.pop() if len(heads) == 1 else None


def _assigned_literals(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The literal values a module assigns at its top level to the given names."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                values[target.id] = value  # not a literal: not understood
    return values


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection with a round trip before handing it out, if it lay unused for
    ``_PING_AFTER_IDLE_SECONDS``; one that fails is dropped with every other pooled connection
    (the server restarted) and a new one is made.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: two or three round trips a search,
    and a large share of the database's and the API's work for it. A connection in steady use
    is not pinged; if the server restarted within the last seconds, the first statement on such a
    connection fails instead (``BackendUnavailable``, 503) and the whole pool is dropped then.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < _PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError() from error  # the pool connects again, up to twice
            raise


@contextmanager
def _unavailable() -> Iterator[None]:
    """A database that cannot be reached (or stays locked) is ``BackendUnavailable``."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise BackendUnavailable(BACKEND) from exc


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url)
        _ping_when_idle(engine)
        return engine
    if parsed.database and parsed.database != ":memory:":
        # Created 0600 before SQLite opens it (SQLite would make it 0644 less the umask); the
        # -wal and -shm files SQLite adds take the database file's mode.
        create_private_file(Path(parsed.database))
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
