"""``materials upload`` against a real uvicorn: folders, duplicates never resent, rejections, auth.

The command runs in-process (click's CliRunner) and talks HTTP to the app on a loopback port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from starlette.types import ASGIApp, Receive, Scope, Send

from api import upload_digests
from api.app import create_app
from api.upload_client import Progress, _tls_context, upload_command
from api.upload_digests import QUIET_SECONDS
from services.audit import AuditFilter
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import CatalogItem
from tests import live_server
from tests.conftest import PASSWORD, make_settings, seed_county
from tests.samples import pdf_bytes, png_bytes

COMMAND_SECONDS = 60
UPLOAD_PATH = "/api/v1/documents"
# Nothing from the developer's own shell may reach the command.
CLEAN_ENV: dict[str, str | None] = {"MATERIALS_SERVER": None, "MATERIALS_TOKEN": None}


@dataclass
class Door:
    """The app behind a door that records every request and can answer 503 to the first uploads."""

    app: ASGIApp
    busy_uploads: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests.append((scope["method"], scope["path"]))
        if self.busy_uploads and (scope["method"], scope["path"]) == ("POST", UPLOAD_PATH):
            self.busy_uploads -= 1
            while (await receive()).get("more_body", False):
                pass  # take the whole body, as a busy proxy in front of the server would
            body = json.dumps({"error": {"code": "backend_unavailable", "message": "忙"}}).encode()
            headers = [(b"content-type", b"application/json"), (b"retry-after", b"0")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def uploads(self) -> int:
        return self.requests.count(("POST", UPLOAD_PATH))


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Run the app under a real uvicorn on a loopback port; yield its base URL."""
    with live_server.serving(app, buffer=None) as port:
        yield f"http://127.0.0.1:{port}"


def token_for(base_url: str, username: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token",
        data={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@dataclass
class Server:
    base_url: str
    door: Door
    backends: Backends

    def token(self, username: str) -> str:
        return token_for(self.base_url, username)

    def document(self, document_id: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.base_url}/api/v1/documents/{document_id}",
            headers={"Authorization": f"Bearer {self.token('east')}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def audit_count(self, action: str) -> int:
        return self.backends.audit.page(AuditFilter(action=action), page=1, size=1).total


@pytest.fixture(autouse=True)
def digest_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test keeps its digests apart (never in the user's own cache folder)."""
    folder = tmp_path / "digest-cache"
    monkeypatch.setenv("MATERIALS_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def server(settings: Settings, backends: Backends, county: dict[str, int]) -> Iterator[Server]:
    door = Door(create_app(settings, backends=backends))
    with serving(door) as base_url:
        yield Server(base_url, door, backends)


def upload(*args: str | Path, env: Mapping[str, str | None] | None = None, **kwargs: Any) -> Result:
    """Run ``materials upload`` with a deadline; the test fails rather than hangs."""
    outcome: list[Result] = []
    runner = CliRunner()

    def invoke() -> None:
        outcome.append(
            runner.invoke(
                upload_command,
                [str(arg) for arg in args],
                env={**CLEAN_ENV, **(env or {})},
                **kwargs,
            )
        )

    worker = threading.Thread(target=invoke, daemon=True)
    worker.start()
    worker.join(COMMAND_SECONDS)
    if not outcome:
        pytest.fail(f"materials upload did not finish within {COMMAND_SECONDS} s")
    return outcome[0]


def as_east(server: Server, *args: str | Path) -> Result:
    return upload(*args, "--server", server.base_url, "--token", server.token("east"))


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def text_file(path: Path, text: str) -> Path:
    return write(path, f"{text}\n本季度走访贫困户126户。\n".encode())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A township's folder: nested files, hidden and system ones, and a link that leaves it."""
    root = tmp_path / "东镇材料"
    text_file(root / "2026年第三季度工作总结.txt", "第三季度工作总结")
    write(root / "图表" / "走访统计.png", png_bytes())
    write(root / "图表" / "深层" / "报告.pdf", pdf_bytes("Township report"))
    text_file(root / ".隐藏笔记.txt", "不应上传")
    text_file(root / ".git" / "config.txt", "不应上传")
    # What Windows and Office leave beside a township's files.
    write(root / "~$季度工作总结.docx", b"\x05owner" + b"\x00" * 155)
    write(root / "图表" / "Thumbs.db", b"\xd0\xcf\x11\xe0" + b"\x00" * 60)
    text_file(root / "desktop.ini", "[.ShellClassInfo]")
    outside = text_file(tmp_path / "别处" / "外部文件.txt", "不应上传")
    (root / "外部链接.txt").symlink_to(outside)
    return root


def expected_files(root: Path) -> list[Path]:
    return [
        root / "2026年第三季度工作总结.txt",
        root / "图表" / "深层" / "报告.pdf",
        root / "图表" / "走访统计.png",
    ]


def parse_lines(result: Result) -> list[tuple[str, str, str]]:
    """Each ``status id path`` line as a tuple."""
    rows = []
    for line in result.stdout.splitlines():
        status, document_id, path = line.split(" ", 2)
        rows.append((status, document_id, path))
    return rows


def test_a_folder_uploads_every_file_in_it(server: Server, folder: Path) -> None:
    result = as_east(server, folder, "--category", "工作总结", "--period", "2026-Q3")

    assert result.exit_code == 0, result.output
    rows = parse_lines(result)
    assert [status for status, _, _ in rows] == ["stored"] * 3
    assert [path for _, _, path in rows] == [str(path) for path in expected_files(folder)]
    assert "外部链接.txt" in result.stderr  # skipped, and said so
    assert server.door.uploads() == 3
    for _, document_id, path in rows:
        document = server.document(document_id)
        local = Path(path).read_bytes()
        assert document["sha256"] == hashlib.sha256(local).hexdigest()
        assert document["size"] == len(local)
        assert document["title"] == Path(path).stem
        assert (document["category"], document["period"]) == ("工作总结", "2026-Q3")


def test_running_again_sends_no_bytes_and_reports_duplicates(server: Server, folder: Path) -> None:
    first = as_east(server, folder)
    assert first.exit_code == 0, first.output
    uploads, lookups = server.audit_count("upload"), server.audit_count("lookup")
    posts = server.door.uploads()

    again = as_east(server, folder)

    assert again.exit_code == 0, again.output
    assert [(status, document_id) for status, document_id, _ in parse_lines(again)] == [
        ("duplicate", document_id) for _, document_id, _ in parse_lines(first)
    ]
    assert server.door.uploads() == posts
    assert server.audit_count("upload") == uploads
    assert server.audit_count("lookup") == lookups + 3


def test_identical_files_in_one_batch_are_sent_once(server: Server, tmp_path: Path) -> None:
    one = text_file(tmp_path / "甲.txt", "同一份材料")
    two = write(tmp_path / "乙.txt", one.read_bytes())

    result = as_east(server, one, two)

    assert result.exit_code == 0, result.output
    (first, first_id, _), (second, second_id, _) = parse_lines(result)
    assert (first, second) == ("stored", "duplicate")
    assert first_id == second_id
    assert server.door.uploads() == 1


def test_a_rejected_file_is_reported_and_the_others_still_stored(
    server: Server, tmp_path: Path
) -> None:
    good = text_file(tmp_path / "材料" / "a总结.txt", "总结")
    program = write(tmp_path / "材料" / "b程序.exe", b"MZ\x90\x00" + b"\x00" * 200)
    empty = write(tmp_path / "材料" / "c空白.txt", b"")
    later = write(tmp_path / "材料" / "d报告.pdf", pdf_bytes())

    result = upload(tmp_path / "材料", "--server", server.base_url, "--token", server.token("east"))

    assert result.exit_code == 1, result.output
    first, exe, blank, last = result.stdout.splitlines()
    assert first.split(" ")[::2] == ["stored", str(good)]
    assert exe.startswith(f"rejected {program}: unsupported_type ")
    assert blank.startswith(f"rejected {empty}: empty_file 文件为空")
    assert last.split(" ")[::2] == ["stored", str(later)]


def test_json_prints_one_object_per_file(server: Server, tmp_path: Path) -> None:
    good = text_file(tmp_path / "总结.txt", "总结")
    program = write(tmp_path / "程序.exe", b"MZ\x90\x00" + b"\x00" * 200)

    result = as_east(server, good, program, "--json")

    assert result.exit_code == 1, result.output
    stored, rejected = (json.loads(line) for line in result.stdout.splitlines())
    assert stored["status"] == "stored"
    assert stored["path"] == str(good)
    assert stored["id"] == stored["document"]["id"]
    assert stored["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    assert rejected["status"] == "rejected"
    assert rejected["error"]["code"] == "unsupported_type"
    assert rejected["id"] is None


def test_a_bad_token_stops_with_a_clear_message(server: Server, folder: Path) -> None:
    result = upload(folder, "--server", server.base_url, "--token", "not-a-token")

    assert result.exit_code == 2, result.output
    assert "令牌无效或已过期" in result.stderr
    assert result.stdout == ""
    assert server.door.uploads() == 0


def test_server_and_token_come_from_the_environment(server: Server, folder: Path) -> None:
    env = {"MATERIALS_SERVER": server.base_url, "MATERIALS_TOKEN": server.token("east")}

    result = upload(folder, "--quiet", env=env)

    assert result.exit_code == 0, result.output
    assert len(parse_lines(result)) == 3
    assert result.stderr == ""


def test_username_signs_in_and_prompts_for_the_password(server: Server, tmp_path: Path) -> None:
    material = text_file(tmp_path / "总结.txt", "总结")

    result = upload(
        material, "--server", server.base_url, "--username", "east", input=f"{PASSWORD}\n"
    )

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "password" in result.stderr
    assert parse_lines(result)[0][0] == "stored"


def test_a_wrong_password_stops_before_anything_is_sent(server: Server, tmp_path: Path) -> None:
    material = text_file(tmp_path / "总结.txt", "总结")

    result = upload(
        material, "--server", server.base_url, "--username", "east", "--password", "wrong-pw"
    )

    assert result.exit_code == 2, result.output
    assert "用户名或密码错误" in result.stderr
    assert server.door.uploads() == 0


def test_a_reader_cannot_upload(server: Server, tmp_path: Path) -> None:
    material = text_file(tmp_path / "总结.txt", "总结")

    result = upload(material, "--server", server.base_url, "--token", server.token("poverty"))

    assert result.exit_code == 2, result.output
    assert "uploader" in result.stderr
    assert server.door.uploads() == 0


def test_a_busy_server_is_retried_and_the_file_sent_whole(server: Server, tmp_path: Path) -> None:
    material = write(tmp_path / "报告.pdf", pdf_bytes("sent twice, stored once"))
    server.door.busy_uploads = 2

    result = as_east(server, material)

    assert result.exit_code == 0, result.output
    assert server.door.uploads() == 3
    _, document_id, _ = parse_lines(result)[0]
    # The stored hash and size prove the retry sent every byte again, from the start.
    document = server.document(document_id)
    assert document["sha256"] == hashlib.sha256(material.read_bytes()).hexdigest()
    assert document["size"] == material.stat().st_size


def test_retries_are_bounded(server: Server, tmp_path: Path) -> None:
    material = text_file(tmp_path / "总结.txt", "总结")
    server.door.busy_uploads = 10

    result = as_east(server, material, "--retries", "2")

    assert result.exit_code == 2, result.output
    assert "503" in result.stderr or "暂时不可用" in result.stderr
    assert server.door.uploads() == 3


def test_no_server_listening_is_a_connection_problem(tmp_path: Path) -> None:
    material = text_file(tmp_path / "总结.txt", "总结")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    result = upload(material, "--server", url, "--token", "t", "--retries", "0")

    assert result.exit_code == 2, result.output
    assert "无法连接服务器" in result.stderr


def test_a_file_over_the_size_limit_is_rejected(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", max_upload_bytes=64 * 1024)
    small = text_file(tmp_path / "a小.txt", "小文件")
    large = write(tmp_path / "b大.txt", "材料".encode() * 200_000)
    backends = open_backends(settings)
    try:
        seed_county(backends)
        with serving(create_app(settings, backends=backends)) as base_url:
            token = token_for(base_url, "east")
            result = upload(small, large, "--server", base_url, "--token", token, "--retries", "0")
    finally:
        backends.close()

    assert result.exit_code == 1, result.output
    stored, rejected = result.stdout.splitlines()
    assert stored.startswith("stored ")
    assert rejected.startswith(f"rejected {large}: payload_too_large ")


@pytest.mark.parametrize(
    "extra",
    [
        ["--visibility", "restricted"],
        ["--departments", "扶贫办"],
        ["--server", "10.0.0.5:8000"],
    ],
)
def test_usage_problems_exit_2(tmp_path: Path, extra: list[str]) -> None:
    material = text_file(tmp_path / "总结.txt", "总结")

    result = upload(material, "--server", "http://127.0.0.1:9", "--token", "t", *extra)

    assert result.exit_code == 2, result.output


def test_no_credentials_is_a_usage_problem(tmp_path: Path) -> None:
    material = text_file(tmp_path / "总结.txt", "总结")

    result = upload(material, "--server", "http://127.0.0.1:9")

    assert result.exit_code == 2
    assert "--token" in result.stderr


def test_the_progress_bar_counts_a_resent_file_once() -> None:
    progress = Progress(100, disable=True)
    progress.start_file(60)
    progress.at(45)
    progress.at(10)  # a retry reads the file again from the start
    progress.at(60)
    progress.finish_file()
    assert progress.done == 60
    progress.start_file(40)  # a duplicate: nothing read, the whole file accounted for
    progress.finish_file()
    assert progress.done == 100
    progress.close()


def test_a_second_run_reads_no_file_it_already_hashed(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    material = text_file(tmp_path / "总结.txt", "全年扶贫工作总结")
    time.sleep(QUIET_SECONDS + 0.2)  # saved a while before it is sent, as files usually are
    read: list[Path] = []
    real = upload_digests.sha256_of

    def counting(path: Path, **kwargs: Any) -> tuple[str, int]:
        read.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(upload_digests, "sha256_of", counting)

    first, again = as_east(server, material), as_east(server, material)
    rehashed = as_east(server, material, "--rehash")

    assert [parse_lines(run)[0][0] for run in (first, again, rehashed)] == [
        "stored",
        "duplicate",
        "duplicate",
    ]
    assert len(read) == 2  # the first run and --rehash; the second run only asked the server
    assert server.door.uploads() == 1


def test_a_plain_http_server_gets_a_tls_context_that_trusts_nothing() -> None:
    plain = _tls_context("http://10.0.0.5:8000")
    secure = _tls_context("https://materials.example.gov.cn")

    # Never a skipped check: a request that went to https from a plain-HTTP server would fail.
    assert (plain.verify_mode, plain.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert plain.cert_store_stats()["x509_ca"] == 0
    assert (secure.verify_mode, secure.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert secure.cert_store_stats()["x509_ca"] > 0


def test_files_go_to_a_catalog_item_slot(server: Server, tmp_path: Path) -> None:
    with server.backends.db.session() as session:
        item = CatalogItem(
            name="季度工作总结", category="工作总结", cycle="quarterly", due_days=30,
            all_townships=True, owed_from=date(2020, 1, 1), sharing="unconditional",
        )  # fmt: skip
        session.add(item)
        session.flush()
        item_id = item.id
    material = text_file(tmp_path / "东镇第三季度总结.txt", "第三季度工作总结")

    result = as_east(server, material, "--catalog-item", str(item_id), "--period", "2026-Q3")
    wrong = as_east(
        server, text_file(tmp_path / "另一份.txt", "另一份"), "--catalog-item", str(item_id),
        "--period", "2026-09",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    ((_, document_id, _),) = parse_lines(result)
    document = server.document(document_id)
    assert (document["catalog_item"], document["category"], document["period"]) == (
        item_id,
        "工作总结",
        "2026-Q3",
    )
    assert wrong.exit_code == 1
    assert " period_not_in_cycle " in wrong.stdout
