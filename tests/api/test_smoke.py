"""The shortest path through the API: sign in, upload, read back."""

from __future__ import annotations

from tests.conftest import Api
from tests.samples import pdf_bytes


def test_uploader_uploads_and_reader_downloads(api: Api) -> None:
    created = api.upload("east", "总结.pdf", pdf_bytes(), "application/pdf", period="2026-Q3")
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["township"]["name"] == "东镇"
    assert document["content_type"] == "application/pdf"

    download = api.client.get(
        f"/api/v1/documents/{document['id']}/download", headers=api.headers("poverty")
    )
    assert download.status_code == 200
    assert download.content == pdf_bytes()


def test_full_width_period_is_stored_in_ascii(api: Api) -> None:
    created = api.upload("east", "纪要.txt", "会议纪要".encode(), period="２０２０-ｑ３")
    assert created.status_code == 201, created.text
    assert created.json()["period"] == "2020-Q3"
