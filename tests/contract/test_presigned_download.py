"""Downloads through the API on an S3 store: a 302 to a presigned URL, or streamed when off.

Run on SeaweedFS and on MinIO: each must honour the presigned response headers.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from services.backends import open_backends
from services.config import Settings
from tests.conftest import Api, make_settings, seed_county
from tests.samples import pdf_bytes
from tests.servers import S3Server

FILENAME = "扶贫工作总结.pdf"


def s3_settings(data_dir: Path, server: S3Server, bucket: str, *, presigned: bool) -> Settings:
    return make_settings(
        data_dir,
        s3_endpoint=f"http://{server.endpoint}",
        s3_access_key=server.access_key,
        s3_secret_key=server.secret_key,
        s3_bucket=bucket,
        s3_presigned_downloads=presigned,
    )


def test_download_redirects_to_the_store_unless_turned_off(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    seeded = open_backends(s3_settings(data_dir, s3_server, bucket, presigned=True))
    try:
        seed_county(seeded)
    finally:
        seeded.close()
    content = pdf_bytes("Presigned download")

    with TestClient(create_app(s3_settings(data_dir, s3_server, bucket, presigned=True))) as tc:
        api = Api(tc, {})
        created = api.upload("east", FILENAME, content, "application/pdf")
        assert created.status_code == 201, created.text
        path = f"/api/v1/documents/{created.json()['id']}/download"

        redirected = tc.get(path, headers=api.headers("poverty"), follow_redirects=False)

        assert redirected.status_code == 302, redirected.text
        assert redirected.headers["cache-control"] == "no-store"
        fetched = httpx.get(redirected.headers["location"], timeout=30)
        assert fetched.status_code == 200, fetched.text
        assert fetched.content == content
        assert fetched.headers["content-type"] == "application/pdf"
        assert f"filename*=UTF-8''{quote(FILENAME)}" in fetched.headers["content-disposition"]

    with TestClient(create_app(s3_settings(data_dir, s3_server, bucket, presigned=False))) as tc:
        api = Api(tc, {})
        streamed = tc.get(path, headers=api.headers("poverty"), follow_redirects=False)

        assert streamed.status_code == 200, streamed.text
        assert streamed.content == content
        assert f"filename*=UTF-8''{quote(FILENAME)}" in streamed.headers["content-disposition"]
