"""The shortest path through the API: sign in, upload, read back."""

from __future__ import annotations

from services.backends import Backends
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


def test_chinese_period_is_stored_in_canonical_form(api: Api) -> None:
    created = api.upload("east", "总结.txt", "季度总结".encode(), period=" 2026年第三季度 ")
    assert created.status_code == 201, created.text
    assert created.json()["period"] == "2026-Q3"


def test_health_and_readiness_name_each_backend(api: Api, backends: Backends) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["backends"] == {
        "database": "ok",
        "object_store": "ok",
        "search_index": "ok",
    }
    backends.index.close()
    down = api.client.get("/readyz")
    assert down.status_code == 503
    assert down.headers["retry-after"]
    assert down.json()["backends"]["search_index"].startswith("unavailable")
    assert down.json()["error"]["code"] == "backend_unavailable"
