"""Sweeping orphan blobs: only unreferenced blobs older than the grace period go, counted."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from api.cli import main
from services import maintenance
from services.backends import Backends, open_backends
from services.blobs import BlobInfo, BlobStore
from services.config import Settings
from tests.conftest import Api, make_settings

GRACE = 2


def put(backends: Backends, tmp_path: Path, content: bytes) -> str:
    sha256 = hashlib.sha256(content).hexdigest()
    source = tmp_path / sha256
    source.write_bytes(content)
    backends.blobs.put(sha256=sha256, source=source)
    return sha256


class ListThenPut:
    """The real store, with an upload landing just after each listing is taken."""

    def __init__(self, blobs: BlobStore, upload: Callable[[], object]) -> None:
        self._blobs = blobs
        self._upload = upload

    def list(self) -> Iterator[BlobInfo]:
        listed = list(self._blobs.list())
        self._upload()
        return iter(listed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blobs, name)


def test_sweep_removes_only_old_unreferenced_blobs_and_counts_them(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    graced = make_settings(settings.data_dir, orphan_grace_seconds=GRACE)
    backends = open_backends(graced)
    try:
        uploaded = api.upload("east", "纪要.txt", "城关镇党委会议纪要".encode())
        assert uploaded.status_code == 201
        referenced = uploaded.json()["sha256"]
        old = put(backends, tmp_path, b"an upload that never got its document row")
        again = b"an orphan whose bytes are being uploaded again"
        renewed = put(backends, tmp_path, again)
        time.sleep(GRACE + 0.2)
        young = put(backends, tmp_path, b"an upload in flight")
        found = maintenance.find_orphans(backends)
        assert sorted(blob.sha256 for blob in found.old) == sorted([old, renewed])
        assert [blob.sha256 for blob in found.young] == [young]

        # The same bytes are uploaded again right after the sweeper listed the blobs.
        racing = replace(
            backends, blobs=ListThenPut(backends.blobs, lambda: put(backends, tmp_path, again))
        )
        assert maintenance.sweep_orphans(racing) == [old]
        assert not backends.blobs.exists(old)
        for kept in (referenced, renewed, young):
            assert backends.blobs.exists(kept)
        assert maintenance.sweep_orphans(backends) == []
    finally:
        backends.close()


def test_sweep_and_check_print_a_json_error_when_the_store_is_down(tmp_path: Path) -> None:
    # An S3 endpoint nothing listens on: the commands start, then report the store unavailable.
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("MATERIALS_")},
        "MATERIALS_S3_ENDPOINT": "127.0.0.1:9",
        "MATERIALS_S3_ACCESS_KEY": "materials",
        "MATERIALS_S3_SECRET_KEY": "materials-secret",
    }
    for command in ("sweep", "check"):
        result = CliRunner().invoke(main, [command, "--data-dir", str(tmp_path / "data")], env=env)
        assert result.exit_code == 1, result.output
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.output
        assert '"backend_unavailable"' in lines[0]
