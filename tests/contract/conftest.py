"""Fixtures the contract suites share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.blobs._local import LocalBlobStore
from services.db import Database
from tests.contract.test_audit_log import Log, settings_for


@pytest.fixture
def log(database_url: str, tmp_path: Path) -> Iterator[Log]:
    """An empty audit log on each database, checkpoints written to a local directory."""
    database = Database(database_url)
    database.migrate()
    settings = settings_for(database_url, tmp_path / "data")
    yield Log(database, settings, LocalBlobStore(settings.blob_dir))
    database.dispose()
