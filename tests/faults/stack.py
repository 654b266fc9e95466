"""The production layout for outage tests: PostgreSQL, SeaweedFS and Elasticsearch of the test's
own (so that it may stop and restart them), ``materials serve --workers 2`` and two workers.

Each server is stopped and started again by its deploy/ script on the same port and data
directory; continuous uploads run from client threads while that happens, and every answer is
kept for the test to check.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from psycopg import sql

from services.audit_keys import load_signer
from services.backends import Backends, open_backends
from services.config import Settings
from services.db import Database
from tests import server_process
from tests.conftest import PASSWORD, make_settings, seed_county
from tests.server_process import (
    ServerProcess,
    settings_environment,
)
from tests.servers import (
    ELASTICSEARCH_SCRIPT,
    POSTGRES_SCRIPT,
    SCRIPT,
    SCRIPT_ENV,
    ElasticsearchServer,
    PostgresServer,
    S3Server,
    start_elasticsearch,
    start_postgres,
    start_seaweedfs,
)

TEMPLATE = "materials_template"
WORD = "汛期巡堤"  # in every upload's text
REQUEST_TIMEOUT = 30.0
START_TIMEOUT = 90.0  # for a process to start on a busy machine


def _port(address: str) -> str:
    return address.rstrip("/").rpartition(":")[2]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.TransportError:
        return False


class OutageStack:
    """PostgreSQL, SeaweedFS and Elasticsearch that one test module starts, stops and restarts."""

    def __init__(self, directory: Path) -> None:
        # Not under pytest's basetemp: PostgreSQL and Elasticsearch run as system users of their
        # own, which must reach their directories.
        self.directory = directory
        directory.chmod(0o755)
        self._started: list[PostgresServer | S3Server | ElasticsearchServer] = []
        try:
            self.postgres = start_postgres(directory / "postgres")
            self._started.append(self.postgres)
            self.s3 = start_seaweedfs(directory / "seaweedfs")
            self._started.append(self.s3)
            (directory / "elasticsearch").mkdir()
            self.elasticsearch = start_elasticsearch(directory / "elasticsearch")
            self._started.append(self.elasticsearch)
            with self.postgres.admin() as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
            template = Database(self.postgres.url(TEMPLATE))
            template.migrate()
            template.dispose()
        except BaseException:
            self.close()  # nothing started here outlives a failed start
            raise
        self.up = {"postgres": True, "s3": True, "elasticsearch": True}

    # Stop and start again, on the same port with the same data.

    def stop_postgres(self) -> None:
        self.up["postgres"] = False
        self.postgres.stop()

    def start_postgres(self) -> None:
        subprocess.run(
            [POSTGRES_SCRIPT, "start", str(self.postgres.directory), str(self.postgres.port)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.up["postgres"] = True

    def stop_s3(self) -> None:
        self.up["s3"] = False
        self.s3.stop()

    def start_s3(self) -> None:
        server = self.s3
        subprocess.run(
            [
                SCRIPT,
                "start",
                str(server.directory),
                _port(server.endpoint),
                server.access_key,
                server.secret_key,
            ],
            check=True,
            capture_output=True,
            timeout=60,
            env=SCRIPT_ENV,
        )
        self.up["s3"] = True

    def stop_elasticsearch(self) -> None:
        self.up["elasticsearch"] = False
        self.elasticsearch.stop()

    def start_elasticsearch(self) -> None:
        server = self.elasticsearch
        subprocess.run(
            [ELASTICSEARCH_SCRIPT, "start", str(server.directory), _port(server.url)],
            check=True,
            capture_output=True,
            timeout=180,
        )
        self.up["elasticsearch"] = True

    def restore(self) -> None:
        """Start again whatever a failed test left stopped."""
        if not self.up["postgres"]:
            self.start_postgres()
        if not self.up["s3"]:
            self.start_s3()
        if not self.up["elasticsearch"] or not _answers(self.elasticsearch.url):
            self.stop_elasticsearch()
            self.start_elasticsearch()

    def close(self) -> None:
        for server in reversed(self._started):
            with suppress(subprocess.SubprocessError):
                server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    @contextmanager
    def allocate(self, data_dir: Path) -> Iterator[Settings]:
        """Settings of a fresh database, bucket and index alias on this stack, as production
        sets them: no worker inside the API, downloads streamed through the API."""
        name = f"test_{uuid.uuid4().hex}"
        with self.postgres.admin() as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE)
                )
            )
        try:
            yield make_settings(
                data_dir,
                database_url=self.postgres.url(name),
                s3_endpoint=f"http://{self.s3.endpoint}",
                s3_access_key=self.s3.access_key,
                s3_secret_key=self.s3.secret_key,
                s3_bucket=f"test-{uuid.uuid4().hex[:20]}",
                s3_presigned_downloads=False,
                elasticsearch_url=self.elasticsearch.url,
                elasticsearch_index=f"test-{uuid.uuid4().hex[:16]}",
                # Claims held by a worker cut off from the database come free soon.
                index_lease_seconds=6,
                check_interval_seconds=0,
            )
        finally:
            if self.up["postgres"]:
                with self.postgres.admin() as admin:
                    admin.execute(
                        sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
                    )


def open_stack() -> OutageStack:
    return OutageStack(Path(tempfile.mkdtemp(prefix="materials-outages-")))


# The application: two API processes behind one port, two index workers.


def process_environment(settings: Settings) -> dict[str, str]:
    return settings_environment(settings, embedded_worker="false")


class WorkerProcess(server_process.WorkerProcess):
    """``materials worker`` with a data directory of its own (as on a machine of its own: its
    spool is not the API's)."""

    def __init__(self, settings: Settings, data_dir: Path, log_path: Path) -> None:
        super().__init__(data_dir, log_path, process_environment(settings))

    def wait_until_running(self) -> None:
        """Return once the worker says its index loop started; AssertionError otherwise."""
        _wait_for_lines(self.log, "materials.indexer: index worker", 1, self.process)


def _wait_for_lines(
    log: Callable[[], str], line: str, count: int, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while log().count(line) < count:
        assert process.poll() is None, f"exited with {process.returncode}:\n{log()}"
        assert time.monotonic() < deadline, f"not started within {START_TIMEOUT} s:\n{log()}"
        time.sleep(0.2)


@dataclass
class Deployment:
    """The API processes and the workers of one test, and a signed-in client per user."""

    settings: Settings
    server: ServerProcess
    workers: list[WorkerProcess]
    backends: Backends
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def headers(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            answer = httpx.post(
                f"{self.base_url}/api/v1/auth/token",
                data={"username": username, "password": PASSWORD},
                timeout=REQUEST_TIMEOUT,
            )
            assert answer.status_code == 200, answer.text
            self.tokens[username] = answer.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def get(self, path: str, username: str, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.base_url}{path}",
            params=params,
            headers=self.headers(username),
            timeout=REQUEST_TIMEOUT,
        )

    def alive(self) -> list[str]:
        """What has died among the processes (empty when all run), with their logs."""
        dead = []
        if self.server.process.poll() is not None:
            dead.append(f"materials serve exited:\n{self.server.log()}")
        for worker in self.workers:
            if worker.process.poll() is not None:
                dead.append(f"materials worker exited:\n{worker.log()}")
        return dead

    def logs(self) -> str:
        return "\n".join(
            [f"--- serve\n{self.server.log()[-6000:]}"]
            + [f"--- worker\n{worker.log()[-4000:]}" for worker in self.workers]
        )


@contextmanager
def deployed(settings: Settings, logs: Path) -> Iterator[Deployment]:
    """The sample county, then ``materials serve --workers 2`` and two ``materials worker``."""
    # One signing key for every process, made beforehand as an operator would.
    settings = settings.model_copy(update={"audit_signing_key_file": settings.audit_key_path})
    load_signer(settings.model_copy(update={"audit_signing_key_file": None}))
    backends = open_backends(settings)
    seed_county(backends)
    server = ServerProcess(
        settings.data_dir, logs / "serve.log", env=process_environment(settings), workers=2
    )
    workers: list[WorkerProcess] = []
    try:
        server.wait_until_up()
        # Both API processes, not only the first to answer, have their connections.
        _wait_for_lines(server.log, "Application startup complete", 2, server.process)
        workers = [
            WorkerProcess(settings, logs / f"worker-{n}", logs / f"worker-{n}.log") for n in (1, 2)
        ]
        for worker in workers:
            worker.wait_until_running()
        deployment = Deployment(settings, server, workers, backends)
        for username in ("east", "west", "poverty"):
            deployment.headers(username)
        yield deployment
    finally:
        server.stop()
        for worker in workers:
            worker.stop()
        backends.close()


# Continuous uploads from client threads.


@dataclass
class Upload:
    """One upload and what the API answered."""

    username: str
    content: bytes
    sha256: str
    started: float
    ended: float = 0.0
    status: int | None = None  # None: no answer (transport error)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def document_id(self) -> str:
        document_id: str = self.body["id"]
        return document_id


class Uploader:
    """Uploads small text files from one thread per user, ``pause`` seconds apart, until stopped
    (a steady load the two workers can index, not a benchmark)."""

    def __init__(
        self,
        deployment: Deployment,
        usernames: tuple[str, ...] = ("east", "west"),
        *,
        pause: float = 0.5,
    ) -> None:
        self._deployment = deployment
        self._pause = pause
        self._usernames = usernames
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.uploads: list[Upload] = []
        self._threads = [
            threading.Thread(target=self._run, args=(name,), daemon=True) for name in usernames
        ]

    def __enter__(self) -> Uploader:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)

    def _run(self, username: str) -> None:
        headers = self._deployment.headers(username)
        url = f"{self._deployment.base_url}/api/v1/documents"
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            # Bounded in count too: a test stops it long before.
            for number in range(5000):
                if self._stop.is_set():
                    return
                content = (
                    f"第{number}号{WORD}记录（{username}）：堤段{number}号巡查正常。"
                    f"编号{uuid.uuid4().hex}"
                ).encode()
                upload = Upload(
                    username, content, hashlib.sha256(content).hexdigest(), time.monotonic()
                )
                try:
                    answer = client.post(
                        url,
                        headers=headers,
                        files={"file": (f"巡堤{number}.txt", content, "text/plain")},
                        data={"period": "2026-Q3"},
                    )
                    upload.status = answer.status_code
                    upload.headers = dict(answer.headers)
                    try:
                        upload.body = answer.json()
                    except ValueError:
                        upload.body = answer.text
                except httpx.TransportError as exc:
                    upload.error = f"{type(exc).__name__}: {exc}"
                upload.ended = time.monotonic()
                with self._lock:
                    self.uploads.append(upload)
                self._stop.wait(self._pause)

    def snapshot(self) -> list[Upload]:
        with self._lock:
            return list(self.uploads)

    def succeeded_since(self, moment: float) -> int:
        return sum(1 for upload in self.snapshot() if upload.started > moment and upload.succeeded)

    def wait_for(self, count: int, since: float, *, timeout: float) -> None:
        """Return once ``count`` uploads begun after ``since`` succeeded; AssertionError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.succeeded_since(since) < count:
            assert time.monotonic() < deadline, (
                f"fewer than {count} uploads succeeded within {timeout} s: "
                f"{[(u.status, u.body) for u in self.snapshot()[-3:]]}"
            )
            time.sleep(0.2)
