"""Settings: the generated signing key is one key, however many processes start at once."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from services.config import Settings


def key_of(data_dir: str, results: multiprocessing.Queue[str], start: object) -> None:
    """Runs in a spawned process, as one of `materials serve --workers N` does."""
    start.wait()  # type: ignore[attr-defined]
    results.put(Settings(data_dir=Path(data_dir)).signing_key())


def test_processes_starting_together_share_one_generated_key(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[str] = spawn.Queue()
    start = spawn.Event()
    data_dir = tmp_path / "data"
    processes = [
        spawn.Process(target=key_of, args=(str(data_dir), results, start)) for _ in range(6)
    ]
    for process in processes:
        process.start()
    start.set()
    keys = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert len(set(keys)) == 1
    assert len(keys[0]) >= 32
    key_file = data_dir / "secret_key"
    assert key_file.read_text(encoding="ascii").strip() == keys[0]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(path.name for path in data_dir.iterdir()) == ["secret_key"]


def test_a_configured_key_is_used_and_a_short_one_refused(tmp_path: Path) -> None:
    key = "k" * 40
    assert Settings(data_dir=tmp_path, secret_key=key).signing_key() == key
    with pytest.raises(ValueError, match="32"):
        Settings(data_dir=tmp_path, secret_key="short-key").signing_key()
    with pytest.raises(ValueError, match="production"):
        Settings(data_dir=tmp_path, production=True).signing_key()
    assert not (tmp_path / "secret_key").exists()
