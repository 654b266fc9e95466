"""Every permission decision is in services/access.py, as its header promises.

No other module decides by comparing roles; the decisions that used to live elsewhere (the admin's
withdraw lookup, who downloads by grant, who may hold a grant, which request box and which line of
the figures a role reads) and the two-person rule are functions of the policy, tested here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services import access
from services.access import Principal
from services.models import Document, DownloadGrant, OrgKind, Role, User

ROOT = Path(__file__).parents[1]
# A role compared with a role (or a role's name): a decision, which belongs in access.py.
ROLE_COMPARISON = re.compile(
    r"\brole(?:\.value)?\s*(?:==|!=|\bis\b)|\bin\s*[(\[{]\s*Role\.\w+"
    r"|[\"'](?:uploader|reader|auditor|admin|coordinator)[\"']\s*(?:==|!=)"
)
# Comparisons that decide nothing about permissions, each with why.
NOT_DECISIONS = {
    # Counting what departments did, by the role the audit log recorded for each event.
    ("services/usage.py", "AuditEvent.role == Role.reader.value,"),
    ("services/figures.py", "AuditEvent.role == Role.reader.value,"),
    # Idempotent creation: is the stored account the one asked for?
    ("services/orgs.py", "if existing.org_id != org_row.id or existing.role != role.value:"),
    # Wording: a township's clerk reads request statuses from the township's side.
    (
        "api/web/routes/requests.py",
        "return TOWNSHIP_STATUS_NAMES if principal.role is Role.uploader else REQUEST_STATUS_NAMES",
    ),
}


def _role_comparisons() -> set[tuple[str, str]]:
    found = set()
    for package in ("services", "api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name == "services/access.py":
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                if ROLE_COMPARISON.search(line):
                    found.add((name, line.strip()))
    return found


def test_no_module_but_the_policy_decides_by_role() -> None:
    assert _role_comparisons() - NOT_DECISIONS == set()


def test_the_scan_finds_a_decision_by_role_string() -> None:
    assert ROLE_COMPARISON.search('if principal.role.value == "auditor"')
    assert ROLE_COMPARISON.search("if user.role == Role.auditor.value and user.active")
    assert ROLE_COMPARISON.search("return principal.role in (Role.admin, Role.auditor)")


def _principal(role: Role, user_id: int = 1, org_id: int = 1) -> Principal:
    kind = {Role.uploader: OrgKind.township, Role.reader: OrgKind.department}.get(
        role, OrgKind.county
    )
    return Principal(
        user_id=user_id,
        username=f"u{user_id}",
        role=role,
        org_id=org_id,
        org_name="",
        org_kind=kind,
    )


def _document(*, township_id: int = 7, withdrawn: bool = False) -> Document:
    return Document(
        id="d1",
        township_id=township_id,
        visibility="departments",
        withdrawn_at=datetime(2026, 1, 1, tzinfo=UTC) if withdrawn else None,
    )


@pytest.mark.parametrize(
    ("role", "org_id", "withdrawn", "found"),
    [
        (Role.admin, 1, False, True),  # withdraws any live document...
        (Role.admin, 1, True, False),  # ...but a withdrawn one is hidden from admins too
        (Role.uploader, 7, True, True),  # its own township sees it (and is told: withdrawn)
        (Role.uploader, 8, False, False),
        (Role.reader, 3, False, True),  # sees it, may not withdraw it (403, not 404)
        (Role.coordinator, 1, False, False),
    ],
)
def test_who_finds_a_document_to_withdraw(
    role: Role, org_id: int, withdrawn: bool, found: bool
) -> None:
    document = _document(withdrawn=withdrawn)

    assert access.can_find_to_withdraw(_principal(role, org_id=org_id), document) is found


def test_only_auditors_download_by_grant_and_hold_grants() -> None:
    for role in Role:
        assert access.downloads_by_grant(_principal(role)) is (role is Role.auditor)
        assert access.may_hold_grant(role) is (role is Role.auditor)


def test_each_role_lists_its_own_box_of_requests() -> None:
    boxes = {role: access.own_box(_principal(role)) for role in Role}

    assert boxes == {
        Role.uploader: "inbox",
        Role.reader: "outbox",
        Role.coordinator: "approval",
        Role.auditor: None,
        Role.admin: None,
    }
    assert not access.can_list_box(_principal(Role.reader), "inbox")


def test_townships_and_departments_read_their_own_line_of_the_figures() -> None:
    assert access.own_figures_grouping(_principal(Role.uploader)) == "township"
    assert access.own_figures_grouping(_principal(Role.reader)) == "department"
    assert access.own_figures_grouping(_principal(Role.coordinator)) is None


def _user(role: Role, *, user_id: int, requested_by: int | None, pending: bool = True) -> User:
    return User(
        id=user_id,
        role=role.value,
        active=True,
        pending_since=datetime(2026, 1, 1, tzinfo=UTC) if pending else None,
        requested_by_id=requested_by,
    )


@pytest.mark.parametrize(
    ("confirmer", "account", "refusal"),
    [
        (_principal(Role.auditor, user_id=2), _user(Role.auditor, user_id=5, requested_by=1), None),
        (_principal(Role.admin, user_id=2), _user(Role.admin, user_id=5, requested_by=1), None),
        (
            _principal(Role.admin, user_id=1),
            _user(Role.admin, user_id=5, requested_by=1),
            "own_request",
        ),
        (
            _principal(Role.auditor, user_id=5),
            _user(Role.auditor, user_id=5, requested_by=1),
            "own_account",
        ),
        (
            _principal(Role.admin, user_id=2),
            _user(Role.auditor, user_id=5, requested_by=1),
            "not_confirmer",
        ),
        (
            _principal(Role.auditor, user_id=2),
            _user(Role.admin, user_id=5, requested_by=1),
            "not_confirmer",
        ),
        (
            _principal(Role.coordinator, user_id=2),
            _user(Role.reader, user_id=5, requested_by=1),
            "not_confirmer",
        ),
    ],
)
def test_who_confirms_an_account(confirmer: Principal, account: User, refusal: str | None) -> None:
    assert access.account_confirmation_refusal(confirmer, account) == refusal


def test_a_waiting_or_disabled_account_does_not_sign_in() -> None:
    assert access.may_sign_in(_user(Role.auditor, user_id=5, requested_by=1, pending=False))
    assert not access.may_sign_in(_user(Role.auditor, user_id=5, requested_by=1))
    disabled = _user(Role.reader, user_id=6, requested_by=None, pending=False)
    disabled.active = False
    assert not access.may_sign_in(disabled)


def test_a_second_admin_confirms_a_grant() -> None:
    grant = DownloadGrant(id=1, user_id=9, document_id="d1", granted_by_id=1)

    assert access.grant_confirmation_refusal(_principal(Role.admin, user_id=2), grant) is None
    assert access.grant_confirmation_refusal(_principal(Role.admin, user_id=1), grant) == (
        "own_request"
    )
    assert access.grant_confirmation_refusal(_principal(Role.auditor, user_id=9), grant) == (
        "not_confirmer"
    )
