"""The ``materials`` command: serve the API, bootstrap organisations and users, verify and check,
and print the burden figures.

Administrative commands print one JSON line and are idempotent, so scripts can run them twice.
"""

from __future__ import annotations

import base64
import getpass
import gzip
import json
import logging
import sys
import threading
import unicodedata
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from services import administration, dictionary, figures
from services.audit import Actor
from services.audit_archive import DEFAULT_MAX_EVENTS, ArchiveError, archive_events, verify_archive
from services.audit_keys import load_verifier
from services.audit_verify import verify_log, verify_receipt
from services.backends import Backends, open_backends
from services.config import Settings
from services.db import Database
from services.errors import BackendUnavailable, MaterialsError
from services.logging_setup import configure_logging
from services.models import OrgKind, Role
from services.private_files import make_private_dir
from services.signed_notes import NoteError, Verifier


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir.expanduser().resolve()})
    return settings


def _cli_actor() -> Actor:
    return Actor(username=f"cli:{getpass.getuser()}", role="system")


def _emit(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, default=str))


def _say(lines: list[str]) -> None:
    """Lines for people, in Chinese, on stderr: stdout keeps the JSON scripts read."""
    for line in lines:
        click.echo(line, err=True)


def _fail(exc: MaterialsError) -> None:
    _emit({"error": {"code": exc.error_code, "message": exc.message}})
    sys.exit(1)


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Data directory (overrides MATERIALS_DATA_DIR).",
)


class _Commands(click.Group):
    """Every command's domain errors (a backend down, a bad value) end as one JSON error line.

    ``upload`` is loaded only when it runs or a help lists it: the upload client's HTTP and
    progress-bar libraries would otherwise stay in every process, ``materials serve`` too.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "upload"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "upload" and cmd_name not in self.commands:
            from api.upload_client import upload_command

            self.add_command(upload_command)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MaterialsError as exc:
            _fail(exc)


@click.group(cls=_Commands)
def main() -> None:
    """县域材料共享库 — county shared materials repository."""
    # Every command logs alike (MATERIALS_LOG_LEVEL, MATERIALS_LOG_FORMAT), and a bad setting
    # stops it here, before it does anything, with one JSON error line.
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"MATERIALS_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        _emit({"error": {"code": "invalid_setting", "message": f"设置有误 / {problems}"}})
        sys.exit(2)
    configure_logging(settings)


# The app decides whose X-Forwarded-For to believe (MATERIALS_TRUSTED_PROXIES, api/proxies.py);
# uvicorn's own proxy handling would believe any local client, and rewrite the peer before the
# app could tell. uvicorn's log lines go through the logging every command configures.
# --workers: uvicorn kills a process that misses a 5 s ping, which a busy 2-core host misses while
# a process starts (tests/load: restarts mid-request under load); 30 s still replaces a hung one.
# Idle keep-alive connections stay open longer than a proxy's (nginx upstream: 60 s) or a
# clerk's pause between clicks: closed after uvicorn's 5 s, a request sent on one as it closes
# fails (tests/load saw POST /documents answered by a reset).
SERVER_OPTIONS: dict[str, Any] = {
    "proxy_headers": False,
    "log_config": None,
    "timeout_worker_healthcheck": 30,
    "timeout_keep_alive": 75,
    # No WebSocket routes: without this uvicorn loads a WebSocket library into the server.
    "ws": "none",
}


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@data_dir_option
@click.option("--demo", is_flag=True, help="Load the sample county first (when empty).")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
def serve(host: str, port: int, data_dir: Path | None, demo: bool, workers: int) -> None:
    """Run the HTTP API (embedded backends unless configured otherwise)."""
    import uvicorn

    from api.app import create_app

    settings = _settings(data_dir)
    if demo:
        _load_demo(settings)
    if workers > 1:
        import os

        os.environ["MATERIALS_DATA_DIR"] = str(settings.data_dir)
        # The processes' counters in files, summed at each scrape; last run's are removed.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir(settings))
        uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, **SERVER_OPTIONS)
        return
    logging.getLogger("materials.cli").info("data directory: %s", settings.data_dir)
    uvicorn.run(create_app(settings), host=host, port=port, **SERVER_OPTIONS)


def _fresh_metrics_dir(settings: Settings) -> Path:
    import shutil

    path = settings.data_dir / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    make_private_dir(path)
    return path


def _load_demo(settings: Settings) -> None:
    from services import demo as demo_module

    backends = open_backends(settings)
    try:
        logins = demo_module.load_demo(backends)
    finally:
        backends.close()
    click.echo(
        "示范县已就绪 / sample county loaded. "
        "Logins (username / password / role / organisation / name):",
        err=True,
    )
    for login in logins:
        click.echo(
            f"  {login.username:<12} {login.password:<16} {login.role:<12} {login.org} "
            f"{login.display_name}".rstrip(),
            err=True,
        )


@main.command()
@data_dir_option
def demo(data_dir: Path | None) -> None:
    """Load a small sample county: two townships, two departments, an auditor, an admin and a
    coordinator, a material catalog, submissions, requests and notifications (idempotent)."""
    _load_demo(_settings(data_dir))


@main.group()
def admin() -> None:
    """Bootstrap organisations and users without the web UI."""


def _with_backends(data_dir: Path | None) -> Backends:
    return open_backends(_settings(data_dir))


# A worker started before its database waits, asking again at growing intervals up to this.
_LONGEST_WAIT_SECONDS = 30.0


def _backends_once_reachable(settings: Settings, stop: threading.Event) -> Backends | None:
    """The backends, once the database answers (and the schema is migrated); None when ``stop``
    is set first. A worker started with the deployment, before PostgreSQL is up, waits for it
    instead of exiting."""
    log = logging.getLogger("materials.cli")
    wait = 1.0
    while True:
        try:
            return open_backends(settings)
        except BackendUnavailable as exc:
            log.warning("数据库暂不可用（%s），%.0f 秒后重试", exc.__cause__ or exc, wait)
        if stop.wait(wait):
            return None
        wait = min(wait * 2, _LONGEST_WAIT_SECONDS)


def _existing_backends(data_dir: Path | None) -> Backends:
    """Backends of a deployment that exists: a check of a data directory never used (a wrong
    --data-dir or working directory) must not make one and report an empty, intact system."""
    settings = _settings(data_dir)
    if not settings.database_url and not settings.embedded_database.exists():
        _emit(
            {
                "error": {
                    "code": "no_database",
                    "message": f"数据目录 {settings.data_dir} 中没有数据库：请用 --data-dir "
                    "或 MATERIALS_DATA_DIR 指向系统的数据目录",
                }
            }
        )
        sys.exit(1)
    return open_backends(settings)


@admin.command("create-org")
@click.option("--kind", type=click.Choice([k.value for k in OrgKind]), required=True)
@click.option("--name", required=True)
@click.option("--parent", default=None, help="Parent organisation name or id.")
@data_dir_option
def create_org(kind: str, name: str, parent: str | None, data_dir: Path | None) -> None:
    """Create an organisation (idempotent); prints it as one JSON line."""
    backends = _with_backends(data_dir)
    try:
        org, created = administration.add_org(
            backends, actor=_cli_actor(), name=name, kind=kind, parent=parent
        )
        payload = {
            "id": org.id,
            "name": org.name,
            "kind": org.kind,
            "parent_id": org.parent_id,
            "created": created,
        }
        _emit(payload)
    except MaterialsError as exc:
        _fail(exc)
    finally:
        backends.close()


@admin.command("create-user")
@click.option("--username", required=True)
@click.option(
    "--password",
    required=True,
    help="At least 10 characters of two kinds or more (letters, digits, symbols); not a common "
    "password.",
)
@click.option("--org", required=True, help="Organisation name or id.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option(
    "--display-name",
    default="",
    help="The person's name (姓名), shown beside the username; at most 40 characters.",
)
@data_dir_option
def create_user(
    username: str, password: str, org: str, role: str, display_name: str, data_dir: Path | None
) -> None:
    """Create a user (idempotent); prints it as one JSON line."""
    backends = _with_backends(data_dir)
    try:
        user, created = administration.add_user(
            backends,
            actor=_cli_actor(),
            username=username,
            password=password,
            org=org,
            role=role,
            display_name=display_name,
        )
        payload = {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
            "org": {"id": user.org.id, "name": user.org.name, "kind": user.org.kind},
            "created": created,
        }
        _emit(payload)
    except MaterialsError as exc:
        _fail(exc)
    finally:
        backends.close()


@main.group("dictionary")
def dictionary_group() -> None:
    """The county dictionary: words search keeps whole (village names, programmes)."""


@dictionary_group.command("add")
@click.argument("words", nargs=-1, required=True)
@data_dir_option
def dictionary_add(words: tuple[str, ...], data_dir: Path | None) -> None:
    """Add words (all or none); prints what was added and how many documents are reindexed."""
    backends = _with_backends(data_dir)
    try:
        added = dictionary.console_add_words(backends, actor=_cli_actor(), words=list(words))
    finally:
        backends.close()
    _emit(
        {
            "added": added.added,
            "already_present": added.already_present,
            "reindex_queued": added.reindex_queued,
        }
    )


@dictionary_group.command("remove")
@click.argument("word")
@data_dir_option
def dictionary_remove(word: str, data_dir: Path | None) -> None:
    """Remove a word; prints it and how many documents are reindexed."""
    backends = _with_backends(data_dir)
    try:
        queued = dictionary.console_remove_word(backends, actor=_cli_actor(), word=word)
    finally:
        backends.close()
    _emit({"removed": dictionary.clean_word(word), "reindex_queued": queued})


@dictionary_group.command("list")
@data_dir_option
def dictionary_list(data_dir: Path | None) -> None:
    """Every word segmentation adds, one JSON line each: the dictionary's own words (newest
    first, with who added them and when), then the organisation, catalog item and category
    names."""
    backends = _with_backends(data_dir)
    try:
        found = dictionary.listing(backends)
    finally:
        backends.close()
    for entry in found.entries:
        _emit(
            {
                "word": entry.word,
                "source": "dictionary",
                "added_by": entry.added_by,
                "added_at": entry.added_at.isoformat(),
            }
        )
    for source, names in (
        ("org", found.orgs),
        ("catalog_item", found.catalog_items),
        ("category", found.categories),
    ):
        for name in names:
            _emit({"word": name, "source": source})


@main.group()
def audit() -> None:
    """The tamper-evident access log."""


def _read_verifier(public_key: Path | None, settings: Settings | None) -> Verifier | None:
    if public_key is not None:
        try:
            return Verifier.parse(public_key.read_text(encoding="utf-8"))
        except (OSError, NoteError) as exc:
            raise click.BadParameter(str(exc), param_hint="--public-key") from exc
    return load_verifier(settings) if settings is not None else None


def _offline_verifier(public_key: Path) -> Verifier:
    verifier = _read_verifier(public_key, None)
    assert verifier is not None  # a key file was given
    return verifier


def _read_receipt(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"{path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise click.BadParameter(f"{path}: not a receipt object")
    return loaded


# Offline checks (receipts, archives) need the key given, never one found beside a server.
offline_public_key = click.option(
    "--public-key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The log's verifier key: the text of GET /api/v1/audit/public-key.",
)


@audit.command("verify")
@data_dir_option
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The log's verifier key (the text of GET /api/v1/audit/public-key) kept apart from "
    "the server; by default the one derived from the signing key file.",
)
@click.option(
    "--receipts",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory of receipts (*.json) townships kept: each is checked and held against "
    "the log.",
)
def audit_verify(data_dir: Path | None, public_key: Path | None, receipts: Path | None) -> None:
    """Recompute the Merkle tree and hold it against every signed checkpoint (database, object
    store, receipts); exit non-zero naming the first bad seq and the check that failed.

    Prints the report as one JSON line, and says it in Chinese on stderr."""
    # Imported here, not at the top: `materials serve` runs in this process (its memory).
    from services import audit_report_words

    backends = _existing_backends(data_dir)
    try:
        verifier = _read_verifier(public_key, backends.settings)
        held = [
            (path.name, _read_receipt(path))
            for path in sorted(receipts.glob("*.json") if receipts else [])
        ]
        report = verify_log(backends.db, backends.blobs, verifier, receipts=held)
    finally:
        backends.close()
    _emit(report.as_dict())
    _say(audit_report_words.verify_lines(report))
    if not report.ok:
        sys.exit(1)


@audit.command("verify-receipt")
@click.argument("receipt", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@offline_public_key
def audit_verify_receipt(receipt: Path, public_key: Path) -> None:
    """Check a saved receipt offline: its upload event is in the log under a signed checkpoint.

    Needs no server and no database, only the receipt and the log's public key."""
    verifier = _offline_verifier(public_key)
    loaded = _read_receipt(receipt)
    try:
        check = verify_receipt(loaded, verifier)
    except NoteError as exc:
        _emit({"ok": False, "receipt": receipt.name, "reason": str(exc)})
        click.echo(f"receipt does not verify: {exc}", err=True)
        sys.exit(1)
    _emit(
        {
            "ok": True,
            "receipt": receipt.name,
            "document_id": loaded.get("document_id"),
            "sha256": loaded.get("sha256"),
            "seq": check.seq,
            "tree_size": check.tree_size,
            "root": base64.b64encode(check.root).decode(),
        }
    )


@audit.command("archive")
@data_dir_option
@click.option(
    "--prune",
    is_flag=True,
    help="After each archive is stored and checked, delete its events from the database "
    "(upload events that receipts point to are kept).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write each archive into this directory.",
)
@click.option(
    "--max-events",
    type=click.IntRange(min=1, max=1_000_000),
    default=DEFAULT_MAX_EVENTS,
    show_default=True,
    help="Events per archive.",
)
def audit_archive(data_dir: Path | None, prune: bool, out: Path | None, max_events: int) -> None:
    """Export events older than MATERIALS_AUDIT_RETENTION_DAYS, with the proof that they are
    the log's, to the object store (and --out); with --prune, then remove them from the database.

    Prints one JSON line per archive (and says it in Chinese on stderr). Without --prune only
    the next range is exported."""
    # Imported here, not at the top: `materials serve` runs in this process (its memory).
    from services import audit_report_words

    backends = _existing_backends(data_dir)
    try:
        verifier = load_verifier(backends.settings)
        if verifier is None:
            _say([audit_report_words.NO_SIGNING_KEY])
            sys.exit(1)
        if out is not None:
            make_private_dir(out)
        while True:
            result = archive_events(
                backends.db,
                backends.blobs,
                backends.settings,
                verifier,
                actor=_cli_actor(),
                prune=prune,
                max_events=max_events,
            )
            if result.archive is None:
                _emit({"archived": 0, "message": audit_report_words.NOTHING_TO_ARCHIVE})
                _say([audit_report_words.NOTHING_TO_ARCHIVE])
                break
            archive = result.archive
            if out is not None:
                (out / archive.name.rsplit("/", 1)[-1]).write_bytes(archive.data)
            _emit(
                {
                    "archived": archive.events,
                    "first_seq": archive.first_seq,
                    "last_seq": archive.last_seq,
                    "archive": archive.name,
                    "sha256": archive.sha256,
                    "pruned": result.deleted,
                    "kept_for_receipts": result.kept,
                }
            )
            _say([audit_report_words.archive_line(result, prune=prune)])
            if not prune:
                break
    finally:
        backends.close()


@audit.command("verify-archive")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@offline_public_key
def audit_verify_archive(archive: Path, public_key: Path) -> None:
    """Check an archive offline: its events are exactly a range of the signed log.

    Needs no server and no database, only the archive and the log's public key."""
    verifier = _offline_verifier(public_key)
    try:
        with gzip.open(archive) as lines:
            check = verify_archive(lines, verifier)
    except (ArchiveError, OSError, EOFError) as exc:
        _emit({"ok": False, "archive": archive.name, "reason": str(exc)})
        click.echo(f"archive does not verify: {exc}", err=True)
        sys.exit(1)
    _emit(
        {
            "ok": True,
            "archive": archive.name,
            "first_seq": check.first_seq,
            "last_seq": check.last_seq,
            "checkpoint_size": check.checkpoint_size,
            "root": base64.b64encode(check.root).decode(),
        }
    )


@audit.command("public-key")
@data_dir_option
def audit_public_key(data_dir: Path | None) -> None:
    """Print the log's verifier key (to keep apart from the server, for verify-receipt)."""
    settings = _settings(data_dir)
    verifier = load_verifier(settings)
    if verifier is None:
        click.echo("no audit signing key yet: made when the first checkpoint is signed", err=True)
        sys.exit(1)
    click.echo(verifier.text())


@audit.command("sequence")
@data_dir_option
def audit_sequence(data_dir: Path | None) -> None:
    """Sequence every event waiting and sign a checkpoint over them, then exit (the worker and
    embedded serve do this continuously)."""
    from services.audit_sequencer import AuditSequencer

    backends = _with_backends(data_dir)
    try:
        sequencer = AuditSequencer(backends.db, backends.settings, backends.blobs)
        sequenced = sequencer.drain()
    finally:
        backends.close()
    _emit({"sequenced": sequenced})


@main.command()
@data_dir_option
def migrate(data_dir: Path | None) -> None:
    """Bring the database schema to the newest version, and exit.

    Every command also migrates when it starts; a deployment runs this once before the API
    replicas and workers so that none of them changes the schema while others serve.
    """
    settings = _settings(data_dir)
    make_private_dir(settings.data_dir)
    database = Database(settings.resolved_database_url)
    try:
        database.migrate()
        _emit({"migrated": True, "revision": database.schema_revision()})
    except MaterialsError as exc:
        _fail(exc)
    finally:
        database.dispose()


@main.command()
@data_dir_option
@click.option(
    "--repair",
    is_flag=True,
    help="Remove orphan blobs past the grace period, make stuck outbox events due now, "
    "queue missing or stale documents for the search index and delete extra ones.",
)
@click.option(
    "--cheap", is_flag=True, help="Blobs by size only (no re-hash); no index or audit check."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the summary.")
def check(data_dir: Path | None, repair: bool, cheap: bool, as_json: bool) -> None:
    """Check the whole system: every document's blob (size and sha256), orphan blobs, the
    outbox, the search index, the audit log. Exit 0 when consistent or repaired, 1 when
    something is left."""
    # Imported here, not at the top: `materials serve` runs in this process (its memory).
    from services import consistency

    backends = _existing_backends(data_dir)
    try:
        report = consistency.check_system(backends, repair=repair, cheap=cheap)
    finally:
        backends.close()
    if as_json:
        _emit(report.as_dict())
    else:
        for line in report.lines():
            click.echo(line)
        click.echo(report.verdict())
    if not report.ok:
        sys.exit(1)


@main.command()
@data_dir_option
def worker(data_dir: Path | None) -> None:
    """Run an index worker: drain the outbox into the search index until interrupted; beside it,
    the audit log's sequencer (one at a time across all workers, by a lease)."""
    import signal

    from indexer.worker import IndexWorker
    from services import consistency
    from services.audit_sequencer import AuditSequencer, BackgroundSequencer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    backends = _backends_once_reachable(_settings(data_dir), stop)
    if backends is None:
        return  # stopped before the database answered
    sequencer = BackgroundSequencer(AuditSequencer(backends.db, backends.settings, backends.blobs))
    sequencer.start()
    checker = consistency.BackgroundCheck(backends)  # every MATERIALS_CHECK_INTERVAL_SECONDS
    checker.start()
    try:
        IndexWorker(backends, backends.index).run(stop)
    finally:
        checker.stop()
        sequencer.stop()
        backends.close()


@main.command()
@data_dir_option
@click.option("--restart", is_flag=True, help="Start over instead of resuming an unfinished run.")
@click.option(
    "--extract",
    is_flag=True,
    help="Extract every file again instead of using the text kept from the last extraction "
    "(after installing Tesseract or upgrading the extractors).",
)
def reindex(data_dir: Path | None, restart: bool, extract: bool) -> None:
    """Rebuild the search index from the database and the blob store (resumable)."""
    from tqdm import tqdm

    from indexer.reindex import reindex as rebuild

    backends = _with_backends(data_dir)
    dictionary.refresh(backends)  # segment with the county's words
    bar = tqdm(unit="doc", desc="reindex", file=sys.stderr)

    def on_total(total: int, done: int) -> None:
        bar.reset(total=total)
        bar.update(done)

    try:
        report = rebuild(
            backends,
            backends.index,
            restart=restart,
            extract=extract,
            on_total=on_total,
            on_progress=bar.update,
        )
    finally:
        bar.close()
        backends.close()
    _emit(
        {
            "run": report.run_id,
            "resumed": report.resumed,
            "documents": report.total,
            "indexed": report.indexed,
            "failed": report.failed,
            "removed": report.removed,
        }
    )


@main.command()
@data_dir_option
def sweep(data_dir: Path | None) -> None:
    """Delete blobs no document points at, older than the grace period (what ``check --repair``
    does for orphans)."""
    # Imported here, not at the top: `materials serve` runs in this process (its memory).
    from services import maintenance

    backends = _with_backends(data_dir)
    try:
        removed = maintenance.sweep_orphans(backends)
    finally:
        backends.close()
    _emit({"removed": len(removed)})


@main.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
def backup_command(directory: Path, data_dir: Path | None) -> None:
    """Back up the database (one snapshot), then the blobs and audit records, into DIRECTORY
    (run again on the same directory: blobs already there are not copied again)."""
    from services.backup import back_up

    _emit(back_up(settings=_settings(data_dir), directory=directory))


@main.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_dir_option
def restore_command(directory: Path, data_dir: Path | None) -> None:
    """Restore a backup onto an empty database and blob store, after checking every file of it
    against its manifest; then run `reindex`, `check` and `audit verify --public-key`."""
    from services.backup import restore

    _emit(restore(settings=_settings(data_dir), directory=directory))


_GROUPING_NAMES = {"township": "按乡镇", "department": "按部门", "county": "全县合计"}


@main.command("figures")
@click.option("--from", "period_from", default=None, help="First period, e.g. 2026-01.")
@click.option("--to", "period_to", default=None, help="Last period, e.g. 2026-06.")
@click.option("--by", type=click.Choice(figures.GROUPINGS), default="township", show_default=True)
@click.option(
    "--csv", "as_csv", is_flag=True, help="CSV as GET /api/v1/figures.csv (UTF-8 with BOM)."
)
@data_dir_option
def figures_command(
    period_from: str | None, period_to: str | None, by: str, as_csv: bool, data_dir: Path | None
) -> None:
    """Print the burden figures (减负成效), every row and the county's totals."""
    backends = _with_backends(data_dir)
    try:
        table = figures.for_console(
            backends, actor=_cli_actor(), period_from=period_from, period_to=period_to, by=by
        )
    finally:
        backends.close()
    if as_csv:
        click.echo(b"".join(figures.to_csv(table)), nl=False)
        return
    span = (
        f"{period_from or '最早'} 至 {period_to or '今'}"
        if period_from or period_to
        else "全部期间"
    )
    click.echo(f"减负成效（{_GROUPING_NAMES[by]}，{span}）")
    click.echo(_text_table(table))


def _width(text: str) -> int:
    """Columns a text takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _text_table(table: figures.FigureTable) -> str:
    """The figures as an aligned text table with Chinese headings, the totals last."""

    def cells(row: figures.FigureRow) -> list[str]:
        values = row.as_dict()
        return [
            f"{values[column]:g}" if isinstance(values[column], float) else str(values[column])
            for column in figures.COLUMNS
        ]

    headings = [figures.COLUMN_NAMES[column] for column in figures.COLUMNS]
    lines = [cells(row) for row in table.lines()]
    widths = [max(_width(line[i]) for line in [headings, *lines]) for i in range(len(headings))]

    def render(line: list[str]) -> str:
        padded = [
            text + " " * (width - _width(text)) if i == 0 else " " * (width - _width(text)) + text
            for i, (text, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    body = [render(line) for line in lines]
    if len(lines) > 1:
        body.insert(-1, rule)  # the county's totals below a line
    return "\n".join([render(headings), rule, *body])
