"""Accounts: an admin disables, enables and resets; a user logs out and changes their password.

A disabled user's tokens stop working at once; after a reset or a change, every earlier token and
session stops working (also one issued in the same second), and after a reset the user may do
nothing but choose a new password. Each change, and each refusal, is an audit event. Who may call
what is in test_authorization.py; the password policy itself is in tests/test_passwords.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services import sessions
from services.backends import Backends
from services.errors import NotAuthenticated
from services.models import AuditEvent, User
from tests.conftest import PASSWORD, Api

NEW_PASSWORD = "battery-staple-77"
OWN_PASSWORD = "lantern-river-2031"


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


def _listed(api: Api, field: str = "active") -> dict[str, bool]:
    users = api.client.get("/api/v1/users", headers=api.headers("admin"))
    assert users.status_code == 200, users.text
    return {user["username"]: user[field] for user in users.json()}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = _login(client, username, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _change(client: TestClient, token: str, old: str, new: str) -> Any:
    return client.post(
        "/api/v1/me/password",
        json={"old_password": old, "new_password": new},
        headers=_bearer(token),
    )


def _web_session(backends: Backends, username: str) -> str:
    """A browser session of the user, as the login page would start it; its cookie value."""
    with backends.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == username))
    assert user_id is not None
    return sessions.start_session(backends, user_id=user_id, ip=None).token


def _session_alive(backends: Backends, cookie: str) -> bool:
    try:
        sessions.resolve_session(backends, token=cookie)
    except NotAuthenticated:
        return False
    return True


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
    cookie = _web_session(backends, "stats")
    assert _post(api, "stats/disable").status_code == 200
    assert not _session_alive(backends, cookie)

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


def test_an_admin_cannot_reset_their_own_password(api: Api, backends: Backends) -> None:
    # It used to fail with a 500: the admin became the requester of their own confirmation.
    refused = _post(api, "admin/password", {"new_password": NEW_PASSWORD})

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "cannot_reset_self"
    assert _login(api.client, "admin", PASSWORD).status_code == 200
    assert _events(backends, "user_password_reset") == [
        ("admin", "denied", {"reason": "cannot_reset_self", "user": "admin"})
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
    # Issued in the same second as the reset, too: the token knows the credentials it was for.
    earlier = [_login(api.client, "east", PASSWORD).json()["access_token"] for _ in range(2)]
    cookie = _web_session(backends, "east")

    reset = _post(api, "east/password", {"new_password": NEW_PASSWORD})

    assert reset.status_code == 204, reset.text
    assert reset.content == b""
    for token in earlier:
        refused = _me(api.client, token)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "token_revoked"
    assert not _session_alive(backends, cookie)
    assert _login(api.client, "east", PASSWORD).status_code == 401
    signed_in = _login(api.client, "east", NEW_PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    assert _me(api.client, signed_in.json()["access_token"]).json()["username"] == "east"
    # Another user of the same township keeps working.
    assert api.client.get("/api/v1/me", headers=api.headers("east2")).status_code == 200
    events = _events(backends, "user_password_reset")
    assert events == [("admin", "allowed", {"user": "east", "role": "uploader"})]
    assert NEW_PASSWORD not in str(events)


@pytest.mark.parametrize(
    ("weak", "said"),
    [
        ("short", "至少 10 个字符"),
        ("aaaaaaaaaaaa", "同一类字符"),
        ("password123", "常见"),
        ("east-2026!!", "用户名"),
    ],
)
def test_a_reset_password_keeps_the_password_rules(
    api: Api, backends: Backends, weak: str, said: str
) -> None:
    refused = _post(api, "east/password", {"new_password": weak})

    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "weak_password"
    assert said in error["message"]
    assert error["details"] == {"field": "new_password"}
    assert _login(api.client, "east", PASSWORD).status_code == 200
    assert _events(backends, "user_password_reset") == [
        ("admin", "denied", {"reason": "weak_password", "user": "east"})
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


def test_logout_revokes_that_token_only(api: Api, backends: Backends) -> None:
    leaving, staying = _token(api.client, "west"), _token(api.client, "west")

    logout = api.client.post("/api/v1/auth/logout", headers=_bearer(leaving))

    assert logout.status_code == 204, logout.text
    assert logout.content == b""
    refused = _me(api.client, leaving)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "token_revoked"
    assert api.client.post("/api/v1/auth/logout", headers=_bearer(leaving)).status_code == 401
    assert _me(api.client, staying).json()["username"] == "west"
    assert [(actor, outcome) for actor, outcome, _ in _events(backends, "logout")] == [
        ("west", "allowed")
    ]


def test_logout_with_the_session_cookie_ends_the_session(api: Api, backends: Backends) -> None:
    cookie = _web_session(backends, "poverty")
    csrf = sessions.resolve_session(backends, token=cookie).csrf_token
    api.client.cookies.set("materials_session", cookie)
    try:
        assert api.client.get("/api/v1/me").status_code == 200
        # A change made with the cookie needs the session's CSRF token, logout too.
        assert api.client.post("/api/v1/auth/logout").status_code == 403

        logout = api.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})

        assert logout.status_code == 204, logout.text
        assert api.client.get("/api/v1/me").status_code == 401
    finally:
        api.client.cookies.clear()
    assert not _session_alive(backends, cookie)


def test_logout_needs_a_caller(api: Api) -> None:
    assert api.client.post("/api/v1/auth/logout").status_code == 401
    forged = api.client.post("/api/v1/auth/logout", headers=_bearer("not-a-token"))
    assert forged.status_code == 401


def test_own_password_change_ends_every_earlier_token_and_session(
    api: Api, backends: Backends
) -> None:
    token, other = _token(api.client, "east"), _token(api.client, "east")
    cookie = _web_session(backends, "east")

    changed = _change(api.client, token, PASSWORD, OWN_PASSWORD)

    assert changed.status_code == 204, changed.text
    assert changed.content == b""
    for earlier in (token, other):
        assert _me(api.client, earlier).status_code == 401
    assert not _session_alive(backends, cookie)
    assert _login(api.client, "east", PASSWORD).status_code == 401
    fresh = _token(api.client, "east", OWN_PASSWORD)
    assert _me(api.client, fresh).json()["username"] == "east"
    # Nobody else is signed out.
    assert api.client.get("/api/v1/me", headers=api.headers("east2")).status_code == 200
    events = _events(backends, "password_change")
    assert [(actor, outcome) for actor, outcome, _ in events] == [("east", "allowed")]
    assert OWN_PASSWORD not in str(events)
    assert PASSWORD not in str(events)


def test_own_password_change_needs_the_current_password(api: Api, backends: Backends) -> None:
    token = _token(api.client, "west")

    refused = _change(api.client, token, "not-my-password-1", OWN_PASSWORD)

    assert refused.status_code == 422
    error = refused.json()["error"]
    assert (error["code"], error["details"]) == ("wrong_password", {"field": "old_password"})
    assert "原密码不正确" in error["message"]
    # Nothing changed: the token and the password still work.
    assert _me(api.client, token).status_code == 200
    assert _login(api.client, "west", PASSWORD).status_code == 200
    assert _events(backends, "password_change") == [
        ("west", "denied", {"reason": "wrong_password"})
    ]


@pytest.mark.parametrize(
    ("new", "code", "said"),
    [
        ("aaaaaaaa", "weak_password", "至少 10 个字符"),
        ("aaaaaaaaaa", "weak_password", "同一类字符"),
        ("1234567890", "weak_password", "同一类字符"),
        ("P@ssw0rd2026", "weak_password", "常见"),
        ("1qaz@WSX3edc", "weak_password", "常见"),
        ("West-123456", "weak_password", "用户名"),
        (PASSWORD, "password_unchanged", "相同"),
    ],
)
def test_own_new_password_keeps_the_rules(api: Api, new: str, code: str, said: str) -> None:
    token = _token(api.client, "west")

    refused = _change(api.client, token, PASSWORD, new)

    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["details"]) == (code, {"field": "new_password"})
    assert said in error["message"]
    assert _me(api.client, token).status_code == 200


def test_after_a_reset_only_a_new_password_may_be_chosen(api: Api, backends: Backends) -> None:
    assert _post(api, "poverty/password", {"new_password": NEW_PASSWORD}).status_code == 204
    assert _listed(api, "must_change_password")["poverty"] is True
    token = _token(api.client, "poverty", NEW_PASSWORD)

    me = _me(api.client, token)
    assert me.status_code == 200
    assert me.json()["must_change_password"] is True
    for method, path in (
        ("GET", "/api/v1/documents"),
        ("GET", "/api/v1/search?q=低保"),
        ("GET", "/api/v1/orgs"),
        ("POST", "/api/v1/requests"),
    ):
        refused = api.client.request(method, path, headers=_bearer(token), json={})
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "password_change_required"
        assert "新密码" in refused.json()["error"]["message"]
    denials = [
        details
        for actor, outcome, details in _events(backends, "access")
        if actor == "poverty" and outcome == "denied"
    ]
    assert len(denials) == 4
    assert {details["reason"] for details in denials} == {"password_change_required"}

    changed = _change(api.client, token, NEW_PASSWORD, OWN_PASSWORD)

    assert changed.status_code == 204, changed.text
    assert _me(api.client, token).status_code == 401
    fresh = _token(api.client, "poverty", OWN_PASSWORD)
    assert _me(api.client, fresh).json()["must_change_password"] is False
    assert api.client.get("/api/v1/documents", headers=_bearer(fresh)).status_code == 200
    assert _listed(api, "must_change_password")["poverty"] is False


def test_a_user_waiting_for_a_new_password_may_log_out(api: Api) -> None:
    assert _post(api, "stats/password", {"new_password": NEW_PASSWORD}).status_code == 204
    token = _token(api.client, "stats", NEW_PASSWORD)

    assert api.client.post("/api/v1/auth/logout", headers=_bearer(token)).status_code == 204
    assert _me(api.client, token).status_code == 401
