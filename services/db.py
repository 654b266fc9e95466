"""Engine and session factory, and schema migrations (Alembic) run at start-up.

SQLite runs in WAL mode with every transaction taken as ``BEGIN IMMEDIATE`` so writers queue
instead of failing; on PostgreSQL, short transaction-level advisory locks let one process at a time
migrate or claim outbox events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.errors import BackendUnavailable
from services.private_files import create_private_file

BACKEND = "database"
_MIGRATIONS = Path(__file__).with_name("migrations")
# Advisory lock keys: any constants shared by every process of one deployment.
_OUTBOX_LOCK_KEY = 0x6D6174_6F757462
_MIGRATE_LOCK_KEY = 0x6D6174_6D696772


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

    def migrate(self) -> None:
        """Bring the schema to the newest migration; safe while other processes do the same."""
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
        with _unavailable(), self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def lock_outbox_claims(self, session: Session) -> None:
        """Let one worker at a time decide which outbox events it takes (claims are short)."""
        self._lock(session, _OUTBOX_LOCK_KEY)

    def _lock(self, session: Session, key: int) -> None:
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        # SQLite: the transaction already began IMMEDIATE and holds the database's write lock.

    def dispose(self) -> None:
        self.engine.dispose()


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
        return create_engine(url, pool_pre_ping=True)
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
