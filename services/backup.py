"""Back up the database and the blob store into a directory, and restore them onto an empty stack.

The database is copied first, as one snapshot; then every blob and audit record, each checked
against its sha256. ``manifest.json`` is written last: a directory without it is no backup.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL, make_url

from services.audit_archive import ARCHIVE_PREFIX
from services.audit_sequencer import CHECKPOINT_PREFIX, parse_record_name
from services.blobs import BlobStore, open_blob_store
from services.config import Settings
from services.errors import MaterialsError
from services.private_files import make_private_dir

__all__ = ["BackupError", "back_up", "restore"]

FORMAT = "materials-backup/1"
MANIFEST = "manifest.json"
_CHUNK = 1024 * 1024


class BackupError(MaterialsError):
    """A backup or restore that cannot go on; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="backup_failed")


@dataclass(frozen=True)
class _Database:
    kind: str  # "postgresql" or "sqlite"
    url: URL

    @classmethod
    def of(cls, settings: Settings) -> _Database:
        url = make_url(settings.resolved_database_url)
        kind = url.get_backend_name()
        if kind not in ("postgresql", "sqlite"):
            raise BackupError(f"不支持备份此类数据库：{kind}")
        return cls(kind, url)

    @property
    def file_name(self) -> str:
        return "database.dump" if self.kind == "postgresql" else "database.sqlite3"

    def libpq(self) -> tuple[list[str], dict[str, str]]:
        """pg_dump/pg_restore connection options, and the environment carrying the password
        (never on the command line, which ps shows)."""
        url = self.url
        args = ["--dbname", url.database or "", "--username", url.username or "postgres"]
        if url.host:
            args += ["--host", url.host]
        if url.port:
            args += ["--port", str(url.port)]
        env = dict(os.environ)
        if url.password:
            env["PGPASSWORD"] = str(url.password)
        return args, env

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        url = self.url
        return psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,  # transactions below are begun explicitly
        )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _run(command: list[str], env: dict[str, str]) -> None:
    # pg_dump/pg_restore from PATH, with arguments built here (no shell).
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{command[0]} 失败：{done.stderr.strip()[-2000:]}")


def _blob_path(directory: Path, sha256: str) -> Path:
    return directory / "blobs" / sha256[:2] / sha256[2:4] / sha256


def _record_path(directory: Path, name: str) -> Path:
    return directory / "records" / name


@contextmanager
def _new_file(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path``, renamed onto it when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


# ---- back up


def _dump_postgresql(database: _Database, target: Path) -> int:
    """pg_dump of one snapshot, and the largest signed tree size that snapshot holds."""
    args, env = database.libpq()
    with database.connect() as connection:
        # The dump and the query below see the same snapshot, exported by this transaction.
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = connection.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        size = connection.execute("SELECT coalesce(max(tree_size), 0) FROM audit_checkpoints")
        tree_size = int(size.fetchone()[0])  # type: ignore[index]
        _run(
            ["pg_dump", "--format=custom", f"--snapshot={row[0]}", "--file", str(target), *args],
            env,
        )
        connection.execute("ROLLBACK")
    return tree_size


def _dump_sqlite(database: _Database, target: Path) -> int:
    """SQLite's online backup (a consistent copy while the app writes), and its largest signed
    tree size."""
    path = Path(database.url.database or "").resolve()
    source = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        found = copy.execute("SELECT coalesce(max(tree_size), 0) FROM audit_checkpoints")
        return int(found.fetchone()[0])
    finally:
        copy.close()
        source.close()


def _copy_blob(blobs: BlobStore, directory: Path, sha256: str, size: int) -> bool:
    """Copy one blob unless an earlier run did (True: copied); its bytes must hash to its name."""
    path = _blob_path(directory, sha256)
    if path.is_file() and path.stat().st_size == size:
        return False  # written only after its hash was checked: blobs never change
    digest = hashlib.sha256()
    with _new_file(path) as temporary:
        with temporary.open("wb") as out:
            for chunk in blobs.read_chunks(sha256):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:  # raised before the rename: nothing stays behind
            raise BackupError(f"对象存储中的文件 {sha256} 已损坏（内容与 sha256 不符）")
    return True


def back_up(*, settings: Settings, directory: Path) -> dict[str, Any]:
    """Copy the database (one snapshot), then the blobs and audit records, into ``directory``."""
    directory = directory.expanduser().resolve()
    key = settings.audit_key_path
    if key == directory or directory in key.parents:
        raise BackupError("审计签名密钥不得与数据库放在同一备份中：请选择其他备份目录")
    make_private_dir(directory)
    # An earlier manifest would vouch for the dump about to be replaced.
    (directory / MANIFEST).unlink(missing_ok=True)
    database = _Database.of(settings)
    dump = directory / database.file_name
    with _new_file(dump) as temporary:
        if database.kind == "postgresql":
            tree_size = _dump_postgresql(database, temporary)
        else:
            temporary.unlink()
            tree_size = _dump_sqlite(database, temporary)
    blobs = open_blob_store(settings)
    objects: list[dict[str, Any]] = []
    copied = 0
    for blob in blobs.list():
        copied += _copy_blob(blobs, directory, blob.sha256, blob.size)
        objects.append(
            {"kind": "blob", "name": blob.sha256, "size": blob.size, "sha256": blob.sha256}
        )
    skipped = 0
    for name in _records(blobs):
        parsed = parse_record_name(name) if name.startswith(CHECKPOINT_PREFIX + "/") else None
        if parsed is not None and parsed[0] > tree_size:
            # Signed after the dump: restored beside a log that ends earlier, it would read as
            # a truncated log. The restored sequencer signs these sizes again.
            skipped += 1
            continue
        data = blobs.read_record(name)
        path = _record_path(directory, name)
        if not (path.is_file() and path.read_bytes() == data):
            with _new_file(path) as temporary:
                temporary.write_bytes(data)
        objects.append({"kind": "record", "name": name, "size": len(data), "sha256": _hash(data)})
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "database": {
            "kind": database.kind,
            "file": database.file_name,
            "size": dump.stat().st_size,
            "sha256": _sha256_file(dump),
            "audit_tree_size": tree_size,
        },
        "objects": objects,
    }
    with _new_file(directory / MANIFEST) as temporary:
        temporary.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return {
        "backup": str(directory),
        "database": database.kind,
        "audit_tree_size": tree_size,
        "blobs": sum(1 for o in objects if o["kind"] == "blob"),
        "blobs_copied": copied,
        "records": sum(1 for o in objects if o["kind"] == "record"),
        "checkpoints_after_dump_skipped": skipped,
    }


def _records(blobs: BlobStore) -> Iterator[str]:
    for prefix in (CHECKPOINT_PREFIX, ARCHIVE_PREFIX):
        yield from blobs.list_records(prefix)


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- restore


def _read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{directory} 中没有 {MANIFEST}：不是完整的备份") from exc
    except (OSError, ValueError) as exc:
        raise BackupError(f"{MANIFEST} 无法读取：{exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"不认识的备份格式：{manifest.get('format')!r}")
    return manifest


def _verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Every file of the backup has the size and sha256 its manifest gives, before anything is
    written."""
    bad: list[str] = []
    database = manifest["database"]
    if _sha256_file(directory / database["file"]) != database["sha256"]:
        bad.append(database["file"])
    for entry in manifest["objects"]:
        if entry["kind"] == "blob":
            path, expected = _blob_path(directory, entry["name"]), entry["name"]
        else:
            path, expected = _record_path(directory, entry["name"]), entry["sha256"]
        intact = path.is_file() and path.stat().st_size == entry["size"]
        if not intact or _sha256_file(path) != expected:
            bad.append(entry["name"])
    if bad:
        raise BackupError(f"备份文件缺失或损坏（{len(bad)} 个）：{', '.join(bad[:10])}")


def _database_empty(database: _Database) -> bool:
    if database.kind == "sqlite":
        path = Path(database.url.database or "")
        return not path.exists() or path.stat().st_size == 0
    with database.connect() as connection:
        found = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
            "'information_schema')"
        ).fetchone()
    return found is not None and found[0] == 0


def _restore_database(database: _Database, dump: Path) -> None:
    if database.kind == "postgresql":
        args, env = database.libpq()
        # One transaction: a failed restore leaves the database empty, so it can be run again.
        _run(
            [
                "pg_restore",
                "--exit-on-error",
                "--single-transaction",
                "--no-owner",
                *args,
                str(dump),
            ],
            env,
        )
        return
    target = Path(database.url.database or "")
    make_private_dir(target.parent)
    with _new_file(target) as temporary:
        shutil.copyfile(dump, temporary)


def restore(*, settings: Settings, directory: Path) -> dict[str, Any]:
    """Restore a backup onto an empty database and blob store: verify every file, put the blobs
    and audit records (records under retention again), then the database."""
    directory = directory.expanduser().resolve()
    manifest = _read_manifest(directory)
    database = _Database.of(settings)
    if database.kind != manifest["database"]["kind"]:
        raise BackupError(f"备份的数据库是 {manifest['database']['kind']}，目标是 {database.kind}")
    _verify_files(directory, manifest)
    if not _database_empty(database):
        raise BackupError("目标数据库不是空的：只能恢复到空数据库")
    blobs = open_blob_store(settings)
    wanted = {e["name"] for e in manifest["objects"]}
    # Objects of an earlier, interrupted run of this restore may be there; nothing else.
    foreign = [b.sha256 for b in blobs.list() if b.sha256 not in wanted]
    foreign += [n for n in _records(blobs) if n not in wanted]
    if foreign:
        raise BackupError(f"目标对象存储不是空的（{len(foreign)} 个对象不在备份中）")
    blob_count = records = locked = 0
    for entry in manifest["objects"]:
        if entry["kind"] == "blob":
            blobs.put(sha256=entry["name"], source=_blob_path(directory, entry["name"]))
            blob_count += 1
            continue
        data = _record_path(directory, entry["name"]).read_bytes()
        # Retention starts again from today: at least as long as the original's.
        locked += blobs.put_record(entry["name"], data, retain_days=settings.audit_retention_days)
        records += 1
    # Last: the restored rows never point at a blob not yet in the store.
    _restore_database(database, directory / manifest["database"]["file"])
    return {
        "restored": str(directory),
        "database": database.kind,
        "audit_tree_size": manifest["database"]["audit_tree_size"],
        "blobs": blob_count,
        "records": records,
        "records_locked": locked,
    }
