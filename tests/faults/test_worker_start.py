"""A worker started before PostgreSQL: it waits for the database instead of exiting."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.server_process import WorkerProcess, settings_environment
from tests.servers import POSTGRES_SCRIPT, PostgresServer, free_port, run_start

pytestmark = pytest.mark.slow


@pytest.fixture
def not_yet_started() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster's place (directory, port) that the test starts later."""
    directory = Path(tempfile.mkdtemp(prefix="materials-late-postgres-"))
    directory.chmod(0o755)
    server = PostgresServer(free_port(), directory / "postgres")
    try:
        yield server
        if (server.directory / "postmaster.pid").exists():
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for(predicate: Callable[[], bool], *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_worker_started_before_the_database_waits_for_it(
    not_yet_started: PostgresServer, tmp_path: Path
) -> None:
    server = not_yet_started
    settings = make_settings(tmp_path / "data", database_url=server.url("postgres"))
    environment = settings_environment(settings)
    worker = WorkerProcess(tmp_path / "data", tmp_path / "worker.log", environment)
    try:
        assert _wait_for(lambda: "秒后重试" in worker.log(), seconds=30), worker.log()
        time.sleep(2)
        assert worker.process.poll() is None, worker.log()  # still there, waiting

        run_start(
            "PostgreSQL",
            [POSTGRES_SCRIPT, "start", str(server.directory), str(server.port)],
            timeout=120,
        )

        def migrated() -> bool:
            with server.admin() as admin:
                found = admin.execute("SELECT to_regclass('public.alembic_version')").fetchone()
            return found is not None and found[0] is not None

        # Its longest wait between attempts is 30 s: it has connected and migrated by then.
        assert _wait_for(migrated, seconds=60), worker.log()
        assert worker.process.poll() is None, worker.log()
    finally:
        worker.stop()
    assert worker.process.returncode == 0, worker.log()
