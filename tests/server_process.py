"""``materials`` as a user runs it: CLI subprocesses and ``materials serve`` on a free local port.

Shared by the end-to-end tests and the benchmark scripts; nothing is configured through the
environment but what the caller passes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
MATERIALS = str(Path(sys.executable).with_name("materials"))
COMMAND_TIMEOUT = 120
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without any MATERIALS_ setting, plus the given ones."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MATERIALS_")}
    return {**clean, **{f"MATERIALS_{key.upper()}": value for key, value in settings.items()}}


# What a test's Settings hand to a subprocess of the app: its stores, its keys, the cheap test
# password hashes and the timings a test shortened.
_PASSED_SETTINGS = (
    "secret_key",
    "database_url",
    "s3_endpoint",
    "s3_access_key",
    "s3_secret_key",
    "s3_bucket",
    "s3_presigned_downloads",
    "elasticsearch_url",
    "elasticsearch_index",
    "index_lease_seconds",
    "check_interval_seconds",
    "password_time_cost",
    "password_memory_kib",
    "audit_receipt_wait_seconds",
    "audit_signing_key_file",
)


def settings_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment of a subprocess of the app that uses the test's ``settings`` (those set),
    with ``overrides`` on top."""
    values = {name: getattr(settings, name) for name in _PASSED_SETTINGS}
    passed = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in values.items()
        if value is not None
    }
    return environment(**{**passed, **overrides})


def materials(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one ``materials`` command to completion."""
    return subprocess.run(
        [MATERIALS, *args],
        cwd=REPO_ROOT,
        env=env if env is not None else environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


class ServerProcess:
    """``materials serve`` as a subprocess, its output in a log file."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        workers: int = 1,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [MATERIALS, "serve", "--data-dir", str(data_dir), "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=REPO_ROOT,
            env=env if env is not None else environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_until_up(self) -> None:
        """Return once /healthz answers; RuntimeError with the log when it does not."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not up after {START_TIMEOUT} s:\n{self.log()}")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


class WorkerProcess:
    """``materials worker`` as a subprocess, its output in a log file."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [MATERIALS, "worker", "--data-dir", str(data_dir)],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL, as an out-of-memory kill or a power cut would end it."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
