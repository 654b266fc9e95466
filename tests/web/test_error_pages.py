"""Failures on pages are Chinese pages without internals; on the API they stay JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from services.backends import Backends
from services.config import Settings


def _app_that_breaks(settings: Settings, backends: Backends) -> TestClient:
    app = create_app(settings, backends=backends)

    def broken() -> None:
        raise RuntimeError("secret internals: /srv/materials/data password=hunter2")

    app.add_api_route("/broken", broken, include_in_schema=False)
    app.add_api_route("/api/v1/broken", broken, include_in_schema=False)
    return TestClient(app, raise_server_exceptions=False)


def test_an_unexpected_error_on_a_page_is_a_chinese_page_without_internals(
    settings: Settings, backends: Backends, county: dict[str, int]
) -> None:
    with _app_that_breaks(settings, backends) as client:
        page = client.get("/broken")
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "服务器内部错误" in page.text
        assert "请稍后再试" in page.text
        for leak in ("Traceback", "RuntimeError", "secret internals", "hunter2"):
            assert leak not in page.text
        # It passed no middleware, and still carries the security headers.
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"

        api = client.get("/api/v1/broken")
        assert api.status_code == 500
        assert api.headers["x-content-type-options"] == "nosniff"
        assert api.json() == {
            "error": {"code": "internal_error", "message": "服务器内部错误，请联系管理员"}
        }


def test_refused_and_missing_pages_say_so_in_chinese(client: TestClient) -> None:
    missing = client.get("/nothing/here")
    assert missing.status_code == 404
    assert "页面不存在" in missing.text
    # A page that needs a login sends the browser there instead of answering 401.
    redirected = client.get("/search?q=扶贫", follow_redirects=False)
    assert redirected.status_code == 303
    assert (
        redirected.headers["location"]
        == "/login?next=%2Fsearch%3Fq%3D%25E6%2589%25B6%25E8%25B4%25AB"
    )
    # The API keeps answering JSON for the same failures.
    assert client.get("/api/v1/nothing").json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/search").status_code == 401
