"""Property: whatever file name and fields an upload carries, it is stored under a safe display
name or refused with a JSON 4xx that leaves nothing behind; never a server error.

Bodies are built byte for byte (tests/multipart.py), so names reach the server as a client sent
them: raw UTF-8 in quotes, or RFC 5987 ``filename*``, with controls, separators, direction marks.
"""

from __future__ import annotations

import hashlib
import itertools
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from api.app import create_app
from services.backends import Backends, open_backends
from services.metadata import KNOWN_FIELDS, MAX_FILENAME, SHA256_FIELD
from services.models import Document
from services.names import INVISIBLE
from tests.conftest import Api, make_settings, seed_county
from tests.multipart import Multipart

pytestmark = pytest.mark.fuzz

FORM = Multipart(b"----fuzzed-upload-boundary")

# Characters that make names dangerous or confusing, mixed into otherwise arbitrary text.
_TRICKY = st.sampled_from(
    ["/", "\\", "..", ".", " ", "\x00", "\n", "\r", "\t", "\x7f", "\u0085", '"', ";", "%",
     "\u202e", "\u200b", "\ufeff", "\u2028", "ｆ", "报告", "e\u0301", "\u0301", ".pdf", "C:"]
)  # fmt: skip
_MIXED = st.lists(st.one_of(_TRICKY, st.text(max_size=5)), max_size=12).map("".join)
NAMES = st.one_of(
    st.from_regex(r"[\w .()（）-]{1,40}\.(txt|csv|md)", fullmatch=True),
    _MIXED.map(lambda text: text + ".txt"),
    _MIXED,
    st.text(max_size=40),
    st.text(min_size=MAX_FILENAME - 8, max_size=MAX_FILENAME + 20).map(lambda text: text + ".txt"),
    st.just(""),
)
_TEXT = st.one_of(st.text(max_size=30), _MIXED)
FIELDS = st.one_of(
    st.just({}),
    # Typed text, arbitrary: refused or stored tidied.
    st.fixed_dictionaries(
        {}, optional={"title": _TEXT, "tags": _TEXT, "description": _TEXT, "category": _TEXT}
    ),
    # Any field, any value, an unknown one now and then.
    st.dictionaries(
        st.sampled_from(sorted((KNOWN_FIELDS - {SHA256_FIELD}) | {"unknown"})),
        st.one_of(
            _TEXT,
            st.sampled_from(["2026-Q3", "2026年9月", "restricted", "private", "扶贫办,统计局"]),
        ),
        max_size=4,
    ),
)


@dataclass
class Uploads:
    api: Api
    backends: Backends
    serial: Iterator[int]

    def documents(self) -> int:
        with self.backends.db.session() as session:
            return session.scalar(select(func.count()).select_from(Document)) or 0

    def files(self, folder: Path) -> int:
        return sum(1 for path in folder.rglob("*") if path.is_file())


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uploads]:
    settings = make_settings(tmp_path_factory.mktemp("uploads") / "data")
    backends = open_backends(settings)
    seed_county(backends)
    with TestClient(create_app(settings, backends=backends)) as client:
        yield Uploads(Api(client, {}), backends, itertools.count())
    backends.close()


def _disposition(name: str, extended: bool) -> bytes:
    if extended:
        return b"filename*=UTF-8''" + quote(name, safe="").encode()
    # As Starlette, Django and Werkzeug read it: raw UTF-8 bytes, only " and \ escaped.
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return b'filename="' + escaped.encode("utf-8", "surrogatepass") + b'"'


def assert_safe_display_name(name: str) -> None:
    assert name
    assert name == name.strip()
    assert len(name) <= MAX_FILENAME
    assert "/" not in name
    assert "\\" not in name
    assert ".." not in name
    assert not any(unicodedata.category(ch) == "Cc" for ch in name), ascii(name)
    assert not INVISIBLE.intersection(name), ascii(name)
    assert unicodedata.is_normalized("NFC", name), ascii(name)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=NAMES,
    extended=st.booleans(),
    fields=FIELDS,
    declare_sha256=st.sampled_from(["none", "right", "wrong"]),
)
# A zero-width space between a letter and its accent: taken out, it leaves them to be composed.
@example(name="e\u200b\u0301.txt", extended=True, fields={}, declare_sha256="none")
def test_an_upload_is_stored_under_a_safe_name_or_refused_cleanly(
    uploads: Uploads, name: str, extended: bool, fields: dict[str, str], declare_sha256: str
) -> None:
    content = f"第 {next(uploads.serial)} 份：防汛值班表".encode()
    if declare_sha256 != "none":
        digest = hashlib.sha256(content if declare_sha256 == "right" else b"other").hexdigest()
        fields = {SHA256_FIELD: digest, **fields}
    parts = [FORM.text_field(field, value) for field, value in fields.items()]
    parts.append(FORM.file_part(content, filename=_disposition(name, extended)))
    settings = uploads.backends.settings
    before = uploads.documents(), uploads.files(settings.blob_dir)

    response = uploads.api.client.post(
        "/api/v1/documents",
        content=FORM.form(*parts),
        headers={"Content-Type": FORM.content_type, **uploads.api.headers("east")},
    )

    assert response.status_code < 500, response.text
    event(f"{response.status_code} {response.json().get('error', {}).get('code', '')}")
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if response.status_code == 201:
        assert_safe_display_name(body["filename"])
        assert uploads.documents() == before[0] + 1
        stored = uploads.api.client.get(
            f"/api/v1/documents/{body['id']}", headers=uploads.api.headers("east")
        )
        assert stored.json()["filename"] == body["filename"]
    else:
        assert 400 <= response.status_code < 500, response.text
        assert set(body) == {"error"}, body
        assert body["error"]["code"], body
        assert (uploads.documents(), uploads.files(settings.blob_dir)) == before
    assert uploads.files(settings.spool_dir) == 0
