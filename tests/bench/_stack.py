"""Real servers for the side-by-side benchmarks: started by the deploy/ scripts, always stopped.

``Stack`` starts PostgreSQL, SeaweedFS and Elasticsearch on 127.0.0.1 as a benchmark asks for them
and stops every one of them (and ``materials serve``) when the ``with`` block ends, also on error.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from tests.server_process import ServerProcess, environment
from tests.servers import (
    ElasticsearchServer,
    PostgresServer,
    S3Server,
    start_elasticsearch,
    start_minio,
    start_postgres,
    start_seaweedfs,
)

__all__ = ["Stack", "load", "machine", "percentile", "summary"]


def machine() -> str:
    """One line naming the CPU, its cores and the memory, from /proc."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return f"machine: {model}, {os.cpu_count()} cores, {memory_kib / 2**20:.1f} GiB RAM; {load()}"


def load() -> str:
    """The load averages: other work on the machine skews every figure printed after it."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one} {five} {fifteen}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):6.1f} ms  p95 {percentile(values, 0.95):6.1f} ms  "
        f"p99 {percentile(values, 0.99):6.1f} ms  max {max(values):6.1f} ms"
    )


class Stack:
    """A temporary directory and the servers started in it, stopped in reverse order on exit."""

    def __init__(self) -> None:
        self._exit = ExitStack()
        # Not under a private home: PostgreSQL and Elasticsearch run as their own system users.
        self.directory = Path(tempfile.mkdtemp(prefix="materials-bench-"))
        self.directory.chmod(0o755)
        self._exit.callback(shutil.rmtree, self.directory, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        log = self.directory / "server.log"
        if error is not None and log.exists():  # the server's side of the failure
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-60:]
            print("server log (last lines):", *tail, sep="\n", file=sys.stderr)
        self._exit.close()

    def _subdirectory(self, name: str) -> Path:
        path = self.directory / name
        path.mkdir(mode=0o755)
        return path

    def postgres(self) -> PostgresServer:
        began = time.perf_counter()
        server = start_postgres(self._subdirectory("postgres"))
        self._exit.callback(server.stop)
        print(f"PostgreSQL up on port {server.port} in {time.perf_counter() - began:.1f} s")
        return server

    def seaweedfs(self) -> S3Server:
        began = time.perf_counter()
        server = start_seaweedfs(self._subdirectory("seaweedfs"))
        self._exit.callback(server.stop)
        print(f"SeaweedFS S3 up on {server.endpoint} in {time.perf_counter() - began:.1f} s")
        return server

    def minio(self) -> S3Server:
        began = time.perf_counter()
        server = start_minio(self._subdirectory("minio"))
        self._exit.callback(server.stop)
        print(f"MinIO up on {server.endpoint} in {time.perf_counter() - began:.1f} s")
        return server

    def elasticsearch(self, *, heap: str) -> ElasticsearchServer:
        began = time.perf_counter()
        # deploy/elasticsearch.sh reads the heap size from its environment.
        os.environ["ELASTICSEARCH_HEAP"] = heap
        server = start_elasticsearch(self._subdirectory("elasticsearch"))
        self._exit.callback(server.stop)
        print(
            f"Elasticsearch up on {server.url} (heap {heap}) in {time.perf_counter() - began:.1f} s"
        )
        return server

    def serve(self, workers: int = 1, **settings: str) -> ServerProcess:
        """``materials serve`` (``workers`` uvicorn processes) with these settings, up."""
        data_dir = self.directory / "data"
        server = ServerProcess(
            data_dir, self.directory / "server.log", env=environment(**settings), workers=workers
        )
        self._exit.callback(server.stop)
        server.wait_until_up()
        return server
