"""Bad input at the HTTP edge: every refusal is a JSON error with the right status and code.

Each refused request also leaves nothing behind: no document row, no blob, no spooled file.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select as sql_select
from sqlalchemy import text

from api.app import create_app
from services.backends import Backends, open_backends
from services.config import Settings
from services.models import AuditEvent, User, utcnow
from tests.conftest import PASSWORD, Api
from tests.live_server import CountingBody, send_streaming, serving
from tests.multipart import Multipart
from tests.samples import pdf_bytes, png_bytes, text_bytes

DOCUMENTS = "/api/v1/documents"
BODIES = Multipart(b"bad-input-boundary-5f2c")
MULTIPART = BODIES.content_type
part, text_field, file_part, form = BODIES.part, BODIES.text_field, BODIES.file_part, BODIES.form
BIG_FILE = b'filename="big.txt"'
BIG_FILE_HEAD = BODIES.unfinished_file_part(filename=BIG_FILE)  # what follows is file content
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"\x3e\x00"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
SMALL_LIMIT = 64 * 1024
KiB = 1024


# --- what every case checks ------------------------------------------------------------------


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the JSON error shape of API.md with this status and machine code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "details"}
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def assert_nothing_stored(backends: Backends, settings: Settings) -> None:
    """No document row, no blob (in the store, nor a temporary file) and no spooled upload."""
    with backends.db.session() as session:
        assert session.scalar(text("SELECT count(*) FROM documents")) == 0
    assert list(backends.blobs.list()) == []
    blobs = [p for p in settings.blob_dir.rglob("*") if p.is_file()]
    assert blobs == []
    spooled = list(settings.spool_dir.iterdir()) if settings.spool_dir.exists() else []
    assert spooled == []


# --- posting hand-built multipart bodies -----------------------------------------------------


def post_raw(
    api: Api, body: bytes | Iterator[bytes], *, content_type: str = MULTIPART, user: str = "east"
) -> Any:
    headers = {**api.headers(user), "Content-Type": content_type}
    return api.client.post(DOCUMENTS, content=body, headers=headers)


# --- the file itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "declared", "status", "code"),
    [
        pytest.param("空.txt", b"", "text/plain", 422, "empty_file", id="empty-file"),
        pytest.param("扫描件.pdf", png_bytes(), "application/pdf", 415, "type_mismatch",
                     id="png-named-pdf"),
        pytest.param("报告.pdf.exe", pdf_bytes(), "application/octet-stream", 415,
                     "type_mismatch", id="pdf-with-exe-extension"),
        pytest.param("报告.pdf", pdf_bytes(), "image/png", 415, "type_mismatch",
                     id="declared-png-for-pdf"),
        pytest.param("纪要.txt", text_bytes(), "application/pdf", 415, "type_mismatch",
                     id="declared-pdf-for-text"),
        pytest.param("程序", ELF, "application/octet-stream", 415, "unsupported_type",
                     id="elf-no-extension"),
        pytest.param("报告.pdf", ELF, "application/pdf", 415, "unsupported_type",
                     id="elf-named-pdf"),
        pytest.param("setup.exe", EXE, "application/x-msdownload", 415, "unsupported_type",
                     id="windows-exe"),
    ],
)  # fmt: skip
def test_upload_with_a_bad_file_is_refused(
    api: Api,
    backends: Backends,
    settings: Settings,
    filename: str,
    content: bytes,
    declared: str,
    status: int,
    code: str,
) -> None:
    response = api.upload("east", filename, content, declared)

    assert_error(response, status, code)
    assert_nothing_stored(backends, settings)


@pytest.mark.parametrize(
    ("filename", "code"),
    [
        pytest.param(b"filename*=UTF-8''a%00b.txt", "invalid_characters", id="nul"),
        pytest.param(b'filename="a\x07b.txt"', "invalid_characters", id="bell-control-char"),
        pytest.param(b'filename="../etc/passwd.txt"', "invalid_filename", id="slash"),
        pytest.param(b'filename="C:\\Users\\a.txt"', "invalid_filename", id="backslash"),
        pytest.param(b'filename="..\xe6\x8a\xa5\xe5\x91\x8a.txt"', "invalid_filename",
                     id="dot-dot"),
        pytest.param(('filename="' + "报" * 296 + '.txt"').encode(), "filename_too_long",
                     id="300-chinese-chars"),
        pytest.param(b'filename="   "', "missing_filename", id="blank"),
    ],
)  # fmt: skip
def test_upload_with_a_bad_file_name_is_refused(
    api: Api, backends: Backends, settings: Settings, filename: bytes, code: str
) -> None:
    response = post_raw(api, form(file_part(filename=filename)))

    error = assert_error(response, 422, code)
    assert error["details"]["field"] == "file"
    assert_nothing_stored(backends, settings)


# --- the descriptive fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field_name", "code"),
    [
        pytest.param({"title": "题" * 201}, "title", "too_long", id="title-201-chars"),
        pytest.param({"title": "标题\x00"}, "title", "invalid_characters", id="title-nul"),
        pytest.param({"category": "类" * 51}, "category", "too_long", id="category-51-chars"),
        pytest.param({"tags": ",".join(f"t{i}" for i in range(21))}, "tags", "too_long",
                     id="21-tags"),
        pytest.param({"description": "说明\x1b[31m"}, "description", "invalid_characters",
                     id="description-escape-char"),
        *(
            pytest.param({"period": period}, "period", "invalid_period", id=f"period-{period}")
            for period in (
                "2020-13", "2020-Q5", "20-01", "2020/13", "2020-02-30", "２０２０年１３月", "1800",
                "2020-09-15T00:00", "2020年第五季度", "2020/09-15",
            )
        ),
        pytest.param({"visibility": "public"}, "visibility", "invalid_visibility",
                     id="unknown-visibility"),
        pytest.param({"visibility": "restricted", "departments": "农业局"}, "departments",
                     "unknown_department", id="unknown-department"),
        pytest.param({"visibility": "restricted", "departments": "东镇"}, "departments",
                     "unknown_department", id="township-as-department"),
        pytest.param({"visibility": "restricted"}, "departments", "departments_required",
                     id="restricted-without-departments"),
        pytest.param({"visibility": "restricted", "departments": " , "}, "departments",
                     "departments_required", id="restricted-blank-departments"),
        pytest.param({"visibility": "private", "departments": "扶贫办"}, "departments",
                     "departments_not_allowed", id="departments-with-private"),
        pytest.param({"departments": "扶贫办"}, "departments", "departments_not_allowed",
                     id="departments-with-default-visibility"),
        pytest.param({"colour": "红"}, "colour", "unknown_field", id="unknown-field"),
    ],
)  # fmt: skip
def test_upload_with_a_bad_field_is_refused(
    api: Api,
    backends: Backends,
    settings: Settings,
    fields: dict[str, str],
    field_name: str,
    code: str,
) -> None:
    response = api.upload("east", "纪要.txt", text_bytes(), "text/plain", **fields)

    error = assert_error(response, 422, code)
    assert error["details"]["field"] == field_name
    assert_nothing_stored(backends, settings)


def test_category_outside_the_defined_list_is_refused(
    api: Api, backends: Backends, settings: Settings
) -> None:
    created = api.client.post(
        "/api/v1/categories", json={"name": "扶贫"}, headers=api.headers("admin")
    )
    assert created.status_code == 201, created.text

    response = api.upload("east", "纪要.txt", text_bytes(), "text/plain", category="其他")

    error = assert_error(response, 422, "unknown_category")
    assert error["details"]["field"] == "category"
    assert_nothing_stored(backends, settings)


# --- the body as a whole -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        pytest.param("application/json", b'{"title": "x"}', 400, "not_multipart", id="json"),
        pytest.param("application/x-www-form-urlencoded", b"title=x", 400, "not_multipart",
                     id="urlencoded"),
        pytest.param("multipart/form-data", form(file_part()), 400, "not_multipart",
                     id="no-boundary"),
        pytest.param(MULTIPART, b"this is not a multipart body", 400, "malformed_multipart",
                     id="garbage"),
        pytest.param(MULTIPART, form(file_part())[: -len(b"--\r\n") - 20], 400,
                     "malformed_multipart", id="truncated"),
        pytest.param(MULTIPART, form(part(b'filename="a.txt"', b"x")), 400,
                     "malformed_multipart", id="part-without-name"),
        pytest.param(MULTIPART, form(text_field("title", "只有标题")), 422, "missing_file",
                     id="missing-file"),
        pytest.param(MULTIPART, form(), 422, "missing_file", id="empty-form"),
        pytest.param(MULTIPART, form(file_part(), file_part(filename=b'filename="b.txt"')), 400,
                     "multiple_files", id="two-files"),
        pytest.param(MULTIPART, form(file_part(), file_part(name=b"attachment")), 400,
                     "unexpected_file", id="file-in-other-field"),
        pytest.param(MULTIPART, form(file_part(), text_field("title", b"\xe6\x8a\xff")), 400,
                     "invalid_encoding", id="title-not-utf8"),
        pytest.param(MULTIPART, form(file_part(filename=b'filename="\xff\xfe.txt"')), 400,
                     "invalid_encoding", id="filename-not-utf8"),
        pytest.param(MULTIPART,
                     form(text_field("title", "甲"), file_part(), text_field("title", "乙")),
                     400, "duplicate_field", id="duplicate-field"),
        pytest.param(MULTIPART, form(file_part(), text_field("description", "长" * 30_000)), 422,
                     "field_too_long", id="field-over-64KiB"),
    ],
)  # fmt: skip
def test_malformed_upload_body_is_refused(
    api: Api,
    backends: Backends,
    settings: Settings,
    content_type: str,
    body: bytes,
    status: int,
    code: str,
) -> None:
    response = post_raw(api, body, content_type=content_type)

    assert_error(response, status, code)
    assert_nothing_stored(backends, settings)


# --- size limit --------------------------------------------------------------------------------


@pytest.fixture
def small_limit(settings: Settings) -> Iterator[tuple[FastAPI, Backends, Settings]]:
    """An app on the same data (same users, same signing key) with a 64 KiB upload limit."""
    small_settings = settings.model_copy(update={"max_upload_bytes": SMALL_LIMIT})
    small_backends = open_backends(small_settings)
    yield create_app(small_settings, backends=small_backends), small_backends, small_settings
    small_backends.close()


def undeclared_length_body() -> Iterator[bytes]:
    return iter(CountingBody(BIG_FILE_HEAD, chunks=4, chunk_size=SMALL_LIMIT))


@pytest.mark.parametrize(
    "make_body",
    [
        pytest.param(lambda: form(file_part(b"x" * (SMALL_LIMIT + 1), filename=BIG_FILE)),
                     id="content-length-over-limit"),
        pytest.param(lambda: b"garbage" * (SMALL_LIMIT // 7 + 1), id="too-large-and-malformed"),
        # The TestClient drains a generator before calling the app, so this only makes the
        # length undeclared (chunked); the early stop is checked over a real socket below.
        pytest.param(undeclared_length_body, id="undeclared-length-over-limit"),
    ],
)  # fmt: skip
def test_upload_over_the_size_limit_is_refused(
    api: Api,
    small_limit: tuple[FastAPI, Backends, Settings],
    make_body: Callable[[], bytes | Iterator[bytes]],
) -> None:
    app, small_backends, small_settings = small_limit
    with TestClient(app) as client:
        response = client.post(
            DOCUMENTS,
            content=make_body(),
            headers={**api.headers("east"), "Content-Type": MULTIPART},
        )

    assert_error(response, 413, "payload_too_large")
    assert response.headers["connection"] == "close"
    assert_nothing_stored(small_backends, small_settings)


def test_server_stops_reading_an_oversized_upload_early(
    api: Api, small_limit: tuple[FastAPI, Backends, Settings]
) -> None:
    app, small_backends, small_settings = small_limit
    body = CountingBody(BIG_FILE_HEAD, chunks=1024, chunk_size=64 * KiB)  # 64 MiB
    head = (
        f"POST {DOCUMENTS} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {api.headers('east')['Authorization']}\r\n"
        f"Content-Type: {MULTIPART}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with serving(app) as port:
        answer = send_streaming(port, head, body, seconds=10)

    head_text, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head_text.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    assert status_line.startswith("HTTP/1.1 413"), answer[:300]
    assert headers["content-type"].startswith("application/json")
    assert json.loads(payload)["error"]["code"] == "payload_too_large"
    # 64 KiB read by the app plus what the pinned socket buffers hold: a few MiB at most.
    assert body.pulled <= 64, f"{body.pulled} of 1025 chunks were pulled"
    assert_nothing_stored(small_backends, small_settings)


# --- who may upload ----------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["poverty", "auditor", "admin"])
def test_only_township_staff_may_upload(
    api: Api, backends: Backends, settings: Settings, username: str
) -> None:
    response = api.upload(username, "报告.pdf", pdf_bytes(), "application/pdf")

    assert_error(response, 403, "upload_not_allowed")
    assert_nothing_stored(backends, settings)


def _token(settings: Settings, backends: Backends, **changes: Any) -> str:
    """A token as the service issues it for east, with some claims or the key changed."""
    with backends.db.session() as session:
        east_id = session.scalar(sql_select(User.id).where(User.username == "east"))
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(east_id),
        "name": "east",
        "aud": "materials-api",
        "iat": now,
        "exp": now + timedelta(hours=1),
        "jti": uuid.uuid4().hex,
    }
    key = changes.pop("key", settings.signing_key())
    algorithm = changes.pop("algorithm", "HS256")
    claims.update(changes)
    return jwt.encode(claims, key, algorithm=algorithm)


AUTH_CASES = {
    "missing": (None, "not_authenticated"),
    "basic-scheme": ("Basic ZWFzdDpjb3JyZWN0LWhvcnNlLTQy", "not_authenticated"),
    "empty-bearer": ("Bearer ", "not_authenticated"),
    "malformed": ("Bearer not-a-jwt", "invalid_token"),
    "expired": (
        {"iat": utcnow() - timedelta(hours=2), "exp": utcnow() - timedelta(hours=1)},
        "token_expired",
    ),
    "forged": ({"key": "another-signing-key-" + "y" * 32}, "invalid_token"),
    "wrong-audience": ({"aud": "someone-else"}, "invalid_token"),
    "alg-none": ({"key": None, "algorithm": "none"}, "invalid_token"),
    "unknown-user": ({"sub": "999999"}, "invalid_token"),
}


@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_bad_token_is_refused_and_audited(
    api: Api, backends: Backends, settings: Settings, case: str
) -> None:
    credentials, code = AUTH_CASES[case]
    headers: dict[str, str] = {}
    if isinstance(credentials, str):
        headers["Authorization"] = credentials
    elif isinstance(credentials, dict):
        headers["Authorization"] = "Bearer " + _token(settings, backends, **credentials)

    response = api.client.post(
        DOCUMENTS, headers=headers, files={"file": ("报告.pdf", pdf_bytes(), "application/pdf")}
    )

    assert_error(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"
    with backends.db.session() as session:
        denied = list(
            session.scalars(
                sql_select(AuditEvent).where(
                    AuditEvent.action == "access", AuditEvent.outcome == "denied"
                )
            )
        )
        assert [(e.details["reason"], e.details["path"]) for e in denied] == [(code, DOCUMENTS)]
    assert_nothing_stored(backends, settings)


# --- query parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "user", "query"),
    [
        pytest.param(path, user, query, id=f"{name}-{query}")
        for path, user, name in (
            (DOCUMENTS, "east", "documents"),
            ("/api/v1/audit/events", "auditor", "audit"),
        )
        for query in (
            "page=0", "page=-1", "page=100001", "page=99999999999999999999999",
            "size=0", "size=-5", "size=501", "size=99999999999999999999999",
        )
    ],
)  # fmt: skip
def test_out_of_range_paging_is_refused(
    api: Api, backends: Backends, settings: Settings, path: str, user: str, query: str
) -> None:
    response = api.client.get(f"{path}?{query}", headers=api.headers(user))

    error = assert_error(response, 422, "invalid_field")
    assert error["details"]["field"] == "query." + query.split("=")[0]
    assert_nothing_stored(backends, settings)


@pytest.mark.parametrize(
    "sha256",
    ["xyz", "g" * 64, "a" * 63, "a" * 65, "../../etc/passwd", "é" * 64, "0x" + "a" * 62],
    ids=["short", "non-hex", "63-chars", "65-chars", "path", "non-ascii", "0x-prefix"],
)
def test_lookup_with_a_bad_sha256_is_refused(
    api: Api, backends: Backends, settings: Settings, sha256: str
) -> None:
    response = api.client.get(
        f"{DOCUMENTS}/lookup", params={"sha256": sha256}, headers=api.headers("east")
    )

    assert_error(response, 422, "invalid_sha256")
    assert_nothing_stored(backends, settings)


# --- signing in --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form_data", "status", "code"),
    [
        pytest.param({"username": "east", "password": "wrong-password"}, 401,
                     "invalid_credentials", id="wrong-password"),
        pytest.param({"username": "nobody", "password": PASSWORD}, 401, "invalid_credentials",
                     id="unknown-user"),
        # Usernames are compared case-insensitively (EAST is east): a wrong password stays wrong.
        pytest.param({"username": "EAST", "password": "not-" + PASSWORD}, 401,
                     "invalid_credentials", id="username-case"),
        pytest.param({"username": "east' OR '1'='1", "password": "' OR '1'='1"}, 401,
                     "invalid_credentials", id="sql-looking"),
        pytest.param({"username": "", "password": PASSWORD}, 422, "invalid_field",
                     id="empty-username"),
        pytest.param({"username": "east"}, 422, "invalid_field", id="missing-password"),
    ],
)  # fmt: skip
def test_bad_login_is_refused(
    client: TestClient,
    backends: Backends,
    settings: Settings,
    form_data: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = client.post("/api/v1/auth/token", data=form_data)

    assert_error(response, status, code)
    assert "access_token" not in response.text
    assert_nothing_stored(backends, settings)


def test_login_is_locked_after_five_failures_even_with_the_right_password(
    client: TestClient, backends: Backends, settings: Settings
) -> None:
    for _ in range(5):
        failed = client.post(
            "/api/v1/auth/token", data={"username": "east", "password": "wrong-password"}
        )
        assert_error(failed, 401, "invalid_credentials")

    response = client.post("/api/v1/auth/token", data={"username": "east", "password": PASSWORD})

    assert_error(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) > 0
    assert "access_token" not in response.text
    assert_nothing_stored(backends, settings)


# --- hostile-looking text is data, not an error -----------------------------------------------


@pytest.mark.parametrize(
    "title",
    ["'; DROP TABLE documents; --", "<script>alert(1)</script>", "\" onmouseover=\"alert('x')"],
    ids=["sql", "script", "attribute"],
)
def test_hostile_looking_title_is_stored_verbatim(api: Api, backends: Backends, title: str) -> None:
    created = api.upload("east", "纪要.txt", text_bytes(), "text/plain", title=title)

    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/json")
    assert created.json()["title"] == title
    fetched = api.client.get(f"{DOCUMENTS}/{created.json()['id']}", headers=api.headers("east"))
    assert fetched.status_code == 200, fetched.text
    assert fetched.headers["content-type"].startswith("application/json")
    assert fetched.json()["title"] == title
    with backends.db.session() as session:
        assert session.scalar(text("SELECT title FROM documents")) == title
