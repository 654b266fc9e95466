"""Account administration by admins: disable, enable, reset a password.

A disabled user's tokens stop working at once; after a reset, every earlier token stops working.
Each change, and each refusal, is an audit event. Who may call what is in test_authorization.py.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import PASSWORD, Api

NEW_PASSWORD = "battery-staple-77"


def _post(api: Api, path: str, body: dict[str, str] | None = None) -> Any:
    return api.client.post(f"/api/v1/users/{path}", json=body, headers=api.headers("admin"))


def _login(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def _me(client: TestClient, token: str) -> Any:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def _events(backends: Backends, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with backends.db.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [(event.actor, event.outcome, dict(event.details)) for event in events]


def _listed(api: Api) -> dict[str, bool]:
    users = api.client.get("/api/v1/users", headers=api.headers("admin"))
    assert users.status_code == 200, users.text
    return {user["username"]: user["active"] for user in users.json()}


def _next_second() -> None:
    # Tokens carry whole seconds: a reset counts for tokens issued in an earlier second.
    time.sleep(1.02 - time.time() % 1)


def test_a_disabled_users_token_stops_working_at_once(api: Api, backends: Backends) -> None:
    token = _login(api.client, "poverty", PASSWORD).json()["access_token"]
    assert _me(api.client, token).status_code == 200

    disabled = _post(api, "poverty/disable")

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["username"] == "poverty"
    assert disabled.json()["active"] is False
    refused = _me(api.client, token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"
    login = _login(api.client, "poverty", PASSWORD)
    assert login.status_code == 401
    # Told only to whoever knows the password; a wrong one reads as any wrong password.
    assert login.json()["error"]["code"] == "account_disabled"
    assert _login(api.client, "poverty", "wrong-password").json()["error"]["code"] == (
        "invalid_credentials"
    )
    assert _listed(api)["poverty"] is False
    assert ("admin", "allowed", {"user": "poverty", "role": "reader", "changed": True}) in _events(
        backends, "user_disable"
    )


def test_an_enabled_user_signs_in_again(api: Api, backends: Backends) -> None:
    old_token = _login(api.client, "stats", PASSWORD).json()["access_token"]
    _next_second()
    assert _post(api, "stats/disable").status_code == 200

    enabled = _post(api, "stats/enable")

    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active"] is True
    assert _listed(api)["stats"] is True
    new_token = _login(api.client, "stats", PASSWORD).json()["access_token"]
    assert _me(api.client, new_token).json()["username"] == "stats"
    # A token from before the account was disabled does not come back to life.
    assert _me(api.client, old_token).status_code == 401
    assert ("admin", "allowed", {"user": "stats", "role": "reader", "changed": True}) in _events(
        backends, "user_enable"
    )


def test_disabling_twice_changes_nothing_more(api: Api, backends: Backends) -> None:
    assert _post(api, "west/disable").status_code == 200
    again = _post(api, "west/disable")

    assert again.status_code == 200
    assert again.json()["active"] is False
    changes = [details["changed"] for *_, details in _events(backends, "user_disable")]
    assert changes == [True, False]


def test_an_admin_cannot_disable_themself(api: Api, backends: Backends) -> None:
    refused = _post(api, "admin/disable")

    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "cannot_disable_self"
    assert "自己" in error["message"]
    assert _listed(api)["admin"] is True
    assert _events(backends, "user_disable") == [
        ("admin", "denied", {"reason": "cannot_disable_self", "user": "admin"})
    ]


def test_an_unknown_user_is_not_found(api: Api, backends: Backends) -> None:
    for path, body in (
        ("nobody/disable", None),
        ("nobody/enable", None),
        ("nobody/password", {"new_password": NEW_PASSWORD}),
    ):
        response = _post(api, path, body)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "user_not_found"
    for action in ("user_disable", "user_enable", "user_password_reset"):
        assert _events(backends, action) == [
            ("admin", "denied", {"reason": "user_not_found", "user": "nobody"})
        ]


def test_a_password_reset_ends_every_earlier_token(api: Api, backends: Backends) -> None:
    earlier = [_login(api.client, "east", PASSWORD).json()["access_token"] for _ in range(2)]
    _next_second()

    reset = _post(api, "east/password", {"new_password": NEW_PASSWORD})

    assert reset.status_code == 204, reset.text
    assert reset.content == b""
    for token in earlier:
        assert _me(api.client, token).status_code == 401
    assert _login(api.client, "east", PASSWORD).status_code == 401
    signed_in = _login(api.client, "east", NEW_PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    assert _me(api.client, signed_in.json()["access_token"]).json()["username"] == "east"
    # Another user of the same township keeps working.
    assert api.client.get("/api/v1/me", headers=api.headers("east2")).status_code == 200
    events = _events(backends, "user_password_reset")
    assert events == [("admin", "allowed", {"user": "east", "role": "uploader"})]
    assert NEW_PASSWORD not in str(events)


def test_a_reset_password_keeps_the_password_rules(api: Api, backends: Backends) -> None:
    refused = _post(api, "east/password", {"new_password": "short"})

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_field"
    assert refused.json()["error"]["details"] == {"field": "new_password"}
    assert _login(api.client, "east", PASSWORD).status_code == 200
    assert _events(backends, "user_password_reset") == [
        ("admin", "denied", {"reason": "invalid_field", "user": "east"})
    ]


def test_a_reset_needs_a_new_password(api: Api) -> None:
    missing = _post(api, "east/password", {})

    assert missing.status_code == 422
    assert _login(api.client, "east", PASSWORD).status_code == 200


def test_the_user_list_shows_who_is_active(api: Api) -> None:
    assert _post(api, "poverty/disable").status_code == 200

    listed = _listed(api)

    assert listed["poverty"] is False
    assert all(active for username, active in listed.items() if username != "poverty")
