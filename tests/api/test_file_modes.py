"""What the app writes in its data directory is its own: directories 0700, files 0600 (blobs 0400),
whatever the umask: the database, the search index, the generated key, blobs and spooled uploads.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from indexer.worker import IndexWorker
from services.backends import open_backends
from services.config import Settings
from tests.conftest import PASSWORD, seed_county
from tests.samples import pdf_bytes


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """As on a server whose umask lets everyone read and write what is created."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def _modes(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """The modes of the directories and of the files under ``root`` (itself included)."""
    directories: dict[str, int] = {}
    files: dict[str, int] = {}
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        name = str(path.relative_to(root))
        (directories if path.is_dir() else files)[name] = mode
    return directories, files


def test_a_fresh_data_dir_after_an_upload_is_private(
    tmp_path: Path, permissive_umask: None
) -> None:
    data_dir = tmp_path / "srv" / "data"  # its parent is created too
    # No configured key: the generated one is written into the data directory.
    settings = Settings(data_dir=data_dir, password_time_cost=1, password_memory_kib=1024)
    backends = open_backends(settings)
    try:
        seed_county(backends)
        with TestClient(create_app(settings, backends=backends)) as client:
            token = client.post(
                "/api/v1/auth/token", data={"username": "east", "password": PASSWORD}
            )
            assert token.status_code == 200, token.text
            uploaded = client.post(
                "/api/v1/documents",
                files={"file": ("报告.pdf", pdf_bytes("private"), "application/pdf")},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
            assert uploaded.status_code == 201, uploaded.text
        IndexWorker(backends, backends.index).drain()
        directories, files = _modes(data_dir)
    finally:
        backends.close()

    for expected in ("secret_key", "materials.sqlite3", "materials.sqlite3-wal", "search.sqlite3"):
        assert files[expected] == 0o600, files
    assert {"blobs", "spool"} <= set(directories), directories
    assert set(directories.values()) == {0o700}, directories
    assert stat.S_IMODE((tmp_path / "srv").stat().st_mode) == 0o700
    assert {name: mode for name, mode in files.items() if mode & 0o077} == {}
    blob = next(name for name in files if Path(name).name == uploaded.json()["sha256"])
    assert files[blob] == 0o400  # the owner's alone, and never rewritten
