"""The optional ``sha256`` upload field: checked against the bytes, and (sent before the file)
letting the server stream them on into the store while they arrive."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from services.backends import Backends
from services.config import Settings
from tests.api.test_bad_input import assert_nothing_stored
from tests.conftest import Api

DOCUMENTS = "/api/v1/documents"
CONTENT = "城关镇2026年第三季度脱贫攻坚工作总结\n".encode() + os.urandom(64).hex().encode()
SHA256 = hashlib.sha256(CONTENT).hexdigest()


def upload(api: Api, content: bytes, *, user: str = "east", **fields: str) -> httpx.Response:
    # httpx sends the form fields before the file part.
    return api.client.post(
        DOCUMENTS,
        headers=api.headers(user),
        data=fields,
        files={"file": ("总结.txt", content, "text/plain")},
    )


def download(api: Api, document_id: str) -> bytes:
    response = api.client.get(f"{DOCUMENTS}/{document_id}/download", headers=api.headers("east"))
    assert response.status_code == 200, response.text
    return response.content


def test_the_right_digest_stores_the_file(api: Api, backends: Backends) -> None:
    created = upload(api, CONTENT, sha256=SHA256.upper())
    assert created.status_code == 201, created.text
    assert created.json()["sha256"] == SHA256
    assert backends.blobs.exists(SHA256)
    assert download(api, created.json()["id"]) == CONTENT

    again = upload(api, CONTENT, sha256=SHA256)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True


def test_a_large_file_streams_through_with_its_digest(api: Api, backends: Backends) -> None:
    # Several parts of the store's multipart upload, the last one short.
    content = ("入户走访记录，" * 600_000).encode() + os.urandom(32).hex().encode()
    digest = hashlib.sha256(content).hexdigest()
    created = api.client.post(
        DOCUMENTS,
        headers=api.headers("east"),
        data={"sha256": digest},
        files={"file": ("走访记录.txt", content, "text/plain")},
    )
    assert created.status_code == 201, created.text
    assert len(content) > 11 * 1024 * 1024
    assert hashlib.sha256(download(api, created.json()["id"])).hexdigest() == digest


@pytest.mark.parametrize(
    ("declared", "code"),
    [
        (hashlib.sha256(b"other bytes").hexdigest(), "sha256_mismatch"),
        ("not-a-digest", "invalid_sha256"),
        ("", "invalid_sha256"),
        (SHA256[:-1], "invalid_sha256"),
    ],
)
def test_a_wrong_digest_is_refused_and_nothing_is_stored(
    api: Api, backends: Backends, settings: Settings, declared: str, code: str
) -> None:
    refused = upload(api, CONTENT, sha256=declared)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["details"]["field"]) == (code, "sha256")
    assert_nothing_stored(backends, settings)
    assert not backends.blobs.exists(SHA256)


def test_changed_bytes_under_a_digest_the_store_already_holds_are_refused(
    api: Api, backends: Backends
) -> None:
    # West holds these bytes; east claims their digest for different bytes.
    stored = upload(api, CONTENT, user="west", sha256=SHA256)
    assert stored.status_code == 201
    refused = upload(api, b"something else entirely", sha256=SHA256)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "sha256_mismatch"
    assert b"".join(backends.blobs.read_chunks(SHA256)) == CONTENT

    # The same bytes from east are a document of east's, sharing the stored blob.
    shared = upload(api, CONTENT, sha256=SHA256)
    assert shared.status_code == 201
    assert download(api, shared.json()["id"]) == CONTENT


def test_a_digest_after_the_file_is_still_checked(api: Api, settings: Settings) -> None:
    # Sent after the file part it cannot be streamed on, but it is checked all the same.
    def body(digest: str) -> bytes:
        return (
            b"--b\r\n"
            b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n" + CONTENT + b"\r\n"
            b'--b\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n'
            + digest.encode()
            + b"\r\n--b--\r\n"
        )

    headers = {**api.headers("east"), "Content-Type": "multipart/form-data; boundary=b"}
    wrong = api.client.post(DOCUMENTS, content=body("0" * 64), headers=headers)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "sha256_mismatch"
    right = api.client.post(DOCUMENTS, content=body(SHA256), headers=headers)
    assert right.status_code == 201, right.text
