"""Two people, never one: an admin's creating, enabling or resetting an auditor or admin account,
and an admin's download grant, wait for a second person's confirmation.

Until then the account signs in nowhere (a clear ``account_pending`` to whoever knows its
password) and the grant gives no download. An auditor confirms auditor accounts, another admin
admin accounts and grants; nobody confirms their own request. The server console is exempt. Who
may call which endpoint is in test_authorization.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from services import administration, orgs, sessions
from services.audit import Actor
from services.backends import Backends
from services.errors import NotAuthenticated
from services.models import AuditEvent, Role, User
from tests.conftest import COUNTY, PASSWORD, POVERTY, Api
from tests.samples import text_bytes

RESET_PASSWORD = "reset-by-admin-77"


def _add_console_user(backends: Backends, username: str, role: Role) -> None:
    """An account made on the server console: active at once."""
    with backends.db.session() as session:
        orgs.create_user(
            session,
            passwords=backends.passwords,
            username=username,
            password=PASSWORD,
            org=COUNTY,
            role=role,
        )


@pytest.fixture
def county(backends: Backends, county: dict[str, int]) -> dict[str, int]:
    """The sample county with a second admin and a second auditor."""
    _add_console_user(backends, "admin2", Role.admin)
    _add_console_user(backends, "auditor2", Role.auditor)
    return county


def _login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def _create(api: Api, username: str, role: str, *, by: str = "admin") -> Any:
    body = {"username": username, "password": PASSWORD, "org": COUNTY, "role": role}
    return api.client.post("/api/v1/users", json=body, headers=api.headers(by))


def _confirm(api: Api, username: str, *, by: str) -> Any:
    return api.client.post(f"/api/v1/users/{username}/confirm", headers=api.headers(by))


def _events(backends: Backends, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with backends.db.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [(event.actor, event.outcome, dict(event.details)) for event in events]


def _listed(api: Api) -> dict[str, dict[str, Any]]:
    users = api.client.get("/api/v1/users", headers=api.headers("admin"))
    assert users.status_code == 200, users.text
    return {user["username"]: user for user in users.json()}


def _error(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- accounts ---------------------------------------------------------------------------------


def test_an_auditor_an_admin_creates_waits_for_an_auditor(api: Api, backends: Backends) -> None:
    created = _create(api, "shenji", "auditor")

    assert created.status_code == 201, created.text
    assert created.json()["pending_confirmation"] is True
    assert created.json()["requested_by"] == "admin"
    listed = _listed(api)["shenji"]
    assert (listed["active"], listed["pending_confirmation"], listed["requested_by"]) == (
        True,
        True,
        "admin",
    )
    # The admin who knows the password cannot sign in as the new auditor...
    refused = _login(api.client, "shenji")
    assert refused.status_code == 401
    assert _error(refused) == "account_pending"
    assert refused.json()["error"]["message"] == "此账号正等待另一位审计人员确认，确认后才能登录"
    # ... and a wrong password does not tell that the account waits.
    assert _error(_login(api.client, "shenji", "wrong-password-1")) == "invalid_credentials"

    confirmed = _confirm(api, "shenji", by="auditor")

    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["pending_confirmation"] is False
    assert _login(api.client, "shenji").status_code == 200
    assert (
        "admin",
        "allowed",
        {"user": "shenji", "role": "auditor", "created": True, "pending": True},
    ) in _events(backends, "user_create")
    assert (
        "auditor",
        "allowed",
        {"user": "shenji", "role": "auditor", "requested_by": "admin"},
    ) in _events(backends, "user_confirm")
    assert ("shenji", "denied", {"reason": "pending"}) in _events(backends, "login")


def test_an_admin_account_waits_for_another_admin(api: Api, backends: Backends) -> None:
    assert _create(api, "guanli", "admin").status_code == 201
    assert _error(_login(api.client, "guanli")) == "account_pending"

    own = _confirm(api, "guanli", by="admin")
    auditor = _confirm(api, "guanli", by="auditor")
    reader = _confirm(api, "guanli", by="poverty")

    assert (own.status_code, _error(own)) == (403, "confirm_own_request")
    assert (auditor.status_code, _error(auditor)) == (403, "confirm_not_allowed")
    assert (reader.status_code, _error(reader)) == (403, "confirm_not_allowed")
    assert _error(_login(api.client, "guanli")) == "account_pending"
    denials = [
        (actor, details["reason"]) for actor, _, details in _events(backends, "user_confirm")
    ]
    assert denials == [
        ("admin", "confirm_own_request"),
        ("auditor", "confirm_not_allowed"),
        ("poverty", "confirm_not_allowed"),
    ]

    assert _confirm(api, "guanli", by="admin2").status_code == 200
    assert _login(api.client, "guanli").status_code == 200
    again = _confirm(api, "guanli", by="admin2")
    assert (again.status_code, _error(again)) == (409, "not_pending")


def test_other_roles_take_effect_at_once_and_nothing_waits_on_them(api: Api) -> None:
    body = {"username": "clerk", "password": PASSWORD, "org": POVERTY, "role": "reader"}

    reader = api.client.post("/api/v1/users", json=body, headers=api.headers("admin"))

    assert reader.status_code == 201, reader.text
    assert reader.json()["pending_confirmation"] is False
    assert _login(api.client, "clerk").status_code == 200
    assert _error(_confirm(api, "clerk", by="auditor")) == "confirm_not_allowed"
    assert _error(_confirm(api, "auditor2", by="auditor")) == "not_pending"


def test_enabling_an_auditor_again_waits_and_its_old_tokens_stay_dead(
    api: Api, backends: Backends
) -> None:
    token = _login(api.client, "auditor2").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    admin = api.headers("admin")
    assert api.client.post("/api/v1/users/auditor2/disable", headers=admin).status_code == 200

    enabled = api.client.post("/api/v1/users/auditor2/enable", headers=admin)

    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active"] is True
    assert enabled.json()["pending_confirmation"] is True
    assert api.client.get("/api/v1/me", headers=headers).status_code == 401
    assert _error(_login(api.client, "auditor2")) == "account_pending"
    # The account itself cannot confirm (it cannot sign in); another auditor can.
    assert _confirm(api, "auditor2", by="auditor").status_code == 200
    assert _login(api.client, "auditor2").status_code == 200
    assert api.client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_reset_of_an_auditors_password_waits_for_another_auditor(
    api: Api, backends: Backends
) -> None:
    reset = api.client.post(
        "/api/v1/users/auditor2/password",
        json={"new_password": RESET_PASSWORD},
        headers=api.headers("admin"),
    )
    assert reset.status_code == 204, reset.text
    # The admin knows the new password, but cannot be the auditor with it.
    assert _error(_login(api.client, "auditor2", RESET_PASSWORD)) == "account_pending"
    assert _listed(api)["auditor2"]["pending_confirmation"] is True

    assert _confirm(api, "auditor2", by="auditor").status_code == 200
    assert _login(api.client, "auditor2", RESET_PASSWORD).status_code == 200


def test_disabling_drops_what_waits(api: Api) -> None:
    assert _create(api, "shenji", "auditor").status_code == 201
    admin = api.headers("admin")

    assert api.client.post("/api/v1/users/shenji/disable", headers=admin).status_code == 200

    listed = _listed(api)["shenji"]
    assert (listed["active"], listed["pending_confirmation"]) == (False, False)
    assert _error(_confirm(api, "shenji", by="auditor")) == "not_pending"
    assert _error(_login(api.client, "shenji")) == "account_disabled"


def test_each_sees_the_accounts_they_confirm(api: Api, backends: Backends) -> None:
    assert _create(api, "shenji", "auditor").status_code == 201
    assert _create(api, "guanli", "admin").status_code == 201

    def pending(user: str) -> dict[str, bool]:
        response = api.client.get("/api/v1/users/pending", headers=api.headers(user))
        assert response.status_code == 200, response.text
        return {account["username"]: account["may_confirm"] for account in response.json()}

    assert pending("auditor") == {"shenji": True}
    assert pending("admin") == {"guanli": False}  # asked for by admin itself
    assert pending("admin2") == {"guanli": True}
    refused = api.client.get("/api/v1/users/pending", headers=api.headers("coord"))
    assert (refused.status_code, _error(refused)) == (403, "confirm_not_allowed")
    reads = [(actor, outcome) for actor, outcome, _ in _events(backends, "confirmation_read")]
    assert reads == [
        ("auditor", "allowed"),
        ("admin", "allowed"),
        ("admin2", "allowed"),
        ("coord", "denied"),
    ]


def test_a_waiting_account_has_no_live_session(api: Api, backends: Backends) -> None:
    # Sessions end with a reset anyway; here the account is held while a session is live.
    with backends.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == "auditor2"))
    assert user_id is not None
    cookie = sessions.start_session(backends, user_id=user_id, ip=None).token
    token = _login(api.client, "auditor2").json()["access_token"]
    with backends.db.session() as session:
        session.execute(
            update(User).where(User.id == user_id).values(pending_since=User.created_at)
        )

    with pytest.raises(NotAuthenticated):
        sessions.resolve_session(backends, token=cookie)
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_the_server_console_is_exempt(api: Api, backends: Backends) -> None:
    user, created = administration.add_user(
        backends,
        actor=Actor(username="cli:root", role="system"),
        username="console-auditor",
        password=PASSWORD,
        org=COUNTY,
        role="auditor",
    )

    assert created
    assert user.pending_since is None
    assert _login(api.client, "console-auditor").status_code == 200


# --- download grants ----------------------------------------------------------------------------


def _document(api: Api) -> str:
    response = api.upload("east", "低保名册.txt", text_bytes("东镇低保名册"), "text/plain")
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def _download(api: Api, document_id: str) -> Any:
    return api.client.get(
        f"/api/v1/documents/{document_id}/download", headers=api.headers("auditor")
    )


def test_a_grant_gives_the_download_once_a_second_admin_confirms(
    api: Api, backends: Backends
) -> None:
    document_id = _document(api)
    granted = api.client.post(
        "/api/v1/grants",
        json={"username": "auditor", "document_id": document_id},
        headers=api.headers("admin"),
    )
    assert granted.status_code == 201, granted.text
    grant = granted.json()
    assert (grant["pending_confirmation"], grant["granted_by"], grant["confirmed_by"]) == (
        True,
        "admin",
        None,
    )
    assert _error(_download(api, document_id)) == "download_not_allowed"

    def confirm(user: str) -> Any:
        path = f"/api/v1/grants/{grant['id']}/confirm"
        return api.client.post(path, headers=api.headers(user))

    own, auditor = confirm("admin"), confirm("auditor")
    assert (own.status_code, _error(own)) == (403, "confirm_own_request")
    assert (auditor.status_code, _error(auditor)) == (403, "confirm_not_allowed")
    assert _download(api, document_id).status_code == 403

    confirmed = confirm("admin2")

    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["pending_confirmation"], confirmed.json()["confirmed_by"]) == (
        False,
        "admin2",
    )
    assert _download(api, document_id).status_code == 200
    assert (confirm("admin2").status_code, _error(confirm("admin2"))) == (409, "not_pending")
    missing = api.client.post("/api/v1/grants/987654/confirm", headers=api.headers("admin2"))
    assert (missing.status_code, _error(missing)) == (404, "grant_not_found")
    events = _events(backends, "grant_confirm")
    assert [(actor, outcome, details.get("reason")) for actor, outcome, details in events] == [
        ("admin", "denied", "confirm_own_request"),
        ("auditor", "denied", "confirm_not_allowed"),
        ("admin2", "allowed", None),
        ("admin2", "denied", "not_pending"),
        ("admin2", "denied", "not_pending"),
        ("admin2", "denied", "grant_not_found"),
    ]


def test_auditors_read_every_grant_and_the_read_is_logged(api: Api, backends: Backends) -> None:
    document_id = _document(api)
    api.client.post(
        "/api/v1/grants",
        json={"username": "auditor2", "document_id": document_id},
        headers=api.headers("admin"),
    )

    listed = api.client.get("/api/v1/grants", headers=api.headers("auditor"))
    refused = api.client.get("/api/v1/grants", headers=api.headers("east"))

    assert listed.status_code == 200, listed.text
    assert [
        (grant["username"], grant["document_id"], grant["pending_confirmation"])
        for grant in listed.json()
    ] == [("auditor2", document_id, True)]
    assert listed.json()[0]["may_confirm"] is False
    assert (refused.status_code, _error(refused)) == (403, "grants_not_allowed")
    reads = [(actor, outcome) for actor, outcome, _ in _events(backends, "grant_read")]
    assert reads == [("auditor", "allowed"), ("east", "denied")]
