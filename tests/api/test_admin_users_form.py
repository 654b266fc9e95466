"""新建用户 refused: the page comes back at the error, with what was typed kept."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import signed_in_browser

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_a_refused_new_user_opens_at_its_error(client: TestClient) -> None:
    with signed_in_browser(client, "admin") as browser:
        page = browser.get("/admin/users")
        token = _CSRF.search(page.text)
        assert token is not None
        refused = browser.post(
            "/admin/users",
            data={
                "csrf_token": token.group(1),
                "username": "wangli",
                "password": "short",
                "role": "uploader",
                "org": "",
            },
        )

    assert refused.status_code == 422
    error = re.search(r'<div class="flash flash-error"[^>]*>([^<]*)</div>', refused.text)
    assert error is not None, refused.text
    # Focused and scrolled to on load (static/app.js), announced as an alert.
    assert 'role="alert"' in error.group(0)
    assert 'tabindex="-1"' in error.group(0)
    assert "data-focus-on-load" in error.group(0)
    assert error.group(1).strip()
    # Right at the 新建用户 form, which keeps what was typed.
    assert (
        refused.text.index('id="create-title"')
        < error.start()
        < refused.text.index('action="/admin/users"')
    )
    assert 'value="wangli"' in refused.text


def test_the_page_script_brings_such_an_error_into_view(client: TestClient) -> None:
    script = client.get("/static/app.js").text
    assert "[data-focus-on-load]" in script
    assert "scrollIntoView" in script
    assert ".focus(" in script
