"""Uploads with a declared sha256 stream into S3 without a disk spool, typed from their head.

On SeaweedFS and MinIO: a PDF goes through with no spool directory at all; a DOCX (typed from the
whole file) and bytes the store already holds are still spooled; a refused or mismatching upload
leaves no object and no unfinished multipart upload. Also: typing from the head alone agrees with
typing from the whole file for every format the head decides.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from services.backends import Backends
from services.filetypes import (
    HEAD_BYTES,
    detect_file_type,
    detect_type_of_head,
    needs_whole_file,
)
from tests.api.test_object_store_down import running_app, s3_settings
from tests.conftest import Api
from tests.servers import S3Server
from tests.test_filetypes import _ACCEPTED, _DOCX

DOCUMENTS = "/api/v1/documents"
MiB = 1024 * 1024


def big_pdf() -> bytes:
    # Several 5 MiB parts, the last one short, and different every run.
    return b"%PDF-1.4\n" + os.urandom(13 * MiB + 4321)


def upload(api: Api, content: bytes, filename: str, *, user: str = "east", **fields: str) -> Any:
    return api.client.post(
        DOCUMENTS,
        headers=api.headers(user),
        data={"title": "入户走访记录", "category": "其他", **fields},
        files={"file": (filename, content, "application/octet-stream")},
    )


def stored_digest(backends: Backends, sha256: str) -> str:
    """The digest of the bytes the store holds under ``sha256``."""
    digest = hashlib.sha256()
    for chunk in backends.blobs.read_chunks(sha256):
        digest.update(chunk)
    return digest.hexdigest()


def client_of(server: S3Server) -> Minio:
    return Minio(
        server.endpoint, access_key=server.access_key, secret_key=server.secret_key, secure=False
    )


def objects_and_unfinished(server: S3Server, bucket: str) -> tuple[list[str], int]:
    """Every object in the bucket, and how many multipart uploads were begun and never ended."""
    client = client_of(server)
    names = [o.object_name or "" for o in client.list_objects(bucket, recursive=True)]
    pending = client._list_multipart_uploads(bucket)
    return names, len(pending.uploads)


def test_a_pdf_with_its_digest_streams_into_s3_without_a_spool(
    tmp_path: Path, s3_server: S3Server, bucket: str
) -> None:
    settings = s3_settings(tmp_path, s3_server, bucket)
    # A file where the spool directory would be: any spooling would fail the upload.
    settings.spool_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.spool_dir.write_bytes(b"")
    content = big_pdf()
    digest = hashlib.sha256(content).hexdigest()
    with running_app(settings) as (api, backends):
        created = upload(api, content, "走访记录.pdf", sha256=digest)
        assert created.status_code == 201, created.text
        assert created.json()["content_type"] == "application/pdf"
        assert stored_digest(backends, digest) == digest
    assert settings.spool_dir.read_bytes() == b""
    assert objects_and_unfinished(s3_server, bucket)[1] == 0


def test_a_docx_and_bytes_the_store_holds_are_still_spooled_and_stored(
    tmp_path: Path, s3_server: S3Server, bucket: str
) -> None:
    settings = s3_settings(tmp_path, s3_server, bucket)
    docx_digest = hashlib.sha256(_DOCX).hexdigest()
    pdf = big_pdf()
    pdf_digest = hashlib.sha256(pdf).hexdigest()
    with running_app(settings) as (api, backends):
        created = upload(api, _DOCX, "通知.docx", sha256=docx_digest)
        assert created.status_code == 201, created.text
        assert created.json()["content_type"].endswith("wordprocessingml.document")

        # West stores the bytes; east's upload finds them stored and does not send them again.
        assert upload(api, pdf, "a.pdf", user="west", sha256=pdf_digest).status_code == 201
        shared = upload(api, pdf, "b.pdf", sha256=pdf_digest)
        assert shared.status_code == 201, shared.text
        assert shared.json()["sha256"] == pdf_digest
        assert stored_digest(backends, pdf_digest) == pdf_digest
    names, unfinished = objects_and_unfinished(s3_server, bucket)
    assert sorted(n.rsplit("/", 1)[-1] for n in names if n.startswith("blobs/")) == sorted(
        [docx_digest, pdf_digest]
    )
    assert unfinished == 0
    spooled = sorted(settings.spool_dir.iterdir()) if settings.spool_dir.exists() else []
    assert spooled == []


@pytest.mark.parametrize(
    ("filename", "declared", "status", "code"),
    [
        ("走访记录.pdf", "other", 422, "sha256_mismatch"),
        ("走访记录.txt", "right", 415, "type_mismatch"),  # PDF bytes under a .txt name
    ],
)
def test_a_refused_streamed_upload_leaves_nothing_in_s3(
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
    filename: str,
    declared: str,
    status: int,
    code: str,
) -> None:
    settings = s3_settings(tmp_path, s3_server, bucket)
    content = big_pdf()
    digest = hashlib.sha256(content if declared == "right" else b"other").hexdigest()
    with running_app(settings) as (api, _backends):
        refused = upload(api, content, filename, sha256=digest)
        assert refused.status_code == status, refused.text
        assert refused.json()["error"]["code"] == code
    names, unfinished = objects_and_unfinished(s3_server, bucket)
    assert [n for n in names if n.startswith("blobs/")] == []
    assert unfinished == 0


@pytest.mark.parametrize(("content", "filename", "mime", "label"), _ACCEPTED)
def test_the_head_types_a_file_as_the_whole_file_does(
    tmp_path: Path, content: bytes, filename: str, mime: str, label: str
) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    whole = detect_file_type(path, filename=filename, declared_type=None)
    if needs_whole_file(content[:HEAD_BYTES]):
        assert label in {"DOCX", "XLSX", "PPTX", "DOC", "XLS", "PPT", "WPS", "ET", "OFD", "ZIP"}
        return
    head = detect_type_of_head(
        content[:HEAD_BYTES], size=len(content), filename=filename, declared_type=None
    )
    assert head == whole


def test_text_longer_than_the_head_is_typed_from_the_head(tmp_path: Path) -> None:
    # A multi-byte character cut at the end of the head must not make the text binary.
    content = ("城关镇入户走访记录，" * 2000).encode()
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    assert len(content) > HEAD_BYTES
    whole = detect_file_type(path, filename="notes.txt", declared_type="text/plain")
    head = detect_type_of_head(
        content[:HEAD_BYTES], size=len(content), filename="notes.txt", declared_type="text/plain"
    )
    assert head == whole
    assert head.label == "TXT"
