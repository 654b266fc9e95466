"""Streaming multipart reader: decoded fields, hashing, every error code, cleanup, and an early 413.

Driven through a one-route Starlette app: TestClient for behaviour, real uvicorn for the early stop.
"""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from api.uploads import SpooledUpload, read_upload
from services.errors import MaterialsError
from tests.live_server import CountingBody, send_streaming, serving
from tests.multipart import Multipart

BODIES = Multipart(b"----materials-test-7d93a1")
MULTIPART = BODIES.content_type
part, text_field, file_part, form = BODIES.part, BODIES.text_field, BODIES.file_part, BODIES.form
DEFAULT_MAX_BYTES = 6 * 1024 * 1024
MAX_FIELD_BYTES = 1024
MiB = 1024 * 1024


# --- the app under test ------------------------------------------------------------------------


@dataclass
class Harness:
    client: TestClient
    spool_dir: Path
    uploads: list[SpooledUpload] = field(default_factory=list)

    def post(self, body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, **kwargs: Any) -> Any:
        headers = {"Content-Type": MULTIPART, **kwargs.pop("headers", {})}
        return self.client.post(
            f"/upload?max_bytes={max_bytes}", content=body, headers=headers, **kwargs
        )

    def spooled(self) -> list[Path]:
        return spooled_files(self.spool_dir)


def spooled_files(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.iterdir()) if spool_dir.exists() else []


def make_app(spool_dir: Path, uploads: list[SpooledUpload]) -> Starlette:
    async def upload(request: Request) -> JSONResponse:
        spooled = await read_upload(
            request,
            max_bytes=int(request.query_params.get("max_bytes", DEFAULT_MAX_BYTES)),
            spool_dir=spool_dir,
            max_field_bytes=MAX_FIELD_BYTES,
        )
        uploads.append(spooled)
        return JSONResponse(
            {
                "filename": spooled.filename,
                "declared_type": spooled.declared_type,
                "fields": spooled.fields,
                "size": spooled.size,
                "sha256": spooled.sha256,
            }
        )

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MaterialsError)
        error = {"code": exc.error_code, "message": exc.message, "details": exc.details}
        return JSONResponse({"error": error}, status_code=exc.status)

    return Starlette(
        routes=[Route("/upload", upload, methods=["POST"])],
        exception_handlers={MaterialsError: on_error},
    )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    spool_dir = tmp_path / "spool"
    uploads: list[SpooledUpload] = []
    with TestClient(make_app(spool_dir, uploads)) as client:
        yield Harness(client, spool_dir, uploads)
    for spooled in uploads:
        spooled.cleanup()


def drive(
    spool_dir: Path,
    headers: list[tuple[bytes, bytes]],
    messages: list[Message],
    *,
    max_bytes: int = MiB,
) -> tuple[SpooledUpload | BaseException, int]:
    """Call read_upload with a hand-fed receive(); return its outcome and the messages it took."""
    taken = 0

    async def receive() -> Message:
        nonlocal taken
        taken += 1
        return messages[taken - 1]

    async def main() -> SpooledUpload | BaseException:
        scope = {"type": "http", "method": "POST", "path": "/upload", "headers": headers}
        request = Request(scope, receive)
        try:
            return await read_upload(request, max_bytes=max_bytes, spool_dir=spool_dir)
        except (MaterialsError, ClientDisconnect) as exc:
            return exc

    return anyio.run(main), taken


def body_message(chunk: bytes, *, more: bool = True) -> Message:
    return {"type": "http.request", "body": chunk, "more_body": more}


# --- what is read ------------------------------------------------------------------------------


def test_fields_and_raw_utf8_filename_are_decoded(harness: Harness) -> None:
    body = form(
        text_field("title", "二〇二四年扶贫报告"),
        file_part(
            b"%PDF-1.7",
            filename='filename="报告 2024.pdf"'.encode(),
            content_type=b"application/pdf",
        ),
        text_field("category", "其他"),
        text_field("description", ""),
    )

    response = harness.post(body)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "filename": "报告 2024.pdf",
        "declared_type": "application/pdf",
        "fields": {"title": "二〇二四年扶贫报告", "category": "其他", "description": ""},
        "size": 8,
        "sha256": hashlib.sha256(b"%PDF-1.7").hexdigest(),
    }


def test_rfc5987_filename_is_decoded_and_preferred(harness: Harness) -> None:
    filename = b"filename=\"fallback.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf"

    response = harness.post(form(file_part(filename=filename)))

    assert response.status_code == 200, response.text
    assert response.json()["filename"] == "报告.pdf"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (b'filename="../../etc/passwd"', "../../etc/passwd"),
        (b'filename="C:\\Users\\\xe5\xbc\xa0\\a.doc"', "C:\\Users\\张\\a.doc"),
        (b"filename*=UTF-8''a%00b%2F..%2Fc", "a\x00b/../c"),
        (b'filename="say \\"hi\\".txt"', 'say "hi".txt'),
        (b"filename*=\"utf-8'zh-CN'%E6%8A%A5.txt\"", "报.txt"),
        (b'filename=""', ""),
        (b"", ""),
    ],
    ids=[
        "dot-dot",
        "windows-path",
        "nul-and-slash",
        "escaped-quotes",
        "quoted-star",
        "empty",
        "absent",
    ],
)
def test_filename_is_passed_through_unsanitised(
    harness: Harness, filename: bytes, expected: str
) -> None:
    response = harness.post(form(file_part(filename=filename)))

    assert response.status_code == 200, response.text
    assert response.json()["filename"] == expected


def test_declared_type_is_none_without_a_part_content_type(harness: Harness) -> None:
    response = harness.post(form(file_part(content_type=None)))

    assert response.status_code == 200, response.text
    assert response.json()["declared_type"] is None


def test_large_file_is_spooled_with_correct_size_and_sha256(harness: Harness) -> None:
    content = os.urandom(5 * 1000 * 1000 + 17)

    response = harness.post(form(text_field("title", "大文件"), file_part(content)))

    assert response.status_code == 200, response.text
    assert response.json()["size"] == len(content)
    assert response.json()["sha256"] == hashlib.sha256(content).hexdigest()
    (spooled,) = harness.uploads
    assert spooled.path.parent == harness.spool_dir
    assert spooled.path.read_bytes() == content
    assert harness.spooled() == [spooled.path]


def test_memory_stays_flat_while_a_large_file_streams(tmp_path: Path) -> None:
    headers = [(b"content-type", MULTIPART.encode())]
    chunk = os.urandom(64 * 1024)
    messages = [
        body_message(BODIES.unfinished_file_part()),
        *[body_message(chunk)] * 512,  # 32 MiB, the same 64 KiB object over and over
        body_message(b"\r\n--" + BODIES.boundary + b"--\r\n", more=False),
    ]

    tracemalloc.start()
    try:
        outcome, _ = drive(tmp_path / "spool", headers, messages, max_bytes=64 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert isinstance(outcome, SpooledUpload)
    assert outcome.size == 32 * MiB
    assert outcome.sha256 == hashlib.sha256(chunk * 512).hexdigest()
    assert peak < 2 * MiB
    outcome.cleanup()


def test_cleanup_removes_the_file_and_may_be_repeated(harness: Harness) -> None:
    harness.post(form(file_part()))
    (spooled,) = harness.uploads

    spooled.cleanup()
    spooled.cleanup()

    assert harness.spooled() == []


# --- what is refused ---------------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(
        {"Content-Type": "application/json"}, b"{}", 400, "not_multipart", id="not-multipart"
    ),
    pytest.param(
        {"Content-Type": "multipart/form-data"},
        form(file_part()),
        400,
        "not_multipart",
        id="no-boundary",
    ),
    pytest.param(
        {"Content-Type": "multipart/form-data; boundary=" + "b" * 300},
        b"",
        400,
        "not_multipart",
        id="boundary-too-long",
    ),
    pytest.param({}, form(file_part(), file_part()), 400, "multiple_files", id="two-files"),
    pytest.param(
        {},
        form(file_part(), *(text_field(f"f{i}", "v") for i in range(65))),
        400,
        "too_many_fields",
        id="too-many-fields",
    ),
    pytest.param({}, form(text_field("title", "x")), 422, "missing_file", id="no-file"),
    pytest.param({}, form(), 422, "missing_file", id="empty-form"),
    pytest.param(
        {},
        form(file_part(), file_part(name=b"attachment")),
        400,
        "unexpected_file",
        id="second-file-other-name",
    ),
    pytest.param(
        {},
        form(file_part(), text_field("title", "长" * 400)),
        422,
        "field_too_long",
        id="field-too-long",
    ),
    pytest.param(
        {},
        form(file_part(), text_field("title", b"\xe6\x8a")),
        400,
        "invalid_encoding",
        id="field-not-utf8",
    ),
    pytest.param(
        {},
        form(file_part(filename=b'filename="\xff.pdf"')),
        400,
        "invalid_encoding",
        id="filename-not-utf8",
    ),
    pytest.param(
        {},
        form(file_part(filename=b"filename*=UTF-8''%FF.pdf")),
        400,
        "invalid_encoding",
        id="filename-star-not-utf8",
    ),
    pytest.param(
        {},
        form(text_field("title", "a"), file_part(), text_field("title", "b")),
        400,
        "duplicate_field",
        id="duplicate-field",
    ),
    pytest.param({}, b"not a multipart body at all", 400, "malformed_multipart", id="garbage"),
    pytest.param(
        {},
        form(file_part(b"x" * 100_000), closed=False),
        400,
        "malformed_multipart",
        id="no-closing-boundary",
    ),
    pytest.param(
        {},
        form(file_part(), part(b'filename="x"', b"v")),
        400,
        "malformed_multipart",
        id="part-without-name",
    ),
    pytest.param(
        {},
        form(file_part(), b"--" + BODIES.boundary + b"\r\nContent-Type: text/plain\r\n\r\nv\r\n"),
        400,
        "malformed_multipart",
        id="part-without-disposition",
    ),
]


@pytest.mark.parametrize(("headers", "body", "status", "code"), ERROR_CASES)
def test_refused_bodies_leave_nothing_in_the_spool(
    harness: Harness, headers: dict[str, str], body: bytes, status: int, code: str
) -> None:
    response = harness.post(body, headers=headers)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert harness.uploads == []
    assert harness.spooled() == []


def test_error_messages_are_chinese_and_name_the_field(harness: Harness) -> None:
    response = harness.post(form(file_part(), text_field("备注", b"\xff")))

    error = response.json()["error"]
    assert error["details"] == {"field": "备注"}
    assert "备注" in error["message"]
    assert "UTF-8" in error["message"]


def test_declared_length_over_the_limit_is_refused(harness: Harness) -> None:
    response = harness.post(form(file_part(b"x" * 2000)), max_bytes=1000)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert harness.spooled() == []


def test_undeclared_length_over_the_limit_is_refused(harness: Harness) -> None:
    body = form(file_part(b"x" * 2000))

    response = harness.post(iter([body[:100], body[100:]]), max_bytes=1000)

    assert response.status_code == 413
    assert harness.spooled() == []


def test_declared_length_is_refused_before_reading_even_when_malformed(tmp_path: Path) -> None:
    headers = [(b"content-type", MULTIPART.encode()), (b"content-length", b"%d" % (MiB + 1))]

    outcome, taken = drive(tmp_path / "spool", headers, [body_message(b"garbage", more=False)])

    assert isinstance(outcome, MaterialsError)
    assert outcome.status == 413
    assert taken == 0


def test_undeclared_length_too_large_and_malformed_answers_413(tmp_path: Path) -> None:
    headers = [(b"content-type", MULTIPART.encode())]
    messages = [body_message(b"garbage"), *[body_message(b"x" * 65536)] * 17]

    outcome, taken = drive(tmp_path / "spool", headers, messages)

    assert isinstance(outcome, MaterialsError)
    assert outcome.status == 413
    assert taken == 17  # read on past the garbage, but only until the count passed 1 MiB


def test_stops_reading_at_the_limit(tmp_path: Path) -> None:
    headers = [(b"content-type", MULTIPART.encode())]
    opening = BODIES.unfinished_file_part()
    messages = [body_message(opening), *[body_message(b"x" * 65536)] * 100]

    outcome, taken = drive(tmp_path / "spool", headers, messages)

    assert isinstance(outcome, MaterialsError)
    assert outcome.status == 413
    assert taken == 17  # the opening and 16 × 64 KiB pass 1 MiB; the other 84 are never read
    assert spooled_files(tmp_path / "spool") == []


def test_client_disconnect_removes_the_spooled_file(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    headers = [(b"content-type", MULTIPART.encode())]
    opening = BODIES.unfinished_file_part()
    messages: list[Message] = [
        body_message(opening),
        body_message(b"x" * 1000),
        {"type": "http.disconnect"},
    ]

    outcome, taken = drive(spool_dir, headers, messages)

    assert isinstance(outcome, ClientDisconnect)
    assert taken == 3
    assert spool_dir.is_dir()  # the file had been started
    assert spooled_files(spool_dir) == []


# --- over a real socket: the 413 arrives long before the body would have ---------------------


def test_server_answers_413_without_reading_the_whole_body(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    total, chunk = 64 * MiB, 64 * 1024
    # The file part never ends: 64 MiB of "x" follow its head.
    body = CountingBody(BODIES.unfinished_file_part(), chunks=total // chunk, chunk_size=chunk)
    head = (
        f"POST /upload?max_bytes={MiB} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {MULTIPART}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with serving(make_app(spool_dir, [])) as port:
        response = send_streaming(port, head, body, seconds=5)

    status_line, _, rest = response.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["code"] == "payload_too_large"
    # 1 MiB read by the app, plus what the pinned socket buffers and uvicorn hold in flight.
    sent = (body.pulled - 1) * chunk  # the "x" chunks taken for sending, the last maybe in part
    assert sent <= 4 * MiB, f"sent {sent} of {total} bytes before the answer"
    assert spooled_files(spool_dir) == []
