"""Login protection: attempts are counted before the password is checked, per account from one
address, per account and per address; whoever reaches a limit waits a short, growing delay.

Refusals that come in floods (failed logins, bad tokens) are audited in bursts: the first at once,
the rest as one event with their count, so a flood cannot slow everyone else down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.audit import event_time
from services.backends import Backends
from services.config import Settings
from services.models import AuditEvent, User, utcnow
from tests.conftest import PASSWORD, USERS, Api, stack_settings

TOKEN = "/api/v1/auth/token"
WRONG = "wrong-password-1"
ATTACKER, OWNER, OTHER = "203.0.113.66", "198.51.100.7", "192.0.2.9"


@pytest.fixture
def login_settings() -> dict[str, Any]:
    """Settings a test changes, by parametrising this fixture."""
    return {}


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, stack: str, tmp_path: Path, login_settings: dict[str, Any]
) -> Iterator[Settings]:
    with stack_settings(request, stack, tmp_path / "data", **login_settings) as chosen:
        yield chosen


@contextmanager
def from_address(client: TestClient, address: str) -> Iterator[TestClient]:
    """Another client of the same app, connecting from ``address``."""
    with TestClient(client.app, client=(address, 40000)) as other:
        yield other


def login(client: TestClient, username: str, password: str) -> httpx2.Response:
    return client.post(TOKEN, data={"username": username, "password": password})


def login_events(backends: Backends, actor: str) -> list[AuditEvent]:
    """The login events as stored, without reading the log through the API (which sums up)."""
    with backends.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "login", AuditEvent.actor == actor)
                .order_by(AuditEvent.id)
            )
        )


def events_read_by_auditor(api: Api, **filters: str) -> list[dict[str, Any]]:
    response = api.client.get(
        "/api/v1/audit/events", params={**filters, "size": "500"}, headers=api.headers("auditor")
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def assert_refused(response: httpx2.Response, retry_after: int | None = None) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert "access_token" not in response.text
    assert int(response.headers["retry-after"]) > 0
    if retry_after is not None:
        assert int(response.headers["retry-after"]) == retry_after


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login_settings",
    # A slower hash widens the gap a count read before it and written after would leave.
    [{"password_time_cost": 2, "password_memory_kib": 8192, "login_delay_seconds": 60}],
    ids=["slow-hash"],
)
def test_forty_simultaneous_wrong_passwords_are_checked_at_most_five_times(
    api: Api, backends: Backends
) -> None:
    start = threading.Barrier(40)

    def attempt(_: int) -> int:
        start.wait()
        return login(api.client, "admin", WRONG).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(attempt, range(40)))

    assert sorted(statuses) == [401] * 5 + [429] * 35
    assert_refused(login(api.client, "admin", PASSWORD))

    # Audited as two bursts (wrong password, then refused while held back), not 41 events...
    stored = sorted(login_events(backends, "admin"), key=lambda e: str(e.details["reason"]))
    assert [(e.outcome, e.ip, e.details) for e in stored] == [
        ("denied", "testclient", {"reason": "bad_password"}),
        ("denied", "testclient", {"reason": "locked"}),
    ]
    # ...each summed up with its count by the time an auditor reads the log.
    read = events_read_by_auditor(api, actor="admin", action="login")
    summaries = {e["details"]["reason"]: e["details"] for e in read if "count" in e["details"]}
    assert summaries["bad_password"]["count"] == 5
    assert summaries["locked"]["count"] == 36
    assert summaries["locked"]["first_at"] == event_time(stored[1].at)
    assert {(e["actor"], e["ip"], e["outcome"]) for e in read} == {
        ("admin", "testclient", "denied")
    }


# --- who is held back --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login_settings",
    [{"login_delay_seconds": 60, "login_account_max_failures": 5}],
    ids=["account-limit-5"],
)
def test_the_owner_logs_in_from_a_fresh_address_while_the_attackers_is_held_back(
    client: TestClient, backends: Backends
) -> None:
    with from_address(client, ATTACKER) as attacker:
        assert [login(attacker, "admin", WRONG).status_code for _ in range(5)] == [401] * 5
        assert_refused(login(attacker, "admin", PASSWORD))

    with from_address(client, OWNER) as owner:
        signed_in = login(owner, "admin", PASSWORD)
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
        me = owner.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["username"] == "admin"

    # The account is under attack: an address that fails on it now waits too.
    with from_address(client, OTHER) as other:
        assert login(other, "admin", WRONG).status_code == 401
        assert_refused(login(other, "admin", PASSWORD))

    with from_address(client, ATTACKER) as attacker:
        assert_refused(login(attacker, "admin", PASSWORD))
    denied = [(e.ip, e.details.get("reason")) for e in login_events(backends, "admin")]
    assert (ATTACKER, "locked") in denied
    assert (OTHER, "locked") in denied
    assert (OWNER, "locked") not in denied


@pytest.mark.parametrize(
    "login_settings", [{"login_max_failures": 2, "login_delay_seconds": 1}], ids=["delay-1s"]
)
def test_the_delay_doubles_with_each_failure_and_expires(client: TestClient) -> None:
    assert [login(client, "east", WRONG).status_code for _ in range(2)] == [401, 401]
    assert_refused(login(client, "east", PASSWORD), retry_after=1)

    time.sleep(1.2)
    assert login(client, "east", WRONG).status_code == 401
    assert_refused(login(client, "east", PASSWORD), retry_after=2)
    time.sleep(1.2)  # a fixed one-second delay would have ended here
    assert_refused(login(client, "east", PASSWORD))

    time.sleep(1.2)
    assert login(client, "east", PASSWORD).status_code == 200
    # The success forgot this address's failures on the account.
    assert login(client, "east", WRONG).status_code == 401
    assert login(client, "east", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    "login_settings",
    [{"login_address_max_failures": 4, "login_delay_seconds": 60}],
    ids=["address-limit-4"],
)
def test_an_address_trying_many_usernames_is_held_back(
    client: TestClient, backends: Backends
) -> None:
    with from_address(client, ATTACKER) as sprayer:
        for username in ("east", "west", "poverty", "no-such-user"):
            assert login(sprayer, username, WRONG).status_code == 401
        assert_refused(login(sprayer, "stats", PASSWORD))

    with from_address(client, OWNER) as owner:
        assert login(owner, "stats", PASSWORD).status_code == 200
    assert [(e.ip, e.outcome, e.details) for e in login_events(backends, "stats")] == [
        (ATTACKER, "denied", {"reason": "address_locked"}),
        (OWNER, "allowed", {}),
    ]


@pytest.mark.parametrize(
    "login_settings",
    # A slower hash keeps every login in flight at once; the address limit below their number.
    [{"password_time_cost": 2, "password_memory_kib": 8192, "login_address_max_failures": 2}],
    ids=["slow-hash-address-limit-2"],
)
def test_an_office_behind_one_address_logs_in_all_at_once(api: Api) -> None:
    """Correct logins in flight together from one address never hold that address back."""
    usernames = sorted(USERS)
    start = threading.Barrier(len(usernames))

    def attempt(username: str) -> int:
        start.wait()
        return login(api.client, username, PASSWORD).status_code

    with ThreadPoolExecutor(max_workers=len(usernames)) as pool:
        statuses = list(pool.map(attempt, usernames))

    assert statuses == [200] * len(usernames)
    # Wrong passwords from that address still count, and hold it back at the limit.
    assert login(api.client, "east", WRONG).status_code == 401
    assert login(api.client, "west", WRONG).status_code == 401
    assert_refused(login(api.client, "stats", PASSWORD))


# --- floods in the audit log -------------------------------------------------------------------


@pytest.mark.parametrize("login_settings", [{"audit_burst_seconds": 0.5}], ids=["burst-0.5s"])
def test_failed_logins_are_one_event_per_burst_summed_up_when_it_ends(
    client: TestClient, backends: Backends
) -> None:
    for _ in range(3):
        assert login(client, "east", WRONG).status_code == 401
    assert [e.details for e in login_events(backends, "east")] == [{"reason": "bad_password"}]

    time.sleep(0.6)
    assert login(client, "east", WRONG).status_code == 401

    first, summary, next_burst = login_events(backends, "east")
    assert (summary.actor, summary.ip, summary.outcome) == ("east", "testclient", "denied")
    assert summary.details["reason"] == "bad_password"
    assert summary.details["count"] == 3
    assert summary.details["first_at"] == event_time(first.at)
    assert next_burst.details == {"reason": "bad_password"}


def _token(settings: Settings, backends: Backends, *, key: str | None = None, age: int = 0) -> str:
    with backends.db.session() as session:
        east_id = session.scalar(select(User.id).where(User.username == "east"))
    issued = utcnow() - timedelta(hours=age)
    claims = {
        "sub": str(east_id),
        "aud": "materials-api",
        "iat": issued,
        "exp": issued + timedelta(hours=1),
        "jti": "flood",
    }
    return jwt.encode(claims, key or settings.signing_key(), algorithm="HS256")


def test_a_flood_of_bad_tokens_writes_a_handful_of_events(
    api: Api, backends: Backends, settings: Settings
) -> None:
    bad = {
        "malformed": "not-a-jwt",
        "forged": _token(settings, backends, key="another-signing-key-" + "y" * 32),
        "expired": _token(settings, backends, age=2),
    }
    good = api.headers("poverty")
    before = _access_events(backends)

    def knock(number: int) -> int:
        token = list(bad.values())[number % 3]
        me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        return me.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        flood = pool.map(knock, range(300))
        during = [api.client.get("/api/v1/me", headers=good).status_code for _ in range(5)]
        statuses = list(flood)

    assert statuses == [401] * 300
    assert during == [200] * 5
    stored = _access_events(backends)[len(before) :]
    assert sorted(str(e.details["reason"]) for e in stored) == ["invalid_token", "token_expired"]
    assert {e.ip for e in stored} == {"testclient"}

    read = events_read_by_auditor(api, action="access")
    counts = {
        e["details"]["reason"]: e["details"]["count"] for e in read if "count" in e["details"]
    }
    assert counts == {"invalid_token": 200, "token_expired": 100}


def _access_events(backends: Backends) -> list[AuditEvent]:
    with backends.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == "access").order_by(AuditEvent.id)
            )
        )
