"""The digests ``materials upload`` keeps: a file is read again whenever its content may differ."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from api import upload_digests
from api.upload_digests import FORGET_AFTER_SECONDS, DigestCache, Digests


def later(seconds: float = 60.0) -> Callable[[], float]:
    """A clock ``seconds`` ahead: files written by the test count as settled."""
    return lambda: time.time() + seconds


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files actually read and hashed."""
    seen: list[Path] = []
    real = upload_digests.sha256_of

    def counting(path: Path, **kwargs: object) -> tuple[str, int]:
        seen.append(path)
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(upload_digests, "sha256_of", counting)
    return seen


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_unchanged_file_is_read_once(tmp_path: Path, reads: list[Path]) -> None:
    material = tmp_path / "总结.txt"
    material.write_text("全年工作总结", encoding="utf-8")
    first = DigestCache(tmp_path / "cache", clock=later())
    assert first.digest(material) == (sha256(material), material.stat().st_size)
    first.close()

    again = DigestCache(tmp_path / "cache", clock=later())  # another run
    assert again.digest(material) == (sha256(material), material.stat().st_size)

    assert reads == [material]


def test_new_content_of_the_same_size_and_time_is_read_again(
    tmp_path: Path, reads: list[Path]
) -> None:
    material = tmp_path / "名单.txt"
    material.write_bytes(b"A" * 1000)
    cache = DigestCache(tmp_path / "cache", clock=later())
    cache.digest(material)
    status = material.stat()
    material.write_bytes(b"B" * 1000)  # same size, written in place
    os.utime(material, ns=(status.st_atime_ns, status.st_mtime_ns))  # and the old time put back

    assert cache.digest(material)[0] == sha256(material) == hashlib.sha256(b"B" * 1000).hexdigest()
    assert reads == [material, material]


def test_a_file_replaced_by_another_is_read_again(tmp_path: Path, reads: list[Path]) -> None:
    material = tmp_path / "台账.txt"
    material.write_bytes(b"first")
    cache = DigestCache(tmp_path / "cache", clock=later())
    cache.digest(material)
    replacement = tmp_path / "新台账.txt"
    replacement.write_bytes(b"other")
    replacement.replace(material)

    assert cache.digest(material)[0] == hashlib.sha256(b"other").hexdigest()
    assert len(reads) == 2


def test_a_file_changed_just_before_it_was_read_is_not_kept(
    tmp_path: Path, reads: list[Path]
) -> None:
    material = tmp_path / "照片说明.txt"
    material.write_bytes(b"just saved")
    cache = DigestCache(tmp_path / "cache")  # the real clock: written a moment ago

    cache.digest(material)
    cache.digest(material)

    assert reads == [material, material]


def test_a_cache_that_cannot_be_opened_only_costs_reading(
    tmp_path: Path, reads: list[Path]
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_bytes(b"")
    material = tmp_path / "会议纪要.txt"
    material.write_bytes(b"minutes")
    cache = DigestCache(blocked / "cache", clock=later())

    assert cache.digest(material)[0] == sha256(material)
    assert cache.digest(material)[0] == sha256(material)
    assert len(reads) == 2


def test_a_damaged_cache_file_only_costs_reading(tmp_path: Path, reads: list[Path]) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / upload_digests.CACHE_FILE).write_bytes(b"not a database" * 100)
    material = tmp_path / "会议纪要.txt"
    material.write_bytes(b"minutes")

    assert DigestCache(tmp_path / "cache", clock=later()).digest(material)[0] == sha256(material)


def test_records_unused_for_half_a_year_are_dropped(tmp_path: Path) -> None:
    material = tmp_path / "旧材料.txt"
    material.write_bytes(b"old")
    cache = DigestCache(tmp_path / "cache", clock=later())
    cache.digest(material)
    cache.close()

    newer = tmp_path / "新材料.txt"
    newer.write_bytes(b"new")
    DigestCache(tmp_path / "cache", clock=later(FORGET_AFTER_SECONDS + 3600)).digest(newer)

    with sqlite3.connect(tmp_path / "cache" / upload_digests.CACHE_FILE) as connection:
        (count,) = connection.execute("SELECT count(*) FROM digests").fetchone()
    assert count == 1  # the old file's record dropped, the new one's kept


def test_the_cache_is_private_to_the_user(tmp_path: Path) -> None:
    material = tmp_path / "a.txt"
    material.write_bytes(b"a")
    DigestCache(tmp_path / "cache", clock=later()).digest(material)

    assert (tmp_path / "cache").stat().st_mode & 0o077 == 0
    assert (tmp_path / "cache" / upload_digests.CACHE_FILE).stat().st_mode & 0o077 == 0


def test_digests_come_in_order_each_of_its_own_file(tmp_path: Path) -> None:
    files = [tmp_path / f"{number}.bin" for number in range(4)]
    for number, path in enumerate(files):
        path.write_bytes(bytes([number]) * 3_000_000)

    with Digests(files, cache=DigestCache(tmp_path / "cache", clock=later())) as digests:
        got = [digests.of(position) for position in range(len(files))]

    assert got == [(sha256(path), path.stat().st_size) for path in files]


def test_a_file_that_cannot_be_read_fails_alone(tmp_path: Path) -> None:
    files = [tmp_path / "甲.bin", tmp_path / "不存在.bin", tmp_path / "丙.bin"]
    files[0].write_bytes(b"a")
    files[2].write_bytes(b"c")

    with Digests(files) as digests:
        first = digests.of(0)
        with pytest.raises(FileNotFoundError):
            digests.of(1)
        last = digests.of(2)

    assert (first[1], last[1]) == (1, 1)
