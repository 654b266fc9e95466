"""``materials upload``: send files and folders to a materials server over HTTP, each at most once.

Every file is hashed locally and looked up first, so bytes the township already holds never travel.
"""

from __future__ import annotations

import io
import json
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import click
import httpx

from api.upload_digests import DigestCache, Digests, default_cache_dir

API = "/api/v1"
# Statuses worth another attempt: the request may well succeed a little later.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 120.0
# Slow lines: a generous read timeout (the server checks the file after the last byte arrives).
TIMEOUT = httpx.Timeout(connect=15.0, read=300.0, write=120.0, pool=15.0)
EXPIRED_MESSAGE = "令牌无效或已过期"


class ClientProblem(click.ClickException):
    """A problem with the command line, the credentials or the server: stops the batch, exit 2."""

    exit_code = 2


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: stored, duplicate or rejected."""

    status: str
    path: Path
    sha256: str | None = None
    size: int | None = None
    document: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def document_id(self) -> str:
        return str((self.document or {}).get("id", ""))

    def line(self) -> str:
        if self.status == "rejected":
            return f"rejected {self.path}: {self.error_code} {self.error_message}"
        return f"{self.status} {self.document_id} {self.path}"

    def as_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "status": self.status,
            "path": str(self.path),
            "id": self.document_id or None,
            "sha256": self.sha256,
            "size": self.size,
        }
        if self.document is not None:
            payload["document"] = self.document
        if self.status == "rejected":
            payload["error"] = {"code": self.error_code, "message": self.error_message}
        return payload


@dataclass
class Batch:
    """The files to send, in order, and what was passed over while collecting them."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    _seen: set[Path] = field(default_factory=set)

    def add(self, path: Path) -> None:
        real = path.resolve()
        if real not in self._seen:
            self._seen.add(real)
            self.files.append(path)


def collect(paths: Sequence[Path]) -> Batch:
    """Files named directly, and every file under named folders (sorted, hidden ones left out)."""
    batch = Batch()
    for given in paths:
        if given.is_dir():
            root = given.resolve()
            _walk(given, root=root, batch=batch, visited={root})
        else:
            batch.add(given)
    return batch


# Files Windows and Office leave in a folder, never a township's material: thumbnail caches,
# folder settings, and the owner files Word, Excel and WPS keep beside an open document.
_SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})


def _left_by_the_system(name: str) -> bool:
    return name.startswith("~$") or name.lower() in _SYSTEM_FILES


def _walk(directory: Path, *, root: Path, batch: Batch, visited: set[Path]) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as exc:
        batch.skipped.append((directory, f"无法读取文件夹：{exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith(".") or _left_by_the_system(entry.name):
            continue
        path = Path(entry.path)
        if entry.is_symlink() and not path.resolve().is_relative_to(root):
            batch.skipped.append((path, "符号链接指向文件夹之外"))
            continue
        if entry.is_dir():
            real = path.resolve()
            if real not in visited:  # a link back up the tree must not loop
                visited.add(real)
                _walk(path, root=root, batch=batch, visited=visited)
        elif entry.is_file():
            batch.add(path)


class Progress:
    """One byte-counting bar for the whole batch; a resent file does not count twice.

    tqdm is loaded only when the bar is shown: a script's run (``--quiet``, or no terminal)
    starts without it.
    """

    def __init__(self, total: int, *, disable: bool) -> None:
        self._bar: Any = None
        if not disable:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self._done = 0
        self._file_start = 0
        self._file_size = 0

    @property
    def done(self) -> int:
        """Bytes of the batch accounted for so far."""
        return self._done

    def start_file(self, size: int) -> None:
        self._file_start = self._done
        self._file_size = size

    def at(self, offset: int) -> None:
        """The current file has been read up to ``offset``."""
        position = self._file_start + min(offset, self._file_size)
        if position > self._done:
            if self._bar is not None:
                self._bar.update(position - self._done)
            self._done = position

    def finish_file(self) -> None:
        self.at(self._file_size)

    def echo(self, line: str) -> None:
        """Print a line to stdout without tearing the bar on stderr."""
        with self._clear(sys.stdout):
            click.echo(line)

    def note(self, message: str) -> None:
        with self._clear(sys.stderr):
            click.echo(message, err=True)

    def _clear(self, stream: Any) -> AbstractContextManager[Any]:
        """The bar lifted off the terminal while a line is written, when there is a bar."""
        if self._bar is None:
            return nullcontext()
        return cast(AbstractContextManager[Any], self._bar.external_write_mode(file=stream))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _ReportingReader(io.BufferedReader):
    """A file read from disk as httpx streams it, telling the bar how far the read has got."""

    def __init__(self, path: Path, on_read: Callable[[int], None]) -> None:
        super().__init__(io.FileIO(path, "r"))
        self._on_read = on_read

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self._on_read(self.tell())
        return chunk


def error_of(response: httpx.Response) -> tuple[str, str]:
    """The error code and message of an API error response (API.md's JSON error shape)."""
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        text = " ".join(response.text.split())[:200]
        return f"http_{response.status_code}", text or response.reason_phrase


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (Retry-After as seconds or as an HTTP date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt + 1``: doubling, capped."""
    return float(min(BACKOFF_SECONDS * 2**attempt, MAX_BACKOFF_SECONDS))


def _tls_context(server: str) -> ssl.SSLContext:
    """The TLS settings of both clients: httpx's own (the CA bundle it trusts, SSL_CERT_FILE
    honoured) for an https server, loaded once rather than per client; for a plain-HTTP server,
    a context that trusts no certificate, so nothing is loaded (about 40 ms of a re-upload's run)
    and a request that somehow went to https would fail its check rather than skip it."""
    if server.startswith("https://"):
        return httpx.create_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class Session:
    """The HTTP conversation with one server: bounded retries, API errors mapped to outcomes."""

    def __init__(self, server: str, *, retries: int, note: Callable[[str], None]) -> None:
        self._server = server.rstrip("/")
        self._retries = retries
        self._note = note
        tls = _tls_context(self._server)
        self._http = httpx.Client(base_url=self._server, timeout=TIMEOUT, verify=tls)
        # Every upload on a new connection: when the server refuses a body early (413) and
        # closes, the reset loses its answer on a reused keep-alive connection, not on a new one.
        self._uploads = httpx.Client(
            base_url=self._server,
            timeout=TIMEOUT,
            verify=tls,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()
        self._uploads.close()

    def authorize(self, token: str) -> None:
        for client in (self._http, self._uploads):
            client.headers["Authorization"] = f"Bearer {token}"

    def _send(
        self, method: str, url: str, *, client: httpx.Client | None = None, **kwargs: Any
    ) -> httpx.Response:
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = (client or self._http).request(method, url, **kwargs)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if last:
                    raise ClientProblem(f"无法连接服务器 {self._server}（{reason}）") from exc
                delay = backoff(attempt)
                self._note(f"连接失败（{reason}），{delay:g} 秒后重试")
            else:
                if response.status_code not in TRANSIENT_STATUSES or last:
                    return response
                asked = retry_after(response)
                delay = backoff(attempt) if asked is None else asked
                self._note(f"服务器暂时不可用（{response.status_code}），{delay:g} 秒后重试")
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _problem(self, response: httpx.Response) -> ClientProblem:
        if response.status_code == 401:
            return ClientProblem(EXPIRED_MESSAGE)
        code, message = error_of(response)
        if response.status_code in TRANSIENT_STATUSES:
            return ClientProblem(f"服务器暂时不可用，请稍后再试：{code} {message}")
        return ClientProblem(f"服务器拒绝了请求（{response.status_code}）：{code} {message}")

    def login(self, username: str, password: str) -> str:
        """A bearer token for the user (OAuth2 password flow)."""
        response = self._send(
            "POST", f"{API}/auth/token", data={"username": username, "password": password}
        )
        if response.status_code == 401:
            raise ClientProblem("用户名或密码错误")
        if response.status_code != 200:
            raise self._problem(response)
        return str(response.json()["access_token"])

    def check_uploader(self) -> None:
        """Fail early, before hashing anything, when the token cannot upload."""
        response = self._send("GET", f"{API}/me")
        if response.status_code != 200:
            raise self._problem(response)
        me = response.json()
        if me.get("role") != "uploader":
            raise ClientProblem(
                f"用户 {me.get('username')} 的角色是 {me.get('role')}，"
                "只有乡镇上传员（uploader）可以上传材料"
            )

    def lookup(self, sha256: str) -> dict[str, Any] | None:
        """The township's document with these bytes, or None when the server has none."""
        response = self._send("GET", f"{API}/documents/lookup", params={"sha256": sha256})
        if response.status_code == 200:
            document: dict[str, Any] = response.json()
            return document
        if response.status_code == 404:
            return None
        raise self._problem(response)

    def upload(
        self, path: Path, *, sha256: str, size: int, fields: dict[str, str], progress: Progress
    ) -> FileResult:
        """Send the file (streamed from disk) with its metadata; a 4xx answer rejects it."""
        with _ReportingReader(path, progress.at) as reader:
            # Declared as generic bytes: the server detects the type from the content, and a local
            # guess (which differs between systems) could only contradict it.
            upload = (path.name, reader, "application/octet-stream")
            # The digest goes before the file: the server then streams the bytes on into its
            # store as they arrive, and refuses them if they arrive changed.
            response = self._send(
                "POST",
                f"{API}/documents",
                client=self._uploads,
                data={"sha256": sha256, **fields},
                files={"file": upload},
            )
        if response.status_code in (200, 201):
            document: dict[str, Any] = response.json()
            status = "duplicate" if document.get("duplicate") else "stored"
            return FileResult(status, path, sha256=sha256, size=size, document=document)
        if response.status_code in (401, 403, 404) or response.status_code in TRANSIENT_STATUSES:
            raise self._problem(response)
        code, message = error_of(response)
        return FileResult(
            "rejected", path, sha256=sha256, size=size, error_code=code, error_message=message
        )


def send_one(
    session: Session,
    path: Path,
    *,
    digest: Callable[[], tuple[str, int]],
    fields: dict[str, str],
    progress: Progress,
) -> FileResult:
    """Look the file up by its hash; send it only when the server does not hold it yet."""
    try:
        sha256, size = digest()
    except OSError as exc:
        return FileResult(
            "rejected", path, error_code="read_error", error_message=str(exc.strerror or exc)
        )
    existing = session.lookup(sha256)
    if existing is not None:
        return FileResult("duplicate", path, sha256=sha256, size=size, document=existing)
    return session.upload(path, sha256=sha256, size=size, fields=fields, progress=progress)


def metadata_fields(
    *,
    category: str | None,
    period: str | None,
    tags: str | None,
    visibility: str | None,
    departments: str | None,
    catalog_item: str | None = None,
) -> dict[str, str]:
    """The multipart fields shared by every file of the batch (only those given)."""
    given = {
        "category": category,
        "period": period,
        "tags": tags,
        "catalog_item": catalog_item,
        "visibility": visibility,
        "departments": departments,
    }
    return {name: value for name, value in given.items() if value is not None}


def _results(
    session: Session,
    files: list[Path],
    *,
    digests: Digests,
    fields: dict[str, str],
    title_from_filename: bool,
    progress: Progress,
) -> Iterator[FileResult]:
    for position, path in enumerate(files):
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        progress.start_file(size)
        # The server's own default title is the name without extension; sending it keeps it so.
        per_file = {**fields, "title": path.stem} if title_from_filename else fields
        yield send_one(
            session,
            path,
            digest=partial(digests.of, position),
            fields=per_file,
            progress=progress,
        )
        progress.finish_file()


@click.command("upload")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--server", envvar="MATERIALS_SERVER", required=True, help="e.g. http://10.0.0.5:8000"
)
@click.option("--token", envvar="MATERIALS_TOKEN", default=None, help="Bearer token.")
@click.option("--username", default=None, help="Sign in instead of giving --token.")
@click.option("--password", default=None, help="Prompted (hidden) when --username has none.")
@click.option("--category", default=None, help="Category for every file (default 其他).")
@click.option("--period", default=None, help="2020, 2020-Q3, 2020-09 or 2020-09-15.")
@click.option("--tags", default=None, help="Comma separated.")
@click.option(
    "--catalog-item",
    default=None,
    help="The catalog item (材料目录) the files are filed for, by its number; with --period.",
)
@click.option(
    "--visibility", type=click.Choice(["departments", "restricted", "private"]), default=None
)
@click.option("--departments", default=None, help="With --visibility restricted: comma separated.")
@click.option(
    "--title-from-filename/--no-title-from-filename",
    default=True,
    show_default=True,
    help="Send the file name without extension as the title (else the server decides).",
)
@click.option("--retries", default=5, show_default=True, type=click.IntRange(0, 20))
@click.option(
    "--cache-dir",
    envvar="MATERIALS_CACHE_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the digests of files already hashed are kept (default: the user's cache folder).",
)
@click.option(
    "--rehash", is_flag=True, help="Read and hash every file again, trusting no kept digest."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no notes on stderr.")
def upload_command(
    paths: tuple[Path, ...],
    server: str,
    token: str | None,
    username: str | None,
    password: str | None,
    category: str | None,
    period: str | None,
    tags: str | None,
    catalog_item: str | None,
    visibility: str | None,
    departments: str | None,
    title_from_filename: bool,
    retries: int,
    cache_dir: Path | None,
    rehash: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Upload files and folders; bytes the server already holds are not sent again.

    Each file's sha256 is looked up first. Digests are kept in the user's cache folder, so a
    file unchanged since an earlier run is not even read again (``--rehash`` reads it).

    Prints one line per file: ``stored ID PATH``, ``duplicate ID PATH`` or ``rejected PATH: CODE
    MESSAGE``. Exit status 0 when all were stored or duplicate, 1 when any was rejected, 2 when
    the command line, the credentials or the connection failed.
    """
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter("须以 http:// 或 https:// 开头", param_hint="--server")
    if password is not None and username is None:
        raise click.UsageError("--password 需要与 --username 一起使用")
    if username is None and not token:
        raise click.UsageError("需要 --token（或环境变量 MATERIALS_TOKEN），或 --username")
    if departments is not None and visibility != "restricted":
        raise click.UsageError("--departments 只能与 --visibility restricted 一起使用")
    if visibility == "restricted" and not departments:
        raise click.UsageError("--visibility restricted 需要 --departments")
    if username is not None and password is None:
        # On stderr: stdout carries only the per-file results.
        password = click.prompt("密码 / password", hide_input=True, err=True)
    fields = metadata_fields(
        category=category,
        period=period,
        tags=tags,
        visibility=visibility,
        departments=departments,
        catalog_item=catalog_item,
    )
    batch = collect(paths)
    total = sum(path.stat().st_size for path in batch.files if path.exists())
    progress = Progress(total, disable=quiet or not sys.stderr.isatty())
    note = (lambda _message: None) if quiet else progress.note
    rejected = False
    cache = None if rehash else DigestCache(cache_dir or default_cache_dir())
    try:
        with (
            Digests(batch.files, cache=cache) as digests,
            Session(server, retries=retries, note=note) as session,
        ):
            if username is not None:
                assert password is not None
                token = session.login(username, password)
            assert token is not None
            session.authorize(token)
            session.check_uploader()
            for path, reason in batch.skipped:
                note(f"跳过 {path}：{reason}")
            for result in _results(
                session,
                batch.files,
                digests=digests,
                fields=fields,
                title_from_filename=title_from_filename,
                progress=progress,
            ):
                rejected = rejected or result.status == "rejected"
                line = (
                    json.dumps(result.as_json(), ensure_ascii=False) if as_json else result.line()
                )
                progress.echo(line)
    finally:
        progress.close()
    if rejected:
        sys.exit(1)
